"""Smoke test of the pose student (< 60 s): DAgger + BC end to end through the real CLI, export, v2 runtime.

Real everything: MuJoCo episodes with every randomization term on, rendered depth through
the robot's segmentation and the robot's pose tracker, the sampling-MPC expert, torch
training, a contract-v2 ONNX export and TermPolicyRuntime (what student_node runs).
Asserts the training loss falls, the data carries the runtime's term vectors, the exported
model reads the tracked pose and the goal, and the exported ONNX through TermPolicyRuntime
acts as the training-time torch student on the same inputs (within 1e-5).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dexterity_ros.cli import main as cli
from dexterity_ros.config import ConfigError
from dexterity_ros.learning.config import load_distill_config
from dexterity_ros.learning.dataset import Dataset
from dexterity_ros.learning.pose_student import (PoseStudent, TermInputs, delta_mapping, load_torch_pose_student,
                                                 pose_student_from_contract)
from dexterity_ros.policy.contract_v2 import PolicyContractV2
from dexterity_ros.policy.loading import load_runtime, read_any_contract
from dexterity_ros.policy.runtime_v2 import TermPolicyRuntime

TINY = """
distill:
  name: tiny_pose
  seed: 0
  workers: 0
  objects: [cuboid_flat]
  task: {goal_axis: palm_normal, min_goal_distance_rad: 0.6, max_goal_distance_rad: 1.1}
  episode_steps: 12
  dagger: {iterations: 2, initial_episodes: 2, episodes_per_iteration: 1, beta_initial: 0.5, beta_decay: 0.5}
  evaluation: {episodes: 1, max_steps: 10, label_every: 3, expert_episodes: 1, seed: 1000}
  expert: {num_samples: 8, horizon_steps: 4, num_knots: 2, hold: commanded, common_noise: true}
  student: {kind: pose, hidden: [32, 32], symmetry_augmentation: true}
  train: {epochs: 10, batch_size: 16, learning_rate: 0.003, threads: 2, validation_fraction: 0.0}
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pose")
    config = root / "tiny_pose.yaml"
    config.write_text(TINY)
    out = root / "run"
    code = cli(["distill", "--config", str(config), "--out", str(out), "--no-progress",
                "--ship", str(root / "shipped.onnx")])
    assert code == 0
    return root, out, json.loads((out / "results.json").read_text())


def test_dagger_loop_collects_term_vectors_and_trains(tiny_run):
    root, out, results = tiny_run
    for stage in ("dagger_00", "dagger_01", "bc_01"):
        train = json.loads((out / stage / "train.json").read_text())
        assert train["train_loss"][-1] < 0.8 * train["train_loss"][0], (stage, train["train_loss"])
    d0, d1 = Dataset.load(out / "iter_00" / "data.npz"), Dataset.load(out / "iter_01" / "data.npz")
    assert len(d0) > 0 and d0.expert_driven.all()
    assert not d1.expert_driven.any() and len(d1) > 0          # round(0.5 * 1) = 0: the student drove
    contract = read_any_contract(out / "dagger_01" / "student.onnx")
    assert d0.obs.shape[1] == contract.input_shape(contract.inputs[0])[1] and d0.points.shape[1] == 0
    # labels reproduce the expert's targets through the contract's delta action (target = base + scale * a)
    mapping = delta_mapping(contract, contract_hand())
    labels = mapping.labels(d0.expert_target, d0.base)
    np.testing.assert_allclose(np.clip(d0.base + mapping.scale * labels, mapping.lower, mapping.upper),
                               np.clip(d0.expert_target, mapping.lower, mapping.upper), atol=1e-5)
    # the tracker ran on every episode: poses for the labelled steps, near the truth
    metrics = results["iterations"][1]["dagger"]
    assert metrics["tracked_fraction"] > 0.5 and metrics["tracker_ms_per_frame"] > 0
    assert metrics["pose_rotation_error_deg"] < 15.0


def contract_hand():
    from dexterity_ros.hand_model import default_hand
    return default_hand()


