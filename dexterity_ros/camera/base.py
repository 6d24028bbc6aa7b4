"""The depth-camera device abstraction: a config per backend, connect/read/disconnect.

Modelled on LeRobot's camera classes: a backend is a :class:`DepthCamera`
built from its own frozen config dataclass; ``connect()`` opens the device,
``read()`` blocks for the next frame and returns a :class:`DepthReading`
(float32 metres plus intrinsics and the frame's own timestamp), and
``disconnect()`` releases it. A camera is also a context manager. No rclpy
here: the ROS shell (``nodes/camera_node.py``) maps readings onto messages.
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..camera_model import Intrinsics


class CameraError(RuntimeError):
    """Base of every camera failure; the message says what to do about it."""


class CameraNotFoundError(CameraError):
    """No device to open (yet): unplugged, wrong serial number. Waiting may help."""


class CameraSetupError(CameraError):
    """The device cannot be set up as configured (profile, preset, file): retrying will not help."""


class CameraNotConnectedError(CameraError):
    """read()/disconnect() on a camera that is not connected."""


class CameraAlreadyConnectedError(CameraError):
    """connect() on a camera that is already connected."""


class FrameTimeoutError(CameraError):
    """No frame arrived within the read timeout (stalled or unplugged device)."""


class PlaybackFinishedError(CameraError):
    """A recording has been played to its end."""


class TimestampDomain(str, enum.Enum):
    """Clock of a frame's timestamp (the values of ``rs.timestamp_domain``)."""

    HARDWARE_CLOCK = "hardware_clock"   # the device's own clock (arbitrary epoch, wraps)
    SYSTEM_TIME = "system_time"         # host system clock when the frame reached the host
    GLOBAL_TIME = "global_time"         # device clock translated to the host system clock by the SDK


@dataclass(frozen=True)
class DepthReading:
    """One depth frame as the device delivered it, converted to metres."""

    depth_m: np.ndarray              # float32 (H, W) metres along the optical axis, 0 = no measurement
    intrinsics: Intrinsics           # intrinsics of ``depth_m`` (after any decimation)
    timestamp_ms: float              # the frame's timestamp, in ``domain``
    domain: TimestampDomain
    frame_number: int                # device frame counter (gaps = dropped frames)
    arrival_system_ns: int           # host system clock (time.time_ns) when the frame reached the host
    exposure_offset_ms: float = 0.0  # how long before ``timestamp_ms`` the middle of exposure was (0 = unknown)
    depth_scale: float = 0.001       # metres per raw depth unit that was applied
    recorded: bool = False           # read back from a recording: timestamps are from the past


@dataclass(frozen=True)
class DepthCameraConfig:
    """Base of backend configs; each backend adds its own fields."""


class DepthCamera(abc.ABC):
    """A depth camera backend: ``with Backend(config) as cam: reading = cam.read()``."""

    config: DepthCameraConfig

    def __init__(self, config: DepthCameraConfig):
        self.config = config

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """True between a successful connect() and disconnect()."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open and start the device; raises CameraNotFoundError / CameraSetupError."""

    @abc.abstractmethod
    def read(self, timeout_s: float = 1.0) -> DepthReading:
        """Block for the next frame; raises FrameTimeoutError when none arrives in time."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Stop and release the device (and finish any recording)."""

    @property
    def description(self) -> str:
        """Human-readable identity of the device (name, serial number) for logs."""
        return type(self).__name__

    @staticmethod
    def find_cameras() -> list[dict[str, str]]:
        """Devices this backend can open, as ``{"name", "serial_no", ...}`` dicts."""
        return []

    def __enter__(self) -> "DepthCamera":
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.is_connected:
            self.disconnect()


_BACKENDS: dict[type, Callable[[Any], DepthCamera]] = {}


def register_backend(config_cls: type, factory: Callable[[Any], DepthCamera]) -> None:
    """Let :func:`make_depth_camera` build ``factory(config)`` for configs of ``config_cls``."""
    _BACKENDS[config_cls] = factory


def make_depth_camera(config: DepthCameraConfig) -> DepthCamera:
    """The backend for ``config`` (dispatch on the config's class, as LeRobot does)."""
    for cls in type(config).__mro__:
        if cls in _BACKENDS:
            return _BACKENDS[cls](config)
    raise CameraSetupError(f"no depth-camera backend registered for {type(config).__name__} "
                           f"(known: {sorted(c.__name__ for c in _BACKENDS)})")
