"""Reliability, group "crash" (issue 22): finished work survives a failure or a kill -- eval keeps every finished
scene, train falls back to the previous good checkpoint, curate workers never outlive their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from see3d.eval.runner import EvalConfig, evaluate
from test_eval_protocols import Oracle, _write_tiny_llff

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------------------ eval
def test_eval_scene_that_crashes_is_a_row_and_finished_scenes_stay(tmp_path):
    from see3d.datasets import load_scene

    for name in ("a_good", "b_bad", "c_good"):
        _write_tiny_llff(tmp_path / "data" / name)
    (tmp_path / "data" / "b_bad" / "images" / "img000.png").write_bytes(b"\x89PNG not really")  # unreadable first image
    scene = load_scene(tmp_path / "data" / "a_good", factor=1)
    data = evaluate(EvalConfig(data=tmp_path / "data", out=tmp_path / "out", factor=1, iters=5), reconstruct=Oracle(scene))
    js = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [s["scene"] for s in js["scenes"]] == ["a_good", "c_good"] and js["complete"] is True
    assert [f["scene"] for f in js["failures"]] == ["b_bad"] and "img000.png" in js["failures"][0]["error"]
    assert data["failures"] == js["failures"]


def test_eval_results_are_on_disk_as_each_scene_finishes(tmp_path):
    from see3d.datasets import load_scene

    for name in ("a", "b", "c"):
        _write_tiny_llff(tmp_path / "data" / name)
    oracle = Oracle(load_scene(tmp_path / "data" / "a", factor=1))
    seen = []

    def reconstruct(req):
        if len(seen) == 2:  # the process dies during the third scene (Ctrl-C / kill)
            raise KeyboardInterrupt
        seen.append(json.loads((tmp_path / "out" / "results.json").read_text())["num_scenes"])
        return oracle(req)

    with pytest.raises(KeyboardInterrupt):
        evaluate(EvalConfig(data=tmp_path / "data", out=tmp_path / "out", factor=1, iters=5), reconstruct=reconstruct)
    assert seen == [0, 1]  # the report held every finished scene before the next one started
    js = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [s["scene"] for s in js["scenes"]] == ["a", "b"] and js["complete"] is False and js["scenes_pending"] == 1
    assert "incomplete" in (tmp_path / "out" / "results.md").read_text()
    assert (tmp_path / "out" / "strips" / "b.png").is_file()


# ------------------------------------------------------------------------------------------ train
def test_train_falls_back_to_the_previous_checkpoint_when_the_newest_is_truncated(tmp_path, caplog):
    from see3d.train.trainer import train
    from test_train_loop import _assert_same_run
    from train_helpers import make_videos, tiny_config, tiny_unet_config

    data, unet = make_videos(tmp_path / "vids"), tiny_unet_config(tmp_path / "unet.json")
    reference = train(tiny_config(data, tmp_path / "ref", unet))
    assert reference.finished
    out = tmp_path / "run"
    first = train(tiny_config(data, out, unet, checkpoint_every=1, stop_after_steps=3))
    assert first.step == 3
    newest = out / "checkpoints" / "step-00000003" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])  # truncated, as by a full disk
    res = train(tiny_config(data, out, unet, checkpoint_every=1))
    assert res.finished and res.step == 4
    assert any("step-00000003 is damaged" in r.message and "falling back" in r.message for r in caplog.records)
    assert [s for s, _ in res.losses] == [3, 4]  # resumed at step 2
    _assert_same_run(tmp_path / "ref", out)


# ------------------------------------------------------------------------------------------ curate workers
_PARENT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing as mp
from see3d.curation.runner import _init_worker

def work(_):
    return os.getpid()

if __name__ == "__main__":
    pool = ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(os.getpid(),))
    pids = sorted(set(pool.map(work, range(8))))
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_curate_workers_die_with_a_killed_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert workers and all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "orphaned curate workers"
    finally:
        parent.kill()
        for p in locals().get("workers", []):
            if _alive(p):
                os.kill(p, signal.SIGKILL)
