"""The live ROS graph on a Foxglove WebSocket server (the engine behind `dexterity-ros view`).

A pip-only install has no RViz; the Foxglove app (desktop or web) connects
to a WebSocket server instead. The bridge discovers the graph's topics (and
re-scans, so topics that appear later are bridged), advertises each as a
channel with message encoding ``cdr`` and its ``ros2msg`` definition as the
schema, and forwards the serialized CDR bytes unchanged: raw subscriptions,
nothing is deserialized, stamped with the receive time.

Bandwidth: a volatile topic is subscribed on the ROS side only while some
client is subscribed to its channel. Latched (transient-local) topics such
as /tf_static and the goal stay subscribed, and their last messages are
replayed to every client that subscribes later, as DDS does for a late ROS
subscriber. The server is read-only: no client publishing, services or
parameters (it advertises no capabilities).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import foxglove
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from ..bags.io import BagError
from ..live_view import (DEFAULT_PORT, MAX_LATCHED_DEPTH, MESSAGE_ENCODING, ChannelSchema, LatchedCache, RateLimiter,
                         TopicFilter, channel_schema)
from .bags.qos import subscription_qos
from .bags.recorder import LARGE_MESSAGE_TYPES
from .messages import message_class

SMALL_DEPTH = 20          # subscription history of volatile topics: a viewer wants the newest, not everything
LARGE_DEPTH = 3           # images and clouds (about 1 MB each)
REMOVE_AFTER_SCANS = 2    # graph scans without a publisher before a topic's channel is withdrawn
BACKLOG = 256             # messages queued per client before the oldest is dropped (the SDK's 1024 of
                          # 1 MB depth images would be a GB for one slow client)


class BridgeError(Exception):
    """The server could not start (the port is in use, the address is not this machine's)."""


@dataclass(frozen=True)
class BridgeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT                        # 0: any free port (see FoxgloveBridge.port)
    topics: TopicFilter = field(default_factory=TopicFilter)
    max_rate_hz: float = 0.0                        # per-topic forwarding limit; 0: none. Never for latched topics
    throttle: TopicFilter = field(default_factory=TopicFilter)   # the topics max_rate_hz applies to
    name: str = "dexterity_ros"                     # server name shown by the app


@dataclass
class BridgedTopic:
    topic: str
    type_name: str
    channel: foxglove.Channel
    msg_type: type
    qos: QoSProfile
    subscription: Any = None
    received: int = 0
    forwarded: int = 0
    throttled: int = 0
    unpublished_scans: int = 0

    @property
    def latched(self) -> bool:
        return self.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL


def _qos_key(qos: QoSProfile) -> tuple:
    return (qos.reliability, qos.durability, qos.depth)


def _publisher_key(info: dict | None) -> bytes:
    gid = (info or {}).get("publisher_gid")
    data = gid.get("data") if isinstance(gid, dict) else gid
    return bytes(data) if data is not None else b""


class _Listener(foxglove.websocket.ServerListener):
    """Server callbacks (on the server's thread): replay latched messages to a new subscriber."""

    def __init__(self, bridge: "FoxgloveBridge"):
        self.bridge = bridge

    def on_subscribe(self, client, channel) -> None:
        self.bridge.replay_latched(channel.id)
        self.bridge.wake.set()

    def on_unsubscribe(self, client, channel) -> None:
        self.bridge.wake.set()


class FoxgloveBridge:
    """Bridges ``node``'s graph to a Foxglove WebSocket server. Call :meth:`poll_graph` periodically and
    :meth:`update_subscriptions` often (both on the executor's thread), :meth:`close` at the end."""

    def __init__(self, node: Node, options: BridgeOptions, log: Callable[[str], None] = print,
                 schema_of: Callable[[str], ChannelSchema | None] = channel_schema):
        self.node = node
        self.options = options
        self.log = log
        self.schema_of = schema_of
        self.topics: dict[str, BridgedTopic] = {}
        self.skipped: dict[str, str] = {}                 # topic -> why it is not bridged (said once)
        self.cache = LatchedCache()
        self.limiter = RateLimiter(options.max_rate_hz)
        self.wake = threading.Event()                     # set by the server when a client (un)subscribes
        self._by_channel: dict[int, BridgedTopic] = {}
        self._lock = threading.Lock()                     # guards _by_channel against the server thread
        self.context = foxglove.Context()
        try:
            self.server = foxglove.start_server(
                name=options.name, host=options.host, port=options.port, capabilities=[],
                server_listener=_Listener(self), context=self.context, message_backlog_size=BACKLOG)
        except RuntimeError as exc:
            text = str(exc)
            if "in use" in text.lower():
                raise BridgeError(f"port {options.port} on {options.host} is already in use (another "
                                  "`dexterity-ros view` or foxglove_bridge?); choose another with --port, or "
                                  "--port 0 for any free one") from None
            raise BridgeError(f"cannot serve on {options.host}:{options.port}: {text}") from None

    @property
    def port(self) -> int:
        return self.server.port

    # ------------------------------------------------------------ discovery
    def poll_graph(self) -> None:
        """Advertise topics that now have a publisher, withdraw the ones whose publishers left."""
        seen: set[str] = set()
        for topic, types in self.node.get_topic_names_and_types():
            if not self.options.topics.selects(topic):
                continue
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            seen.add(topic)
            if len(types) != 1:
                self._skip(topic, f"it has several types {types}; a channel has one schema")
                continue
            type_name = types[0]
            qos = subscription_qos([p.qos_profile for p in publishers], self._depth(type_name, publishers))
            current = self.topics.get(topic)
            if current is not None and current.type_name != type_name:
                self._remove(current, f"its type changed to {type_name}")
                current = None
            if current is None:
                self._add(topic, type_name, qos)
            else:
                current.unpublished_scans = 0
                if _qos_key(current.qos) != _qos_key(qos):
                    # a publisher with other QoS joined (say best effort): resubscribe so it matches
                    self._unsubscribe(current)
                    current.qos = qos
        for bridged in list(self.topics.values()):
            if bridged.topic not in seen:
                bridged.unpublished_scans += 1
                if bridged.unpublished_scans >= REMOVE_AFTER_SCANS:
                    self._remove(bridged, "it has no publisher any more")
        self.update_subscriptions()

    @staticmethod
    def _depth(type_name: str, publishers) -> int:
        offered = [p.qos_profile for p in publishers]
        if offered and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered):
            return max(1, min(MAX_LATCHED_DEPTH, max(int(p.depth) for p in offered)))
        return LARGE_DEPTH if type_name in LARGE_MESSAGE_TYPES else SMALL_DEPTH

    def _skip(self, topic: str, why: str) -> None:
        if self.skipped.get(topic) != why:
            self.skipped[topic] = why
            self.log(f"[WARN] [view]: not bridging {topic}: {why}")

    def _add(self, topic: str, type_name: str, qos: QoSProfile) -> None:
        try:
            msg_type = message_class(type_name)
        except BagError:
            self._skip(topic, f"message type {type_name} is not installed here")
            return
        schema = self.schema_of(type_name)
        if schema is None:
            self._skip(topic, f"no message definition found for {type_name} (Foxglove could not decode it)")
            return
        channel = foxglove.Channel(
            topic, schema=foxglove.Schema(name=schema.name, encoding=schema.encoding, data=schema.data),
            message_encoding=MESSAGE_ENCODING, context=self.context)
        bridged = BridgedTopic(topic, type_name, channel, msg_type, qos)
        self.skipped.pop(topic, None)
        self.topics[topic] = bridged
        with self._lock:
            self._by_channel[channel.id()] = bridged
        self.log(f"[INFO] [view]: advertising {topic} ({type_name}, {qos.reliability.name.lower()}, "
                 f"{qos.durability.name.lower()})")

    def _remove(self, bridged: BridgedTopic, why: str) -> None:
        self._unsubscribe(bridged)
        with self._lock:
            self._by_channel.pop(bridged.channel.id(), None)
        bridged.channel.close()
        self.cache.forget(bridged.topic)
        self.limiter.forget(bridged.topic)
        self.topics.pop(bridged.topic, None)
        self.log(f"[INFO] [view]: withdrew {bridged.topic}: {why}")

    # -------------------------------------------------------- subscriptions
    def update_subscriptions(self) -> None:
        """Subscribe (ROS side) to latched topics always and to others while a client is subscribed."""
        self.wake.clear()
        for bridged in self.topics.values():
            wanted = bridged.latched or bridged.channel.has_sinks()
            if wanted and bridged.subscription is None:
                bridged.subscription = self.node.create_subscription(
                    bridged.msg_type, bridged.topic, self._callback(bridged), bridged.qos, raw=True)
            elif not wanted and bridged.subscription is not None:
                self._unsubscribe(bridged)

    def _unsubscribe(self, bridged: BridgedTopic) -> None:
        if bridged.subscription is not None:
            self.node.destroy_subscription(bridged.subscription)
            bridged.subscription = None

    def _callback(self, bridged: BridgedTopic) -> Callable[[bytes, dict], None]:
        topic = bridged.topic
        channel = bridged.channel
        latched = bridged.latched
        depth = bridged.qos.depth
        throttled = self.options.max_rate_hz > 0 and not latched and self.options.throttle.selects(topic)

        def on_message(data: bytes, info: dict) -> None:
            now = time.time_ns()
            bridged.received += 1
            if latched:
                self.cache.put(topic, _publisher_key(info), now, data, depth)
            elif throttled and not self.limiter.allow(topic, now):
                bridged.throttled += 1
                return
            channel.log(data, log_time=now)
            bridged.forwarded += 1

        return on_message

    def replay_latched(self, channel_id: int) -> None:
        """Send a latched topic's cached messages, for the client that just subscribed to it.

        The SDK's Python API cannot address one client, so clients already subscribed get these
        messages once more; for latched state (static transforms, the goal) that changes nothing.
        """
        with self._lock:
            bridged = self._by_channel.get(channel_id)
        if bridged is None or not bridged.latched:
            return
        for log_time, data in self.cache.messages(bridged.topic):
            bridged.channel.log(data, log_time=log_time)

    # ----------------------------------------------------------- reporting
    def diagnostic_values(self) -> list[tuple[str, str]]:
        values = [("port", str(self.port)), ("advertised topics", str(len(self.topics))),
                  ("subscribed topics", str(sum(t.subscription is not None for t in self.topics.values())))]
        for t in self.topics.values():
            if t.received:
                values.append((f"{t.topic} forwarded", str(t.forwarded)))
            if t.throttled:
                values.append((f"{t.topic} throttled", str(t.throttled)))
        values += [(f"{topic} skipped", why) for topic, why in sorted(self.skipped.items())]
        return values

    def close(self) -> None:
        for bridged in list(self.topics.values()):
            self._unsubscribe(bridged)
            bridged.channel.close()
        self.topics.clear()
        with self._lock:
            self._by_channel.clear()
        self.server.stop()
