"""Recording live topics into a rosbag2 directory (the engine behind `dexterity-ros record`).

Subscriptions are raw (serialized CDR straight from the middleware, never
deserialized); the executor thread only timestamps and queues the bytes and
a writer thread does storage, compression and disk I/O, so a slow disk
shows up as queue depth rather than as messages lost in DDS. Topic types and
the QoS that publishers offer are discovered from the graph (polled like
rosbag2), and the offered profiles are stored in the bag.
"""
from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from rclpy.node import Node
from rclpy.qos import QoSProfile

from ...bags.io import BagError
from ..messages import message_class
from ...bags.msgdefs import message_definition
from .qos import bag_qos_from_profile, subscription_qos
from ...bags.writer import SplitBagWriter

_STOP = object()

# Subscription history in messages, sized in time: the executor thread may be
# starved for a while on a loaded machine, and a keep-last history that
# overflows silently replaces the oldest samples. Small messages get ~3 s at
# 300 Hz; images and clouds (~1 MB each) ~3 s at 30 Hz, bounding memory.
LARGE_MESSAGE_TYPES = frozenset({"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                                 "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/PointCloud",
                                 "sensor_msgs/msg/LaserScan", "stereo_msgs/msg/DisparityImage"})
SMALL_MESSAGE_DEPTH = 1000
LARGE_MESSAGE_DEPTH = 100


def history_depth(type_name: str, requested: int = 0) -> int:
    """Subscription depth for a topic: ``requested`` if > 0, else sized by message type."""
    if requested > 0:
        return requested
    return LARGE_MESSAGE_DEPTH if type_name in LARGE_MESSAGE_TYPES else SMALL_MESSAGE_DEPTH


@dataclass(frozen=True)
class RecordOptions:
    topics: tuple[str, ...] = ()          # absolute names to record ('' entries ignored)
    all_topics: bool = False
    regex: str = ""                        # record topics matching this (with or instead of ``topics``)
    exclude: str = ""                      # never record topics matching this
    include_hidden: bool = False           # topics with a path element starting with '_'
    qos_depth: int = 0                     # subscription history; 0: by message size (history_depth)
    polling_interval_s: float = 0.1        # graph discovery period
    max_queue_bytes: int = 1 << 30         # beyond this the recorder drops (and counts) messages
    use_sim_time: bool = False


@dataclass
class TopicStats:
    topic: str
    type_name: str
    connection_id: int
    qos: QoSProfile
    received: int = 0
    dropped_by_recorder: int = 0
    lost_in_middleware: int = 0


@dataclass
class RecordStats:
    topics: dict[str, TopicStats] = field(default_factory=dict)
    written: int = 0
    max_queue_bytes: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def received(self) -> int:
        return sum(t.received for t in self.topics.values())

    @property
    def dropped(self) -> int:
        return sum(t.dropped_by_recorder for t in self.topics.values())

    @property
    def lost(self) -> int:
        return sum(t.lost_in_middleware for t in self.topics.values())


def normalize_topic(name: str) -> str:
    return name if name.startswith("/") else "/" + name


