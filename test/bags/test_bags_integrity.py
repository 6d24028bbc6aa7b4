"""Bags are read without being touched, damage is found, and other readers read what we write.

* Reading (`info`, `info --verify`, `play`, BagReader) writes nothing into a bag directory: a WAL-mode
  .db3 as rosbag2 leaves it, a killed recording's leftover -wal/-shm, a hot rollback journal, a
  recording in progress.
* A malformed metadata.yaml (binary, wrong shapes, random damage) is a clear error.
* Every MCAP byte we write is under a CRC; `info --verify` finds every single-bit flip.
* The independent readers our bags are checked against (docs/bags.md, "Readers"): the `mcap` package
  (CRCs validated) with mcap-ros2-support's decoder reads every message of every topic; what rosbags
  can and cannot read is pinned here.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rosbags.rosbag2 import Reader as RosbagsReader
from std_msgs.msg import String

from bag_fixtures import (BEST_EFFORT, LATCHED, T0, joint, position, write_unknown_type_bag,
                          write_unusual_sqlite3, write_wal_sqlite3)
from dexterity_ros.ros import conversions as conv
from dexterity_ros import topics
from dexterity_ros.ros.bags.episode import EpisodeBagWriter, EpisodeStep
from dexterity_ros.bags.inspect import reindex
from dexterity_ros.bags.io import TYPESTORE, BagError, BagReader
from dexterity_ros.ros.messages import deserialize, message_class, serialize
from dexterity_ros.bags.mcap import OP_CHUNK, OP_DATA_END, OP_FOOTER, OP_MESSAGE_INDEX
from dexterity_ros.bags.writer import SplitBagWriter, WriterOptions
from dexterity_ros.camera_model import Intrinsics
from dexterity_ros.cli_commands.info import inspect_bag
from ros_harness import ROOT


def cli(*args, timeout: float = 120) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "dexterity_ros.cli", *map(str, args)], env=env,
                            capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    return result.returncode, result.stdout + result.stderr


def snapshot(directory: Path) -> dict:
    """Listing, sizes, mtimes and contents of a directory (and its own mtime)."""
    state = {".": directory.stat().st_mtime_ns}
    for p in sorted(directory.iterdir()):
        state[p.name] = (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return state


def read_only(directory: Path) -> None:
    for p in directory.iterdir():
        p.chmod(0o444)
    directory.chmod(0o555)


# ----------------------------------------------------------------- 5: reading never writes
def test_closed_wal_mode_sqlite3_bag_is_read_without_a_byte_written(tmp_path):
    bag = tmp_path / "ros2_bag"
    expected = write_wal_sqlite3(bag, n=20, state="closed")
    assert sorted(os.listdir(bag)) == ["metadata.yaml", "ros2_bag_0.db3"]
    assert (bag / "ros2_bag_0.db3").read_bytes()[18:20] == b"\x02\x02"       # a WAL-mode database
    read_only(bag)          # tests run as root, so the bits alone prove nothing: the snapshot does
    before = snapshot(bag)
    try:
        with BagReader(bag) as reader:
            assert not reader.notes
            assert [(m.stamp_ns, position(m.data)) for m in reader.messages()] == expected
            assert all(c.ok for c in reader.verify())
        for args in (("info", bag), ("info", bag, "--verify"), ("info", bag / "ros2_bag_0.db3")):
            code, text = cli(*args)
            assert code == 0 and "Messages:          20" in text, text
            assert "not closed" not in text and "Note:" not in text, text
        code, text = cli("play", bag)
        assert code == 0 and "published 20 messages" in text and "WARN" not in text, text
        assert snapshot(bag) == before                  # no -wal/-shm, no byte or mtime changed
    finally:
        bag.chmod(0o755)


def test_killed_wal_recording_is_read_whole_from_a_private_copy_and_left_as_it_was(tmp_path):
    bag = tmp_path / "killed"
    expected = write_wal_sqlite3(bag, n=20, state="killed")
    assert sorted(os.listdir(bag)) == ["killed_0.db3", "killed_0.db3-shm", "killed_0.db3-wal"]
    read_only(bag)
    before = snapshot(bag)
    try:
        with BagReader(bag) as reader:            # every message is only in the WAL: immutable=1 would see none
            assert [(m.stamp_ns, position(m.data)) for m in reader.messages()] == expected
            note = " ".join(reader.notes)
            assert "write-ahead log" in note and "the recording was not closed" in note, note
            assert "read 20 committed messages from a private copy" in note, note
        code, text = cli("info", bag, "--verify")
        assert code == 0 and "Messages:          20" in text and "not closed" in text, text
        code, text = cli("play", bag)
        assert code == 0 and "published 20 messages" in text and "not closed" in text, text
        assert snapshot(bag) == before            # -wal and -shm untouched too
    finally:
        bag.chmod(0o755)
    for p in bag.iterdir():
        p.chmod(0o644)
    reindex(bag)                                  # asked to write: folds the WAL in
    assert sorted(os.listdir(bag)) == ["killed_0.db3", "metadata.yaml"]
    with BagReader(bag) as reader:
        assert not reader.notes and reader.message_count == 20


def test_hot_rollback_journal_reads_the_committed_state_without_rolling_back_in_place(tmp_path):
    bag = tmp_path / "torn"
    expected = write_wal_sqlite3(bag, n=200, state="interrupted")
    db = bag / "torn_0.db3"
    immutable = sqlite3.connect(db.as_uri() + "?immutable=1", uri=True)
    try:                                          # the file alone holds half a transaction
        seen = immutable.execute("SELECT COUNT(*), SUM(LENGTH(data)) FROM messages").fetchone()
    except sqlite3.DatabaseError as exc:
        seen = str(exc)
    immutable.close()
    assert seen != (len(expected), sum(len(joint(k)) for k in range(len(expected)))), seen
    before = snapshot(bag)
    with BagReader(bag) as reader:
        assert [(m.stamp_ns, position(m.data)) for m in reader.messages()] == expected
        assert any("rollback journal" in n and "private copy" in n for n in reader.notes)
    assert snapshot(bag) == before


_LIVE_WRITER = r"""
import sqlite3, sys
from dexterity_ros.bags.sqlite import _SCHEMA
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.executescript(_SCHEMA)
db.execute("INSERT INTO topics VALUES (1, '/t', 'std_msgs/msg/String', 'cdr', '', '')")
for k in range(5):
    db.execute("INSERT INTO messages (topic_id, timestamp, data) VALUES (1, ?, ?)", (k, bytes(8)))
