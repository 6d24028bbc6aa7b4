"""ReorientEnv: reward/success/drop/timeout logic, rates, determinism, state save/restore, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dexterity_ros.geometry import rotation_distance
from dexterity_ros.sim.env import ReorientEnv, SimState
from dexterity_ros.sim.randomization import load_randomization_config
from dexterity_ros.sim.sim_config import load_sim_config

FULL = load_randomization_config()
OFF = FULL.with_enabled(None, False)


def config(**overrides):
    return load_sim_config().with_overrides(**{"objects": ("cube",), **overrides})


def hold(env: ReorientEnv, rng: np.random.Generator, scale: float = 0.05) -> np.ndarray:
    return env.initial_joint_positions + rng.normal(0.0, scale, env.num_joints)


def test_reward_is_the_decrease_of_rotation_distance():
    env = ReorientEnv(config(), FULL, seed=1)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(10):
        before = env.privileged_state()
        result = env.step(hold(env, rng))
        after = env.privileged_state()
        assert not result.info["success"]
        d0 = rotation_distance(before.object_quaternion, before.goal_quaternion)
        d1 = rotation_distance(after.object_quaternion, before.goal_quaternion)
        assert result.reward == pytest.approx(d0 - d1, abs=1e-9)
        assert result.info["rotation_distance"] == pytest.approx(d1, abs=1e-9)
        assert np.array_equal(result.observation.goal_quaternion, after.goal_quaternion)
        if result.terminated or result.truncated:
            break


def test_success_gives_a_bonus_a_new_goal_and_counts():
    # a threshold above pi makes every step a success: bonus, new goal, consecutive count, termination
    env = ReorientEnv(config(task__success_threshold_rad=3.2, task__max_consecutive_successes=3),
                      OFF, seed=2)
    env.reset()
    rng = np.random.default_rng(2)
    for k in range(1, 4):
        before = env.privileged_state()
        result = env.step(hold(env, rng))
        after = env.privileged_state()
        d1 = rotation_distance(after.object_quaternion, before.goal_quaternion)
        assert result.info["success"] and result.info["consecutive_successes"] == k
        assert result.reward == pytest.approx(before.rotation_distance - d1 + 5.0, abs=1e-9)
        assert not np.array_equal(after.goal_quaternion, before.goal_quaternion)     # new goal
        assert rotation_distance(after.goal_quaternion, after.object_quaternion) >= 0.8
        assert result.terminated == (k == 3) and not result.truncated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(hold(env, rng))


def test_drop_palm_down_ends_the_episode_with_a_penalty():
    env = ReorientEnv(config(mount="palm_down"), OFF, seed=3)
    env.reset()
    assert env.reset_attempts <= 5                                   # the grasp held after settling
    rng = np.random.default_rng(3)
    for _ in range(5):                                               # holding: no drop
        result = env.step(hold(env, rng, 0.01))
        assert not result.info["dropped"]
    open_hand = np.clip(np.zeros(env.num_joints), env.action_low, env.action_high)
    for _ in range(30):                                              # let go: it falls
        result = env.step(open_hand)
        if result.terminated:
            break
    assert result.terminated and result.info["dropped"] and not result.truncated
    assert result.reward < -19.0
    assert np.linalg.norm(env.privileged_state().object_position - np.array(
        env.config.palm_down.object_position)) > env.config.task.drop_distance_m


def test_palm_normal_goals_turn_the_object_about_the_palm_normal_within_the_bounds():
    from dexterity_ros.geometry import quat_conjugate, quat_multiply

    env = ReorientEnv(config(task__success_threshold_rad=3.2, task__goal_axis="palm_normal",
                             task__min_goal_distance_rad=0.6, task__max_goal_distance_rad=1.1), OFF, seed=3)
    env.reset()
    rng = np.random.default_rng(3)
    senses = set()
    for _ in range(12):                                   # every step a success: a new goal each step
        env.step(hold(env, rng))
        state = env.privileged_state()
        turn = quat_multiply(state.goal_quaternion, quat_conjugate(state.object_quaternion))  # palm frame
        turn = turn if turn[0] >= 0 else -turn
        angle = 2 * np.arccos(min(1.0, turn[0]))
        axis = turn[1:] / np.linalg.norm(turn[1:])
        assert 0.6 - 1e-9 <= angle <= 1.1 + 1e-9
        assert abs(abs(axis[0]) - 1.0) < 1e-9, axis           # about the palm normal (+x) only
        senses.add(np.sign(axis[0]))
        if env.privileged_state().consecutive_successes >= 11:
            break
    assert senses == {-1.0, 1.0}


def test_goal_distance_bounds_are_validated():
    from dexterity_ros.config import ConfigError

    with pytest.raises(ConfigError, match="max_goal_distance_rad"):
        config(task__min_goal_distance_rad=1.0, task__max_goal_distance_rad=0.5)
    with pytest.raises(ConfigError, match="max_goal_distance_rad"):
        config(task__max_goal_distance_rad=4.0)


def test_goal_timeout_truncates():
    env = ReorientEnv(config(task__goal_timeout_s=0.25), OFF, seed=4)     # 3 steps at 12 Hz
    env.reset()
    results = [env.step(env.initial_joint_positions) for _ in range(3)]
    assert [r.truncated for r in results] == [False, False, True]
    assert not any(r.terminated for r in results) and results[-1].info["goal_timeout"]


@pytest.mark.parametrize("rate", [12.0, 20.0, 30.0])
def test_policy_rate_and_sim_clock(rate):
    env = ReorientEnv(config(task__policy_rate_hz=rate), OFF, seed=5)
    first = env.reset()
    assert env.scene.substeps * env.model.opt.timestep == pytest.approx(1.0 / rate, abs=1e-12)
    second = env.step(env.initial_joint_positions).observation
    assert second.time_ns - first.time_ns == round(1e9 / rate)
    t0 = env.data.time
    env.step(env.initial_joint_positions)
    assert env.data.time - t0 == pytest.approx(1.0 / rate, abs=1e-9)
    assert env.reset().time_ns > second.time_ns                      # monotonic across episodes


def _episode(seed: int, steps: int = 15, render: bool = True) -> list:
    env = ReorientEnv(config(objects=("cube", "convex_1")), FULL, seed=seed)
    rng = np.random.default_rng(99)
    out = []
    obs = env.reset()
    out += [obs.joint_positions, obs.object_points, obs.goal_quaternion, obs.time_ns]
    for _ in range(steps):
        result = env.step(hold(env, rng))
        obs = result.observation
        out += [obs.joint_positions, obs.object_points, result.reward, obs.frozen, obs.frame_dropped]
        out.append(json.dumps(env.privileged_state().to_json()))
        if result.terminated or result.truncated:
            obs = env.reset()
    if render:
        frame = env.render()
        out += [frame.depth, frame.labels]
    env.close()
    return out


def _equal(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_same_seed_same_episode_bit_for_bit():
    a, b = _episode(7), _episode(7)
    assert _equal(a, b)
    assert not _equal(a, _episode(8, render=False) + a[-2:])


def test_reset_with_seed_replays_the_episode():
    env = ReorientEnv(config(), FULL, seed=0)
    rng = np.random.default_rng(0)
    obs_a = env.reset(seed=42)
    path_a = [env.step(hold(env, rng)).observation.joint_positions for _ in range(5)]
    env.reset()                                                      # another episode in between
    rng = np.random.default_rng(0)
    obs_b = env.reset(seed=42)
    path_b = [env.step(hold(env, rng)).observation.joint_positions for _ in range(5)]
    assert np.array_equal(obs_a.object_points, obs_b.object_points)
    assert _equal(path_a, path_b)


def test_get_and_set_state_roll_out_identically():
    env = ReorientEnv(config(), FULL, seed=9)
    env.reset()
    rng = np.random.default_rng(9)
    for _ in range(5):
        env.step(hold(env, rng))
    state = env.get_state()
    actions = [hold(env, rng) for _ in range(6)]

    def rollout():
        out = []
        for a in actions:
            r = env.step(a)
            out += [r.observation.joint_positions, r.observation.object_points, r.reward,
                    env.privileged_state().object_quaternion, env.data.qpos.copy()]
        return out

    first = rollout()
    env.set_state(state)
    assert _equal(first, rollout())
    env.reset()
    with pytest.raises(ValueError, match="episode"):
        env.set_state(state)
    assert isinstance(state, SimState) and state.physics.ndim == 1


def test_bad_actions_are_rejected_and_lose_nothing():
    env_a = ReorientEnv(config(), FULL, seed=10)
    env_b = ReorientEnv(config(), FULL, seed=10)
    env_a.reset(), env_b.reset()
    with pytest.raises(ValueError, match="16 joint targets in canonical order"):
        env_a.step(np.zeros(15))
    bad = env_a.initial_joint_positions.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env_a.step(bad)
    a = env_a.step(env_a.initial_joint_positions)
    b = env_b.step(env_b.initial_joint_positions)
    assert np.array_equal(a.observation.joint_positions, b.observation.joint_positions)
    assert a.reward == b.reward


def test_privileged_state_is_complete_and_json_able():
    env = ReorientEnv(config(), FULL, seed=11)
    env.reset()
    env.step(env.initial_joint_positions)
    state = env.privileged_state()
    data = json.loads(json.dumps(state.to_json()))
    for key in ("friction_scale_object", "object_mass_scale", "object_scale", "joint_damping_scale",
                "actuator_gain_scale", "joint_limit_offset", "gravity", "action_delay_steps", "backlash"):
        assert key in data["physics_params"], key
    assert data["physics_params"]["object_mass_kg"] == pytest.approx(
        0.1 * data["physics_params"]["object_mass_scale"])
    assert np.linalg.norm(state.object_quaternion) == pytest.approx(1.0)
    assert state.joint_positions.shape == state.joint_velocities.shape == (16,)
    # the object rests on the palm: tiny velocity, position near the reset point
    assert np.linalg.norm(state.object_linear_velocity) < 0.2
    assert np.linalg.norm(state.object_position - np.array(env.config.palm_up.object_position)) < 0.05


def test_object_scale_matches_collision_geometry():
    """A scaled mesh object rests on the palm at the height its scaled surface points say."""
    from dexterity_ros.geometry import quat_to_matrix
    from dexterity_ros.sim.objects import canonical_points
    from dexterity_ros.sim.randomization import RangeTerm
    import dataclasses
    palm_surface = None
    for scale in (0.8, 1.3):
        rand = dataclasses.replace(OFF, object_scale=RangeTerm(enabled=True, range=(scale, scale)))
        cfg = config(objects=("convex_0",), palm_up__initial_joints={}, palm_up__settle_time_s=0.8)
        env = ReorientEnv(cfg, rand, seed=12)
        env.reset()
        state = env.privileged_state()
        pts = canonical_points("convex_0", 1024).astype(float) * scale @ \
            quat_to_matrix(state.object_quaternion).T + state.object_position
        hand = env.hand.palm_collision
        palm_surface = hand.pos[0] + hand.size[0]
        assert pts[:, 0].min() == pytest.approx(palm_surface, abs=1.5e-3)
