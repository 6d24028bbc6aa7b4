"""segmentation_node over real DDS: clouds from good frames, diagnostics for garbage."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from tf2_msgs.msg import TFMessage

from dexterity_ros.ros import conversions as conv
from dexterity_ros import topics
from dexterity_ros.diagnostic_keys import Segmentation, latency_p50, latency_p99
from dexterity_ros.hand_model import default_hand
from dexterity_ros.ros.common import qos_profile
from ros_harness import NodeProcess, RosProbe
from perception_fixtures import INTR, OBJECT_CENTER, OBJECT_HALF, grasp_pose, scene


@pytest.fixture(scope="module")
def graph():
    node = NodeProcess("segmentation_node", name="segmentation")
    probe = RosProbe("seg_probe")
    clouds = probe.subscribe(PointCloud2, topics.OBJECT_CLOUD.name, qos_profile(topics.OBJECT_CLOUD))
    diags = probe.subscribe(DiagnosticArray, "/diagnostics", qos_profile(topics.DIAGNOSTICS))
    tf = probe.subscribe(TFMessage, "/tf_static", qos_profile(topics.TF_STATIC))
    pubs = {
        "depth": probe.publisher(Image, topics.DEPTH_IMAGE.name, qos_profile(topics.DEPTH_IMAGE)),
        "info": probe.publisher(CameraInfo, topics.DEPTH_INFO.name, qos_profile(topics.DEPTH_INFO)),
        "joints": probe.publisher(JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES)),
    }
    assert probe.wait_for(lambda: len(tf) > 0, 20), node.output
    yield node, probe, pubs, clouds, diags, tf
    probe.close()
    node.stop()


def send_frame(probe, pubs, depth, info_intr=INTR, joint_names=None, encoding="16UC1", joint_age_s=0.0,
               zero_focal=False):
    stamp = probe.node.get_clock().now().nanoseconds
    hand = default_hand()
    names = joint_names or list(hand.driver_order("allegro_v4"))     # driver names map by name too
    pubs["joints"].publish(conv.arrays_to_joint_state(names, grasp_pose()[: len(names)],
                                                      stamp - int(joint_age_s * 1e9)))
    info = conv.intrinsics_to_camera_info(info_intr, stamp, topics.CAMERA_FRAME)
    if zero_focal:
        info.k = [0.0, 0.0, info_intr.cx, 0.0, 0.0, info_intr.cy, 0.0, 0.0, 1.0]
    pubs["info"].publish(info)
    msg = conv.depth_to_image(depth, stamp, topics.CAMERA_FRAME, "16UC1" if encoding == "rgb8" else encoding)
    if encoding == "rgb8":
        msg.encoding = "rgb8"
    pubs["depth"].publish(msg)


def diag_mentions(diags, text):
    return any(text in s.message for arr in diags for s in arr.status if "segmentation" in s.name)


def test_good_frame_gives_cloud_and_static_transform(graph):
    node, probe, pubs, clouds, diags, tf = graph
    assert tf[0].transforms[0].header.frame_id == topics.PALM_FRAME
    assert tf[0].transforms[0].child_frame_id == topics.CAMERA_FRAME
    depth = scene()
    assert probe.wait_for(lambda: (send_frame(probe, pubs, depth), len(clouds) > 0)[1], 15, poll=0.2), node.output
    cloud = clouds[-1]
    pts = conv.pointcloud2_to_points(cloud)
    assert cloud.header.frame_id == topics.PALM_FRAME
    assert pts.shape == (512, 3)
    assert np.all(np.max(np.abs(pts - OBJECT_CENTER), axis=1) < OBJECT_HALF + 0.004)
    # the operator sees what became of the frame's points
    def points_value():
        return [kv.value for arr in diags for s in arr.status if "segmentation" in s.name
                for kv in s.values if kv.key == Segmentation.LAST_FRAME_POINTS]
    assert probe.wait_for(lambda: points_value(), 10), node.output[-2000:]
    assert "object" in points_value()[-1] and "hand removed" in points_value()[-1]


def test_each_frames_transport_and_the_nodes_wake_up_are_timed_from_dds_message_info(graph):
    """segmentation_node takes the depth callback with rclpy's MessageInfo (DDS source and reception times)
    through the guarded wrapper, and publishes both spans before its pipeline (the demo prints them: where
    the segmentation stage's time goes, issue 16)."""
    node, probe, pubs, clouds, diags, tf = graph

    def spans():
        found = {}
        for arr in diags:
            for status in arr.status:
                if "segmentation" in status.name:
                    found.update({kv.key: kv.value for kv in status.values})
        keys = [f(k) for k in (Segmentation.DEPTH_TRANSPORT, Segmentation.DEPTH_WAKE_UP) for f in (latency_p50, latency_p99)]
        return [found.get(key) for key in keys] if all(key in found for key in keys) else None

    depth = scene()
    assert probe.wait_for(lambda: (send_frame(probe, pubs, depth), spans() is not None)[1], 15, poll=0.2), \
        node.output[-2000:]
    transport_p50, transport_p99, wake_p50, wake_p99 = (float(v) for v in spans())
    assert 0.0 <= transport_p50 <= transport_p99 < 1000.0
    assert 0.0 <= wake_p50 <= wake_p99 < 1000.0


def test_a_two_parameter_subscription_callback_gets_message_info_and_stays_guarded():
    """DexterityNode wraps every callback (an exception is reported, never fatal); the wrapper keeps rclpy's
    two-parameter form, so a callback that asks for MessageInfo gets it."""
    import rclpy
    from std_msgs.msg import String

    from dexterity_ros.config import param
    from dexterity_ros.ros.common import DexterityNode, takes_message_info
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Empty:
        unused: int = param(0, "nothing")

    assert takes_message_info(lambda msg, info: None) and not takes_message_info(lambda msg: None)
    assert not takes_message_info(lambda *args: None)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = DexterityNode("info_probe", Empty, context=context)
        received = []

        def with_info(msg, info):
            received.append((msg.data, info))
            raise RuntimeError("garbage")            # reported on /diagnostics, not fatal

        node.create_subscription(String, "/info_probe", with_info, 10)
        publisher = node.create_publisher(String, "/info_probe", 10)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            publisher.publish(String(data="hello"))
            executor.spin_once(timeout_sec=0.1)
        assert received, "no message"
        data, info = received[0]
        assert data == "hello" and info["source_timestamp"] > 0 and info["received_timestamp"] >= info["source_timestamp"]
        assert "unexpected error in /info_probe callback" in node.health.status()[1]
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize("case, expect", [
    ("encoding", "unsupported depth encoding"),
    ("size", "camera_info says"),
    ("zeros", "too few object points"),
    ("joint_names", "joint state rejected"),
    ("nan", "NaN/inf"),
    ("stale_joints", "nearest joint state is"),
    ("zero_focal", "focal length must be positive"),
])
def test_bad_input_is_reported_and_node_survives(graph, case, expect):
    node, probe, pubs, clouds, diags, tf = graph
    depth = scene()
    if case == "encoding":
        send_frame(probe, pubs, depth, encoding="rgb8")
    elif case == "size":
        send_frame(probe, pubs, depth[:200, :300])
    elif case == "zeros":
        send_frame(probe, pubs, np.zeros_like(depth))
    elif case == "joint_names":
        send_frame(probe, pubs, depth, joint_names=["wrist"] + list(default_hand().joint_names[1:]))
    elif case == "nan":
        send_frame(probe, pubs, np.full_like(depth, np.nan), encoding="32FC1")
    elif case == "stale_joints":      # newest joint state 1 s before the frame (earlier cases' >= 0.3 s)
        time.sleep(0.3)
        send_frame(probe, pubs, depth, joint_age_s=1.0)
    elif case == "zero_focal":        # rejected; the node keeps the last good camera_info
        send_frame(probe, pubs, depth, zero_focal=True)
    assert probe.wait_for(lambda: diag_mentions(diags, expect), 10), (case, node.output[-2000:])
    assert expect.split()[0] in node.output
    assert node.alive()
    n = len(clouds)
    assert probe.wait_for(lambda: (send_frame(probe, pubs, depth), len(clouds) > n)[1], 10, poll=0.2)


def test_max_cloud_rate_segments_only_frames_a_control_period_apart():
    """max_cloud_rate (issue 16): frames sooner than 0.9 period after the last cloud's stamp are skipped."""
    # its own output topic: the module's other segmentation node (fixture `graph`) sees these frames too
    rated = "perception/object_cloud_rated"
    node = NodeProcess("segmentation_node", name="segmentation_rated", params={"max_cloud_rate": 5.0},
                       remaps={topics.OBJECT_CLOUD.name: rated})
    probe = RosProbe("seg_rate_probe")
    try:
        clouds = probe.subscribe(PointCloud2, rated, qos_profile(topics.OBJECT_CLOUD))
        pubs = {
            "depth": probe.publisher(Image, topics.DEPTH_IMAGE.name, qos_profile(topics.DEPTH_IMAGE)),
            "info": probe.publisher(CameraInfo, topics.DEPTH_INFO.name, qos_profile(topics.DEPTH_INFO)),
            "joints": probe.publisher(JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES)),
        }
        assert probe.wait_for(lambda: probe.node.count_publishers(rated) > 0, 30), node.output
        depth = scene()
        # the first cloud proves the graph is connected; then 30 frames at 30 Hz of stamps
        assert probe.wait_for(lambda: (send_frame(probe, pubs, depth), len(clouds) > 0)[1], 15, poll=0.25), \
            node.output
        time.sleep(0.3)
        before = len(clouds)
        for _ in range(30):
            send_frame(probe, pubs, depth)
            time.sleep(1 / 30)
        time.sleep(1.0)
        stamps = [conv.stamp_to_ns(c.header.stamp) for c in clouds[before:]]
    finally:
        probe.close()
        node.stop()
    # 1 s of frames at 5 Hz: 5 clouds (6 with the rounding of the first), each >= 0.9 * 200 ms after the last
    assert 4 <= len(stamps) <= 6, stamps
    assert all(b - a >= 0.18e9 for a, b in zip(stamps, stamps[1:])), np.diff(stamps)
