"""`dexterity-ros distill --config config/experiments/distill_small.yaml`: DAgger + BC distillation of the expert.

    dexterity-ros distill --config config/experiments/distill_small.yaml --out runs/distill_small \\
        [--workers N] [--ray auto|local|ADDRESS] [--seed N] [--plot docs/results_small.png] [--ship models/student.onnx]

Resumable: every stage (collected data, trained and exported students,
evaluations) is checkpointed under --out and skipped on a rerun of the same
configuration. --ship re-exports the final DAgger student through the contract
exporter with the run's metrics in its provenance. --seed replicates a configuration
with another training seed (episode seeds, driver draws, network initialisation and
batch order) on the same held-out episodes: one run's DAgger-vs-BC gap may be luck.
``student: {kind: pose}`` in the config distils a pose student (the tracked object
pose, the goal and the joints; a contract-v2 model for student_node) instead of the
point-cloud student. --ray runs the episodes on a Ray cluster instead of local worker processes
(learning/backends.py; docs/ray.md): the same seeds give the same dataset on either.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill", help="distill the privileged MPC expert into a student, point cloud or tracked pose "
                        "(DAgger + BC baseline)",
        description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True,
                        help="distillation YAML (e.g. config/experiments/distill_small.yaml or config/experiments/distill_full.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default runs/distill_<name>)")
    parser.add_argument("--workers", type=int, default=None, help="simulation worker processes (default: config)")
    parser.add_argument("--ray", metavar="auto|local|ADDRESS", default=None,
                        help="run the episodes on Ray: 'local' starts a private instance with --workers CPUs, "
                             "'auto' joins this machine's cluster (ray start --head / RAY_ADDRESS), else a "
                             "cluster address (HOST:6379 or ray://HOST:10001); default: local worker processes")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed for both the episodes and the networks (default: the config's "
                             "distill.seed and train.seed); the held-out evaluation seed is kept")
    parser.add_argument("--plot", type=Path, default=None, help="also write the DAgger-vs-BC plot (PNG) here")
    parser.add_argument("--ship", type=Path, default=None,
                        help="export the final DAgger student here (e.g. models/student.onnx) with its metrics")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..learning.config import load_distill_config
    from ..learning.dagger import run_distill
    from ..learning.evaluate import metrics_line, results_table

    try:
        config = load_distill_config(args.config)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.workers is not None:
        if args.workers < 0:
            print("error: --workers must be >= 0", file=sys.stderr)
            return 2
        config = config.with_workers(args.workers)
    if args.seed is not None:
        try:
            config = config.with_seed(args.seed)
        except ValueError as exc:
            print(f"error: --seed: {exc}", file=sys.stderr)
            return 2
    out = args.out or Path("runs") / f"distill_{config.name}"
    where = f"Ray: {args.ray}" if args.ray else f"{config.workers} worker(s)"
    print(f"distill '{config.name}' -> {out} ({where}, config digest {config.digest()})", flush=True)
    try:
        results = run_distill(config, out, progress=not args.no_progress, ray_address=args.ray)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print()
    print(metrics_line("expert (privileged, true state)", results["expert"]))
    for entry in results["iterations"]:
        print(metrics_line(f"DAgger iteration {entry['iteration']} ({entry['labels']} labels)", entry["dagger"]))
        if "bc" in entry:
            print(metrics_line(f"BC with the same labels          ", entry["bc"]))
    print()
    print(results_table(results))
    print(f"\n{results['seconds'] / 60:.1f} min on {results['backend']} (all invocations of this run: "
          f"{results['total_seconds'] / 60:.1f} min); results in {out / 'results.json'}")
    if args.plot:
        from ..learning.plot import plot_results
        print(f"plot: {plot_results(results, args.plot)}")
    if args.ship:
        ship(results, config, args, out)
    return 0


def ship(results: dict, config, args: argparse.Namespace, out: Path) -> None:
    """Re-export the final DAgger student with the run's numbers in its provenance (v1 or, for a pose
    student, v2 contract)."""
    final = Path(results["final_student"])
    last = results["iterations"][-1]
    command = "dexterity-ros distill --config " + shlex.quote(str(args.config)) + " --out " + shlex.quote(str(out))
    stamp = dict(command=command, training_labels=last["labels"], dagger_iterations=len(results["iterations"]),
                 heldout_metrics={"student": last["dagger"], "expert": results["expert"]},
                 heldout_seed=config.evaluation.seed)
    if config.student.kind == "pose":
        from ..learning.pose_student import (export_pose_student, load_torch_pose_student, pose_student_description,
                                             teacher_phrase, without_export_provenance)
        module, contract = load_torch_pose_student(final)
        # the description names the teacher (also for runs trained before it did)
        contract = dataclasses.replace(without_export_provenance(contract),
                                       description=pose_student_description(teacher_phrase(config.expert)))
        _, report = export_pose_student(module, contract.with_provenance(**stamp), args.ship)
    else:
        from ..learning.student import load_torch_student
        from ..policy.export import export_policy
        module, contract = load_torch_student(final)
        provenance = {k: v for k, v in contract.provenance.items()
                      if k not in ("exporter", "torch", "onnx", "opset", "parity_max_abs_diff", "parity_trials")}
        contract = dataclasses.replace(contract, provenance=provenance).with_provenance(**stamp)
        report = export_policy(module, contract, args.ship)
    print(f"shipped {report.path}: {report.size_bytes / 1024:.0f} KiB, onnxruntime vs torch max |diff| "
          f"{report.max_abs_diff:.2g}; {json.dumps(last['dagger'])}")
