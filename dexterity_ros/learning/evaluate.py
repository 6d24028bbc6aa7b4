"""Held-out evaluation of a student (ONNX, through PolicyRuntime) or of the expert, and result tables.

Metrics (per episode, averaged over episodes; :func:`.rollout.summarize`):

* ``success_rate``: fraction of episodes that reached at least one goal
  (rotation error < the task's success threshold, 0.4 rad by default);
* ``consecutive_successes``: goals reached in a row before the episode ended;
* ``drop_rate``: fraction of episodes that ended with the object dropped;
* ``final_rotation_error_rad``: rotation error to the current goal at episode end;
* ``action_error_rad``: mean |student target - expert target| (rad, over joints)
  on states the student itself visits (expert labels every ``label_every``-th step).

JSON output (``evaluate --json``, :func:`to_json`) is strict JSON: a metric
that is undefined (NaN, e.g. ``action_error_rad`` without expert labels, or
``expert_ms_per_plan`` without expert plans) or infinite is written as
``null``, never as the non-standard ``NaN``/``Infinity`` tokens that
``json.dumps`` emits by default and strict parsers (jq, JavaScript) reject.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..perception import PerceptionConfig, load_perception_config
from ..sim.randomization import as_randomization_config
from .config import DistillConfig
from .backends import local_executor
from .rollout import EpisodeJob, WorkerSetup, run_episodes, summaries, summarize


def _setup(config: DistillConfig, perception: PerceptionConfig | None = None) -> WorkerSetup:
    """The run's worker setup; ``perception`` None: the packaged config/perception.yaml."""
    return WorkerSetup(config.build_sim_config(), as_randomization_config(config.randomization_value()),
                       config.expert, config.student.history_length,
                       perception if perception is not None else load_perception_config(),
                       student=config.student if config.student.kind == "pose" else None,
                       tracking=config.tracker_config())


