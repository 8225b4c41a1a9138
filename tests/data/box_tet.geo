// 3D tetrahedral box [0, 1]^3 with tagged faces: inlet (x = 0), outlet (x = 1), wall (the rest).
// Coarse on purpose: a small test mesh. Regenerate with tests/data/make_meshes.py.
lc = 0.2;
Point(1) = {0, 0, 0, lc};
Point(2) = {1, 0, 0, lc};
Point(3) = {1, 1, 0, lc};
Point(4) = {0, 1, 0, lc};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 1};
Curve Loop(1) = {1, 2, 3, 4};
Plane Surface(1) = {1};
out[] = Extrude {0, 0, 1} { Surface{1}; };
// out[0]: top (z = 1), out[1]: volume, out[2..5]: the sides extruded from lines 1..4
Physical Surface("inlet", 1) = {out[5]};
Physical Surface("outlet", 2) = {out[3]};
Physical Surface("wall", 3) = {1, out[0], out[2], out[4]};
Physical Volume("solid", 4) = {out[1]};
