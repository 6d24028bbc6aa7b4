"""Preset isaacgymenvs-dextreme: DeXtreme's rl_games LSTM checkpoint runs in TermPolicyRuntime as rl_games runs it.

The proof (issue 19): :mod:`upstream_dextreme` writes a DeXtreme-shaped checkpoint (LSTM 1024 with layer
norm before an MLP [512, 512], rl_games key names, seeded weights, per-input normaliser statistics) and
computes the policy's observation and forward pass from upstream's code, independently of the preset. The
imported model, run through TermPolicyRuntime with its LSTM state fed back, must give the same actions
within 1e-5 over 40 steps; a reset must zero the state; a broken convention (input order, layer norm,
quaternion order) must break the agreement; bad checkpoints must be refused with the difference named.
"""
from __future__ import annotations

import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch

from dexterity_ros.policy.importers import ImportRefused, all_presets, preset
from dexterity_ros.policy.importers import dextreme
from dexterity_ros.policy.runtime import RuntimeOptions, StepStatus
from dexterity_ros.policy.runtime_v2 import TermPolicyRuntime
from dexterity_ros.policy.terms import limits_from_unit
import upstream_dextreme as ud

TOLERANCE = 1e-5
BROKEN = 1e-2
STEPS = 40
OPTIONS = ("--palm-pose", ud.PALM_POSE_TEXT, "--goal-position", " ".join(map(str, ud.GOAL_POSITION)))


def import_file(path, *argv, name: str = dextreme.NAME):
    parser = argparse.ArgumentParser()
    preset(name).add_arguments(parser)
    return preset(name).build(path, parser.parse_args([str(a) for a in argv]))


@pytest.fixture(scope="module")
def checkpoint():
    torch.manual_seed(0)
    return ud.make_checkpoint(seed=3)


@pytest.fixture(scope="module")
def imported(checkpoint, tmp_path_factory):
    path = ud.save(checkpoint, tmp_path_factory.mktemp("dextreme") / "AllegroHandADRAsymmLSTM.pth")
    return import_file(path, *OPTIONS)


@pytest.fixture(scope="module")
def run(imported):
    """The imported policy over the trajectory: actions, targets, the state fed at each step, then a reset."""
    runtime = TermPolicyRuntime(imported.model.SerializeToString(), hand=ud.HAND, options=RuntimeOptions())
    traj = ud.trajectory(STEPS)
    actions, targets, h_fed, c_fed = [], [], [], []
    for step in traj.inputs:
        out = runtime.step(step)
        assert out.status is StepStatus.ACTION, out.reason
        actions.append(out.action.astype(np.float64))
        targets.append(out.target)
        h_fed.append(runtime.last_inputs["h_in"].copy())
        c_fed.append(runtime.last_inputs["c_in"].copy())
    runtime.reset("test reset")
    after = runtime.step(traj.inputs[0])
    return {"traj": traj, "actions": np.asarray(actions), "targets": np.asarray(targets), "h": h_fed, "c": c_fed,
            "after_reset": after, "h_after_reset": runtime.last_inputs["h_in"].copy(),
            "c_after_reset": runtime.last_inputs["c_in"].copy()}


def test_the_contract_declares_the_lstm_state_and_dextreme_conventions(imported):
    c = imported.contract
    assert [(r.name, r.shape) for r in c.recurrent_inputs] == [("h_in", (1, 1, 1024)), ("c_in", (1, 1, 1024))]
    assert [(p.input, p.output, p.initial_value) for p in c.recurrent_state] == [("h_in", "h_out", 0.0),
                                                                                 ("c_in", "c_out", 0.0)]
    assert [(o.name, o.meaning) for o in c.outputs] == [("mu", "action"), ("h_out", "recurrent_state"),
                                                        ("c_out", "recurrent_state")]
    assert c.inputs[0].terms == ("dof_pos", "object_pos", "object_rot", "goal_pos", "goal_rot",
                                 "goal_relative_rot", "last_actions")
    assert c.input_shape(c.inputs[0]) == (1, 50)
    assert c.inputs[0].normalizer.clip_input == 50.0 and c.inputs[0].normalizer.clip == 5.0
    assert {c.term(n).params.order for n in ("object_rot", "goal_rot", "goal_relative_rot")} == {"xyzw"}
    assert c.action.mode == "unscale_limits" and c.action.ema_alpha == 0.15 and c.action.input_clip == 1.0
    assert c.control_rate_hz == 30.0
    assert dextreme.NAME in [p.name for p in all_presets()]
    assert {c.term(n).params.sign for n in ("object_rot", "goal_rot")} == {"largest_positive"}
    assert (c.term("goal_relative_rot").params.input_sign, c.term("goal_relative_rot").params.sign) == \
        ("largest_positive", "as_is")
    assert any("quaternion sign: largest-magnitude component positive" in n for n in imported.notes)


