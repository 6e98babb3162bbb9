"""``see3d demo``: sample photo -> See3D generation -> Gaussian splatting -> .ply + .mp4 (CPU, minutes)."""

from __future__ import annotations

import json
from pathlib import Path

NAME = "demo"
HELP = "run the whole system on the bundled sample (one image -> views -> 3D Gaussians -> .ply + .mp4)"


def add_arguments(parser) -> None:
    from see3d.config import add_dataclass_args
    from see3d.demo import DemoConfig

    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (the new run swaps in when it finishes)")
    parser.add_argument("--weights", type=Path, default=None, help="See3D weights folder (default: the small model shipped with the package)")
    add_dataclass_args(parser, DemoConfig)


def run(args) -> int:
    from see3d.config import dataclass_from_args
    from see3d.demo import DemoConfig, run_demo

    report = run_demo(args.out, dataclass_from_args(DemoConfig, args), args.weights, args.overwrite)
    print(json.dumps({k: report[k] for k in ("splats", "flythrough", "views", "seconds_total")}, indent=2))
    print(f"open the splats in a browser: see3d view {report['splats']}")
    return 0
