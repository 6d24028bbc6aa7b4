"""hand_view_node: the hand, the workspace, the tracked object and the goal, for RViz and Foxglove.

A thin shell over :mod:`dexterity_ros.visualization` and :mod:`dexterity_ros.urdf`:

* ``/tf``: palm -> every hand link from the measured joints (hand/joint_states),
  parent -> child as in the URDF, so a viewer draws the hand without
  robot_state_publisher (throttled to ``tf_rate_hz``, stamped with the joint
  state's stamp);
* ``visualization/robot_description``: the generated URDF, latched (as
  robot_state_publisher does; not the absolute /robot_description, which a
  ros2_control driver publishes and hand_node checks);
* ``visualization/markers``: workspace box, hand collision shapes as
  segmentation poses them, the tracked object (perception/object_pose) and the
  goal (goal/orientation) drawn with the object's model (docs/visualization.md),
  built and published only while a viewer subscribes.

Garbage input (unknown joint names, non-finite poses) is reported on
/diagnostics and skipped.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, PoseStamped, QuaternionStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from .. import topics
from ..config import ConfigError, param
from ..diagnostics import Level
from ..geometry import matrix_to_quat, rotation_distance
from ..hand_model import JointNameError, default_hand
from ..kinematics import HandKinematics
from ..objects.models import load_object_model
from ..perception import load_perception_config
from ..ros import conversions
from ..ros.common import DexterityNode, NodeExit, qos_profile, run_node
from ..sim.sim_config import load_sim_config
from ..urdf import hand_urdf
from ..diagnostic_keys import HandView as K
from ..visualization import (MarkerKind, MarkerSpec, TrackedPose, ViewSettings, link_transforms, model_subset,
                             scene_markers)

MARKER_TYPES = {MarkerKind.CUBE: Marker.CUBE, MarkerKind.SPHERE: Marker.SPHERE, MarkerKind.CYLINDER: Marker.CYLINDER,
                MarkerKind.LINE_LIST: Marker.LINE_LIST, MarkerKind.POINTS: Marker.POINTS,
                MarkerKind.TEXT: Marker.TEXT_VIEW_FACING}


@dataclass(frozen=True)
class HandViewNodeConfig:
    perception_config: str = param("", "perception YAML whose workspace box and hand_margin are drawn (empty: "
                                       "config/perception.yaml; give segmentation_node's)", read_only=True)
    object: str = param("cube", "object drawn at the tracked pose and the goal: a simulator object or one added "
                                "with `dexterity-ros object add` (empty: axes only, e.g. sim.launch's object drawn "
                                "per episode)", read_only=True)
    sim_config: str = param("", "simulation YAML: its mount's object_position is where the goal is drawn, plus "
                                "goal_offset (empty: config/sim.yaml)", read_only=True)
    goal_anchor: Literal["beside", "tracked"] = param(
        "beside", "where the goal is drawn: beside = at the object's reference position + goal_offset (never "
                  "hides the hand); tracked = over the tracked object while there is a pose (shows the rotation "
                  "still to go), else beside", read_only=True)
    goal_offset: tuple[float, ...] = param([0.0, -0.15, 0.0], "m, palm frame (x, y, z): the goal drawing's offset "
                                                               "from the object's reference position (default: "
                                                               "beside the ring finger, away from the thumb)",
                                           read_only=True)
    tf_rate_hz: float = param(20.0, "hand link transforms on /tf at most this often (0: on every joint state)",
                              min=0.0, max=1000.0, read_only=True)
    marker_rate_hz: float = param(10.0, "MarkerArray messages per second", min=0.1, max=100.0, read_only=True)
    pose_timeout_s: float = param(0.5, "s; a tracked pose older than this is no longer drawn (the tracker publishes "
                                       "nothing while the object is lost)", min=0.01, max=60.0, read_only=True)
    object_marker_points: int = param(250, "model points drawn for the tracked object and the goal", min=16,
                                      max=100000, read_only=True)
    frame_prefix: str = param("", "prefix of every frame this node publishes (/tf and the markers), as "
                                  "segmentation_node's frame_prefix (e.g. 'left/'); the URDF keeps the plain "
                                  "link names (RViz RobotModel: TF Prefix)", read_only=True)

    def __post_init__(self) -> None:
        if len(self.goal_offset) != 3 or not all(math.isfinite(v) for v in self.goal_offset):
            raise ConfigError(f"goal_offset needs 3 finite numbers (x, y, z), got {list(self.goal_offset)}")
        if self.frame_prefix.startswith("/") or any(c.isspace() for c in self.frame_prefix):
            raise ConfigError(f"frame_prefix {self.frame_prefix!r}: tf2 frame names neither start with '/' "
                              "nor contain spaces")


class HandViewNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("hand_view_node", HandViewNodeConfig, **kwargs)
        self.reject_unknown_parameters()
        cfg = self.config
        self.hand = default_hand()
        self.kinematics = HandKinematics(self.hand)
        try:
            perception = load_perception_config(cfg.perception_config or None)
            sim = load_sim_config(cfg.sim_config or None)
            self.model = load_object_model(cfg.object) if cfg.object else None
            self.urdf = hand_urdf(self.hand, force_limit=sim.physics.actuator_force_limit)
        except (ConfigError, ValueError, OSError) as exc:
            raise NodeExit(f"hand_view_node refuses to start: {exc}", code=2) from None
        reference = np.asarray(sim.mount_config().object_position, dtype=np.float64)
        self.settings = ViewSettings(
            workspace=perception.workspace, hand_margin=perception.hand_margin,
            object_points=(model_subset(self.model.points, cfg.object_marker_points) if self.model is not None
                           else np.zeros((0, 3))),
            goal_position=reference + np.asarray(cfg.goal_offset, dtype=np.float64),
            goal_anchor=cfg.goal_anchor, pose_timeout_s=cfg.pose_timeout_s)
        self.palm_frame = cfg.frame_prefix + topics.PALM_FRAME
        self.q: np.ndarray | None = None
        self.q_stamp = 0
        self.tracked: TrackedPose | None = None
        self.goal: np.ndarray | None = None
        self.goal_stamp = 0
        self._markers: dict[tuple[str, int], list] = {}      # (ns, id) -> [message, its points, its colours]
        self._tf_period_ns = 0 if cfg.tf_rate_hz <= 0 else int(1e9 / cfg.tf_rate_hz)
        self._last_tf_ns: int | None = None

        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            raise NodeExit("hand_view_node refuses to start: tf2_msgs is not installed (run `make venv` to "
                           "build it)", code=2) from None
        self._tf_message = TFMessage
        self.tf_pub = self.create_publisher(TFMessage, topics.TF.name, qos_profile(topics.TF))
        self.description_pub = self.create_publisher(String, topics.ROBOT_DESCRIPTION.name,
                                                     qos_profile(topics.ROBOT_DESCRIPTION))
        self.marker_pub = self.create_publisher(MarkerArray, topics.VIS_MARKERS.name, qos_profile(topics.VIS_MARKERS))
        self.create_subscription(JointState, topics.JOINT_STATES.name, self.on_joints,
                                 qos_profile(topics.JOINT_STATES))
        self.create_subscription(PoseStamped, topics.OBJECT_POSE_TRACKED.name, self.on_pose,
                                 qos_profile(topics.OBJECT_POSE_TRACKED))
        self.create_subscription(QuaternionStamped, topics.GOAL.name, self.on_goal, qos_profile(topics.GOAL))
        self.create_timer(1.0 / cfg.marker_rate_hz, self.publish_markers)
        self.description_pub.publish(String(data=self.urdf))
        self.health.set_value(K.OBJECT, cfg.object or "(none: axes only)")
        self.health.set_value(K.URDF_JOINTS, len(self.hand.joint_names))
        self.health.set_state(Level.OK, "waiting for joint states")
        self.get_logger().info(f"hand view: URDF ({len(self.hand.links) + 1} links) on "
                               f"{topics.ROBOT_DESCRIPTION.name}, /tf from {topics.JOINT_STATES.name}, markers on "
                               f"{topics.VIS_MARKERS.name} ({cfg.object}, goal {cfg.goal_anchor})")

    # ------------------------------------------------------------ inputs
    def on_joints(self, msg: JointState) -> None:
        self.health.tick(K.JOINT_STATES)
        try:
            names, positions = conversions.joint_state_to_arrays(msg)
            q = self.hand.to_canonical(names, positions)
        except (conversions.MessageError, JointNameError) as exc:
            self.bad_input(K.BAD_JOINT_STATE, f"joint state rejected: {exc}")
            return
        if not np.all(np.isfinite(q)):
            self.bad_input(K.BAD_JOINT_STATE, f"joint state rejected: non-finite positions {q.tolist()}")
            return
        stamp = conversions.stamp_to_ns(msg.header.stamp) or self.now_ns()
        first = self.q is None
        self.q, self.q_stamp = q, stamp
        if first:
            self.health.set_state(Level.OK, "drawing the hand")
        now = time.monotonic_ns()
        if self._last_tf_ns is not None and now - self._last_tf_ns < self._tf_period_ns:
            return
        self._last_tf_ns = now
        prefix = self.config.frame_prefix
        transforms = [conversions.transform_to_msg(t.matrix, stamp, prefix + t.parent, prefix + t.child)
                      for t in link_transforms(self.kinematics, q)]
        self.tf_pub.publish(self._tf_message(transforms=transforms))
        self.health.tick(K.TF)

    def on_pose(self, msg: PoseStamped) -> None:
        try:
            position, quaternion = conversions.pose_msg_to_arrays(msg)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_POSE, f"object pose rejected: {exc}")
            return
        if msg.header.frame_id not in (topics.PALM_FRAME, self.palm_frame):
            self.bad_input(K.BAD_POSE, f"object pose rejected: frame '{msg.header.frame_id}', expected "
                                       f"'{topics.PALM_FRAME}'")
            return
        self.tracked = TrackedPose(position, quaternion, conversions.stamp_to_ns(msg.header.stamp), self.now_ns())

    def on_goal(self, msg: QuaternionStamped) -> None:
        q = conversions.quaternion_msg_to_wxyz(msg.quaternion)
        norm = float(np.linalg.norm(q))
        if not (np.all(np.isfinite(q)) and norm > 1e-6):
            self.bad_input(K.BAD_GOAL, f"goal rejected: not a rotation quaternion {q.tolist()}")
            return
        self.goal = q / norm
        self.goal_stamp = conversions.stamp_to_ns(msg.header.stamp)

    # ------------------------------------------------------------ output
    def publish_markers(self) -> None:
        if self.marker_pub.get_subscription_count() == 0:
            # no viewer attached: building ~20 markers in Python ten times a second would only load the
            # machine the control path runs on; a viewer that subscribes gets them within one period
            return
        now = self.now_ns()
        tracked = self.tracked
        distance = None
        if self.goal is not None and tracked is not None:     # the judge's distance: up to the object's symmetry
            distance = (self.model.symmetry.distance(tracked.quaternion, self.goal) if self.model is not None
                        else float(rotation_distance(tracked.quaternion, self.goal)))
        specs = scene_markers(self.settings, self.kinematics, q=self.q, joints_stamp_ns=self.q_stamp,
                              tracked=tracked, goal=self.goal, now_ns=now, goal_stamp_ns=self.goal_stamp,
                              goal_distance=distance)
        self.marker_pub.publish(MarkerArray(markers=[self.marker(s) for s in specs]))
        self.health.tick(K.MARKERS)
        if tracked is not None:
            self.health.set_value(K.POSE_AGE, f"{(now - tracked.seen_ns) * 1e-9:.2f} s since the last")

    def marker(self, spec: MarkerSpec) -> Marker:
        """The message of ``spec``, reusing the one of the same (ns, id): a point list (the object model) is
        converted once, not ten times a second (rclpy builds each Point in Python)."""
        key = (spec.ns, spec.id)
        cached = self._markers.get(key)
        if cached is None:
            msg = Marker(ns=spec.ns, id=spec.id, action=Marker.ADD, frame_locked=False)
            msg.header.frame_id = self.palm_frame
            cached = self._markers[key] = [msg, None, None]
        msg, points, colors = cached
        msg.type = MARKER_TYPES[spec.kind]
        msg.text = spec.text
        msg.header.stamp = conversions.ns_to_stamp(spec.stamp_ns)
        p = msg.pose.position
        p.x, p.y, p.z = (float(v) for v in spec.pose[:3, 3])
        msg.pose.orientation = conversions.wxyz_to_quaternion_msg(matrix_to_quat(spec.pose[:3, :3]))
        msg.scale.x, msg.scale.y, msg.scale.z = (float(v) for v in spec.scale)
        msg.color = ColorRGBA(r=spec.rgba[0], g=spec.rgba[1], b=spec.rgba[2], a=spec.rgba[3])
        if not _same(points, spec.points):
            msg.points = ([] if spec.points is None else
                          [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in spec.points])
            cached[1] = spec.points
        if colors != spec.colors:
            msg.colors = [] if spec.colors is None else [ColorRGBA(r=c[0], g=c[1], b=c[2], a=c[3])
                                                         for c in spec.colors]
            cached[2] = spec.colors
        sec = int(spec.lifetime_s)
        msg.lifetime = Duration(sec=sec, nanosec=int(round((spec.lifetime_s - sec) * 1e9)))
        return msg


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is b:
        return True
    return a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b)


def main(args: list[str] | None = None) -> int:
    return run_node(HandViewNode, args)


if __name__ == "__main__":
    sys.exit(main())
