"""Regenerate the gmsh test meshes of this folder from their ``.geo`` descriptions.

Needs the ``gmsh`` command (Debian: ``apt-get install gmsh``; these files were written by gmsh
4.8.4). gmsh is not a dependency of pdekit: only this script uses it. Run from anywhere::

    python tests/data/make_meshes.py

Writes

* ``channel_hole.msh``: 2D channel with a circular hole (DFG cylinder geometry), gmsh 4.1 ASCII;
  physical curves inlet/outlet/wall/cylinder, physical surface fluid;
* ``channel_hole_v2.msh``: the same mesh in gmsh 2.2 ASCII;
* ``box_tet.msh``: tetrahedral unit cube, gmsh 4.1 binary; physical surfaces inlet (x = 0),
  outlet (x = 1), wall (the other four faces), physical volume solid.
"""

from __future__ import annotations

import pathlib
import subprocess

HERE = pathlib.Path(__file__).resolve().parent

JOBS = [
    ("channel_hole.geo", "-2", ["-format", "msh41"], "channel_hole.msh"),
    ("channel_hole.geo", "-2", ["-format", "msh22"], "channel_hole_v2.msh"),
    ("box_tet.geo", "-3", ["-format", "msh41", "-bin"], "box_tet.msh"),
]


def main() -> None:
    for geo, dim, options, out in JOBS:
        cmd = ["gmsh", dim, str(HERE / geo), *options, "-o", str(HERE / out)]
        subprocess.run(cmd, check=True, capture_output=True)
        print("wrote", HERE / out)


if __name__ == "__main__":
    main()
