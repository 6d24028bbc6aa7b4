"""Intel RealSense depth backend on pyrealsense2 (live device, SDK recording, software device).

The depth sensor is driven through the SDK's sensor API (``open``/``start``
into a ``rs.frame_queue`` that keeps the newest frames), which works the same
for a USB camera opened by serial number, a recording loaded with
``context.load_device`` and an ``rs.software_device`` handed in through
``RealSenseCameraConfig.device`` (tests, synthetic data). Filtering uses the
SDK's own processing blocks in realsense-ros's order: clip (``clip_distance``,
a ``threshold_filter``; realsense-ros clips before its filters) ->
decimation -> spatial -> temporal -> hole filling. Raw z16 values are scaled
by the frame's depth units (the sensor's ``depth_units`` at capture time,
falling back to the sensor's depth scale), so a D405 at 0.1 mm per unit reads
the same metres as a D435 at 1 mm. Intrinsics are those of the filtered frame
(decimation rescales them), so they always match the returned image.

Load order with ROS: the pyrealsense2 wheel (2.59) embeds its own Fast DDS
2.x, exporting process-wide (STB_GNU_UNIQUE) singletons with the same names
as ROS 2's Fast DDS 3; whichever library loads first owns them. In a process
that also uses rclpy, import rclpy *before* this module (the node shell and
the tests do), otherwise ROS runs on the other library's objects and the
process crashes at exit (SIGSEGV in the C++ exit handlers). This module does
not import rclpy itself so the device layer stays usable without ROS.
"""
from __future__ import annotations

import atexit
import json
import math
import re
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyrealsense2 as rs

from ..camera_model import Intrinsics, IntrinsicsError
from ..config import ConfigError, param
from .base import (CameraAlreadyConnectedError, CameraError, CameraNotConnectedError, CameraNotFoundError,
                   CameraSetupError, DepthCamera, DepthCameraConfig, DepthReading, FrameTimeoutError,
                   PlaybackFinishedError, TimestampDomain, register_backend)

# realsense-ros (profile_manager.cpp) accepts x, X and , between the fields, with optional spaces
_PROFILE_RE = re.compile(r"^\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*$")
_MAX_ARRIVAL_SKEW_NS = 1_000_000_000
_PLAYBACK_POLL_S = 0.05
_OPEN_CAMERAS: "weakref.WeakSet[RealSenseCamera]" = weakref.WeakSet()


@atexit.register
def _release_open_cameras() -> None:
    """Stop streams still open at exit: SDK threads torn down by the C++ runtime abort the process."""
    for camera in list(_OPEN_CAMERAS):
        camera._release()


def parse_depth_profile(text: str) -> tuple[int, int, int]:
    """'848x480x30' (or realsense-ros's '848X480X30', '848,480,30') -> (width, height, fps); 0 = any."""
    if not isinstance(text, str):
        raise ConfigError(f"depth_module.depth_profile must be text like 848x480x30, got {text!r}")
    if text.strip() == "":
        return (0, 0, 0)
    match = _PROFILE_RE.match(text)
    if not match:
        raise ConfigError(f"depth_module.depth_profile '{text}' is not WIDTHxHEIGHTxFPS (e.g. 848x480x30, "
                          f"848X480X30 or 848,480,30; 0 in a field = any)")
    return tuple(int(v) for v in match.groups())  # type: ignore[return-value]


def normalize_serial_no(value: Any) -> str | int:
    """``serial_no`` as given -> the text to match, or an int when ROS typed it as a number.

    realsense-ros declares ``serial_no`` as a string and strips a leading ``_``
    (its workaround for ROS reading ``serial_no:=831612073525`` as an integer);
    we strip it too. ROS's parameter parser (rcl, also for launch/YAML files)
    turns an unquoted all-digit serial into an integer, reads one with a leading
    0 as *octal* when its digits allow, and as a double when they do not
    (``012345678901`` -> 12345678901.0). Such a number is kept as an int and
    matched by :func:`serial_matches`, which undoes both readings.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"serial_no must be the camera's serial number as text, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0 or value != int(value):
            raise ConfigError(f"serial_no {value!r} is not a serial number (ROS read it as a decimal number); "
                              f"pass it as text, e.g. serial_no:=_831612073525 or serial_no:=\"'831612073525'\"")
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"serial_no {value} is not a serial number")
        return value
    text = value.strip()
    return text[1:] if text.startswith("_") else text


def serial_matches(configured: str | int, serial: str) -> bool:
    """Does a device's serial number match ``serial_no`` (text: exactly; a number: as ROS may have read it)?"""
    if isinstance(configured, str):
        return not configured or serial == configured
    if serial == str(configured):
        return True
    if not serial.isdigit():
        return False
    if (serial.lstrip("0") or "0") == str(configured):   # leading zeros dropped by the number
        return True
    # '0...' with only octal digits: rcl (strtoll base 0) and YAML 1.1 read it as an octal integer
    return len(serial) > 1 and serial[0] == "0" and set(serial) <= set("01234567") and int(serial, 8) == configured


