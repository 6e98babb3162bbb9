"""Resumable training checkpoints and the exported model.

Layout under the output folder::

    checkpoints/step-00000500/     accelerate state (model.safetensors, optimizer.bin, scheduler.bin,
                                   random_states_<rank>.pkl) + ema.safetensors + trainer_state.json
    unet/                          the final UNet (EMA weights when EMA is on): config.json + safetensors
    unet_nonema/                   the raw trained weights (only with EMA)

A checkpoint folder is written under a temporary name and renamed when complete, so a run killed at
any moment leaves only whole checkpoints; :func:`latest_checkpoint` ignores temporaries. Everything is
read back with safetensors or ``torch.load(weights_only=True)`` (accelerate's loader).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from see3d.errors import InputError
from see3d.io.atomic import atomic_path, write_json_atomic
from see3d.io.outdir import replace_dir
from see3d.log import get_logger

log = get_logger(__name__)

CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints ``(step, folder)``, oldest first."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / "trainer_state.json").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(output_dir: Path) -> tuple[int, Path] | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def save_ema(ema, path: Path) -> None:
    """EMA shadow weights (safetensors) + its counters (JSON metadata), atomically."""
    tensors = {f"p{i:05d}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)}
    meta = {"optimization_step": str(ema.optimization_step), "decay": repr(float(ema.decay))}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_ema(ema, path: Path) -> None:
    """Restore :func:`save_ema` output into a diffusers ``EMAModel`` (same parameter list)."""
    from safetensors import safe_open

    tensors = load_file(str(path))
    if len(tensors) != len(ema.shadow_params):
        raise InputError(path, f"EMA checkpoint has {len(tensors)} tensors, the model has {len(ema.shadow_params)} parameters")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    for i, p in enumerate(ema.shadow_params):
        p.data.copy_(tensors[f"p{i:05d}"].to(p.device, p.dtype))
    ema.optimization_step = int(meta.get("optimization_step", ema.optimization_step))


def save_checkpoint(accelerator, output_dir: Path, step: int, ema=None, state: dict | None = None, keep: int = 3) -> Path:
    """Save a resumable checkpoint of every prepared object (call on all processes)."""
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(f".tmp-{final.name}")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    if accelerator.is_main_process:
        if ema is not None:
            save_ema(ema, tmp / "ema.safetensors")
        write_json_atomic(tmp / "trainer_state.json", {"step": step, **(state or {})})
        replace_dir(tmp, final)
        for _, old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
        log.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, folder: Path, ema=None) -> dict:
    """Restore a checkpoint written by :func:`save_checkpoint`; returns its trainer_state.json."""
    folder = Path(folder)
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(folder, f"not a complete training checkpoint ({e})") from e
    accelerator.load_state(str(folder))
    if ema is not None:
        if (folder / "ema.safetensors").is_file():
            load_ema(ema, folder / "ema.safetensors")
        else:
            log.warning("%s has no EMA weights; EMA restarts from the current model", folder)
            ema.shadow_params = [p.clone().detach() for p in ema.shadow_params]
    return state


def resume_latest(accelerator, output_dir: Path, ema=None) -> tuple[dict, Path] | None:
    """Restore the newest checkpoint in ``output_dir`` that loads; returns ``(trainer_state, folder)`` or None when
    there is none. A damaged checkpoint (e.g. a truncated file) is skipped with a warning for the previous one;
    :class:`InputError` when every checkpoint is damaged."""
    import pickle

    from safetensors import SafetensorError

    found = list_checkpoints(output_dir)
    errors = []
    for _, folder in reversed(found):
        try:
            return load_checkpoint(accelerator, folder, ema), folder
        except (InputError, SafetensorError, OSError, RuntimeError, ValueError, EOFError, KeyError, pickle.UnpicklingError) as e:
            errors.append(f"{folder.name}: {type(e).__name__}: {e}")
            log.warning("checkpoint %s is damaged (%s: %s); falling back to the previous one", folder, type(e).__name__, e)
    if found:
        raise InputError(Path(output_dir) / CHECKPOINTS, "no checkpoint could be loaded (" + "; ".join(errors) + ")")
    return None


def save_model_folder(model, folder: Path) -> Path:
    """``save_pretrained`` (config.json + safetensors) into a temporary folder, then rename onto ``folder``."""
    folder = Path(folder)
    tmp = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    replace_dir(tmp, folder)
    return folder


@contextlib.contextmanager
def ema_weights(model: torch.nn.Module, ema):
    """Temporarily swap the EMA weights into ``model`` (no-op when ``ema`` is None)."""
    if ema is None:
        yield model
        return
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    try:
        yield model
    finally:
        ema.restore(model.parameters())
