"""MCAP storage for rosbag2 ('ros2' profile): a crash-safe chunk writer and a recovering reader.

rosbags' MCAP writer keeps the open chunk in memory and writes every index
only on close, so a killed recorder leaves nothing readable. This writer
emits each chunk (with its message indexes) as soon as it is full or
``chunk_interval_s`` old, flushes it to the OS and fsyncs periodically; the
summary (schemas, channels, chunk indexes, statistics) and footer are
written on close. The format is standard MCAP (https://mcap.dev/spec), the
same layout rosbag2_storage_mcap produces, so any MCAP reader opens it.
Every byte is under a CRC-32: each chunk's (of its uncompressed records),
the data section's (in DataEnd: magic to the last data record) and the
summary's (in the footer); :mod:`.verify` checks them (`info --verify`).

:class:`RecoveringMcapReader` reads files with a summary through rosbags and,
for a file without footer or summary (recorder killed, file truncated), scans
records up to the last complete one and rebuilds the chunk index, so every
complete chunk stays readable.
"""
from __future__ import annotations

import os
import struct
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from rosbags.interfaces import Connection, ConnectionExtRosbag2
from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.storage_mcap import (MAXSIZE, Channel, ChunkInfo, McapReader, Schema, Statistics,
                                          decompress, get_msgdef, get_qos)

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the interpreter
    from backports import zstd

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_MESSAGE_INDEX, OP_CHUNK_INDEX = range(1, 9)
OP_STATISTICS, OP_METADATA, OP_METADATA_INDEX, OP_SUMMARY_OFFSET, OP_DATA_END = 0x0B, 0x0C, 0x0D, 0x0E, 0x0F

_RECORD = struct.Struct("<BQ")
_MESSAGE_HEADER = struct.Struct("<BQHIQQ")   # opcode, length, channel, sequence, log_time, publish_time
_CHUNK_HEADER = struct.Struct("<QQQI")       # start, end, uncompressed size, uncompressed crc


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<I", len(data)) + data


def _string_map(mapping: dict[str, str]) -> bytes:
    body = b"".join(_string(k) + _string(v) for k, v in mapping.items())
    return struct.pack("<I", len(body)) + body


def _record(opcode: int, body: bytes) -> bytes:
    return _RECORD.pack(opcode, len(body)) + body


class McapWriteError(RuntimeError):
    pass


