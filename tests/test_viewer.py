"""`see3d view` without a browser: camera-path files, camera conventions, splat conversion, the server and the CLI.
(The browser itself is exercised in tests/test_viewer_browser.py.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from see3d.cli import main
from see3d.errors import InputError
from see3d.io.cameras import Cameras, look_at
from see3d.io.conventions import opencv_to_opengl, quat_wxyz_to_rotmat
from see3d.io.transforms_json import write_transforms_json
from see3d.splat.gaussians import Gaussians, rgb_to_sh_dc, write_ply
from see3d.viewer import CameraPath, c2w_to_viser, load_camera_path, serve, viser_to_c2w
from see3d.viewer.server import default_view, orbit_target, parse_up
from see3d.viewer.splats import viser_splats


def _path_c2ws(n=5):
    return np.stack([look_at([3 * np.sin(a), -0.5, 3 - 3 * np.cos(a)], [0, 0, 3], up=[0.1 * a, -1, 0]) for a in np.linspace(-0.6, 0.6, n)])


def _nerfstudio_json(c2ws, fov_deg=50.0, w=640, h=360, fps=24.0, **extra):
    gl = opencv_to_opengl(c2ws)
    entries = [{"camera_to_world": m.reshape(-1).tolist(), "fov": fov_deg, "aspect": w / h} for m in gl]
    return {"camera_type": "perspective", "render_width": w, "render_height": h, "fps": fps, "camera_path": entries, **extra}


def _small_scene(n=3) -> Gaussians:
    means = torch.tensor([[0.0, 0.0, 3.0], [0.5, 0.0, 3.5], [-0.5, 0.2, 2.5]])[:n]
    sh = torch.zeros(n, 1, 3)
    sh[:, 0] = rgb_to_sh_dc(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])[:n])
    return Gaussians(means, torch.tensor([[1.0, 0, 0, 0]] * n), torch.full((n, 3), np.log(0.2)), torch.zeros(n), sh)


# ---------------------------------------------------------------------- camera paths
def test_nerfstudio_camera_path_is_read_as_opencv_cameras(tmp_path):
    c2ws = _path_c2ws()
    p = tmp_path / "camera_path.json"
    p.write_text(json.dumps(_nerfstudio_json(c2ws)))
    path = load_camera_path(p)
    assert len(path) == 5 and path.fps == 24.0
    assert (path.cameras.width, path.cameras.height) == (640, 360)
    assert np.allclose(path.cameras.c2w, c2ws, atol=1e-12)
    assert np.allclose(path.fov_y, np.deg2rad(50.0))
    # nerfstudio's focal length convention: fy = H / 2 / tan(fov / 2), square pixels, centred principal point
    K = path.cameras.K[0]
    assert np.isclose(K[1, 1], 180 / np.tan(np.deg2rad(25))) and np.isclose(K[0, 0], K[1, 1])
    assert np.allclose(K[:2, 2], [320, 180])


def test_nerfstudio_camera_path_accepts_nested_and_3x4_matrices(tmp_path):
    c2ws = _path_c2ws(2)
    data = _nerfstudio_json(c2ws)
    gl = opencv_to_opengl(c2ws)
    data["camera_path"][0]["camera_to_world"] = gl[0].tolist()
    data["camera_path"][1]["camera_to_world"] = gl[1][:3].tolist()
    (tmp_path / "p.json").write_text(json.dumps(data))
    assert np.allclose(load_camera_path(tmp_path / "p.json").cameras.c2w, c2ws, atol=1e-12)


def test_transforms_json_is_a_camera_path(tmp_path):
    c2ws = _path_c2ws(3)
    cams = Cameras.from_fov(c2ws, 70.0, 320, 240)
    write_transforms_json(tmp_path / "transforms.json", cams, extra={"fps": 5})
    path = load_camera_path(tmp_path / "transforms.json")
    assert np.allclose(path.cameras.c2w, c2ws, atol=1e-12) and path.fps == 5.0
    assert np.allclose(path.fov_y, 2 * np.arctan(120 / cams.K[:, 1, 1]))


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"cameras": []}', "neither a nerfstudio camera path"),
        ('{"camera_path": []}', "no 'camera_path' list"),
        ('{"camera_type": "fisheye", "camera_path": [{"camera_to_world": [1], "fov": 50}]}', "not supported"),
        ('{"render_width": 10, "render_height": 10, "camera_path": [{"fov": 50}]}', "malformed"),
        ('{"render_width": 10, "render_height": 10, "camera_path": [{"camera_to_world": [1, 2, 3], "fov": 50}]}', "expected 16"),
        (
            '{"render_width": 10, "render_height": 10, "camera_path": [{"camera_to_world": [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1], "fov": 200}]}',
            "fov",
        ),
        (
            '{"render_width": 10, "render_height": 10, "camera_path": [{"camera_to_world": [2,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1], "fov": 50}]}',
            "not a proper rotation",
        ),
        (
            '{"render_width": 10, "render_height": 10, "fps": 0, "camera_path": [{"camera_to_world": [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1], "fov": 50}]}',
            "fps",
        ),
    ],
)
def test_bad_camera_path_files_are_rejected_naming_the_file(tmp_path, content, problem):
    p = tmp_path / "path.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(InputError, match=problem) as e:
        load_camera_path(p)
    assert e.value.path == p


# ---------------------------------------------------------------------- conventions
def test_viser_camera_frame_is_opencv():
    """viser's ``CameraHandle.wxyz`` is R in P_world = R p_camera + t, camera looking along +z with -y up:
    exactly our OpenCV c2w, so the conversion is the rotation's quaternion, no axis flip."""
    import viser.transforms as vtf

    c2w = look_at([1.0, -2.0, 0.5], [0.2, 0.3, 4.0], up=[0.2, -1.0, 0.1])
    wxyz, pos = c2w_to_viser(c2w)
    R = vtf.SO3(wxyz).as_matrix()  # how viser itself reads the quaternion
    assert np.allclose(R, c2w[:3, :3], atol=1e-12) and np.allclose(pos, c2w[:3, 3])
    target_dir = np.array([0.2, 0.3, 4.0]) - np.array([1.0, -2.0, 0.5])
    assert np.allclose(R[:, 2], target_dir / np.linalg.norm(target_dir))  # viser's look direction is R[:, 2]
    assert np.allclose(viser_to_c2w(wxyz, pos), c2w, atol=1e-12)
    # batched
    c2ws = _path_c2ws(4)
    assert np.allclose(viser_to_c2w(*c2w_to_viser(c2ws)), c2ws, atol=1e-12)


