"""`dexterity-ros`: one command line for launching, data, models, bags and checks.

Each subcommand lives in ``dexterity_ros/cli_commands/<name>.py`` and exposes
``register(subparsers)``; this module only assembles them, so adding a tool
never touches the others.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# module name in dexterity_ros.cli_commands, in help order
COMMAND_MODULES = (
    "launch",
    "demo",
    "generate",
    "parity",
    "export",
    "import_policy", "contract",
    "info",
    "calib_check",
    "record",
    "play",
    "reindex",
    "doctor",
    "distill", "evaluate", "gait_search",
    "hil",
    "object",
    # operator commands: bring-up and inspection of a running graph without the ros2 CLI
    "hand", "goal", "topic", "param",
    "view",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command``, only that command's module when it registers that name.

    Importing every command module costs a noticeable fraction of a second; `dexterity-ros hand estop`
    should not pay for the training and import tools first.
    """
    parser = argparse.ArgumentParser(
        prog="dexterity-ros",
        description="Sim-to-real dexterous manipulation on an Allegro hand (ROS 2).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    module_name = (command or "").replace("-", "_")
    if module_name in COMMAND_MODULES:
        importlib.import_module(f"dexterity_ros.cli_commands.{module_name}").register(sub)
        if command in sub.choices:
            return parser
        return build_parser()
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"dexterity_ros.cli_commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    as_program = argv is None   # run as the program (not called by a test or another tool in its process)
    if as_program:
        from .stack_dump import register_stack_dump   # SIGUSR1: every thread's stack, as the nodes do
        register_stack_dump()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except KeyboardInterrupt:
        code = 130
    if as_program:
        exit_past_a_stuck_teardown(code)
    return code


def exit_past_a_stuck_teardown(code: int) -> None:
    """Leave at once, with ``code``, when a side node's ROS teardown is still blocked (see ros.background).

    The command's answer is printed already; the interpreter's finalizers would touch the same stuck
    DDS entities and could hang the exit the bounded teardown has just avoided.
    """
    background = sys.modules.get("dexterity_ros.ros.background")    # never imported: no ROS node was made
    if background is None or not background.teardown_left_behind():
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
