"""Bags for the bag-tool tests, written by ``rosbags`` directly (another rosbag2 writer than ours).

Layouts are deliberately unusual but valid: sqlite3 storage, several
connections on one topic, message-level compression, split files,
receive times out of order, a message type this environment does not have.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from dexterity_ros.ros.messages import serialize

T0 = 1_700_000_000_000_000_000


def qos(reliability: QosReliability, durability: QosDurability = QosDurability.VOLATILE, depth: int = 10) -> Qos:
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, depth, reliability, durability, zero, zero, QosLiveliness.AUTOMATIC, zero,
               False)


RELIABLE = qos(QosReliability.RELIABLE)
BEST_EFFORT = qos(QosReliability.BEST_EFFORT, depth=5)
LATCHED = qos(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, 1)


def joint(i: int) -> bytes:
    return serialize(JointState(name=["a"], position=[float(i)]))


def position(data: bytes) -> float:
    from dexterity_ros.ros.messages import deserialize
    return deserialize(data, "sensor_msgs/msg/JointState").position[0]


def write_unusual_sqlite3(path: Path) -> dict[str, list[tuple[int, float | str]]]:
    """sqlite3, per-message zstd, two connections (QoS differ) on /joints, receive times out of order.

    Returns what each topic holds in receive-time order: (stamp, position or text).
    """
    store = get_typestore(Stores.ROS2_KILTED)
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3)
    writer.set_compression(CompressionMode.MESSAGE, CompressionFormat.ZSTD)
    expected: dict[str, list] = {"/joints": [], "/chatter": []}
    with writer:
        a = writer.add_connection("/joints", "sensor_msgs/msg/JointState", typestore=store,
                                  offered_qos_profiles=[RELIABLE])
        b = writer.add_connection("/joints", "sensor_msgs/msg/JointState", typestore=store,
                                  offered_qos_profiles=[BEST_EFFORT])
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store,
                                        offered_qos_profiles=[LATCHED])
        # written out of receive-time order on purpose
        order = [5, 0, 3, 1, 4, 2, 9, 6, 8, 7]
        for k in order:
            stamp = T0 + k * 50_000_000
            writer.write(a if k % 2 else b, stamp, joint(k))
            expected["/joints"].append((stamp, float(k)))
        for k in (3, 1):
            stamp = T0 + k * 100_000_000 + 1
            writer.write(chatter, stamp, serialize(String(data=f"hello {k}")))
            expected["/chatter"].append((stamp, f"hello {k}"))
    for values in expected.values():
        values.sort()
    return expected


def write_split_mcap(path: Path, parts: int = 3, per_part: int = 20, period_ns: int = 10_000_000) -> int:
    """One bag directory, ``parts`` MCAP files written by rosbags, one hand-written metadata.yaml listing all."""
    store = get_typestore(Stores.ROS2_KILTED)
    path.mkdir(parents=True)
    infos = []
    k = 0
    for part in range(parts):
        tmp = path.parent / f"{path.name}_tmp{part}"
        with Writer(tmp, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
            c = writer.add_connection("/joints", "sensor_msgs/msg/JointState", typestore=store,
                                      offered_qos_profiles=[BEST_EFFORT])
            for _ in range(per_part):
                writer.write(c, T0 + k * period_ns, joint(k))
                k += 1
        info = yaml.safe_load((tmp / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        name = f"{path.name}_{part}.mcap"
        (tmp / f"{tmp.name}.mcap").rename(path / name)
        (tmp / "metadata.yaml").unlink()
        tmp.rmdir()
        info["files"][0]["path"] = name
        infos.append(info)
    merged = dict(infos[0])
    merged["relative_file_paths"] = [i["files"][0]["path"] for i in infos]
    merged["files"] = [i["files"][0] for i in infos]
    merged["message_count"] = sum(i["message_count"] for i in infos)
    merged["topics_with_message_count"][0]["message_count"] = merged["message_count"]
    merged["duration"] = {"nanoseconds": (k - 1) * period_ns}
    (path / "metadata.yaml").write_text(yaml.safe_dump({"rosbag2_bagfile_information": merged}))
    return k


WIDGET_MSG = "std_msgs/Header header\nuint32 serial\nstring label\n"


def write_unknown_type_bag(path: Path, with_known: bool = True) -> None:
    """A bag with acme_msgs/msg/Widget (not installed here) and optionally a normal topic."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(WIDGET_MSG, "acme_msgs/msg/Widget"))
    widget_cls = store.types["acme_msgs/msg/Widget"]
    header_cls = store.types["std_msgs/msg/Header"]
    time_cls = store.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        w = writer.add_connection("/widget", "acme_msgs/msg/Widget", typestore=store, offered_qos_profiles=[RELIABLE])
        j = writer.add_connection("/joints", "sensor_msgs/msg/JointState", typestore=store,
                                  offered_qos_profiles=[RELIABLE]) if with_known else None
        for k in range(5):
            msg = widget_cls(header=header_cls(stamp=time_cls(sec=k, nanosec=0), frame_id="x"), serial=k,
                             label=f"w{k}")
            writer.write(w, T0 + k * 10_000_000, store.serialize_cdr(msg, "acme_msgs/msg/Widget"))
            if j is not None:
                writer.write(j, T0 + k * 10_000_000 + 1, joint(k))


