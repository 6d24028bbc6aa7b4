"""Object symmetry groups and the simulator's tracking models: the maths the tracker and the goal check rely on.

A symmetry group is only useful if every equivalent orientation really is at
distance zero and the symmetric distance never exceeds the plain one; a model
is only useful if its points lie on the object's surface, its normals point
out, and it is the same bytes everywhere.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from dexterity_ros.geometry import axis_angle_to_quat, quat_multiply, quat_to_matrix, random_quaternion, \
    rotation_distance
from dexterity_ros.objects.models import (MODEL_POINTS, SIM_OBJECT_SYMMETRY, ObjectModel, ObjectModelError,
                                          load_model_file, load_object_model, model_file, sim_object_model)
from dexterity_ros.objects.symmetry import SymmetryError, parse_symmetry
from dexterity_ros.sim.objects import OBJECTS, hull_triangles

SPECS = ("none", "box", "cube", "square:z", "cyclic:3:x", "dihedral:5:y", "revolution:z", "cylinder:x")


def _pairs(seed: int, n: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(random_quaternion(rng), random_quaternion(rng)) for _ in range(n)]


# ------------------------------------------------------------------ symmetry maths
@pytest.mark.parametrize("spec", SPECS)
def test_every_equivalent_orientation_is_at_distance_zero(spec):
    symmetry = parse_symmetry(spec)
    for q, _ in _pairs(1):
        for equivalent in symmetry.equivalents(q):
            assert symmetry.distance(q, equivalent) < 1e-6
            assert symmetry.distance(equivalent, q) < 1e-6


@pytest.mark.parametrize("spec", SPECS)
def test_symmetric_distance_never_exceeds_the_plain_one(spec):
    symmetry = parse_symmetry(spec)
    for a, b in _pairs(2, 30):
        d = symmetry.distance(a, b)
        assert 0.0 <= d <= float(rotation_distance(a, b)) + 1e-9
        assert d == pytest.approx(symmetry.distance(b, a), abs=1e-9)


@pytest.mark.parametrize("spec", SPECS)
def test_closest_equivalent_is_equivalent_and_as_near_as_the_distance_says(spec):
    symmetry = parse_symmetry(spec)
    for a, b in _pairs(3, 20):
        c = symmetry.closest_equivalent(b, a)
        assert np.linalg.norm(c) == pytest.approx(1.0) and c[0] >= 0
        assert symmetry.distance(b, c) < 1e-6                          # still looks like b
        assert float(rotation_distance(a, c)) == pytest.approx(symmetry.distance(a, b), abs=1e-6)


def _contains(group: np.ndarray, q: np.ndarray) -> bool:
    return bool(np.any(np.abs(group @ q) > 1 - 1e-9))                 # q and -q are one rotation


def test_the_cube_group_has_24_rotations_and_is_closed_under_multiplication():
    group = parse_symmetry("cube").rotations
    assert len(group) == 24
    assert np.allclose(group[0], [1, 0, 0, 0])
    assert all(not _contains(np.delete(group, i, axis=0), g) for i, g in enumerate(group))  # all distinct
    for g, h in itertools.product(group, repeat=2):
        assert _contains(group, quat_multiply(g, h))
    for g in group:                                                    # each is a signed permutation
        m = quat_to_matrix(g)
        assert np.allclose(np.abs(m).sum(axis=0), 1) and np.allclose(np.round(m), m, atol=1e-9)


@pytest.mark.parametrize("spec,order", [("none", 1), ("box", 4), ("square:x", 8), ("cyclic:6:z", 6),
                                        ("dihedral:3:y", 6)])
def test_discrete_groups_have_their_order_and_are_closed(spec, order):
    group = parse_symmetry(spec).rotations
    assert len(group) == order
    for g, h in itertools.product(group, repeat=2):
        assert _contains(group, quat_multiply(g, h))


def test_cylinder_distance_is_the_angle_between_the_axes():
    cylinder, revolution = parse_symmetry("cylinder:z"), parse_symmetry("revolution:z")
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = random_quaternion(rng)
        spin = quat_multiply(a, axis_angle_to_quat([0, 0, 1], rng.uniform(-math.pi, math.pi)))
        assert cylinder.distance(a, spin) < 1e-6 and revolution.distance(a, spin) < 1e-6
        tilt = rng.uniform(0, math.pi)
        b = quat_multiply(spin, axis_angle_to_quat([1, 0, 0], tilt))
        assert revolution.distance(a, b) == pytest.approx(tilt, abs=1e-6)
        assert cylinder.distance(a, b) == pytest.approx(min(tilt, math.pi - tilt), abs=1e-6)
        za, zb = quat_to_matrix(a)[:, 2], quat_to_matrix(b)[:, 2]
        assert cylinder.distance(a, b) == pytest.approx(math.acos(min(1.0, abs(float(za @ zb)))), abs=1e-6)


@pytest.mark.parametrize("spec,message", [("hexagon", "cyclic:N:AXIS"), ("square:w", "unknown axis"),
                                          ("cyclic:0:z", "N must be in"), ("cyclic:two:z", "cyclic:two:z"),
                                          ("cube:z", "unknown symmetry")])
def test_bad_symmetry_specs_are_refused_with_the_forms(spec, message):
    with pytest.raises(SymmetryError, match=message):
        parse_symmetry(spec)


# ------------------------------------------------------------------ the simulator's models
def _planes(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals and offsets of a convex hull's faces (the origin is inside)."""
    normal = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    offset = np.einsum("ij,ij->i", normal, triangles[:, 0])
    normal[offset < 0] *= -1
    return normal, np.abs(offset)


