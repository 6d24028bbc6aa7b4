"""sqlite3 storage for rosbag2 (schema version 4, as rosbag2_storage_sqlite3 writes since Iron).

The writer uses WAL journaling and commits every ``chunk_interval_s`` so a
killed recorder leaves every committed message readable; closing folds the
WAL back into the .db3 so the file stands alone.

The reader never writes into the bag directory. Even a read-only sqlite
connection creates ``-wal``/``-shm`` files beside a WAL-mode database (as
``ros2 bag`` writes them) and leaves them there, so how a file is opened
depends on what is beside it (see :func:`open_mode`):

* nothing pending (no ``-wal``/``-journal``, or empty ones): ``immutable=1``,
  sqlite creates, locks and changes nothing;
* another process has the database open (a recording in progress, seen by
  its sqlite locks): read-only and shared, so the writer's newest commits
  are seen and it is not disturbed (sqlite keeps its shared index in the
  writer's ``-shm``);
* a non-empty ``-wal`` or ``-journal`` that nobody holds (a killed
  recording): the database and its log are copied to a private temporary
  directory and read there, so committed messages still in the log are read
  (``immutable=1`` would ignore them) and the bag stays byte for byte as it
  was. ``dexterity-ros reindex`` folds the log into the database.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
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


# sqlite's unix locking: every connection holds a read lock on one byte of the database file's lock
# range (PENDING_BYTE .. +512) while it reads or writes, and WAL connections one on the -shm's
# "dead man switch" byte (offset 128) for as long as they are open.
_DB_LOCK_RANGE = (0x40000000, 512)
_SHM_DMS_BYTE = (128, 1)


def _locked(path: Path, start: int, length: int) -> bool | None:
    """Does any process (this one included) hold a lock on bytes ``start``.. of ``path``? None: cannot tell.

    Read from /proc/locks, never by opening the file: closing any descriptor of a file drops every POSIX
    lock this process holds on it, which would pull the locks from under a sqlite connection of ours.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        return None
    device = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    last = start + length - 1
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields or len(fields) < 8:       # a waiter, not a holder
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) != device:
                continue
            first, end = int(fields[6]), fields[7]
        except ValueError:
            continue
        if first <= last and (end == "EOF" or int(end) >= start):
            return True
    return False


def in_use(path: Path) -> bool | None:
    """Is the database open in some sqlite connection now (a recording in progress)? None: cannot tell."""
    path = Path(path)
    answers = [_locked(path, *_DB_LOCK_RANGE), _locked(path.with_name(path.name + "-shm"), *_SHM_DMS_BYTE)]
    if True in answers:
        return True
    return None if None in answers else False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def open_mode(path: Path) -> tuple[str, int, int]:
    """How to open ``path`` without writing beside it: ('immutable' | 'shared' | 'copy', wal bytes, journal bytes)."""
    wal = _size(path.with_name(path.name + "-wal"))
    journal = _size(path.with_name(path.name + "-journal"))
    live = in_use(path)
    if live:
        return "shared", wal, journal
    if wal or journal:
        # a log that nobody holds: a killed writer. If we cannot tell, share as sqlite would.
        return ("copy" if live is False else "shared"), wal, journal
    return "immutable", wal, journal


class Sqlite3FileReader:
    """Reads one rosbag2 .db3 (schema versions 1..4), including an unfinished WAL; writes nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.recovery = ""
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        try:
            self.mode, wal_bytes, journal_bytes = open_mode(self.path)
            self._db = self._connect()
            self._load()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ReaderError(f"cannot read sqlite3 storage {self.path}: {exc}") from None
        except OSError as exc:
            self.close()
            raise ReaderError(f"cannot read sqlite3 storage {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise
        name = self.path.name
        if self.mode == "shared":
            self.recovery = (f"{name}: the database is open in another connection (a recording in progress?): "
                             f"read the {self.count} messages committed so far")
        elif self.mode == "copy" and wal_bytes:
            self.recovery = (f"{name}: a {wal_bytes}-byte write-ahead log is left beside it (the recording was not "
                             "closed, or another reader had the file open as it closed): read "
                             f"{self.count} committed messages from a private copy, the bag is unchanged; "
                             "`dexterity-ros reindex` folds the log into the database")
        elif self.mode == "copy":
            self.recovery = (f"{name}: a transaction was interrupted (a {journal_bytes}-byte rollback journal is "
                             f"left beside it): read the {self.count} messages committed before it from a private "
                             "copy, the bag is unchanged; `dexterity-ros reindex` rolls it back")

    def _connect(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri()      # percent-encodes '?', '#', '%' in the path
        if self.mode == "immutable":
            return sqlite3.connect(uri + "?immutable=1", uri=True, check_same_thread=False)
        if self.mode == "shared":
            return sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="dexterity_db3_")
        copy = Path(self._tmpdir.name) / self.path.name
        for suffix in ("", "-wal", "-journal"):
            source = self.path.with_name(self.path.name + suffix)
            if suffix == "" or source.exists():
                shutil.copyfile(source, copy.with_name(copy.name + suffix))
        # a private read-write connection: sqlite applies the WAL / rolls the journal back in the copy
        return sqlite3.connect(str(copy), check_same_thread=False)

    def _load(self) -> None:
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

    def integrity_problems(self) -> list[str]:
        """sqlite's own structural check (pages, b-trees, indexes); [] when sound. sqlite stores no checksums."""
        try:
            rows = [r[0] for r in self._db.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as exc:
            return [f"{self.path.name}: {exc}"]
        return [] if rows == ["ok"] else [f"{self.path.name}: {r}" for r in rows]

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
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
