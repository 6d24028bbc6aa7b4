"""Fit a :class:`~.gait.Gait` with CMA-ES on the simulator's reward (privileged), every randomization term on.

Why CMA-ES: the gait has 3 x 16 + 1 parameters (mirrored; 6 x 16 + 1 with a cycle per sense,
plus 3 x 16 position gains with ``position_feedback``) and its return is a noisy, non-differentiable
function of them (contacts, drops, randomized physics), which is what a derivative-free
evolution strategy is for; the ``cma`` package (Hansen's reference implementation) is the
well-kept one. Each candidate drives the same ``episodes`` training episodes of a generation
(common random numbers: candidates are compared on the same randomized physics), through
:class:`~.gait.GaitExpert` itself, so the searched policy is exactly the teacher that labels
later. The result file records the command, seed and the held-out score.

    dexterity-ros gait-search --config config/experiments/gait_rotate_one.yaml --out config/gaits/NAME.json
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .gait import Gait, GaitExpert, gait_from_vector, load_gait

SEARCH_SEED_OFFSET = 7_000_000      # search episodes' seeds: far from any distillation or held-out stream


@dataclass(frozen=True)
class GaitSearchConfig:
    generations: int = 60
    population: int = 20
    episodes: int = 12                 # per candidate per generation (the same for every candidate)
    sigma: float = 0.15                # initial step size (rad for the joint parameters)
    hold_threshold_rad: float = 0.15
    seed: int = 0
    initial: str = ""                  # a gait file to start from ("": `posture`, no motion)
    posture: tuple[float, ...] = ()    # the cycles' first centre, rad in canonical joint order (empty: the
                                       # mount's start grasp); e.g. the MPC expert's mean target
    held_out_episodes: int = 48        # scored at the end on the evaluation seed stream
    position_feedback: bool = False    # also fit a linear correction on the object's offset from its grasp position
    mirror: bool = True                # search one cycle; the other sense runs it backwards (half the parameters)
    drop_cost: float = 1.0             # fitness = goals reached + progress (rad) / 5 - drop_cost x drops: the
                                       # task's own reward (drop -20, goal +5) makes a timid gait that never
                                       # drops score above one that turns the object and sometimes drops it
    omega_min: float = 0.3             # the phase step's range (rad per policy step; 0.3-0.8: a 0.65-1.75 s cycle
    omega_max: float = 0.8             # at 12 Hz); under hand_node's speed limits slower cycles can move further

    def __post_init__(self) -> None:
        object.__setattr__(self, "posture", tuple(float(v) for v in self.posture))
        if self.generations < 1 or self.population < 4 or self.episodes < 1 or self.sigma <= 0:
            raise ValueError("gait search: need generations >= 1, population >= 4, episodes >= 1, sigma > 0")
        if not 0.0 < self.omega_min < self.omega_max < math.pi:
            raise ValueError(f"gait search: need 0 < omega_min < omega_max < pi, got {self.omega_min}, "
                             f"{self.omega_max}")

    @property
    def omega_range(self) -> tuple[float, float]:
        return self.omega_min, self.omega_max


_ENVS: dict[str, Any] = {}


def _env(setup):
    from ..sim.env import ReorientEnv

    key = repr(setup)
    if key not in _ENVS:
        _ENVS.clear()
        _ENVS[key] = ReorientEnv(setup[0], setup[1], seed=0)
    return _ENVS[key]


def gait_episode(env, gait: Gait, seed: int, steps: int) -> dict[str, float]:
    """One episode driven by the gait on the true state: return, goals reached, dropped."""
    expert = GaitExpert(gait)
    env.reset(seed=seed)
    expert.reset(env)
    total, info = 0.0, {"consecutive_successes": 0, "dropped": False}
    for _ in range(steps):
        result = env.step(expert.act(env))
        total += result.reward
        info = result.info
        if result.terminated or result.truncated:
            break
    return {"return": total, "goals": float(info["consecutive_successes"]), "dropped": float(info["dropped"]),
            "progress": total - env.config.task.drop_penalty * float(info["dropped"])
            - env.config.task.success_bonus * float(info["consecutive_successes"])}


def _score(args) -> dict[str, float]:
    setup, theta, hold, drop_cost, feedback, omega_range, seeds, steps = args
    env = _env(setup)
    gait = gait_from_vector(theta, env.initial_joint_positions, env.action_low, env.action_high,
                            env.joint_names, hold, position_feedback=feedback, omega_range=omega_range)
    runs = [gait_episode(env, gait, s, steps) for s in seeds]
    return {"fitness": float(np.mean([r["goals"] + r["progress"] / 5.0 - drop_cost * r["dropped"] for r in runs])),
            "return": float(np.mean([r["return"] for r in runs])),
            "goals": float(np.mean([r["goals"] for r in runs])),
            "success": float(np.mean([r["goals"] > 0 for r in runs])),
            "dropped": float(np.mean([r["dropped"] for r in runs]))}


def vector_of(gait: Gait, initial: np.ndarray, omega_range: tuple[float, float] | None = None) -> np.ndarray:
    """Inverse of :func:`~.gait.gait_from_vector` (the search's warm start)."""
    from .gait import OMEGA_MAX, OMEGA_MIN

    low, high = omega_range or (OMEGA_MIN, OMEGA_MAX)
    fraction = (gait.omega - low) / (high - low)
    fraction = min(max(fraction, 1e-6), 1 - 1e-6)
    per_sense = np.stack([gait.base - initial[None], gait.sin_amplitude, gait.cos_amplitude], axis=1)
    return np.concatenate([per_sense.reshape(-1), [math.log(fraction / (1 - fraction))]])


def search_gait(config, search: GaitSearchConfig, executor: Executor | None = None,
                log: Callable[[str], None] = print) -> tuple[Gait, dict[str, Any]]:
    """CMA-ES over gait vectors on ``config`` (a DistillConfig: its task, objects, randomization)."""
    try:
        import cma
    except ImportError:     # a training dependency (requirements.txt), not a robot one
        raise ValueError("gait search needs the cma package: pip install cma==4.5.0 (requirements.txt)") from None

    from ..sim.randomization import as_randomization_config

    setup = (config.build_sim_config(), as_randomization_config(config.randomization_value()))
    env = _env(setup)
    initial = env.initial_joint_positions
    joints = env.num_joints
    if search.initial:
        x0 = vector_of(load_gait(search.initial), initial, search.omega_range)
        if search.mirror:
            x0 = np.concatenate([x0[:3 * joints], x0[-1:]])
        start_gain = load_gait(search.initial).position_gain
    else:
        start_gain = np.zeros((joints, 3))       # no motion yet, but two independent harmonics of 0.05 rad so the phase is readable
        x0 = np.zeros(6 * joints + 1)
        if search.posture:
            if len(search.posture) != joints:
                raise ValueError(f"gait search: posture needs {joints} values, got {len(search.posture)}")
            offset = np.clip(np.array(search.posture), env.action_low, env.action_high) - initial
            x0[:joints] = x0[3 * joints:4 * joints] = offset
        x0[joints:2 * joints] = x0[4 * joints:5 * joints] = 0.05
        x0[2 * joints:3 * joints] = x0[5 * joints:6 * joints] = np.linspace(-0.05, 0.05, joints)
        if search.mirror:
            x0 = np.concatenate([x0[:3 * joints], x0[-1:]])
    if search.position_feedback:
        from .gait import GAIN_SCALE

        x0 = np.concatenate([x0[:-1], (start_gain / GAIN_SCALE).reshape(-1), x0[-1:]])
    strategy = cma.CMAEvolutionStrategy(x0, search.sigma, {"popsize": search.population, "seed": search.seed + 1,
                                                           "verbose": -9})
    hold = search.hold_threshold_rad
    steps = config.episode_steps
    history = []
    started = time.perf_counter()
    mapper = executor.map if executor is not None else map
    for generation in range(search.generations):
        candidates = strategy.ask()
        seeds = [SEARCH_SEED_OFFSET + search.seed * 100_000 + generation * search.episodes + k
                 for k in range(search.episodes)]
        scores = list(mapper(_score, [(setup, x, hold, search.drop_cost, search.position_feedback,
                                       search.omega_range, seeds, steps) for x in candidates]))
        strategy.tell(candidates, [-s["fitness"] for s in scores])
        row = {"generation": generation, "seconds": time.perf_counter() - started,
               "mean_fitness": float(np.mean([s["fitness"] for s in scores])),
               "best_fitness": float(max(s["fitness"] for s in scores)),
               "mean_return": float(np.mean([s["return"] for s in scores])),
               "mean_success": float(np.mean([s["success"] for s in scores])),
               "best_return": float(max(s["return"] for s in scores)), "sigma": float(strategy.sigma)}
        history.append(row)
        log(f"generation {generation}: {row['seconds']:.0f} s, fitness mean {row['mean_fitness']:.2f} "
            f"best {row['best_fitness']:.2f}, episodes with a goal {row['mean_success']:.2f}, sigma {row['sigma']:.3f}")
    held_out = [config.evaluation.seed + k for k in range(search.held_out_episodes)]
    chunks = [chunk for chunk in (held_out[k::4] for k in range(4)) if chunk]     # spread over the workers
    parts = list(mapper(_score, [(setup, strategy.mean, hold, search.drop_cost, search.position_feedback,
                                  search.omega_range, chunk, steps) for chunk in chunks]))
    weights = np.array([len(c) for c in chunks], dtype=np.float64)
    score = {key: float(np.average([p[key] for p in parts], weights=weights)) for key in parts[0]}
    gait = gait_from_vector(strategy.mean, initial, env.action_low, env.action_high, env.joint_names, hold,
                            position_feedback=search.position_feedback, omega_range=search.omega_range)
    return gait, {"history": history, "held_out": score, "held_out_episodes": len(held_out)}


def with_provenance(gait: Gait, provenance: dict[str, Any]) -> Gait:
    import dataclasses

    return dataclasses.replace(gait, provenance=provenance)


def parse_overrides(values: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs for :class:`GaitSearchConfig` (typed by the field's default)."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(GaitSearchConfig)}
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"gait search: unknown setting {item!r} (known: {sorted(fields)})")
        kind = type(getattr(GaitSearchConfig(), key))
        try:
            if kind is bool:
                if value.lower() not in ("true", "false"):
                    raise ValueError
                out[key] = value.lower() == "true"
            else:
                out[key] = tuple(float(v) for v in value.split(",")) if kind is tuple else kind(value)
        except ValueError:
            raise ValueError(f"gait search: {key}={value!r} is not a {kind.__name__}") from None
    return out
