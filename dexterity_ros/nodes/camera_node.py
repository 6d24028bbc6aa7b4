"""camera_node: RealSense depth -> ``camera/camera/depth/image_rect_raw`` + ``camera_info``.

A thin shell over :mod:`dexterity_ros.camera`: a capture thread reads the
device (live camera, SDK recording via ``rosbag_filename``, or a software
device handed to the constructor), stamps each frame on the ROS clock with
:class:`~dexterity_ros.camera.timestamps.FrameStamper` (device clock mapped
onto ROS time; see that module and docs/camera.md for the clock-domain rules)
and publishes 16UC1 millimetres + CameraInfo in ``camera_depth_optical_frame``
with the sensor-data QoS, under realsense-ros's names and parameters.

No device at start: exit 1 with the reason, or wait for one with back-off
(``wait_for_device``). Frames stop or the device goes away mid-run: WARN,
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
from typing import Any

from sensor_msgs.msg import CameraInfo, Image

# rclpy (via ros_common) must load before pyrealsense2 (via ..camera): see dexterity_ros/camera/realsense.py.
from .ros_common import DexterityNode, NodeExit, qos_profile, run_node  # isort: skip
from ..camera import (CameraError, CameraNotFoundError, DepthReading, ExponentialBackoff, FrameDropCounter,
                      FrameStamper, FrameTimeoutError, PlaybackFinishedError, RealSenseCamera,
                      RealSenseCameraConfig)
from ..config import ConfigError, param
from ..conversions import depth_to_image, intrinsics_to_camera_info
from ..diagnostics import Level
from ..topics import CAMERA_FRAME, DEPTH_IMAGE, DEPTH_INFO

_READ_SLICE_S = 0.2   # longest a read blocks, so shutdown and stall checks stay responsive


@dataclass(frozen=True)
class CameraNodeConfig(RealSenseCameraConfig):
    """The device parameters (realsense-ros names) plus how the node copes with losing the device."""

    wait_for_device: bool = param(False, "with no device at start, wait and retry with back-off instead of "
                                  "exiting with an error", read_only=True)
    reconnect_backoff_initial: float = param(0.5, "first delay (s) before reopening a lost or missing device; "
                                             "doubles per failed attempt", read_only=True, min=0.01, max=60.0)
    reconnect_backoff_max: float = param(8.0, "longest delay (s) between reopening attempts", read_only=True,
                                         min=0.01, max=600.0)
    frame_timeout: float = param(1.0, "seconds without a depth frame before the stream counts as stalled "
                                 "(WARN) and the device is reopened", read_only=True, min=0.05, max=60.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reconnect_backoff_max < self.reconnect_backoff_initial:
            raise ConfigError(f"reconnect_backoff_max ({self.reconnect_backoff_max}) is below "
                              f"reconnect_backoff_initial ({self.reconnect_backoff_initial})")

    def device_config(self, device: Any = None) -> RealSenseCameraConfig:
        names = {f.name for f in dataclasses.fields(RealSenseCameraConfig)} - {"device"}
        return RealSenseCameraConfig(**{n: getattr(self, n) for n in names}, device=device)


class CameraNode(DexterityNode):
    """Publishes depth + camera_info from a RealSense (or a given rs.device) until shut down."""

    def __init__(self, device: Any = None, **node_kwargs: Any):
        super().__init__("camera_node", CameraNodeConfig, **node_kwargs)
        cfg: CameraNodeConfig = self.config
        self.camera = RealSenseCamera(cfg.device_config(device))
        self.stamper = FrameStamper()
        self.drops = FrameDropCounter()
        self.backoff = ExponentialBackoff(cfg.reconnect_backoff_initial, cfg.reconnect_backoff_max)
        self._image_pub = self.create_publisher(Image, DEPTH_IMAGE.name, qos_profile(DEPTH_IMAGE))
        self._info_pub = self.create_publisher(CameraInfo, DEPTH_INFO.name, qos_profile(DEPTH_INFO))
        self._stop = threading.Event()
        self._last_frame_mono = time.monotonic()
        self._reopen_without_frames = 0    # reopen attempts since the last frame
        self._playback_done = False
        self.health.set_value("source", self.camera.source)
        self.health.set_value("filters", ", ".join(cfg.enabled_filters) or "none")
        try:
            self._connect()
        except CameraNotFoundError as exc:
            if not cfg.wait_for_device:
                raise NodeExit(f"camera_node: {exc}. Set wait_for_device:=true to wait for the camera.") from None
            self.health.set_state(Level.WARN, f"waiting for the camera: {exc}")
            self.get_logger().warning(f"{exc}; waiting for it (wait_for_device)")
        except CameraError as exc:  # setup errors (profile, preset, file) do not heal by waiting
            raise NodeExit(f"camera_node: {exc}") from None
        self._thread = threading.Thread(target=self._capture_loop, name="camera_capture", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- device
    def _connect(self) -> None:
        self.camera.connect()
        self.stamper.reset()
        self.drops.reset()
        self._last_frame_mono = time.monotonic()
        cam = self.camera
        width, height, fps = cam.stream_profile or (0, 0, 0)
        self.health.set_value("device", cam.description)
        self.health.set_value("firmware", cam.firmware_version or "n/a")
        self.health.set_value("depth profile", f"{width}x{height}x{fps}")
        self.health.set_value("depth scale (m/unit)", f"{cam.depth_scale:.6g}")
        if cam.recording_path is not None:
            self.health.set_value("recording to", str(cam.recording_path))
        if not self._reopen_without_frames:  # after a reopen, OK waits for the first frame
            self.health.set_state(Level.OK, f"streaming {width}x{height}@{fps} from {cam.description}")
        self.get_logger().info(f"streaming depth {width}x{height}@{fps} from {cam.description} "
                               f"(depth scale {cam.depth_scale:.6g} m/unit, filters: "
                               f"{', '.join(cam.filter_names) or 'none'})")

    def hardware_id(self) -> str:
        return self.camera.serial_no or self.camera.config.serial_no

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
                    self._wait(self.config.reconnect_backoff_max)

    def _try_connect(self) -> bool:
        try:
            self._connect()
            return True
        except CameraError as exc:
            delay = self.backoff.next_delay()
            waiting = self.camera.frames_read == 0 and self.health.counters.get("reconnects", 0) == 0
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
            self.bad_input("camera read", str(exc), Level.ERROR)
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
        self.health.count("reconnects")
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
            self.health.count("frames lost", lost)
            self.bad_input("frame drop", f"{lost} depth frame(s) lost before frame #{reading.frame_number} "
                                         f"(device frame-number gap)")
        image = depth_to_image(reading.depth_m, stamp, CAMERA_FRAME)
        info = intrinsics_to_camera_info(reading.intrinsics, stamp, CAMERA_FRAME)
        self._image_pub.publish(image)
        self._info_pub.publish(info)
        self.health.tick("depth")
        self.health.count("frames published")
        self.health.latency("frame stamp -> publish", (self.now_ns() - stamp) / 1e6)
        self._last_frame_mono = time.monotonic()
        if self._reopen_without_frames or self.backoff.attempts:
            self._reopen_without_frames = 0
            self.backoff.reset()
            width, height, fps = self.camera.stream_profile or (0, 0, 0)
            self.health.set_state(Level.OK, f"streaming {width}x{height}@{fps} from {self.camera.description}")
            self.get_logger().info(f"depth frames flowing again from {self.camera.description}")
        if self.health.values.get("timestamp domain") != reading.domain.value:
            self.health.set_value("timestamp domain", reading.domain.value)
        if self.stamper.method is not None and self.health.values.get("stamp method") != self.stamper.method.value:
            self.health.set_value("stamp method", self.stamper.method.value)
        self.health.set_value("image size", f"{reading.intrinsics.width}x{reading.intrinsics.height}")

    # ----------------------------------------------------------- shutdown
    def destroy_node(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=3.0)
        if self.camera.is_connected:
            try:
                self.camera.disconnect()
            except CameraError:
                pass
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: CameraNode(), args)


if __name__ == "__main__":
    sys.exit(main())