def test_orbit_target_gives_viser_the_exact_rolled_pose():
    """`move_clients` sends position, look-at point and orbit up (not viser's racy ``wxyz`` setter); viser's own
    orientation rule turns them back into the requested camera, rolled or not, and the orbit up stays as close to
    the world up as the camera allows."""
    import types

    from viser._viser import CameraHandle

    world_up = np.array([0.0, -1.0, 0.0])
    for c2w in (
        look_at([1.0, -2.0, 0.5], [0.2, 0.3, 4.0]),
        look_at([3.2, -1.6, 2.0], [0.0, 0.0, 3.3], up=[0.3, -1.0, 0.0]),
        look_at([0.0, 0.0, 0.0], [0.0, 1.0, 0.0], up=[0.0, 0.0, 1.0]),
    ):  # the last one looks straight down the world up
        pos, target, up = orbit_target(c2w, world_up, 2.5)
        assert np.allclose(pos, c2w[:3, 3]) and np.isclose(np.linalg.norm(target - pos), 2.5)
        state = types.SimpleNamespace(position=pos, look_at=target, up_direction=up, wxyz=np.array([1.0, 0, 0, 0]))
        CameraHandle._update_wxyz(types.SimpleNamespace(_state=state))  # the rule viser (server and page) applies
        assert np.allclose(viser_to_c2w(state.wxyz, pos), c2w, atol=1e-9)
        assert abs(up @ c2w[:3, 0]) < 1e-9  # no component along the camera's x axis: nothing to roll
    level = look_at([0.0, 0.0, 0.0], [0.0, 0.0, 1.0])
    assert np.allclose(orbit_target(level, np.array([0.0, -2.0, 0.0]), 1.0)[2], [0.0, -2.0, 0.0])  # level view: world up kept


def test_up_direction_parsing():
    assert np.allclose(parse_up("-y"), [0, -1, 0]) and np.allclose(parse_up("+Z"), [0, 0, 1])
    assert np.allclose(parse_up("0,0,2"), [0, 0, 1]) and np.allclose(parse_up((1, 0, 0)), [1, 0, 0])
    assert np.allclose(parse_up("auto"), [0, -1, 0])
    c2w = look_at([0, 0, 0], [0, 0, 1], up=[0, 0, 0])  # degenerate up is handled by look_at; use a real tilted path:
    c2w = look_at([0, 0, 0], [1, 0, 0], up=[0, 0, 1])
    path = CameraPath(Cameras.from_fov(c2w[None], 60, 32, 32))
    assert np.allclose(parse_up("auto", path), [0, 0, 1])
    for bad in ("up", "1,2", "0,0,0", (np.nan, 0, 1)):
        with pytest.raises(InputError, match="up direction"):
            parse_up(bad)


