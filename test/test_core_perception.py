"""perception.py: the shared depth -> object cloud function, on synthetic depth frames."""
import numpy as np
import pytest

from dexterity_ros.camera_model import Intrinsics, IntrinsicsError, project
from dexterity_ros.config import ConfigError, from_dict
from dexterity_ros.extrinsics import load_extrinsic
from dexterity_ros.geometry import TransformError, invert_transform, transform_points
from dexterity_ros.hand_model import default_hand
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.paths import config_path
from dexterity_ros.perception import (ObjectCloudExtractor, PerceptionConfig, density_filter,
                                      extract_object_cloud, load_perception_config, sample_points)

INTR = Intrinsics(424, 240, 213.0, 213.0, 211.5, 119.5)
EXTRINSIC = load_extrinsic(config_path("extrinsics.yaml")).matrix


def splat(points_palm: np.ndarray, intr: Intrinsics = INTR) -> np.ndarray:
    """Z-buffer dense palm-frame points into a depth image seen by the configured camera."""
    cam = transform_points(invert_transform(EXTRINSIC), points_palm)
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


OBJECT_CENTER = np.array([0.07, 0.0, 0.02])


def grasp_pose() -> np.ndarray:
    """Fingers curled towards +x so they enter the workspace box in front of the palm."""
    hand = default_hand()
    q = np.zeros(16)
    for finger in ("ff", "mf", "rf"):
        q[hand.joint_index(finger + "j1")] = 1.0
        q[hand.joint_index(finger + "j2")] = 0.6
    q[hand.joint_index("thj0")] = 1.0
    return q


def scene(with_hand=True, q=None):
    pts = [cube_surface(OBJECT_CENTER, 0.03)]
    if with_hand:
        shapes = HandKinematics().collision_shapes(q if q is not None else grasp_pose())
        for r, c, h in zip(shapes.box_rotation, shapes.box_center, shapes.box_half):
            pts.append(c + (cube_surface(np.zeros(3), 1.0, 20000, seed=len(pts)) * h) @ r.T)
    return splat(np.vstack(pts))


def test_config_file_loads_and_hash_is_stable():
    cfg = load_perception_config()
    assert cfg.config_hash() == load_perception_config().config_hash()
    assert cfg.config_hash() != from_dict(PerceptionConfig, {"num_points": 256}).config_hash()


def test_object_cloud_is_on_the_object_in_the_palm_frame():
    cfg = load_perception_config()
    depth = scene(with_hand=True)
    result = extract_object_cloud(depth, INTR, EXTRINSIC, grasp_pose(), cfg)
    assert result.ok, result.reason
    assert result.points.shape == (cfg.num_points, 3) and result.points.dtype == np.float32
    # every point lies on (or within a pixel of) the cube, none on the hand
    dist_out = np.max(np.abs(result.points - OBJECT_CENTER), axis=1)
    assert np.all(dist_out < 0.03 + 0.004)
    assert result.counts["hand_removed"] > 0


def test_hand_points_are_removed_by_forward_kinematics():
    cfg = from_dict(PerceptionConfig, {"min_points": 10, "outlier": {"method": "none"}})
    hand_only = scene(with_hand=True) * (scene(with_hand=False) == 0)
    result = ObjectCloudExtractor(cfg).extract(hand_only, INTR, EXTRINSIC, grasp_pose())
    assert not result.ok and "too few object points" in result.reason
    # without the joint state the hand would have been kept
    kept = ObjectCloudExtractor(cfg).extract(hand_only, INTR, EXTRINSIC, None)
    assert kept.counts["object_points"] > 100


def test_deterministic_for_the_same_input():
    cfg = load_perception_config()
    depth = scene()
    a = extract_object_cloud(depth, INTR, EXTRINSIC, grasp_pose(), cfg).points
    b = extract_object_cloud(depth.copy(), INTR, EXTRINSIC, grasp_pose(), cfg).points
    assert np.array_equal(a, b)


def test_all_zero_depth_gives_no_cloud_and_a_reason():
    result = extract_object_cloud(np.zeros((240, 424), np.float32), INTR, EXTRINSIC, grasp_pose(),
                                  load_perception_config())
    assert not result.ok and "too few" in result.reason


def test_bad_inputs_are_clear_errors():
    cfg = load_perception_config()
    with pytest.raises(IntrinsicsError, match="disagree|but camera_info says"):
        extract_object_cloud(np.zeros((100, 100), np.float32), INTR, EXTRINSIC, None, cfg)
    skewed = EXTRINSIC.copy()
    skewed[:3, :3] *= 1.1
    with pytest.raises(TransformError, match="orthonormal"):
        extract_object_cloud(scene(), INTR, skewed, None, cfg)
    with pytest.raises(IntrinsicsError, match="focal"):
        Intrinsics(424, 240, 0.0, 213.0, 211.5, 119.5)
    with pytest.raises(ConfigError, match="workspace"):
        from_dict(PerceptionConfig, {"workspace": {"min": [0, 0, 0], "max": [0.1, -0.1, 0.1]}})


def test_density_filter_removes_isolated_points():
    rng = np.random.default_rng(0)
    blob = rng.normal(scale=0.005, size=(500, 3))
    stray = np.array([[0.2, 0.2, 0.2], [-0.3, 0.1, 0.0]])
    keep = density_filter(np.vstack([blob, stray]), 0.01, 5)
    assert keep[:500].mean() > 0.98 and not keep[500:].any()


@pytest.mark.parametrize("method", ["random", "fps"])
def test_sampling_gives_exactly_n(method):
    pts = np.random.default_rng(0).normal(size=(300, 3))
    for n in (100, 300, 512):
        out = sample_points(pts, n, method, seed=3)
        assert out.shape == (n, 3)
        assert np.array_equal(out, sample_points(pts, n, method, seed=3))
