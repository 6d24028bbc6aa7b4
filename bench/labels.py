"""Expert labels per second against the backend and its worker count (`distill --workers` / `--ray`).

    .venv/bin/python bench/labels.py [--config config/experiments/pose_rotate_one.yaml]
                                     [--episodes 4] [--steps 48] [--ray-workers 1 2]

The same expert-driven collection episodes (every step labelled, the pose student's
perception and tracker in the loop, every randomization term on; seeds 0..episodes-1 of the
config's training stream) run:

* baseline: one local worker process (``distill --workers 1``);
* ours: a local Ray instance with 1, 2, ... CPUs (``distill --ray local --workers N``),
  each run checked to give exactly the baseline's labels.

Printed per run: labels, wall seconds, labels/s and the ratio to the baseline. The wall time
includes starting the workers (and Ray), as a distillation stage does; on a cluster the same
code runs with the cluster's CPUs (``--ray ADDRESS``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from dexterity_ros.learning.backends import RayExecutor, local_executor  # noqa: E402
from dexterity_ros.learning.config import load_distill_config  # noqa: E402
from dexterity_ros.learning.rollout import EpisodeJob, WorkerSetup, run_episodes  # noqa: E402
from dexterity_ros.perception import load_perception_config  # noqa: E402
from dexterity_ros.sim.randomization import as_randomization_config  # noqa: E402


def collect(setup: WorkerSetup, jobs: list[EpisodeJob], executor) -> tuple[list, float]:
    t0 = time.perf_counter()
    try:
        out = run_episodes(setup, [(job, None) for job in jobs], workers=1, executor=executor)
    finally:
        executor.shutdown()
    return out, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/experiments/pose_rotate_one.yaml")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--ray-workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    c = load_distill_config(args.config)
    setup = WorkerSetup(c.build_sim_config(), as_randomization_config(c.randomization_value()), c.expert,
                        c.student.history_length, load_perception_config(),
                        student=c.student if c.student.kind == "pose" else None, tracking=c.tracker_config())
    jobs = [EpisodeJob(k, c.seed, "expert", args.steps) for k in range(args.episodes)]
    print(f"{args.episodes} expert-driven episodes of <= {args.steps} steps, every step labelled "
          f"({args.config}, {os.cpu_count()} CPUs here, load average {os.getloadavg()[0]:.2f})", flush=True)

    base, base_s = collect(setup, jobs, local_executor(1))
    labels = sum(len(e.expert_target) for e in base)
    base_rate = labels / base_s
    print(f"baseline  local processes, 1 worker : {labels} labels in {base_s:6.1f} s = {base_rate:5.2f} labels/s",
          flush=True)
    for workers in args.ray_workers:
        executor = RayExecutor("local", workers)
        out, seconds = collect(setup, jobs, executor)
        same = all(np.array_equal(a.expert_target, b.expert_target) and np.array_equal(a.obs, b.obs)
                   for a, b in zip(base, out))
        rate = sum(len(e.expert_target) for e in out) / seconds
        print(f"ours      Ray local, {workers} worker(s)   : {sum(len(e.expert_target) for e in out)} labels in "
              f"{seconds:6.1f} s = {rate:5.2f} labels/s, ratio {rate / base_rate:4.2f}x, same labels: {same}",
              flush=True)
        if not same:
            return 1
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
