"""Live mode of sim_bridge_node: MuJoCo stands in for the camera and the hand driver.

The randomized simulation runs in real time (scaled by ``real_time_factor``).
Every policy period it publishes what the robot's sensors would (depth +
camera_info on the camera topics, the driver's joint feedback in the chosen
driver profile), takes the latest command the hand driver received (so the
whole graph, safety layer included, drives the simulated hand), steps the
physics and reports task metrics. Episodes restart automatically.

Goals (``goal_source``): ``sim`` (default) draws and judges them inside the
environment (its :class:`dexterity_ros.task.TaskJudge`) and publishes the goal
on ``goal/orientation`` and the judge's metrics on ``task/metrics``. ``topic``
takes the goal from ``goal/orientation`` instead (goal_node publishes it and
judges from the tracked pose): the environment then declares no success and
draws no goal, and after a drop it keeps showing the dropped object for
``drop_pause_s`` before its physics reset, so a camera-based judge sees the
drop too.

Camera faults (``fault_*`` parameters, switched at runtime with
``ros2 param set /sim_bridge fault_camera_pause true`` or the SetParameters
service) run every frame through :class:`dexterity_ros.sim.faults.FramePipeline`:
a paused camera, blank depth, late frames (original stamps) and swapped
frames, for the HIL scenarios (``dexterity-ros hil``).
"""
from __future__ import annotations

import json
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, QuaternionStamped, TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from . import conversions
from .. import topics
from ..config import ConfigError, to_dict
from ..camera_model import quantize_depth_mm
from ..diagnostics import Level
from ..diagnostic_keys import SimBridge as K, TaskMetrics as M
from ..hand.profiles import make_profile
from ..sim.faults import CameraFaults, FramePipeline
from .driver_endpoint import DriverEndpoint
from .common import qos_profile

# runtime fault parameter -> CameraFaults field
FAULT_PARAMETERS = {"fault_camera_pause": "camera_pause", "fault_blank_depth": "blank_depth",
                    "fault_frame_delay": "frame_delay_s", "fault_reorder_frames": "reorder_frames"}


def camera_faults(cfg) -> CameraFaults:
    return CameraFaults(**{field: getattr(cfg, name) for name, field in FAULT_PARAMETERS.items()})


