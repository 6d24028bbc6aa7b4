"""tracking/registration.py: the closest-point table, ICP, scoring and the global search on synthetic partial views.

Views are the camera-facing side of a model at a known pose with 1 mm depth
noise (tracking_views.py); errors are measured modulo the object's symmetry.
"""
import math

import numpy as np
import pytest

from dexterity_ros.geometry import matrix_to_quat, quat_multiply, quat_to_matrix, random_quaternion
from dexterity_ros.objects.models import load_object_model
from dexterity_ros.objects.symmetry import parse_symmetry
from dexterity_ros.tracking.registration import (IcpParams, ModelIndex, SearchParams, coverage, evaluate,
                                                 gate_schedule, global_search, orientation_hypotheses,
                                                 surface_distance, track)

from tracking_views import CAMERA, OBJECT_AT, partial_view

TRACK = IcpParams(gate_schedule(0.012, 0.005, 10), tolerance=1e-5)
SEARCH = SearchParams(stages=((0.02, 0.015, 0.01, 0.006), (0.006, 0.004, 0.004)), keep=(24, 6),
                      icp=IcpParams(gate_schedule(0.004, 0.005, 10)))


@pytest.fixture(scope="module")
def indexes():
    return {name: ModelIndex(load_object_model(name)) for name in ("cube", "cylinder", "convex_0", "cuboid_flat")}


def rotation_error_deg(model, rotation, quaternion):
    return math.degrees(model.symmetry.distance(matrix_to_quat(rotation), quaternion))


def test_lookup_finds_the_nearest_model_point_within_a_voxel(indexes):
    index = indexes["convex_0"]
    rng = np.random.default_rng(1)
    queries = index.points[rng.choice(len(index.points), 500)] + rng.normal(0, 0.004, (500, 3))
    found, inside = index.lookup(queries)
    assert inside.all()
    exact = np.linalg.norm(queries[:, None] - index.points[None], axis=2).min(axis=1)
    via_table = np.linalg.norm(queries - index.points[found], axis=1)
    # the table holds the nearest point of the voxel centre: at most one voxel diagonal worse
    assert np.all(via_table <= exact + math.sqrt(3) * index.voxel + 1e-12)
    assert np.mean(via_table <= exact + 1e-12) > 0.5
    far, inside = index.lookup(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, index.origin[2] - 0.001]]))
    assert not inside.any()
    columns, inside_c = index.lookup_columns(queries.T[None])
    assert np.array_equal(columns[0], found) and inside_c.all()


def test_surface_distance_on_a_face_and_past_an_edge(indexes):
    index = indexes["cube"]                                   # half side 32.5 mm
    on_face = np.array([[0.0, 0.0, 0.0325 + 0.002], [0.01, -0.01, 0.0325 - 0.001]])
    assert surface_distance(index, on_face) == pytest.approx([0.002, 0.001], abs=4e-4)
    past_edge = np.array([[0.0, 0.0325 + 0.008, 0.0325]])    # 8 mm beyond the top face's edge, in its plane
    assert surface_distance(index, past_edge)[0] > 0.004
    assert surface_distance(index, np.array([[0.5, 0.0, 0.0]]))[0] == np.inf


def test_evaluate_scores_the_true_pose_and_not_a_shifted_one(indexes):
    model = indexes["cube"].model
    q = random_quaternion(np.random.default_rng(2))
    points = partial_view(model, q)
    r, t = quat_to_matrix(q)[None], OBJECT_AT[None]
    towards_camera = (CAMERA - OBJECT_AT) / np.linalg.norm(CAMERA - OBJECT_AT)
    fitness, rmse, score = evaluate(indexes["cube"], points, np.concatenate([r, r]),
                                    np.concatenate([t, t + 0.006 * towards_camera]), 0.004)
    assert fitness[0] > 0.97 and 0.0005 < rmse[0] < 0.0015 and score[0] > 0.85
    assert fitness[1] < 0.8 and score[1] < score[0] - 0.2


@pytest.mark.parametrize("name", ["cube", "cylinder", "convex_0", "cuboid_flat"])
def test_global_search_recovers_a_known_pose(indexes, name):
    index = indexes[name]
    model = index.model
    hypotheses = orientation_hypotheses(model.symmetry, 20.0)
    rng = np.random.default_rng(10)
    for trial in range(3):
        q = random_quaternion(rng)
        position = OBJECT_AT + rng.normal(0, 0.01, 3)
        points = partial_view(model, q, position, seed=trial)
        best = global_search(index, points[::2], hypotheses, CAMERA, SEARCH)[0]
        assert rotation_error_deg(model, best.rotation, q) < 3.0, (name, trial)
        assert np.linalg.norm(best.translation - position) < 0.002
        assert best.fitness > 0.95 and best.inlier_rmse < 0.0015


