"""QoS between the ROS graph and bag metadata: what to subscribe/publish with, what to record.

Same rules as rosbag2: the recorder subscribes best effort if any publisher
offers best effort (a reliable reader never matches a best-effort writer),
transient local only if every publisher is; the player republishes with the
recorded offer when all recorded publishers agree, else the safe default.
"""
from __future__ import annotations

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

_INFINITE_NS = 2**63 - 1


def _time(duration: Duration) -> QosTime:
    ns = duration.nanoseconds
    if ns >= _INFINITE_NS or ns < 0:
        return QosTime(9223372036, 854775807)      # rmw's "infinite", as rosbag2 writes it
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def bag_qos_from_profile(profile: QoSProfile) -> Qos:
    """An offered rclpy profile (from the graph) -> the Qos stored in bag metadata."""
    return Qos(history=QosHistory(int(profile.history)), depth=int(profile.depth),
               reliability=QosReliability(int(profile.reliability)),
               durability=QosDurability(int(profile.durability)),
               deadline=_time(profile.deadline), lifespan=_time(profile.lifespan),
               liveliness=QosLiveliness(int(profile.liveliness)),
               liveliness_lease_duration=_time(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


def subscription_qos(offered: list[QoSProfile], depth: int) -> QoSProfile:
    """A reader profile that matches every offered writer profile."""
    best_effort = any(p.reliability == ReliabilityPolicy.BEST_EFFORT for p in offered)
    latched = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def playback_qos(recorded: list[Qos] | tuple[Qos, ...], default_depth: int = 10) -> tuple[QoSProfile, str]:
    """The profile to republish a topic with, and a note when the recorded offers had to be merged."""
    reliabilities = {q.reliability for q in recorded}
    durabilities = {q.durability for q in recorded}
    note = ""
    reliability = ReliabilityPolicy.RELIABLE
    if reliabilities == {QosReliability.BEST_EFFORT}:
        reliability = ReliabilityPolicy.BEST_EFFORT
    elif len(reliabilities) > 1:
        note = "publishers were recorded with different reliability; using reliable"
    durability = DurabilityPolicy.VOLATILE
    if durabilities == {QosDurability.TRANSIENT_LOCAL}:
        durability = DurabilityPolicy.TRANSIENT_LOCAL
    elif len(durabilities) > 1:
        note = (note + "; " if note else "") + "publishers were recorded with different durability; using volatile"
    depths = [q.depth for q in recorded if q.history == QosHistory.KEEP_LAST and q.depth > 0]
    profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(depths) if depths else default_depth,
                         reliability=reliability, durability=durability, liveliness=LivelinessPolicy.AUTOMATIC)
    return profile, note

