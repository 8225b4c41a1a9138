"""The DFG flow-around-a-cylinder channel (Schafer & Turek 1996) as a gmsh triangle mesh.

The channel [0, 2.2] x [0, 0.41] minus the disk of radius 0.05 centred at (0.2, 0.2), meshed
by gmsh's Python API (the ``gmsh`` package) with triangles of size ``h_cylinder`` on the
cylinder, growing linearly with the distance from it to ``h_far`` (reached 0.3 away), and at
most ``h_wake`` in the wake box [0.15, 1.0] x [0.1, 0.31]. Physical groups: curves ``inlet``
(x = 0), ``outlet`` (x = 2.2), ``walls`` (y = 0 and y = 0.41), ``cylinder``; surface ``fluid``.

Regenerate the shipped mesh (deterministic: one thread, fixed seed)::

    python -m pdekit.meshes.dfg_cylinder            # writes pdekit/meshes/dfg_cylinder.msh
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pdekit.meshes import gmsh_model, write_mesh

#: the channel, the cylinder (centre, radius) of the DFG benchmark
LENGTH, HEIGHT = 2.2, 0.41
CENTRE, RADIUS = (0.2, 0.2), 0.05
#: default sizes of the shipped mesh
H_CYLINDER, H_WAKE, H_FAR = 0.008, 0.025, 0.05


def build(
    path: str | Path,
    h_cylinder: float = H_CYLINDER,
    h_wake: float = H_WAKE,
    h_far: float = H_FAR,
) -> Path:
    """Mesh the DFG channel with gmsh and write it to ``path`` (gmsh 4.1 ASCII)."""
    with gmsh_model("dfg_cylinder") as gmsh:
        occ = gmsh.model.occ
        box = occ.addRectangle(0.0, 0.0, 0.0, LENGTH, HEIGHT)
        disk = occ.addDisk(CENTRE[0], CENTRE[1], 0.0, RADIUS, RADIUS)
        (fluid,), _ = occ.cut([(2, box)], [(2, disk)])
        occ.synchronize()
        groups = {"inlet": [], "outlet": [], "walls": [], "cylinder": []}
        for _, curve in gmsh.model.getBoundary([fluid], oriented=False):
            x, y, _ = occ.getCenterOfMass(1, abs(curve))
            if x < 1e-6:
                groups["inlet"].append(abs(curve))
            elif x > LENGTH - 1e-6:
                groups["outlet"].append(abs(curve))
            elif y < 1e-6 or y > HEIGHT - 1e-6:
                groups["walls"].append(abs(curve))
            else:
                groups["cylinder"].append(abs(curve))
        for tag, (name, curves) in enumerate(groups.items(), start=1):
            gmsh.model.addPhysicalGroup(1, curves, tag, name=name)
        gmsh.model.addPhysicalGroup(2, [fluid[1]], 5, name="fluid")

        field = gmsh.model.mesh.field
        dist = field.add("Distance")
        field.setNumbers(dist, "CurvesList", groups["cylinder"])
        field.setNumber(dist, "Sampling", 200)
        ramp = field.add("Threshold")
        field.setNumber(ramp, "InField", dist)
        field.setNumber(ramp, "SizeMin", h_cylinder)
        field.setNumber(ramp, "SizeMax", h_far)
        field.setNumber(ramp, "DistMin", 0.0)
        field.setNumber(ramp, "DistMax", 0.3)
        wake = field.add("Box")
        for key, value in {
            "VIn": h_wake,
            "VOut": h_far,
            "XMin": 0.15,
            "XMax": 1.0,
            "YMin": 0.1,
            "YMax": 0.31,
        }.items():
            field.setNumber(wake, key, value)
        both = field.add("Min")
        field.setNumbers(both, "FieldsList", [ramp, wake])
        return write_mesh(gmsh, path, 2, both)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".msh")))
    parser.add_argument("--h-cylinder", type=float, default=H_CYLINDER)
    parser.add_argument("--h-wake", type=float, default=H_WAKE)
    parser.add_argument("--h-far", type=float, default=H_FAR)
    args = parser.parse_args(argv)
    out = build(args.out, args.h_cylinder, args.h_wake, args.h_far)
    print("wrote", out)


if __name__ == "__main__":
    main()
