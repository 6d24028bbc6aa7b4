"""Student inference speed: onnxruntime vs torch eager on the same model and inputs, one core.

    .venv/bin/python bench/policy.py [--model models/student.onnx] [--iterations 2000]

The torch module is rebuilt from the model's provenance (the reference student
builder and its seed) and checked against the ONNX file before timing, so both
backends run the same weights on the same inputs. Also times the full
PolicyRuntime.step (observation building + inference + action -> target).
Target: onnxruntime >= 2x faster than torch eager, p99 < 1 ms on one core.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dexterity_ros.hand_model import default_hand  # noqa: E402
from dexterity_ros.paths import models_path  # noqa: E402
from dexterity_ros.policy.contract import read_contract, sample_inputs  # noqa: E402
from dexterity_ros.policy.networks import build_reference_student  # noqa: E402
from dexterity_ros.policy.runtime import PolicyRuntime, RuntimeOptions, make_session  # noqa: E402


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def time_calls(fn, iterations: int, warmup: int = 200) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=models_path("student.onnx"))
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()

    contract = read_contract(args.model)
    builder = contract.provenance.get("reference_student")
    if builder is not None:
        from dexterity_ros.perception import load_perception_config
        module, _ = build_reference_student(builder["seed"], hand=default_hand(), perception=load_perception_config(),
                                            num_points=builder["num_points"],
                                            history_length=builder["history_length"],
                                            recurrent_size=builder["recurrent_size"])
    elif "distilled_student" in contract.provenance:     # trained: weights read back from the graph
        from dexterity_ros.learning.student import load_torch_student
        module, _ = load_torch_student(args.model)
    else:
        print(f"{args.model}: no reference_student/distilled_student provenance; cannot rebuild the torch module",
              file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    session = make_session(args.model, intra_op_threads=1)
    feeds = sample_inputs(contract, np.random.default_rng(0))
    names = [o.name for o in contract.outputs]
    torch_args = tuple(torch.from_numpy(feeds[s.name]) for s in contract.inputs)
    with torch.inference_mode():
        reference = module(*torch_args)
    reference = reference[0] if isinstance(reference, tuple) else reference
    diff = float(np.max(np.abs(session.run(names, feeds)[0] - reference.numpy())))
    if diff > 1e-5:
        print(f"torch module does not reproduce {args.model} (max |diff| {diff:.3g}); not benchmarking",
              file=sys.stderr)
        return 1

    ort_s = time_calls(lambda: session.run(names, feeds), args.iterations)
    with torch.inference_mode():
        torch_s = time_calls(lambda: module(*torch_args), args.iterations)

    runtime = PolicyRuntime(args.model, options=RuntimeOptions(intra_op_threads=1, reset_after_gap_s=1e9))
    hand = default_hand()
    points = next(feeds[s.name][0] for s in contract.inputs if s.meaning == "object_points")
    q = np.clip((hand.lower + hand.upper) / 2, hand.lower, hand.upper)
    goal = np.array([1.0, 0.0, 0.0, 0.0])
    stamp = [0]

    def step():
        stamp[0] += 83_333_333
        runtime.step(points, q, goal, stamp[0])
    step_s = time_calls(step, args.iterations)

    o50, o99 = percentiles(ort_s)
    t50, t99 = percentiles(torch_s)
    s50, s99 = percentiles(step_s)
    print(f"model: {args.model} ({contract.name}, {contract.point_cloud.num_points} points, "
          f"history {contract.history.length}); torch == onnxruntime within {diff:.1g}")
    print(f"machine: {os.cpu_count()} logical CPUs, 1 thread per backend, {args.iterations} iterations, "
          f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}")
    print(f"{'':28}{'p50 (ms)':>10}{'p99 (ms)':>10}")
    print(f"{'onnxruntime session.run':28}{o50:>10.3f}{o99:>10.3f}")
    print(f"{'torch eager (baseline)':28}{t50:>10.3f}{t99:>10.3f}")
    print(f"{'PolicyRuntime.step (full)':28}{s50:>10.3f}{s99:>10.3f}")
    print(f"ratio torch / onnxruntime: p50 {t50 / o50:.2f}x, p99 {t99 / o99:.2f}x  (target >= 2x)")
    print(f"onnxruntime p99 < 1 ms: {'yes' if o99 < 1.0 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