def serial_hint(configured: str | int) -> str:
    if isinstance(configured, str):
        return ""
    return (f" (serial_no arrived as the number {configured}: ROS reads an unquoted serial as a number, drops its "
            f"leading zeros and reads one starting with 0 as octal; pass it as text with realsense-ros's '_' "
            f"prefix, serial_no:=_<serial>, or quoted)")


@dataclass(frozen=True)
class RealSenseCameraConfig(DepthCameraConfig):
    """How to open and filter a RealSense depth stream (realsense-ros parameter names)."""

    serial_no: str | int | float = param(
        "", "serial number of the camera to open; empty = the first RealSense found. A leading '_' is "
        "stripped (realsense-ros's workaround: serial_no:=_831612073525); a serial that ROS typed as a number "
        "is accepted and matched with its leading zeros restored where possible", read_only=True)
    depth_profile: str = param("848x480x30", "depth stream WIDTHxHEIGHTxFPS (x, X or , between the fields, as "
                               "realsense-ros: 848x480x30, 848X480X30, 848,480,30); 0 in a field = any "
                               "(the device default among the matches). Ignored when playing a recording",
                               ros_name="depth_module.depth_profile", read_only=True)
    global_time_enabled: bool = param(True, "let the SDK translate the device clock to host time "
                                      "(timestamp domain global_time) where the sensor supports it",
                                      ros_name="depth_module.global_time_enabled", read_only=True)
    clip_distance: float = param(-2.0, "depth beyond this distance (m) becomes 0 (SDK threshold filter, "
                                 "applied first); <= 0 disables", read_only=True, max=16.0)
    decimation_filter_enable: bool = param(False, "SDK decimation filter (image and camera_info shrink by "
                                           "filter_magnitude)", ros_name="decimation_filter.enable",
                                           read_only=True)
    decimation_filter_magnitude: int = param(2, "decimation factor", ros_name="decimation_filter.filter_magnitude",
                                             read_only=True, min=1, max=8)
    spatial_filter_enable: bool = param(False, "SDK spatial edge-preserving filter",
                                        ros_name="spatial_filter.enable", read_only=True)
    temporal_filter_enable: bool = param(False, "SDK temporal filter", ros_name="temporal_filter.enable",
                                         read_only=True)
    hole_filling_filter_enable: bool = param(False, "SDK hole-filling filter",
                                             ros_name="hole_filling_filter.enable", read_only=True)
    json_file_path: str = param("", "advanced-mode JSON preset loaded into the device before streaming "
                                "(D400 advanced mode; an error on devices without it)", read_only=True)
    rosbag_filename: str = param("", "play this SDK recording (.bag or .db3) instead of a live device",
                                 read_only=True)
    rosbag_loop: bool = param(False, "restart the recording when it ends (otherwise the stream stops)",
                              read_only=True)
    record_filename: str = param("", "record the device stream to this file with the SDK recorder "
                                 "(librealsense 2.59 writes ROS 2 .db3 bags); a reconnect starts <name>_2...",
                                 read_only=True)
    device: Any = field(default=None, compare=False, repr=False)  # an rs.device (e.g. rs.software_device) to use as is
    frame_queue_size: int = 2                                    # newest frames kept between read() calls

    def __post_init__(self) -> None:
        object.__setattr__(self, "serial_no", normalize_serial_no(self.serial_no))
        parse_depth_profile(self.depth_profile)
        if self.rosbag_filename and self.record_filename:
            raise ConfigError("rosbag_filename and record_filename are both set: a recording is not re-recorded")
        if self.rosbag_filename and self.device is not None:
            raise ConfigError("rosbag_filename and an explicit device are both given; choose one source")
        if self.frame_queue_size < 1:
            raise ConfigError(f"frame_queue_size must be >= 1, got {self.frame_queue_size}")

    @property
    def enabled_filters(self) -> list[str]:
        names = []
        if self.clip_distance > 0:
            names.append(f"clip({self.clip_distance:g} m)")
        if self.decimation_filter_enable:
            names.append(f"decimation(x{self.decimation_filter_magnitude})")
        names += [n for n, on in (("spatial", self.spatial_filter_enable), ("temporal", self.temporal_filter_enable),
                                  ("hole_filling", self.hole_filling_filter_enable)) if on]
        return names


