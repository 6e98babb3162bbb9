"""Curation accuracy on the labelled real clips of ../shared/data/videos, tuning vs held-out (the
figures of docs/curation.md; synthetic sets: ``benchmarks/curate_accuracy.py --seed N``).

Reports, each on clips split into those thresholds were tuned on and those held out:

- ``detector``: frames with a detection, per labelled real clip (8 frames spread over each clip's
  readable part, at the analysis size), for the MediaPipe and HOG detectors, and CPU ms per frame;
- ``real``: the default configuration's decision per labelled real video, and per readable start
  of the cut-off clips (re-encoded whole, so the content is judged, not the truncation);
- ``scores``: the semantic stage's highest detection score (over ``min_area``, in the frames it
  checks) per clip that has one: the labelled real clips and the ``see3d synth`` sets of
  ``--synth-seeds`` (no people: every detection there is a false positive). ``sure_score`` was
  chosen from this report on the tuning clips and seeds 0-2.

Usage::

    python benchmarks/curate_real_accuracy.py [detector] [real [--draws 6]] [scores [--synth-seeds 0 1 2]]

Needs ../shared/data/videos. Single-threaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from see3d import labels  # noqa: E402
from see3d.curation import CurateConfig, analyse_video  # noqa: E402
from see3d.curation.detect import make_detector  # noqa: E402
from see3d.curation.sampling import scaled_size  # noqa: E402
from see3d.io.video import iter_decoded, write_video  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "videos"
TUNING = ("beer_orbit", "coffee_pour_static_person", "dtu_scan65_sweep", "rushing_water_small_motion", "trunc_05_default_juggle", "trunc_20_doughkneading", "trunc_11_polevault")
HELD_OUT = ("trunc_14_social_dog_training", "trunc_17_childrendancing", "trunc_22_dogskateboarder")
LABEL = {"beer_orbit": labels.KEEP, "dtu_scan65_sweep": labels.KEEP}  # every other labelled clip: drop


def _frames(video: Path, n: int = 8, short_side: int = 256) -> list[np.ndarray]:
    decoded = list(iter_decoded(video))  # stops at the cut of a truncated file
    w, h = scaled_size(*decoded[0].size, short_side)
    return [decoded[i].rgb(w, h) for i in np.linspace(min(5, len(decoded) - 1), len(decoded) - 1, n).round().astype(int)]


def report_detector() -> None:
    dets = {name: make_detector(name) for name in ("mediapipe", "hog")}
    frames = {name: _frames(VIDEOS / f"{name}.mp4") for name in (*TUNING, *HELD_OUT)}
    print("| clip | set | MediaPipe | HOG |\n|---|---|---|---|")
    cpu = dict.fromkeys(dets, 0.0)
    for name, fr in frames.items():
        row = []
        for k, d in dets.items():
            t = time.process_time()
            row.append(sum(bool(x) for x in d.detect(fr)))
            cpu[k] += time.process_time() - t
        print(f"| {name} | {'tuning' if name in TUNING else 'held-out'} | {row[0]}/{len(fr)} | {row[1]}/{len(fr)} |")
    n = sum(len(f) for f in frames.values())
    print("CPU per frame: " + ", ".join(f"{k} {1000 * v / n:.0f} ms" for k, v in cpu.items()))


def _readable_start(video: Path, out: Path) -> Path:
    import av

    with av.open(str(video)) as c:
        fps = float(c.streams.video[0].average_rate)
    write_video(out, (f.rgb(640, 360) for f in iter_decoded(video)), fps=fps)
    return out


def report_real(draws: int = 1) -> None:
    """Decisions with ``CurateConfig.seed`` 0 (the table) and, with ``draws`` > 1, how many of the
    seeds 0..draws-1 give the expected decision (the RANSAC draws derive from the seed and the path;
    the readable starts are judged under fixed relative names, so the table is the same every run)."""
    cfg = CurateConfig(progress=False)
    cfg.sample.output_short_side = 128
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            rows = [(f"{v.stem}", v, "whole file") for v in sorted(VIDEOS.glob("*.mp4"))]
            rows += [(name, _readable_start(VIDEOS / f"{name}.mp4", Path(f"{name}.mp4")), "readable start") for name in (*TUNING, *HELD_OUT) if name.startswith("trunc_")]
            extra = f" right over seeds 0-{draws - 1} |" if draws > 1 else ""
            print(f"| video | judged | set | expected | decision / reason | clips kept |{extra}\n|---|---|---|---|---|---|{'---|' if draws > 1 else ''}")
            for name, path, what in rows:
                recs = analyse_video(str(path), cfg)[0]
                v = recs[0]
                split = "file check" if name.startswith("trunc_") and what == "whole file" else "tuning" if name in TUNING else "held-out"
                expected = labels.ERROR if what == "whole file" and name.startswith("trunc_") else LABEL.get(name, labels.DROP)
                kept = sum(r.decision == labels.KEEP for r in recs[1:])
                row = f"| {name} | {what} | {split} | {expected} | {v.decision} / {v.reason} | {kept} of {len(recs) - 1} |"
                if draws > 1:
                    right = sum(analyse_video(str(path), CurateConfig(progress=False, seed=k))[0][0].decision == expected for k in range(draws))
                    row += f" {right}/{draws} |"
                print(row)
        finally:
            os.chdir(here)


def report_scores(seeds: list[int]) -> None:
    from see3d.curation.detect import MediaPipeDetector
    from see3d.curation.sampling import ClipSampler
    from see3d.curation.semantic import analyse_semantic
    from see3d.synth import write_labeled_set

    cfg = CurateConfig(progress=False)
    det = MediaPipeDetector()
    with tempfile.TemporaryDirectory() as tmp:
        clips = [(name, VIDEOS / f"{name}.mp4", "tuning" if name in TUNING else "held-out") for name in (*TUNING, *HELD_OUT) if not name.startswith("trunc_")]
        clips += [(name, _readable_start(VIDEOS / f"{name}.mp4", Path(tmp) / f"{name}.mp4"), "tuning" if name in TUNING else "held-out") for name in (*TUNING, *HELD_OUT) if name.startswith("trunc_")]
        for seed in seeds:
            out = Path(tempfile.gettempdir()) / f"see3d_scores_synth{seed}"  # kept: a second run reuses the rendered clips
            recs = write_labeled_set(out, n=50, seed=seed, size=256, n_frames=24, fps=2.0)
            clips += [(f"synth {seed}/{r['clip_id']}", out / r["video"], "tuning" if seed in (0, 1, 2) else "held-out") for r in recs]
        print(f"| clip | set | highest score (sure_score {cfg.semantic.sure_score}) |\n|---|---|---|")
        false_top = 0.0
        for name, path, split in clips:
            cfg.sample.clip_seconds = 15.0 if name.startswith("synth") else CurateConfig().sample.clip_seconds
            for clip in ClipSampler(str(path), cfg.sample):
                sem = analyse_semantic(clip.frames, det, cfg.semantic)
                if sem.top_score > 0:
                    print(f"| {name} (clip {clip.index}) | {split} | {sem.top_label} {sem.top_score:.3f} |")
                if name.startswith("synth") or name in LABEL or name == "rushing_water_small_motion":
                    false_top = max(false_top, sem.top_score)
        print(f"highest score on clips without people: {false_top:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="*", help="detector, real and/or scores (default: detector and real)")
    ap.add_argument("--draws", type=int, default=1, help="real: also count the right decisions over seeds 0..DRAWS-1")
    ap.add_argument("--synth-seeds", type=int, nargs="*", default=[0, 1, 2], help="see3d synth sets (50 clips) of the scores report")
    args = ap.parse_args()
    args.reports = args.reports or ["detector", "real"]
    if set(args.reports) - {"detector", "real", "scores"}:
        ap.error(f"unknown report(s) {sorted(set(args.reports) - {'detector', 'real', 'scores'})}")
    cv2.setNumThreads(1)
    if not VIDEOS.is_dir():
        print(f"needs {VIDEOS}")
        return 1
    for r in args.reports:
        print(f"\n## {r}")
        {"detector": report_detector, "real": lambda: report_real(args.draws), "scores": lambda: report_scores(args.synth_seeds)}[r]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
