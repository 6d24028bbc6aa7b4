"""rosbag2 files (MCAP or sqlite3): episode and test bags written, any bag read here.

:class:`BagWriter` writes CDR message bytes through the recorder's writer
(:mod:`.writer`: MCAP with chunk, data-section and summary CRCs, or sqlite3;
metadata.yaml, message definitions, QoS). This package is pure storage: it
never imports rclpy or message packages; turning rclpy objects into those
bytes (``rclpy.serialization``, exactly what a ROS 2 publisher puts on the
wire) is :mod:`dexterity_ros.ros.messages`. Bags written here open in ``ros2 bag`` and
vice versa. :class:`BagReader` reads bags from any rosbag2 writer, including
interrupted recordings (see :mod:`.mcap`, :mod:`.sqlite`), and never writes
into the bag; :meth:`BagReader.verify` checks every checksum (:mod:`.verify`).
"""
from __future__ import annotations

import heapq
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, get_typestore

from ..topics import QosClass
from .mcap import DAMAGE_ERRORS

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    from backports import zstd

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
STORAGES = ("mcap", "sqlite3")


class BagError(RuntimeError):
    """A bag cannot be read or written (missing, truncated, inconsistent, exists)."""


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
    """Write CDR messages into a new rosbag2 directory ``DIR/DIR.mcap`` (or .db3).

    ``compress``: zstd per MCAP chunk, or per message for sqlite3 (``compression_mode: MESSAGE``).
    """

    def __init__(self, path: str | Path, storage: str = "mcap", overwrite: bool = False,
                 compress: bool = False):
        from .writer import BagWriteError, SplitBagWriter, WriterOptions

        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"unknown storage '{storage}' (use one of {sorted(STORAGES)})")
        if self.path.exists() and not overwrite:
            raise BagError(f"{self.path} already exists (pass overwrite to replace it)")
        # written offline: chunks close by size only, one fsync on close
        options = WriterOptions(storage=storage, compression="zstd" if compress else "none", compression_level=3,
                                chunk_interval_s=1e9, sync_interval_s=1e9)
        try:
            self._writer = SplitBagWriter(self.path, options, overwrite=overwrite, split_names=False)
        except BagWriteError as exc:
            raise BagError(str(exc)) from None
        self._connections: dict[str, int] = {}

    def add_topic(self, name: str, type_name: str, qos: QosClass = QosClass.RELIABLE) -> None:
        if name in self._connections:
            return
        self._connections[name] = self._writer.add_connection(name, type_name, [bag_qos(qos)])

    def write_raw(self, topic: str, stamp_ns: int, data: bytes) -> None:
        try:
            connection = self._connections[topic]
        except KeyError:
            raise BagError(f"topic '{topic}' was not added to the bag") from None
        self._writer.write(connection, int(stamp_ns), data)

    def set_custom_data(self, key: str, value: str) -> None:
        self._writer.custom_data[str(key)] = str(value)

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
    """Read a rosbag2 bag message by message, in receive-time order.

    ``path`` is a bag directory (with metadata.yaml, or without one after an
    interrupted recording: the storage files are read directly), or a single
    .mcap/.db3 storage file. Storage: MCAP (including files without summary,
    recovered up to the last complete chunk) and sqlite3 (including an
    unfinished write-ahead log); split bags; message- and file-level zstd.
    A metadata.yaml that disagrees with its storage is a :class:`BagError`
    (``verify=False`` skips the check; ``dexterity-ros reindex`` rebuilds it).
    """

    def __init__(self, path: str | Path, verify: bool = True):
        from .metadata import MetadataError, read_metadata

        path = Path(path)
        if not path.exists():
            raise BagError(f"bag not found: {path}")
        self.notes: list[str] = []                 # recovery and consistency remarks, for `info`
        self.metadata = None                       # BagMetadata from metadata.yaml (None: rebuilt)
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self._storages: list[_Storage] = []
        if path.is_file():
            listed = path.parent / "metadata.yaml"
            if listed.exists() and _lists_only(listed, path.name):
                path = path.parent
            elif path.suffix not in STORAGE_SUFFIXES:
                raise BagError(f"{path} is not a rosbag2 storage file (expected .mcap or .db3, or a bag directory)")
        self.path = path
        if path.is_file():
            files = [path]
        elif (path / "metadata.yaml").exists():
            try:
                self.metadata = read_metadata(path)
            except MetadataError as exc:
                raise BagError(f"cannot open bag {path}: metadata.yaml: {exc}") from None
            if self.metadata.storage not in ("mcap", "sqlite3"):
                raise BagError(f"cannot open bag {path}: storage '{self.metadata.storage}' is not supported "
                               "(mcap or sqlite3)")
            files = [path / name for name in self.metadata.files]
            missing = [f.name for f in files if not f.exists()]
            if missing:
                raise BagError(f"cannot open bag {path}: metadata.yaml lists storage files that do not exist: "
                               f"{missing}")
        else:
            files = storage_files(path)
            if not files:
                raise BagError(f"cannot open bag {path}: no metadata.yaml and no .mcap/.db3 storage files "
                               "(not a rosbag2 bag)")
            self.notes.append("metadata.yaml is missing (interrupted recording?): read the storage files directly; "
                              f"`dexterity-ros reindex {path}` writes it")
        mode = (self.metadata.compression_mode.lower() if self.metadata else "")
        self.message_compression = mode == "message"
        try:
            for file in files:
                self._storages.append(self._open_storage(file, mode == "file"))
        except DAMAGE_ERRORS as exc:
            self.close()
            raise BagError(f"cannot open bag {path}: {_reason(exc)}") from None
        self.notes += [s.recovery for s in self._storages if s.recovery]
        if self.metadata is not None and verify:
            problems = self._disagreements()
            if problems:
                self.close()
                raise BagError(f"metadata.yaml of {path} disagrees with its storage: " + "; ".join(problems)
                               + f". Rebuild it from the storage with `dexterity-ros reindex {path} --overwrite`")

    # ---------------------------------------------------------- opening
    def _open_storage(self, file: Path, file_compressed: bool) -> "_Storage":
        if file_compressed or file.suffix == ".zstd":
            if self._tmpdir is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="dexterity_bag_")
            target = Path(self._tmpdir.name) / file.with_suffix("").name if file.suffix == ".zstd" \
                else Path(self._tmpdir.name) / file.name
            with open(file, "rb") as src, zstd.open(src, "rb") as infile, open(target, "wb") as out:
                shutil.copyfileobj(infile, out)
            storage = self._open_storage(target, False)
            storage.path = file               # what the user has; local_path stays the decompressed copy
            return storage
        if file.suffix == ".mcap":
            return _McapStorage(file)
        if file.suffix == ".db3":
            return _SqliteStorage(file)
        raise ReaderError(f"unknown storage file type {file.name} (expected .mcap or .db3)")

    def _disagreements(self) -> list[str]:
        md = self.metadata
        problems: list[str] = []
        suffix = {"mcap": ".mcap", "sqlite3": ".db3"}[md.storage]
        for s in self._storages:
            if not s.path.name.removesuffix(".zstd").endswith(suffix):
                problems.append(f"storage_identifier is '{md.storage}' but {s.path.name} is not a {suffix} file")
        stored: dict[str, int] = {}
        stored_types: dict[str, set[str]] = {}
        for s in self._storages:
            for c in s.connections:
                stored[c.topic] = stored.get(c.topic, 0) + c.count
                stored_types.setdefault(c.topic, set()).add(c.type_name)
        listed = md.topic_counts()
        for topic, count in listed.items():
            have = stored.get(topic)
            if have is None and count:
                problems.append(f"{topic} ({count} messages) is not in the storage")
            elif have is not None and have != count:
                problems.append(f"{topic}: {count} messages in metadata.yaml, {have} in the storage")
        for topic, count in stored.items():
            if topic not in listed and count:
                problems.append(f"{topic} ({count} messages in the storage) is not in metadata.yaml")
        for entry in md.topics:
            types = stored_types.get(entry.name)
            if types and entry.type_name not in types:
                problems.append(f"{entry.name}: type {entry.type_name} in metadata.yaml, {sorted(types)} in the storage")
        total = sum(s.count for s in self._storages)
        if not problems and total != md.count:
            problems.append(f"message_count {md.count} in metadata.yaml, {total} in the storage")
        if problems:
            problems += [s.recovery for s in self._storages if s.recovery]
        return problems

    # ---------------------------------------------------------- verify
    def verify(self) -> list["FileCheck"]:
        """Check every checksum and the structure of each storage file (``info --verify``); reads only."""
        from .verify import FileCheck, verify_mcap

        checks = []
        for s in self._storages:
            if isinstance(s, _McapStorage):
                check = verify_mcap(s.local_path, s.path.name)
            else:
                check = FileCheck(s.path.name, problems=s._reader.integrity_problems())
                if not check.problems:
                    check.checked.append("sqlite integrity_check")
                check.unverifiable.append("sqlite3 stores no checksums of message data")
            if s.local_path != s.path:
                check.checked.append("zstd file decompressed")
            checks.append(check)
        return checks

    # --------------------------------------------------------- summary
    @property
    def storage_files(self) -> list[Path]:
        return [s.path for s in self._storages]

    @property
    def storage_id(self) -> str:
        if self.metadata is not None:
            return self.metadata.storage
        return STORAGE_SUFFIXES.get(self._storages[0].path.suffix, "?") if self._storages else "?"

    @property
    def start_ns(self) -> int:
        return min((s.start_ns for s in self._storages if s.count), default=0)

    @property
    def end_ns(self) -> int:
        """Stamp of the last message."""
        return max((s.end_ns for s in self._storages if s.count), default=0)

    @property
    def duration_ns(self) -> int:
        return max(self.end_ns - self.start_ns, 0)

    @property
    def message_count(self) -> int:
        return sum(s.count for s in self._storages)

    @property
    def custom_data(self) -> dict[str, str]:
        return dict(self.metadata.custom_data) if self.metadata is not None else {}

    @property
    def compression(self) -> str:
        """How message data is compressed, in words."""
        if self.metadata is not None and self.metadata.compression_mode.lower() == "file":
            return f"{self.metadata.compression_format or 'zstd'} (whole storage files)"
        if self.message_compression:
            return f"{self.metadata.compression_format or 'zstd'} (per message)"
        chunked = sorted({c for s in self._storages for c in s.chunk_compressions if c})
        return f"{', '.join(chunked)} (MCAP chunks)" if chunked else "none"

    @property
    def recovered(self) -> bool:
        return self.metadata is None or any(s.recovery for s in self._storages)

    def topics(self) -> dict[str, TopicSummary]:
        counts: dict[str, int] = {}
        types: dict[str, list[str]] = {}
        qos: dict[str, list[Qos]] = {}
        for s in self._storages:
            for c in s.connections:
                counts[c.topic] = counts.get(c.topic, 0) + c.count
                if c.type_name not in types.setdefault(c.topic, []):
                    types[c.topic].append(c.type_name)
                if self.metadata is None:
                    qos.setdefault(c.topic, []).extend(q for q in c.qos if q not in qos[c.topic])
        if self.metadata is not None:
            for entry in self.metadata.topics:
                qos.setdefault(entry.name, []).extend(q for q in entry.qos if q not in qos[entry.name])
        return {name: TopicSummary(name, " | ".join(types[name]), counts[name], tuple(qos.get(name, ())))
                for name in sorted(counts)}

    def topic_time_ranges(self) -> dict[str, tuple[int, int]]:
        """First and last receive time of each topic that has messages."""
        ranges: dict[str, tuple[int, int]] = {}
        for s in self._storages:
            by_id = {c.id: c.topic for c in s.connections}
            try:
                found = s.time_ranges()
            except DAMAGE_ERRORS as exc:
                raise BagError(f"{self.path}: cannot read the message index of {s.path.name} "
                               f"({_reason(exc)})") from None
            for cid, (first, last) in found.items():
                topic = by_id.get(cid)
                if topic is None:
                    continue
                old = ranges.get(topic)
                ranges[topic] = (first, last) if old is None else (min(old[0], first), max(old[1], last))
        return ranges

    # -------------------------------------------------------- messages
    def messages(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
                 stop_ns: int | None = None) -> Iterator[RawMessage]:
        wanted = set(topics) if topics is not None else None
        sources = []
        for storage in self._storages:
            chosen = [c for c in storage.connections if wanted is None or c.topic in wanted]
            if chosen:
                sources.append(self._storage_messages(storage, chosen, start_ns, stop_ns))
        merged = sources[0] if len(sources) == 1 else heapq.merge(*sources, key=lambda m: m.stamp_ns)
        try:
            yield from merged
        except DAMAGE_ERRORS as exc:
            raise BagError(f"{self.path}: cannot read messages ({_reason(exc)})") from exc

    def _storage_messages(self, storage: "_Storage", chosen: list["_StoredConnection"], start_ns, stop_ns):
        by_id = {c.id: c for c in chosen}
        always = self.message_compression
        detect = self.metadata is None
        for cid, stamp, data in storage.messages(list(by_id), start_ns, stop_ns):
            if always or (detect and data[:4] == _ZSTD_MAGIC):
                data = zstd.decompress(data)
            c = by_id[cid]
            yield RawMessage(c.topic, c.type_name, stamp, bytes(data))

    def close(self) -> None:
        for storage in self._storages:
            try:
                storage.close()
            except Exception:
                pass
        self._storages = []
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------- storages
STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if isinstance(exc, (ReaderError, BagError, OSError)) and text else f"{type(exc).__name__}: {text}"


