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
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import QuaternionStamped
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import JointState, PointCloud2

from .. import conversions, topics
from ..config import ConfigError, param, to_dict
from ..diagnostics import Level
from ..hand_model import JointNameError, default_hand
from ..joint_buffer import JointStateBuffer
from ..paths import models_path
from ..perception import load_perception_config
from ..policy.contract import PolicyError
from ..policy.inputs import RateGate, staleness
from ..policy.runtime import (GoalError, PolicyRuntime, RuntimeOptions, StepStatus, load_point_set,
                              normalize_goal)
from .ros_common import DexterityNode, NodeExit, qos_profile, run_node

DEFAULT_MODEL = "student.onnx"


@dataclass(frozen=True)
class StudentNodeConfig:
    model_path: str = param("", "ONNX student carrying a policy contract (empty: the packaged models/student.onnx); "
                                "a change is validated before the model is swapped")
    intra_op_threads: int = param(1, "onnxruntime intra-op threads (use the simulator's value for bit-identical "
                                     "actions)", min=1, max=64)
    max_input_age: float = param(0.2, "s; a cloud or joint state older than this (node clock) produces no action",
                                 min=0.0)
    stamp_tolerance: float = param(0.05, "s; max |cloud stamp - paired joint state stamp| before the pair counts "
                                         "as stale", min=0.0)
    joint_state_wait: float = param(0.03, "s to wait for a joint state at or after the cloud stamp before pairing "
                                          "with the nearest older one", min=0.0, max=1.0)
    reset_after_gap: float = param(0.5, "s; a gap between used inputs longer than this resets history and recurrent "
                                        "state", min=0.0)
    perception_config: str = param("", "perception YAML the contract's segmentation hash and point count must match "
                                       "(empty: config/perception.yaml)")
    allow_config_mismatch: bool = param(False, "run although the contract's segmentation hash or point count differ "
                                               "from perception_config (logged as a warning)")
    goal_points_path: str = param("", "canonical object points (.npy, (M, 3), metres) for contracts whose goal is "
                                      "object points at the goal orientation")


# fields whose change needs a new PolicyRuntime (validated before the swap)
RUNTIME_FIELDS = ("model_path", "intra_op_threads", "reset_after_gap", "perception_config",
                  "allow_config_mismatch", "goal_points_path")


