"""`dexterity-ros hil [--scenario NAME ...] [--list]`: the hardware-in-the-loop scenario suite.

Each scenario launches the full graph against the simulated hand, injects a
fault (camera stop, empty segmentation, student killed, e-stop, late and
swapped frames, a bag-loop clock jump) and prints one verdict line with its
figures. Exit code 1 if any scenario fails. Runs on a private, localhost-only
ROS domain so it can never command a hand elsewhere on the network.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("hil", help="run the hardware-in-the-loop scenario suite (simulated hand)",
                                   description="Run the hardware-in-the-loop scenarios: the full graph against "
                                               "the simulated hand, one fault each, one verdict line each "
                                               "(docs/hil.md). Exit code 1 if any scenario fails.")
    parser.add_argument("--scenario", "-s", action="append", default=[], metavar="NAME",
                        help="run only this scenario (repeatable; default: all, see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--driver-profile", default="allegro_v4", choices=("allegro_v4", "ros2_control"),
                        help="protocol the simulated hand speaks (default allegro_v4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated episodes (default 0)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep every scenario's logs and bag under DIR (failed runs are always kept)")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="ROS_DOMAIN_ID to run on (default: a random one in 101..200, localhost only)")
    parser.add_argument("--verbose", "-v", action="store_true", help="echo the nodes' output")
    parser.set_defaults(func=run)


def isolate_ros_domain(domain_id: int | None) -> int:
    """A private domain on this machine only; set before any rclpy context exists in this process."""
    if domain_id is None:
        domain_id = random.SystemRandom().randint(101, 200)
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("MUJOCO_GL", "egl")
    from ..paths import config_path
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_path("fastdds_shm.xml")))
    return domain_id


def run(args: argparse.Namespace) -> int:
    from ..hil.scenarios import SCENARIOS, SuiteOptions, run_scenario

    if args.list:
        width = max(len(n) for n in SCENARIOS)
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<{width}}  {scenario.summary}")
        return 0
    unknown = [n for n in args.scenario if n not in SCENARIOS]
    if unknown:
        print(f"error: unknown scenario(s) {unknown}; known: {list(SCENARIOS)}", file=sys.stderr)
        return 2
    names = args.scenario or list(SCENARIOS)
    domain = isolate_ros_domain(args.domain_id)
    print(f"HIL suite: {len(names)} scenario(s) on ROS_DOMAIN_ID {domain} (localhost only)", flush=True)
    options = SuiteOptions(driver_profile=args.driver_profile, seed=args.seed, keep_dir=args.keep,
                           echo=sys.stdout if args.verbose else None)
    failed = []
    for name in names:
        verdict = run_scenario(name, options)
        print(verdict.line(), flush=True)
        for note in verdict.notes:
            print(f"    note: {note}", flush=True)
        if not verdict.passed:
            failed.append(name)
    print(f"HIL suite: {len(names) - len(failed)}/{len(names)} passed" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0
