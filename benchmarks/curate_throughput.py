"""Curation throughput: CPU seconds per minute of input video, per stage and overall, on one core.

Baselines measured in the same run on the same files:
- ``decode``: a plain sequential decode that yields the same sampled frames (same frame skipping,
  RGB conversion of the sampled frames at the analysis size only) -- the floor any curation pays;
- ``decode_all``: decoding every frame (no skipping), as a naive reader would.

Usage::

    python benchmarks/curate_throughput.py [VIDEO_OR_FOLDER ...] [--flow dis|raft --raft-weights P] [--detector mediapipe|hog|none]

Without inputs it uses ../shared/data/videos (real 720p phone/stock videos) when present, else it
generates a 20 s 1280x720 synthetic video. Everything runs single-threaded (OpenCV, torch, decoder),
so "x real time" is per core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from see3d.curation.config import CurateConfig  # noqa: E402
from see3d.curation.process import STAGES, analyse_video, get_backends  # noqa: E402
from see3d.curation.runner import list_inputs  # noqa: E402
from see3d.curation.sampling import scaled_size  # noqa: E402
from see3d.io.video import iter_decoded, probe_video, write_video  # noqa: E402


def make_test_video(path: Path, seconds: float = 20.0, fps: float = 30.0) -> Path:
    """A 1280x720 H.264 video of a camera trucking sideways past two textured layers (the far one
    moves 2 px per frame, the near one 5 px): static, with parallax -- a clip curation keeps."""
    rng = np.random.default_rng(0)
    n = int(seconds * fps)
    far = cv2.resize(rng.integers(0, 255, (90, 400, 3), np.uint8), (1280 + 2 * n + 8, 400), interpolation=cv2.INTER_CUBIC)
    near = cv2.resize(rng.integers(0, 255, (80, 500, 3), np.uint8), (1280 + 5 * n + 8, 320), interpolation=cv2.INTER_CUBIC)

    def frames():
        for i in range(n):
            yield np.concatenate([far[:, 2 * i : 2 * i + 1280], near[:, 5 * i : 5 * i + 1280]], 0)

    write_video(path, frames(), fps=fps)
    return path


def decode_baseline(path: str, cfg: CurateConfig, skip: bool) -> float:
    """CPU seconds to decode ``path`` and convert the frames curation samples (same rule)."""
    info = probe_video(path)
    s = cfg.sample
    skip = skip and s.skip_nonref and info.fps >= 4 * s.fps
    t0 = time.process_time()
    next_t = None
    size = None
    for f in iter_decoded(path, threads=1, skip_nonref=skip):
        if next_t is None:
            next_t = f.time_s
            size = scaled_size(*f.size, s.short_side)
        if f.time_s >= next_t - 1e-4:
            f.rgb(*size)
            while next_t <= f.time_s + 1e-4:
                next_t += 1.0 / s.fps
    return time.process_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--flow", default="dis", choices=["dis", "raft"])
    ap.add_argument("--raft-weights", default=None)
    ap.add_argument("--detector", default="mediapipe", choices=["mediapipe", "hog", "none"])
    ap.add_argument("--repeat", type=int, default=1, help="repeat each measurement and keep the fastest")
    ap.add_argument("--synthetic", action="store_true", help="use a generated 20 s 1280x720 video even when ../shared is present")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    inputs = args.inputs
    tmp = None
    if not inputs:
        shared = ROOT.parent / "shared" / "data" / "videos"
        if shared.is_dir() and not args.synthetic:
            inputs = [str(shared)]
        else:
            tmp = tempfile.TemporaryDirectory()
            inputs = [str(make_test_video(Path(tmp.name) / "synthetic_720p.mp4"))]
    videos = list_inputs(inputs)

    rows = []
    for mode in ("early-exit", "all-stages"):
        cfg = CurateConfig(flow=args.flow, raft_weights=args.raft_weights, detector=args.detector, run_all_stages=(mode == "all-stages"))
        cfg.sample.decode_threads = 1
        backends = get_backends(cfg)
        tot = dict.fromkeys([*STAGES, "total", "decode", "decode_all"], 0.0)
        duration = 0.0
        for v in videos:
            best = None
            for _ in range(args.repeat):
                recs, _, timer = analyse_video(v, cfg, backends)
                if recs[0].decision == "error":
                    print(f"skipping {v}: {recs[0].message}")
                    break
                if best is None or timer.cpu["total"] < best.cpu["total"]:
                    best = timer
            if best is None:
                continue
            duration += probe_video(v).duration_s
            for k in (*STAGES, "total"):
                tot[k] += best.cpu[k]
            tot["decode"] += min(decode_baseline(v, cfg, True) for _ in range(args.repeat))
            tot["decode_all"] += min(decode_baseline(v, cfg, False) for _ in range(args.repeat))
        rows.append((mode, tot, duration))

    print(f"inputs: {len(videos)} videos; flow={args.flow}, detector={args.detector}; one core (CPU seconds, process time)")
    for mode, tot, duration in rows:
        minutes = duration / 60.0
        print(f"\n[{mode}] {duration:.1f} s of video")
        print(f"{'stage':<12}{'CPU s / min of video':>22}{'x decode':>10}")
        for k in ("decode_all", "decode", *STAGES, "total"):
            print(f"{k:<12}{tot[k] / minutes:>22.2f}{tot[k] / max(tot['decode'], 1e-9):>10.2f}")
        print(f"overall: {duration / tot['total']:.1f}x real time per core (decode alone: {duration / tot['decode']:.1f}x, decode of every frame: {duration / tot['decode_all']:.1f}x)")
        print(f"detector ({args.detector}, the semantic stage): {100.0 * tot['semantic'] / max(tot['total'], 1e-9):.1f}% of the total")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
