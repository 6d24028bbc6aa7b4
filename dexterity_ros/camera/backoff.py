"""Exponential back-off between reconnection attempts (so a missing camera is not hammered)."""
from __future__ import annotations


class ExponentialBackoff:
    """Delays initial, initial*factor, ... capped at ``max_s``; ``reset()`` after a success."""

    def __init__(self, initial_s: float, max_s: float, factor: float = 2.0):
        if initial_s <= 0 or max_s < initial_s or factor < 1.0:
            raise ValueError(f"back-off needs 0 < initial ({initial_s}) <= max ({max_s}) and factor >= 1 "
                             f"({factor})")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.initial_s * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0
