"""A rosbag2 directory being recorded: storage files (split by size/duration) and metadata.yaml.

Layout as ``ros2 bag record`` makes it: ``DIR/DIR_0.mcap``, ``DIR/DIR_1.mcap``
... and one ``DIR/metadata.yaml`` written on close listing every file,
topic (type, offered QoS, type hash) and count. Each storage file is
self-contained (it repeats all schemas/channels) and crash-safe (see
:mod:`.mcap` and :mod:`.sqlite`). No rclpy here: the recorder feeds bytes.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import yaml
from rosbags.interfaces import Qos

from .mcap import McapFileWriter
from .metadata import METADATA_FILE, BagMetadata, FileEntry, TopicEntry, write_metadata
from .msgdefs import MessageDefinition, message_definition
from .sqlite import Sqlite3FileWriter

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    from backports import zstd

STORAGE_SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3"}


class BagWriteError(RuntimeError):
    """The output cannot be created or written."""


@dataclass(frozen=True)
class WriterOptions:
    storage: str = "mcap"
    compression: str = "none"          # 'none' or 'zstd' (MCAP: per chunk; sqlite3: per message)
    compression_level: int = 1
    chunk_size: int = 4 << 20          # bytes per MCAP chunk / sqlite3 transaction
    chunk_interval_s: float = 1.0      # a chunk is written at least this often (bounds loss on SIGKILL)
    sync_interval_s: float = 1.0       # fsync period
    max_bag_size: int = 0              # bytes per storage file before a split (0: no limit)
    max_bag_duration_s: float = 0.0    # seconds per storage file before a split (0: no limit)

    def __post_init__(self) -> None:
        if self.storage not in STORAGE_SUFFIX:
            raise ValueError(f"unknown storage '{self.storage}' (use one of {sorted(STORAGE_SUFFIX)})")
        if self.compression not in ("none", "zstd"):
            raise ValueError(f"unknown compression '{self.compression}' (use 'none' or 'zstd')")
        for name in ("chunk_size", "max_bag_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("chunk_interval_s", "sync_interval_s", "max_bag_duration_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


def qos_yaml(profiles: list[Qos]) -> str:
    """Offered QoS as the YAML string rosbag2 stores in MCAP channel metadata / the sqlite3 topics table."""
    from rosbags.rosbag2.metadata import dump_qos_v9
    if not profiles:
        return ""
    stream = StringIO()
    yaml.safe_dump([dict(q) for q in dump_qos_v9(profiles)], stream, sort_keys=False)
    return stream.getvalue().strip()


@dataclass
class _Connection:
    id: int
    topic: str
    type_name: str
    qos: list[Qos]
    definition: MessageDefinition
    count: int = 0


@dataclass
class _FileStats:
    path: Path
    start_ns: int = 2**63 - 1
    end_ns: int = 0
    count: int = 0
    writer: object = field(default=None, repr=False)


def prepare_output(path: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``; never delete something that is not a directory."""
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise BagWriteError(f"output {path} already exists (choose another name or pass --overwrite)")
        if not path.is_dir() or path.is_symlink():
            raise BagWriteError(f"output {path} exists and is not a directory; not replacing it")
        shutil.rmtree(path)