class McapFileWriter:
    """Writes one MCAP file; complete chunks reach the disk while recording."""

    def __init__(self, path: str | Path, compression: str = "", compression_level: int = 1,
                 chunk_size: int = 4 << 20, chunk_interval_s: float = 1.0, sync_interval_s: float = 1.0,
                 library: str = "dexterity_ros"):
        if compression not in ("", "zstd"):
            raise McapWriteError(f"unsupported MCAP chunk compression '{compression}' (use '' or 'zstd')")
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "xb")   # never overwrite
        self.compression = compression
        self.compression_level = compression_level
        self.chunk_size = int(chunk_size)
        self.chunk_interval_s = float(chunk_interval_s)
        self.sync_interval_s = float(sync_interval_s)
        self._position = 0
        self._crc = 0          # running CRC-32 of the section being written (data, then summary)
        self._write(MAGIC + _record(OP_HEADER, _string("ros2") + _string(library)))
        self._schemas: dict[int, bytes] = {}
        self._channels: dict[int, bytes] = {}
        self._chunk_indexes: list[bytes] = []
        self._channel_counts: dict[int, int] = defaultdict(int)
        self.message_count = 0
        self.start_ns = MAXSIZE
        self.end_ns = 0
        self._new_chunk()
        self._last_sync = time.monotonic()

    # ------------------------------------------------------------- records
    def add_schema(self, schema_id: int, name: str, encoding: str, data: str) -> None:
        if schema_id in self._schemas:
            return
        body = struct.pack("<H", schema_id) + _string(name) + _string(encoding) + _string(data)
        self._schemas[schema_id] = body
        self._write(_record(OP_SCHEMA, body))

    def add_channel(self, channel_id: int, schema_id: int, topic: str, message_encoding: str,
                    metadata: dict[str, str]) -> None:
        if channel_id in self._channels:
            return
        body = struct.pack("<HH", channel_id, schema_id) + _string(topic) + _string(message_encoding) \
            + _string_map(metadata)
        self._channels[channel_id] = body
        self._write(_record(OP_CHANNEL, body))

    def write(self, channel_id: int, log_time: int, data: bytes | memoryview, publish_time: int | None = None,
              sequence: int = 0) -> None:
        if channel_id not in self._channels:
            raise McapWriteError(f"channel {channel_id} was not added")
        chunk = self._chunk
        self._chunk_messages[channel_id].append((log_time, len(chunk)))
        chunk += _MESSAGE_HEADER.pack(OP_MESSAGE, 22 + len(data), channel_id, sequence & 0xFFFFFFFF, log_time,
                                      log_time if publish_time is None else publish_time)
        chunk += data
        if log_time < self._chunk_start:
            self._chunk_start = log_time
        if log_time > self._chunk_end:
            self._chunk_end = log_time
        self._channel_counts[channel_id] += 1
        self.message_count += 1
        if len(chunk) >= self.chunk_size:
            self.flush_chunk()

    def tick(self) -> None:
        """Call periodically: closes an old chunk and fsyncs, bounding what a crash can lose."""
        now = time.monotonic()
        if self._chunk and now - self._chunk_opened >= self.chunk_interval_s:
            self.flush_chunk()
        if now - self._last_sync >= self.sync_interval_s:
            self.sync()

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._last_sync = time.monotonic()

    @property
    def size(self) -> int:
        """Bytes in the file plus the open chunk (what the file will hold)."""
        return self._position + len(self._chunk)

    @property
    def pending_bytes(self) -> int:
        return len(self._chunk)

    def _write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._position += len(data)
        self._crc = zlib.crc32(data, self._crc)

    def _new_chunk(self) -> None:
        self._chunk = bytearray()
        self._chunk_messages: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self._chunk_start = MAXSIZE
        self._chunk_end = 0
        self._chunk_opened = time.monotonic()

    def flush_chunk(self) -> None:
        """Write the open chunk and its message indexes, and hand them to the OS."""
        if not self._chunk:
            self._chunk_opened = time.monotonic()
            return
        raw = self._chunk
        crc = zlib.crc32(raw)
        data = zstd.compress(bytes(raw), level=self.compression_level) if self.compression else raw
        chunk_body_header = (_CHUNK_HEADER.pack(self._chunk_start, self._chunk_end, len(raw), crc)
                             + _string(self.compression) + struct.pack("<Q", len(data)))
        chunk_start = self._position
        self._write(_RECORD.pack(OP_CHUNK, len(chunk_body_header) + len(data)) + chunk_body_header)
        self._write(data)
        chunk_length = self._position - chunk_start
        index_offsets = []
        indexes = bytearray()
        for channel_id, entries in self._chunk_messages.items():
            index_offsets.append((channel_id, self._position + len(indexes)))
            flat = [v for entry in entries for v in entry]
            body = struct.pack("<HI", channel_id, 16 * len(entries)) + struct.pack(f"<{len(flat)}Q", *flat)
            indexes += _record(OP_MESSAGE_INDEX, body)
        self._write(indexes)
        offsets = b"".join(struct.pack("<HQ", c, o) for c, o in index_offsets)
        self._chunk_indexes.append(
            struct.pack("<QQQQ", self._chunk_start, self._chunk_end, chunk_start, chunk_length)
            + struct.pack("<I", len(offsets)) + offsets + struct.pack("<Q", len(indexes))
            + _string(self.compression) + struct.pack("<QQ", len(data), len(raw)))
        self.start_ns = min(self.start_ns, self._chunk_start)
        self.end_ns = max(self.end_ns, self._chunk_end)
        self._file.flush()
        self._new_chunk()

    def close(self, metadata: dict[str, dict[str, str]] | None = None) -> None:
        """Flush the last chunk and write metadata records, summary and footer."""
        if self._file.closed:
            return
        self.flush_chunk()
        metadata_indexes = []
        for name, values in (metadata or {}).items():
            start = self._position
            self._write(_record(OP_METADATA, _string(name) + _string_map(values)))
            metadata_indexes.append(struct.pack("<QQ", start, self._position - start) + _string(name))
        self._write(_record(OP_DATA_END, struct.pack("<I", self._crc)))   # CRC of magic .. last data record
        summary_start = self._position
        self._crc = 0
        groups: list[tuple[int, int, int]] = []

        def group(opcode: int, bodies) -> None:
            start = self._position
            for body in bodies:
                self._write(_record(opcode, body))
            if self._position > start:
                groups.append((opcode, start, self._position - start))

        group(OP_SCHEMA, self._schemas.values())
        group(OP_CHANNEL, self._channels.values())
        counts = b"".join(struct.pack("<HQ", c, n) for c, n in sorted(self._channel_counts.items()))
        statistics = struct.pack("<QHIIIIQQ", self.message_count, len(self._schemas), len(self._channels), 0,
                                 len(metadata_indexes), len(self._chunk_indexes),
                                 self.start_ns if self.message_count else 0, self.end_ns) \
            + struct.pack("<I", len(counts)) + counts
        group(OP_STATISTICS, [statistics])
        group(OP_CHUNK_INDEX, self._chunk_indexes)
        group(OP_METADATA_INDEX, metadata_indexes)
        summary_offset_start = self._position
        for opcode, start, length in groups:
            self._write(_record(OP_SUMMARY_OFFSET, struct.pack("<BQQ", opcode, start, length)))
        if self._position == summary_start:
            summary_start = 0                   # no summary section
        footer = _RECORD.pack(OP_FOOTER, 20) + struct.pack("<QQ", summary_start, summary_offset_start)
        # summary CRC: summary and summary-offset records, then the footer up to the CRC field
        self._write(footer + struct.pack("<I", zlib.crc32(footer, self._crc)) + MAGIC)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        """Close without summary (what a crash leaves; the recovering reader still reads it)."""
        if not self._file.closed:
            self.flush_chunk()
            self._file.close()


