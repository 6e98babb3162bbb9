"""Sparse metric anchors: keypoint matches between posed views, triangulated with the known cameras.

Paper §3.3 (Eq. 4): for a keypoint ``m_n`` of view n matched to ``m_i`` in view i, the depth of ``m_n``
is the value that makes its reprojection through ``K_i T_i T_n^{-1} K_n^{-1}`` land on ``m_i``
(:func:`ray_depths`, closed form). With more than two views a keypoint track is triangulated by linear
least squares over all its views (:func:`triangulate`, the same constraint stacked), and every observing
view gets the point's z-depth as its *anchor depth* at the observed pixel. These anchors are what a
depth prediction is aligned to (:mod:`see3d.geometry.lwlr`, :mod:`see3d.geometry.align`).

:class:`AnchorStore` keeps features and anchor points of every view seen so far: the input views are
matched all-pairs and triangulated as tracks; during chained generation each new view is matched to
the nearest earlier views, and a match to a keypoint that already belongs to an anchor point reuses
that point (checked by reprojection), while the others are triangulated as new two-view points.
Views may differ in resolution (each keypoint lives in its own view's pixels and camera).

Checks on every point: in front of all its cameras, reprojection error below ``max_reproj_px`` in
each, and a triangulation angle of at least ``min_angle_deg`` (small angles give unreliable depth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from see3d.geometry.keypoints import Features, MatchConfig, detect_sift, verified_matches
from see3d.io.cameras import Cameras


@dataclass
class AnchorConfig:
    """Anchor settings (matching, triangulation checks, partners of a new view)."""

    match: MatchConfig = field(default_factory=MatchConfig)
    max_reproj_px: float = 2.0
    min_angle_deg: float = 1.0
    max_partners: int = 4


@dataclass
class ViewAnchors:
    """Anchors seen by one view: ``uv (K, 2)`` observed pixels, ``z (K,)`` the points' z-depth in this
    camera (scene units), ``point_ids (K,)`` indices into :attr:`AnchorStore.points`."""

    uv: np.ndarray
    z: np.ndarray
    point_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.z)


def ray_depths(uv_src: np.ndarray, cam_src: Cameras, uv_dst: np.ndarray, cam_dst: Cameras) -> np.ndarray:
    """Eq. 4 in closed form: (M,) z-depth of source pixels ``uv_src (M, 2)`` whose reprojection into
    ``cam_dst`` best lands on ``uv_dst (M, 2)`` (least squares of the linearised image-plane residual).
    Per-keypoint scale of a prediction ``p`` is then ``ray_depths / p`` (NaN where undetermined)."""
    xs = np.concatenate([uv_src, np.ones((len(uv_src), 1))], 1) @ np.linalg.inv(cam_src.K[0]).T  # (M, 3), z = 1
    T = cam_dst.w2c[0] @ cam_src.c2w[0]
    A = (xs @ T[:3, :3].T) @ cam_dst.K[0].T  # projection of z * xs: z * A + B
    B = cam_dst.K[0] @ T[:3, 3]
    a = np.stack([A[:, 0] - uv_dst[:, 0] * A[:, 2], A[:, 1] - uv_dst[:, 1] * A[:, 2]], 1)
    b = np.stack([B[0] - uv_dst[:, 0] * B[2], B[1] - uv_dst[:, 1] * B[2]], 1)
    den = (a * a).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 1e-18, -(a * b).sum(1) / den, np.nan)


def triangulate(P: np.ndarray, uv: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation of T tracks over up to L views.

    Args:
        P: (T, L, 3, 4) projection matrices ``K [R | t]`` (world -> pixels).
        uv: (T, L, 2) observed pixels; valid: (T, L) bool, which observations exist.
    Returns:
        (T, 3) world points (NaN where the solution is at infinity).
    """
    rows = np.concatenate([uv[..., :1] * P[..., 2, :] - P[..., 0, :], uv[..., 1:2] * P[..., 2, :] - P[..., 1, :]], axis=1)
    w = np.concatenate([valid, valid], axis=1)[..., None]
    A = rows * w  # (T, 2L, 4)
    A = A / np.maximum(np.linalg.norm(A, axis=2, keepdims=True), 1e-30)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = X[:, :3] / X[:, 3:4]
    return np.where(np.abs(X[:, 3:4]) > 1e-12, out, np.nan)


