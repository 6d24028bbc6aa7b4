"""What a HIL run must satisfy, judged from what an independent observer saw.

Pure (numpy only): the scenario runner feeds in the decoded commands, the
hand's state changes and the bytes of the recording, and gets figures and
failures back. The command check uses the same tables as hand_node
(:class:`dexterity_ros.hand.safety.SafetyLimits` from config/hand.yaml) but
its own arithmetic, so a bug in the filter cannot hide itself.
"""
from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..hand.safety import SafetyLimits

SILENT_STATES = frozenset({"DISABLED", "FAULT", "ESTOP"})   # hand_node sends no command in these


class CommandLimitCheck:
    """Every command inside the margin-shrunk limits, every step within ``max_velocity x period``.

    A joint outside the box (only possible when the hand was enabled there)
    may only move towards it. Commanding (re)starts from the *measured*
    position: :meth:`rearm` gives the feedback the hand may have used (every
    sample it had received shortly before), and the first command must lie
    within one step (plus ``rearm_tolerance``) of one of them. Commands the
    observer missed are accounted for with ``steps`` (k commands -> k steps).
    """

    def __init__(self, limits: SafetyLimits, command_period_s: float, rearm_tolerance: float = 1e-6,
                 rel_tol: float = 1e-6, abs_tol: float = 1e-9):
        self.limits = limits
        self.max_step = limits.max_velocity * command_period_s
        self.rearm_tolerance = rearm_tolerance
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.previous: np.ndarray | None = None
        self._rearm_candidates: list[np.ndarray] = []
        self.commands = 0
        self.violations = 0
        self.messages: list[str] = []
        self.peak_step_fraction = 0.0      # largest step / allowed step over all joints and commands
        self.min_clearance = np.inf        # smallest distance of any command to the box edge (rad; < 0 outside)
        self.rearms = 0
        self.rearm_offsets: list[float] = []   # max |first command - nearest measured| at each rearm (rad)

    def rearm(self, measured: Sequence[np.ndarray]) -> None:
        """Commanding (re)starts from one of the ``measured`` positions (empty: unknown, limits only)."""
        self.previous = None
        self._rearm_candidates = [np.asarray(m, dtype=np.float64).copy() for m in measured]
        self.rearms += 1

    def _outside(self, q: np.ndarray) -> np.ndarray:
        return np.maximum(self.limits.lower - q, 0.0) + np.maximum(q - self.limits.upper, 0.0)

    def check(self, q: np.ndarray, label: str = "", steps: int = 1) -> list[str]:
        """Judge one command; ``steps`` > 1 when the observer missed ``steps - 1`` commands before it."""
        q = np.asarray(q, dtype=np.float64)
        self.commands += 1
        problems: list[str] = []
        if q.shape != self.limits.lower.shape or not np.all(np.isfinite(q)):
            problems.append(f"command {label} is not {self.limits.lower.size} finite values")
        else:
            clearance = np.minimum(q - self.limits.lower, self.limits.upper - q)
            self.min_clearance = min(self.min_clearance, float(clearance.min()))
            reference, allowed = self.previous, self.max_step * max(steps, 1) * (1 + self.rel_tol) + self.abs_tol
            if reference is None and self._rearm_candidates:
                reference = min(self._rearm_candidates, key=lambda m: float(np.max(np.abs(q - m) - self.max_step)))
                allowed = allowed + self.rearm_tolerance
                self.rearm_offsets.append(float(np.max(np.abs(q - reference))))
            outside = self._outside(q)
            if reference is not None:
                step = np.abs(q - reference)
                self.peak_step_fraction = max(self.peak_step_fraction,
                                              float(np.max(step / (self.max_step + self.abs_tol))))
                fast = np.flatnonzero(step > allowed)
                if fast.size:
                    j = int(fast[np.argmax(step[fast] - allowed[fast])])
                    problems.append(f"command {label}: joint {j} stepped {step[j]:.5f} rad "
                                    f"(allowed {allowed[j]:.5f})")
                grew = np.flatnonzero((outside > self._outside(reference) + self.abs_tol) & (outside > self.abs_tol))
            else:
                grew = np.flatnonzero(outside > self.abs_tol)
            if grew.size:
                j = int(grew[0])
                problems.append(f"command {label}: joint {j} at {q[j]:.5f} rad is outside "
                                f"[{self.limits.lower[j]:.5f}, {self.limits.upper[j]:.5f}]")
            self.previous = q.copy()
            self._rearm_candidates = []
        if problems:
            self.violations += 1
            if len(self.messages) < 5:
                self.messages.extend(problems)
        return problems


