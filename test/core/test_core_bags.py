"""bags: rosbag2 MCAP/sqlite3 written here and read back with rosbags; replay timing."""
import numpy as np
import pytest
from sensor_msgs.msg import JointState

from dexterity_ros.ros import conversions as conv
from dexterity_ros import topics
from dexterity_ros.ros.bags.episode import EPISODE_TOPICS, EpisodeBagWriter, EpisodeStep, bag_topic
from dexterity_ros.bags.io import BagError, BagReader
from dexterity_ros.ros.messages import MessageBagWriter as BagWriter
from dexterity_ros.ros.messages import deserialize
from dexterity_ros.bags.replay import ReplayOptions, ReplaySchedule
from dexterity_ros.camera_model import Intrinsics


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_write_read_round_trip(tmp_path, storage):
    path = tmp_path / "bag"
    with BagWriter(path, storage=storage) as w:
        w.add_topic("/joints", "sensor_msgs/msg/JointState", topics.QosClass.SENSOR)
        for i in range(5):
            w.write("/joints", 1_000 + i * 10, conv.arrays_to_joint_state(["a"], np.array([i * 0.1]), 1_000 + i * 10))
    reader = BagReader(path)
    info = reader.topics()["/joints"]
    assert info.count == 5 and info.type_name == "sensor_msgs/msg/JointState"
    assert info.qos[0].reliability.name == "BEST_EFFORT"
    msgs = list(reader.messages())
    assert [m.stamp_ns for m in msgs] == [1000, 1010, 1020, 1030, 1040]
    decoded = deserialize(msgs[3].data, msgs[3].type_name)
    assert isinstance(decoded, JointState) and decoded.position[0] == pytest.approx(0.3)


def test_existing_output_is_not_overwritten(tmp_path):
    path = tmp_path / "bag"
    BagWriter(path).close()
    with pytest.raises(BagError, match="already exists"):
        BagWriter(path)
    BagWriter(path, overwrite=True).close()


def test_missing_and_garbage_bags_are_clear_errors(tmp_path):
    with pytest.raises(BagError, match="not found"):
        BagReader(tmp_path / "nothing")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(BagError, match="cannot open"):
        BagReader(tmp_path / "junk")


def test_episode_bag_schema(tmp_path):
    intr = Intrinsics(32, 24, 20.0, 20.0, 15.5, 11.5)
    with EpisodeBagWriter(tmp_path / "ep", {"seed": 7}) as w:
        w.write_physics(0, {"friction": 1.0})
        for k in range(3):
            w.write_step(EpisodeStep(stamp_ns=10**9 + k * 83_333_333, depth_m=np.full((24, 32), 0.4, np.float32),
                                     intrinsics=intr, joint_positions=np.zeros(16), goal_wxyz=np.array([1.0, 0, 0, 0]),
                                     action=np.full(16, 0.1), object_pose=(np.zeros(3), np.array([1.0, 0, 0, 0])),
                                     object_twist=(np.zeros(3), np.zeros(3))))
    reader = BagReader(tmp_path / "ep")
    present = reader.topics()
    for topic in EPISODE_TOPICS:
        assert present[bag_topic(topic)].type_name == topic.type_name
    assert present[bag_topic(topics.GOAL)].count == 1          # written once while unchanged
    assert present[bag_topic(topics.DEPTH_IMAGE)].count == 3
    assert reader.custom_data["dexterity_ros.seed"] == "7"
    order = [m.topic for m in reader.messages() if m.topic != bag_topic(topics.PHYSICS_PARAMS)][:7]
    assert order[0] == bag_topic(topics.JOINT_STATES) and order[-1] == bag_topic(topics.JOINT_TARGETS)
    depth_msg = next(m for m in reader.messages([bag_topic(topics.DEPTH_IMAGE)]))
    frame = conv.image_to_depth(deserialize(depth_msg.data, depth_msg.type_name))
    assert np.allclose(frame.depth, 0.4)


def test_replay_schedule_rate_offset_loop(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as w:
        w.add_topic("/t", "sensor_msgs/msg/JointState")
        for i in range(4):
            w.write("/t", 10**9 + i * 10**8, JointState())
    reader = BagReader(path)
    due = list(ReplaySchedule(reader, ReplayOptions(rate=2.0)))
    assert [round(d.due_s, 6) for d in due] == [0.0, 0.05, 0.1, 0.15]
    skipped = list(ReplaySchedule(reader, ReplayOptions(start_offset_s=0.15)))
    assert len(skipped) == 2 and skipped[0].due_s == pytest.approx(0.05)
    looping = ReplaySchedule(reader, ReplayOptions(loop=True, loop_gap_s=0.1))
    first9 = [d for _, d in zip(range(9), looping)]
    assert [d.loop_index for d in first9] == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    assert first9[4].due_s == pytest.approx(0.4)       # 0.3 s of bag + 0.1 s gap
    assert looping.remap_stamp(10**9 + 10**8, 1, origin_ns=0) == int(0.5e9)
    # on the wall clock a faster replay squeezes the stamps; on its own published clock they keep the recording's
    fast = ReplaySchedule(reader, ReplayOptions(rate=2.0))
    assert fast.remap_stamp(10**9 + 10**8, 0, origin_ns=7) == 7 + int(0.05e9)
    assert fast.remap_stamp(10**9 + 10**8, 0, origin_ns=7, replay_clock=True) == 7 + 10**8
    with pytest.raises(ValueError, match="rate"):
        ReplayOptions(rate=0)
    with pytest.raises(ValueError, match="beyond"):
        ReplaySchedule(reader, ReplayOptions(start_offset_s=5.0))
