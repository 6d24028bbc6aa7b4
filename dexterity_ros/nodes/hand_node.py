"""hand_node: policy joint targets -> safety-filtered commands for the Allegro hand driver.

A thin shell over :mod:`dexterity_ros.hand`: policy targets and driver
feedback are converted (by joint name) and handed to the pure
:class:`~dexterity_ros.hand.HandController`; a steady-clock timer asks it for
one command per period and publishes it in the chosen driver profile's
format. Starts DISABLED; ~/enable, ~/estop and ~/reset drive the state
machine, ~/home starts the watchdog's homing ramp at once; every state change
is logged and published on /diagnostics.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger

from ..ros import conversions
from .. import topics
from ..config import ConfigError, param
from ..realtime import RealtimeConfig
from ..diagnostic_keys import Hand as K
from ..diagnostics import Level
from ..hand import (COMMANDING, STATE_LEVEL, DriverProfileConfig, FeedbackDecoder, FeedbackMismatch, HandController,
                    HandState, JitterMeter, SafetyLimits, SafetyTables, TargetDecoder, WatchdogConfig,
                    load_safety_tables, make_profile)
from ..hand.driver_check import RobotDescriptionError, check_ros2_control_mapping
from ..hand.safety import PER_JOINT_TABLES, SCALAR_KEYS
from ..hand_model import default_hand
from ..ros.common import DexterityNode, qos_profile, run_node


@dataclass(frozen=True)
class HandNodeConfig(DriverProfileConfig, RealtimeConfig):
    """hand_node parameters, all read-only: a safety node changes behaviour only on restart.

    The driver-profile parameters (driver_profile, ros2_control_*, leap_feedback_topic) come from
    :class:`~dexterity_ros.hand.profiles.DriverProfileConfig`, shared with the driver stand-ins.
    """

    robot_description_check: Literal["require", "if_published", "off"] = param(
        "require", "ros2_control: compare the driver's /robot_description joint limits and finger origins with "
        "the finger-digit mapping before enabling: require (refuse to enable until it arrived and matches), "
        "if_published (check only if it arrives), off", read_only=True)
    leap_poll_hz: float = param(30.0, "leap: leap_position service polls per second (LEAP advises < 90)",
                                min=1.0, max=90.0, read_only=True)
    command_rate_hz: float = param(100.0, "commands per second sent to the driver (independent of the policy rate)",
                                   min=1.0, max=1000.0, read_only=True)
    target_timeout: float = param(0.2, "s without a policy target before HOLD (keep the last command)",
                                  min=0.001, read_only=True)
    home_timeout: float = param(5.0, "s without a policy target before ramping to the home pose",
                                min=0.01, read_only=True)
    feedback_timeout: float = param(0.25, "s without driver feedback before FAULT (commanding stops)",
                                    min=0.001, read_only=True)
    interpolation: Literal["linear", "none"] = param(
        "linear", "between policy targets: linear (over the measured policy period) or none (step, rate-limited)",
        read_only=True)
    limit_margin: float = param(0.03, "rad kept free at both ends of every joint (joint_margin.<joint> overrides)",
                                min=0.0, read_only=True)
    default_max_velocity: float = param(1.5, "rad/s speed limit of joints without max_velocity.<joint>",
                                        min=1e-3, read_only=True)
    velocity_scale: float = param(1.0, "multiplies every per-joint speed limit, (0, 1]", min=1e-3, max=1.0,
                                  read_only=True)
    home_velocity_scale: float = param(0.5, "homing speed as a fraction of the speed limits, (0, 1]",
                                       min=1e-3, max=1.0, read_only=True)
    smoothing: float = param(0.0, "EMA weight of the previous target before rate limiting, [0, 1)",
                             min=0.0, max=0.99, read_only=True)
    feedback_limit_tolerance: float = param(
        0.035, "rad a measured joint may read beyond its joint limit; further is a FAULT naming the joint "
        "(enable refused); a start within it is clamped to the limit and moves inwards", min=0.0, max=0.2,
        read_only=True)
    prompt_command: bool = param(True, "send a fresh policy target's first command at once instead of at the next "
                                 "tick (at most one extra command per period; saves up to one period of latency)",
                                 read_only=True)
    enable_on_start: bool = param(False, "enable automatically once driver feedback is valid (ramps from it)",
                                  read_only=True)
    publish_joint_states: bool = param(True, "publish the measured joint state (canonical names) on "
                                       "hand/joint_states", read_only=True)
    allow_extra_feedback_names: bool = param(
        False, "accept feedback that carries other joints too (e.g. an arm on /joint_states); missing or "
        "duplicated hand joints are still refused", read_only=True)


class HandNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("hand_node", HandNodeConfig, **kwargs)
        cfg: HandNodeConfig = self.config
        self.hand = default_hand()
        self.profile = make_profile(cfg, self.hand)
        limits = SafetyLimits.from_tables(self.declare_safety_tables(), self.hand, cfg.velocity_scale)
        self.reject_unknown_parameters()   # before anything talks to the driver
        period = 1.0 / cfg.command_rate_hz
        try:
            watchdog = WatchdogConfig(period, cfg.target_timeout, cfg.home_timeout, cfg.feedback_timeout,
                                      cfg.interpolation)
        except ValueError as exc:
            raise ConfigError(f"node 'hand_node' parameters: {exc}") from None
        self.controller = HandController(limits, watchdog)
        self.targets = TargetDecoder(self.hand)
        self.feedback_decoder = FeedbackDecoder(self.profile, cfg.allow_extra_feedback_names)
        self.jitter = JitterMeter(period)
        self._pending_target_stamp: int | None = None
        self._auto_enable_pending = cfg.enable_on_start
        self._feedback_messages = 0
        self._prompt_tick_used = False         # one prompt command per command period at most
        self._prompt_commands = 0
        self._supervisor_pid = self._supervisor_from_environment()

        # Driver side.
        cmd = self.profile.command_topic
        msg_type = JointState if self.profile.command_kind == "joint_state" else Float64MultiArray
        self.command_pub = self.create_publisher(msg_type, cmd.name, qos_profile(cmd))
        self._leap_client = None
        if self.profile.feedback_topic is not None:
            fb = self.profile.feedback_topic
            self.create_subscription(JointState, fb.name, self.on_feedback, qos_profile(fb))
        else:
            self._setup_leap_service()
        # Policy side.
        self.create_subscription(JointState, topics.JOINT_TARGETS.name, self.on_target,
                                 qos_profile(topics.JOINT_TARGETS))
        self.joint_state_pub = (self.create_publisher(JointState, topics.JOINT_STATES.name,
                                                      qos_profile(topics.JOINT_STATES))
                                if cfg.publish_joint_states else None)
        self._setup_robot_description_check()
        self.create_service(SetBool, "~/enable", self.on_enable)
        self.create_service(Trigger, "~/estop", self.on_estop)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.create_service(Trigger, "~/home", self.on_home)
        # Commands run on the steady clock: a paused or replayed /clock must not stop the watchdog.
        self.create_timer(period, self.on_command_timer, clock=Clock(clock_type=ClockType.STEADY_TIME))

        self.health.set_value(K.DRIVER_PROFILE, self.profile.name)
        self.health.set_value(K.COMMAND_TOPIC, cmd.name)
        self.health.set_value(K.FEEDBACK, self.profile.feedback_topic.name if self.profile.feedback_topic
                              else f"service {self.profile.feedback_service}")
        self._publish_state_health()
        self.get_logger().info(
            f"hand_node ready: profile {self.profile.name}, commands on '{cmd.name}' at {cfg.command_rate_hz:g} Hz, "
            f"state {self.controller.state.value}"
            + (" (enable_on_start: enabling once feedback is valid)" if cfg.enable_on_start else
               " (call ~/enable to start commanding)"))

    # -------------------------------------------------------- parameters
    def declare_safety_tables(self) -> SafetyTables:
        """Declare ``<table>.<joint>`` for every joint; defaults from the packaged config/hand.yaml."""
        cfg: HandNodeConfig = self.config
        packaged = load_safety_tables()
        fallback = {"joint_margin": cfg.limit_margin, "max_velocity": cfg.default_max_velocity}
        descriptions = {"joint_margin": "rad kept free at both ends of joint {j}",
                        "max_velocity": "rad/s speed limit of joint {j}",
                        "home_pose": "rad, home position of joint {j}"}
        flat = {k: getattr(cfg, k) for k in SCALAR_KEYS}
        for table in PER_JOINT_TABLES:
            defaults = getattr(packaged, table)
            for joint in self.hand.joint_names:
                default = float(defaults.get(joint, fallback.get(table, 0.0)))
                descriptor = ParameterDescriptor(description=descriptions[table].format(j=joint), read_only=True)
                value = self.declare_typed_parameter(f"{table}.{joint}", default, descriptor)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"node 'hand_node' parameter '{table}.{joint}' must be a number, got {value!r}")
                flat[f"{table}.{joint}"] = float(value)
        return SafetyTables.from_parameters(flat)

    # ------------------------------------------------ start-up checks
    def _setup_robot_description_check(self) -> None:
        """ros2_control: the driver's URDF limits must fit the finger-digit mapping before enabling."""
        mode = self.config.robot_description_check
        if self.profile.name != "ros2_control" or mode == "off":
            return
        topic = topics.ROS2_CONTROL_ROBOT_DESCRIPTION
        if mode == "require":
            self.controller.set_enable_blocker(
                "robot_description", f"no robot_description from the driver on '{topic.name}' yet (needed to "
                "check ros2_control_finger_digits; set robot_description_check: if_published or off to skip)",
                time.monotonic())
        self.create_subscription(String, topic.name, self.on_robot_description, qos_profile(topic))
        self.health.set_value(K.FINGER_DIGIT_CHECK, f"waiting for {topic.name} ({mode})")

    def on_robot_description(self, msg: String) -> None:
        t = time.monotonic()
        try:
            verdict = check_ros2_control_mapping(self.profile, self.hand, msg.data)
            problem = verdict.problem
        except RobotDescriptionError as exc:
            problem = f"cannot check ros2_control_finger_digits: {exc}"
        self.controller.set_enable_blocker("robot_description", problem, t)
        if problem:
            self.bad_input(K.FINGER_DIGIT_CHECK, problem, Level.ERROR)
            self.health.set_value(K.FINGER_DIGIT_CHECK, "MISMATCH: enabling is refused")
        else:
            self.health.set_value(K.FINGER_DIGIT_CHECK, f"ok ({verdict.compared} joints match the driver's "
                                  "robot_description)")
            self.get_logger().info("ros2_control finger-digit mapping matches the driver's robot_description")
        self._after_state_change()

    @staticmethod
    def _supervisor_from_environment() -> int | None:
        """The launcher's pid (DEXTERITY_SUPERVISOR_PID), if it started us and is still our parent."""
        value = os.environ.get("DEXTERITY_SUPERVISOR_PID", "")
        try:
            pid = int(value)
        except ValueError:
            return None
        return pid if pid > 1 else None

    def _supervisor_gone(self) -> str | None:
        if self._supervisor_pid is None or os.getppid() == self._supervisor_pid:
            return None
        return f"supervisor (launcher pid {self._supervisor_pid}) is gone"

    # ---------------------------------------------------------- feedback
    def _setup_leap_service(self) -> None:
        try:
            from leap_hand.srv import LeapPosition  # the LEAP node's interface package (LEAP_Hand_API)
        except ImportError:
            self.health.set_state(Level.ERROR, "leap profile: leap_hand/srv/LeapPosition is not installed, "
                                  "so there is no feedback; build LEAP_Hand_API's ros2_module or set "
                                  "leap_feedback_topic")
            self.get_logger().error("leap profile without feedback: leap_hand interface package not found "
                                    "(set leap_feedback_topic or install leap_hand); enable will be refused")
            return
        self._leap_request = LeapPosition.Request()
        self._leap_client = self.create_client(LeapPosition, self.profile.feedback_service)
        self._leap_pending = None
        self.create_timer(1.0 / self.config.leap_poll_hz, self._poll_leap)

    def _poll_leap(self) -> None:
        if self._leap_pending is not None and not self._leap_pending.done():
            return
        if not self._leap_client.service_is_ready():
            return
        self._leap_pending = self._leap_client.call_async(self._leap_request)
        self._leap_pending.add_done_callback(self._on_leap_response)

    def _on_leap_response(self, future) -> None:
        try:
            response = future.result()
        except Exception as exc:  # noqa: BLE001 - a failed poll is missing feedback, not a crash
            self.bad_input(K.BAD_FEEDBACK, f"leap_position call failed: {exc!r}", Level.ERROR)
            return
        if response is None:
            return
        positions = np.asarray(response.position, dtype=np.float64)
        if not np.all(np.isfinite(positions)):
            self.bad_input(K.BAD_FEEDBACK, "leap_position returned NaN/inf", Level.ERROR)
            return
        self._handle_feedback([], positions, None, self.now_ns())

    def on_feedback(self, msg: JointState) -> None:
        try:
            if self.profile.feedback_kind == "positional":   # LEAP: by index, names optional
                names, positions = [], np.asarray(msg.position, dtype=np.float64)
                if not np.all(np.isfinite(positions)):
                    raise conversions.MessageError("JointState positions contain NaN or inf")
            else:
                names, positions = conversions.joint_state_to_arrays(msg)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_FEEDBACK, f"driver feedback rejected: {exc}", Level.ERROR)
            return
        stamp = conversions.stamp_to_ns(msg.header.stamp) or self.now_ns()
        self._handle_feedback(names, positions, conversions.joint_state_velocities(msg), stamp)

    def _handle_feedback(self, names, positions, velocities, stamp_ns: int) -> None:
        t = time.monotonic()
        try:
            decoded = self.feedback_decoder.decode(names, positions, velocities)
        except FeedbackMismatch as exc:
            self.controller.feedback_mismatch(str(exc), t)
            self.bad_input(K.FEEDBACK_NAME_MISMATCH, f"{exc}: enabling is refused", Level.ERROR)
            self._after_state_change()
            return
        self.controller.feedback(decoded.positions, t)
        implausible = self.controller.feedback_problem(t)
        if implausible:
            self.bad_input(K.IMPLAUSIBLE_FEEDBACK, f"{implausible}: enabling is refused", Level.ERROR)
            self._after_state_change()
        self._feedback_messages += 1
        self.health.tick(K.DRIVER_FEEDBACK)
        if self.joint_state_pub is not None:
            self.joint_state_pub.publish(conversions.arrays_to_joint_state(
                self.hand.joint_names, decoded.positions, stamp_ns, decoded.velocities))

    # ------------------------------------------------------------ policy
    def on_target(self, msg: JointState) -> None:
        t = time.monotonic()
        self.health.tick(K.POLICY_TARGETS)
        try:
            q = self.targets.decode(msg.name, msg.position)
        except (FeedbackMismatch, ValueError) as exc:
            self.controller.counters.targets_rejected += 1
            self.bad_input(K.TARGET_REJECTED, f"policy target rejected: {exc}")
            return
        verdict = self.controller.target(q, t)
        if not verdict.accepted:
            self.bad_input(K.TARGET_REJECTED, f"policy target rejected: {verdict.message}")
            return
        # the target's stamp is the depth frame it came from: measure frame -> first command
        self._pending_target_stamp = conversions.stamp_to_ns(msg.header.stamp) or None
        if self.config.prompt_command and self.controller.state in COMMANDING and not self._prompt_tick_used:
            # its first command leaves now, not at the next tick (at most one extra command per period)
            self._prompt_tick_used = True
            self._prompt_commands += 1
            self._tick(t, prompt=True)

    # ---------------------------------------------------------- services
    def on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        t = time.monotonic()
        ok, message = self.controller.enable(t) if request.data else self.controller.disable(t)
        self._auto_enable_pending = False
        response.success, response.message = ok, message
        if ok:
            self.get_logger().info(f"~/enable({request.data}): {message}")
        else:
            self.get_logger().error(f"~/enable({request.data}): {message}")
        self._after_state_change()
        return response

    def on_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.controller.estop(time.monotonic())
        self._auto_enable_pending = False
        self._after_state_change()
        return response

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.controller.reset(time.monotonic())
        self.get_logger().info(f"~/reset: {response.message}")
        self._after_state_change()
        return response

    def on_home(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._start_homing(time.monotonic())
        if response.success:
            self.get_logger().info(f"~/home: {response.message}")
        else:
            self.get_logger().warning(f"~/home: {response.message}")
        self._after_state_change()
        return response

    def _start_homing(self, t: float) -> tuple[bool, str]:
        """~/home: the controller's HOMING now (HandController.home says when it is refused)."""
        return self.controller.home(t)

    # ------------------------------------------------------------- timer
    def on_command_timer(self) -> None:
        t = time.monotonic()
        self.jitter.add(t)
        self._prompt_tick_used = False
        gone = self._supervisor_gone()
        if gone:
            self._stop_for_lost_supervisor(t, gone)
            return
        if self._auto_enable_pending and self.controller.state is HandState.DISABLED:
            problem = self.controller.feedback_problem(t)
            if problem is None:
                ok, message = self.controller.enable(t)
                self._auto_enable_pending = not ok
                self.get_logger().info(f"enable_on_start: {message}")
            else:
                self.log_throttled("auto enable", Level.WARN, f"enable_on_start waiting: {problem}", 5.0)
        self._tick(t)

    def _tick(self, t: float, prompt: bool = False) -> None:
        out = self.controller.tick(t, prompt=prompt)
        if out.command is not None:
            self._send(out.command)
            self.health.tick(K.COMMANDS)
            if self._pending_target_stamp is not None:
                self.health.latency(K.TARGET_TO_COMMAND, (self.now_ns() - self._pending_target_stamp) * 1e-6)
                self._pending_target_stamp = None
        self._after_state_change()

    def _stop_for_lost_supervisor(self, t: float, why: str) -> None:
        """HOLD (the last command once more), DISABLED, then leave: nobody can stop us any more."""
        hold = self.controller.supervisor_lost(t, why)
        if hold is not None:
            self._send(hold)
        self._after_state_change()
        self.get_logger().error(f"{why}: hand disabled, hand_node exits")
        self.context.try_shutdown()

    def _send(self, command: np.ndarray) -> None:
        values = self.profile.command_values(command)
        if self.profile.command_kind == "joint_state":
            msg = conversions.arrays_to_joint_state(self.profile.command_names, values, self.now_ns())
        else:
            msg = conversions.array_to_float64_multi_array(values)
        self.command_pub.publish(msg)

    # ------------------------------------------------------- diagnostics
    def _after_state_change(self) -> None:
        transitions = self.controller.drain_transitions()
        if not transitions:
            return
        logger = self.get_logger()
        for tr in transitions:   # one call site per severity (rclpy requires it)
            if tr.level >= Level.ERROR:
                logger.error(tr.describe())
            elif tr.level == Level.WARN:
                logger.warning(tr.describe())
            else:
                logger.info(tr.describe())
        self.publish_diagnostics()

    def _publish_state_health(self) -> None:
        c = self.controller
        state = c.state
        level = STATE_LEVEL[state]
        message = f"{state.value}: {c.state_reason}"
        if state is HandState.DISABLED:
            problem = c.feedback_problem(time.monotonic())
            if problem:
                level, message = (Level.ERROR if c.feedback_untrusted else Level.WARN), f"DISABLED: {problem}"
            elif c.enable_blockers:
                level, message = Level.WARN, "DISABLED: enable refused: " + "; ".join(c.enable_blockers)
        if self.profile.feedback_topic is None and self._leap_client is None:
            level, message = Level.ERROR, f"{state.value}: leap feedback unavailable (leap_hand interface missing)"
        self.health.set_state(level, message)
        counters = c.counters
        self.health.set_value(K.STATE, state.value)
        self.health.set_value(K.STATE_REASON, c.state_reason)
        self.health.set_value(K.COMMANDS_SENT, counters.commands_sent)
        self.health.set_value(K.TARGETS_ACCEPTED, counters.targets_accepted)
        self.health.set_value(K.TARGETS_REJECTED, counters.targets_rejected)
        self.health.set_value(K.CLAMPS, counters.clamps)
        self.health.set_value(K.RATE_LIMITS_HIT, counters.rate_limits_hit)
        self.health.set_value(K.WATCHDOG_TRIPS, counters.watchdog_trips)
        self.health.set_value(K.LATE_TICKS, counters.late_ticks)
        self.health.set_value(K.PROMPT_COMMANDS, self._prompt_commands)
        self.health.set_value(K.LIMIT_VIOLATIONS, counters.limit_violations)
        self.health.set_value(K.ESTOPS, counters.estops)
        self.health.set_value(K.FEEDBACK_MESSAGES, self._feedback_messages)
        jitter = self.jitter.summary_ms()
        self.health.set_value(K.COMMAND_TIMER_RATE, f"{jitter['rate_hz']:.1f}")
        self.health.set_value(K.COMMAND_JITTER_P50, f"{jitter['p50']:.3f}")
        self.health.set_value(K.COMMAND_JITTER_P99, f"{jitter['p99']:.3f}")
        self.health.set_value(K.COMMAND_JITTER_MAX, f"{jitter['max']:.3f}")
        if c.last_violation:
            self.health.set_value(K.LAST_LIMIT_VIOLATION, c.last_violation)

    def publish_diagnostics(self) -> None:
        self._publish_state_health()
        super().publish_diagnostics()


def main(args=None):
    return run_node(lambda: HandNode(), args)


if __name__ == "__main__":
    sys.exit(main())