@dataclass(frozen=True)
class StateChange:
    t_ns: int
    state: str


class StateTimeline:
    """The hand's state over time, from the ``state`` of its /diagnostics (published on every change)."""

    def __init__(self, observations: Iterable[tuple[int, str]]):
        self.changes: list[StateChange] = []
        for t_ns, state in sorted(observations):
            if not self.changes or self.changes[-1].state != state:
                self.changes.append(StateChange(int(t_ns), state))
        self._times = [c.t_ns for c in self.changes]

    def state_at(self, t_ns: int) -> str | None:
        i = bisect.bisect_right(self._times, t_ns) - 1
        return self.changes[i].state if i >= 0 else None

    def first_entry(self, state: str, after_ns: int, before_ns: int | None = None) -> int | None:
        """When the hand first entered ``state`` at or after ``after_ns`` (already in it: None)."""
        for c in self.changes:
            if c.t_ns >= after_ns and (before_ns is None or c.t_ns < before_ns) and c.state == state:
                return c.t_ns
        return None

    def states_between(self, start_ns: int, end_ns: int) -> list[str]:
        """Every state the hand was in during [start, end], in order."""
        out = []
        current = self.state_at(start_ns)
        if current is not None:
            out.append(current)
        out += [c.state for c in self.changes if start_ns < c.t_ns <= end_ns]
        return out

    def time_in(self, states: Iterable[str], start_ns: int, end_ns: int) -> float:
        """Seconds spent in any of ``states`` during [start, end]."""
        wanted = set(states)
        total = 0
        edges = [start_ns] + [c.t_ns for c in self.changes if start_ns < c.t_ns < end_ns] + [end_ns]
        for a, b in zip(edges, edges[1:]):
            if self.state_at(a) in wanted:
                total += b - a
        return total * 1e-9

    def silent_between(self, start_ns: int, end_ns: int) -> bool:
        """True if the hand entered a non-commanding state in (start, end]: commanding restarted since.

        (A change is published after the command of the same timer tick, so the state reported at
        ``start`` itself may still be the one before that command.)
        """
        return any(s in SILENT_STATES for s in self.states_between(start_ns, end_ns)[1:])


@dataclass(frozen=True)
class ObservedMessage:
    publisher: bytes       # the publisher's gid
    sequence: int          # its publication sequence number (1, 2, ...)
    received_ns: int       # when the observer received it (wall clock)
    data: bytes


@dataclass
class RecordingAudit:
    """Did the recording keep every message the observer received, once it had the publisher's stream?

    A subscriber receives a publisher's messages only after DDS discovery has
    matched the two; messages published before the recorder had matched a new
    publisher (at start-up, or a restarted node) are counted apart, with how
    long the match took. Any message missing after the recorder's first
    message of that publisher is data lost in the recording.
    """

    observed: int = 0
    recorded: int = 0
    lost: int = 0                     # missing after the recorder had the publisher's stream
    before_match: int = 0             # published before the recorder had matched the publisher
    match_lag_s: float = 0.0          # worst: first observed -> first recorded message of a publisher
    never_matched: int = 0            # publishers the recording has nothing of (counted as lost)
    joined_at_end: int = 0            # publishers first seen less than match_limit_s before the end, not recorded yet
    after_stop: int = 0               # received after the graph's shutdown began: not judged


