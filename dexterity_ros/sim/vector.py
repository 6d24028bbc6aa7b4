"""Many ReorientEnvs stepped in parallel worker processes (or in-process with num_workers=0).

Env ``i`` is seeded with :func:`env_seeds` (seed, i) whatever the number of
workers, so the same seed gives the same batch results with 1 worker or 8.
Finished envs reset automatically: the returned arrays then hold the first
observation of the next episode, while reward/terminated/truncated belong to
the step that ended the episode. Workers are started with ``spawn`` or
``forkserver`` (never ``fork``: MuJoCo/GL state must not be duplicated).
"""
from __future__ import annotations

import multiprocessing as mp
import traceback
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .env import Observation, PrivilegedState, ReorientEnv, StepResult
from .randomization import RandomizationConfig, as_randomization_config
from .sim_config import SimConfig, as_sim_config


def env_seeds(seed: int, num_envs: int) -> list[int]:
    """Independent per-env seeds derived from one seed (stable across worker counts)."""
    return [int(np.random.SeedSequence([int(seed), i]).generate_state(1, np.uint32)[0])
            for i in range(num_envs)]


@dataclass(frozen=True)
class VectorStep:
    """Batched results, env index first."""

    joint_positions: np.ndarray          # (E, 16)
    object_points: np.ndarray            # (E, N, 3) float32
    goal_quaternion: np.ndarray          # (E, 4)
    time_ns: np.ndarray                  # (E,) int64
    episode: np.ndarray                  # (E,) episode index of the returned observation
    reward: np.ndarray                   # (E,)
    terminated: np.ndarray               # (E,) bool
    truncated: np.ndarray                # (E,) bool
    rotation_distance: np.ndarray        # (E,) after the step (before any automatic reset)
    consecutive_successes: np.ndarray    # (E,)
    frame_valid: np.ndarray              # (E,) False where the frame was dropped
    depth: np.ndarray | None = None      # (E, H, W) float32 when rendering
    labels: np.ndarray | None = None     # (E, H, W) uint8 when rendering


def _pack(obs: Observation, result: StepResult | None, render: bool) -> dict[str, Any]:
    frame = obs.render() if render else None
    return {
        "joint_positions": obs.joint_positions, "object_points": obs.object_points,
        "goal_quaternion": obs.goal_quaternion, "time_ns": obs.time_ns, "episode": obs.episode,
        "reward": 0.0 if result is None else result.reward,
        "terminated": False if result is None else result.terminated,
        "truncated": False if result is None else result.truncated,
        "rotation_distance": np.nan if result is None else result.info["rotation_distance"],
        "consecutive_successes": 0 if result is None else result.info["consecutive_successes"],
        "frame_valid": not obs.frame_dropped,
        "depth": None if frame is None else frame.depth,
        "labels": None if frame is None else frame.labels,
    }


