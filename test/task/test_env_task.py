"""ReorientEnv with the shared task judge: external goals, symmetry-aware judging, its metrics."""
from __future__ import annotations

import numpy as np
import pytest

from dexterity_ros.diagnostic_keys import TaskMetrics as K
from dexterity_ros.geometry import axis_angle_to_quat, rotation_distance
from dexterity_ros.objects.symmetry import parse_symmetry
from dexterity_ros.sim.env import ReorientEnv
from dexterity_ros.sim.randomization import load_randomization_config
from dexterity_ros.sim.sim_config import load_sim_config

OFF = load_randomization_config().with_enabled(None, False)


def config(**overrides):
    return load_sim_config().with_overrides(**{"objects": ("cube",), **overrides})


def test_external_goals_are_followed_never_judged_a_success_and_never_time_out():
    env = ReorientEnv(config(task__success_threshold_rad=3.2, task__goal_timeout_s=0.25), OFF, seed=2,
                      external_goals=True)
    env.reset()
    goal = axis_angle_to_quat(np.array([0.0, 1.0, 0.0]), 1.0)
    env.set_goal(2.0 * goal)                                           # normalized
    for _ in range(6):                                                 # 6 steps > goal_timeout_s (3 steps)
        before = env.privileged_state()
        result = env.step(env.initial_joint_positions)
        after = env.privileged_state()
        assert not result.info["success"] and not result.truncated and not result.terminated
        assert np.allclose(after.goal_quaternion, goal) and np.allclose(result.observation.goal_quaternion, goal)
        d1 = rotation_distance(after.object_quaternion, goal)
        assert result.reward == pytest.approx(before.rotation_distance - d1, abs=1e-9)
    assert env.task_metrics().goals_reached == 0
    with pytest.raises(ValueError, match="finite non-zero"):
        env.set_goal([np.nan, 0, 0, 1])
    with pytest.raises(ValueError, match="finite non-zero"):
        env.set_goal([0.0, 0.0, 0.0])


def test_external_goals_still_end_the_episode_on_a_drop():
    env = ReorientEnv(config(mount="palm_down"), OFF, seed=3, external_goals=True)
    env.reset()
    open_hand = np.clip(np.zeros(env.num_joints), env.action_low, env.action_high)
    for _ in range(30):
        result = env.step(open_hand)
        if result.terminated:
            break
    assert result.terminated and result.info["dropped"]
    assert env.task_metrics().drops == 1 and not env.task_metrics().running


def test_a_set_goal_is_judged_in_the_default_mode_too():
    env = ReorientEnv(config(task__success_threshold_rad=0.3), OFF, seed=4)
    env.reset()
    env.set_goal(env.privileged_state().object_quaternion)            # already there: the next step succeeds
    result = env.step(env.initial_joint_positions)
    assert result.info["success"] and result.info["consecutive_successes"] == 1
    assert result.info["rotation_distance"] >= 0.8                     # and a new goal was drawn


def test_symmetry_aware_env_judges_up_to_the_cube_symmetry():
    env = ReorientEnv(config(task__symmetry_aware=True), OFF, seed=5)
    cube = parse_symmetry("cube")
    for _ in range(3):
        env.reset()
        state = env.privileged_state()
        assert cube.distance(state.goal_quaternion, state.object_quaternion) >= 0.8
        assert state.rotation_distance == pytest.approx(
            cube.distance(state.object_quaternion, state.goal_quaternion), abs=1e-9)
        env.step(env.initial_joint_positions)
        state = env.privileged_state()
        assert state.rotation_distance == pytest.approx(
            cube.distance(state.object_quaternion, state.goal_quaternion), abs=1e-9)
    values = dict(env.task_metrics().key_values())
    assert values[K.EPISODES] == "3" and values[K.STATE] == "running"
