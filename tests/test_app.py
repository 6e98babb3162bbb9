"""`see3d app` without a browser: the job runner, and the session's steps on the demo scene at tiny settings
(the page itself is driven in tests/test_app_browser.py)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from see3d.app.jobs import CANCELLED, DONE, FAILED, JobRunner
from see3d.app.session import AppSession
from see3d.errors import InputError
from see3d.io.cameras import Cameras
from see3d.io.transforms_json import read_transforms_json
from see3d.splat.gaussians import read_ply


# ---------------------------------------------------------------------- jobs
def test_jobs_run_one_at_a_time_in_order_and_cancel():
    runner = JobRunner()
    order, running = [], []
    gate = threading.Event()

    def work(name):
        def fn(job):
            running.append(name)
            assert len(running) - len(order) == 1  # never two at once
            if name == "a":
                gate.wait(5)
            job.report(0.5, "half")
            order.append(name)
            return name.upper()

        return fn

    a = runner.submit("a", work("a"))
    b = runner.submit("b", work("b"))
    c = runner.submit("c", work("c"))
    t_end = time.monotonic() + 5
    while runner.current is not a and time.monotonic() < t_end:
        time.sleep(0.01)
    assert [j.name for j in runner.queued] == ["b", "c"] and runner.busy
    assert "**a**" in runner.describe() and "queued: b, c" in runner.describe()
    b.cancel()  # a queued job never starts
    gate.set()
    assert c.wait(5)
    assert order == ["a", "c"] and (a.state, b.state, c.state) == (DONE, CANCELLED, DONE)
    assert c.result == "C" and c.progress == 1.0 and not runner.busy
    runner.stop()


def test_job_failure_is_one_line_and_the_runner_goes_on():
    runner = JobRunner()
    bad = runner.submit("bad", lambda job: (_ for _ in ()).throw(InputError("x.png", "not an image")))
    ok = runner.submit("ok", lambda job: 1)
    assert ok.wait(5)
    assert bad.state == FAILED and bad.message == "x.png: not an image" and ok.state == DONE
    assert "idle (last: ok done" in runner.describe()
    runner.stop()


def test_running_job_cancel_stops_at_its_check():
    runner = JobRunner()
    steps = []

    def loop(job):
        while not job.cancelled and len(steps) < 10_000:
            steps.append(1)
            time.sleep(0.001)

    j = runner.submit("loop", loop)
    while not steps:
        time.sleep(0.01)
    j.cancel()
    assert j.wait(5) and j.state == CANCELLED and len(steps) < 10_000
    runner.stop()


# ---------------------------------------------------------------------- the session, tiny settings
class _Job:
    """A stand-in for a running job: records reports, cancels on request."""

    def __init__(self, cancel_after_reports: int | None = None):
        self.reports, self._cancel_after = [], cancel_after_reports

    @property
    def cancelled(self) -> bool:
        return self._cancel_after is not None and len(self.reports) > self._cancel_after

    def report(self, progress=None, message=None):
        self.reports.append((progress, message))


@pytest.fixture
def session(tmp_path):
    s = AppSession(tmp_path / "work")
    s.gen_cfg = replace(s.gen_cfg, fill="telea", fill_smoothing=0.0)  # fast and model-free; the model path is the same call
    s.rec_cfg = replace(s.rec_cfg, init_points=2000)
    return s


def test_demo_inputs_point_cloud_and_paths(session, tmp_path):
    with pytest.raises(InputError, match="no input yet"):
        session.apply_preset("orbit_right", 4)
    refs = session.load_demo()
    assert len(refs) == 1 and refs.images.shape == (1, 64, 64, 3) and (session.out / "inputs" / "input.png").is_file()
    assert session.targets is not None and len(session.targets) == session.gen_cfg.n_frames  # the default preset at once
    pts, cols = session.input_points()
    assert pts.shape == cols.shape and len(pts) > 1000 and (cols >= 0).all() and (cols <= 1).all()
    # every point of the cloud projects inside the input camera (it is the input's depth, unprojected)
    uv, z = refs.cameras.project(pts.astype(np.float64))
    assert (z > 0).all() and (uv >= -1e-3).all() and (uv <= 64 + 1e-3).all()

    a = session.apply_preset("orbit_left", 5)
    b = session.apply_preset("orbit_right", 5)
    assert len(a) == len(b) == 5 and session.gen_cfg.n_frames == 5
    assert np.sign(a.c2w[-1, 0, 3] - refs.cameras.c2w[0, 0, 3]) == -np.sign(b.c2w[-1, 0, 3] - refs.cameras.c2w[0, 0, 3])
    with pytest.raises(InputError, match="unknown camera path"):
        session.apply_preset("nope", 4)
    with pytest.raises(InputError, match="needs 2-6 input images"):
        session.apply_preset("through_inputs", 4)

    # keyframes: the path runs from the input camera through them, ending exactly at the last one
    with pytest.raises(InputError, match="no keyframes"):
        session.keyframe_path(4)
    k1, k2 = b.c2w[2], b.c2w[4]
    session.add_keyframe(k1)
    assert session.add_keyframe(k2) == 2
    path = session.keyframe_path(6)
    assert len(path) == 6 and np.allclose(path.c2w[-1], k2, atol=1e-9) and session.targets is path

    # camera_path.json round trip (nerfstudio)
    f = session.export_camera_path()
    assert json.loads(f.read_text())["camera_path"] and f == session.out / "camera_path.json"
    session.apply_preset("orbit_left", 3)
    got = session.import_camera_path(f)
    assert len(got) == 6 and np.allclose(got.c2w, path.c2w, atol=1e-6) and np.allclose(got.K, path.K, atol=1e-6)


def test_generate_cancel_keeps_finished_chunks_then_reconstruct_resume_and_export(session):
    session.load_demo()
    session.gen_cfg = replace(session.gen_cfg, chunk_size=2)
    session.apply_preset("orbit_right", 6)
    seen = []
    job = _Job(cancel_after_reports=1)  # the first chunk reports, then cancel is seen
    res = session.generate(job, on_chunk=lambda c: seen.append((c.first, len(c.images))))
    assert seen == [(0, 2)] and len(res.warps) == 2 and len(res.views) == 3  # input + the 2 finished views
    assert np.allclose(res.views.cameras.c2w[1:], session.targets.c2w[:2])
    cams, _ = read_transforms_json(session.out / "views" / "transforms.json")
    assert len(cams) == 3 and "cancelled" in job.reports[-1][1]
    res = session.generate(_Job(), on_chunk=lambda c: seen.append((c.first, len(c.images))))
    assert seen[1:] == [(0, 2), (2, 2), (4, 2)] and len(res.views) == 7

    updates = []
    job = _Job(cancel_after_reports=10**9)
    g = session.reconstruct(job, iters=30, on_update=lambda g, s: updates.append(s), update_every_s=0.0)
    assert session.trainer.step == 30 and updates[-1].step == 30 and len(updates) >= 30 and np.isfinite(updates[-1].psnr)
    assert read_ply(session.export_ply()).means.shape == g.means.shape
    cams, frames = read_transforms_json(session.splats_dir / "splats.cameras.json")
    assert len(cams) == 7 and frames[0]["name"] == "input"
    assert [f["see3d_role"] for f in frames] == ["input"] + ["generated"] * 6  # the viewer colours and toggles them
    # resume: more iterations continue from step 30, not from scratch
    session.reconstruct(_Job(), iters=40)
    assert session.trainer.step == 40
    assert [h["step"] for h in session.trainer.history][-10:] == list(range(31, 41))

    mp4 = session.export_video(frames=6)
    assert mp4.is_file() and mp4.stat().st_size > 0
    import trimesh

    glb = session.export_mesh(resolution=32)
    mesh = trimesh.load(glb, force="mesh")
    assert glb.name == "mesh.glb" and len(mesh.faces) > 100
    z = session.export_zip()
    assert not (session.out.parent / f".{session.out.name}.partial.zip").exists()
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
    assert {"splats/splats.ply", "views/transforms.json", "inputs/input.png", "splats/flythrough.mp4"} <= names
    # new views: the old splats no longer match them and are gone
    session.generate(_Job())
    assert not session.splats_dir.exists() and session.trainer is None
    with pytest.raises(InputError, match="reconstruct first"):
        session.export_ply()


def test_uploaded_image_with_given_depth_generates(session, tmp_path):
    from see3d.depth.select import make_backend

    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buf, format="PNG")
    p = session.save_upload("photo.png", buf.getvalue())
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "photo.npy", np.full((96, 128), 2.0, np.float32))
    refs = session.load_images([p], make_backend(given=tmp_path / "depth"), depth_from_model=False)
    assert refs.images.shape == (1, 64, 64, 3) and refs.names == ["photo"] and np.allclose(refs.depth, 2.0)
    assert session.new_view_depth is None  # given maps exist for the input only: new views keep warped depth
    session.apply_preset("orbit_right", 2)
    res = session.generate(_Job())
    assert len(res.views) == 3 and np.isfinite(res.views.images).all()


def test_three_images_with_a_cameras_file(session, tmp_path):
    """Sparse inputs: 3 photos of the sample room, their cameras from a transforms.json (no SfM) and depth maps."""
    from see3d.depth.select import make_backend
    from see3d.io.cameras import look_at
    from see3d.io.images import save_image
    from see3d.io.transforms_json import write_transforms_json
    from see3d.synth import make_scene, render
    from see3d.viewer.camera_path import load_camera_path

    scene = make_scene(0, kind="room")
    eyes = [scene.focus + np.array([dx, -0.5, -2.5]) for dx in (-0.4, 0.0, 0.4)]
    cams = Cameras.from_fov(np.stack([look_at(e, scene.focus) for e in eyes]), 60.0, 64, 64)
    rgb, depth = render(scene, cams)
    (tmp_path / "depth").mkdir()
    paths = []
    for i in range(3):
        save_image(tmp_path / f"v{i}.png", rgb[i])
        paths.append(tmp_path / f"v{i}.png")
        np.save(tmp_path / "depth" / f"v{i}.npy", depth[i])
    write_transforms_json(tmp_path / "cams.json", cams)
    from see3d.geometry.anchor_align import AlignConfig

    # 64 px renders give few keypoint anchors (10-12): one global scale/shift per view, from at least 6
    session.gen_cfg = replace(session.gen_cfg, align=AlignConfig(method="global", min_anchors=6))
    refs = session.load_images(paths, make_backend(given=tmp_path / "depth"), load_camera_path(tmp_path / "cams.json").cameras, depth_from_model=False)
    assert session.sparse and len(refs) == 3 and np.allclose(refs.cameras.c2w, cams.c2w, atol=1e-9)
    assert session.targets is not None and len(session.targets) >= 2  # the path through the inputs, at once
    pts, _ = session.input_points()
    assert len(pts) > 3000
    session.apply_preset("through_inputs", 4)
    res = session.generate(_Job())
    assert len(res.views) == 3 + len(session.targets) and res.num_inputs == 3


def _tiny_text_to_image(folder):
    """A random-weight diffusers StableDiffusionPipeline (64 px, a 54-token character vocabulary) saved in ``folder``."""
    import string

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4,
                                      max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=32))  # fmt: skip
    unet = UNet2DConditionModel(sample_size=8, layers_per_block=1, block_out_channels=(32, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8)  # fmt: skip
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8,) * 4,
                        latent_channels=4, norm_num_groups=8, layers_per_block=1)  # fmt: skip
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=DDIMScheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)  # fmt: skip
    pipe.save_pretrained(folder / "t2i")
    return folder / "t2i"


class _FlatDepth:
    """A depth backend that sees a wall 2 m away in every image."""

    def predict(self, image, key=None, focal_px=None):
        from see3d.depth.base import DepthPrediction

        return DepthPrediction(np.full(image.shape[:2], 2.0, np.float32), "metric_depth")


def test_prompt_makes_the_first_image(tmp_path):
    session = AppSession(tmp_path / "work", t2i_weights=_tiny_text_to_image(tmp_path))
    session.gen_cfg = replace(session.gen_cfg, fill="telea", fill_smoothing=0.0)
    refs = session.load_prompt("a red room", _FlatDepth(), steps=2)
    assert refs.names == ["prompt_image"] and refs.images.shape == (1, 64, 64, 3) and np.allclose(refs.depth, 2.0)
    assert (session.out / "inputs" / "prompt_image.png").is_file() and session.new_view_depth is not None
    session.apply_preset("orbit_right", 2)
    assert len(session.generate(_Job()).views) == 3


def test_out_folder_holds_one_session(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "stale.txt").write_text("earlier run")
    with pytest.raises(InputError, match="not empty"):
        AppSession(tmp_path / "old")
    AppSession(tmp_path / "old", overwrite=True)
    assert not (tmp_path / "old" / "stale.txt").exists()


def test_uploads_and_bad_inputs(session):
    buf = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(buf, format="PNG")
    p = session.save_upload("../../evil/photo.png", buf.getvalue())
    assert p == session.out / "inputs" / "photo.png" and p.is_file()  # no path escapes the inputs folder
    with pytest.raises(InputError):
        session.save_upload("junk.png", b"not an image")
    assert not (session.out / "inputs" / "junk.png").exists()
    with pytest.raises(InputError, match="1 image, or 2 to 6"):
        session.load_images([p] * 7, depth=None)
    with pytest.raises(InputError, match="nothing to reconstruct"):
        session.reconstruct(_Job(), iters=5)
    with pytest.raises(InputError, match="text-to-image"):
        session.load_prompt("a room", depth=None)


# ---------------------------------------------------------------------- the server and the CLI
def test_serve_app_binds_localhost_and_preloads_the_demo(tmp_path):
    import urllib.request

    from see3d.app.page import serve_app

    with serve_app(port=0, out=tmp_path / "work") as app:
        assert app.url.startswith("http://127.0.0.1:") and app.server.get_host() == "127.0.0.1"
        with urllib.request.urlopen(app.url, timeout=10) as r:
            assert r.status == 200 and b"<title>Viser</title>" in r.read()  # the client from the wheel
        t_end = time.monotonic() + 60
        while not app.runner.history and time.monotonic() < t_end:
            time.sleep(0.05)
        assert app.runner.history[0].name == "load demo" and app.runner.history[0].state == DONE
        page = app.page
        assert len(page.show_points.handles) == 1 and len(page.show_path.handles) == len(app.session.targets)
        assert app.server.initial_camera.position == pytest.approx(app.session.refs.cameras.c2w[0, :3, 3])
        # a failing step reports one line in the status and leaves the page usable
        page.depth_path.value = str(tmp_path / "no_such_model")
        page.uploads = [tmp_path / "x.png"]
        job = page.submit("load images", page._load_uploads)
        assert job.wait(30) and job.state == FAILED and "no_such_model" in job.message and "\n" not in job.message
        assert "load images failed" in page.status.content or "failed" in app.runner.describe()


def test_cli_app_warns_for_all_interfaces_and_stops_on_interrupt(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "see3d.cli", "app", "--port", "0", "--host", "0.0.0.0", "--no-demo", "--out", str(tmp_path / "w")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip  # SIGINT may be ignored (background job)
    try:
        line = proc.stdout.readline()
        assert "see3d app at http://127.0.0.1:" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "other machines can reach it" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
