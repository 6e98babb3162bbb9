"""`see3d view scene.ply`: serve an interactive viewer of a splat .ply on localhost."""

from __future__ import annotations

import argparse
import threading

NAME = "view"
HELP = "interactive web viewer for a Gaussian-splat .ply (orbit, pan, zoom, keys, camera-path playback)"
DESCRIPTION = (
    "Serve a web page that renders the splats of a standard 3DGS .ply interactively: drag to orbit, right-drag to pan, "
    "wheel to zoom, W/A/S/D/Q/E to move, arrow keys to turn. The page opens at the scene's first camera (the cameras "
    "`see3d reconstruct` writes beside the .ply as NAME.cameras.json, or a transforms.json in the same folder), with the "
    "world up taken from the cameras; a 'Camera path' panel plays them (or --camera-path) with frustums you can hide; "
    "'View' has reset-view and screenshot buttons, 'Render quality' trades splats for speed. "
    "Binds 127.0.0.1 by default (this machine only); stop with Ctrl-C."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ply", help="Gaussian splat .ply (standard 3DGS layout)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to serve on (default 8080; the next free one if taken; 0 = any free port)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1); 0.0.0.0 lets other machines connect (unauthenticated!)"
    )
    parser.add_argument(
        "--camera-path",
        default=None,
        help="nerfstudio camera_path.json or transforms.json to play back (OpenGL c2w in the file, as nerfstudio writes)",
    )
    parser.add_argument(
        "--cameras",
        default="auto",
        help="the scene's cameras (transforms.json or camera_path.json): auto (default: NAME.cameras.json or transforms.json "
        "beside the .ply), a file, or none",
    )
    parser.add_argument(
        "--up",
        default="auto",
        help="world up for the orbit controls: auto (default: the path cameras' up, else -y), +x/-x/+y/-y/+z/-z or x,y,z; write --up=-y",
    )


def run(args: argparse.Namespace) -> int:
    from see3d.viewer import serve

    cameras = None if args.cameras == "none" else args.cameras
    viewer = serve(args.ply, host=args.host, port=args.port, camera_path=args.camera_path, up=args.up, verbose=False, cameras=cameras)
    try:  # from here on, Ctrl-C stops the server cleanly (also right after the line is printed)
        print(f"see3d view: {viewer.num_splats} splats at {viewer.url} (Ctrl-C to stop)", flush=True)
        threading.Event().wait()  # serve until interrupted
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
    return 0
