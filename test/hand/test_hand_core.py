"""Unit tests of the pure hand core: safety tables, profiles, state machine, emulator dynamics."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from dexterity_ros.config import ConfigError
from dexterity_ros.hand import (LEAP_EMBODIMENT_OFFSET, DriverProfileConfig, EmulatedHand, FeedbackDecoder,
                                FeedbackMismatch, HandController, HandState, JitterMeter, OutputMonitor, SafetyFilter,
                                SafetyLimits, TargetDecoder, TargetInterpolator, TargetRejected,
                                WatchdogConfig, load_hand_parameters, load_safety_tables, make_profile)
from dexterity_ros.hand_model import default_hand

HAND = default_hand()
TABLES = load_safety_tables()
LIMITS = SafetyLimits.from_tables(TABLES, HAND)
PERIOD = 0.01
WATCHDOG = WatchdogConfig(command_period=PERIOD, target_timeout=0.1, home_timeout=0.5, feedback_timeout=0.05)


def enabled_controller(start=None, config=WATCHDOG, limits=LIMITS, t=0.0):
    c = HandController(limits, config)
    c.feedback(LIMITS.home if start is None else start, t)
    ok, msg = c.enable(t)
    assert ok, msg
    return c


# ------------------------------------------------------------ safety tables
def test_packaged_tables_resolve_per_joint_values():
    assert LIMITS.max_velocity[HAND.joint_index("ffj0")] == TABLES.max_velocity["ffj0"]
    assert LIMITS.max_velocity[HAND.joint_index("ffj1")] == TABLES.default_max_velocity
    margin = HAND.lower[HAND.joint_index("thj0")] + TABLES.joint_margin["thj0"]
    assert LIMITS.lower[HAND.joint_index("thj0")] == pytest.approx(margin)
    assert np.all(LIMITS.lower < LIMITS.home) and np.all(LIMITS.home < LIMITS.upper)


def test_tables_accept_driver_aliases_and_reject_unknown_names():
    tables = dataclasses.replace(TABLES, max_velocity={"joint_1.0": 0.7})
    assert SafetyLimits.from_tables(tables, HAND).max_velocity[HAND.joint_index("ffj1")] == 0.7
    with pytest.raises(ConfigError, match="unknown joint name"):
        SafetyLimits.from_tables(dataclasses.replace(TABLES, max_velocity={"wrist": 1.0}), HAND)
    with pytest.raises(ConfigError, match="given twice"):
        SafetyLimits.from_tables(dataclasses.replace(TABLES, max_velocity={"ffj1": 1.0, "joint_1.0": 2.0}), HAND)


def test_tables_reject_unsafe_values():
    home = dict(TABLES.home_pose, ffj1=HAND.upper[HAND.joint_index("ffj1")])
    with pytest.raises(ConfigError, match="home_pose outside"):
        SafetyLimits.from_tables(dataclasses.replace(TABLES, home_pose=home), HAND)
    missing = {k: v for k, v in TABLES.home_pose.items() if k != "thj3"}
    with pytest.raises(ConfigError, match="missing joint.*thj3"):
        SafetyLimits.from_tables(dataclasses.replace(TABLES, home_pose=missing), HAND)
    with pytest.raises(ConfigError, match="joint_margin must be"):
        SafetyLimits.from_tables(dataclasses.replace(TABLES, limit_margin=1.0), HAND)
    with pytest.raises(ConfigError, match="positive"):
        SafetyLimits.from_tables(dataclasses.replace(TABLES, max_velocity={"ffj0": 0.0}), HAND)
    with pytest.raises(ConfigError, match="velocity_scale"):
        SafetyLimits.from_tables(TABLES, HAND, velocity_scale=1.5)


def test_parameter_file_format_is_checked(tmp_path):
    path = tmp_path / "hand.yaml"
    path.write_text("safety:\n  limit_margin: 0.1\n")
    with pytest.raises(ConfigError, match="ros__parameters"):
        load_safety_tables(path)
    path.write_text("/**:\n  ros__parameters:\n    limit_margin: wide\n    home_pose: {ffj0: 0.0}\n")
    with pytest.raises(ConfigError, match="limit_margin"):
        load_safety_tables(path)


def test_packaged_parameter_file_matches_the_node_parameters():
    from dexterity_ros.config import describe_fields
    from dexterity_ros.hand.safety import PER_JOINT_TABLES
    from dexterity_ros.nodes.hand_node import HandNodeConfig
    defaults = {name: default for name, default, _ in describe_fields(HandNodeConfig)}
    for name, value in load_hand_parameters().items():
        table, _, joint = name.partition(".")
        if joint:
            assert table in PER_JOINT_TABLES and joint in HAND.joint_names, name
        else:
            assert name in defaults, f"{name} is not a hand_node parameter"
            assert value == defaults[name], f"{name}: file {value!r} != node default {defaults[name]!r}"
    assert SafetyLimits.from_tables(TABLES, HAND).home.shape == (16,)


# ------------------------------------------------------------- safety filter
def test_filter_clamps_rejects_and_rate_limits():
    f = SafetyFilter(LIMITS)
    with pytest.raises(TargetRejected, match="NaN"):
        f.check_target(np.full(16, np.nan))
    with pytest.raises(TargetRejected, match="16 joints"):
        f.check_target(np.zeros(15))
    clamped, n = f.check_target(np.full(16, 10.0))
    assert n == 16 and np.array_equal(clamped, LIMITS.upper)
    f.reset(LIMITS.home)
    out = f.step(LIMITS.upper, 0.01)
    np.testing.assert_allclose(np.abs(out.command - LIMITS.home), LIMITS.max_velocity * 0.01)
    assert out.rate_limited == 16


def test_filter_starting_outside_the_margin_box_moves_inwards_only():
    start = HAND.lower.copy()                     # at the hard limit: outside the margin box
    f = SafetyFilter(LIMITS)
    f.reset(start)
    out = f.step(HAND.lower - 1.0, 0.01)          # target below the limits: clamped into the box
    assert np.all(out.command >= start) and np.all(out.command <= LIMITS.lower + 1e-12)


def test_output_monitor_flags_jumps_and_leaving_the_box():
    m = OutputMonitor(LIMITS)
    m.reset(LIMITS.home)
    assert m.check(LIMITS.home + LIMITS.max_velocity * 0.01, 0.01) == []
    assert "speed" in m.check(LIMITS.home, 0.0001)[0]
    m.reset(LIMITS.upper)
    assert "limits" in " ".join(m.check(LIMITS.upper + 1e-4, 1.0))
    assert m.check(np.full(16, np.inf), 0.01) == ["non-finite command"]


# ------------------------------------------------------------------ profiles
def test_allegro_v4_profile_orders_slots_by_joint_number():
    p = make_profile("allegro_v4", HAND)
    assert p.command_topic.name == "allegroHand_0/joint_cmd"
    assert p.feedback_topic.name == "allegroHand_0/joint_states"
    assert p.command_names == tuple(f"joint_{k}.0" for k in range(16))
    q = np.arange(16.0)
    values = p.command_values(q)
    for k, name in enumerate(p.command_names):
        assert values[k] == q[HAND.aliases()[name]]


def test_ros2_control_profile_uses_finger_digits_and_controller_order():
    order = ["ah_joint33", "ah_joint00"] + [f"ah_joint{d}{j}" for d in range(4) for j in range(4)
                                             if f"ah_joint{d}{j}" not in ("ah_joint33", "ah_joint00")]
    p = make_profile(DriverProfileConfig("ros2_control", ["th", "ff", "mf", "rf"], order), HAND)
    assert p.command_topic.name == "allegro_hand_position_controller/commands"
    assert p.feedback_topic.name == "/joint_states"
    assert p.command_kind == "float64_array"
    assert p.command_names == tuple(order)
    q = np.arange(16.0)
    values = p.command_values(q)
    assert values[0] == q[HAND.joint_index("rfj3")]      # digit 3 = ring, joint 3
    assert values[1] == q[HAND.joint_index("thj0")]      # digit 0 = thumb
    np.testing.assert_array_equal(p.command_to_canonical(values), q)
    with pytest.raises(ConfigError, match="missing"):
        make_profile(DriverProfileConfig("ros2_control", ["ff", "mf", "rf", "th"], order[:-1]), HAND)
    with pytest.raises(ConfigError, match="finger"):
        make_profile(DriverProfileConfig("ros2_control", ["ff", "mf", "rf"]), HAND)
    with pytest.raises(ConfigError, match="unknown"):
        make_profile("kuka", HAND)


def test_leap_profile_is_positional_with_embodiment_offset():
    p = make_profile(DriverProfileConfig("leap", leap_feedback_topic="leap_joint_states"), HAND)
    assert p.command_topic.name == "cmd_allegro" and p.feedback_kind == "positional"
    assert make_profile("leap", HAND).feedback_service == "leap_position"
    q = np.linspace(0.0, 0.5, 16)
    raw = p.command_values(q) + LEAP_EMBODIMENT_OFFSET
    decoded = FeedbackDecoder(p).decode([], raw)
    np.testing.assert_allclose(decoded.positions, q)
    with pytest.raises(FeedbackMismatch, match="16 positions"):
        FeedbackDecoder(p).decode([], raw[:15])


@pytest.mark.parametrize("profile", ["allegro_v4", "ros2_control", "leap"])
def test_emulator_feedback_round_trips_through_the_decoder(profile):
    p = make_profile(DriverProfileConfig(profile, ["mf", "th", "ff", "rf"], leap_feedback_topic="x"), HAND)
    sim = EmulatedHand(HAND.lower, HAND.upper, 0.05, LIMITS.home + 0.01 * np.arange(16))
    names, positions, _ = sim.feedback(p)
    decoder = FeedbackDecoder(p)
    np.testing.assert_allclose(decoder.decode(names, positions).positions, sim.position)
    sim.faults.reorder_names = True               # same joints, other order: still mapped by name
    names, positions, _ = sim.feedback(p)
    np.testing.assert_allclose(decoder.decode(names if p.feedback_kind == "named" else [],
                                              positions if p.feedback_kind == "named" else
                                              positions[::-1]).positions, sim.position)


def test_renamed_feedback_joint_lists_the_differences():
    p = make_profile("allegro_v4", HAND)
    sim = EmulatedHand(HAND.lower, HAND.upper, 0.05, LIMITS.home)
    sim.faults.rename_joint = HAND.joint_index("thj3")
    names, positions, _ = sim.feedback(p)
    with pytest.raises(FeedbackMismatch) as info:
        FeedbackDecoder(p).decode(names, positions)
    text = str(info.value)
    assert "missing ['joint_15.0 (thj3)']" in text and "unexpected ['joint_15.0_renamed']" in text
    extra = list(p.feedback_vocabulary) + ["arm_joint_1"]
    values = np.zeros(17)
    with pytest.raises(FeedbackMismatch, match="arm_joint_1"):
        FeedbackDecoder(p).decode(extra, values)
    assert FeedbackDecoder(p, allow_extra_names=True).decode(extra, values).positions.shape == (16,)


def test_target_decoder_maps_aliases_and_rejects_bad_messages():
    d = TargetDecoder(HAND)
    names = list(HAND.joint_names)[::-1]
    q = d.decode(names, np.arange(16.0))
    assert q[HAND.joint_index(names[0])] == 0.0
    mixed = ["joint_0.0"] + list(HAND.joint_names[1:])
    assert d.decode(mixed, np.ones(16)).shape == (16,)
    with pytest.raises(FeedbackMismatch, match="missing"):
        d.decode(names[:-1], np.zeros(15))
    with pytest.raises(FeedbackMismatch, match="duplicated"):
        d.decode(names + ["ffj0"], np.zeros(17))
    with pytest.raises(ValueError, match="NaN"):
        d.decode(names, np.r_[np.zeros(15), np.nan])
    with pytest.raises(ValueError, match="positions"):
        d.decode(names, np.zeros(3))


# ----------------------------------------------------------- state machine
def test_starts_disabled_and_refuses_enable_without_fresh_feedback():
    c = HandController(LIMITS, WATCHDOG)
    assert c.state is HandState.DISABLED and c.tick(0.0).command is None
    ok, msg = c.enable(0.0)
    assert not ok and "no feedback" in msg
    c.feedback(LIMITS.home, 0.0)
    ok, msg = c.enable(1.0)
    assert not ok and "feedback_timeout" in msg
    c.feedback_mismatch("joint names do not match: missing ['joint_3.0 (ffj3)']", 1.0)
    ok, msg = c.enable(1.0)
    assert not ok and "joint_3.0" in msg
    assert c.state is HandState.DISABLED


def test_enable_ramps_from_the_measured_position():
    start = LIMITS.home.copy()
    c = enabled_controller(start)
    assert c.state is HandState.HOLD
    c.target(LIMITS.upper, 0.0)
    out = c.tick(0.0)
    assert out.state is HandState.ACTIVE
    np.testing.assert_allclose(np.abs(out.command - start), LIMITS.max_velocity * PERIOD)


def test_hold_then_home_then_resume_without_jumps():
    c = enabled_controller()
    t, q = 0.0, LIMITS.home + 0.1
    prev = LIMITS.home.copy()
    for _ in range(5):
        c.target(q, t)
        out = c.tick(t)
        c.feedback(out.command, t)
        prev = out.command
        t += PERIOD
    states = []
    while t < 0.8:
        out = c.tick(t)
        c.feedback(out.command, t)
        states.append(out.state)
        assert np.all(np.abs(out.command - prev) <= LIMITS.max_velocity * PERIOD + 1e-12)
        prev = out.command
        t += PERIOD
    assert HandState.HOLD in states and states[-1] is HandState.HOMING
    hold_ticks = [s for s in states if s is HandState.HOLD]
    assert len(hold_ticks) >= 30
    np.testing.assert_allclose(prev, LIMITS.home, atol=1e-9)   # reached home at the homing speed
    c.target(LIMITS.home - 0.1, t)
    out = c.tick(t)
    assert out.state is HandState.ACTIVE
    assert np.all(np.abs(out.command - prev) <= LIMITS.max_velocity * PERIOD + 1e-12)
    assert c.counters.watchdog_trips == 2 and c.counters.limit_violations == 0


def test_feedback_loss_faults_and_needs_reset():
    c = enabled_controller()
    ticks = [round(k * PERIOD, 6) for k in range(1, 10)]
    outs = {t: c.tick(t) for t in ticks}
    assert all(outs[t].command is not None for t in ticks if t <= WATCHDOG.feedback_timeout)
    faulted = [t for t in ticks if outs[t].state is HandState.FAULT]
    assert faulted and faulted[0] <= WATCHDOG.feedback_timeout + PERIOD + 1e-9     # the first tick past it
    out = outs[faulted[0]]
    assert out.command is None and c.counters.late_ticks == 0
    assert "no feedback" in c.state_reason
    ok, msg = c.enable(0.08)
    assert not ok and "reset" in msg
    c.feedback(LIMITS.home, 0.09)
    assert c.reset(0.09)[0] and c.state is HandState.DISABLED
    assert c.enable(0.09)[0]
    kinds = [(tr.old, tr.new) for tr in c.drain_transitions()]
    assert (HandState.HOLD, HandState.FAULT) in kinds and (HandState.FAULT, HandState.DISABLED) in kinds


def test_a_late_tick_waits_one_tick_for_queued_feedback_before_faulting():
    """A tick delayed past feedback_timeout (our process starved) while feedback was fresh sends
    nothing and lets the next tick decide: feedback read in between keeps the hand enabled, none
    faults it."""
    for feedback_arrives in (True, False):
        c = enabled_controller()
        assert c.tick(0.01).command is not None
        late = c.tick(0.09)                                    # 80 ms late, feedback 90 ms old
        assert late.command is None and late.state is not HandState.FAULT and c.counters.late_ticks == 1
        if feedback_arrives:
            c.feedback(LIMITS.home, 0.091)                     # it was waiting in the queue
        nxt = c.tick(0.10)
        if feedback_arrives:
            assert nxt.command is not None and nxt.state is not HandState.FAULT
        else:
            assert nxt.command is None and nxt.state is HandState.FAULT and "no feedback" in c.state_reason
    c = enabled_controller()
    c.tick(0.01)
    c.tick(0.09)
    assert c.tick(0.17).state is HandState.FAULT            # late again with nothing read: no second deferral


def test_feedback_name_mismatch_while_enabled_faults_immediately():
    c = enabled_controller()
    c.feedback_mismatch("unexpected ['joint_15.0_renamed']", 0.01)
    assert c.state is HandState.FAULT and c.tick(0.01).command is None


def test_estop_latches_until_reset():
    c = enabled_controller()
    c.tick(0.0)
    c.estop(0.01)
    assert c.state is HandState.ESTOP and c.tick(0.02).command is None
    assert not c.enable(0.02)[0] and not c.disable(0.02)[0]
    c.feedback(LIMITS.home, 0.03)
    assert c.state is HandState.ESTOP
    assert c.reset(0.03)[0] and c.state is HandState.DISABLED
    assert c.enable(0.03)[0] and c.counters.estops == 1


def test_rejected_targets_are_counted_and_do_not_reach_the_hand():
    c = enabled_controller()
    assert not c.target(np.full(16, np.inf), 0.0).accepted
    assert not c.target(np.zeros(3), 0.0).accepted
    out = c.tick(0.0)
    assert out.state is HandState.HOLD and np.array_equal(out.command, LIMITS.home)
    assert c.counters.targets_rejected == 2


def test_self_check_failure_stops_commanding():
    c = enabled_controller()
    c.target(LIMITS.upper, 0.0)
    c.filter.limits = dataclasses.replace(LIMITS, max_velocity=LIMITS.max_velocity * 10)  # a broken filter
    out = c.tick(0.0)
    assert out.command is None and out.state is HandState.FAULT
    assert c.counters.limit_violations == 1 and "speed limit" in c.last_violation


def test_watchdog_config_validation():
    with pytest.raises(ValueError):
        WatchdogConfig(target_timeout=1.0, home_timeout=0.5)


# ------------------------------------------------------- interpolation, jitter
def test_linear_interpolation_spreads_a_target_over_the_policy_period():
    it = TargetInterpolator("linear", min_period=0.01, max_period=0.2)
    it.reset(np.zeros(2), 0.0)
    it.add_target(np.ones(2), 0.0)
    it.add_target(np.ones(2) * 2, 0.05)          # policy at 20 Hz
    assert it.period == pytest.approx(0.05)
    np.testing.assert_allclose(it.sample(0.075), 1.5)
    np.testing.assert_allclose(it.sample(0.2), 2.0)
    none = TargetInterpolator("none")
    none.reset(np.zeros(2), 0.0)
    none.add_target(np.ones(2), 0.0)
    np.testing.assert_allclose(none.sample(0.001), 1.0)


def test_jitter_meter():
    j = JitterMeter(0.01)
    for t in (0.0, 0.01, 0.021, 0.03, 0.05):
        j.add(t)
    s = j.summary_ms()
    assert s["max"] == pytest.approx(10.0) and s["p50"] == pytest.approx(1.0)
    assert s["rate_hz"] == pytest.approx(80.0)


# ------------------------------------------------------------------ emulator
def test_emulator_first_order_response_limits_and_freeze():
    sim = EmulatedHand(HAND.lower, HAND.upper, time_constant=0.1, initial=LIMITS.home)
    sim.command(LIMITS.home + 0.1)
    for _ in range(100):
        sim.step(0.001)
    np.testing.assert_allclose(sim.position, LIMITS.home + 0.1 * (1 - np.exp(-1.0)), rtol=1e-9)
    audit = sim.command(np.full(16, 5.0))
    assert audit.outside_limits == 16
    sim.faults.freeze_joint = 3
    frozen = sim.position[3]
    for _ in range(200):
        sim.step(0.01)
    assert sim.position[3] == frozen
    np.testing.assert_allclose(np.delete(sim.position, 3), np.delete(HAND.upper, 3), atol=1e-6)


def test_docs_list_every_parameter_and_state():
    from dexterity_ros.config import describe_fields
    from dexterity_ros.hand.safety import PER_JOINT_TABLES
    from dexterity_ros.nodes.allegro_emulator_node import EmulatorConfig
    from dexterity_ros.nodes.hand_node import HandNodeConfig
    text = (Path(__file__).resolve().parents[2] / "docs" / "hand.md").read_text()
    names = [n for cls in (HandNodeConfig, EmulatorConfig) for n, _, _ in describe_fields(cls)]
    names += [f"{table}.<joint>" for table in PER_JOINT_TABLES]
    missing = [n for n in names if f"`{n}`" not in text]
    assert not missing, f"docs/hand.md does not document {missing}"
    for state in HandState:
        assert f"`{state.value}`" in text
    for service in ("~/enable", "~/estop", "~/reset"):
        assert f"`{service}`" in text
    for profile in ("allegro_v4", "ros2_control", "leap"):
        p = make_profile(DriverProfileConfig(profile, leap_feedback_topic=""), HAND)
        assert f"`{p.command_topic.name}`" in text
        assert (f"`{p.feedback_topic.name}`" if p.feedback_topic else f"`{p.feedback_service}`") in text


def test_core_does_not_import_rclpy():
    import subprocess
    import sys
    code = "import sys, dexterity_ros.hand; print('rclpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"