def _projections(cameras: Cameras) -> np.ndarray:
    return np.einsum("nij,njk->nik", cameras.K, cameras.w2c[:, :3, :])


def _check_points(X: np.ndarray, cams: list[Cameras], uvs: np.ndarray, valid: np.ndarray, cfg: AnchorConfig) -> np.ndarray:
    """(T,) bool: points in front of every observing camera, reprojecting within ``max_reproj_px``,
    with a triangulation angle of at least ``min_angle_deg``. ``cams``: per track slot l a Cameras of T."""
    ok = np.isfinite(X).all(1)
    Xs = np.where(ok[:, None], X, 0.0)
    rays = []
    for slot, cam in enumerate(cams):
        w2c = cam.w2c
        pc = np.einsum("tij,tj->ti", w2c[:, :3, :3], Xs) + w2c[:, :3, 3]
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            proj = np.einsum("tij,tj->ti", cam.K, pc)
            pix = proj[:, :2] / proj[:, 2:3]
        err = np.linalg.norm(pix - uvs[:, slot], axis=1)
        v = valid[:, slot]
        ok &= ~v | ((z > 0) & (err <= cfg.max_reproj_px))
        d = Xs - cam.centers
        rays.append(d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-30))
    R = np.stack(rays, 1)  # (T, L, 3)
    cos = np.einsum("tai,tbi->tab", R, R)
    pair = valid[:, :, None] & valid[:, None, :]
    min_cos = np.where(pair, cos, 1.0).min(axis=(1, 2))
    return ok & (min_cos <= np.cos(np.deg2rad(cfg.min_angle_deg)))


