"""hand_model.py + kinematics.py: names, orders and FK come from the robot YAML."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from dexterity_ros.hand_model import JointNameError, default_hand, load_hand_description
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.paths import robot_description_path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "robots" / "allegro_right.yaml"


def test_packaged_description_is_the_shared_one():
    if not SHARED.is_file():
        pytest.skip("../shared is not present (installed package outside the dev checkout)")
    assert robot_description_path().read_bytes() == SHARED.read_bytes(), \
        "config/robots/allegro_right.yaml differs from ../shared: run `make sync-robot`"


def test_canonical_order_follows_the_tree():
    hand = default_hand()
    raw = yaml.safe_load(robot_description_path().read_text())
    expected = [e["joint"] for chain in raw["fingers"].values() for e in chain.values() if "joint" in e]
    assert list(hand.joint_names) == expected
    assert hand.num_joints == 16
    assert np.all(hand.lower < hand.upper)


def test_allegro_v4_names_map_by_name():
    hand = default_hand()
    raw = yaml.safe_load(robot_description_path().read_text())["drivers"]["allegro_v4"]
    v4 = hand.driver_order("allegro_v4")
    for name, canonical in zip(raw["names"], raw["canonical"]):
        assert v4[hand.joint_index(canonical)] == name


def test_to_canonical_reorders_and_rejects():
    hand = default_hand()
    values = np.arange(16, dtype=float)
    names = list(hand.driver_order("allegro_v4"))
    perm = np.random.default_rng(0).permutation(16)
    q = hand.to_canonical([names[i] for i in perm], values[perm])
    assert np.array_equal(q, values)
    with pytest.raises(JointNameError, match="missing"):
        hand.to_canonical(names[:15], values[:15])
    with pytest.raises(JointNameError, match="unknown"):
        hand.to_canonical(names[:15] + ["pinky"], values)
    with pytest.raises(JointNameError, match="duplicated"):
        hand.to_canonical(names[:15] + [names[0]], values)


def test_ros2_control_names_follow_configured_digits():
    hand = default_hand()
    names = hand.ros2_control_names({"ff": 0, "mf": 1, "rf": 2, "th": 3})
    assert names[hand.joint_index("thj2")] == "ah_joint32"
    assert names[hand.joint_index("ffj0")] == "ah_joint00"


def test_fk_zero_pose_fingers_point_along_z():
    kin = HandKinematics()
    tips = kin.fingertip_positions(np.zeros(16))
    # index/middle/ring point along +z from the palm (fingers along +z in the palm frame)
    assert np.all(tips[:3, 2] > 0.12)
    # flexing index joints moves the tip towards +x (palm normal side)
    q = np.zeros(16)
    hand = default_hand()
    for j in ("ffj1", "ffj2", "ffj3"):
        q[hand.joint_index(j)] = 0.8
    assert kin.fingertip_positions(q)[0, 0] > tips[0, 0] + 0.03


def test_collision_shapes_contain_link_centres_and_not_far_points():
    kin = HandKinematics()
    q = (default_hand().lower + default_hand().upper) / 2
    shapes = kin.collision_shapes(q)
    assert np.all(shapes.contains(shapes.box_center))
    assert np.all(shapes.contains((shapes.capsule_a + shapes.capsule_b) / 2))
    far = np.array([[0.5, 0.5, 0.5], [-0.3, 0.0, 0.0]])
    assert not shapes.contains(far).any()
    lo, hi = shapes.bounding_box()
    assert np.all(lo < hi)


def test_missing_file_is_a_clear_error(tmp_path):
    from dexterity_ros.config import ConfigError
    with pytest.raises(ConfigError, match="not found"):
        load_hand_description(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("root: {}\n")
    with pytest.raises(ConfigError, match="malformed"):
        load_hand_description(bad)
