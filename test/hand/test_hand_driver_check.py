"""The ros2_control finger-digit mapping: upstream's default, and the start-up check that catches a wrong one.

Wonik's allegro_hand_ros2 (allegro_hand_hardwares/v4/description/urdf/
allegro_hand_description_right.xacro) gives ``joint00`` the thumb's limits and
origin and ``joint10`` the index finger's place (y = +0.0435 m). Before
issue 16.2 our default was [ff, mf, rf, th], which sends index targets to the
thumb, and nothing at start-up could notice.
"""
from __future__ import annotations

import numpy as np
import pytest

from dexterity_ros.hand import DriverProfileConfig, make_profile
from dexterity_ros.hand.driver_check import (RobotDescriptionError, check_ros2_control_mapping, driver_urdf,
                                             urdf_joints)
from dexterity_ros.hand_model import default_hand, load_hand_description
from dexterity_ros.paths import config_path

HAND = default_hand()

# The vendor URDF's numbers (limits per joint digit pair, origins of each finger's first joint), as
# published in allegro_hand_description_right.xacro; written here as data to compare our description with.
VENDOR_LIMITS = {
    "0": [(0.263, 1.396), (-0.105, 1.163), (-0.189, 1.644), (-0.162, 1.719)],
    "1": [(-0.47, 0.47), (-0.196, 1.61), (-0.174, 1.709), (-0.227, 1.618)],
    "2": [(-0.47, 0.47), (-0.196, 1.61), (-0.174, 1.709), (-0.227, 1.618)],
    "3": [(-0.47, 0.47), (-0.196, 1.61), (-0.174, 1.709), (-0.227, 1.618)],
}
VENDOR_BASE_ORIGINS = {"0": "-0.0182 0.019333 -0.045987", "1": "0 0.0435 0", "2": "0 0 0", "3": "0 -0.0435 0"}


def vendor_like_urdf() -> str:
    joints = []
    for digit, limits in VENDOR_LIMITS.items():
        for j, (lo, hi) in enumerate(limits):
            origin = VENDOR_BASE_ORIGINS[digit] if j == 0 else "0 0 0.05"
            joints.append(f'<joint name="ah_joint{digit}{j}" type="revolute"><origin xyz="{origin}"/>'
                          f'<limit effort="15" lower="{lo}" upper="{hi}" velocity="7"/></joint>')
    return '<robot name="allegro_hand">' + "".join(joints) + "</robot>"


def test_default_finger_digits_are_upstreams_thumb_first():
    assert HAND.ros2_control_finger_digits == ("th", "ff", "mf", "rf")
    profile = make_profile("ros2_control", HAND)           # no digits given: the description's
    assert profile.driver_name("thj0") == "ah_joint00" and profile.driver_name("ffj0") == "ah_joint10"
    assert profile.driver_name("rfj3") == "ah_joint33"


def test_description_rejects_a_finger_digit_list_that_is_not_a_permutation(tmp_path):
    text = config_path("robots/allegro_right.yaml").read_text()
    bad = tmp_path / "hand.yaml"
    bad.write_text(text.replace("finger_digits: [th, ff, mf, rf]", "finger_digits: [th, ff, ff, rf]"))
    with pytest.raises(Exception, match="finger_digits"):
        load_hand_description(bad)


def test_our_description_matches_the_vendor_urdf_through_the_default_mapping():
    verdict = check_ros2_control_mapping(make_profile("ros2_control", HAND), HAND, vendor_like_urdf())
    assert verdict.problem is None and verdict.compared == 16


@pytest.mark.parametrize("digits", [["ff", "mf", "rf", "th"], ["th", "mf", "ff", "rf"], ["rf", "ff", "mf", "th"]])
def test_a_wrong_mapping_is_caught_and_the_right_one_named(digits):
    verdict = check_ros2_control_mapping(make_profile(DriverProfileConfig("ros2_control", digits), HAND), HAND,
                                         vendor_like_urdf())
    assert verdict.problem is not None
    assert "fit ros2_control_finger_digits: [th, ff, mf, rf]" in verdict.problem


def test_every_other_permutation_is_caught():
    import itertools
    urdf = vendor_like_urdf()
    caught = [digits for digits in itertools.permutations(HAND.fingers)
              if check_ros2_control_mapping(make_profile(DriverProfileConfig("ros2_control", digits), HAND), HAND, urdf).problem]
    assert len(caught) == 23          # all 24 mappings but the right one


def test_emulated_driver_urdf_round_trips():
    profile = make_profile("ros2_control", HAND)
    joints = urdf_joints(driver_urdf(HAND, profile))
    assert sorted(joints) == sorted(profile.feedback_vocabulary)
    np.testing.assert_allclose([joints[profile.driver_name(n)].lower for n in HAND.joint_names], HAND.lower)


@pytest.mark.parametrize("text,match", [("not xml <", "not valid XML"), ("<launch/>", "not <robot>"),
                                        ('<robot><joint name="a" type="revolute"><limit lower="x" upper="1"/>'
                                         '</joint></robot>', "non-numeric")])
def test_unreadable_robot_description_is_a_clear_error(text, match):
    with pytest.raises(RobotDescriptionError, match=match):
        check_ros2_control_mapping(make_profile("ros2_control", HAND), HAND, text)


def test_a_description_of_another_robot_cannot_confirm_the_mapping():
    verdict = check_ros2_control_mapping(make_profile("ros2_control", HAND), HAND,
                                         '<robot name="arm"><joint name="shoulder" type="revolute">'
                                         '<limit lower="-1" upper="1"/></joint></robot>')
    assert verdict.problem and "no limits for" in verdict.problem
