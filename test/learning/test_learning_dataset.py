"""Distillation data: aggregation, the beta schedule, and student inputs that are exactly the runtime's."""
from __future__ import annotations

import numpy as np
import pytest

from dexterity_ros.hand_model import default_hand
from dexterity_ros.perception import load_perception_config
from dexterity_ros.learning.dataset import Dataset, beta_schedule, episode_drivers
from dexterity_ros.learning.rollout import EpisodeData, EpisodeJob
from dexterity_ros.learning.student import (ActionMapping, StudentArchitecture, StudentInputs, build_student,
                                            load_torch_student, mapping_from_contract)
from dexterity_ros.policy.export import export_policy
from dexterity_ros.policy.runtime import PolicyRuntime

HAND = default_hand()
PERCEPTION = load_perception_config()
J = HAND.num_joints
START_POSE = np.clip(np.full(J, 0.3), HAND.lower, HAND.upper)


def fake_episode(index: int, driver: str, steps: int, rng: np.random.Generator) -> EpisodeData:
    return EpisodeData(
        EpisodeJob(index, 0, driver, 10), points=rng.normal(size=(steps, 512, 3)).astype(np.float32),
        joints=rng.normal(size=(steps, J)).astype(np.float32), history=rng.normal(size=(steps, 3, J)).astype(np.float32),
        goal=rng.normal(size=(steps, 4)).astype(np.float32), expert_target=rng.normal(size=(steps, J)).astype(np.float32),
        student_target=np.full((steps, J), np.nan, np.float32))


def test_aggregation_keeps_everything_in_collection_order(tmp_path):
    rng = np.random.default_rng(0)
    first = Dataset.from_episodes([fake_episode(0, "expert", 5, rng), fake_episode(1, "expert", 3, rng)], 0)
    second = Dataset.from_episodes([fake_episode(2, "student", 4, rng), fake_episode(3, "expert", 2, rng)], 1)
    assert len(first) == 8 and len(second) == 6
    total = Dataset.concat([first, second])
    assert len(total) == 14
    np.testing.assert_array_equal(total.points[:8], first.points)
    np.testing.assert_array_equal(total.expert_target[8:], second.expert_target)
    assert total.iteration.tolist() == [0] * 8 + [1] * 6
    assert total.episode.tolist() == [0] * 5 + [1] * 3 + [2] * 4 + [3] * 2
    assert total.expert_driven.tolist() == [True] * 8 + [False] * 4 + [True] * 2
    head = total.head(10)                              # BC: cut to a label count, collection order
    np.testing.assert_array_equal(head.goal, total.goal[:10])
    with pytest.raises(ValueError):
        total.head(15)
    total.save(tmp_path / "d.npz")
    back = Dataset.load(tmp_path / "d.npz")
    for name in ("points", "joints", "history", "goal", "expert_target", "iteration", "episode", "expert_driven"):
        np.testing.assert_array_equal(getattr(back, name), getattr(total, name))
    with pytest.raises(ValueError, match="disagree"):
        Dataset(**{**{n: getattr(total, n) for n in ("points", "joints", "history", "goal", "expert_target",
                                                      "iteration", "episode")}, "expert_driven": np.zeros(3, bool)})


def test_beta_schedule_and_episode_drivers():
    assert beta_schedule(0, 0.5, 0.5) == 1.0                 # iteration 0: expert rollouts only
    assert [beta_schedule(i, 0.5, 0.5) for i in (1, 2, 3)] == [0.5, 0.25, 0.125]
    assert beta_schedule(4, 0.0, 0.5) == 0.0
    for bad in ((1, 1.5, 0.5), (1, 0.5, -0.1), (-1, 0.5, 0.5)):
        with pytest.raises(ValueError):
            beta_schedule(*bad)
    drivers = episode_drivers(1, 10, 0.5, seed=0)
    assert drivers.count("expert") == 5 and drivers.count("student") == 5
    assert drivers == episode_drivers(1, 10, 0.5, seed=0)     # seeded
    assert episode_drivers(2, 10, 0.25, seed=0).count("expert") == 2   # round(2.5) -> banker's 2
    assert episode_drivers(3, 8, 0.0, seed=0) == ["student"] * 8
    assert episode_drivers(0, 4, 1.0, seed=0) == ["expert"] * 4
    placements = {tuple(episode_drivers(i, 10, 0.5, seed=s)) for i in (1, 2) for s in (0, 1, 2)}
    assert len(placements) > 1                                 # placement depends on (seed, iteration)


