"""The synthetic multi-view world: procedural scenes, a CPU renderer and labelled clip sets.

No downloaded assets: scenes are seeded procedural rooms (floor, walls, optional ceiling) or outdoor
ground planes under a sky dome, with textured boxes, spheres and cylinders. They serve tests, demos,
curation accuracy checks and small-scale training.

Conventions:
    * Units are metres and seconds.
    * World axes are OpenCV-like with **y pointing down**: the floor / ground is the plane y = 0 and
      objects stand on it at negative y (height above the floor = -y). Cameras are OpenCV
      camera-to-world (x right, y down, z forward) as in :class:`see3d.io.cameras.Cameras`;
      :func:`see3d.io.cameras.look_at` with its default up vector (0, -1, 0) levels them.
    * Depth is metric z-depth (along each camera's optical axis), float32 metres.
    * Images are float32 RGB in [0, 1].

Public API::

    make_scene(seed, kind=None) -> Scene                          # "room" | "outdoor" (None: by seed)
    render(scene, cameras, t=None) -> (rgb (N,H,W,3), depth (N,H,W))
    render_full(scene, cameras, t=None) -> RenderOutput          # + ids (N,H,W): shape index per pixel
    scene_views(scene, cameras, t=None) -> Views                  # with true metric depth
    camera_path(kind, scene, n, rng) -> c2w (n,4,4)               # orbit, dolly, pan, spiral, handheld, ...
    make_clip(seed, kind="orbit", n_frames=48, size=256, fps=24) -> SynthClip
    write_labeled_set(out_dir, n=50, seed=0, size=256, n_frames=48, ...) -> list of label records

Clip kinds: good (label "keep", reason "ok"): orbit, dolly, pan, spiral, handheld; rejects (label
"drop"): dynamic, static_camera, rotation_only, small_motion, too_short (reason = the kind's
:mod:`see3d.labels` code). See :mod:`see3d.synth.variants`.
"""

from see3d.synth.dataset import CYCLE, SynthSetConfig, plan_clips, write_clip, write_labeled_set
from see3d.synth.paths import GOOD_PATHS, PATHS, camera_path
from see3d.synth.render import RenderOutput, render, render_full, scene_views
from see3d.synth.scene import SCENE_KINDS, Scene, make_scene
from see3d.synth.variants import GOOD_KINDS, KINDS, REJECT_KINDS, SynthClip, camera_motion, label_of, make_clip

__all__ = [
    "CYCLE",
    "GOOD_KINDS",
    "GOOD_PATHS",
    "KINDS",
    "PATHS",
    "REJECT_KINDS",
    "SCENE_KINDS",
    "RenderOutput",
    "Scene",
    "SynthClip",
    "SynthSetConfig",
    "camera_motion",
    "camera_path",
    "label_of",
    "make_clip",
    "make_scene",
    "plan_clips",
    "render",
    "render_full",
    "scene_views",
    "write_clip",
    "write_labeled_set",
]
