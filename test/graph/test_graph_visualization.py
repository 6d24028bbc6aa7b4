"""What a viewer gets over real DDS: hand_view_node's /tf (our forward kinematics of the published joints), its
latched URDF and its markers; segmentation_node's debug image of a simulator frame, throttled, drawn only while
someone subscribes, with every label."""
from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, QuaternionStamped
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from urdf_parser_py.urdf import URDF
from visualization_msgs.msg import Marker, MarkerArray

from dexterity_ros import topics
from dexterity_ros.diagnostic_keys import Segmentation, count
from dexterity_ros.geometry import make_transform, quat_to_matrix
from dexterity_ros.hand_model import default_hand
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.perception import ObjectCloudExtractor, PixelLabel, load_perception_config
from dexterity_ros.ros import conversions as conv
from dexterity_ros.ros.common import qos_profile
from dexterity_ros.diagnostic_keys import HandView, Segmentation
from dexterity_ros.visualization import LABEL_COLOURS, LEGEND_BACKGROUND, NS_GOAL, NS_HAND, NS_TRACKED
from ros_harness import NodeProcess, RosProbe

DEBUG_RATE_HZ = 4.0


@pytest.fixture(scope="module")
def graph():
    """Both nodes start together (their start-up overlaps); one probe talks to both."""
    view = NodeProcess("hand_view_node", name="hand_view", params={"tf_rate_hz": 0.0, "marker_rate_hz": 20.0})
    segmentation = NodeProcess("segmentation_node", name="segmentation",
                               params={"debug_image_rate_hz": DEBUG_RATE_HZ})
    probe = RosProbe("visualization_probe")
    yield view, segmentation, probe
    probe.close()
    view.stop()
    segmentation.stop()


@pytest.fixture(scope="module")
def sim_frame():
    """A rendered simulator frame (depth, the camera_info the robot would publish, measured joints) on which
    segmentation finds object, hand and outlier pixels."""
    from dexterity_ros.sim.env import ReorientEnv

    extractor = ObjectCloudExtractor(load_perception_config())
    with ReorientEnv(seed=0) as env:
        for seed in range(6):
            obs = env.reset(seed=seed)
            frame = obs.render()
            result = extractor.extract(frame.depth, frame.calibrated_intrinsics, frame.calibrated_extrinsic.matrix,
                                       obs.joint_positions)
            if result.ok and result.counts.get("outliers_removed", 0) >= 3:
                return frame.depth, frame.calibrated_intrinsics, np.array(obs.joint_positions)
    pytest.fail("no simulator frame among 6 seeds with segmentation outliers")


def status_values(diags, node_name: str) -> list[dict[str, str]]:
    return [{kv.key: kv.value for kv in s.values} for arr in list(diags) for s in arr.status if node_name in s.name]


