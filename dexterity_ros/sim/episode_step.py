"""One step of an episode as the robot graph sees it: the data an episode bag stores per step.

Pure (no rclpy, no MuJoCo): the simulator produces these (:mod:`.episodes`) and
:class:`dexterity_ros.ros.bags.episode.EpisodeBagWriter` writes them as messages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera_model import Intrinsics


@dataclass
class EpisodeStep:
    stamp_ns: int
    depth_m: np.ndarray | None           # None: no camera frame this step (dropped)
    intrinsics: Intrinsics | None
    joint_positions: np.ndarray        # canonical order, what the robot would measure
    goal_wxyz: np.ndarray
    action: np.ndarray | None          # joint targets the policy produced at this step (canonical)
    object_pose: tuple[np.ndarray, np.ndarray] | None = None   # (position, quaternion wxyz) palm frame
    object_twist: tuple[np.ndarray, np.ndarray] | None = None  # (linear, angular) palm frame
    action_stamp_ns: int | None = None
