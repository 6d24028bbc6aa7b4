"""Start-up check of a driver's joint mapping against the driver's own robot description.

Names alone cannot catch a wrong ros2_control finger-digit mapping: every
mapping produces the same 16 names ``ah_joint00..ah_joint33``. The vendor
driver (Wonikrobotics-git/allegro_hand_ros2, ``allegro_hand_bringup/launch/
allegro_hand.launch.py``) runs robot_state_publisher, which latches its URDF on
``/robot_description``; in it each ``ah_joint{digit}{joint}`` carries its
finger's limits (``ah_joint00``: the thumb's 0.263..1.396 rad, in
``allegro_hand_hardwares/v4/description/urdf/allegro_hand_description_right.xacro``)
and each finger's first joint its place on the palm (``ah_joint10`` at
y = +0.0435 m: the index finger). Comparing limits and those origins with
ours, joint by joint through the configured mapping, finds a swapped finger
before the hand moves, and names the mapping that fits. The URDF is parsed
with the standard library's ElementTree (only ``<joint>`` names, ``<limit>``
and ``<origin xyz>`` are read).
"""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..hand_model import HandDescription
from .profiles import DriverProfile, ros2_control_order

LIMIT_TOLERANCE = 0.01   # rad: URDF limits are written to 3 decimals upstream
ORIGIN_TOLERANCE = 0.005  # m: a finger's base on the palm (fingers are 43.5 mm apart)


class RobotDescriptionError(ValueError):
    """The robot_description is not a URDF we can read joint limits from."""


@dataclass(frozen=True)
class UrdfJoint:
    lower: float
    upper: float
    origin: tuple[float, float, float]


def urdf_joints(urdf: str) -> dict[str, UrdfJoint]:
    """Every revolute/prismatic joint with a ``<limit>``: its limits and origin."""
    try:
        root = ET.fromstring(urdf)
    except ET.ParseError as exc:
        raise RobotDescriptionError(f"robot_description is not valid XML: {exc}") from None
    if root.tag != "robot":
        raise RobotDescriptionError(f"robot_description root element is <{root.tag}>, not <robot>")
    joints: dict[str, UrdfJoint] = {}
    for joint in root.iter("joint"):
        limit = joint.find("limit")
        if joint.get("type") not in ("revolute", "prismatic") or limit is None:
            continue
        origin = joint.find("origin")
        try:
            xyz = tuple(float(v) for v in (origin.get("xyz", "0 0 0") if origin is not None else "0 0 0").split())
            joints[joint.get("name", "")] = UrdfJoint(float(limit.get("lower", "nan")),
                                                     float(limit.get("upper", "nan")),
                                                     xyz if len(xyz) == 3 else (float("nan"),) * 3)
        except ValueError:
            raise RobotDescriptionError(f"joint '{joint.get('name')}' has non-numeric limits or origin") from None
    return joints


@dataclass(frozen=True)
class MappingVerdict:
    problem: str | None             # None: the driver's limits agree with the mapping
    compared: int                   # joints compared


def _mismatches(hand: HandDescription, vocabulary: tuple[str, ...],
                joints: dict[str, UrdfJoint]) -> tuple[list[str], int]:
    bad, compared = [], 0
    base_pos = {link.joint: link.pos for link in hand.links if link.joint and link.parent == "palm"}
    for i, driver_name in enumerate(vocabulary):
        if driver_name not in joints:
            continue
        compared += 1
        theirs, ours = joints[driver_name], hand.joint_names[i]
        if (abs(theirs.lower - hand.lower[i]) > LIMIT_TOLERANCE
                or abs(theirs.upper - hand.upper[i]) > LIMIT_TOLERANCE):
            bad.append(f"{driver_name} has limits [{theirs.lower:.3f}, {theirs.upper:.3f}] but is mapped to "
                       f"{ours} [{hand.lower[i]:.3f}, {hand.upper[i]:.3f}]")
        elif ours in base_pos and max(abs(a - b) for a, b in zip(theirs.origin, base_pos[ours])) > ORIGIN_TOLERANCE:
            bad.append(f"{driver_name} sits at {list(theirs.origin)} on the palm but is mapped to {ours} "
                       f"at {list(base_pos[ours])}")
    return bad, compared


def check_ros2_control_mapping(profile: DriverProfile, hand: HandDescription, urdf: str) -> MappingVerdict:
    """Compare the driver's URDF limits with ours through the profile's finger-digit mapping."""
    limits = urdf_joints(urdf)
    vocabulary = profile.feedback_vocabulary
    bad, compared = _mismatches(hand, vocabulary, limits)
    if compared < len(vocabulary):
        missing = [n for n in vocabulary if n not in limits]
        return MappingVerdict(f"the driver's robot_description has no limits for {missing[:4]}"
                              f"{' ...' if len(missing) > 4 else ''}: cannot check the finger-digit mapping "
                              "(wrong robot_description, or set robot_description_check: off)", compared)
    if not bad:
        return MappingVerdict(None, compared)
    fits = [digits for digits in itertools.permutations(hand.fingers)
            if not _mismatches(hand, ros2_control_order(hand, digits)[0], limits)[0]]
    hint = (f"; the driver's limits fit ros2_control_finger_digits: [{', '.join(fits[0])}]" if len(fits) == 1
            else "; no finger-digit mapping fits the driver's limits (another hand or robot description?)")
    return MappingVerdict("finger-digit mapping disagrees with the driver's robot_description: "
                          + "; ".join(bad[:4]) + (f" (and {len(bad) - 4} more)" if len(bad) > 4 else "") + hint,
                          compared)


def driver_urdf(hand: HandDescription, profile: DriverProfile, robot_name: str = "allegro_hand") -> str:
    """A URDF with the driver's joint names and the hand's limits (what the emulated driver latches).

    Only the kinematic skeleton the check reads: one link per joint, chained
    per finger, with the joint's axis and limits.
    """
    lines = ['<?xml version="1.0"?>', f'<robot name="{robot_name}">', '  <link name="palm_link"/>']
    by_link = {link.joint: link for link in hand.links if link.joint}
    for i, canonical in enumerate(hand.joint_names):
        link = by_link[canonical]
        name = profile.feedback_vocabulary[i]
        parent = link.parent if link.parent != "palm" else "palm_link"
        axis = " ".join(f"{v:g}" for v in link.axis)
        xyz = " ".join(f"{v:g}" for v in link.pos)
        lines += [f'  <link name="{link.name}"/>',
                  f'  <joint name="{name}" type="revolute">',
                  f'    <parent link="{parent}"/>', f'    <child link="{link.name}"/>',
                  f'    <origin xyz="{xyz}"/>', f'    <axis xyz="{axis}"/>',
                  f'    <limit effort="15" lower="{hand.lower[i]:.6f}" upper="{hand.upper[i]:.6f}" velocity="7"/>',
                  '  </joint>']
    lines.append("</robot>")
    return "\n".join(lines) + "\n"
