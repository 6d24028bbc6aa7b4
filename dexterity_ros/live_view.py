"""The ROS-free half of `dexterity-ros view`: which topics to bridge, their Foxglove schemas, throttling, latching.

`dexterity_ros.ros.foxglove_bridge` forwards the graph's serialized CDR
bytes to a Foxglove WebSocket server unchanged; what a Foxglove client needs
to decode them is the channel's schema, the message definition with its
dependencies in the ``ros2msg`` format MCAP files carry
(:mod:`dexterity_ros.bags.msgdefs` builds the same text for bags). The
decisions that need no middleware (topic selection, per-topic rate limits,
the latched-message cache replayed to late subscribers, the loopback check)
live here so they are tested without a graph.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable

from .bags.msgdefs import MessageDefinition, message_definition

# The WebSocket subprotocol foxglove-sdk 0.30 accepts (its server refuses a handshake that does not offer it):
# the Foxglove app offers it; the messages are those of the foxglove.websocket.v1 specification.
SUBPROTOCOL = "foxglove.sdk.v1"
MESSAGE_ENCODING = "cdr"          # ROS 2 serialized messages, as DDS carries them
SCHEMA_ENCODING = "ros2msg"       # MCAP's well-known encoding for ROS 2 .msg text
DEFAULT_PORT = 8765               # the Foxglove app's default for "Open connection"
MAX_LATCHED_DEPTH = 100           # messages kept per latched publisher, whatever depth it offers


@dataclass(frozen=True)
class ChannelSchema:
    """What a Foxglove channel advertises so a client can decode the CDR bytes."""

    name: str          # 'sensor_msgs/msg/JointState'
    encoding: str      # 'ros2msg'
    data: bytes        # the definition text with its dependencies (UTF-8)


def channel_schema(type_name: str,
                   lookup: Callable[[str], MessageDefinition] = message_definition) -> ChannelSchema | None:
    """The ros2msg schema of a ROS type, or None when its definition cannot be found (it cannot be decoded)."""
    definition = lookup(type_name)
    if not definition.known or definition.encoding != SCHEMA_ENCODING:
        return None
    return ChannelSchema(type_name, SCHEMA_ENCODING, definition.text.encode("utf-8"))


def _compile(pattern: str) -> re.Pattern | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class TopicFilter:
    """Which graph topics are bridged: ``include`` (search, empty = all) minus ``exclude``; no hidden topics
    (a name part starting with '_') unless ``include_hidden``. A bad pattern is a ValueError naming it."""

    include: str = ""
    exclude: str = ""
    include_hidden: bool = False
    _include: re.Pattern | None = field(init=False, repr=False, compare=False, default=None)
    _exclude: re.Pattern | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", _compile(self.include))
        object.__setattr__(self, "_exclude", _compile(self.exclude))

    def selects(self, topic: str) -> bool:
        if self._exclude is not None and self._exclude.search(topic):
            return False
        if not self.include_hidden and any(part.startswith("_") for part in topic.split("/")):
            return False
        return self._include is None or bool(self._include.search(topic))


class RateLimiter:
    """At most ``max_rate_hz`` messages per second per topic (0 = no limit); the first message always passes.

    A message passes when at least one period has gone since the last one that passed, so a 30 Hz
    camera limited to 10 Hz forwards every third frame rather than bursts.
    """

    def __init__(self, max_rate_hz: float):
        if max_rate_hz < 0:
            raise ValueError(f"the rate limit must be >= 0 Hz, got {max_rate_hz:g}")
        self.max_rate_hz = max_rate_hz
        self._period_ns = int(1e9 / max_rate_hz) if max_rate_hz > 0 else 0
        self._last: dict[str, int] = {}

    def allow(self, topic: str, now_ns: int) -> bool:
        if not self._period_ns:
            return True
        last = self._last.get(topic)
        # 2 % slack: a source at exactly the limit is not halved by its own jitter
        if last is not None and now_ns - last < self._period_ns * 0.98:
            return False
        self._last[topic] = now_ns
        return True

    def forget(self, topic: str) -> None:
        self._last.pop(topic, None)


class LatchedCache:
    """The last messages of each latched (transient-local) topic, per publisher, for clients that subscribe later.

    DDS gives a late ROS subscriber the last ``depth`` samples of each transient-local writer; the
    WebSocket server has no such history, so the bridge keeps the same here and replays it to a
    client when it subscribes. Thread-safe: the ROS executor fills it, the server's thread reads it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, dict[Hashable, deque[tuple[int, bytes]]]] = {}

    def put(self, topic: str, publisher: Hashable, log_time_ns: int, data: bytes, depth: int = 1) -> None:
        depth = max(1, min(int(depth), MAX_LATCHED_DEPTH))
        with self._lock:
            publishers = self._topics.setdefault(topic, {})
            history = publishers.get(publisher)
            if history is None or history.maxlen != depth:
                history = deque(history or (), maxlen=depth)
                publishers[publisher] = history
            history.append((log_time_ns, data))

    def messages(self, topic: str) -> list[tuple[int, bytes]]:
        """(log time ns, CDR bytes) of every cached message of ``topic``, oldest first."""
        with self._lock:
            found = [item for history in self._topics.get(topic, {}).values() for item in history]
        return sorted(found, key=lambda item: item[0])

    def forget(self, topic: str) -> None:
        with self._lock:
            self._topics.pop(topic, None)


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address or a name) only reaches this machine: every address it resolves to
    is a loopback address. An unresolvable name is not loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def websocket_url(host: str, port: int) -> str:
    """The URL to type into Foxglove's "Open connection" (IPv6 addresses in brackets)."""
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            host = f"[{host.strip('[]')}]"
    except ValueError:
        pass
    return f"ws://{host}:{port}"