print("committed 5", flush=True)
sys.stdin.readline()
for k in range(5, 10):
    db.execute("INSERT INTO messages (topic_id, timestamp, data) VALUES (1, ?, ?)", (k, bytes(8)))
db.close()
print("committed 10", flush=True)
"""


def test_recording_in_progress_is_read_shared_and_the_writer_goes_on(tmp_path):
    db = tmp_path / "live_0.db3"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    writer = subprocess.Popen([sys.executable, "-c", _LIVE_WRITER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout.readline().strip() == "committed 5"
        with BagReader(db) as reader:
            assert reader.message_count == 5 and len(list(reader.messages())) == 5
            assert any("open in another connection" in n for n in reader.notes)
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "committed 10"   # our reader did not block it
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == 0
    with BagReader(db) as reader:       # our reader kept the writer from removing its WAL: read from a copy
        assert reader.message_count == 10 and len(list(reader.messages())) == 10


def test_reading_a_database_this_process_writes_leaves_the_writers_locks_alone(tmp_path):
    """Whether a database is in use is read from /proc/locks: opening and closing a descriptor of the file
    would drop every POSIX lock this process holds on it, sqlite's included."""
    from dexterity_ros.bags.sqlite import Sqlite3FileWriter, in_use

    db = tmp_path / "mine_0.db3"
    writer = Sqlite3FileWriter(db)
    writer.add_topic(1, "/joints", "sensor_msgs/msg/JointState", "", "")
    for k in range(5):
        writer.write(1, T0 + k, joint(k))
    writer.flush_chunk()
    assert in_use(db)
    with BagReader(db) as reader:
        assert reader.message_count == 5 and any("open in another connection" in n for n in reader.notes)
    assert in_use(db)                     # the writer's locks are still held
    writer.write(1, T0 + 5, joint(5))
    writer.close()
    assert not in_use(db)
    with BagReader(db) as reader:
        assert [position(m.data) for m in reader.messages()] == [float(k) for k in range(6)] and not reader.notes


