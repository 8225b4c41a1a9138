"""The cube [-1, 1]^3 minus a ball at its centre, as a gmsh tetrahedral mesh.

The example of a user's 3D mesh (``pdekit solve navier_stokes/beltrami --set mesh=...``): the
ball of radius 0.4 centred at the origin is cut out of the cube by gmsh's OpenCASCADE kernel
(the ``gmsh`` package's Python API), and the rest is meshed with tetrahedra of size ``h_outer``
on the cube's faces, ``h_hole`` on the sphere and growing linearly between. Physical groups:
surfaces ``outer`` (the six faces of the cube) and ``hole`` (the sphere); volume ``domain``.

Regenerate the shipped mesh (deterministic: one thread, fixed seed)::

    python -m pdekit.meshes.box_with_hole           # writes pdekit/meshes/box_with_hole.msh
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pdekit.meshes import gmsh_model, write_mesh

#: half the side of the cube [-HALF, HALF]^3 and the radius of the ball cut out of it
HALF, RADIUS = 1.0, 0.4
#: default sizes of the shipped mesh: on the cube's faces and on the sphere
H_OUTER, H_HOLE = 0.4, 0.15


def build(
    path: str | Path, radius: float = RADIUS, h_outer: float = H_OUTER, h_hole: float = H_HOLE
) -> Path:
    """Mesh the cube minus the ball with gmsh and write it to ``path`` (gmsh 4.1 ASCII)."""
    with gmsh_model("box_with_hole") as gmsh:
        occ = gmsh.model.occ
        cube = occ.addBox(-HALF, -HALF, -HALF, 2 * HALF, 2 * HALF, 2 * HALF)
        ball = occ.addSphere(0.0, 0.0, 0.0, radius)
        (domain,), _ = occ.cut([(3, cube)], [(3, ball)])
        occ.synchronize()
        groups: dict[str, list[int]] = {"outer": [], "hole": []}
        for _, surface in gmsh.model.getBoundary([domain], oriented=False):
            x, y, z = occ.getCenterOfMass(2, abs(surface))
            # the cube's faces have their centres on the cube's surface, the sphere at 0
            name = "outer" if max(abs(x), abs(y), abs(z)) > HALF / 2 else "hole"
            groups[name].append(abs(surface))
        for tag, (name, surfaces) in enumerate(groups.items(), start=1):
            gmsh.model.addPhysicalGroup(2, surfaces, tag, name=name)
        gmsh.model.addPhysicalGroup(3, [domain[1]], 3, name="domain")

        field = gmsh.model.mesh.field
        dist = field.add("Distance")
        field.setNumbers(dist, "SurfacesList", groups["hole"])
        ramp = field.add("Threshold")
        field.setNumber(ramp, "InField", dist)
        field.setNumber(ramp, "SizeMin", h_hole)
        field.setNumber(ramp, "SizeMax", h_outer)
        field.setNumber(ramp, "DistMin", 0.0)
        field.setNumber(ramp, "DistMax", HALF - radius)
        return write_mesh(gmsh, path, 3, ramp)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".msh")))
    parser.add_argument("--radius", type=float, default=RADIUS)
    parser.add_argument("--h-outer", type=float, default=H_OUTER)
    parser.add_argument("--h-hole", type=float, default=H_HOLE)
    args = parser.parse_args(argv)
    out = build(args.out, args.radius, args.h_outer, args.h_hole)
    print("wrote", out)


if __name__ == "__main__":
    main()
