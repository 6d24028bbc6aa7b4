"""The simulator's model of hand_node's command filter (sim config ``hand_command``) and sim config inheritance.

Before it, a policy trained in simulation sent targets straight to the actuators while the robot's hand_node
clamps them into the margin-shrunk limits and speed-limits them (docs/results.md section 13)."""
from __future__ import annotations

import numpy as np
import pytest

from dexterity_ros.config import ConfigError
from dexterity_ros.hand.safety import SafetyFilter, SafetyLimits, load_safety_tables
from dexterity_ros.learning.config import load_distill_config
from dexterity_ros.sim.env import ReorientEnv
from dexterity_ros.sim.randomization import load_randomization_config
from dexterity_ros.paths import config_path
from dexterity_ros.sim.sim_config import default_sim_config_path, load_sim_config

OFF = load_randomization_config().with_enabled(None, False)
FULL = load_randomization_config()


def filtered(**overrides):
    return load_sim_config().with_overrides(objects=("cube",), hand_command__filter=True, **overrides)


def test_every_target_passes_hand_nodes_own_filter_in_the_simulator():
    env = ReorientEnv(filtered(), OFF, seed=3)
    env.reset()
    limits = SafetyLimits.from_tables(load_safety_tables(), env.hand)
    robot = SafetyFilter(limits)                 # what hand_node would do to the same targets
    robot.reset(env.commanded_targets)
    rng = np.random.default_rng(0)
    step_limit = limits.max_velocity * env.policy_period_s
    previous = env.hand_command
    for _ in range(30):
        target = rng.uniform(env.action_low - 0.5, env.action_high + 0.5)     # far, fast and outside the limits
        env.step(target)
        expected = robot.step(np.clip(target, env.action_low, env.action_high), env.policy_period_s).command
        command = env.hand_command
        assert np.array_equal(command, expected)
        assert np.all(np.abs(command - previous) <= step_limit + 1e-12)
        assert np.all(command >= limits.lower) and np.all(command <= limits.upper)
        # without randomization the actuators get exactly hand_node's command; the policy's own target is kept
        assert np.array_equal(env.data.ctrl[env.scene.actuator_index], command)
        assert np.array_equal(env.commanded_targets, np.clip(target, env.action_low, env.action_high))
        previous = command


def test_the_filter_is_off_by_default_and_leaves_targets_alone():
    env = ReorientEnv(load_sim_config().with_overrides(objects=("cube",)), OFF, seed=3)
    env.reset()
    assert env.hand_command is None
    target = env.action_high.copy()
    env.step(target)
    assert np.array_equal(env.data.ctrl[env.scene.actuator_index], target)


def test_state_save_and_restore_carries_the_filter():
    env = ReorientEnv(filtered(), FULL, seed=5)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(3):
        env.step(rng.uniform(env.action_low, env.action_high))
    saved = env.get_state()
    targets = [rng.uniform(env.action_low, env.action_high) for _ in range(4)]
    first = []
    for target in targets:
        env.step(target)
        first.append(env.hand_command)
    env.set_state(saved)
    for target, expected in zip(targets, first):
        env.step(target)
        assert np.array_equal(env.hand_command, expected)


def test_a_bad_hand_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "hand.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    default_max_velocity: -1.0\n")
    with pytest.raises(ConfigError, match="max_velocity"):
        ReorientEnv(filtered(hand_command__hand_config=str(bad)), OFF)


def test_sim_config_base_inherits_and_the_rotation_task_file_is_the_experiments_task(tmp_path):
    task = load_sim_config(config_path("sim_rotate_one.yaml"))
    experiment = load_distill_config("config/experiments/gait_rotate_one_limited.yaml").build_sim_config()
    assert task == experiment
    assert task.objects == ("cuboid_flat",) and task.task.goal_axis == "palm_normal" and task.hand_command.filter
    assert task.physics == load_sim_config().physics            # everything else inherited from sim.yaml
    loop = tmp_path / "a.yaml"
    loop.write_text("sim:\n  base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_sim_config(loop)
    unknown = tmp_path / "b.yaml"
    unknown.write_text(f"sim:\n  base: {default_sim_config_path()}\n  colour: red\n")
    with pytest.raises(ConfigError, match="colour"):
        load_sim_config(unknown)


def test_every_packaged_experiment_and_sim_config_loads():
    """Each config file the docs name is valid (unknown keys are errors, bases resolve, gait files exist)."""
    from dexterity_ros.learning.gait import gait_path

    for path in sorted(config_path("experiments").glob("*.yaml")):
        experiment = load_distill_config(path)
        sim = experiment.build_sim_config()
        assert sim.objects, path
        if experiment.expert.method == "gait":
            assert gait_path(experiment.expert.gait).is_file(), path
    for path in sorted(config_path().glob("sim*.yaml")):
        assert load_sim_config(path).objects, path