# ----------------------------------------------------------------- 7a: malformed metadata.yaml
def small_bag(path: Path) -> Path:
    with SplitBagWriter(path) as writer:
        c = writer.add_connection("/joints", "sensor_msgs/msg/JointState", [BEST_EFFORT])
        for k in range(5):
            writer.write(c, T0 + k, joint(k))
    return path


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "not UTF-8 text \\(byte 0x89 at offset 0\\)"),
    (b"rosbag2_bagfile_information: !!python/object:os.system {}\n", "not valid YAML"),
    (b"[" * 5000 + b"]" * 5000, "not valid YAML|no 'rosbag2_bagfile_information'"),
    (b"rosbag2_bagfile_information: 5\n", "invalid value"),
    (b"rosbag2_bagfile_information: {version: 9, relative_file_paths: bag_0.mcap}\n",
     "relative_file_paths must be a list of file names"),
    (b"rosbag2_bagfile_information: {version: 10}\n", "rosbag2 metadata version 10 is newer than this tool reads"),
    (b"\x00\x01\x02", "not valid YAML"),
])
def test_malformed_metadata_is_a_clear_error(tmp_path, content, message):
    bag = small_bag(tmp_path / "bag")
    (bag / "metadata.yaml").write_bytes(content)
    with pytest.raises(BagError, match="cannot open bag .*metadata.yaml: (" + message + ")"):
        BagReader(bag)


def test_info_on_a_binary_metadata_file_is_an_error_line_not_a_traceback(tmp_path):
    bag = small_bag(tmp_path / "bag")
    (bag / "metadata.yaml").write_bytes(bytes(range(256)))
    code, text = cli("info", bag)
    assert code == 1 and "Traceback" not in text, text
    assert text.strip() == f"error: cannot open bag {bag}: metadata.yaml: not UTF-8 text (byte 0x80 at offset 128): " \
                           "a binary or damaged file, not a rosbag2 metadata file", text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=4)), min_size=1, max_size=4),
       truncate=st.one_of(st.none(), st.integers(0, 2000)))
def test_randomly_damaged_metadata_opens_or_is_a_bag_error(tmp_path_factory, cuts, truncate):
    bag = tmp_path_factory.mktemp("damaged") / "bag"
    if not bag.exists():
        small_bag(bag)
    data = bytearray((bag / "metadata.yaml").read_bytes())
    for at, replacement in cuts:
        at %= len(data)
        data[at:at + len(replacement)] = replacement
    (bag / "metadata.yaml").write_bytes(bytes(data[:truncate]) if truncate is not None else bytes(data))
    try:
        BagReader(bag).close()
    except BagError as exc:
        assert str(exc).startswith(f"cannot open bag {bag}") or "disagrees with its storage" in str(exc)


# ----------------------------------------------------------------- 7b: CRCs everywhere, every flip found
def episode_bag(path: Path, steps: int = 6) -> Path:
    rng = np.random.default_rng(3)
    intr = Intrinsics(32, 24, 20.0, 20.0, 15.5, 11.5)
    with EpisodeBagWriter(path, {"seed": 3}) as writer:
        writer.write_physics(0, {"friction": 1.0})
        for k in range(steps):
            writer.write_step(EpisodeStep(
                stamp_ns=10**9 + k * 83_333_333, depth_m=rng.uniform(0.2, 1.0, (24, 32)).astype(np.float32),
                intrinsics=intr, joint_positions=rng.normal(size=16), goal_wxyz=np.array([1.0, 0, 0, 0]),
                action=rng.normal(size=16), object_pose=(rng.normal(size=3), np.array([1.0, 0, 0, 0])),
                object_twist=(rng.normal(size=3), rng.normal(size=3))))
    return path


