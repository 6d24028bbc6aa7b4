"""`dexterity-ros goal set`: publish goal orientations for the student (``ros2 topic pub`` stand-in).

The goal goes out on goal/orientation (geometry_msgs/QuaternionStamped, frame
palm, latched QoS) as goal_node publishes it. A bad quaternion is refused
(exit 2) before anything is published.
"""
from __future__ import annotations

import argparse
import math
import time

from ..operator_format import (GoalSequence, OperatorInputError, add_graph_options, format_quaternion,
                               parse_quaternion, random_goals, read_goal_sequence, resolve_name)

EPILOG = """\
quaternions are w,x,y,z (scalar first), in the palm frame, unit within 1e-3 (then normalised):
  dexterity-ros goal set 0.7071,0,0,0.7071            (or four numbers: goal set 0.7071 0 0 0.7071)
  dexterity-ros goal set -- -0.5,0.5,0.5,0.5          (a leading minus needs the --)
  dexterity-ros goal set --random --seed 3            (config/sim.yaml's goal distribution, as goal_node)
  dexterity-ros goal set --sequence goals.txt --interval 10

--sequence publishes each goal in turn and moves on when task/metrics reports it reached (its
'goals reached' grows while it judges this goal) or after --interval seconds, whichever comes first.
goal_node judges only the goals it draws itself: with robot.launch.xml goals:=false (needed, or
both nodes publish goal/orientation) nothing judges yours, so give --interval.

Without --hold the command publishes, waits until every subscriber it has discovered, and the
--expect nodes (the student), confirmed the goal, and exits; a node started later gets it only
while a publisher keeps it latched: --hold.

ros2 equivalent: ros2 topic pub --once /goal/orientation geometry_msgs/msg/QuaternionStamped \\
  "{header: {frame_id: palm}, quaternion: {w: 0.7071, x: 0.0, y: 0.0, z: 0.7071}}"
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("goal", help="publish goal orientations on goal/orientation (no ros2 CLI needed)",
                                   description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    sub = parser.add_subparsers(dest="goal_action", metavar="ACTION")
    sub.required = True
    setp = sub.add_parser("set", help="publish one goal, a random one, or a sequence",
                          description="Publish goal orientations (w,x,y,z, palm frame) on goal/orientation.",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    setp.add_argument("quaternion", nargs="*", metavar="QUAT",
                      help="the goal as w,x,y,z (scalar first; commas or spaces)")
    setp.add_argument("--random", action="store_true",
                      help="draw the goal from config/sim.yaml's task distribution (goal_node's sampler, the "
                           "object's symmetry), relative to the goal now latched on the topic (identity if none)")
    setp.add_argument("--seed", type=int, default=None, help="seed of --random (default: a fresh draw)")
    setp.add_argument("--object", default="cube", help="--random: the object, for its symmetry (default cube)")
    setp.add_argument("--sequence", metavar="FILE|QUATS",
                      help="goals one after another: a file with one w,x,y,z per line ('#' comments), or "
                           "quaternions separated by ';'")
    setp.add_argument("--interval", type=float, default=None, metavar="S",
                      help="--sequence: move on after S seconds at the latest")
    setp.add_argument("--hold", type=float, nargs="?", const=math.inf, default=None, metavar="S",
                      help="keep the (last) goal latched for S seconds, or until Ctrl-C without S, so nodes "
                           "started later get it")
    setp.add_argument("--expect", default="student", metavar="NODE[,NODE]",
                      help="wait until these nodes have the goal (default student; '' waits only for the "
                           "subscribers discovered so far)")
    add_graph_options(setp)
    setp.set_defaults(func=run)


def _goals_from_arguments(args: argparse.Namespace):
    """The typed goals (None for --random, drawn once the current goal is known); OperatorInputError if wrong."""
    sources = [bool(args.quaternion), args.random, args.sequence is not None]
    if sum(sources) != 1:
        raise OperatorInputError("give exactly one of: a quaternion w,x,y,z, --random, --sequence")
    if args.seed is not None and not args.random:
        raise OperatorInputError("--seed goes with --random")
    if args.interval is not None and (args.sequence is None or not args.interval > 0):
        raise OperatorInputError("--interval S (> 0) goes with --sequence")
    if args.hold is not None and not args.hold > 0:
        raise OperatorInputError("--hold S needs S > 0")
    if args.sequence is not None:
        return read_goal_sequence(args.sequence)
    if args.quaternion:
        return [parse_quaternion(",".join(args.quaternion))]
    return None


def run(args: argparse.Namespace) -> int:
    from ..ros.operator import run_command
    return run_command("goal", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    goals = _goals_from_arguments(args)                    # exit 2 on bad input: nothing published
    from geometry_msgs.msg import QuaternionStamped

    from .. import topics
    from ..operator_format import no_graph_message
    from ..ros.common import qos_profile
    from ..ros.conversions import goal_msg, quaternion_msg_to_wxyz
    from ..ros.operator import Operator, OperatorError, domain_id, warn

    topic = resolve_name(topics.GOAL.name, args.namespace, "topic")
    with Operator(args.timeout) as op:
        if not op.wait_until(lambda: bool(op.subscribers(topic))) and args.hold is None:
            raise OperatorError(no_graph_message(f"subscriber of {topic}", domain_id(), args.timeout,
                                                 hint="--hold publishes anyway and keeps the goal latched"))
        if op.node_names():
            op.wait_for_graph(settle_s=0.5)                # the publishers known, for the warning
        warned: set[str] = set()
        _warn_other_publishers(op, topic, warned)
        if goals is None:
            current = None
            if op.publishers(topic):
                latched = op.latest_message(QuaternionStamped, topic, qos_profile(topics.GOAL), 1.0)
                current = None if latched is None else quaternion_msg_to_wxyz(latched.quaternion)
            goals = random_goals(1, args.seed, current, args.object)
            print(f"random goal (seed {args.seed}) drawn relative to "
                  f"{'the latched goal ' + format_quaternion(current) if current is not None else 'identity'}")
        publisher = op.node.create_publisher(QuaternionStamped, topic, qos_profile(topics.GOAL))
        expect = [resolve_name(n, args.namespace, "node name") for n in args.expect.split(",") if n.strip()]
        sequence = GoalSequence(goals, args.interval)
        metrics_topic = resolve_name(topics.TASK_METRICS.name, args.namespace, "topic")
        if len(goals) > 1:
            _watch_metrics(op, sequence, metrics_topic, args.interval)
        for _ in goals:
            goal = sequence.start_next(time.monotonic())
            publisher.publish(goal_msg(goal, op.node.get_clock().now().nanoseconds, topics.PALM_FRAME))
            missing, acked = op.settle_delivery(publisher, topic, expect, args.timeout)
            names = ", ".join(sorted({op.endpoint_node(i) for i in op.subscribers(topic)})) or "no subscriber yet"
            label = f"goal {sequence.index + 1}/{len(goals)} " if len(goals) > 1 else "goal "
            print(f"{label}{format_quaternion(goal)} (w,x,y,z) published on {topic} (frame {topics.PALM_FRAME}); "
                  + (f"received by {names}" if acked else f"sent to {names}, not all confirmed within "
                                                          f"{args.timeout:g} s"), flush=True)
            _warn_other_publishers(op, topic, warned)     # discovery goes on: one found only now
            if missing:
                warn("goal", f"{', '.join(missing)} did not confirm the goal within {args.timeout:g} s "
                             "(not running? --expect names the nodes to wait for)")
            if len(goals) > 1:
                _wait_for_advance(op, sequence)
        if args.hold is not None:
            what = "until Ctrl-C" if math.isinf(args.hold) else f"for {args.hold:g} s"
            print(f"holding the goal latched on {topic} {what}", flush=True)
            end = time.monotonic() + (args.hold if not math.isinf(args.hold) else 10 ** 9)
            while time.monotonic() < end:
                op.wait_until(lambda: False, min(0.5, max(end - time.monotonic(), 0.0)))
                _warn_other_publishers(op, topic, warned)
        op.node.destroy_publisher(publisher)
    return 0


def _warn_other_publishers(op, topic: str, warned: set[str]) -> None:
    """Another node publishing the goal topic (goal_node, the replay): both goals go out, the latest wins."""
    from ..ros.operator import UNKNOWN_NODE, warn

    names = sorted({op.endpoint_node(i) for i in op.publishers(topic) if i.node_name != UNKNOWN_NODE}
                   - warned)
    if not names:
        return
    warned.update(names)
    goal_node = any(n.rsplit("/", 1)[-1] == "goal" for n in names)
    warn("goal", f"{topic} is also published by {', '.join(names)}: both publish the same topic and the latest "
                 "goal wins" + ("; goal_node draws its own goals (launch robot.launch.xml with goals:=false)"
                                if goal_node else ""))


def _watch_metrics(op, sequence: GoalSequence, topic: str, interval: float | None) -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from .. import topics
    from ..operator_format import no_graph_message
    from ..ros.common import qos_profile
    from ..ros.operator import OperatorError, domain_id

    def on_metrics(msg) -> None:
        with op.lock:
            sequence.on_metrics({kv.key: kv.value for kv in msg.values})

    op.node.create_subscription(DiagnosticStatus, topic, on_metrics, qos_profile(topics.TASK_METRICS))
    if interval is None and not op.wait_until(lambda: bool(op.publishers(topic))):
        raise OperatorError(no_graph_message(f"publisher of {topic}", domain_id(), op.timeout,
                                             hint="--sequence without --interval moves on only when a judge "
                                                  "reports the goal reached: give --interval S"))


def _wait_for_advance(op, sequence: GoalSequence) -> None:
    from ..ros.operator import warn

    warned = False
    while True:
        with op.lock:
            reason = sequence.advance_reason(time.monotonic())
            foreign = sequence.foreign_goal
        if foreign and not warned:
            warn("goal", f"task/metrics judges goal {foreign}, not this one (its judge draws its own goals): "
                         "moving on " + ("after --interval only" if sequence.interval_s else "never; Ctrl-C"))
            warned = True
        if reason is not None:
            elapsed = time.monotonic() - sequence.started_at
            print(f"  goal {sequence.index + 1} {'reached' if reason == 'reached' else 'interval over'} "
                  f"after {elapsed:.1f} s", flush=True)
            return
        time.sleep(0.05)
