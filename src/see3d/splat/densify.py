"""Adaptive density control of 3DGS (Kerbl et al. 2023): clone, split, prune, opacity reset.

Splat parameters live in :class:`SplatParams` (one ``nn.Parameter`` per field of
:class:`~see3d.splat.gaussians.Gaussians`, one Adam param group each). Growing or pruning splats edits
the parameters *and* their Adam moments together, as the reference implementation does.
"""

from __future__ import annotations

import torch

from see3d.device import randn
from see3d.splat.gaussians import Gaussians
from see3d.splat.project import quat_to_rotmat

FIELDS = ("means", "quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest")


class SplatParams:
    """Trainable splats + their Adam optimiser. ``sh`` is split into DC and rest (different learning rates)."""

    def __init__(self, g: Gaussians, lrs: dict[str, float]):
        t = {
            "means": g.means,
            "quats": g.quats,
            "log_scales": g.log_scales,
            "opacity_logits": g.opacity_logits,
            "sh_dc": g.sh[:, :1],
            "sh_rest": g.sh[:, 1:],
        }
        self.params = {k: torch.nn.Parameter(v.detach().clone().contiguous()) for k, v in t.items()}
        groups = [{"params": [self.params[k]], "lr": lrs[k], "name": k} for k in FIELDS]
        self.optimizer = torch.optim.Adam(groups, lr=0.0, eps=1e-15)

    def __len__(self) -> int:
        return self.params["means"].shape[0]

    def gaussians(self) -> Gaussians:
        """Current splats (differentiable views of the parameters)."""
        p = self.params
        return Gaussians(p["means"], p["quats"], p["log_scales"], p["opacity_logits"], torch.cat([p["sh_dc"], p["sh_rest"]], 1))

    def set_lr(self, name: str, lr: float) -> None:
        for grp in self.optimizer.param_groups:
            if grp["name"] == name:
                grp["lr"] = lr

    def _edit(self, fn_param, fn_state) -> None:
        """Replace every parameter by ``fn_param(name, old)`` and its Adam moments by ``fn_state(name, moment)``."""
        for grp in self.optimizer.param_groups:
            name = grp["name"]
            old = grp["params"][0]
            new = torch.nn.Parameter(fn_param(name, old.detach()).contiguous())
            st = self.optimizer.state.pop(old, None)
            if st:
                st["exp_avg"] = fn_state(name, st["exp_avg"]).contiguous()
                st["exp_avg_sq"] = fn_state(name, st["exp_avg_sq"]).contiguous()
                self.optimizer.state[new] = st
            grp["params"] = [new]
            self.params[name] = new

    def keep(self, mask: torch.Tensor) -> None:
        """Keep only the splats where ``mask (G,)`` is True."""
        self._edit(lambda n, t: t[mask], lambda n, m: m[mask])

    def append(self, new: dict[str, torch.Tensor]) -> None:
        """Append splats (``new`` keyed like :data:`FIELDS`); their Adam moments start at zero."""
        self._edit(lambda n, t: torch.cat([t, new[n].to(t.dtype)]), lambda n, m: torch.cat([m, torch.zeros_like(new[n], dtype=m.dtype)]))

    def reset_opacity(self, max_opacity: float = 0.01) -> None:
        """Clamp every opacity to ``max_opacity`` and zero the opacity's Adam moments (3DGS's reset)."""
        cap = float(torch.logit(torch.tensor(max_opacity)))
        self._edit(
            lambda n, t: torch.clamp_max(t, cap) if n == "opacity_logits" else t,
            lambda n, m: torch.zeros_like(m) if n == "opacity_logits" else m,
        )


def split_offsets(scales: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Local-frame offsets of one child per split splat: ``N(0, 1) * scales``, ``scales (S, 3)`` -> ``(S, 3)``.

    Drawn on the generator's device (a CPU generator for CUDA splats), so runs are reproducible on any device.
    """
    return randn(scales.shape, generator, scales.device, scales.dtype) * scales


def densify_and_prune(
    sp: SplatParams,
    grads: torch.Tensor,
    extent: float,
    grad_threshold: float,
    percent_dense: float,
    min_opacity: float,
    max_gaussians: int,
    prune_big: bool,
    generator: torch.Generator,
) -> dict[str, int]:
    """One round of 3DGS adaptive density control.

    Args:
        grads: (G,) mean view-space positional gradient norm (NDC units) since the last round.
        prune_big: also prune splats larger than 0.1 x extent (3DGS does after the first opacity reset).

    Small splats with large gradients are cloned, large ones split in two (samples from the splat,
    scales / 1.6); then splats with opacity < ``min_opacity`` (and optionally too big) are pruned.
    Returns counts {"cloned", "split", "pruned"}.
    """
    p = {k: v.detach() for k, v in sp.params.items()}
    n0 = len(sp)
    room = max(0, max_gaussians - n0)
    big = p["log_scales"].exp().max(1).values > percent_dense * extent
    hot = grads >= grad_threshold
    clone = hot & ~big
    split = hot & big
    if room < int(clone.sum() + split.sum()):  # over budget: keep the highest gradients
        cand = torch.nonzero(hot).squeeze(1)
        top = cand[torch.argsort(grads[cand], descending=True, stable=True)[:room]]
        sel = torch.zeros_like(hot)
        sel[top] = True
        clone, split = clone & sel, split & sel

    new = {k: v[clone] for k, v in p.items()}
    # split: two samples from each big splat, scales divided by 1.6 (0.8 x 2)
    if split.any():
        sc = p["log_scales"][split].exp()
        R = quat_to_rotmat(p["quats"][split])
        parts = []
        for _ in range(2):
            noise = split_offsets(sc, generator)
            parts.append(
                {
                    "means": p["means"][split] + (R @ noise[..., None])[..., 0],
                    "quats": p["quats"][split],
                    "log_scales": (sc / 1.6).log(),
                    "opacity_logits": p["opacity_logits"][split],
                    "sh_dc": p["sh_dc"][split],
                    "sh_rest": p["sh_rest"][split],
                }
            )
        for k in new:
            new[k] = torch.cat([new[k]] + [q[k] for q in parts])
    n_new = len(new["means"])
    if n_new:
        sp.append(new)
    # prune: the split originals, transparent splats and (optionally) huge ones
    drop = torch.cat([split, torch.zeros(n_new, dtype=torch.bool, device=split.device)])
    q = {k: v.detach() for k, v in sp.params.items()}
    drop |= torch.sigmoid(q["opacity_logits"]) < min_opacity
    if prune_big:
        drop |= q["log_scales"].exp().max(1).values > 0.1 * extent
    if drop.all():  # never prune everything
        drop[torch.argmax(q["opacity_logits"])] = False
    sp.keep(~drop)
    return {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int(drop.sum())}
