"""The hardware-in-the-loop scenarios: the full graph, the simulated hand, injected faults, verdicts.

Each scenario launches the production launch file (``sim.launch.xml``: live
MuJoCo camera and hand in the driver's own protocol; ``replay.launch.xml``
for the bag-loop clock jump), starts an independent observer
(:class:`~dexterity_ros.hil.monitor.HilMonitor`) and our rosbag2 recorder
(``dexterity-ros record``, its own process) before the graph, waits for the
hand to be ACTIVE, injects its fault, and judges:

* every command the driver received is inside the margin-shrunk joint limits
  and within the per-joint speed limit (config/hand.yaml, checked with the
  observer's own arithmetic), and hand_node's ``limit violations`` stays 0;
* what the scenario is about (HOLD within ``target_timeout`` plus one command
  period plus :data:`HOLD_SLACK_S`, recovery, latching, ...);
* no process crashed that the scenario did not kill;
* the recording holds every command and policy target the observer received
  (compared byte for byte).

Every scenario ends with one verdict line with its figures.
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from .. import topics
from ..camera_model import quantize_depth_mm
from ..hand.profiles import DriverProfile, FeedbackDecoder, FeedbackMismatch, make_profile
from ..hand.safety import SafetyLimits, load_hand_parameters, load_safety_tables
from ..hand_model import default_hand
from ..paths import launch_path
from .checks import (CommandLimitCheck, ObservedMessage, StateTimeline, Verdict, audit_recording, backward_jumps,
                     count_between, largest_gap, last_before)

# Scheduling slack on top of target_timeout + one command period before HOLD must show: DDS delivery of
# the last target to hand_node, the lateness of its 100 Hz steady timer, and the /diagnostics publication
# that reports the change, on a shared, loaded 2-core machine (measured: 6-28 ms; see docs/hil.md).
HOLD_SLACK_S = 0.10
# Frames back -> ACTIVE: up to one frame period (83 ms), segmentation, pairing wait, inference and
# delivery; a few hundred ms nominal, bounded generously for a loaded machine.
RESUME_LIMIT_S = 2.0
# Bag loop -> targets again: the loop gap (0.1 s) plus one frame through segmentation and the student
# (measured 0.02-0.04 s, the first message of a loop is its first frame's joint state). A graph that keeps
# pairing frames with joint states of the previous loop takes 1-2 s here.
JUMP_RESUME_LIMIT_S = 0.5
STARTUP_TIMEOUT_S = 90.0         # launch -> hand ACTIVE (MuJoCo, onnxruntime and DDS start on a busy machine)
# hand_node sends a command every 10 ms; a silence this long in their send times means its process did
# not run (a frozen VM: seen once, 3.1 s). HOLD is then judged from its first tick after the silence.
HAND_STALL_S = 0.5
HOLD_WAIT_S = 8.0                # how long a scenario waits for HOLD (returns at once when it comes on time)
STUDENT_RESTART_LIMIT_S = 45.0   # a fresh student process loads onnxruntime and its model before acting
TARGET_AGE_SLACK_S = 0.10        # inference + publication after the student's max_input_age check
# hand_node enables only on feedback younger than feedback_timeout (0.25 s): the first command after an
# enable must be one step from a position the driver reported within that time before it.
REARM_WINDOW_S = 0.25
# DDS discovery: a new publisher's first messages reach a subscriber only once they are matched (measured
# 0-1.9 s while the whole graph starts on a loaded 2-core machine).
RECORDER_MATCH_LIMIT_S = 5.0

RECORDED_TOPICS_SIM = ("policy/joint_targets", "perception/object_cloud", "hand/joint_states",
                       "goal/orientation", "sim/task_metrics", "/diagnostics")


@dataclass(frozen=True)
class HilTiming:
    """The hand and student timing the verdicts are judged against (from the files the launch uses)."""

    target_timeout_s: float
    home_timeout_s: float
    command_period_s: float
    max_input_age_s: float
    control_rate_hz: float
    feedback_timeout_s: float = 0.25

    @property
    def hold_limit_s(self) -> float:
        return self.target_timeout_s + self.command_period_s + HOLD_SLACK_S

    @classmethod
    def from_config(cls, control_rate_hz: float) -> "HilTiming":
        from ..nodes.student_node import StudentNodeConfig   # defaults only; the launch files do not override
        hand = load_hand_parameters()
        return cls(float(hand["target_timeout"]), float(hand["home_timeout"]), 1.0 / float(hand["command_rate_hz"]),
                   StudentNodeConfig().max_input_age, control_rate_hz, float(hand["feedback_timeout"]))


def student_contract() -> tuple[float, str | None]:
    """The packaged student's control rate, and why it would refuse config/perception.yaml (None: it starts)."""
    import dataclasses
    from ..config import ConfigError
    from ..nodes.student_node import StudentNodeConfig, build_runtime
    from ..policy.contract import PolicyError
    config = StudentNodeConfig()
    try:
        return build_runtime(config).contract.control_rate_hz, None
    except (PolicyError, ConfigError) as exc:
        problem = str(exc)
    runtime = build_runtime(dataclasses.replace(config, allow_config_mismatch=True))   # other problems: raise
    return runtime.contract.control_rate_hz, problem


# ------------------------------------------------------------------ one run