def test_export_is_a_v2_model_reading_the_tracked_pose_and_the_goal(tiny_run):
    root, out, results = tiny_run
    shipped = root / "shipped.onnx"
    runtime = load_runtime(shipped)
    assert isinstance(runtime, TermPolicyRuntime) and isinstance(runtime.contract, PolicyContractV2)
    assert set(runtime.sources) == {"joint_states", "object_pose", "goal"}
    kinds = [t.kind for t in runtime.contract.terms]
    assert {"object_position", "object_orientation", "goal_orientation", "joint_position_history",
            "previous_targets"} <= set(kinds)
    assert runtime.contract.action.mode == "delta_previous_target"
    assert runtime.contract.provenance["parity_max_abs_diff"] <= 1e-5
    assert runtime.contract.provenance["training_labels"] == results["iterations"][-1]["labels"]


def test_exported_onnx_through_the_v2_runtime_acts_as_the_training_time_student(tiny_run):
    """Real inputs (a sim episode through segmentation and the tracker), the student driving: the runtime's
    feeds equal TermInputs' bit for bit, and its actions the trained torch module's within 1e-5."""
    from dexterity_ros.learning.rollout import EpisodeJob, _PoseInputs, _worker_for
    from dexterity_ros.learning.evaluate import _setup

    root, out, _ = tiny_run
    path = out / "dagger_01" / "student.onnx"
    config = load_distill_config(root / "tiny_pose.yaml")
    worker = _worker_for(_setup(config))
    contract = read_any_contract(path)
    module = pose_student_from_contract(contract)
    module.load_state_dict(torch.load(out / "dagger_01" / "student.pt", weights_only=True))   # training-time
    module.eval()
    exported, _ = load_torch_pose_student(path)
    assert isinstance(exported, PoseStudent)
    runtime, mapping = worker.runtime(path.read_bytes())
    env, view = worker.env, worker.view
    obs = env.reset(seed=EpisodeJob(0, 4242, "student", 20).episode_seed)
    view.reset()
    runtime.reset("new episode")
    inputs = _PoseInputs(worker, runtime, mapping, EpisodeJob(0, 4242, "student", 20))
    target = env.privileged_state().joint_targets.copy()
    compared, worst = 0, 0.0
    for _ in range(20):
        if inputs.observe(env, view.frame(obs)):
            out_step = inputs.run_student()
            assert out_step.target is not None, out_step.reason
            assert set(runtime.last_inputs) == set(inputs.feeds)
            assert all(np.array_equal(runtime.last_inputs[k], inputs.feeds[k]) for k in inputs.feeds)
            with torch.no_grad():
                torch_action = module(torch.from_numpy(inputs.feeds["obs"])).numpy()[0]
            worst = max(worst, float(np.max(np.abs(torch_action - out_step.action))))
            expected = np.clip(inputs.inputs.base + mapping.scale * torch_action.astype(np.float64),
                               mapping.lower, mapping.upper)
            np.testing.assert_allclose(out_step.target, expected, atol=1e-5)
            inputs.commit_output(out_step)
            target = out_step.target
            compared += 1
        result = env.step(target)
        obs = result.observation
        if result.terminated or result.truncated:
            break
    assert compared >= 5 and worst <= 1e-5, (compared, worst)


