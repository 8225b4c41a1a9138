"""Incompressible Navier-Stokes by Taylor-Hood finite elements (scikit-fem): the mesh reference.

Velocity in continuous piecewise quadratics, pressure in continuous piecewise linears (P2/P1,
inf-sup stable) on a triangle mesh, density 1:

    find (u, p):  nu (grad u, grad w) + ((u . grad) u, w) - (p, div w) - (q, div u) = (f, w)

for all (w, q), with Dirichlet velocities on the tagged parts of the boundary that carry data and
the natural ("do-nothing") condition ``nu du/dn - p n = 0`` on the others (an outflow). With a
do-nothing part the pressure is unique; without one it is fixed by a zero mean.

* :meth:`TaylorHood.solve_steady`: Newton's method (the exact Jacobian, sparse LU), optionally
  through a continuation in the viscosity;
* :meth:`TaylorHood.forces`: the force on a tagged boundary part by the volume integral of the
  residual against a velocity test function that is a unit vector on that part and zero on the
  rest of the Dirichlet boundary (John 2004, "Reference values for drag and lift of a
  two-dimensional time-dependent flow around a cylinder", Int. J. Numer. Meth. Fluids 44; more
  accurate than the boundary integral of the stress, since it needs no derivatives on the
  boundary); :meth:`TaylorHood.boundary_forces`, the boundary integral, for comparison;
* :meth:`TaylorHood.evaluate`: u, v, p anywhere in the mesh.

Curved boundaries: :func:`curved_mesh` makes the mesh quadratic (isoparametric P2 geometry) with
the midpoints of the edges on a circle moved onto it, and :func:`refine` splits every triangle in
four, moving new nodes on the circle onto it, so refined meshes converge to the true domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pdekit.errors import ParameterError

#: a circle (centre, radius) whose boundary nodes are kept on it under refinement
Circle = tuple[tuple[float, float], float]
#: the boundary parts, each a predicate on facet midpoints (2, n) -> bool (n,)
Parts = Mapping[str, Callable[[np.ndarray], np.ndarray]]


def _skfem():
    import skfem

    return skfem


def _snap(points: np.ndarray, on: np.ndarray, circle: Circle) -> np.ndarray:
    (cx, cy), r = circle
    out = points.copy()
    d = out[:, on] - np.array([[cx], [cy]])
    out[:, on] = np.array([[cx], [cy]]) + r * d / np.linalg.norm(d, axis=0)
    return out


def linear_mesh(points: np.ndarray, triangles: np.ndarray):
    """A scikit-fem ``MeshTri1`` from node coordinates (n, 2) and triangles (m, 3)."""
    skfem = _skfem()
    return skfem.MeshTri1(np.ascontiguousarray(points[:, :2].T), np.ascontiguousarray(triangles.T))


def refine(mesh, circle: Circle | None = None, levels: int = 1):
    """``levels`` uniform refinements of the linear mesh ``mesh`` (each triangle in four), the
    new boundary nodes on the straight edges along ``circle`` (those within 2 % of its radius
    from it) moved onto it."""
    for _ in range(levels):
        mesh = mesh.refined()
        if circle is not None:
            on = _on_circle(mesh, circle, 0.02 * circle[1])
            boundary = np.zeros(mesh.p.shape[1], dtype=bool)
            boundary[mesh.boundary_nodes()] = True
            mesh = type(mesh)(_snap(mesh.p, on & boundary, circle), mesh.t)
    return mesh


def _on_circle(mesh, circle: Circle | None, tol: float) -> np.ndarray:
    if circle is None:
        return np.zeros(mesh.p.shape[1], dtype=bool)
    (cx, cy), r = circle
    return np.abs(np.hypot(mesh.p[0] - cx, mesh.p[1] - cy) - r) <= tol


def curved_mesh(mesh, circle: Circle | None):
    """The quadratic (isoparametric) version of the linear mesh ``mesh``, the midpoints of its
    boundary edges whose two ends lie on ``circle`` moved onto the circle."""
    skfem = _skfem()
    curved = skfem.MeshTri2.from_mesh(mesh)
    if circle is None:
        return curved
    (cx, cy), r = circle
    facets = curved.boundary_facets()
    ends = curved.facets[:, facets]
    radius = np.hypot(mesh.p[0, ends] - cx, mesh.p[1, ends] - cy)
    keep = facets[np.all(np.abs(radius - r) <= 1e-6 * max(r, 1.0), axis=0)]
    dofs = curved.dofs.get_facet_dofs(keep).flatten()
    on = np.zeros(curved.doflocs.shape[1], dtype=bool)
    on[dofs] = True
    vertices = np.zeros_like(on)
    vertices[: mesh.p.shape[1]] = True
    return replace(curved, doflocs=_snap(curved.doflocs, on & ~vertices, circle))


@dataclass
class FlowState:
    """A Taylor-Hood solution: the coefficient vector (velocity dofs then pressure dofs), and
    for a Newton solve its steps and last velocity update relative to the velocity."""

    x: np.ndarray
    newton_steps: int = 0
    last_update: float = float("nan")


class TaylorHood:
    """P2/P1 Navier-Stokes on ``mesh`` (a scikit-fem triangle mesh, linear or quadratic) with
    boundary ``parts`` ({name: predicate on facet midpoints (2, n)}) and viscosity ``nu``.

    ``dirichlet``: ``{part: function (x, y) -> (u, v)}`` (numpy arrays) for the parts with
    prescribed velocity; the other parts are do-nothing outflows.
    """

    def __init__(
        self,
        mesh,
        parts: Parts,
        nu: float,
        dirichlet: Mapping[str, Callable[[np.ndarray, np.ndarray], tuple]],
        intorder: int = 4,
    ):
        skfem = _skfem()
        if not (np.isfinite(nu) and nu > 0):
            raise ParameterError(f"nu must be finite and > 0; got {nu}")
        unknown = sorted(set(dirichlet) - set(parts))
        if unknown:
            raise ParameterError(f"Dirichlet data on unknown parts {unknown}; parts: {list(parts)}")
        self.mesh = mesh.with_boundaries(dict(parts))
        self.nu = float(nu)
        self.parts = tuple(parts)
        self.dirichlet = dict(dirichlet)
        self.element = skfem.ElementVector(skfem.ElementTriP2())
        self.ubasis = skfem.Basis(self.mesh, self.element, intorder=intorder)
        self.pbasis = skfem.Basis(self.mesh, skfem.ElementTriP1(), intorder=intorder)
        self.nu_dofs, self.np_dofs = self.ubasis.N, self.pbasis.N
        self._build_linear()

    # -- assembly ---------------------------------------------------------------------------
    def _build_linear(self):
        skfem = _skfem()
        from skfem.helpers import ddot, div, grad

        @skfem.BilinearForm
        def viscous(u, w, _):
            return ddot(grad(u), grad(w))

        @skfem.BilinearForm
        def pressure(p, w, _):
            return -p * div(w)

        self.A = viscous.assemble(self.ubasis)
        self.B = pressure.assemble(self.pbasis, self.ubasis)
        self.mass_p = skfem.BilinearForm(lambda p, q, _: p * q).assemble(self.pbasis)
        # Dirichlet dofs and their values
        fixed, values = [], np.zeros(self.nu_dofs)
        for name, g in self.dirichlet.items():
            for comp, idx in enumerate(self.part_dofs(name)):
                xy = self.ubasis.doflocs[:, idx]
                values[idx] = np.asarray(g(xy[0], xy[1])[comp], dtype=float) * np.ones(idx.size)
                fixed.append(idx)
        self.fixed = np.unique(np.concatenate(fixed)) if fixed else np.zeros(0, int)
        self.values = values
        outflow = [p for p in self.parts if p not in self.dirichlet]
        self.gauge = not outflow  # all-velocity boundary: fix the pressure's mean

    def part_dofs(self, part: str) -> list[np.ndarray]:
        """The velocity degrees of freedom on the boundary part ``part``: [x-component,
        y-component] (vertex and edge dofs)."""
        found = self.ubasis.get_dofs(self.mesh.boundaries[part])
        empty = np.zeros(0, dtype=int)
        return [
            np.concatenate([found.nodal.get(k, empty), found.facet.get(k, empty)])
            for k in ("u^1", "u^2")
        ]

    def force_dofs(self, part: str) -> list[np.ndarray]:
        """:meth:`part_dofs` of ``part`` less those shared with another Dirichlet part (the
        corners where a wall meets the inlet): the support of the force's test function, which
        must vanish on the rest of the Dirichlet boundary."""
        own = self.part_dofs(part)
        for name in self.dirichlet:
            if name != part:
                own = [np.setdiff1d(a, b) for a, b in zip(own, self.part_dofs(name))]
        return own

    def _convection(self, u0):
        """The Newton Jacobian's convective part and the convective residual at ``u0``."""
        skfem = _skfem()
        from skfem.helpers import dot, grad, mul

        w0 = self.ubasis.interpolate(u0)

        @skfem.BilinearForm
        def jac(u, w, m):
            return dot(mul(grad(u), m["w0"]), w) + dot(mul(grad(m["w0"]), u), w)

        @skfem.LinearForm
        def res(w, m):
            return dot(mul(grad(m["w0"]), m["w0"]), w)

        return jac.assemble(self.ubasis, w0=w0), res.assemble(self.ubasis, w0=w0)

    def _system(self, nu: float, jac_c):
        blocks = [[nu * self.A + jac_c, self.B], [self.B.T, None]]
        if self.gauge:
            ones = self.mass_p @ np.ones(self.np_dofs)
            blocks = [
                [nu * self.A + jac_c, self.B, None],
                [self.B.T, None, sp.csr_matrix(ones[:, None])],
                [None, sp.csr_matrix(ones[None, :]), None],
            ]
        return sp.bmat(blocks, format="csr")

    def residual_vector(self, x: np.ndarray, nu: float | None = None) -> np.ndarray:
        """The discrete residual (velocity rows, then pressure rows) of the coefficients ``x``
        with the Dirichlet rows left in (as the force functional needs them)."""
        nu = self.nu if nu is None else nu
        u, p = x[: self.nu_dofs], x[self.nu_dofs : self.nu_dofs + self.np_dofs]
        _, conv = self._convection(u)
        return np.concatenate([nu * (self.A @ u) + conv + self.B @ p, self.B.T @ u])

    # -- solving ----------------------------------------------------------------------------
    def solve_steady(
        self,
        x0: np.ndarray | None = None,
        tol: float = 1e-10,
        max_steps: int = 30,
        continuation: tuple[float, ...] = (),
    ) -> FlowState:
        """Newton's method from ``x0`` (default: the Stokes flow), first through the viscosities
        in ``continuation`` (decreasing, larger than :attr:`nu`); stops when the update's max
        norm is below ``tol`` times the velocity's. Raises RuntimeError when it does not."""
        n = self.nu_dofs + self.np_dofs + int(self.gauge)
        x = np.zeros(n) if x0 is None else np.array(x0, dtype=float, copy=True)
        if x.size == n - 1:
            x = np.append(x, 0.0)
        x[self.fixed] = self.values[self.fixed]
        total = 0
        for nu in (*continuation, self.nu):
            steps, res = self._newton(x, nu, tol, max_steps, stokes_first=x0 is None and total == 0)
            total += steps
        return FlowState(x[: self.nu_dofs + self.np_dofs], total, res)

    def _newton(self, x, nu, tol, max_steps, stokes_first):
        free = np.setdiff1d(np.arange(x.size), self.fixed)
        for step in range(max_steps + 1):
            u = x[: self.nu_dofs]
            if stokes_first and step == 0:
                jac_c = sp.csr_matrix((self.nu_dofs, self.nu_dofs))
                conv = np.zeros(self.nu_dofs)
            else:
                jac_c, conv = self._convection(u)
            K = self._system(nu, jac_c)
            p = x[self.nu_dofs : self.nu_dofs + self.np_dofs]
            r = np.concatenate([nu * (self.A @ u) + conv + self.B @ p, self.B.T @ u])
            if self.gauge:
                r = np.append(r, float(np.ones(self.np_dofs) @ (self.mass_p @ p)))
            Kff = K[free][:, free]
            dx = spla.spsolve(Kff.tocsc(), -r[free])
            x[free] += dx
            size = float(np.abs(dx[: np.count_nonzero(free < self.nu_dofs)]).max(initial=0.0))
            scale = max(float(np.abs(x[: self.nu_dofs]).max()), 1e-300)
            if step > 0 and size <= tol * scale:
                return step + 1, size / scale
        raise RuntimeError(
            f"Newton's method did not converge in {max_steps + 1} steps at nu = {nu:g} (last "
            f"relative update {size / scale:.2e}); use a continuation in nu"
        )

    def run_unsteady(
        self,
        dt: float,
        t_end: float,
        part: str | None = None,
        x0: np.ndarray | None = None,
        callback: Callable[[float, FlowState], None] | None = None,
        project: bool = True,
    ) -> dict[str, np.ndarray]:
        """Time-step the flow from ``x0`` (default: at rest but for the Dirichlet data, an
        impulsive start) to ``t_end`` by the second-order backward differentiation formula
        with the convecting velocity extrapolated, 2 u^n - u^(n-1) (one linear solve per step;
        the first step backward Euler):

            (3 u^(n+1) - 4 u^n + u^(n-1)) / (2 dt) + (u* . grad) u^(n+1) + grad p^(n+1)
                - nu lap u^(n+1) = 0,   div u^(n+1) = 0.

        The start is first projected (``project``): replaced by the discretely
        divergence-free velocity with the Dirichlet data nearest to it in L2, the state of
        the semi-discrete flow at t = 0+. An impulsive start is not divergence-free next to
        the boundary; unprojected, its non-solenoidal part in the second step's history is
        taken up by the pressure, but the extrapolated convecting velocity 2 u^1 - u^0 of that
        step carries it as an O(1) error, and the run is first order in ``dt`` (measured on a
        cavity at nu = 0.01: ratios 2.3 and 1.9 per halving of ``dt``, 4.18 and 4.08
        projected; ``tests/problems/test_cylinder_steady.py``). A start that is
        divergence-free already is left as it is.

        The number of steps is ``t_end / dt`` rounded to the nearest integer (the last time is
        that many steps of ``dt``). Returns ``{"t", "f_x", "f_y"}``: the force on ``part`` at
        every step (the volume
        integral of :meth:`forces` with the BDF2 time derivative in the residual), empty
        without ``part``. ``callback(t, state)`` sees every step."""
        if not (dt > 0 and t_end > 0):
            raise ParameterError(f"dt and t_end must be > 0; got {dt}, {t_end}")
        skfem = _skfem()
        from skfem.helpers import dot

        mass = skfem.BilinearForm(lambda u, w, _: dot(u, w)).assemble(self.ubasis)
        n = self.nu_dofs + self.np_dofs + int(self.gauge)
        x = np.zeros(n) if x0 is None else np.array(x0, dtype=float, copy=True)
        if x.size == n - 1:
            x = np.append(x, 0.0)
        x[self.fixed] = self.values[self.fixed]
        free = np.setdiff1d(np.arange(n), self.fixed)
        if project:
            x = self._project(x, mass, free)
        u_old = x[: self.nu_dofs].copy()
        steps = int(round(t_end / dt))
        times, fx, fy = [], [], []
        dofs = None if part is None else self.force_dofs(part)
        for k in range(1, steps + 1):
            u_now = x[: self.nu_dofs].copy()
            if k == 1:
                a0, hist = 1.0 / dt, (u_now / dt)
                star = u_now
            else:
                a0, hist = 1.5 / dt, (2.0 * u_now - 0.5 * u_old) / dt
                star = 2.0 * u_now - u_old
            conv = self._advection(star)
            K = self._system(self.nu, conv + a0 * mass)
            rhs = np.zeros(n)
            rhs[: self.nu_dofs] = mass @ hist
            x_new = x.copy()
            x_new[free] = 0.0
            r = rhs - K @ x_new
            x_new[free] = spla.spsolve(K[free][:, free].tocsc(), r[free])
            u_old, x = u_now, x_new
            t = k * dt
            if dofs is not None:
                u_t = mass @ (a0 * x[: self.nu_dofs] - hist)
                res = self.residual_vector(x[: self.nu_dofs + self.np_dofs])[: self.nu_dofs]
                res = res + u_t
                times.append(t)
                fx.append(-float(res[dofs[0]].sum()))
                fy.append(-float(res[dofs[1]].sum()))
            if callback is not None:
                callback(t, FlowState(x[: self.nu_dofs + self.np_dofs].copy()))
        return {"t": np.array(times), "f_x": np.array(fx), "f_y": np.array(fy)}

    def _project(self, x: np.ndarray, mass, free: np.ndarray) -> np.ndarray:
        """The velocity of ``x`` projected in L2 onto the discretely divergence-free ones with
        its Dirichlet values (M v + B q = M u, B^T v = 0); the pressure entries zero."""
        K = self._system(0.0, mass)
        rhs = np.zeros(x.size)
        rhs[: self.nu_dofs] = mass @ x[: self.nu_dofs]
        out = np.zeros_like(x)
        out[self.fixed] = x[self.fixed]
        r = rhs - K @ out
        out[free] = spla.spsolve(K[free][:, free].tocsc(), r[free])
        out[self.nu_dofs :] = 0.0
        return out

    def _advection(self, w):
        """The matrix of (w . grad) u tested with the velocity test functions."""
        skfem = _skfem()
        from skfem.helpers import dot, grad, mul

        @skfem.BilinearForm
        def form(u, v, m):
            return dot(mul(grad(u), m["w"]), v)

        return form.assemble(self.ubasis, w=self.ubasis.interpolate(w))

    # -- quantities -------------------------------------------------------------------------
    def forces(self, state: FlowState, part: str, nu: float | None = None) -> np.ndarray:
        """The force (F_x, F_y) of the fluid on the boundary part ``part`` (per unit depth):
        minus the residual of the momentum equations tested with the unit vectors on the
        velocity dofs of ``part`` (and zero elsewhere, also on the dofs it shares with another
        Dirichlet part: :meth:`force_dofs`). Exact for the discrete solution of the
        weak form; converges at the order of the velocity's H1 error squared."""
        if part not in self.parts:
            raise ParameterError(f"unknown boundary part {part!r}; parts: {list(self.parts)}")
        r = self.residual_vector(np.asarray(state.x), nu)[: self.nu_dofs]
        return np.array([-float(r[idx].sum()) for idx in self.force_dofs(part)])

    def boundary_forces(self, state: FlowState, part: str) -> np.ndarray:
        """The force on ``part`` by the boundary integral of the stress
        ``sigma n = nu grad(u) n - p n`` (n the outward normal of the fluid; the force on the
        body is minus its integral), for comparison with :meth:`forces`."""
        skfem = _skfem()
        from skfem.helpers import grad, mul

        facets = self.mesh.boundaries[part]
        fb_u = skfem.FacetBasis(self.mesh, self.element, facets=facets, intorder=6)
        fb_p = skfem.FacetBasis(self.mesh, skfem.ElementTriP1(), facets=facets, intorder=6)
        u = fb_u.interpolate(np.asarray(state.x[: self.nu_dofs]))
        p = fb_p.interpolate(np.asarray(state.x[self.nu_dofs : self.nu_dofs + self.np_dofs]))
        out = []
        for comp in range(2):

            @skfem.Functional
            def traction(m, comp=comp):
                sigma_n = self.nu * mul(grad(m["u"]), m.n)[comp] - m["p"] * m.n[comp]
                return -sigma_n

            out.append(float(traction.assemble(fb_u, u=u, p=p)))
        return np.array(out)

    def _scalar_dofs(self):
        """Per triangle: the scalar P2 dofs (3 vertices, then the edges 01, 12, 02) and the
        P1 dofs; the two velocity components' coefficient indices."""
        if not hasattr(self, "_dofs"):
            skfem = _skfem()
            scalar = skfem.Basis(self.mesh, skfem.ElementTriP2(), intorder=1)
            comps = self.ubasis.split_indices()
            flat = np.ascontiguousarray(self.mesh.p.T)
            self._dofs = (
                scalar.element_dofs.T,
                self.pbasis.element_dofs.T,
                comps,
                scalar.doflocs,
                _locator(flat, self.mesh.t.T),
            )
        return self._dofs

    def evaluate(
        self, state: FlowState, points: np.ndarray, outside: float | None = None
    ) -> dict[str, np.ndarray]:
        """u, v, p at ``points`` (n, 2): points are located in the straight-sided triangles,
        and in the curved ones (isoparametric, along a circle) mapped back to the reference
        triangle by Newton's method, so values at the degrees of freedom are the coefficients.
        Points outside the mesh get ``outside`` (default: ValueError); points in the slivers
        between a straight edge and its arc count as inside (their value extrapolates the
        curved triangle's fields)."""
        p2, p1, comps, _, locator = self._scalar_dofs()
        pts = np.asarray(points, dtype=float)[:, :2]
        index, bary = locator.locate(np.ascontiguousarray(pts))
        missing = index < 0
        if missing.any() and outside is None:
            raise ValueError(
                f"{int(missing.sum())} of {len(pts)} points lie outside the mesh, first "
                f"{pts[np.flatnonzero(missing)[0]].tolist()}"
            )
        cell = np.where(missing, 0, index)
        lam = np.asarray(bary, dtype=float).copy()
        inside = ~missing
        lam[inside] = _isoparametric(
            pts[inside], lam[inside], self._scalar_dofs()[3], p2[cell[inside]]
        )
        shape = _p2(lam)
        x = np.asarray(state.x)
        uv, pv = x[: self.nu_dofs], x[self.nu_dofs : self.nu_dofs + self.np_dofs]
        out = {}
        for name, comp in zip(("u", "v"), comps):
            out[name] = np.einsum("nk,nk->n", shape, uv[comp][p2[cell]])
        out["p"] = np.einsum("nk,nk->n", lam, pv[p1[cell]])
        if missing.any():
            for v in out.values():
                v[missing] = outside
        return out

    def interpolate(self, solution: Callable[[np.ndarray], Mapping[str, np.ndarray]]) -> FlowState:
        """The P2/P1 interpolant of a flow given as a callable on points (n, 2) returning
        ``{"u", "v", "p"}``: its values at the degrees of freedom (on the curved mesh: the
        midpoints of the curved edges lie on the circle)."""
        _, _, comps, scalar_locs, _ = self._scalar_dofs()
        x = np.zeros(self.nu_dofs + self.np_dofs)
        vel = solution(np.ascontiguousarray(scalar_locs.T))
        for name, comp in zip(("u", "v"), comps):
            x[comp] = np.asarray(vel[name], dtype=float).reshape(-1)
        pres = solution(np.ascontiguousarray(self.pbasis.doflocs.T))
        x[self.nu_dofs :] = np.asarray(pres["p"], dtype=float).reshape(-1)
        return FlowState(x)


