"""The finger-gait teacher: its action is a function of what a student sees, its file, its search.

What makes the gait teacher distillable (docs/results.md section 12) is that its label is
determined by the previous command (the phase read back from it), the object's turn to the
goal and nothing hidden: these tests pin that down, on the pure cycle and on the simulator.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dexterity_ros.geometry import axis_angle_to_quat, quat_multiply, random_quaternion
from dexterity_ros.learning.gait import (Gait, GaitExpert, gait_from_vector, load_gait, save_gait,
                                         signed_turn_about_palm_normal)

JOINTS = 16
LOWER, UPPER = np.full(JOINTS, -3.0), np.full(JOINTS, 3.0)


def _gait(seed: int = 0, hold: float = 0.15, **changes) -> Gait:
    rng = np.random.default_rng(seed)
    values = dict(joint_names=tuple(f"j{k}" for k in range(JOINTS)), base=rng.normal(0, 0.3, (2, JOINTS)),
                  sin_amplitude=rng.normal(0, 0.2, (2, JOINTS)), cos_amplitude=rng.normal(0, 0.2, (2, JOINTS)),
                  omega=0.5, hold_threshold_rad=hold, lower=LOWER, upper=UPPER)
    values.update(changes)
    return Gait(**values)


@pytest.mark.parametrize("sense", [+1, -1])
def test_the_phase_is_read_back_from_a_command_on_the_cycle(sense):
    gait = _gait()
    for phase in np.linspace(-3.1, 3.1, 25):
        recovered = gait.phase_of(sense, gait.target(sense, phase))
        assert math.isclose(math.remainder(recovered - phase, 2 * math.pi), 0.0, abs_tol=1e-9)


def test_next_target_steps_the_cycle_in_the_sense_of_the_turn_and_holds_near_the_goal():
    gait = _gait(hold=0.15)
    on_plus = gait.target(+1, 0.3)
    assert np.allclose(gait.next_target(on_plus, 0.8, +0.8), gait.target(+1, 0.3 + gait.omega))
    on_minus = gait.target(-1, -1.0)
    assert np.allclose(gait.next_target(on_minus, 0.8, -0.8), gait.target(-1, -1.0 + gait.omega))
    # within the hold threshold: exactly the previous command, whatever it is
    anywhere = np.random.default_rng(1).normal(size=JOINTS)
    assert np.array_equal(gait.next_target(anywhere, 0.1, 0.1), anywhere)
    # a command off the cycle is pulled back onto it (the nearest phase, one step on)
    assert np.allclose(gait.next_target(on_plus + 0.05, 0.8, 0.8),
                       gait.target(+1, gait.phase_of(+1, on_plus + 0.05) + gait.omega))


def test_targets_stay_within_the_joint_limits():
    gait = _gait(lower=np.full(JOINTS, -0.1), upper=np.full(JOINTS, 0.1))
    for phase in np.linspace(-4, 4, 50):
        for sense in (+1, -1):
            t = gait.target(sense, phase)
            assert np.all(t >= -0.1) and np.all(t <= 0.1)


@pytest.mark.parametrize("angle", [0.6, -0.9, 1.1])
def test_signed_turn_about_the_palm_normal(angle):
    rng = np.random.default_rng(3)
    current = random_quaternion(rng)
    goal = quat_multiply(axis_angle_to_quat(np.array([1.0, 0.0, 0.0]), angle), current)
    distance, turn = signed_turn_about_palm_normal(current, -goal)     # sign-free in the quaternion
    assert math.isclose(distance, abs(angle), abs_tol=1e-9)
    assert math.isclose(turn, angle, abs_tol=1e-9)
    assert signed_turn_about_palm_normal(current, current) == (0.0, 0.0)


def test_gait_file_round_trip_and_bad_files(tmp_path):
    gait = _gait(provenance={"command": "test"}, position_gain=np.full((JOINTS, 3), 0.5))
    path = tmp_path / "g.json"
    save_gait(gait, path)
    again = load_gait(str(path))
    assert np.array_equal(again.base, gait.base) and again.omega == gait.omega
    assert np.array_equal(again.position_gain, gait.position_gain)
    assert np.array_equal(load_gait("rotate_cuboid_flat").position_gain, np.zeros((JOINTS, 3)))  # no gain key
    assert again.provenance == {"command": "test"}
    data = json.loads(path.read_text())
    (tmp_path / "extra.json").write_text(json.dumps({**data, "speed": 1}))
    with pytest.raises(ValueError, match="unknown keys"):
        load_gait(str(tmp_path / "extra.json"))
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a gait file"):
        load_gait(str(tmp_path / "other.json"))
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not JSON"):
        load_gait(str(tmp_path / "binary.json"))
    with pytest.raises(FileNotFoundError, match="gait file not found"):
        load_gait("no_such_gait")
    with pytest.raises(ValueError, match="two independent harmonics"):
        _gait(cos_amplitude=2 * _gait().sin_amplitude)      # parallel harmonics: no readable phase
    with pytest.raises(ValueError, match="2 x 16"):
        _gait(base=np.zeros((2, 3)))


def test_the_expert_on_the_simulator_labels_from_the_previous_command_and_the_true_pose():
    from dexterity_ros.learning.config import load_distill_config
    from dexterity_ros.sim.env import ReorientEnv
    from dexterity_ros.sim.randomization import as_randomization_config

    config = load_distill_config("config/experiments/pose_rotate_one.yaml")
    with ReorientEnv(config.build_sim_config(), as_randomization_config(config.randomization_value()),
                     seed=4) as env:
        env.reset()
        vector = np.random.default_rng(0).normal(0.0, 0.1, 6 * JOINTS + 1)     # mirrored, with a position gain
        gait = gait_from_vector(vector, env.initial_joint_positions, env.action_low, env.action_high,
                                env.joint_names, hold_threshold_rad=0.15, position_feedback=True)
        assert np.any(gait.position_gain != 0)
        expert = GaitExpert(gait)
        expert.reset(env)
        first = expert.act(env)
        assert np.array_equal(first, expert.act(env))               # no hidden state
        env.step(first)
        # whoever sent the last command (here: not the expert), the label follows from it
        other = np.clip(first + 0.05, env.action_low, env.action_high)
        env.step(other)
        state = env.privileged_state()
        distance, turn = signed_turn_about_palm_normal(state.object_quaternion, state.goal_quaternion)
        assert np.array_equal(env.commanded_targets, other)
        offset = state.object_position - np.array(env.config.mount_config().object_position)
        assert np.array_equal(expert.act(env), gait.next_target(other, distance, turn, offset))
        assert not np.allclose(expert.act(env), gait.next_target(other, distance, turn, offset + 0.01))
        with pytest.raises(ValueError, match="joints"):
            GaitExpert(_gait()).reset(env)


def test_search_is_seeded_and_writes_a_usable_gait(tmp_path):
    import dataclasses

    from dexterity_ros.learning.config import load_distill_config
    from dexterity_ros.learning.gait_search import GaitSearchConfig, parse_overrides, search_gait

    config = dataclasses.replace(load_distill_config("config/experiments/pose_rotate_one.yaml"), episode_steps=6)
    search = GaitSearchConfig(generations=2, population=4, episodes=1, held_out_episodes=2, seed=3)
    gait, report = search_gait(config, search, log=lambda line: None)
    again, _ = search_gait(config, search, log=lambda line: None)
    assert np.array_equal(gait.base, again.base) and gait.omega == again.omega
    assert [row["generation"] for row in report["history"]] == [0, 1]
    assert report["held_out_episodes"] == 2 and set(report["held_out"]) == {"fitness", "return", "goals", "success", "dropped"}
    save_gait(gait, tmp_path / "g.json")
    assert load_gait(str(tmp_path / "g.json")).joint_names == gait.joint_names
    assert parse_overrides(["generations=3", "initial=x", "posture=0.5,1"]) == {
        "generations": 3, "initial": "x", "posture": (0.5, 1.0)}
    with pytest.raises(ValueError, match="unknown setting"):
        parse_overrides(["speed=3"])
    with pytest.raises(ValueError, match="is not a int"):
        parse_overrides(["generations=many"])
    warm = GaitSearchConfig(generations=1, population=4, episodes=1, held_out_episodes=1, initial="rotate_cuboid_flat",
                            position_feedback=True, sigma=0.01)
    refined, _ = search_gait(config, warm, log=lambda line: None)       # from the packaged gait, gain added
    assert refined.position_gain.shape == (JOINTS, 3) and np.any(refined.position_gain != 0)
    assert np.allclose(refined.base, load_gait("rotate_cuboid_flat").base, atol=0.1)
    with pytest.raises(ValueError, match="posture needs 16 values"):
        search_gait(config, GaitSearchConfig(generations=1, population=4, episodes=1, posture=(0.1, 0.2)),
                    log=lambda line: None)


def test_an_experiment_names_the_gait_as_its_expert(tmp_path):
    from dexterity_ros.learning.expert import ExpertConfig, SamplingExpert, make_expert

    save_gait(_gait(), tmp_path / "g.json")
    expert = make_expert(ExpertConfig(method="gait", gait=str(tmp_path / "g.json")))
    assert isinstance(expert, GaitExpert) and expert.gait.omega == 0.5
    assert isinstance(make_expert(ExpertConfig()), SamplingExpert)
    with pytest.raises(ValueError, match="needs a gait file"):
        ExpertConfig(method="gait")


def test_a_mirrored_vector_runs_one_cycle_backwards_for_the_other_sense():
    rng = np.random.default_rng(5)
    names = tuple(f"j{k}" for k in range(JOINTS))
    gait = gait_from_vector(rng.normal(0, 0.2, 3 * JOINTS + 1), np.zeros(JOINTS), LOWER, UPPER, names, 0.15)
    for phase in np.linspace(-3, 3, 7):
        assert np.allclose(gait.target(-1, -phase), gait.target(+1, phase))
    from dexterity_ros.learning.gait_search import parse_overrides
    assert parse_overrides(["mirror=false"]) == {"mirror": False}
    with pytest.raises(ValueError, match="is not a bool"):
        parse_overrides(["mirror=maybe"])
    with pytest.raises(ValueError, match="mirrored"):
        gait_from_vector(np.zeros(5), np.zeros(JOINTS), LOWER, UPPER, names, 0.15)


def test_cli_refuses_bad_settings_and_configs_with_one_line(tmp_path, capsys):
    from dexterity_ros.cli import main

    out = str(tmp_path / "g.json")
    assert main(["gait-search", "--config", "config/experiments/gait_rotate_one.yaml", "--out", out,
                 "--set", "speed=3"]) == 2
    assert "unknown setting 'speed=3'" in capsys.readouterr().err
    assert main(["gait-search", "--config", str(tmp_path / "missing.yaml"), "--out", out]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["gait-search", "--config", "config/experiments/gait_rotate_one.yaml", "--out", out,
                 "--set", "population=2"]) == 2
    assert "population >= 4" in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()


def test_the_position_correction_is_added_and_left_out_of_the_phase():
    rng = np.random.default_rng(8)
    gain = rng.normal(0, 3.0, (JOINTS, 3))
    gait = _gait(position_gain=gain)
    offset = np.array([0.01, -0.02, 0.005])
    for phase in (-2.0, 0.4, 2.5):
        previous = gait.target(+1, phase) + gain @ offset          # the last command, made at this offset
        expected = gait.target(+1, phase + gait.omega) + gain @ offset
        assert np.allclose(gait.next_target(previous, 0.8, 0.8, offset), expected)
    assert np.array_equal(gait.next_target(previous, 0.1, 0.1, offset), previous)      # hold: no correction
    with pytest.raises(ValueError, match="position_gain"):
        _gait(position_gain=np.zeros((JOINTS, 2)))


def test_under_speed_limits_the_phase_advances_only_as_fast_as_the_hand_can_follow():
    gait = _gait(sin_amplitude=np.full((2, JOINTS), 1.2), cos_amplitude=np.tile(np.linspace(-0.4, 0.4, JOINTS), (2, 1)))
    max_step = np.full(JOINTS, 0.125)            # 1.5 rad/s at 12 Hz, hand_node's default
    for phase in np.linspace(-3.1, 3.1, 40):
        previous = gait.target(+1, phase)
        limited = gait.next_target(previous, 0.8, +0.8, max_step=max_step)
        assert np.all(np.abs(limited - previous) <= max_step + 1e-12)
        step = gait.phase_step(+1, phase, max_step)
        assert 0 < step < gait.omega and np.allclose(limited, gait.target(+1, phase + step))
        # the largest such step (to the bisection's resolution): a little more would break a limit
        assert np.any(np.abs(gait.target(+1, phase + step + gait.omega / 1000) - previous) > max_step)
    # loose limits, or none: the full omega
    assert gait.phase_step(+1, 0.3, np.full(JOINTS, 10.0)) == gait.omega == gait.phase_step(+1, 0.3, None)


def test_the_expert_reads_the_hand_filters_limits_from_the_simulator():
    from dexterity_ros.sim.env import ReorientEnv
    from dexterity_ros.sim.sim_config import load_sim_config
    from dexterity_ros.paths import config_path

    env = ReorientEnv(load_sim_config(config_path("sim_rotate_one.yaml")), None, seed=2)
    expert = GaitExpert(load_gait("rotate_cuboid_flat"))
    env.reset()
    expert.reset(env)
    env.step(expert.act(env))               # the first step moves from the start grasp onto the cycle
    for _ in range(12):
        previous = env.commanded_targets
        target = expert.act(env)
        assert np.all(np.abs(target - previous) <= env.hand_command_max_step + 1e-9)
        env.step(target)
