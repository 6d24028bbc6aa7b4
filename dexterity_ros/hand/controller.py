"""The hand's command state machine and watchdog (pure: time is passed in, seconds).

States::

    DISABLED --enable (fresh, matching, plausible feedback; no start-up check failing)--> HOLD / ACTIVE
    ACTIVE   --no target for target_timeout------> HOLD      (keep the last command)
    HOLD     --no target for home_timeout--------> HOMING    (ramp to the home pose)
    HOLD/HOMING --fresh target-------------------> ACTIVE    (continue from the last command)
    enabled  --no feedback for feedback_timeout--> FAULT     (stop commanding; a tick that came late
                                                           while feedback was fresh defers it one tick)
    enabled  --feedback beyond the joint limits--> FAULT     (more than feedback_limit_tolerance: a broken
                                                           encoder or a wrong driver mapping)
    enabled  --a start-up check fails-----------> FAULT     (e.g. the driver's joint limits disagree)
    enabled  --supervisor gone------------------> HOLD (one last command) -> DISABLED
    any      --estop-----------------------------> ESTOP     (stop commanding, latched)
    FAULT/ESTOP --reset--------------------------> DISABLED
    enabled/FAULT --disable----------------------> DISABLED

Commands are produced only in ACTIVE, HOLD and HOMING, one per ``tick``;
each one has passed the :class:`SafetyFilter` and the :class:`OutputMonitor`.
"""
from __future__ import annotations

import collections
import enum
from dataclasses import dataclass

import numpy as np

from ..diagnostics import Level
from .interpolation import TargetInterpolator
from .safety import OutputMonitor, SafetyFilter, SafetyLimits, TargetRejected


class HandState(str, enum.Enum):
    DISABLED = "DISABLED"
    ACTIVE = "ACTIVE"
    HOLD = "HOLD"
    HOMING = "HOMING"
    FAULT = "FAULT"
    ESTOP = "ESTOP"


COMMANDING = (HandState.ACTIVE, HandState.HOLD, HandState.HOMING)
STATE_LEVEL = {HandState.DISABLED: Level.OK, HandState.ACTIVE: Level.OK, HandState.HOLD: Level.WARN,
               HandState.HOMING: Level.WARN, HandState.FAULT: Level.ERROR, HandState.ESTOP: Level.ERROR}


@dataclass(frozen=True)
class WatchdogConfig:
    command_period: float = 0.01      # s between commands
    target_timeout: float = 0.2       # s without a target -> HOLD
    home_timeout: float = 5.0         # s without a target -> HOMING
    feedback_timeout: float = 0.25    # s without driver feedback -> FAULT
    interpolation: str = "linear"

    def __post_init__(self):
        if self.command_period <= 0:
            raise ValueError("command_period must be > 0")
        if not 0 < self.target_timeout < self.home_timeout:
            raise ValueError("need 0 < target_timeout < home_timeout")
        if self.feedback_timeout <= 0:
            raise ValueError("feedback_timeout must be > 0")


@dataclass
class Counters:
    commands_sent: int = 0
    targets_accepted: int = 0
    targets_rejected: int = 0
    clamps: int = 0                 # accepted targets that needed clamping
    rate_limits_hit: int = 0        # commands where at least one joint was speed-limited
    watchdog_trips: int = 0         # ACTIVE->HOLD, ->HOMING, ->FAULT
    limit_violations: int = 0       # outputs the OutputMonitor flagged (must stay 0)
    estops: int = 0
    enables: int = 0
    late_ticks: int = 0             # ticks that came late with stale feedback: decided on the next tick


@dataclass(frozen=True)
class Transition:
    t: float
    old: HandState
    new: HandState
    reason: str

    @property
    def level(self) -> Level:
        return STATE_LEVEL[self.new]

    def describe(self) -> str:
        return f"hand state {self.old.value} -> {self.new.value}: {self.reason}"


@dataclass(frozen=True)
class TargetVerdict:
    accepted: bool
    clamped_joints: int = 0
    message: str = ""


@dataclass(frozen=True)
class TickOutput:
    command: np.ndarray | None      # None: send nothing
    state: HandState
    dt: float                       # the step used by the rate limiter


@dataclass
class _Feedback:
    positions: np.ndarray | None = None
    t: float | None = None
    mismatch: str | None = None          # names do not match the profile, or values are implausible


