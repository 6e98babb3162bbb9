"""3D Gaussian splatting: the `Gaussians` type, rasterizers (torch reference, CPU fast path, gsplat),
optimisation from posed images, and exports (.ply, flythrough video, TSDF mesh)."""

from see3d.splat.gaussians import Gaussians, read_ply, write_ply

__all__ = ["Gaussians", "read_ply", "write_ply"]
