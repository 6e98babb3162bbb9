"""``see3d synth``: write a labelled set of synthetic multi-view clips (no downloads needed)."""

from __future__ import annotations

import argparse

from see3d.config import add_dataclass_args, dataclass_from_args
from see3d.errors import InputError

NAME = "synth"
HELP = "render a labelled set of synthetic clips (good multi-view clips and curation rejects)"
DESCRIPTION = (
    "Render procedural scenes to clips: DIR/<clip_id>.mp4 plus DIR/<clip_id>/ with images/, depth/ (metres), "
    "transforms.json and label.json, and DIR/labels.json listing every clip's label and reason."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from see3d.synth.dataset import SynthSetConfig

    add_dataclass_args(parser, SynthSetConfig)


def run(args: argparse.Namespace) -> int:
    from see3d.synth.dataset import SynthSetConfig, write_labeled_set

    cfg = dataclass_from_args(SynthSetConfig, args)
    try:
        records = write_labeled_set(cfg.out, cfg.n, cfg.seed, cfg.size, cfg.frames, cfg.fps, cfg.kinds, cfg.workers)
    except ValueError as e:
        raise InputError(None, str(e)) from e
    counts: dict[str, int] = {}
    for r in records:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"wrote {len(records)} clips to {cfg.out} ({summary}); labels in {cfg.out / 'labels.json'}")
    return 0 if len(records) == cfg.n else 1
