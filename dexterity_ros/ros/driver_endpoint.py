"""The driver's end of a hand profile on a node: receive commands, publish feedback.

Shared by the Allegro emulator and the live simulation bridge, so anything
that stands in for the real driver speaks the profile exactly as
:mod:`dexterity_ros.hand.profiles` defines it. LEAP feedback goes where the
profile (``leap_feedback_topic``) says: on that topic if one is set, and
through the ``leap_position`` service, as the real LEAP node offers it, when
the ``leap_hand`` interface package is installed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String

from . import conversions
from ..hand.driver_check import driver_urdf
from ..hand.profiles import DriverProfile, FeedbackMismatch
from ..hand_model import HandDescription
from ..topics import LEAP_POSITION_SERVICE, ROS2_CONTROL_ROBOT_DESCRIPTION
from .common import qos_profile


class DriverEndpoint:
    def __init__(self, node: Node, profile: DriverProfile, on_command: Callable[[np.ndarray], None],
                 on_protocol_error: Callable[[str], None], hand: HandDescription | None = None,
                 leap_positions: Callable[[], np.ndarray | None] | None = None):
        """``leap_positions``: the positions a ``leap_position`` call answers (driver order, LEAP embodiment)."""
        self.profile = profile
        self._on_command = on_command
        self._on_error = on_protocol_error
        cmd = profile.command_topic
        if profile.command_kind == "joint_state":
            node.create_subscription(JointState, cmd.name, self._joint_state_command, qos_profile(cmd))
        else:
            node.create_subscription(Float64MultiArray, cmd.name, self._array_command, qos_profile(cmd))
        self.feedback_topic: str | None = profile.feedback_topic.name if profile.feedback_topic else None
        # Drivers publish feedback with default (reliable) QoS.
        self._feedback_pub = (node.create_publisher(JointState, self.feedback_topic, 10)
                              if self.feedback_topic else None)
        self.feedback_service: str | None = None
        if profile.name == "leap" and leap_positions is not None:
            self.feedback_service = self._serve_leap_position(node, leap_positions)
        if profile.name == "ros2_control" and hand is not None:
            # the vendor launch runs robot_state_publisher, which latches the URDF (joint limits per name)
            topic = ROS2_CONTROL_ROBOT_DESCRIPTION
            self._description_pub = node.create_publisher(String, topic.name, qos_profile(topic))
            self._description_pub.publish(String(data=driver_urdf(hand, profile)))

    @staticmethod
    def _serve_leap_position(node: Node, positions: Callable[[], np.ndarray | None]) -> str | None:
        try:
            from leap_hand.srv import LeapPosition   # the LEAP node's interface package (LEAP_Hand_API)
        except ImportError:
            return None

        def answer(request, response):
            values = positions()
            response.position = [] if values is None else np.asarray(values, dtype=np.float64).tolist()
            return response

        node.create_service(LeapPosition, LEAP_POSITION_SERVICE, answer)
        return LEAP_POSITION_SERVICE

    def describe_feedback(self) -> str:
        """Where the feedback goes, for logs and /diagnostics."""
        where = [f"'{self.feedback_topic}'"] if self.feedback_topic else []
        if self.feedback_service:
            where.append(f"service {self.feedback_service}")
        return " and ".join(where) if where else "nowhere (set leap_feedback_topic, or install leap_hand)"

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
        if self._feedback_pub is None:
            return
        if self.profile.feedback_kind == "positional":
            names, velocities = [], None
        self._feedback_pub.publish(conversions.arrays_to_joint_state(names, positions, stamp_ns, velocities))
