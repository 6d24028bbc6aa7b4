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

from dexterity_ros.bags.io import serialize

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
    from dexterity_ros.bags.io import deserialize
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
