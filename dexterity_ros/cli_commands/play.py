"""`dexterity-ros play BAG`: publish a rosbag2 bag at its recorded timing (``ros2 bag play``).

Any rosbag2 bag (MCAP or sqlite3, split, compressed, written by ros2 bag,
rosbags or our recorder, or an interrupted recording). Rate factor, start
offset, loop, topic filter, remapping (old:=new) and /clock; each topic is
published with the QoS recorded in the bag. See docs/bags.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "play", help="play a rosbag2 bag back (like `ros2 bag play`)",
        description="Publish the messages of a rosbag2 bag (directory, .mcap or .db3) at their recorded timing, "
                    "with the QoS the recorded publishers offered.")
    parser.add_argument("bag", type=Path, help="bag directory or storage file")
    parser.add_argument("-r", "--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--start-offset", type=float, default=0.0, metavar="SECONDS",
                        help="skip this much of the beginning of the bag")
    parser.add_argument("-l", "--loop", action="store_true", help="play the bag again and again")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics")
    parser.add_argument("--remap", "-m", nargs="+", default=[], metavar="OLD:=NEW",
                        help="publish topic OLD under the name NEW")
    parser.add_argument("--clock", nargs="?", type=float, const=40.0, default=0.0, metavar="HZ",
                        help="publish /clock with the bag time at HZ (default 40 when given)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                        help="before playing, wait up to this long for every topic to have a subscriber")
    parser.add_argument("--delay", type=float, default=0.0, metavar="SECONDS", help="sleep before playing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bags.io import BagError, BagReader
    from ..ros.bags.player import BagPlayer, PlayOptions, parse_remap
    from ..ros.bags.session import RosSession

    try:
        remaps = tuple(parse_remap(r) for r in args.remap)
        options = PlayOptions(rate=args.rate, start_offset_s=args.start_offset, loop=args.loop,
                              topics=tuple(args.topics) if args.topics else None, remaps=remaps,
                              clock_hz=args.clock, wait_for_subscribers_s=args.wait_for_subscribers,
                              delay_s=args.delay)
        if not args.rate > 0:
            raise ValueError(f"rate must be > 0, got {args.rate}")
        if args.clock < 0:
            raise ValueError("clock rate must be >= 0")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        reader = BagReader(args.bag)
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        for note in reader.notes:
            log(f"[WARN] [player]: {note}")
        with RosSession("dexterity_player") as session:
            try:
                player = BagPlayer(session.node, reader, options, log=log)
            except (BagError, ValueError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            log(f"[INFO] [player]: Playing '{args.bag}' ({reader.duration_ns * 1e-9:.3f} s, rate {args.rate}"
                f"{', loop' if args.loop else ''}{f', /clock at {args.clock:g} Hz' if args.clock else ''})")
            try:
                stats = player.run(session.stop)
            except BagError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
    finally:
        reader.close()
    state = "Stopped" if stats.stopped_early else "Finished"
    log(f"[INFO] [player]: {state}: published {stats.total} messages"
        + (f", {stats.late} more than 50 ms late" if stats.late else ""))
    return 0
