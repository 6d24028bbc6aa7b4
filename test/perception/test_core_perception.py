"""perception.py: the shared depth -> object cloud function, on synthetic depth frames.

The synthetic scene z-buffers dense surface samples of a cube and of the hand's
own collision boxes (posed by forward kinematics) into the configured camera,
so the ground truth is known exactly. Simulator frames with rendered labels
are in test_perception_accuracy.py.
"""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from dexterity_ros.camera_model import Intrinsics, IntrinsicsError
from dexterity_ros.config import ConfigError, from_dict
from dexterity_ros.extrinsics import load_extrinsic
from dexterity_ros.geometry import TransformError, invert_transform, transform_points
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.perception import (ContactRegrowConfig, ObjectCloudExtractor, PerceptionConfig, density_filter,
                                      extract_object_cloud, hand_mask, load_perception_config, regrow_contacts,
                                      sample_points)

from perception_fixtures import EXTRINSIC, INTR, grasp_pose, on_cube, scene


def test_config_file_loads_and_hash_is_stable():
    cfg = load_perception_config()
    assert cfg.config_hash() == load_perception_config().config_hash()
    assert cfg.config_hash() != from_dict(PerceptionConfig, {"num_points": 256}).config_hash()
    assert cfg.pixel_stride(640) == 2 and cfg.pixel_stride(320) == 1 and cfg.pixel_stride(848) == 2


def test_object_cloud_is_on_the_object_in_the_palm_frame():
    cfg = load_perception_config()
    result = extract_object_cloud(scene(with_hand=True), INTR, EXTRINSIC, grasp_pose(), cfg)
    assert result.ok, result.reason
    assert result.points.shape == (cfg.num_points, 3) and result.points.dtype == np.float32
    assert np.all(on_cube(result.points))          # every point on the cube, none on the hand
    assert result.counts["hand_removed"] > 1000
    assert result.alignment.ok and result.alignment.translation_mm < 2.0   # nothing to correct here


def test_hand_points_are_removed_by_forward_kinematics():
    cfg = from_dict(PerceptionConfig, {"min_points": 10, "outlier": {"method": "none"}})
    hand_only = scene(with_hand=True) * (scene(with_hand=False) == 0)
    result = ObjectCloudExtractor(cfg).extract(hand_only, INTR, EXTRINSIC, grasp_pose())
    assert not result.ok and "too few object points" in result.reason and "were the hand" in result.reason
    # the same frame without hand removal would have sent the hand to the student
    keep_hand = dataclasses.replace(cfg, remove_hand=False)
    assert ObjectCloudExtractor(keep_hand).extract(hand_only, INTR, EXTRINSIC, None).counts["object_points"] > 500


