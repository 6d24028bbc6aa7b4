"""camera_node: RealSense depth -> ``~/depth/image_rect_raw`` + ``~/depth/camera_info``.

A thin shell over :mod:`dexterity_ros.camera`: a capture thread reads the
device (live camera, SDK recording via ``rosbag_filename``, or a software
device handed to the constructor), stamps each frame on the ROS clock with
:class:`~dexterity_ros.camera.timestamps.FrameStamper` (device clock mapped
onto ROS time; see that module and docs/camera.md for the clock-domain rules)
and publishes 16UC1 millimetres + CameraInfo in ``camera_depth_optical_frame``
under realsense-ros's names and parameters: like realsense2_camera the node is
``camera`` in namespace ``camera`` and publishes on private names, so
/camera/camera publishes /camera/camera/depth/image_rect_raw (the topic
:mod:`dexterity_ros.topics` names) and its parameters are set and listed at
/camera/camera. The image QoS is ``depth_qos`` (default SENSOR_DATA, best
effort; realsense-ros defaults to SYSTEM_DEFAULT, i.e. reliable: see
docs/camera.md).

No device at start: exit 1 with the reason, or wait for one with back-off
(``wait_for_device``, or realsense-ros's ``wait_for_device_timeout`` > 0, which
also bounds the wait). Frames stop or the device goes away mid-run: WARN,
then ERROR on /diagnostics, and the device is reopened with exponential
back-off; the node itself keeps running. /diagnostics also carries the frame
rate, frames lost (device frame-number gaps) and latency (frame stamp ->
publish).
"""
from __future__ import annotations

import dataclasses
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import (QoSProfile, qos_profile_parameter_events, qos_profile_parameters,
                       qos_profile_sensor_data, qos_profile_services_default, qos_profile_system_default)
from rclpy.qos import qos_profile_default as _qos_profile_default
from sensor_msgs.msg import CameraInfo, Image

# rclpy (via ros.common) must load before pyrealsense2 (via ..camera): see dexterity_ros/camera/realsense.py.
from ..ros.common import DexterityNode, NodeExit, qos_profile, run_node   # isort: skip
from ..camera import (CameraError, CameraNotFoundError, DepthReading, ExponentialBackoff, FrameDropCounter,
                      FrameStamper, FrameTimeoutError, PlaybackFinishedError, RealSenseCamera,
                      RealSenseCameraConfig)
from ..config import ConfigError, param
from ..realtime import RealtimeConfig
from ..diagnostic_keys import Camera as K
from ..ros.conversions import depth_to_image, intrinsics_to_camera_info
from ..diagnostics import Level
from ..topics import CAMERA_FRAME, DEPTH_IMAGE

_READ_SLICE_S = 0.2   # longest a read blocks, so shutdown and stall checks stay responsive

# realsense2_camera's defaults (RealSenseNodeFactory: Node("camera", "/camera"); rs_launch.py camera_name and
# camera_namespace): node /camera/camera, whose private topics are the ones topics.DEPTH_IMAGE/DEPTH_INFO name.
NODE_NAME = "camera"
NODE_NAMESPACE = "camera"
IMAGE_TOPIC = "~/depth/image_rect_raw"
INFO_TOPIC = "~/depth/camera_info"

# realsense-ros's <stream>_qos values (ros_utils.cpp qos_string_to_qos; its UNKNOWN is not a usable profile)
QOS_PRESETS: dict[str, QoSProfile] = {
    "SYSTEM_DEFAULT": qos_profile_system_default,
    "DEFAULT": _qos_profile_default,
    "PARAMETER_EVENTS": qos_profile_parameter_events,
    "SERVICES_DEFAULT": qos_profile_services_default,
    "PARAMETERS": qos_profile_parameters,
    "SENSOR_DATA": qos_profile_sensor_data,
}
QosName = Literal["SYSTEM_DEFAULT", "DEFAULT", "PARAMETER_EVENTS", "SERVICES_DEFAULT", "PARAMETERS", "SENSOR_DATA"]