class LiveSimulation:
    def __init__(self, node, cfg):
        from ..sim.env import ReorientEnv   # MuJoCo only when live mode is used
        from ..sim.sim_config import load_sim_config

        self.node = node
        self.cfg = cfg
        self.topic_goals = cfg.goal_source == "topic"
        sim_config = load_sim_config(cfg.sim_config or None)
        if cfg.object:
            sim_config = sim_config.with_overrides(objects=(cfg.object,))
        if not cfg.expert_config:       # hand_node's commands drive the hand: its own filter is in the loop
            sim_config = sim_config.with_overrides(hand_command__filter=False)
        self.env = ReorientEnv(sim_config, cfg.randomization_config or None, seed=cfg.seed,
                               external_goals=self.topic_goals)
        self.expert = None
        if cfg.expert_config:
            from ..learning.config import load_distill_config
            from ..learning.expert import make_expert
            self.expert = make_expert(load_distill_config(cfg.expert_config).expert)
            node.health.set_value(K.DRIVER, f"privileged expert ({cfg.expert_config}); hand commands ignored")
        self.profile = make_profile(cfg, self.env.hand)
        self.endpoint = DriverEndpoint(node, self.profile, self._on_command, self._on_protocol_error,
                                       self.env.hand, leap_positions=self._leap_positions)
        n = node
        self.depth_pub = n.create_publisher(Image, topics.DEPTH_IMAGE.name, qos_profile(topics.DEPTH_IMAGE))
        self.info_pub = n.create_publisher(CameraInfo, topics.DEPTH_INFO.name, qos_profile(topics.DEPTH_INFO))
        # goal_source topic: goal_node owns the goal and the task metrics; this node only follows the goal
        self.goal_pub = self.metrics_pub = None
        if self.topic_goals:
            n.create_subscription(QuaternionStamped, topics.GOAL.name, self._on_goal, qos_profile(topics.GOAL))
        else:
            self.goal_pub = n.create_publisher(QuaternionStamped, topics.GOAL.name, qos_profile(topics.GOAL))
            self.metrics_pub = n.create_publisher(DiagnosticStatus, topics.TASK_METRICS.name,
                                                  qos_profile(topics.TASK_METRICS))
        self.pose_pub = n.create_publisher(PoseStamped, topics.OBJECT_POSE.name, qos_profile(topics.OBJECT_POSE))
        self.twist_pub = n.create_publisher(TwistStamped, topics.OBJECT_TWIST.name, qos_profile(topics.OBJECT_TWIST))
        self.physics_pub = n.create_publisher(String, topics.PHYSICS_PARAMS.name, qos_profile(topics.PHYSICS_PARAMS))
        self.clock_pub = (n.create_publisher(Clock, topics.CLOCK.name, qos_profile(topics.CLOCK))
                          if cfg.publish_clock else None)
        self._lock = threading.Lock()
        self._command: np.ndarray | None = None
        self.commands_received = 0
        self.episodes = 0
        self.successes_total = 0
        self.drops = 0
        self._last_goal: np.ndarray | None = None
        self._topic_goal: np.ndarray | None = None      # goal_source topic: the latest goal received
        self._topic_goal_new = False
        self._feedback: tuple[np.ndarray, np.ndarray] | None = None   # latest measured (q, qd)
        # Camera frames (intrinsics, depth, stamp) pass the fault pipeline; one lock keeps publish order.
        self.frames: FramePipeline = FramePipeline(camera_faults(cfg))
        self._publish_lock = threading.Lock()
        self._frame_wakeup = threading.Event()
        self._report_faults()
        n.add_on_set_parameters_callback(self._on_set_parameters)
        # Like a real driver, feedback streams at its own rate, also while an episode resets.
        n.create_timer(1.0 / cfg.feedback_rate_hz, self._publish_feedback)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-sim", daemon=True)
        self._thread.start()
        self._late_thread = threading.Thread(target=self._publish_late_frames, name="late-frames", daemon=True)
        self._late_thread.start()
        n.get_logger().info(f"live simulation: {self.env.config.mount}, objects {list(self.env.config.objects)}, "
                            f"{1.0 / self.env.policy_period_s:.0f} Hz, driver profile '{self.profile.name}' "
                            f"(commands on {self.profile.command_topic.name}, feedback on "
                            f"{self.endpoint.describe_feedback()})")

    def _leap_positions(self) -> np.ndarray | None:
        """leap_position's answer: the latest measured positions in LEAP embodiment, driver order."""
        with self._lock:
            feedback = self._feedback
        return None if feedback is None else self.profile.encode_feedback(feedback[0])[1]

    # ------------------------------------------------------------- inputs
    def _on_command(self, target: np.ndarray) -> None:
        with self._lock:
            self._command = target
            self.commands_received += 1
        self.node.health.tick(K.HAND_COMMANDS)

    def _on_goal(self, msg: QuaternionStamped) -> None:
        """goal_source topic: the goal node's goal, applied before the next physics step."""
        frame = msg.header.frame_id
        q = conversions.quaternion_msg_to_wxyz(msg.quaternion)
        norm = float(np.linalg.norm(q))
        if frame not in ("", topics.PALM_FRAME) or not (np.isfinite(norm) and norm > 1e-6):
            self.node.bad_input(K.BAD_GOAL, f"goal ignored: frame '{frame}' (want '{topics.PALM_FRAME}'), "
                                f"quaternion {q.tolist()}")
            return
        with self._lock:
            self._topic_goal, self._topic_goal_new = q / norm, True
        self.node.health.count(K.GOALS_RECEIVED)

    def _apply_topic_goal(self, force: bool = False) -> None:
        with self._lock:
            goal, new = self._topic_goal, self._topic_goal_new
            self._topic_goal_new = False
        if goal is not None and (new or force):
            # goals are orientations up to the object's symmetry (goal_node draws them from the tracked pose,
            # which may be any equivalent of the true one): give the env the equivalent nearest the object's
            # true orientation, the one a planner that measures plain rotation (the expert) should aim for
            state = self.env.privileged_state()
            self.env.set_goal(_symmetry_of(state.object_name).closest_equivalent(goal, state.object_quaternion))

    def _on_protocol_error(self, message: str) -> None:
        self.node.bad_input(K.PROTOCOL_ERROR, f"{self.profile.name} command ignored: {message}", Level.ERROR)

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Fault switches take effect at once; they are validated like start-up parameters."""
        changes = {p.name: p.value for p in parameters if p.name in FAULT_PARAMETERS}
        if not changes:
            return SetParametersResult(successful=True)
        node = self.node
        try:
            merged = node.config_from_values(type(node.config), {**to_dict(node.config), **changes})
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        node.config = merged
        self.cfg = merged
        # under the publish lock: a frame pushed before the change but not yet published would otherwise
        # go out after this callback returned, i.e. after the fault was reported as applied (seen in HIL
        # camera_stop: one frame "published while the camera was paused")
        with self._publish_lock:
            self.frames.set_faults(camera_faults(merged))
        self._frame_wakeup.set()
        self._report_faults()
        node.get_logger().warning(f"camera faults changed: {changes} (active: "
                                  f"{', '.join(self.frames.faults.active()) or 'none'})")
        return SetParametersResult(successful=True)

    def _report_faults(self) -> None:
        active = self.frames.faults.active()
        self.node.health.set_value(K.CAMERA_FAULTS, ", ".join(active) if active else "none")
        if active:
            self.node.health.set_state(Level.WARN, f"fault injection active: {', '.join(active)}")
        else:
            self.node.health.set_state(Level.OK, "ok")

    # --------------------------------------------------------------- loop
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # keep the node alive and say why the simulation stopped
            if not self._stop.is_set():
                self.node.bad_input(K.SIMULATION_ERROR, f"live simulation stopped: {exc!r}", Level.ERROR)

    def _new_episode(self):
        obs = self.env.reset()
        state = self.env.privileged_state()
        with self._lock:
            self._command = None
        self._hold = state.joint_targets.copy()
        self.physics_pub.publish(String(data=json.dumps(state.physics_params, sort_keys=True)))
        self.episodes += 1
        if self.topic_goals:
            self._apply_topic_goal(force=True)        # the goal node's goal outlives the physics reset
        return obs

    def _loop(self) -> None:
        period = self.env.policy_period_s / max(self.cfg.real_time_factor, 1e-6)
        pause_steps = int(round(self.cfg.drop_pause_s / self.env.policy_period_s)) if self.topic_goals else 0
        paused = 0              # steps left showing a dropped object before the reset (goal_source topic)
        obs = self._new_episode()
        next_tick = time.monotonic()
        sim_ns = 0              # publish_clock: the simulated time, advancing one period per loop (pauses too)
        while not self._stop.is_set():
            if self.clock_pub is not None:
                # /clock first, then everything stamped with it: use_sim_time nodes (this one included) see
                # simulated time, so rates, timeouts and ages hold at any real_time_factor
                sim_ns += self.env.policy_period_ns
                self.clock_pub.publish(Clock(clock=conversions.ns_to_stamp(sim_ns)))
                stamp = sim_ns
            else:
                stamp = self.node.now_ns()
            self._publish_observation(obs, stamp)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                if self._stop.wait(delay):
                    return
            elif delay < -period:
                self.node.health.count(K.OVERRUNS)
                next_tick = time.monotonic()
            if paused:
                paused -= 1             # the dropped object stays where it fell, re-published each period
                if not paused:
                    obs = self._new_episode()
                continue
            if self.topic_goals:
                self._apply_topic_goal()
            if self.expert is not None:
                t_plan = time.perf_counter()
                target = self.expert.act(self.env)
                self.node.health.latency(K.EXPERT_PLAN, (time.perf_counter() - t_plan) * 1e3)
            else:
                with self._lock:
                    target = self._command if self._command is not None else self._hold
            t_step = time.perf_counter()
            result = self.env.step(target)
            self.node.health.latency(K.PHYSICS_STEP, (time.perf_counter() - t_step) * 1e3)
            self._publish_metrics(result.info, result.terminated or result.truncated)
            obs = result.observation
            if result.terminated or result.truncated:
                self.successes_total += int(result.info["consecutive_successes"])
                self.drops += int(result.info["dropped"])
                if result.info["dropped"] and pause_steps:
                    paused = pause_steps
                else:
                    obs = self._new_episode()

    def _publish_feedback(self, stamp: int | None = None) -> None:
        with self._lock:
            feedback = self._feedback
        if feedback is None:
            return
        names, positions, velocities = self.profile.encode_feedback(*feedback)
        self.endpoint.publish_feedback(names, positions, velocities, stamp or self.node.now_ns())

    def _publish_observation(self, obs, stamp: int) -> None:
        with self._lock:
            self._feedback = (np.asarray(obs.joint_positions), self.env.privileged_state().joint_velocities)
        self._publish_feedback(stamp)      # one feedback message carries exactly the frame's stamp
        goal = np.asarray(obs.goal_quaternion)
        if self.goal_pub is not None and (self._last_goal is None or not np.array_equal(goal, self._last_goal)):
            self.goal_pub.publish(conversions.goal_msg(goal, stamp, topics.PALM_FRAME))
            self._last_goal = goal.copy()
        if not obs.frame_dropped:
            t_render = time.perf_counter()
            frame = obs.render()
            self.node.health.latency(K.RENDER, (time.perf_counter() - t_render) * 1e3)
            if frame is not None:
                rendered = (frame.calibrated_intrinsics, quantize_depth_mm(frame.depth), stamp)
                with self._publish_lock:
                    for item in self.frames.push(rendered, time.monotonic(), blank=_blank_depth):
                        self._publish_frame(item)
                self._frame_wakeup.set()
        else:
            self.node.health.count(K.CAMERA_FRAMES_DROPPED)
        priv = self.env.privileged_state()
        pose = PoseStamped(header=conversions.make_header(stamp, topics.PALM_FRAME))
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in priv.object_position)
        pose.pose.orientation = conversions.wxyz_to_quaternion_msg(priv.object_quaternion)
        self.pose_pub.publish(pose)
        twist = TwistStamped(header=conversions.make_header(stamp, topics.PALM_FRAME))
        twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (float(v) for v in priv.object_linear_velocity)
        twist.twist.angular.x, twist.twist.angular.y, twist.twist.angular.z = (
            float(v) for v in priv.object_angular_velocity)
        self.twist_pub.publish(twist)

    def _publish_frame(self, item) -> None:
        intrinsics, depth, stamp = item
        self.info_pub.publish(conversions.intrinsics_to_camera_info(intrinsics, stamp, topics.CAMERA_FRAME))
        self.depth_pub.publish(conversions.depth_to_image(depth, stamp, topics.CAMERA_FRAME))
        self.node.health.tick(K.FRAMES)

    def _publish_late_frames(self) -> None:
        """Frames held back by ``fault_frame_delay`` go out here, at their due time."""
        while not self._stop.is_set():
            self._frame_wakeup.clear()          # before looking: a frame queued from now on wakes the wait
            due = self.frames.next_due_s()
            timeout = 0.1 if due is None else min(0.1, max(0.0, due - time.monotonic()))
            if timeout > 0:
                self._frame_wakeup.wait(timeout)
            with self._publish_lock:
                for item in self.frames.pop_due(time.monotonic()):
                    self._publish_frame(item)

    def _publish_metrics(self, info: dict, episode_over: bool) -> None:
        """The env's judge (the robot's rules) plus the simulator's own values; on task/metrics unless
        goal_source is topic (goal_node publishes there), always in /diagnostics."""
        values = dict(self.env.task_metrics().key_values())
        values.update({
            M.DROPPED: str(info["dropped"]).lower(),
            M.EPISODE: str(self.env.episode),
            M.EPISODE_STEP: str(info["episode_step"]),
            M.HAND_COMMANDS_RECEIVED: str(self.commands_received),
        })
        if self.metrics_pub is not None:
            level = Level.WARN if info["dropped"] else Level.OK
            msg = DiagnosticStatus(level=bytes([int(level)]), name="sim/task",
                                   message="episode over" if episode_over else "running")
            msg.values = [KeyValue(key=k, value=v) for k, v in values.items()]
            self.metrics_pub.publish(msg)
        for key, value in values.items():
            self.node.health.set_value(key, value)
        counters = self.frames.counters
        self.node.health.set_value(K.FRAMES_WITHHELD, counters.withheld)
        self.node.health.set_value(K.FRAMES_BLANK, counters.blanked)
        self.node.health.set_value(K.FRAMES_LATE, counters.delayed)
        self.node.health.set_value(K.FRAMES_REORDERED, counters.reordered)

    def close(self) -> None:
        self._stop.set()
        self._frame_wakeup.set()
        self._thread.join(timeout=5)
        self._late_thread.join(timeout=1)
        self.env.close()


def _blank_depth(item):
    """The frame as a camera that sees nothing sends it: every pixel 0 (no return)."""
    intrinsics, depth, stamp = item
    return intrinsics, np.zeros_like(depth), stamp


def _symmetry_of(object_name: str):
    """The tracking model's symmetry of a simulator object (none for an object without a model)."""
    from ..objects.models import ObjectModelError, load_object_model
    from ..objects.symmetry import parse_symmetry

    try:
        return load_object_model(object_name).symmetry
    except ObjectModelError:
        return parse_symmetry("none")
