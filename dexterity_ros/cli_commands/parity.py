"""`dexterity-ros parity BAG`: replay an episode through the live graph, compare the actions.

Runs ``replay.launch.xml`` without the hand (sim bridge -> segmentation ->
student), pairs every live target with the target recorded at training time
(by the stamp of the frame that produced it), and reports per-step and overall
max/mean absolute differences and the latency of each stage. Exit status 0
only when every recorded action is reproduced within the tolerance. A replay
faster or slower than recorded runs the graph on the replay's own clock, so the
result does not depend on the rate.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def register(subparsers) -> None:
    parser = subparsers.add_parser("parity", help="check that the live graph reproduces an episode's recorded actions",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, nargs="?", default=None,
                        help="episode bag with recorded actions (default: the built-in demo episode)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference in rad (default 1e-4)")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="replay speed factor (default 1.0); away from 1 the graph runs on the replay's "
                             "clock (use_sim_time), so the policy sees the recorded step times at any rate")
    parser.add_argument("--model", type=Path, default=None, help="student model (default: the packaged one)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="compare the student's live targets with those of this second model run beside it "
                             "on the same replay (e.g. an imported policy against its native original), instead of "
                             "with the recorded ones")
    parser.add_argument("--object-pose-topic", default=None,
                        help="pose source of version-2 policies with object terms (default perception/object_pose; "
                             "sim/object_pose replays the recorded true pose)")
    parser.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    parser.add_argument("--max-input-age", type=float, default=2.0,
                        help="student input staleness limit during the check (s; the robot uses 0.2)")
    parser.add_argument("--input-queue-depth", type=int, default=100,
                        help="segmentation's and the students' keep-last depth per input during the check "
                             "(default 100, so a busy CPU delays inputs instead of dropping them and both "
                             "students act on the same frames; the robot uses 5)")
    parser.add_argument("--per-step", action="store_true", help="print one line per step")
    parser.add_argument("--quiet", action="store_true", help="do not echo the nodes' output")
    parser.set_defaults(func=run)


def _parity_monitor():
    """A background observer collecting live and recorded targets and stage arrival times."""
    from sensor_msgs.msg import Image, JointState, PointCloud2

    from .. import topics
    from ..ros.conversions import stamp_to_ns
    from ..hand_model import default_hand
    from ..ros.background import BackgroundNode
    from ..ros.common import qos_profile
    from ..ros.graph_monitor import ACTION_QUEUE_DEPTH
    from ..topics import RECORDED_TARGETS

    class ParityMonitor(BackgroundNode):
        def __init__(self):
            super().__init__("parity_monitor")
            self.hand = default_hand()
            self.live: dict[int, np.ndarray] = {}
            self.recorded: dict[int, np.ndarray] = {}
            self.reference: dict[int, np.ndarray] = {}
            self.arrival: dict[str, dict[int, int]] = {"depth": {}, "cloud": {}, "target": {}}
            n = self.node
            # every action counts: a deep queue, so a slow wake-up of this process delays them and drops none
            keep = ACTION_QUEUE_DEPTH
            n.create_subscription(JointState, topics.JOINT_TARGETS.name, lambda m: self._targets(m, self.live, True),
                                  qos_profile(topics.JOINT_TARGETS, keep))
            n.create_subscription(JointState, RECORDED_TARGETS.name, lambda m: self._targets(m, self.recorded),
                                  qos_profile(RECORDED_TARGETS, keep))
            n.create_subscription(JointState, topics.REFERENCE_TARGETS.name,
                                  lambda m: self._targets(m, self.reference),
                                  qos_profile(topics.REFERENCE_TARGETS, keep))
            n.create_subscription(Image, topics.DEPTH_IMAGE.name, lambda m: self._arrive("depth", m),
                                  qos_profile(topics.DEPTH_IMAGE))
            n.create_subscription(PointCloud2, topics.OBJECT_CLOUD.name, lambda m: self._arrive("cloud", m),
                                  qos_profile(topics.OBJECT_CLOUD))

        def _arrive(self, stage: str, msg) -> None:
            with self.lock:
                self.arrival[stage][stamp_to_ns(msg.header.stamp)] = time.time_ns()

        def _targets(self, msg, store: dict, live: bool = False) -> None:
            stamp = stamp_to_ns(msg.header.stamp)
            with self.lock:
                store[stamp] = self.hand.to_canonical(list(msg.name), np.asarray(msg.position))
                if live:
                    self.arrival["target"][stamp] = time.time_ns()

    return ParityMonitor()


def _stage_latencies(arrival: dict[str, dict[int, int]], stamps_on_wall_clock: bool = True
                     ) -> dict[str, list[float]]:
    """Per-stage latencies (ms) from the monitor's arrival times (wall clock, ns) keyed by frame stamp.

    On the replay clock (a rate other than 1) a stamp is not a wall time: each frame's start is
    then its depth image's arrival here, which leaves out the depth transport to this process.
    """
    start = "depth stamp" if stamps_on_wall_clock else "depth received"
    out = {f"{start} -> cloud (segmentation)": [], "cloud -> target (student)": [],
           f"{start} -> target (end to end)": []}
    for stamp, t_target in arrival["target"].items():
        t_depth = stamp if stamps_on_wall_clock else arrival["depth"].get(stamp)
        t_cloud = arrival["cloud"].get(stamp)
        if t_cloud is not None:
            if t_depth is not None:
                out[f"{start} -> cloud (segmentation)"].append((t_cloud - t_depth) * 1e-6)
            out["cloud -> target (student)"].append((t_target - t_cloud) * 1e-6)
        if t_depth is not None:
            out[f"{start} -> target (end to end)"].append((t_target - t_depth) * 1e-6)
    return out


def _graph_requirements(models: list[Path | None]) -> dict[str, tuple[int, int]]:
    """What must be connected before the replay starts, given the students' contracts (v1 reads clouds; a v2
    policy reads only its sources)."""
    from .. import topics
    from ..paths import models_path
    from ..policy.contract_v2 import PolicyContractV2
    from ..policy.loading import read_any_contract
    from ..ros.graph_monitor import replay_graph_requirements

    req = replay_graph_requirements(with_hand=False)
    cloud_readers = 0
    for model in models:
        contract = read_any_contract(model or models_path("student.onnx"))
        if not isinstance(contract, PolicyContractV2) or "object_points" in contract.sources:
            cloud_readers += 1
    req[topics.OBJECT_CLOUD.name] = (1, 1 + cloud_readers)
    req[topics.JOINT_STATES.name] = (1, 1 + len(models))
    return req


def run(args: argparse.Namespace) -> int:
    from .. import topics
    from ..ros.bags.episode import bag_topic
    from ..bags.io import BagError, BagReader
    from ..parity import compare_actions
    from ..paths import launch_path
    from ..launcher import launch
    from .demo import ensure_demo_episode

    bag = args.bag or ensure_demo_episode()
    try:
        with BagReader(bag) as reader:
            expected = reader.topics().get(bag_topic(topics.JOINT_TARGETS))
            duration_s = reader.duration_ns * 1e-9
    except BagError as exc:
        print(f"error: {exc}")
        return 2
    if expected is None or expected.count == 0:
        print(f"error: {bag} has no recorded actions on {bag_topic(topics.JOINT_TARGETS)}")
        return 2
    monitor = _parity_monitor()
    # Parity compares numbers, not timing: a cold start on a loaded machine must not make the
    # student skip the first frame as stale (its history would then differ for the whole episode).
    # Away from 1x the graph runs on the replay clock, so stamps keep the recording's spacing and the
    # students' rate gates pick the recorded steps (on the wall clock a 2x replay halves every interval).
    replay_clock = args.rate != 1.0
    launch_args = [f"bag:={bag}", f"rate:={args.rate}", "hand:=false", "start_paused:=true",
                   f"max_input_age:={args.max_input_age}", f"input_queue_depth:={args.input_queue_depth}",
                   f"use_sim_time:={str(replay_clock).lower()}",
                   # a frame waits for its own joint state however long the CPU keeps segmentation waiting
                   "joint_state_wait:=1.0",
                   # no hand view: it also reads hand/joint_states, and the start waits for 1 + one per student
                   # readers of them (_graph_requirements); counted in, it let a replay start before the
                   # reference student had matched, which then missed the first steps (a CI failure)
                   "visualization:=false"]
    if args.model:
        launch_args.append(f"model:={args.model}")
    if args.reference:
        launch_args += ["reference:=true", f"reference_model:={args.reference}"]
    if args.object_pose_topic:
        launch_args.append(f"object_pose_topic:={args.object_pose_topic}")
    from ..policy.contract import PolicyError
    try:
        requirements = _graph_requirements([args.model] + ([args.reference] if args.reference else []))
    except PolicyError as exc:
        print(f"error: {exc}")
        return 2
    handle = launch(launch_path("replay.launch.xml"), launch_args, echo=not args.quiet)
    timeout = args.timeout or (duration_s / args.rate + 60.0)
    deadline = time.monotonic() + timeout
    try:
        from ..ros.graph_monitor import start_replay, wait_for_graph
        from ..topics import RECORDED_TARGETS, REFERENCE_TARGETS
        requirements[RECORDED_TARGETS.name] = (1, 1)
        if args.reference:
            requirements[REFERENCE_TARGETS.name] = (1, 1)
        missing = wait_for_graph(monitor.node, requirements, timeout=min(timeout, 60.0))
        if missing:
            print(f"error: the graph did not come up: {missing}")
            return 1
        time.sleep(0.5)
        start_replay(monitor)
        while time.monotonic() < deadline:
            with monitor.lock:
                done = len(monitor.recorded) >= expected.count
            if done or not handle.running:
                break
            time.sleep(0.1)
        time.sleep(1.0)                        # let the last live actions arrive
    finally:
        handle.stop()
        with monitor.lock:
            recorded, live, reference = dict(monitor.recorded), dict(monitor.live), dict(monitor.reference)
            arrival = {k: dict(v) for k, v in monitor.arrival.items()}
        monitor.close()

    replayed = len(recorded)
    if args.reference:
        report = compare_actions(reference, live, args.tolerance)
        print(f"\n  comparing {args.model} with the reference {args.reference} (both live, same replay)")
        recorded = reference
    else:
        report = compare_actions(recorded, live, args.tolerance)
    if replayed < expected.count:
        print(f"warning: only {replayed} of {expected.count} recorded actions were replayed")
        report.missing.extend([-1] * (expected.count - replayed))
    print(f"\n== parity: {bag}")
    if args.per_step:
        t0 = min(recorded) if recorded else 0
        for stamp in sorted(recorded):
            if stamp in live:
                diff = np.abs(live[stamp] - recorded[stamp])
                print(f"  t={(stamp - t0) * 1e-9:7.3f} s  max {diff.max():.3g}  mean {diff.mean():.3g}")
            else:
                print(f"  t={(stamp - t0) * 1e-9:7.3f} s  MISSING live action")
    for line in report.lines():
        print("  " + line)
    for stage, values in _stage_latencies(arrival, stamps_on_wall_clock=not replay_clock).items():
        if values:
            print(f"  latency {stage:38s} p50 {np.percentile(values, 50):6.2f} ms  "
                  f"p99 {np.percentile(values, 99):6.2f} ms")
    print("  verdict: " + ("PASS" if report.ok else "FAIL"))
    return 0 if report.ok else 1