def write_file_compressed(path: Path, storage: str, n: int = 10) -> None:
    """Whole-file zstd compression (compression_mode FILE): DIR/NAME.mcap.zstd or .db3.zstd."""
    store = get_typestore(Stores.ROS2_KILTED)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.set_compression(CompressionMode.FILE, CompressionFormat.ZSTD)
    with writer:
        c = writer.add_connection("/joints", "sensor_msgs/msg/JointState", typestore=store)
        for k in range(n):
            writer.write(c, T0 + k * 1000, joint(k))


# ------------------------------------------------------------------ sqlite3 bags the way rosbag2 writes them
_SQLITE_CHILD = r"""
import os, pickle, sqlite3, sys
job = pickle.load(sys.stdin.buffer)
db = sqlite3.connect(job["path"], isolation_level=None)
if job["state"] == "interrupted":
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("PRAGMA cache_size=1")           # spill pages into the file before the commit
else:
    db.execute("PRAGMA journal_mode=WAL")       # as rosbag2_storage_sqlite3 opens a bag for writing
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=0")   # every page of a killed recording stays in the WAL
db.executescript(job["schema"])
db.execute("INSERT INTO schema VALUES (4, 'kilted')")
for row in job["definitions"]:
    db.execute("INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, "
               "type_description_hash) VALUES (?, ?, ?, ?)", row)
for row in job["topics"]:
    db.execute("INSERT INTO topics VALUES (?, ?, ?, ?, ?, ?)", row)
committed = job["messages"][:job["committed"]]
for row in committed:                           # one transaction per message (auto-commit)
    db.execute("INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)", row)
if job["state"] == "interrupted":
    db.execute("BEGIN")
    db.execute("UPDATE messages SET data = zeroblob(3)")      # the committed rows change first ...
    for row in job["messages"][job["committed"]:]:           # ... then the cache spills them into the file
        db.execute("INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)", row)
if job["state"] == "closed":
    db.close()                                  # sqlite checkpoints and removes -wal/-shm; the file stays WAL
sys.stdout.flush()
os._exit(0)                                     # 'killed'/'interrupted': no close, no checkpoint, no rollback
"""


def write_wal_sqlite3(path: Path, n: int = 20, state: str = "closed") -> list[tuple[int, float]]:
    """A sqlite3 rosbag2 bag made with sqlite3 directly, as rosbag2_storage_sqlite3 does (schema 4, WAL).

    state 'closed': the writer closed its connection (no -wal/-shm left, the .db3 stays in WAL mode) and
    metadata.yaml is written; 'killed': the writer process died after committing every message (-wal and
    -shm left, every message only in the WAL, no metadata.yaml); 'interrupted': rollback-journal mode,
    killed inside a transaction whose pages already reached the file (a hot -journal; half the messages
    committed). Returns the committed (stamp, position) pairs.
    """
    import pickle
    import subprocess
    import sys

    from dexterity_ros.bags.metadata import BagMetadata, FileEntry, TopicEntry, write_metadata
    from dexterity_ros.bags.msgdefs import message_definition
    from dexterity_ros.bags.sqlite import _SCHEMA
    from dexterity_ros.bags.writer import qos_yaml

    path.mkdir(parents=True)
    definition = message_definition("sensor_msgs/msg/JointState")
    messages = [(1, T0 + k * 1_000_000, joint(k)) for k in range(n)]
    committed = n // 2 if state == "interrupted" else n
    if state == "interrupted":
        messages = messages[:committed] + [(1, T0 + k * 1_000_000, bytes(500)) for k in range(committed, 2000)]
    job = {"path": str(path / f"{path.name}_0.db3"), "state": state, "schema": _SCHEMA, "committed": committed,
           "definitions": [("sensor_msgs/msg/JointState", definition.encoding, definition.text,
                            definition.type_hash)],
           "topics": [(1, "/joints", "sensor_msgs/msg/JointState", "cdr", qos_yaml([BEST_EFFORT]),
                       definition.type_hash)],
           "messages": messages}
    subprocess.run([sys.executable, "-c", _SQLITE_CHILD], input=pickle.dumps(job), check=True, timeout=60)
    expected = [(T0 + k * 1_000_000, float(k)) for k in range(committed)]
    if state == "closed":
        write_metadata(path, BagMetadata(
            storage="sqlite3", files=[f"{path.name}_0.db3"],
            topics=[TopicEntry("/joints", "sensor_msgs/msg/JointState", n, [BEST_EFFORT], "cdr",
                               definition.type_hash)],
            start_ns=T0, duration_ns=(n - 1) * 1_000_000, count=n,
            file_entries=[FileEntry(f"{path.name}_0.db3", T0, (n - 1) * 1_000_000, n)]))
    return expected
