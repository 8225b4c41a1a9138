"""Finite-volume flux divergence on uniform cell-centred grids, in numba and in torch.

For the conservation law ``u_t + div F = s`` on cells of width ``h`` the semi-discrete form is

    du_i/dt = -(F_{i+1/2} - F_{i-1/2}) / h + s_i            (1D; a sum over axes in 2D)

with the face flux, in the form that covers convection-diffusion and the (generalised) porous
medium equation,

    F_{i+1/2} = a_{i+1/2} u*_{i+1/2} - d_{i+1/2} (phi_{i+1} - phi_i) / h,

where ``a`` is the face velocity, ``u*`` the convected value (upwind: the value of the cell the
velocity comes from; central: the mean of the two cells), ``d`` the face diffusivity and ``phi``
the diffused potential. ``phi = u`` with ``d`` the face value of k(u) gives ``F = -k(u) grad u``;
``phi = K(u) = int_0^u k`` (the Kirchhoff transform) with ``d = 1`` gives the same flux in the
form that stays exact for degenerate or discontinuous k (porous medium, Stefan).

Both kernels compute every face flux once and difference it, so the divergence telescopes: the sum
of ``h * div`` over the cells equals the net boundary flux to round-off (exactly zero on a periodic
grid). Boundary faces carry the flux the caller prescribes (the boundary condition is the
caller's physics); on a periodic axis the first and last faces are one face between the last and
the first cell, computed from ``d[0]``, ``a[0]``.

Array layout. 1D: cells ``(n,)``, faces ``(n + 1,)`` (face ``f`` lies between cells ``f - 1`` and
``f``). 2D: cells ``(nx, ny)``, x-faces ``(nx + 1, ny)``, y-faces ``(nx, ny + 1)``.

The numba kernels (:func:`flux_divergence_1d`, :func:`flux_divergence_2d`; ``cache=True``, and
``parallel=True`` over chunks of cells on grids of at least :data:`PARALLEL_MIN_CELLS` cells,
where threads pay off; smaller grids run the same code serially) serve the CPU reference solvers;
the torch twins (:func:`flux_divergence_1d_torch`, :func:`flux_divergence_2d_torch`) compute the
same numbers,
differentiably and batched over leading dimensions. A test checks that they agree to round-off.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

__all__ = [
    "flux_divergence_1d",
    "flux_divergence_1d_torch",
    "flux_divergence_2d",
    "flux_divergence_2d_torch",
]


# -- numba kernels -------------------------------------------------------------------------------
#: grids with at least this many cells use the ``parallel=True`` kernels; below it the thread
#: start-up costs more than the work, and the serial kernels (same code) run instead
PARALLEL_MIN_CELLS = 1 << 15
_CHUNK = 1 << 12


@numba.njit(cache=True)
def _face_flux(a, d, u_lo, u_hi, phi_lo, phi_hi, inv_h, upwind):
    """One face flux: convection of u (upwind or central) minus diffusion of phi."""
    if upwind:
        conv = a * u_lo if a >= 0.0 else a * u_hi
    else:
        conv = 0.5 * a * (u_lo + u_hi)
    return conv - d * (phi_hi - phi_lo) * inv_h


@numba.njit(cache=True)
def _faces_1d(phi, u, d, a, inv_h, upwind, faces, f0, f1):
    """Interior face fluxes f0 <= f < f1 (0 < f < n)."""
    for f in range(f0, f1):
        faces[f] = _face_flux(a[f], d[f], u[f - 1], u[f], phi[f - 1], phi[f], inv_h, upwind)


@numba.njit(cache=True)
def _ends_1d(phi, u, d, a, inv_h, flux_lo, flux_hi, periodic, upwind, faces):
    n = phi.shape[0]
    if periodic:
        wrap = _face_flux(a[0], d[0], u[n - 1], u[0], phi[n - 1], phi[0], inv_h, upwind)
        faces[0] = wrap
        faces[n] = wrap
    else:
        faces[0] = flux_lo
        faces[n] = flux_hi


@numba.njit(cache=True)
def _difference_1d(faces, inv_h, out, i0, i1):
    for i in range(i0, i1):
        out[i] = -(faces[i + 1] - faces[i]) * inv_h


@numba.njit(cache=True)
def _divergence_1d_serial(phi, u, d, a, h, flux_lo, flux_hi, periodic, upwind, out):
    n = phi.shape[0]
    inv_h = 1.0 / h
    faces = np.empty(n + 1)
    _faces_1d(phi, u, d, a, inv_h, upwind, faces, 1, n)
    _ends_1d(phi, u, d, a, inv_h, flux_lo, flux_hi, periodic, upwind, faces)
    _difference_1d(faces, inv_h, out, 0, n)
    return out


@numba.njit(parallel=True, cache=True)
def _divergence_1d_parallel(phi, u, d, a, h, flux_lo, flux_hi, periodic, upwind, out):
    n = phi.shape[0]
    inv_h = 1.0 / h
    faces = np.empty(n + 1)
    nchunks = (n + _CHUNK - 1) // _CHUNK
    for c in numba.prange(nchunks):
        _faces_1d(phi, u, d, a, inv_h, upwind, faces, max(1, c * _CHUNK), min(n, (c + 1) * _CHUNK))
    _ends_1d(phi, u, d, a, inv_h, flux_lo, flux_hi, periodic, upwind, faces)
    for c in numba.prange(nchunks):
        _difference_1d(faces, inv_h, out, c * _CHUNK, min(n, (c + 1) * _CHUNK))
    return out


@numba.njit(cache=True)
def _faces_2d_rows(
    phi,
    u,
    dxf,
    dyf,
    ax,
    ay,
    inv_x,
    inv_y,
    fx_lo,
    fx_hi,
    fy_lo,
    fy_hi,
    per_x,
    per_y,
    upwind,
    fx,
    fy,
    i0,
    i1,
):
    """x-face rows i0 <= i < i1 (of nx + 1) and y-face rows i0 <= i < min(i1, nx)."""
    nx, ny = phi.shape
    for i in range(i0, i1):
        for j in range(ny):
            if i == 0 or i == nx:
                if per_x:
                    fx[i, j] = _face_flux(
                        ax[0, j],
                        dxf[0, j],
                        u[nx - 1, j],
                        u[0, j],
                        phi[nx - 1, j],
                        phi[0, j],
                        inv_x,
                        upwind,
                    )
                elif i == 0:
                    fx[i, j] = fx_lo[j]
                else:
                    fx[i, j] = fx_hi[j]
            else:
                fx[i, j] = _face_flux(
                    ax[i, j],
                    dxf[i, j],
                    u[i - 1, j],
                    u[i, j],
                    phi[i - 1, j],
                    phi[i, j],
                    inv_x,
                    upwind,
                )
        if i == nx:
            continue
        for j in range(ny + 1):
            if j == 0 or j == ny:
                if per_y:
                    fy[i, j] = _face_flux(
                        ay[i, 0],
                        dyf[i, 0],
                        u[i, ny - 1],
                        u[i, 0],
                        phi[i, ny - 1],
                        phi[i, 0],
                        inv_y,
                        upwind,
                    )
                elif j == 0:
                    fy[i, j] = fy_lo[i]
                else:
                    fy[i, j] = fy_hi[i]
            else:
                fy[i, j] = _face_flux(
                    ay[i, j],
                    dyf[i, j],
                    u[i, j - 1],
                    u[i, j],
                    phi[i, j - 1],
                    phi[i, j],
                    inv_y,
                    upwind,
                )


@numba.njit(cache=True)
def _difference_2d(fx, fy, inv_x, inv_y, out, i0, i1):
    ny = out.shape[1]
    for i in range(i0, i1):
        for j in range(ny):
            out[i, j] = -(fx[i + 1, j] - fx[i, j]) * inv_x - (fy[i, j + 1] - fy[i, j]) * inv_y


@numba.njit(cache=True)
def _divergence_2d_serial(
    phi, u, dxf, dyf, ax, ay, hx, hy, fx_lo, fx_hi, fy_lo, fy_hi, per_x, per_y, upwind, out
):
    nx, ny = phi.shape
    inv_x, inv_y = 1.0 / hx, 1.0 / hy
    fx = np.empty((nx + 1, ny))
    fy = np.empty((nx, ny + 1))
    _faces_2d_rows(
        phi,
        u,
        dxf,
        dyf,
        ax,
        ay,
        inv_x,
        inv_y,
        fx_lo,
        fx_hi,
        fy_lo,
        fy_hi,
        per_x,
        per_y,
        upwind,
        fx,
        fy,
        0,
        nx + 1,
    )
    _difference_2d(fx, fy, inv_x, inv_y, out, 0, nx)
    return out


@numba.njit(parallel=True, cache=True)
def _divergence_2d_parallel(
    phi, u, dxf, dyf, ax, ay, hx, hy, fx_lo, fx_hi, fy_lo, fy_hi, per_x, per_y, upwind, out
):
    nx, ny = phi.shape
    inv_x, inv_y = 1.0 / hx, 1.0 / hy
    fx = np.empty((nx + 1, ny))
    fy = np.empty((nx, ny + 1))
    rows = max(1, _CHUNK // ny)
    nchunks = (nx + 1 + rows - 1) // rows
    for c in numba.prange(nchunks):
        _faces_2d_rows(
            phi,
            u,
            dxf,
            dyf,
            ax,
            ay,
            inv_x,
            inv_y,
            fx_lo,
            fx_hi,
            fy_lo,
            fy_hi,
            per_x,
            per_y,
            upwind,
            fx,
            fy,
            c * rows,
            min(nx + 1, (c + 1) * rows),
        )
    for c in numba.prange(nchunks):
        _difference_2d(fx, fy, inv_x, inv_y, out, c * rows, min(nx, (c + 1) * rows))
    return out


# -- numpy-facing wrappers ---------------------------------------------------------------------
def _cells(x, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    return arr


def _faces(x, name: str, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(shape, float(arr))
    if arr.shape != shape:
        raise ValueError(f"{name} must be a scalar or have shape {shape}; got {arr.shape}")
    return np.ascontiguousarray(arr)


def flux_divergence_1d(
    phi: np.ndarray,
    u: np.ndarray,
    d,
    a,
    h: float,
    flux_lo: float = 0.0,
    flux_hi: float = 0.0,
    *,
    periodic: bool = False,
    upwind: bool = True,
    out: np.ndarray | None = None,
    parallel: bool | None = None,
) -> np.ndarray:
    """``-(F_{i+1/2} - F_{i-1/2}) / h`` on a uniform 1D grid of n cells (numba, parallel).

    Parameters
    ----------
    phi, u:
        Cell values (n,): the diffused potential and the convected field.
    d, a:
        Face diffusivity and face velocity: scalars or arrays (n + 1,).
    h:
        Cell width.
    flux_lo, flux_hi:
        The flux F (along +x) through the first and the last face; ignored when ``periodic``.
    periodic:
        The last cell neighbours the first; the wrap face uses ``d[0]``, ``a[0]``.
    upwind:
        Upwind (first order, monotone) or central (second order) convected value.
    out:
        Optional output array (n,).
    parallel:
        Use the ``parallel=True`` kernel (True), the serial one (False), or decide by size
        (None: parallel from :data:`PARALLEL_MIN_CELLS` cells). Both give identical numbers.
    """
    phi = _cells(phi, "phi")
    if phi.ndim != 1:
        raise ValueError(f"phi must be 1D; got shape {phi.shape}")
    n = phi.shape[0]
    u = _cells(u, "u", (n,))
    d = _faces(d, "d", (n + 1,))
    a = _faces(a, "a", (n + 1,))
    if out is None:
        out = np.empty(n)
    if parallel is None:
        parallel = n >= PARALLEL_MIN_CELLS
    kernel = _divergence_1d_parallel if parallel else _divergence_1d_serial
    return kernel(
        phi, u, d, a, float(h), float(flux_lo), float(flux_hi), bool(periodic), bool(upwind), out
    )


def flux_divergence_2d(
    phi: np.ndarray,
    u: np.ndarray,
    d: tuple,
    a: tuple,
    h: tuple[float, float],
    flux_x: tuple = (0.0, 0.0),
    flux_y: tuple = (0.0, 0.0),
    *,
    periodic: tuple[bool, bool] = (False, False),
    upwind: bool = True,
    out: np.ndarray | None = None,
    parallel: bool | None = None,
) -> np.ndarray:
    """``-div F`` on a uniform 2D grid of (nx, ny) cells (numba, parallel over x rows).

    ``d = (d_x, d_y)`` and ``a = (a_x, a_y)`` hold the face diffusivities and velocities on the
    x-faces (nx + 1, ny) and y-faces (nx, ny + 1) (each a scalar or an array); ``h = (hx, hy)``;
    ``flux_x = (lo, hi)`` the x-flux through the faces x = x0 and x = x1 (scalars or (ny,)),
    ``flux_y`` likewise on y (scalars or (nx,)). See :func:`flux_divergence_1d`.
    """
    phi = _cells(phi, "phi")
    if phi.ndim != 2:
        raise ValueError(f"phi must be 2D; got shape {phi.shape}")
    nx, ny = phi.shape
    u = _cells(u, "u", (nx, ny))
    dxf = _faces(d[0], "d_x", (nx + 1, ny))
    dyf = _faces(d[1], "d_y", (nx, ny + 1))
    ax = _faces(a[0], "a_x", (nx + 1, ny))
    ay = _faces(a[1], "a_y", (nx, ny + 1))
    fx_lo, fx_hi = (_faces(f, "flux_x", (ny,)) for f in flux_x)
    fy_lo, fy_hi = (_faces(f, "flux_y", (nx,)) for f in flux_y)
    if out is None:
        out = np.empty((nx, ny))
    if parallel is None:
        parallel = nx * ny >= PARALLEL_MIN_CELLS
    kernel = _divergence_2d_parallel if parallel else _divergence_2d_serial
    return kernel(
        phi,
        u,
        dxf,
        dyf,
        ax,
        ay,
        float(h[0]),
        float(h[1]),
        fx_lo,
        fx_hi,
        fy_lo,
        fy_hi,
        bool(periodic[0]),
        bool(periodic[1]),
        bool(upwind),
        out,
    )


# -- torch twins -------------------------------------------------------------------------------
def _face_flux_torch(a, d, u_lo, u_hi, phi_lo, phi_hi, h, upwind):
    if upwind:
        conv = torch.where(a >= 0, a * u_lo, a * u_hi)
    else:
        conv = 0.5 * a * (u_lo + u_hi)
    return conv - d * (phi_hi - phi_lo) / h


def _axis_fluxes_torch(phi, u, d, a, h, flux_lo, flux_hi, periodic, upwind, dim):
    """All face fluxes along axis ``dim`` (size n there, n + 1 in the result)."""
    n = phi.shape[dim]
    d = torch.as_tensor(d, dtype=phi.dtype, device=phi.device)
    a = torch.as_tensor(a, dtype=phi.dtype, device=phi.device)
    face_shape = list(phi.shape)
    face_shape[dim] = n + 1
    d = d.expand(face_shape) if d.ndim == 0 else d
    a = a.expand(face_shape) if a.ndim == 0 else a

    def sl(lo, hi):
        return phi.narrow(dim, lo, hi - lo), u.narrow(dim, lo, hi - lo)

    (p_lo, q_lo), (p_hi, q_hi) = sl(0, n - 1), sl(1, n)
    inner = _face_flux_torch(
        a.narrow(dim, 1, n - 1), d.narrow(dim, 1, n - 1), q_lo, q_hi, p_lo, p_hi, h, upwind
    )
    if periodic:
        wrap = _face_flux_torch(
            a.narrow(dim, 0, 1),
            d.narrow(dim, 0, 1),
            u.narrow(dim, n - 1, 1),
            u.narrow(dim, 0, 1),
            phi.narrow(dim, n - 1, 1),
            phi.narrow(dim, 0, 1),
            h,
            upwind,
        )
        lo = hi = wrap
    else:
        bshape = list(phi.shape)
        bshape[dim] = 1
        lo = _boundary_flux_torch(flux_lo, bshape, dim, phi)
        hi = _boundary_flux_torch(flux_hi, bshape, dim, phi)
    return torch.cat([lo, inner, hi], dim=dim)


def _boundary_flux_torch(flux, bshape, dim, like):
    f = torch.as_tensor(flux, dtype=like.dtype, device=like.device)
    if f.ndim > 0:
        f = f.unsqueeze(dim)
    return f.expand(bshape)


def flux_divergence_1d_torch(
    phi: torch.Tensor,
    u: torch.Tensor,
    d,
    a,
    h: float,
    flux_lo=0.0,
    flux_hi=0.0,
    *,
    periodic: bool = False,
    upwind: bool = True,
) -> torch.Tensor:
    """Torch twin of :func:`flux_divergence_1d`: cells along the last axis, any leading batch."""
    faces = _axis_fluxes_torch(phi, u, d, a, h, flux_lo, flux_hi, periodic, upwind, phi.ndim - 1)
    return -(faces[..., 1:] - faces[..., :-1]) / h


def flux_divergence_2d_torch(
    phi: torch.Tensor,
    u: torch.Tensor,
    d: tuple,
    a: tuple,
    h: tuple[float, float],
    flux_x: tuple = (0.0, 0.0),
    flux_y: tuple = (0.0, 0.0),
    *,
    periodic: tuple[bool, bool] = (False, False),
    upwind: bool = True,
) -> torch.Tensor:
    """Torch twin of :func:`flux_divergence_2d`: cells along the last two axes.

    Boundary fluxes are scalars, or arrays along the other axis: ``flux_x`` entries of shape
    (..., ny), ``flux_y`` entries of shape (..., nx).
    """
    dx_, dy_ = phi.ndim - 2, phi.ndim - 1
    fx = _axis_fluxes_torch(phi, u, d[0], a[0], h[0], *flux_x, periodic[0], upwind, dx_)
    fy = _axis_fluxes_torch(phi, u, d[1], a[1], h[1], *flux_y, periodic[1], upwind, dy_)
    return -(fx[..., 1:, :] - fx[..., :-1, :]) / h[0] - (fy[..., 1:] - fy[..., :-1]) / h[1]