def test_default_view_frames_the_scene():
    center, radius = np.array([0.0, 0.0, 5.0]), 2.0
    pos, target = default_view(center, radius, np.array([0.0, -1.0, 0.0]))
    assert np.allclose(target, center)
    assert np.allclose(pos[:2], 0) and pos[2] < center[2] - radius  # in front of the scene, looking along +z
    cams = Cameras.from_fov(look_at(pos, target)[None], 2 * np.rad2deg(np.arctan(1.0 / np.sqrt(3))), 100, 100)  # 60 deg
    # the sphere's extreme points stay inside the image
    uv, z = cams.project(center + radius * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]))
    assert (z > 0).all() and (uv >= 0).all() and (uv <= 100).all()
    pos_z, _ = default_view(center, radius, np.array([0.0, 0.0, 1.0]))
    assert abs((pos_z - center) @ np.array([0, 0, 1.0])) < 1e-9  # level with a +z up


# ---------------------------------------------------------------------- splats
def test_viser_splats_activate_gaussians():
    a = 0.7
    q = torch.tensor([[np.cos(a / 2), 0.0, 0.0, np.sin(a / 2)], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float32) * 3.0  # unnormalised; zero
    s = torch.tensor([[0.5, 0.1, 0.2], [0.3, 0.3, 0.3]])
    sh = torch.zeros(2, 4, 3)
    sh[:, 0] = rgb_to_sh_dc(torch.tensor([[0.2, 0.4, 0.6], [1.5, -0.2, 0.5]]))
    sh[:, 1:] = 5.0  # higher bands are ignored: viser shows the DC colour
    g = Gaussians(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), q, s.log(), torch.tensor([0.0, 2.0]), sh)
    v = viser_splats(g)
    assert v.centers.shape == (2, 3) and v.covariances.shape == (2, 3, 3) and v.rgbs.shape == (2, 3) and v.opacities.shape == (2, 1)
    assert all(x.dtype == np.float32 for x in (v.centers, v.covariances, v.rgbs, v.opacities))
    R = quat_wxyz_to_rotmat(np.array([np.cos(a / 2), 0, 0, np.sin(a / 2)]))
    assert np.allclose(v.covariances[0], R @ np.diag([0.25, 0.01, 0.04]) @ R.T, atol=1e-6)
    # the longest axis (x of the splat, rotated by 0.7 rad about z) is the covariance's main eigenvector
    evals, evecs = np.linalg.eigh(v.covariances[0])
    assert np.isclose(evals[-1], 0.25, atol=1e-6) and abs(evecs[:, -1] @ [np.cos(a), np.sin(a), 0]) > 0.9999
    assert np.allclose(v.covariances[1], np.diag([0.09] * 3), atol=1e-6)  # zero quaternion -> no rotation
    assert np.allclose(v.rgbs, [[0.2, 0.4, 0.6], [1.0, 0.0, 0.5]], atol=1e-6)  # clipped to [0, 1]
    assert np.allclose(v.opacities[:, 0], [0.5, 1 / (1 + np.exp(-2))], atol=1e-6)