def test_symmetry_variants_are_the_terms_of_each_equivalent_orientation(tiny_run):
    """Variant k: the recorded row with the tracked orientation turned by the k-th symmetry element, its
    orientation terms computed by the contract's terms; the rest of the row (joints, targets, position,
    goal) is untouched."""
    from dexterity_ros.geometry import quat_multiply, quat_to_matrix
    from dexterity_ros.learning.pose_student import symmetry_variants
    from dexterity_ros.objects.models import load_object_model

    _, out, _ = tiny_run
    data = Dataset.load(out / "iter_00" / "data.npz")
    contract = read_any_contract(out / "dagger_00" / "student.onnx")
    symmetry = load_object_model("cuboid_flat").symmetry
    variants = symmetry_variants(contract, data.obs, symmetry)
    assert variants.shape == (len(symmetry.rotations), *data.obs.shape)
    np.testing.assert_array_equal(variants[0], data.obs)
    q, goal, error = slice(99, 103), slice(103, 107), slice(107, 116)      # the layout of contract.table()
    for k in range(1, len(variants)):
        same = np.ones(data.obs.shape[1], bool)
        same[q], same[error] = False, False
        np.testing.assert_array_equal(variants[k][:, same], data.obs[:, same])
        turned = quat_multiply(data.obs[:, q].astype(np.float64), symmetry.rotations[k][None])
        turned *= np.sign(turned[:, :1])
        np.testing.assert_allclose(variants[k][:, q], turned, atol=1e-6)
        row = 0
        r = quat_to_matrix(quat_multiply(turned[row], data.obs[row, goal].astype(np.float64) * [1, -1, -1, -1]))
        np.testing.assert_allclose(variants[k][row, error], r.ravel(), atol=1e-5)
        assert symmetry.distance(variants[k][row, q], data.obs[row, q]) < 1e-3   # the same look


def test_a_point_cloud_model_is_refused_for_a_pose_config(tiny_run, capsys):
    root, _, _ = tiny_run
    from dexterity_ros.paths import models_path
    code = cli(["evaluate", str(models_path("student.onnx")), "--config", str(root / "tiny_pose.yaml"),
                "--episodes", "1", "--max-steps", "2", "--no-progress"])
    assert code == 2
    assert "student.kind is pose" in capsys.readouterr().err


@pytest.mark.parametrize("student, message", [
    ("{kind: posed}", r"kind"),
    ("{kind: pose, goal_object: cuboid_flat}", r"goal_object.*point_cloud student"),
    ("{kind: pose, residual: 0.5}", r"residual.*point_cloud student"),
    ("{kind: pose, hiden: [8]}", r"unknown key.*hiden"),
    ("{kind: point_cloud, symmetry_augmentation: true}", r"symmetry_augmentation is an option of kind pose"),
    ("{kind: point_cloud, pose_source: simulator}", r"pose_source is an option of kind pose"),
    ("{kind: pose, pose_source: true}", r"pose_source"),
    ("{kind: point_cloud, object_velocity: true}", r"object_velocity is an option of kind pose"),
])
def test_bad_student_sections_are_rejected(tmp_path, student, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"distill:\n  objects: [cuboid_flat]\n  student: {student}\n")
    with pytest.raises((ConfigError, ValueError), match=message):
        load_distill_config(path)


def test_term_inputs_mirror_the_runtime_reset_rules():
    """After a reset the previous target is the measured pose; a new goal or a gap resets again."""
    from dexterity_ros.hand_model import default_hand
    from dexterity_ros.learning.pose_student import build_pose_student
    from dexterity_ros.learning.student import StudentArchitecture
    from dexterity_ros.policy.runtime_v2 import ObjectPose

    hand = default_hand()
    _, contract = build_pose_student(StudentArchitecture(kind="pose", hidden=(8,)), hand, (0.055, 0.0, -0.04))
    inputs = TermInputs(contract, hand)
    q = (hand.lower + hand.upper) / 2
    pose = ObjectPose(np.array([0.06, 0.0, -0.04]), np.array([1.0, 0.0, 0.0, 0.0]), 0)
    goal = np.array([0.9, 0.0, 0.0, 0.43])
    inputs.feeds(q, pose, goal, 0)
    np.testing.assert_array_equal(inputs.base, q)                   # reset: the measured pose
    inputs.commit_target(q + 0.05)
    inputs.feeds(q, pose, goal, 83_000_000)
    np.testing.assert_allclose(inputs.base, np.clip(q + 0.05, hand.lower, hand.upper))
    inputs.commit_target(q + 0.1)
    inputs.feeds(q, pose, goal, 2_000_000_000)                      # a 1.9 s gap: reset
    np.testing.assert_array_equal(inputs.base, q)
    inputs.commit_target(q + 0.1)
    inputs.feeds(q, pose, np.array([0.9, 0.0, 0.0, -0.43]), 2_083_000_000)   # a new goal: reset
    np.testing.assert_array_equal(inputs.base, q)