class TopicRecorder:
    """Subscribes to the chosen topics as they appear and streams them into ``writer``."""

    def __init__(self, node: Node, writer: SplitBagWriter, options: RecordOptions,
                 log: Callable[[str], None] = print):
        self.node = node
        self.writer = writer
        self.options = options
        self.log = log
        self.stats = RecordStats()
        self._wanted = {normalize_topic(t) for t in options.topics if t}
        self._regex = re.compile(options.regex) if options.regex else None
        self._exclude = re.compile(options.exclude) if options.exclude else None
        self._skipped: set[str] = set()
        self._subscriptions = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._enqueued_bytes = 0               # written by the executor thread only
        self._dequeued_bytes = 0               # written by the writer thread only
        self._lock = threading.Lock()          # guards the writer between graph and writer threads
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="bag-writer", daemon=True)
        self._thread.start()
        self._clock = node.get_clock() if options.use_sim_time else None

    # ------------------------------------------------------------ discovery
    def wants(self, topic: str) -> bool:
        if self._exclude is not None and self._exclude.search(topic):
            return False
        if topic in self._wanted:
            return True
        hidden = any(part.startswith("_") for part in topic.split("/"))
        if hidden and not self.options.include_hidden:
            return False
        return self.options.all_topics or bool(self._regex and self._regex.search(topic))

    @property
    def missing_topics(self) -> list[str]:
        return sorted(self._wanted - set(self.stats.topics) - self._skipped)

    @property
    def needs_polling(self) -> bool:
        return self.options.all_topics or self._regex is not None or bool(self.missing_topics)

    def poll_graph(self) -> None:
        """Subscribe to every wanted topic that now has a publisher."""
        for topic, types in self.node.get_topic_names_and_types():
            if topic in self.stats.topics or topic in self._skipped or not self.wants(topic):
                continue
            if len(types) != 1:
                self._skip(topic, f"it has several types {types}; cannot record it as one topic")
                continue
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:
                continue          # only subscribers so far: wait for a publisher to learn its QoS
            self._subscribe(topic, types[0], [p.qos_profile for p in publishers])

    def _skip(self, topic: str, why: str) -> None:
        self._skipped.add(topic)
        self.log(f"[WARN] [recorder]: not recording {topic}: {why}")

    def _subscribe(self, topic: str, type_name: str, offered: list[QoSProfile]) -> None:
        try:
            msg_type = message_class(type_name)
        except BagError:
            self._skip(topic, f"message type {type_name} is not installed here (cannot create a subscription)")
            return
        definition = message_definition(type_name)
        if not definition.known:
            self.log(f"[WARN] [recorder]: no message definition found for {type_name}; {topic} is recorded "
                     "with an empty definition (readers need the type installed)")
        qos = subscription_qos(offered, history_depth(type_name, self.options.qos_depth))
        with self._lock:
            connection_id = self.writer.add_connection(topic, type_name, [bag_qos_from_profile(p) for p in offered],
                                                       definition)
        stats = TopicStats(topic, type_name, connection_id, qos)
        self.stats.topics[topic] = stats
        callback = self._make_callback(stats)
        kwargs = {}
        try:
            from rclpy.event_handler import SubscriptionEventCallbacks

            def lost(info, stats=stats):
                stats.lost_in_middleware += int(info.total_count_change)

            kwargs["event_callbacks"] = SubscriptionEventCallbacks(message_lost=lost)
        except ImportError:   # pragma: no cover - older rclpy
            pass
        try:
            subscription = self.node.create_subscription(msg_type, topic, callback, qos, raw=True, **kwargs)
        except Exception:     # message-lost events unsupported by this middleware
            kwargs.pop("event_callbacks", None)
            subscription = self.node.create_subscription(msg_type, topic, callback, qos, raw=True)
        self._subscriptions.append(subscription)
        self.log(f"[INFO] [recorder]: Subscribed to topic '{topic}' ({type_name}, "
                 f"{qos.reliability.name.lower()}, {qos.durability.name.lower()}, depth {qos.depth})")

    def _make_callback(self, stats: TopicStats):
        connection_id = stats.connection_id
        put = self._queue.put
        clock = self._clock
        limit = self.options.max_queue_bytes

        def on_message(data: bytes, info) -> None:
            recv_ns = clock.now().nanoseconds if clock is not None else time.time_ns()
            stats.received += 1
            queued = self._enqueued_bytes - self._dequeued_bytes
            if queued > limit:
                stats.dropped_by_recorder += 1
                return
            self._enqueued_bytes += len(data)
            if queued + len(data) > self.stats.max_queue_bytes:
                self.stats.max_queue_bytes = queued + len(data)
            put((connection_id, recv_ns, info.get("source_timestamp") or recv_ns, data))

        return on_message

    # -------------------------------------------------------------- writing
    def _write_loop(self) -> None:
        get = self._queue.get
        writer = self.writer
        lock = self._lock
        while True:
            try:
                item = get(timeout=0.05)
            except queue.Empty:
                item = None
            try:
                with lock:
                    if item is _STOP:
                        return
                    if item is not None:
                        connection_id, recv_ns, publish_ns, data = item
                        self._dequeued_bytes += len(data)
                        writer.write(connection_id, recv_ns, data, publish_ns)
                        self.stats.written += 1
                    writer.tick()
            except BaseException as exc:   # disk full, permissions: stop writing, report on stop()
                self._error = exc
                return

    def diagnostic_values(self) -> list[tuple[str, str]]:
        """Per-topic counters for /diagnostics: what a run's observer checks before it relies on the recording."""
        values = [("written", str(self.stats.written)), ("max queue MiB", f"{self.stats.max_queue_bytes / 2**20:.1f}")]
        for t in self.stats.topics.values():
            values.append((f"{t.topic} received", str(t.received)))
            if t.dropped_by_recorder or t.lost_in_middleware:
                values.append((f"{t.topic} dropped", str(t.dropped_by_recorder + t.lost_in_middleware)))
        return values

    @property
    def error(self) -> BaseException | None:
        return self._error

    def stop(self) -> RecordStats:
        """Stop subscriptions, write everything queued, close the bag (metadata.yaml)."""
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        self._subscriptions.clear()
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            self.writer.abort()
            raise BagError(f"writing {self.writer.path} failed: {self._error}") from self._error
        self.writer.close()
        self.stats.files = [f.path.name for f in self.writer.files]
        return self.stats
