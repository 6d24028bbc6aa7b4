"""Driver feedback is never trusted blindly, and no command ever leaves the joint limits (issue 16.1).

Before: with feedback 0.05, 2 or 1e6 rad beyond a joint limit, enable was
accepted and the filter started from the measurement, so HOLD repeated it and
the output check let "outside but not moving further out" pass: commands up to
1e6 rad. These property tests drive the pure controller with arbitrary
feedback streams (inside, just outside, far outside, NaN) interleaved with
targets, enables, resets and ticks, and check every command with code written
independently of the controller's own OutputMonitor.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dexterity_ros.hand import HandController, HandState, SafetyLimits, WatchdogConfig, load_safety_tables
from dexterity_ros.hand_model import default_hand

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

HAND = default_hand()
TABLES = load_safety_tables()
LIMITS = SafetyLimits.from_tables(TABLES, HAND)
TOL = LIMITS.feedback_tolerance
PERIOD = 0.01
N = HAND.num_joints
CONFIG = WatchdogConfig(PERIOD, target_timeout=0.05, home_timeout=0.3, feedback_timeout=10.0)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# How far beyond a limit a joint reads: inside, within the tolerance, just past it, far, absurd, NaN.
excess = st.one_of(st.just(0.0), st.floats(-0.5, 0.0), st.floats(0.0, TOL * 0.999),
                   st.sampled_from([0.05, 2.0, 1e6]), st.floats(TOL * 1.001, 1e9),
                   st.just(float("nan")))


@st.composite
def feedback_vector(draw):
    """A home pose with a few joints pushed beyond (or towards) a limit by a drawn excess."""
    q = LIMITS.home.copy()
    for i in draw(st.lists(st.integers(0, N - 1), max_size=4, unique=True)):
        e, upper = draw(excess), draw(st.booleans())
        q[i] = HAND.upper[i] + e if upper else HAND.lower[i] - e
    return q


event = st.one_of(
    st.tuples(st.just("feedback"), feedback_vector()),
    st.tuples(st.just("target"), st.lists(st.floats(-1e6, 1e6), min_size=N, max_size=N)),
    st.tuples(st.just("enable"), st.none()),
    st.tuples(st.just("reset"), st.none()),
    st.tuples(st.just("ticks"), st.lists(st.floats(0.1 * PERIOD, PERIOD), min_size=1, max_size=10)),
    st.tuples(st.just("prompt"), st.floats(0.0, PERIOD)),
)


def _beyond_tolerance(q: np.ndarray) -> bool:
    return bool(np.any(~np.isfinite(q) | (q < HAND.lower - TOL) | (q > HAND.upper + TOL)))


@SETTINGS
@given(events=st.lists(event, min_size=1, max_size=40))
def test_no_command_outside_the_joint_limits_whatever_the_feedback(events):
    controller = HandController(LIMITS, CONFIG)
    t, previous, last_feedback = 0.0, None, None
    for kind, payload in events:
        if kind == "feedback":
            controller.feedback(payload, t)
            last_feedback = payload
            if _beyond_tolerance(payload):
                # refused at once: a commanding hand faults, a disabled one cannot be enabled
                assert controller.state not in (HandState.ACTIVE, HandState.HOLD, HandState.HOMING)
        elif kind == "target":
            controller.target(np.asarray(payload), t)
        elif kind == "enable":
            ok, message = controller.enable(t)
            if last_feedback is not None and _beyond_tolerance(last_feedback) and ok:
                assert message.startswith("already"), message
            if not ok and last_feedback is not None and _beyond_tolerance(last_feedback) \
                    and controller.state is HandState.DISABLED:
                assert "feedback_limit_tolerance" in message
            if ok and not message.startswith("already"):
                previous = None          # a new start: the first step is measured from the clamped start
                start = np.clip(last_feedback, HAND.lower, HAND.upper)
        elif kind == "reset":
            controller.reset(t)
        else:
            dts = payload if kind == "ticks" else [payload]
            for dt in dts:
                t += dt
                out = controller.tick(t, prompt=kind == "prompt")
                if out.command is None:
                    continue
                command = out.command
                assert np.all(np.isfinite(command))
                assert np.all(command >= HAND.lower) and np.all(command <= HAND.upper), "left the joint limits"
                reference = start if previous is None else previous
                scale = LIMITS.home_velocity_scale if out.state is HandState.HOMING else 1.0
                step = np.abs(command - reference)
                assert np.all(step <= LIMITS.max_velocity * scale * out.dt * (1 + 1e-9) + 1e-12), "too fast"
                previous = command
    assert controller.counters.limit_violations == 0


@pytest.mark.parametrize("beyond", [0.05, 2.0, 1e6])
@pytest.mark.parametrize("side", ["upper", "lower"])
def test_feedback_beyond_tolerance_is_refused_naming_the_joint(beyond, side):
    """The issue's three cases: enable refused, the diagnostic names the joint; no command at all."""
    j = HAND.joint_index("mfj2")
    q = LIMITS.home.copy()
    q[j] = HAND.upper[j] + beyond if side == "upper" else HAND.lower[j] - beyond
    controller = HandController(LIMITS, CONFIG)
    controller.feedback(q, 0.0)
    ok, message = controller.enable(0.0)
    assert not ok and "mfj2" in message and "feedback_limit_tolerance" in message
    assert controller.tick(PERIOD).command is None