def _info(obj: Any, key: "rs.camera_info") -> str:
    try:
        return obj.get_info(key) if obj.supports(key) else ""
    except RuntimeError:
        return ""


def _describe_device(dev: Any) -> str:
    name = _info(dev, rs.camera_info.name) or "unnamed device"
    serial = _info(dev, rs.camera_info.serial_number)
    return f"{name} (serial {serial})" if serial else name


def select_device(devices: list[Any], serial_no: str | int) -> Any:
    """The device ``serial_no`` names (an exact text match wins over a number's reading), else the first."""
    serial_no = normalize_serial_no(serial_no)
    if serial_no == "":
        return devices[0]
    serials = [_info(d, rs.camera_info.serial_number) for d in devices]
    exact = [d for d, s in zip(devices, serials) if s == str(serial_no)]
    matches = exact or [d for d, s in zip(devices, serials) if serial_matches(serial_no, s)]
    if not matches:
        found = ", ".join(_describe_device(d) for d in devices)
        raise CameraNotFoundError(f"no RealSense device with serial_no '{serial_no}' (found: {found})"
                                  f"{serial_hint(serial_no)}")
    if len(matches) > 1:
        raise CameraSetupError(f"serial_no {serial_no} (a number) matches several devices: "
                               f"{', '.join(_describe_device(d) for d in matches)}{serial_hint(serial_no)}")
    return matches[0]


def _is_depth_z16(profile: Any) -> bool:
    return (profile.stream_type() == rs.stream.depth and profile.format() == rs.format.z16
            and profile.is_video_stream_profile())


def _profile_text(p: Any) -> str:
    return f"{p.width()}x{p.height()}x{p.fps()}"


def _to_intrinsics(profile: Any) -> Intrinsics:
    """SDK video-stream intrinsics -> :class:`Intrinsics` (realsense-ros's distortion naming)."""
    intr = profile.get_intrinsics()
    if intr.model == rs.distortion.kannala_brandt4:
        model, coeffs = "equidistant", tuple(float(c) for c in intr.coeffs[:4])
    else:
        model, coeffs = "plumb_bob", tuple(float(c) for c in intr.coeffs[:5])
    return Intrinsics(int(intr.width), int(intr.height), float(intr.fx), float(intr.fy), float(intr.ppx),
                      float(intr.ppy), model, coeffs)


def _exposure_offset_ms(frame: Any) -> float:
    """Readout start minus middle of exposure (device metadata, microseconds) in ms; 0 if unknown."""
    md = rs.frame_metadata_value
    if not (frame.supports_frame_metadata(md.frame_timestamp) and frame.supports_frame_metadata(md.sensor_timestamp)):
        return 0.0
    offset_us = int(frame.get_frame_metadata(md.frame_timestamp)) - int(frame.get_frame_metadata(md.sensor_timestamp))
    return offset_us / 1000.0 if 0 <= offset_us < 1_000_000 else 0.0


