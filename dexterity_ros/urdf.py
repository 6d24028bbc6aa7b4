"""URDF of the hand, generated from the robot description (config/robots/allegro_right.yaml).

RViz, Foxglove and robot_state_publisher-style tools need a URDF to draw the
hand; writing one by hand would be a second copy of the kinematic tree that
drifts. This module derives it from :class:`~dexterity_ros.hand_model.HandDescription`
(the same tree :class:`~dexterity_ros.kinematics.HandKinematics` uses), so the
URDF's link poses equal our forward kinematics (tested to 1e-9):

* links: ``palm`` (the root, the stack's base frame) and ``<finger>_<part>``;
* joints: revolute with the canonical names (``ffj0`` .. ``thj3``), origin =
  the body's pose in its parent, axis in the child frame, limits from the
  description; a ``<finger>_tip`` link hangs on a fixed joint
  ``<finger>_tip_joint``; limit effort is the simulator's actuator force limit
  and velocity that force over the description's joint damping (the speed at
  which damping eats the whole torque);
* collision: the shapes segmentation removes (boxes; a capsule becomes a
  cylinder plus two spheres, URDF having no capsule); visual: the same
  primitives, coloured by part.

``python -m dexterity_ros.urdf -o hand.urdf`` writes it; hand_view_node
publishes it latched on ``visualization/robot_description``.
"""
from __future__ import annotations

import argparse
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import ConfigError
from .geometry import TransformError, quat_to_matrix
from .hand_model import CollisionShape, HandDescription, Link, default_hand, load_hand_description

ROBOT_NAME = "allegro_right"
ROOT_LINK = "palm"

# visual colours (RGBA) per part of the hand
MATERIALS = {
    "palm": (0.25, 0.25, 0.28, 1.0),
    "link": (0.55, 0.55, 0.58, 1.0),
    "tip": (0.92, 0.92, 0.88, 1.0),
}


def _num(value: float) -> str:
    """Shortest text that reads back as the same float (URDF poses exact to the last bit)."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value} in the robot description")
    return repr(0.0 if value == 0 else value)


def _vec(values: Sequence[float]) -> str:
    return " ".join(_num(v) for v in values)


def matrix_to_rpy(rotation: np.ndarray) -> tuple[float, float, float]:
    """URDF roll, pitch, yaw of a rotation matrix: R = Rz(yaw) Ry(pitch) Rx(roll) (fixed axes X, Y, Z)."""
    r = np.asarray(rotation, dtype=np.float64)
    pitch = math.atan2(-r[2, 0], math.hypot(r[0, 0], r[1, 0]))
    if math.hypot(r[0, 0], r[1, 0]) < 1e-9:            # gimbal lock: only roll - yaw is defined
        return math.atan2(-r[1, 2], r[1, 1]), pitch, 0.0
    return math.atan2(r[2, 1], r[2, 2]), pitch, math.atan2(r[1, 0], r[0, 0])


def rpy_to_matrix(rpy: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`matrix_to_rpy` (the URDF convention)."""
    roll, pitch, yaw = (float(v) for v in rpy)
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _origin(parent: ET.Element, xyz: Sequence[float], rotation: np.ndarray | None = None) -> None:
    rpy = (0.0, 0.0, 0.0) if rotation is None else matrix_to_rpy(rotation)
    ET.SubElement(parent, "origin", xyz=_vec(xyz), rpy=_vec(rpy))


def shape_primitives(shape: CollisionShape) -> list[tuple[str, dict[str, str], tuple[float, float, float]]]:
    """URDF geometries of one collision shape: (tag, attributes, position in the link frame).

    A box is a box (size = 2 x half-extents); a capsule (radius, half-length
    along the link's z) is a cylinder of that length and two end spheres.
    """
    pos = tuple(float(v) for v in shape.pos)
    if shape.kind == "box":
        return [("box", {"size": _vec([2 * v for v in shape.size])}, pos)]
    if shape.kind == "capsule":
        radius, half = float(shape.size[0]), float(shape.size[1])
        ends = [(pos[0], pos[1], pos[2] + sign * half) for sign in (-1.0, 1.0)]
        return ([("cylinder", {"radius": _num(radius), "length": _num(2 * half)}, pos)]
                + [("sphere", {"radius": _num(radius)}, end) for end in ends])
    raise ConfigError(f"collision shape kind '{shape.kind}' has no URDF geometry")


