"""Loading multi-view UNet weights: the official checkpoint folders and SD-2.1 / MVDream LDM weights.

The functions here take the model class or instance they fill, so this module does not import
:mod:`see3d.models.mv_unet` (which imports it for ``MultiViewUNet.from_pretrained`` / :func:`load_mv_unet`).

Official layout (HF ``bruiiii/See3D``, ``checkpoint/MVD_weights/unet/{single,sparse,SR}/ema-checkpoint``)::

    config.json                                  # MultiViewUNet constructor arguments (official names)
    diffusion_pytorch_model.safetensors          # or .bin, or a sharded .safetensors + .index.json; fp16

Weights are only ever read with :mod:`safetensors` or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from see3d.errors import WeightsError
from see3d.io.weights import read_state_dict
from see3d.log import get_logger

log = get_logger(__name__)

@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence the noise of diffusers / transformers model loading on stderr: their progress bars, the
    ``torch_dtype`` deprecation FutureWarning (the argument still works in every supported version) and
    info-level config notes. Real errors still raise; see3d's own warnings are unaffected."""
    import warnings

    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    d_level, t_level = dlog.get_verbosity(), tlog.get_verbosity()
    d_bars, t_bars = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*`?torch_dtype`? is deprecated.*", category=FutureWarning)
            yield
    finally:
        dlog.set_verbosity(d_level)
        tlog.set_verbosity(t_level)
        if d_bars:
            dlog.enable_progress_bar()
        if t_bars:
            tlog.enable_progress_bar()


WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin",
    "model.safetensors",
)
IGNORED_PREFIXES = ("camera_embed.",)  # MVDream's camera MLP; See3D never passes a camera
LDM_PREFIX = "model.diffusion_model."


def find_weights_file(folder: str | Path) -> Path:
    """The weights file of a model folder (safetensors preferred over .bin)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(folder, "model folder not found")
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise WeightsError(folder, f"no weights file in the folder (expected one of {', '.join(WEIGHT_NAMES)})")


def read_model_config(folder: str | Path, cls: type) -> dict:
    """``config.json`` of a UNet folder, reduced to the arguments of ``cls.__init__`` (others are logged and dropped)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise WeightsError(path, "UNet config.json not found")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise WeightsError(path, f"not valid JSON ({e})") from e
    params = inspect.signature(cls.__init__).parameters
    cfg = {k: v for k, v in raw.items() if k in params and k != "self"}
    ignored = sorted(k for k in raw if k not in cfg and not k.startswith("_"))
    if ignored:
        log.debug("%s: ignoring config keys %s", path, ignored)
    missing = [k for k, p in params.items() if k != "self" and p.default is inspect.Parameter.empty and k not in cfg]
    if missing:
        raise WeightsError(path, f"UNet config lacks required keys {missing}")
    return cfg


def check_and_load(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | Path, assign: bool = False) -> None:
    """Load ``state_dict`` into ``model`` by name, dropping ignorable keys (``camera_embed.*``).

    Raises :class:`WeightsError` naming ``source`` when a model key is missing or a shape differs; keys the model
    does not have are logged as a warning and skipped (diffusers' behaviour).
    """
    expected = model.state_dict()
    sd = {k: v for k, v in state_dict.items() if not k.startswith(IGNORED_PREFIXES)}
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [
        f"{k} {tuple(sd[k].shape)} (model {tuple(expected[k].shape)})" for k in expected if k in sd and sd[k].shape != expected[k].shape
    ]
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:4])})")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches (e.g. {'; '.join(wrong[:3])})")
        raise WeightsError(source, "weights do not match the model config: " + "; ".join(parts))
    if unexpected:
        log.warning("%s: ignoring %d keys the model does not use (e.g. %s)", source, len(unexpected), ", ".join(unexpected[:4]))
        sd = {k: v for k, v in sd.items() if k in expected}
    model.load_state_dict(sd, strict=True, assign=assign)


def load_model(cls: type, folder: str | Path, dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build a ``cls`` (a diffusers ``ModelMixin`` + ``ConfigMixin``, e.g. :class:`~see3d.models.mv_unet.MultiViewUNet`)
    from a checkpoint folder (``config.json`` + weights).

    The model is built on the meta device and the (fp16) tensors are assigned, so loading the 865 M-parameter
    UNet needs no extra fp32 copy. ``dtype=None`` gives float32 (the diffusers default); the returned model is in
    eval mode on ``device``.
    """
    folder = Path(folder)
    cfg = read_model_config(folder, cls)
    weights = find_weights_file(folder)
    try:
        with torch.device("meta"):
            model = cls.from_config(cfg)
    except (ValueError, TypeError) as e:
        raise WeightsError(folder / "config.json", f"unsupported UNet config: {e}") from e
    dtype = dtype or torch.float32
    sd = {k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in read_state_dict(weights).items()}
    check_and_load(model, sd, weights, assign=True)
    return model.eval()


def ldm_unet_state_dict(source: str | Path | Mapping[str, torch.Tensor], prefix: str | None = None) -> dict[str, torch.Tensor]:
    """The UNet part of an LDM checkpoint (SD-2.1 ``.ckpt``/``.safetensors``, MVDream ``.pt``) with ``prefix``
    (default: ``model.diffusion_model.`` when present) removed."""
    sd = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
    if prefix is None:
        prefix = LDM_PREFIX if any(k.startswith(LDM_PREFIX) for k in sd) else ""
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def init_from_ldm_unet(model: torch.nn.Module, source: str | Path | Mapping[str, torch.Tensor], prefix: str | None = None) -> torch.nn.Module:
    """Initialise ``model`` from SD-2.1 / MVDream UNet weights in LDM naming (the See3D training start point).

    The input convolution ``input_blocks.0.0.weight`` is widened from the source's channels (4) to the model's
    (9): the first channels are copied and the new ones (condition latent + mask) are zero, so the widened model
    initially ignores the visual condition (ControlNet-style zero init). All other keys must match by name and
    shape; ``camera_embed.*`` is dropped. Returns ``model`` (loaded in place, in its dtype and device).
    """
    name = str(source) if isinstance(source, (str, Path)) else "<state dict>"
    sd = ldm_unet_state_dict(source, prefix)
    key = "input_blocks.0.0.weight"
    target = model.state_dict()[key]
    if key in sd and sd[key].shape != target.shape:
        src = sd[key]
        if src.shape[0] != target.shape[0] or src.shape[2:] != target.shape[2:] or src.shape[1] > target.shape[1]:
            raise WeightsError(name, f"{key} has shape {tuple(src.shape)}, cannot widen to {tuple(target.shape)}")
        wide = torch.zeros(target.shape, dtype=src.dtype)
        wide[:, : src.shape[1]] = src
        sd[key] = wide
    check_and_load(model, sd, name)
    return model