class ScenarioRun:
    """One launched graph with its observer and recorder; the body of a scenario drives it."""

    def __init__(self, name: str, workdir: Path, launch_file: str, launch_args: dict[str, str],
                 profile: DriverProfile, timing: HilTiming, recorded_topics: tuple[str, ...],
                 echo: TextIO | None = None):
        self.name = name
        self.workdir = workdir
        self.launch_file = launch_file
        self.launch_args = dict(launch_args)
        self.profile = profile
        self.timing = timing
        self.recorded_topics = (profile.command_topic.name,) + tuple(recorded_topics)
        self.echo = echo
        self.bag_path = workdir / "bag"
        self.handle = None
        self.extra_handles: list = []
        self.monitor = None
        self.recorder: subprocess.Popen | None = None
        self.marks: dict[str, int] = {}
        self.crashed: list[str] = []
        self.killed: list = []                # children the scenario killed on purpose

    # --------------------------------------------------------------- start
    def start(self) -> None:
        from ..process_supervisor import launch
        from .monitor import HilMonitor
        self.monitor = HilMonitor(self.profile, name=f"hil_monitor_{os.getpid()}")
        self._start_recorder()
        self.handle = launch(launch_path(self.launch_file), self.launch_args, echo=self.echo,
                             sigterm_timeout=5.0, sigkill_timeout=3.0)
        self.mark("launched")

    def _start_recorder(self) -> None:
        cmd = [sys.executable, "-m", "dexterity_ros.cli", "record", *self.recorded_topics, "-o", str(self.bag_path),
               "--overwrite", "--polling-interval", "0.02", "--chunk-interval", "0.5"]
        log = open(self.workdir / "recorder.log", "w")
        self.recorder = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:   # recording before the graph exists: nothing is missed at start
            if "Recording to" in (self.workdir / "recorder.log").read_text():
                return
            if self.recorder.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"recorder did not start: {(self.workdir / 'recorder.log').read_text()[-2000:]}")

    # ------------------------------------------------------------- helpers
    def mark(self, label: str) -> int:
        t = time.time_ns()
        self.marks[label] = t
        return t

    def hand_states(self) -> StateTimeline:
        return StateTimeline((d.source_ns, d.value("state")) for d in self.monitor.node_diagnostics("hand")
                             if d.value("state") is not None)

    def hand_state(self) -> str | None:
        return self.monitor.latest_value("hand", "state")

    def wait_for_state(self, state: str, after_ns: int, timeout: float) -> int | None:
        """When the hand entered ``state`` at/after ``after_ns`` (or is in it then), waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            timeline = self.hand_states()
            t = timeline.first_entry(state, after_ns)
            if t is None and timeline.state_at(after_ns) == state:
                t = after_ns
            if t is not None or time.monotonic() >= deadline:
                return t
            self.check_alive()
            time.sleep(0.05)

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> list[str]:
        """Until the hand is ACTIVE and the observer and the recorder receive what the verdict judges.

        Start-up is not under test: all nodes start at once on a busy machine, and a driver starved of
        CPU for feedback_timeout latches FAULT (also just after ACTIVE). Like an operator, reset and
        enable then (said in a note). DDS discovery can match the observer's and the recorder's
        subscriptions after the hand is ACTIVE; a fault injected before that would be judged on a
        timeline (or a recording) with nothing before it.
        """
        notes: list[str] = []
        deadline = time.monotonic() + timeout
        needed = {"targets": 3, "commands": 10}
        recorded = (self.profile.command_topic.name, topics.JOINT_TARGETS.name)
        counts: dict = {}
        in_bag: dict = {}
        while time.monotonic() < deadline:
            state = self.hand_state()
            if state == "FAULT" and len(notes) < 3:
                reason = self.monitor.latest_value("hand", "state reason")
                notes.append(f"hand FAULT during start-up ({reason}): {self.reset_and_enable()}")
                continue
            counts = {name: len(self.monitor.snapshot(name)) for name in needed}
            in_bag = {topic: self.monitor.recorder_received(topic) for topic in recorded}
            if (state == "ACTIVE" and all(counts[name] >= n for name, n in needed.items())
                    and all(in_bag.values())):
                self.mark("ready")
                return notes
            self.sleep(0.1)
        raise ScenarioError(f"not ready within {timeout:.0f} s of launch: hand state {self.hand_state()}, the observer "
                            f"received {counts}, the recorder reported {in_bag}")

    def reset_and_enable(self) -> str:
        """What an operator does after a FAULT: ``~/reset``, then ``~/enable``; says how it went."""
        self.monitor.trigger("/hand/reset")
        enabled = self.monitor.set_bool("/hand/enable", True)
        return f"reset and enabled ({'ok' if enabled.success else enabled.message})"

    def check_alive(self) -> None:
        dead = [c.label for c in self.children() if c.exited.is_set() and not self.was_killed(c)]
        if dead:
            raise ScenarioError(f"process(es) died: {dead}")

    def was_killed(self, child) -> bool:
        return any(child is k for k in self.killed)

    def children(self) -> list:
        out = list(self.handle.children) if self.handle is not None else []
        for extra in self.extra_handles:
            out += extra.children
        return out

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def set_faults(self, **values) -> int:
        """Set sim bridge fault parameters; returns the wall time the bridge had applied them by."""
        self.monitor.set_parameters("sim_bridge", values)
        return time.time_ns()

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        self.mark("end")
        for extra in self.extra_handles:
            extra.stop()
        self.crashed = [c.label for c in self.children() if c.crashed and not self.was_killed(c)]
        self.stop_code = self.handle.stop() if self.handle is not None else 0
        time.sleep(1.0)          # the recorder takes what DDS still holds for it before it unsubscribes
        if self.recorder is not None and self.recorder.poll() is None:
            self.recorder.send_signal(signal.SIGINT)
            try:
                self.recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.recorder.kill()
                self.recorder.wait()
        if self.monitor is not None:
            self.monitor.close()
            with open(self.workdir / "observed.pkl", "wb") as f:   # what the observer saw, for a post-mortem
                pickle.dump({name: self.monitor.snapshot(name) for name in
                             ("commands", "targets", "feedback", "frames", "clouds", "clock")}, f)
        if self.handle is not None:
            (self.workdir / "graph.log").write_text(self.handle.output + "\n" + "\n".join(
                e.output for e in self.extra_handles))

    def recorded(self, topic: str) -> list[tuple[int, bytes]]:
        """(receive time, serialized message) of a topic in the recording, in recording order."""
        from ..bags.io import BagReader
        name = topic if topic.startswith("/") else "/" + topic
        with BagReader(self.bag_path) as reader:
            if name not in reader.topics():
                return []
            return [(m.stamp_ns, m.data) for m in reader.messages([name])]


class ScenarioError(RuntimeError):
    """The scenario could not be carried out (the graph did not start, a process died)."""


# ------------------------------------------------------------ common checks


def decode_commands(run: ScenarioRun) -> list[tuple[int, int, np.ndarray | None]]:
    """(source ns, sequence number, canonical command or None if undecodable), in publication order."""
    from rclpy.serialization import deserialize_message
    from ..bags.io import message_class
    msg_type = message_class(run.profile.command_topic.type_name)
    out = []
    for s in sorted(run.monitor.snapshot("commands"), key=lambda s: (s.source_ns, s.sequence)):
        msg = deserialize_message(s.data, msg_type)
        try:
            if run.profile.command_kind == "joint_state":
                q = run.profile.decode_command(list(msg.name), msg.position, msg.effort)
            else:
                q = run.profile.command_to_canonical(msg.data)
        except FeedbackMismatch:
            q = None
        out.append((s.source_ns, s.sequence, q))
    return out


def decode_feedback(run: ScenarioRun) -> tuple[list[int], list[np.ndarray]]:
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import JointState
    decoder = FeedbackDecoder(run.profile)
    times, positions = [], []
    for s in sorted(run.monitor.snapshot("feedback"), key=lambda s: s.received_ns):
        msg = deserialize_message(s.data, JointState)
        try:
            decoded = decoder.decode(list(msg.name), np.asarray(msg.position))
        except FeedbackMismatch:
            continue
        times.append(s.received_ns)
        positions.append(decoded.positions)
    return times, positions


def check_commands(run: ScenarioRun, verdict: Verdict, limits: SafetyLimits) -> CommandLimitCheck:
    """Every command against the limits; commanding restarts are judged against the measured position."""
    check = CommandLimitCheck(limits, run.timing.command_period_s)
    timeline = run.hand_states()
    fb_times, fb_positions = decode_feedback(run)
    previous_source, previous_sequence = None, None
    undecodable = missed = 0
    joined_late = False
    for source_ns, sequence, q in decode_commands(run):
        if q is None:
            undecodable += 1
            continue
        steps = 1
        if previous_source is None:          # the observer's first command: from the start, or joined late
            joined_late = sequence > 1
            restart = not joined_late
            if joined_late:
                check.rearm([])
        else:
            steps = max(1, sequence - previous_sequence)
            missed += steps - 1
            restart = timeline.silent_between(previous_source, source_ns)
        if restart:   # commanding starts from a position the driver reported shortly before
            lo = np.searchsorted(fb_times, source_ns - int(REARM_WINDOW_S * 1e9))
            hi = np.searchsorted(fb_times, source_ns, side="right")
            check.rearm(fb_positions[lo:hi])
        check.check(q, label=f"#{sequence}", steps=steps)
        previous_source, previous_sequence = source_ns, sequence
    if missed:
        verdict.notes.append(f"the observer missed {missed} commands (steps judged over each gap)")
    if joined_late:
        verdict.notes.append("the observer matched the command stream after its first command "
                             "(the enable ramp is checked against limits only)")
    verdict.require(undecodable == 0, f"{undecodable} commands the {run.profile.name} driver would refuse")
    verdict.require(check.commands > 0, "no hand command was observed")
    verdict.require(check.violations == 0, f"{check.violations} commands outside the limits: "
                    + "; ".join(check.messages))
    reported = run.monitor.latest_value("hand", "limit violations")
    verdict.require(reported == "0", f"hand_node reports limit violations = {reported}")
    return check


def common_checks(run: ScenarioRun, verdict: Verdict, limits: SafetyLimits) -> None:
    check = check_commands(run, verdict, limits)
    rearmed = (f", {len(check.rearm_offsets)} restart(s) from the measured position"
               if check.rearm_offsets else "")
    verdict.figure(f"{check.violations}/{check.commands} commands outside limits (hand_node limit violations "
                   f"{run.monitor.latest_value('hand', 'limit violations')}; peak step "
                   f"{100 * check.peak_step_fraction:.0f}% of the speed limit, closest "
                   f"{check.min_clearance * 1e3:.0f} mrad to a margin{rearmed})")
    verdict.require(not run.crashed, f"process(es) crashed: {run.crashed}")
    parts, lag = [], 0.0
    for stream, topic, what in (("commands", run.profile.command_topic.name, "commands"),
                                ("targets", "policy/joint_targets", "targets")):
        observed = [ObservedMessage(s.publisher, s.sequence, s.received_ns, s.data)
                    for s in run.monitor.snapshot(stream)]
        audit = audit_recording(observed, run.recorded(topic), match_limit_s=RECORDER_MATCH_LIMIT_S,
                                stop_ns=run.marks.get("end"))
        parts.append(f"{audit.recorded}/{audit.observed - audit.before_match} {what}")
        lag = max(lag, audit.match_lag_s)
        if audit.after_stop:
            verdict.notes.append(f"{audit.after_stop} {what} arrived after the graph's shutdown began; not judged")
        if audit.before_match:
            verdict.notes.append(f"{audit.before_match} {what} were published before the recorder had matched "
                                 f"their publisher ({audit.match_lag_s:.2f} s of DDS discovery); not counted")
        verdict.require(audit.lost == 0, f"the recording lost {audit.lost} {what} "
                        f"({audit.never_matched} publishers never recorded)")
        verdict.require(audit.match_lag_s <= RECORDER_MATCH_LIMIT_S,
                        f"the recorder matched a {what} publisher only after {audit.match_lag_s:.2f} s")
    verdict.figure(" + ".join(parts) + f" recorded (publishers matched within {lag:.1f} s)")


def hold_after(run: ScenarioRun, verdict: Verdict, fault_ns: int, what: str) -> int | None:
    """HOLD must follow the last policy target within target_timeout + one command period + slack."""
    timeline = run.hand_states()
    t_hold = timeline.first_entry("HOLD", fault_ns)
    if not verdict.require(t_hold is not None, f"no HOLD after {what}"):
        return None
    target_times = sorted(s.source_ns for s in run.monitor.snapshot("targets"))
    t_last = last_before(target_times, t_hold)
    latency = (t_hold - t_last) * 1e-9 if t_last is not None else float("nan")
    limit = run.timing.hold_limit_s
    verdict.figure(f"HOLD {latency:.3f} s after the last target (limit {limit:.2f} s)")
    judged = latency
    if t_last is not None and latency > limit:
        # hand_node sends a command every period; a silence in their send times means its process did not
        # run (the machine was frozen): it can only notice the timeout at its first tick after that
        command_times = sorted(s.source_ns for s in run.monitor.snapshot("commands"))
        stall_s, stall_end = largest_gap(command_times, t_last, t_hold)
        due = t_last + int(run.timing.target_timeout_s * 1e9)
        if stall_end is not None and stall_s > HAND_STALL_S and stall_end > due:
            judged = (t_hold - stall_end) * 1e-9
            verdict.notes.append(f"hand_node sent no command for {stall_s:.3f} s while HOLD was due (its process "
                                 f"did not run); HOLD {judged:.3f} s after its first command after that")
    verdict.require(judged <= limit, f"HOLD came {latency:.3f} s after the last target (limit {limit:.2f} s)")
    verdict.require(latency >= run.timing.target_timeout_s - 0.005,
                    f"HOLD came {latency:.3f} s after the last target, before target_timeout "
                    f"{run.timing.target_timeout_s:g} s (targets lost on the way to the hand?)")
    return t_hold


def active_again(run: ScenarioRun, verdict: Verdict, since_ns: int, what: str, limit_s: float) -> int | None:
    t_active = run.wait_for_state("ACTIVE", since_ns, limit_s + 1.0)
    if not verdict.require(t_active is not None, f"the hand did not return to ACTIVE after {what}"):
        return None
    delay = (t_active - since_ns) * 1e-9
    verdict.figure(f"ACTIVE again {delay:.3f} s after {what}")
    verdict.require(delay <= limit_s, f"ACTIVE again only {delay:.2f} s after {what} (limit {limit_s:g} s)")
    return t_active


# ---------------------------------------------------------------- scenarios


def nominal(run: ScenarioRun, verdict: Verdict) -> None:
    """The closed loop as it is meant to run: targets at the control rate, commands at 100 Hz, ACTIVE."""
    run.sleep(1.0)
    start = run.mark("window start")
    run.sleep(8.0)
    end = run.mark("window end")
    seconds = (end - start) * 1e-9
    targets = sorted(run.monitor.snapshot("targets"), key=lambda s: s.source_ns)
    commands = sorted(s.source_ns for s in run.monitor.snapshot("commands"))
    in_window = [s for s in targets if start <= s.source_ns < end]
    target_rate = len(in_window) / seconds
    command_rate = count_between(commands, start, end) / seconds
    active = run.hand_states().time_in({"ACTIVE"}, start, end) / seconds
    latencies = []
    for s in in_window:   # depth stamp of the frame -> first command sent after its target
        i = np.searchsorted(commands, s.source_ns)
        if i < len(commands):
            latencies.append((commands[i] - s.stamp_ns) * 1e-6)
    frames = count_between(sorted(f.source_ns for f in run.monitor.snapshot("frames")), start, end) / seconds
    verdict.figure(f"{frames:.1f} frames/s -> {target_rate:.1f} targets/s -> {command_rate:.0f} commands/s")
    verdict.figure(f"ACTIVE {100 * active:.0f}% of {seconds:.0f} s")
    if latencies:
        verdict.figure(f"depth stamp -> command p50 {np.percentile(latencies, 50):.0f} ms, "
                       f"p99 {np.percentile(latencies, 99):.0f} ms")
    metrics = run.monitor.snapshot("task_metrics")
    if metrics:
        received = [int(m.value("hand commands received") or 0) for m in metrics]
        verdict.figure(f"sim hand took {received[-1] - received[0]} commands")
        verdict.require(received[-1] > received[0], "the simulated hand received no commands")
    # The student runs at the contract's rate on every frame (12 Hz); a loaded machine may drop a few.
    verdict.require(target_rate >= 0.6 * run.timing.control_rate_hz,
                    f"{target_rate:.1f} targets/s, expected about {run.timing.control_rate_hz:g}")
    verdict.require(command_rate >= 0.8 / run.timing.command_period_s, f"{command_rate:.0f} commands/s")
    verdict.require(active >= 0.9, f"ACTIVE only {100 * active:.0f}% of the time")


def camera_stop(run: ScenarioRun, verdict: Verdict) -> None:
    """The camera stops for 2 s: HOLD within its timeout, ACTIVE again once frames return."""
    run.sleep(1.0)
    fault = run.set_faults(fault_camera_pause=True)
    run.sleep(2.0)
    cleared_at = run.mark("camera back")
    run.set_faults(fault_camera_pause=False)
    frames = sorted(s.source_ns for s in run.monitor.snapshot("frames"))
    during = count_between(frames, fault, cleared_at)
    verdict.require(during == 0, f"{during} depth frames were published while the camera was paused")
    verdict.figure(f"camera paused {(cleared_at - fault) * 1e-9:.1f} s ({during} frames)")
    hold_after(run, verdict, fault, "the camera stopped")
    active_again(run, verdict, cleared_at, "frames returned", RESUME_LIMIT_S)
    run.sleep(1.0)
    states = run.hand_states().states_between(fault, run.mark("settled"))
    verdict.require(not {"HOMING", "FAULT", "ESTOP"} & set(states),
                    f"states during a 2 s camera stop: {states} (HOMING only after home_timeout "
                    f"{run.timing.home_timeout_s:g} s)")


def segmentation_empty(run: ScenarioRun, verdict: Verdict) -> None:
    """Depth with no returns for 2 s: segmentation finds no object, so no cloud, no target: HOLD, then back."""
    run.sleep(1.0)
    before = int(run.monitor.latest_value("segmentation", "no object count") or 0)
    fault = run.set_faults(fault_blank_depth=True)
    run.sleep(2.0)
    cleared_at = run.mark("depth back")
    run.set_faults(fault_blank_depth=False)
    frames = sorted(s.source_ns for s in run.monitor.snapshot("frames"))
    clouds = [s for s in run.monitor.snapshot("clouds") if fault <= s.stamp_ns <= cleared_at]
    blank_frames = count_between(frames, fault, cleared_at)
    verdict.require(blank_frames >= 0.5 * 2.0 * run.timing.control_rate_hz,
                    f"only {blank_frames} frames during the blank-depth fault (the camera must keep running)")
    verdict.require(not clouds, f"{len(clouds)} clouds from blank frames")
    hold_after(run, verdict, fault, "segmentation came back empty")
    active_again(run, verdict, cleared_at, "depth returned", RESUME_LIMIT_S)
    run.sleep(1.5)   # the segmentation node's next 1 Hz /diagnostics carries its count
    after = int(run.monitor.latest_value("segmentation", "no object count") or 0)
    verdict.figure(f"{blank_frames} blank frames, 0 clouds, segmentation 'no object' +{after - before}")
    verdict.require(after > before, "segmentation did not report the frames without an object")


def recover_from_driver_starvation(run: ScenarioRun, verdict: Verdict, since_ns: int, deadline_s: float) -> None:
    """Starting a process on a 2-core machine can hold driver feedback back past feedback_timeout.

    hand_node is right to latch FAULT then; an operator would reset and enable. A FAULT for missing
    feedback is recovered so, and the note says whether the observer saw the gap too (the simulated
    driver was starved) or not (hand_node's own process did not get the messages while the new
    participant joined DDS); any other FAULT stays a failure, and so does no ACTIVE afterwards.
    """
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and run.wait_for_state("ACTIVE", since_ns, 0.2) is None:
        if run.hand_state() != "FAULT":
            continue
        reason = str(run.monitor.latest_value("hand", "state reason") or "")
        times = sorted(s.received_ns for s in run.monitor.snapshot("feedback") if s.received_ns >= since_ns)
        gap = max((b - a for a, b in zip(times, times[1:])), default=0) * 1e-9
        if "feedback" not in reason:
            verdict.require(False, f"hand FAULT during the restart: {reason}")
            return
        where = ("the simulated driver was starved" if gap > run.timing.feedback_timeout_s else
                 "hand_node did not get the driver's messages, which the observer received")
        verdict.notes.append(f"{where} while the new student started (hand FAULT: {reason}; the observer's "
                             f"largest feedback gap {gap:.3f} s): {run.reset_and_enable()}")
        return


def student_restart(run: ScenarioRun, verdict: Verdict) -> None:
    """SIGKILL the student: HOLD within its timeout; a new student process: ACTIVE again."""
    from ..process_supervisor import LaunchHandle
    run.sleep(1.0)
    child = run.handle.child("student_node")
    run.killed.append(child)
    killed_at = run.mark("student killed")
    child.popen.send_signal(signal.SIGKILL)
    t_hold = run.wait_for_state("HOLD", killed_at, run.timing.hold_limit_s + HOLD_WAIT_S)
    hold_after(run, verdict, killed_at, "the student was killed")
    run.sleep(0.5)
    restarted_at = run.mark("student restarted")
    replacement = LaunchHandle([child.plan], echo=run.echo).start()   # the same command line and parameters
    run.extra_handles.append(replacement)
    recover_from_driver_starvation(run, verdict, restarted_at, STUDENT_RESTART_LIMIT_S)
    t_active = active_again(run, verdict, restarted_at, "the restart", STUDENT_RESTART_LIMIT_S)
    old = {s.publisher for s in run.monitor.snapshot("targets") if s.source_ns < killed_at}

    def new_targets() -> list:
        return sorted((s for s in run.monitor.snapshot("targets") if s.publisher not in old),
                      key=lambda s: s.sequence)

    # a second of the new student's stream seen by the observer (so the recording of it is judged too)
    seen = run.monitor.wait_until(lambda: len(new_targets()) >= run.timing.control_rate_hz, 15.0)
    verdict.require(seen, "the observer received (almost) no targets from the restarted student")
    child.exited.wait(5)
    verdict.require(child.returncode == -signal.SIGKILL, f"killed student exit code {child.returncode}")
    first = new_targets()[:1]
    if first and first[0].sequence == 1:
        verdict.figure(f"new student's first target {(first[0].source_ns - restarted_at) * 1e-9:.1f} s after start")
    if t_hold is not None and t_active is not None:
        verdict.figure("states " + " -> ".join(run.hand_states().states_between(killed_at, t_active)))
    verdict.require(replacement.children[0].running, "the restarted student is not running")


def latest_student_target(run: ScenarioRun) -> np.ndarray:
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import JointState
    samples = run.monitor.snapshot("targets")
    if not samples:
        raise ScenarioError("no policy target seen yet")
    msg = deserialize_message(samples[-1].data, JointState)
    return default_hand().to_canonical(list(msg.name), np.asarray(msg.position))


def estop(run: ScenarioRun, verdict: Verdict) -> None:
    """E-stop while the hand moves: commanding stops at once, ESTOP stays latched, reset + enable resume.

    The packaged student is untrained and holds one pose, so the scenario makes the motion itself: the
    camera pauses (the student falls silent, HOLD) and the scenario sends a 1 Hz swing of the finger
    flexion joints around the student's pose as policy targets; the e-stop comes mid-swing. Then the
    camera returns, so fresh student targets arrive while ESTOP must stay latched.
    """
    hand = default_hand()
    run.sleep(1.0)
    center = latest_student_target(run)
    silent = run.set_faults(fault_camera_pause=True)
    if run.wait_for_state("HOLD", silent, run.timing.hold_limit_s + HOLD_WAIT_S) is None:
        raise ScenarioError("the hand did not HOLD when the student fell silent")
    flexion = np.array([name[-1] in "123" and not name.startswith("th") for name in hand.joint_names], float)
    limits = SafetyLimits.from_tables(load_safety_tables(), hand)
    swing_start = time.monotonic()
    period = 1.0 / run.timing.control_rate_hz
    while time.monotonic() - swing_start < 1.2:          # at the policy rate, like the student
        phase = 2 * np.pi * 1.0 * (time.monotonic() - swing_start)
        run.monitor.publish_target(hand.joint_names, limits.clamp(center + 0.3 * np.sin(phase) * flexion))
        run.sleep(period)
    requested = run.mark("estop requested")
    response = run.monitor.trigger("/hand/estop")
    answered = run.mark("estop answered")
    verdict.require(response.success, f"~/estop refused: {response.message}")
    run.set_faults(fault_camera_pause=False)            # the student acts again: ESTOP must not care
    run.sleep(1.5)
    reset_at = run.mark("reset")
    reset = run.monitor.trigger("/hand/reset")
    verdict.require(reset.success, f"~/reset refused: {reset.message}")
    enable_requested = run.mark("enable requested")
    enable = run.monitor.set_bool("/hand/enable", True)
    verdict.require(enable.success, f"~/enable refused: {enable.message}")
    active_again(run, verdict, enable_requested, "the enable request", RESUME_LIMIT_S)
    run.sleep(1.0)

    commands = decode_commands(run)
    recent = [q for t, _, q in commands if requested - int(0.2e9) <= t <= requested and q is not None]
    speed = max((float(np.max(np.abs(b - a))) for a, b in zip(recent, recent[1:])), default=0.0) \
        / run.timing.command_period_s
    verdict.figure(f"moving at {speed:.2f} rad/s when stopped")
    verdict.require(speed > 0.1, f"the hand was not moving when the e-stop came ({speed:.3f} rad/s)")
    after_answer = sum(1 for t, _, _ in commands if answered < t < reset_at)
    last = max((t for t, _, _ in commands if t <= answered), default=None)
    if last is not None:
        verdict.figure(f"last command {(last - requested) * 1e-6:.1f} ms after the request, "
                       f"{after_answer} after the answer")
    verdict.require(after_answer == 0, f"{after_answer} commands after ~/estop had answered")
    latched = run.hand_states().states_between(answered, reset_at)
    student = {s.publisher for s in run.monitor.snapshot("targets") if s.source_ns < silent}
    targets = sum(1 for s in run.monitor.snapshot("targets")
                  if answered < s.source_ns < reset_at and s.publisher in student)
    verdict.require(latched == ["ESTOP"], f"states between e-stop and reset: {latched} (ESTOP must latch)")
    verdict.require(targets > 0, "no student targets arrived during the e-stop (latching was not tested)")
    verdict.figure(f"ESTOP latched {(reset_at - answered) * 1e-9:.1f} s against {targets} fresh student targets")


def frames_late_and_reordered(run: ScenarioRun, verdict: Verdict) -> None:
    """Late frames (fresh, then older than max_input_age) and swapped frames."""
    run.sleep(1.0)
    fresh_delay = 0.05
    stale_delay = run.timing.max_input_age_s + 0.15
    student_resets_before = int(run.monitor.latest_value("student", "resets count") or 0)
    fresh_at = run.set_faults(fault_frame_delay=fresh_delay)
    run.sleep(3.0)
    stale_at = run.set_faults(fault_frame_delay=stale_delay)
    run.sleep(2.5)
    reorder_at = run.set_faults(fault_frame_delay=0.0, fault_reorder_frames=True)
    run.sleep(3.0)
    normal_at = run.set_faults(fault_reorder_frames=False)
    run.wait_for_state("ACTIVE", normal_at, RESUME_LIMIT_S)
    run.sleep(1.5)

    timeline = run.hand_states()
    targets = sorted(run.monitor.snapshot("targets"), key=lambda s: s.source_ns)
    # fresh delay: the student still acts on every frame
    settle = int(0.5e9)
    fresh_active = timeline.time_in({"ACTIVE"}, fresh_at + settle, stale_at) / ((stale_at - fresh_at - settle) * 1e-9)
    fresh_age = [(s.source_ns - s.stamp_ns) * 1e-6 for s in targets if fresh_at + settle <= s.source_ns < stale_at]
    verdict.figure(f"{fresh_delay * 1e3:.0f} ms late: ACTIVE {100 * fresh_active:.0f}%, frame age at target "
                   f"p50 {np.median(fresh_age) if fresh_age else float('nan'):.0f} ms")
    verdict.require(fresh_active >= 0.8, f"ACTIVE only {100 * fresh_active:.0f}% with frames {fresh_delay}s late")
    # stale delay: nothing older than max_input_age is acted on -> HOLD
    hold_after(run, verdict, stale_at, f"frames became {stale_delay:.2f} s late")
    age_limit = run.timing.max_input_age_s + TARGET_AGE_SLACK_S
    oldest = max(((s.source_ns - s.stamp_ns) * 1e-9 for s in targets), default=0.0)
    verdict.figure(f"oldest frame acted on {oldest * 1e3:.0f} ms (limit {age_limit * 1e3:.0f} ms)")
    verdict.require(oldest <= age_limit, f"a target came from a frame {oldest:.3f} s old (limit {age_limit:.2f} s)")
    # swapped frames: the loop keeps running; report what the student made of them
    swapped = [s for s in targets if reorder_at + settle <= s.source_ns < normal_at]
    backwards = len(backward_jumps([s.stamp_ns for s in swapped]))
    reorder_active = timeline.time_in({"ACTIVE"}, reorder_at + settle, normal_at) / \
        ((normal_at - reorder_at - settle) * 1e-9)
    resets = int(run.monitor.latest_value("student", "resets count") or 0) - student_resets_before
    verdict.figure(f"swapped frames: ACTIVE {100 * reorder_active:.0f}%, {backwards}/{len(swapped)} targets from "
                   f"an older frame than the one before, student policy resets +{resets}")
    verdict.require(reorder_active >= 0.8, f"ACTIVE only {100 * reorder_active:.0f}% with swapped frames")
    verdict.require(run.hand_state() == "ACTIVE", f"hand {run.hand_state()} after the faults cleared")


def clock_jump(run: ScenarioRun, verdict: Verdict) -> None:
    """A looping replay keeping recorded stamps: /clock and every stamp jump back at each loop."""
    deadline = time.monotonic() + 20.0
    jumps: list[int] = []
    while time.monotonic() < deadline:
        clock = run.monitor.snapshot("clock")
        jumps = backward_jumps([s.stamp_ns for s in clock], min_jump_ns=int(0.5e9))
        if len(jumps) >= 2 and clock[jumps[-1]].source_ns < time.time_ns() - int(2.0e9):
            break
        run.sleep(0.2)
    clock = run.monitor.snapshot("clock")
    jump_times = [clock[i].source_ns for i in jumps]
    verdict.figure(f"{len(jump_times)} clock jumps of "
                   + ", ".join(f"{(clock[i - 1].stamp_ns - clock[i].stamp_ns) * 1e-9:.1f} s" for i in jumps)
                   + " back")
    verdict.require(len(jump_times) >= 2, f"only {len(jump_times)} backward clock jumps seen (bag loop)")
    targets = sorted(s.source_ns for s in run.monitor.snapshot("targets"))
    commands = sorted(s.source_ns for s in run.monitor.snapshot("commands"))
    resumed = []
    for t in jump_times:
        i = np.searchsorted(targets, t)
        if i < len(targets):
            resumed.append((targets[i] - t) * 1e-9)
    worst = max(resumed) if resumed else float("nan")
    verdict.figure(f"targets again {worst:.2f} s after a jump (worst; limit {JUMP_RESUME_LIMIT_S} s)")
    verdict.require(len(resumed) == len(jump_times) and worst <= JUMP_RESUME_LIMIT_S,
                    f"targets only {', '.join(f'{r:.2f}' for r in resumed)} s after the clock jumps "
                    f"(limit {JUMP_RESUME_LIMIT_S} s each)")
    end = run.mark("judged")
    gaps = np.diff([t for t in commands if jump_times and t >= jump_times[0] - int(1e9)]) * 1e-9 \
        if jump_times else np.array([])
    verdict.figure(f"largest command gap {gaps.max() * 1e3 if gaps.size else float('nan'):.0f} ms")
    verdict.require(gaps.size > 0 and gaps.max() < 0.25, "hand commands paused around the clock jumps")
    states = run.hand_states().states_between(run.marks["ready"], end)
    verdict.require(not {"FAULT", "ESTOP", "DISABLED"} & set(states[1:]), f"hand states: {states}")
    resets = run.monitor.latest_value("student", "resets count")
    verdict.figure(f"student policy resets {resets}")


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    body: Callable[[ScenarioRun, Verdict], None]
    launch: str = "sim"      # sim (live MuJoCo) | replay (bag loop, recorded stamps)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("nominal", "closed loop on the live simulation: rates, ACTIVE, latency", nominal),
    Scenario("camera_stop", "the camera stops for 2 s: HOLD within target_timeout, then ACTIVE", camera_stop),
    Scenario("segmentation_empty", "2 s of depth with no returns: no cloud, HOLD, then ACTIVE", segmentation_empty),
    Scenario("student_restart", "student SIGKILLed and started again: HOLD, then ACTIVE", student_restart),
    Scenario("estop", "e-stop while moving: no command after it, latched, reset + enable resume", estop),
    Scenario("frames_late_reordered", "frames 50 ms late, then too old to act on, then swapped",
             frames_late_and_reordered),
    Scenario("clock_jump", "looping replay with recorded stamps and /clock: time jumps back", clock_jump,
             launch="replay"),
)}


# ------------------------------------------------------------------ running


@dataclass
class SuiteOptions:
    driver_profile: str = "allegro_v4"
    seed: int = 0
    keep_dir: Path | None = None          # keep logs and bags here (default: a temporary directory, removed)
    echo: TextIO | None = None            # stream the nodes' output here
    allow_config_mismatch: bool | None = None   # None: only when the packaged student would refuse to start


def run_scenario(name: str, options: SuiteOptions | None = None) -> Verdict:
    """Launch, drive and judge one scenario; never raises for a failed run (the verdict says why)."""
    options = options or SuiteOptions()
    scenario = SCENARIOS[name]
    verdict = Verdict(name)
    started = time.monotonic()
    base = options.keep_dir
    workdir = Path(tempfile.mkdtemp(prefix=f"hil_{name}_")) if base is None else base / name
    if base is not None:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    hand = default_hand()
    profile = make_profile(options.driver_profile, hand)
    limits = SafetyLimits.from_tables(load_safety_tables(), hand,   # the tables hand_node loads, scaled alike
                                      float(load_hand_parameters().get("velocity_scale", 1.0)))
    control_rate_hz, problem = student_contract()
    timing = HilTiming.from_config(control_rate_hz)
    mismatch = options.allow_config_mismatch
    if mismatch is None:
        mismatch = problem is not None
        if problem:
            verdict.notes.append(f"student contract does not match config/perception.yaml, ran with "
                                 f"allow_config_mismatch:=true ({problem})")
    args = {"driver_profile": options.driver_profile, "allow_config_mismatch": str(mismatch).lower()}
    if scenario.launch == "sim":
        launch_file, recorded = "sim.launch.xml", RECORDED_TOPICS_SIM
        args["seed"] = str(options.seed)
    else:
        launch_file, recorded = "replay.launch.xml", RECORDED_TOPICS_SIM[:4] + ("/diagnostics", "/clock")
        episode = workdir / "episode"
        write_hold_episode(episode, seconds=3.0, seed=options.seed)
        args.update(bag=str(episode), loop="true", restamp="false", use_sim_time="true",
                    feedback_timeout=f"{timing.feedback_timeout_s:g}")   # the robot's value, not the demo's
    run = ScenarioRun(name, workdir, launch_file, args, profile, timing, recorded, echo=options.echo)
    try:
        run.start()
        verdict.notes += run.wait_ready()
        scenario.body(run, verdict)
    except ScenarioError as exc:
        verdict.failures.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken scenario is a failed verdict with its reason
        verdict.failures.append(f"scenario error: {exc!r}")
    finally:
        try:
            run.stop()
            if run.monitor is not None and run.handle is not None:
                common_checks(run, verdict, limits)
        except Exception as exc:  # noqa: BLE001
            verdict.failures.append(f"judging failed: {exc!r}")
        verdict.duration_s = time.monotonic() - started
        if not verdict.passed:
            verdict.notes.append(f"logs and bag: {workdir}")
        elif base is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return verdict


def write_hold_episode(path: Path, seconds: float, seed: int = 0, joint_rate_hz: float = 100.0,
                       recorded_at_ns: int = 1_700_000_000 * 10**9) -> None:
    """A short episode bag from the randomized simulation, the hand holding its grasp.

    Laid out like a recording of the robot: depth + camera_info at the policy
    rate, hand/joint_states at the driver's rate (``joint_rate_hz``), the goal.
    Stamps are "recorded" at ``recorded_at_ns`` (a fixed past time): replayed
    with ``restamp:=false`` they are far from the wall clock, so the graph can
    only work on the replayed /clock, and they jump back at every loop.
    """
    from .. import conversions
    from ..bags.episode import bag_topic
    from ..bags.io import BagWriter
    from ..sim.env import ReorientEnv
    hand = default_hand()
    env = ReorientEnv(seed=seed)
    try:
        obs = env.reset()
        hold = env.privileged_state().joint_targets.copy()
        period_ns = int(round(env.policy_period_s * 1e9))
        joint_step_ns = int(round(1e9 / joint_rate_hz))
        with BagWriter(path, overwrite=True, compress=True) as bag:
            for topic in (topics.JOINT_STATES, topics.GOAL, topics.DEPTH_INFO, topics.DEPTH_IMAGE):
                bag.add_topic(bag_topic(topic), topic.type_name, topic.qos)
            bag.set_custom_data("dexterity_ros.purpose", "hil clock_jump")
            last_goal = None
            for _ in range(int(round(seconds / env.policy_period_s))):
                t = recorded_at_ns + obs.time_ns
                goal = np.asarray(obs.goal_quaternion)
                if last_goal is None or not np.array_equal(goal, last_goal):
                    bag.write(bag_topic(topics.GOAL), t, conversions.goal_msg(goal, t, topics.PALM_FRAME))
                    last_goal = goal
                for k in range(0, period_ns, joint_step_ns):   # the driver keeps reporting between frames
                    bag.write(bag_topic(topics.JOINT_STATES), t + k, conversions.arrays_to_joint_state(
                        hand.joint_names, np.asarray(obs.joint_positions), t + k))
                frame = None if obs.frame_dropped else obs.render()
                if frame is not None:
                    bag.write(bag_topic(topics.DEPTH_INFO), t + 1, conversions.intrinsics_to_camera_info(
                        frame.calibrated_intrinsics, t, topics.CAMERA_FRAME))
                    bag.write(bag_topic(topics.DEPTH_IMAGE), t + 2, conversions.depth_to_image(
                        quantize_depth_mm(frame.depth), t, topics.CAMERA_FRAME))
                obs = env.step(hold).observation
    finally:
        env.close()