def _link(robot: ET.Element, name: str, shape: CollisionShape, material: str) -> None:
    link = ET.SubElement(robot, "link", name=name)
    for tag, attributes, pos in shape_primitives(shape):
        for kind in ("visual", "collision"):
            element = ET.SubElement(link, kind)
            _origin(element, pos)
            ET.SubElement(ET.SubElement(element, "geometry"), tag, **attributes)
            if kind == "visual":
                ET.SubElement(element, "material", name=material)


def _joint(robot: ET.Element, link: Link, effort: float, velocity: float, damping: float) -> None:
    if link.joint:
        joint = ET.SubElement(robot, "joint", name=link.joint, type="revolute")
    else:
        joint = ET.SubElement(robot, "joint", name=f"{link.name}_joint", type="fixed")
    ET.SubElement(joint, "parent", link=link.parent)
    ET.SubElement(joint, "child", link=link.name)
    _origin(joint, link.pos, quat_to_matrix(link.quat))
    if link.joint:
        axis = np.asarray(link.axis, dtype=np.float64)
        norm = float(np.linalg.norm(axis))
        if not norm > 0:
            raise ConfigError(f"joint {link.joint}: zero rotation axis")
        ET.SubElement(joint, "axis", xyz=_vec(axis / norm))
        lower, upper = link.joint_range
        ET.SubElement(joint, "limit", lower=_num(lower), upper=_num(upper), effort=_num(effort),
                      velocity=_num(velocity))
        ET.SubElement(joint, "dynamics", damping=_num(damping), friction="0.0")


def actuator_limits(hand: HandDescription, force_limit: float | None = None) -> tuple[float, float]:
    """(effort N m, velocity rad/s) of every joint's <limit>.

    Effort: ``force_limit`` or the simulator's actuator force limit
    (config/sim.yaml physics); velocity: that torque over the description's
    joint damping, the steady speed the actuator can reach.
    """
    if force_limit is None:
        from .sim.sim_config import load_sim_config
        force_limit = load_sim_config().physics.actuator_force_limit
    if not (force_limit > 0 and hand.joint_damping > 0):
        raise ConfigError(f"need a positive actuator force limit ({force_limit}) and joint damping "
                          f"({hand.joint_damping}) for the URDF joint limits")
    return float(force_limit), float(force_limit) / hand.joint_damping


def hand_urdf(hand: HandDescription | None = None, name: str = ROBOT_NAME, force_limit: float | None = None) -> str:
    """The URDF (XML text) of ``hand`` (default: the packaged Allegro right hand)."""
    hand = hand or default_hand()
    effort, velocity = actuator_limits(hand, force_limit)
    robot = ET.Element("robot", name=name)
    robot.append(ET.Comment(f" generated by dexterity_ros.urdf from {Path(hand.source).name}; do not edit "))
    for material, rgba in MATERIALS.items():
        ET.SubElement(ET.SubElement(robot, "material", name=material), "color", rgba=_vec(rgba))
    _link(robot, ROOT_LINK, hand.palm_collision, "palm")
    for link in hand.links:
        _link(robot, link.name, link.collision, "tip" if link.name.endswith("_tip") else "link")
    for link in hand.links:
        _joint(robot, link, effort, velocity, hand.joint_damping)
    ET.indent(robot, space="  ")
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dexterity_ros.urdf", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="write the URDF here (default: standard output)")
    parser.add_argument("--description", type=Path,
                        help="robot description YAML (default: the packaged config/robots/allegro_right.yaml)")
    parser.add_argument("--name", default=ROBOT_NAME, help=f"robot name (default {ROBOT_NAME})")
    args = parser.parse_args(argv)
    try:
        if args.description is not None and not args.description.is_file():
            raise ConfigError(f"{args.description}: no such robot description file")
        hand = load_hand_description(args.description) if args.description else default_hand()
        text = hand_urdf(hand, args.name)
    except (ConfigError, TransformError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({len(hand.joint_names)} joints, {len(hand.links) + 1} links)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