class _EnvGroup:
    """The envs of one worker (or of the parent with num_workers=0)."""

    def __init__(self, sim_config: SimConfig, randomization: RandomizationConfig, seeds: list[int],
                 render: bool):
        self.envs = [ReorientEnv(sim_config, randomization, s) for s in seeds]
        self.render = render

    def reset(self) -> list[dict[str, Any]]:
        return [_pack(env.reset(), None, self.render) for env in self.envs]

    def step(self, actions: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for env, action in zip(self.envs, actions):
            result = env.step(action)
            obs = result.observation
            if result.terminated or result.truncated:
                obs = env.reset()
            out.append(_pack(obs, result, self.render))
        return out

    def privileged(self) -> list[PrivilegedState]:
        return [env.privileged_state() for env in self.envs]

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(conn, sim_config, randomization, seeds, render) -> None:
    group = None
    try:
        group = _EnvGroup(sim_config, randomization, seeds, render)
        conn.send(("ok", None))
        while True:
            command, payload = conn.recv()
            if command == "close":
                break
            try:
                if command == "reset":
                    reply = group.reset()
                elif command == "step":
                    reply = group.step(payload)
                elif command == "privileged":
                    reply = group.privileged()
                else:
                    raise ValueError(f"unknown command {command!r}")
                conn.send(("ok", reply))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        if group is not None:
            group.close()
        conn.close()


class VectorEnv:
    """``num_envs`` environments split over ``num_workers`` processes."""

    def __init__(self, sim_config: SimConfig | str | Mapping | None = None,
                 randomization_config: RandomizationConfig | str | Mapping | None = None,
                 seed: int = 0, num_envs: int = 4, num_workers: int | None = None,
                 render: bool = False, start_method: str = "forkserver"):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError("start_method must be 'spawn' or 'forkserver' (fork would copy MuJoCo/GL state)")
        self.sim_config = as_sim_config(sim_config)
        self.randomization = as_randomization_config(randomization_config)
        self.num_envs = num_envs
        self.num_workers = min(num_envs, mp.cpu_count() if num_workers is None else num_workers)
        self.seeds = env_seeds(seed, num_envs)
        self.render = render
        self.num_joints = None
        self._local: _EnvGroup | None = None
        self._workers: list[tuple[Any, Any, int]] = []      # (process, connection, env count)
        if self.num_workers <= 0:
            self._local = _EnvGroup(self.sim_config, self.randomization, self.seeds, render)
            self.num_joints = self._local.envs[0].num_joints
            return
        ctx = mp.get_context(start_method)
        chunks = np.array_split(np.arange(num_envs), self.num_workers)
        try:
            for chunk in chunks:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, daemon=True,
                                   args=(child, self.sim_config, self.randomization,
                                         [self.seeds[i] for i in chunk], render))
                proc.start()
                child.close()
                self._workers.append((proc, parent, len(chunk)))
            for _, conn, _ in self._workers:
                self._receive(conn)
        except Exception:
            self.close()
            raise
        from ..hand_model import load_hand_description
        self.num_joints = load_hand_description(self.sim_config.description_path()).num_joints

    @staticmethod
    def _receive(conn) -> Any:
        try:
            status, payload = conn.recv()
        except EOFError:
            raise RuntimeError("a simulation worker died (see its stderr)") from None
        if status != "ok":
            raise RuntimeError(f"simulation worker failed:\n{payload}")
        return payload

    def _gather(self, command: str, payloads: list[Any] | None = None) -> list[Any]:
        if self._local is not None:
            if command == "reset":
                return self._local.reset()
            if command == "step":
                return self._local.step(payloads[0])
            return self._local.privileged()
        for k, (_, conn, _) in enumerate(self._workers):
            conn.send((command, None if payloads is None else payloads[k]))
        out: list[Any] = []
        for _, conn, _ in self._workers:
            out.extend(self._receive(conn))
        return out

    def reset(self) -> VectorStep:
        return self._batch(self._gather("reset"))

    def step(self, actions: np.ndarray) -> VectorStep:
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, self.num_joints):
            raise ValueError(f"expected actions of shape ({self.num_envs}, {self.num_joints}), "
                             f"got {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions must be finite")
        if self._local is not None:
            return self._batch(self._gather("step", [actions]))
        bounds = np.cumsum([0] + [n for _, _, n in self._workers])
        return self._batch(self._gather("step", [actions[a:b] for a, b in zip(bounds[:-1], bounds[1:])]))

    def privileged_states(self) -> list[PrivilegedState]:
        return self._gather("privileged")

    @staticmethod
    def _batch(items: list[dict[str, Any]]) -> VectorStep:
        def stack(key: str, dtype=None):
            return np.array([item[key] for item in items], dtype=dtype)
        has_frames = items[0]["depth"] is not None
        return VectorStep(
            joint_positions=stack("joint_positions", np.float64),
            object_points=stack("object_points", np.float32),
            goal_quaternion=stack("goal_quaternion", np.float64),
            time_ns=stack("time_ns", np.int64), episode=stack("episode", np.int64),
            reward=stack("reward", np.float64), terminated=stack("terminated", bool),
            truncated=stack("truncated", bool), rotation_distance=stack("rotation_distance", np.float64),
            consecutive_successes=stack("consecutive_successes", np.int64),
            frame_valid=stack("frame_valid", bool),
            depth=np.stack([i["depth"] if i["depth"] is not None else np.zeros_like(items[0]["depth"])
                            for i in items]) if has_frames else None,
            labels=np.stack([i["labels"] if i["labels"] is not None else np.zeros_like(items[0]["labels"])
                             for i in items]) if has_frames else None)

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        for proc, conn, _ in self._workers:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc, conn, _ in self._workers:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            conn.close()
        self._workers = []

    def __enter__(self) -> "VectorEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
