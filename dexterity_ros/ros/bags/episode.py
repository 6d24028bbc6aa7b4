"""The episode bag: what one randomized episode looks like on disk (docs/data.md).

Standard messages on the robot's own topic names (absolute, as ``ros2 bag
record`` stores them), so the same graph consumes a replayed episode and a
live robot. Privileged state is included for evaluation only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from std_msgs.msg import String

from .. import conversions
from ... import topics
from ...hand_model import HandDescription, default_hand
from ..messages import MessageBagWriter
from ...sim.episode_step import EpisodeStep   # re-exported: the schema of one step, pure

EPISODE_TOPICS = (topics.DEPTH_IMAGE, topics.DEPTH_INFO, topics.JOINT_STATES, topics.GOAL,
                  topics.JOINT_TARGETS, topics.OBJECT_POSE, topics.OBJECT_TWIST, topics.PHYSICS_PARAMS)
PRIVILEGED_TOPICS = (topics.OBJECT_POSE, topics.OBJECT_TWIST, topics.PHYSICS_PARAMS)
SCHEMA_VERSION = "1"

# Receive-time offsets (ns) inside one step, so readers see a fixed order:
# joints, goal, camera_info, depth, privileged state, then the action taken.
_ORDER = {topics.JOINT_STATES.name: 0, topics.GOAL.name: 1, topics.DEPTH_INFO.name: 2,
          topics.DEPTH_IMAGE.name: 3, topics.OBJECT_POSE.name: 4, topics.OBJECT_TWIST.name: 5,
          topics.PHYSICS_PARAMS.name: 6, topics.JOINT_TARGETS.name: 7}


def bag_topic(topic: topics.Topic) -> str:
    """Name under which ``topic`` is stored in a bag (absolute, like ros2 bag record)."""
    return topic.name if topic.name.startswith("/") else "/" + topic.name


class EpisodeBagWriter:
    """Writes EpisodeSteps as standard messages; depth stored as 16UC1 millimetres."""

    def __init__(self, path: str | Path, metadata: dict[str, Any], overwrite: bool = False,
                 compress: bool = True, depth_encoding: str = "16UC1", hand: HandDescription | None = None):
        self.hand = hand if hand is not None else default_hand()   # joint names of the hand the episode ran
        self._bag = MessageBagWriter(path, storage="mcap", overwrite=overwrite, compress=compress)
        for topic in EPISODE_TOPICS:
            self._bag.add_topic(bag_topic(topic), topic.type_name, topic.qos)
        self._bag.set_custom_data("dexterity_ros.episode_schema", SCHEMA_VERSION)
        for key, value in metadata.items():
            self._bag.set_custom_data(f"dexterity_ros.{key}", value if isinstance(value, str) else json.dumps(value))
        self._depth_encoding = depth_encoding
        self._last_goal: np.ndarray | None = None

    def _write(self, topic: topics.Topic, stamp_ns: int, msg: Any) -> None:
        self._bag.write(bag_topic(topic), stamp_ns + _ORDER[topic.name], msg)

    def write_physics(self, stamp_ns: int, params: dict[str, Any]) -> None:
        self._write(topics.PHYSICS_PARAMS, stamp_ns, String(data=json.dumps(params, sort_keys=True)))

    def write_step(self, step: EpisodeStep) -> None:
        t = step.stamp_ns
        self._write(topics.JOINT_STATES, t,
                    conversions.arrays_to_joint_state(self.hand.joint_names, step.joint_positions, t))
        if self._last_goal is None or not np.array_equal(self._last_goal, step.goal_wxyz):
            self._write(topics.GOAL, t, conversions.goal_msg(step.goal_wxyz, t, topics.PALM_FRAME))
            self._last_goal = np.array(step.goal_wxyz)
        if step.depth_m is not None:
            self._write(topics.DEPTH_INFO, t,
                        conversions.intrinsics_to_camera_info(step.intrinsics, t, topics.CAMERA_FRAME))
            self._write(topics.DEPTH_IMAGE, t,
                        conversions.depth_to_image(step.depth_m, t, topics.CAMERA_FRAME, self._depth_encoding))
        if step.object_pose is not None:
            pose = PoseStamped(header=conversions.make_header(t, topics.PALM_FRAME))
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in step.object_pose[0])
            pose.pose.orientation = conversions.wxyz_to_quaternion_msg(step.object_pose[1])
            self._write(topics.OBJECT_POSE, t, pose)
        if step.object_twist is not None:
            twist = TwistStamped(header=conversions.make_header(t, topics.PALM_FRAME))
            twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (float(v) for v in step.object_twist[0])
            twist.twist.angular.x, twist.twist.angular.y, twist.twist.angular.z = (float(v) for v in step.object_twist[1])
            self._write(topics.OBJECT_TWIST, t, twist)
        if step.action is not None:
            # header stamp = the frame that produced the action (for parity pairing)
            self._write(topics.JOINT_TARGETS, step.action_stamp_ns or t,
                        conversions.arrays_to_joint_state(self.hand.joint_names, step.action, t))

    def close(self) -> None:
        self._bag.close()

    def __enter__(self) -> "EpisodeBagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
