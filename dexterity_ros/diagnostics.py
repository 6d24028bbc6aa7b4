"""Health bookkeeping for nodes: counters, rates, latency percentiles, status level.

Pure Python; node shells turn a :class:`Health` into a
``diagnostic_msgs/DiagnosticStatus`` (see ``dexterity_ros.ros.common``). The
keys are named in :mod:`dexterity_ros.diagnostic_keys`.
"""
from __future__ import annotations

import collections
import enum
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import diagnostic_keys as keys


class Level(enum.IntEnum):
    """Same numbers as diagnostic_msgs/DiagnosticStatus."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


class RateMeter:
    """Event rate (Hz) over a sliding time window."""

    def __init__(self, window_s: float = 2.0, clock=time.monotonic):
        self._window = window_s
        self._clock = clock
        self._times: collections.deque[float] = collections.deque()

    def tick(self) -> None:
        now = self._clock()
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()

    def rate(self) -> float:
        self._trim(self._clock())
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class LatencyWindow:
    """Last ``size`` samples (milliseconds) with percentile queries."""

    def __init__(self, size: int = 500):
        self._samples: collections.deque[float] = collections.deque(maxlen=size)

    def add(self, value_ms: float) -> None:
        self._samples.append(float(value_ms))

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, q: float) -> float:
        if not self._samples:
            return float("nan")
        return float(np.percentile(np.fromiter(self._samples, float), q))

    def summary(self) -> str:
        if not self._samples:
            return "n/a"
        return f"p50 {self.percentile(50):.2f} ms, p99 {self.percentile(99):.2f} ms"


@dataclass
class Problem:
    level: Level
    message: str
    since: float


class Health:
    """Counters, rates, latencies and the current status of one component.

    ``problem()`` raises the level for ``hold_s`` seconds so a single bad
    message is visible on /diagnostics even at a 1 Hz publishing rate.
    """

    def __init__(self, name: str, hold_s: float = 2.0, clock=time.monotonic):
        self.name = name
        self._clock = clock
        self._hold = hold_s
        self._lock = threading.Lock()
        self.counters: dict[str, int] = collections.OrderedDict()
        self.rates: dict[str, RateMeter] = collections.OrderedDict()
        self.latencies: dict[str, LatencyWindow] = collections.OrderedDict()
        self.values: dict[str, str] = collections.OrderedDict()
        self._problems: dict[str, Problem] = {}
        self._state_level = Level.OK
        self._state_message = "ok"

    def count(self, key: str, n: int = 1) -> int:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + n
            return self.counters[key]

    def tick(self, key: str) -> None:
        with self._lock:
            meter = self.rates.get(key)
            if meter is None:
                meter = self.rates[key] = RateMeter(clock=self._clock)
            meter.tick()

    def latency(self, key: str, value_ms: float) -> None:
        with self._lock:
            window = self.latencies.get(key)
            if window is None:
                window = self.latencies[key] = LatencyWindow()
            window.add(value_ms)

    def set_value(self, key: str, value) -> None:
        with self._lock:
            self.values[key] = str(value)

    def set_state(self, level: Level, message: str) -> None:
        """Persistent status (e.g. a state machine's state), until changed."""
        with self._lock:
            self._state_level = level
            self._state_message = message

    def problem(self, key: str, level: Level, message: str) -> None:
        """A transient problem (bad message, stale input), kept visible for hold_s."""
        with self._lock:
            self._problems[key] = Problem(level, message, self._clock())
            self.counters[key] = self.counters.get(key, 0) + 1

    def status(self) -> tuple[Level, str]:
        now = self._clock()
        with self._lock:
            active = [p for k, p in self._problems.items() if now - p.since <= self._hold]
            self._problems = {k: p for k, p in self._problems.items() if now - p.since <= self._hold}
            level = max([self._state_level] + [p.level for p in active])
            messages = [self._state_message] if self._state_level > Level.OK or not active else []
            messages += [p.message for p in sorted(active, key=lambda p: -p.level)]
            return level, "; ".join(messages) if messages else "ok"

    def key_values(self) -> list[tuple[str, str]]:
        with self._lock:
            kv = [(k, v) for k, v in self.values.items()]
            kv += [(keys.count(k), str(v)) for k, v in self.counters.items()]
            kv += [(keys.rate(k), f"{m.rate():.2f}") for k, m in self.rates.items()]
            for k, w in self.latencies.items():
                kv.append((keys.latency_p50(k), f"{w.percentile(50):.3f}"))
                kv.append((keys.latency_p99(k), f"{w.percentile(99):.3f}"))
            return kv