# ------------------------------------------------------------------ reading
@dataclass
class ScanResult:
    data_end: int          # offset after the last complete data-section record
    size: int
    has_footer: bool
    problem: str           # why the file needed a scan ('' when it did not)


class _BoundedFile:
    """A read-only file whose ``read(n)`` never asks for more than the file holds.

    A damaged length field can claim petabytes; a plain ``read(n)`` would try to allocate them.
    """

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._size = os.fstat(raw.fileno()).st_size

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self._raw.read()
        return self._raw.read(max(0, min(n, self._size - self._raw.tell())))

    def __getattr__(self, name):
        return getattr(self._raw, name)


# What parsing a damaged file can raise (rosbags' reader, struct, the decompressors); opening or reading
# turns these into one clear error instead of a traceback.
DAMAGE_ERRORS = (ReaderError, OSError, ValueError, struct.error, KeyError, IndexError, TypeError, EOFError,
                 MemoryError, OverflowError, RuntimeError, zstd.ZstdError)


class RecoveringMcapReader(McapReader):
    """rosbags' MCAP reader that also reads files without summary/footer (killed or truncated)."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.recovery: str = ""     # non-empty: what was wrong and what could be read
        self.lost_bytes = 0

    def _open(self) -> None:
        if not isinstance(self.bio, _BoundedFile):
            self.bio = _BoundedFile(self.bio)
        try:
            super()._open()
            self._check_summary_crc()
            return
        except DAMAGE_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
        self._reset()
        self._recover(reason)

    def _check_summary_crc(self) -> None:
        """The summary (what rosbags trusts for schemas, channels, chunk index) against its footer CRC.

        Cheap (the summary is small), so every open checks it; a damaged summary is then rebuilt by
        scanning the data section, as for a file without one. Chunk CRCs are checked as chunks are read;
        the data-section CRC needs the whole file (`info --verify`).
        """
        bio = self.bio
        size = os.fstat(bio.fileno()).st_size
        footer_start = size - 8 - 29
        bio.seek(footer_start)
        footer = bio.read(29)
        summary_start, _, stored = struct.unpack_from("<QQI", footer, 9)
        if stored == 0:
            return
        start = summary_start or footer_start
        if not 0 < start <= footer_start:
            raise ReaderError(f"summary start {summary_start} is outside the file")
        bio.seek(start)
        crc = zlib.crc32(bio.read(footer_start - start))
        if zlib.crc32(footer[:25], crc) != stored:
            raise ReaderError("summary CRC mismatch")

    def _reset(self) -> None:
        self.schemas.clear()
        self.channels.clear()
        self.chunks.clear()
        self.connections.clear()
        self.statistics = None

    def _check_header(self) -> None:
        bio = self.bio
        bio.seek(0)
        magic = bio.read(8)
        if not magic:
            raise ReaderError(f"file {self.path} is empty")
        if magic != MAGIC:
            raise ReaderError(f"{self.path} is not an MCAP file (bad magic)")
        head = bio.read(9)
        if len(head) < 9 or head[0] != OP_HEADER:
            raise ReaderError(f"{self.path}: MCAP header record is missing or truncated")
        opcode, length = _RECORD.unpack(head)
        body = bio.read(length)
        if len(body) != length:
            raise ReaderError(f"{self.path}: MCAP header record is truncated")
        profile_length = struct.unpack_from("<I", body)[0]
        if body[4:4 + profile_length] != b"ros2":
            raise ReaderError(f"{self.path}: MCAP profile is not 'ros2' (not a rosbag2 file)")
        self.data_start = bio.tell()

    def _recover(self, reason: str) -> None:
        """Scan the data section record by record up to the last complete one."""
        self._check_header()
        bio = self.bio
        size = os.fstat(bio.fileno()).st_size
        position = self.data_start
        counts: dict[int, int] = defaultdict(int)
        start_time, end_time, message_count = MAXSIZE, 0, 0
        top_level_messages = False
        stop_reason = "no footer"
        while True:
            bio.seek(position)
            head = bio.read(9)
            if len(head) < 9:
                stop_reason = "file ends without footer" if len(head) == 0 else "file ends inside a record"
                break
            opcode, length = _RECORD.unpack(head)
            if opcode in (OP_FOOTER, OP_DATA_END):
                stop_reason = "summary unreadable"
                break
            if position + 9 + length > size:
                stop_reason = "file ends inside a record"
                break
            if opcode in (OP_SCHEMA, OP_CHANNEL):
                try:
                    self._parse_definition(opcode, BytesIO(bio.read(length)))
                except DAMAGE_ERRORS as exc:
                    stop_reason = f"damaged {'schema' if opcode == OP_SCHEMA else 'channel'} record at byte " \
                                  f"{position} ({exc})"
                    break
            elif opcode == OP_MESSAGE:
                body = bio.read(22)
                channel_id, _, log_time, _ = struct.unpack("<HIQQ", body)
                counts[channel_id] += 1
                message_count += 1
                start_time, end_time = min(start_time, log_time), max(end_time, log_time)
                top_level_messages = True
            elif opcode == OP_CHUNK:
                try:
                    chunk = self._scan_chunk(position, bio.read(length))
                except DAMAGE_ERRORS as exc:
                    stop_reason = f"damaged chunk at byte {position} ({exc})"
                    break
                if chunk is not None:
                    self.chunks.append(chunk)
                    for channel_id, n in chunk.channel_count.items():
                        counts[channel_id] += n
                        message_count += n
                    start_time = min(start_time, chunk.message_start_time)
                    end_time = max(end_time, chunk.message_end_time)
            position += 9 + length
        self.data_end = position
        self.lost_bytes = size - position
        if top_level_messages:
            self.chunks.clear()   # rosbags then reads the data section linearly
        self.statistics = Statistics(message_count, len(self.schemas), len(self.channels), 0, 0, len(self.chunks),
                                     start_time, end_time, dict(counts))
        self.connections[:] = [c._replace(msgcount=counts.get(c.id, 0)) for c in self.connections]
        self.metadata = self.metadata._replace(
            duration=end_time - start_time + 1 if message_count else 0,
            start_time=start_time if message_count else MAXSIZE,
            end_time=end_time + 1 if message_count else 0,
            message_count=message_count)
        self.recovery = (f"{Path(self.path).name}: incomplete MCAP (summary unreadable: {reason.rstrip('.')}; "
                         f"{stop_reason}); recovered "
                         f"{message_count} messages in {len(self.chunks)} complete chunks"
                         + (f", {self.lost_bytes} trailing bytes unreadable" if self.lost_bytes else ""))

    def _parse_definition(self, opcode: int, rec: BytesIO) -> None:
        from rosbags.rosbag2.storage_mcap import read_bytes, read_string
        if opcode == OP_SCHEMA:
            (key,) = struct.unpack("<H", rec.read(2))
            self.schemas[key] = Schema(key, read_string(rec), read_string(rec), read_string(rec))
            return
        key, schema_id = struct.unpack("<HH", rec.read(4))
        schema = self.schemas.get(schema_id)
        channel = Channel(key, schema.name if schema else "__schemaless__", read_string(rec), read_string(rec),
                          read_bytes(rec))
        self.channels[key] = channel
        if all(c.id != key for c in self.connections):
            self.connections.append(Connection(key, channel.topic, channel.schema, get_msgdef(schema), "", 0,
                                               ConnectionExtRosbag2(channel.message_encoding,
                                                                    get_qos(channel.metadata)), self))

    def _scan_chunk(self, position: int, body: bytes) -> ChunkInfo | None:
        start, end, uncompressed_size, crc = _CHUNK_HEADER.unpack_from(body)
        compression_length = struct.unpack_from("<I", body, 28)[0]
        compression = body[32:32 + compression_length].decode()
        offset = 32 + compression_length
        (compressed_size,) = struct.unpack_from("<Q", body, offset)
        data = body[offset + 8:offset + 8 + compressed_size]
        if len(data) != compressed_size:
            raise ReaderError("chunk data shorter than its header says")
        raw = decompress(data, compression, uncompressed_size, crc)
        counts: dict[int, int] = defaultdict(int)
        inner = 0
        while inner < len(raw):
            opcode, length = _RECORD.unpack_from(raw, inner)
            if opcode == OP_MESSAGE:
                counts[struct.unpack_from("<H", raw, inner + 9)[0]] += 1
            elif opcode in (OP_SCHEMA, OP_CHANNEL):
                self._parse_definition(opcode, BytesIO(raw[inner + 9:inner + 9 + length]))
            inner += 9 + length
        if not counts:
            return None
        return ChunkInfo(start, end, position, 9 + len(body), {}, 0, compression, compressed_size,
                         uncompressed_size, dict(counts))

    def channel_time_ranges(self) -> dict[int, tuple[int, int]]:
        """First and last log time of each channel (from message indexes where present)."""
        ranges: dict[int, tuple[int, int]] = {}

        def note(channel_id: int, first: int, last: int) -> None:
            old = ranges.get(channel_id)
            ranges[channel_id] = (first, last) if old is None else (min(old[0], first), max(old[1], last))

        bio = self.bio
        for chunk in self.chunks:
            if chunk.message_index_offsets:
                for channel_id, offset in chunk.message_index_offsets.items():
                    bio.seek(offset + 9 + 2)
                    (length,) = struct.unpack("<I", bio.read(4))
                    entries = struct.unpack(f"<{length // 8}Q", bio.read(length))
                    if entries:
                        times = entries[0::2]
                        note(channel_id, min(times), max(times))
                continue
            bio.seek(chunk.chunk_start_offset + 9)
            body = bio.read(chunk.chunk_length - 9)
            header = _CHUNK_HEADER.unpack_from(body)
            offset = 32 + len(chunk.compression)
            raw = decompress(body[offset + 8:offset + 8 + chunk.compressed_size], chunk.compression,
                             chunk.uncompressed_size, header[3])
            inner = 0
            while inner < len(raw):
                opcode, length = _RECORD.unpack_from(raw, inner)
                if opcode == OP_MESSAGE:
                    channel_id, _, log_time = struct.unpack_from("<HIQ", raw, inner + 9)
                    note(channel_id, log_time, log_time)
                inner += 9 + length
        if not self.chunks:
            for connection, stamp, _ in self.messages_scan(self.connections):
                note(connection.id, stamp, stamp)
        return ranges