def recorded_bag(path: Path, compression: str = "none") -> Path:
    """What `dexterity-ros record` writes (the same writer), several chunks with message indexes."""
    with SplitBagWriter(path, WriterOptions(compression=compression, chunk_size=1500)) as writer:
        j = writer.add_connection("/joints", "sensor_msgs/msg/JointState", [BEST_EFFORT])
        s = writer.add_connection("/status", "std_msgs/msg/String", [LATCHED])
        for k in range(60):
            writer.write(j, T0 + k * 10_000_000, joint(k), publish_ns=T0 + k * 10_000_000 - 1)
            if k % 20 == 0:
                writer.write(s, T0 + k * 10_000_000 + 1, serialize(String(data=f"step {k}")))
    return path


def mcap_regions(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the top-level records, to say where the flipped bytes were."""
    import struct
    regions, position = [(0, 8, "magic")], 8
    names = {OP_CHUNK: "chunk", OP_MESSAGE_INDEX: "message index", OP_DATA_END: "data end", OP_FOOTER: "footer"}
    data_end = None
    while position < len(data) - 8:
        opcode, length = struct.unpack_from("<BQ", data, position)
        kind = names.get(opcode, "other record")
        if data_end is not None and opcode != OP_FOOTER:
            kind = "summary"
        regions.append((position, position + 9 + length, kind))
        if opcode == OP_DATA_END:
            data_end = position
        position += 9 + length
    regions.append((len(data) - 8, len(data), "magic"))
    return regions


@pytest.mark.parametrize("kind", ["episode", "recorded"])
def test_every_single_bit_flip_is_found(tmp_path, kind):
    bag = episode_bag(tmp_path / "bag") if kind == "episode" else recorded_bag(tmp_path / "bag")
    (storage,) = [p for p in bag.iterdir() if p.suffix == ".mcap"]
    original = storage.read_bytes()
    text, sound = inspect_bag(bag, verify=True)
    assert sound and "data-section CRC" in text and "chunk CRCs" in text and "summary CRC" in text, text
    regions = mcap_regions(original)
    bits = len(original) * 8
    flips = 200
    where: Counter = Counter()
    found: Counter = Counter()
    missed = []
    for i in range(flips):
        bit = i * bits // flips + (i * 3) % 8       # spread over the file and over the bit positions
        data = bytearray(original)
        data[bit // 8] ^= 1 << (bit % 8)
        storage.write_bytes(data)
        region = next(k for a, b, k in regions if a <= bit // 8 < b)
        where[region] += 1
        try:
            _, sound = inspect_bag(bag, verify=True)
        except BagError:
            found["the bag does not open (clear error)"] += 1
            continue
        if sound:
            missed.append((bit // 8, region))
        else:
            found["--verify reports damage"] += 1
    storage.write_bytes(original)
    summary = f"{kind} bag, {len(original)} bytes, {flips} flips in {dict(where)}: {dict(found)}"
    print(summary)
    assert not missed, f"undetected flips at {missed}; {summary}"
    assert where["chunk"] >= 50 and where["summary"] >= 20, summary


def test_verify_from_the_command_line_names_the_damage(tmp_path):
    bag = recorded_bag(tmp_path / "bag")
    (storage,) = bag.glob("*.mcap")
    data = bytearray(storage.read_bytes())
    # message 30's position (float64 30.0) inside an uncompressed chunk: found by its value, not by
    # re-serializing the message (rclpy leaves padding bytes uninitialised, so two serializations differ)
    payload = bytes(data).index(struct.pack("<d", 30.0))
    data[payload] ^= 0x01                          # lowest mantissa bit: 30.000000000000004, still a number
    storage.write_bytes(data)
    code, text = cli("info", bag)                 # the damaged value reads like any other ...
    assert code == 0, text
    code, text = cli("info", bag, "--verify")     # ... and the checksums find it
    assert code == 1 and "CORRUPT" in text and "CRC mismatch" in text and "Traceback" not in text, text
    assert "is damaged" in text


def test_bags_without_checksums_are_reported_as_not_verifiable(tmp_path):
    write_unknown_type_bag(tmp_path / "theirs")   # rosbags' MCAP writer stores no CRCs
    text, sound = inspect_bag(tmp_path / "theirs", verify=True)
    assert sound and "not verifiable" in text and "none of the 1 chunks has a CRC" in text, text
    assert "no data-section CRC" in text and "no summary CRC" in text
    write_unusual_sqlite3(tmp_path / "db")
    text, sound = inspect_bag(tmp_path / "db", verify=True)
    assert sound and "sqlite integrity_check" in text and "stores no checksums" in text, text


def test_mcap_package_reads_our_files_with_crc_validation_and_sees_every_crc(tmp_path):
    from mcap.reader import make_reader
    from mcap.records import Chunk, DataEnd, Footer
    from mcap.stream_reader import StreamReader

    for bag in (episode_bag(tmp_path / "ep"), recorded_bag(tmp_path / "rec", "zstd")):
        (storage,) = bag.glob("*.mcap")
        with open(storage, "rb") as f:
            records = list(StreamReader(f, skip_magic=False, emit_chunks=True, validate_crcs=True).records)
        chunks = [r for r in records if isinstance(r, Chunk)]
        assert chunks and all(c.uncompressed_crc != 0 for c in chunks)
        assert next(r for r in records if isinstance(r, DataEnd)).data_section_crc != 0
        assert next(r for r in records if isinstance(r, Footer)).summary_crc != 0
        with open(storage, "rb") as f:
            reader = make_reader(f, validate_crcs=True)
            assert sum(1 for _ in reader.iter_messages()) == reader.get_summary().statistics.message_count


# ----------------------------------------------------------------- 7c: which readers read our bags
def same(ours, theirs, where: str = "") -> None:
    """An rclpy message equals a message decoded by another library, field by field."""
    for name in ours.get_fields_and_field_types():
        a, b = getattr(ours, name), getattr(theirs, name)
        if hasattr(a, "get_fields_and_field_types"):
            same(a, b, f"{where}.{name}")
        elif isinstance(a, (list, tuple)) and a and hasattr(a[0], "get_fields_and_field_types"):
            assert len(a) == len(b), f"{where}.{name}"
            for k, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{where}.{name}[{k}]")
        elif isinstance(a, (bytes, bytearray)) or (hasattr(a, "typecode") and a.typecode == "B"):
            assert bytes(a) == (bytes([b]) if isinstance(b, int) else bytes(b)), f"{where}.{name}"
        elif isinstance(a, (list, tuple, np.ndarray)) or hasattr(a, "typecode"):
            np.testing.assert_array_equal(np.asarray(list(a)), np.asarray(list(b)), err_msg=f"{where}.{name}")
        else:
            assert a == b or (a != a and b != b), f"{where}.{name}: {a!r} != {b!r}"


def every_topic_bag(path: Path) -> Path:
    """A recording of one populated message on every topic of the graph (topics.py), as `record` writes."""
    from dexterity_ros.bags.msgdefs import message_definition

    rng = np.random.default_rng(5)
    samples = {
        "sensor_msgs/msg/JointState": conv.arrays_to_joint_state([f"j{i}" for i in range(16)], rng.normal(size=16),
                                                                 T0, velocities=rng.normal(size=16)),
        "sensor_msgs/msg/Image": conv.depth_to_image(rng.uniform(0.2, 2.0, (6, 8)), T0, "cam"),
        "sensor_msgs/msg/CameraInfo": conv.intrinsics_to_camera_info(Intrinsics(8, 6, 5.0, 5.0, 3.5, 2.5), T0, "cam"),
        "sensor_msgs/msg/PointCloud2": conv.points_to_pointcloud2(rng.normal(size=(10, 3)), T0, "palm"),
        "geometry_msgs/msg/QuaternionStamped": conv.goal_msg(np.array([1.0, 0, 0, 0]), T0, "palm"),
        "std_msgs/msg/Float64MultiArray": conv.array_to_float64_multi_array(rng.normal(size=16)),
    }
    topic_list = [t for t in vars(topics).values() if isinstance(t, topics.Topic)]
    with SplitBagWriter(path, WriterOptions(compression="zstd")) as writer:
        for k, topic in enumerate(topic_list):
            if not message_definition(topic.type_name).known:
                continue
            c = writer.add_connection(topic.name if topic.name.startswith("/") else "/" + topic.name,
                                      topic.type_name, [BEST_EFFORT])
            cls = message_class(topic.type_name)
            for i, msg in enumerate((cls(), samples.get(topic.type_name, cls()))):   # defaults (empty
                writer.write(c, T0 + k * 1000 + i, serialize(msg))                    # sequences) and data
    return path


def decode_with_mcap_ros2(bag: Path) -> dict[str, list]:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out: dict[str, list] = {}
    for storage in sorted(bag.glob("*.mcap")):
        with open(storage, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()], validate_crcs=True)
            for _, channel, message, decoded in reader.iter_decoded_messages():
                out.setdefault(channel.topic, []).append((message.log_time, decoded))
    return out


def test_mcap_ros2_support_decodes_every_message_of_every_topic_of_our_bags(tmp_path):
    bags = {"episode": episode_bag(tmp_path / "episode"), "recorded": every_topic_bag(tmp_path / "recorded")}
    topics_seen = set()
    for name, bag in bags.items():
        decoded = decode_with_mcap_ros2(bag)
        with BagReader(bag) as reader:
            ours = list(reader.messages())
            assert set(decoded) == set(reader.topics()), name
        assert sum(len(v) for v in decoded.values()) == len(ours), name
        cursor = {topic: iter(v) for topic, v in decoded.items()}
        for m in ours:
            stamp, theirs = next(cursor[m.topic])
            assert stamp == m.stamp_ns
            same(deserialize(m.data, m.type_name), theirs, f"{name} {m.topic}")
        topics_seen |= set(decoded)
    graph_topics = {t.name if t.name.startswith("/") else "/" + t.name
                    for t in vars(topics).values() if isinstance(t, topics.Topic)}
    assert graph_topics <= topics_seen, sorted(graph_topics - topics_seen)      # all 19, 13 message types


def test_bags_from_rosbags_writer_are_read_by_mcap_ros2_support_too(tmp_path):
    write_unknown_type_bag(tmp_path / "theirs")    # a type not installed here: decoded from the bag's schema
    decoded = decode_with_mcap_ros2(tmp_path / "theirs")
    assert [d.serial for _, d in decoded["/widget"]] == list(range(5))
    assert [d.label for _, d in decoded["/widget"]] == [f"w{k}" for k in range(5)]
    assert [list(d.position) for _, d in decoded["/joints"]] == [[float(k)] for k in range(5)]


def test_what_rosbags_reads_of_our_bags(tmp_path):
    """rosbags (a dependency: our MCAP reader builds on its container code, QoS and type store) opens our
    MCAP and sqlite3 bags and returns every message's bytes; its CDR deserializer cannot decode a message
    with an empty float64 sequence, which rclpy pads to 8 bytes (our JointStates: velocity/effort empty)."""
    bag = episode_bag(tmp_path / "episode")
    undecodable: set[str] = set()
    with RosbagsReader(bag) as reader, BagReader(bag) as ours:
        assert reader.message_count == ours.message_count
        theirs = sorted((t, c.topic, bytes(d)) for c, t, d in reader.messages())
        assert theirs == sorted((m.stamp_ns, m.topic, m.data) for m in ours.messages())
        for c, _, data in reader.messages():
            try:
                TYPESTORE.deserialize_cdr(data, c.msgtype)
            except Exception as exc:      # rosbags raises SerdeError/ValueError subclasses
                assert "size mismatch" in str(exc) or "buffer" in str(exc), exc
                undecodable.add(c.topic)
    assert undecodable == {"/hand/joint_states", "/policy/joint_targets"}
    full = serialize(conv.arrays_to_joint_state(["a"], np.ones(1), 0, velocities=np.ones(1)))
    with pytest.raises(Exception):        # position filled, velocity filled, effort empty
        TYPESTORE.deserialize_cdr(full, "sensor_msgs/msg/JointState")
    js = message_class("sensor_msgs/msg/JointState")(name=["a"], position=[1.0], velocity=[1.0], effort=[1.0])
    assert list(TYPESTORE.deserialize_cdr(serialize(js), "sensor_msgs/msg/JointState").effort) == [1.0]
