"""`dexterity-ros generate --episodes N --out DIR`: randomized episode bags (seeded, resumable)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="write randomized simulation episodes as rosbag2 (MCAP) episode bags",
        description="Roll out the student in the randomized simulation and write one episode bag per "
                    "episode (docs/data.md). Seeded by (seed, episode index); rerunning the same command "
                    "skips finished episodes and redoes an interrupted one.")
    parser.add_argument("--episodes", type=int, required=True, help="number of episodes")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--model", type=Path, default=None, help="student ONNX (default: models/student.onnx)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode")
    parser.add_argument("--sim-config", type=Path, default=None, help="simulation YAML (default config/sim.yaml)")
    parser.add_argument("--randomization", type=Path, default=None,
                        help="randomization YAML (default config/randomization.yaml)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..ros.bags.generate import generate

    if args.episodes <= 0:
        print("error: --episodes must be positive")
        return 2
    try:
        summaries = generate(args.out, args.episodes, args.seed, model=args.model,
                             sim_config=str(args.sim_config) if args.sim_config else None,
                             randomization=str(args.randomization) if args.randomization else None,
                             max_steps=args.max_steps, progress=not args.no_progress)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    for s in summaries:
        print(f"episode {s.index:03d} ({s.object}): {s.steps} steps, {s.actions} actions, "
              f"{s.successes} successes, {'dropped' if s.dropped else 'held'}, "
              f"final rotation error {s.final_rotation_distance:.2f} rad")
    print(f"{len(summaries)} new episode(s) in {args.out}")
    return 0
