"""`dexterity-ros view`: watch the live graph in Foxglove, for installs without a ROS distro (no RViz).

Starts a Foxglove WebSocket server (the registry's ``foxglove-sdk``) that
bridges the graph's topics unchanged (CDR bytes, ros2msg schemas); open the
Foxglove app, "Open connection", and enter the printed URL. It binds to
127.0.0.1 unless ``--host`` says otherwise and is read-only (clients cannot
publish, call services or set parameters). Ctrl-C or SIGTERM stop it.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Callable

from ..live_view import DEFAULT_PORT, TopicFilter, is_loopback, websocket_url

DIAGNOSTICS_PERIOD_S = 1.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "view", help="show the live graph in Foxglove (a WebSocket server, no ROS distro needed)",
        description="Serve the live ROS graph to the Foxglove app over the Foxglove WebSocket protocol: every topic "
                    "(or those matching --topics) as a channel with its message definition, messages forwarded "
                    "as CDR bytes. In Foxglove: Open connection -> Foxglove WebSocket -> the printed URL. "
                    "Read-only: clients cannot publish, call services or set parameters.")
    _add_arguments(parser)
    parser.set_defaults(func=run)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves every "
                             "network the machine is on, unauthenticated, so only do that on a trusted network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port (default {DEFAULT_PORT}, Foxglove's default; 0: any free port)")
    parser.add_argument("--topics", default="", metavar="REGEX",
                        help="bridge only topics matching this regular expression (searched, e.g. 'hand|tf')")
    parser.add_argument("--exclude", default="", metavar="REGEX",
                        help="never bridge topics matching this regular expression")
    parser.add_argument("--include-hidden-topics", action="store_true",
                        help="also bridge hidden topics (a name part starting with '_')")
    parser.add_argument("--max-rate", type=float, default=0.0, metavar="HZ",
                        help="forward at most this many messages per second per topic (e.g. 10 for depth images "
                             "over a slow link); 0: no limit. Latched topics are never throttled")
    parser.add_argument("--max-rate-topics", default="", metavar="REGEX",
                        help="apply --max-rate only to topics matching this regular expression (default: all)")
    parser.add_argument("--polling-interval", type=float, default=0.5, metavar="SECONDS",
                        help="how often the graph is scanned for new and vanished topics (default 0.5)")


def _options(args: argparse.Namespace):
    """BridgeOptions from the arguments; ValueError with the reason for a bad one."""
    from ..ros.foxglove_bridge import BridgeOptions

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    if not (math.isfinite(args.max_rate) and args.max_rate >= 0):
        raise ValueError(f"--max-rate must be >= 0, got {args.max_rate:g}")
    if not (math.isfinite(args.polling_interval) and args.polling_interval > 0):
        raise ValueError(f"--polling-interval must be > 0, got {args.polling_interval:g}")
    topics = TopicFilter(args.topics, args.exclude, args.include_hidden_topics)
    throttle = TopicFilter(args.max_rate_topics, include_hidden=True)
    return BridgeOptions(host=args.host, port=args.port, topics=topics, max_rate_hz=args.max_rate,
                         throttle=throttle)


def _diagnostics_publisher(node, bridge) -> Callable[[], None]:
    """The bridge's own /diagnostics (1 Hz): port, advertised and subscribed topics, forwarded counts."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    from .. import topics
    from ..ros.common import qos_profile
    publisher = node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS))
    name = f"dexterity_ros: {node.get_fully_qualified_name()}"

    def publish() -> None:
        skipped = bool(bridge.skipped)
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if skipped else DiagnosticStatus.OK, name=name, hardware_id="foxglove bridge",
            message=(f"serving {len(bridge.topics)} topic(s) on port {bridge.port}"
                     + (f"; {len(bridge.skipped)} topic(s) not bridged" if skipped else ""))[:1000])
        status.values = [KeyValue(key=k, value=v) for k, v in bridge.diagnostic_values()]
        msg = DiagnosticArray()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.status = [status]
        publisher.publish(msg)

    return publish


def run(args: argparse.Namespace) -> int:
    try:
        options = _options(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_loopback(options.host):
        print(f"[WARN] [view]: listening on {options.host}, not only this machine: anyone who can reach it on "
              f"port {options.port} sees every bridged topic (the protocol has no authentication)",
              file=sys.stderr, flush=True)

    from rclpy.executors import SingleThreadedExecutor

    from ..ros.bags.session import RosSession
    from ..ros.foxglove_bridge import BridgeError, FoxgloveBridge

    log = lambda line: print(line, flush=True)  # noqa: E731
    with RosSession("dexterity_view") as session:
        try:
            bridge = FoxgloveBridge(session.node, options, log=log)
        except BridgeError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        executor = SingleThreadedExecutor(context=session.context)
        executor.add_node(session.node)
        publish_health = _diagnostics_publisher(session.node, bridge)
        log(f"[INFO] [view]: Foxglove WebSocket server on {websocket_url(options.host, bridge.port)} "
            "(Foxglove: Open connection -> Foxglove WebSocket); Ctrl-C stops it")
        next_poll = 0.0
        next_health = time.monotonic() + DIAGNOSTICS_PERIOD_S
        try:
            while not session.stop.is_set():
                now = time.monotonic()
                if now >= next_poll:
                    bridge.poll_graph()
                    next_poll = now + args.polling_interval
                elif bridge.wake.is_set():
                    bridge.update_subscriptions()
                if now >= next_health:
                    publish_health()
                    next_health = now + DIAGNOSTICS_PERIOD_S
                executor.spin_once(timeout_sec=0.02)
        finally:
            executor.remove_node(session.node)
            executor.shutdown()
            bridge.close()
    why = f" ({session.signal_name})" if session.signal_name else ""
    log(f"[INFO] [view]: Stopped{why}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m dexterity_ros.cli_commands.view`: the same command without the other subcommands."""
    parser = argparse.ArgumentParser(prog="dexterity-ros view")
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