class AnchorStore:
    """Features and triangulated anchor points of the views seen so far (see the module docstring)."""

    def __init__(self, cfg: AnchorConfig | None = None):
        self.cfg = cfg or AnchorConfig()
        self.features: list[Features] = []
        self.cameras: list[Cameras] = []
        self.points = np.zeros((0, 3))
        self.kp_point: list[dict[int, int]] = []  # per view: keypoint index -> point id

    def __len__(self) -> int:
        return len(self.features)

    def _add_points(self, X: np.ndarray) -> np.ndarray:
        ids = np.arange(len(self.points), len(self.points) + len(X))
        self.points = np.concatenate([self.points, X])
        return ids

    def add_views(self, images: np.ndarray, cameras: Cameras, masks: np.ndarray | None = None, pairs: list[tuple[int, int]] | None = None) -> None:
        """Add several posed views at once (the inputs): all pairs (or ``pairs``, indices into ``images``)
        matched, tracks triangulated."""
        base = len(self)
        for i in range(len(images)):
            self.features.append(detect_sift(images[i], self.cfg.match.max_features, None if masks is None else masks[i], self.cfg.match.contrast_threshold))
            self.cameras.append(cameras[i])
            self.kp_point.append({})
        n = len(images)
        parent: dict[tuple[int, int], tuple[int, int]] = {}

        def find(a):
            while parent.setdefault(a, a) != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        todo = pairs if pairs is not None else [(i, j) for i in range(n) for j in range(i + 1, n)]
        for a, b in todo:
            m = verified_matches(self.features[base + a], self.features[base + b], cameras[a], cameras[b], self.cfg.match)
            for ka, kb in m:
                ra, rb = find((a, int(ka))), find((b, int(kb)))
                if ra != rb:
                    parent[ra] = rb
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for node in list(parent):
            groups.setdefault(find(node), []).append(node)
        tracks = [sorted(g) for g in groups.values() if len(g) >= 2 and len({v for v, _ in g}) == len(g)]  # one kp per view
        if not tracks:
            return
        T = len(tracks)
        P = _projections(cameras)
        Pt, uv, valid = np.zeros((T, n, 3, 4)), np.zeros((T, n, 2)), np.zeros((T, n), bool)
        for t, g in enumerate(tracks):
            for v, k in g:
                Pt[t, v], uv[t, v], valid[t, v] = P[v], self.features[base + v].uv[k], True
        X = triangulate(Pt, uv, valid)
        per_slot = [Cameras(np.repeat(cameras.K[v : v + 1], T, 0), np.repeat(cameras.c2w[v : v + 1], T, 0), cameras.width, cameras.height) for v in range(n)]
        ok = _check_points(X, per_slot, uv, valid, self.cfg)
        ids = self._add_points(X[ok])
        for pid, t in zip(ids, np.flatnonzero(ok)):
            for v, k in tracks[t]:
                self.kp_point[base + v][k] = int(pid)

    def add_view(self, image: np.ndarray, camera: Cameras) -> ViewAnchors:
        """Add one new view (chained generation): match it to its nearest earlier views, reuse their
        anchor points where its keypoints see them, triangulate the other matches; returns its anchors."""
        cfg = self.cfg
        f = detect_sift(image, cfg.match.max_features, None, cfg.match.contrast_threshold)
        new = len(self)
        self.features.append(f)
        self.cameras.append(camera)
        self.kp_point.append({})
        if new == 0 or len(f) == 0:
            return self.view_anchors(new)
        dist = [float(np.linalg.norm(c.centers[0] - camera.centers[0])) for c in self.cameras[:new]]
        partners = np.argsort(dist)[: cfg.max_partners]
        P_new = _projections(camera)[0]
        pair_a, pair_b, pair_j = [], [], []
        for j in partners:
            m = verified_matches(f, self.features[j], camera, self.cameras[j], cfg.match)
            for kn, kj in m:
                kn, kj = int(kn), int(kj)
                if kn in self.kp_point[new]:
                    continue
                pid = self.kp_point[j].get(kj)
                if pid is not None:  # a match to an earlier anchor: keep it if the point reprojects onto the keypoint
                    pc = P_new @ np.append(self.points[pid], 1.0)
                    if pc[2] > 0 and np.linalg.norm(pc[:2] / pc[2] - f.uv[kn]) <= cfg.max_reproj_px:
                        self.kp_point[new][kn] = pid
                else:
                    pair_a.append(kn)
                    pair_b.append(kj)
                    pair_j.append(int(j))
        if pair_a:
            pa, pb, pj = np.array(pair_a), np.array(pair_b), np.array(pair_j)
            first = np.unique(pa, return_index=True)[1]  # one partner per new keypoint
            pa, pb, pj = pa[first], pb[first], pj[first]
            T = len(pa)
            Pj = np.stack([_projections(self.cameras[j])[0] for j in pj])
            Pt = np.stack([np.repeat(P_new[None], T, 0), Pj], 1)
            uv = np.stack([f.uv[pa], np.stack([self.features[j].uv[k] for j, k in zip(pj, pb)])], 1)
            valid = np.ones((T, 2), bool)
            X = triangulate(Pt, uv, valid)
            other = Cameras(np.stack([self.cameras[j].K[0] for j in pj]), np.stack([self.cameras[j].c2w[0] for j in pj]), camera.width, camera.height)
            slots = [Cameras(np.repeat(camera.K, T, 0), np.repeat(camera.c2w, T, 0), camera.width, camera.height), other]
            ok = _check_points(X, slots, uv, valid, cfg)
            ids = self._add_points(X[ok])
            for pid, t in zip(ids, np.flatnonzero(ok)):
                self.kp_point[new][int(pa[t])] = int(pid)
                self.kp_point[int(pj[t])][int(pb[t])] = int(pid)
        return self.view_anchors(new)

    def view_anchors(self, i: int) -> ViewAnchors:
        """Anchors of view ``i``: observed pixels and the points' z-depth in its camera."""
        kp = self.kp_point[i]
        if not kp:
            return ViewAnchors(np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int64))
        ks = np.array(sorted(kp))
        pids = np.array([kp[k] for k in ks])
        w2c = self.cameras[i].w2c[0]
        z = self.points[pids] @ w2c[2, :3] + w2c[2, 3]
        return ViewAnchors(self.features[i].uv[ks], z, pids)
