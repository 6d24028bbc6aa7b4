"""`dexterity-ros launch FILE [name:=value ...]`: run a ROS 2 XML launch file (``ros2 launch`` stand-in).

Also ``dexterity-ros launch PKG FILE`` (FILE looked up in PKG's share directory, like ros2 launch:
two positional arguments are PACKAGE FILE unless the first is an existing file),
``--print`` (show each process and its command line, start nothing), ``--duration S`` (stop
everything after S seconds) and ``--show-args``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..launcher import (LaunchError, LaunchHandle, find_launch_file, list_arguments, load_launch_plan,
                        run_until_stopped)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "launch", help="run a ROS 2 XML launch file (like `ros2 launch`)",
        description="Run a ROS 2 XML launch file: every <node> becomes its own process, output is "
                    "prefixed with [name-N]. Ctrl-C, SIGTERM or SIGHUP (terminal closed) stops everything "
                    "(SIGINT, then SIGTERM, then SIGKILL); if the launcher itself is killed, every process "
                    "gets SIGTERM from the kernel (parent-death signal). A node with on_exit=\"shutdown\" "
                    "shuts the whole launch down when it exits.")
    parser.add_argument("launch_file", metavar="FILE_OR_PACKAGE",
                        help="path of a .launch.xml file, or a package name followed by a file name in it")
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
    """``FILE args...`` or ``PKG FILE args...``, decided as ``ros2 launch`` does.

    The first argument is a launch file only when it is an existing file; otherwise it names a
    package and the second one the launch file in it (so ``dexterity_ros robot.launch.xml`` means
    the package even where a ``dexterity_ros/`` folder is in the current directory).
    """
    target = Path(args.launch_file)
    rest = list(args.arguments)
    if target.is_file():
        return target, rest
    if rest and ":=" not in rest[0]:
        return find_launch_file(args.launch_file, rest[0]), rest[1:]
    if target.is_dir():
        raise FileNotFoundError(f"'{args.launch_file}' is a directory, not a launch file "
                                f"(for a package's launch file: dexterity-ros launch PACKAGE FILE)")
    raise FileNotFoundError(f"launch file not found: {args.launch_file} "
                            f"(for a package's launch file: dexterity-ros launch PACKAGE FILE)")


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
    return run_until_stopped(handle, duration=args.duration)   # starts it once SIGINT/SIGTERM/SIGHUP are handled
