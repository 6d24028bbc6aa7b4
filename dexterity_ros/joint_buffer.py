"""Pairing sensor frames with the joint states measured with them.

Depth frames (and object clouds) and joint states arrive on different
topics; the hand must be removed, and the policy run, with the joint state
measured when the frame was taken, not the one that happens to be newest when
the frame is processed. :class:`JointStateBuffer` keeps a short time-indexed
history of joint states; :class:`StampPairing` holds a frame that arrived
before its inputs until they are there or a short wait runs out (shared by
segmentation_node and student_node).
"""
from __future__ import annotations

import bisect
import enum
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

import numpy as np

T = TypeVar("T")


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


class PairOutcome(enum.Enum):
    """How an item left a :class:`StampPairing`."""

    AT_ONCE = "at once"          # its inputs were there when it arrived (or waiting is off)
    PAIRED = "paired"            # its inputs arrived while it waited
    TIMED_OUT = "timed out"      # it waited ``wait_s``: go ahead with the inputs there are
    SUPERSEDED = "superseded"    # a newer item arrived while it waited (the caller processes or drops it)


@dataclass(frozen=True)
class Released(Generic[T]):
    item: T
    stamp_ns: int
    outcome: PairOutcome
    waited_s: float              # 0 for AT_ONCE


@dataclass
class _Pending(Generic[T]):
    item: T
    stamp_ns: int
    since: float


class StampPairing(Generic[T]):
    """Holds the newest item (a depth frame, a cloud) until the inputs stamped with it have arrived.

    ``ready(stamp_ns)`` says whether they have (e.g. a joint state at or after the stamp). An item that is
    not ready waits up to ``wait_s`` (``wait_s <= 0``: never waits); one item waits at a time, and a newer
    one releases the waiting one as SUPERSEDED. The node calls :meth:`offer` for each item, :meth:`poll`
    whenever an input arrived and from a short timer, and processes (or drops) what they release.
    ``counts`` tallies the outcomes. Pure and single-threaded: call it from one executor thread.
    """

    def __init__(self, ready: Callable[[int], bool], wait_s: float, clock: Callable[[], float] = time.monotonic):
        self.ready = ready
        self.wait_s = wait_s
        self._clock = clock
        self._pending: _Pending[T] | None = None
        self.counts: dict[PairOutcome, int] = {outcome: 0 for outcome in PairOutcome}

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    def offer(self, item: T, stamp_ns: int) -> list[Released[T]]:
        """A new item: released at once if its inputs are there, else it waits (releasing any older one)."""
        if self.wait_s <= 0 or self.ready(stamp_ns):
            return [self._count(Released(item, stamp_ns, PairOutcome.AT_ONCE, 0.0))]
        released = []
        if self._pending is not None:
            released.append(self._release(PairOutcome.SUPERSEDED))
        self._pending = _Pending(item, stamp_ns, self._clock())
        return released

    def poll(self) -> Released[T] | None:
        """The waiting item, if its inputs have arrived (PAIRED) or its wait ran out (TIMED_OUT)."""
        pending = self._pending
        if pending is None:
            return None
        if self.ready(pending.stamp_ns):
            return self._release(PairOutcome.PAIRED)
        if self._clock() - pending.since >= self.wait_s:
            return self._release(PairOutcome.TIMED_OUT)
        return None

    def clear(self) -> None:
        """Forget the waiting item (e.g. the consumer was replaced)."""
        self._pending = None

    def _release(self, outcome: PairOutcome) -> Released[T]:
        pending, self._pending = self._pending, None
        return self._count(Released(pending.item, pending.stamp_ns, outcome, self._clock() - pending.since))

    def _count(self, released: Released[T]) -> Released[T]:
        self.counts[released.outcome] += 1
        return released
