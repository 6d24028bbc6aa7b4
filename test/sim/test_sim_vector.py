"""VectorEnv: worker processes give the same results as in-process envs; auto-reset; bad input."""
from __future__ import annotations

import numpy as np
import pytest

from dexterity_ros.sim.env import ReorientEnv
from dexterity_ros.sim.randomization import load_randomization_config
from dexterity_ros.sim.sim_config import load_sim_config
from dexterity_ros.sim.vector import VectorEnv, env_seeds

FULL = load_randomization_config()
CONFIG = load_sim_config().with_overrides(objects=("cube", "cylinder"), task__goal_timeout_s=0.5)


def run(num_workers: int, steps: int = 12, render: bool = False) -> list[np.ndarray]:
    out = []
    with VectorEnv(CONFIG, FULL, seed=3, num_envs=3, num_workers=num_workers, render=render) as vec:
        base = np.tile(ReorientEnv(CONFIG, FULL, 0).initial_joint_positions, (3, 1))
        batch = vec.reset()
        out += [batch.joint_positions, batch.object_points, batch.goal_quaternion]
        rng = np.random.default_rng(0)
        for _ in range(steps):
            batch = vec.step(base + rng.normal(0, 0.05, base.shape))
            out += [batch.joint_positions, batch.object_points, batch.reward, batch.terminated,
                    batch.truncated, batch.episode, batch.time_ns, batch.frame_valid]
            if render:
                out += [batch.depth, batch.labels]
        out.append(np.array([s.object_position for s in vec.privileged_states()]))
    return out


def test_workers_match_in_process_bit_for_bit():
    local = run(num_workers=0)
    workers = run(num_workers=2)
    assert len(local) == len(workers)
    assert all(np.array_equal(a, b) for a, b in zip(local, workers))
    episodes = local[-4]                                  # last batch's episode indices
    assert episodes.max() >= 1                            # the 0.5 s goal timeout forced auto-resets


def test_env_seeds_are_stable_and_distinct():
    assert env_seeds(3, 4) == env_seeds(3, 4)
    assert len(set(env_seeds(3, 8))) == 8
    assert env_seeds(3, 2) == env_seeds(3, 4)[:2]


def test_rendering_in_workers():
    out = run(num_workers=1, steps=2, render=True)
    depth, labels = out[-3], out[-2]
    assert depth.shape == (3, 240, 320) and labels.shape == (3, 240, 320)
    assert np.all((labels == 2).sum(axis=(1, 2))[out[-4]] > 0)       # object seen where a frame came


def test_bad_input():
    with pytest.raises(ValueError, match="num_envs"):
        VectorEnv(CONFIG, FULL, num_envs=0)
    with pytest.raises(ValueError, match="forkserver"):
        VectorEnv(CONFIG, FULL, num_envs=1, start_method="fork")
    with VectorEnv(CONFIG, FULL, seed=0, num_envs=2, num_workers=1) as vec:
        vec.reset()
        with pytest.raises(ValueError, match=r"shape \(2, 16\)"):
            vec.step(np.zeros((2, 15)))
        with pytest.raises(ValueError, match="finite"):
            vec.step(np.full((2, 16), np.nan))
        batch = vec.step(np.tile(ReorientEnv(CONFIG, FULL, 0).initial_joint_positions, (2, 1)))   # still alive
        assert batch.joint_positions.shape == (2, 16)
