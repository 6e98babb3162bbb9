"""The splat .ply reader/writer: standard 3DGS layout, exact round trip, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.recfunctions import repack_fields
from plyfile import PlyData, PlyElement

from see3d.errors import InputError
from see3d.splat.gaussians import Gaussians, read_ply, write_ply
from see3d.splat.rasterize import render
from splat_scenes import orbit_cameras, random_gaussians


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_round_trip_is_exact_and_renders_the_same(tmp_path, degree):
    g = random_gaussians(64, seed=degree, sh_degree=degree, dtype=torch.float32)
    path = write_ply(tmp_path / "s.ply", g)
    h = read_ply(path)
    for k, v in g.tensors().items():
        assert torch.equal(h.tensors()[k], v), k
    cams = orbit_cameras(1, 32, 24)
    a = render(g, cams.K[0], 32, 24, c2w=cams.c2w[0], backend="cpu")["rgb"]
    b = render(h, cams.K[0], 32, 24, c2w=cams.c2w[0], backend="cpu")["rgb"]
    assert torch.equal(a, b)


def test_ply_uses_the_standard_3dgs_layout(tmp_path):
    g = random_gaussians(3, sh_degree=2, dtype=torch.float32)
    write_ply(tmp_path / "s.ply", g)
    ply = PlyData.read(str(tmp_path / "s.ply"))
    assert ply.elements[0].name == "vertex" and not ply.text
    names = [p.name for p in ply.elements[0].properties]
    rest = [f"f_rest_{i}" for i in range(24)]
    assert names == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *rest, "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    v = ply["vertex"].data
    # channel-major f_rest: index c * (K - 1) + k holds sh[:, 1 + k, c]
    for c in range(3):
        for k in range(8):
            np.testing.assert_array_equal(v[f"f_rest_{c * 8 + k}"], g.sh[:, 1 + k, c].numpy())
    np.testing.assert_array_equal(v["rot_0"], g.quats[:, 0].numpy())  # w first
    np.testing.assert_array_equal(v["opacity"], g.opacity_logits.numpy())  # logit, not activated
    np.testing.assert_array_equal(v["scale_1"], g.log_scales[:, 1].numpy())  # log scale


def test_ply_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_ply(tmp_path / "missing.ply")
    bad = tmp_path / "garbage.ply"
    bad.write_bytes(b"this is not a ply file")
    with pytest.raises(InputError, match="garbage.ply"):
        read_ply(bad)
    pc = tmp_path / "points.ply"
    PlyData([PlyElement.describe(np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")]), "vertex")]).write(str(pc))
    with pytest.raises(InputError, match="missing properties"):
        read_ply(pc)
    g = random_gaussians(4, sh_degree=1, dtype=torch.float32)
    write_ply(tmp_path / "ok.ply", g)
    v = PlyData.read(str(tmp_path / "ok.ply"))["vertex"].data
    names = [n for n in v.dtype.names if n != "f_rest_8"]
    PlyData([PlyElement.describe(repack_fields(v[names]), "vertex")]).write(str(tmp_path / "odd.ply"))
    with pytest.raises(InputError, match="f_rest"):
        read_ply(tmp_path / "odd.ply")
    g.means[0, 0] = float("nan")
    write_ply(tmp_path / "nan.ply", g)
    with pytest.raises(InputError, match="NaN"):
        read_ply(tmp_path / "nan.ply")


def test_write_is_atomic_and_gaussians_validate(tmp_path, monkeypatch):
    g = random_gaussians(4, dtype=torch.float32)
    path = write_ply(tmp_path / "s.ply", g)
    before = path.read_bytes()

    def broken_write(self, stream):
        with open(stream, "wb") as fh:
            fh.write(b"ply\nformat binary_little_endian 1.0\n")  # half a file, then the disk "fails"
        raise OSError("disk full")

    monkeypatch.setattr(PlyData, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_ply(path, random_gaussians(8, dtype=torch.float32))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.ply"]  # no temporary file left behind
    with pytest.raises(ValueError, match="quats"):
        Gaussians(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="degree"):
        Gaussians(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3), torch.zeros(2), torch.zeros(2, 5, 3))