def _signed_distance(name: str):
    """A function (N, 3) -> (N,): zero on the object's surface, negative inside, positive outside."""
    spec = OBJECTS[name]
    if spec.kind == "box":
        half = np.asarray(spec.size)
        return lambda p: (np.abs(p) - half).max(axis=1)
    if spec.kind == "cylinder":
        radius, half = spec.size
        return lambda p: np.maximum(np.linalg.norm(p[:, :2], axis=1) - radius, np.abs(p[:, 2]) - half)
    normal, offset = _planes(hull_triangles(spec))
    return lambda p: (p @ normal.T - offset).max(axis=1)


@pytest.mark.parametrize("name", sorted(SIM_OBJECT_SYMMETRY))
def test_simulator_models_lie_on_the_surface_with_outward_normals(name):
    model = load_object_model(name)
    assert model.name == name and len(model.points) == MODEL_POINTS
    assert model.symmetry.spec == SIM_OBJECT_SYMMETRY[name] and model.source.startswith(f"sim:{name}")
    assert np.allclose(np.linalg.norm(model.normals, axis=1), 1.0)
    sd = _signed_distance(name)
    assert np.abs(sd(model.points)).max() < 1e-9
    step = 1e-4
    assert np.all(sd(model.points + step * model.normals) > 0.5 * step)
    assert np.all(sd(model.points - step * model.normals) < 1e-12)
    assert np.abs(model.points.mean(axis=0)).max() < 0.05 * model.extent.max()   # origin at the centre


@pytest.mark.parametrize("name", sorted(SIM_OBJECT_SYMMETRY))
def test_simulator_symmetries_map_the_surface_onto_itself(name):
    model = load_object_model(name)
    sd = _signed_distance(name)
    for g in model.symmetry.equivalents(np.array([1.0, 0, 0, 0])):
        assert np.abs(sd(model.points @ quat_to_matrix(g).T)).max() < 1e-9


@pytest.mark.parametrize("name", sorted(SIM_OBJECT_SYMMETRY))
def test_simulator_models_are_the_same_bytes_every_time(name, tmp_path):
    first, second = sim_object_model.__wrapped__(name), sim_object_model.__wrapped__(name)
    assert first.points.tobytes() == second.points.tobytes()
    assert first.normals.tobytes() == second.normals.tobytes()
    again = load_model_file(first.save(tmp_path / f"{name}.npz"))
    assert again.points.tobytes() == first.points.tobytes() and again.symmetry.spec == first.symmetry.spec
    assert again.source == first.source


# ------------------------------------------------------------------ files and lookup
def _model(name: str, spec: str = "none") -> ObjectModel:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(32, 3)) * 0.01
    return ObjectModel(name, points, points / np.linalg.norm(points, axis=1, keepdims=True), parse_symmetry(spec))


def test_a_file_in_the_search_path_wins_over_the_simulator(tmp_path, monkeypatch):
    monkeypatch.setenv("DEXTERITY_ROS_OBJECT_DIR", str(tmp_path / "user"))
    first, user = tmp_path / "first", tmp_path / "user"
    first.mkdir(), user.mkdir()
    _model("cube", "box").save(user / "cube.npz")
    assert load_object_model("cube").symmetry.spec == "box" and model_file("cube") == user / "cube.npz"
    _model("cube", "cube").save(first / "cube.npz")
    assert load_object_model("cube", [first]).symmetry.spec == "cube"
    assert model_file("cylinder", [first]) is None


def test_broken_and_unknown_models_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DEXTERITY_ROS_OBJECT_DIR", str(tmp_path))
    _model("mug").save(tmp_path / "cup.npz")
    with pytest.raises(ObjectModelError, match="holds object 'mug', not 'cup'"):
        load_object_model("cup")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ObjectModelError, match="not a readable object model"):
        load_object_model("junk")
    with pytest.raises(ObjectModelError, match=r"unknown object 'nothing'.*'cube'"):
        load_object_model("nothing")
    with pytest.raises(ObjectModelError, match="need"):
        ObjectModel("tiny", np.zeros((3, 3)), np.zeros((3, 3)), parse_symmetry("none"))
