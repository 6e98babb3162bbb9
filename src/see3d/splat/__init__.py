"""3D Gaussian splatting: the `Gaussians` type and its .ply I/O, rasterizers behind one `render`
(torch reference, numba CPU fast path, gsplat on CUDA), optimisation from posed images
(:mod:`see3d.splat.optimize`, :func:`see3d.splat.reconstruct.reconstruct`) and exports
(.ply, flythrough video, TSDF mesh: :mod:`see3d.splat.export`)."""

from see3d.splat.config import ReconstructConfig
from see3d.splat.gaussians import Gaussians, read_ply, write_ply
from see3d.splat.rasterize import render

__all__ = ["Gaussians", "ReconstructConfig", "read_ply", "render", "write_ply"]
