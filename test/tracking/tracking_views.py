"""Synthetic partial views of an object model for the tracker tests: what a depth camera sees of one side.

Points are the model's surface points slid along their tangent plane (so they
are not the model's own samples), kept where the surface faces the camera
(every model here is convex, so facing is visible), optionally minus a band
hidden by a "finger", with depth noise along the viewing ray.
"""
from __future__ import annotations

import numpy as np

from dexterity_ros.geometry import axis_angle_to_quat, quat_multiply, quat_to_matrix
from dexterity_ros.objects.models import ObjectModel

CAMERA = np.array([0.4, 0.0, 0.14])          # palm frame, as config/extrinsics.yaml places it
OBJECT_AT = np.array([0.05, 0.0, -0.03])     # where the object rests on the palm


def partial_view(model: ObjectModel, quaternion: np.ndarray, position: np.ndarray = OBJECT_AT, n: int = 512,
                 noise: float = 0.001, seed: int = 0, finger: float = 0.0) -> np.ndarray:
    """(n, 3) palm-frame points of the camera-facing side of ``model`` at (quaternion, position).

    ``finger``: half-width (m) of a band through the object's centre, parallel to palm z, that is hidden.
    """
    rng = np.random.default_rng(seed)
    rotation = quat_to_matrix(np.asarray(quaternion, dtype=np.float64))
    points = model.points @ rotation.T + position
    normals = model.normals @ rotation.T
    tangent = rng.normal(0.0, 0.0015, points.shape)
    tangent -= np.einsum("ij,ij->i", tangent, normals)[:, None] * normals
    points = points + tangent
    to_camera = CAMERA - points
    visible = np.einsum("ij,ij->i", normals, to_camera) > 0.05 * np.linalg.norm(to_camera, axis=1)
    if finger > 0:
        visible &= np.abs(points[:, 1] - position[1]) > finger
    points, to_camera = points[visible], to_camera[visible]
    pick = rng.choice(len(points), n, replace=len(points) < n)
    ray = to_camera[pick] / np.linalg.norm(to_camera[pick], axis=1, keepdims=True)
    return points[pick] + ray * rng.normal(0.0, noise, (n, 1))


def turned(quaternion: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """``quaternion`` turned by ``degrees`` about the palm-frame ``axis``."""
    q = quat_multiply(axis_angle_to_quat(np.asarray(axis, dtype=np.float64), np.radians(degrees)), quaternion)
    return q if q[0] >= 0 else -q