def test_action_mapping_round_trips_through_the_runtime(tmp_path):
    """label = mapping.action(expert target); the runtime turns that label back into the target."""
    module, contract = build_student(StudentArchitecture(), START_POSE, seed=0, hand=HAND, perception=PERCEPTION)
    mapping = mapping_from_contract(contract, HAND)
    assert contract.action_mode == "absolute" and contract.action_ema == 0.0
    rng = np.random.default_rng(1)
    targets = rng.uniform(HAND.lower, HAND.upper, (50, J))
    labels = np.stack([mapping.action(t) for t in targets])
    assert np.all(np.abs(labels) < 1.0)                        # reachable by tanh
    np.testing.assert_allclose(np.stack([mapping.target(a) for a in labels]), targets, atol=1e-6)
    # and through PolicyRuntime itself: a graph whose output is a fixed label gives that target
    path = tmp_path / "student.onnx"
    export_policy(module, contract, path)
    runtime = PolicyRuntime(path)
    for target in targets[:5]:
        np.testing.assert_allclose(runtime._action_to_target(mapping.action(target).astype(np.float64),
                                                             target), target, atol=1e-6)
    same = ActionMapping.for_pose(START_POSE, HAND)
    np.testing.assert_array_equal(same.default, mapping.default)
    np.testing.assert_array_equal(same.scale, mapping.scale)


@pytest.mark.parametrize("joint_position_history", [False, True])
def test_student_inputs_mirror_the_runtime_feeds_bit_for_bit(tmp_path, joint_position_history):
    """Over first step, steady steps, a new goal, a gap and time going backwards."""
    architecture = StudentArchitecture(point_widths=(8, 16), hidden=(32,), joint_position_history=joint_position_history)
    module, contract = build_student(architecture, START_POSE, seed=2, hand=HAND, perception=PERCEPTION)
    path = tmp_path / "student.onnx"
    export_policy(module, contract, path)
    runtime = PolicyRuntime(path)
    inputs = StudentInputs(contract.history.length, J, joint_position_history=joint_position_history)
    assert ("joint_position_history" in {s.meaning for s in contract.inputs}) == joint_position_history
    rng = np.random.default_rng(5)
    goal_a, goal_b = np.array([0.3, -0.5, 0.1, 0.8]), np.array([-0.2, 0.1, 0.9, 0.3])
    period = 83_333_333
    schedule = ([(k * period, goal_a) for k in range(6)] + [(6 * period, goal_b), (7 * period, goal_b)]
                + [(7 * period + 2_000_000_000, goal_b), (8 * period, goal_b), (9 * period, goal_b)])
    resets = []
    for stamp, goal in schedule:
        points = rng.normal([0.05, 0, -0.04], 0.02, (512, 3)).astype(np.float32)
        q = np.clip(START_POSE + rng.normal(0, 0.05, J), HAND.lower, HAND.upper)
        mine = inputs.feeds(points, q, goal, stamp)
        out = runtime.step(points, q, goal, stamp)
        assert out.target is not None
        resets.append(out.reset_reason)
        assert set(mine) == set(runtime.last_inputs)
        for name in mine:
            np.testing.assert_array_equal(mine[name], runtime.last_inputs[name], err_msg=name)
        np.testing.assert_array_equal(inputs.joint_window()[-1], q.astype(np.float32))   # kept either way
        inputs.commit(out.action)
    assert resets[0] and resets[6] == "new goal" and resets[8] and resets[9]    # first, goal, gap, backwards
    assert sum(r is not None for r in resets) == 4


