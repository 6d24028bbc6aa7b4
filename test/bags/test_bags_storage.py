"""Bag storage without ROS graph: our writer, any rosbag2 reader, recovery, bad input, info, reindex.

Every bag written here is read back by an independent reader too (rosbags'
own Reader), and bags written by rosbags with unusual layouts are read by
ours, so the files are rosbag2 in both directions.
"""
from __future__ import annotations

import os

import pytest
import yaml
from rosbags.rosbag2 import Reader as RosbagsReader
from std_msgs.msg import String

from bag_fixtures import (BEST_EFFORT, LATCHED, T0, WIDGET_MSG, joint, position, write_file_compressed,
                          write_split_mcap, write_unknown_type_bag, write_unusual_sqlite3)
from dexterity_ros.bags.inspect import describe, reindex
from dexterity_ros.bags.io import BagError, BagReader
from dexterity_ros.ros.messages import deserialize, serialize
from dexterity_ros.bags.msgdefs import DefinitionLibrary, message_definition
from dexterity_ros.bags.writer import BagWriteError, SplitBagWriter, WriterOptions
from dexterity_ros.cli_commands.info import describe_bag

PERIOD = 10_000_000   # 100 Hz


def record(path, n=200, **options) -> SplitBagWriter:
    writer = SplitBagWriter(path, WriterOptions(**options))
    j = writer.add_connection("/joints", "sensor_msgs/msg/JointState", [BEST_EFFORT])
    s = writer.add_connection("/status", "std_msgs/msg/String", [LATCHED])
    for k in range(n):
        writer.write(j, T0 + k * PERIOD, joint(k), publish_ns=T0 + k * PERIOD - 1000)
        if k % 50 == 0:
            writer.write(s, T0 + k * PERIOD + 1, serialize(String(data=f"step {k}")))
    return writer


@pytest.mark.parametrize("storage,compression", [("mcap", "none"), ("mcap", "zstd"), ("sqlite3", "none"),
                                                 ("sqlite3", "zstd")])
