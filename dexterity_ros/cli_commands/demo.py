"""`dexterity-ros demo`: the whole graph on the built-in replay data, with a report.

Generates the demo episode when it is missing (seeded, so every machine gets
the same data), runs ``launch/replay.launch.xml`` for about ``--duration``
seconds with a monitor attached, and prints what each stage did and the
end-to-end latency (depth header stamp -> hand command). The same figures,
with latency histograms per stage and the hand's state timeline, go into an
HTML report (``--report-dir``, default runs/demo/; :mod:`dexterity_ros.report`).

``--live`` closes the loop instead: ``launch/sim.launch.xml`` (the randomized
simulator as camera and hand, a shipped student driving it on the task it was
trained for (``--student``: the pose student by default), pose_tracker and
goal_node judging), and the report adds what the task judges counted: the
goals the student reached (from the tracked pose, as on the robot, and from
the true pose), episodes, drops and the longest run of consecutive successes.
A replay cannot show that: the replayed episode does not react to the student.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..diagnostic_keys import Hand, Segmentation, latency_p50, latency_p99
from ..paths import config_path, data_directory, launch_path, models_path

if TYPE_CHECKING:
    from ..report import Report
    from ..ros.graph_monitor import GraphReport

DEFAULT_REPORT_DIR = Path("runs") / "demo"
LIVE_DURATION_S = 30.0         # --live default: a few goal timeouts (8 s) of the shipped student
# --live --student: each shipped student on the task it was trained for (sim.launch.xml arguments; --arg overrides)
LIVE_STUDENTS = {
    # the pose student (models/README.md): cuboid_flat turned about the palm normal, the tracker's pose
    "pose": lambda: {"model": str(models_path("pose_student.onnx")),
                     "sim_config": str(config_path("sim_rotate_one.yaml")), "object": "cuboid_flat"},
    # the point-cloud student: sim.launch.xml's defaults (models/student.onnx, config/sim.yaml, the cube)
    "cloud": lambda: {},
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the full graph on the built-in replay episode and report",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds to replay (default: the whole episode, about 10 s; "
                             f"--live: {LIVE_DURATION_S:g} s)")
    parser.add_argument("--live", action="store_true",
                        help="close the loop: sim.launch.xml (the student drives the simulated hand; goal_node "
                             "judges from the tracked pose) and report the goals the student reached")
    parser.add_argument("--seed", type=int, default=None, help="--live: seed of the simulated episodes (default 0)")
    parser.add_argument("--student", choices=tuple(LIVE_STUDENTS), default=None,
                        help="--live: which shipped student drives, on the task it was trained for: pose "
                             "(default; models/pose_student.onnx, cuboid_flat turned about the palm normal, "
                             "config/sim_rotate_one.yaml) or cloud (models/student.onnx, sim.launch.xml's defaults)")
    parser.add_argument("--bag", type=Path, default=None,
                        help="episode bag to replay (default: the built-in demo episode, generated if missing)")
    parser.add_argument("--rate", type=_positive_rate, default=1.0,
                        help="replay speed factor (default 1.0; 3 plays the 10 Hz episode's depth at 30 Hz)")
    parser.add_argument("--driver-profile", default="allegro_v4", choices=("allegro_v4", "ros2_control", "leap"))
    parser.add_argument("--arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra launch argument (repeatable), e.g. prompt_command:=false "
                             "(replay.launch.xml; with --live sim.launch.xml, e.g. model:=my_policy.onnx)")
    parser.add_argument("--quiet", action="store_true", help="do not echo the nodes' output")
    parser.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR, metavar="DIR",
                        help="write report.html (images embedded) and its PNGs here "
                             f"(default {DEFAULT_REPORT_DIR}/, relative to the working directory)")
    parser.set_defaults(func=run)


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate must be a number, got '{text}'") from None
    if not 0.05 <= value <= 20.0:
        raise argparse.ArgumentTypeError(f"--rate must be in [0.05, 20], got {value}")
    return value


def demo_episode_path() -> Path:
    return data_directory() / "demo" / "episode_000"


def ensure_demo_episode() -> Path:
    """The demo episode, (re)generated when missing or made with another model or config."""
    from ..bags.io import BagError, BagReader
    from ..ros.bags.generate import generate_demo_episode
    from ..sim.episodes import data_fingerprint

    path = demo_episode_path()
    wanted = data_fingerprint()
    if (path / "metadata.yaml").is_file():
        try:
            with BagReader(path) as reader:
                have = {k: reader.custom_data.get(f"dexterity_ros.{k}") for k in wanted}
            if have == wanted:
                return path
            print(f"the demo episode in {path} was made with another model or configuration: regenerating",
                  flush=True)
        except BagError as exc:
            print(f"the demo episode in {path} is unreadable ({exc}): regenerating", flush=True)
    print(f"generating the demo episode into {path} (seeded) ...", flush=True)
    generate_demo_episode(path)
    return path


def command_topic(profile: str) -> tuple[str, type]:
    """The hand driver's command topic and message class for a driver profile."""
    from ..ros.messages import message_class
    from ..hand.profiles import make_profile
    from ..hand_model import default_hand
    topic = make_profile(profile, default_hand()).command_topic
    return topic.name, message_class(topic.type_name)


