"""`dexterity-ros object add/list/show`: a user's mesh becomes a model the tracker loads by name.

Meshes are real files written by Open3D (in millimetres, as CAD exports
usually are). The CLI runs in-process through ``dexterity_ros.cli.main``;
``capfd`` also catches what Open3D's native code writes, so a refusal is
checked to be one ``error:`` line and nothing else. Every test points the
user object directory at ``tmp_path``.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest

from dexterity_ros.cli import main
from dexterity_ros.objects.models import SIM_OBJECT_SYMMETRY, load_model_file, load_object_model


@pytest.fixture
def user_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "user"
    monkeypatch.setenv("DEXTERITY_ROS_OBJECT_DIR", str(path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return path


def cli(capfd, *argv) -> tuple[int, str, str]:
    try:
        code = main(["object", *map(str, argv)])
    except SystemExit as exc:                       # argparse's own usage errors
        code = exc.code
    out, err = capfd.readouterr()
    return code, out, err


def write_mesh(path: Path, mesh: o3d.geometry.TriangleMesh) -> Path:
    mesh.compute_triangle_normals()                 # the STL writer needs them
    assert o3d.io.write_triangle_mesh(str(path), mesh)
    return path


def box_mm(path: Path) -> Path:
    """A 30 x 20 x 10 mm box with a corner at the origin."""
    return write_mesh(path, o3d.geometry.TriangleMesh.create_box(30.0, 20.0, 10.0))


def mesh_distance(mesh: o3d.geometry.TriangleMesh, points: np.ndarray) -> np.ndarray:
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    return scene.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


# ------------------------------------------------------------------ add
def test_a_millimetre_box_becomes_a_centred_model_on_its_surface(tmp_path, user_dir, capfd):
    code, out, err = cli(capfd, "add", box_mm(tmp_path / "block.stl"), "--name", "block", "--scale", "0.001",
                         "--symmetry", "box")
    assert code == 0, err
    assert err == ""                                # closed, symmetric, well sized: nothing to warn about
    for text in ("added object 'block'", "30.0 x 20.0 x 10.0 mm", "closed surface",
                 "volume centroid, at (15.0, 10.0, 5.0) mm in the mesh's frame",
                 "symmetry   box", str(user_dir / "block.npz"), "object:=block"):
        assert text in out, out
    model = load_object_model("block", [])          # found by name in the user directory
    half = np.array([0.015, 0.010, 0.005])
    assert model.symmetry.spec == "box" and len(model.points) == 2048
    assert np.abs((np.abs(model.points) - half).max(axis=1)).max() < 1e-9      # on the centred box
    face = np.argmax(np.abs(model.points) / half, axis=1)                     # outward face normals
    expected = np.zeros_like(model.points)
    expected[np.arange(len(face)), face] = np.sign(model.points[np.arange(len(face)), face])
    assert np.allclose(model.normals, expected)
    assert model.source.startswith("mesh:block.stl sha256:")


def test_a_cylinder_in_another_directory_loads_with_object_dir(tmp_path, user_dir, capfd):
    mesh = o3d.geometry.TriangleMesh.create_cylinder(radius=20.0, height=50.0)
    out_dir = tmp_path / "models"
    code, out, err = cli(capfd, "add", write_mesh(tmp_path / "can.ply", mesh), "--name", "can",
                         "--scale", "0.001", "--symmetry", "cylinder:z", "--output-dir", out_dir, "--points", 500)
    assert code == 0 and err == "", err
    assert f"object_dir:={out_dir}" in out and not user_dir.exists()
    model = load_object_model("can", [out_dir])
    assert len(model.points) == 500 and model.symmetry.spec == "cylinder:z"
    mesh.scale(0.001, center=np.zeros(3))           # create_cylinder is centred already
    assert mesh_distance(mesh, model.points).max() < 1e-6
    assert np.allclose(model.extent, [0.04, 0.04, 0.05], atol=1e-3)

    code, _, err = cli(capfd, "add", tmp_path / "can.ply", "--name", "can_x", "--scale", "0.001",
                       "--symmetry", "cylinder:x", "--output-dir", out_dir)
    assert code == 0 and "warning: symmetry cylinder:x" in err and "check the axis" in err


def test_a_torus_keeps_its_inner_normals_pointing_out_of_the_material(tmp_path, user_dir, capfd):
    """Non-convex: 'away from the centroid' would turn the inner ring's normals into the material."""
    mesh = o3d.geometry.TriangleMesh.create_torus(torus_radius=30.0, tube_radius=10.0)
    code, _, err = cli(capfd, "add", write_mesh(tmp_path / "ring.obj", mesh), "--name", "ring", "--scale", "0.001",
                       "--symmetry", "revolution:z")
    assert code == 0 and err == "", err
    model = load_object_model("ring")
    radial = model.points[:, :2] / np.linalg.norm(model.points[:, :2], axis=1, keepdims=True)
    tube_centre = np.column_stack([0.030 * radial, np.zeros(len(radial))])
    outward = model.points - tube_centre
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", outward, model.normals).min() > 0.9
    inner = np.linalg.norm(model.points[:, :2], axis=1) < 0.025
    assert inner.sum() > 100


