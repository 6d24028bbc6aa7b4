"""Graph tests: hand_node against allegro_emulator_node, real processes over real DDS.

Each rig runs the emulator and hand_node in their own namespace; the test
probe sends policy targets, calls ~/enable, ~/estop and ~/reset, switches
emulator faults through its parameters, and reads the commands and
/diagnostics like an operator would.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from dexterity_ros import topics
from dexterity_ros.ros.conversions import stamp_to_ns
from dexterity_ros.diagnostic_keys import Emulator, Hand
from dexterity_ros.hand import DriverProfileConfig, SafetyLimits, load_safety_tables, make_profile
from dexterity_ros.hand_model import default_hand
from dexterity_ros.ros.common import qos_profile
from ros_harness import ROOT, NodeProcess, RosProbe

HAND = default_hand()
LIMITS = SafetyLimits.from_tables(load_safety_tables(), HAND)
RATE_HZ = 100.0
PERIOD = 1.0 / RATE_HZ
TARGET_TIMEOUT = 0.3
HOME_TIMEOUT = 1.5
FEEDBACK_TIMEOUT = 1.0          # generous: a starved test machine must not look like a dead driver
HAND_PARAMS = {"command_rate_hz": RATE_HZ, "target_timeout": TARGET_TIMEOUT, "home_timeout": HOME_TIMEOUT,
               "feedback_timeout": FEEDBACK_TIMEOUT}


class Rig:
    """Emulator + hand_node in namespace ``ns``, observed by one probe."""

    def __init__(self, probe: RosProbe, ns: str, protocol: str, hand_params: dict, emulator_params: dict):
        self.probe, self.ns, self.protocol = probe, ns, protocol
        remaps = {"__ns": ns}
        self.emulator = NodeProcess("allegro_emulator_node", params={"driver_profile": protocol, "time_constant": 0.03,
                                                                    "rate_hz": RATE_HZ, **emulator_params},
                                    remaps=remaps)
        self.hand = NodeProcess("hand_node", params={"driver_profile": protocol, **HAND_PARAMS, **hand_params},
                                remaps=remaps)
        digits = hand_params.get("ros2_control_finger_digits", ["ff", "mf", "rf", "th"])
        self.profile = make_profile(DriverProfileConfig(protocol, digits, hand_params.get("ros2_control_joint_names", ()),
                                                        hand_params.get("leap_feedback_topic", "")), HAND)
        cmd = self.profile.command_topic
        cmd_type = JointState if self.profile.command_kind == "joint_state" else Float64MultiArray
        # A deep reader queue: the probe must see every command, even on a loaded machine.
        self.commands = probe.subscribe(cmd_type, self.name(cmd.name), qos_profile(cmd, depth=1000),
                                        key=f"{ns} cmd", stamp=True)
        self.joint_states = probe.subscribe(JointState, self.name(topics.JOINT_STATES.name),
                                            qos_profile(topics.JOINT_STATES), key=f"{ns} joint_states")
        self.diagnostics = probe.received["/diagnostics"]
        self.targets = probe.publisher(JointState, self.name(topics.JOINT_TARGETS.name),
                                       qos_profile(topics.JOINT_TARGETS))

    def name(self, topic: str) -> str:
        return topic if topic.startswith("/") else f"{self.ns}/{topic}"

    # ------------------------------------------------------------ reading
    def status(self, node: str = "hand_node"):
        """(level, message, key values) of the newest /diagnostics status of ``node``, or None."""
        full = f"dexterity_ros: {self.ns}/{node}"
        for array in reversed(list(self.diagnostics)):
            for s in array.status:
                if s.name == full:
                    return s.level[0], s.message, {kv.key: kv.value for kv in s.values}
        return None

    def wait_state(self, *states: str, timeout: float = 5.0) -> bool:
        def ok():
            st = self.status()
            return st is not None and st[2].get(Hand.STATE) in states
        return self.probe.wait_for(ok, timeout)

    def command_positions(self, since: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(receive times, canonical commands, sender stamps in s or None) of commands received after ``since``."""
        rows = [(t, m) for t, m in list(self.commands) if t >= since]
        times = np.array([t for t, _ in rows])
        joint_state = self.profile.command_kind == "joint_state"
        values = [np.asarray(m.position if joint_state else m.data) for _, m in rows]
        q = np.array([self.profile.command_to_canonical(v) for v in values]) if values else np.zeros((0, 16))
        stamps = np.array([stamp_to_ns(m.header.stamp) * 1e-9 for _, m in rows]) if joint_state else None
        return times, q, stamps

    def measured(self) -> np.ndarray | None:
        if not self.joint_states:
            return None
        msg = self.joint_states[-1]
        return HAND.to_canonical(msg.name, msg.position)

    # ------------------------------------------------------------ acting
    def enable(self, value: bool = True):
        return self.probe.call(SetBool, f"{self.ns}/hand_node/enable", SetBool.Request(data=value))

    def trigger(self, service: str):
        return self.probe.call(Trigger, f"{self.ns}/hand_node/{service}", Trigger.Request())

    def set_emulator(self, **values) -> None:
        request = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        response = self.probe.call(SetParameters, f"{self.ns}/allegro_emulator/set_parameters", request)
        assert all(r.successful for r in response.results), response

    def send_target(self, q: np.ndarray, names=None) -> None:
        msg = JointState()
        msg.name = list(names if names is not None else HAND.joint_names)
        msg.position = [float(v) for v in q]
        self.targets.publish(msg)

    def stream_targets(self, trajectory, duration: float, rate_hz: float = 20.0) -> float:
        """Publish trajectory(t) at rate_hz for duration seconds; returns the last send time."""
        t0 = time.monotonic()
        last = t0
        while time.monotonic() - t0 < duration:
            last = time.monotonic()
            self.send_target(trajectory(last - t0))
            time.sleep(1.0 / rate_hz)
        return last

    def enable_eventually(self, timeout: float = 3.0) -> bool:
        """Enable once the feedback is valid again (services are not callable inside probe.wait_for)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.enable(True).success:
                return True
            time.sleep(0.1)
        return False

    def ensure_enabled(self) -> None:
        st = self.status()
        if st is not None and st[2].get(Hand.STATE) in ("FAULT", "ESTOP"):
            self.trigger("reset")
        response = self.enable(True)
        assert response.success, response.message
        assert self.wait_state("HOLD", "ACTIVE", "HOMING")

    def stop(self) -> None:
        self.hand.stop()
        self.emulator.stop()

    def logs(self) -> str:
        return f"--- hand_node ---\n{self.hand.output}\n--- emulator ---\n{self.emulator.output}"


@pytest.fixture(scope="module")
def probe():
    p = RosProbe("hand_graph_probe")
    p.subscribe(DiagnosticArray, "/diagnostics", qos_profile(topics.DIAGNOSTICS), key="/diagnostics")
    yield p
    p.close()


def _start(probe, *args) -> Rig:
    rig = Rig(probe, *args)
    ready = probe.wait_for(lambda: len(rig.joint_states) > 3 and rig.status() is not None, 20.0)
    assert ready, rig.logs()
    return rig


def _assert_safe(commands: np.ndarray, stamps: np.ndarray | None = None) -> None:
    """Commands inside the margin box; each step at most vmax * period.

    With sender stamps, a gap (a command the probe missed, or a pause while
    disabled) allows vmax times the elapsed time instead.
    """
    assert np.all(commands >= LIMITS.lower - 1e-9) and np.all(commands <= LIMITS.upper + 1e-9)
    steps = np.abs(np.diff(commands, axis=0))
    elapsed = np.full(len(steps), PERIOD) if stamps is None else np.maximum(PERIOD, np.diff(stamps) + 0.002)
    allowed = LIMITS.max_velocity[None, :] * elapsed[:, None] * (1 + 1e-6) + 1e-9
    assert np.all(steps <= allowed), (steps / allowed).max(axis=0)


# ------------------------------------------------------------ allegro_v4
@pytest.fixture(scope="class")
def v4(probe):
    rig = _start(probe, "/hv4", "allegro_v4", {}, {})
    yield rig
    rig.stop()


class TestAllegroV4:
    @pytest.fixture
    def rig(self, v4):
        return v4

    def test_starts_disabled_then_enable_ramps_from_measured(self, rig):
        level, message, values = rig.status()
        assert values[Hand.STATE] == "DISABLED" and "enable" in message
        time.sleep(0.3)
        assert len(rig.commands) == 0                     # DISABLED: nothing commanded
        measured = rig.measured()
        response = rig.enable(True)
        assert response.success, response.message
        assert rig.probe.wait_for(lambda: len(rig.commands) > 10, 5.0), rig.logs()
        _, q, _ = rig.command_positions()
        assert np.all(np.abs(q[0] - measured) <= LIMITS.max_velocity * PERIOD + 1e-6)
        names = rig.commands[0][1].name
        assert list(names) == [f"joint_{k}.0" for k in range(16)]
        assert len(rig.commands[0][1].effort) == 0       # position OR effort, never both

    def test_tracks_targets_then_holds_then_homes(self, rig):
        rig.ensure_enabled()
        base = LIMITS.home.copy()
        amplitude = np.where(np.arange(16) % 4 == 0, 0.1, 0.3)

        def wave(t):
            return base + amplitude * np.sin(2.0 * t)

        assert rig.wait_state("HOLD", "ACTIVE")
        last_sent = rig.stream_targets(wave, 1.2)
        assert rig.wait_state("HOLD", "HOMING", timeout=3.0), rig.logs()
        times, q, _ = rig.command_positions(since=last_sent - 0.5)
        changing = times[1:][np.any(np.abs(np.diff(q, axis=0)) > 1e-12, axis=1)]
        assert changing.size, "commands did not follow the targets"
        # HOLD engaged within target_timeout + one period (+ delivery slack on a loaded machine).
        assert changing[-1] - last_sent <= TARGET_TIMEOUT + PERIOD + 0.25
        assert rig.wait_state("HOMING", timeout=HOME_TIMEOUT + 2.0), rig.logs()
        assert rig.probe.wait_for(lambda: np.allclose(rig.measured(), LIMITS.home, atol=0.02), 5.0)
        _, all_q, stamps = rig.command_positions()
        _assert_safe(all_q, stamps)
        values = rig.status()[2]
        assert int(values[Hand.WATCHDOG_TRIPS]) >= 2 and values[Hand.LIMIT_VIOLATIONS] == "0"

    def test_estop_latches_until_reset(self, rig):
        rig.ensure_enabled()
        response = rig.trigger("estop")
        assert response.success and "ESTOP" in response.message
        assert rig.wait_state("ESTOP")
        level, message, _ = rig.status()
        assert level == 2 and "emergency stop" in message
        time.sleep(0.1)
        count = len(rig.commands)
        time.sleep(0.4)
        assert len(rig.commands) == count                 # nothing commanded while latched
        refused = rig.enable(True)
        assert not refused.success and "reset" in refused.message
        assert rig.trigger("reset").success
        assert rig.wait_state("DISABLED")
        assert rig.enable(True).success
        assert rig.probe.wait_for(lambda: len(rig.commands) > count + 5, 3.0)

    def test_feedback_loss_faults_and_stops_commanding(self, rig):
        rig.ensure_enabled()
        rig.set_emulator(fault_stop_feedback=True)
        try:
            assert rig.wait_state("FAULT", timeout=FEEDBACK_TIMEOUT + 3.0), rig.logs()
            level, message, _ = rig.status()
            assert level == 2 and "no feedback" in message
            time.sleep(0.1)
            count = len(rig.commands)
            time.sleep(0.4)
            assert len(rig.commands) == count
        finally:
            rig.set_emulator(fault_stop_feedback=False)
        assert not rig.enable(True).success              # FAULT is latched
        assert rig.trigger("reset").success
        assert rig.enable_eventually()

    def test_feedback_name_mismatch_refuses_enable_listing_differences(self, rig):
        assert rig.enable(False).success
        rig.set_emulator(fault_rename_joint=HAND.joint_index("thj3"))
        try:
            assert rig.probe.wait_for(lambda: "do not match" in (rig.status() or (0, ""))[1], 3.0), rig.logs()
            response = rig.enable(True)
            assert not response.success
            assert "joint_15.0 (thj3)" in response.message and "joint_15.0_renamed" in response.message
            level, message, values = rig.status()
            assert level == 2 and values[Hand.STATE] == "DISABLED"
        finally:
            rig.set_emulator(fault_rename_joint=-1)
        assert rig.enable_eventually()

    def test_reordered_feedback_names_are_mapped_by_name(self, rig):
        rig.ensure_enabled()
        raw = rig.probe.subscribe(JointState, rig.name(topics.ALLEGRO_V4_FEEDBACK.name),
                                  qos_profile(topics.ALLEGRO_V4_FEEDBACK), key="raw v4 feedback")
        rig.set_emulator(fault_reorder_names=True)
        try:
            assert rig.probe.wait_for(lambda: len(raw) > 5 and raw[-1].name[0] == "joint_15.0", 3.0)
            time.sleep(0.3)
            driver = raw[-1]
            expected = dict(zip(driver.name, driver.position))
            ours = rig.joint_states[-1]
            assert list(ours.name) == list(HAND.joint_names)
            for name, value in zip(ours.name, ours.position):
                assert value == pytest.approx(expected[rig.profile.driver_name(name)], abs=0.02)
            assert rig.status()[2][Hand.STATE] in ("HOLD", "ACTIVE", "HOMING")
        finally:
            rig.set_emulator(fault_reorder_names=False)

    def test_garbage_targets_never_leave_the_limits(self, rig):
        rig.ensure_enabled()
        since = time.monotonic()
        good = list(HAND.joint_names)
        rng = np.random.default_rng(7)
        for k in range(60):
            q = LIMITS.home + rng.normal(0, 2.0, 16)          # mostly out of range
            if k % 6 == 1:
                q[3] = np.nan
            if k % 6 == 2:
                q[5] = np.inf
            if k % 6 == 3:
                q = q * 1e9
            names = good if k % 6 != 4 else good[:-1] + ["wrist"]
            if k % 6 == 5:
                names = good[::-1]                              # reordered: valid
            rig.send_target(q[: len(names)], names)
            if k % 10 != 0:                                     # bursts with pauses in between
                time.sleep(0.02)
        time.sleep(0.5)
        assert rig.hand.alive() and rig.emulator.alive()
        rig.hand_diag_fresh = rig.probe.wait_for(lambda: int(rig.status()[2][Hand.TARGETS_REJECTED]) >= 30, 3.0)
        assert rig.hand_diag_fresh, rig.status()
        values = rig.status()[2]
        assert values[Hand.LIMIT_VIOLATIONS] == "0" and int(values[Hand.CLAMPS]) > 0
        _, q, stamps = rig.command_positions(since=since)
        _assert_safe(q, stamps)
        emulator = rig.status("allegro_emulator")
        assert emulator is not None and emulator[2][Emulator.COMMANDS_OUTSIDE_LIMITS] == "0"


# ---------------------------------------------------------- ros2_control
CONTROLLER_ORDER = ["ah_joint33", "ah_joint32", "ah_joint31", "ah_joint30", "ah_joint00", "ah_joint01",
                    "ah_joint02", "ah_joint03", "ah_joint10", "ah_joint11", "ah_joint12", "ah_joint13",
                    "ah_joint20", "ah_joint21", "ah_joint22", "ah_joint23"]
DIGITS = ["th", "ff", "mf", "rf"]


@pytest.fixture(scope="class")
def rc(probe):
    common = {"ros2_control_finger_digits": DIGITS, "ros2_control_joint_names": CONTROLLER_ORDER}
    rig = _start(probe, "/hrc", "ros2_control", {**common, "enable_on_start": True}, common)
    yield rig
    rig.stop()


class TestRos2Control:
    @pytest.fixture
    def rig(self, rc):
        return rc

    def test_enables_on_start_and_tracks_targets_end_to_end(self, rig):
        assert rig.wait_state("HOLD", "ACTIVE", "HOMING", timeout=5.0), rig.logs()    # no ~/enable call
        raw = rig.probe.subscribe(JointState, "/joint_states", qos_profile(topics.ROS2_CONTROL_FEEDBACK),
                                  key="raw ros2_control feedback")
        goal = LIMITS.home + np.where(np.arange(16) % 4 == 0, 0.05, 0.25)
        rig.stream_targets(lambda t: goal, 1.5)
        assert rig.probe.wait_for(lambda: np.allclose(rig.measured(), goal, atol=0.02), 3.0), rig.logs()
        _, q, stamps = rig.command_positions()
        _assert_safe(q, stamps)
        np.testing.assert_allclose(q[-1], goal, atol=1e-6)
        msg = rig.commands[-1][1]
        assert len(msg.data) == 16
        # Slot 0 of the controller is ah_joint33 = digit 3 (ring), joint 3.
        assert msg.data[0] == pytest.approx(goal[HAND.joint_index("rfj3")])
        assert msg.data[4] == pytest.approx(goal[HAND.joint_index("thj0")])
        assert rig.probe.wait_for(lambda: len(raw) > 0, 3.0)
        assert sorted(raw[-1].name) == sorted(CONTROLLER_ORDER)
        values = rig.status()[2]
        assert values[Hand.LIMIT_VIOLATIONS] == "0" and values[Hand.DRIVER_PROFILE] == "ros2_control"


# ------------------------------------------------------------------ leap
@pytest.fixture(scope="class")
def leap(probe):
    rig = _start(probe, "/hlp", "leap", {"enable_on_start": True, "leap_feedback_topic": "leap_joint_states"},
                 {"leap_feedback_topic": "leap_joint_states"})
    yield rig
    rig.stop()


class TestLeap:
    @pytest.fixture
    def rig(self, leap):
        return leap

    def test_positional_commands_and_embodiment_offset(self, rig):
        assert rig.wait_state("HOLD", "ACTIVE", "HOMING", timeout=5.0), rig.logs()
        np.testing.assert_allclose(rig.measured(), LIMITS.home, atol=1e-6)   # offset removed
        goal = LIMITS.home + 0.1
        rig.stream_targets(lambda t: goal, 1.0)
        assert rig.probe.wait_for(lambda: np.allclose(rig.measured(), goal, atol=0.02), 3.0), rig.logs()
        msg = rig.commands[-1][1]
        assert msg.position[15] == pytest.approx(goal[HAND.joint_index("thj3")])   # thumb DIP = index 15
        _, q, stamps = rig.command_positions()
        _assert_safe(q, stamps)


# ------------------------------------------------------------ parameters
def _run_hand_node(*ros_args: str, stop_on: str | None = None, timeout: float = 15.0) -> tuple[int | None, str]:
    """Run hand_node with ``ros_args`` until it exits, or until it prints ``stop_on`` (then SIGINT)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "dexterity_ros.nodes.hand_node", "--ros-args", *ros_args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(ROOT))
    lines: list[str] = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if stop_on is not None and stop_on in line:
                proc.send_signal(signal.SIGINT)
        proc.wait()
    finally:
        timer.cancel()
    return proc.returncode, "".join(lines)