def test_torch_student_is_rebuilt_from_the_onnx_file(tmp_path):
    module, contract = build_student(StudentArchitecture(), START_POSE, seed=4, hand=HAND, perception=PERCEPTION)
    with __import__("torch").no_grad():
        for p in module.parameters():
            p.add_(0.01)                                  # not the seeded initial weights
    path = tmp_path / "student.onnx"
    export_policy(module, contract, path)
    rebuilt, read = load_torch_student(path)
    for (name, a), (_, b) in zip(module.state_dict().items(), rebuilt.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert read.provenance["distilled_student"]["architecture"]["point_widths"] == [32, 64]


def test_residual_student_adds_its_bounded_output_to_the_last_action_in_the_graph(tmp_path):
    """residual > 0: action = clip(history[-1] + residual * tanh(net)); exported, run and rebuilt alike."""
    import torch

    architecture = StudentArchitecture(point_widths=(8, 16), hidden=(32,), residual=0.25)
    module, contract = build_student(architecture, START_POSE, seed=3, hand=HAND, perception=PERCEPTION)
    rng = np.random.default_rng(7)
    points = torch.from_numpy(rng.normal([0.05, 0, -0.04], 0.02, (1, 512, 3)).astype(np.float32))
    joints = torch.from_numpy(START_POSE[None].astype(np.float32))
    goal = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    history = torch.from_numpy(rng.uniform(-0.9, 0.9, (1, 3, J)).astype(np.float32))
    with torch.no_grad():
        module.net.head.weight.zero_()
        module.net.head.bias.zero_()
        held = module(points, joints, history, goal)
        np.testing.assert_array_equal(held.numpy(), history[:, -1].numpy())        # zero head: hold exactly
        module.net.head.bias.fill_(10.0)                                           # tanh saturates at +1
        moved = module(points, joints, history, goal)
    np.testing.assert_allclose(moved.numpy(), np.clip(history[:, -1].numpy() + 0.25, -1, 1), atol=1e-6)
    path = tmp_path / "residual.onnx"
    export_policy(module, contract, path)
    runtime = PolicyRuntime(path)                         # the contract is unchanged: absolute, ema 0
    out = runtime.step(points[0].numpy(), START_POSE, np.array([1.0, 0, 0, 0]), 0)
    np.testing.assert_allclose(out.action, np.clip(0.0 + 0.25, -1, 1) * np.ones(J), atol=1e-6)   # reset: zeros
    rebuilt, read = load_torch_student(path)
    assert rebuilt.architecture.residual == 0.25
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt(points, joints, history, goal).numpy(), moved.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="residual"):
        StudentArchitecture(residual=-0.1)


def test_goal_object_student_encodes_the_goal_as_that_objects_points_turned_to_it(tmp_path):
    """goal_object: the graph turns the object's canonical points by the goal quaternion (the runtime's
    goal_points rule) and encodes them; the contract still takes the quaternion, so nothing else changes."""
    import torch

    from dexterity_ros.geometry import quat_to_matrix
    from dexterity_ros.learning.student import GOAL_POINTS, quaternion_to_matrix
    from dexterity_ros.sim.objects import canonical_points

    rng = np.random.default_rng(11)
    quats = rng.normal(size=(6, 4))
    np.testing.assert_allclose(quaternion_to_matrix(torch.from_numpy(quats)).numpy(), quat_to_matrix(quats),
                               atol=1e-12)
    architecture = StudentArchitecture(point_widths=(8, 16), hidden=(32,), residual=0.5, goal_object="cuboid_flat")
    module, contract = build_student(architecture, START_POSE, seed=5, hand=HAND, perception=PERCEPTION)
    assert [s.meaning for s in contract.inputs][-1] == "goal_quaternion" and contract.goal.representation == "quaternion"
    expected_points = canonical_points("cuboid_flat", GOAL_POINTS) @ quat_to_matrix(quats[0]).T
    seen = {}

    def keep_goal_input(_module, args, _output) -> None:
        seen.setdefault("goal", args[0])

    module.net.goal_encoder.register_forward_hook(keep_goal_input)
    points = torch.from_numpy(rng.normal([0.05, 0, -0.04], 0.02, (1, 512, 3)).astype(np.float32))
    joints = torch.from_numpy(START_POSE[None].astype(np.float32))
    history = torch.from_numpy(rng.uniform(-0.5, 0.5, (1, 3, J)).astype(np.float32))
    goal = torch.from_numpy(quats[:1].astype(np.float32))
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01)
        action = module(points, joints, history, goal).numpy()
        turned = module(points, joints, history, torch.from_numpy(quats[1:2].astype(np.float32))).numpy()
    scale = module.net.point_scale
    np.testing.assert_allclose(seen["goal"].numpy()[0] / scale, expected_points, atol=1e-5)
    assert not np.allclose(action, turned)                # the goal reaches the action
    path = tmp_path / "goal_object.onnx"
    assert export_policy(module, contract, path).max_abs_diff <= 1e-5
    rebuilt, _ = load_torch_student(path)
    assert rebuilt.architecture.goal_object == "cuboid_flat"
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt(points, joints, history, goal).numpy(), action, atol=1e-6)
    with pytest.raises(ValueError, match="teapot"):
        StudentArchitecture(goal_object="teapot")