def storage_files(directory: Path) -> list[Path]:
    """Storage files of a bag directory in split order (NAME_0, NAME_1, ... NAME_10)."""
    def order(p: Path):
        stem = p.name.split(".")[0]
        tail = stem.rsplit("_", 1)[-1]
        return (int(tail) if tail.isdigit() else -1, p.name)

    found = [p for p in Path(directory).iterdir()
             if p.is_file() and (p.suffix in STORAGE_SUFFIXES
                                 or (p.suffix == ".zstd" and Path(p.stem).suffix in STORAGE_SUFFIXES))]
    return sorted(found, key=order)


def _lists_only(metadata_path: Path, name: str) -> bool:
    from .metadata import MetadataError, read_metadata
    try:
        return read_metadata(metadata_path.parent).files == [name]
    except MetadataError:
        return False


@dataclass(frozen=True)
class _StoredConnection:
    id: int
    topic: str
    type_name: str
    count: int
    qos: tuple[Qos, ...]
    definition: tuple[str, str]     # (encoding, text)
    type_hash: str


class _Storage:
    path: Path            # the storage file in the bag
    local_path: Path      # the file read (a decompressed copy for whole-file zstd)
    recovery: str
    chunk_compressions: set[str] = set()
    connections: list[_StoredConnection]
    start_ns: int
    end_ns: int
    count: int


