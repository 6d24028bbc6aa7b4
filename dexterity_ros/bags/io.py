"""rosbag2 files (MCAP or sqlite3) read and written with ``rosbags``.

The container (metadata.yaml, storage, message definitions, QoS) is handled
by ``rosbags``; message bytes are CDR produced by ``rclpy.serialization`` so
they are exactly what a ROS 2 publisher would put on the wire. Bags written
here open in ``ros2 bag`` and vice versa.
"""
from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ..topics import QosClass

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
STORAGE_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(RuntimeError):
    """A bag cannot be read or written (missing, truncated, inconsistent, exists)."""


def message_class(type_name: str) -> type:
    """'sensor_msgs/msg/Image' -> the Python message class (from the ROS interface package)."""
    try:
        package, kind, name = type_name.split("/")
        module = importlib.import_module(f"{package}.{kind}")
        return getattr(module, name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise BagError(f"message type '{type_name}' is not available in this environment") from exc


def serialize(msg: Any) -> bytes:
    from rclpy.serialization import serialize_message
    return serialize_message(msg)


def deserialize(data: bytes | memoryview, type_name: str) -> Any:
    from rclpy.serialization import deserialize_message
    return deserialize_message(bytes(data), message_class(type_name))


def bag_qos(qos: QosClass) -> Qos:
    """The QoS a recorder offers in metadata for a stream of this class."""
    zero = QosTime(0, 0)   # rosbag2's "default" (infinite) deadline/lifespan/lease
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth={QosClass.SENSOR: 5, QosClass.LATCHED: 1}.get(qos, 10),
        reliability=QosReliability.BEST_EFFORT if qos is QosClass.SENSOR else QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if qos is QosClass.LATCHED else QosDurability.VOLATILE,
        deadline=zero, lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False)


class BagWriter:
    """Write messages (rclpy objects or CDR bytes) into a new rosbag2 directory."""

    def __init__(self, path: str | Path, storage: str = "mcap", overwrite: bool = False,
                 compress: bool = False):
        self.path = Path(path)
        if storage not in STORAGE_PLUGINS:
            raise BagError(f"unknown storage '{storage}' (use one of {sorted(STORAGE_PLUGINS)})")
        if self.path.exists():
            if not overwrite:
                raise BagError(f"{self.path} already exists (pass overwrite to replace it)")
            shutil.rmtree(self.path)
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGE_PLUGINS[storage])
        if compress:
            self._writer.set_compression(
                CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE,
                CompressionFormat.ZSTD)
        self._writer.open()
        self._connections: dict[str, Any] = {}

    def add_topic(self, name: str, type_name: str, qos: QosClass = QosClass.RELIABLE) -> None:
        if name in self._connections:
            return
        self._connections[name] = self._writer.add_connection(
            name, type_name, typestore=TYPESTORE, offered_qos_profiles=[bag_qos(qos)])

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        self.write_raw(topic, stamp_ns, serialize(msg))

    def write_raw(self, topic: str, stamp_ns: int, data: bytes) -> None:
        try:
            connection = self._connections[topic]
        except KeyError:
            raise BagError(f"topic '{topic}' was not added to the bag") from None
        self._writer.write(connection, int(stamp_ns), data)

    def set_custom_data(self, key: str, value: str) -> None:
        self._writer.set_custom_data(key, value)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class RawMessage:
    topic: str
    type_name: str
    stamp_ns: int     # bag receive/record time
    data: bytes


@dataclass(frozen=True)
class TopicSummary:
    name: str
    type_name: str
    count: int
    qos: tuple[Qos, ...]


class BagReader:
    """Read a rosbag2 directory (or its single storage file) message by message."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.is_file() and path.suffix in (".mcap", ".db3"):
            path = path.parent
        if not path.exists():
            raise BagError(f"bag not found: {path}")
        self.path = path
        try:
            self._reader = Reader(path)
            self._reader.open()
        except (ReaderError, OSError, KeyError, ValueError) as exc:
            raise BagError(f"cannot open bag {path}: {exc}") from exc

    @property
    def start_ns(self) -> int:
        return self._reader.start_time

    @property
    def end_ns(self) -> int:
        """Stamp of the last message (rosbags' end_time is one past it)."""
        return self._reader.end_time - 1

    @property
    def duration_ns(self) -> int:
        return max(self.end_ns - self.start_ns, 0)

    @property
    def message_count(self) -> int:
        return self._reader.message_count

    @property
    def custom_data(self) -> dict[str, str]:
        metadata = getattr(getattr(self._reader, "storage", None), "metadata", None)
        return dict(getattr(metadata, "custom", None) or {})

    def topics(self) -> dict[str, TopicSummary]:
        out = {}
        for name, info in self._reader.topics.items():
            qos: list[Qos] = []
            for c in info.connections:
                qos.extend(getattr(c.ext, "offered_qos_profiles", ()) or ())
            out[name] = TopicSummary(name, info.msgtype or "", info.msgcount, tuple(qos))
        return out

    def messages(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
                 stop_ns: int | None = None) -> Iterator[RawMessage]:
        wanted = set(topics) if topics is not None else None
        connections = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        try:
            for connection, stamp, data in self._reader.messages(connections=connections, start=start_ns,
                                                                  stop=stop_ns):
                yield RawMessage(connection.topic, connection.msgtype, stamp, bytes(data))
        except (ReaderError, OSError, ValueError) as exc:
            raise BagError(f"{self.path}: cannot read messages ({exc})") from exc

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
