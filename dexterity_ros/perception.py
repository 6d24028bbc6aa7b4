"""Depth -> the student's object point cloud: the ONE preprocessing code path.

The segmentation node on the robot and the simulator that makes training
observations both call :func:`extract_object_cloud` (through
:class:`ObjectCloudExtractor`) with the parameters of ``config/perception.yaml``,
so the student sees the same cloud in sim and on the robot.

Pipeline: project the palm-frame workspace box into the image and crop there
first; backproject only those pixels with a precomputed ray grid; transform to
the palm frame; crop to the box; remove the hand's own points (forward
kinematics + inflated collision shapes); optionally remove a table plane
(RANSAC); remove outliers; sample exactly N points (seeded random or
farthest-point).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .camera_model import Intrinsics, RayGrid, project
from .config import load_config, to_dict
from .geometry import invert_transform, validate_rigid
from .kinematics import HandKinematics
from .paths import config_path


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box in the palm frame (metres) where the object can be."""

    min: tuple[float, float, float] = (0.012, -0.10, -0.12)
    max: tuple[float, float, float] = (0.20, 0.10, 0.20)

    def __post_init__(self) -> None:
        if any(lo >= hi for lo, hi in zip(self.min, self.max)):
            raise ValueError(f"workspace min {self.min} must be below max {self.max} on every axis")

    def corners(self) -> np.ndarray:
        lo, hi = np.array(self.min), np.array(self.max)
        return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


@dataclass(frozen=True)
class OutlierConfig:
    """Density filter: keep a point if its 3x3x3 voxel neighbourhood (cell = radius)
    holds at least ``min_neighbors`` other points (a superset of the radius test)."""

    method: Literal["radius", "none"] = "radius"
    radius: float = 0.01
    min_neighbors: int = 6

    def __post_init__(self) -> None:
        if self.radius <= 0 or self.min_neighbors < 0:
            raise ValueError("outlier radius must be > 0 and min_neighbors >= 0")


@dataclass(frozen=True)
class TableConfig:
    """Optional dominant-plane removal (RANSAC) for a table in the workspace."""

    enabled: bool = False
    distance: float = 0.006
    iterations: int = 60
    min_inlier_fraction: float = 0.3


