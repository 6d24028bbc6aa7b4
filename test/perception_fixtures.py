"""Synthetic perception scenes shared by the perception, segmentation and sim-bridge tests.

A cube in the palm of the curled hand, rendered as a depth image through the
packaged extrinsic: no simulator needed.
"""
from __future__ import annotations

import numpy as np

from dexterity_ros.camera_model import Intrinsics, project
from dexterity_ros.extrinsics import load_extrinsic
from dexterity_ros.geometry import invert_transform, transform_points
from dexterity_ros.hand_model import default_hand
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.paths import config_path

INTR = Intrinsics(424, 240, 213.0, 213.0, 211.5, 119.5)
EXTRINSIC = load_extrinsic(config_path("extrinsics.yaml")).matrix
OBJECT_CENTER = np.array([0.08, 0.0, 0.0])       # touches the curled fingers (2 mm), does not pass through them
OBJECT_HALF = 0.03


def splat(points_palm: np.ndarray, intr: Intrinsics = INTR, extrinsic: np.ndarray = EXTRINSIC) -> np.ndarray:
    """Z-buffer dense palm-frame points into a depth image seen by the configured camera."""
    cam = transform_points(invert_transform(extrinsic), points_palm)
    uv, z = project(cam, intr)
    u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    ok = (z > 0) & (u >= 0) & (u < intr.width) & (v >= 0) & (v < intr.height)
    depth = np.full((intr.height, intr.width), np.inf, dtype=np.float32)
    np.minimum.at(depth, (v[ok], u[ok]), z[ok].astype(np.float32))
    depth[~np.isfinite(depth)] = 0
    return depth


def cube_surface(center, half, n=120000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(-1, 1, size=(n, 3))
    axis = rng.integers(0, 3, n)
    p[np.arange(n), axis] = np.sign(p[np.arange(n), axis])
    return np.asarray(center) + p * half


def grasp_pose() -> np.ndarray:
    """Fingers curled towards +x so they enter the workspace box in front of the palm."""
    hand = default_hand()
    q = np.zeros(16)
    for finger in ("ff", "mf", "rf"):
        q[hand.joint_index(finger + "j1")] = 1.0
        q[hand.joint_index(finger + "j2")] = 0.6
    q[hand.joint_index("thj0")] = 1.0
    return q


def hand_surface(q: np.ndarray) -> np.ndarray:
    shapes = HandKinematics().collision_shapes(q)
    pts = [c + (cube_surface(np.zeros(3), 1.0, 20000, seed=i + 1) * h) @ r.T
           for i, (r, c, h) in enumerate(zip(shapes.box_rotation, shapes.box_center, shapes.box_half))]
    return np.vstack(pts)


def scene(with_hand=True, q=None, extrinsic=EXTRINSIC):
    pts = [cube_surface(OBJECT_CENTER, OBJECT_HALF)]
    if with_hand:
        pts.append(hand_surface(q if q is not None else grasp_pose()))
    return splat(np.vstack(pts), extrinsic=extrinsic)


def on_cube(points: np.ndarray, tolerance: float = 0.004) -> np.ndarray:
    return np.max(np.abs(points - OBJECT_CENTER), axis=1) < OBJECT_HALF + tolerance
