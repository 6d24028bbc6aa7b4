"""PolicyRuntime semantics against a re-implementation of docs/policy_contract.md.

The probe model (test_policy_support) outputs
``action = base + sum_k w_k * action_history[k] + STATE_GAIN * state`` and
``state_out = state + 1``, so history, recurrent state and resets are visible
in its actions; the shipped student checks determinism on a real network.
"""
from __future__ import annotations

import collections
import subprocess
import sys

import numpy as np
import pytest

from dexterity_ros.geometry import quat_to_matrix, random_quaternion
from dexterity_ros.paths import models_path
from dexterity_ros.policy.contract import ContractError, PolicyError
from dexterity_ros.policy.inputs import RateGate, staleness
from dexterity_ros.policy.runtime import PolicyRuntime, StepStatus, normalize_goal, GoalError
from policy_fixtures import (HAND, HISTORY_WEIGHTS, J, NAN_TRIGGER, PERCEPTION, STATE_GAIN, Normalization,
                                 base_action, cloud, probe_contract, probe_model, replace)

PERIOD_NS = 83_333_333
GOAL = np.array([1.0, 0.0, 0.0, 0.0])
Q0 = np.clip(np.full(J, 0.5), HAND.lower, HAND.upper)


def probe_actions(n: int, history: int = 3) -> list[np.ndarray]:
    """What the probe graph must output for n steps after a reset (zeros history, state 0)."""
    hist = collections.deque([np.zeros(J)] * history, maxlen=history)
    out = []
    for t in range(n):
        a = base_action().astype(np.float64) + sum(w * h for w, h in zip(HISTORY_WEIGHTS, hist)) + STATE_GAIN * t
        out.append(a)
        hist.append(a)
    return out


def expected_targets(mode: str, scale: float, ema: float, default: np.ndarray, qs: list[np.ndarray]):
    targets, prev = [], qs[0].copy()
    for a, q in zip(probe_actions(len(qs)), qs):
        base = {"absolute": default, "relative-to-previous-target": prev, "relative-to-measured": q}[mode]
        t = base + scale * a
        if ema:
            t = ema * prev + (1 - ema) * t
        prev = np.clip(t, HAND.lower, HAND.upper)
        targets.append(prev)
    return targets


@pytest.mark.parametrize("mode", ["absolute", "relative-to-previous-target", "relative-to-measured"])
@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_action_modes_follow_the_contract(mode, ema):
    contract = probe_contract(action_mode=mode, scale=0.5, ema=ema)
    runtime = PolicyRuntime(probe_model(contract))
    rng = np.random.default_rng(1)
    qs = [np.clip(Q0 + rng.normal(0, 0.05, J), HAND.lower, HAND.upper) for _ in range(6)]
    want = expected_targets(mode, 0.5, ema, np.array(contract.default_joint_pos), qs)
    for k, q in enumerate(qs):
        out = runtime.step(cloud(rng), q, GOAL, k * PERIOD_NS)
        assert out.status is StepStatus.ACTION, out.reason
        np.testing.assert_allclose(out.target, want[k], atol=1e-6)
        assert np.all(out.target >= HAND.lower) and np.all(out.target <= HAND.upper)


def test_relative_to_previous_target_is_clamped_to_limits():
    runtime = PolicyRuntime(probe_model(action_mode="relative-to-previous-target", scale=5.0))
    rng = np.random.default_rng(2)
    for k in range(8):
        out = runtime.step(cloud(rng), Q0, GOAL, k * PERIOD_NS)
    np.testing.assert_allclose(out.target, HAND.upper)     # positive actions accumulate to the upper limits


def run_steps(runtime, n, start_ns=0, goal=GOAL, q=Q0, rng=None):
    rng = rng or np.random.default_rng(0)
    return [runtime.step(cloud(rng), q, goal, start_ns + k * PERIOD_NS) for k in range(n)]


def test_history_and_recurrent_state_carry_then_reset_on_new_goal():
    runtime = PolicyRuntime(probe_model())
    outs = run_steps(runtime, 4)
    assert outs[0].reset_reason == "first step" and all(o.reset_reason is None for o in outs[1:])
    for out, want in zip(outs, probe_actions(4)):
        np.testing.assert_allclose(out.action, want, atol=1e-6)
    np.testing.assert_array_equal(runtime.last_inputs["state_in"], [[3.0]])
    turned = np.array([np.cos(0.3), np.sin(0.3), 0.0, 0.0])
    out = runtime.step(cloud(np.random.default_rng(5)), Q0, turned, 4 * PERIOD_NS)
    assert out.reset_reason == "new goal"
    np.testing.assert_allclose(out.action, probe_actions(1)[0], atol=1e-7)
    np.testing.assert_array_equal(runtime.last_inputs["hist"], np.zeros((1, 3, J), np.float32))
    np.testing.assert_array_equal(runtime.last_inputs["state_in"], [[0.0]])
    # the same orientation with the opposite quaternion sign is not a new goal
    assert runtime.step(cloud(np.random.default_rng(6)), Q0, -turned, 5 * PERIOD_NS).reset_reason is None