class RealSenseCamera(DepthCamera):
    """A RealSense depth stream: ``with RealSenseCamera(cfg) as cam: reading = cam.read()``."""

    config: RealSenseCameraConfig

    def __init__(self, config: RealSenseCameraConfig):
        super().__init__(config)
        self._context: Any = None
        self._device: Any = None
        self._sensor: Any = None
        self._queue: Any = None
        self._recorder: Any = None
        self._playback: Any = None
        self._filters: list[tuple[str, Any]] = []
        self._intrinsics_cache: dict[tuple[int, int, int], Intrinsics] = {}
        self._connections = 0
        self.depth_scale = 0.001            # metres per raw unit of the open sensor
        self.stream_profile: tuple[int, int, int] | None = None
        self.device_name = ""
        self.serial_no = ""
        self.firmware_version = ""
        self.frames_read = 0
        self.playback_loops = 0
        self.recorded_files: list[Path] = []   # finished recordings
        self.recording_path: Path | None = None

    # ------------------------------------------------------------- discovery
    @staticmethod
    def find_cameras() -> list[dict[str, str]]:
        found = []
        for dev in rs.context().query_devices():
            found.append({"name": _info(dev, rs.camera_info.name),
                          "serial_no": _info(dev, rs.camera_info.serial_number),
                          "firmware": _info(dev, rs.camera_info.firmware_version),
                          "usb": _info(dev, rs.camera_info.usb_type_descriptor),
                          "product_line": _info(dev, rs.camera_info.product_line)})
        return found

    @property
    def is_connected(self) -> bool:
        return self._sensor is not None

    @property
    def is_playback(self) -> bool:
        return bool(self.config.rosbag_filename)

    @property
    def source(self) -> str:
        if self.config.device is not None:
            return "provided device"
        if self.config.rosbag_filename:
            return f"recording {self.config.rosbag_filename}"
        return "live device"

    @property
    def description(self) -> str:
        if self.config.rosbag_filename:
            of_device = f" of {self.device_name}" if self.device_name else ""
            return f"recording '{self.config.rosbag_filename}'{of_device}"
        if self.device_name or self.serial_no:
            return f"{self.device_name or 'RealSense'} (serial {self.serial_no or '?'})"
        return f"RealSense (serial {self.config.serial_no})" if self.config.serial_no != "" else "RealSense"

    # ------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        if self.is_connected:
            raise CameraAlreadyConnectedError(f"{self.description} is already connected")
        try:
            self._connect()
        except CameraError:
            self._release()
            raise
        except RuntimeError as exc:  # pyrealsense2 raises RuntimeError subclasses
            self._release()
            raise CameraNotFoundError(f"opening {self.description} failed: {exc}") from exc

    def _connect(self) -> None:
        device = self._open_device()
        self.device_name = _info(device, rs.camera_info.name)
        self.serial_no = _info(device, rs.camera_info.serial_number)
        self.firmware_version = _info(device, rs.camera_info.firmware_version)
        if self.config.json_file_path:
            self._load_json(device)
        if self.config.record_filename:
            device = self._start_recording(device)
        self._device = device
        sensor = self._depth_sensor(device)
        profile = self._select_profile(sensor)
        if not self.is_playback and sensor.supports(rs.option.global_time_enabled):
            try:
                sensor.set_option(rs.option.global_time_enabled, 1.0 if self.config.global_time_enabled else 0.0)
            except RuntimeError:
                pass  # read-only on some devices; the frame's own domain tells what we got
        self.depth_scale = sensor.as_depth_sensor().get_depth_scale() if sensor.is_depth_sensor() else 0.001
        try:
            _to_intrinsics(profile)
        except (RuntimeError, IntrinsicsError) as exc:
            raise CameraSetupError(f"{self.description}: depth profile {_profile_text(profile)} has no usable "
                                   f"intrinsics: {exc}") from exc
        self._filters = self._build_filters()
        queue = rs.frame_queue(self.config.frame_queue_size)
        sensor.open(profile)
        try:
            sensor.start(queue)
        except RuntimeError:
            sensor.close()
            raise
        self._queue = queue
        self._sensor = sensor
        self.stream_profile = (profile.width(), profile.height(), profile.fps())
        self._connections += 1
        _OPEN_CAMERAS.add(self)

    def _open_device(self) -> Any:
        cfg = self.config
        if cfg.device is not None:
            return cfg.device
        self._context = rs.context()
        if cfg.rosbag_filename:
            path = Path(cfg.rosbag_filename).expanduser()
            if not path.is_file():
                raise CameraSetupError(f"rosbag_filename '{path}' does not exist")
            try:
                device = self._context.load_device(str(path))
            except RuntimeError as exc:
                raise CameraSetupError(f"cannot play back '{path}' (expected a RealSense SDK recording, "
                                       f".bag or .db3): {exc}") from exc
            self._playback = device.as_playback()
            self._playback.set_real_time(True)
            return device
        devices = list(self._context.query_devices())
        if not devices:
            raise CameraNotFoundError(
                "no RealSense device found: check the USB cable (USB 3 port) and the udev rules, "
                "or play a recording with rosbag_filename")
        return select_device(devices, cfg.serial_no)

    def _load_json(self, device: Any) -> None:
        path = Path(self.config.json_file_path).expanduser()
        if not path.is_file():
            raise CameraSetupError(f"json_file_path '{path}' does not exist")
        text = path.read_text(encoding="utf-8")
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise CameraSetupError(f"json_file_path '{path}' is not valid JSON: {exc}") from exc
        if self.is_playback or not device.supports(rs.camera_info.advanced_mode):
            raise CameraSetupError(
                f"{_describe_device(device)} does not support advanced mode, so the preset json_file_path "
                f"'{path}' cannot be applied (advanced-mode presets are for live D400-series cameras); "
                f"clear json_file_path")
        advanced = rs.rs400_advanced_mode(device)
        if not advanced.is_enabled():
            raise CameraSetupError(
                f"advanced mode is disabled on {_describe_device(device)}: enable it once "
                f"(rs.rs400_advanced_mode(dev).toggle_advanced_mode(True); the device resets) to load '{path}'")
        try:
            advanced.load_json(text)
        except RuntimeError as exc:
            raise CameraSetupError(f"{_describe_device(device)} rejected preset '{path}': {exc}") from exc

    def _start_recording(self, device: Any) -> Any:
        path = Path(self.config.record_filename).expanduser()
        if self._connections > 0:  # keep the earlier segment: name_2.db3, name_3.db3, ...
            path = path.with_name(f"{path.stem}_{self._connections + 1}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._recorder = rs.recorder(str(path), device)
        except RuntimeError as exc:
            raise CameraSetupError(f"cannot record to '{path}': {exc}") from exc
        self.recording_path = path
        return self._recorder

    def _depth_sensor(self, device: Any) -> Any:
        for sensor in device.query_sensors():
            if any(_is_depth_z16(p) for p in sensor.get_stream_profiles()):
                return sensor
        raise CameraSetupError(f"{_describe_device(device)} has no z16 depth stream")

    def _select_profile(self, sensor: Any) -> Any:
        profiles = [p.as_video_stream_profile() for p in sensor.get_stream_profiles() if _is_depth_z16(p)]
        want = (0, 0, 0) if self.is_playback else parse_depth_profile(self.config.depth_profile)
        matches = [p for p in profiles
                   if all(w == 0 or w == v for w, v in zip(want, (p.width(), p.height(), p.fps())))]
        if not matches:
            offered = sorted({_profile_text(p) for p in profiles},
                             key=lambda t: tuple(int(v) for v in t.split("x")))
            raise CameraSetupError(f"{self.description} offers no z16 depth profile "
                                   f"{self.config.depth_profile}; available: {', '.join(offered)}")
        defaults = [p for p in matches if p.is_default()]
        return (defaults or matches)[0]

    def _build_filters(self) -> list[tuple[str, Any]]:
        cfg = self.config
        filters: list[tuple[str, Any]] = []
        if cfg.clip_distance > 0:
            clip = rs.threshold_filter()
            clip.set_option(rs.option.min_distance, 0.0)
            clip.set_option(rs.option.max_distance, float(cfg.clip_distance))
            filters.append(("clip", clip))
        if cfg.decimation_filter_enable:
            decimation = rs.decimation_filter()
            decimation.set_option(rs.option.filter_magnitude, float(cfg.decimation_filter_magnitude))
            filters.append(("decimation", decimation))
        if cfg.spatial_filter_enable:
            filters.append(("spatial", rs.spatial_filter()))
        if cfg.temporal_filter_enable:
            filters.append(("temporal", rs.temporal_filter()))
        if cfg.hole_filling_filter_enable:
            filters.append(("hole_filling", rs.hole_filling_filter()))
        return filters

    def disconnect(self) -> None:
        if not self.is_connected:
            raise CameraNotConnectedError(f"{self.description} is not connected")
        self._release()

    def _release(self) -> None:
        """Stop streaming and drop every SDK handle (which also finishes a recording)."""
        _OPEN_CAMERAS.discard(self)
        sensor, self._sensor = self._sensor, None
        if sensor is not None:
            for step in (sensor.stop, sensor.close):
                try:
                    step()
                except RuntimeError:
                    pass  # an unplugged device cannot be stopped; dropping it is all that is left
        if self._recorder is not None:
            try:
                self._recorder.pause()
            except RuntimeError:
                pass
            if self.recording_path is not None:
                self.recorded_files.append(self.recording_path)
        self._recorder = None
        self._playback = None
        self._queue = None
        self._device = None
        self._context = None
        self._filters = []
        del sensor

    # ----------------------------------------------------------------- read
    def read(self, timeout_s: float = 1.0) -> DepthReading:
        if not self.is_connected:
            raise CameraNotConnectedError(f"{self.description} is not connected (call connect() first)")
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_s = deadline - time.monotonic()
            # a recording is polled in slices: its end shows in the playback status, not in the queue
            slice_s = min(remaining_s, _PLAYBACK_POLL_S) if self._playback is not None else remaining_s
            ok, frame = self._queue.try_wait_for_frame(max(1, int(slice_s * 1000)))
            if ok:
                try:
                    return self._to_reading(frame)
                except RuntimeError as exc:
                    raise CameraError(f"processing a depth frame from {self.description} failed: {exc}") from exc
            if self._playback is not None and self._playback.current_status() == rs.playback_status.stopped:
                if not self.config.rosbag_loop:
                    raise PlaybackFinishedError(
                        f"{self.description} played to its end ({self.frames_read} frames read); "
                        f"set rosbag_loop to repeat it")
                self._release()
                self.connect()
                self.playback_loops += 1
            if time.monotonic() >= deadline:
                raise FrameTimeoutError(f"no depth frame from {self.description} within {timeout_s:.2f} s")

    def _to_reading(self, frame: Any) -> DepthReading:
        arrival_ns = time.time_ns()
        if frame.is_frameset():
            frame = frame.as_frameset().get_depth_frame()
        recorded = self._playback is not None
        md = rs.frame_metadata_value
        if not recorded and frame.supports_frame_metadata(md.time_of_arrival):
            sdk_arrival_ns = int(frame.get_frame_metadata(md.time_of_arrival)) * 1_000_000
            if abs(sdk_arrival_ns - arrival_ns) < _MAX_ARRIVAL_SKEW_NS:
                arrival_ns = sdk_arrival_ns
        timestamp_ms = float(frame.get_timestamp())
        domain = TimestampDomain(frame.get_frame_timestamp_domain().name)
        frame_number = int(frame.get_frame_number())
        exposure_offset_ms = _exposure_offset_ms(frame) if domain is not TimestampDomain.SYSTEM_TIME else 0.0
        for _, block in self._filters:
            frame = block.process(frame)
        depth_frame = frame.as_depth_frame()
        raw = np.asanyarray(depth_frame.get_data())
        units = float(depth_frame.get_units()) or self.depth_scale
        depth_m = raw.astype(np.float32) * np.float32(units)
        intrinsics = self._intrinsics_of(frame.get_profile().as_video_stream_profile())
        if depth_m.shape != (intrinsics.height, intrinsics.width):
            raise CameraError(f"depth frame is {depth_m.shape[1]}x{depth_m.shape[0]} but its profile says "
                              f"{intrinsics.width}x{intrinsics.height}")
        self.frames_read += 1
        return DepthReading(depth_m=depth_m, intrinsics=intrinsics, timestamp_ms=timestamp_ms, domain=domain,
                            frame_number=frame_number, arrival_system_ns=arrival_ns,
                            exposure_offset_ms=exposure_offset_ms, depth_scale=units, recorded=recorded)

    def _intrinsics_of(self, profile: Any) -> Intrinsics:
        key = (profile.unique_id(), profile.width(), profile.height())
        intrinsics = self._intrinsics_cache.get(key)
        if intrinsics is None:
            if len(self._intrinsics_cache) > 32:
                self._intrinsics_cache.clear()
            intrinsics = self._intrinsics_cache[key] = _to_intrinsics(profile)
        return intrinsics

    @property
    def filter_names(self) -> list[str]:
        return [name for name, _ in self._filters] if self._filters else self.config.enabled_filters


register_backend(RealSenseCameraConfig, RealSenseCamera)