class _McapStorage(_Storage):
    def __init__(self, path: Path):
        from .mcap import RecoveringMcapReader
        self.path = self.local_path = path
        self._reader = RecoveringMcapReader(path)
        self._reader.open()
        r = self._reader
        self.recovery = r.recovery
        self.chunk_compressions = {c.compression for c in r.chunks}
        self._by_id = {c.id: c for c in r.connections}
        formats = {"MSG": "ros2msg", "IDL": "ros2idl"}
        self.connections = [
            _StoredConnection(c.id, c.topic, c.msgtype, c.msgcount, tuple(c.ext.offered_qos_profiles or ()),
                              (formats.get(c.msgdef.format.name, ""), c.msgdef.data), _channel_hash(r, c.id))
            for c in r.connections]
        self.count = r.metadata.message_count
        self.start_ns = r.metadata.start_time if self.count else 0
        self.end_ns = r.metadata.end_time - 1 if self.count else 0

    def messages(self, ids, start, stop):
        for connection, stamp, data in self._reader.messages([self._by_id[i] for i in ids], start, stop):
            yield connection.id, stamp, data

    def time_ranges(self) -> dict[int, tuple[int, int]]:
        return self._reader.channel_time_ranges()

    def close(self) -> None:
        if self._reader.bio is not None:
            self._reader.close()