def test_simulator_pose_source_replaces_the_tracker_with_the_true_pose():
    """student.pose_source simulator (the diagnostic of docs/results.md section 10): the same episode, the
    same frames with a usable cloud, but the object pose terms carry the simulator's pose (no tracker call);
    the exported contract's provenance says which pose the student was trained on."""
    import dataclasses

    from dexterity_ros.hand_model import default_hand
    from dexterity_ros.learning.pose_student import build_pose_student
    from dexterity_ros.learning.rollout import EpisodeJob, WorkerSetup, _Worker, run_episode
    from dexterity_ros.perception import load_perception_config
    from dexterity_ros.sim.randomization import as_randomization_config

    path = "config/experiments/pose_rotate_one_simulator_pose.yaml"
    config = load_distill_config(path)
    assert config.student.pose_source == "simulator"
    assert load_distill_config("config/experiments/pose_rotate_one_reduced.yaml").digest() == "4df60498a3ab052b"
    expert = dataclasses.replace(config.expert, num_samples=8, horizon_steps=4, num_knots=2)
    runs = {}
    for source in ("tracker", "simulator"):
        student = dataclasses.replace(config.student, pose_source=source)
        setup = WorkerSetup(config.build_sim_config(), as_randomization_config(config.randomization_value()),
                            expert, student.history_length, load_perception_config(), student=student,
                            tracking=config.tracker_config())
        runs[source] = run_episode(_Worker(setup), EpisodeJob(3, 0, "expert", 6), None)
    tracked, true = runs["tracker"], runs["simulator"]
    assert true.summary["tracker_seconds"] == 0.0 and true.summary["pose_error_count"] == 0
    assert true.summary["tracked_frames"] == true.summary["cloud_frames"] == tracked.summary["cloud_frames"] > 0
    # every cloud frame acts (the tracker needs a frame or more to lock on): at least as many rows
    assert true.summary["seed"] == tracked.summary["seed"] and len(true.obs) >= len(tracked.obs) > 0
    assert not np.array_equal(true.obs[-len(tracked.obs):], tracked.obs)       # another pose in the terms
    _, contract = build_pose_student(config.student, default_hand(), (0.05, 0.0, -0.04))
    assert contract.provenance["pose_student"]["pose_source"] == "simulator"


def test_object_velocity_terms_are_the_tracked_poses_finite_differences():
    """student.object_velocity: two more contract terms, the last two tracked poses' linear (x10) and angular
    velocity; zero right after a reset (one pose), unchanged by the symmetry variants (a body-fixed symmetry
    turns both poses alike)."""
    from dexterity_ros.hand_model import default_hand
    from dexterity_ros.learning.pose_student import build_pose_student, symmetry_variants
    from dexterity_ros.learning.student import StudentArchitecture
    from dexterity_ros.objects.models import load_object_model
    from dexterity_ros.policy.runtime_v2 import ObjectPose

    hand = default_hand()
    _, contract = build_pose_student(StudentArchitecture(kind="pose", hidden=(8,), object_velocity=True), hand,
                                     (0.05, 0.0, -0.04))
    names = contract.inputs[0].terms
    assert names[-2:] == ("object_linear_velocity", "object_angular_velocity")
    inputs = TermInputs(contract, hand)
    q = (hand.lower + hand.upper) / 2
    goal = np.array([0.9, 0.0, 0.0, 0.43])
    angle = 0.1                                                     # about the palm z axis in 0.1 s: 1 rad/s
    first = ObjectPose(np.array([0.05, 0.0, -0.04]), np.array([1.0, 0.0, 0.0, 0.0]), 0)
    second = ObjectPose(np.array([0.051, 0.0, -0.04]), np.array([np.cos(angle / 2), 0, 0, np.sin(angle / 2)]),
                        100_000_000)
    obs0 = inputs.feeds(q, first, goal, 0)["obs"][0]
    np.testing.assert_array_equal(obs0[-6:], 0.0)                   # a reset: one pose, no velocity
    inputs.commit_target(q)
    obs1 = inputs.feeds(q, second, goal, 100_000_000)["obs"][0]
    np.testing.assert_allclose(obs1[-6:-3], [0.1, 0.0, 0.0], atol=1e-5)        # 0.01 m/s x 10
    np.testing.assert_allclose(obs1[-3:], [0.0, 0.0, 1.0], atol=1e-4)          # 1 rad/s about z
    variants = symmetry_variants(contract, obs1[None], load_object_model("cuboid_flat").symmetry)
    assert len(variants) > 1 and np.ptp(variants[:, 0, -6:], axis=0).max() == 0.0
    assert not np.array_equal(variants[1, 0], variants[0, 0])       # the orientation terms did change


