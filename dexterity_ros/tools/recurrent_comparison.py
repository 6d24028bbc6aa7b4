"""Feed-forward-with-history vs recurrent pose student on the same labels (issue 20, memory).

    .venv/bin/python -m dexterity_ros.tools.recurrent_comparison \
        --run runs/pose_rotate_one_reduced --out runs/recurrent_comparison --recurrent-size 64

Both students are trained by DAgger's own training step (``Distiller._train``: the
run's config, seed, symmetry augmentation and epochs) on the run's aggregated
labels (every ``iter_*/data.npz``), the recurrent one with
``student.recurrent_size`` set (truncated BPTT, ``train.bptt_steps``), and both
are evaluated on the run's held-out evaluation episodes (``evaluation`` section:
seed, episodes, steps, label_every) through TermPolicyRuntime, as DAgger
evaluates. The feed-forward student is the run's final DAgger student retrained;
``ff_weights_equal_run`` says whether its weights equal the run's own
(feed-forward training unchanged). Prints and writes ``<out>/comparison.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from ..config import from_dict
from ..learning.config import DistillConfig
from ..learning.dagger import Distiller
from ..learning.dataset import Dataset
from ..learning.evaluate import evaluate_student, json_safe


def train_and_evaluate(config: DistillConfig, data: Dataset, out: Path, stage: str, workers: int) -> dict:
    distiller = Distiller(config, out / stage, progress=False, log=print)
    try:
        _, info = distiller._train(stage, data)
    finally:
        distiller.close()
    model = out / stage / stage / "student.onnx"
    t0 = time.perf_counter()
    metrics, _ = evaluate_student(model, config, workers=workers, progress=False)
    return {"train": {k: info[k] for k in ("labels", "seconds", "samples", "validation_samples")}
            | {"final_train_loss": info["train_loss"][-1], "final_validation_loss": info["validation_loss"][-1]},
            "evaluation": metrics, "evaluation_seconds": time.perf_counter() - t0, "model": str(model)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/pose_rotate_one_reduced")
    parser.add_argument("--out", default="runs/recurrent_comparison")
    parser.add_argument("--recurrent-size", type=int, default=64)
    parser.add_argument("--bptt-steps", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", choices=("feed_forward", "recurrent"), default=None)
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the run's; the "
                                                                "held-out evaluation seeds stay the run's)")
    args = parser.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = from_dict(DistillConfig, json.loads((run / "config.json").read_text())["config"])
    config = config.with_workers(0)            # training only in the Distiller; evaluation uses --workers
    if args.seed is not None:
        config = config.with_seed(args.seed)
    parts = sorted(run.glob("iter_*/data.npz"))
    data = Dataset.concat([Dataset.load(p) for p in parts])
    print(f"{len(data)} labels from {[str(p) for p in parts]}")
    recurrent = dataclasses.replace(config, student=dataclasses.replace(config.student,
                                                                        recurrent_size=args.recurrent_size),
                                    train=dataclasses.replace(config.train, bptt_steps=args.bptt_steps))
    results: dict = {"run": str(run), "labels": len(data), "datasets": [str(p) for p in parts],
                     "train_seed": config.train.seed,
                     "evaluation": dataclasses.asdict(config.evaluation)}
    path = out / "comparison.json"
    if path.is_file():
        results = json.loads(path.read_text()) | {k: v for k, v in results.items()}
    for name, cfg in (("feed_forward", config), ("recurrent", recurrent)):
        if args.only not in (None, name):
            continue
        print(f"{name}: student {cfg.student}, train {cfg.train}")
        results[name] = train_and_evaluate(cfg, data, out, name, args.workers)
        results[name]["recurrent_size"] = cfg.student.recurrent_size
        results[name]["bptt_steps"] = cfg.train.bptt_steps if cfg.student.recurrent_size else None
        print(json.dumps(json_safe(results[name]), indent=1))
        path.write_text(json.dumps(json_safe(results), indent=1))
    final = sorted(run.glob("dagger_*/student.pt"))[-1]
    mine = out / "feed_forward" / "feed_forward" / "student.pt"
    if mine.is_file() and args.seed is None:
        a, b = torch.load(final, weights_only=True), torch.load(mine, weights_only=True)
        results["ff_weights_equal_run"] = bool(a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a))
        results["ff_weights_compared_with"] = str(final)
        print(f"feed-forward weights equal {final}: {results['ff_weights_equal_run']}")
    path.write_text(json.dumps(json_safe(results), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