def test_packaged_parameter_file_starts_the_node_and_typos_are_refused():
    params = str(ROOT / "config" / "hand.yaml")
    code, out = _run_hand_node("-r", "__node:=hand", "-r", "__ns:=/hpf", "--params-file", params,
                               "-p", "max_velocity.thj3:=0.5", stop_on="hand_node ready")
    assert "hand_node ready: profile allegro_v4" in out, out
    code, out = _run_hand_node("-r", "__ns:=/hpf", "--params-file", params, "-p", "max_velocty.ffj0:=3.0")
    assert code == 2 and "unknown parameter(s) ['max_velocty.ffj0']" in out, out
    code, out = _run_hand_node("-r", "__ns:=/hpf", "-p", "home_pose.ffj1:=5.0")
    assert code == 2 and "home_pose outside" in out and "ffj1" in out, out


# ------------------------------------------------- implausible feedback (16.1)
class FakeDriver:
    """Publishes allegro_v4 feedback of a chosen pose at 100 Hz (what a broken encoder would send)."""

    def __init__(self, probe: RosProbe, ns: str):
        self.profile = make_profile("allegro_v4", HAND)
        self.pub = probe.publisher(JointState, f"{ns}/{self.profile.feedback_topic.name}", 10)
        self.pose = LIMITS.home.copy()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            names, positions, _ = self.profile.encode_feedback(self.pose)
            msg = JointState()
            msg.name, msg.position = list(names), [float(v) for v in positions]
            self.pub.publish(msg)
            time.sleep(PERIOD)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


