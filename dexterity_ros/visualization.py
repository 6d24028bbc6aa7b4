"""What the robot sees, as pictures: hand transforms, markers, the segmentation debug image.

Pure (no rclpy, no message packages): hand_view_node and segmentation_node
turn these results into /tf, a MarkerArray and an rgb8 Image. Everything is
drawn from the code the stack runs, never a second copy of it:

* link transforms: :class:`~dexterity_ros.kinematics.HandKinematics` (the
  same forward kinematics segmentation removes the hand with), parent ->
  child along the tree of the generated URDF (:mod:`dexterity_ros.urdf`);
* hand shapes: ``HandKinematics.collision_shapes`` at the measured joints,
  inflated by the perception config's ``hand_margin``, the region
  segmentation drops (docs/visualization.md lists what is not shown);
* workspace box: the perception config's;
* debug image: the :class:`~dexterity_ros.perception.PixelLabel` of every read
  pixel, recorded by :meth:`ObjectCloudExtractor.extract` itself.

Colours (docs/visualization.md) are named once here and used by the
markers, the debug image and its legend.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .geometry import make_transform, quat_to_matrix
from .kinematics import HandKinematics
from .perception import PixelLabel, WorkspaceBox

RGB = tuple[int, int, int]
RGBA = tuple[float, float, float, float]

# --------------------------------------------------------------------------- colours
# debug image: a labelled pixel has its label's colour (dimmed with distance); background is depth in grey
LABEL_COLOURS: dict[PixelLabel, RGB] = {
    PixelLabel.OBJECT: (40, 200, 60),          # green: kept as the object
    PixelLabel.REGROWN: (0, 200, 210),         # cyan: dropped as hand, taken back at a contact (object)
    PixelLabel.HAND: (230, 50, 40),            # red: removed as the hand
    PixelLabel.OUTLIER: (250, 200, 0),         # yellow: removed by the density filter
    PixelLabel.TABLE: (60, 110, 240),          # blue: removed as the table plane
}
LABEL_NAMES: dict[PixelLabel, str] = {
    PixelLabel.OBJECT: "object", PixelLabel.REGROWN: "taken back", PixelLabel.HAND: "hand removed",
    PixelLabel.OUTLIER: "outlier", PixelLabel.TABLE: "table", PixelLabel.BACKGROUND: "background",
}
NO_DEPTH: RGB = (0, 0, 0)                      # black: no valid depth
LEGEND_BACKGROUND: RGB = (24, 24, 24)          # the legend strip under the image (never a pixel of the image)

# markers (RGBA, 0..1)
WORKSPACE_COLOUR: RGBA = (0.2, 0.7, 0.95, 0.9)
HAND_SHAPE_COLOUR: RGBA = (230 / 255, 50 / 255, 40 / 255, 0.35)     # the debug image's hand-removed red
TRACKED_COLOUR: RGBA = (1.0, 0.55, 0.0, 1.0)                          # orange: the tracker's estimate
GOAL_COLOUR: RGBA = (0.85, 0.25, 0.9, 1.0)                            # magenta: where the object should turn
AXIS_COLOURS: tuple[RGBA, RGBA, RGBA] = ((1.0, 0.1, 0.1, 1.0), (0.1, 0.9, 0.1, 1.0), (0.2, 0.3, 1.0, 1.0))
TEXT_COLOUR: RGBA = (1.0, 1.0, 1.0, 1.0)

# marker namespaces (docs/visualization.md)
NS_WORKSPACE = "workspace"
NS_HAND = "hand_shapes"
NS_TRACKED = "tracked_object"
NS_GOAL = "goal"
NS_TEXT = "labels"


# --------------------------------------------------------------------------- transforms
@dataclass(frozen=True)
class LinkTransform:
    """Pose of ``child`` in ``parent`` (4x4), one edge of the hand's tree (a URDF joint)."""

    parent: str
    child: str
    matrix: np.ndarray


def link_transforms(kinematics: HandKinematics, q: np.ndarray) -> list[LinkTransform]:
    """Parent -> child transforms of every link except the root at joint positions ``q``.

    Computed from the palm-frame forward kinematics, so chaining them from the
    palm gives :meth:`HandKinematics.link_poses` exactly (up to rounding).
    """
    rot, pos = kinematics.link_poses(q)
    index = {name: i for i, name in enumerate(kinematics.link_names)}
    out = []
    for link in kinematics.hand.links:
        i, p = index[link.name], index[link.parent]
        relative_rot = rot[p].T @ rot[i]
        relative_pos = rot[p].T @ (pos[i] - pos[p])
        out.append(LinkTransform(link.parent, link.name, make_transform(relative_rot, relative_pos)))
    return out


