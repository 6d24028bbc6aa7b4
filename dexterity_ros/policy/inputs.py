"""Which inputs the student acts on: trigger, joint-state pairing, rate gate, freshness, pose buffer.

Pure logic behind ``student_node``'s callbacks (no rclpy), so the gating and
staleness rules are unit-tested and a replay tool can apply them offline.

What triggers inference follows from the sources the contract needs
(:func:`input_plan`), judged on stamps so two nodes on the same replay act
alike: the object cloud if the policy reads it (every version-1 contract), else
the tracked object pose if it reads that, else the joint states
(proprioceptive policies such as HORA). A cloud or pose trigger is paired with
the joint state whose stamp is closest to it
(:class:`dexterity_ros.joint_buffer.JointStateBuffer`); a pose that is needed
but not the trigger is taken from a :class:`PoseBuffer`, the nearest by stamp.
"""
from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

from ..joint_buffer import JointStateBuffer

T = TypeVar("T")

MIN_PERIOD_FRACTION = 0.9   # skip a cloud that arrives sooner than this fraction of the control period


class RateGate:
    """At most one inference per ~control period, judged on input stamps (replay-deterministic)."""

    def __init__(self, rate_hz: float, fraction: float = MIN_PERIOD_FRACTION):
        self.min_interval_ns = int(round(fraction * 1e9 / rate_hz))
        self._last_ns: int | None = None

    def ready(self, stamp_ns: int) -> bool:
        if self._last_ns is None or stamp_ns < self._last_ns:   # first, or time jumped back (replay restart)
            return True
        return stamp_ns - self._last_ns >= self.min_interval_ns

    def mark(self, stamp_ns: int) -> None:
        self._last_ns = int(stamp_ns)

    def reset(self) -> None:
        self._last_ns = None


def staleness(now_ns: int, cloud_stamp_ns: int, joint_stamp_ns: int, max_input_age_s: float,
              stamp_tolerance_s: float, what: str = "cloud") -> str | None:
    """Why a (trigger, joint state) pair must not be acted on, or None if it is fresh and matched.

    The trigger is a cloud unless ``what`` names another (``"object pose"``, ``"joint state"``).
    """
    cloud_age = (now_ns - cloud_stamp_ns) / 1e9
    joint_age = (now_ns - joint_stamp_ns) / 1e9
    skew = abs(cloud_stamp_ns - joint_stamp_ns) / 1e9
    if min(cloud_age, joint_age) < -max_input_age_s:
        return (f"input stamp lies {-min(cloud_age, joint_age) * 1e3:.0f} ms in the future of the node clock "
                "(clock mismatch between machines?)")
    if cloud_age > max_input_age_s:
        return f"stale {what}: {cloud_age * 1e3:.0f} ms old (max_input_age {max_input_age_s * 1e3:.0f} ms)"
    if joint_age > max_input_age_s:
        return f"stale joint state: {joint_age * 1e3:.0f} ms old (max_input_age {max_input_age_s * 1e3:.0f} ms)"
    if skew > stamp_tolerance_s:
        return (f"{what} and joint state stamps differ by {skew * 1e3:.0f} ms "
                f"(stamp_tolerance {stamp_tolerance_s * 1e3:.0f} ms)")
    return None


# ------------------------------------------------------------------ trigger and sources
class Trigger(enum.Enum):
    """The input whose arrival triggers inference (the step's stamp is its stamp)."""

    CLOUD = "object_points"
    POSE = "object_pose"
    JOINTS = "joint_states"

    @property
    def words(self) -> str:
        return {Trigger.CLOUD: "cloud", Trigger.POSE: "object pose", Trigger.JOINTS: "joint state"}[self]


V1_SOURCES = ("joint_states", "goal", "object_points")   # every version-1 contract reads all three