@dataclass(frozen=True)
class PerceptionConfig:
    num_points: int = 512
    min_points: int = 64
    min_depth: float = 0.1
    max_depth: float = 2.0
    workspace: WorkspaceBox = field(default_factory=WorkspaceBox)
    remove_hand: bool = True
    hand_margin: float = 0.006
    outlier: OutlierConfig = field(default_factory=OutlierConfig)
    table: TableConfig = field(default_factory=TableConfig)
    sampling: Literal["random", "fps"] = "random"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_points <= 0:
            raise ValueError("num_points must be positive")
        if not 0 < self.min_points:
            raise ValueError("min_points must be positive")
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if self.hand_margin < 0:
            raise ValueError("hand_margin must be >= 0")

    def config_hash(self) -> str:
        """Stable hash of every parameter: recorded in the policy contract."""
        text = json.dumps(to_dict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_perception_config(path: str | Path | None = None) -> PerceptionConfig:
    return load_config(PerceptionConfig, path or config_path("perception.yaml"))


@dataclass
class CloudResult:
    """The sampled cloud (palm frame, float32 (N, 3)) or None with the reason."""

    points: np.ndarray | None
    reason: str
    counts: dict[str, int]
    timings_ms: dict[str, float]
    object_mask: np.ndarray | None = None   # (H, W) bool: pixels kept as object (before sampling)

    @property
    def ok(self) -> bool:
        return self.points is not None


class ObjectCloudExtractor:
    """Caches what depends only on intrinsics/extrinsic (ray grid, image crop window)."""

    def __init__(self, config: PerceptionConfig, kinematics: HandKinematics | None = None):
        self.config = config
        self.kinematics = kinematics or HandKinematics()
        self._grid: RayGrid | None = None
        self._window_key = None
        self._window: tuple[slice, slice] | None = None

    def _ray_grid(self, intrinsics: Intrinsics) -> RayGrid:
        if self._grid is None or self._grid.intrinsics != intrinsics:
            self._grid = RayGrid(intrinsics)
        return self._grid

    def crop_window(self, intrinsics: Intrinsics, palm_from_camera: np.ndarray) -> tuple[slice, slice]:
        """Image rectangle that contains the projection of the workspace box."""
        key = (intrinsics, palm_from_camera.tobytes())
        if key == self._window_key and self._window is not None:
            return self._window
        corners_cam = self.config.workspace.corners() @ invert_transform(palm_from_camera)[:3, :3].T \
            + invert_transform(palm_from_camera)[:3, 3]
        if np.all(corners_cam[:, 2] > 1e-3):
            uv, _ = project(corners_cam, intrinsics)
            u0 = int(np.clip(np.floor(uv[:, 0].min()), 0, intrinsics.width))
            u1 = int(np.clip(np.ceil(uv[:, 0].max()) + 1, 0, intrinsics.width))
            v0 = int(np.clip(np.floor(uv[:, 1].min()), 0, intrinsics.height))
            v1 = int(np.clip(np.ceil(uv[:, 1].max()) + 1, 0, intrinsics.height))
            window = (slice(v0, v1), slice(u0, u1))
        else:  # box straddles the camera plane: no safe image-space crop
            window = (slice(0, intrinsics.height), slice(0, intrinsics.width))
        self._window_key, self._window = key, window
        return window

    def extract(self, depth: np.ndarray, intrinsics: Intrinsics, palm_from_camera: np.ndarray,
                joint_positions: np.ndarray | None, want_mask: bool = False) -> CloudResult:
        cfg = self.config
        timings: dict[str, float] = {}
        counts: dict[str, int] = {}
        t0 = time.perf_counter()
        intrinsics.check_image(depth.shape)
        palm_from_camera = validate_rigid(palm_from_camera, name="camera->palm extrinsic")
        if depth.dtype != np.float32:
            depth = depth.astype(np.float32)
        rows, cols = self.crop_window(intrinsics, palm_from_camera)
        window = depth[rows, cols]
        window = np.where((window >= cfg.min_depth) & (window <= cfg.max_depth), window, 0.0)
        grid = self._ray_grid(intrinsics)
        pts_cam, flat = grid.backproject(window, rows, cols)
        counts["valid_pixels"] = len(pts_cam)
        timings["backproject"] = (time.perf_counter() - t0) * 1e3

        t1 = time.perf_counter()
        rot = palm_from_camera[:3, :3].astype(np.float32)
        pts = pts_cam @ rot.T + palm_from_camera[:3, 3].astype(np.float32)
        lo = np.array(cfg.workspace.min, dtype=np.float32)
        hi = np.array(cfg.workspace.max, dtype=np.float32)
        in_box = np.all((pts >= lo) & (pts <= hi), axis=1)
        pts, flat = pts[in_box], flat[in_box]
        counts["in_workspace"] = len(pts)
        timings["transform_crop"] = (time.perf_counter() - t1) * 1e3

        t2 = time.perf_counter()
        if cfg.remove_hand and joint_positions is not None and len(pts):
            shapes = self.kinematics.collision_shapes(np.asarray(joint_positions, dtype=np.float64))
            on_hand = shapes.contains(pts, cfg.hand_margin)
            counts["hand_removed"] = int(on_hand.sum())
            pts, flat = pts[~on_hand], flat[~on_hand]
        timings["hand_removal"] = (time.perf_counter() - t2) * 1e3

        t3 = time.perf_counter()
        if cfg.table.enabled and len(pts) >= 3:
            on_table = _ransac_plane(pts, cfg.table, np.random.default_rng(cfg.seed))
            counts["table_removed"] = int(on_table.sum())
            pts, flat = pts[~on_table], flat[~on_table]
        if cfg.outlier.method == "radius" and len(pts):
            keep = density_filter(pts, cfg.outlier.radius, cfg.outlier.min_neighbors)
            counts["outliers_removed"] = int((~keep).sum())
            pts, flat = pts[keep], flat[keep]
        counts["object_points"] = len(pts)
        timings["filter"] = (time.perf_counter() - t3) * 1e3

        mask = None
        if want_mask:
            mask = np.zeros(depth.shape, dtype=bool)
            win_w = window.shape[1]
            mask[rows.start + flat // win_w, cols.start + flat % win_w] = True
        if len(pts) < cfg.min_points:
            timings["total"] = (time.perf_counter() - t0) * 1e3
            return CloudResult(None, f"too few object points ({len(pts)} < min_points {cfg.min_points})",
                               counts, timings, mask)
        t4 = time.perf_counter()
        sampled = sample_points(pts, cfg.num_points, cfg.sampling, cfg.seed)
        timings["sample"] = (time.perf_counter() - t4) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return CloudResult(sampled.astype(np.float32), "ok", counts, timings, mask)


def extract_object_cloud(depth: np.ndarray, intrinsics: Intrinsics, palm_from_camera: np.ndarray,
                         joint_positions: np.ndarray | None, config: PerceptionConfig,
                         extractor: ObjectCloudExtractor | None = None) -> CloudResult:
    """(depth metres, intrinsics, camera->palm, joint positions) -> the student's cloud."""
    extractor = extractor or ObjectCloudExtractor(config)
    if extractor.config != config:
        raise ValueError("extractor was built for a different PerceptionConfig")
    return extractor.extract(depth, intrinsics, palm_from_camera, joint_positions)


def density_filter(points: np.ndarray, radius: float, min_neighbors: int) -> np.ndarray:
    """Keep points whose 3x3x3 neighbourhood of radius-sized voxels has >= min_neighbors others."""
    cells = np.floor(points / radius).astype(np.int64)
    cells -= cells.min(axis=0) - 1
    dims = cells.max(axis=0) + 2
    keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    unique, inverse, per_cell = np.unique(keys, return_inverse=True, return_counts=True)
    total = np.zeros(len(unique), dtype=np.int64)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dz in (-1, 0, 1):
                neighbour = unique + (dx * dims[1] + dy) * dims[2] + dz
                pos = np.searchsorted(unique, neighbour)
                pos = np.minimum(pos, len(unique) - 1)
                found = unique[pos] == neighbour
                total += np.where(found, per_cell[pos], 0)
    return (total[inverse] - 1) >= min_neighbors


def sample_points(points: np.ndarray, n: int, method: str, seed: int) -> np.ndarray:
    """Exactly ``n`` points; deterministic for the same input (seeded per call)."""
    rng = np.random.default_rng(seed)
    if method == "fps":
        return farthest_point_sample(points, n, rng)
    if len(points) >= n:
        return points[np.sort(rng.choice(len(points), n, replace=False))]
    extra = rng.choice(len(points), n - len(points), replace=True)
    return np.concatenate([points, points[extra]])


def farthest_point_sample(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(points) <= n:
        extra = rng.choice(len(points), n - len(points), replace=True)
        return np.concatenate([points, points[extra]])
    pts = points.astype(np.float32)
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = rng.integers(len(pts))
    dist = np.sum((pts - pts[chosen[0]]) ** 2, axis=1)
    for i in range(1, n):
        chosen[i] = int(np.argmax(dist))
        np.minimum(dist, np.sum((pts - pts[chosen[i]]) ** 2, axis=1), out=dist)
    return points[chosen]


def _ransac_plane(points: np.ndarray, cfg: TableConfig, rng: np.random.Generator) -> np.ndarray:
    best = np.zeros(len(points), dtype=bool)
    for _ in range(cfg.iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = np.linalg.norm(normal)
        if norm < 1e-9:
            continue
        normal /= norm
        inliers = np.abs((points - a) @ normal) <= cfg.distance
        if inliers.sum() > best.sum():
            best = inliers
    if best.sum() < cfg.min_inlier_fraction * len(points):
        return np.zeros(len(points), dtype=bool)
    return best

