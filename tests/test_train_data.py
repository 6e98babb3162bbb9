"""Training data: clip discovery, frame / reference choice, and step-keyed determinism of the sampler."""

import json

import numpy as np
import pytest
import torch

from see3d.errors import InputError
from see3d.io.video import write_video
from see3d.train.clips import find_clips
from see3d.train.data import ClipDataset, ClipSampling, StepBatchSampler, choose_frames, choose_refs, collate, sample_index, sample_rng


def _clip(rng, n=12, size=32):
    tex = (rng.random((size, size * 2, 3)) * 255).astype(np.uint8)
    return [np.roll(tex, 2 * i, axis=1)[:, :size] for i in range(n)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("vids")
    rng = np.random.default_rng(0)
    for i in range(4):
        write_video(root / f"clip{i}.mp4", _clip(rng), fps=10)
    return root


def test_choose_frames_strided_and_random():
    for seed in range(50):
        rng = np.random.default_rng(seed)
        idx = choose_frames(rng, 20, 5, "strided", 1, 4)
        d = np.diff(idx)
        assert len(idx) == 5 and (d == d[0]).all() and 1 <= d[0] <= 4 and idx[0] >= 0 and idx[-1] < 20
        r = choose_frames(rng, 20, 5, "random")
        assert len(set(r.tolist())) == 5 and (np.diff(r) > 0).all() and r.max() < 20
    # a short clip shrinks the stride so the frames still fit
    assert (np.diff(choose_frames(np.random.default_rng(0), 5, 5, "strided", 3, 4)) == 1).all()
    with pytest.raises(ValueError, match="fewer"):
        choose_frames(np.random.default_rng(0), 4, 5)


def test_choose_refs_puts_s_references_first_in_random_order():
    seen_orders = set()
    for seed in range(40):
        order, s = choose_refs(np.random.default_rng(seed), 6, [1, 3])
        assert s in (1, 3) and sorted(order.tolist()) == list(range(6))
        seen_orders.add(tuple(order.tolist()))
    assert len(seen_orders) > 10  # shuffled
    order, s = choose_refs(np.random.default_rng(1), 6, [2], shuffle=False)
    assert s == 2 and (np.diff(order[:2]) > 0).all() and (np.diff(order[2:]) > 0).all()


def test_dataset_items_depend_only_on_seed_and_index(videos):
    clips = find_clips(videos)
    assert [c.key for c in clips] == ["clip0", "clip1", "clip2", "clip3"]
    a = ClipDataset(clips, ClipSampling(4, [1, 2], resolution=16, seed=3))
    b = ClipDataset(clips, ClipSampling(4, [1, 2], resolution=16, seed=3))
    order = [7, 2, 11, 0]
    items_a = {g: a[g] for g in order}
    items_b = {g: b[g] for g in reversed(order)}  # access order must not matter
    for g in order:
        assert torch.equal(items_a[g]["pixels"], items_b[g]["pixels"])
        assert items_a[g]["clip"] == items_b[g]["clip"] and items_a[g]["num_refs"] == items_b[g]["num_refs"]
        assert items_a[g]["pixels"].shape == (4, 3, 16, 16)
        assert items_a[g]["pixels"].min() >= -1 and items_a[g]["pixels"].max() <= 1
    # every epoch visits each clip once; another seed gives another plan
    assert sorted(a.clip_for_index(g) for g in range(4)) == [0, 1, 2, 3]
    assert sorted(a.clip_for_index(g) for g in range(4, 8)) == [0, 1, 2, 3]
    c = ClipDataset(clips, ClipSampling(4, [1], resolution=16, seed=4))
    assert [c.clip_for_index(g) for g in range(12)] != [a.clip_for_index(g) for g in range(12)]


def test_dataset_frames_match_the_video(videos):
    from see3d.io.video import read_frames

    clips = find_clips(videos)
    ds = ClipDataset(clips, ClipSampling(3, [1], resolution=32, seed=0, shuffle_frames=False))
    item = ds[5]
    frames = read_frames(videos / f"{item['clip']}.mp4")
    expect = torch.from_numpy(frames[item["frame_index"].numpy()]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(item["pixels"], expect)


def test_step_sampler_resumes_with_the_same_indices_and_ranks_are_disjoint():
    full = list(StepBatchSampler(0, 6, batch_size=2, accum=2, rank=0, world=1))
    resumed = list(StepBatchSampler(4, 6, batch_size=2, accum=2, rank=0, world=1))
    assert resumed == full[8:]
    r0 = [g for b in StepBatchSampler(0, 3, 2, 1, 0, 2) for g in b]
    r1 = [g for b in StepBatchSampler(0, 3, 2, 1, 1, 2) for g in b]
    assert not set(r0) & set(r1) and sorted(r0 + r1) == list(range(12))
    assert sample_index(step=1, micro=0, rank=1, slot=1, accum=1, world=2, batch=2) == 7


def test_dataloader_with_workers_gives_the_same_batches(videos):
    ds = ClipDataset(find_clips(videos), ClipSampling(3, [1], resolution=16, seed=0))

    def batches(workers):
        dl = torch.utils.data.DataLoader(ds, batch_sampler=StepBatchSampler(0, 3, 2), collate_fn=collate, num_workers=workers)
        return [b["pixels"] for b in dl]

    for x, y in zip(batches(0), batches(2)):
        assert torch.equal(x, y)


def test_synth_set_keeps_only_clips_labelled_keep(tmp_path):
    rng = np.random.default_rng(0)
    for name, decision in (("a", "keep"), ("b", "drop"), ("c", "keep")):
        write_video(tmp_path / f"{name}.mp4", _clip(rng, 6, 16), fps=10)
        (tmp_path / name).mkdir()
        (tmp_path / name / "label.json").write_text(json.dumps({"clip_id": name, "label": decision, "reason": "ok"}))
    assert [c.key for c in find_clips(tmp_path)] == ["a", "c"]
    assert [c.key for c in find_clips(tmp_path, synth_keep_only=False)] == ["a", "b", "c"]


def test_unreadable_and_short_clips_are_skipped(tmp_path, caplog):
    rng = np.random.default_rng(0)
    write_video(tmp_path / "good.mp4", _clip(rng, 8, 16), fps=10)
    write_video(tmp_path / "short.mp4", _clip(rng, 2, 16), fps=10)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    ds = ClipDataset(find_clips(tmp_path), ClipSampling(4, [1], resolution=16, seed=0))
    assert {ds[g]["clip"] for g in range(9)} == {"good"}
    assert "broken.mp4" in caplog.text and "short.mp4" in caplog.text
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable training clips"):
        find_clips(tmp_path / "empty")
    with pytest.raises(InputError, match="not found"):
        find_clips(tmp_path / "missing")


def test_sample_rng_streams_are_independent():
    assert sample_rng(0, 5, 1).random() != sample_rng(0, 5, 2).random()
    assert sample_rng(0, 5, 1).random() == sample_rng(0, 5, 1).random()


def test_curation_output_is_read_through_the_shard_index(tmp_path):
    from see3d.curation.reader import read_clip
    from see3d.curation.writer import ClipSample, ShardPart, commit_dataset, encode_frame, pack_shards, write_samples_tar

    rng = np.random.default_rng(0)
    parts = []
    for v in range(2):
        samples = [ClipSample(f"vid{v}-c{c}", {"video": f"vid{v}.mp4"}, [encode_frame(f) for f in _clip(rng, 6, 16)]) for c in range(2)]
        tar = tmp_path / "work" / f"vid{v}.tar"
        parts.append(ShardPart(f"vid{v}", tar, write_samples_tar(tar, samples)))
    commit_dataset(tmp_path / "cur", pack_shards(tmp_path / "cur", parts, max_bytes=10_000), [])
    clips = find_clips(tmp_path / "cur")
    assert [c.key for c in clips] == ["vid0-c0", "vid0-c1", "vid1-c0", "vid1-c1"] and clips[0].kind == "curation"
    ds = ClipDataset(clips, ClipSampling(3, [1], resolution=16, seed=0, shuffle_frames=False))
    item = ds[2]
    frames = read_clip(tmp_path / "cur", item["clip"])[0]
    expect = torch.from_numpy(frames[item["frame_index"].numpy()]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(item["pixels"], expect)