# ---------------------------------------------------------------------- the server
def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def _non_loopback_addresses() -> set[str]:
    """This machine's IPv4 addresses other than 127.x (the default route's source address and the hostname's)."""
    addrs = set()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks the outgoing interface
            addrs.add(s.getsockname()[0])
    except OSError:
        pass
    try:
        addrs |= {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    return {a for a in addrs if not a.startswith("127.") and a != "0.0.0.0"}


def test_serve_binds_localhost_serves_the_client_and_stops(tmp_path):
    ply = write_ply(tmp_path / "scene.ply", _small_scene())
    viewer = serve(ply, port=0)
    try:
        assert viewer.host == "127.0.0.1" and viewer.port > 0 and viewer.num_splats == 3
        assert viewer.url == f"http://127.0.0.1:{viewer.port}/"
        status, ctype, body = _get(viewer.url)
        assert status == 200 and "text/html" in ctype and b"<title>Viser</title>" in body  # the bundled client, no CDN
        assert viewer.clients() == [] and viewer.player is None
        with pytest.raises(TimeoutError, match="no browser"):
            viewer.wait_for_client(timeout=0.2)
        # bound to loopback only: the port is not open on the machine's other addresses
        for addr in _non_loopback_addresses():
            with socket.socket() as s:
                s.settimeout(1.0)
                assert s.connect_ex((addr, viewer.port)) != 0, f"viewer reachable on {addr}"
    finally:
        viewer.stop()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(viewer.url)


def test_serve_finds_the_scene_cameras_beside_the_ply(tmp_path, caplog):
    from see3d.splat.export import write_scene_cameras
    from see3d.viewer.server import find_scene_cameras

    ply = write_ply(tmp_path / "splats.ply", _small_scene())
    assert find_scene_cameras(ply) is None
    c2ws = _path_c2ws(3)
    write_transforms_json(tmp_path / "transforms.json", Cameras.from_fov(c2ws[::-1], 60.0, 64, 48))
    assert find_scene_cameras(ply) == tmp_path / "transforms.json"
    write_scene_cameras(ply, Cameras.from_fov(c2ws, 60.0, 64, 48))  # <stem>.cameras.json wins over transforms.json
    assert find_scene_cameras(ply) == tmp_path / "splats.cameras.json"
    with serve(ply, port=0) as viewer:
        assert np.allclose(viewer.server.initial_camera.position, c2ws[0][:3, 3])
        assert viewer.start is not None and np.allclose(viewer.start[0], c2ws[0])
        up = -c2ws[:, :3, 1].mean(0)
        assert np.allclose(viewer.up, up / np.linalg.norm(up))
        assert viewer.player is not None and len(viewer.player.path) == 3  # the cameras are played back
    with serve(ply, port=0, cameras=None) as viewer:
        assert viewer.player is None and viewer.start is not None  # default far view, still a reset button
    # a broken cameras file beside the .ply is reported and skipped; given explicitly, it is an error
    (tmp_path / "splats.cameras.json").write_text("{not json")
    with caplog.at_level("WARNING", logger="see3d"), serve(ply, port=0) as viewer:
        assert viewer.player is None
    assert any("splats.cameras.json" in r.getMessage() for r in caplog.records)
    with pytest.raises(InputError, match="splats.cameras.json"):
        serve(ply, port=0, cameras=tmp_path / "splats.cameras.json")


def test_input_and_generated_cameras_toggle_separately(tmp_path):
    from see3d.splat.export import write_scene_cameras

    ply = write_ply(tmp_path / "splats.ply", _small_scene())
    write_scene_cameras(ply, Cameras.from_fov(_path_c2ws(4), 60.0, 64, 48), roles=["input", "generated", "generated", "generated"])
    with serve(ply, port=0) as viewer:
        player = viewer.player
        assert player.roles == ["input", "generated", "generated", "generated"] and set(player.show_role) == {"input", "generated"}
        assert [player._frustums[i].visible for i in range(4)] == [False, True, True, True]  # frame 0 is looked through
        player.show_role["generated"].value = False
        assert [player._frustums[i].visible for i in range(4)] == [False, False, False, False]
        player.show_frame(2)  # frame 0 (input) shows again; generated ones stay hidden
        assert [player._frustums[i].visible for i in range(4)] == [True, False, False, False]
        player.show_role["generated"].value = True
        assert [player._frustums[i].visible for i in range(4)] == [True, True, False, True]


def test_subset_splats_keeps_the_most_covering_splats():
    from see3d.viewer.splats import subset_splats

    g = _small_scene()
    g.opacity_logits = torch.tensor([0.0, 2.0, -2.0])
    g.log_scales = torch.log(torch.tensor([[0.2] * 3, [0.1] * 3, [0.4] * 3]))
    v = viser_splats(g)
    assert len(subset_splats(v).centers) == 3
    s = subset_splats(v, min_opacity=0.3)  # opacity 0.12 dropped
    assert np.allclose(s.centers, v.centers[:2])
    s = subset_splats(v, max_splats=2)  # opacity x size: 0.5*0.04, 0.88*0.01, 0.12*0.16 -> keep 0 and 2, in order
    assert np.allclose(s.centers, v.centers[[0, 2]])


def test_listen_address_warns_for_other_machines(caplog):
    from see3d.viewer.address import check_listen_address

    with caplog.at_level("WARNING", logger="see3d"):
        check_listen_address("127.0.0.1", 0)
        assert not caplog.records
        check_listen_address("0.0.0.0", 0)
    assert any("other machines can reach" in r.getMessage() for r in caplog.records)
    with pytest.raises(InputError, match="--port"):
        check_listen_address("127.0.0.1", 70000)
    with pytest.raises(InputError, match="not an address of this machine"):
        check_listen_address("192.0.2.55", 0)


def test_serve_rejects_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        serve(tmp_path / "missing.ply", port=0)
    (tmp_path / "points.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 0 0\n"
    )
    with pytest.raises(InputError, match="not a 3D Gaussian splat"):
        serve(tmp_path / "points.ply", port=0)
    ply = write_ply(tmp_path / "scene.ply", _small_scene())
    with pytest.raises(InputError, match="camera path file not found"):
        serve(ply, port=0, camera_path=tmp_path / "nope.json")


def test_camera_path_playback_advances_loops_and_pauses(tmp_path):
    ply = write_ply(tmp_path / "scene.ply", _small_scene())
    (tmp_path / "path.json").write_text(json.dumps(_nerfstudio_json(_path_c2ws(4), fps=20.0)))
    with serve(ply, port=0, camera_path=tmp_path / "path.json") as viewer:
        player = viewer.player
        assert player is not None and player.index == 0 and not player.playing and player.fps.value == 20.0
        assert np.allclose(viewer.server.initial_camera.position, _path_c2ws(4)[0][:3, 3])
        player.loop.value = False
        player.play()
        t_end = time.monotonic() + 5
        while player.playing and time.monotonic() < t_end:
            time.sleep(0.02)
        assert not player.playing and player.index == 3  # ran to the end and stopped (no loop)
        assert player.play_button.label == "Play"
        player.loop.value = True
        player.play()  # from the end, looping: wraps around to 0 and keeps going
        seen = set()
        t_end = time.monotonic() + 5
        while len(seen) < 4 and time.monotonic() < t_end:
            seen.add(player.index)
            time.sleep(0.01)
        assert player.playing and seen == {0, 1, 2, 3}
        player.pause()
        time.sleep(0.2)
        i = player.index
        time.sleep(0.3)
        assert player.index == i  # paused
        player.show_frame(99)
        assert player.index == 3  # clamped
        # the frustum we look through is hidden, the rest follow "Show path"
        assert [f.visible for f in player._frustums.values()] == [True, True, True, False]
        player.show_path.value = False
        assert not any(f.visible for f in player._frustums.values())


# ---------------------------------------------------------------------- the CLI
def test_cli_view_reports_bad_file(tmp_path, capsys):
    assert main(["view", str(tmp_path / "missing.ply"), "--port", "0"]) == 1
    assert "see3d view: error:" in capsys.readouterr().err


def test_cli_view_serves_until_interrupted(tmp_path):
    ply = write_ply(tmp_path / "scene.ply", _small_scene())
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "see3d.cli", "view", str(ply), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Ctrl-C must reach the child even when pytest itself runs as a background job of a non-interactive
        # shell, which starts with SIGINT ignored (children inherit that, and Python then never raises
        # KeyboardInterrupt)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = proc.stdout.readline()
        assert "3 splats at http://127.0.0.1:" in line, line + proc.stderr.read() if proc.poll() is not None else line
        url = line.split(" at ")[1].split()[0]
        assert _get(url)[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_long_and_single_frame_paths(tmp_path):
    ply = write_ply(tmp_path / "scene.ply", _small_scene())
    long = CameraPath(Cameras.from_fov(np.repeat(_path_c2ws(1), 250, axis=0), 60, 64, 48), fps=30)
    with serve(ply, port=0, camera_path=long) as viewer:
        assert len(viewer.player._frustums) <= 100  # long paths draw a subsample of their cameras
        viewer.player.show_frame(137)  # a frame without a drawn frustum
        assert viewer.player.index == 137
    single = CameraPath(Cameras.from_fov(_path_c2ws(1), 60, 64, 48))
    with serve(ply, port=0, camera_path=single) as viewer:
        viewer.player.play()
        assert not viewer.player.playing  # nothing to play
        viewer.player.show_frame(5)
        assert viewer.player.index == 0


def test_see3d_written_camera_path_plays_at_its_fps(tmp_path):
    from see3d.io.camera_path import write_camera_path

    cams = Cameras.from_fov(_path_c2ws(3), 65.0, 320, 200)
    write_camera_path(tmp_path / "flythrough.json", cams, fps=12.0)
    path = load_camera_path(tmp_path / "flythrough.json")
    assert path.fps == 12.0 and np.allclose(path.cameras.c2w, cams.c2w, atol=1e-12) and np.allclose(path.cameras.K, cams.K)
