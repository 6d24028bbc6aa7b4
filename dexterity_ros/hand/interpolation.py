"""Between policy targets: the command stream runs faster than the policy.

A policy at 20 Hz and a driver fed at 100 Hz: each new target starts a
straight segment from where the desired position is now to the target,
covering the policy's (estimated) period, so the hand moves smoothly
instead of stepping every 50 ms. ``mode="none"`` steps straight to the
newest target (the rate limiter still bounds the speed).
"""
from __future__ import annotations

import numpy as np

INTERPOLATION_MODES = ("linear", "none")


class TargetInterpolator:
    def __init__(self, mode: str = "linear", min_period: float = 0.01, max_period: float = 0.25,
                 period_smoothing: float = 0.8):
        if mode not in INTERPOLATION_MODES:
            raise ValueError(f"interpolation must be one of {INTERPOLATION_MODES}, got '{mode}'")
        self.mode = mode
        self.min_period = min_period
        self.max_period = max(max_period, min_period)
        self.period_smoothing = period_smoothing
        self.period: float | None = None           # estimated policy period (s)
        self._start: np.ndarray | None = None
        self._goal: np.ndarray | None = None
        self._t0 = 0.0
        self._last_arrival: float | None = None

    def reset(self, position: np.ndarray, t: float) -> None:
        """Desired = ``position`` until the next target (e.g. at enable, or resuming from HOLD)."""
        self._start = np.array(position, dtype=np.float64)
        self._goal = self._start.copy()
        self._t0 = t

    def add_target(self, goal: np.ndarray, t: float, lead: float = 0.0) -> None:
        """A new policy target arrived at ``t``; also updates the policy period estimate.

        ``lead`` starts the segment that much earlier: a command sent at the
        moment the target arrives then already takes the step the next tick
        would have taken (hand_node's prompt command), instead of repeating
        the current position.
        """
        if self._last_arrival is not None:
            gap = t - self._last_arrival
            if self.min_period <= gap <= self.max_period:   # long gaps are pauses, not the policy rate
                self.period = gap if self.period is None else (
                    self.period_smoothing * self.period + (1 - self.period_smoothing) * gap)
        self._last_arrival = t
        current = self.sample(t) if self._goal is not None else np.array(goal, dtype=np.float64)
        self._start = current
        self._goal = np.array(goal, dtype=np.float64)
        self._t0 = t - max(lead, 0.0)

    def sample(self, t: float) -> np.ndarray:
        if self._goal is None:
            raise RuntimeError("TargetInterpolator.sample before reset/add_target")
        if self.mode == "none" or self.period is None:
            return self._goal.copy()
        fraction = min(max((t - self._t0) / max(self.period, self.min_period), 0.0), 1.0)
        return self._start + fraction * (self._goal - self._start)
