"""Depth-camera device layer (no rclpy): a base class plus the RealSense backend.

    from dexterity_ros.camera import RealSenseCameraConfig, make_depth_camera
    with make_depth_camera(RealSenseCameraConfig(serial_no="123")) as cam:
        reading = cam.read()          # DepthReading: float32 metres + intrinsics + timestamp

Timestamps are mapped onto ROS time by :class:`FrameStamper` (see
:mod:`dexterity_ros.camera.timestamps` for the clock-domain rules).
"""
from .backoff import ExponentialBackoff
from .base import (CameraAlreadyConnectedError, CameraError, CameraNotConnectedError, CameraNotFoundError,
                   CameraSetupError, DepthCamera, DepthCameraConfig, DepthReading, FrameTimeoutError,
                   PlaybackFinishedError, TimestampDomain, make_depth_camera, register_backend)
from .realsense import RealSenseCamera, RealSenseCameraConfig, parse_depth_profile
from .sequence import FrameDropCounter
from .software import SoftwareDepthDevice
from .timestamps import FrameStamper, StampMethod

__all__ = [
    "CameraAlreadyConnectedError", "CameraError", "CameraNotConnectedError", "CameraNotFoundError",
    "CameraSetupError", "DepthCamera", "DepthCameraConfig", "DepthReading", "ExponentialBackoff",
    "FrameDropCounter", "FrameStamper", "FrameTimeoutError", "PlaybackFinishedError", "RealSenseCamera",
    "RealSenseCameraConfig", "SoftwareDepthDevice", "StampMethod", "TimestampDomain", "make_depth_camera",
    "parse_depth_profile", "register_backend",
]