def test_imported_lstm_matches_the_rl_games_reference_with_the_state_carried(checkpoint, run):
    reference = ud.Reference(checkpoint)
    state, last = reference.zero_state(), np.zeros(16)
    lower, upper = ud.LOWER, ud.UPPER
    prev_target = np.asarray(run["traj"].inputs[0].joint_positions)[ud.IGE_ORDER]
    for k, step in enumerate(run["traj"].inputs):
        # the state the runtime fed is the reference's state after the previous step (zeros at the start)
        assert np.max(np.abs(run["h"][k].reshape(-1) - state[0].reshape(-1))) < TOLERANCE, k
        assert np.max(np.abs(run["c"][k].reshape(-1) - state[1].reshape(-1))) < TOLERANCE, k
        mu, state = reference(ud.observation(step, last), state)
        assert np.max(np.abs(run["actions"][k] - mu)) < TOLERANCE, k
        # allegro_hand_dextreme.py apply_actions: scale, EMA with the previous target, clamp (then the hand's)
        a = np.clip(mu, -1.0, 1.0)
        target = np.clip(0.15 * limits_from_unit(a, lower, upper) + 0.85 * prev_target, lower, upper)
        target = np.clip(target, ud.HAND.lower[ud.IGE_ORDER], ud.HAND.upper[ud.IGE_ORDER])
        assert np.max(np.abs(run["targets"][k][ud.IGE_ORDER] - target)) < TOLERANCE, k
        prev_target, last = target, a
    assert np.max(np.abs(state[0])) > 0.05, "the LSTM state never moved: the test would prove nothing"
    assert np.ptp(run["actions"], axis=0).max() > 0.1, "constant actions: the test would prove nothing"


def test_a_reset_zeroes_the_state_and_restarts_the_policy(run):
    assert run["after_reset"].reset_reason == "test reset"
    assert not np.any(run["h_after_reset"]) and not np.any(run["c_after_reset"])
    assert np.array_equal(run["after_reset"].action.astype(np.float64), run["actions"][0])
    assert np.max(np.abs(run["actions"][STEPS - 1] - run["actions"][0])) > BROKEN   # a carried state differs


def test_the_trajectory_exercises_the_quaternion_sign_convention(run):
    """Some wrist-frame quaternions have a component larger than |w|: there largest-positive and w >= 0 differ."""
    quats = [q for step in run["traj"].inputs for q in ud.wrist_quaternions(step)]
    assert all(q[int(np.argmax(np.abs(q)))] > 0 for q in quats)          # upstream's sign
    assert sum(np.abs(q[0]) < np.max(np.abs(q[1:])) for q in quats) >= 5
    assert any(q[0] < 0 for q in quats)                                   # w >= 0 would flip these


@pytest.mark.parametrize("broken", ["input order", "no layer norm", "quaternions wxyz", "quaternion sign w >= 0",
                                    "state reset every step"])
def test_a_broken_convention_breaks_the_agreement(checkpoint, run, broken):
    order = list(ud.INPUTS)
    order[1], order[2] = order[2], order[1]
    if broken == "input order":
        actions = ud.rollout(ud.Reference(checkpoint), run["traj"], order=tuple(order))
    elif broken == "no layer norm":
        actions = ud.rollout(ud.Reference(checkpoint, layer_norm=False), run["traj"])
    elif broken == "quaternions wxyz":
        actions = ud.rollout(ud.Reference(checkpoint), run["traj"], quat_order="wxyz")
    elif broken == "quaternion sign w >= 0":
        actions = ud.rollout(ud.Reference(checkpoint), run["traj"], w_nonnegative=True)
    else:
        reference, last, rows = ud.Reference(checkpoint), np.zeros(16), []
        for step in run["traj"].inputs:
            mu, _ = reference(ud.observation(step, last), reference.zero_state())
            rows.append(mu)
            last = np.clip(mu, -1.0, 1.0)
        actions = np.asarray(rows)
    assert np.max(np.abs(actions - run["actions"])) > BROKEN
    assert np.max(np.abs(ud.rollout(ud.Reference(checkpoint), run["traj"]) - run["actions"])) < TOLERANCE