@pytest.mark.parametrize("winding", ["inward", "mixed"])
def test_a_closed_mesh_wound_the_wrong_way_still_gets_outward_normals(tmp_path, user_dir, capfd, winding):
    mesh = o3d.geometry.TriangleMesh.create_box(30.0, 20.0, 10.0)
    triangles = np.asarray(mesh.triangles)
    flip = slice(None) if winding == "inward" else slice(None, None, 2)
    triangles[flip] = triangles[flip][:, [0, 2, 1]]
    mesh.triangles = o3d.utility.Vector3iVector(triangles)
    code, out, err = cli(capfd, "add", write_mesh(tmp_path / "w.obj", mesh), "--name", "w", "--scale", "0.001")
    assert code == 0 and "closed surface" in out and "volume centroid" in out, out + err
    model = load_object_model("w")
    assert np.all(np.einsum("ij,ij->i", model.points, model.normals) > 0)     # convex: out = away from centre


def test_an_open_surface_is_centred_on_its_area_with_a_warning(tmp_path, user_dir, capfd):
    mesh = o3d.geometry.TriangleMesh.create_box(30.0, 20.0, 10.0)
    mesh.triangles = o3d.utility.Vector3iVector(np.asarray(mesh.triangles)[2:])   # one face open
    code, out, err = cli(capfd, "add", write_mesh(tmp_path / "tray.stl", mesh), "--name", "tray",
                         "--scale", "0.001")
    assert code == 0 and "open surface" in out and "area centroid" in out
    assert err.startswith("warning: the mesh is not a closed surface")
    mesh.scale(0.001, center=np.zeros(3))
    corners = np.asarray(mesh.vertices)[np.asarray(mesh.triangles)]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    centroid = (corners.mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
    assert mesh_distance(mesh, load_object_model("tray").points + centroid).max() < 1e-6


def test_keep_origin_and_the_same_mesh_gives_the_same_bytes(tmp_path, user_dir, capfd):
    mesh = box_mm(tmp_path / "block.stl")
    for directory in ("a", "b"):
        code = cli(capfd, "add", mesh, "--name", "block", "--scale", "0.001", "--output-dir", tmp_path / directory)[0]
        assert code == 0
    first = (tmp_path / "a" / "block.npz").read_bytes()
    assert first == (tmp_path / "b" / "block.npz").read_bytes()
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0)
               for info in zipfile.ZipFile(tmp_path / "a" / "block.npz").infolist())
    assert cli(capfd, "add", mesh, "--name", "other", "--scale", "0.001", "--output-dir", tmp_path / "a")[0] == 0
    assert not np.array_equal(load_model_file(tmp_path / "a" / "other.npz").points,
                              load_model_file(tmp_path / "a" / "block.npz").points)     # seed from the name

    code, out, err = cli(capfd, "add", mesh, "--name", "raw", "--scale", "0.001", "--keep-origin")
    assert code == 0 and "origin     kept" in out and err == ""
    points = load_object_model("raw").points
    assert np.allclose(points.min(axis=0), 0, atol=1e-3) and np.allclose(points.max(axis=0), [0.03, 0.02, 0.01],
                                                                        atol=1e-3)

    code, _, err = cli(capfd, "add", mesh, "--name", "raw_box", "--scale", "0.001", "--keep-origin",
                       "--symmetry", "box")                                # turns about a corner: warned
    assert code == 0 and "centroid is 18.7 mm from the origin" in err and "symmetry box: a turn" in err
    code, _, err = cli(capfd, "add", mesh, "--name", "speck", "--scale", "0.0001")
    assert code == 0 and "is --scale 0.0001 right?" in err                 # 3 mm: probably scaled twice


