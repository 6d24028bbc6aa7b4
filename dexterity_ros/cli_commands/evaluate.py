"""`dexterity-ros evaluate`: held-out metrics of a student (through PolicyRuntime) or of the expert.

    dexterity-ros evaluate models/student.onnx --config config/experiments/distill_small.yaml [--episodes 20]
    dexterity-ros evaluate --expert --config config/experiments/distill_small.yaml
    dexterity-ros evaluate --hold --config config/experiments/distill_small.yaml     # hold-still baseline
    dexterity-ros evaluate --label-noise --config config/experiments/distill_small.yaml   # expert label noise
    dexterity-ros evaluate --learnability --config config/experiments/pose_rotate_one.yaml --workers 2
        # can a student predict the expert's labels at all? (cross-validated R^2, pose students)

Seeds come from the config's evaluation section (held out from training) unless --seed is given.
--json writes strict JSON: an undefined metric (NaN, e.g. action_error_rad without expert labels) is null.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="held-out success/drops/rotation error of a student or the expert",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=None,
                        help="student ONNX (default models/student.onnx): contract v1 (point cloud) or, with a "
                             "config whose student.kind is pose, v2 (the tracked pose)")
    parser.add_argument("--config", type=Path, default=Path("config/experiments/distill_small.yaml"),
                        help="distillation YAML: simulation, expert and evaluation settings (default distill_small)")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--expert", action="store_true", help="evaluate the privileged expert (true state, no camera)")
    who.add_argument("--hold", action="store_true", help="evaluate holding the start grasp still (baseline)")
    who.add_argument("--label-noise", action="store_true",
                     help="plan states of expert rollouts --repeats times: how much of a label is noise "
                          "(--episodes default 2, --max-steps default 20)")
    who.add_argument("--learnability", action="store_true",
                     help="record --episodes (default 16) expert-driven training episodes of a pose-student run "
                          "and cross-validate, by episode, how much of the expert's labels the student's inputs "
                          "predict (R^2 of the mean, ridge, a small MLP; dexterity_ros/learning/learnability.py); "
                          "for an expert with fixed candidates also how well they pick among its candidates")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one option of the experiment file for this measurement (repeatable), "
                             "e.g. --set expert.temperature=2")
    parser.add_argument("--repeats", type=int, default=6, help="plans per state for --label-noise (default 6)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes (default: the config's)")
    parser.add_argument("--seed", type=int, default=None, help="seed stream (default: the config's evaluation seed)")
    parser.add_argument("--max-steps", type=int, default=None, help="steps per episode (default: the config's)")
    parser.add_argument("--label-every", type=int, default=None,
                        help="expert label every k-th step for the action error (0: none; default: the config's)")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default 0: in-process)")
    parser.add_argument("--json", type=Path, default=None,
                        help="write metrics and per-episode summaries here (strict JSON: undefined metrics are null)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..learning.config import load_distill_config, with_overrides
    from ..learning.evaluate import evaluate_expert, evaluate_student, expert_label_noise, metrics_line, to_json
    from ..paths import models_path
    from ..policy.contract import PolicyError

    try:
        config = with_overrides(load_distill_config(args.config), args.overrides)
        if args.label_noise:
            noise = expert_label_noise(config, episodes=args.episodes or 2, steps=args.max_steps or 20,
                                       repeats=args.repeats, seed=args.seed)
            print(f"expert label noise: {noise['states']} states x {noise['repeats']} plans: label std "
                  f"{noise['label_std_rad']:.3f} rad per joint; |mean of plans - held targets| "
                  f"{noise['mean_change_rad']:.3f} rad per joint, of which ~{noise['leftover_noise_rad']:.3f} "
                  "is leftover noise")
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(to_json(noise))
            return 0
        if args.learnability:
            from ..learning.learnability import expert_learnability
            result, metrics = expert_learnability(config, episodes=args.episodes or 16, workers=args.workers,
                                                  progress=not args.no_progress)
            print(metrics_line(f"expert ({config.expert.knowledge}), training seeds", metrics))
            print(result.line())
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(to_json({"learnability": result.to_dict(), "expert": metrics}))
            return 0
        if args.expert or args.hold:
            driver = "expert" if args.expert else "hold"
            metrics, episodes = evaluate_expert(config, episodes=args.episodes, seed=args.seed,
                                                max_steps=args.max_steps, workers=args.workers,
                                                progress=not args.no_progress, driver=driver)
            name = f"expert ({config.expert.knowledge})" if args.expert else "hold still"
        else:
            model = args.model or models_path("student.onnx")
            metrics, episodes = evaluate_student(model, config, episodes=args.episodes, seed=args.seed,
                                                 max_steps=args.max_steps, label_every=args.label_every,
                                                 workers=args.workers, progress=not args.no_progress)
            name = str(model)
    except (ConfigError, PolicyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(metrics_line(name, metrics))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json({"metrics": metrics, "episodes": episodes}))
    return 0