class HandController:
    """Safety filter + watchdog + state machine for one hand."""

    def __init__(self, limits: SafetyLimits, config: WatchdogConfig = WatchdogConfig()):
        self.limits = limits
        self.config = config
        self.filter = SafetyFilter(limits)
        self.monitor = OutputMonitor(limits)
        self.interpolator = TargetInterpolator(config.interpolation, min_period=config.command_period,
                                               max_period=config.target_timeout)
        self.counters = Counters()
        self.state = HandState.DISABLED
        self.state_reason = "starts disabled: call ~/enable"
        self.state_since = 0.0
        self._feedback = _Feedback()
        self._target: np.ndarray | None = None
        self._target_t: float | None = None
        self._target_used_t: float | None = None   # arrival time of the target last fed to the interpolator
        self._enabled_t = 0.0
        self._last_tick: float | None = None
        self._transitions: collections.deque[Transition] = collections.deque(maxlen=100)
        self.last_violation: str = ""
        self._enable_blockers: dict[str, str] = {}   # start-up checks that failed: key -> why

    # ------------------------------------------------------------ inputs
    def feedback(self, positions: np.ndarray, t: float) -> None:
        """A decoded measurement; one beyond the joint limits (past the tolerance) is never trusted."""
        positions = np.array(positions, dtype=np.float64)
        implausible = self.limits.implausible_feedback(positions)
        if implausible:
            self.feedback_mismatch(implausible, t)
            return
        self._feedback = _Feedback(positions, t, None)

    def feedback_mismatch(self, message: str, t: float) -> None:
        """Feedback arrived but does not match the driver profile: it never counts as fresh."""
        self._feedback = _Feedback(None, None, message)
        if self.state in COMMANDING:
            self._set_state(HandState.FAULT, t, message)
            self.counters.watchdog_trips += 1

    def target(self, q: np.ndarray, t: float) -> TargetVerdict:
        try:
            clamped, n_clamped = self.filter.check_target(q)
        except TargetRejected as exc:
            self.counters.targets_rejected += 1
            return TargetVerdict(False, 0, str(exc))
        self.counters.targets_accepted += 1
        if n_clamped:
            self.counters.clamps += 1
        self._target, self._target_t = clamped, t
        return TargetVerdict(True, n_clamped, f"{n_clamped} joint(s) clamped to limits" if n_clamped else "")

    def set_enable_blocker(self, key: str, problem: str | None, t: float) -> None:
        """A start-up check's verdict: while ``problem`` is set, enabling is refused (and commanding faults)."""
        if problem is None:
            self._enable_blockers.pop(key, None)
            return
        self._enable_blockers[key] = problem
        if self.state in COMMANDING:
            self._set_state(HandState.FAULT, t, problem)
            self.counters.watchdog_trips += 1

    def supervisor_lost(self, t: float, why: str) -> np.ndarray | None:
        """The process that started us is gone: one HOLD command (the last one), then DISABLED.

        Returns the HOLD command to send (None if the hand was not commanding).
        """
        hold = None
        if self.state in COMMANDING:
            self._set_state(HandState.HOLD, t, f"{why}: holding the last command")
            hold = self.filter.hold()
            if self.monitor.check(hold, 0.0):
                hold = None
        if self.state is not HandState.DISABLED:
            self._set_state(HandState.DISABLED, t, f"{why}: stopped commanding")
        return hold

    # ---------------------------------------------------------- services
    def feedback_problem(self, t: float) -> str | None:
        """Why the feedback cannot be trusted now (None if it can)."""
        fb = self._feedback
        if fb.mismatch:
            return fb.mismatch
        if fb.t is None:
            return "no feedback from the driver yet"
        age = t - fb.t
        if age > self.config.feedback_timeout:
            return f"no feedback from the driver for {age:.3f} s (feedback_timeout {self.config.feedback_timeout} s)"
        return None

    def _late_tick_may_hide_feedback(self, t: float, previous_tick: float | None) -> bool:
        """This tick came late and the feedback was fresh at the previous one.

        Then our own process was not scheduled (a loaded machine), and the
        driver's messages may be waiting in our subscription queue, to be read
        right after this tick: feedback age measured now says more about us than
        about the driver. Such a tick sends nothing and the next one decides, so
        a real feedback loss is still a FAULT one tick later.
        """
        fb = self._feedback
        if previous_tick is None or fb.t is None or fb.mismatch:
            return False
        late = t - previous_tick > max(3 * self.config.command_period, 0.5 * self.config.feedback_timeout)
        return late and previous_tick - fb.t <= self.config.feedback_timeout

    @property
    def feedback_untrusted(self) -> bool:
        """Feedback arrived but was refused (names do not match the profile, or values beyond the limits)."""
        return self._feedback.mismatch is not None

    @property
    def enable_blockers(self) -> tuple[str, ...]:
        return tuple(self._enable_blockers.values())

    @property
    def measured(self) -> np.ndarray | None:
        return None if self._feedback.positions is None else self._feedback.positions.copy()

    def enable(self, t: float) -> tuple[bool, str]:
        if self.state in COMMANDING:
            return True, f"already enabled ({self.state.value})"
        if self.state in (HandState.FAULT, HandState.ESTOP):
            return False, f"refused: hand is in {self.state.value} ({self.state_reason}); call ~/reset first"
        problems = [p for p in (self.feedback_problem(t), *self._enable_blockers.values()) if p]
        if problems:
            return False, "refused: " + "; ".join(problems)
        measured = self._feedback.positions
        self.filter.reset(measured)
        self.monitor.reset(measured)
        self.interpolator.reset(measured, t)
        self._enabled_t = t
        self._last_tick = None
        self._target_used_t = None
        self.counters.enables += 1
        fresh = self._target_is_fresh(t)
        self._set_state(HandState.ACTIVE if fresh else HandState.HOLD, t,
                        "enabled, ramping from the measured position" if fresh
                        else "enabled, holding the measured position until a policy target arrives")
        return True, f"enabled ({self.state.value})"

    def disable(self, t: float) -> tuple[bool, str]:
        if self.state is HandState.ESTOP:
            return False, "refused: ESTOP is latched; call ~/reset"
        if self.state is not HandState.DISABLED:
            self._set_state(HandState.DISABLED, t, "disabled by request")
        return True, "disabled"

    def estop(self, t: float) -> tuple[bool, str]:
        self.counters.estops += 1
        if self.state is not HandState.ESTOP:
            self._set_state(HandState.ESTOP, t, "emergency stop requested; latched until ~/reset")
        return True, "ESTOP latched: no commands until ~/reset"

    def reset(self, t: float) -> tuple[bool, str]:
        if self.state in (HandState.FAULT, HandState.ESTOP):
            self._set_state(HandState.DISABLED, t, f"reset from {self.state.value}")
            return True, "reset: DISABLED (call ~/enable to command again)"
        return True, f"nothing to reset ({self.state.value})"

    def home(self, t: float) -> tuple[bool, str]:
        """Operator request (~/home): the watchdog's HOMING now instead of after home_timeout.

        The same ramp to home_pose at home_velocity_scale through the safety filter and the output monitor;
        only while commanding on fresh feedback. As after the watchdog's homing, a fresh policy target takes
        over again (ACTIVE)."""
        if self.state in (HandState.FAULT, HandState.ESTOP):
            return False, f"refused: hand is in {self.state.value} ({self.state_reason}); call ~/reset, then ~/enable"
        if self.state not in COMMANDING:
            return False, f"refused: hand is {self.state.value}; call ~/enable first (homing moves the hand)"
        problem = self.feedback_problem(t)
        if problem:
            return False, f"refused: {problem}"
        if self.state is HandState.HOMING:
            return True, "already homing"
        self._set_state(HandState.HOMING, t, "home requested (~/home): ramping to the home pose at "
                        "home_velocity_scale until a fresh policy target arrives")
        return True, "homing: ramping to the home pose at home_velocity_scale"

    # ------------------------------------------------------------- clock
    def _target_is_fresh(self, t: float) -> bool:
        return self._target_t is not None and t - self._target_t <= self.config.target_timeout

    def tick(self, t: float, prompt: bool = False) -> TickOutput:
        """One command period: watchdog, state machine, then the filtered command (or None).

        ``prompt``: an extra tick at the moment a fresh target arrived, so its
        first command leaves at once rather than at the next timer tick. The
        rate limiter's step is the time since the previous tick (so the speed
        limit holds whatever the tick pattern) and the interpolation segment
        starts one command period early (the step the next tick would take).
        """
        period = self.config.command_period
        previous_tick = self._last_tick
        dt = period if previous_tick is None else min(max(t - previous_tick, 0.0), period)
        self._last_tick = t
        if self.state not in COMMANDING:
            return TickOutput(None, self.state, dt)
        problem = self.feedback_problem(t)
        if problem:
            if self._late_tick_may_hide_feedback(t, previous_tick):
                self.counters.late_ticks += 1
                return TickOutput(None, self.state, dt)      # send nothing; decide on the next tick
            self.counters.watchdog_trips += 1
            self._set_state(HandState.FAULT, t, problem)
            return TickOutput(None, self.state, dt)

        speed_scale = 1.0
        if self._target_is_fresh(t):
            if self._target_t != self._target_used_t:
                if self.state is not HandState.ACTIVE:
                    self.filter.hold()
                    self.interpolator.reset(self.filter.command, t)
                    self._set_state(HandState.ACTIVE, t, "fresh policy target: tracking")
                self.interpolator.add_target(self._target, self._target_t, lead=period if prompt else 0.0)
                self._target_used_t = self._target_t
            desired = self.interpolator.sample(t) if self.state is HandState.ACTIVE else None
        else:
            since = t - (self._target_t if self._target_t is not None and self._target_t > self._enabled_t
                         else self._enabled_t)
            if since > self.config.home_timeout and self.state is not HandState.HOMING:
                self.counters.watchdog_trips += 1
                self._set_state(HandState.HOMING, t, f"no policy target for {since:.2f} s "
                                f"(home_timeout {self.config.home_timeout} s): ramping to the home pose")
            elif self.state is HandState.ACTIVE:
                self.counters.watchdog_trips += 1
                self._set_state(HandState.HOLD, t, f"no policy target for {since:.3f} s "
                                f"(target_timeout {self.config.target_timeout} s): holding the last command")
            desired = None
        if self.state is HandState.HOMING:
            desired, speed_scale = self.limits.home, self.limits.home_velocity_scale

        if desired is None and np.array_equal(self.limits.clamp(self.filter.command), self.filter.command):
            command, limited = self.filter.hold(), 0   # HOLD (also ACTIVE waiting for a first target)
        else:
            if desired is None:                        # holding outside the margin box: move inwards
                desired = self.limits.clamp(self.filter.command)
            result = self.filter.step(desired, dt, speed_scale)
            command, limited = result.command, result.rate_limited
        problems = self.monitor.check(command, dt)
        if problems:
            self.counters.limit_violations += 1
            self.last_violation = "; ".join(problems)
            self._set_state(HandState.FAULT, t, f"output self-check failed: {self.last_violation}")
            return TickOutput(None, self.state, dt)
        if limited:
            self.counters.rate_limits_hit += 1
        self.counters.commands_sent += 1
        return TickOutput(command, self.state, dt)

    # ------------------------------------------------------- transitions
    def _set_state(self, new: HandState, t: float, reason: str) -> None:
        if new is self.state and reason == self.state_reason:
            return
        self._transitions.append(Transition(t, self.state, new, reason))
        self.state, self.state_reason, self.state_since = new, reason, t

    def drain_transitions(self) -> list[Transition]:
        out = list(self._transitions)
        self._transitions.clear()
        return out


class JitterMeter:
    """Deviation of actual callback intervals from the nominal period (reported in ms)."""

    def __init__(self, period: float, window: int = 1000):
        self.period = period
        self._last: float | None = None
        self._deviations: collections.deque[float] = collections.deque(maxlen=window)
        self._intervals: collections.deque[float] = collections.deque(maxlen=window)

    def add(self, t: float) -> None:
        if self._last is not None:
            interval = t - self._last
            self._intervals.append(interval)
            self._deviations.append(abs(interval - self.period))
        self._last = t

    def summary_ms(self) -> dict[str, float]:
        """p50/p99/max of |interval - period| in ms, and the achieved rate in Hz."""
        if not self._deviations:
            return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "rate_hz": 0.0}
        dev = np.fromiter(self._deviations, float) * 1000.0
        mean_interval = float(np.mean(np.fromiter(self._intervals, float)))
        return {"p50": float(np.percentile(dev, 50)), "p99": float(np.percentile(dev, 99)),
                "max": float(dev.max()), "rate_hz": 1.0 / mean_interval if mean_interval > 0 else 0.0}
