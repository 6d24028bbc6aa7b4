"""A RealSense *software device* fed from numpy arrays.

``rs.software_device`` is the SDK's own device implementation without
hardware: frames pushed into its sensor go through the same sensor, queue,
processing blocks and recorder as a USB camera's. Hand ``.device`` to
``RealSenseCameraConfig(device=...)`` to run the real backend on synthetic
or rendered depth (tests, simulation, benchmarks).
"""
from __future__ import annotations

import numpy as np
import pyrealsense2 as rs

from ..camera_model import Intrinsics
from .base import TimestampDomain


class SoftwareDepthDevice:
    """One software sensor with one z16 depth stream described by ``intrinsics``."""

    def __init__(self, intrinsics: Intrinsics, fps: int = 30, depth_scale: float = 0.001,
                 serial_no: str = "SW-0001", name: str = "Software Depth Camera",
                 sensor_name: str = "Stereo Module"):
        self.intrinsics = intrinsics
        self.fps = fps
        self.depth_scale = depth_scale
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.name, name)
        self.device.register_info(rs.camera_info.serial_number, serial_no)
        self.sensor = self.device.add_sensor(sensor_name)
        stream = rs.video_stream()
        stream.type = rs.stream.depth
        stream.index = 0
        stream.uid = 0
        stream.width = intrinsics.width
        stream.height = intrinsics.height
        stream.fps = fps
        stream.bpp = 2
        stream.fmt = rs.format.z16
        stream.intrinsics = self._rs_intrinsics(intrinsics)
        self.profile = self.sensor.add_video_stream(stream, True).as_video_stream_profile()
        # A depth_units option makes the software sensor a depth sensor with this depth scale.
        self.sensor.add_read_only_option(rs.option.depth_units, float(depth_scale))

    @staticmethod
    def _rs_intrinsics(intr: Intrinsics) -> "rs.intrinsics":
        out = rs.intrinsics()
        out.width, out.height = intr.width, intr.height
        out.fx, out.fy, out.ppx, out.ppy = intr.fx, intr.fy, intr.cx, intr.cy
        if intr.distortion_model == "equidistant":
            out.model = rs.distortion.kannala_brandt4
        else:
            out.model = rs.distortion.brown_conrady
        out.coeffs = (list(intr.distortion) + [0.0] * 5)[:5]
        return out

    def to_raw(self, depth_m: np.ndarray) -> np.ndarray:
        """Metres -> z16 units of this device (rounded, clipped to the uint16 range)."""
        units = np.rint(np.nan_to_num(np.asarray(depth_m, np.float64) / self.depth_scale, nan=0.0,
                                      posinf=0.0, neginf=0.0))
        return np.clip(units, 0, 65535).astype(np.uint16)

    def push_raw(self, raw: np.ndarray, timestamp_ms: float, frame_number: int,
                 domain: TimestampDomain | str = TimestampDomain.HARDWARE_CLOCK, frame_units: bool = True,
                 frame_timestamp_us: int | None = None, sensor_timestamp_us: int | None = None) -> None:
        """Inject one z16 frame (the SDK copies the pixels).

        ``frame_units=False`` leaves the per-frame depth units unset so readers must
        fall back to the sensor's depth scale; the two ``*_timestamp_us`` values set
        the frame_timestamp / sensor_timestamp metadata (readout start / mid-exposure).
        """
        raw = np.ascontiguousarray(raw, dtype=np.uint16)
        if raw.shape != (self.intrinsics.height, self.intrinsics.width):
            raise ValueError(f"frame is {raw.shape[1]}x{raw.shape[0]}, the stream is "
                             f"{self.intrinsics.width}x{self.intrinsics.height}")
        if frame_timestamp_us is not None:
            self.sensor.set_metadata(rs.frame_metadata_value.frame_timestamp, int(frame_timestamp_us))
        if sensor_timestamp_us is not None:
            self.sensor.set_metadata(rs.frame_metadata_value.sensor_timestamp, int(sensor_timestamp_us))
        frame = rs.software_video_frame()
        frame.pixels = raw
        frame.bpp = 2
        frame.stride = 2 * raw.shape[1]
        frame.timestamp = float(timestamp_ms)
        frame.domain = getattr(rs.timestamp_domain, TimestampDomain(domain).value)
        frame.frame_number = int(frame_number)
        frame.profile = self.profile
        if frame_units:
            frame.depth_units = float(self.depth_scale)
        self.sensor.on_video_frame(frame)

    def push_depth(self, depth_m: np.ndarray, timestamp_ms: float, frame_number: int, **kwargs) -> None:
        """Inject depth given in metres (quantised to this device's depth units)."""
        self.push_raw(self.to_raw(depth_m), timestamp_ms, frame_number, **kwargs)