def _channel_hash(reader, channel_id: int) -> str:
    channel = reader.channels.get(channel_id)
    if channel is None:
        return ""
    data, offset = channel.metadata, 0
    try:
        while offset < len(data):
            key_len = struct.unpack_from("<I", data, offset)[0]
            key = data[offset + 4:offset + 4 + key_len].decode()
            offset += 4 + key_len
            value_len = struct.unpack_from("<I", data, offset)[0]
            value = data[offset + 4:offset + 4 + value_len].decode()
            offset += 4 + value_len
            if key == "topic_type_hash":
                return value
    except (struct.error, UnicodeDecodeError):
        pass
    return ""


class _SqliteStorage(_Storage):
    def __init__(self, path: Path):
        from .sqlite import Sqlite3FileReader
        self.path = self.local_path = path
        self._reader = Sqlite3FileReader(path)
        r = self._reader
        self.recovery = r.recovery
        self.connections = [_StoredConnection(t.id, t.name, t.type_name, t.count, tuple(t.qos), t.definition,
                                              t.type_hash) for t in r.topics]
        self.count, self.start_ns, self.end_ns = r.count, r.start_ns, r.end_ns

    def messages(self, ids, start, stop):
        return self._reader.messages(ids, start, stop)

    def time_ranges(self) -> dict[int, tuple[int, int]]:
        return self._reader.time_ranges()

    def close(self) -> None:
        self._reader.close()


def open_storage_file(path: Path) -> _Storage:
    """One storage file on its own (what `reindex` rebuilds metadata.yaml from)."""
    path = Path(path)
    try:
        if path.suffix == ".mcap":
            return _McapStorage(path)
        if path.suffix == ".db3":
            return _SqliteStorage(path)
    except DAMAGE_ERRORS as exc:
        raise BagError(f"cannot read {path}: {_reason(exc)}") from None
    raise BagError(f"{path} is not a .mcap or .db3 storage file")
