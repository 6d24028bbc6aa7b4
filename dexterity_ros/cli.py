"""`dexterity-ros`: one command line for launching, data, models, bags and checks.

Each subcommand lives in ``dexterity_ros/cli_commands/<name>.py`` and exposes
``register(subparsers)``; this module only assembles them, so adding a tool
never touches the others.
"""
from __future__ import annotations

import argparse
import importlib
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
    "distill", "evaluate",
    "hil",
    "object",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dexterity-ros",
        description="Sim-to-real dexterous manipulation on an Allegro hand (ROS 2).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"dexterity_ros.cli_commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