@pytest.mark.parametrize("beyond", [0.05, 2.0, 1e6])
def test_implausible_feedback_while_commanding_faults_at_once(beyond):
    controller = HandController(LIMITS, CONFIG)
    controller.feedback(LIMITS.home, 0.0)
    assert controller.enable(0.0)[0]
    assert controller.tick(PERIOD).command is not None
    q = LIMITS.home.copy()
    q[HAND.joint_index("thj0")] = HAND.lower[HAND.joint_index("thj0")] - beyond
    controller.feedback(q, 2 * PERIOD)
    assert controller.state is HandState.FAULT and "thj0" in controller.state_reason
    assert controller.tick(3 * PERIOD).command is None
    # a plausible reading again does not resume by itself: reset + enable, as after any FAULT
    controller.feedback(LIMITS.home, 4 * PERIOD)
    assert controller.tick(5 * PERIOD).command is None
    assert controller.reset(6 * PERIOD)[0] and controller.enable(6 * PERIOD)[0]


@pytest.mark.parametrize("smoothing", [0.0, 0.6])
def test_start_slightly_beyond_a_limit_moves_inwards_at_the_speed_limit(smoothing):
    limits = SafetyLimits.from_tables(dataclasses.replace(TABLES, smoothing=smoothing), HAND)
    j = HAND.joint_index("ffj1")
    start = limits.home.copy()
    start[j] = HAND.upper[j] + 0.8 * TOL                     # within the tolerance
    controller = HandController(limits, CONFIG)
    controller.feedback(start, 0.0)
    ok, message = controller.enable(0.0)
    assert ok, message
    t, previous = 0.0, np.clip(start, HAND.lower, HAND.upper)
    for _ in range(200):                                     # no target: HOLD
        t += PERIOD
        command = controller.tick(t).command
        assert command is not None
        assert command[j] <= HAND.upper[j]
        step = previous[j] - command[j]
        assert 0.0 <= step <= limits.max_velocity[j] * PERIOD + 1e-12
        previous = command
        if command[j] <= limits.upper[j] + 1e-12:
            break
    assert previous[j] == pytest.approx(limits.upper[j])    # reached the margin box, at full speed
    expected_ticks = np.ceil((HAND.upper[j] - limits.upper[j]) / (limits.max_velocity[j] * PERIOD) - 1e-9)
    assert t == pytest.approx(expected_ticks * PERIOD)
    others = np.arange(N) != j
    np.testing.assert_array_equal(previous[others], start[others])


def test_supervisor_loss_holds_once_then_disables():
    controller = HandController(LIMITS, CONFIG)
    controller.feedback(LIMITS.home, 0.0)
    assert controller.enable(0.0)[0]
    last = controller.tick(PERIOD).command
    hold = controller.supervisor_lost(2 * PERIOD, "supervisor gone")
    np.testing.assert_array_equal(hold, last)
    assert controller.state is HandState.DISABLED
    states = [tr.new for tr in controller.drain_transitions()]
    assert states[-2:] == [HandState.HOLD, HandState.DISABLED]
    assert controller.tick(3 * PERIOD).command is None
    assert controller.supervisor_lost(4 * PERIOD, "again") is None      # disabled: nothing to send


def test_prompt_tick_sends_the_next_step_now_and_keeps_the_speed_limit():
    """A fresh target's first command leaves at arrival; speed is bounded by the time since the last tick."""
    controller = HandController(LIMITS, WatchdogConfig(PERIOD, 0.2, 1.0, 10.0, "linear"))
    controller.feedback(LIMITS.home, 0.0)
    assert controller.enable(0.0)[0]
    t = 0.0
    goal = LIMITS.home + 0.2
    for k in range(5):                       # a 20 Hz policy establishes the period estimate
        controller.target(LIMITS.home, t)
        for _ in range(5):
            t += PERIOD
            controller.tick(t)
    before = controller.tick(t + 0.004).command          # a timer tick 4 ms ago
    t += 0.004
    controller.target(goal, t + 0.002)
    prompt = controller.tick(t + 0.002, prompt=True)
    assert prompt.state is HandState.ACTIVE
    step = prompt.command - before
    assert np.all(step > 0), "the prompt command already moves towards the new target"
    assert np.all(step <= LIMITS.max_velocity * 0.002 + 1e-12), "bounded by the 2 ms since the last tick"