@dataclass(frozen=True)
class InputPlan:
    """The sources a node subscribes to (contract order) and which of them triggers inference."""

    sources: tuple[str, ...]
    trigger: Trigger

    def needs(self, source: str) -> bool:
        return source in self.sources

    def describe(self) -> str:
        return f"{', '.join(self.sources)}; triggered by {self.trigger.value}"


def input_plan(sources: Iterable[str] | None) -> InputPlan:
    """The plan for a contract's ``sources`` (None: a version-1 contract, cloud-triggered as always)."""
    sources = tuple(V1_SOURCES if sources is None else sources)
    if "joint_states" not in sources:
        sources = ("joint_states",) + sources
    if "object_points" in sources:
        trigger = Trigger.CLOUD
    elif "object_pose" in sources:
        trigger = Trigger.POSE
    else:
        trigger = Trigger.JOINTS
    return InputPlan(sources, trigger)


def terms_by_source(terms: Iterable) -> dict[str, list[str]]:
    """Source -> names of the terms that read it (anything with ``.name`` and ``.sources``)."""
    out: dict[str, list[str]] = {}
    for term in terms:
        for source in term.sources:
            out.setdefault(source, []).append(term.name)
    return out


def unpublished_sources_message(missing: dict[str, str], needed_by: dict[str, list[str]], waited_s: float) -> str:
    """Why the node refuses to run: ``missing`` maps each unpublished source to its topic."""
    parts = []
    for source, topic in missing.items():
        terms = needed_by.get(source)
        by = f"terms {', '.join(terms)}" if terms else "the runtime (always)"
        parts.append(f"'{topic}' ({source}, needed by {by})")
    return (f"nothing publishes {'; '.join(parts)} after {waited_s:g} s (source_wait); start the publisher "
            "(e.g. pose_tracker_node, or object_pose_topic:=sim/object_pose for privileged replay) or set "
            "source_wait:=0 to wait indefinitely")


# ------------------------------------------------------------------ object poses
class PoseBuffer(Generic[T]):
    """The last few object poses (any item) by stamp; :meth:`nearest` picks the one closest to a step's stamp.

    Follows :class:`JointStateBuffer`'s time-jump rule: a stamp far behind the newest one (a looping bag, a
    reset clock) starts a new history. Single-threaded (one executor thread).
    """

    def __init__(self, capacity: int = 20):
        self._stamps: list[int] = []
        self._items: list[T] = []
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._items)

    def add(self, stamp_ns: int, item: T) -> None:
        stamp_ns = int(stamp_ns)
        if self._stamps and stamp_ns < self._stamps[-1] - JointStateBuffer.TIME_JUMP_BACK_NS:
            self.clear()
        i = bisect.bisect_right(self._stamps, stamp_ns)
        self._stamps.insert(i, stamp_ns)
        self._items.insert(i, item)
        if len(self._items) > self._capacity:
            del self._stamps[0], self._items[0]

    def nearest(self, stamp_ns: int, max_age_s: float) -> tuple[T | None, str | None]:
        """(the item nearest ``stamp_ns``, None) if within ``max_age_s`` of it, else (None, why there is none).

        Ties go to the older item (as :meth:`JointStateBuffer.nearest`).
        """
        if not self._items:
            return None, "no object pose received yet"
        i = bisect.bisect_left(self._stamps, stamp_ns)
        best = min((j for j in (i - 1, i) if 0 <= j < len(self._items)),
                   key=lambda j: abs(self._stamps[j] - stamp_ns))
        offset_s = (self._stamps[best] - stamp_ns) / 1e9
        if abs(offset_s) > max_age_s:
            side = "older" if offset_s < 0 else "newer"
            return None, (f"nearest object pose is {abs(offset_s) * 1e3:.0f} ms {side} than the step stamp "
                          f"(max_pose_age {max_age_s * 1e3:.0f} ms)")
        return self._items[best], None

    def clear(self) -> None:
        self._stamps.clear()
        self._items.clear()
