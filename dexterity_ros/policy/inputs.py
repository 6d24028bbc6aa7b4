"""Which inputs the student acts on: joint-state pairing, rate gate, freshness.

Pure logic behind ``student_node``'s callbacks (no rclpy), so the gating and
staleness rules are unit-tested and a replay tool can apply them offline.
Inference is triggered by clouds; each cloud is paired with the joint state
whose stamp is closest to it (:class:`dexterity_ros.joint_buffer.JointStateBuffer`).
"""
from __future__ import annotations

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
              stamp_tolerance_s: float) -> str | None:
    """Why a (cloud, joint state) pair must not be acted on, or None if it is fresh and matched."""
    cloud_age = (now_ns - cloud_stamp_ns) / 1e9
    joint_age = (now_ns - joint_stamp_ns) / 1e9
    skew = abs(cloud_stamp_ns - joint_stamp_ns) / 1e9
    if min(cloud_age, joint_age) < -max_input_age_s:
        return (f"input stamp lies {-min(cloud_age, joint_age) * 1e3:.0f} ms in the future of the node clock "
                "(clock mismatch between machines?)")
    if cloud_age > max_input_age_s:
        return f"stale cloud: {cloud_age * 1e3:.0f} ms old (max_input_age {max_input_age_s * 1e3:.0f} ms)"
    if joint_age > max_input_age_s:
        return f"stale joint state: {joint_age * 1e3:.0f} ms old (max_input_age {max_input_age_s * 1e3:.0f} ms)"
    if skew > stamp_tolerance_s:
        return (f"cloud and joint state stamps differ by {skew * 1e3:.0f} ms "
                f"(stamp_tolerance {stamp_tolerance_s * 1e3:.0f} ms)")
    return None
