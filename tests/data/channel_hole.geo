// 2D channel with a circular hole: the DFG flow-around-a-cylinder geometry
// (Schaefer & Turek 1996): [0, 2.2] x [0, 0.41], cylinder centre (0.2, 0.2), radius 0.05.
// Coarse on purpose: a small test mesh. Regenerate with tests/data/make_meshes.py.
lc_out = 0.06;
lc_cyl = 0.015;
Point(1) = {0, 0, 0, lc_out};
Point(2) = {2.2, 0, 0, lc_out};
Point(3) = {2.2, 0.41, 0, lc_out};
Point(4) = {0, 0.41, 0, lc_out};
Point(5) = {0.2, 0.2, 0, lc_cyl};
Point(6) = {0.25, 0.2, 0, lc_cyl};
Point(7) = {0.2, 0.25, 0, lc_cyl};
Point(8) = {0.15, 0.2, 0, lc_cyl};
Point(9) = {0.2, 0.15, 0, lc_cyl};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 1};
Circle(5) = {6, 5, 7};
Circle(6) = {7, 5, 8};
Circle(7) = {8, 5, 9};
Circle(8) = {9, 5, 6};
Curve Loop(1) = {1, 2, 3, 4};
Curve Loop(2) = {5, 6, 7, 8};
Plane Surface(1) = {1, 2};
Physical Curve("inlet", 1) = {4};
Physical Curve("outlet", 2) = {2};
Physical Curve("wall", 3) = {1, 3};
Physical Curve("cylinder", 4) = {5, 6, 7, 8};
Physical Surface("fluid", 5) = {1};
