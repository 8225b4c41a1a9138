"""The incompressible Navier-Stokes equations in primitive variables, written once.

    u_t + u u_x + v u_y + p_x - nu (u_xx + u_yy) = 0
    v_t + u v_x + v v_y + p_y - nu (v_xx + v_yy) = 0
    u_x + v_y = 0

(density 1). Problems in (u, v, p) call :func:`navier_stokes_2d` from their ``residual``, and
problems in (u, v, w, p) on (x, y, z) call :func:`navier_stokes_3d`; the steady problems leave
out the time derivatives.
"""

from __future__ import annotations

#: the derivatives :func:`navier_stokes_2d` reads (declare these on the problem); the viscous
#: term asks for the Laplacian as one quantity, which the Taylor engine carries in one slot
#: instead of two (u_xx and u_yy are never needed on their own)
STEADY_DERIVATIVES = {
    "u": ("x", "y", "laplacian"),
    "v": ("x", "y", "laplacian"),
    "p": ("x", "y"),
}
UNSTEADY_DERIVATIVES = {
    "u": ("t", "x", "y", "laplacian"),
    "v": ("t", "x", "y", "laplacian"),
    "p": ("x", "y"),
}


def navier_stokes_2d(f, nu: float, unsteady: bool) -> dict:
    """Momentum (x, y) and continuity residuals of the fields ``f`` (any engine)."""
    u, v = f["u"], f["v"]
    mx = u * f.d("u", "x") + v * f.d("u", "y") + f.d("p", "x") - nu * f.laplacian("u")
    my = u * f.d("v", "x") + v * f.d("v", "y") + f.d("p", "y") - nu * f.laplacian("v")
    if unsteady:
        mx = f.d("u", "t") + mx
        my = f.d("v", "t") + my
    return {"momentum_x": mx, "momentum_y": my, "continuity": f.d("u", "x") + f.d("v", "y")}


#: the derivatives :func:`navier_stokes_3d` reads with ``unsteady=True``
UNSTEADY_DERIVATIVES_3D = {
    "u": ("t", "x", "y", "z", "laplacian"),
    "v": ("t", "x", "y", "z", "laplacian"),
    "w": ("t", "x", "y", "z", "laplacian"),
    "p": ("x", "y", "z"),
}


def navier_stokes_3d(f, nu: float, unsteady: bool) -> dict:
    """Momentum (x, y, z) and continuity residuals of the 3D fields ``f`` (any engine).

    The equations, density 1 (the v and w momentum alike, with p_y and p_z)::

        u_t + u u_x + v u_y + w u_z + p_x - nu lap u = 0
        u_x + v_y + w_z = 0
    """
    u, v, w = f["u"], f["v"], f["w"]
    out = {}
    for field, axis in (("u", "x"), ("v", "y"), ("w", "z")):
        m = (
            u * f.d(field, "x")
            + v * f.d(field, "y")
            + w * f.d(field, "z")
            + f.d("p", axis)
            - nu * f.laplacian(field)
        )
        out[f"momentum_{axis}"] = f.d(field, "t") + m if unsteady else m
    out["continuity"] = f.d("u", "x") + f.d("v", "y") + f.d("w", "z")
    return out
