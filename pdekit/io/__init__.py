"""Output: VTK for ParaView (pyvista), HDF5 fields, matplotlib plots."""