class SplitBagWriter:
    """Writes a rosbag2 directory; thread-compatible (one writer thread), not thread-safe."""

    def __init__(self, path: str | Path, options: WriterOptions = WriterOptions(), overwrite: bool = False,
                 custom_data: dict[str, str] | None = None, split_names: bool = True):
        self.path = Path(path)
        self.options = options
        if not split_names and (options.max_bag_size or options.max_bag_duration_s):
            raise ValueError("a bag that may split needs numbered file names")
        self._split_names = split_names
        prepare_output(self.path, overwrite)
        try:
            self.path.mkdir(parents=True)
        except OSError as exc:
            raise BagWriteError(f"cannot create {self.path}: {exc.strerror}") from None
        self.custom_data = dict(custom_data or {})
        self.connections: dict[int, _Connection] = {}
        self._schema_ids: dict[str, int] = {}
        self.files: list[_FileStats] = []
        self.closed = False
        self._open_file()

    # --------------------------------------------------------------- files
    def _file_name(self, index: int) -> str:
        """DIR_0.mcap, DIR_1.mcap, ... as ros2 bag record names them; DIR.mcap for a bag that never splits."""
        stem = f"{self.path.name}_{index}" if self._split_names else self.path.name
        return stem + STORAGE_SUFFIX[self.options.storage]

    def _open_file(self) -> None:
        stats = _FileStats(self.path / self._file_name(len(self.files)))
        o = self.options
        if o.storage == "mcap":
            stats.writer = McapFileWriter(stats.path, compression="zstd" if o.compression == "zstd" else "",
                                          compression_level=o.compression_level, chunk_size=o.chunk_size,
                                          chunk_interval_s=o.chunk_interval_s, sync_interval_s=o.sync_interval_s)
        else:
            stats.writer = Sqlite3FileWriter(stats.path, chunk_size=o.chunk_size, chunk_interval_s=o.chunk_interval_s)
        self.files.append(stats)
        for connection in self.connections.values():
            self._declare(stats.writer, connection)

    def _declare(self, writer, c: _Connection) -> None:
        d = c.definition
        if isinstance(writer, McapFileWriter):
            schema_id = self._schema_ids.setdefault(c.type_name, len(self._schema_ids) + 1)
            writer.add_schema(schema_id, c.type_name, d.encoding or "ros2msg", d.text)
            metadata = {"offered_qos_profiles": qos_yaml(c.qos)}
            if d.type_hash:
                metadata["topic_type_hash"] = d.type_hash
            writer.add_channel(c.id, schema_id, c.topic, "cdr", metadata)
        else:
            writer.add_definition(c.type_name, d.encoding or "ros2msg", d.text, d.type_hash)
            writer.add_topic(c.id, c.topic, c.type_name, qos_yaml(c.qos), d.type_hash)

    def _split(self) -> None:
        self._close_file(self.files[-1])
        self._open_file()

    def _close_file(self, stats: _FileStats) -> None:
        if isinstance(stats.writer, McapFileWriter):
            stats.writer.close({"rosbag2": {"serialized_metadata": self.metadata().to_yaml(),
                                            "ROS_DISTRO": "kilted"}})
        else:
            stats.writer.close(self.metadata().to_yaml())

    # ------------------------------------------------------------ writing
    def add_connection(self, topic: str, type_name: str, qos: list[Qos] | None = None,
                       definition: MessageDefinition | None = None) -> int:
        """Register a topic (one connection per topic/type); returns its id."""
        for c in self.connections.values():
            if c.topic == topic and c.type_name == type_name:
                return c.id
        connection = _Connection(len(self.connections) + 1, topic, type_name, list(qos or []),
                                 definition or message_definition(type_name))
        self.connections[connection.id] = connection
        self._declare(self.files[-1].writer, connection)
        return connection.id

    def write(self, connection_id: int, recv_ns: int, data: bytes | memoryview, publish_ns: int | None = None) -> None:
        current = self.files[-1]
        o = self.options
        if current.count and ((o.max_bag_size and current.writer.size >= o.max_bag_size)
                              or (o.max_bag_duration_s and recv_ns - current.start_ns >= o.max_bag_duration_s * 1e9)):
            self._split()
            current = self.files[-1]
        connection = self.connections[connection_id]
        if o.storage == "mcap":
            current.writer.write(connection_id, recv_ns, data, publish_ns)
        else:
            current.writer.write(connection_id, recv_ns,
                                 zstd.compress(data, level=o.compression_level) if o.compression == "zstd"
                                 else bytes(data))
        connection.count += 1
        current.count += 1
        current.start_ns = min(current.start_ns, recv_ns)
        current.end_ns = max(current.end_ns, recv_ns)

    def tick(self) -> None:
        if not self.closed:
            self.files[-1].writer.tick()

    @property
    def message_count(self) -> int:
        return sum(f.count for f in self.files)

    @property
    def bytes_written(self) -> int:
        return sum(f.path.stat().st_size for f in self.files[:-1] if f.path.exists()) + self.files[-1].writer.size

    def metadata(self) -> BagMetadata:
        files = [f for f in self.files if f.path.exists() or f is self.files[-1]]
        with_messages = [f for f in files if f.count]
        start = min((f.start_ns for f in with_messages), default=0)
        end = max((f.end_ns for f in with_messages), default=0)
        sqlite_zstd = self.options.storage == "sqlite3" and self.options.compression == "zstd"
        return BagMetadata(
            storage=self.options.storage, files=[f.path.name for f in files],
            topics=[TopicEntry(c.topic, c.type_name, c.count, c.qos, "cdr", c.definition.type_hash)
                    for c in self.connections.values()],
            start_ns=start, duration_ns=max(end - start, 0), count=sum(f.count for f in files),
            compression_format="zstd" if sqlite_zstd else "", compression_mode="MESSAGE" if sqlite_zstd else "",
            file_entries=[FileEntry(f.path.name, f.start_ns if f.count else 0,
                                    max(f.end_ns - f.start_ns, 0) if f.count else 0, f.count) for f in files],
            custom_data=dict(self.custom_data))

    def close(self) -> Path:
        """Finish the last storage file and write metadata.yaml; returns its path."""
        if self.closed:
            return self.path / METADATA_FILE
        self.closed = True
        self._close_file(self.files[-1])
        return write_metadata(self.path, self.metadata())

    def abort(self) -> None:
        """Stop without metadata.yaml (leaves what a crash would; for tests and fatal errors)."""
        if not self.closed:
            self.closed = True
            self.files[-1].writer.abort()

    def __enter__(self) -> "SplitBagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
