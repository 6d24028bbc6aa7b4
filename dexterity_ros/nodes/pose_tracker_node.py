"""pose_tracker_node: segmented object points -> the object's pose in the palm frame.

A thin shell over :class:`dexterity_ros.tracking.tracker.PoseTracker` (the same
code bench/pose.py measures on simulator frames). Each cloud from
segmentation_node is registered against the object's model (tracking from the
previous pose, global re-initialisation when the fit degrades); the pose is
published only while the fit is confident. When the object is lost nothing is
published (a stale or wrong pose is worse than none) and /diagnostics says why.
"""
from __future__ import annotations

import math
import sys
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import PointCloud2

from .. import topics
from ..config import ConfigError, param
from ..realtime import RealtimeConfig
from ..diagnostic_keys import Tracker as K
from ..diagnostics import Level
from ..extrinsics import load_extrinsic
from ..geometry import matrix_to_quat
from ..objects.models import ObjectModelError, load_object_model
from ..paths import config_path
from ..ros import conversions
from ..ros.common import DexterityNode, NodeExit, qos_profile, run_node
from ..tracking.tracker import PoseTracker, TrackStatus, load_tracker_config


@dataclass(frozen=True)
class PoseTrackerNodeConfig(RealtimeConfig):
    object: str = param("cube", "object to track: a simulator object or one added with `dexterity-ros object add`")
    object_dir: str = param("", "extra directory searched first for <object>.npz models (empty: the user "
                                "directory, then the simulator objects)")
    tracking_config: str = param("", "tracker YAML (empty: config/tracking.yaml)")
    extrinsic_file: str = param("", "camera->palm extrinsic YAML, for the camera position the re-initialisation "
                                    "uses to tell the visible side (empty: config/extrinsics.yaml)")
    cloud_topic: str = param(topics.OBJECT_CLOUD.name, "segmented object points (PointCloud2, palm frame)")
    truth_pose_topic: str = param("", "simulation: the true pose (sim/object_pose); the tracked pose's error "
                                      "against it at the same stamp is shown on /diagnostics (empty: off)")
    truth_window: int = param(200, "poses over which the error against the truth is summarised", min=1,
                              max=100000)


class PoseTrackerNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("pose_tracker_node", PoseTrackerNodeConfig, **kwargs)
        self.reject_unknown_parameters()
        cfg = self.config
        try:
            self.model = load_object_model(cfg.object, [cfg.object_dir] if cfg.object_dir else [])
            self.tracker_config = load_tracker_config(cfg.tracking_config or None)
            extrinsic = load_extrinsic(cfg.extrinsic_file or config_path("extrinsics.yaml"))
        except (ObjectModelError, ConfigError) as exc:
            raise NodeExit(f"pose_tracker_node refuses to start: {exc}", code=2) from None
        self.frame = extrinsic.parent_frame
        self.view_point = np.asarray(extrinsic.matrix, dtype=np.float64)[:3, 3].copy()
        self.tracker = PoseTracker(self.model, self.tracker_config)
        self._tracking = False
        self.pose_pub = self.create_publisher(PoseStamped, topics.OBJECT_POSE_TRACKED.name,
                                              qos_profile(topics.OBJECT_POSE_TRACKED))
        self.create_subscription(PointCloud2, cfg.cloud_topic, self.on_cloud, qos_profile(topics.OBJECT_CLOUD))
        self.truth = TruthComparison(self.model.symmetry, cfg.truth_window) if cfg.truth_pose_topic else None
        if self.truth is not None:
            self.create_subscription(PoseStamped, cfg.truth_pose_topic, self.on_truth, qos_profile(topics.OBJECT_POSE))
        self.health.set_value(K.OBJECT, f"{self.model.name} (symmetry {self.model.symmetry.spec}, "
                                         f"{len(self.model.points)} model points)")
        self.health.set_value(K.STATUS, "waiting for clouds")
        self.get_logger().info(f"pose tracker ready: object {self.model.name} ({self.model.source}), "
                               f"symmetry {self.model.symmetry.spec}, clouds from {cfg.cloud_topic}")

    def on_cloud(self, msg: PointCloud2) -> None:
        t0 = time.perf_counter()
        self.health.tick(K.CLOUDS)
        if msg.header.frame_id != self.frame:
            self.bad_input(K.WRONG_FRAME, f"cloud rejected: frame '{msg.header.frame_id}', expected "
                                          f"'{self.frame}' (the tracker works in the palm frame)")
            return
        try:
            points = conversions.pointcloud2_to_points(msg, drop_invalid=False)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_CLOUD, f"cloud rejected: {exc}", Level.ERROR)
            return
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        result = self.tracker.update(points, stamp, self.view_point)
        self.health.set_value(K.FITNESS, f"{result.fitness:.2f}")
        self.health.set_value(K.INLIER_RMSE, f"{result.inlier_rmse * 1e3:.2f} mm")
        if result.reinitialized:
            self.health.count(K.REINITIALIZED)
        for key, value in result.timings_ms.items():
            self.health.latency(f"{K.REGISTRATION} {key}", value)
        if result.status is not TrackStatus.TRACKING or result.pose is None:
            self._tracking = False
            self.health.set_value(K.STATUS, f"lost: {result.reason}")
            self.health.count(K.LOST_FRAMES)
            self.health.problem(K.LOST, Level.WARN, f"object not tracked, no pose published: {result.reason}")
            return
        if not self._tracking:
            self.get_logger().info(f"tracking {self.model.name} (fitness {result.fitness:.2f}, "
                                   f"rmse {result.inlier_rmse * 1e3:.1f} mm)")
        self._tracking = True
        self.health.set_value(K.STATUS, "tracking")
        self.pose_pub.publish(conversions.pose_to_msg(result.pose, stamp, self.frame))
        if self.truth is not None:
            self.truth.add_estimate(stamp, result.pose)
            self._show_truth()
        self.health.tick(K.POSES)
        self.health.count(K.POSES_PUBLISHED)
        self.health.latency(K.CALLBACK, (time.perf_counter() - t0) * 1e3)

    def on_truth(self, msg: PoseStamped) -> None:
        try:
            position, quaternion = conversions.pose_msg_to_arrays(msg)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_TRUTH, f"true pose rejected: {exc}")
            return
        self.truth.add_truth(conversions.stamp_to_ns(msg.header.stamp), position, quaternion)
        self._show_truth()

    def _show_truth(self) -> None:
        summary = self.truth.summary()
        if summary is not None:
            self.health.set_value(K.TRUTH_ERROR, summary)


class TruthComparison:
    """Tracked vs true pose at equal stamps (either may arrive first), over a sliding window."""

    def __init__(self, symmetry, window: int, pending: int = 100):
        self.symmetry = symmetry
        self.rotation_deg: deque[float] = deque(maxlen=window)
        self.translation_mm: deque[float] = deque(maxlen=window)
        self._truth: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._estimates: dict[int, np.ndarray] = {}
        self._pending = pending

    def add_truth(self, stamp: int, position: np.ndarray, quaternion: np.ndarray) -> None:
        estimate = self._estimates.pop(stamp, None)
        if estimate is not None:
            self._compare(estimate, position, quaternion)
        else:
            _bounded_put(self._truth, stamp, (position, quaternion), self._pending)

    def add_estimate(self, stamp: int, pose: np.ndarray) -> None:
        truth = self._truth.pop(stamp, None)
        if truth is not None:
            self._compare(pose, *truth)
        else:
            _bounded_put(self._estimates, stamp, pose, self._pending)

    def _compare(self, pose: np.ndarray, position: np.ndarray, quaternion: np.ndarray) -> None:
        self.rotation_deg.append(math.degrees(self.symmetry.distance(matrix_to_quat(pose[:3, :3]), quaternion)))
        self.translation_mm.append(1e3 * float(np.linalg.norm(pose[:3, 3] - position)))

    def summary(self) -> str | None:
        if not self.rotation_deg:
            return None
        rot = np.asarray(self.rotation_deg)
        return (f"rotation p50 {np.percentile(rot, 50):.1f} / p95 {np.percentile(rot, 95):.1f} deg, "
                f"translation p50 {np.percentile(np.asarray(self.translation_mm), 50):.1f} mm "
                f"over {len(rot)} poses")


def _bounded_put(store: dict, key: int, value, limit: int) -> None:
    store[key] = value
    while len(store) > limit:
        store.pop(next(iter(store)))


def main(args: list[str] | None = None) -> int:
    return run_node(PoseTrackerNode, args)


if __name__ == "__main__":
    sys.exit(main())