def test_writer_round_trip_is_rosbag2(tmp_path, storage, compression):
    path = tmp_path / "bag"
    record(path, storage=storage, compression=compression, chunk_size=4096).close()
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert sorted(os.listdir(path)) == ["bag_0" + suffix, "metadata.yaml"]      # ros2 bag record layout
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == storage and info["message_count"] == 204
    joints = next(t for t in info["topics_with_message_count"] if t["topic_metadata"]["name"] == "/joints")
    assert joints["message_count"] == 200
    assert joints["topic_metadata"]["offered_qos_profiles"][0]["reliability"] == "best_effort"
    assert joints["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
    assert info["compression_mode"] == ("MESSAGE" if storage == "sqlite3" and compression == "zstd" else "")

    with BagReader(path) as reader:
        assert reader.message_count == 204 and not reader.notes
        assert [position(m.data) for m in reader.messages(["/joints"])] == list(range(200))
        assert reader.topics()["/status"].qos[0].durability.name == "TRANSIENT_LOCAL"
        first, last = reader.topic_time_ranges()["/joints"]
        assert (first, last) == (T0, T0 + 199 * PERIOD)
        if storage == "mcap":
            assert reader.compression == ("zstd (MCAP chunks)" if compression == "zstd" else "none")
    if not (storage == "sqlite3" and compression == "zstd"):   # rosbags does not decompress sqlite3 messages
        with RosbagsReader(path) as other:
            assert other.message_count == 204
            connection = next(c for c in other.connections if c.topic == "/joints")
            assert "MSG: std_msgs/Header" in connection.msgdef.data or "std_msgs/Header" in connection.msgdef.data
            data = [bytes(d) for c, _, d in other.messages() if c.topic == "/joints"]
            assert [position(d) for d in data] == list(range(200))


def test_split_by_size_and_duration(tmp_path):
    by_size = tmp_path / "by_size"
    record(by_size, n=600, max_bag_size=8000, chunk_size=2000).close()
    files = sorted(f for f in os.listdir(by_size) if f.endswith(".mcap"))
    assert len(files) >= 3 and files[0] == "by_size_0.mcap"
    listed = yaml.safe_load((by_size / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert listed["relative_file_paths"] == [f"by_size_{i}.mcap" for i in range(len(files))]
    assert sum(f["message_count"] for f in listed["files"]) == listed["message_count"] == 612
    with BagReader(by_size) as reader:
        assert [position(m.data) for m in reader.messages(["/joints"])] == list(range(600))
    for name in files:                                   # each split file stands alone
        with RosbagsReader(by_size / name) as part:
            assert {c.topic for c in part.connections} == {"/joints", "/status"}

    by_time = tmp_path / "by_time"
    record(by_time, n=300, max_bag_duration_s=1.0).close()       # 3 s of 100 Hz -> 3 files
    with BagReader(by_time) as reader:
        assert len(reader.storage_files) == 3
        assert reader.message_count == 306


def test_reads_bags_from_another_writer_with_unusual_layouts(tmp_path):
    expected = write_unusual_sqlite3(tmp_path / "odd")
    with BagReader(tmp_path / "odd") as reader:
        topics = reader.topics()
        assert topics["/joints"].count == 10 and topics["/chatter"].count == 2
        assert {q.reliability.name for q in topics["/joints"].qos} == {"RELIABLE", "BEST_EFFORT"}
        messages = list(reader.messages())
        stamps = [m.stamp_ns for m in messages]
        assert stamps == sorted(stamps)                    # receive-time order although written out of order
        got = [(m.stamp_ns, position(m.data)) for m in messages if m.topic == "/joints"]
        assert got == expected["/joints"]
        chatter = [(m.stamp_ns, deserialize(m.data, m.type_name).data) for m in messages if m.topic == "/chatter"]
        assert chatter == expected["/chatter"]
        assert reader.compression == "zstd (per message)"

    n = write_split_mcap(tmp_path / "split", parts=3, per_part=20)
    with BagReader(tmp_path / "split") as reader:
        assert len(reader.storage_files) == 3
        assert [position(m.data) for m in reader.messages()] == list(range(n))
        assert reader.duration_ns == (n - 1) * 10_000_000

    for storage in ("mcap", "sqlite3"):
        write_file_compressed(tmp_path / f"file_{storage}", storage)
        with BagReader(tmp_path / f"file_{storage}") as reader:
            assert reader.storage_files[0].name.endswith(".zstd")
            assert reader.compression == "zstd (whole storage files)"
            assert [position(m.data) for m in reader.messages()] == list(range(10))


def test_killed_recording_is_readable_up_to_the_last_chunk_and_reindex_repairs_it(tmp_path):
    path = tmp_path / "killed"
    writer = record(path, n=1000, chunk_size=3000)
    pending = writer.files[-1].writer.pending_bytes
    writer.files[-1].writer._file.close()     # the process dies: no summary, footer or metadata.yaml
    assert not (path / "metadata.yaml").exists() and pending > 0
    with BagReader(path) as reader:
        assert any("metadata.yaml is missing" in n for n in reader.notes)
        assert any("incomplete MCAP" in n for n in reader.notes)
        got = [position(m.data) for m in reader.messages(["/joints"])]
    assert 900 < len(got) < 1000 and got == list(range(len(got)))   # a contiguous prefix: only the open chunk lost
    assert "metadata.yaml is missing" in describe_bag(path)

    metadata, notes = reindex(path)
    assert metadata.count == len(got) + 20 and notes and "incomplete MCAP" in notes[0]
    with RosbagsReader(path) as other:             # a complete, standard file again
        assert sum(1 for c, _, _ in other.messages() if c.topic == "/joints") == len(got)
    with BagReader(path) as reader:
        assert not reader.notes
    with pytest.raises(BagError, match="already exists; pass --overwrite"):
        reindex(path)
    reindex(path, overwrite=True)
    assert (path / "metadata.yaml.bak").exists()


def test_truncated_file_is_a_clear_error_until_reindexed(tmp_path):
    path = tmp_path / "bag"
    record(path, n=500, chunk_size=2000).close()
    storage = path / "bag_0.mcap"
    size = storage.stat().st_size
    with open(storage, "r+b") as f:
        f.truncate(size // 2)                     # cut in the middle of a chunk
    with pytest.raises(BagError) as error:
        BagReader(path)
    text = str(error.value)
    assert "disagrees with its storage" in text and "/joints: 500 messages in metadata.yaml" in text
    assert "incomplete MCAP" in text and "reindex" in text
    with BagReader(path, verify=False) as reader:
        got = [position(m.data) for m in reader.messages(["/joints"])]
        assert 0 < len(got) < 500 and got == list(range(len(got)))
    reindex(path, overwrite=True)
    with BagReader(path) as reader:
        assert reader.topics()["/joints"].count == len(got)

    header_only = tmp_path / "header_only.mcap"
    header_only.write_bytes(storage.read_bytes()[:12])
    with pytest.raises(BagError, match="header record is missing or truncated"):
        BagReader(header_only)
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"this is not an mcap file at all")
    with pytest.raises(BagError, match="not an MCAP file"):
        BagReader(junk)
    db = tmp_path / "db"
    record(db, n=300, storage="sqlite3").close()
    data = (db / "db_0.db3").read_bytes()
    (db / "db_0.db3").write_bytes(data[: len(data) // 3])
    with pytest.raises(BagError, match="cannot"):
        BagReader(db)


def test_metadata_that_disagrees_with_storage_is_a_clear_error(tmp_path):
    path = tmp_path / "bag"
    record(path, n=100).close()
    original = (path / "metadata.yaml").read_text()

    def edited(change) -> str:
        doc = yaml.safe_load(original)
        change(doc["rosbag2_bagfile_information"])
        (path / "metadata.yaml").write_text(yaml.safe_dump(doc))
        with pytest.raises(BagError) as error:
            BagReader(path)
        return str(error.value)

    def count(info):
        info["topics_with_message_count"][0]["message_count"] = 90
    assert "/joints: 90 messages in metadata.yaml, 100 in the storage" in edited(count)

    def extra_topic(info):
        info["topics_with_message_count"].append({"topic_metadata": {
            "name": "/ghost", "type": "std_msgs/msg/String", "serialization_format": "cdr",
            "offered_qos_profiles": [], "type_description_hash": ""}, "message_count": 3})
    assert "/ghost (3 messages) is not in the storage" in edited(extra_topic)

    def wrong_type(info):
        info["topics_with_message_count"][0]["topic_metadata"]["type"] = "std_msgs/msg/String"
    assert "type std_msgs/msg/String in metadata.yaml" in edited(wrong_type)

    def missing_file(info):
        info["relative_file_paths"].append("bag_1.mcap")
    assert "do not exist: ['bag_1.mcap']" in edited(missing_file)

    def wrong_storage(info):
        info["storage_identifier"] = "sqlite3"
    assert "is not a .db3 file" in edited(wrong_storage)

    (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9}\n")
    with pytest.raises(BagError, match="required key 'relative_file_paths' is missing"):
        BagReader(path)


def test_unknown_message_type(tmp_path):
    path = tmp_path / "bag"
    write_unknown_type_bag(path)
    with BagReader(path) as reader:
        assert reader.topics()["/widget"].type_name == "acme_msgs/msg/Widget"
        widget = next(reader.messages(["/widget"]))
        with pytest.raises(BagError, match="acme_msgs/msg/Widget' is not available"):
            deserialize(widget.data, widget.type_name)
    text = describe_bag(path)
    assert "acme_msgs/msg/Widget" in text and "/joints" in text


def test_existing_output_is_never_overwritten_without_permission(tmp_path):
    path = tmp_path / "bag"
    record(path, n=10).close()
    before = sorted(os.listdir(path))
    with pytest.raises(BagWriteError, match="already exists"):
        SplitBagWriter(path)
    assert sorted(os.listdir(path)) == before
    SplitBagWriter(path, overwrite=True).close()
    with BagReader(path) as reader:
        assert reader.message_count == 0
    a_file = tmp_path / "file"
    a_file.write_text("precious")
    with pytest.raises(BagWriteError, match="not a directory"):
        SplitBagWriter(a_file, overwrite=True)
    assert a_file.read_text() == "precious"


def test_message_definitions_from_installed_msg_files(tmp_path):
    share = tmp_path / "share"
    (share / "acme_msgs" / "msg").mkdir(parents=True)
    (share / "acme_msgs" / "msg" / "Widget.msg").write_text(WIDGET_MSG + "Part[] parts\n")
    (share / "acme_msgs" / "msg" / "Part.msg").write_text("float64 mass\n")
    library = DefinitionLibrary([share, *DefinitionLibrary().search_paths])
    widget = library.lookup("acme_msgs/msg/Widget")
    assert widget.known and widget.encoding == "ros2msg" and widget.type_hash.startswith("RIHS01_")
    assert "MSG: acme_msgs/Part" in widget.text and "MSG: std_msgs/Header" in widget.text
    assert not library.lookup("acme_msgs/msg/Missing").known

    # the .msg path gives what the typestore gives for a standard type
    from_files = DefinitionLibrary()
    del from_files.store.types["sensor_msgs/msg/JointState"]
    rebuilt = from_files.lookup("sensor_msgs/msg/JointState")
    assert rebuilt == message_definition("sensor_msgs/msg/JointState")


def test_describe_reports_topics_types_counts_and_frequencies(tmp_path):
    path = tmp_path / "bag"
    record(path, n=201, compression="zstd").close()
    with BagReader(path) as reader:
        text = describe(reader)
    assert "Storage id:        mcap" in text and "Messages:          206" in text
    joints = next(line for line in text.splitlines() if line.strip().startswith("/joints"))
    assert "sensor_msgs/msg/JointState" in joints and " 201 msgs" in joints and "100.00 Hz" in joints
    assert "best_effort, volatile, keep last 5" in joints
    assert "Duration:          2.000 s" in text
    # a single storage file and the metadata.yaml path describe the same bag
    assert "206" in describe_bag(path / "bag_0.mcap") and "206" in describe_bag(path / "metadata.yaml")
    assert describe_bag(tmp_path) is None
