"""Train/test view splits of the evaluation protocols.

Sparse-view splits follow the convention of RegNeRF / FreeNeRF, which ReconFusion and CAT3D (and,
per its table, See3D) reuse, so numbers are comparable with the published ones:

- **LLFF, Mip-NeRF 360 and other "hold out every 8th" scenes** (:func:`holdout_split`): with images
  sorted by file name, the test views are indices ``0, 8, 16, ...``; the remaining indices, in order,
  form the candidate list ``rest``; the ``k`` training views are
  ``rest[round(t)] for t in np.linspace(0, len(rest) - 1, k)`` (Python's round, half to even).
  For the 20-image LLFF fern: test = [0, 8, 16], 3 views = [1, 10, 19], 6 views = [1, 4, 7, 12, 15, 19]
  and 9 views = [1, 3, 5, 7, 10, 12, 14, 17, 19].
- **DTU** (:func:`dtu_split`, the pixelNeRF split): train views in the order
  ``25, 22, 28, 40, 44, 48, 0, 8, 13`` (the first ``k`` are used), 15 excluded views
  ``3-7, 16-21, 36-39`` (nearly no overlap with the object), and test = the other 25 of the 49 views.
- **dense**: test = every 8th view (as above), train = all the others.
- **single** (:func:`single_view_split`, ViewCrafter style): view 0 is the input; the targets are
  ``n`` later views picked evenly, ending with the last view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTU_TRAIN_ORDER = (25, 22, 28, 40, 44, 48, 0, 8, 13)
DTU_EXCLUDED = (3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 36, 37, 38, 39)
DTU_NUM_VIEWS = 49


@dataclass(frozen=True)
class Split:
    """Indices into a scene's views (in the scene's order)."""

    train: tuple[int, ...]
    test: tuple[int, ...]
    rule: str  # how it was made, in words, for the report

    def __post_init__(self) -> None:
        if set(self.train) & set(self.test):
            raise ValueError(f"split: views {sorted(set(self.train) & set(self.test))} are both train and test")
        if not self.train or not self.test:
            raise ValueError("split: needs at least one train and one test view")


def holdout_split(n_views: int, n_train: int | None = None, every: int = 8) -> Split:
    """Test = every ``every``-th view from 0; train = ``n_train`` views spread evenly over the rest
    (all of the rest when ``n_train`` is None). See the module docstring for the exact rule."""
    if n_views < 2:
        raise ValueError(f"split: need at least 2 views, got {n_views}")
    test = list(range(0, n_views, every))
    rest = [i for i in range(n_views) if i % every != 0]
    if n_train is None:
        return Split(tuple(rest), tuple(test), f"test = every {every}th view; train = all {len(rest)} others")
    if not 1 <= n_train <= len(rest):
        raise ValueError(f"split: cannot pick {n_train} train views from {len(rest)} non-test views")
    picks = [rest[round(float(t))] for t in np.linspace(0, len(rest) - 1, n_train)]
    return Split(tuple(picks), tuple(test), f"test = every {every}th view; train = {n_train} picked by linspace over the other {len(rest)}")


def dtu_split(n_train: int, n_views: int = DTU_NUM_VIEWS) -> Split:
    """The pixelNeRF/RegNeRF DTU split for ``n_train`` (1..9) input views of a 49-view scan."""
    if not 1 <= n_train <= len(DTU_TRAIN_ORDER):
        raise ValueError(f"split: DTU protocol has at most {len(DTU_TRAIN_ORDER)} train views, asked for {n_train}")
    if n_views < DTU_NUM_VIEWS:
        raise ValueError(f"split: a DTU scan has {DTU_NUM_VIEWS} views, this one has {n_views}")
    train = DTU_TRAIN_ORDER[:n_train]
    test = tuple(i for i in range(DTU_NUM_VIEWS) if i not in DTU_TRAIN_ORDER and i not in DTU_EXCLUDED)
    return Split(train, test, f"DTU pixelNeRF split: train = {list(train)}, 25 test views")


def single_view_split(n_views: int, n_targets: int | None = None) -> Split:
    """View 0 in; ``n_targets`` later views (evenly spaced, always including the last) as targets."""
    if n_views < 2:
        raise ValueError(f"split: single-view protocol needs at least 2 views, got {n_views}")
    later = list(range(1, n_views))
    if n_targets is None or n_targets >= len(later):
        targets = later
    else:
        if n_targets < 1:
            raise ValueError(f"split: n_targets must be >= 1, got {n_targets}")
        targets = sorted({later[round(float(t))] for t in np.linspace(len(later) - 1, 0, n_targets, endpoint=False)[::-1]})
    return Split((0,), tuple(targets), f"single view: input = view 0; targets = {len(targets)} later views")