def test_a_dict_normaliser_is_joined_in_the_input_order(checkpoint, imported, tmp_path):
    per_key = ud.make_checkpoint(seed=3, units=8, mlp=(16,), dict_normalizer=True)
    result = import_file(ud.save(per_key, tmp_path / "dict.pth"), *OPTIONS)
    assert result.contract.inputs[0].normalizer == imported.contract.inputs[0].normalizer
    without_goal = OrderedDict((k, v) for k, v in per_key["model"].items() if "goal_pose" not in k)
    with pytest.raises(ImportRefused, match=r"dict normaliser.*missing \['goal_pose'\]"):
        import_file(ud.save({**per_key, "model": without_goal}, tmp_path / "missing.pth"), *OPTIONS)


def _small(**changes) -> dict:
    return ud.make_checkpoint(seed=5, units=8, mlp=(16,), **changes)


def _edited(checkpoint: dict, drop=(), **replace) -> dict:
    model = OrderedDict((k, v) for k, v in checkpoint["model"].items() if k not in drop)
    model.update(replace)
    return {**checkpoint, "model": model}


def test_bad_checkpoints_are_refused_naming_the_difference(tmp_path):
    def refused(checkpoint, pattern, *argv):
        path = ud.save(checkpoint, tmp_path / "bad.pth")
        with pytest.raises(ImportRefused, match=pattern):
            import_file(path, *(argv or OPTIONS))

    good = _small()
    rnn = [k for k in good["model"] if ".rnn." in k or "layer_norm" in k]
    mlp_only = _edited(good, drop=rnn, **{"a2c_network.actor_mlp.0.weight": torch.zeros(16, 50)})
    refused(mlp_only, r"not a recurrent rl_games checkpoint.*--preset isaacgymenvs-allegro")
    refused(_small(gates=3), r"GRU .*3 x 8 gates")
    refused(_small(obs_size=72), r"LSTM input size.*expects 50, the model has 72")
    refused(_edited(good, drop=["a2c_network.rnn.rnn.bias_hh_l0"]), r"bias_hh_l0 missing")
    refused(_edited(good, drop=["a2c_network.layer_norm.bias"]), r"layer_norm.weight without .*layer_norm.bias")
    refused(_edited(good, **{"a2c_network.layer_norm.weight": torch.ones(9)}), r"shape \[9\].*LayerNorm\(8\)")
    refused(_small(actions=12), r"action size \(mu\): the preset expects 16, the model has 12")
    refused(_edited(good, drop=["running_mean_std.running_mean", "running_mean_std.running_var"]),
            r"no input normaliser")
    refused(_edited(good, **{"running_mean_std.running_mean": torch.zeros(49, dtype=torch.float64)}),
            r"input normaliser size.*expects 50, the model has 49")
    after_mlp = _edited(good, **{"a2c_network.rnn.rnn.weight_ih_l0": torch.zeros(32, 16),
                                 "a2c_network.actor_mlp.0.weight": torch.zeros(16, 50)})
    refused(after_mlp, r"before_mlp False")
    refused(good, r"--inputs.*must list each", *OPTIONS, "--inputs", "goal_pose,last_actions")
    refused(good, r"--goal-position: expected 3 finite numbers", "--palm-pose", ud.PALM_POSE_TEXT,
            "--goal-position", "0 0")
    refused({"state_dict": good["model"]}, r"no 'model' entry")


def test_the_mlp_preset_points_recurrent_checkpoints_to_this_one(tmp_path):
    path = ud.save(_small(), tmp_path / "lstm.pth")
    with pytest.raises(ImportRefused, match=r"recurrent.*--preset isaacgymenvs-dextreme"):
        import_file(path, "--obs-type", "full_no_vel", name="isaacgymenvs-allegro")