# --------------------------------------------------------------------------- markers
class MarkerKind(enum.Enum):
    """visualization_msgs/Marker types used here (the node maps them to the message constants)."""

    CUBE = "cube"
    SPHERE = "sphere"
    CYLINDER = "cylinder"
    LINE_LIST = "line_list"
    POINTS = "points"
    TEXT = "text_view_facing"


@dataclass(frozen=True)
class MarkerSpec:
    """One marker, message-free: ``pose`` (4x4) in the palm frame, ``points`` (N, 3) in the marker's frame."""

    ns: str
    id: int
    kind: MarkerKind
    pose: np.ndarray
    scale: tuple[float, float, float]
    rgba: RGBA
    stamp_ns: int
    points: np.ndarray | None = None
    colors: tuple[RGBA, ...] | None = None      # per point (LINE_LIST axes)
    text: str = ""
    lifetime_s: float = 0.0                      # 0: until replaced


@dataclass(frozen=True)
class ViewSettings:
    """What hand_view_node draws besides the hand (from its parameters and the shared configs)."""

    workspace: WorkspaceBox
    hand_margin: float                           # m, perception config: shapes drawn inflated by it
    object_points: np.ndarray                    # (M, 3) object-frame model points drawn for object and goal
    goal_position: np.ndarray                    # (3,) palm frame: where the goal is drawn (anchor "beside")
    goal_anchor: Literal["beside", "tracked"] = "beside"
    pose_timeout_s: float = 0.5                  # a tracked pose older than this is not drawn
    point_size: float = 0.003                    # m
    axis_length: float = 0.04                    # m


def workspace_lines(box: WorkspaceBox) -> np.ndarray:
    """The 12 edges of ``box`` as 24 LINE_LIST end points (palm frame)."""
    corners = box.corners()                     # index bits: x (4), y (2), z (1)
    edges = [(a, a | bit) for a in range(8) for bit in (1, 2, 4) if not a & bit]
    return np.array([corners[i] for edge in edges for i in edge])


def _axis_rotation_to(direction: np.ndarray) -> np.ndarray:
    """A rotation whose z axis is ``direction`` (a cylinder marker's axis)."""
    z = np.asarray(direction, dtype=np.float64)
    norm = float(np.linalg.norm(z))
    if norm < 1e-12:
        return np.eye(3)
    z = z / norm
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def hand_shape_markers(kinematics: HandKinematics, q: np.ndarray, margin: float, stamp_ns: int) -> list[MarkerSpec]:
    """The collision shapes segmentation poses at ``q``, inflated by ``margin``: boxes as cubes, a capsule
    as a cylinder plus two spheres."""
    shapes = kinematics.collision_shapes(q)
    out: list[MarkerSpec] = []
    for rot, centre, half in zip(shapes.box_rotation, shapes.box_center, shapes.box_half):
        size = tuple(float(2 * (h + margin)) for h in half)
        out.append(MarkerSpec(NS_HAND, len(out), MarkerKind.CUBE, make_transform(rot, centre), size,
                              HAND_SHAPE_COLOUR, stamp_ns))
    for a, b, radius in zip(shapes.capsule_a, shapes.capsule_b, shapes.capsule_radius):
        diameter = float(2 * (radius + margin))
        length = float(np.linalg.norm(b - a))
        out.append(MarkerSpec(NS_HAND, len(out), MarkerKind.CYLINDER,
                              make_transform(_axis_rotation_to(b - a), 0.5 * (a + b)), (diameter, diameter, length),
                              HAND_SHAPE_COLOUR, stamp_ns))
        for end in (a, b):
            out.append(MarkerSpec(NS_HAND, len(out), MarkerKind.SPHERE, make_transform(np.eye(3), end),
                                  (diameter, diameter, diameter), HAND_SHAPE_COLOUR, stamp_ns))
    return out


def _axes(ns: str, marker_id: int, pose: np.ndarray, length: float, stamp_ns: int,
          lifetime_s: float = 0.0) -> MarkerSpec:
    points = np.array([[0, 0, 0], [length, 0, 0], [0, 0, 0], [0, length, 0], [0, 0, 0], [0, 0, length]], float)
    colors = tuple(c for c in AXIS_COLOURS for _ in range(2))
    return MarkerSpec(ns, marker_id, MarkerKind.LINE_LIST, pose, (0.003, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0),
                      stamp_ns, points, colors, lifetime_s=lifetime_s)


@dataclass(frozen=True)
class TrackedPose:
    position: np.ndarray            # (3,) palm frame
    quaternion: np.ndarray          # (4,) w, x, y, z
    stamp_ns: int                   # its header stamp (the markers carry it)
    received_ns: int | None = None  # when it arrived, on the viewer's clock (its age); None: the stamp

    @property
    def seen_ns(self) -> int:
        return self.stamp_ns if self.received_ns is None else self.received_ns


