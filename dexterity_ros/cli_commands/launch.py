"""`dexterity-ros launch FILE [name:=value ...]`: run a ROS 2 XML launch file (``ros2 launch`` stand-in).

Also ``dexterity-ros launch PKG FILE`` (FILE looked up in PKG's share directory, like ros2 launch),
``--print`` (show each process and its command line, start nothing), ``--duration S`` (stop
everything after S seconds) and ``--show-args``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..launch_xml import LaunchError, find_launch_file, list_arguments, load_launch_plan
from ..process_supervisor import LaunchHandle, run_until_stopped


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "launch", help="run a ROS 2 XML launch file (like `ros2 launch`)",
        description="Run a ROS 2 XML launch file: every <node> becomes its own process, output is "
                    "prefixed with [name-N], Ctrl-C stops everything (SIGINT, SIGTERM, SIGKILL).")
    parser.add_argument("launch_file", help="path of a .launch.xml file, or a package name followed by a file name")
    parser.add_argument("arguments", nargs="*", metavar="name:=value",
                        help="launch arguments (must be declared with <arg> in the file)")
    parser.add_argument("-p", "--print", dest="print_plan", action="store_true",
                        help="print the resolved processes and command lines, start nothing")
    parser.add_argument("-s", "--show-args", action="store_true", help="show the file's declared arguments")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop everything after this many seconds (exit code 0 on a clean stop)")
    parser.add_argument("--sigterm-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="seconds after SIGINT before a process gets SIGTERM (default 5)")
    parser.add_argument("--sigkill-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="seconds after SIGTERM before a process gets SIGKILL (default 5)")
    parser.add_argument("--stop-on-death", action="store_true",
                        help="stop everything when any process dies with a non-zero exit code")
    parser.set_defaults(func=run)


def _resolve_target(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """``FILE args...`` or ``PKG FILE args...`` (the second form when FILE is not a path)."""
    target = Path(args.launch_file)
    rest = list(args.arguments)
    if not target.exists() and rest and ":=" not in rest[0] and "/" not in args.launch_file:
        return find_launch_file(args.launch_file, rest[0]), rest[1:]
    return target, rest


def run(args: argparse.Namespace) -> int:
    try:
        path, launch_arguments = _resolve_target(args)
        if args.show_args:
            declared = list_arguments(path)
            print("Arguments (pass arguments as '<name>:=<value>'):\n")
            if not declared:
                print("  No arguments.")
            for arg in declared:
                print(f"    '{arg.name}':")
                print(f"        {arg.description or 'no description given'}")
                if arg.choices:
                    print(f"        Valid choices are: {list(arg.choices)}")
                print(f"        (default: '{arg.default}')\n" if arg.default is not None else "")
            return 0
        plan = load_launch_plan(path, launch_arguments)
    except (LaunchError, FileNotFoundError) as exc:
        print(f"[ERROR] [launch]: {exc}", file=sys.stderr)
        return 1
    if args.print_plan:
        try:
            print(plan.describe())
        finally:
            plan.cleanup()
        return 0
    handle = LaunchHandle(plan.processes, plan=plan, sigterm_timeout=args.sigterm_timeout,
                          sigkill_timeout=args.sigkill_timeout, stop_on_death=args.stop_on_death)
    handle.start()
    return run_until_stopped(handle, duration=args.duration)