def evaluate_student(model: str | Path, config: DistillConfig, *, episodes: int | None = None,
                     seed: int | None = None, max_steps: int | None = None, label_every: int | None = None,
                     workers: int = 0, progress: bool = True, perception: PerceptionConfig | None = None,
                     ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Roll the student out on held-out seeds (defaults: the config's evaluation section).

    ``perception``: the segmentation the student sees (None: the packaged config).
    """
    e = config.evaluation
    blob = Path(model).read_bytes()
    jobs = [EpisodeJob(k, e.seed if seed is None else seed, "student", max_steps or e.max_steps,
                       label_every=e.label_every if label_every is None else label_every, record=False)
            for k in range(episodes or e.episodes)]
    out = _run(_setup(config, perception), [(job, blob) for job in jobs], workers, progress,
               f"evaluate {Path(model).name}")
    return summarize(out), summaries(out)


def evaluate_expert(config: DistillConfig, *, episodes: int | None = None, seed: int | None = None,
                    max_steps: int | None = None, workers: int = 0, progress: bool = True,
                    driver: str = "expert", perception: PerceptionConfig | None = None,
                    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The expert acting on the true state every step (no camera), or ``driver='hold'`` (hold still)."""
    e = config.evaluation
    jobs = [EpisodeJob(k, e.seed if seed is None else seed, driver, max_steps or e.max_steps,
                       render=False, label_every=0, record=False)
            for k in range(episodes or e.expert_episodes)]
    out = _run(_setup(config, perception), [(job, None) for job in jobs], workers, progress, driver)
    return summarize(out), summaries(out)


def expert_label_noise(config: DistillConfig, *, episodes: int = 2, steps: int = 20, repeats: int = 6,
                       seed: int | None = None) -> dict[str, float]:
    """How much of an expert label is signal: plan each state ``repeats`` times with independent noise.

    States come from expert-driven episodes of the held-out seed stream. Returns
    ``label_std_rad`` (per joint, between plans of one state: what no student can
    fit), ``mean_change_rad`` (|mean of the plans - the targets "hold" repeats|, per
    joint: the systematic part, plus label_std / sqrt(repeats) of leftover noise)
    and ``leftover_noise_rad`` (that expected leftover, E|N(0, std^2 / repeats)|).
    With ``expert.common_noise`` the expert's own labels do not vary at all; this
    then measures how much a label depends on which noise table was drawn.
    """
    import numpy as np

    from ..sim.env import ReorientEnv
    from .expert import SamplingExpert

    if episodes < 1 or steps < 1 or repeats < 2:
        raise ValueError("label noise: need episodes >= 1, steps >= 1, repeats >= 2")
    stream = config.evaluation.seed if seed is None else seed
    spread, change = [], []
    randomization = as_randomization_config(config.randomization_value())
    with ReorientEnv(config.build_sim_config(), randomization, seed=stream) as env:
        expert = SamplingExpert(config.expert)
        for episode in range(episodes):
            env.reset(seed=stream + episode)
            for step in range(steps):
                held = expert.hold_targets(env.get_state().env)
                plans = np.array([expert.act(env, noise_rng=np.random.default_rng([stream, episode, step, k]))
                                  for k in range(repeats)])
                spread.append(plans.std(axis=0, ddof=1).mean())
                change.append(np.abs(plans.mean(axis=0) - held).mean())
                result = env.step(plans[0])
                if result.terminated or result.truncated:
                    break
        expert.close()
    std = float(np.mean(spread))
    return {"states": len(spread), "repeats": repeats, "label_std_rad": std,
            "mean_change_rad": float(np.mean(change)),
            "leftover_noise_rad": std / math.sqrt(repeats) * math.sqrt(2 / math.pi)}


def _run(setup: WorkerSetup, tasks, workers: int, progress: bool, what: str):
    executor = local_executor(workers) if workers > 0 else None
    try:
        return run_episodes(setup, tasks, workers=workers, progress=progress, description=what,
                            executor=executor)
    finally:
        if executor is not None:
            executor.shutdown()


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf; numpy scalars included) replaced by None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):   # numpy scalar or array
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(data: Any, indent: int | None = 1) -> str:
    """Strict JSON of evaluation results: undefined metrics become null (see the module docstring)."""
    return json.dumps(json_safe(data), indent=indent, allow_nan=False)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def metrics_line(name: str, m: dict[str, float]) -> str:
    return (f"{name}: success {_fmt(m['success_rate'])} ({m['episodes']} episodes), goals/episode "
            f"{_fmt(m['consecutive_successes'])}, drops {_fmt(m['drop_rate'])}, final rotation error "
            f"{_fmt(m['final_rotation_error_rad'])} rad, action error {_fmt(m['action_error_rad'], 3)} rad")


def results_table(results: dict[str, Any]) -> str:
    """Markdown: DAgger vs BC per iteration (same labels, same held-out seeds), then the expert."""
    rows = ["| iteration | labels | beta | policy | success rate | goals / episode | drop rate | "
            "final rot. error (rad) | action error on own states (rad) | train loss (rad^2) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in results["iterations"]:
        for policy, key, train in (("DAgger", "dagger", "train"), ("BC", "bc", "bc_train")):
            if key not in e:
                continue
            m = e[key]
            rows.append(f"| {e['iteration']} | {e['labels']} | {e['beta']:.2f} | {policy} | {_fmt(m['success_rate'])} | "
                        f"{_fmt(m['consecutive_successes'])} | {_fmt(m['drop_rate'])} | "
                        f"{_fmt(m['final_rotation_error_rad'])} | {_fmt(m['action_error_rad'], 3)} | "
                        f"{_fmt(e[train]['final_loss'], 4)} |")
    x = results["expert"]
    rows.append(f"| - | - | - | expert (privileged) | {_fmt(x['success_rate'])} | {_fmt(x['consecutive_successes'])} | "
                f"{_fmt(x['drop_rate'])} | {_fmt(x['final_rotation_error_rad'])} | - | - |")
    return "\n".join(rows)