def test_alignment_absorbs_a_calibration_error():
    """Frame taken with the true camera, processed with an extrinsic 12 mm / 1 deg off."""
    cfg = load_perception_config()
    offset = np.eye(4)
    angle = np.radians(1.0)
    offset[:3, :3] = [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    offset[:3, 3] = [0.004, -0.008, 0.008]
    calibrated = offset @ EXTRINSIC
    depth = scene(with_hand=True)
    aligned = ObjectCloudExtractor(cfg).extract(depth, INTR, calibrated, grasp_pose())
    assert aligned.ok and aligned.alignment.ok
    # the correction undoes the offset (palm_true <- palm_calibrated = inverse offset)
    residual = aligned.alignment.correction @ offset
    assert np.linalg.norm(residual[:3, 3]) < 0.003
    # hand points no longer leak into the cloud; without the alignment they do
    shifted = transform_points(invert_transform(offset), aligned.points.astype(np.float64))
    assert np.mean(on_cube(shifted)) > 0.99
    rigid = dataclasses.replace(cfg, hand_alignment=dataclasses.replace(cfg.hand_alignment, enabled=False))
    plain = ObjectCloudExtractor(rigid).extract(depth, INTR, calibrated, grasp_pose(), want_mask=True)
    assert plain.alignment is None
    plain_points = transform_points(invert_transform(offset), plain.points.astype(np.float64))
    assert np.mean(on_cube(plain_points)) < 0.95


def test_warm_start_gives_the_same_cloud_quality_faster():
    cfg = load_perception_config()
    extractor = ObjectCloudExtractor(cfg)
    depth = scene(with_hand=True)
    cold = extractor.extract(depth, INTR, EXTRINSIC, grasp_pose())
    warm = extractor.extract(depth, INTR, EXTRINSIC, grasp_pose(), previous_alignment=cold.alignment)
    assert warm.alignment.warm and not cold.alignment.warm
    assert np.allclose(warm.alignment.correction, cold.alignment.correction, atol=2e-3)
    assert np.all(on_cube(warm.points))


def test_asymmetric_margin_keeps_what_is_behind_a_finger():
    """A point just behind a box (seen from the camera) is kept; the same distance in front is removed."""
    shapes = HandKinematics().collision_shapes(grasp_pose())
    camera = EXTRINSIC[:3, 3]
    centre, rot, half = shapes.box_center[1], shapes.box_rotation[1], shapes.box_half[1]
    view = (centre - camera) / np.linalg.norm(centre - camera)
    axis = int(np.argmax(np.abs(rot.T @ view)))            # box axis most aligned with the view ray
    normal = rot[:, axis] * np.sign(rot[:, axis] @ view)   # outward normal of the far face
    behind = centre + normal * (half[axis] + 0.003)
    front = centre - normal * (half[axis] + 0.003)
    mask = hand_mask(shapes, np.array([behind, front]), camera, margin=0.004, margin_behind=0.0015)
    assert mask.tolist() == [False, True]


def test_deterministic_for_the_same_input():
    cfg = load_perception_config()
    depth = scene()
    a = extract_object_cloud(depth, INTR, EXTRINSIC, grasp_pose(), cfg).points
    b = extract_object_cloud(depth.copy(), INTR, EXTRINSIC, grasp_pose(), cfg).points
    assert np.array_equal(a, b)


def test_mask_marks_the_pixels_of_the_kept_points():
    cfg = from_dict(PerceptionConfig, {"working_width": 212})       # stride 2 at 424 px
    extractor = ObjectCloudExtractor(cfg)
    depth = scene()
    result = extractor.extract(depth, INTR, EXTRINSIC, grasp_pose(), want_mask=True)
    rows, cols = np.nonzero(result.object_mask)
    assert len(rows) == result.counts["object_points"]
    assert np.all(rows % 2 == 0) and np.all(cols % 2 == 0)       # only the pixels that were read
    assert np.all(depth[rows, cols] > 0)


# ------------------------------------------------------------------ bad input
def test_all_zero_depth_gives_no_cloud_and_a_reason():
    result = extract_object_cloud(np.zeros((240, 424), np.float32), INTR, EXTRINSIC, grasp_pose(),
                                  load_perception_config())
    assert not result.ok and "too few" in result.reason and "no valid depth" in result.reason


def test_nan_and_inf_depth_are_no_measurement():
    cfg = load_perception_config()
    all_nan = np.full((240, 424), np.nan, np.float32)
    result = extract_object_cloud(all_nan, INTR, EXTRINSIC, grasp_pose(), cfg)
    assert not result.ok and "NaN/inf" in result.reason
    depth = scene()
    holes = depth.copy()
    holes[::3, ::2] = np.nan
    holes[1::3, ::2] = np.inf
    holes[2::3, 1::2] = -np.inf
    result = extract_object_cloud(holes, INTR, EXTRINSIC, grasp_pose(), cfg)
    assert result.ok and np.all(np.isfinite(result.points)) and np.all(on_cube(result.points))


def test_bad_inputs_are_clear_errors():
    cfg = load_perception_config()
    depth = scene()
    with pytest.raises(IntrinsicsError, match="camera_info says"):
        extract_object_cloud(np.zeros((100, 100), np.float32), INTR, EXTRINSIC, grasp_pose(), cfg)
    skewed = EXTRINSIC.copy()
    skewed[:3, :3] *= 1.1
    with pytest.raises(TransformError, match="orthonormal"):
        extract_object_cloud(depth, INTR, skewed, grasp_pose(), cfg)
    mirrored = EXTRINSIC.copy()
    mirrored[:3, 0] *= -1
    with pytest.raises(TransformError, match="reflection"):
        extract_object_cloud(depth, INTR, mirrored, grasp_pose(), cfg)
    with pytest.raises(IntrinsicsError, match="focal"):
        Intrinsics(424, 240, 0.0, 213.0, 211.5, 119.5)
    with pytest.raises(IntrinsicsError, match="size"):
        Intrinsics(0, 240, 213.0, 213.0, 211.5, 119.5)
    with pytest.raises(ValueError, match="float metres"):
        extract_object_cloud((depth * 1000).astype(np.uint16), INTR, EXTRINSIC, grasp_pose(), cfg)
    with pytest.raises(ValueError, match="16 joint positions"):
        extract_object_cloud(depth, INTR, EXTRINSIC, np.zeros(12), cfg)
    with pytest.raises(ValueError, match="finite"):
        extract_object_cloud(depth, INTR, EXTRINSIC, np.full(16, np.nan), cfg)
    with pytest.raises(ValueError, match="joint positions are required"):
        extract_object_cloud(depth, INTR, EXTRINSIC, None, cfg)
    broken = dataclasses.replace(extract_object_cloud(depth, INTR, EXTRINSIC, grasp_pose(), cfg).alignment,
                                 correction=np.eye(4) * 2)
    with pytest.raises(TransformError, match="previous hand alignment"):
        ObjectCloudExtractor(cfg).extract(depth, INTR, EXTRINSIC, grasp_pose(), previous_alignment=broken)
    with pytest.raises(ConfigError, match="workspace"):
        from_dict(PerceptionConfig, {"workspace": {"min": [0, 0, 0], "max": [0.1, -0.1, 0.1]}})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(PerceptionConfig, {"hand_alignment": {"iterationz": 3}})


def test_non_rigid_extrinsic_file_is_rejected(tmp_path: Path):
    bad = tmp_path / "extrinsics.yaml"
    bad.write_text("parent_frame: palm\nchild_frame: camera_depth_optical_frame\n"
                   "translation: [0.4, 0.0, 0.14]\nrotation: [0.5, -0.6, -0.6, 0.4]\n")
    with pytest.raises(ConfigError, match="not a unit quaternion"):
        load_extrinsic(bad)


def test_regrow_follows_continuous_depth_and_stops_at_a_jump():
    """A 4 x 6 lattice: object in columns 0-1; dropped columns 2-3 continue its surface (+2 mm per
    column), column 4 is a finger 3 cm nearer the camera, column 5 continues the object again but
    is only reachable through the finger."""
    height, width = 4, 6
    rows, cols = np.mgrid[0:height, 0:width]
    depth = (0.40 + 0.002 * cols).astype(np.float32)
    depth[:, 4] = 0.37
    index = (rows * width + cols).ravel()
    depth = depth.ravel()
    kind = cols.ravel()
    object_rows, dropped_rows = np.flatnonzero(kind < 2), np.flatnonzero(kind >= 2)
    regrow = lambda steps: kind[dropped_rows[regrow_contacts(  # noqa: E731
        (height, width), index, depth, object_rows, dropped_rows, ContactRegrowConfig(steps, 0.005))]]
    assert sorted(set(regrow(1))) == [2]                         # one lattice step per round
    assert sorted(set(regrow(2))) == [2, 3]
    assert sorted(set(regrow(5))) == [2, 3]                      # never across the depth jump
    assert len(regrow(2)) == 2 * height
    assert not regrow(0).size


def test_regrow_does_not_wrap_around_lattice_rows():
    """Object at the end of row 0 must not reach the start of row 1 (adjacent in memory only)."""
    width = 5
    index = np.array([4, 5])                                     # (row 0, col 4) and (row 1, col 0)
    depth = np.array([0.4, 0.4], dtype=np.float32)
    joined = regrow_contacts((2, width), index, depth, np.array([0]), np.array([1]), ContactRegrowConfig(3, 0.005))
    assert not joined.any()
    below = regrow_contacts((2, width), np.array([4, 9]), depth, np.array([0]), np.array([1]),
                            ContactRegrowConfig(1, 0.005))
    assert below.all()                                           # (row 1, col 4) is a true neighbour


def test_contact_regrow_config_is_checked():
    with pytest.raises(ValueError, match="contact_regrow"):
        ContactRegrowConfig(steps=-1)
    with pytest.raises(ValueError, match="contact_regrow"):
        ContactRegrowConfig(max_depth_jump=0.0)
    with pytest.raises(ConfigError):
        from_dict(PerceptionConfig, {"contact_regrow": {"steps": 2, "jump": 0.005}})


# ------------------------------------------------------------------ building blocks
def test_density_filter_removes_isolated_points():
    rng = np.random.default_rng(0)
    blob = rng.normal(scale=0.005, size=(500, 3))
    stray = np.array([[0.2, 0.2, 0.2], [-0.3, 0.1, 0.0]])
    keep = density_filter(np.vstack([blob, stray]), 0.01, 5)
    assert keep[:500].mean() > 0.98 and not keep[500:].any()


def test_density_filter_counts_the_3x3x3_neighbourhood():
    """Brute force: neighbours in the 27 voxels around each point's voxel."""
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 0.05, size=(400, 3))
    cells = np.floor(pts / 0.01).astype(int)
    near = np.all(np.abs(cells[:, None, :] - cells[None, :, :]) <= 1, axis=2).sum(axis=1) - 1
    for k in (0, 3, 8, 20):
        assert np.array_equal(density_filter(pts, 0.01, k), near >= k)


@pytest.mark.parametrize("method", ["random", "fps"])
def test_sampling_gives_exactly_n(method):
    pts = np.random.default_rng(0).normal(size=(300, 3))
    for n in (100, 300, 512):
        out = sample_points(pts, n, method, seed=3)
        assert out.shape == (n, 3)
        assert np.array_equal(out, sample_points(pts, n, method, seed=3))


def test_farthest_point_sampling_spreads_the_points():
    rng = np.random.default_rng(0)
    dense = rng.normal(scale=0.001, size=(900, 3))            # a tight blob ...
    sparse = rng.uniform(-0.05, 0.05, size=(100, 3))          # ... and a few far points
    pts = np.vstack([dense, sparse])
    fps = sample_points(pts, 50, "fps", seed=0)
    rnd = sample_points(pts, 50, "random", seed=0)
    spread = lambda p: np.mean(np.max(np.abs(p), axis=1) > 0.005)   # noqa: E731
    assert spread(fps) > 0.8 > spread(rnd)
