"""What the robot graph would compute from a simulated observation.

The simulator renders depth; this module turns it into the student's inputs
through the robot's own code path: the depth is quantized exactly as a 16UC1
image carries it, the intrinsics and extrinsic are the *calibrated* ones (as
camera_info and config/extrinsics.yaml give them on the robot, so calibration
error is part of the randomization), the joint positions are the noisy
measured ones, and the cloud comes from :func:`dexterity_ros.perception.extract_object_cloud`
— the function segmentation_node calls.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera_model import Intrinsics
from ..camera_model import quantize_depth_mm
from ..perception import CloudResult, ObjectCloudExtractor, PerceptionConfig
from .env import DepthFrame, Observation


@dataclass(frozen=True)
class StudentFrame:
    """One camera frame as the robot graph sees it, and the cloud it makes from it."""

    stamp_ns: int
    depth_m: np.ndarray          # float32 metres after the 16UC1 round trip
    intrinsics: Intrinsics       # calibrated (camera_info)
    palm_from_camera: np.ndarray  # calibrated extrinsic
    joint_positions: np.ndarray  # measured (noisy), canonical order
    goal_wxyz: np.ndarray
    cloud: CloudResult
    labels: np.ndarray           # ground truth per pixel (evaluation only)
    render: DepthFrame


class StudentView:
    """Builds :class:`StudentFrame` s from simulator observations.

    Frames are a stream, exactly as segmentation_node sees them: the
    extractor carries its warm start from frame to frame
    (:meth:`ObjectCloudExtractor.extract_next`). Call :meth:`reset` where a
    fresh node would start (each episode bag is replayed by a fresh graph).
    ``perception``: the config segmentation_node would run with.
    """

    def __init__(self, perception: PerceptionConfig):
        self.perception = perception
        self.extractor = ObjectCloudExtractor(self.perception)

    def reset(self) -> None:
        self.extractor.reset_sequence()

    def frame(self, observation: Observation, want_mask: bool = False) -> StudentFrame | None:
        """The frame of ``observation``; None when the camera dropped it (no new frame)."""
        if observation.frame_dropped:
            return None
        rendered = observation.render()
        if rendered is None:
            return None
        depth = quantize_depth_mm(rendered.depth)
        intrinsics = rendered.calibrated_intrinsics
        extrinsic = rendered.calibrated_extrinsic.matrix
        q = np.asarray(observation.joint_positions, dtype=np.float64)
        cloud = self.extractor.extract_next(depth, intrinsics, extrinsic, q, want_mask=want_mask)
        return StudentFrame(observation.time_ns, depth, intrinsics, extrinsic, q,
                            np.asarray(observation.goal_quaternion, dtype=np.float64), cloud,
                            rendered.labels, rendered)
