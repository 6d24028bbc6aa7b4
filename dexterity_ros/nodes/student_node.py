"""student_node: object cloud + joint states + goal -> joint targets from the ONNX student.

A thin shell over :class:`dexterity_ros.policy.runtime.PolicyRuntime` (the
same core the simulator runs offline). Inference is triggered by cloud
arrival, at most at the contract's control rate, with the joint state whose
stamp is closest to the cloud's. Stale or mismatched inputs, a missing or
bad goal, and non-finite policy outputs produce no command, only a
diagnostic. Changing ``model_path`` (or another model parameter) validates the
new model first and keeps the old one if it is refused.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np
from geometry_msgs.msg import QuaternionStamped
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import JointState, PointCloud2

from ..ros import conversions
from .. import topics
from ..config import ConfigError, to_dict
from ..diagnostic_keys import Student as K
from ..diagnostics import Level
from ..hand_model import JointNameError, default_hand
from ..joint_buffer import JointStateBuffer, PairOutcome, Released, StampPairing
from ..policy.contract import PolicyError
from ..policy.inputs import RateGate, staleness
from ..policy.runtime import GoalError, StepStatus, normalize_goal
from ..policy.student_config import StudentNodeConfig, build_runtime
from ..ros.common import DexterityNode, NodeExit, qos_profile, run_node

# fields whose change needs a new PolicyRuntime (validated before the swap)
RUNTIME_FIELDS = ("model_path", "intra_op_threads", "reset_after_gap", "perception_config",
                  "allow_config_mismatch", "goal_points_path")


class StudentNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("student_node", StudentNodeConfig, **kwargs)
        self.reject_unknown_parameters()   # before loading a model: a mistyped model_path must not load the default
        self.hand = default_hand()
        try:
            self.runtime = build_runtime(self.config)
        except (PolicyError, ConfigError) as exc:
            raise NodeExit(f"student_node refuses to start: {exc}", code=2) from None
        self.gate = RateGate(self.runtime.contract.control_rate_hz)
        self.joints = JointStateBuffer()
        self.goal: np.ndarray | None = None
        # A cloud waits (up to joint_state_wait) for a joint state at or after its stamp, then is paired with
        # the nearest older one; a newer cloud arriving meanwhile replaces it (the old one counts as skipped).
        self.pairing: StampPairing[np.ndarray] = StampPairing(self.joints.has_at_or_after,
                                                               self.config.joint_state_wait)

        self.target_pub = self.create_publisher(JointState, topics.JOINT_TARGETS.name,
                                                qos_profile(topics.JOINT_TARGETS))
        self.create_subscription(PointCloud2, topics.OBJECT_CLOUD.name, self.on_cloud,
                                 qos_profile(topics.OBJECT_CLOUD))
        self.create_subscription(JointState, topics.JOINT_STATES.name, self.on_joints,
                                 qos_profile(topics.JOINT_STATES))
        self.create_subscription(QuaternionStamped, topics.GOAL.name, self.on_goal, qos_profile(topics.GOAL))
        self.create_timer(0.01, self.flush_pending)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        for key in (K.ACTIONS, K.SKIPPED, K.STALE, K.NAN_OUTPUTS):
            self.health.counters.setdefault(key, 0)
        self._announce_model()

    def _announce_model(self) -> None:
        rt = self.runtime
        self.health.set_value(K.MODEL, rt.source)
        self.health.set_value(K.CONTRACT, f"{rt.contract.name or '(unnamed)'} v{rt.contract.contract_version}")
        self.health.set_value(K.CONTROL_RATE, f"{rt.contract.control_rate_hz:g}")
        self.health.set_value(K.SEGMENTATION_HASH, rt.contract.segmentation_config_hash)
        for warning in rt.warnings:
            self.get_logger().warning(warning)
        self.get_logger().info(f"student ready: {rt.describe()}")

    # ------------------------------------------------------------ inputs
    def on_goal(self, msg: QuaternionStamped) -> None:
        frame = msg.header.frame_id
        if frame not in ("", topics.PALM_FRAME):
            self.goal = None
            self.bad_input(K.BAD_GOAL, f"goal rejected: frame '{frame}' is not '{topics.PALM_FRAME}'; "
                           "no actions until a valid goal arrives")
            return
        try:
            goal = normalize_goal(conversions.quaternion_msg_to_wxyz(msg.quaternion))
        except GoalError as exc:
            self.goal = None
            self.bad_input(K.BAD_GOAL, f"goal rejected: {exc}; no actions until a valid goal arrives")
            return
        self.goal = goal
        self.health.set_value(K.GOAL, np.array2string(goal, precision=3, separator=", "))

    def on_joints(self, msg: JointState) -> None:
        try:
            names, positions = conversions.joint_state_to_arrays(msg)
            q = self.hand.to_canonical(names, positions)
        except (conversions.MessageError, JointNameError) as exc:
            self.bad_input(K.BAD_JOINT_STATE, f"joint state rejected: {exc}")
            return
        self.joints.add(conversions.stamp_to_ns(msg.header.stamp), q)
        self.flush_pending()

    def on_cloud(self, msg: PointCloud2) -> None:
        self.health.tick(K.CLOUDS)
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if not self.gate.ready(stamp):
            self.health.count(K.SKIPPED)
            return
        expected_frame = self.runtime.contract.point_cloud.frame
        if msg.header.frame_id != expected_frame:
            self.bad_input(K.BAD_CLOUD, f"cloud rejected: frame '{msg.header.frame_id}', the contract's point "
                           f"cloud frame is '{expected_frame}'")
            return
        try:
            points = conversions.pointcloud2_to_points(msg, drop_invalid=False)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_CLOUD, f"cloud rejected: {exc}")
            return
        for released in self.pairing.offer(points, stamp):
            self._release(released)

    def flush_pending(self) -> None:
        """The waiting cloud, once its joint state arrived (called on each) or its wait ran out (10 ms timer)."""
        self._release(self.pairing.poll())

    def _release(self, released: Released[np.ndarray] | None) -> None:
        if released is None:
            return
        if released.outcome is PairOutcome.SUPERSEDED:
            self.health.count(K.SKIPPED)
            return
        self.process(released.item, released.stamp_ns)

    # -------------------------------------------------------------- work
    def process(self, points: np.ndarray, cloud_stamp: int) -> None:
        cfg = self.config
        joints = self.joints.nearest(cloud_stamp)
        if joints is None:
            self.bad_input(K.STALE, "no action: no joint state received yet")
            return
        reason = staleness(self.now_ns(), cloud_stamp, joints.stamp_ns, cfg.max_input_age, cfg.stamp_tolerance)
        if reason is not None:
            self.bad_input(K.STALE, f"no action: {reason}")
            return
        if self.goal is None:
            self.bad_input(K.NO_GOAL, f"no action: no valid goal on '{topics.GOAL.name}' yet")
            return
        self.gate.mark(cloud_stamp)
        out = self.runtime.step(points, joints.positions, self.goal, cloud_stamp)
        if out.reset_reason is not None:
            self.health.count(K.RESETS)
            self.get_logger().info(f"policy state reset: {out.reset_reason}")
        if out.target is None:
            key = {StepStatus.NAN_OUTPUT: K.NAN_OUTPUTS, StepStatus.BAD_OUTPUT: K.NAN_OUTPUTS,
                   StepStatus.BAD_POINTS: K.BAD_POINTS, StepStatus.BAD_GOAL: K.BAD_GOAL,
                   StepStatus.BAD_JOINTS: K.BAD_JOINT_STATE}[out.status]
            level = Level.ERROR if key == K.NAN_OUTPUTS else Level.WARN
            self.bad_input(key, f"no action: {out.reason}", level)
            return
        self.health.latency(K.INFERENCE, out.inference_ms)
        msg = conversions.arrays_to_joint_state(self.runtime.joint_names, out.target, cloud_stamp)
        self.target_pub.publish(msg)
        self.health.count(K.ACTIONS)
        self.health.tick(K.ACTIONS)
        self.health.latency(K.CLOUD_TO_TARGET, (self.now_ns() - cloud_stamp) * 1e-6)

    # -------------------------------------------------------- parameters
    def on_set_parameters(self, params) -> SetParametersResult:
        """Validate new parameter values (and a new model) before anything changes."""
        names = {f.name for f in dataclasses.fields(StudentNodeConfig)}
        values = to_dict(self.config)
        for p in params:
            if p.name in names:
                values[p.name] = p.value
        try:
            new_config = self.config_from_values(StudentNodeConfig, values)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        changed = [n for n in RUNTIME_FIELDS if getattr(new_config, n) != getattr(self.config, n)]
        if changed:
            try:
                runtime = build_runtime(new_config)
            except (PolicyError, ConfigError) as exc:
                message = f"model reload refused, keeping {self.runtime.source}: {exc}"
                self.health.set_value(K.LAST_RELOAD_ERROR, message)
                self.bad_input(K.RELOAD_FAILED, message, Level.ERROR)
                return SetParametersResult(successful=False, reason=message)
            self.runtime = runtime
            self.gate = RateGate(runtime.contract.control_rate_hz)
            self.pairing.clear()
            self.health.count(K.RELOADS)
            self.health.set_value(K.LAST_RELOAD_ERROR, "")
            self._announce_model()
        self.config = new_config
        self.pairing.wait_s = new_config.joint_state_wait
        return SetParametersResult(successful=True)


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: StudentNode(), args)


if __name__ == "__main__":
    sys.exit(main())
