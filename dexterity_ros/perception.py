"""Depth -> the student's object point cloud: the ONE preprocessing code path.

The segmentation node on the robot and the simulator that makes training
observations both call :func:`extract_object_cloud` (through
:class:`ObjectCloudExtractor`) with the parameters of ``config/perception.yaml``,
so the student sees the same cloud in sim and on the robot.

Pipeline (docs/perception.md):

1. image-space crop: per pixel of a cached grid (the projection of the
   workspace box, read with a stride so every camera works at about
   ``working_width`` pixels across) the depth interval in which its ray is
   inside the box; one comparison pair per pixel keeps exactly the pixels
   whose point lies in the box, before anything is backprojected;
2. backproject only those pixels with precomputed palm-frame rays (the
   calibrated extrinsic is folded into the rays);
3. hand removal: forward kinematics of the measured joint positions poses the
   collision shapes of the robot description; the model is first aligned to
   the measured hand points (:func:`dexterity_ros.calibration.align_hand`,
   absorbs calibration and joint-offset errors of ~1 cm), then points inside
   the shapes inflated by ``hand_margin`` (``hand_margin_behind`` on faces
   turned away from the camera, which are never seen: what lies just behind a
   finger is the object) are dropped; per-finger bounding boxes keep the
   exact tests to nearby points;
4. optional table-plane removal (RANSAC), density outlier removal;
5. exactly ``num_points`` points (seeded random or farthest-point sampling).

Too few object points: no cloud and a reason (the node reports it and
publishes nothing, so the student holds).

Longer than 600 lines because it is the one preprocessing path, kept in one
file so the robot and the simulator visibly run the same code top to bottom.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .calibration import HandAlignment, HandAlignmentConfig, align_hand, transform_shapes
from .camera_model import Intrinsics, RayGrid, project
from .config import config_hash, load_config
from .geometry import invert_transform, validate_rigid
from .kinematics import HandKinematics, ShapeSet
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

    def grown(self, margin: float) -> "WorkspaceBox":
        return WorkspaceBox(tuple(v - margin for v in self.min), tuple(v + margin for v in self.max))


@dataclass(frozen=True)
class OutlierConfig:
    """Density filter: keep a point if its 3x3x3 voxel neighbourhood (cell = radius)
    holds at least ``min_neighbors`` other points (a superset of the radius test)."""

    method: Literal["radius", "none"] = "radius"
    radius: float = 0.01
    min_neighbors: int = 4

    def __post_init__(self) -> None:
        if self.radius <= 0 or self.min_neighbors < 0:
            raise ValueError("outlier radius must be > 0 and min_neighbors >= 0")


@dataclass(frozen=True)
class ContactRegrowConfig:
    """Take back object pixels that hand removal dropped where the object touches the hand.

    The hand model is off by millimetres per finger (joint-reading noise), so its
    margin must be wide, and at a contact it swallows the object's points next to
    the finger or the palm. A dropped pixel joins the object when a 4-neighbour on
    the read pixel lattice is object and their depths differ by less than
    ``max_depth_jump``; ``steps`` rounds, each growing one lattice step from the
    previous round. Growth starts from object points with at least
    ``min_seed_neighbors`` neighbours (the outlier filter's count), so a few hand
    points outside the margin cannot grow back into their finger. A finger in
    front of or beside the object is separated from it by a depth jump, so growth
    stops there; at a contact it leaks up to ``steps`` pixels into the finger
    (docs/perception.md measures how much).
    """

    steps: int = 3                 # 0 = off
    max_depth_jump: float = 0.005  # m
    min_seed_neighbors: int = 15   # in the outlier filter's neighbourhood: a stray hand point that survived
                                   # the filter does not grow into its finger

    def __post_init__(self) -> None:
        if self.steps < 0 or self.max_depth_jump <= 0 or self.min_seed_neighbors < 0:
            raise ValueError("contact_regrow: need steps >= 0, max_depth_jump > 0, min_seed_neighbors >= 0")


@dataclass(frozen=True)
class TableConfig:
    """Optional dominant-plane removal (RANSAC) for a table in the workspace."""

    enabled: bool = False
    distance: float = 0.006
    iterations: int = 60
    min_inlier_fraction: float = 0.3

    def __post_init__(self) -> None:
        if self.distance <= 0 or self.iterations < 1 or not 0 < self.min_inlier_fraction <= 1:
            raise ValueError("table: need distance > 0, iterations >= 1, 0 < min_inlier_fraction <= 1")


@dataclass(frozen=True)
class PerceptionConfig:
    num_points: int = 512
    min_points: int = 64
    min_depth: float = 0.1
    max_depth: float = 2.0
    working_width: int = 424              # px; depth is read with stride max(1, round(width / this)); 0 = every pixel
    workspace: WorkspaceBox = field(default_factory=WorkspaceBox)
    remove_hand: bool = True
    hand_margin: float = 0.004            # m, inflation of the shapes towards the camera and sideways
    hand_margin_behind: float = 0.0015    # m, inflation of the faces turned away from the camera
    hand_alignment: HandAlignmentConfig = field(default_factory=HandAlignmentConfig)
    contact_regrow: ContactRegrowConfig = field(default_factory=ContactRegrowConfig)
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
        if self.working_width < 0:
            raise ValueError("working_width must be >= 0 (0: read every pixel)")
        if self.hand_margin < 0 or self.hand_margin_behind < 0:
            raise ValueError("hand_margin and hand_margin_behind must be >= 0")

    def config_hash(self) -> str:
        """Stable hash of every parameter: recorded in the policy contract."""
        return config_hash(self)

    def pixel_stride(self, width: int) -> int:
        """Every how many pixels (both directions) the depth image is read."""
        if self.working_width <= 0:
            return 1
        return max(1, int(round(width / self.working_width)))


def load_perception_config(path: str | Path | None = None) -> PerceptionConfig:
    return load_config(PerceptionConfig, path or config_path("perception.yaml"))


class PixelLabel(enum.IntEnum):
    """What the pipeline decided about a read pixel (``extract(..., want_labels=True)``).

    Set by the pipeline itself as each stage keeps or drops points, so a
    debug view shows exactly what segmentation did, never a re-computation.
    """

    BACKGROUND = 0      # not a candidate: outside the workspace box, or no valid depth
    OBJECT = 1          # kept as the object (before sampling)
    HAND = 2            # inside the hand's (aligned, inflated) collision shapes: removed
    OUTLIER = 3         # removed by the density filter
    TABLE = 4           # removed as the table plane (table.enabled)
    REGROWN = 5         # dropped as hand, then taken back at a contact (part of the object)


@dataclass
class CloudResult:
    """The sampled cloud (palm frame, float32 (N, 3)) or None with the reason."""

    points: np.ndarray | None
    reason: str
    counts: dict[str, int]
    timings_ms: dict[str, float]
    object_mask: np.ndarray | None = None   # (H, W) bool: pixels kept as object (before sampling)
    alignment: HandAlignment | None = None  # how the hand model was placed (None: not aligned)
    # (ceil(H / s), ceil(W / s)) uint8 PixelLabel of depth pixel (i * s, j * s), s = label_stride (the
    # pixel stride the depth was read with); only with want_labels
    labels: np.ndarray | None = None
    label_stride: int = 1

    @property
    def ok(self) -> bool:
        return self.points is not None


@dataclass(frozen=True)
class PixelGrid:
    """What depends only on (intrinsics, extrinsic, stride): the pixels read and their palm-frame rays."""

    rows: slice                  # with step = stride
    cols: slice
    shape: tuple[int, int]       # of depth[rows, cols]
    rays: np.ndarray             # (3, P) float32, a row per palm axis: point = depth * ray + origin
    origin: np.ndarray           # (3,) float32 camera position in the palm frame
    read_lo: np.ndarray          # (h, w) float32 depth interval inside the processing box
    read_hi: np.ndarray
    workspace_lo: np.ndarray     # (P,) float32 depth interval inside the workspace box
    workspace_hi: np.ndarray


def _box_depth_interval(rays: np.ndarray, origin: np.ndarray, box: WorkspaceBox,
                        min_depth: float, max_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Per ray, the depths z with origin + z * ray inside the box (slab test); empty -> (inf, -inf)."""
    lo = np.full(len(rays), max(min_depth, 1e-6))
    hi = np.full(len(rays), max_depth)
    for axis in range(3):
        r = rays[:, axis].astype(np.float64)
        o = float(origin[axis])
        a, b = box.min[axis], box.max[axis]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (a - o) / r, (b - o) / r
        parallel = np.abs(r) < 1e-12
        near = np.where(parallel, np.where(a <= o <= b, -np.inf, np.inf), np.minimum(t1, t2))
        far = np.where(parallel, np.where(a <= o <= b, np.inf, -np.inf), np.maximum(t1, t2))
        lo = np.maximum(lo, near)
        hi = np.minimum(hi, far)
    empty = lo > hi
    lo[empty], hi[empty] = np.inf, -np.inf
    return lo.astype(np.float32), hi.astype(np.float32)


class ObjectCloudExtractor:
    """Caches what depends only on intrinsics/extrinsic (ray grid, pixel window, depth intervals)."""

    def __init__(self, config: PerceptionConfig, kinematics: HandKinematics | None = None):
        self.config = config
        self.kinematics = kinematics or HandKinematics()
        self._grid: RayGrid | None = None
        self._pixels_key = None
        self._pixels: PixelGrid | None = None
        self._hand_groups = _shape_groups(self.kinematics)
        self._checked_key: bytes | None = None
        self.warm_start: HandAlignment | None = None   # see extract_next

    def _ray_grid(self, intrinsics: Intrinsics) -> RayGrid:
        if self._grid is None or self._grid.intrinsics != intrinsics:
            self._grid = RayGrid(intrinsics)
        return self._grid

    def _read_box(self) -> WorkspaceBox:
        """Workspace, grown where hand alignment needs measured hand points around it (the palm face)."""
        cfg = self.config
        if cfg.remove_hand and cfg.hand_alignment.enabled:
            return cfg.workspace.grown(cfg.hand_alignment.search_radius)
        return cfg.workspace

    def crop_window(self, intrinsics: Intrinsics, palm_from_camera: np.ndarray) -> tuple[slice, slice]:
        """Image rectangle (with the pixel stride as step) that contains the projection of the read box."""
        pixels = self.pixel_grid(intrinsics, palm_from_camera)
        return pixels.rows, pixels.cols

    def pixel_grid(self, intrinsics: Intrinsics, palm_from_camera: np.ndarray) -> PixelGrid:
        key = (intrinsics, np.asarray(palm_from_camera, dtype=np.float64).tobytes())
        if key == self._pixels_key and self._pixels is not None:
            return self._pixels
        cfg = self.config
        stride = cfg.pixel_stride(intrinsics.width)
        box = self._read_box()
        camera_from_palm = invert_transform(palm_from_camera)
        corners_cam = box.corners() @ camera_from_palm[:3, :3].T + camera_from_palm[:3, 3]
        if np.all(corners_cam[:, 2] > 1e-3):
            uv, _ = project(corners_cam, intrinsics)
            u0 = int(np.clip(np.floor(uv[:, 0].min()), 0, intrinsics.width))
            u1 = int(np.clip(np.ceil(uv[:, 0].max()) + 1, 0, intrinsics.width))
            v0 = int(np.clip(np.floor(uv[:, 1].min()), 0, intrinsics.height))
            v1 = int(np.clip(np.ceil(uv[:, 1].max()) + 1, 0, intrinsics.height))
        else:  # box straddles the camera plane: no safe image-space crop
            u0, u1, v0, v1 = 0, intrinsics.width, 0, intrinsics.height
        u0, v0 = u0 - u0 % stride, v0 - v0 % stride          # the same pixel lattice for every window
        rows, cols = slice(v0, max(v1, v0), stride), slice(u0, max(u1, u0), stride)
        grid = self._ray_grid(intrinsics)
        rx, ry = np.meshgrid(grid.u[cols].astype(np.float64), grid.v[rows].astype(np.float64))
        shape = rx.shape
        cam_rays = np.stack([rx.ravel(), ry.ravel(), np.ones(rx.size)], axis=1)
        rot, origin = palm_from_camera[:3, :3], palm_from_camera[:3, 3]
        rays = cam_rays @ rot.T
        read_lo, read_hi = _box_depth_interval(rays, origin, box, cfg.min_depth, cfg.max_depth)
        ws_lo, ws_hi = _box_depth_interval(rays, origin, cfg.workspace, cfg.min_depth, cfg.max_depth)
        self._pixels = PixelGrid(rows, cols, shape, np.ascontiguousarray(rays.T, dtype=np.float32),
                                 origin.astype(np.float32),
                                 read_lo.reshape(shape), read_hi.reshape(shape), ws_lo, ws_hi)
        self._pixels_key = key
        return self._pixels

    # ------------------------------------------------------------- frame sequences
    def reset_sequence(self) -> None:
        """Forget the warm start (a new camera stream or a new episode bag)."""
        self.warm_start = None

    def extract_next(self, depth: np.ndarray, intrinsics: Intrinsics, palm_from_camera: np.ndarray,
                     joint_positions: np.ndarray | None, want_mask: bool = False, *,
                     want_labels: bool = False) -> CloudResult:
        """:meth:`extract` on the next frame of a stream, warm-started from the previous one.

        The ONE rule for carrying the hand alignment from frame to frame, used by
        segmentation_node and by the simulator, so both produce the same clouds
        from the same frame sequence: a good fit is kept, a failed fit clears the
        warm start, a frame without a fit leaves it as it was.
        """
        result = self.extract(depth, intrinsics, palm_from_camera, joint_positions, want_mask,
                              previous_alignment=self.warm_start, want_labels=want_labels)
        if result.alignment is not None:
            self.warm_start = result.alignment if result.alignment.ok else None
        return result

    def extract(self, depth: np.ndarray, intrinsics: Intrinsics, palm_from_camera: np.ndarray,
                joint_positions: np.ndarray | None, want_mask: bool = False,
                previous_alignment: HandAlignment | None = None, *, want_labels: bool = False) -> CloudResult:
        """(depth float metres, intrinsics, camera->palm, measured joint positions) -> the cloud.

        ``previous_alignment``: the previous frame's ``result.alignment`` of the
        same camera; the hand alignment starts from it (it only saves time).
        Raises (IntrinsicsError, TransformError, ValueError) for inputs that
        cannot be used; a frame that simply holds too little of the object
        returns a CloudResult with ``ok`` False and the reason.
        ``want_labels``: also return every read pixel's :class:`PixelLabel`
        (``result.labels``), recorded by the stages below as they drop points;
        it changes nothing else.
        """
        cfg = self.config
        timings: dict[str, float] = {}
        counts: dict[str, int] = {}
        t0 = time.perf_counter()
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f"depth must be a 2-D image, got shape {depth.shape}")
        if depth.dtype.kind != "f":
            raise ValueError(f"depth must be float metres, got {depth.dtype} "
                             "(convert 16UC1 millimetres with conversions.image_to_depth)")
        intrinsics.check_image(depth.shape)
        palm_from_camera = self._checked_extrinsic(palm_from_camera)
        q = self._check_joints(joint_positions)
        if depth.dtype != np.float32:
            depth = depth.astype(np.float32)
        pixels = self.pixel_grid(intrinsics, palm_from_camera)
        window = np.ascontiguousarray(depth[pixels.rows, pixels.cols])
        read = window >= pixels.read_lo                                      # NaN/inf/0 fail both
        read &= window <= pixels.read_hi
        index = np.flatnonzero(read)
        z = window.ravel()[index]
        coords = pixels.rays.take(index, axis=1)                             # (3, N): one row per axis is
        coords *= z                                                          # the fast layout for numpy
        coords += pixels.origin[:, None]
        pts = coords.T
        counts["read_points"] = len(pts)
        in_workspace = (z >= pixels.workspace_lo[index]) & (z <= pixels.workspace_hi[index])
        timings["backproject"] = (time.perf_counter() - t0) * 1e3

        alignment = None
        dropped = None                          # rows that hand removal dropped
        removed: dict[PixelLabel, np.ndarray] = {}   # want_labels: rows each filter dropped
        if cfg.remove_hand:
            t1 = time.perf_counter()
            shapes = self.kinematics.collision_shapes(q)
            if cfg.hand_alignment.enabled:
                alignment = self._align(shapes, pts, pixels.origin.astype(np.float64), previous_alignment)
                if alignment.ok:
                    shapes = transform_shapes(shapes, invert_transform(alignment.correction))
            timings["hand_alignment"] = (time.perf_counter() - t1) * 1e3
            t2 = time.perf_counter()
            ws_index = np.flatnonzero(in_workspace)
            on_hand = hand_mask(shapes, coords.take(ws_index, axis=1).T, pixels.origin.astype(np.float64),
                                cfg.hand_margin, cfg.hand_margin_behind, self._hand_groups)
            counts["in_workspace"] = len(ws_index)
            counts["hand_removed"] = int(on_hand.sum())
            kept, dropped = ws_index[~on_hand], ws_index[on_hand]
            timings["hand_removal"] = (time.perf_counter() - t2) * 1e3
        else:
            kept = np.flatnonzero(in_workspace)
            counts["in_workspace"] = len(kept)

        t3 = time.perf_counter()
        neighbours = None                       # per kept point, from the density filter
        if cfg.table.enabled and len(kept) >= 3:
            on_table = _ransac_plane(pts[kept], cfg.table, np.random.default_rng(cfg.seed))
            counts["table_removed"] = int(on_table.sum())
            if want_labels:
                removed[PixelLabel.TABLE] = kept[on_table]
            kept = kept[~on_table]
        if cfg.outlier.method == "radius" and len(kept):
            neighbours = neighbour_counts(pts[kept], cfg.outlier.radius)
            dense = neighbours >= cfg.outlier.min_neighbors
            counts["outliers_removed"] = int((~dense).sum())
            if want_labels:
                removed[PixelLabel.OUTLIER] = kept[~dense]
            kept, neighbours = kept[dense], neighbours[dense]
        timings["filter"] = (time.perf_counter() - t3) * 1e3
        if cfg.contact_regrow.steps and dropped is not None and len(dropped) and len(kept):
            t5 = time.perf_counter()     # after the filters: a stray point must not seed a patch of hand
            if neighbours is None:
                neighbours = neighbour_counts(pts[kept], cfg.outlier.radius)
            seeds = kept[neighbours >= cfg.contact_regrow.min_seed_neighbors]
            back = regrow_contacts(pixels.shape, index, z, seeds, dropped, cfg.contact_regrow)
            if want_labels:
                removed[PixelLabel.REGROWN] = dropped[back]
            kept = np.sort(np.concatenate([kept, dropped[back]]))
            counts["contact_regrown"] = int(back.sum())
            counts["hand_removed"] -= counts["contact_regrown"]
            timings["contact_regrow"] = (time.perf_counter() - t5) * 1e3
        labels = None
        if want_labels:
            labels = self._label_image(depth.shape, pixels, index, kept, dropped, removed)
        pts, index = pts[kept], index[kept]
        counts["object_points"] = len(pts)

        mask = None
        if want_mask:
            mask = np.zeros(depth.shape, dtype=bool)
            width = pixels.shape[1]
            step_r, step_c = pixels.rows.step, pixels.cols.step
            mask[pixels.rows.start + step_r * (index // width), pixels.cols.start + step_c * (index % width)] = True
        if len(pts) < cfg.min_points:
            timings["total"] = (time.perf_counter() - t0) * 1e3
            return CloudResult(None, self._too_few_reason(len(pts), depth, counts), counts, timings, mask,
                               alignment, labels, pixels.rows.step)
        t4 = time.perf_counter()
        sampled = sample_points(pts, cfg.num_points, cfg.sampling, cfg.seed)
        timings["sample"] = (time.perf_counter() - t4) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return CloudResult(np.ascontiguousarray(sampled, dtype=np.float32), "ok", counts, timings, mask, alignment,
                           labels, pixels.rows.step)

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _label_image(shape: tuple[int, int], pixels: PixelGrid, index: np.ndarray, kept: np.ndarray,
                     dropped: np.ndarray | None, removed: dict[PixelLabel, np.ndarray]) -> np.ndarray:
        """PixelLabel per pixel of the read lattice of the whole image (see CloudResult.labels).

        ``index``: lattice index (in the crop window) of every read point; the
        other arguments are rows of it: hand removal's ``dropped``, each
        filter's ``removed`` rows (regrown rows were dropped first, then taken
        back) and the final ``kept`` rows. The crop window starts on a
        multiple of the stride, so window lattice and image lattice agree.
        """
        stride = pixels.rows.step
        labels = np.full((-(-shape[0] // stride), -(-shape[1] // stride)), PixelLabel.BACKGROUND, dtype=np.uint8)
        width = pixels.shape[1]
        row0, col0 = pixels.rows.start // stride, pixels.cols.start // stride

        def mark(rows: np.ndarray | None, label: PixelLabel) -> None:
            if rows is not None and len(rows):
                cell = index[rows]
                labels[row0 + cell // width, col0 + cell % width] = label

        mark(dropped, PixelLabel.HAND)
        for label in (PixelLabel.TABLE, PixelLabel.OUTLIER):
            mark(removed.get(label), label)
        mark(kept, PixelLabel.OBJECT)
        mark(removed.get(PixelLabel.REGROWN), PixelLabel.REGROWN)     # kept too: the finer label wins
        return labels

    def _checked_extrinsic(self, palm_from_camera: np.ndarray) -> np.ndarray:
        """validate_rigid, skipped when it is the extrinsic already checked (the same every frame)."""
        matrix = np.asarray(palm_from_camera, dtype=np.float64)
        key = matrix.tobytes()
        if key != self._checked_key:
            matrix = validate_rigid(matrix, name="camera->palm extrinsic")
            self._checked_key = key
        return matrix

    def _check_joints(self, joint_positions: np.ndarray | None) -> np.ndarray | None:
        if not self.config.remove_hand:
            return None
        if joint_positions is None:
            raise ValueError("joint positions are required to remove the hand's points (remove_hand is true)")
        q = np.asarray(joint_positions, dtype=np.float64)
        n = self.kinematics.hand.num_joints
        if q.shape != (n,):
            raise ValueError(f"expected {n} joint positions in canonical order, got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"joint positions must be finite, got {q.tolist()}")
        return q

    def _align(self, shapes: ShapeSet, pts: np.ndarray, view_point: np.ndarray,
               previous: HandAlignment | None) -> HandAlignment:
        """Fit the hand model to the measured points near it (an evenly spaced subset)."""
        cfg = self.config.hand_alignment
        lo, hi = _shape_bounds(shapes, cfg.search_radius)
        step = max(1, len(pts) // (4 * cfg.max_points))          # an evenly spaced subset is all the fit uses
        near = np.flatnonzero(_in_box(pts[::step], lo, hi)) * step
        if len(near) > cfg.max_points:
            near = near[np.linspace(0, len(near) - 1, cfg.max_points).astype(np.int64)]
        return align_hand(shapes, pts[near], cfg, view_point=view_point, previous=previous)

    def _too_few_reason(self, n: int, depth: np.ndarray, counts: dict[str, int]) -> str:
        reason = f"too few object points ({n} < min_points {self.config.min_points})"
        bad = int(np.count_nonzero(~np.isfinite(depth)))
        if bad:
            reason += f"; {bad} depth pixels are NaN/inf"
        if counts.get("read_points", 0) == 0:
            reason += "; no valid depth inside the workspace"
        elif counts.get("hand_removed", 0) and counts.get("in_workspace", 0):
            reason += f"; {counts['hand_removed']} of {counts['in_workspace']} workspace points were the hand"
        return reason


def extract_object_cloud(depth: np.ndarray, intrinsics: Intrinsics, palm_from_camera: np.ndarray,
                         joint_positions: np.ndarray | None, config: PerceptionConfig,
                         extractor: ObjectCloudExtractor | None = None) -> CloudResult:
    """(depth metres, intrinsics, camera->palm, joint positions) -> the student's cloud."""
    extractor = extractor or ObjectCloudExtractor(config)
    if extractor.config != config:
        raise ValueError("extractor was built for a different PerceptionConfig")
    return extractor.extract(depth, intrinsics, palm_from_camera, joint_positions)


# ------------------------------------------------------------------ hand removal
def _in_box(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    return (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])


def _shape_bounds(shapes: ShapeSet, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Palm-frame axis-aligned bounds of all shapes grown by ``margin`` (vectorized ShapeSet.bounding_box)."""
    extent = np.einsum("bij,bj->bi", np.abs(shapes.box_rotation), shapes.box_half)
    reach = shapes.capsule_radius[:, None]
    ends = np.minimum(shapes.capsule_a, shapes.capsule_b), np.maximum(shapes.capsule_a, shapes.capsule_b)
    lo = np.vstack([shapes.box_center - extent, ends[0] - reach]).min(axis=0) - margin
    hi = np.vstack([shapes.box_center + extent, ends[1] + reach]).max(axis=0) + margin
    return lo, hi


def _shape_groups(kinematics: HandKinematics) -> list[tuple[np.ndarray, np.ndarray]]:
    """Box and capsule indices per finger (links named '<finger>_<link>'; the palm is its own group)."""
    shapes = kinematics.collision_shapes(np.zeros(kinematics.hand.num_joints))
    names = sorted({n.split("_")[0] for n in shapes.box_body + shapes.capsule_body})
    return [(np.array([i for i, n in enumerate(shapes.box_body) if n.split("_")[0] == g], dtype=np.int64),
             np.array([i for i, n in enumerate(shapes.capsule_body) if n.split("_")[0] == g], dtype=np.int64))
            for g in names]


def hand_mask(shapes: ShapeSet, points: np.ndarray, camera_position: np.ndarray, margin: float,
              margin_behind: float, groups: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Points (N, 3) inside any shape inflated by ``margin`` (``margin_behind`` on its far side).

    The far side of a shape (faces whose outward normal points away from the
    camera; for capsules, points beyond the axis as seen from the camera) is
    never measured, so it gets the small margin: the object right behind a
    finger is kept. Each point is tested only against the shapes of a finger
    (group) whose inflated bounding box contains it.
    """
    inside = np.zeros(len(points), dtype=bool)
    if len(points) == 0:
        return inside
    if groups is None:
        groups = [(np.arange(len(shapes.box_half)), np.arange(len(shapes.capsule_radius)))]
    groups = [(b, c) for b, c in groups if len(b) + len(c)]
    if not groups:
        return inside
    camera_position = np.asarray(camera_position, dtype=np.float64)
    big = max(margin, margin_behind)
    rot, centre, half = shapes.box_rotation, shapes.box_center, shapes.box_half
    # per box, in its own frame: inflated bounds (small margin on the faces turned away from the camera)
    view_local = np.einsum("bji,bj->bi", rot, centre - camera_position)
    box_hi = (half + np.where(view_local > 0, margin_behind, margin)).T.astype(np.float32)       # (3, nb)
    box_lo = (-half - np.where(view_local < 0, margin_behind, margin)).T.astype(np.float32)
    axes = rot.transpose(2, 0, 1).astype(np.float32)                 # (3, nb, 3): axis a of box b
    offset = np.einsum("abi,bi->ab", axes, centre.astype(np.float32))  # (3, nb)
    # per group: palm-frame bounding box of its inflated shapes, all groups tested in one pass
    box_extent = np.einsum("bij,bj->bi", np.abs(rot), half + big)
    cap_a, cap_b, radius = shapes.capsule_a, shapes.capsule_b, shapes.capsule_radius
    cap_lo = np.minimum(cap_a, cap_b) - (radius + big)[:, None]
    cap_hi = np.maximum(cap_a, cap_b) + (radius + big)[:, None]
    order = np.concatenate([np.concatenate([b, len(half) + c]) for b, c in groups]).astype(np.int64)
    starts = np.cumsum([0] + [len(b) + len(c) for b, c in groups[:-1]])
    lo = np.minimum.reduceat(np.vstack([centre - box_extent, cap_lo])[order], starts, axis=0)
    hi = np.maximum.reduceat(np.vstack([centre + box_extent, cap_hi])[order], starts, axis=0)
    coords = np.ascontiguousarray(points.T, dtype=np.float32)                   # (3, N)
    within = (coords[:, None, :] >= lo.T[:, :, None].astype(np.float32)) & \
             (coords[:, None, :] <= hi.T[:, :, None].astype(np.float32))
    member = within[0] & within[1] & within[2]                                  # (groups, N)
    cap_view = (0.5 * (cap_a + cap_b) - camera_position).astype(np.float32)
    cap_ab = (cap_b - cap_a).astype(np.float32)
    cap_a32 = cap_a.astype(np.float32)
    cap_inv = 1.0 / np.maximum(np.einsum("ci,ci->c", cap_ab, cap_ab), 1e-12)
    for g, (boxes, capsules) in enumerate(groups):
        near = np.flatnonzero(member[g])
        if near.size == 0:
            continue
        p = coords[:, near]                                                    # (3, m)
        hit = np.zeros(near.size, dtype=bool)
        if len(boxes):
            k = len(boxes)
            local = (axes[:, boxes].reshape(3 * k, 3) @ p).reshape(3, k, -1) - offset[:, boxes, None]
            ok = (local >= box_lo[:, boxes, None]) & (local <= box_hi[:, boxes, None])
            hit |= (ok[0] & ok[1] & ok[2]).any(axis=0)
        for c in capsules:
            t = np.clip((cap_ab[c] @ p - cap_a32[c] @ cap_ab[c]) * cap_inv[c], 0.0, 1.0)
            off = p - (cap_a32[c][:, None] + cap_ab[c][:, None] * t)
            reach = np.where(cap_view[c] @ off > 0, radius[c] + margin_behind, radius[c] + margin)
            hit |= np.einsum("in,in->n", off, off) <= reach * reach
        inside[near[hit]] = True
    return inside


def regrow_contacts(grid_shape: tuple[int, int], grid_index: np.ndarray, depth: np.ndarray,
                    object_rows: np.ndarray, dropped_rows: np.ndarray, config: ContactRegrowConfig) -> np.ndarray:
    """Which dropped points join the object (bool per ``dropped_rows``); see ContactRegrowConfig.

    ``grid_index``/``depth``: lattice index (row-major in ``grid_shape``) and depth
    of every read point; ``object_rows``/``dropped_rows``: positions in those
    arrays of the object points growth starts from and of those hand removal dropped.
    Grows outwards from the object (the smaller set): each round looks at the
    4-neighbours of the previous round's points only. The lattice is padded by
    a blank row and column so neighbours never wrap.
    """
    height, width = grid_shape
    padded_width = width + 1
    cell = grid_index + grid_index // width + padded_width + 1
    dropped_depth = np.full((height + 2) * padded_width + 1, np.nan, dtype=np.float32)   # NaN: not a dropped point
    dropped_cells = cell[dropped_rows]
    dropped_depth[dropped_cells] = depth[dropped_rows]
    dropped_position = np.empty(len(dropped_depth), dtype=np.int64)
    dropped_position[dropped_cells] = np.arange(len(dropped_rows))
    offsets = np.array([1, -1, padded_width, -padded_width])
    joined = np.zeros(len(dropped_rows), dtype=bool)
    frontier, frontier_depth = cell[object_rows], depth[object_rows]
    for _ in range(config.steps):
        neighbour = (frontier[:, None] + offsets).ravel()
        values = dropped_depth[neighbour]
        joins = np.abs(values - np.repeat(frontier_depth, len(offsets))) < config.max_depth_jump   # NaN: False
        if not joins.any():
            break
        frontier, frontier_depth = neighbour[joins], values[joins]
        dropped_depth[frontier] = np.nan                   # joined once
        joined[dropped_position[frontier]] = True
    return joined


# ------------------------------------------------------------------ filters and sampling
def density_filter(points: np.ndarray, radius: float, min_neighbors: int) -> np.ndarray:
    """Keep points whose 3x3x3 neighbourhood of radius-sized voxels has >= min_neighbors others."""
    return neighbour_counts(points, radius) >= min_neighbors


def neighbour_counts(points: np.ndarray, radius: float) -> np.ndarray:
    """Per point, how many other points share its 3x3x3 neighbourhood of radius-sized voxels."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    cells = np.floor(points / radius).astype(np.int64)
    cells -= cells.min(axis=0) - 1
    dims = cells.max(axis=0) + 2
    keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    unique, inverse, per_cell = np.unique(keys, return_inverse=True, return_counts=True)
    cumulative = np.concatenate([[0], np.cumsum(per_cell)])
    # the 3 z-neighbours of a column are one key range: 9 ranges per cell, all searched at once
    shifts = np.array([(dx * dims[1] + dy) * dims[2] for dx in (-1, 0, 1) for dy in (-1, 0, 1)])
    base = (unique[None, :] + shifts[:, None]).ravel()
    first = np.searchsorted(unique, base - 1, side="left")
    last = np.searchsorted(unique, base + 1, side="right")
    total = (cumulative[last] - cumulative[first]).reshape(len(shifts), -1).sum(axis=0)
    return total[inverse.reshape(-1)] - 1


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
    """Exact farthest-point sampling from a seeded random start (O(n * len(points)))."""
    if len(points) <= n:
        extra = rng.choice(len(points), n - len(points), replace=True)
        return np.concatenate([points, points[extra]])
    pts = np.ascontiguousarray(points, dtype=np.float32)
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = rng.integers(len(pts))
    diff = pts - pts[chosen[0]]
    dist = np.einsum("ij,ij->i", diff, diff)
    step = np.empty_like(dist)
    for i in range(1, n):
        chosen[i] = int(dist.argmax())
        np.subtract(pts, pts[chosen[i]], out=diff)
        np.einsum("ij,ij->i", diff, diff, out=step)
        np.minimum(dist, step, out=dist)
    return points[chosen]


def _ransac_plane(points: np.ndarray, cfg: TableConfig, rng: np.random.Generator) -> np.ndarray:
    """Inliers of the best of ``iterations`` random planes (all hypotheses scored in one product)."""
    triples = points[rng.integers(0, len(points), size=(cfg.iterations, 3))].astype(np.float64)
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    good = norms > 1e-9
    if not good.any():
        return np.zeros(len(points), dtype=bool)
    normals = normals[good] / norms[good, None]
    offsets = np.einsum("ij,ij->i", normals, triples[good, 0])
    inliers = np.abs(points.astype(np.float64) @ normals.T - offsets) <= cfg.distance
    best = inliers[:, int(inliers.sum(axis=0).argmax())]
    if best.sum() < cfg.min_inlier_fraction * len(points):
        return np.zeros(len(points), dtype=bool)
    return best