def test_gap_in_inputs_resets_but_short_gaps_do_not():
    runtime = PolicyRuntime(probe_model())          # reset_after_gap 0.5 s
    run_steps(runtime, 3)
    short = runtime.step(cloud(np.random.default_rng(1)), Q0, GOAL, 2 * PERIOD_NS + 400_000_000)
    assert short.reset_reason is None
    late = runtime.step(cloud(np.random.default_rng(1)), Q0, GOAL, 2 * PERIOD_NS + 1_500_000_000)
    assert late.reset_reason is not None and "gap of 1.100 s" in late.reset_reason
    np.testing.assert_allclose(late.action, probe_actions(1)[0], atol=1e-7)
    back = runtime.step(cloud(np.random.default_rng(1)), Q0, GOAL, 0)
    assert "backwards" in back.reset_reason


def test_nan_output_is_never_forwarded_and_resets_state():
    runtime = PolicyRuntime(probe_model())
    run_steps(runtime, 3)
    q_bad = Q0.copy()
    q_bad[4] = NAN_TRIGGER + 0.5
    out = runtime.step(cloud(np.random.default_rng(1)), q_bad, GOAL, 3 * PERIOD_NS)
    assert out.target is None and out.status is StepStatus.NAN_OUTPUT
    assert "NaN or inf" in out.reason and "action" in out.reason
    nxt = runtime.step(cloud(np.random.default_rng(1)), Q0, GOAL, 4 * PERIOD_NS)
    assert nxt.ok and "non-finite" in nxt.reset_reason
    np.testing.assert_allclose(nxt.action, probe_actions(1)[0], atol=1e-7)


@pytest.mark.parametrize("points, q, goal, status, text", [
    (cloud(np.random.default_rng(0), 300), Q0, GOAL, StepStatus.BAD_POINTS, "300 points, fewer than the 512"),
    (cloud(np.random.default_rng(0), 600), Q0, GOAL, StepStatus.BAD_POINTS, "more than the 512"),
    (np.full((512, 3), np.nan, np.float32), Q0, GOAL, StepStatus.BAD_POINTS, "512 points with NaN"),
    (cloud(np.random.default_rng(0))[:, :2], Q0, GOAL, StepStatus.BAD_POINTS, "(N, 3)"),
    (cloud(np.random.default_rng(0)), Q0, [0.0, 0.0, 0.0, 0.0], StepStatus.BAD_GOAL, "zero norm"),
    (cloud(np.random.default_rng(0)), Q0, [np.nan, 0.0, 0.0, 1.0], StepStatus.BAD_GOAL, "NaN"),
    (cloud(np.random.default_rng(0)), Q0, [1.0, 0.0, 0.0], StepStatus.BAD_GOAL, "4 components"),
    (cloud(np.random.default_rng(0)), Q0[:12], GOAL, StepStatus.BAD_JOINTS, "canonical (16,)"),
    (cloud(np.random.default_rng(0)), np.full(J, np.inf), GOAL, StepStatus.BAD_JOINTS, "NaN or inf"),
])
def test_bad_inputs_give_reasons_and_leave_state_alone(points, q, goal, status, text):
    runtime = PolicyRuntime(probe_model())
    run_steps(runtime, 2)
    out = runtime.step(points, q, goal, 2 * PERIOD_NS)
    assert out.target is None and out.status is status and text in out.reason, out.reason
    nxt = runtime.step(cloud(np.random.default_rng(9)), Q0, GOAL, 3 * PERIOD_NS)
    assert nxt.ok and nxt.reset_reason is None
    np.testing.assert_allclose(nxt.action, probe_actions(3)[2], atol=1e-6)


def test_policy_joint_order_is_mapped_by_name():
    names = tuple(reversed(HAND.driver_order("allegro_v4")))      # aliases, reversed order
    default_canon = np.clip(np.linspace(0.1, 0.9, J), HAND.lower, HAND.upper)
    contract = probe_contract(action_mode="absolute", scale=1.0, joint_names=names, default=default_canon[::-1])
    runtime = PolicyRuntime(probe_model(contract))
    q = np.clip(np.linspace(0.0, 1.0, J), HAND.lower, HAND.upper)
    out = runtime.step(cloud(np.random.default_rng(0)), q, GOAL, 0)
    np.testing.assert_array_equal(runtime.last_inputs["q"][0], q[::-1].astype(np.float32))
    want = np.clip(default_canon + base_action()[::-1], HAND.lower, HAND.upper)
    np.testing.assert_allclose(out.target, want, atol=1e-6)