def _p2(lam: np.ndarray) -> np.ndarray:
    """The six P2 shape functions (vertices 0, 1, 2; edges 01, 12, 02) at barycentric ``lam``."""
    l0, l1, l2 = lam[:, 0], lam[:, 1], lam[:, 2]
    return np.stack(
        [
            l0 * (2 * l0 - 1),
            l1 * (2 * l1 - 1),
            l2 * (2 * l2 - 1),
            4 * l0 * l1,
            4 * l1 * l2,
            4 * l0 * l2,
        ],
        axis=1,
    )


def _isoparametric(points, lam, doflocs, dofs, steps: int = 8):
    """Barycentric coordinates of ``points`` in their quadratic triangles (geometric nodes
    ``doflocs[:, dofs]``, (n, 6) per point) by Newton's method from the straight-sided ones
    ``lam``; exact (unchanged) where the triangle is straight."""
    if len(points) == 0:
        return lam
    nodes = doflocs[:, dofs].transpose(1, 0, 2)  # (n, 2, 6)
    corners = nodes[:, :, :3]
    mids = 0.5 * (corners[:, :, [0, 1, 0]] + corners[:, :, [1, 2, 2]])
    curved = np.abs(nodes[:, :, 3:] - mids).max(axis=(1, 2)) > 1e-14 * (
        1.0 + np.abs(corners).max(axis=(1, 2))
    )
    if not curved.any():
        return lam
    out = lam.copy()
    x, xy, sub = points[curved], nodes[curved], lam[curved].copy()
    for _ in range(steps):
        res = np.einsum("njk,nk->nj", xy, _p2(sub)) - x
        l0, l1, l2 = sub[:, 0], sub[:, 1], sub[:, 2]
        # derivatives of the shape functions along xi = l1 and eta = l2 (l0 = 1 - xi - eta)
        zero = np.zeros_like(l0)
        d_xi = np.stack([1 - 4 * l0, 4 * l1 - 1, zero, 4 * (l0 - l1), 4 * l2, -4 * l2], 1)
        d_eta = np.stack([1 - 4 * l0, zero, 4 * l2 - 1, -4 * l1, 4 * l1, 4 * (l0 - l2)], 1)
        jac = np.stack(
            [np.einsum("njk,nk->nj", xy, d_xi), np.einsum("njk,nk->nj", xy, d_eta)], axis=2
        )
        step = np.linalg.solve(jac, -res[..., None])[..., 0]
        sub[:, 1] += step[:, 0]
        sub[:, 2] += step[:, 1]
        sub[:, 0] = 1.0 - sub[:, 1] - sub[:, 2]
        if np.abs(step).max() < 1e-14:
            break
    out[curved] = sub
    return out


def _locator(points: np.ndarray, triangles: np.ndarray):
    from pdekit.core.locate import SimplexLocator

    return SimplexLocator(points, triangles)
