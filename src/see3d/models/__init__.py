"""Diffusion models: the See3D multi-view UNet and its weight loading."""

from see3d.io.weights import read_state_dict
from see3d.models.loading import init_from_ldm_unet
from see3d.models.mv_unet import MultiViewUNet, load_mv_unet

__all__ = ["MultiViewUNet", "init_from_ldm_unet", "load_mv_unet", "read_state_dict"]
