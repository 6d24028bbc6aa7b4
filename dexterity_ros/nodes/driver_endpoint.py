"""The driver's end of a hand profile on a node: receive commands, publish feedback.

Shared by the Allegro emulator and the live simulation bridge, so anything
that stands in for the real driver speaks the profile exactly as
:mod:`dexterity_ros.hand.profiles` defines it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String

from .. import conversions
from ..hand.driver_check import driver_urdf
from ..hand.profiles import DriverProfile, FeedbackMismatch
from ..hand_model import HandDescription
from ..topics import ROS2_CONTROL_ROBOT_DESCRIPTION
from .ros_common import qos_profile


class DriverEndpoint:
    def __init__(self, node: Node, profile: DriverProfile, on_command: Callable[[np.ndarray], None],
                 on_protocol_error: Callable[[str], None], leap_feedback_topic: str = "leap_joint_states",
                 hand: HandDescription | None = None):
        self.profile = profile
        self._on_command = on_command
        self._on_error = on_protocol_error
        cmd = profile.command_topic
        if profile.command_kind == "joint_state":
            node.create_subscription(JointState, cmd.name, self._joint_state_command, qos_profile(cmd))
        else:
            node.create_subscription(Float64MultiArray, cmd.name, self._array_command, qos_profile(cmd))
        self.feedback_topic = profile.feedback_topic.name if profile.feedback_topic else leap_feedback_topic
        # Drivers publish feedback with default (reliable) QoS.
        self._feedback_pub = node.create_publisher(JointState, self.feedback_topic, 10)
        if profile.name == "ros2_control" and hand is not None:
            # the vendor launch runs robot_state_publisher, which latches the URDF (joint limits per name)
            topic = ROS2_CONTROL_ROBOT_DESCRIPTION
            self._description_pub = node.create_publisher(String, topic.name, qos_profile(topic))
            self._description_pub.publish(String(data=driver_urdf(hand, profile)))

    def _joint_state_command(self, msg: JointState) -> None:
        try:
            target = self.profile.decode_command(list(msg.name), msg.position, msg.effort)
        except FeedbackMismatch as exc:
            self._on_error(str(exc))
            return
        self._on_command(target)

    def _array_command(self, msg: Float64MultiArray) -> None:
        try:
            target = self.profile.decode_command(self.profile.command_names, msg.data)
        except FeedbackMismatch as exc:
            self._on_error(str(exc))
            return
        self._on_command(target)

    def publish_feedback(self, names: list[str], positions: np.ndarray, velocities: np.ndarray | None,
                         stamp_ns: int) -> None:
        if self.profile.feedback_kind == "positional":
            names, velocities = [], None
        self._feedback_pub.publish(conversions.arrays_to_joint_state(names, positions, stamp_ns, velocities))
