"""The learnability measure separates labels a student can learn from labels it cannot.

Synthetic episodes stand in for expert recordings (the recording itself is the
rollout code every DAgger test exercises); what is tested here is the statistic
docs/results.md section 11 rests on.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dexterity_ros.learning.learnability import cross_validated_learnability, lag1_autocorrelation


def _episodes(count: int = 8, steps: int = 60, dim: int = 12, joints: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(count * steps, dim))
    episode = np.repeat(np.arange(count), steps)
    return rng, inputs, episode, joints


def test_a_linear_function_of_the_inputs_is_learnable_by_ridge_and_mlp():
    rng, inputs, episode, joints = _episodes(steps=30)
    weights = rng.normal(size=(inputs.shape[1], joints))
    labels = 0.1 * inputs @ weights + 0.01 * rng.normal(size=(len(inputs), joints))
    result = cross_validated_learnability(inputs, labels, episode, folds=4)
    assert result.r2["ridge"] > 0.85
    assert result.r2["mlp"] > 0.7
    assert abs(result.r2["mean"]) < 0.05


def test_labels_unrelated_to_the_inputs_score_no_better_than_the_mean():
    rng, inputs, episode, joints = _episodes()
    labels = rng.normal(size=(len(inputs), joints))
    result = cross_validated_learnability(inputs, labels, episode, folds=4, mlp=False)
    assert result.r2["ridge"] < 0.02
    assert abs(result.lag1_autocorrelation) < 0.1
    assert "R^2 mean" in result.line() and result.to_dict()["episodes"] == 8


def test_an_episode_specific_offset_does_not_leak_into_the_score():
    """Labels that depend only on which episode they are in cannot be predicted on held-out episodes."""
    rng, inputs, episode, joints = _episodes()
    offsets = rng.normal(size=(8, joints))
    inputs = np.c_[inputs, episode[:, None] * 0.0]           # nothing in the inputs names the episode
    labels = offsets[episode]
    result = cross_validated_learnability(inputs, labels, episode, folds=4, mlp=False)
    assert result.r2["ridge"] < 0.0


def test_lag1_autocorrelation_of_a_smooth_and_of_an_alternating_sequence():
    t = np.arange(200, dtype=float)
    smooth = np.c_[np.sin(t / 20.0), np.cos(t / 20.0)]
    alternating = np.c_[(-1.0) ** t, (-1.0) ** t]
    episode = np.zeros(200, int)
    assert lag1_autocorrelation(smooth, episode) > 0.95
    assert lag1_autocorrelation(alternating, episode) < -0.95


@pytest.mark.parametrize("case", ["too few episodes", "mismatched lengths", "not finite"])
def test_bad_input_is_refused_with_the_reason(case):
    rng, inputs, episode, joints = _episodes(count=3)
    labels = rng.normal(size=(len(inputs), joints))
    if case == "too few episodes":
        match = "cannot make 4 folds"
    elif case == "mismatched lengths":
        labels, match = labels[:-1], "must agree"
    else:
        labels[3, 1], match = np.nan, "finite"
    with pytest.raises(ValueError, match=match):
        cross_validated_learnability(inputs, labels, episode, folds=4)


def test_set_overrides_change_one_option_and_refuse_unknown_keys_and_bad_values():
    """`evaluate --set expert.temperature=2` (the variants of results.md section 11) without a copied file."""
    from dexterity_ros.config import ConfigError
    from dexterity_ros.learning.config import load_distill_config, with_overrides

    base = load_distill_config("config/experiments/pose_rotate_one_simulator_pose.yaml")
    assert with_overrides(base, []) == base
    changed = with_overrides(base, ["expert.temperature=2", "expert.warm_start=true"])
    assert changed.expert.temperature == 2.0 and changed.expert.warm_start is True
    assert changed.student == base.student and changed.expert.num_samples == base.expert.num_samples
    for bad, reason in [("expert.nope=1", "unknown key"), ("nosection.key=1", "not a section"),
                        ("expert.temperature=abc", "expected a number"), ("temperature", "SECTION.KEY=VALUE")]:
        with pytest.raises(ConfigError, match=reason):
            with_overrides(base, [bad])


def test_the_mean_future_move_averages_within_an_episode_only():
    from dexterity_ros.learning.learnability import mean_future_move

    labels = np.arange(10, dtype=float)[:, None]
    episode = np.array([0] * 6 + [1] * 4)
    moved = mean_future_move(labels, episode, 3)[:, 0]
    assert moved.tolist() == [1.0, 2.0, 3.0, 4.0, 4.5, 5.0, 7.0, 8.0, 8.5, 9.0]


def test_a_drift_hidden_under_step_noise_is_found_by_the_horizon_measure():
    """Steps = a slow drift set by slowly varying inputs + large white noise: single steps score
    near zero, the mean move over 16 steps clearly above it."""
    rng = np.random.default_rng(1)
    count, steps, joints = 8, 120, 4
    t = np.arange(steps) / 40.0
    phases = rng.uniform(0, 2 * np.pi, size=(count, joints))
    angle = np.concatenate([t[:, None] + phases[k] for k in range(count)])
    inputs = np.c_[np.sin(angle), np.cos(angle)]
    episode = np.repeat(np.arange(count), steps)
    labels = 0.1 * np.sin(angle) + rng.normal(scale=0.3, size=angle.shape)
    result = cross_validated_learnability(inputs, labels, episode, folds=4, mlp=False, horizons=(16,))
    assert result.r2["ridge"] < 0.1
    assert result.horizon_r2[16] > max(0.15, result.r2["ridge"] + 0.1)
    assert "mean move over 16 steps" in result.line()


def _choice_episodes(count: int = 8, steps: int = 60, dim: int = 6, candidates: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(count * steps, dim))
    episode = np.repeat(np.arange(count), steps)
    costs = rng.normal(size=(len(inputs), candidates))
    costs[:, 0] = 0.0                                        # candidate 0 is "hold"
    return rng, inputs, episode, costs


def test_a_choice_the_inputs_decide_is_picked_on_held_out_episodes():
    """The best candidate follows from the inputs: a chooser that ranks candidates from them gains most of
    what the expert's own choice gains, and far more than a blind pick."""
    from dexterity_ros.learning.learnability import cross_validated_choice

    rng, inputs, episode, costs = _choice_episodes()
    best = 1 + (inputs[:, 0] > 0) + 2 * (inputs[:, 1] > 0)   # candidates 1-4, decided by two inputs' signs
    costs[np.arange(len(costs)), best] = -3.0
    result = cross_validated_choice(inputs, costs, episode, folds=4)
    assert result.top1["mlp"] > 0.8 and result.top1["ridge"] > 0.4
    assert result.gain["mlp"] > 0.8 * result.oracle_gain
    assert result.gain["random"] < 0.3 * result.oracle_gain
    assert result.better_than_hold["mlp"] > 0.9
    assert "candidate choice" in result.line() and result.to_dict()["candidates"] == 8