def audit_recording(observed: Sequence[ObservedMessage], recorded: Sequence[tuple[int, bytes]],
                    window_s: float = 2.0, match_limit_s: float = 5.0,
                    stop_ns: int | None = None) -> RecordingAudit:
    """Match each publisher's observed messages to the recording (receive time, bytes), newest first.

    A reliable publisher's messages reach every subscriber in publication order,
    so both sides are walked backwards from the end of the run: equal payloads
    (a hand holding still on a stopped clock sends identical commands) are
    assigned in order, and a message is looked for only among recorded ones
    received within ``window_s`` of when the observer received it, so one
    lost message cannot be mistaken for the recorder joining late. A publisher
    the recording has nothing of is lost, unless it appeared less than
    ``match_limit_s`` before the observer's last message (a process started
    near the end: discovery may not have matched it yet); those messages count
    as published before the match. With ``stop_ns`` (when the graph's shutdown
    began), messages the observer received after it are not judged: a node
    that publishes while it exits can reach one subscriber and not another
    (a reliable writer that is gone cannot resend), which says nothing about
    the recorder.
    """
    judged = observed if stop_ns is None else [m for m in observed if m.received_ns <= stop_ns]
    audit = RecordingAudit(observed=len(judged), after_stop=len(observed) - len(judged))
    observed = judged
    window = int(window_s * 1e9)
    end_ns = max((m.received_ns for m in observed), default=0)
    used: set[int] = set()
    by_publisher: dict[bytes, list[ObservedMessage]] = collections.defaultdict(list)
    for m in observed:
        by_publisher[m.publisher].append(m)
    for messages in by_publisher.values():
        messages.sort(key=lambda m: m.sequence)
        matched = [False] * len(messages)
        j = len(recorded) - 1
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            k = j
            while k >= 0 and recorded[k][0] >= m.received_ns - window:
                if k not in used and recorded[k][1] == m.data:
                    break
                k -= 1
            else:
                continue             # not in the recording
            matched[i] = True
            used.add(k)
            j = k - 1
        if not any(matched):
            joined_ns = min(m.received_ns for m in messages)
            if end_ns - joined_ns < match_limit_s * 1e9:
                audit.joined_at_end += 1
                audit.before_match += len(messages)
                audit.match_lag_s = max(audit.match_lag_s, (end_ns - joined_ns) * 1e-9)
            else:
                audit.never_matched += 1
                audit.lost += len(messages)
            continue
        first = matched.index(True)
        audit.before_match += first
        audit.lost += matched[first:].count(False)
        audit.recorded += matched.count(True)
        audit.match_lag_s = max(audit.match_lag_s, (messages[first].received_ns - messages[0].received_ns) * 1e-9)
    return audit


def last_before(times_ns: Sequence[int], t_ns: int) -> int | None:
    """The latest of the sorted ``times_ns`` at or before ``t_ns``."""
    i = bisect.bisect_right(times_ns, t_ns) - 1
    return times_ns[i] if i >= 0 else None


def largest_gap(times_ns: Sequence[int], start_ns: int, end_ns: int) -> tuple[float, int | None]:
    """The longest silence (s) between consecutive sorted ``times_ns`` within [start, end], and when it ended."""
    lo = max(bisect.bisect_left(times_ns, start_ns) - 1, 0)
    hi = bisect.bisect_right(times_ns, end_ns)
    window = times_ns[lo:hi]
    gaps = [(b - a, b) for a, b in zip(window, window[1:])]
    if not gaps:
        return 0.0, None
    gap, ended = max(gaps)
    return gap * 1e-9, ended


def count_between(times_ns: Sequence[int], start_ns: int, end_ns: int) -> int:
    """How many of the sorted ``times_ns`` lie in [start, end)."""
    return bisect.bisect_left(times_ns, end_ns) - bisect.bisect_left(times_ns, start_ns)


def backward_jumps(stamps_ns: Sequence[int], min_jump_ns: int = 0) -> list[int]:
    """Indices where a stamp sequence goes back by more than ``min_jump_ns``."""
    return [i for i in range(1, len(stamps_ns)) if stamps_ns[i] < stamps_ns[i - 1] - min_jump_ns]


@dataclass
class Verdict:
    """The outcome of one scenario: figures (always printed) and failures (empty: PASS)."""

    scenario: str
    figures: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def figure(self, text: str) -> None:
        self.figures.append(text)

    def require(self, condition: bool, failure: str) -> bool:
        if not condition:
            self.failures.append(failure)
        return bool(condition)

    def line(self) -> str:
        text = f"[{'PASS' if self.passed else 'FAIL'}] {self.scenario}: " + ", ".join(self.figures)
        if self.failures:
            text += " -- FAILED: " + "; ".join(self.failures)
        return text
