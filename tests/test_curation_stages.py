"""Curation stages one by one: sampling (time grid, cuts, splitting, VFR, rotation), dynamic
(Sampson geometry, consistency, masks), viewpoint (static / small / rotation / parallax), semantic
(detector plumbing), flow and detector backends."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from see3d import labels
from see3d.curation.detect import Detection, MaskRCNNDetector
from see3d.curation.dynamic import (
    DynamicConfig,
    analyse_dynamic,
    dynamic_mask,
    eq8_score,
    fb_consistency,
    pair_indices,
    reliable_pixels,
    sampson_dense,
    sampson_distance,
)
from see3d.curation.flow import DISFlow, pad_to_multiple, raft_small_state_dict
from see3d.curation.records import MANIFEST_COLUMNS, MANIFEST_SCHEMA, ClipRecord, record_from_dict, record_to_dict
from see3d.curation.sampling import ClipSampler, SampleConfig, scaled_size
from see3d.curation.semantic import SemanticConfig, analyse_semantic
from see3d.curation.track import Tracks, klt_tracks
from see3d.curation.viewpoint import ViewpointConfig, viewpoint_from_tracks
from see3d.errors import InputError, WeightsError
from test_curation_common import H, W, layered_frames, moving_square_frames, texture, write, write_with_pts


# ------------------------------------------------------------------------------------------ sampling
def _numbered_frames(n: int) -> list[np.ndarray]:
    """Frames whose brightness encodes their index (to check order and timing after decoding)."""
    base = texture(H, W, 3)
    return [np.clip(base.astype(int) // 2 + 2 * i, 0, 255).astype(np.uint8) for i in range(n)]


def test_long_video_is_sampled_on_a_time_grid_and_split_without_truncation(tmp_path):
    # 40 s at 5 fps: the official script kept only 150*fps/duration frames of such a video
    v = write(tmp_path / "long.mp4", layered_frames(200, 1.0, 2.0), fps=5)
    sampler = ClipSampler(v, SampleConfig(fps=2, clip_seconds=10, min_frames=8, cut_fps=0))
    clips = list(sampler)
    times = np.concatenate([c.times for c in clips])
    assert sampler.stats.decoded_frames == 200 and sampler.stats.sampled_frames == len(times) == 80
    # presentation order, 2 per second: the first frame at or after each grid point (frames every 0.2 s)
    grid = np.arange(80) * 0.5
    assert np.all(times - grid >= -1e-6) and np.all(times - grid < 0.2 + 1e-6)
    assert times[-1] >= 39.5  # to the end: no 150 s / duration cap
    assert [c.num_frames for c in clips] == [20, 20, 20, 20]
    assert all(c.short_reason is None for c in clips)
    assert clips[0].frames.shape[1:] == (H, W, 3)  # never upscaled


def test_tail_of_a_shot_is_balanced_not_left_too_short(tmp_path):
    v = write(tmp_path / "v.mp4", layered_frames(46, 1.0, 2.0), fps=2)  # 46 samples, clips of <= 20
    clips = list(ClipSampler(v, SampleConfig(fps=2, clip_seconds=10, min_frames=8, cut_fps=0)))
    assert [c.num_frames for c in clips] == [20, 13, 13]


def test_scene_cut_splits_clips_and_marks_the_short_fragment(tmp_path):
    a = layered_frames(12, 1.0, 2.0, seed=1)  # 3 s of scene A at 4 fps
    b = layered_frames(48, 1.0, 2.0, seed=50)  # 12 s of scene B
    v = write(tmp_path / "cut.mp4", a + b, fps=4)
    sampler = ClipSampler(v, SampleConfig(fps=2, clip_seconds=15, min_frames=8))
    clips = list(sampler)
    assert len(sampler.stats.cut_times) == 1 and sampler.stats.cut_times[0] == pytest.approx(3.0, abs=0.3)
    assert [c.segment for c in clips] == [0, 1]
    assert clips[0].short_reason == labels.SCENE_CUT and clips[0].times[-1] < 3.0
    assert clips[1].short_reason is None and clips[1].times[0] >= 3.0 and clips[1].num_frames == 24


def test_a_flash_is_not_a_scene_cut(tmp_path):
    frames = layered_frames(40, 1.0, 2.0, seed=3)
    frames[20] = np.full_like(frames[20], 250)  # one white frame (a flash) inside a continuous shot
    sampler = ClipSampler(write(tmp_path / "flash.mp4", frames, fps=4), SampleConfig(fps=2, clip_seconds=15, min_frames=8))
    assert [c.num_frames for c in sampler] == [20] and sampler.stats.cut_times == []


def test_short_video_is_too_short(tmp_path):
    v = write(tmp_path / "s.mp4", layered_frames(8, 1.0, 2.0), fps=4)
    (clip,) = list(ClipSampler(v, SampleConfig(min_frames=8)))
    assert clip.num_frames == 4 and clip.short_reason == labels.TOO_SHORT


def test_variable_frame_rate_uses_timestamps(tmp_path):
    frames = _numbered_frames(12)
    times = [0.0, 0.03, 0.09, 0.5, 0.55, 1.0, 1.2, 1.3, 2.6, 2.7, 3.0, 3.5]
    v = write_with_pts(tmp_path / "vfr.mp4", frames, times)
    (clip,) = list(ClipSampler(v, SampleConfig(fps=2, min_frames=1, skip_nonref=False, cut_fps=0)))
    # first frame at or after each 0.5 s grid point (2.0 and 2.5 fall in the gap -> 2.6 covers both)
    assert list(np.round(clip.times, 2)) == [0.0, 0.5, 1.0, 2.6, 3.0, 3.5]
    brightness = clip.frames.reshape(len(clip.times), -1).mean(1)
    assert np.all(np.diff(brightness) > 0)  # increasing frame numbers: presentation order


def test_display_rotation_is_applied(tmp_path):
    frames = []
    for _ in range(6):
        f = np.zeros((48, 96, 3), np.uint8)
        f[:12, :12] = 255  # a white mark in the stored top-left corner
        frames.append(f)
    v = write_with_pts(tmp_path / "rot.mp4", frames, [i / 4 for i in range(6)], rotation=90)
    sampler = ClipSampler(v, SampleConfig(fps=4, min_frames=1))
    (clip,) = list(sampler)
    assert sampler.stats.rotation_deg == 90 and (sampler.stats.width, sampler.stats.height) == (48, 96)
    img = clip.frames[0]
    assert img.shape == (96, 48, 3)
    # rotated 90 degrees counter-clockwise for display: the mark moves to the bottom-left corner
    assert img[-10:, :10].mean() > 200 and img[:10, :10].mean() < 50


def test_scaled_size_never_upscales():
    assert scaled_size(1280, 720, 256) == (456, 256)
    assert scaled_size(720, 1280, 256) == (256, 456)
    assert scaled_size(160, 120, 256) == (160, 120)


def test_unreadable_inputs_raise_input_error(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    for p in (tmp_path / "missing.mp4", tmp_path / "junk.mp4", tmp_path):
        with pytest.raises(InputError):
            list(ClipSampler(p))
    v = write(tmp_path / "ok.mp4", layered_frames(8, 1, 2), fps=4)
    with pytest.raises(InputError, match="max_input_pixels"):
        list(ClipSampler(v, SampleConfig(max_input_pixels=100 * 100)))


# ------------------------------------------------------------------------------------------- dynamic
def test_sampson_dense_matches_the_reference_formula():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(3, 3))
    flow = (rng.normal(size=(20, 30, 2)) * 5).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(30) + 0.5, np.arange(20) + 0.5)
    x1 = np.stack([gx, gy], -1)
    ref = sampson_distance(F, x1, x1 + flow)
    np.testing.assert_allclose(sampson_dense(F, flow), ref, rtol=1e-3, atol=1e-4)
    # a point on its epipolar line has zero distance; moving it off by d along the normal gives ~d
    e = np.array([1.0, 0.0, 0.0])  # pure horizontal translation: F = [e]x, horizontal epipolar lines
    Fx = np.array([[0, -e[2], e[1]], [e[2], 0, -e[0]], [-e[1], e[0], 0]])
    p = np.array([[10.0, 20.0]])
    assert sampson_distance(Fx, p, p + [[5.0, 0.0]])[0] == pytest.approx(0.0, abs=1e-9)
    assert sampson_distance(Fx, p, p + [[5.0, 2.0]])[0] == pytest.approx(2.0 / np.sqrt(2), rel=1e-6)


def test_fb_consistency_official_rule():
    fwd = np.zeros((10, 12, 2), np.float32)
    fwd[..., 0] = 2.0
    bwd = -fwd.copy()
    assert fb_consistency(fwd, bwd)[:, :8].all()  # exact inverse: consistent (away from the border)
    bwd[..., 1] = 5.0  # backward flow disagrees by 5 px > 0.5 * (|f| + |b|) + 0.5
    assert not fb_consistency(fwd, bwd)[:, :8].any()


def test_dynamic_mask_finds_a_moving_object_and_not_a_static_scene():
    frames = np.stack(moving_square_frames(4))
    flow = DISFlow("medium")
    cfg = DynamicConfig()
    fwd, bwd = flow.pair(frames[0], frames[1])
    rel = reliable_pixels(frames[0].mean(-1).astype(np.uint8), fb_consistency(fwd, bwd), cfg)
    mask, _ = dynamic_mask(fwd, rel, cfg, np.random.default_rng(0))
    ys, xs = np.nonzero(mask)
    assert mask.mean() > 0.02 and 10 <= xs.mean() <= 80  # on the square (x 10..58 in frame 0)
    stats = analyse_dynamic(frames, flow, cfg)
    assert stats.drop
    # a translating camera over a layered static scene: parallax, but nothing dynamic
    still = analyse_dynamic(np.stack(layered_frames(8, 1.0, 3.0)), flow, cfg)
    assert not still.drop and still.area.max() < 0.01


def test_dynamic_early_exit_keeps_the_decision():
    frames = np.stack(moving_square_frames(12))
    flow = DISFlow("medium")
    full = analyse_dynamic(frames, flow, DynamicConfig(), early_exit=False)
    quick = analyse_dynamic(frames, flow, DynamicConfig(), early_exit=True)
    assert full.drop and quick.drop and len(quick.area) < len(full.area)


def test_pair_indices_and_eq8():
    assert pair_indices(10, 2) == [0, 2, 4, 6, 8]
    assert pair_indices(10, 1, max_pairs=3) == [0, 4, 8]
    assert pair_indices(1, 2) == []
    assert eq8_score(0.2, 0.5) == 2.0 and eq8_score(0.06, 0.25) == 1.5 and eq8_score(0.01, 0.25) == 1.0 and eq8_score(0.0, 0.0) == 0.0


# ----------------------------------------------------------------------------------------- viewpoint
def _project(K, R, t, X):
    x = (K @ (R @ X.T + t[:, None])).T
    return x[:, :2] / x[:, 2:3]


def _tracks_from_cameras(poses, n=200, seed=0, depth=(2.0, 8.0), noise=0.05):
    """Tracks of random static 3D points seen by cameras ``poses`` [(R, t)] at 320x240."""
    rng = np.random.default_rng(seed)
    K = np.array([[260.0, 0, 160], [0, 260.0, 120], [0, 0, 1]])
    z = rng.uniform(*depth, n)
    uv = rng.uniform([20, 20], [300, 220], (n, 2))
    X = np.c_[(uv - [160, 120]) / 260.0 * z[:, None], z]
    xy = np.stack([_project(K, R, t, X) for R, t in poses], 1) + rng.normal(0, noise, (n, len(poses), 2))
    return Tracks(xy.astype(np.float32))


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_viewpoint_classifies_static_small_rotation_and_parallax():
    cfg = ViewpointConfig()
    T = 12
    still = [(np.eye(3), np.zeros(3))] * T
    small = [(np.eye(3), np.array([0.0005 * i, 0, 0])) for i in range(T)]
    pan = [(_rot_y(np.deg2rad(2.0 * i)), np.zeros(3)) for i in range(T)]
    truck = [(np.eye(3), np.array([-0.05 * i, 0, 0])) for i in range(T)]
    assert viewpoint_from_tracks(_tracks_from_cameras(still, noise=0.0), 320, 240, cfg).reason == labels.STATIC_CAMERA
    assert viewpoint_from_tracks(_tracks_from_cameras(small), 320, 240, cfg).reason == labels.SMALL_MOTION
    rot = viewpoint_from_tracks(_tracks_from_cameras(pan), 320, 240, cfg)
    assert rot.reason == labels.ROTATION_ONLY and rot.motion > 0.1
    good = viewpoint_from_tracks(_tracks_from_cameras(truck), 320, 240, cfg)
    assert good.reason is None and good.parallax > cfg.min_parallax


def test_viewpoint_with_too_few_tracks_is_not_measurable():
    tracks = _tracks_from_cameras([(np.eye(3), np.array([-0.05 * i, 0, 0])) for i in range(5)], n=5)
    assert viewpoint_from_tracks(tracks, 320, 240, ViewpointConfig()).reason == labels.SMALL_MOTION


def test_klt_tracks_follow_a_known_shift():
    base = texture(120, 200, 4)
    frames = np.stack([np.roll(base, 2 * i, axis=1)[:, 20:180] for i in range(5)])
    tracks = klt_tracks(frames)
    vis = tracks.visible
    both = vis[:, 0] & vis[:, 4]
    assert both.sum() > 50
    d = tracks.xy[both, 4] - tracks.xy[both, 0]
    np.testing.assert_allclose(np.median(d, 0), [8.0, 0.0], atol=0.1)


# ------------------------------------------------------------------------------------------ semantic
class _FakeDetector:
    """Returns a person covering ``area`` in the frames whose index (in the call) is listed."""

    name = "fake"

    def __init__(self, hits, area):
        self.hits, self.area = set(hits), area

    def detect(self, frames):
        return [[Detection("person", 0.9, (0, 0, 10, 10), self.area)] if i in self.hits else [] for i in range(len(frames))]


def test_semantic_drops_clips_dominated_by_people():
    frames = np.zeros((10, 32, 32, 3), np.uint8)
    cfg = SemanticConfig(frames=3, min_area=0.04, frames_drop=0.5, sure_score=0.95)
    assert analyse_semantic(frames, _FakeDetector({0, 1}, 0.2), cfg).drop  # 2 of 3 frames
    assert not analyse_semantic(frames, _FakeDetector({0}, 0.2), cfg).drop  # 1 of 3, not sure enough
    assert not analyse_semantic(frames, _FakeDetector({0, 1, 2}, 0.01), cfg).drop  # small, distant people


def test_semantic_drops_a_clip_with_one_confident_person():
    """A person seen in part of a clip (the athlete of a pole vault, in 1 of 3 checked frames) drops it
    when the detection is confident; an unsure one in a single frame does not."""
    frames = np.zeros((10, 32, 32, 3), np.uint8)
    cfg = SemanticConfig(frames=3, min_area=0.04, frames_drop=0.5, sure_score=0.85)
    sem = analyse_semantic(frames, _FakeDetector({1}, 0.2), cfg)  # score 0.9
    assert sem.drop and "score 0.90" in sem.message
    assert not analyse_semantic(frames, _FakeDetector({1}, 0.01), cfg).drop  # confident but tiny
    assert not analyse_semantic(frames, _FakeDetector({1}, 0.2), SemanticConfig(frames=3, min_area=0.04, frames_drop=0.5, sure_score=0.95)).drop


def test_maskrcnn_backend_loads_a_local_state_dict(tmp_path):
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    torch.save(model.state_dict(), tmp_path / "maskrcnn.pth")
    det = MaskRCNNDetector(tmp_path / "maskrcnn.pth", min_size=64, score=0.99)
    out = det.detect([np.zeros((64, 80, 3), np.uint8)])
    assert len(out) == 1 and all(d.label in det.names for d in out[0])
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError):
        MaskRCNNDetector(tmp_path / "other.pth")
    with pytest.raises(WeightsError):
        MaskRCNNDetector(tmp_path / "missing.pth")


# ---------------------------------------------------------------------------------------------- flow
def test_dis_flow_recovers_a_translation():
    base = texture(120, 200, 2)
    a, b = base[:, 10:170], base[:, 7:167]  # content moves 3 px to the right
    fwd, bwd = DISFlow("medium").pair(np.ascontiguousarray(a), np.ascontiguousarray(b))
    np.testing.assert_allclose(np.median(fwd[20:-20, 20:-20].reshape(-1, 2), 0), [3.0, 0.0], atol=0.1)
    np.testing.assert_allclose(np.median(bwd[20:-20, 20:-20].reshape(-1, 2), 0), [-3.0, 0.0], atol=0.1)


def test_raft_key_renaming_rules_and_padding():
    orig = {
        "module.fnet.conv1.weight": 0,
        "module.cnet.conv2.bias": 1,
        "module.fnet.layer2.0.conv3.weight": 2,
        "module.cnet.layer3.0.downsample.0.weight": 3,
        "module.update_block.encoder.convc1.weight": 4,
        "module.update_block.encoder.conv.bias": 5,
        "module.update_block.gru.convq.weight": 6,
        "module.update_block.flow_head.conv2.bias": 7,
    }
    assert raft_small_state_dict(orig) == {
        "feature_encoder.convnormrelu.0.weight": 0,
        "context_encoder.conv.bias": 1,
        "feature_encoder.layer2.0.convnormrelu3.0.weight": 2,
        "context_encoder.layer3.0.downsample.0.weight": 3,
        "update_block.motion_encoder.convcorr1.0.weight": 4,
        "update_block.motion_encoder.conv.0.bias": 5,
        "update_block.recurrent_block.convgru1.convq.weight": 6,
        "update_block.flow_head.conv2.bias": 7,
    }
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    y, pads = pad_to_multiple(x)
    assert y.shape == (2, 3, 8, 8) and pads == (1, 2, 0, 1)
    torch.testing.assert_close(y[:, :, 1:6, 0:7], x)


# ------------------------------------------------------------------------------------------- records
def test_manifest_schema_is_declared_once_by_the_record():
    for col in ("video", "clip_id", "start_s", "end_s", "decision", "reason", "dyn_area", "motion", "parallax", "person_frames"):
        assert col in MANIFEST_COLUMNS
    assert MANIFEST_SCHEMA.names == list(MANIFEST_COLUMNS)
    rec = ClipRecord(video="a.mp4", video_key="a-1", clip_id="a-1-c0000", dyn_area=0.5)
    back = record_from_dict(record_to_dict(rec))
    assert back.dyn_area == 0.5 and np.isnan(back.motion) and back.clip_id == "a-1-c0000"


# ------------------------------------------------------------------------------ issue 18: real footage
def test_photo_consistency_tells_a_followed_flow_from_a_failed_one():
    from see3d.curation.dynamic import photo_consistency

    base = cv2.cvtColor(texture(120, 200, 3), cv2.COLOR_RGB2GRAY)
    a, b = base[:, 10:170], base[:, 7:167]  # content moves 3 px to the right
    right = np.zeros((120, 160, 2), np.float32)
    right[..., 0] = 3.0
    wrong = np.zeros_like(right)
    wrong[..., 0] = -6.0
    assert np.median(photo_consistency(np.ascontiguousarray(a), np.ascontiguousarray(b), right)[10:-10, 10:-10]) > 0.95
    assert np.median(photo_consistency(np.ascontiguousarray(a), np.ascontiguousarray(b), wrong)[10:-10, 10:-10]) < 0.5


def small_mover_frames(n: int, seed: int = 0, step: float = 9.0, size: int = 12, w: int = 256, h: int = 192) -> list[np.ndarray]:
    """A translating camera over a layered static scene, and a small textured object (0.3% of the
    frame) crossing it fast: the flow does not follow the object, the clip must still be dynamic."""
    obj = texture(size, size, seed + 5, cell=3)
    out = []
    for i, f in enumerate(layered_frames(n, 1.0, 3.0, seed, w=w, h=h)):
        f = f.copy()
        x, y = int(20 + i * step) % (w - size - 10), int(40 + 20 * np.sin(i / 3))
        f[y : y + size, x : x + size] = obj
        out.append(f)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_a_small_fast_mover_makes_a_clip_dynamic(seed):
    flow = DISFlow("medium", 4)
    moving = analyse_dynamic(np.stack(small_mover_frames(24, seed)), flow, DynamicConfig())
    assert moving.drop and "small object" in moving.message and moving.area.max() < 0.02  # the area rules alone miss it
    still = analyse_dynamic(np.stack(layered_frames(24, 1.0, 3.0, seed, w=256, h=192)), flow, DynamicConfig())
    assert not still.drop


def _synth_clip_frames(tmp_path, seed: int, kind: str) -> np.ndarray:
    """One ``see3d synth`` clip (24 frames, 2 fps, 256 px) as curation samples it from its video."""
    from see3d.io.video import write_video
    from see3d.synth.variants import make_clip

    write_video(tmp_path / "clip.mp4", make_clip(seed, kind, n_frames=24, size=256, fps=2.0).frames, fps=2.0)
    return next(iter(ClipSampler(tmp_path / "clip.mp4", SampleConfig(clip_seconds=15.0)))).frames


def test_a_turning_object_the_flow_does_not_follow_makes_a_clip_dynamic(tmp_path):
    # synth seed 5, clip 21 (tuning data): a spinning box (0.4-0.8 rad between frames) that DIS does not follow;
    # the photometric check removes it from the epipolar test, the second tier of changed regions follows it
    frames = _synth_clip_frames(tmp_path, 335925074, "dynamic")
    flow = DISFlow("medium", 4)
    moving = analyse_dynamic(frames, flow, DynamicConfig())
    assert moving.drop and "the flow does not follow" in moving.message
    assert not analyse_dynamic(frames, flow, DynamicConfig(large_blob_max=0.0)).drop


def test_still_tracks_mean_small_motion_however_much_the_rest_moves():
    from see3d.curation.viewpoint import still_fraction

    T = 12
    truck = [(np.eye(3), np.array([-0.05 * i, 0, 0])) for i in range(T)]
    moving = _tracks_from_cameras(truck)
    assert still_fraction(moving, 400.0, 0.02) < 0.1
    # a nearly still camera: most points stay put, a fifth drift far (water, leaves): small_motion
    tracks = _tracks_from_cameras([(np.eye(3), np.zeros(3))] * T, noise=0.2)
    xy = tracks.xy.copy()
    drift = np.arange(len(xy)) % 5 == 0
    xy[drift] += np.linspace(0, 30, T)[None, :, None]
    tracks = Tracks(xy)
    assert still_fraction(tracks, 400.0, 0.02) == pytest.approx(0.8, abs=0.02)
    vp = viewpoint_from_tracks(tracks, 320, 240, ViewpointConfig())
    assert vp.reason == labels.SMALL_MOTION and "stay within" in vp.message
