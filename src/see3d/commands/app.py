"""`see3d app`: the whole flow (image(s) in -> camera path -> generated views -> live splats -> files) in one
local web page."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

NAME = "app"
HELP = "the whole flow in a local web page: image(s) in, camera path in 3D, views as generated, live splats, downloads"
DESCRIPTION = (
    "Serve one page (viser: its client ships inside the Python package, so it works offline) that loads an image "
    "(the demo scene at once), draws its point cloud and camera, lets you pick or draw a camera path, generates the "
    "views chunk by chunk (they appear as they finish), optimises Gaussian splats live, and downloads .ply, .mp4, "
    ".glb or the whole folder as .zip. Long steps run in the background, one at a time. Binds 127.0.0.1 by default; "
    "stop with Ctrl-C."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, default=None, help="See3D weights folder (default: the small model shipped with the package)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; the next free one if taken; 0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1); 0.0.0.0 lets other machines connect (unauthenticated!)")
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: see3d_app/<date-time>, a new one per start)")
    parser.add_argument("--overwrite", action="store_true", help="allow a non-empty --out (its old content is removed)")
    parser.add_argument("--t2i-weights", type=Path, default=None, help="local diffusers text-to-image folder: enables prompts")
    parser.add_argument("--depth-model", type=Path, default=None, help="local transformers depth model folder for uploaded images")
    parser.add_argument("--no-demo", action="store_true", help="do not preload the demo scene")


def run(args: argparse.Namespace) -> int:
    from see3d.app.page import serve_app

    app = serve_app(args.host, args.port, args.out, args.weights, args.t2i_weights, args.depth_model, demo=not args.no_demo, overwrite=args.overwrite)
    try:  # from here on, Ctrl-C stops the server cleanly (also right after the line is printed)
        print(f"see3d app at {app.url} (files in {app.session.out}; Ctrl-C to stop)", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
    return 0
