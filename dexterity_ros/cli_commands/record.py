"""`dexterity-ros record [TOPIC ... | --all] -o DIR`: record live topics into a rosbag2 bag (``ros2 bag record``).

MCAP by default (sqlite3 with ``-s sqlite3``), zstd by option, split by size
or duration. SIGINT/SIGTERM close the bag cleanly; after SIGKILL every
complete chunk is still readable (``dexterity-ros reindex DIR`` writes the
missing metadata.yaml). See docs/bags.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _size(text: str) -> int:
    """'500M', '2G', '1048576' -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = units.get(text[-1:], 1)
    try:
        value = float(text[:-1] if text[-1:] in units else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1048576, 512K, 100M, 2G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("size must be >= 0")
    return int(value * factor)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "record", help="record topics into a rosbag2 bag (like `ros2 bag record`)",
        description="Subscribe to topics (raw, no deserialization) and write a rosbag2 bag that `ros2 bag` "
                    "and any MCAP/rosbag2 reader opens. Ctrl-C or SIGTERM stop and close it cleanly.")
    parser.add_argument("topics", nargs="*", help="topics to record (absolute or relative to /)")
    parser.add_argument("-a", "--all", action="store_true", help="record every topic that has a publisher")
    parser.add_argument("-e", "--regex", default="", help="also record topics matching this regular expression")
    parser.add_argument("-x", "--exclude", default="", help="never record topics matching this regular expression")
    parser.add_argument("--include-hidden-topics", action="store_true",
                        help="with --all/--regex, also record hidden topics (a name part starting with '_')")
    parser.add_argument("-o", "--output", type=Path, help="bag directory to create (default: rosbag2_YYYY_MM_DD-hh_mm_ss)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("-s", "--storage", choices=("mcap", "sqlite3"), default="mcap", help="storage format")
    parser.add_argument("--compression", choices=("none", "zstd"), default="none",
                        help="zstd: compress each MCAP chunk (sqlite3: each message)")
    parser.add_argument("--compression-level", type=int, default=1, help="zstd level (default 1: fast)")
    parser.add_argument("--chunk-size", type=_size, default=4 << 20,
                        help="MCAP chunk / sqlite3 transaction size (default 4M)")
    parser.add_argument("--chunk-interval", type=float, default=1.0, metavar="SECONDS",
                        help="write a chunk at least this often; bounds what a SIGKILL loses (default 1)")
    parser.add_argument("--sync-interval", type=float, default=1.0, metavar="SECONDS",
                        help="fsync period (default 1)")
    parser.add_argument("-b", "--max-bag-size", type=_size, default=0,
                        help="split into a new storage file after this many bytes (e.g. 1G; 0: never)")
    parser.add_argument("-d", "--max-bag-duration", type=float, default=0.0, metavar="SECONDS",
                        help="split into a new storage file after this many seconds (0: never)")
    parser.add_argument("--duration", type=float, default=0.0, metavar="SECONDS",
                        help="stop after this many seconds of recording (0: until Ctrl-C)")
    parser.add_argument("--qos-depth", type=int, default=0,
                        help="subscription history depth (default 0: 100 for images/clouds, 1000 for other types)")
    parser.add_argument("--polling-interval", type=float, default=0.1, metavar="SECONDS",
                        help="topic discovery period (default 0.1)")
    parser.add_argument("--use-sim-time", action="store_true", help="stamp messages with /clock time")
    parser.add_argument("--custom-data", action="append", default=[], metavar="KEY=VALUE",
                        help="store KEY=VALUE in metadata.yaml custom_data (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bags.io import BagError
    from ..bags.writer import BagWriteError, SplitBagWriter, WriterOptions

    if not args.topics and not args.all and not args.regex:
        print("error: name topics to record, or pass --all or --regex", file=sys.stderr)
        return 2
    custom = {}
    for item in args.custom_data:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --custom-data expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        custom[key] = value
    output = args.output or Path(time.strftime("rosbag2_%Y_%m_%d-%H_%M_%S"))
    try:
        options = WriterOptions(storage=args.storage, compression=args.compression,
                                compression_level=args.compression_level, chunk_size=args.chunk_size,
                                chunk_interval_s=args.chunk_interval, sync_interval_s=args.sync_interval,
                                max_bag_size=args.max_bag_size, max_bag_duration_s=args.max_bag_duration)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import re
    for pattern in (args.regex, args.exclude):
        try:
            re.compile(pattern)
        except re.error as exc:
            print(f"error: invalid regular expression {pattern!r}: {exc}", file=sys.stderr)
            return 2
    try:
        writer = SplitBagWriter(output, options, overwrite=args.overwrite, custom_data=custom)
    except BagWriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return _record(args, writer, BagError)


DIAGNOSTICS_PERIOD_S = 1.0


def _diagnostics_publisher(node, recorder, path):
    """The recorder's own /diagnostics (1 Hz): per-topic received counts, drops; WARN once anything is dropped."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    from .. import topics
    from ..ros.common import qos_profile
    publisher = node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS))
    name = f"dexterity_ros: {node.get_fully_qualified_name()}"

    def publish() -> None:
        values = recorder.diagnostic_values()
        dropped = any(key.endswith(" dropped") for key, _ in values)
        status = DiagnosticStatus(level=DiagnosticStatus.WARN if dropped else DiagnosticStatus.OK, name=name,
                                  hardware_id="rosbag2 recorder",
                                  message=(f"recording {len(recorder.stats.topics)} topic(s) to {path}"
                                           + ("; messages dropped" if dropped else ""))[:1000])
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        msg = DiagnosticArray()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.status = [status]
        publisher.publish(msg)

    return publish


def _record(args, writer, BagError) -> int:
    from rclpy.executors import SingleThreadedExecutor

    from ..ros.bags.recorder import RecordOptions, TopicRecorder
    from ..ros.bags.session import RosSession

    options = RecordOptions(topics=tuple(args.topics), all_topics=args.all, regex=args.regex, exclude=args.exclude,
                            include_hidden=args.include_hidden_topics, qos_depth=args.qos_depth,
                            polling_interval_s=args.polling_interval, use_sim_time=args.use_sim_time)
    log = lambda line: print(line, flush=True)  # noqa: E731
    with RosSession("dexterity_recorder", use_sim_time=args.use_sim_time) as session:
        recorder = TopicRecorder(session.node, writer, options, log=log)
        executor = SingleThreadedExecutor(context=session.context)
        executor.add_node(session.node)
        publish_health = _diagnostics_publisher(session.node, recorder, writer.path)
        log(f"[INFO] [recorder]: Recording to '{writer.path}' ({args.storage}, compression {args.compression})")
        started = time.monotonic()
        next_poll = 0.0
        next_health = started + DIAGNOSTICS_PERIOD_S
        waiting_reported = False
        try:
            while not session.stop.is_set():
                now = time.monotonic()
                if now >= next_health:
                    publish_health()
                    next_health = now + DIAGNOSTICS_PERIOD_S
                if now >= next_poll and recorder.needs_polling:
                    recorder.poll_graph()
                    next_poll = now + args.polling_interval
                    if recorder.missing_topics and now - started > 5 and not waiting_reported:
                        log(f"[INFO] [recorder]: waiting for publishers on {recorder.missing_topics}")
                        waiting_reported = True
                if args.duration and now - started >= args.duration:
                    break
                if recorder.error is not None:
                    break
                executor.spin_once(timeout_sec=0.05)
        finally:
            executor.remove_node(session.node)
            executor.shutdown()
            try:
                stats = recorder.stop()
            except BagError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                return 1
    why = f" ({session.signal_name})" if session.signal_name else ""
    log(f"[INFO] [recorder]: Stopped{why}. Wrote {stats.written} messages to '{writer.path}' "
        f"({', '.join(stats.files)}, {writer.bytes_written / 2**20:.1f} MiB)")
    for t in stats.topics.values():
        extra = ""
        if t.dropped_by_recorder or t.lost_in_middleware:
            extra = f", dropped by recorder {t.dropped_by_recorder}, lost in middleware {t.lost_in_middleware}"
        log(f"    {t.topic}: {t.received} received{extra}")
    if not stats.topics:
        log("[WARN] [recorder]: no topic was recorded (none of the requested topics had a publisher)")
    return 0
