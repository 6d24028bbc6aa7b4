"""sim_bridge_node replays an episode bag at recorded timing over real DDS."""
import time

import numpy as np
import pytest
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from geometry_msgs.msg import QuaternionStamped

from dexterity_ros.ros import conversions as conv
from dexterity_ros import topics
from dexterity_ros.ros.bags.episode import EpisodeBagWriter, EpisodeStep
from dexterity_ros.ros.common import qos_profile
from dexterity_ros.topics import RECORDED_TARGETS
from ros_harness import NodeProcess, RosProbe
from perception_fixtures import INTR, grasp_pose, scene

PERIOD_NS = 83_333_333   # 12 Hz


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "episode"
    depth = scene()
    with EpisodeBagWriter(path, {"seed": 1}) as w:
        for k in range(12):
            w.write_step(EpisodeStep(stamp_ns=5 * 10**9 + k * PERIOD_NS, depth_m=depth, intrinsics=INTR,
                                     joint_positions=grasp_pose(), goal_wxyz=np.array([1.0, 0, 0, 0]),
                                     action=grasp_pose() + 0.01 * k))
    return path


def test_replay_publishes_episode_with_fresh_stamps_and_clock(episode):
    probe = RosProbe("bridge_probe")
    depth = probe.subscribe(Image, topics.DEPTH_IMAGE.name, qos_profile(topics.DEPTH_IMAGE), stamp=True)
    info = probe.subscribe(CameraInfo, topics.DEPTH_INFO.name, qos_profile(topics.DEPTH_INFO))
    joints = probe.subscribe(JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES))
    goal = probe.subscribe(QuaternionStamped, topics.GOAL.name, qos_profile(topics.GOAL))
    recorded = probe.subscribe(JointState, RECORDED_TARGETS.name, qos_profile(RECORDED_TARGETS))
    clock = probe.subscribe(Clock, "/clock", qos_profile(topics.CLOCK))
    with NodeProcess("sim_bridge_node", name="sim_bridge",
                     params={"bag_path": str(episode), "publish_clock": True, "rate": 1.0}) as node:
        assert probe.wait_for(lambda: len(depth) >= 12, 20), node.output
        assert node.wait_for_output("replay finished", 5), node.output
    probe.close()
    stamps = [conv.stamp_to_ns(m.header.stamp) for _, m in depth]
    gaps = np.diff(stamps)
    assert np.all(gaps == PERIOD_NS)                       # recorded spacing preserved at rate 1
    arrival = np.diff([t for t, _ in depth])
    assert np.median(arrival) == pytest.approx(PERIOD_NS * 1e-9, abs=0.02)   # real-time pacing
    assert abs(stamps[0] - time.time_ns()) < 60 * 10**9      # remapped onto "now", not 1970 + 5 s
    assert len(info) >= 12 and len(joints) >= 12 and len(goal) == 1 and len(recorded) == 12
    assert list(joints[0].name)[0] == "ffj0"
    assert conv.stamp_to_ns(recorded[0].header.stamp) == stamps[0]   # action pairs with its frame
    assert len(clock) >= 12


def test_bridge_and_segmentation_make_clouds(episode):
    probe = RosProbe("bridge_seg_probe")
    clouds = probe.subscribe(PointCloud2, topics.OBJECT_CLOUD.name, qos_profile(topics.OBJECT_CLOUD))
    with NodeProcess("segmentation_node", name="segmentation") as seg:
        time.sleep(1.0)
        with NodeProcess("sim_bridge_node", name="sim_bridge", params={"bag_path": str(episode)}) as bridge:
            assert probe.wait_for(lambda: len(clouds) >= 10, 20), seg.output + bridge.output
    probe.close()
    assert conv.pointcloud2_to_points(clouds[0]).shape == (512, 3)


def test_missing_bag_is_a_clear_startup_error(tmp_path):
    with NodeProcess("sim_bridge_node", params={"bag_path": str(tmp_path / "none")}) as node:
        node.proc.wait(timeout=20)
    assert node.proc.returncode == 2
    assert "bag not found" in node.output
