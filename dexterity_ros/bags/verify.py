"""`dexterity-ros info --verify`: check every checksum a storage file carries, and its structure.

MCAP (https://mcap.dev/spec) has three CRC-32s: each chunk's, over its
uncompressed records; the data section's (in the DataEnd record), over every
byte from the leading magic to the last data record; and the summary's (in
the footer), over the summary and summary-offset records and the footer up
to the CRC field. Together with the two magics they cover every byte of a
closed file, so any change to one is found. A CRC of 0 means the writer
stored none (rosbags' MCAP writer, for one); that part is then reported as
not verifiable rather than as sound. The file is read record by record with
every length checked against the file size, so a damaged file gives a
finding, never an exception.

sqlite3 stores no checksums: ``PRAGMA integrity_check`` finds structural
damage (pages, b-trees, indexes) but not a changed byte inside a message.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .mcap import (_CHUNK_HEADER, _RECORD, MAGIC, OP_CHANNEL, OP_CHUNK, OP_DATA_END, OP_FOOTER, OP_HEADER,
                   OP_MESSAGE, OP_SCHEMA)

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    from backports import zstd

_FOOTER_LENGTH = 9 + 20
_PIECE = 1 << 20
_MAX_CHUNK = 1 << 31      # a chunk record claiming more is damage, not data


@dataclass
class FileCheck:
    """What verifying one storage file found."""

    name: str
    problems: list[str] = field(default_factory=list)       # damage found (the file is corrupt)
    unverifiable: list[str] = field(default_factory=list)   # parts that carry no checksum
    checked: list[str] = field(default_factory=list)        # what was verified and matched

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.problems:
            return f"{self.name}: CORRUPT: " + "; ".join(self.problems)
        text = f"{self.name}: ok (" + ", ".join(self.checked) + ")"
        if self.unverifiable:
            text += "; not verifiable: " + "; ".join(self.unverifiable)
        return text


def _crc_range(f: BinaryIO, start: int, length: int, crc: int = 0) -> int:
    f.seek(start)
    while length > 0:
        piece = f.read(min(length, _PIECE))
        if not piece:
            break
        crc = zlib.crc32(piece, crc)
        length -= len(piece)
    return crc


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":      # bounded: a damaged frame header must not make us allocate its claim
        return zstd.ZstdDecompressor().decompress(data, max_length=size + 1)
    if compression == "lz4":
        import lz4.frame
        return lz4.frame.decompress(data)
    raise ValueError(f"unknown chunk compression '{compression}'")


def _check_chunk(body: bytes, position: int, check: FileCheck, counts: dict[str, int]) -> None:
    where = f"chunk at byte {position}"
    if len(body) < _CHUNK_HEADER.size + 4:
        check.problems.append(f"{where}: record too short for a chunk header")
        return
    _, _, uncompressed_size, crc = _CHUNK_HEADER.unpack_from(body)
    (name_length,) = struct.unpack_from("<I", body, 28)
    offset = 32 + name_length
    if offset + 8 > len(body):
        check.problems.append(f"{where}: compression name runs past the record")
        return
    try:
        compression = body[32:offset].decode()
    except UnicodeDecodeError:
        check.problems.append(f"{where}: compression name is not text")
        return
    (compressed_size,) = struct.unpack_from("<Q", body, offset)
    if offset + 8 + compressed_size != len(body):
        check.problems.append(f"{where}: records size {compressed_size} does not fill the record")
        return
    if uncompressed_size > _MAX_CHUNK:
        check.problems.append(f"{where}: implausible uncompressed size {uncompressed_size}")
        return
    try:
        raw = _decompress(body[offset + 8:], compression, uncompressed_size)
    except Exception as exc:    # zstd/lz4 raise their own types on damaged frames
        check.problems.append(f"{where}: cannot decompress {compression} ({exc})")
        return
    if len(raw) != uncompressed_size:
        check.problems.append(f"{where}: {len(raw)} bytes uncompressed, the header says {uncompressed_size}")
        return
    if crc == 0:
        counts["without_crc"] += 1
    elif zlib.crc32(raw) != crc:
        check.problems.append(f"{where}: CRC mismatch (stored {crc:08x}, computed {zlib.crc32(raw):08x})")
        return
    inner = 0
    while inner < len(raw):
        if inner + 9 > len(raw):
            check.problems.append(f"{where}: a record header is cut off inside the chunk")
            return
        opcode, length = _RECORD.unpack_from(raw, inner)
        if opcode not in (OP_SCHEMA, OP_CHANNEL, OP_MESSAGE) or inner + 9 + length > len(raw):
            check.problems.append(f"{where}: malformed record (opcode 0x{opcode:02x}, {length} bytes) "
                                  f"at offset {inner} inside the chunk")
            return
        if opcode == OP_MESSAGE:
            counts["messages"] += 1
        inner += 9 + length
    counts["chunks"] += 1


def verify_mcap(path: Path, name: str | None = None) -> FileCheck:
    """Check magics, record structure and every CRC of one MCAP file."""
    path = Path(path)
    check = FileCheck(name or path.name)
    counts = {"chunks": 0, "without_crc": 0, "messages": 0}
    try:
        f = open(path, "rb")
    except OSError as exc:
        check.problems.append(f"cannot open: {exc.strerror or exc}")
        return check
    with f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(0)
        if f.read(8) != MAGIC:
            check.problems.append("bad magic at the start (not an MCAP file, or damaged)")
            return check
        footer_start = size - 8 - _FOOTER_LENGTH
        closed = footer_start >= 8 and _tail_magic(f, size)
        crc = zlib.crc32(MAGIC)
        position = 8
        data_end = None
        first = True
        tail = 0
        while True:
            f.seek(position)
            head = f.read(9)
            if len(head) < 9:
                if closed:
                    check.problems.append(f"the data section runs to the end of the file (byte {position})")
                elif head:
                    tail = size - position
                break
            opcode, length = _RECORD.unpack(head)
            if first != (opcode == OP_HEADER):
                check.problems.append("the first record is not an MCAP header" if first
                                      else f"unexpected header record at byte {position} inside the data section")
                break
            first = False
            if position + 9 + length > size:
                if closed:
                    check.problems.append(f"record at byte {position} (opcode 0x{opcode:02x}) claims {length} "
                                          "bytes, past the end of the file")
                else:
                    tail = size - position
                break
            if opcode == OP_DATA_END:
                body = f.read(length)
                if length < 4:
                    check.problems.append(f"DataEnd record at byte {position} is too short")
                    break
                (stored,) = struct.unpack_from("<I", body)
                if stored == 0:
                    check.unverifiable.append("no data-section CRC")
                elif stored != crc:
                    check.problems.append(f"data-section CRC mismatch (stored {stored:08x}, computed {crc:08x})")
                else:
                    check.checked.append("data-section CRC")
                data_end = position + 9 + length
                break
            if opcode == OP_FOOTER:
                check.problems.append(f"unexpected footer record at byte {position} inside the data section")
                break
            crc = zlib.crc32(head, crc)
            if opcode == OP_CHUNK:
                if length > _MAX_CHUNK:
                    check.problems.append(f"chunk at byte {position} claims an implausible {length} bytes")
                    break
                body = f.read(length)
                crc = zlib.crc32(body, crc)
                _check_chunk(body, position, check, counts)
                if check.problems:
                    break
            else:
                crc = _crc_range(f, position + 9, length, crc)
            position += 9 + length
        if counts["chunks"]:
            if counts["without_crc"] == counts["chunks"]:
                check.unverifiable.append(f"none of the {counts['chunks']} chunks has a CRC")
            else:
                check.checked.append(f"{counts['chunks'] - counts['without_crc']} chunk CRCs")
                if counts["without_crc"]:
                    check.unverifiable.append(f"{counts['without_crc']} chunks without CRC")
        if check.problems:
            return check
        if data_end is None:
            check.unverifiable.append("no DataEnd, summary or footer (the recording was not closed"
                                      + (f"; its last {tail} bytes are an incomplete record" if tail else "")
                                      + "; `dexterity-ros reindex` completes it)")
            return check
        _check_summary(f, size, data_end, check)
    return check


def _tail_magic(f: BinaryIO, size: int) -> bool:
    f.seek(size - 8)
    return f.read(8) == MAGIC


def _check_summary(f: BinaryIO, size: int, data_end: int, check: FileCheck) -> None:
    footer_start = size - 8 - _FOOTER_LENGTH
    if footer_start < data_end:
        check.problems.append("the file ends before its footer")
        return
    if not _tail_magic(f, size):
        check.problems.append("bad magic at the end")
        return
    f.seek(footer_start)
    footer = f.read(_FOOTER_LENGTH)
    opcode, length = _RECORD.unpack_from(footer)
    summary_start, summary_offset_start, stored = struct.unpack_from("<QQI", footer, 9)
    if opcode != OP_FOOTER or length != 20:
        check.problems.append(f"no footer record before the closing magic (opcode 0x{opcode:02x}, length {length})")
        return
    start = summary_start or footer_start
    if start != data_end:
        check.problems.append(f"the summary starts at byte {summary_start}, the data section ends at {data_end}")
        return
    if summary_offset_start and not summary_start <= summary_offset_start <= footer_start:
        check.problems.append(f"summary offsets start at byte {summary_offset_start}, outside the summary")
        return
    position = start
    while position < footer_start:          # the summary records must tile the summary exactly
        f.seek(position)
        opcode, length = _RECORD.unpack(f.read(9))
        if position + 9 + length > footer_start or opcode in (OP_HEADER, OP_FOOTER, OP_DATA_END, OP_CHUNK):
            check.problems.append(f"malformed summary record at byte {position} (opcode 0x{opcode:02x})")
            return
        position += 9 + length
    if stored == 0:
        check.unverifiable.append("no summary CRC")
        return
    computed = zlib.crc32(footer[:9 + 16], _crc_range(f, start, footer_start - start))
    if computed != stored:
        check.problems.append(f"summary CRC mismatch (stored {stored:08x}, computed {computed:08x})")
    else:
        check.checked.append("summary CRC")