def test_hand_view_publishes_fk_on_tf_a_latched_urdf_and_markers(graph):
    view, _, probe = graph
    hand = default_hand()
    tf = probe.subscribe(TFMessage, topics.TF.name, qos_profile(topics.TF))
    markers = probe.subscribe(MarkerArray, topics.VIS_MARKERS.name, qos_profile(topics.VIS_MARKERS))
    diags = probe.subscribe(DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS))
    joints = probe.publisher(JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES))
    pose_pub = probe.publisher(PoseStamped, topics.OBJECT_POSE_TRACKED.name, qos_profile(topics.OBJECT_POSE_TRACKED))
    goal_pub = probe.publisher(QuaternionStamped, topics.GOAL.name, qos_profile(topics.GOAL))
    assert probe.wait_for(lambda: len(markers) > 0, 30), view.output[-3000:]

    # the URDF was published at start; a subscriber that comes later still gets it (latched)
    description = probe.subscribe(String, topics.ROBOT_DESCRIPTION.name, qos_profile(topics.ROBOT_DESCRIPTION))
    assert probe.wait_for(lambda: len(description) > 0, 10)
    model = URDF.from_xml_string(description[0].data)
    assert [j.name for j in model.joints if j.type == "revolute"] == list(hand.joint_names)

    # /tf: chained from the palm, the link poses are the forward kinematics of the joints we publish
    q = np.random.default_rng(5).uniform(hand.lower, hand.upper)
    names = list(hand.driver_order("allegro_v4"))                      # any known names map by name
    stamp = probe.node.get_clock().now().nanoseconds

    def sent() -> list[TFMessage]:
        return [m for m in tf if conv.stamp_to_ns(m.transforms[0].header.stamp) == stamp]

    assert probe.wait_for(lambda: (joints.publish(conv.arrays_to_joint_state(names, q, stamp)), bool(sent()))[1],
                          10, poll=0.1), view.output[-3000:]
    poses = {"palm": np.eye(4)}
    edges = {(t.header.frame_id, t.child_frame_id): t for t in sent()[0].transforms}
    assert {child for _, child in edges} == {link.name for link in hand.links}
    while len(poses) <= len(edges):
        for (parent, child), t in edges.items():
            if parent in poses and child not in poses:
                r = t.transform.rotation
                matrix = make_transform(quat_to_matrix([r.w, r.x, r.y, r.z]),
                                        [t.transform.translation.x, t.transform.translation.y,
                                         t.transform.translation.z])
                poses[child] = poses[parent] @ matrix
    rot, pos = HandKinematics().link_poses(q)
    for i, name in enumerate(HandKinematics().link_names):
        assert np.max(np.abs(poses[name][:3, :3] - rot[i])) < 1e-9, name
        assert np.max(np.abs(poses[name][:3, 3] - pos[i])) < 1e-9, name

    # markers: the hand's shapes at those joints, the tracked object at its pose, the goal beside the hand
    goal = np.array([np.cos(0.4), np.sin(0.4), 0.0, 0.0])
    goal_pub.publish(conv.goal_msg(goal, stamp, topics.PALM_FRAME))
    tracked = make_transform(quat_to_matrix([np.cos(0.2), 0.0, 0.0, np.sin(0.2)]), [0.06, 0.01, -0.03])

    def complete(array: MarkerArray) -> bool:
        spaces = {m.ns for m in array.markers}
        return {NS_HAND, NS_TRACKED, NS_GOAL} <= spaces

    def latest() -> MarkerArray | None:
        return next((m for m in reversed(markers) if complete(m)), None)

    assert probe.wait_for(lambda: (pose_pub.publish(conv.pose_to_msg(tracked, probe.node.get_clock().now()
                                                                       .nanoseconds, topics.PALM_FRAME)),
                                   latest() is not None)[1], 10, poll=0.1), view.output[-3000:]
    array = latest()
    assert all(m.header.frame_id == topics.PALM_FRAME for m in array.markers)
    shapes = HandKinematics().collision_shapes(q)
    cubes = [m for m in array.markers if m.ns == NS_HAND and m.type == Marker.CUBE]
    assert len(cubes) == len(shapes.box_half)
    margin = load_perception_config().hand_margin
    for m, centre, half in zip(cubes, shapes.box_center, shapes.box_half):
        np.testing.assert_allclose([m.pose.position.x, m.pose.position.y, m.pose.position.z], centre, atol=1e-9)
        np.testing.assert_allclose([m.scale.x, m.scale.y, m.scale.z], 2 * (half + margin), atol=1e-9)
    (object_points,) = [m for m in array.markers if m.ns == NS_TRACKED and m.type == Marker.POINTS]
    p, o = object_points.pose.position, object_points.pose.orientation
    np.testing.assert_allclose([p.x, p.y, p.z], tracked[:3, 3], atol=1e-9)
    np.testing.assert_allclose(quat_to_matrix([o.w, o.x, o.y, o.z]), tracked[:3, :3], atol=1e-9)
    assert len(object_points.points) > 100 and object_points.lifetime.sec + object_points.lifetime.nanosec > 0
    (goal_points,) = [m for m in array.markers if m.ns == NS_GOAL and m.type == Marker.POINTS]
    o = goal_points.pose.orientation
    np.testing.assert_allclose(quat_to_matrix([o.w, o.x, o.y, o.z]), quat_to_matrix(goal), atol=1e-9)
    assert abs(goal_points.pose.position.y - tracked[1, 3]) > 0.1          # beside the hand, not over the object

    # garbage joint names: reported, the node keeps drawing
    joints.publish(conv.arrays_to_joint_state(["wrist"] + names[1:], q, stamp))
    assert probe.wait_for(lambda: any(count(HandView.BAD_JOINT_STATE) in v
                                      for v in status_values(diags, "hand_view")), 10), view.output[-3000:]
    assert view.alive()


def label_pixels(image: np.ndarray, label: PixelLabel) -> int:
    c = np.asarray(LABEL_COLOURS[label], dtype=np.float64)
    rgb = image.reshape(-1, 3).astype(np.float64)
    cosine = rgb @ c / np.maximum(np.linalg.norm(rgb, axis=1) * np.linalg.norm(c), 1e-9)
    return int((cosine > 0.998).sum())