def test_guided_expert_labels_start_from_the_learners_action(tiny_run):
    """MPC-guided policy search in the rollout (expert.learner_prior): in an expert-driven episode with the
    learner alongside, the planner receives the learner's target for each state. With a prior that outweighs
    everything the label is the learner's own target; without a prior the planner labels with its own."""
    import dataclasses

    from dexterity_ros.learning.rollout import EpisodeJob, WorkerSetup, _Worker, run_episode
    from dexterity_ros.perception import load_perception_config
    from dexterity_ros.sim.randomization import as_randomization_config

    root, out, _ = tiny_run
    config = load_distill_config(root / "tiny_pose.yaml")
    blob = (out / "dagger_01" / "student.onnx").read_bytes()
    episodes = {}
    for prior in (0.0, 1e6):
        expert = dataclasses.replace(config.expert, learner_prior=prior)
        setup = WorkerSetup(config.build_sim_config(), as_randomization_config(config.randomization_value()),
                            expert, config.student.history_length, load_perception_config(),
                            student=config.student, tracking=config.tracker_config())
        worker = _Worker(setup)
        episodes[prior] = (run_episode(worker, EpisodeJob(0, 5, "expert", 8), blob), worker.env)
    (guided, env), (plain, _) = episodes[1e6], episodes[0.0]
    assert len(guided.expert_target) > 0 and np.isfinite(guided.student_target).all()
    learner = np.clip(guided.student_target, env.action_low, env.action_high)
    np.testing.assert_allclose(guided.expert_target, learner, atol=1e-5)
    assert np.abs(plain.expert_target - np.clip(plain.student_target, env.action_low, env.action_high)).max() > 0.01


def test_an_expert_with_fixed_candidates_records_each_candidates_cost_with_its_label():
    """The costs `evaluate --learnability` scores a student's choice with (docs/results.md section 15): one
    per candidate and label, the two "hold" candidates alike, and where "hold" was cheapest the label is hold."""
    import dataclasses

    from dexterity_ros.learning.rollout import EpisodeJob, WorkerSetup, _Worker, run_episode
    from dexterity_ros.perception import load_perception_config
    from dexterity_ros.sim.randomization import as_randomization_config

    config = load_distill_config("config/experiments/pose_rotate_one_candidates.yaml")
    assert config.expert.fixed_candidates and config.expert.num_samples == 32
    expert = dataclasses.replace(config.expert, num_samples=8, horizon_steps=4, num_knots=2)
    setup = WorkerSetup(config.build_sim_config(), as_randomization_config(config.randomization_value()),
                        expert, config.student.history_length, load_perception_config(), student=config.student,
                        tracking=config.tracker_config())
    worker = _Worker(setup)
    episode = run_episode(worker, EpisodeJob(0, 7, "expert", 12), None)
    costs = episode.expert_costs
    assert costs is not None and costs.shape == (len(episode.expert_target), 8) and len(costs) > 0
    assert np.isfinite(costs).all()
    np.testing.assert_array_equal(costs[:, 0], costs[:, 1])          # both are "hold"
    held = costs.argmin(1) == 0
    moved = np.abs(episode.expert_target - episode.base).max(1)
    assert np.all(moved[held] < 1e-5)                                # hold was cheapest: the label is hold
    assert np.all(moved[~held] > 1e-5)                               # else the label is a move
