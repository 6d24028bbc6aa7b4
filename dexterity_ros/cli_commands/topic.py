"""`dexterity-ros topic list|echo|hz`: look at the running graph's topics without the ros2 CLI.

The subscription takes the QoS that matches the topic's publishers (best
effort for sensor streams, transient local for latched ones such as the
goal), and the message type is imported from its name.
"""
from __future__ import annotations

import argparse
import time

from ..operator_format import (OperatorInputError, TextOptions, add_graph_options, extract_field, format_message,
                               format_value, rate_stats, resolve_name)


def register(subparsers) -> None:
    parser = subparsers.add_parser("topic", help="list, echo and measure the rate of topics (no ros2 CLI needed)",
                                   description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    sub = parser.add_subparsers(dest="topic_action", metavar="ACTION")
    sub.required = True

    lst = sub.add_parser("list", help="topics with their types, publishers (and their QoS) and subscribers",
                         description="Every topic of the running graph with its type, its publishers (with the QoS a "
                                     "subscription needs to match them all) and subscribers; with --namespace NS "
                                     "only the topics under /NS/.",
                         epilog="ros2 equivalent: ros2 topic list -t")
    add_graph_options(lst)
    lst.set_defaults(func=run)

    echo = sub.add_parser("echo", help="print messages YAML-like (large arrays summarised)",
                          description="Print each message YAML-like, '---' after each (as ros2 topic echo); "
                                      "arrays longer than 16 values (image data, clouds) and strings longer than "
                                      "240 characters are summarised unless --full.",
                          epilog="ros2 equivalent: ros2 topic echo --once /goal/orientation")
    echo.add_argument("topic", help="topic name (relative names follow --namespace)")
    echo.add_argument("--once", action="store_true", help="print one message and exit")
    echo.add_argument("--count", type=int, default=None, metavar="N", help="print N messages and exit")
    echo.add_argument("--field", default=None, metavar="A.B",
                      help="print only this field (header.stamp.sec, position.3 or position[3])")
    echo.add_argument("--full", action="store_true", help="print arrays and strings in full, floats exactly")
    echo.add_argument("--wait", type=float, default=None, metavar="S",
                      help="exit 1 when no message arrived within S seconds (default: wait)")
    add_graph_options(echo)
    echo.set_defaults(func=run)

    hz = sub.add_parser("hz", help="message rate with min/max/std of the intervals",
                        description="Print the receive rate once a second over the last --window intervals "
                                    "(as ros2 topic hz).",
                        epilog="ros2 equivalent: ros2 topic hz /hand/joint_states")
    hz.add_argument("topic", help="topic name (relative names follow --namespace)")
    hz.add_argument("--window", type=int, default=100, metavar="N", help="intervals in the statistics (default 100)")
    hz.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    hz.add_argument("--wait", type=float, default=None, metavar="S",
                    help="exit 1 when no message arrived within S seconds (default: wait)")
    add_graph_options(hz)
    hz.set_defaults(func=run)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ros.operator import run_command
    return run_command("topic", lambda: _ACTIONS[args.topic_action](args))


def _check(args: argparse.Namespace) -> None:
    for name in ("count", "window"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise OperatorInputError(f"--{name} must be >= 1, got {value}")
    for name in ("wait", "duration"):
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            raise OperatorInputError(f"--{name} must be > 0 s, got {value:g}")


def _list(args: argparse.Namespace) -> int:
    from ..ros.operator import Operator

    ns = args.namespace.strip("/")
    with Operator(args.timeout) as op:
        op.wait_for_graph()
        rows = []
        for name, types in sorted(op.topic_types().items()):
            if ns and not name.startswith(f"/{ns}/"):
                continue
            pubs, subs = op.publishers(name), op.subscribers(name)
            _, qos = op.matching_qos(name) if pubs else (None, "")
            who = f"{len(pubs)} publisher{'s' if len(pubs) != 1 else ''}" + (f" ({qos})" if pubs else "")
            rows.append((name, ", ".join(types), f"{who}, {len(subs)} subscriber{'s' if len(subs) != 1 else ''}"))
        width = max((len(r[0]) for r in rows), default=0)
        twidth = max((len(r[1]) for r in rows), default=0)
        for name, types, who in rows:
            print(f"{name:<{width}}  {types:<{twidth}}  {who}")
    return 0


def _wait_for_publisher(op, topic: str) -> None:
    """The subscription's QoS follows the publishers: wait for one (a topic may be known by its subscribers)."""
    from ..ros.operator import warn

    if not op.wait_until(lambda: bool(op.publishers(topic))):
        warn("topic", f"no publisher of {topic} yet: subscribing best effort, volatile (matches any publisher "
                      "that appears, but not the last message of a latched one)")


def _echo(args: argparse.Namespace) -> int:
    _check(args)
    from ..ros.operator import Operator, OperatorError, message_class, message_to_data

    topic = resolve_name(args.topic, args.namespace, "topic")
    wanted = 1 if args.once else args.count
    options = TextOptions(full=args.full)
    with Operator(args.timeout) as op:
        type_name = op.wait_for_topic(topic)
        msg_type = message_class(type_name)
        _wait_for_publisher(op, topic)
        qos, words = op.matching_qos(topic)
        inbox: list = []

        def on_message(msg) -> None:
            with op.lock:
                inbox.append(msg)

        op.node.create_subscription(msg_type, topic, on_message, qos)
        printed, last = 0, time.monotonic()
        while wanted is None or printed < wanted:
            with op.lock:
                batch = inbox[:]
                inbox.clear()
            for msg in batch[: None if wanted is None else wanted - printed]:
                data = message_to_data(msg)
                if args.field:
                    value = extract_field(data, args.field)
                    lines = format_value(value, options)
                    lines = lines[1:] if lines and lines[0] == "" else lines
                else:
                    lines = format_message(data, options)
                print("\n".join(lines) + "\n---", flush=True)
                printed += 1
                last = time.monotonic()
            if args.wait is not None and time.monotonic() - last > args.wait:
                raise OperatorError(f"no message on {topic} ({type_name}) within {args.wait:g} s "
                                    f"(subscribed {words}; publishers: {len(op.publishers(topic))})")
            if not batch:
                time.sleep(0.01)
    return 0


def _hz(args: argparse.Namespace) -> int:
    _check(args)
    from ..ros.operator import Operator, OperatorError, message_class

    topic = resolve_name(args.topic, args.namespace, "topic")
    with Operator(args.timeout) as op:
        type_name = op.wait_for_topic(topic)
        msg_type = message_class(type_name)
        _wait_for_publisher(op, topic)
        qos, words = op.matching_qos(topic)
        arrivals: list[float] = []

        def on_message(_raw) -> None:
            with op.lock:
                arrivals.append(time.monotonic())

        op.node.create_subscription(msg_type, topic, on_message, qos, raw=True)   # no deserialisation
        start = time.monotonic()
        next_print = start + 1.0
        stats = printed = None
        while args.duration is None or time.monotonic() - start < args.duration:
            time.sleep(0.02)
            with op.lock:
                received = len(arrivals)
                stats = rate_stats(arrivals, args.window)
                del arrivals[: max(0, len(arrivals) - args.window - 1)]
            if args.wait is not None and received == 0 and time.monotonic() - start > args.wait:
                break
            if time.monotonic() >= next_print:
                next_print += 1.0
                if stats is not None:
                    printed = stats
                    print(stats.line(), flush=True)
        if stats is None:
            waited = args.wait if args.wait is not None else time.monotonic() - start
            raise OperatorError(f"fewer than 2 messages on {topic} ({type_name}) within {waited:.1f} s "
                                f"(subscribed {words}; publishers: {len(op.publishers(topic))})")
        if stats != printed:
            print(stats.line(), flush=True)
    return 0


_ACTIONS = {"list": _list, "echo": _echo, "hz": _hz}