def test_debug_image_is_throttled_drawn_only_for_a_subscriber_and_shows_every_label(graph, sim_frame):
    _, segmentation, probe = graph
    depth, intrinsics, q = sim_frame
    hand = default_hand()
    clouds = probe.subscribe(PointCloud2, topics.OBJECT_CLOUD.name, qos_profile(topics.OBJECT_CLOUD), stamp=True)
    diags = probe.subscribe(DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS),
                            key="segmentation diagnostics")
    pubs = {"depth": probe.publisher(Image, topics.DEPTH_IMAGE.name, qos_profile(topics.DEPTH_IMAGE)),
            "info": probe.publisher(CameraInfo, topics.DEPTH_INFO.name, qos_profile(topics.DEPTH_INFO)),
            "joints": probe.publisher(JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES))}

    def send() -> None:
        stamp = probe.node.get_clock().now().nanoseconds
        pubs["joints"].publish(conv.arrays_to_joint_state(list(hand.joint_names), q, stamp))
        pubs["info"].publish(conv.intrinsics_to_camera_info(intrinsics, stamp, topics.CAMERA_FRAME))
        pubs["depth"].publish(conv.depth_to_image(depth, stamp, topics.CAMERA_FRAME))

    assert probe.wait_for(lambda: probe.node.count_subscribers(topics.DEPTH_IMAGE.name) > 0, 30), \
        segmentation.output[-3000:]
    assert probe.wait_for(lambda: (send(), len(clouds) >= 5)[1], 20, poll=0.1), segmentation.output[-3000:]

    # nobody watches: clouds, but not one debug image drawn
    def published_clouds() -> list[int]:
        return [int(v.get(count(Segmentation.CLOUDS_PUBLISHED), 0)) for v in status_values(diags, "segmentation")]

    n = len(clouds)
    assert probe.wait_for(lambda: (send(), max(published_clouds(), default=0) >= n + 5)[1], 15, poll=0.1)
    assert not any(count(Segmentation.DEBUG_IMAGES) in v for v in status_values(diags, "segmentation"))

    # a subscriber: debug images at most DEBUG_RATE_HZ, while clouds keep the frame rate
    images = probe.subscribe(Image, topics.DEBUG_IMAGE.name, qos_profile(topics.DEBUG_IMAGE), stamp=True)
    assert probe.wait_for(lambda: probe.node.count_publishers(topics.DEBUG_IMAGE.name) > 0, 10)
    assert probe.wait_for(lambda: (send(), len(images) > 0)[1], 15, poll=0.05), segmentation.output[-3000:]
    start, clouds_before, images_before = time.monotonic(), len(clouds), len(images)
    while time.monotonic() - start < 3.0:
        send()
        time.sleep(1 / 15)
    time.sleep(0.5)
    window = time.monotonic() - start
    with probe.lock:
        new_images, new_clouds = len(images) - images_before, len(clouds) - clouds_before
    assert 3 <= new_images <= DEBUG_RATE_HZ * window + 2, (new_images, window)
    assert new_clouds >= new_images + 10, (new_clouds, new_images)

    _, msg = images[-1]
    assert msg.encoding == "rgb8" and msg.header.frame_id == topics.CAMERA_FRAME
    image = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step // 3, 3)
    legend = np.all(image[:, :6] == LEGEND_BACKGROUND, axis=(1, 2))      # the strip under the picture
    height = len(legend) - int(np.argmin(legend[::-1]))
    assert 0 < height < msg.height and legend[height:].all()
    view = image[:height]
    for label in (PixelLabel.OBJECT, PixelLabel.HAND, PixelLabel.OUTLIER):
        assert label_pixels(view, label) > 0, label.name
    grey = view[(view[..., 0] == view[..., 1]) & (view[..., 1] == view[..., 2]) & (view[..., 0] > 0)]
    assert len(grey) > view.shape[0] * view.shape[1] // 4                # background: depth in grey
    assert segmentation.alive()


@pytest.mark.parametrize("params, says", [({"object": "no_such_object"}, "unknown object 'no_such_object'"),
                                          ({"goal_offset": [0.0, 0.1]}, "goal_offset needs 3 finite numbers")])
def test_hand_view_refuses_bad_parameters_by_name_with_exit_2(params, says):
    node = NodeProcess("hand_view_node", name="hand_view_bad", params=params)
    try:
        code = node.proc.wait(timeout=60)
    finally:
        node.stop()
    assert code == 2, node.output
    assert says in node.output and "Traceback" not in node.output, node.output