def test_joint_history_student_feeds_the_network_joint_motion_and_tracking_error(tmp_path):
    """joint_position_history: the contract gains the measured-pose window; the graph turns it into each
    joint's motion over the window and the last target's tracking error (x PROPRIOCEPTION_GAIN)."""
    import torch

    from dexterity_ros.learning.student import PROPRIOCEPTION_GAIN

    architecture = StudentArchitecture(point_widths=(8, 16), hidden=(32,), residual=0.5, joint_position_history=True)
    module, contract = build_student(architecture, START_POSE, seed=6, hand=HAND, perception=PERCEPTION)
    names = [s.name for s in contract.inputs]
    assert names == ["object_points", "joint_positions", "action_history", "joint_position_history", "goal_quaternion"]
    assert sorted(contract.history.stacked) == ["actions", "joint_positions"]
    mapping = mapping_from_contract(contract, HAND)
    rng = np.random.default_rng(13)
    window = np.clip(START_POSE + rng.normal(0, 0.05, (1, 3, J)), HAND.lower, HAND.upper).astype(np.float32)
    history = rng.uniform(-0.9, 0.9, (1, 3, J)).astype(np.float32)
    with torch.no_grad():
        features = module.proprioception(torch.from_numpy(window), torch.from_numpy(history)).numpy()[0]
    motion = (window[0, :2] - window[0, 2]).ravel()
    tracking = mapping.target(history[0, -1]) - window[0, 2]
    np.testing.assert_allclose(features, np.concatenate([motion, tracking]) * PROPRIOCEPTION_GAIN, atol=1e-4)
    points = torch.from_numpy(rng.normal([0.05, 0, -0.04], 0.02, (1, 512, 3)).astype(np.float32))
    joints = torch.from_numpy(window[:, -1])
    goal = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01)
        action = module(points, joints, torch.from_numpy(history), torch.from_numpy(window), goal).numpy()
        still = module(points, joints, torch.from_numpy(history), torch.from_numpy(window[:, [2, 2, 2]]), goal).numpy()
    assert not np.allclose(action, still)                # the motion reaches the action
    path = tmp_path / "joints.onnx"
    assert export_policy(module, contract, path).max_abs_diff <= 1e-5
    rebuilt, _ = load_torch_student(path)                # the mapping buffers come from the contract
    assert rebuilt.architecture.joint_position_history
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt(points, joints, torch.from_numpy(history), torch.from_numpy(window),
                                           goal).numpy(), action, atol=1e-6)
    runtime = PolicyRuntime(path)
    assert runtime.step(points[0].numpy(), window[0, -1], np.array([1.0, 0, 0, 0]), 0).target is not None


def test_a_dataset_without_pose_windows_loads_but_a_joint_history_student_refuses_it(tmp_path):
    """Datasets recorded before the windows were kept still load (and train the other students)."""
    from dexterity_ros.learning.train import TrainConfig, train_student

    rng = np.random.default_rng(3)
    data = Dataset.from_episodes([fake_episode(0, "expert", 6, rng)], 0)
    old = {name: getattr(data, name) for name in ("points", "joints", "history", "goal", "expert_target",
                                                  "iteration", "episode", "expert_driven")}
    np.savez(tmp_path / "old.npz", **old)
    back = Dataset.load(tmp_path / "old.npz")
    assert back.joint_history.shape == (6, 3, J) and np.isnan(back.joint_history).all()
    config = TrainConfig(epochs=1, batch_size=4, validation_fraction=0.0)
    plain, contract = build_student(StudentArchitecture(point_widths=(8,), hidden=(8,)), START_POSE, hand=HAND,
                                    perception=PERCEPTION)
    train_student(plain, back, mapping_from_contract(contract, HAND), config)
    module, contract = build_student(StudentArchitecture(point_widths=(8,), hidden=(8,), joint_position_history=True),
                                     START_POSE, hand=HAND, perception=PERCEPTION)
    with pytest.raises(ValueError, match="measured-pose windows"):
        train_student(module, back, mapping_from_contract(contract, HAND), config)