# ------------------------------------------------------------------ refusals
def _bad_inputs(tmp: Path) -> dict[str, tuple[list, int, str]]:
    """case -> (argv after `object add`, exit status, part of the message)."""
    box = box_mm(tmp / "box.stl")
    (tmp / "text.stl").write_text("solid? no, just a shopping list\neggs\nmilk\n")
    (tmp / "empty.stl").write_bytes(b"")
    (tmp / "noise.stl").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp / "garbage.ply").write_text("this is not a ply header\n")
    (tmp / "cloud.ply").write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                                   "property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n")
    (tmp / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    (tmp / "nan.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    (tmp / "notes.txt").write_text("a box\n")
    (tmp / "folder.stl").mkdir()
    return {
        "missing": ([tmp / "absent.stl", "--name", "x"], 2, "does not exist"),
        "directory": ([tmp / "folder.stl", "--name", "x"], 2, "is a directory"),
        "extension": ([tmp / "notes.txt", "--name", "x"], 2, "unsupported mesh format '.txt'"),
        "empty": ([tmp / "empty.stl", "--name", "x"], 1, "is empty"),
        "text as stl": ([tmp / "text.stl", "--name", "x"], 1, "is not a readable STL mesh"),
        "noise as stl": ([tmp / "noise.stl", "--name", "x"], 1, "is not a readable STL mesh"),
        "garbage ply": ([tmp / "garbage.ply", "--name", "x"], 1, "is not a readable PLY mesh"),
        "point cloud": ([tmp / "cloud.ply", "--name", "x"], 1, "no triangles (a point cloud)"),
        "zero area": ([tmp / "flat.obj", "--name", "x"], 1, "zero surface area"),
        "nan vertex": ([tmp / "nan.obj", "--name", "x"], 1, "not finite"),
        "millimetres": ([box, "--name", "x"], 1, "needs --scale 0.001"),
        "scale too big": ([box, "--name", "x", "--scale", "0.1"], 1, "is --scale 0.1 right?"),
        "name": ([box, "--name", "my box", "--scale", "0.001"], 2, "--name 'my box'"),
        "name path": ([box, "--name", "../escape", "--scale", "0.001"], 2, "letters, digits"),
        "simulator name": ([box, "--name", "cube", "--scale", "0.001"], 1, "'cube' is a simulator object"),
        "symmetry": ([box, "--name", "x", "--symmetry", "hexagonal"], 2, "cyclic:N:AXIS"),
        "symmetry axis": ([box, "--name", "x", "--symmetry", "cylinder:w"], 2, "unknown axis 'w'"),
        "zero scale": ([box, "--name", "x", "--scale", "0"], 2, "--scale must be a positive number"),
        "nan scale": ([box, "--name", "x", "--scale", "nan"], 2, "--scale must be a positive number"),
        "few points": ([box, "--name", "x", "--scale", "0.001", "--points", "5"], 2, "--points must be in"),
        "output is a file": ([box, "--name", "x", "--scale", "0.001", "--output-dir", box], 2,
                             "is not a directory"),
    }


def test_every_bad_input_is_one_clear_error_line(tmp_path, user_dir, capfd):
    for case, (argv, status, message) in _bad_inputs(tmp_path).items():
        code, out, err = cli(capfd, "add", *argv)
        assert code == status, f"{case}: exit {code}\n{out}{err}"
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, f"{case}: {err!r}"
        assert out == "" and "Traceback" not in err, case
    assert not user_dir.exists()                    # nothing was written


def test_an_existing_model_and_a_simulator_name_need_force(tmp_path, user_dir, capfd):
    box = box_mm(tmp_path / "box.stl")
    assert cli(capfd, "add", box, "--name", "block", "--scale", "0.001")[0] == 0
    code, _, err = cli(capfd, "add", box, "--name", "block", "--scale", "0.001", "--symmetry", "box")
    assert code == 1 and "already exists: pass --force" in err
    assert load_object_model("block").symmetry.spec == "none"
    assert cli(capfd, "add", box, "--name", "block", "--scale", "0.001", "--symmetry", "box", "--force")[0] == 0
    assert load_object_model("block").symmetry.spec == "box"

    code, out, err = cli(capfd, "add", box, "--name", "cube", "--scale", "0.001", "--force")
    assert code == 0 and "now means this model, not the simulator's" in err
    assert load_object_model("cube").source.startswith("mesh:box.stl")
    code, _, _ = cli(capfd, "add", box, "--name", "huge", "--force")       # --force keeps a 30 m box
    assert code == 0 and load_object_model("huge").extent.max() == pytest.approx(30.0)


def test_argparse_errors_exit_2(capfd, user_dir):
    assert cli(capfd)[0] == 2
    code, _, err = cli(capfd, "add", "mesh.stl")
    assert code == 2 and "--name" in err


# ------------------------------------------------------------------ list and show
def test_list_shows_simulator_and_user_objects(tmp_path, user_dir, capfd):
    assert cli(capfd, "add", box_mm(tmp_path / "box.stl"), "--name", "block", "--scale", "0.001",
               "--symmetry", "box", "--output-dir", tmp_path / "extra")[0] == 0
    code, out, err = cli(capfd, "list")
    assert code == 0 and err == ""
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip() and " " in line}
    assert set(SIM_OBJECT_SYMMETRY) <= set(rows) and "block" not in rows
    assert "cube" in rows["cube"] and "65.0 x 65.0 x 65.0" in rows["cube"] and "simulator" in rows["cube"]
    assert "cylinder:z" in rows["cylinder"]

    code, out, _ = cli(capfd, "list", "--object-dir", tmp_path / "extra")
    block = next(line for line in out.splitlines() if line.startswith("block "))
    assert code == 0 and "box" in block and "30.0 x 20.0 x 10.0" in block and "block.npz" in block

    user_dir.mkdir()
    (user_dir / "broken.npz").write_text("nonsense")
    code, out, err = cli(capfd, "list")
    assert code == 0 and "unreadable" in out and "warning:" in err and "broken.npz" in err
    code, _, err = cli(capfd, "list", "--object-dir", tmp_path / "nowhere")
    assert code == 2 and "is not a directory" in err


def test_show_describes_one_model_and_refuses_unknown_names(tmp_path, user_dir, capfd):
    code, out, _ = cli(capfd, "show", "cuboid_long")
    assert code == 0
    for text in ("object     cuboid_long", "simulator object", "square:z (8 equivalent orientations)",
                 "50.0 x 50.0 x 90.0 mm", "points     2048"):
        assert text in out, out
    assert cli(capfd, "add", box_mm(tmp_path / "box.stl"), "--name", "block", "--scale", "0.001")[0] == 0
    code, out, _ = cli(capfd, "show", "block")
    assert code == 0 and str(user_dir / "block.npz") in out and "mesh:box.stl" in out

    code, out, err = cli(capfd, "show", "teapot")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "unknown object 'teapot'" in err and "'cube'" in err and "'block'" in err