def test_feedback_beyond_the_limits_is_refused_and_commands_stay_inside(probe):
    """Before 16.1: enable accepted with feedback 2 rad beyond ffj1's limit and ~100 commands out there."""
    ns = "/hfb"
    driver = FakeDriver(probe, ns)
    hand = NodeProcess("hand_node", params={"driver_profile": "allegro_v4", **HAND_PARAMS}, remaps={"__ns": ns})
    commands = probe.subscribe(JointState, f"{ns}/{topics.ALLEGRO_V4_COMMAND.name}",
                               qos_profile(topics.ALLEGRO_V4_COMMAND, depth=1000), key=f"{ns} cmd")
    rig_status = Rig.status.__get__(type("R", (), {"ns": ns, "diagnostics": probe.received["/diagnostics"]})())
    j = HAND.joint_index("ffj1")
    try:
        assert probe.wait_for(lambda: rig_status() is not None, 20.0), hand.output
        for beyond in (2.0, 1e6):
            driver.pose = LIMITS.home.copy()
            driver.pose[j] = HAND.upper[j] + beyond
            time.sleep(0.2)
            response = probe.call(SetBool, f"{ns}/hand_node/enable", SetBool.Request(data=True))
            assert not response.success and "ffj1" in response.message, response.message
        assert probe.wait_for(lambda: "ffj1" in rig_status()[1] and rig_status()[0] == 2, 5.0), rig_status()
        assert not commands
        # within the tolerance: enabled, and the command starts at the limit and moves inwards
        driver.pose = LIMITS.home.copy()
        driver.pose[j] = HAND.upper[j] + 0.02
        time.sleep(0.2)
        response = probe.call(SetBool, f"{ns}/hand_node/enable", SetBool.Request(data=True))
        assert response.success, response.message
        assert probe.wait_for(lambda: len(commands) > 30, 5.0)
        # then the encoder jumps far out while commanding: FAULT, commanding stops
        driver.pose[j] = HAND.upper[j] + 1e6
        assert probe.wait_for(lambda: rig_status()[2].get(Hand.STATE) == "FAULT", 5.0), hand.output
        n_at_fault = len(commands)
        time.sleep(0.3)
        assert len(commands) <= n_at_fault + 1          # at most one already in flight
        q = np.array([HAND.to_canonical(m.name, m.position) for m in list(commands)])
        assert np.all(q >= HAND.lower) and np.all(q <= HAND.upper), "a command left the joint limits"
        assert q[0, j] <= HAND.upper[j] and np.all(np.diff(q[:, j]) <= 1e-12)     # inwards only
        assert q[-1, j] == pytest.approx(LIMITS.upper[j])
        assert "ffj1" in rig_status()[2].get(Hand.STATE_REASON, "")
    finally:
        hand.stop()
        driver.stop()


