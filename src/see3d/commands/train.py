"""`see3d train --data CLIPS --output-dir OUT`: train the See3D multi-view diffusion on pose-free clips."""

from __future__ import annotations

import argparse
import dataclasses

NAME = "train"
HELP = "train the multi-view diffusion model on pose-free clips (curation output, videos or a synth set)"
DESCRIPTION = (
    "Train See3D's multi-view UNet with the time-dependent visual condition on pose-free video clips. "
    "Resumes from the newest checkpoint in --output-dir. For several processes/GPUs run it under "
    "`accelerate launch -m see3d.cli train ...` or `torchrun --nproc_per_node K -m see3d.cli train ...`. "
    "--preset small is the CPU reproduction config (64x64, pixel space, tiny UNet); options given explicitly override the preset."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from see3d.config import add_dataclass_args
    from see3d.train.config import TrainConfig

    add_dataclass_args(parser, TrainConfig)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for action in parser._actions:
        if action.dest in names:
            action.default = argparse.SUPPRESS  # keep only what the user typed, so presets can fill the rest


def config_from_args(args: argparse.Namespace):
    """TrainConfig from the parsed options: the preset's values, overridden by every option given."""
    from see3d.errors import InputError, OptionError
    from see3d.train.config import TrainConfig
    from see3d.train.small_model import small_train_config

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if "data" not in given:
        raise InputError(None, "--data is required (curation output folder, folder of videos, or a synth set)")
    try:
        if given.get("preset") == "small":
            return small_train_config(given.pop("data"), given.pop("output_dir", "train_out"), **given)
        return TrainConfig(**given)
    except OptionError as e:
        raise e.as_option() from None


def run(args: argparse.Namespace) -> int:
    from see3d.train.trainer import train

    result = train(config_from_args(args))
    if result.unet_dir is not None:
        state = "finished" if result.finished else "stopped early (rerun the same command to continue)"
        last = f", last loss {result.losses[-1][1]:.4f}" if result.losses else ""
        print(f"see3d train: {state} at step {result.step}{last}; UNet in {result.unet_dir}")
    return 0