def test_mean_std_normalisation_is_applied_by_the_runtime():
    contract = probe_contract()
    mean, std = tuple(np.linspace(0, 1, J)), tuple(np.linspace(0.5, 2, J))
    contract = replace(contract, inputs=tuple(
        replace(s, normalization=Normalization("mean_std", mean, std)) if s.name == "q" else s
        for s in contract.inputs))
    runtime = PolicyRuntime(probe_model(contract))
    runtime.step(cloud(np.random.default_rng(0)), Q0, GOAL, 0)
    want = ((Q0.astype(np.float32) - np.float32(mean)) / np.float32(std))
    np.testing.assert_allclose(runtime.last_inputs["q"][0], want, rtol=1e-6)


def test_goal_points_are_the_canonical_set_rotated_to_the_goal():
    rng = np.random.default_rng(4)
    points = rng.normal(0, 0.03, (64, 3)).astype(np.float32)
    runtime = PolicyRuntime(probe_model(goal_points=64), goal_points=points)
    goal = random_quaternion(rng)
    out = runtime.step(cloud(rng), Q0, goal * 2.0, 0)           # not unit: normalised by the runtime
    assert out.ok
    want = points.astype(np.float64) @ quat_to_matrix(goal).T
    np.testing.assert_allclose(runtime.last_inputs["goal"][0], want, atol=1e-6)


def test_goal_normalisation():
    np.testing.assert_allclose(normalize_goal([-2.0, 0.0, 0.0, 0.0]), [1, 0, 0, 0])
    for bad in ([0, 0, 0, 0], [np.nan, 1, 0, 0], [np.inf, 0, 0, 0]):
        with pytest.raises(GoalError):
            normalize_goal(bad)


def test_shipped_student_is_deterministic_and_within_limits():
    path = models_path("student.onnx")
    first, second = PolicyRuntime(path), PolicyRuntime(path)
    rng = np.random.default_rng(11)
    inputs = [(cloud(rng), np.clip(Q0 + rng.normal(0, 0.1, J), HAND.lower, HAND.upper), GOAL, k * PERIOD_NS)
              for k in range(20)]
    a = [first.step(*x).target for x in inputs]
    b = [second.step(*x).target for x in inputs]
    first.reset()
    c = [first.step(*x).target for x in inputs]
    for ta, tb, tc in zip(a, b, c):
        assert ta is not None and ta.shape == (J,)
        np.testing.assert_array_equal(ta, tb)       # bit-identical
        np.testing.assert_array_equal(ta, tc)
        assert np.all(ta >= HAND.lower) and np.all(ta <= HAND.upper)
    assert not np.array_equal(a[0], a[5])           # the network does react to its inputs
    assert first.contract.point_cloud.num_points == PERCEPTION.num_points
    assert first.contract.segmentation_config_hash == PERCEPTION.config_hash()


def test_node_model_loader_refuses_bad_models(tmp_path):
    from dexterity_ros.policy.student_config import StudentNodeConfig, build_runtime
    assert build_runtime(StudentNodeConfig()).contract.name == "distilled_student"
    bad = tmp_path / "bad.onnx"
    names = list(HAND.joint_names)
    names[0] = "wrist"
    bad.write_bytes(probe_model(joint_names=names))
    with pytest.raises(ContractError, match="wrist"):
        build_runtime(StudentNodeConfig(model_path=str(bad)))
    with pytest.raises(PolicyError, match="canonical point set not found"):
        build_runtime(StudentNodeConfig(goal_points_path=str(tmp_path / "none.npy")))


def test_rate_gate_and_staleness_rules():
    gate = RateGate(12.0)
    assert gate.ready(0)
    gate.mark(0)
    assert not gate.ready(int(0.8 * PERIOD_NS)) and gate.ready(int(0.9 * PERIOD_NS) + 1)
    assert gate.ready(-5)                               # time jumped back: replay restart
    now = 10_000_000_000
    assert staleness(now, now - 50_000_000, now - 40_000_000, 0.2, 0.05) is None
    assert "stale cloud" in staleness(now, now - 300_000_000, now, 0.2, 0.05)
    assert "stale joint state" in staleness(now, now, now - 300_000_000, 0.2, 0.05)
    assert "differ by 80 ms" in staleness(now, now, now - 80_000_000, 0.2, 0.05)
    assert "future" in staleness(now, now + 500_000_000, now, 0.2, 0.05)


def test_runtime_core_imports_neither_torch_nor_rclpy():
    code = ("import sys, dexterity_ros.policy, dexterity_ros.policy.runtime, dexterity_ros.policy.inputs; "
            "bad = [m for m in ('torch', 'rclpy') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