# ------------------------------------------ finger-digit start-up check (16.2)
def test_wrong_finger_digits_are_refused_against_the_drivers_robot_description(probe):
    """The emulated vendor driver latches its URDF; hand_node with the old default [ff, mf, rf, th] refuses."""
    rig = _start(probe, "/hrw", "ros2_control", {"ros2_control_finger_digits": ["ff", "mf", "rf", "th"]}, {})
    try:
        def mismatch_reported():
            st = rig.status()
            return st is not None and "MISMATCH" in st[2].get(Hand.FINGER_DIGIT_CHECK, "")
        assert probe.wait_for(mismatch_reported, 10.0), rig.logs()
        response = rig.enable(True)
        assert not response.success
        assert "fit ros2_control_finger_digits: [th, ff, mf, rf]" in response.message, response.message
        assert not rig.commands
    finally:
        rig.stop()
    rig = _start(probe, "/hrd", "ros2_control", {}, {})          # both on the default: enabled
    try:
        assert probe.wait_for(lambda: (rig.status() or (0, "", {}))[2].get(Hand.FINGER_DIGIT_CHECK, "")
                              .startswith("ok"), 10.0), rig.logs()
        assert rig.enable_eventually(), rig.logs()
    finally:
        rig.stop()


# ---------------------------------------------------- supervisor gone (16.3)
SUPERVISOR = r"""
import os, subprocess, sys, time
env = dict(os.environ, DEXTERITY_SUPERVISOR_PID=str(os.getpid()))
child = subprocess.Popen(sys.argv[1:], env=env, start_new_session=True)
print(child.pid, flush=True)
time.sleep(3600)
"""