def test_costs_unrelated_to_the_inputs_give_no_informed_choice():
    from dexterity_ros.learning.learnability import cross_validated_choice

    rng, inputs, episode, costs = _choice_episodes()
    result = cross_validated_choice(inputs, costs, episode, folds=4, mlp=False)
    assert result.top1["ridge"] < 0.25                      # chance 1/8; the expert's pick is noise here
    assert result.gain["ridge"] < 0.25 * result.oracle_gain
    assert abs(result.gain["random"] - float((costs[:, :1] - costs).mean())) < 1e-12


@pytest.mark.parametrize("case", ["one candidate", "mismatched lengths", "not finite", "too few episodes"])
def test_a_bad_choice_input_is_refused_with_the_reason(case):
    from dexterity_ros.learning.learnability import cross_validated_choice

    rng, inputs, episode, costs = _choice_episodes(count=5)
    if case == "one candidate":
        costs, match = costs[:, :1], "at least 2 candidates"
    elif case == "mismatched lengths":
        costs, match = costs[:-1], "must agree"
    elif case == "not finite":
        costs[2, 3], match = np.inf, "finite"
    else:
        episode, match = episode % 3, "cannot make 4 folds"
    with pytest.raises(ValueError, match=match):
        cross_validated_choice(inputs, costs, episode, folds=4)


def test_fixed_candidates_names_the_experts_that_pick_among_the_same_moves_every_step():
    from dexterity_ros.learning.expert import ExpertConfig

    fixed = ExpertConfig(iterations=1, plans_per_action=1, common_noise=True, method="predictive_sampling")
    assert fixed.fixed_candidates
    for change in ({"iterations": 2}, {"plans_per_action": 2}, {"common_noise": False}, {"warm_start": True},
                   {"learner_prior": 1.0}):
        assert not dataclasses.replace(fixed, **change).fixed_candidates, change