def build_runtime(cfg: StudentNodeConfig) -> PolicyRuntime:
    """Load and validate the model the config names; raises PolicyError/ConfigError with the reason."""
    model = cfg.model_path or str(models_path(DEFAULT_MODEL))
    perception = load_perception_config(cfg.perception_config or None)
    goal_points = load_point_set(cfg.goal_points_path) if cfg.goal_points_path else None
    options = RuntimeOptions(intra_op_threads=cfg.intra_op_threads, reset_after_gap_s=cfg.reset_after_gap,
                             allow_config_mismatch=cfg.allow_config_mismatch)
    return PolicyRuntime(model, hand=default_hand(), options=options, perception=perception,
                         goal_points=goal_points)


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
        self._pending: tuple[np.ndarray, int, float] | None = None   # points, cloud stamp, arrival (monotonic)

        self.target_pub = self.create_publisher(JointState, topics.JOINT_TARGETS.name,
                                                qos_profile(topics.JOINT_TARGETS))
        self.create_subscription(PointCloud2, topics.OBJECT_CLOUD.name, self.on_cloud,
                                 qos_profile(topics.OBJECT_CLOUD))
        self.create_subscription(JointState, topics.JOINT_STATES.name, self.on_joints,
                                 qos_profile(topics.JOINT_STATES))
        self.create_subscription(QuaternionStamped, topics.GOAL.name, self.on_goal, qos_profile(topics.GOAL))
        self.create_timer(0.01, self.flush_pending)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        for key in ("actions", "skipped", "stale", "nan_outputs"):
            self.health.counters.setdefault(key, 0)
        self._announce_model()

    def _announce_model(self) -> None:
        rt = self.runtime
        self.health.set_value("model", rt.source)
        self.health.set_value("contract", f"{rt.contract.name or '(unnamed)'} v{rt.contract.contract_version}")
        self.health.set_value("control rate (Hz)", f"{rt.contract.control_rate_hz:g}")
        self.health.set_value("segmentation hash", rt.contract.segmentation_config_hash)
        for warning in rt.warnings:
            self.get_logger().warning(warning)
        self.get_logger().info(f"student ready: {rt.describe()}")

    # ------------------------------------------------------------ inputs
    def on_goal(self, msg: QuaternionStamped) -> None:
        frame = msg.header.frame_id
        if frame not in ("", topics.PALM_FRAME):
            self.goal = None
            self.bad_input("bad_goal", f"goal rejected: frame '{frame}' is not '{topics.PALM_FRAME}'; "
                           "no actions until a valid goal arrives")
            return
        try:
            goal = normalize_goal(conversions.quaternion_msg_to_wxyz(msg.quaternion))
        except GoalError as exc:
            self.goal = None
            self.bad_input("bad_goal", f"goal rejected: {exc}; no actions until a valid goal arrives")
            return
        self.goal = goal
        self.health.set_value("goal (w, x, y, z)", np.array2string(goal, precision=3, separator=", "))

    def on_joints(self, msg: JointState) -> None:
        try:
            names, positions = conversions.joint_state_to_arrays(msg)
            q = self.hand.to_canonical(names, positions)
        except (conversions.MessageError, JointNameError) as exc:
            self.bad_input("bad_joint_state", f"joint state rejected: {exc}")
            return
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        self.joints.add(stamp, q)
        if self._pending is not None and stamp >= self._pending[1]:
            points, cloud_stamp, _ = self._pending
            self._pending = None
            self.process(points, cloud_stamp)

    def on_cloud(self, msg: PointCloud2) -> None:
        self.health.tick("clouds")
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if not self.gate.ready(stamp):
            self.health.count("skipped")
            return
        expected_frame = self.runtime.contract.point_cloud.frame
        if msg.header.frame_id != expected_frame:
            self.bad_input("bad_cloud", f"cloud rejected: frame '{msg.header.frame_id}', the contract's point "
                           f"cloud frame is '{expected_frame}'")
            return
        try:
            points = conversions.pointcloud2_to_points(msg, drop_invalid=False)
        except conversions.MessageError as exc:
            self.bad_input("bad_cloud", f"cloud rejected: {exc}")
            return
        if self.joints.has_at_or_after(stamp) or self.config.joint_state_wait <= 0:
            self.process(points, stamp)
            return
        if self._pending is not None:
            self.health.count("skipped")
        self._pending = (points, stamp, time.monotonic())

    def flush_pending(self) -> None:
        if self._pending is not None and time.monotonic() - self._pending[2] >= self.config.joint_state_wait:
            points, stamp, _ = self._pending
            self._pending = None
            self.process(points, stamp)

    # -------------------------------------------------------------- work
    def process(self, points: np.ndarray, cloud_stamp: int) -> None:
        cfg = self.config
        joints = self.joints.nearest(cloud_stamp)
        if joints is None:
            self.bad_input("stale", "no action: no joint state received yet")
            return
        reason = staleness(self.now_ns(), cloud_stamp, joints.stamp_ns, cfg.max_input_age, cfg.stamp_tolerance)
        if reason is not None:
            self.bad_input("stale", f"no action: {reason}")
            return
        if self.goal is None:
            self.bad_input("no_goal", f"no action: no valid goal on '{topics.GOAL.name}' yet")
            return
        self.gate.mark(cloud_stamp)
        out = self.runtime.step(points, joints.positions, self.goal, cloud_stamp)
        if out.reset_reason is not None:
            self.health.count("resets")
            self.get_logger().info(f"policy state reset: {out.reset_reason}")
        if out.target is None:
            key = {StepStatus.NAN_OUTPUT: "nan_outputs", StepStatus.BAD_OUTPUT: "nan_outputs",
                   StepStatus.BAD_POINTS: "bad_points", StepStatus.BAD_GOAL: "bad_goal",
                   StepStatus.BAD_JOINTS: "bad_joint_state"}[out.status]
            level = Level.ERROR if key == "nan_outputs" else Level.WARN
            self.bad_input(key, f"no action: {out.reason}", level)
            return
        self.health.latency("inference", out.inference_ms)
        msg = conversions.arrays_to_joint_state(self.runtime.joint_names, out.target, cloud_stamp)
        self.target_pub.publish(msg)
        self.health.count("actions")
        self.health.tick("actions")
        self.health.latency("cloud stamp to target", (self.now_ns() - cloud_stamp) * 1e-6)

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
                self.health.set_value("last reload error", message)
                self.bad_input("reload_failed", message, Level.ERROR)
                return SetParametersResult(successful=False, reason=message)
            self.runtime = runtime
            self.gate = RateGate(runtime.contract.control_rate_hz)
            self._pending = None
            self.health.count("reloads")
            self.health.set_value("last reload error", "")
            self._announce_model()
        self.config = new_config
        return SetParametersResult(successful=True)


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: StudentNode(), args)


if __name__ == "__main__":
    sys.exit(main())