def test_hand_node_stops_commanding_when_its_supervisor_dies(probe):
    """A supervisor SIGKILLed (no chance to stop its children): hand_node holds, disables and exits itself."""
    ns = "/hsv"
    emulator = NodeProcess("allegro_emulator_node", params={"rate_hz": RATE_HZ}, remaps={"__ns": ns})
    cmd = [sys.executable, "-m", "dexterity_ros.nodes.hand_node", "--ros-args", "-r", f"__ns:={ns}",
           "-p", "enable_on_start:=true", "-p", f"feedback_timeout:={FEEDBACK_TIMEOUT}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, *cmd], stdout=subprocess.PIPE, text=True,
                                  env=env, cwd=str(ROOT))
    hand_pid = int(supervisor.stdout.readline())
    commands = probe.subscribe(JointState, f"{ns}/{topics.ALLEGRO_V4_COMMAND.name}",
                               qos_profile(topics.ALLEGRO_V4_COMMAND, depth=1000), key=f"{ns} cmd")
    try:
        assert probe.wait_for(lambda: len(commands) > 20, 20.0), "hand_node never commanded"
        supervisor.kill()
        supervisor.wait(5)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                os.kill(hand_pid, 0)
            except ProcessLookupError:
                break
            try:                                     # reap it if it became our child's orphan of ours
                os.waitpid(hand_pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("hand_node outlived its supervisor")
        n = len(commands)
        time.sleep(0.5)
        assert len(commands) == n, "commands after the supervisor died"
    finally:
        try:
            os.kill(hand_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        emulator.stop()
