"""Camera -> palm extrinsic from scratch (dexterity_ros.calibration_solve) on simulator frames.

The frames' true extrinsic is the rendered camera's (camera pose jittered per
episode, intrinsics exact); starts are far outside the refine-only check's
reach (which the tests show), up to the prior's 10 cm / 30 deg.
"""
import dataclasses
import math

import numpy as np
import pytest

from dexterity_ros.calibration import (check_extrinsic, render_hand_depth, rotation_from_vector,
                                       signed_distance, transform_difference)
from dexterity_ros.calibration_solve import (CalibrationSolveError, SolveConfig, sample_hand_surface,
                                             solve_extrinsic)
from dexterity_ros.cli_commands.calib_check import sim_frames
from dexterity_ros.geometry import make_transform
from dexterity_ros.kinematics import HandKinematics


def frames_and_truth(seed: int, mount: str, count: int = 4):
    truths = []
    frames = list(sim_frames(seed, count, mount, True, truths, intrinsics_jitter=False, one_episode=True))
    assert len(frames) == count and all(np.allclose(t, truths[0]) for t in truths)   # one episode: one camera
    return frames, truths[0]


@pytest.fixture(scope="module")
def palm_up():
    return frames_and_truth(11, "palm_up")


@pytest.fixture(scope="module")
def palm_down():
    return frames_and_truth(12, "palm_down")


def offset(truth: np.ndarray, shift_m, axis, degrees: float) -> np.ndarray:
    """The truth with the camera moved by ``shift_m`` (palm frame) and turned about its own ``axis``."""
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return make_transform(truth[:3, :3] @ rotation_from_vector(axis * math.radians(degrees)),
                          truth[:3, 3] + np.asarray(shift_m))


def test_surface_samples_lie_on_the_hand_with_outward_normals():
    shapes = HandKinematics().collision_shapes(np.zeros(16))
    points, normals = sample_hand_surface(shapes, 0.006)
    distance, _ = signed_distance(shapes, points)
    assert len(points) > 1000 and np.abs(distance).max() < 1e-9
    outside, _ = signed_distance(shapes, points + 0.002 * normals)           # a step along the normal leaves it
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    assert np.mean(outside > 0.0019) > 0.95                                   # (except into a neighbouring link)
    fewer, _ = sample_hand_surface(shapes, 0.012)
    assert 0.15 < len(fewer) / len(points) < 0.35                           # one sample per spacing^2
    abutting = shapes.contains(points, 0.0005).sum()                       # none where links touch


def test_solves_from_10_cm_and_30_degrees_away(palm_up):
    frames, truth = palm_up
    start = offset(truth, (0.0, 0.08, -0.06), (1.0, 1.0, 0.0), 30.0)       # exactly 10 cm and 30 deg off
    assert transform_difference(start, truth) == pytest.approx((100.0, 30.0), abs=1e-6)
    assert check_extrinsic(frames, start).suggested_extrinsic is None         # the refine-only path gives up
    result = solve_extrinsic(frames, start)
    translation, rotation = transform_difference(result.extrinsic, truth)
    assert translation < 3.0 and rotation < 1.0, (translation, rotation)
    assert result.best.converged and result.margin > SolveConfig().min_margin
    assert result.change == pytest.approx(transform_difference(start, result.extrinsic))
    assert result.best.inliers > 0.8 * result.best.points


def test_solves_the_curled_palm_down_grasp(palm_down):
    frames, truth = palm_down
    start = offset(truth, (-0.05, -0.03, 0.06), (0.0, 1.0, -1.0), 25.0)
    result = solve_extrinsic(frames, start)
    translation, rotation = transform_difference(result.extrinsic, truth)
    assert translation < 3.0 and rotation < 1.0, (translation, rotation)


def test_joint_reading_offsets_do_not_bias_the_extrinsic(palm_up):
    """Every joint reads 2 deg too far: fitted alongside, the extrinsic stays right; trusted, it moves."""
    frames, truth = palm_up
    bias = np.full(16, math.radians(2.0))
    biased = [dataclasses.replace(f, joint_positions=f.joint_positions + bias) for f in frames]
    start = offset(truth, (0.02, -0.02, 0.0), (0.0, 0.0, 1.0), 3.0)
    fitted = solve_extrinsic(biased, start)
    trusted = solve_extrinsic(biased, start, config=SolveConfig(joint_offset_sigma=0.0))
    fitted_error = transform_difference(fitted.extrinsic, truth)
    trusted_error = transform_difference(trusted.extrinsic, truth)
    assert fitted_error[0] < 4.0 and fitted_error[1] < 0.6, fitted_error
    assert trusted_error[0] > 2.5 * fitted_error[0] and trusted_error[1] > 2.5 * fitted_error[1], \
        (trusted_error, fitted_error)
    assert np.mean(fitted.best.joint_offsets) < -math.radians(1.0)           # found most of the offset
    assert np.all(trusted.best.joint_offsets == 0.0)


def test_no_hand_in_view_is_a_clear_failure(palm_up):
    """The hand (and the object it holds) cut out of the depth: only the far background is left."""
    frames, truth = palm_up
    kinematics = HandKinematics()
    handless = []
    for frame in frames:
        hand = render_hand_depth(kinematics.collision_shapes(frame.joint_positions), frame.intrinsics, truth) > 0
        depth = np.where(hand | (frame.depth < 0.7), 0.0, frame.depth).astype(np.float32)
        handless.append(dataclasses.replace(frame, depth=depth))
    with pytest.raises(CalibrationSolveError, match="hand is out of view or hidden"):
        solve_extrinsic(handless, offset(truth, (0.03, 0.0, 0.0), (1.0, 0.0, 0.0), 5.0))
    with pytest.raises(CalibrationSolveError, match="no frames"):
        solve_extrinsic([], truth)


def test_a_flat_surface_is_not_taken_for_the_hand(palm_up):
    """A tilted plane where the hand should be: a flat hand model fits it, but its outline does not stand out."""
    frames, truth = palm_up
    k = frames[0].intrinsics
    rows = np.arange(k.height, dtype=np.float32)[:, None] * np.ones((1, k.width), dtype=np.float32)
    plane = [dataclasses.replace(f, depth=0.35 + 0.001 * rows) for f in frames]
    with pytest.raises(CalibrationSolveError, match="not the hand|matches the depth"):
        solve_extrinsic(plane, truth)


def test_config_rejects_inconsistent_levels():
    with pytest.raises(ValueError, match="one entry per level"):
        SolveConfig(pool_px=(8, 4), tolerance=(0.02,), search_points=(60, 100))
    with pytest.raises(ValueError, match="max_rotation_deg"):
        SolveConfig(max_rotation_deg=120.0)
