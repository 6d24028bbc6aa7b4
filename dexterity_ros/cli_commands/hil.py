"""`dexterity-ros hil [--scenario NAME ...] [--list]`: the hardware-in-the-loop scenario suite.

Each scenario launches the full graph against the simulated hand, injects a
fault (camera stop, empty segmentation, student killed, e-stop, late and
swapped frames, a bag-loop clock jump) and prints one verdict line with its
figures. Exit code 1 if any scenario fails. Runs on a private, localhost-only
ROS domain so it can never command a hand elsewhere on the network. An HTML
report (one row per scenario, latency histograms, the hand's states over each
run) goes to ``--report-dir`` (default runs/hil/).
"""
from __future__ import annotations

import argparse
import datetime
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..hil.checks import Verdict
    from ..hil.scenarios import SuiteOptions
    from ..report import ReportFiles

DEFAULT_REPORT_DIR = Path("runs") / "hil"


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
    parser.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR, metavar="DIR",
                        help="write report.html (images embedded) and its PNGs here "
                             f"(default {DEFAULT_REPORT_DIR}/, relative to the working directory)")
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
    from ..hil.scenarios import SCENARIOS, SuiteOptions
    from ..report import ReportError, prepare_report_dir

    if args.list:
        width = max(len(n) for n in SCENARIOS)
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<{width}}  {scenario.summary}")
        return 0
    unknown = [n for n in args.scenario if n not in SCENARIOS]
    if unknown:
        print(f"error: unknown scenario(s) {unknown}; known: {list(SCENARIOS)}", file=sys.stderr)
        return 2
    try:
        prepare_report_dir(args.report_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = args.scenario or list(SCENARIOS)
    domain = isolate_ros_domain(args.domain_id)
    print(f"HIL suite: {len(names)} scenario(s) on ROS_DOMAIN_ID {domain} (localhost only)", flush=True)
    options = SuiteOptions(driver_profile=args.driver_profile, seed=args.seed, keep_dir=args.keep,
                           echo=sys.stdout if args.verbose else None)
    try:
        verdicts, files = run_suite(names, options, args.report_dir,
                                    context=[f"ROS_DOMAIN_ID {domain}, driver profile {args.driver_profile}, "
                                             f"seed {args.seed}"],
                                    echo=lambda line: print(line, flush=True))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"HIL report: {files.html} (figures: {', '.join(str(p) for p in files.images.values())})")
    return 0 if all(v.passed for v in verdicts) else 1


def run_suite(names: list[str], options: SuiteOptions, report_dir: Path, context: list[str] | None = None,
              echo: Callable[[str], None] = print) -> tuple[list[Verdict], ReportFiles]:
    """Run the scenarios one after the other, echo each verdict, and write the suite's HTML report.

    Returns the verdicts and the report's files (:class:`dexterity_ros.report.ReportFiles`).
    """
    from ..hil.run import observed_runs
    from ..hil.scenarios import run_scenario
    from ..report import Observation, Report, RunResult, write_report

    observed: dict[str, Observation] = {}
    verdicts, lines = [], []

    def say(line: str) -> None:
        lines.append(line)
        echo(line)

    started = datetime.datetime.now().astimezone()
    with observed_runs(lambda name, observation: observed.__setitem__(name, observation)):
        for name in names:
            observed.pop(name, None)
            verdict = run_scenario(name, options)
            verdicts.append(verdict)
            say(verdict.line())
            for note in verdict.notes:
                say(f"    note: {note}")
    failed = [v.scenario for v in verdicts if not v.passed]
    say(f"HIL suite: {len(verdicts) - len(failed)}/{len(verdicts)} passed" + (f"; failed: {failed}" if failed else ""))
    runs = [RunResult(v.scenario, v.passed, ", ".join(v.figures), observed.get(v.scenario, Observation(v.duration_s)),
                      details=[f"FAILED: {f}" for f in v.failures] + [f"note: {n}" for n in v.notes])
            for v in verdicts]
    report = Report("dexterity_ros HIL suite", runs, text="\n".join(lines),
                    context=[f"{len(verdicts)} scenario(s), started {started:%Y-%m-%d %H:%M %Z}"] + (context or []))
    return verdicts, write_report(report, report_dir)
