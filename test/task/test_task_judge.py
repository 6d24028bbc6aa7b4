"""TaskJudge: the success, drop and timeout rules and the goal sequencing shared by the sim and the robot."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dexterity_ros.diagnostic_keys import TaskMetrics as K
from dexterity_ros.geometry import axis_angle_to_quat, quat_multiply
from dexterity_ros.objects.symmetry import parse_symmetry
from dexterity_ros.task import GoalSampler, TaskJudge, TaskRules

REF = np.array([0.055, 0.0, -0.04])
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
MS = 1_000_000
FRAME = 33 * MS                 # a 30 Hz tracker


def judge(**rules) -> TaskJudge:
    return TaskJudge(TaskRules(**rules), REF, GoalSampler(), np.random.default_rng(0))


def started(**rules) -> tuple[TaskJudge, np.ndarray]:
    j = judge(**rules)
    return j, j.start_episode(0, IDENTITY)


def test_success_needs_hold_frames_below_the_threshold_then_a_new_goal_is_drawn():
    j, goal = started(success_hold_frames=3)
    near = quat_multiply(axis_angle_to_quat([0, 0, 1], 0.1), goal)
    verdicts = [j.update(k * FRAME, REF, near) for k in range(1, 4)]
    assert [v.success for v in verdicts] == [False, False, True]
    assert j.frames_below == 0                                             # the count starts again
    assert verdicts[0].distance == pytest.approx(0.1) and verdicts[1].new_goal is None
    new = verdicts[2].new_goal
    assert new is not None and not np.allclose(new, goal) and np.array_equal(j.goal, new)
    assert verdicts[2].rotation_error == pytest.approx(j._distance(near, new))
    assert j.consecutive == j.goals_reached == 1 and j.running


def test_an_unseen_frame_or_one_above_the_threshold_breaks_the_hold():
    j, goal = started(success_hold_frames=2)
    far = quat_multiply(axis_angle_to_quat([1, 0, 0], 1.0), goal)
    assert not j.update(FRAME, REF, goal).success
    assert not j.update(2 * FRAME, None, None).success                     # not seen: the run restarts
    assert not j.update(3 * FRAME, REF, goal).success
    assert not j.update(4 * FRAME, REF, far).success
    assert not j.update(5 * FRAME, REF, goal).success
    assert j.update(6 * FRAME, REF, goal).success


def test_a_cube_turned_by_90_degrees_is_at_its_goal_only_for_a_symmetry_aware_judge():
    turned = axis_angle_to_quat([0, 0, 1], math.pi / 2)
    cube = parse_symmetry("cube")
    for aware, success in ((True, True), (False, False)):
        j = TaskJudge(TaskRules(symmetry_aware=aware), REF, None, None, cube)     # a follower: given goals
        j.start_episode(0, turned, goal=IDENTITY)
        v = j.update(FRAME, REF, turned)
        assert v.success is success
        assert v.distance == pytest.approx(0.0 if aware else math.pi / 2, abs=1e-6)


def test_symmetry_aware_goals_are_not_already_reached():
    cube = parse_symmetry("cube")
    j = TaskJudge(TaskRules(symmetry_aware=True), REF, GoalSampler(0.8), np.random.default_rng(3), cube)
    for k in range(20):
        goal = j.start_episode(k, IDENTITY)
        assert cube.distance(goal, IDENTITY) >= 0.8 and j.rotation_error >= 0.8


def test_drop_by_distance_ends_the_episode_and_the_object_back_in_hand_starts_the_next():
    j, goal = started(restart_frames=3)
    far = quat_multiply(axis_angle_to_quat([1, 0, 0], 1.5), goal)
    v = j.update(FRAME, REF + [0.0, 0.12, 0.0], far)
    assert v.dropped and v.episode_over and not v.lost and not j.running and j.drops == 1
    assert not j.update(2 * FRAME, REF + [0.0, 0.12, 0.0], far).episode_started      # still out of the hand
    assert not j.update(3 * FRAME, REF, far).episode_started
    assert not j.update(4 * FRAME, REF, far).episode_started
    v = j.update(5 * FRAME, REF + 0.01, far)                                         # 3 frames back in the hand
    assert v.episode_started and v.new_goal is not None and j.running and j.episodes == 2
    assert j.consecutive == 0 and j.rotation_error >= 0.8


def test_a_non_finite_position_is_a_drop():
    j, goal = started()
    assert j.update(FRAME, np.full(3, np.nan), goal).dropped


def test_lost_timeout_by_a_timer_or_unseen_frames():
    j, goal = started(lost_timeout_s=1.0)
    j.update(100 * MS, REF, axis_angle_to_quat([1, 0, 0], 1.0))
    assert not j.check(1099 * MS).episode_over
    v = j.check(1100 * MS)
    assert v.dropped and v.lost and j.drops == j.drops_lost == 1 and not j.running
    j2, goal2 = started(lost_timeout_s=0.5)
    verdicts = [j2.update(k * 100 * MS, None, None) for k in range(1, 6)]
    assert [v.lost for v in verdicts] == [False, False, False, False, True]


def test_goal_timeout_by_stamps_and_by_fixed_frames():
    far = axis_angle_to_quat([1, 0, 0], 1.0)
    j = TaskJudge(TaskRules(goal_timeout_s=2.0), REF, None, None)
    j.start_episode(0, far, goal=IDENTITY)
    assert not any(j.update(k * 100 * MS, REF, far).goal_timeout for k in range(1, 20))
    assert j.update(2000 * MS, REF, far).goal_timeout and j.goal_timeouts == 1 and not j.running
    j = TaskJudge(TaskRules(goal_timeout_s=2.0, lost_timeout_s=5.0), REF, None, None)
    j.start_episode(0, far, goal=IDENTITY)
    assert j.check(2000 * MS).goal_timeout                                  # also without poses
    # fixed frames (the simulator): ceil(0.25 s * 12 Hz) = 3 steps, whatever the stamps say
    j = TaskJudge(TaskRules(goal_timeout_s=0.25), REF, None, None, frame_period_s=1 / 12)
    j.start_episode(0, far, goal=IDENTITY)
    assert [j.update(k * 83_333_333, REF, far).goal_timeout for k in (1, 2, 3)] == [False, False, True]


def test_max_consecutive_successes_ends_the_task():
    j, goal = started(max_consecutive_successes=2)
    v1 = j.update(FRAME, REF, goal)
    v2 = j.update(2 * FRAME, REF, v1.new_goal)
    assert v1.success and not v1.episode_over
    assert v2.success and v2.task_done and v2.episode_over and not j.running


def test_metrics_and_their_diagnostic_values():
    j, goal = started(success_hold_frames=2)
    j.update(FRAME, REF, goal)
    m = j.metrics()
    assert (m.running, m.episodes, m.consecutive_successes, m.goals_reached, m.drops, m.goal_timeouts,
            m.frames_below_threshold, m.object_seen) == (True, 1, 0, 0, 0, 0, 1, True)
    assert m.rotation_error_rad == pytest.approx(0.0, abs=1e-6) and m.goal == tuple(goal)
    j.update(2 * FRAME, REF, goal)                                         # success
    j.update(3 * FRAME, REF + 1.0, goal)                                   # drop
    values = dict(j.metrics().key_values())
    assert values[K.STATE] == "waiting" and values[K.GOALS_REACHED] == "1"
    assert values[K.CONSECUTIVE_SUCCESSES] == "1" and values[K.DROPS_SO_FAR] == "1"
    assert values[K.EPISODES] == "1" and values[K.OBJECT_SEEN] == "true" and values[K.DROPS_LOST] == "0"
    assert float(values[K.ROTATION_ERROR]) >= 0.8 and values[K.GOAL].startswith("[")
    assert all(isinstance(k, str) and isinstance(x, str) for k, x in j.metrics().key_values())
    assert dict(judge().metrics().key_values())[K.ROTATION_ERROR] == "nan"


def test_a_follower_counts_each_goal_once_and_draws_none():
    j = TaskJudge(TaskRules(), REF, None, None)
    with pytest.raises(ValueError, match="follower"):
        j.start_episode(0, IDENTITY)
    j.start_episode(0, goal=IDENTITY)
    assert math.isnan(j.rotation_error)                                     # no pose seen yet
    results = [j.update(k * FRAME, REF, IDENTITY) for k in range(1, 4)]
    assert [v.success for v in results] == [True, False, False] and all(v.new_goal is None for v in results)
    j.set_goal(axis_angle_to_quat([0, 1, 0], 0.2), 4 * FRAME)
    assert j.update(5 * FRAME, REF, IDENTITY).success and j.goals_reached == 2
    assert not j.update(6 * FRAME, REF + 1.0, IDENTITY).episode_started    # waits for its leader
    j.update(7 * FRAME, REF, IDENTITY)
    for k in range(10):
        assert not j.update((8 + k) * FRAME, REF, IDENTITY).episode_started


def test_without_success_judging_only_drops_end_the_episode():
    j = TaskJudge(TaskRules(goal_timeout_s=math.inf), REF, GoalSampler(), np.random.default_rng(1),
                  frame_period_s=1 / 12, judge_success=False)
    goal = j.start_episode(0, IDENTITY)
    assert not any(j.update(k, REF, goal).success for k in range(1, 500))
    assert j.running and j.update(500, REF + 1.0, goal).dropped


def test_snapshot_and_restore_continue_identically():
    j, goal = started(success_hold_frames=2)
    j.update(FRAME, REF, goal)
    snap = j.snapshot()
    rng_state = j.rng.bit_generator.state
    first = [j.update(2 * FRAME, REF, goal), j.update(3 * FRAME, REF + 0.2, goal)]
    j.restore(snap)
    j.rng.bit_generator.state = rng_state
    again = [j.update(2 * FRAME, REF, goal), j.update(3 * FRAME, REF + 0.2, goal)]
    assert [(v.success, v.dropped) for v in first] == [(v.success, v.dropped) for v in again] == [(True, False),
                                                                                                  (False, True)]
    assert np.array_equal(first[0].new_goal, again[0].new_goal) and j.drops == 1 and j.goals_reached == 1


@pytest.mark.parametrize("bad", [dict(success_hold_frames=0), dict(lost_timeout_s=0.0), dict(restart_frames=0),
                                 dict(success_threshold_rad=float("nan"))])
def test_bad_rules_are_refused(bad):
    with pytest.raises(ValueError):
        TaskRules(**bad)


def test_rules_from_the_sim_task_section_keep_the_simulator_defaults():
    from dexterity_ros.sim.sim_config import load_sim_config

    task = load_sim_config().task
    rules = TaskRules.from_task(task)
    assert (rules.success_threshold_rad, rules.success_hold_frames, rules.drop_distance_m, rules.goal_timeout_s,
            rules.max_consecutive_successes, rules.symmetry_aware) == (
        task.success_threshold_rad, 1, task.drop_distance_m, task.goal_timeout_s, task.max_consecutive_successes,
        False)
    assert TaskRules.from_task(task, success_hold_frames=4).success_hold_frames == 4
