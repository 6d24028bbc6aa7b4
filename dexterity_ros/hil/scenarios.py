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

Every scenario ends with one verdict line with its figures. The run itself and
the checks every scenario shares are :mod:`.run`.
"""
from __future__ import annotations

import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from ..diagnostic_keys import Hand, Segmentation, Student, TaskMetrics, count
from ..hand.profiles import make_profile
from ..hand.safety import SafetyLimits, load_hand_parameters, load_safety_tables
from ..hand_model import default_hand
from .checks import Verdict, backward_jumps, count_between
from .run import (HOLD_WAIT_S, JUMP_RESUME_LIMIT_S, RECORDED_TOPICS_SIM, RESUME_LIMIT_S, STUDENT_RESTART_LIMIT_S,
                  TARGET_AGE_SLACK_S, HilTiming, ScenarioError, ScenarioRun, active_again, common_checks,
                  decode_commands, hold_after, student_contract, write_hold_episode)

# ---------------------------------------------------------------- scenarios


# ~60 targets and ~500 commands: enough for the rates and the latency percentiles the verdict states
NOMINAL_WINDOW_S = 5.0


def nominal(run: ScenarioRun, verdict: Verdict) -> None:
    """The closed loop as it is meant to run: targets at the control rate, commands at 100 Hz, ACTIVE."""
    run.sleep(1.0)
    start = run.mark("window start")
    run.sleep(NOMINAL_WINDOW_S)
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
        received = [int(m.value(TaskMetrics.HAND_COMMANDS_RECEIVED) or 0) for m in metrics]
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
    before = int(run.monitor.latest_value("segmentation", count(Segmentation.NO_OBJECT)) or 0)
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
    after = int(run.monitor.latest_value("segmentation", count(Segmentation.NO_OBJECT)) or 0)
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
        reason = str(run.monitor.latest_value("hand", Hand.STATE_REASON) or "")
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
    from ..launcher import LaunchHandle
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
    student_resets_before = int(run.monitor.latest_value("student", count(Student.RESETS)) or 0)
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
    resets = int(run.monitor.latest_value("student", count(Student.RESETS)) or 0) - student_resets_before
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
    resets = run.monitor.latest_value("student", count(Student.RESETS))
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
        # the scenarios judge the hand's and the nodes' reactions to faults: the simulator draws and judges
        # its own goals over the whole object set, as before the tracker and goal_node joined sim.launch.xml
        args.update(seed=str(options.seed), tracker="false", goals="false", object="")
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
