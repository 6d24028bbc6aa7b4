"""GoalSampler: the simulator's goal draws, unchanged, and the symmetric minimum distance."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dexterity_ros.geometry import (axis_angle_to_quat, quat_multiply, random_quaternion, rotation_distance)
from dexterity_ros.objects.symmetry import parse_symmetry
from dexterity_ros.task import GoalSampler


def old_env_sample_goal(current, rng, min_d, max_d, axis_kind):
    """ReorientEnv._sample_goal as it was before the task package (the reference of the pinned rollouts)."""
    if axis_kind == "any" and max_d >= math.pi:
        for _ in range(100):
            goal = random_quaternion(rng)
            if rotation_distance(goal, current) >= min_d:
                return goal
        return goal
    angle = rng.uniform(min_d, max_d)
    if axis_kind == "palm_normal":
        axis = np.array([1.0, 0.0, 0.0]) * rng.choice((-1.0, 1.0))
    else:
        axis = rng.normal(size=3)
    goal = quat_multiply(axis_angle_to_quat(axis, angle), current)
    goal /= np.linalg.norm(goal)
    return goal if goal[0] >= 0 else -goal


@pytest.mark.parametrize("min_d, max_d, axis", [(0.8, math.pi, "any"), (3.0, math.pi, "any"),
                                                (0.6, 1.1, "palm_normal"), (0.3, 2.0, "any")])
def test_draws_are_bit_identical_to_the_old_env(min_d, max_d, axis):
    sampler = GoalSampler(min_d, max_d, axis)
    rng_old, rng_new, rng_pose = np.random.default_rng(5), np.random.default_rng(5), np.random.default_rng(6)
    for _ in range(200):
        current = random_quaternion(rng_pose)
        old = old_env_sample_goal(current, rng_old, min_d, max_d, axis)
        new = sampler.sample(current, rng_new)
        assert np.array_equal(old, new)
    assert rng_old.bit_generator.state == rng_new.bit_generator.state     # the same numbers consumed


def test_a_trivial_symmetry_changes_nothing():
    plain, none = GoalSampler(), GoalSampler(symmetry=parse_symmetry("none"))
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    current = np.array([1.0, 0.0, 0.0, 0.0])
    assert all(np.array_equal(plain.sample(current, a), none.sample(current, b)) for _ in range(50))


@pytest.mark.parametrize("spec", ["cube", "cylinder:z", "square:z"])
def test_symmetric_goals_keep_the_minimum_distance_up_to_the_symmetry(spec):
    symmetry = parse_symmetry(spec)
    min_d = 0.8
    plain, aware = GoalSampler(min_d), GoalSampler(min_d, symmetry=symmetry)
    rng, poses = np.random.default_rng(2), np.random.default_rng(3)
    too_close = 0
    for _ in range(100):
        current = random_quaternion(poses)
        goal = aware.sample(current, rng)
        assert symmetry.distance(goal, current) >= min_d
        assert aware.distance(goal, current) == symmetry.distance(goal, current)
        too_close += symmetry.distance(plain.sample(current, rng), current) < min_d
    assert too_close > 10        # without it, many goals would look "already reached" to a depth tracker


def test_an_impossible_symmetric_minimum_takes_the_farthest_candidate():
    cube = parse_symmetry("cube")              # no orientation is more than ~1.1 rad from a cube's equivalent
    sampler = GoalSampler(1.5, symmetry=cube)
    goal = sampler.sample(np.array([1.0, 0.0, 0.0, 0.0]), np.random.default_rng(0))
    assert 0.9 < cube.distance(goal, np.array([1.0, 0.0, 0.0, 0.0])) < 1.5


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="max_goal_distance_rad"):
        GoalSampler(1.0, 0.5)
    with pytest.raises(ValueError, match="goal_axis"):
        GoalSampler(goal_axis="sideways")
