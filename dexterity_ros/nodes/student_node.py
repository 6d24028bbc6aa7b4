"""student_node: the inputs its policy contract reads -> joint targets from the ONNX policy.

A thin shell over :class:`dexterity_ros.policy.runtime.PolicyRuntime`
(contract version 1: this package's students) and
:class:`dexterity_ros.policy.runtime_v2.TermPolicyRuntime` (version 2:
observation terms), the same cores the simulator runs offline.

Inputs and trigger (``policy.inputs.input_plan``): a version-1 contract reads
the object cloud, the joint states and the goal, and inference is triggered by
cloud arrival. A version-2 contract subscribes only to the sources its terms
read (joint states always; ``goal/orientation``; the object pose on
``object_pose_topic``, PoseStamped in the palm frame; the cloud) and is
triggered by the cloud if it reads one, else by the object pose, else by the
joint states (a proprioceptive policy such as HORA acts when segmentation
publishes nothing). A cloud or pose trigger is paired with the joint state
whose stamp is closest to it; every trigger is rate-gated on stamps at the
contract's control rate, and the step's stamp is the trigger's, so two nodes
on the same replay act alike. A pose that is read but is not the trigger is
the buffered pose nearest the step's stamp, within ``max_pose_age``. Stale or
mismatched inputs, a missing or bad goal or pose, and non-finite policy
outputs produce no command, only a diagnostic.

Version-2 contracts only: each topic the contract reads must have a publisher
within ``source_wait`` s of start, else the node exits with code 2 naming the
topic and the terms that read it (a pose-based policy without a tracker would
otherwise sit silent).

Changing ``model_path`` (or another model parameter) validates the new model
first and keeps the old one if it is refused. The subscriptions are made at
start, so a new model must read the same sources (any contract version): a
switch between e.g. a cloud student and a proprioceptive or pose-based policy
is refused with the reason; restart the node for it.
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, QuaternionStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import JointState, PointCloud2

from ..ros import conversions
from .. import topics
from ..config import ConfigError, to_dict
from ..diagnostic_keys import Student as K
from ..diagnostics import Level
from ..hand_model import JointNameError, default_hand
from ..joint_buffer import JointStateBuffer, PairOutcome, Released, StampPairing
from ..policy.contract import PolicyError
from ..policy.inputs import (InputPlan, PoseBuffer, RateGate, Trigger, input_plan, staleness, terms_by_source,
                             unpublished_sources_message)
from ..policy.runtime import GoalError, StepStatus, normalize_goal
from ..policy.runtime_v2 import ObjectPose, StepInputs, TermPolicyRuntime
from ..policy.student_config import StudentNodeConfig, build_runtime
from ..ros.common import DexterityNode, NodeExit, qos_profile, run_node

# fields whose change needs a new PolicyRuntime (validated before the swap)
RUNTIME_FIELDS = ("model_path", "intra_op_threads", "reset_after_gap", "perception_config",
                  "allow_config_mismatch", "goal_points_path")
STATUS_KEYS = {StepStatus.NAN_OUTPUT: K.NAN_OUTPUTS, StepStatus.BAD_OUTPUT: K.NAN_OUTPUTS,
               StepStatus.BAD_POINTS: K.BAD_POINTS, StepStatus.BAD_GOAL: K.BAD_GOAL,
               StepStatus.BAD_JOINTS: K.BAD_JOINT_STATE, StepStatus.BAD_POSE: K.BAD_POSE}


def plan_of(runtime) -> InputPlan:
    """What a runtime reads and what triggers it (version 1: cloud, joint states, goal; cloud-triggered)."""
    return input_plan(runtime.sources if isinstance(runtime, TermPolicyRuntime) else None)


class StudentNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("student_node", StudentNodeConfig, **kwargs)
        self.reject_unknown_parameters()   # before loading a model: a mistyped model_path must not load the default
        self.hand = default_hand()
        try:
            self.runtime = build_runtime(self.config)
        except (PolicyError, ConfigError) as exc:
            raise NodeExit(f"student_node refuses to start: {exc}", code=2) from None
        self.plan = plan_of(self.runtime)
        self.gate = RateGate(self.runtime.contract.control_rate_hz)
        self.joints = JointStateBuffer()
        self.goal: np.ndarray | None = None
        self.poses: PoseBuffer[ObjectPose] = PoseBuffer()     # poses read but not the trigger
        # A cloud (or pose) trigger waits (up to joint_state_wait) for a joint state at or after its stamp, then
        # is paired with the nearest older one; a newer one arriving meanwhile replaces it (counted as skipped).
        self.pairing: StampPairing = StampPairing(self.joints.has_at_or_after, self.config.joint_state_wait)

        self.target_pub = self.create_publisher(JointState, topics.JOINT_TARGETS.name,
                                                qos_profile(topics.JOINT_TARGETS))
        plan, subscriptions, depth = self.plan, {}, self.config.input_queue_depth
        if plan.needs("object_points"):
            subscriptions["object_points"] = self.create_subscription(
                PointCloud2, topics.OBJECT_CLOUD.name, self.on_cloud, qos_profile(topics.OBJECT_CLOUD, depth))
        subscriptions["joint_states"] = self.create_subscription(
            JointState, topics.JOINT_STATES.name, self.on_joints, qos_profile(topics.JOINT_STATES, depth))
        self.goal_subscription = None
        if plan.needs("goal"):
            subscriptions["goal"] = self.goal_subscription = self.create_subscription(
                QuaternionStamped, topics.GOAL.name, self.on_goal, qos_profile(topics.GOAL))
        if plan.needs("object_pose"):
            subscriptions["object_pose"] = self.create_subscription(
                PoseStamped, self.config.object_pose_topic, self.on_pose,
                qos_profile(topics.OBJECT_POSE_TRACKED, depth))
        self.source_topics = {source: sub.topic_name for source, sub in subscriptions.items()}
        self.create_timer(0.01, self.flush_pending)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        for key in (K.ACTIONS, K.SKIPPED, K.STALE, K.NAN_OUTPUTS):
            self.health.counters.setdefault(key, 0)
        self._announce_model()
        self._source_deadline = time.monotonic() + self.config.source_wait
        if isinstance(self.runtime, TermPolicyRuntime) and self.config.source_wait > 0:
            # not the guarded create_timer: NodeExit must reach run_node (exit 2)
            self._source_timer = Node.create_timer(self, 0.1, self._check_sources,
                                                   clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _announce_model(self) -> None:
        rt = self.runtime
        self.health.set_value(K.MODEL, rt.source)
        self.health.set_value(K.CONTRACT, f"{rt.contract.name or '(unnamed)'} v{rt.contract.contract_version}")
        self.health.set_value(K.CONTROL_RATE, f"{rt.contract.control_rate_hz:g}")
        self.health.set_value(K.SEGMENTATION_HASH, rt.contract.segmentation_config_hash)
        self.health.set_value(K.INPUTS, self.plan.describe())
        for warning in rt.warnings:
            self.get_logger().warning(warning)
        self.get_logger().info(f"student ready: {rt.describe()}; inputs {self.plan.describe()}")

    def _check_sources(self) -> None:
        """Until every source topic has a publisher; exit 2 naming the missing ones once source_wait ran out."""
        missing = {source: topic for source, topic in self.source_topics.items()
                   if self.count_publishers(topic) == 0}
        if not missing:
            self._source_timer.cancel()
            return
        if time.monotonic() >= self._source_deadline:
            self._source_timer.cancel()
            message = unpublished_sources_message(missing, terms_by_source(self.runtime.contract.terms),
                                                  self.config.source_wait)
            raise NodeExit(f"student_node refuses to run: {message}", code=2)

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
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        self.joints.add(stamp, q)
        if self.plan.trigger is Trigger.JOINTS:
            if self.gate.ready(stamp):
                self.process(None, stamp)
            return
        self.flush_pending()

    def on_cloud(self, msg: PointCloud2) -> None:
        self.health.tick(K.CLOUDS)
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if not self.gate.ready(stamp):
            self.health.count(K.SKIPPED)
            return
        expected_frame = (topics.PALM_FRAME if isinstance(self.runtime, TermPolicyRuntime)
                          else self.runtime.contract.point_cloud.frame)
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

    def on_pose(self, msg: PoseStamped) -> None:
        self.health.tick(K.POSES)
        frame = msg.header.frame_id
        if frame not in ("", topics.PALM_FRAME):
            self.bad_input(K.BAD_POSE, f"object pose rejected: frame '{frame}' is not '{topics.PALM_FRAME}'")
            return
        try:
            position, quat = conversions.pose_msg_to_arrays(msg)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_POSE, f"object pose rejected: {exc}")
            return
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        pose = ObjectPose(position, quat, stamp)
        if self.plan.trigger is not Trigger.POSE:
            self.poses.add(stamp, pose)
            return
        if not self.gate.ready(stamp):
            self.health.count(K.SKIPPED)
            return
        for released in self.pairing.offer(pose, stamp):
            self._release(released)

    def flush_pending(self) -> None:
        """The waiting cloud (or pose), once its joint state arrived (called on each) or its wait ran out."""
        self._release(self.pairing.poll())

    def _release(self, released: Released[np.ndarray] | None) -> None:
        if released is None:
            return
        if released.outcome is PairOutcome.SUPERSEDED:
            self.health.count(K.SKIPPED)
            return
        self.process(released.item, released.stamp_ns)

    def take_delivered_goals(self) -> None:
        """Apply every goal already delivered to this process before a step, not only those the executor took.

        A goal published before a frame reaches this process long before the cloud made from that frame, but
        when the process wakes late both wait together, and rclpy's executor may take the cloud first: the step
        then acted on the previous goal (a parity failure in CI; docs/policy_contract.md). The executor later
        finds the goal reader empty and skips it (rclpy handles a take that returns nothing)."""
        subscription = self.goal_subscription
        if subscription is None:
            return
        while True:
            try:
                with subscription.handle:
                    taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
            except Exception as exc:  # noqa: BLE001 - a goal that cannot be taken waits for the executor
                self.log_throttled("take goal", Level.WARN, f"could not take a waiting goal: {exc!r}")
                return
            if taken is None:
                return
            self.on_goal(taken[0])

    # -------------------------------------------------------------- work
    def process(self, item, stamp: int) -> None:
        """One step on the trigger ``item`` (cloud points, an ObjectPose, or None for a joint state) at ``stamp``."""
        cfg, trigger = self.config, self.plan.trigger
        self.take_delivered_goals()
        joints = self.joints.nearest(stamp)
        if joints is None:
            self.bad_input(K.STALE, "no action: no joint state received yet")
            return
        reason = staleness(self.now_ns(), stamp, joints.stamp_ns, cfg.max_input_age, cfg.stamp_tolerance,
                           trigger.words)
        if reason is not None:
            self.bad_input(K.STALE, f"no action: {reason}")
            return
        if self.plan.needs("goal") and self.goal is None:
            self.bad_input(K.NO_GOAL, f"no action: no valid goal on '{topics.GOAL.name}' yet")
            return
        if isinstance(self.runtime, TermPolicyRuntime):
            inputs = self._step_inputs(item, stamp, joints.positions)
            if inputs is None:
                return
            self.gate.mark(stamp)
            out = self.runtime.step(inputs)
        else:
            self.gate.mark(stamp)
            out = self.runtime.step(item, joints.positions, self.goal, stamp)
        if out.reset_reason is not None:
            self.health.count(K.RESETS)
            self.get_logger().info(f"policy state reset: {out.reset_reason}")
        if out.target is None:
            key = STATUS_KEYS[out.status]
            level = Level.ERROR if key == K.NAN_OUTPUTS else Level.WARN
            self.bad_input(key, f"no action: {out.reason}", level)
            return
        self.health.latency(K.INFERENCE, out.inference_ms)
        msg = conversions.arrays_to_joint_state(self.runtime.joint_names, out.target, stamp)
        self.target_pub.publish(msg)
        self.health.count(K.ACTIONS)
        self.health.tick(K.ACTIONS)
        self.health.latency(K.CLOUD_TO_TARGET if trigger is Trigger.CLOUD else K.TRIGGER_TO_TARGET,
                            (self.now_ns() - stamp) * 1e-6)

    def _step_inputs(self, item, stamp: int, q: np.ndarray) -> StepInputs | None:
        """A version-2 step's inputs: only the sources the contract reads; None (reported) without a pose."""
        plan = self.plan
        pose = item if plan.trigger is Trigger.POSE else None
        if pose is None and plan.needs("object_pose"):
            pose, why = self.poses.nearest(stamp, self.config.max_pose_age)
            if pose is None:
                self.bad_input(K.NO_POSE, f"no action: {why} (on '{self.source_topics['object_pose']}')")
                return None
        return StepInputs(joint_positions=q, stamp_ns=stamp, goal_wxyz=self.goal if plan.needs("goal") else None,
                          object_points=item if plan.trigger is Trigger.CLOUD else None, object_pose=pose)

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
                plan = plan_of(runtime)
                if set(plan.sources) != set(self.plan.sources):
                    raise PolicyError(f"the new model reads {plan.describe()}, but this node subscribed at start "
                                      f"for {self.plan.describe()}; restart student_node to change its inputs")
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