@dataclass(frozen=True)
class CameraNodeConfig(RealSenseCameraConfig, RealtimeConfig):
    """The device parameters (realsense-ros names) plus how the node copes with losing the device."""

    wait_for_device: bool = param(False, "with no device at start, wait and retry with back-off instead of "
                                  "exiting with an error (also on when wait_for_device_timeout > 0)", read_only=True)
    wait_for_device_timeout: float = param(
        -1.0, "realsense-ros: longest wait (s) for a device at start, then exit 1; <= 0 = no limit. A value > 0 "
        "turns waiting on by itself. Unlike realsense-ros (which always waits), the default (-1 with "
        "wait_for_device false) exits at once", read_only=True)
    reconnect_timeout: float = param(6.0, "realsense-ros: seconds between attempts to open a missing or lost "
                                     "device; here the cap of the exponential back-off (reconnect_backoff_initial, "
                                     "doubling up to this)", read_only=True, min=0.01, max=600.0)
    reconnect_backoff_initial: float = param(0.5, "first delay (s) before reopening a lost or missing device; "
                                             "doubles per failed attempt up to the cap (reconnect_backoff_max if "
                                             "set, else reconnect_timeout)", read_only=True, min=0.01, max=60.0)
    reconnect_backoff_max: float = param(0.0, "if > 0, the back-off cap (s), taking precedence over "
                                         "reconnect_timeout; 0 = use reconnect_timeout", read_only=True,
                                         min=0.0, max=600.0)
    frame_timeout: float = param(1.0, "seconds without a depth frame before the stream counts as stalled "
                                 "(WARN) and the device is reopened", read_only=True, min=0.05, max=60.0)
    depth_qos: QosName = param(
        "SENSOR_DATA", "QoS of ~/depth/image_rect_raw (realsense-ros values: SYSTEM_DEFAULT, DEFAULT, "
        "PARAMETER_EVENTS, SERVICES_DEFAULT, PARAMETERS, SENSOR_DATA). Default SENSOR_DATA (best effort, keep "
        "last 5), where realsense-ros defaults to SYSTEM_DEFAULT (reliable): a RELIABLE subscriber needs "
        "depth_qos:=SYSTEM_DEFAULT or DEFAULT", read_only=True)
    depth_info_qos: QosName = param(
        "SENSOR_DATA", "QoS of ~/depth/camera_info (same values; realsense-ros defaults to DEFAULT, reliable)",
        read_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if 0 < self.reconnect_backoff_max < self.reconnect_backoff_initial:
            raise ConfigError(f"reconnect_backoff_max ({self.reconnect_backoff_max}) is below "
                              f"reconnect_backoff_initial ({self.reconnect_backoff_initial})")

    @property
    def backoff_max_s(self) -> float:
        """Longest delay between (re)open attempts: reconnect_backoff_max if set, else reconnect_timeout."""
        return self.reconnect_backoff_max if self.reconnect_backoff_max > 0 else self.reconnect_timeout

    @property
    def backoff_initial_s(self) -> float:
        return min(self.reconnect_backoff_initial, self.backoff_max_s)

    @property
    def waits_for_device(self) -> bool:
        return self.wait_for_device or self.wait_for_device_timeout > 0

    @property
    def device_wait_limit_s(self) -> float | None:
        """How long to wait for a device at start (None: no limit); only when waits_for_device."""
        return self.wait_for_device_timeout if self.wait_for_device_timeout > 0 else None

    def device_config(self, device: Any = None) -> RealSenseCameraConfig:
        names = {f.name for f in dataclasses.fields(RealSenseCameraConfig) if f.init} - {"device"}
        return RealSenseCameraConfig(**{n: getattr(self, n) for n in names}, device=device)


class CameraNode(DexterityNode):
    """Publishes depth + camera_info from a RealSense (or a given rs.device) until shut down."""

    def __init__(self, device: Any = None, node_name: str = NODE_NAME, **node_kwargs: Any):
        node_kwargs.setdefault("namespace", NODE_NAMESPACE)
        super().__init__(node_name, CameraNodeConfig, **node_kwargs)
        self.reject_unknown_parameters()   # a typo must not reach the device
        cfg: CameraNodeConfig = self.config
        self.camera = RealSenseCamera(cfg.device_config(device))
        self.stamper = FrameStamper()
        self.drops = FrameDropCounter()
        self.backoff = ExponentialBackoff(cfg.backoff_initial_s, cfg.backoff_max_s)
        self._image_pub = self.create_publisher(Image, IMAGE_TOPIC, image_qos(cfg.depth_qos))
        self._info_pub = self.create_publisher(CameraInfo, INFO_TOPIC, image_qos(cfg.depth_info_qos))
        self._stop = threading.Event()
        self._last_frame_mono = time.monotonic()
        self._reopen_without_frames = 0    # reopen attempts since the last frame
        self._playback_done = False
        self._last_connect_error = ""
        self._device_deadline: float | None = None
        self.health.set_value(K.SOURCE, self.camera.source)
        self.health.set_value(K.FILTERS, ", ".join(cfg.enabled_filters) or "none")
        self.health.set_value(K.QOS, f"image {cfg.depth_qos}, camera_info {cfg.depth_info_qos}")
        try:
            self._connect()
        except CameraNotFoundError as exc:
            if not cfg.waits_for_device:
                raise NodeExit(f"camera_node: {exc}. Set wait_for_device:=true (or wait_for_device_timeout:="
                               f"SECONDS) to wait for the camera.") from None
            self._start_waiting(exc)
        except CameraError as exc:  # setup errors (profile, preset, file) do not heal by waiting
            raise NodeExit(f"camera_node: {exc}") from None
        self._thread = threading.Thread(target=self._capture_loop, name="camera_capture", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- device
    def _start_waiting(self, exc: CameraError) -> None:
        limit = self.config.device_wait_limit_s
        self._last_connect_error = str(exc)
        how_long = f"up to {limit:g} s (wait_for_device_timeout)" if limit else "without a time limit"
        self.health.set_state(Level.WARN, f"waiting for the camera {how_long}: {exc}")
        self.get_logger().warning(f"{exc}; waiting for it {how_long}")
        if limit:
            self._device_deadline = time.monotonic() + limit
            # not the guarded create_timer: NodeExit must reach run_node (exit 1), like realsense-ros's exit(1)
            self._deadline_timer = Node.create_timer(self, min(0.1, limit), self._check_device_deadline,
                                                     clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _check_device_deadline(self) -> None:
        if self._device_deadline is None:
            return
        if self.camera.is_connected or self.camera.frames_read:
            self._device_deadline = None
            self._deadline_timer.cancel()
            return
        if time.monotonic() >= self._device_deadline:
            self._device_deadline = None
            self._deadline_timer.cancel()
            self._stop.set()
            raise NodeExit(f"camera_node: no camera within wait_for_device_timeout "
                           f"({self.config.wait_for_device_timeout:g} s): {self._last_connect_error}")

    def _connect(self) -> None:
        self.camera.connect()
        self.stamper.reset()
        self.drops.reset()
        self._last_frame_mono = time.monotonic()
        cam = self.camera
        width, height, fps = cam.stream_profile or (0, 0, 0)
        self.health.set_value(K.DEVICE, cam.description)
        self.health.set_value(K.FIRMWARE, cam.firmware_version or "n/a")
        self.health.set_value(K.DEPTH_PROFILE, f"{width}x{height}x{fps}")
        self.health.set_value(K.DEPTH_SCALE, f"{cam.depth_scale:.6g}")
        if cam.recording_path is not None:
            self.health.set_value(K.RECORDING_TO, str(cam.recording_path))
        wanted = cam.config.serial_no
        if isinstance(wanted, int) and cam.config.device is None and not cam.is_playback \
                and cam.serial_no != str(wanted):
            self.log_throttled("serial_no", Level.WARN, f"serial_no arrived as the number {wanted} (ROS typed the "
                               f"unquoted serial); opened device serial {cam.serial_no}. Write serial_no:="
                               f"_{cam.serial_no} so the text is kept", period_s=3600.0)
        if not self._reopen_without_frames:  # after a reopen, OK waits for the first frame
            self.health.set_state(Level.OK, f"streaming {width}x{height}@{fps} from {cam.description}")
        self.get_logger().info(f"streaming depth {width}x{height}@{fps} from {cam.description} "
                               f"(depth scale {cam.depth_scale:.6g} m/unit, filters: "
                               f"{', '.join(cam.filter_names) or 'none'})")

    def hardware_id(self) -> str:
        return self.camera.serial_no or str(self.camera.config.serial_no)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless shutting down; True if the node should keep going."""
        return not self._stop.wait(seconds) and self.context.ok()

    def _capture_loop(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                if self._playback_done:
                    self._wait(0.5)
                    continue
                if not self.camera.is_connected and not self._try_connect():
                    continue
                self._read_and_publish()
            except Exception as exc:  # the thread must not die: report and reopen
                if self._stop.is_set() or not self.context.ok():
                    return
                try:
                    self._reopen(Level.ERROR, f"camera error: {type(exc).__name__}: {exc}")
                except Exception:
                    self._wait(self.config.backoff_max_s)

    def _try_connect(self) -> bool:
        try:
            self._connect()
            return True
        except CameraError as exc:
            self._last_connect_error = str(exc)
            delay = self.backoff.next_delay()
            waiting = self.camera.frames_read == 0 and self.health.counters.get(K.RECONNECTS, 0) == 0
            level = Level.WARN if waiting else Level.ERROR
            what = "waiting for the camera" if waiting else "camera lost"
            self.health.set_state(level, f"{what}: {exc}; retrying in {delay:.1f} s "
                                         f"(attempt {self.backoff.attempts})")
            self.log_throttled("connect", level, f"{what}: {exc}; retrying in {delay:.1f} s", period_s=5.0)
            self._wait(delay)
            return False

    def _read_and_publish(self) -> None:
        try:
            reading = self.camera.read(min(_READ_SLICE_S, self.config.frame_timeout))
        except FrameTimeoutError:
            pass
        except PlaybackFinishedError as exc:
            self._playback_done = True
            self.health.set_state(Level.WARN, str(exc))
            self.get_logger().warning(str(exc))
            self.camera.disconnect()
            return
        except CameraError as exc:  # one unusable frame: report it; a lasting failure becomes a stall
            self.bad_input(K.CAMERA_READ, str(exc), Level.ERROR)
            self._wait(0.01)
        else:
            self._publish(reading)
            return
        stalled = time.monotonic() - self._last_frame_mono
        if stalled >= self.config.frame_timeout:
            level = Level.WARN if self._reopen_without_frames == 0 else Level.ERROR
            self._reopen(level, f"no depth frames for {stalled:.1f} s from {self.camera.description} "
                                f"(stalled or unplugged)")

    def _reopen(self, level: Level, message: str) -> None:
        delay = self.backoff.next_delay()
        self._reopen_without_frames += 1
        self.health.count(K.RECONNECTS)
        self.health.set_state(level, f"{message}; reopening in {delay:.1f} s")
        self.log_throttled("stall", level, f"{message}; reopening in {delay:.1f} s")
        if self.camera.is_connected:
            self.camera.disconnect()
        if self._wait(delay):
            self._last_frame_mono = time.monotonic()

    # ------------------------------------------------------------ publish
    def _publish(self, reading: DepthReading) -> None:
        ros_now = self.now_ns()
        ros_minus_system = ros_now - time.time_ns()
        stamp = self.stamper.stamp(reading.timestamp_ms, reading.domain,
                                   reading.arrival_system_ns + ros_minus_system, ros_minus_system,
                                   recorded=reading.recorded, exposure_offset_ms=reading.exposure_offset_ms)
        lost = self.drops.update(reading.frame_number)
        if lost:
            self.health.count(K.FRAMES_LOST, lost)
            self.bad_input(K.FRAME_DROP, f"{lost} depth frame(s) lost before frame #{reading.frame_number} "
                                         f"(device frame-number gap)")
        image = depth_to_image(reading.depth_m, stamp, CAMERA_FRAME)
        info = intrinsics_to_camera_info(reading.intrinsics, stamp, CAMERA_FRAME)
        self._image_pub.publish(image)
        self._info_pub.publish(info)
        self.health.tick(K.DEPTH)
        self.health.count(K.FRAMES_PUBLISHED)
        self.health.latency(K.STAMP_TO_PUBLISH, (self.now_ns() - stamp) / 1e6)
        self._last_frame_mono = time.monotonic()
        if self._reopen_without_frames or self.backoff.attempts:
            self._reopen_without_frames = 0
            self.backoff.reset()
            width, height, fps = self.camera.stream_profile or (0, 0, 0)
            self.health.set_state(Level.OK, f"streaming {width}x{height}@{fps} from {self.camera.description}")
            self.get_logger().info(f"depth frames flowing again from {self.camera.description}")
        if self.health.values.get(K.TIMESTAMP_DOMAIN) != reading.domain.value:
            self.health.set_value(K.TIMESTAMP_DOMAIN, reading.domain.value)
        if self.stamper.method is not None and self.health.values.get(K.STAMP_METHOD) != self.stamper.method.value:
            self.health.set_value(K.STAMP_METHOD, self.stamper.method.value)
        self.health.set_value(K.IMAGE_SIZE, f"{reading.intrinsics.width}x{reading.intrinsics.height}")

    # ----------------------------------------------------------- shutdown
    def destroy_node(self) -> None:
        stop = getattr(self, "_stop", None)   # construction may have failed before the thread existed
        if stop is not None:
            stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=3.0)
        if getattr(self, "camera", None) is not None and self.camera.is_connected:
            try:
                self.camera.disconnect()
            except CameraError:
                pass
        super().destroy_node()


def image_qos(name: str) -> QoSProfile:
    """rclpy profile of a realsense-ros QoS name (SENSOR_DATA = topics.DEPTH_IMAGE's sensor class)."""
    if name == "SENSOR_DATA":
        return qos_profile(DEPTH_IMAGE)
    return QOS_PRESETS[name]


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: CameraNode(), args)


if __name__ == "__main__":
    sys.exit(main())
