"""A short time-indexed buffer of joint states, to pair sensor frames with joint states.

Depth frames and joint states arrive on different topics; the hand must be
removed with the joint state measured when the frame was taken, not the one
that happens to be newest when the frame is processed.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StampedJoints:
    stamp_ns: int
    positions: np.ndarray   # canonical order


class JointStateBuffer:
    # A stamp this far behind the newest one means time jumped back (a looping bag, a reset clock): the
    # older history belongs to another timeline and would crowd out the new states (eviction is by stamp).
    TIME_JUMP_BACK_NS = 500_000_000

    def __init__(self, capacity: int = 200):
        self._stamps: list[int] = []
        self._items: list[StampedJoints] = []
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, positions: np.ndarray) -> None:
        item = StampedJoints(int(stamp_ns), np.asarray(positions, dtype=np.float64))
        with self._lock:
            if self._stamps and item.stamp_ns < self._stamps[-1] - self.TIME_JUMP_BACK_NS:
                self._stamps.clear()
                self._items.clear()
            i = bisect.bisect_right(self._stamps, item.stamp_ns)
            self._stamps.insert(i, item.stamp_ns)
            self._items.insert(i, item)
            if len(self._items) > self._capacity:
                del self._stamps[0], self._items[0]

    def latest(self) -> StampedJoints | None:
        with self._lock:
            return self._items[-1] if self._items else None

    def nearest(self, stamp_ns: int) -> StampedJoints | None:
        """The joint state whose stamp is closest to ``stamp_ns``."""
        with self._lock:
            if not self._items:
                return None
            i = bisect.bisect_left(self._stamps, stamp_ns)
            candidates = [j for j in (i - 1, i) if 0 <= j < len(self._items)]
            best = min(candidates, key=lambda j: abs(self._stamps[j] - stamp_ns))
            return self._items[best]

    def has_at_or_after(self, stamp_ns: int) -> bool:
        with self._lock:
            return bool(self._stamps) and self._stamps[-1] >= stamp_ns

    def clear(self) -> None:
        with self._lock:
            self._stamps.clear()
            self._items.clear()