def test_global_search_needs_no_view_point(indexes):
    """Without the camera position the seen side is taken along the cloud's flattest axis, both ways."""
    model = indexes["convex_0"].model
    hypotheses = orientation_hypotheses(model.symmetry, 20.0)
    rng = np.random.default_rng(4)
    for trial in range(2):
        q = random_quaternion(rng)
        best = global_search(indexes["convex_0"], partial_view(model, q, seed=trial)[::2], hypotheses, None,
                             SEARCH)[0]
        assert rotation_error_deg(model, best.rotation, q) < 3.0


@pytest.mark.parametrize("name", ["cube", "convex_0"])
def test_tracking_from_a_perturbed_previous_pose(indexes, name):
    index = indexes[name]
    rng = np.random.default_rng(5)
    for trial in range(5):
        q = random_quaternion(rng)
        points = partial_view(index.model, q, seed=trial)[::2]
        axis = rng.normal(size=3)
        start = quat_to_matrix(np.concatenate([[math.cos(math.radians(6))],
                                               math.sin(math.radians(6)) * axis / np.linalg.norm(axis)]))
        fit = track(index, points, start @ quat_to_matrix(q), OBJECT_AT + rng.normal(0, 0.003, 3), TRACK, 0.004)
        assert rotation_error_deg(index.model, fit.rotation, q) < 2.0
        assert np.linalg.norm(fit.translation - OBJECT_AT) < 0.002
        assert fit.fitness > 0.95 and fit.iterations <= 10


def test_a_single_flat_face_does_not_slide_off(indexes):
    """Only the top face of the cube is seen: the fit must stay put, not run along the plane."""
    index = indexes["cube"]
    rng = np.random.default_rng(6)
    xy = rng.uniform(-0.03, 0.03, (300, 2))
    points = np.column_stack([xy, np.full(300, 0.0325)]) + rng.normal(0, 0.0008, (300, 3))
    fit = track(index, points, np.eye(3), np.array([0.0, 0.002, 0.001]), TRACK, 0.004)
    # free to slide only as far as the seen patch fits inside the face (2.5 mm each way) and noise allows
    assert np.all(np.isfinite(fit.translation)) and np.linalg.norm(fit.translation) < 0.006
    assert math.degrees(math.acos(np.clip((np.trace(fit.rotation) - 1) / 2, -1, 1))) < 3.0


def test_coverage_is_high_for_the_right_model_and_low_for_a_bigger_one(indexes):
    cylinder = load_object_model("cylinder")
    q = random_quaternion(np.random.default_rng(8))
    points = partial_view(cylinder, q)
    rotation = quat_to_matrix(q)
    right = coverage(indexes["cylinder"], points, rotation, OBJECT_AT, CAMERA, 0.004, 0.005)
    assert right > 0.9
    hidden = partial_view(cylinder, q, finger=0.012)
    assert 0.3 < coverage(indexes["cylinder"], hidden, rotation, OBJECT_AT, CAMERA, 0.004, 0.005) < right
    # the cube model posed on the cylinder's points leaves its visible side mostly bare
    cube = indexes["cube"]
    best = global_search(cube, points[::2], orientation_hypotheses(cube.model.symmetry, 20.0), CAMERA, SEARCH)[0]
    assert coverage(cube, points, best.rotation, best.translation, CAMERA, 0.004, 0.005) < right - 0.2


@pytest.mark.parametrize("spec, expected", [("none", (440, 450)), ("box", (105, 118)), ("cube", (16, 22)),
                                            ("square:z", (52, 62)), ("cylinder:z", (30, 36)),
                                            ("revolution:z", (62, 70))])
def test_orientation_hypotheses_are_reduced_by_the_symmetry(spec, expected):
    symmetry = parse_symmetry(spec)
    hypotheses = orientation_hypotheses(symmetry, 20.0)
    assert expected[0] <= len(hypotheses) <= expected[1]
    assert np.allclose(np.linalg.norm(hypotheses, axis=1), 1.0) and np.all(hypotheses[:, 0] >= 0)
    # every orientation has a hypothesis near it, modulo the symmetry
    rng = np.random.default_rng(7)
    samples = np.array([random_quaternion(rng) for _ in range(30)])
    if symmetry.axis is None:                   # all equivalents of every hypothesis at once
        equivalents = quat_multiply(hypotheses[:, None, :], symmetry.rotations[None, :, :]).reshape(-1, 4)
        nearest = 2.0 * np.arccos(np.clip(np.abs(samples @ equivalents.T).max(axis=1), 0.0, 1.0))
    else:
        nearest = np.array([min(symmetry.distance(h, q) for h in hypotheses) for q in samples])
    assert math.degrees(float(nearest.max())) < 30.0


def test_bad_parameters_are_programming_errors():
    with pytest.raises(ValueError):
        ModelIndex(load_object_model("cube"), voxel=0.0)
    with pytest.raises(ValueError):
        orientation_hypotheses(parse_symmetry("none"), 0.0)
