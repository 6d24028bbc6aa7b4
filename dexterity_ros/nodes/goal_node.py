"""goal_node: draws goal orientations and judges success and drops from the object's pose.

A thin shell over :class:`dexterity_ros.task.TaskJudge` and
:class:`dexterity_ros.task.GoalSampler`, the rules the simulator trains with
(its task section of config/sim.yaml), so "success" on the robot means what it
meant in training. The pose comes from the tracker (``perception/object_pose``,
palm frame; it publishes nothing while the object is lost, so a timer checks
``lost_timeout_s``). The goal goes out latched on ``goal/orientation``, the
judge's counters on ``task/metrics``.

In the simulator (``truth_pose_topic: sim/object_pose``, sim_bridge_node with
``goal_source: topic``) a shadow judge follows the same goals on the true pose
and publishes on ``task/metrics_truth``: tracked against true successes.
Garbage poses (non-finite, not a unit quaternion, wrong frame) are reported on
/diagnostics and skipped.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, QuaternionStamped

from .. import topics
from ..config import ConfigError, param
from ..diagnostic_keys import GoalNode as K
from ..diagnostics import Level
from ..objects.models import load_object_model
from ..ros import conversions
from ..ros.common import DexterityNode, qos_profile, run_node
from ..sim.sim_config import load_sim_config
from ..task import GoalSampler, TaskJudge, TaskRules, Verdict

CHECK_PERIOD_S = 0.05          # lost-object and goal timeouts between poses
METRICS_PERIOD_S = 1.0         # task/metrics also without poses (late subscribers, a lost object)


@dataclass(frozen=True)
class GoalNodeConfig:
    seed: int = param(0, "seed of the goal sequence", min=0)
    object: str = param("cube", "the object in the hand, for its symmetry (a simulator object or a model added "
                                "with `dexterity-ros object add`)", read_only=True)
    sim_config: str = param("", "simulation YAML: its task section gives the goal distribution and the rules, its "
                                "mount the object's reference position (empty: config/sim.yaml)", read_only=True)
    success_hold_frames: int = param(3, "consecutive poses below the success threshold for a success "
                                        "(the simulator uses task.success_hold_frames)", min=1, max=1000)
    lost_timeout_s: float = param(1.0, "s without a pose = drop (the tracker publishes none while lost)",
                                  min=0.01, max=60.0)
    restart_frames: int = param(5, "poses inside the drop distance before the next episode starts (the object is "
                                   "back in the hand)", min=1, max=1000)
    symmetry_aware: bool = param(True, "rotation error and goal distance up to the object's symmetry (a depth "
                                       "tracker only knows the pose up to it)")
    success_threshold_rad: float = param(0.0, "rad; 0: sim_config task.success_threshold_rad", min=0.0,
                                         max=math.pi)
    drop_distance_m: float = param(0.0, "m from the reference position = drop; 0: sim_config task.drop_distance_m",
                                   min=0.0)
    goal_timeout_s: float = param(0.0, "s to reach a goal before the episode ends; 0: sim_config "
                                       "task.goal_timeout_s", min=0.0)
    reference_position: tuple[float, ...] = param([], "object reference position (palm frame, m; x, y, z); "
                                                      "empty: the sim_config mount's object_position")
    pose_topic: str = param(topics.OBJECT_POSE_TRACKED.name, "object pose to judge (PoseStamped, palm frame)",
                            read_only=True)
    truth_pose_topic: str = param("", "simulation: true pose for a shadow judge on the same goals, published on "
                                      f"{topics.TASK_METRICS_TRUTH.name} (e.g. {topics.OBJECT_POSE.name}; "
                                      "empty: off)", read_only=True)

    def __post_init__(self) -> None:
        if self.reference_position and len(self.reference_position) != 3:
            raise ConfigError(f"reference_position needs 3 values (x, y, z), got {list(self.reference_position)}")


def build_rules(cfg: GoalNodeConfig, task) -> TaskRules:
    """The sim config's task rules with this node's values (0 = the sim config's)."""
    overrides = {"success_hold_frames": cfg.success_hold_frames, "lost_timeout_s": cfg.lost_timeout_s,
                 "restart_frames": cfg.restart_frames, "symmetry_aware": cfg.symmetry_aware}
    for name in ("success_threshold_rad", "drop_distance_m", "goal_timeout_s"):
        if getattr(cfg, name) > 0:
            overrides[name] = getattr(cfg, name)
    return TaskRules.from_task(task, **overrides)


class GoalNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("goal_node", GoalNodeConfig, **kwargs)
        self.reject_unknown_parameters()
        cfg = self.config
        sim = load_sim_config(cfg.sim_config or None)
        try:
            symmetry = load_object_model(cfg.object).symmetry
            self.rules = build_rules(cfg, sim.task)
            sampler = GoalSampler.from_task(sim.task)
        except ValueError as exc:                  # ConfigError, ObjectModelError and the rules' own checks
            raise ConfigError(f"goal_node: {exc}") from None
        reference = np.array(cfg.reference_position or sim.mount_config().object_position, dtype=np.float64)
        self.judge = TaskJudge(self.rules, reference, sampler, np.random.default_rng(cfg.seed), symmetry)
        self.truth = TaskJudge(self.rules, reference, None, None, symmetry) if cfg.truth_pose_topic else None
        self._lock = threading.Lock()
        self._pose_clock: tuple[int, float] | None = None      # (last pose stamp, its arrival): the poses' clock
        self._last_stamp = {"pose": -1, "truth": -1}
        self._lost_reported = False

        self.goal_pub = self.create_publisher(QuaternionStamped, topics.GOAL.name, qos_profile(topics.GOAL))
        self.metrics_pub = self.create_publisher(DiagnosticStatus, topics.TASK_METRICS.name,
                                                 qos_profile(topics.TASK_METRICS))
        self.truth_pub = None
        # best effort subscriptions match both a sensor-QoS tracker and the simulator's reliable true pose
        self.create_subscription(PoseStamped, cfg.pose_topic, self.on_pose, qos_profile(topics.OBJECT_POSE_TRACKED))
        if self.truth is not None:
            self.truth_pub = self.create_publisher(DiagnosticStatus, topics.TASK_METRICS_TRUTH.name,
                                                   qos_profile(topics.TASK_METRICS_TRUTH))
            self.create_subscription(PoseStamped, cfg.truth_pose_topic, self.on_truth,
                                     qos_profile(topics.OBJECT_POSE_TRACKED))
        self.create_timer(CHECK_PERIOD_S, self.check_timeouts)
        self.create_timer(METRICS_PERIOD_S, self.publish_metrics)
        self.health.set_value(K.OBJECT, cfg.object)
        self.health.set_value(K.SYMMETRY, symmetry.spec + ("" if self.rules.symmetry_aware else " (ignored)"))
        self.health.set_value(K.RULES, _describe(self.rules))
        self.health.counters.setdefault(K.GOALS_PUBLISHED, 0)
        self.health.set_state(Level.OK, "waiting for the object in the hand")
        self.get_logger().info(f"goal node: {cfg.object} (symmetry {symmetry.spec}), poses on {cfg.pose_topic}"
                               + (f", truth on {cfg.truth_pose_topic}" if self.truth else "")
                               + f"; {_describe(self.rules)}")

    # ------------------------------------------------------------ inputs
    def on_pose(self, msg: PoseStamped) -> None:
        self.health.tick(K.POSES)
        pose = self._read(msg, "pose", K.BAD_POSE)
        if pose is None:
            return
        stamp, position, quaternion = pose
        with self._lock:
            verdict = self.judge.update(stamp, position, quaternion)
            self._handle(verdict, stamp)

    def on_truth(self, msg: PoseStamped) -> None:
        self.health.tick(K.TRUTH_POSES)
        pose = self._read(msg, "truth", K.BAD_TRUTH_POSE)
        if pose is None:
            return
        stamp, position, quaternion = pose
        with self._lock:
            self.truth.update(stamp, position, quaternion)
            self._publish(self.truth_pub, self.truth, "task (truth)")

    def _read(self, msg: PoseStamped, stream: str, key: str) -> tuple[int, np.ndarray, np.ndarray] | None:
        """(stamp, position, unit quaternion) of a valid pose in the palm frame, or None (reported)."""
        frame = msg.header.frame_id
        if frame not in ("", topics.PALM_FRAME):
            self.bad_input(key, f"{stream} pose ignored: frame '{frame}' is not '{topics.PALM_FRAME}'")
            return None
        try:
            position, quaternion = conversions.pose_msg_to_arrays(msg)
        except conversions.MessageError as exc:
            self.bad_input(key, f"{stream} pose ignored: {exc}")
            return None
        stamp = conversions.stamp_to_ns(msg.header.stamp) or self.now_ns()
        if stamp < self._last_stamp[stream]:
            self.bad_input(key, f"{stream} pose ignored: stamp {stamp} older than the last one")
            return None
        self._last_stamp[stream] = stamp
        with self._lock:
            if self._pose_clock is None or stamp >= self._pose_clock[0]:
                self._pose_clock = (stamp, time.monotonic())
        return stamp, position, quaternion

    # ------------------------------------------------------------- work
    def _handle(self, verdict: Verdict, stamp: int) -> None:
        """Publish a new goal (the shadow judge follows it), log the events, publish the metrics."""
        judge = self.judge
        if verdict.new_goal is not None:
            self.goal_pub.publish(conversions.goal_msg(verdict.new_goal, stamp, topics.PALM_FRAME))
            self.health.count(K.GOALS_PUBLISHED)
            if self.truth is not None:
                if verdict.episode_started:
                    self.truth.start_episode(stamp, goal=verdict.new_goal)
                else:
                    self.truth.set_goal(verdict.new_goal, stamp)
        if verdict.episode_started:
            self._lost_reported = False
            self.health.set_state(Level.OK, f"episode {judge.episodes} running")
            self.get_logger().info(f"episode {judge.episodes}: object in the hand, first goal "
                                   f"{np.round(verdict.new_goal, 3).tolist()} ({verdict.rotation_error:.2f} rad away)")
        if verdict.success:
            self.get_logger().info(f"success {judge.consecutive} of episode {judge.episodes} "
                                   f"({judge.goals_reached} in total)")
        if verdict.dropped:
            why = (f"object lost (no pose for {self.rules.lost_timeout_s:g} s)" if verdict.lost
                   else f"object more than {self.rules.drop_distance_m:g} m from its reference position")
            if verdict.lost:
                self._lost_reported = True
                self.bad_input(K.OBJECT_LOST, f"drop: {why}")
            else:
                self.get_logger().warning(f"drop: {why}")
            self.health.set_state(Level.WARN if verdict.lost else Level.OK,
                                  f"episode {judge.episodes} ended: {why}; waiting for the object in the hand")
        elif verdict.goal_timeout or verdict.task_done:
            why = "goal timeout" if verdict.goal_timeout else f"{judge.consecutive} consecutive successes: done"
            self.get_logger().info(f"episode {judge.episodes} ended: {why}")
            self.health.set_state(Level.OK, f"episode {judge.episodes} ended: {why}; waiting for the next one")
        if verdict.judged or verdict.episode_over or verdict.episode_started:
            self._publish(self.metrics_pub, judge, "task")

    def check_timeouts(self) -> None:
        """Between poses: the object lost (no pose for lost_timeout_s), the goal not reached in time."""
        with self._lock:
            if self._pose_clock is None:
                return
            stamp0, arrival = self._pose_clock
            stamp = stamp0 + int((time.monotonic() - arrival) * 1e9)   # "now" on the poses' clock
            self._handle(self.judge.check(stamp), stamp)
            if self.truth is not None and self.truth.check(stamp).episode_over:
                self._publish(self.truth_pub, self.truth, "task (truth)")

    def publish_metrics(self) -> None:
        with self._lock:
            self._publish(self.metrics_pub, self.judge, "task")
            if self.truth is not None:
                self._publish(self.truth_pub, self.truth, "task (truth)")

    def _publish(self, publisher, judge: TaskJudge, name: str) -> None:
        values = judge.metrics().key_values()
        msg = DiagnosticStatus(level=bytes([int(Level.OK)]), name=name,
                               message="running" if judge.running else "waiting for the object in the hand")
        msg.values = [KeyValue(key=k, value=v) for k, v in values]
        publisher.publish(msg)
        prefix = "truth " if judge is self.truth else ""
        for key, value in values:
            self.health.set_value(prefix + key, value)


def _describe(rules: TaskRules) -> str:
    return (f"success < {rules.success_threshold_rad:g} rad for {rules.success_hold_frames} frame(s), drop > "
            f"{rules.drop_distance_m:g} m or unseen {rules.lost_timeout_s:g} s, goal timeout "
            f"{rules.goal_timeout_s:g} s, {rules.max_consecutive_successes} successes per episode, "
            f"symmetry-aware {str(rules.symmetry_aware).lower()}")


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: GoalNode(), args)


if __name__ == "__main__":
    sys.exit(main())
