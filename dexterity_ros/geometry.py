"""Rigid-body maths in numpy: quaternions (w, x, y, z) and 4x4 transforms.

REP 103: metres, radians, right-handed frames. Quaternions are Hamilton,
scalar first, as in the robot description and MuJoCo; ROS messages store
(x, y, z, w) and the conversion module reorders them.
"""
from __future__ import annotations

import numpy as np

FloatArray = np.ndarray


class TransformError(ValueError):
    """A transform or rotation is not rigid (non-orthonormal, reflection, NaN)."""


def quat_normalize(q: FloatArray) -> FloatArray:
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norm)) or np.any(norm < 1e-12):
        raise TransformError(f"quaternion has zero or non-finite norm: {q}")
    return q / norm


def quat_to_matrix(q: FloatArray) -> FloatArray:
    """(…, 4) unit quaternions (w, x, y, z) -> (…, 3, 3) rotation matrices."""
    q = quat_normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.empty(q.shape[:-1] + (3, 3))
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - w * z)
    m[..., 0, 2] = 2 * (x * z + w * y)
    m[..., 1, 0] = 2 * (x * y + w * z)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - w * x)
    m[..., 2, 0] = 2 * (x * z - w * y)
    m[..., 2, 1] = 2 * (y * z + w * x)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def matrix_to_quat(m: FloatArray) -> FloatArray:
    """(3, 3) rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def quat_multiply(a: FloatArray, b: FloatArray) -> FloatArray:
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quat_conjugate(q: FloatArray) -> FloatArray:
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotation_distance(a: FloatArray, b: FloatArray) -> FloatArray:
    """Geodesic angle (rad) between orientations a and b (quaternions)."""
    a = quat_normalize(a)
    b = quat_normalize(b)
    dot = np.abs(np.sum(a * b, axis=-1))
    return 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))


def axis_angle_to_quat(axis: FloatArray, angle: float) -> FloatArray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def random_quaternion(rng: np.random.Generator) -> FloatArray:
    """Uniformly distributed unit quaternion (Shoemake), w >= 0."""
    u1, u2, u3 = rng.random(3)
    q = np.array([
        np.sqrt(u1) * np.cos(2 * np.pi * u3),
        np.sqrt(1 - u1) * np.sin(2 * np.pi * u2),
        np.sqrt(1 - u1) * np.cos(2 * np.pi * u2),
        np.sqrt(u1) * np.sin(2 * np.pi * u3),
    ])
    return q if q[0] >= 0 else -q


def make_transform(rotation: FloatArray, translation: FloatArray) -> FloatArray:
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = translation
    return t


def transform_from_pose(translation: FloatArray, quat_wxyz: FloatArray) -> FloatArray:
    return make_transform(quat_to_matrix(quat_wxyz), np.asarray(translation, dtype=np.float64))


def invert_transform(t: FloatArray) -> FloatArray:
    r = t[:3, :3]
    inv = np.eye(4)
    inv[:3, :3] = r.T
    inv[:3, 3] = -r.T @ t[:3, 3]
    return inv


def validate_rigid(t: FloatArray, tolerance: float = 1e-4, name: str = "transform") -> FloatArray:
    """Return ``t`` as float64 4x4 if it is a proper rigid transform, else raise."""
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (4, 4):
        raise TransformError(f"{name}: expected a 4x4 matrix, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise TransformError(f"{name}: contains NaN or inf")
    if not np.allclose(t[3], [0, 0, 0, 1], atol=tolerance):
        raise TransformError(f"{name}: last row must be [0, 0, 0, 1], got {t[3].tolist()}")
    r = t[:3, :3]
    err = np.abs(r.T @ r - np.eye(3)).max()
    if err > tolerance:
        raise TransformError(
            f"{name}: rotation is not orthonormal (max |R^T R - I| = {err:.3g} > {tolerance})")
    det = np.linalg.det(r)
    if det < 0:
        raise TransformError(f"{name}: rotation is a reflection (det = {det:.3f})")
    return t


def transform_points(t: FloatArray, points: FloatArray) -> FloatArray:
    """Apply a 4x4 transform to (N, 3) points."""
    return points @ t[:3, :3].T + t[:3, 3]
