"""Two CPU processes (torchrun + gloo DDP): different data per rank, gradients averaged, identical weights, falling loss."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from train_helpers import make_videos, tiny_unet_config

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import hashlib, json, os, sys
import torch
sys.path.insert(0, {tests!r})
from train_helpers import tiny_overrides
from see3d.train.small_model import small_train_config
from see3d.train.trainer import train

from see3d.train.clips import find_clips
from see3d.train.data import ClipDataset, ClipSampling, collate
from see3d.train.encoders import ContextEncoder, load_vae
from see3d.train.build import build_noise_scheduler, build_unet, condition_config
from see3d.train.trainer import compute_loss

o = tiny_overrides({data!r}, {out!r}, {unet!r}, max_steps=10, checkpoint_every=100, lr_warmup_steps=0, learning_rate=2e-3, num_refs=[1])
cfg = small_train_config(o.pop("data"), o.pop("output_dir"), **o)
res = train(cfg)
rank = int(os.environ["RANK"])

# loss on a fixed batch with fixed noise: the fresh model against the trained one
tc = json.load(open({out!r} + "/train_config.json"))  # the latent shift/scale the trainer measured
vae = load_vae("pixel_unshuffle", pixel_unshuffle_factor=4, scale=tc["pixel_scale"], shift=tc["pixel_shift"])
sched, cond, ctx = build_noise_scheduler(cfg), condition_config(cfg, vae), ContextEncoder("zero", tokens=2, dim=16)
batch = collate([ClipDataset(find_clips(cfg.data), ClipSampling(4, [1], resolution=32, seed=99))[g] for g in range(4)])
torch.manual_seed(cfg.seed)
fresh = build_unet(cfg, 48)
def fixed_loss(m):
    with torch.no_grad():
        return sum(float(compute_loss(batch, m, vae, ctx, sched, cond, torch.Generator().manual_seed(k), "cpu")) for k in range(4)) / 4

h = hashlib.sha256()
for p in res.unet.parameters():
    h.update(p.detach().numpy().tobytes())
first_row = res.unet.state_dict()["input_blocks.0.0.weight"].flatten()[:4].tolist()
json.dump({{"rank": rank, "hash": h.hexdigest(), "losses": res.losses, "w": first_row, "world": int(os.environ["WORLD_SIZE"]),
           "fixed_before": fixed_loss(fresh), "fixed_after": fixed_loss(res.unet.eval())}},
          open({out!r} + f"/rank{{rank}}.json", "w"))
"""


def test_two_process_ddp_keeps_weights_in_sync_and_loss_falls(tmp_path):
    data = make_videos(tmp_path / "vids", n=4, smooth=True)
    unet = tiny_unet_config(tmp_path / "unet.json")
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(ROOT / "tests"), data=str(data), out=str(out), unet=str(unet)))
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this Python")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    # gradients were all-reduced: both replicas hold bit-identical weights after 10 optimizer steps
    assert r0["hash"] == r1["hash"]
    assert r0["losses"] == r1["losses"]  # the logged loss is the mean over both processes
    assert len(r0["losses"]) == 10
    assert r0["fixed_after"] < 0.85 * r0["fixed_before"], (r0["fixed_before"], r0["fixed_after"])  # the loss falls
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()  # exported once, by the main process
