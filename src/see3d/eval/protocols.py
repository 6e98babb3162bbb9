"""Evaluation protocols as small functions over injectable components.

Components (plain callables, so tests can pass tiny fast ones):

- ``reconstruct(request: ReconstructRequest) -> render`` fits a 3D representation to posed images and
  returns ``render(cameras: Cameras) -> (N, H, W, 3)`` float images in [0, 1] (see
  :mod:`see3d.eval.components` for the 3DGS one).
- ``generate(inputs: Views, targets: Cameras) -> Views`` makes images at ``targets`` from the input
  views (the See3D warp-and-generate pipeline, or anything else).

Protocols:

- :func:`run_sparse` (``sparse3`` / ``sparse6`` / ``sparse9``): k input views; with ``generate``, extra
  views are generated at cameras interpolated between the inputs, then 3DGS is fitted to inputs +
  generated views; without it, to the inputs alone (the reconstruction-only baseline). Held-out test
  views are rendered and scored.
- :func:`run_dense`: every 8th view held out, all others train (checks reconstruction quality).
- :func:`run_single`: view 0 in, later views' cameras given, the generated frames scored against the truth.

Splits: :func:`split_for` (see :mod:`see3d.datasets.splits`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from see3d.datasets import Scene
from see3d.datasets.splits import Split, dtu_split, holdout_split, single_view_split
from see3d.errors import InputError
from see3d.eval.scoring import Scorer, mean_metrics
from see3d.io.cameras import Cameras
from see3d.io.views import Views
from see3d.log import get_logger

log = get_logger(__name__)

PROTOCOLS = ("sparse3", "sparse6", "sparse9", "single", "dense")
SPARSE_VIEWS = {"sparse3": 3, "sparse6": 6, "sparse9": 9}

RenderFn = Callable[[Cameras], np.ndarray]


@dataclass
class ReconstructRequest:
    """What a reconstruct component gets.

    Attributes:
        views: images to fit: the ``num_inputs`` real input views first, then any generated views.
        num_inputs: how many of ``views`` are real inputs.
        iters: optimisation steps (None: the reconstruction's default).
        seed: random seed.
        points / point_colors: optional (P, 3) sparse points (world) and colours in [0, 1] for initialisation.
        bounds: optional (num_inputs, 2) near/far depth of the input views (world units).
    """

    views: Views
    num_inputs: int
    iters: int | None = None
    seed: int = 0
    points: np.ndarray | None = None
    point_colors: np.ndarray | None = None
    bounds: np.ndarray | None = None


ReconstructFn = Callable[[ReconstructRequest], RenderFn]
GenerateFn = Callable[[Views, Cameras], Views]


@dataclass
class SceneResult:
    """One scene under one protocol: per-view metrics, their mean, timings, and images for the report.

    ``inputs``/``truth``/``pred`` are (N, H, W, 3) arrays (not written to JSON); ``test_names`` name the
    rows of ``truth``/``pred`` and ``per_view``.
    """

    scene: str
    format: str
    protocol: str
    method: str
    split: Split
    per_view: list[dict]
    mean: dict
    seconds: dict[str, float]
    num_generated: int = 0
    inputs: np.ndarray | None = field(default=None, repr=False)
    truth: np.ndarray | None = field(default=None, repr=False)
    pred: np.ndarray | None = field(default=None, repr=False)
    test_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "scene": self.scene,
            "format": self.format,
            "protocol": self.protocol,
            "method": self.method,
            "train_views": list(self.split.train),
            "test_views": list(self.split.test),
            "split_rule": self.split.rule,
            "num_generated": self.num_generated,
            "mean": self.mean,
            "per_view": [{"view": n, **m} for n, m in zip(self.test_names, self.per_view)],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------- splits
def split_for(scene: Scene, protocol: str, n_targets: int | None = None) -> Split:
    """The split a protocol uses on ``scene``.

    - sparse-k: DTU scans use the pixelNeRF DTU split; scenes with a dataset split (Blender / split file)
      keep its test views and pick k train views from its train views by the linspace rule; all others
      hold out every 8th view and pick k by linspace over the rest.
    - dense: the dataset split when there is one, else every 8th view held out.
    - single: view 0 in, ``n_targets`` later views (all when None).
    """
    n = len(scene)
    if protocol in SPARSE_VIEWS:
        k = SPARSE_VIEWS[protocol]
        if scene.format == "dtu":
            return dtu_split(k, n)
        if scene.split is not None:
            tr = scene.split.train
            if k > len(tr):
                raise InputError(scene.path, f"{protocol} needs {k} train views but the dataset split has {len(tr)}")
            picks = tuple(tr[round(float(t))] for t in np.linspace(0, len(tr) - 1, k))
            return Split(picks, scene.split.test, f"{scene.split.rule}; {k} train views by linspace over its {len(tr)} train views")
        if n < k + 1:
            raise InputError(scene.path, f"{protocol} needs more than {k} views; the scene has {n}")
        return holdout_split(n, k)
    if protocol == "dense":
        return scene.split if scene.split is not None else holdout_split(n)
    if protocol == "single":
        return single_view_split(n, n_targets)
    raise ValueError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")


# ---------------------------------------------------------------------------------------------- cameras for generation
def cameras_between(cameras: Cameras, per_gap: int) -> Cameras:
    """``per_gap`` cameras evenly between each consecutive pair of ``cameras`` (N -> (N-1) * per_gap).

    Positions are interpolated linearly, rotations by spherical linear interpolation (scipy's ``Slerp``),
    intrinsics linearly. With one input camera nothing can be interpolated and an empty set is returned.
    """
    from scipy.spatial.transform import Rotation, Slerp

    if per_gap < 1 or len(cameras) < 2:
        return Cameras(np.zeros((0, 3, 3)), np.zeros((0, 4, 4)), cameras.width, cameras.height)
    Ks, c2ws = [], []
    ts = (np.arange(per_gap) + 1) / (per_gap + 1)
    for a in range(len(cameras) - 1):
        ca, cb = cameras.c2w[a], cameras.c2w[a + 1]
        slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([ca[:3, :3], cb[:3, :3]])))
        R = slerp(ts).as_matrix()
        for j, t in enumerate(ts):
            m = np.eye(4)
            m[:3, :3] = R[j]
            m[:3, 3] = (1 - t) * ca[:3, 3] + t * cb[:3, 3]
            c2ws.append(m)
            Ks.append((1 - t) * cameras.K[a] + t * cameras.K[a + 1])
    return Cameras(np.array(Ks), np.array(c2ws), cameras.width, cameras.height)


def order_along_path(cameras: Cameras) -> np.ndarray:
    """Input order for interpolation: a greedy nearest-neighbour path from the camera farthest from the mean."""
    c = cameras.centers
    if len(c) <= 2:
        return np.arange(len(c))
    start = int(np.argmax(np.linalg.norm(c - c.mean(0), axis=1)))
    order, left = [start], set(range(len(c))) - {start}
    while left:
        last = c[order[-1]]
        nxt = min(left, key=lambda i: float(np.linalg.norm(c[i] - last)))
        order.append(nxt)
        left.remove(nxt)
    return np.array(order)


# ---------------------------------------------------------------------------------------------- protocols
def _render_and_score(render: RenderFn, scene: Scene, split: Split, scorer: Scorer) -> tuple[np.ndarray, np.ndarray, list[dict], float]:
    test = scene.views[list(split.test)]
    t0 = time.perf_counter()
    pred = np.asarray(render(test.cameras), dtype=np.float32)
    if pred.shape != test.images.shape:
        raise ValueError(f"render returned {pred.shape}, expected {test.images.shape}")
    dt = time.perf_counter() - t0
    masks = test.masks if scene.masked_metrics and test.masks is not None else None
    return test.images, pred, scorer.score(pred, test.images, masks), dt


def _request(scene: Scene, train: Views, idx: list[int], iters: int | None, seed: int) -> ReconstructRequest:
    bounds = None if scene.bounds is None else np.asarray(scene.bounds)[idx]
    return ReconstructRequest(train, len(idx), iters, seed, scene.points, scene.point_colors, bounds)


def run_sparse(
    scene: Scene,
    num_inputs: int,
    reconstruct: ReconstructFn,
    scorer: Scorer,
    generate: GenerateFn | None = None,
    generated_per_gap: int = 4,
    iters: int | None = None,
    seed: int = 0,
    split: Split | None = None,
) -> SceneResult:
    """Sparse-view protocol: ``num_inputs`` inputs (-> generated views) -> reconstruct -> score held-out views.

    ``generated_per_gap`` views are generated between each pair of neighbouring inputs (ordered along a
    nearest-neighbour path), i.e. ``(num_inputs - 1) * generated_per_gap`` in all. Without ``generate`` this
    is the reconstruction-only baseline. The scene's sparse points are not given to the reconstruction:
    they come from SfM on *all* views, which a sparse-view method does not have.
    """
    protocol = f"sparse{num_inputs}"
    split = split or split_for(scene, protocol)
    idx = list(split.train)
    inputs = scene.views[idx]
    seconds: dict[str, float] = {}
    train = inputs
    n_gen = 0
    notes = []
    if generate is not None:
        order = order_along_path(inputs.cameras)
        targets = cameras_between(inputs.cameras[order], generated_per_gap)
        if len(targets):
            t0 = time.perf_counter()
            gen = generate(inputs, targets)
            seconds["generate"] = time.perf_counter() - t0
            if len(gen) != len(targets) or gen.images.shape[1:] != inputs.images.shape[1:]:
                raise ValueError(f"generate returned {len(gen)} views of {gen.images.shape[1:]}, expected {len(targets)} of {inputs.images.shape[1:]}")
            n_gen = len(gen)
            train = Views(
                np.concatenate([inputs.images, gen.images]),
                Cameras.cat([inputs.cameras, gen.cameras]),
                names=list(inputs.names) + [f"gen_{i:03d}" for i in range(n_gen)],
            )
    else:
        notes.append("reconstruction-only baseline: 3DGS from the input views alone (no MVD weights given)")
    req = _request(scene, train, idx, iters, seed)
    req.points = req.point_colors = None
    t0 = time.perf_counter()
    render = reconstruct(req)
    seconds["reconstruct"] = time.perf_counter() - t0
    truth, pred, rows, seconds["render"] = _render_and_score(render, scene, split, scorer)
    method = "see3d (generated views + 3DGS)" if generate is not None else "3DGS on inputs only (baseline)"
    test_names = [scene.views.names[i] for i in split.test]
    return SceneResult(scene.name, scene.format, protocol, method, split, rows, mean_metrics(rows), seconds, n_gen, inputs.images, truth, pred, test_names, notes)


def run_dense(scene: Scene, reconstruct: ReconstructFn, scorer: Scorer, iters: int | None = None, seed: int = 0, split: Split | None = None) -> SceneResult:
    """Dense protocol: every 8th view held out (or the dataset split), 3DGS on all others, score the held-out views.

    The scene's sparse points (COLMAP) initialise the reconstruction when present.
    """
    split = split or split_for(scene, "dense")
    idx = list(split.train)
    train = scene.views[idx]
    t0 = time.perf_counter()
    render = reconstruct(_request(scene, train, idx, iters, seed))
    seconds = {"reconstruct": time.perf_counter() - t0}
    truth, pred, rows, seconds["render"] = _render_and_score(render, scene, split, scorer)
    test_names = [scene.views.names[i] for i in split.test]
    return SceneResult(scene.name, scene.format, "dense", "3DGS on all train views", split, rows, mean_metrics(rows), seconds, 0, train.images, truth, pred, test_names)


def run_single(scene: Scene, generate: GenerateFn, scorer: Scorer, n_targets: int | None = 24, split: Split | None = None) -> SceneResult:
    """Single-view protocol (ViewCrafter style): view 0 in; the later views' cameras given; generated frames scored.

    No 3D reconstruction is involved: the generated images themselves are compared with the truth.
    """
    split = split or split_for(scene, "single", n_targets)
    inputs = scene.views[list(split.train)]
    test = scene.views[list(split.test)]
    t0 = time.perf_counter()
    gen = generate(inputs, test.cameras)
    seconds = {"generate": time.perf_counter() - t0}
    if gen.images.shape != test.images.shape:
        raise ValueError(f"generate returned {gen.images.shape}, expected {test.images.shape}")
    masks = test.masks if scene.masked_metrics and test.masks is not None else None
    rows = scorer.score(gen.images, test.images, masks)
    test_names = [scene.views.names[i] for i in split.test]
    return SceneResult(scene.name, scene.format, "single", "see3d generation (no 3DGS)", split, rows, mean_metrics(rows), seconds, len(gen), inputs.images, test.images, gen.images, test_names)
