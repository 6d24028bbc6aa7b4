"""camera_node over real DDS: a played-back SDK recording, no camera at all, frames that stop.

The recording is made from an rs.software_device() stream with the SDK
recorder; the node plays it with ``rosbag_filename`` as its own process. The
stall test runs the node in-process on a software device so the test can
stop and resume the frames. Also realsense-ros's conventions: node /camera/camera
with private topic names, depth_qos, wait_for_device_timeout, reconnect_timeout.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ros_harness import NodeProcess, RosProbe  # imports rclpy before pyrealsense2 (see camera/realsense.py)

from dexterity_ros.camera import RealSenseCamera, RealSenseCameraConfig, SoftwareDepthDevice, TimestampDomain
from dexterity_ros.camera_model import Intrinsics
from dexterity_ros.config import ConfigError, from_dict
from dexterity_ros.diagnostic_keys import Camera, count, latency_p50, rate
from dexterity_ros.nodes.camera_node import CameraNode, CameraNodeConfig
from dexterity_ros.ros.common import qos_profile
from dexterity_ros.topics import CAMERA_FRAME, DEPTH_IMAGE, DEPTH_INFO, DIAGNOSTICS

INTR = Intrinsics(64, 48, 50.0, 51.0, 31.5, 23.5)
DEPTH_SCALE = 0.0001
NODE_FQN = "/camera/camera"       # realsense2_camera's node (rs_launch.py: camera_namespace/camera_name)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def frame_mm(n: int) -> np.ndarray:
    """Frame n in whole millimetres (exact in 16UC1), with a block of holes."""
    v, u = np.mgrid[0:INTR.height, 0:INTR.width]
    mm = (300 + 10 * u + 5 * v + n).astype(np.uint16)
    mm[10:14, 20:26] = 0
    return mm


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """An SDK recording (.db3) of 10 software-device frames at 30 Hz; returns (path, {mm bytes: n})."""
    path = tmp_path_factory.mktemp("camera") / "software_stream.db3"
    sw = SoftwareDepthDevice(INTR, fps=30, depth_scale=DEPTH_SCALE)
    cam = RealSenseCamera(RealSenseCameraConfig(device=sw.device, depth_profile="0x0x0", record_filename=str(path)))
    frames = {}
    with cam:
        for n in range(10):
            mm = frame_mm(n)
            sw.push_depth(mm / 1000.0, 2000.0 + 33.3 * n, n + 1)
            cam.read(2.0)
            frames[mm.tobytes()] = n
            time.sleep(1 / 30)
    assert path.is_file()
    return path, frames


def camera_status(diagnostics: list):
    """Latest camera_node DiagnosticStatus as (level, message, values) or None."""
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name.endswith(NODE_FQN):
                level = status.level[0] if isinstance(status.level, (bytes, bytearray)) else int(status.level)
                return level, status.message, {kv.key: kv.value for kv in status.values}
    return None


def test_node_plays_a_recording_over_dds(recording):
    path, frames = recording
    with RosProbe("camera_probe") as probe:
        images = probe.subscribe(Image, DEPTH_IMAGE.name, qos_profile(DEPTH_IMAGE))
        infos = probe.subscribe(CameraInfo, DEPTH_INFO.name, qos_profile(DEPTH_INFO))
        reliable = probe.subscribe(Image, DEPTH_IMAGE.name, RELIABLE, key="reliable")
        diagnostics = probe.subscribe(DiagnosticArray, DIAGNOSTICS.name, qos_profile(DIAGNOSTICS))
        with NodeProcess("camera_node", params={"rosbag_filename": str(path), "rosbag_loop": True}) as node:
            got = probe.wait_for(lambda: len(images) >= 12 and len(infos) >= 12, timeout=25)
            assert got, f"no depth received; node output:\n{node.output}"
            assert ("camera", "/camera") in probe.node.get_node_names_and_namespaces()
            assert not reliable   # default depth_qos SENSOR_DATA (best effort): a RELIABLE reader is incompatible
            assert probe.wait_for(lambda: (camera_status(diagnostics) or (0, "", {}))[2].get(Camera.STAMP_METHOD),
                                  timeout=5), node.output
            publishers = probe.node.get_publishers_info_by_topic("/" + DEPTH_IMAGE.name)
            assert len(publishers) == 1
            assert publishers[0].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
            assert node.alive()
            images, infos = list(images), list(infos)
            assert node.stop() == 0, node.output                  # clean exit on SIGINT (no SDK abort)
        level, message, values = camera_status(diagnostics)
    now = time.time_ns()
    seen = set()
    for img in images:
        assert (img.encoding, img.width, img.height, img.step) == ("16UC1", 64, 48, 128)
        assert img.header.frame_id == CAMERA_FRAME and not img.is_bigendian
        data = np.frombuffer(bytes(img.data), dtype="<u2").reshape(48, 64)
        assert data.tobytes() in frames, "published depth is not one of the recorded frames"
        seen.add(frames[data.tobytes()])
    assert len(seen) >= 8                                   # the whole recording went through (looping)
    for info in infos:
        assert (info.width, info.height) == (64, 48) and info.header.frame_id == CAMERA_FRAME
        np.testing.assert_allclose(info.k, [50.0, 0, 31.5, 0, 51.0, 23.5, 0, 0, 1])
        assert info.distortion_model == "plumb_bob"
    stamps = [img.header.stamp.sec * 10**9 + img.header.stamp.nanosec for img in images]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "stamps must increase, also across loops"
    assert all(abs(s - now) < 30e9 for s in stamps), "recorded timestamps must be re-based onto now"
    info_stamps = {(i.header.stamp.sec, i.header.stamp.nanosec) for i in infos}
    matched = sum((i.header.stamp.sec, i.header.stamp.nanosec) in info_stamps for i in images)
    assert matched >= 0.8 * len(images), "each image has a camera_info with the same stamp"
    assert level == 0 or (level == 1 and "lost before frame" in message), message   # drops under CPU load
    assert values[Camera.TIMESTAMP_DOMAIN] == TimestampDomain.HARDWARE_CLOCK.value
    assert values[Camera.STAMP_METHOD].startswith("device clock")
    assert values[Camera.SOURCE].startswith("recording")
    assert values[Camera.DEPTH_SCALE] == "0.0001"


def test_without_a_camera_the_node_exits_with_a_clear_message():
    if RealSenseCamera.find_cameras():
        pytest.skip("a RealSense camera is attached to this machine")
    node = NodeProcess("camera_node", params={"wait_for_device": False})
    try:
        code = node.proc.wait(timeout=30)
    finally:
        node.stop()
    assert code == 1, node.output
    assert "no RealSense device found" in node.output and "wait_for_device" in node.output


def test_waiting_for_a_camera_is_a_warning_not_an_exit():
    if RealSenseCamera.find_cameras():
        pytest.skip("a RealSense camera is attached to this machine")
    with RosProbe("camera_wait_probe") as probe:
        diagnostics = probe.subscribe(DiagnosticArray, DIAGNOSTICS.name, qos_profile(DIAGNOSTICS))
        with NodeProcess("camera_node", params={"wait_for_device": True, "reconnect_backoff_initial": 0.2,
                                                "reconnect_backoff_max": 0.5}) as node:
            assert probe.wait_for(lambda: camera_status(diagnostics) is not None, timeout=20), node.output
            level, message, _ = camera_status(diagnostics)
            assert level == 1 and "waiting for the camera" in message
            assert node.alive()
            code = node.stop()
    assert code == 0, node.output


class Feeder:
    """Pushes frames into a software device at ~30 Hz until paused; can skip frame numbers."""

    def __init__(self, sw: SoftwareDepthDevice):
        self.sw = sw
        self.frame_number = 0
        self.skip_at: int | None = None
        self.running = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            if not self.running.wait(0.05):
                continue
            self.frame_number += 1
            if self.frame_number == self.skip_at:
                self.frame_number += 3                       # three frames lost on the way
            self.sw.push_depth(frame_mm(self.frame_number % 50) / 1000.0, time.monotonic() * 1000.0,
                               self.frame_number)
            time.sleep(1 / 30)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)


def test_frames_stop_then_resume_node_reports_and_recovers():
    sw = SoftwareDepthDevice(INTR, fps=30, depth_scale=DEPTH_SCALE)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = CameraNode(device=sw.device, context=context, parameter_overrides=[
        Parameter("depth_module.depth_profile", value="0x0x0"),
        Parameter("decimation_filter.enable", value=True),
        Parameter("frame_timeout", value=0.6),
        Parameter("reconnect_backoff_initial", value=1.2),   # long enough for 1 Hz /diagnostics to show WARN
        Parameter("reconnect_backoff_max", value=1.2)])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    feeder = Feeder(sw)
    try:
        with RosProbe("camera_stall_probe") as probe:
            images = probe.subscribe(Image, DEPTH_IMAGE.name, qos_profile(DEPTH_IMAGE))
            infos = probe.subscribe(CameraInfo, DEPTH_INFO.name, qos_profile(DEPTH_INFO))
            diagnostics = probe.subscribe(DiagnosticArray, DIAGNOSTICS.name, qos_profile(DIAGNOSTICS))
            feeder.skip_at = 15
            feeder.running.set()

            def streaming_with_drop() -> bool:
                status = camera_status(diagnostics)
                return (status is not None and len(images) >= 20
                        and int(status[2].get(count(Camera.FRAMES_LOST), 0)) >= 3)

            assert probe.wait_for(streaming_with_drop, timeout=10), (len(images), camera_status(diagnostics))
            # a drop is a WARN for a moment (Health hold time), then the stream is OK again
            assert probe.wait_for(lambda: camera_status(diagnostics)[0] == 0, timeout=6), camera_status(diagnostics)
            _, _, values = camera_status(diagnostics)
            assert float(values[rate(Camera.DEPTH)]) > 10
            assert np.isfinite(float(values[latency_p50(Camera.STAMP_TO_PUBLISH)]))
            assert values[Camera.IMAGE_SIZE] == "32x24"
            img, info = images[-1], infos[-1]
            assert (img.width, img.height) == (32, 24) and (info.width, info.height) == (32, 24)
            assert info.k[0] == pytest.approx(25.0)

            feeder.running.clear()                                   # the camera goes silent
            stalled_at = len(diagnostics)

            def levels_since_stall() -> set:
                return {s.level[0] if isinstance(s.level, (bytes, bytearray)) else int(s.level)
                        for a in diagnostics[stalled_at:] for s in a.status if s.name.endswith(NODE_FQN)}

            assert probe.wait_for(lambda: 2 in levels_since_stall(), timeout=10), camera_status(diagnostics)
            assert 1 in levels_since_stall()                         # WARN first, ERROR once reopening fails
            level, message, values = camera_status(diagnostics)
            assert "no depth frames" in message and int(values[count(Camera.RECONNECTS)]) >= 2
            assert spinner.is_alive() and node._thread.is_alive()

            published = len(images)
            feeder.running.set()                                     # and comes back
            assert probe.wait_for(lambda: len(images) >= published + 10
                                  and camera_status(diagnostics)[0] == 0, timeout=10), camera_status(diagnostics)
            stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in list(images)]
            assert all(b > a for a, b in zip(stamps, stamps[1:]))
    finally:
        feeder.close()
        node.destroy_node()
        executor.shutdown()
        rclpy.shutdown(context=context)
        spinner.join(timeout=2)


# ----------------------------------------------------------- realsense-ros conventions
def test_reliable_subscriber_gets_frames_with_depth_qos_system_default(recording):
    """realsense-ros publishes depth RELIABLE (depth_qos SYSTEM_DEFAULT); ours does with the same parameter."""
    path, frames = recording
    with RosProbe("camera_qos_probe") as probe:
        images = probe.subscribe(Image, DEPTH_IMAGE.name, RELIABLE)
        infos = probe.subscribe(CameraInfo, DEPTH_INFO.name, RELIABLE)
        with NodeProcess("camera_node", params={"rosbag_filename": str(path), "rosbag_loop": True,
                                                "depth_qos": "SYSTEM_DEFAULT", "depth_info_qos": "DEFAULT"}) as node:
            assert probe.wait_for(lambda: len(images) >= 5 and len(infos) >= 5, timeout=25), node.output
            for topic in (DEPTH_IMAGE, DEPTH_INFO):
                [publisher] = probe.node.get_publishers_info_by_topic("/" + topic.name)
                assert publisher.qos_profile.reliability == ReliabilityPolicy.RELIABLE, topic.name
                assert (publisher.node_namespace, publisher.node_name) == ("/camera", "camera")
            image = images[-1]
            assert node.stop() == 0, node.output
    assert np.frombuffer(bytes(image.data), dtype="<u2").tobytes() in frames


def test_node_is_camera_in_namespace_camera_with_private_topics():
    """As realsense2_camera: node /camera/camera publishes ~/depth/..., i.e. the names topics.py gives."""
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes, names = [], []
    try:
        for namespace, prefix in ((None, "/camera/camera"), ("/robot1/camera", "/robot1/camera/camera")):
            sw = SoftwareDepthDevice(INTR, fps=30, depth_scale=DEPTH_SCALE)
            kwargs = {"namespace": namespace} if namespace else {}
            node = CameraNode(device=sw.device, context=context, **kwargs, parameter_overrides=[
                Parameter("depth_module.depth_profile", value="0x0x0"),
                Parameter("serial_no", value=12345678901.0)])      # how ROS types serial_no:=012345678901
            nodes.append(node)
            assert node.get_fully_qualified_name() == prefix
            names.append((node._image_pub.topic_name, node._info_pub.topic_name))
            assert names[-1] == (f"{prefix}/depth/image_rect_raw", f"{prefix}/depth/camera_info")
            assert node.config.serial_no == 12345678901
        assert names[0] == ("/" + DEPTH_IMAGE.name, "/" + DEPTH_INFO.name)
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=context)


def test_reconnect_and_wait_parameters_map_onto_the_back_off():
    cfg = from_dict(CameraNodeConfig, {})
    assert (cfg.backoff_initial_s, cfg.backoff_max_s, cfg.waits_for_device) == (0.5, 6.0, False)
    assert (cfg.depth_qos, cfg.depth_info_qos) == ("SENSOR_DATA", "SENSOR_DATA")
    cfg = from_dict(CameraNodeConfig, {"reconnect_timeout": 0.2})            # realsense-ros: a fixed 0.2 s retry
    assert (cfg.backoff_initial_s, cfg.backoff_max_s) == (0.2, 0.2)
    cfg = from_dict(CameraNodeConfig, {"reconnect_timeout": 2.0, "reconnect_backoff_max": 8.0})
    assert cfg.backoff_max_s == 8.0                                          # ours takes precedence when set
    cfg = from_dict(CameraNodeConfig, {"wait_for_device_timeout": 60.0})     # realsense-ros: wait up to 60 s
    assert cfg.waits_for_device and cfg.device_wait_limit_s == 60.0
    cfg = from_dict(CameraNodeConfig, {"wait_for_device": True})             # -1 (default): no limit
    assert cfg.waits_for_device and cfg.device_wait_limit_s is None
    with pytest.raises(ConfigError, match="below reconnect_backoff_initial"):
        from_dict(CameraNodeConfig, {"reconnect_backoff_max": 0.1})
    with pytest.raises(ConfigError, match="'RELIABLE' is not one of .*'SYSTEM_DEFAULT'"):
        from_dict(CameraNodeConfig, {"depth_qos": "RELIABLE"})


def test_wait_for_device_timeout_waits_then_exits_1():
    if RealSenseCamera.find_cameras():
        pytest.skip("a RealSense camera is attached to this machine")
    started = time.monotonic()
    with RosProbe("camera_timeout_probe") as probe:
        diagnostics = probe.subscribe(DiagnosticArray, DIAGNOSTICS.name, qos_profile(DIAGNOSTICS))
        node = NodeProcess("camera_node", params={"wait_for_device_timeout": 4.0, "reconnect_timeout": 0.3})
        try:
            assert probe.wait_for(lambda: "retrying in 0.3 s" in (camera_status(diagnostics) or (0, ""))[1],
                                  timeout=20), (camera_status(diagnostics), node.output)
            assert camera_status(diagnostics)[0] == 1                     # waiting is a WARN
            code = node.proc.wait(timeout=30)
        finally:
            node.stop()
    assert time.monotonic() - started >= 4.0
    assert code == 1, node.output
    assert "no camera within wait_for_device_timeout (4 s)" in node.output and "Traceback" not in node.output
