"""Camera faults a live simulation can inject: a paused camera, blank depth, late and swapped frames.

Pure logic (no rclpy): :class:`FramePipeline` sits between the renderer and
the camera publishers of the live sim bridge
(:mod:`dexterity_ros.ros.sim_live`). Every frame keeps the stamp it was
rendered with, as a real camera's driver would, so a late or swapped frame
looks to the graph exactly like one from a congested USB link.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field, replace
from typing import Callable, Generic, TypeVar

Frame = TypeVar("Frame")


@dataclass(frozen=True)
class CameraFaults:
    """Which faults are on; switched at runtime (sim bridge parameters ``fault_*``)."""

    camera_pause: bool = False        # publish no depth/camera_info
    blank_depth: bool = False         # every depth pixel 0 (no return): segmentation finds nothing
    frame_delay_s: float = 0.0        # publish each frame this late, with its original stamp
    reorder_frames: bool = False      # swap consecutive frames (each pair goes out newest first)

    def active(self) -> list[str]:
        out = []
        if self.camera_pause:
            out.append("camera_pause")
        if self.blank_depth:
            out.append("blank_depth")
        if self.frame_delay_s > 0:
            out.append(f"frame_delay {self.frame_delay_s:g} s")
        if self.reorder_frames:
            out.append("reorder_frames")
        return out


@dataclass
class FaultCounters:
    withheld: int = 0        # frames not published (camera paused)
    blanked: int = 0         # frames published with blank depth
    delayed: int = 0         # frames published late
    reordered: int = 0       # frames published after a newer one


@dataclass(order=True)
class _Due(Generic[Frame]):
    due_s: float
    sequence: int
    frame: Frame = field(compare=False)


class FramePipeline(Generic[Frame]):
    """Frames in (render order), frames out (publish order and time); thread-safe.

    ``push`` returns the frames to publish now; frames held back by a delay
    come out of ``pop_due`` once their time has come (``next_due_s`` says when).
    Frames are opaque here; the caller says how to blank one.
    """

    def __init__(self, faults: CameraFaults | None = None):
        self._faults = faults or CameraFaults()
        self._lock = threading.Lock()
        self._held: Frame | None = None                    # reorder: waiting for its successor
        self._delayed: collections.deque[_Due] = collections.deque()
        self._sequence = 0
        self.counters = FaultCounters()

    @property
    def faults(self) -> CameraFaults:
        return self._faults

    def set_faults(self, faults: CameraFaults) -> None:
        with self._lock:
            self._faults = faults

    def update(self, **changes) -> CameraFaults:
        with self._lock:
            self._faults = replace(self._faults, **changes)
            return self._faults

    def push(self, frame: Frame, now_s: float, blank: Callable[[Frame], Frame] | None = None) -> list[Frame]:
        """A newly rendered frame; returns the frames to publish now, in publish order.

        ``blank`` turns a frame into its blank-depth version (applied while
        ``blank_depth`` is on; decided under the same fault snapshot as the rest).
        """
        with self._lock:
            faults = self._faults
            if faults.camera_pause:
                self.counters.withheld += 1
                return []
            if faults.blank_depth and blank is not None:
                frame = blank(frame)
                self.counters.blanked += 1
            if faults.reorder_frames:
                if self._held is None:
                    self._held = frame
                    return []
                released = [frame, self._held]          # the newer frame first
                self._held = None
                self.counters.reordered += 1
            else:
                released = [frame] if self._held is None else [self._held, frame]
                self._held = None
            if faults.frame_delay_s <= 0 and not self._delayed:
                return released
            # FIFO behind frames already delayed: a shorter delay never overtakes a longer one
            due = max(now_s + faults.frame_delay_s, self._delayed[-1].due_s if self._delayed else now_s)
            for f in released:
                self._sequence += 1
                self._delayed.append(_Due(due, self._sequence, f))
                if faults.frame_delay_s > 0:
                    self.counters.delayed += 1
            return self._pop_due_locked(now_s)

    def pop_due(self, now_s: float) -> list[Frame]:
        with self._lock:
            return self._pop_due_locked(now_s)

    def _pop_due_locked(self, now_s: float) -> list[Frame]:
        out = []
        while self._delayed and self._delayed[0].due_s <= now_s:
            out.append(self._delayed.popleft().frame)
        return out

    def next_due_s(self) -> float | None:
        with self._lock:
            return self._delayed[0].due_s if self._delayed else None

    def pending(self) -> int:
        with self._lock:
            return len(self._delayed) + (self._held is not None)
