"""geometry.py: quaternion/matrix round trips and rigid-transform validation."""
import numpy as np
import pytest

from dexterity_ros.geometry import (TransformError, axis_angle_to_quat, invert_transform, make_transform,
                                    matrix_to_quat, quat_multiply, quat_to_matrix, random_quaternion,
                                    rotation_distance, transform_points, validate_rigid)


def test_quaternion_matrix_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = random_quaternion(rng)
        r = quat_to_matrix(q)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(r), 1.0)
        assert np.allclose(matrix_to_quat(r), q, atol=1e-9)


def test_composition_matches_matrix_product():
    rng = np.random.default_rng(1)
    a, b = random_quaternion(rng), random_quaternion(rng)
    assert np.allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b))


def test_rotation_distance():
    q0 = np.array([1.0, 0, 0, 0])
    q1 = axis_angle_to_quat([0, 0, 1], 0.7)
    assert np.isclose(rotation_distance(q0, q1), 0.7)
    assert np.isclose(rotation_distance(q1, -q1), 0.0, atol=1e-6)


def test_inverse_transform():
    t = make_transform(quat_to_matrix(axis_angle_to_quat([1, 2, 3], 1.1)), [0.1, -0.2, 0.3])
    p = np.random.default_rng(2).normal(size=(10, 3))
    assert np.allclose(transform_points(invert_transform(t), transform_points(t, p)), p)


@pytest.mark.parametrize("matrix, message", [
    (np.diag([1.0, 1.0, 1.1, 1.0]), "not orthonormal"),
    (np.diag([1.0, 1.0, -1.0, 1.0]), "reflection"),
    (np.full((4, 4), np.nan), "NaN"),
    (np.eye(3), "4x4"),
])
def test_validate_rigid_rejects(matrix, message):
    with pytest.raises(TransformError, match=message):
        validate_rigid(matrix)
