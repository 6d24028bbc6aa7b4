"""The recurrent pose student (student.recurrent_size > 0), end to end without the simulator (< 25 s).

(a) truncated BPTT learns a task that needs memory (the label depends on a cue seen only at a sequence's
    first step), far below the loss of ANY feed-forward student on the same rows (an exact lower bound:
    rows with identical observations and different labels), and below a trained feed-forward one;
(b) the exported ONNX run through TermPolicyRuntime (what student_node runs) acts as the torch module with
    the state carried, step by step within 1e-5, resets its state where the runtime resets (a new goal, a
    gap) to the fresh-start output, and training's sequence cuts (``sequence_starts``) fall on exactly the
    runtime's resets;
(c) the contract declares the state pair, ``info``'s table lists it, and student_node's loader accepts it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dexterity_ros.hand_model import default_hand
from dexterity_ros.learning.dataset import Dataset
from dexterity_ros.learning.pose_student import (STATE_INPUT, STATE_OUTPUT, TermInputs, build_pose_student,
                                                 delta_mapping, export_pose_student, load_torch_pose_student,
                                                 reset_marks, sequence_starts)
from dexterity_ros.learning.student import StudentArchitecture
from dexterity_ros.learning.train import TrainConfig, episode_keys, train_student
from dexterity_ros.policy.runtime_v2 import ObjectPose, StepInputs, TermPolicyRuntime

ORIGIN = (0.05, 0.0, -0.04)
RECURRENT = 16
HAND = default_hand()


def student(recurrent_size: int, seed: int = 0):
    arch = StudentArchitecture(kind="pose", hidden=(32,), history_length=2, recurrent_size=recurrent_size)
    return build_pose_student(arch, HAND, ORIGIN, seed=seed)


# ------------------------------------------------------------------ (a) memory is learned
def memory_dataset(contract, sequences: int = 24, length: int = 12) -> Dataset:
    """Each sequence (one episode) shows a cue (+-2 std on the object's x offset) at its first step only;
    every step's label moves all joints by +-0.3 of the action scale with the cue's sign. Apart from the
    cue, observation t is the same in every sequence, so an observation alone cannot tell the sign."""
    rng = np.random.default_rng(7)
    mapping = delta_mapping(contract, HAND)
    size = contract.input_shape(contract.inputs[0])[1]
    mean = np.array(contract.provenance["pose_student"]["obs_mean"])
    std = np.array(contract.provenance["pose_student"]["obs_std"])
    shared = mean + std * rng.uniform(-1, 1, (length, size))          # step t's observation, all sequences
    cue = 0                                                           # object_position x: after the joint terms
    for name in contract.inputs[0].terms:
        if contract.term(name).kind == "object_position":
            break
        cue += contract.term(name).size(contract.num_joints)
    signs = np.where(np.arange(sequences) % 2 == 0, 1.0, -1.0)[rng.permutation(sequences)]
    obs = np.repeat(shared[None], sequences, axis=0)
    obs[:, :, cue] = 0.0
    obs[:, 0, cue] = 2 * 0.02 * signs
    base = np.repeat(((HAND.lower + HAND.upper) / 2)[None], sequences * length, axis=0)
    target = base + mapping.scale * 0.3 * np.repeat(signs, length)[:, None]
    s, j = sequences * length, HAND.num_joints
    return Dataset(points=np.zeros((s, 0, 3), np.float32), joints=np.zeros((s, j), np.float32),
                   history=np.zeros((s, 0, j), np.float32), goal=np.tile([1, 0, 0, 0], (s, 1)).astype(np.float32),
                   expert_target=target.astype(np.float32), iteration=np.zeros(s, np.int32),
                   episode=np.repeat(np.arange(sequences), length).astype(np.int64),
                   expert_driven=np.ones(s, bool), obs=obs.reshape(s, size).astype(np.float32),
                   base=base.astype(np.float32))


def feed_forward_floor(data: Dataset, mapping) -> float:
    """The least loss any function of the observation can reach: the labels' spread within rows of equal
    observation (the train loss's definition: squared target error in rad, mean over joints)."""
    labels = mapping.labels(data.expert_target, data.base).astype(np.float64)
    _, group = np.unique(data.obs, axis=0, return_inverse=True)
    total = 0.0
    for g in np.unique(group):
        rows = labels[group == g]
        total += float((((rows - rows.mean(0)) * mapping.scale) ** 2).mean(1).sum())
    return total / len(labels)


def test_truncated_bptt_learns_what_a_feed_forward_student_cannot():
    config = TrainConfig(epochs=60, batch_size=48, learning_rate=0.005, validation_fraction=0.25, threads=2,
                         bptt_steps=5, seed=0)
    recurrent, contract = student(RECURRENT)
    feed_forward, ff_contract = student(0)
    data = memory_dataset(contract)
    mapping = delta_mapping(contract, HAND)
    starts = sequence_starts(contract, data.obs, episode_keys(data))
    assert starts.sum() == 24                                       # one sequence per episode here
    rec = train_student(recurrent, data, mapping, config, sequence_starts=starts)
    ff = train_student(feed_forward, data, delta_mapping(ff_contract, HAND), config)
    floor = feed_forward_floor(data, mapping)
    assert floor > 0.02                                             # the task does need memory
    assert ff.train_loss[-1] >= 0.9 * floor                         # and a trained MLP indeed stays at the floor
    assert rec.train_loss[-1] < 0.1 * floor, (rec.train_loss[-1], floor)
    assert rec.validation_loss[-1] < 0.1 * floor, (rec.validation_loss[-1], floor)   # unseen sequences too
    assert rec.samples + rec.validation_samples == len(data)


def test_recurrent_training_refuses_without_sequences():
    module, contract = student(RECURRENT)
    data = memory_dataset(contract, sequences=4, length=3)
    with pytest.raises(ValueError, match="sequence_starts"):
        train_student(module, data, delta_mapping(contract, HAND), TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="recurrent_size"):
        StudentArchitecture(kind="point_cloud", recurrent_size=8)
    with pytest.raises(ValueError, match="bptt_steps"):
        TrainConfig(bptt_steps=0)


def test_runs_made_before_the_option_keep_their_digest():
    """recurrent_size 0 and bptt_steps 16 are the behaviour from before they existed: same digest (resume)."""
    from dexterity_ros.learning.config import DistillConfig

    base = DistillConfig(student=StudentArchitecture(kind="pose"))
    assert base.digest() == "18f827dfa82c4629"           # this config's digest before the options existed
    recurrent = dataclasses.replace(base, student=dataclasses.replace(base.student, recurrent_size=8))
    longer = dataclasses.replace(base, train=dataclasses.replace(base.train, bptt_steps=32))
    guided = dataclasses.replace(base, expert=dataclasses.replace(base.expert, learner_prior=2.0))
    assert len({base.digest(), recurrent.digest(), longer.digest(), guided.digest()}) == 4


# ------------------------------------------------------------------ (b) export, runtime, resets
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    module, contract = student(RECURRENT, seed=3)
    with torch.no_grad():                   # larger than the "start near hold" head: actions far from zero
        torch.manual_seed(3)
        module.head.weight.normal_(0.0, 0.5)
        module.cell.weight_hh.mul_(2.0)
    path = tmp_path_factory.mktemp("recurrent") / "recurrent.onnx"
    blob, report = export_pose_student(module, contract, path, trials=16)
    return module, blob, report, path


def episode_inputs(steps: int = 30, new_goal_at: int = 12, gap_at: int = 22) -> list[StepInputs]:
    """A smooth synthetic stream at 12 Hz: joints and the tracked pose drift; the goal changes at
    ``new_goal_at``; the inputs pause 1 s before ``gap_at`` (longer than reset_after_gap 0.5 s)."""
    rng = np.random.default_rng(11)
    mid, half = (HAND.lower + HAND.upper) / 2, (HAND.upper - HAND.lower) / 2
    q = mid + 0.3 * half * rng.uniform(-1, 1, HAND.num_joints)
    goals = [np.array([0.9, 0.0, 0.0, 0.43589]), np.array([0.8, 0.0, 0.6, 0.0])]
    out, stamp = [], 1_000_000_000
    for t in range(steps):
        q = np.clip(q + 0.05 * half * rng.standard_normal(HAND.num_joints), HAND.lower, HAND.upper)
        angle = 0.05 * t
        quat = np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])
        stamp += 1_000_000_000 if t == gap_at else 83_333_333
        pose = ObjectPose(np.array(ORIGIN) + 0.003 * rng.standard_normal(3), quat, stamp)
        out.append(StepInputs(q.copy(), stamp, goal_wxyz=goals[int(t >= new_goal_at)], object_pose=pose))
    return out


