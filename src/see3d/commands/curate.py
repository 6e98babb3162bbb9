"""``see3d curate``: filter raw videos into 3D-aware training clips (WebVi3D-style curation)."""

from __future__ import annotations

import argparse

from see3d.config import add_dataclass_args, dataclass_from_args

NAME = "curate"
HELP = "curate videos into 3D-aware clips: WebDataset shards + manifest.parquet (resumable)"
DESCRIPTION = (
    "Decode and sample each video, split it into clips at scene cuts, and drop clips that are too short, dominated by people, "
    "dynamic, filmed by a static camera, with too little camera motion or a pure rotation. Kept clips go to OUT/shards/*.tar "
    "(WebDataset; OUT/shards/index.json), every video and clip gets a row in OUT/manifest.parquet with its decision and reason. "
    "Rerunning skips finished videos."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from see3d.curation.config import STAGE_CONFIGS, CurateConfig

    parser.add_argument("inputs", nargs="+", help="video files, folders (searched recursively) or .txt lists of paths")
    parser.add_argument("--out", required=True, help="output folder")
    add_dataclass_args(parser, CurateConfig)
    for prefix, cls in STAGE_CONFIGS.items():
        group = parser.add_argument_group(f"{prefix} stage")
        add_dataclass_args(group, cls, prefix=f"{prefix}_")


def run(args: argparse.Namespace) -> int:
    from see3d.curation.config import STAGE_CONFIGS, CurateConfig
    from see3d.curation.runner import curate

    stages = {prefix: dataclass_from_args(cls, args, prefix=f"{prefix}_") for prefix, cls in STAGE_CONFIGS.items()}
    cfg = dataclass_from_args(CurateConfig, args, **stages)
    summary = curate(args.inputs, args.out, cfg)
    print(summary.line())
    return 0