def scene_markers(settings: ViewSettings, kinematics: HandKinematics, *, q: np.ndarray | None, joints_stamp_ns: int,
                  tracked: TrackedPose | None, goal: np.ndarray | None, now_ns: int, goal_stamp_ns: int = 0,
                  goal_distance: float | None = None) -> list[MarkerSpec]:
    """Every marker of one MarkerArray.

    ``q``: measured joints (None: no hand shapes yet); ``tracked``: the latest
    tracked pose, drawn while it arrived less than ``pose_timeout_s`` before
    ``now_ns``, with that lifetime so a viewer drops it once the tracker is
    silent; ``goal``: quaternion (w, x, y, z) drawn as the object's
    model turned to it at ``goal_position``, or at the tracked position with
    anchor ``tracked`` while there is one; ``goal_distance`` (rad, the
    judge's symmetry-aware distance) is written beside it.
    """
    out = [MarkerSpec(NS_WORKSPACE, 0, MarkerKind.LINE_LIST, np.eye(4), (0.002, 0.0, 0.0), WORKSPACE_COLOUR,
                      now_ns, workspace_lines(settings.workspace))]
    if q is not None:
        out += hand_shape_markers(kinematics, q, settings.hand_margin, joints_stamp_ns)
    fresh = tracked is not None and (now_ns - tracked.seen_ns) * 1e-9 <= settings.pose_timeout_s
    size = (settings.point_size, settings.point_size, 0.0)
    draw_model = len(settings.object_points) > 0
    if fresh:
        pose = make_transform(quat_to_matrix(tracked.quaternion), tracked.position)
        if draw_model:
            out.append(MarkerSpec(NS_TRACKED, 0, MarkerKind.POINTS, pose, size, TRACKED_COLOUR, tracked.stamp_ns,
                                  settings.object_points, lifetime_s=settings.pose_timeout_s))
        out.append(_axes(NS_TRACKED, 1, pose, settings.axis_length, tracked.stamp_ns, settings.pose_timeout_s))
    if goal is not None:
        anchor = settings.goal_position
        if settings.goal_anchor == "tracked" and fresh:
            anchor = np.asarray(tracked.position, dtype=np.float64)
        pose = make_transform(quat_to_matrix(goal), anchor)
        stamp = goal_stamp_ns or now_ns
        if draw_model:
            out.append(MarkerSpec(NS_GOAL, 0, MarkerKind.POINTS, pose, size, GOAL_COLOUR, stamp,
                                  settings.object_points))
        out.append(_axes(NS_GOAL, 1, pose, settings.axis_length, stamp))
        label = "goal" if goal_distance is None or not fresh else f"goal: {math.degrees(goal_distance):.0f} deg to go"
        top = make_transform(np.eye(3), anchor + np.array([0.0, 0.0, settings.axis_length + 0.02]))
        out.append(MarkerSpec(NS_TEXT, 0, MarkerKind.TEXT, top, (0.0, 0.0, 0.012), TEXT_COLOUR, stamp, text=label))
    return out


def model_subset(points: np.ndarray, n: int) -> np.ndarray:
    """``n`` evenly spread points of an object model (every k-th: models are sampled uniformly by area)."""
    points = np.asarray(points, dtype=np.float64)
    if n <= 0 or n >= len(points):
        return points
    return points[np.linspace(0, len(points) - 1, n).astype(np.int64)]


# --------------------------------------------------------------------------- debug image
def label_counts(labels: np.ndarray) -> dict[PixelLabel, int]:
    counts = np.bincount(labels.ravel(), minlength=len(PixelLabel))
    return {label: int(counts[label]) for label in PixelLabel}


def depth_shade(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shade in [0, 1], 1 = nearest; valid mask) with the frame's own 2nd..98th percentile depth range."""
    valid = np.isfinite(depth) & (depth > 0)
    shade = np.zeros(depth.shape, dtype=np.float32)
    if valid.any():
        lo, hi = np.percentile(depth[valid], [2.0, 98.0])
        span = max(float(hi - lo), 1e-3)
        shade[valid] = np.clip(1.0 - (depth[valid] - lo) / span, 0.0, 1.0)
    return shade, valid


LEGEND_ORDER = (PixelLabel.OBJECT, PixelLabel.REGROWN, PixelLabel.HAND, PixelLabel.OUTLIER, PixelLabel.TABLE,
                PixelLabel.BACKGROUND)