def test_runtime_carries_and_resets_the_state_as_torch_and_training_do(exported):
    from dexterity_ros.learning.rollout import EpisodeJob, _check_same_feeds

    module, blob, report, _ = exported
    assert report.max_abs_diff <= 1e-5 and report.trials == 16
    runtime = TermPolicyRuntime(blob, HAND)
    mirror = TermInputs(runtime.contract, HAND)
    steps = episode_inputs()
    state = module.initial_state()
    rows, worst, runtime_resets = [], 0.0, []
    for t, step in enumerate(steps):
        out = runtime.step(step)
        assert out.target is not None, out.reason
        feeds = mirror.feeds(step.joint_positions, step.object_pose, step.goal_wxyz, step.stamp_ns)
        runtime_resets.append(out.reset_reason is not None)
        assert mirror.was_reset == runtime_resets[-1]
        # the recorded observation is the runtime's; the state input is left out of that comparison
        _check_same_feeds(feeds, runtime.last_inputs, EpisodeJob(0, 0, "student", 1), t, state_inputs=[STATE_INPUT])
        with pytest.raises(RuntimeError):
            _check_same_feeds(feeds, runtime.last_inputs, EpisodeJob(0, 0, "student", 1), t)
        carried = state
        if mirror.was_reset:
            state = module.initial_state()
        with torch.no_grad():
            action, state = module(torch.from_numpy(feeds["obs"]), state)
            if mirror.was_reset and t > 0:         # without the reset the state would have changed the action
                stale, _ = module(torch.from_numpy(feeds["obs"]), carried)
                assert float((stale - action).abs().max()) > 1e-3
        worst = max(worst, float(np.max(np.abs(action.numpy()[0] - out.action))))
        if mirror.was_reset:                       # the runtime fed the contract's initial state
            np.testing.assert_array_equal(runtime.last_inputs[STATE_INPUT], np.zeros((1, RECURRENT), np.float32))
        if mirror.was_reset and t > 0:             # the post-reset output is the fresh-start output
            fresh = TermPolicyRuntime(blob, HAND).step(step)
            np.testing.assert_array_equal(fresh.action, out.action)
            np.testing.assert_array_equal(fresh.target, out.target)
        mirror.commit(out.action, out.target)
        rows.append(feeds["obs"][0])
    assert worst <= 1e-5, worst
    assert [t for t, r in enumerate(runtime_resets) if r] == [0, 12, 22]      # first step, new goal, gap
    # training cuts its sequences exactly there, read from the recorded rows alone
    obs = np.stack(rows)
    assert list(np.flatnonzero(reset_marks(runtime.contract, obs))) == [0, 12, 22]
    assert list(np.flatnonzero(sequence_starts(runtime.contract, obs, np.zeros(len(obs))))) == [0, 12, 22]


