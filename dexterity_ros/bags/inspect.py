"""What is in a bag (`dexterity-ros info`) and rebuilding its metadata.yaml (`dexterity-ros reindex`).

``reindex`` is ``ros2 bag reindex`` plus repair: a recording killed with
SIGKILL leaves MCAP files without summary and no metadata.yaml; reindex
rewrites each such file as a complete MCAP (every complete chunk kept, the
unreadable tail dropped), folds an unfinished sqlite3 write-ahead log into
its .db3, and writes metadata.yaml from what the storage really holds.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import sqlite3
from pathlib import Path

from rosbags.interfaces import Qos, QosHistory

from .io import _ZSTD_MAGIC, STORAGE_SUFFIXES, BagError, BagReader, open_storage_file, storage_files
from .mcap import McapFileWriter, RecoveringMcapReader
from .metadata import METADATA_FILE, BagMetadata, FileEntry, MetadataError, TopicEntry, read_metadata, write_metadata


def is_bag_path(path: Path) -> bool:
    """Does ``path`` look like something the bag reader opens (it may still be broken)?"""
    path = Path(path)
    if path.is_file():
        return path.suffix in STORAGE_SUFFIXES or path.name == METADATA_FILE
    if path.is_dir():
        return (path / METADATA_FILE).exists() or bool(storage_files(path))
    return False


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def _time(ns: int) -> str:
    stamp = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    return f"{stamp:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d} UTC ({ns // 1_000_000_000}.{ns % 1_000_000_000:09d})"


def describe_qos(q: Qos) -> str:
    text = f"{q.reliability.name.lower()}, {q.durability.name.lower()}"
    if q.history == QosHistory.KEEP_LAST:
        text += f", keep last {q.depth}"
    elif q.history == QosHistory.KEEP_ALL:
        text += ", keep all"
    return text


def describe(reader: BagReader) -> str:
    """``ros2 bag info``-style summary: files, duration, topics with types, counts, frequencies, QoS."""
    files = reader.storage_files
    sizes = [f.stat().st_size if f.exists() else 0 for f in files]
    out = [f"Bag:               {reader.path}",
           "Files:             " + ", ".join(f"{f.name} ({_size(s)})" for f, s in zip(files, sizes)),
           f"Bag size:          {_size(sum(sizes))}",
           f"Storage id:        {reader.storage_id}"]
    if reader.metadata is not None and reader.metadata.ros_distro:
        out.append(f"ROS distro:        {reader.metadata.ros_distro}")
    out.append(f"Duration:          {reader.duration_ns * 1e-9:.3f} s")
    if reader.message_count:
        out.append(f"Start:             {_time(reader.start_ns)}")
        out.append(f"End:               {_time(reader.end_ns)}")
    out.append(f"Messages:          {reader.message_count}")
    out.append(f"Compression:       {reader.compression}")
    for note in reader.notes:
        out.append(f"Note:              {note}")
    topics = reader.topics()
    ranges = reader.topic_time_ranges()
    out.append(f"Topic information: {len(topics)} topics")
    width = max((len(t) for t in topics), default=0)
    type_width = max((len(s.type_name) for s in topics.values()), default=0)
    for name, summary in topics.items():
        first, last = ranges.get(name, (0, 0))
        frequency = (summary.count - 1) / ((last - first) * 1e-9) if summary.count > 1 and last > first else 0.0
        qos = "; ".join(sorted({describe_qos(q) for q in summary.qos})) or "not recorded"
        out.append(f"  {name:<{width}}  {summary.type_name:<{type_width}}  {summary.count:>8} msgs  "
                   f"{frequency:>9.2f} Hz  QoS: {qos}")
    custom = reader.custom_data
    if custom:
        out.append("Custom data:")
        out += [f"  {k}: {v}" for k, v in sorted(custom.items())]
    return "\n".join(out)


# ------------------------------------------------------------------ reindex
def _repair_mcap(path: Path) -> str:
    """Rewrite an MCAP file that lacks its summary as a complete file; returns what was done ('' if intact)."""
    reader = RecoveringMcapReader(path)
    reader.open()
    try:
        if not reader.recovery:
            return ""
        note = reader.recovery
        tmp = path.with_name(path.name + ".reindex")
        if tmp.exists():
            tmp.unlink()
        compression = next((c.compression for c in reader.chunks if c.compression), "")
        writer = McapFileWriter(tmp, compression=compression if compression in ("", "zstd") else "zstd",
                                chunk_interval_s=1e9, sync_interval_s=1e9)
        schema_ids: dict[str, int] = {}
        for channel in reader.channels.values():
            schema = next((s for s in reader.schemas.values() if s.name == channel.schema), None)
            if schema is not None:
                schema_ids.setdefault(schema.name, len(schema_ids) + 1)
                writer.add_schema(schema_ids[schema.name], schema.name, schema.encoding, schema.data)
            writer.add_channel(channel.id, schema_ids.get(channel.schema, 0), channel.topic,
                               channel.message_encoding, _decode_map(channel.metadata))
        for connection, stamp, data in reader.messages(reader.connections):
            writer.write(connection.id, stamp, data)
        writer.close()
    finally:
        reader.close()
    os.replace(tmp, path)
    return note


def _decode_map(data: bytes) -> dict[str, str]:
    import struct
    out, offset = {}, 0
    while offset < len(data):
        (n,) = struct.unpack_from("<I", data, offset)
        key = data[offset + 4:offset + 4 + n].decode()
        offset += 4 + n
        (n,) = struct.unpack_from("<I", data, offset)
        out[key] = data[offset + 4:offset + 4 + n].decode()
        offset += 4 + n
    return out


def _repair_sqlite(path: Path) -> str:
    wal = path.with_name(path.name + "-wal")
    journal = path.with_name(path.name + "-journal")
    if not wal.exists() and not journal.exists():
        return ""
    from .sqlite import in_use
    if in_use(path):
        raise BagError(f"{path} is open in another process (a recording in progress?); stop it before reindexing")
    try:
        db = sqlite3.connect(str(path))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
        db.close()
    except sqlite3.DatabaseError as exc:
        raise BagError(f"cannot recover {path}: {exc}") from None
    return f"{path.name}: folded the unfinished write-ahead log into the database"


def reindex(directory: str | Path, overwrite: bool = False) -> tuple[BagMetadata, list[str]]:
    """Rebuild ``directory/metadata.yaml`` from its storage files (repairing interrupted ones)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BagError(f"{directory} is not a bag directory")
    files = [f for f in storage_files(directory) if f.suffix in STORAGE_SUFFIXES]
    if not files:
        raise BagError(f"{directory} has no .mcap or .db3 storage files to index")
    kinds = {STORAGE_SUFFIXES[f.suffix] for f in files}
    if len(kinds) > 1:
        raise BagError(f"{directory} mixes storage formats {sorted(kinds)}; a bag has one")
    existing = directory / METADATA_FILE
    custom: dict[str, str] = {}
    if existing.exists():
        if not overwrite:
            raise BagError(f"{existing} already exists; pass --overwrite to replace it "
                           f"(the old one is kept as {METADATA_FILE}.bak)")
        try:
            custom = read_metadata(directory).custom_data
        except MetadataError:
            pass
    notes: list[str] = []
    for f in files:
        note = _repair_mcap(f) if f.suffix == ".mcap" else _repair_sqlite(f)
        if note:
            notes.append(note)
    topics: dict[tuple[str, str], TopicEntry] = {}
    entries: list[FileEntry] = []
    message_compressed = False
    for f in files:
        storage = open_storage_file(f)
        try:
            for c in storage.connections:
                entry = topics.setdefault((c.topic, c.type_name),
                                          TopicEntry(c.topic, c.type_name, 0, [], "cdr", c.type_hash))
                entry.count += c.count
                entry.qos.extend(q for q in c.qos if q not in entry.qos)
                if f.suffix == ".db3" and c.count and not message_compressed:
                    first = next(storage.messages([c.id], None, None), None)
                    message_compressed = first is not None and bytes(first[2][:4]) == _ZSTD_MAGIC
            entries.append(FileEntry(f.name, storage.start_ns if storage.count else 0,
                                     storage.end_ns - storage.start_ns if storage.count else 0, storage.count))
        finally:
            storage.close()
    with_messages = [e for e in entries if e.count]
    start = min((e.start_ns for e in with_messages), default=0)
    end = max((e.start_ns + e.duration_ns for e in with_messages), default=0)
    metadata = BagMetadata(storage=kinds.pop(), files=[f.name for f in files], topics=list(topics.values()),
                           start_ns=start, duration_ns=max(end - start, 0), count=sum(e.count for e in entries),
                           compression_format="zstd" if message_compressed else "",
                           compression_mode="MESSAGE" if message_compressed else "",
                           file_entries=entries, custom_data=custom)
    if existing.exists():
        shutil.copy2(existing, directory / f"{METADATA_FILE}.bak")
    write_metadata(directory, metadata)
    return metadata, notes