def run(args: argparse.Namespace) -> int:
    from ..bags.io import BagError, BagReader
    from ..hil.monitor import DiagnosticHistory, PipelineSamples
    from ..report import ReportError, prepare_report_dir, write_report
    from ..ros.graph_monitor import GraphMonitor, replay_graph_requirements, start_replay, wait_for_graph
    from ..launcher import launch, run_until_stopped

    if args.live and (args.bag is not None or args.rate != 1.0):
        print("error: --bag and --rate are for the replay; --live runs the simulator "
              "(slower than real time: --arg real_time_factor:=0.5)", file=sys.stderr)
        return 2
    if not args.live and (args.seed is not None or args.student is not None):
        print("error: --seed and --student are for --live (the replay's episode and student are the bag's "
              "and replay.launch.xml's)", file=sys.stderr)
        return 2
    student = args.student or "pose"
    seed = 0 if args.seed is None else args.seed
    if args.duration is not None and not args.duration > 0:
        print(f"error: --duration must be > 0 s, got {args.duration:g}", file=sys.stderr)
        return 2
    try:
        prepare_report_dir(args.report_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    topic, msg_type = command_topic(args.driver_profile)
    if args.live:
        launch_file, title = "sim.launch.xml", f"sim.launch.xml (live), seed {seed}, {student} student"
        # the hand is enabled once the student's targets flow (enable_hand_when_targets_flow), as an operator
        # enables it after bring-up: not while the graph's start-up still loads the machine
        launch_args = [f"seed:={seed}", f"driver_profile:={args.driver_profile}", "enable_on_start:=false",
                       *(f"{name}:={value}" for name, value in LIVE_STUDENTS[student]().items()), *args.arg]
        requirements = live_graph_requirements(topic)
        duration = args.duration or LIVE_DURATION_S
    else:
        bag = args.bag or ensure_demo_episode()
        try:
            with BagReader(bag) as reader:
                episode_s = reader.duration_ns * 1e-9
        except BagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        launch_file, title = "replay.launch.xml", f"replay.launch.xml on {bag} at rate {args.rate:g}"
        launch_args = [f"bag:={bag}", f"driver_profile:={args.driver_profile}", "start_paused:=true",
                       f"rate:={args.rate:g}", *args.arg]
        requirements = replay_graph_requirements(True, topic)
        duration = args.duration or episode_s / args.rate + 1.5
    started_ns = time.time_ns()
    monitor = GraphMonitor(topic, msg_type, task=args.live)
    hand_states = DiagnosticHistory(monitor, "hand", Hand.STATE)
    hand_reasons = DiagnosticHistory(monitor, "hand", Hand.STATE_REASON)
    pipeline = PipelineSamples(monitor, topic, msg_type)
    enabled, enabling = True, ""
    handle = launch(launch_path(launch_file), launch_args, echo=not args.quiet)
    try:
        # start the replay once every node is up, so the report covers the whole episode
        missing = wait_for_graph(monitor.node, requirements, timeout=60.0)
        if missing:
            print(f"error: the graph did not come up within 60 s: {missing}", file=sys.stderr)
            handle.stop()
            return 1
        if not args.live:
            start_replay(monitor)
        else:
            enabled, enabling = enable_hand_when_targets_flow(monitor, pipeline, ENABLE_TIMEOUT_S)
        code = run_until_stopped(handle, duration=duration)
    finally:
        time.sleep(0.2)
        report = monitor.report()
        states = hand_states.values()
        reasons = hand_reasons.values()
        stamped = {name: pipeline.stamped(name) for name in ("frames", "clouds", "targets", "commands")}
        monitor.close()
    lines = [f"== dexterity_ros demo: {title}"]
    lines += ["  " + line for line in report.lines(at_publication=publication_line(stamped))]
    lines += ["  " + line for line in publication_stage_lines(stamped)]
    lines += slowest_target_lines(stamped)
    lines += ["  " + line for line in segmentation_stage_lines(report.diagnostic_value)]
    tracked = report.judges.get("tracked")
    task = [] if tracked is None else [
        ("the student's task, judged on the tracked pose", "task/metrics", tracked.summary()),
        ("the same goals judged on the true pose", "task/metrics_truth", report.judges["truth"].summary())]
    lines += [f"  {what} ({topic}): {summary}" for what, topic, summary in task]
    violations = report.diagnostic_value("hand", Hand.LIMIT_VIOLATIONS)
    lines.append(f"  hand limit violations (from /diagnostics): {violations if violations is not None else 'n/a'}")
    lines.append("  hand states (from /diagnostics): " + hand_state_line(states, reasons, started_ns))
    problems = [f"hand {state} at {t:.1f} s: {reason}" for t, state, reason in hand_stops(states, reasons, started_ns)]
    if enabling:
        lines.append("  " + enabling)
    if not enabled:
        problems.append(enabling)
        # what the nodes upstream of the hand said last: why no target came (a tracker that never locked on,
        # a missing goal, a student refusing its inputs) names itself here
        for line in upstream_status_lines(report.diagnostics):
            lines.append("    " + line)
            problems.append(line)
    crashed = [c.label for c in handle.children if c.crashed]
    if crashed:
        problems.append(f"processes that died: {crashed}")
        print(f"  processes that died: {crashed}", file=sys.stderr)
    if code != 0:
        killed = [c.label for c in handle.children if c.last_signal is not None and c.returncode not in (0, None)]
        problems.append(f"launch exit code {code} (processes that did not stop cleanly: {killed or 'none'}; "
                        "run without --quiet for their output)")
        lines.append("  " + problems[-1])
    ok = (code == 0 and report.frames > 0 and report.clouds > 0 and report.targets > 0 and report.commands > 0
          and enabled)
    if tracked is not None and not tracked.messages:
        problems.append("goal_node published no task metrics (task/metrics)")
        lines.append("  " + problems[-1])
        ok = False
    lines.append("  verdict: " + ("OK" if ok else "FAILED (see above)"))
    print("\n" + "\n".join(lines))
    context = [f"{title}, driver profile {args.driver_profile}"
               + (f", arguments {' '.join(args.arg)}" if args.arg else ""),
               f"run {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; hand limit violations "
               f"(from /diagnostics): {violations if violations is not None else 'n/a'}"]
    context += [f"{what}: {summary}" for what, _, summary in task]
    try:
        files = write_report(demo_report(report, stamped, states, started_ns, ok, problems, context,
                                         "\n".join(lines)), args.report_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"  report: {files.html} (figures: {', '.join(str(p) for p in files.images.values())})")
    return 0 if ok else 1


def publication_line(stamped: dict[str, list[tuple[int, int]]]) -> str:
    """The end-to-end latency on the publishers' clock (depth stamp -> the command's DDS source time)."""
    import numpy as np
    from ..report import publication_latencies
    values = publication_latencies(stamped["targets"], [t for _, t in stamped["commands"]])
    if not values:
        return "at publication (depth stamp -> command's DDS source time): no samples"
    return (f"at publication (depth stamp -> command's DDS source time): p50 {np.percentile(values, 50):.1f} ms, "
            f"p99 {np.percentile(values, 99):.1f} ms over {len(values)} targets")


UPSTREAM_NODES = ("sim_bridge", "segmentation", "pose_tracker", "goal", "student")


def upstream_status_lines(diagnostics: dict) -> list[str]:
    """The last /diagnostics message of each node upstream of the hand (name, level, message), in
    pipeline order: what a run whose targets never came shows about why."""
    levels = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
    out = []
    for node in UPSTREAM_NODES:
        for name, status in sorted(diagnostics.items()):
            if name.endswith("/" + node):
                level = status.level if isinstance(status.level, int) else int.from_bytes(status.level, "little")
                out.append(f"{name}: {levels.get(level, level)}: {status.message}")
    return out or ["no /diagnostics received from the nodes upstream of the hand"]


SEGMENTATION_PARTS = (("DDS transport", Segmentation.DEPTH_TRANSPORT), ("wake-up", Segmentation.DEPTH_WAKE_UP),
                      ("pipeline", Segmentation.SEGMENTATION), ("callback", Segmentation.CALLBACK))


def segmentation_stage_lines(diagnostic_value: Callable[[str, str], str | None]) -> list[str]:
    """The segmentation stage taken apart by segmentation_node itself (its /diagnostics, last 500 frames):
    the frame's DDS transport, the process waking up to it, then the pipeline inside the whole callback."""
    parts = []
    for what, key in SEGMENTATION_PARTS:
        p50, p99 = diagnostic_value("segmentation", latency_p50(key)), diagnostic_value("segmentation", latency_p99(key))
        if p50 is None or p99 is None:
            continue
        try:
            parts.append(f"{what} p50 {float(p50):.1f} / p99 {float(p99):.1f} ms")
        except ValueError:
            continue
    return ["  inside segmentation (its /diagnostics): " + ", ".join(parts)] if parts else []


def publication_stage_lines(stamped: dict[str, list[tuple[int, int]]]) -> list[str]:
    """Each stage on the publishers' clock (DDS source times matched by header stamp, p50 / p90 / p99): where
    the end-to-end tail is made, without any observer's wake-up in it."""
    import numpy as np
    from ..report import stage_latencies
    stages = {"depth stamp -> depth published": [(t - s) * 1e-6 for s, t in stamped["frames"]]}
    stages.update(stage_latencies(stamped["frames"], stamped["clouds"], stamped["targets"],
                                  [t for _, t in stamped["commands"]]))
    return [f"  at publication, {name}: p50 {np.percentile(v, 50):.1f} / p90 {np.percentile(v, 90):.1f} / "
            f"p99 {np.percentile(v, 99):.1f} ms ({len(v)})" for name, v in stages.items() if v]


def slowest_target_lines(stamped: dict[str, list[tuple[int, int]]], count: int = 3) -> list[str]:
    """The slowest targets on the publishers' clock, each split by stage and placed in the run: whether the
    tail is one stage or all of them, and whether it is the start (the first frame) or spread over the run."""
    from ..report import slowest_targets
    paths = slowest_targets(stamped["frames"], stamped["clouds"], stamped["targets"],
                            [t for _, t in stamped["commands"]], count)
    if not paths:
        return []
    first = min(t for _, t in stamped["targets"])
    return ["  slowest targets at publication (depth stamp -> command = depth published + segmentation + student "
            "+ hand, ms):"] + [
        f"    {p.total_ms:.1f} = {p.publish_ms:.1f} + {p.segmentation_ms:.1f} + {p.student_ms:.1f} + {p.hand_ms:.1f}"
        f", {(p.sent_ns - first) * 1e-9:.1f} s after the first target" for p in paths]


ENABLE_TIMEOUT_S = 60.0        # --live: the first policy target must arrive within this after the graph is up


def enable_hand_when_targets_flow(monitor, pipeline, timeout: float, hand: str = "/hand") -> tuple[bool, str]:
    """Enable hand_node (its ~/enable service) once the monitor has seen a policy target: (enabled, what happened).

    On the robot an operator enables the hand after bring-up; the live demo does the same instead of
    ``enable_on_start``, so the hand does not start commanding (and watching its driver's feedback against
    ``feedback_timeout``) while the rest of the graph is still starting and loading the machine."""
    from std_srvs.srv import SetBool

    started = time.monotonic()
    deadline = started + timeout
    while not pipeline.stamped("targets"):
        if time.monotonic() >= deadline:
            return False, f"hand not enabled: no policy target within {timeout:g} s of the graph coming up"
        time.sleep(0.05)
    try:
        response = monitor.call_service(SetBool, f"{hand}/enable", SetBool.Request(data=True),
                                        max(deadline - time.monotonic(), 5.0))
    except TimeoutError as exc:
        return False, f"hand not enabled: {exc}"
    if not response.success:
        return False, f"hand not enabled: {response.message}"
    return True, (f"hand enabled {time.monotonic() - started:.1f} s after the graph came up, once the student's "
                  f"targets flowed ({response.message})")


STOPPED_STATES = ("FAULT", "ESTOP")


def hand_state_changes(states: list[tuple[int, str]], reasons: list[tuple[int, str]],
                       started_ns: int) -> list[tuple[float, str, str]]:
    """(s since ``started_ns``, state, reason) at every change of the hand's state.

    ``states`` and ``reasons``: (DDS source time, value) of hand_node's ``state`` and ``state reason``
    /diagnostics values; both travel in the same message, so a state's reason is the one with its time."""
    reason_at = dict(reasons)
    changes: list[tuple[float, str, str]] = []
    for t_ns, state in sorted(states):
        if not changes or changes[-1][1] != state:
            changes.append(((t_ns - started_ns) * 1e-9, state, reason_at.get(t_ns, "reason not received")))
    return changes


def hand_stops(states: list[tuple[int, str]], reasons: list[tuple[int, str]],
               started_ns: int) -> list[tuple[float, str, str]]:
    """The changes into FAULT or ESTOP (the hand stopped commanding), with their reasons."""
    return [c for c in hand_state_changes(states, reasons, started_ns) if c[1] in STOPPED_STATES]


def hand_state_line(states: list[tuple[int, str]], reasons: list[tuple[int, str]], started_ns: int) -> str:
    """The hand's states as /diagnostics showed them, with when (s) and, for FAULT/ESTOP, why."""
    changes = hand_state_changes(states, reasons, started_ns)
    if not changes:
        return "none received"
    return " -> ".join(f"{state} at {t:.1f} s" + (f" ({reason})" if state in STOPPED_STATES else "")
                       for t, state, reason in changes)


def live_graph_requirements(command: str) -> dict[str, tuple[int, int]]:
    """Publishers/subscribers of sim.launch.xml's graph (monitor included) before the demo's clock starts."""
    from .. import topics
    return {topics.DEPTH_IMAGE.name: (1, 2), topics.OBJECT_CLOUD.name: (1, 2),
            topics.JOINT_TARGETS.name: (1, 2), command: (1, 2),          # hand -> simulator + monitor
            topics.TASK_METRICS.name: (1, 1), topics.TASK_METRICS_TRUTH.name: (1, 1)}


def demo_counts(report: GraphReport) -> dict[str, int]:
    """Messages per stage and where they stopped, as the printed report counts them."""
    skipped_by_rate = report.frames_skipped_by_rate()
    return {"depth frames": report.frames, "object clouds": report.clouds, "policy targets": report.targets,
            "hand commands": report.commands,
            "frames skipped by max_cloud_rate": skipped_by_rate,
            "frames without a cloud": max(report.frames - report.clouds - skipped_by_rate, 0),
            "clouds without a target": max(report.clouds - report.targets, 0)}


def demo_report(report: GraphReport, stamped: dict[str, list[tuple[int, int]]], states: list[tuple[int, str]],
                started_ns: int, ok: bool, problems: list[str], context: list[str], text: str) -> Report:
    """The HTML report's data: counts from the graph monitor's report, stage latencies from the
    (header stamp, DDS source time) of every frame, cloud, target and command (``stamped``), and the
    hand's states (wall ns, state)."""
    from ..report import Observation, Report, RunResult, stage_latencies, state_changes
    latencies = stage_latencies(stamped["frames"], stamped["clouds"], stamped["targets"],
                                [t for _, t in stamped["commands"]])
    observation = Observation(duration_s=report.duration_s, counts=demo_counts(report), latencies_ms=latencies,
                              states=state_changes(states, started_ns))
    flow = (f"{report.frames} frames -> {report.clouds} clouds -> {report.targets} targets -> "
            f"{report.commands} commands")
    run = RunResult("demo", ok, flow, observation, details=problems)
    return Report("dexterity_ros demo", [run], context=context + [
        "stage latencies below: DDS source times (when each message was published), matched by header stamp; "
        "the printed figures at the end are the graph monitor's (receive times)"], text=text)
