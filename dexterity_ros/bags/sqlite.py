"""sqlite3 storage for rosbag2 (schema version 4, as rosbag2_storage_sqlite3 writes since Iron).

The writer uses WAL journaling and commits every ``chunk_interval_s`` so a
killed recorder leaves every committed message readable; closing folds the
WAL back into the .db3 so the file stands alone. The reader opens the
database read-only but *not* immutable, so it also sees messages still in
the WAL of an interrupted recording (rosbags' reader opens immutable and
would miss them).
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rosbags.interfaces import Qos
from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.metadata import parse_qos

SCHEMA_VERSION = 4
_SCHEMA = """
CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
                    serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL,
                    type_description_hash TEXT NOT NULL);
CREATE TABLE message_definitions(id INTEGER PRIMARY KEY, topic_type TEXT NOT NULL, encoding TEXT NOT NULL,
                                 encoded_message_definition TEXT NOT NULL, type_description_hash TEXT NOT NULL);
CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, timestamp INTEGER NOT NULL,
                      data BLOB NOT NULL);
CREATE INDEX timestamp_idx ON messages (timestamp ASC);
"""


class Sqlite3FileWriter:
    """Writes one rosbag2 .db3 file with periodic commits."""

    def __init__(self, path: str | Path, chunk_size: int = 4 << 20, chunk_interval_s: float = 1.0,
                 ros_distro: str = "kilted"):
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists")
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT INTO schema(schema_version, ros_distro) VALUES (?, ?)", (SCHEMA_VERSION, ros_distro))
        self.chunk_size = int(chunk_size)
        self.chunk_interval_s = float(chunk_interval_s)
        self._pending: list[tuple[int, int, bytes]] = []
        self._pending_bytes = 0
        self._opened = time.monotonic()
        self._types: set[str] = set()
        self._written_bytes = 0
        self.message_count = 0

    def add_definition(self, type_name: str, encoding: str, definition: str, type_hash: str) -> None:
        if type_name in self._types:
            return
        self._types.add(type_name)
        self._db.execute("INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, "
                         "type_description_hash) VALUES (?, ?, ?, ?)", (type_name, encoding, definition, type_hash))

    def add_topic(self, topic_id: int, name: str, type_name: str, qos_yaml: str, type_hash: str,
                  serialization_format: str = "cdr") -> None:
        self._db.execute("INSERT INTO topics VALUES (?, ?, ?, ?, ?, ?)",
                         (topic_id, name, type_name, serialization_format, qos_yaml, type_hash))

    def write(self, topic_id: int, timestamp: int, data: bytes) -> None:
        self._pending.append((topic_id, timestamp, data))
        self._pending_bytes += len(data)
        self.message_count += 1
        if self._pending_bytes >= self.chunk_size:
            self.flush_chunk()

    def flush_chunk(self) -> None:
        """Commit pending messages in one transaction."""
        if self._pending:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)", self._pending)
            self._db.execute("COMMIT")
            self._written_bytes += self._pending_bytes
        self._pending = []
        self._pending_bytes = 0
        self._opened = time.monotonic()

    def tick(self) -> None:
        if self._pending and time.monotonic() - self._opened >= self.chunk_interval_s:
            self.flush_chunk()

    def sync(self) -> None:
        self.flush_chunk()

    @property
    def size(self) -> int:
        return self._written_bytes + self._pending_bytes

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def close(self, metadata_yaml: str = "", metadata_version: int = 9) -> None:
        self.flush_chunk()
        if metadata_yaml:
            self._db.execute("INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)",
                             (metadata_version, metadata_yaml))
        self._db.execute("PRAGMA journal_mode=DELETE")   # checkpoint: the .db3 stands alone
        self._db.close()

    def abort(self) -> None:
        self.flush_chunk()
        self._db.close()


@dataclass
class SqliteTopic:
    id: int
    name: str
    type_name: str
    serialization_format: str
    qos: list[Qos]
    type_hash: str
    count: int
    definition: tuple[str, str]    # (encoding, text); ('', '') when the file has none


class Sqlite3FileReader:
    """Reads one rosbag2 .db3 (schema versions 1..4), including an unfinished WAL."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.recovery = ""
        try:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"messages", "topics"} <= tables:
                raise ReaderError(f"{self.path} lacks the rosbag2 tables 'messages' and 'topics'")
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(topics)")}
            definitions: dict[str, tuple[str, str]] = {}
            if "message_definitions" in tables:
                for type_name, encoding, text in self._db.execute(
                        "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions"):
                    definitions[type_name] = (encoding, text)
            qos_column = "offered_qos_profiles" if "offered_qos_profiles" in columns else "''"
            hash_column = "type_description_hash" if "type_description_hash" in columns else "''"
            counts = dict(self._db.execute("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id"))
            self.topics: list[SqliteTopic] = []
            for topic_id, name, type_name, fmt, qos_text, type_hash in self._db.execute(
                    f"SELECT id, name, type, serialization_format, {qos_column}, {hash_column} FROM topics "
                    "ORDER BY id"):
                self.topics.append(SqliteTopic(topic_id, name, type_name, fmt, parse_qos(qos_text or []),
                                               type_hash or "", counts.get(topic_id, 0),
                                               definitions.get(type_name, ("", ""))))
            first, last, total = self._db.execute(
                "SELECT MIN(timestamp), MAX(timestamp), COUNT(*) FROM messages").fetchone()
            self.start_ns = first if first is not None else 0
            self.end_ns = last if last is not None else 0
            self.count = total
            if self.path.with_name(self.path.name + "-wal").exists():
                self.recovery = (f"{self.path.name}: the recording was not closed (write-ahead log present); "
                                 f"read {total} committed messages")
        except sqlite3.DatabaseError as exc:
            raise ReaderError(f"cannot read sqlite3 storage {self.path}: {exc}") from None

    def time_ranges(self) -> dict[int, tuple[int, int]]:
        return {t: (a, b) for t, a, b in self._db.execute(
            "SELECT topic_id, MIN(timestamp), MAX(timestamp) FROM messages GROUP BY topic_id")}

    def messages(self, topic_ids: list[int], start: int | None = None,
                 stop: int | None = None) -> Iterator[tuple[int, int, bytes]]:
        if not topic_ids:
            return
        query = (f"SELECT topic_id, timestamp, data FROM messages WHERE topic_id IN "
                 f"({','.join('?' * len(topic_ids))}) AND timestamp >= ? AND timestamp < ? ORDER BY timestamp, id")
        args = [*topic_ids, -(2**63) if start is None else start, 2**63 - 1 if stop is None else stop]
        try:
            for row in self._db.execute(query, args):
                yield row
        except sqlite3.DatabaseError as exc:
            raise ReaderError(f"cannot read sqlite3 storage {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()
