"""`dexterity-ros gait-search`: fit a finger-gait teacher with CMA-ES (dexterity_ros/learning/gait_search.py).

    dexterity-ros gait-search --config config/experiments/gait_rotate_one.yaml --out config/gaits/NAME.json \\
        [--workers 2] [--set generations=60 --set seed=0 --set initial=OTHER_GAIT]

The task, objects and randomization come from the distillation config; the result is a gait
file (config/gaits/) that an experiment uses with ``expert.method: gait``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("gait-search", help="fit a finger-gait teacher with CMA-ES on the simulator",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True,
                        help="distillation YAML: task, objects, randomization, episode length, held-out seeds")
    parser.add_argument("--out", type=Path, required=True, help="gait file to write (JSON)")
    import dataclasses

    from ..learning.gait_search import GaitSearchConfig

    settings = ", ".join(f.name for f in dataclasses.fields(GaitSearchConfig))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"search setting ({settings}; posture: comma-separated rad)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2; 0: in-process)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..learning.backends import local_executor
    from ..learning.config import load_distill_config
    from ..learning.gait import save_gait
    from ..learning.gait_search import GaitSearchConfig, parse_overrides, search_gait, with_provenance

    try:
        config = load_distill_config(args.config)
        search = GaitSearchConfig(**parse_overrides(args.overrides))
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    executor = local_executor(args.workers) if args.workers > 0 else None
    try:
        gait, report = search_gait(config, search, executor=executor)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if executor is not None:
            executor.shutdown()
    held = report["held_out"]
    command = "dexterity-ros gait-search " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    gait = with_provenance(gait, {"command": command, "config": str(args.config), "search": vars(search),
                                  "held_out": held, "held_out_episodes": report["held_out_episodes"],
                                  "generations": report["history"]})
    save_gait(gait, args.out)
    print(f"gait: {report['held_out_episodes']} held-out episodes: a goal in {held['success']:.2f} of them, "
          f"dropped {held['dropped']:.2f}, return {held['return']:.2f}; written to {args.out}")
    return 0
