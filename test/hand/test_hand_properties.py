"""Property tests of the hand core over arbitrary target streams (hypothesis).

Whatever arrives (NaN, inf, huge values, wrong sizes, bursts, long gaps, name
lists with missing, extra or reordered joints), the commands that leave the
controller stay inside the margin-shrunk limits, never step faster than the
per-joint speed limit, and HOLD engages at the first tick after
target_timeout (so within target_timeout + one command period). The checks
here are written independently of the controller's own OutputMonitor.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dexterity_ros.hand import (DriverProfileConfig, EmulatedHand, FeedbackDecoder, FeedbackMismatch, HandController,
                                HandState, SafetyLimits, TargetDecoder, WatchdogConfig, load_safety_tables, make_profile)
from dexterity_ros.hand_model import default_hand

HAND = default_hand()
TABLES = load_safety_tables()
PERIOD = 0.01
TARGET_TIMEOUT = 0.05
HOME_TIMEOUT = 0.3
N = HAND.num_joints
TOL = 1e-9

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                      st.floats(-1e12, 1e12), st.floats(-3.0, 3.0))
good_vector = st.lists(st.floats(-3.0, 3.0), min_size=N, max_size=N)
target_values = st.one_of(good_vector, st.lists(any_float, min_size=N, max_size=N),
                          st.lists(any_float, min_size=0, max_size=N + 4))
event = st.one_of(
    st.tuples(st.just("target"), target_values),
    st.tuples(st.just("burst"), st.lists(target_values, min_size=2, max_size=8)),
    st.tuples(st.just("ticks"), st.lists(st.floats(0.2 * PERIOD, PERIOD), min_size=1, max_size=12)),
    st.tuples(st.just("late_tick"), st.floats(PERIOD, 5 * PERIOD)),
    st.tuples(st.just("gap"), st.floats(TARGET_TIMEOUT, 2 * HOME_TIMEOUT)),
)


def _box_distance(limits: SafetyLimits, q: np.ndarray) -> np.ndarray:
    return np.maximum(limits.lower - q, 0.0) + np.maximum(q - limits.upper, 0.0)


@SETTINGS
@given(events=st.lists(event, min_size=1, max_size=25),
       start_fraction=st.lists(st.floats(0.0, 1.0), min_size=N, max_size=N),
       smoothing=st.sampled_from([0.0, 0.6]),
       interpolation=st.sampled_from(["linear", "none"]),
       tau=st.floats(0.005, 0.2))
def test_commands_stay_in_limits_and_below_speed_limits(events, start_fraction, smoothing, interpolation, tau):
    limits = SafetyLimits.from_tables(dataclasses.replace(TABLES, smoothing=smoothing), HAND)
    config = WatchdogConfig(PERIOD, TARGET_TIMEOUT, HOME_TIMEOUT, feedback_timeout=10.0,
                            interpolation=interpolation)
    controller = HandController(limits, config)
    # The hand may start anywhere in its hard range, including inside the margins.
    start = HAND.lower + np.asarray(start_fraction) * (HAND.upper - HAND.lower)
    sim = EmulatedHand(HAND.lower, HAND.upper, tau, start)
    t = 0.0
    controller.feedback(sim.position, t)
    assert controller.enable(t)[0]
    previous = sim.position.copy()
    last_tick: float | None = None
    last_target_t: float | None = None

    def tick(dt: float) -> None:
        nonlocal t, previous, last_tick
        t += dt
        sim.step(dt)
        controller.feedback(sim.position, t)
        out = controller.tick(t)
        used_dt = PERIOD if last_tick is None else min(t - last_tick, PERIOD)
        last_tick = t
        assert out.command is not None, controller.state_reason
        command = out.command
        assert np.all(np.isfinite(command))
        scale = limits.home_velocity_scale if out.state is HandState.HOMING else 1.0
        step = np.abs(command - previous)
        assert np.all(step <= limits.max_velocity * scale * used_dt * (1 + TOL) + 1e-12), "speed limit exceeded"
        inside = _box_distance(limits, command) <= 1e-12
        moved_in = _box_distance(limits, command) <= _box_distance(limits, previous) + 1e-12
        assert np.all(inside | moved_in), "command left the margin-shrunk limits"
        stale = last_target_t is None or t - last_target_t > TARGET_TIMEOUT
        if stale:
            assert out.state in (HandState.HOLD, HandState.HOMING)
            if out.state is HandState.HOLD:
                # HOLD repeats the last command; one left outside the margin box (the start) moves inwards
                expected = previous if np.all(_box_distance(limits, previous) == 0) else None
                if expected is not None:
                    np.testing.assert_array_equal(command, expected)
                else:
                    assert np.all(_box_distance(limits, command) <= _box_distance(limits, previous))
        else:
            assert out.state is HandState.ACTIVE
        sim.command(command)
        previous = command

    def send(values) -> None:
        nonlocal last_target_t
        verdict = controller.target(np.asarray(values, dtype=np.float64), t)
        ok = len(values) == N and np.all(np.isfinite(np.asarray(values, dtype=np.float64)))
        assert verdict.accepted == ok
        if ok:
            last_target_t = t

    for kind, payload in events:
        if kind == "target":
            send(payload)
            tick(PERIOD)
        elif kind == "burst":
            for values in payload:
                send(values)
            tick(PERIOD)
        elif kind == "ticks":
            for dt in payload:
                tick(dt)
        elif kind == "late_tick":
            tick(payload)
        else:
            for _ in range(int(payload / PERIOD) + 1):
                tick(PERIOD)
    assert controller.counters.limit_violations == 0


@SETTINGS
@given(values=good_vector, t_last=st.floats(0.0, 1.0), dts=st.lists(st.floats(0.1 * PERIOD, PERIOD),
                                                                     min_size=1, max_size=60))
def test_hold_engages_within_target_timeout_plus_one_period(values, t_last, dts):
    limits = SafetyLimits.from_tables(TABLES, HAND)
    controller = HandController(limits, WatchdogConfig(PERIOD, TARGET_TIMEOUT, HOME_TIMEOUT, 10.0))
    controller.feedback(limits.home, 0.0)
    assert controller.enable(0.0)[0]
    controller.target(np.asarray(values), t_last)
    t = t_last
    controller.tick(t)
    while t < t_last + TARGET_TIMEOUT + 2 * PERIOD:
        for dt in dts:
            t += dt
            controller.feedback(limits.home, t)
            state = controller.tick(t).state
            if t - t_last > TARGET_TIMEOUT + PERIOD:
                assert state in (HandState.HOLD, HandState.HOMING)
            elif t - t_last <= TARGET_TIMEOUT:
                assert state is HandState.ACTIVE


@SETTINGS
@given(data=st.data())
def test_target_names_map_by_name_and_bad_lists_are_rejected(data):
    decoder = TargetDecoder(HAND)
    aliases = {i: [HAND.joint_names[i], HAND.driver_order("allegro_v4")[i]] for i in range(N)}
    names = [data.draw(st.sampled_from(aliases[i])) for i in range(N)]
    order = data.draw(st.permutations(range(N)))
    values = np.asarray(data.draw(good_vector))
    q = decoder.decode([names[i] for i in order], values[list(order)])
    np.testing.assert_array_equal(q, values)          # reordered, aliased: same canonical vector
    mutation = data.draw(st.sampled_from(["drop", "extra", "duplicate"]))
    shuffled = [names[i] for i in order]
    if mutation == "drop":
        k = data.draw(st.integers(0, N - 1))
        bad = shuffled[:k] + shuffled[k + 1:]
    elif mutation == "extra":
        bad = shuffled + [data.draw(st.text(min_size=1, max_size=8).filter(lambda s: s not in HAND.aliases()))]
    else:
        bad = shuffled + [shuffled[data.draw(st.integers(0, N - 1))]]
    try:
        decoder.decode(bad, np.zeros(len(bad)))
    except FeedbackMismatch as exc:
        assert {"drop": "missing", "extra": "unknown", "duplicate": "duplicated"}[mutation] in str(exc)
    else:
        raise AssertionError(f"{mutation} name list accepted")


@SETTINGS
@given(profile=st.sampled_from(["allegro_v4", "ros2_control"]),
       digits=st.permutations(["ff", "mf", "rf", "th"]), data=st.data())
def test_feedback_mapping_is_by_name_for_every_order(profile, digits, data):
    p = make_profile(DriverProfileConfig(profile, digits), HAND)
    order = data.draw(st.permutations(range(N)))
    q = np.asarray(data.draw(good_vector))
    names = [p.feedback_vocabulary[i] for i in order]
    decoded = FeedbackDecoder(p).decode(names, q[list(order)])
    np.testing.assert_array_equal(decoded.positions, q)
    drop = data.draw(st.integers(0, N - 1))
    try:
        FeedbackDecoder(p).decode(names[:drop] + names[drop + 1:], np.delete(q[list(order)], drop))
    except FeedbackMismatch as exc:
        assert names[drop] in str(exc)
    else:
        raise AssertionError("feedback with a missing joint accepted")