def debug_image(depth: np.ndarray, labels: np.ndarray, stride: int, window: tuple[slice, slice] | None = None,
                legend: bool = True, min_width: int = 400) -> np.ndarray:
    """The segmentation debug view: (h, w, 3) uint8 RGB at the read pixel lattice, legend below.

    ``depth``: the frame (float metres); ``labels``/``stride``: the frame's
    ``CloudResult.labels``/``label_stride``; ``window``: the image rectangle
    to show (rows, columns in depth pixels, e.g. :func:`labelled_window`;
    None: the whole frame); the legend counts the labels of the whole frame.
    Background pixels are depth in
    grey (near = light), labelled ones their :data:`LABEL_COLOURS` dimmed to
    55 % with distance (the hue stays the label's), no depth black. An image
    narrower than ``min_width`` is enlarged by a whole factor (nearest) so the
    legend stays readable. The legend (label, colour, pixel count) is drawn
    under the image, not over it.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2 or stride < 1:
        raise ValueError(f"need a 2-D depth image and a stride >= 1, got {depth.shape}, {stride}")
    sampled = depth[::stride, ::stride]
    if sampled.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} do not match the depth {depth.shape} read every {stride} px")
    counts = label_counts(labels)
    if window is not None:
        rows, cols = (slice(w.start // stride, -(-w.stop // stride)) for w in window)
        if rows.stop > rows.start and cols.stop > cols.start:
            sampled, labels = sampled[rows, cols], labels[rows, cols]
    shade, valid = depth_shade(sampled.astype(np.float32))
    image = np.zeros(sampled.shape + (3,), dtype=np.float32)
    grey = 60.0 + 170.0 * shade
    image[valid] = grey[valid, None]
    dim = 0.55 + 0.45 * shade
    for label, rgb in LABEL_COLOURS.items():
        where = labels == label
        image[where] = np.asarray(rgb, dtype=np.float32)[None, :] * dim[where, None]
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    factor = max(1, -(-min_width // max(image.shape[1], 1)))
    if factor > 1:
        image = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    if not legend:
        return image
    return np.concatenate([image, _legend(image.shape[1], counts)], axis=0)


def _legend(width: int, counts: dict[PixelLabel, int]) -> np.ndarray:
    """Rows of swatch + 'name count' entries, wrapped to ``width`` (Pillow's built-in bitmap font)."""
    from PIL import Image, ImageDraw, ImageFont

    entries = [label for label in LEGEND_ORDER
               if label in (PixelLabel.OBJECT, PixelLabel.HAND, PixelLabel.OUTLIER, PixelLabel.BACKGROUND)
               or counts.get(label, 0)]
    font = ImageFont.load_default(size=12)
    line = 18
    placed: list[tuple[int, int, PixelLabel, str]] = []
    x, row = 6, 0
    for label in entries:
        text = f"{LABEL_NAMES[label]} {counts.get(label, 0)}"
        text_w = int(np.ceil(font.getlength(text)))
        item = 14 + text_w + 12
        if x + item > width and x > 6:
            x, row = 6, row + 1
        placed.append((x, row, label, text))
        x += item
    strip = Image.new("RGB", (width, (row + 1) * line + 4), tuple(int(c) for c in LEGEND_BACKGROUND))
    draw = ImageDraw.Draw(strip)
    for x, row, label, text in placed:
        y = 4 + row * line
        colour = (150, 150, 150) if label is PixelLabel.BACKGROUND else LABEL_COLOURS[label]
        draw.rectangle((x, y + 3, x + 9, y + 12), fill=tuple(int(c) for c in colour))
        draw.text((x + 14, y + 1), text, fill=(235, 235, 235), font=font)
    return np.asarray(strip, dtype=np.uint8).copy()


def labelled_window(labels: np.ndarray, stride: int, margin: float = 0.3, snap: int = 8,
                    min_size: int = 48) -> tuple[slice, slice] | None:
    """Depth-pixel rectangle around every pixel segmentation did something with (not background).

    Grown by ``margin`` of its extent on each side (some background for
    context), at least ``min_size`` lattice pixels, its edges on multiples of
    ``snap`` lattice pixels (a steady view while the hand moves a little).
    None when every pixel is background (the whole frame is worth seeing).
    """
    mask = labels != PixelLabel.BACKGROUND
    if not mask.any():
        return None

    def span(used: np.ndarray, n: int) -> slice:
        lo, hi = int(used[0]), int(used[-1]) + 1
        pad = int(np.ceil(max((hi - lo) * margin, (min_size - (hi - lo)) / 2, 0)))
        lo, hi = max(0, lo - pad) // snap * snap, min(n, -(-(hi + pad) // snap) * snap)
        return slice(lo * stride, hi * stride)

    return (span(np.flatnonzero(mask.any(axis=1)), labels.shape[0]),
            span(np.flatnonzero(mask.any(axis=0)), labels.shape[1]))


def debug_period_ns(rate_hz: float) -> int | None:
    """Minimum time between two debug images (None: off)."""
    return None if rate_hz <= 0 else int(round(1e9 / rate_hz))