def test_torch_module_reads_back_from_the_graph(exported):
    module, _, _, path = exported
    back, contract = load_torch_pose_student(path)
    assert back.recurrent_size == RECURRENT
    for key, value in module.state_dict().items():
        torch.testing.assert_close(back.state_dict()[key], value, rtol=0, atol=0)


# ------------------------------------------------------------------ (c) contract and loader
def test_contract_declares_the_state_pair_and_student_node_loads_it(exported):
    from dexterity_ros.policy.student_config import StudentNodeConfig, build_runtime

    _, _, report, path = exported
    c = report.contract
    assert [(r.name, tuple(r.shape)) for r in c.recurrent_inputs] == [(STATE_INPUT, (1, RECURRENT))]
    assert [(p.input, p.output, p.initial_value) for p in c.recurrent_state] == [(STATE_INPUT, STATE_OUTPUT, 0.0)]
    assert [(o.name, o.meaning) for o in c.outputs] == [("action", "action"), (STATE_OUTPUT, "recurrent_state")]
    assert f"recurrent state [1, {RECURRENT}], fed back from output '{STATE_OUTPUT}', starts at 0" in c.table()
    runtime = build_runtime(StudentNodeConfig(model_path=str(path)))
    assert isinstance(runtime, TermPolicyRuntime)
    assert runtime.contract.recurrent_state == c.recurrent_state
    # feed-forward pose students keep their contract: no state, no recurrent_size in the provenance
    _, ff = student(0)
    assert not ff.recurrent_inputs and "recurrent_size" not in ff.provenance["pose_student"]
    assert dataclasses.replace(StudentArchitecture(kind="pose"), recurrent_size=0) == StudentArchitecture(kind="pose")
