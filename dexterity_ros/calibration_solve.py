"""Camera -> palm extrinsic from scratch: the hand model fitted to the depth (``calib-check --solve``).

Why: :func:`~dexterity_ros.calibration.align_hand` corrects an extrinsic that
is already right to about 2 cm / 4 deg (its basin); after a new mount or a
moved camera the error is larger and the check can only say so. The hand is
its own target (geometry known, joints measured), so the extrinsic follows
from fitting the hand model at the measured joints to depth frames:

1. global search (:func:`search_poses`): hand poses in the camera frame on a
   coarse-to-fine grid covering the prior (``max_translation`` /
   ``max_rotation_deg`` around the start), scored by how the depth of surface
   samples of the posed collision shapes agrees with a min-pooled depth image
   (a sample in front of the measured surface is a free-space violation, one
   behind it is occluded); the few best *distinct* poses go on;
2. refinement (:func:`refine_extrinsic`): robust point-to-surface
   Gauss-Newton over all frames at once, one extrinsic correction plus one
   offset per joint (encoder offsets, with a prior), so that errors of the
   joint readings do not end up in the extrinsic;
3. selection (:func:`rendered_fit`): each refined candidate's rendered hand
   depth against the measured depth, free-space violations included, and
   whether its outline stands out of the background; the cost margin to a
   distinct runner-up says whether the answer is ambiguous.

Pure numpy; docs/calibration.md has the measured accuracy and the reasons.
Longer than 600 lines because the three stages share the per-frame data
(``_Frame``: depth pyramid, cloud, model samples) and the configuration;
split, each would need them public for no other user.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .calibration import (CalibrationFrame, DistanceField, render_hand_depth, rotation_from_vector,
                          transform_difference)
from .camera_model import Intrinsics
from .geometry import TransformError, invert_transform, make_transform, validate_rigid
from .kinematics import HandKinematics, ShapeSet


class CalibrationSolveError(ValueError):
    """No calibration could be found: no hand in the depth, too few hand pixels, no convergence."""


@dataclass(frozen=True)
class SolveConfig:
    """Search range and effort of :func:`solve_extrinsic` (defaults: docs/calibration.md)."""

    max_translation: float = 0.10          # m: the start is at most this far from the truth (prior)
    max_rotation_deg: float = 30.0         # deg: ditto, rotation
    max_frames: int = 8                    # frames refined and compared (spread over those given)
    search_frames: int = 3                 # of those, scored by the global search
    surface_spacing: float = 0.006         # m: one model sample per spacing^2 of shape surface
    rotation_step_deg: float = 10.0        # coarsest search grid; halved at every finer level
    translation_step: float = 0.033        # m
    pool_px: tuple[int, ...] = (8, 4, 2)   # per level: depth min-pooled over pool x pool pixels
    tolerance: tuple[float, ...] = (0.025, 0.0125, 0.006)  # m per level: depth agreement scale
    search_points: tuple[int, ...] = (60, 100, 150)         # per level: model samples per frame
    view_margin: float = 0.15              # hand centroid may project this share of the image outside it
    candidates: int = 6                    # distinct coarse poses refined
    beam: int = 4                          # poses kept per candidate between finer levels
    refine_radius: tuple[float, ...] = (0.03, 0.012)    # m per round: measured points this near the model
    refine_inlier: tuple[float, ...] = (0.005, 0.003)   # m per round: final robust scale
    refine_iterations: int = 8             # Gauss-Newton iterations per round
    refine_points: int = 400               # measured points per frame in the fit
    depth_sigma: float = 0.0015            # m: depth noise + model error of one point (weighs the prior)
    joint_offset_sigma: float = 0.02       # rad: prior on per-joint reading offsets; 0 = joints trusted
    min_hand_pixels: int = 300             # per frame: fewer measured hand pixels is no calibration
    min_inlier_fraction: float = 0.5       # of the refined points within refine_inlier[-1] of the model
    min_matched: float = 0.3               # share of the model's visible samples the best search pose must
                                           # put within the finest tolerance of the depth (else: no hand found)
    hand_radius: float = 0.15              # m: the hand's samples lie this close to their centroid
    max_outline_continuity: float = 0.35   # more of the outline's ring continuing the model's surface: no hand
    min_margin: float = 0.03               # a distinct runner-up must cost this much more (else ambiguous)
    distinct_mm: float = 10.0              # candidates closer than this and distinct_deg are the same
    distinct_deg: float = 3.0

    def __post_init__(self) -> None:
        if self.max_translation <= 0 or not 0 < self.max_rotation_deg <= 90:
            raise ValueError("calibration solve: need max_translation > 0 and 0 < max_rotation_deg <= 90")
        levels = {len(self.pool_px), len(self.tolerance), len(self.search_points)}
        if len(levels) != 1 or not self.pool_px:
            raise ValueError("calibration solve: pool_px, tolerance and search_points need one entry per level")
        if len(self.refine_radius) != len(self.refine_inlier) or not self.refine_radius:
            raise ValueError("calibration solve: refine_radius and refine_inlier need one entry per round")
        if min(self.pool_px) < 1 or min(self.tolerance) <= 0 or min(self.search_points) < 4:
            raise ValueError("calibration solve: pool_px >= 1, tolerance > 0 and search_points >= 4 per level")
        if any(i <= 0 or i > r for r, i in zip(self.refine_radius, self.refine_inlier)):
            raise ValueError("calibration solve: need 0 < refine_inlier <= refine_radius")
        if min(self.max_frames, self.search_frames, self.candidates, self.beam, self.refine_iterations) < 1:
            raise ValueError("calibration solve: frames, candidates, beam and iterations must be >= 1")
        if self.surface_spacing <= 0 or self.rotation_step_deg <= 0 or self.translation_step <= 0:
            raise ValueError("calibration solve: spacing and grid steps must be > 0")
        if self.depth_sigma <= 0 or self.joint_offset_sigma < 0 or self.refine_points < 20:
            raise ValueError("calibration solve: need depth_sigma > 0, joint_offset_sigma >= 0, "
                             "refine_points >= 20")


@dataclass(frozen=True)
class Candidate:
    """One refined pose: the extrinsic, the joint offsets found with it and how well it explains the depth."""

    extrinsic: np.ndarray            # palm_from_camera
    joint_offsets: np.ndarray        # rad, added to the measured joints
    cost: float                      # rendered-depth cost (RenderedFit.cost: 0 = every hand pixel exact)
    fit: RenderedFit
    search_score: float              # the coarse search's score it started from
    inliers: int                     # refined points within the final robust scale
    points: int
    rms_mm: float                    # of the inliers' distances to the model
    converged: bool                  # the last Gauss-Newton step was below 0.1 mm / 0.01 deg


@dataclass(frozen=True)
class SolveResult:
    """Outcome of :func:`solve_extrinsic`; ``best`` is the answer, ``runner_up`` the best distinct other."""

    start: np.ndarray
    best: Candidate
    runner_up: Candidate | None
    frames: int
    hypotheses: int                  # poses scored by the global search
    seconds: float
    candidates: tuple[Candidate, ...] = field(repr=False, default=())

    @property
    def extrinsic(self) -> np.ndarray:
        return self.best.extrinsic

    @property
    def margin(self) -> float:
        """Rendered-cost difference to the runner-up (inf when every candidate refined to the same pose)."""
        return math.inf if self.runner_up is None else self.runner_up.cost - self.best.cost

    @property
    def change(self) -> tuple[float, float]:
        """(translation mm, rotation deg) from the start."""
        return transform_difference(self.start, self.best.extrinsic)


# ----------------------------------------------------------------- model samples
def sample_hand_surface(shapes: ShapeSet, spacing: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points and outward normals (palm frame) on the shapes' surfaces, one per ``spacing``^2 of area.

    Samples on or inside another shape (where links overlap or abut) are
    dropped: no camera sees them.
    """
    rng = np.random.default_rng(seed)
    points, normals, owner = [], [], []
    for index, (rot, centre, half) in enumerate(zip(shapes.box_rotation, shapes.box_center, shapes.box_half)):
        for axis in range(3):
            a, b = [i for i in range(3) if i != axis]
            n = max(1, int(round(4 * half[a] * half[b] / spacing ** 2)))
            for sign in (-1.0, 1.0):
                local = np.zeros((n, 3))
                local[:, axis] = sign * half[axis]
                local[:, a] = rng.uniform(-half[a], half[a], n)
                local[:, b] = rng.uniform(-half[b], half[b], n)
                points.append(centre + local @ rot.T)
                normals.append(np.tile(rot[:, axis] * sign, (n, 1)))
                owner.append(np.full(n, index))
    boxes = len(shapes.box_half)
    for index, (a, b, radius) in enumerate(zip(shapes.capsule_a, shapes.capsule_b, shapes.capsule_radius)):
        axis = b - a
        length = float(np.linalg.norm(axis))
        unit = axis / max(length, 1e-12)
        e1 = np.cross(unit, [1.0, 0.0, 0.0] if abs(unit[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(unit, e1)
        n = max(1, int(round(2 * math.pi * radius * length / spacing ** 2)))
        t, phi = rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 2 * math.pi, n)
        out = np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2
        points.append(a + t[:, None] * axis + radius * out)
        normals.append(out)
        owner.append(np.full(n, boxes + index))
        n = max(1, int(round(4 * math.pi * radius ** 2 / spacing ** 2)))
        out = rng.normal(size=(n, 3))
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        points.append(np.where((out @ unit < 0)[:, None], a, b) + radius * out)
        normals.append(out)
        owner.append(np.full(n, boxes + index))
    p, n, owner = np.vstack(points), np.vstack(normals), np.concatenate(owner)
    hidden = np.zeros(len(p), dtype=bool)
    margin = 0.0005
    for index, (rot, centre, half) in enumerate(zip(shapes.box_rotation, shapes.box_center, shapes.box_half)):
        hidden |= (owner != index) & np.all(np.abs((p - centre) @ rot) <= half + margin, axis=1)
    for index, (a, b, radius) in enumerate(zip(shapes.capsule_a, shapes.capsule_b, shapes.capsule_radius)):
        ab = b - a
        t = np.clip((p - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        gap = p - (a + t[:, None] * ab)
        hidden |= (owner != boxes + index) & (np.einsum("ij,ij->i", gap, gap) <= (radius + margin) ** 2)
    return p[~hidden], n[~hidden]


def _facing(points: np.ndarray, normals: np.ndarray, view_point: np.ndarray, min_cos: float = 0.2) -> np.ndarray:
    to_view = view_point - points
    to_view /= np.maximum(np.linalg.norm(to_view, axis=1, keepdims=True), 1e-12)
    return np.einsum("ij,ij->i", normals, to_view) > min_cos


def _visible_from(points: np.ndarray, normals: np.ndarray, shapes: ShapeSet, view_point: np.ndarray,
                  tolerance: float = 0.003) -> np.ndarray:
    """Mask of samples the camera at ``view_point`` sees: facing it and not hidden by another part.

    Only the camera's position decides what it sees of the hand (its
    orientation only moves the image), so a virtual camera at that position
    looking at the hand renders the z-buffer.
    """
    facing = _facing(points, normals, view_point)
    centre = points.mean(axis=0)
    forward = centre - view_point
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0] if abs(forward[2]) < 0.9 else [1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    camera = make_transform(np.column_stack([right, np.cross(forward, right), forward]), view_point)
    virtual = Intrinsics(256, 256, 256.0, 256.0, 127.5, 127.5)          # 53 deg: the whole hand at >= 0.2 m
    zbuffer = render_hand_depth(shapes, virtual, camera)
    local = (points - view_point) @ camera[:3, :3]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.rint(virtual.fx * local[:, 0] / local[:, 2] + virtual.cx)
        v = np.rint(virtual.fy * local[:, 1] / local[:, 2] + virtual.cy)
    inside = (local[:, 2] > 0) & (u >= 0) & (u < virtual.width) & (v >= 0) & (v < virtual.height)
    nearest = zbuffer[np.where(inside, v, 0).astype(np.int64), np.where(inside, u, 0).astype(np.int64)]
    unhidden = ~inside | (nearest <= 0) | (local[:, 2] <= nearest + tolerance)
    return facing & unhidden


def _pool_min(depth: np.ndarray, block: int) -> np.ndarray:
    """Nearest valid depth in each block x block cell (0: none)."""
    height, width = depth.shape
    rows, cols = -(-height // block), -(-width // block)
    padded = np.full((rows * block, cols * block), np.inf, np.float32)
    padded[:height, :width] = np.where(depth > 0, depth, np.inf)
    pooled = padded.reshape(rows, block, cols, block).min(axis=(1, 3))
    pooled[~np.isfinite(pooled)] = 0.0
    return pooled


def _ball_grid(radius: float, step: float) -> np.ndarray:
    """Cubic grid points (step apart) within ``radius`` of the origin."""
    n = int(math.ceil(radius / step))
    axis = np.arange(-n, n + 1) * step
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    return grid[np.linalg.norm(grid, axis=1) <= radius + 1e-12]


def _rotation_angle_deg(rotations: np.ndarray, reference: np.ndarray) -> np.ndarray:
    trace = np.einsum("kij,ij->k", rotations, reference)
    return np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))


# ----------------------------------------------------------------- per-frame data
@dataclass
class _Frame:
    """A frame with what the solver needs, computed once."""

    source: CalibrationFrame
    depth: np.ndarray                    # float metres, 0 = none (NaN/inf cleaned)
    q: np.ndarray
    shapes: ShapeSet
    cloud: np.ndarray                    # camera-frame points of every other pixel
    samples: np.ndarray | None = None    # camera-facing model surface samples (palm frame), shuffled
    pooled: dict = field(default_factory=dict)


def _prepare(frame: CalibrationFrame, kinematics: HandKinematics) -> _Frame:
    frame.intrinsics.check_image(frame.depth.shape)
    depth = np.where(np.isfinite(frame.depth), frame.depth, 0.0).astype(np.float32)
    q = np.asarray(frame.joint_positions, dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise ValueError(f"frame at {frame.stamp_ns} ns: joint positions are not finite")
    k = frame.intrinsics
    rows, cols = np.nonzero(depth[::2, ::2] > 0)
    z = depth[::2, ::2][rows, cols].astype(np.float64)
    cloud = np.stack([(cols * 2 - k.cx) / k.fx * z, (rows * 2 - k.cy) / k.fy * z, z], axis=1)
    return _Frame(frame, depth, q, kinematics.collision_shapes(q), cloud)


# ----------------------------------------------------------------- global search
# search costs of a model sample that does not meet the measured surface (a matching one costs
# (residual / tolerance)^2 < 1): hidden behind something nearer (the object, a finger); a pooled cell
# without any return (free space beyond the sensor's range, mostly); outside the image
OCCLUDED_COST, EMPTY_COST, OUTSIDE_COST = 0.5, 0.75, 0.5
def _score(rot: np.ndarray, trans: np.ndarray, frames: Sequence[_Frame], pool: int, tolerance: float,
           points: int, chunk: int = 2048, matched: np.ndarray | None = None) -> np.ndarray:
    """Mean cost (0 best .. 1) of camera_from_palm hypotheses (rot (K,3,3), trans (K,3)) over frames.

    Per model sample: |depth residual| / tolerance against the pooled
    measured depth; 1 where the sample floats in front of the measured
    surface (free space), 0.5 where it is hidden behind it, has no
    measurement or leaves the image (neutral: the object or the image
    border may hide a hand part). ``matched``, if given, receives the share
    of samples within ``tolerance`` of the measured depth.
    """
    total = np.zeros(len(rot))
    rot_t = np.ascontiguousarray(rot.transpose(0, 2, 1), dtype=np.float32)   # float32: half the memory traffic
    trans32 = trans.astype(np.float32)
    for frame in frames:
        if pool not in frame.pooled:
            frame.pooled[pool] = _pool_min(frame.depth, pool)
        pooled = frame.pooled[pool]
        cells = pooled.reshape(-1)
        k = frame.source.intrinsics
        samples = frame.samples[:points].astype(np.float32)
        for lo in range(0, len(rot), chunk):
            x = np.matmul(samples[None], rot_t[lo:lo + chunk]) + trans32[lo:lo + chunk, None, :]
            z = x[..., 2]
            inverse = 1.0 / np.maximum(z, 0.02)
            u = x[..., 0] * inverse * np.float32(k.fx) + np.float32(k.cx + 0.5)     # pixel column + 0.5
            v = x[..., 1] * inverse * np.float32(k.fy) + np.float32(k.cy + 0.5)
            inside = (z > 0.02) & (u >= 0) & (u < k.width) & (v >= 0) & (v < k.height)
            cell = ((np.clip(v, 0, k.height - 1) / pool).astype(np.int32) * pooled.shape[1]
                    + (np.clip(u, 0, k.width - 1) / pool).astype(np.int32))
            measured = cells[cell]
            residual = measured - z
            cost = np.where(residual < -tolerance, np.float32(OCCLUDED_COST),
                            np.minimum(np.square(residual * np.float32(1.0 / tolerance)), np.float32(1.0)))
            cost = np.where(measured > 0, cost, np.float32(EMPTY_COST))
            cost = np.where(inside, cost, np.float32(OUTSIDE_COST))
            total[lo:lo + chunk] += cost.mean(axis=1, dtype=np.float64)
            if matched is not None:
                matched[lo:lo + chunk] += np.mean(inside & (measured > 0) & (np.abs(residual) <= tolerance),
                                                  axis=1) / len(frames)
    return total / len(frames)


def _children(rot: np.ndarray, trans: np.ndarray, centroid: np.ndarray, rot_step: float, trans_step: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """3 x 3 x 3 rotations (about the model centroid) times 3 x 3 x 3 translations around each pose."""
    offsets = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=np.float64)
    turns = np.array([rotation_from_vector(w) for w in offsets * rot_step])               # (27, 3, 3)
    centre = np.einsum("kij,j->ki", rot, centroid) + trans                                # (K, 3)
    new_rot = np.einsum("aij,kjl->kail", turns, rot).reshape(-1, 3, 3)                    # (K*27)
    new_centre = (centre[:, None, None, :] + offsets[None, None, :, :] * trans_step)      # (K, 1, 27, 3)
    new_centre = np.broadcast_to(new_centre, (len(rot), 27, 27, 3)).reshape(-1, 27, 3)   # per rotation child
    new_rot = np.repeat(new_rot, 27, axis=0)
    new_trans = new_centre.reshape(-1, 3) - new_rot @ centroid
    return new_rot, new_trans


def search_poses(frames: Sequence[_Frame], start: np.ndarray, config: SolveConfig
                 ) -> tuple[list[tuple[float, float, np.ndarray]], int]:
    """Coarse-to-fine search around ``start`` (palm_from_camera).

    Returns the best distinct poses as (score, share of model samples that
    match the depth, palm_from_camera), and how many hypotheses were scored.
    """
    r0, t0 = start[:3, :3], start[:3, 3]
    centroid = np.mean(np.vstack([f.samples for f in frames]), axis=0)
    rot_step = math.radians(config.rotation_step_deg)
    # a grid pose is at most half a cell diagonal (0.87 steps) from the truth in rotation; turning the camera
    # by that much moves the hand in the camera frame by lever * angle, which the translation range must cover
    slack = 0.87 * (rot_step * float(np.linalg.norm(t0 - centroid)) + config.translation_step)
    turns = _ball_grid(math.radians(config.max_rotation_deg) + 0.87 * rot_step, rot_step)
    shifts = _ball_grid(config.max_translation + slack, config.translation_step)
    cam_rot = np.array([(r0 @ rotation_from_vector(w)).T for w in turns])               # camera_from_palm
    centre = np.einsum("gij,j->gi", cam_rot, centroid - t0)[:, None, :] + shifts[None]  # (G, S, 3) camera frame
    rot = np.repeat(cam_rot, len(shifts), axis=0)
    centre = centre.reshape(-1, 3)
    k = frames[0].source.intrinsics
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k.fx * centre[:, 0] / centre[:, 2] + k.cx
        v = k.fy * centre[:, 1] / centre[:, 2] + k.cy
    mu, mv = config.view_margin * k.width, config.view_margin * k.height
    in_view = (centre[:, 2] > 0.05) & (u > -mu) & (u < k.width + mu) & (v > -mv) & (v < k.height + mv)
    rot, centre = rot[in_view], centre[in_view]
    trans = centre - rot @ centroid
    hypotheses = len(rot)
    if hypotheses == 0:
        return [], 0
    score = _score(rot, trans, frames, config.pool_px[0], config.tolerance[0], config.search_points[0])
    order = np.argsort(score, kind="stable")
    # distinct seeds: farther apart than a grid cell from every better one
    seeds: list[int] = []
    for i in order:
        if len(seeds) == config.candidates:
            break
        if all(_rotation_angle_deg(rot[i][None], rot[j])[0] > 1.5 * config.rotation_step_deg
               or np.linalg.norm(centre[i] - centre[j]) > 1.5 * config.translation_step for j in seeds):
            seeds.append(int(i))
    results = []
    for seed in seeds:
        beam_rot, beam_trans, best = rot[seed][None], trans[seed][None], float(score[seed])
        step_r, step_t = rot_step, config.translation_step
        for level in range(1, len(config.pool_px)):
            step_r, step_t = step_r / 2, step_t / 2
            child_rot, child_trans = _children(beam_rot, beam_trans, centroid, step_r, step_t)
            child_score = _score(child_rot, child_trans, frames, config.pool_px[level], config.tolerance[level],
                                 config.search_points[level])
            hypotheses += len(child_rot)
            keep = np.argsort(child_score, kind="stable")[:config.beam]
            beam_rot, beam_trans, best = child_rot[keep], child_trans[keep], float(child_score[keep[0]])
        matched = np.zeros(1)
        _score(beam_rot[:1], beam_trans[:1], frames, config.pool_px[-1], config.tolerance[-1],
               config.search_points[-1], matched=matched)
        results.append((float(score[seed]) if len(config.pool_px) == 1 else best, float(matched[0]),
                        invert_transform(make_transform(beam_rot[0], beam_trans[0]))))
    return results, hypotheses


# ----------------------------------------------------------------- refinement
class _JointChains:
    """For each collision shape, the joints upstream of its link (to differentiate distances by joint angle)."""

    def __init__(self, kinematics: HandKinematics, shapes: ShapeSet):
        links = {link.name: link for link in kinematics.hand.links}
        index = {name: i for i, name in enumerate(kinematics.link_names)}
        shape_rows, link_rows, joint_rows, axes = [], [], [], []
        for s, body in enumerate(tuple(shapes.box_body) + tuple(shapes.capsule_body)):
            name = body
            while name in links:
                link = links[name]
                if link.joint and link.axis:
                    shape_rows.append(s)
                    link_rows.append(index[name])
                    joint_rows.append(kinematics.hand.joint_index(link.joint))
                    axes.append(np.asarray(link.axis, dtype=np.float64) / np.linalg.norm(link.axis))
                name = link.parent
        self.kinematics = kinematics
        self.num_shapes = len(shapes.box_body) + len(shapes.capsule_body)
        self.shape, self.link, self.joint = (np.array(v, dtype=np.int64) for v in (shape_rows, link_rows, joint_rows))
        self.axis = np.array(axes).reshape(-1, 3)

    def tables(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(axes, origins), each (shapes, joints, 3) in the palm frame; zero where a joint does not move a shape."""
        rot, pos = self.kinematics.link_poses(q)
        axes = np.zeros((self.num_shapes, len(q), 3))
        origins = np.zeros((self.num_shapes, len(q), 3))
        axes[self.shape, self.joint] = np.einsum("kij,kj->ki", rot[self.link], self.axis)
        origins[self.shape, self.joint] = pos[self.link]
        return axes, origins


CONVERGED_M, CONVERGED_RAD = 1e-4, math.radians(0.01)     # a smaller last step: the refinement converged


@dataclass(frozen=True)
class Refinement:
    """Result of :func:`refine_extrinsic`."""

    extrinsic: np.ndarray
    joint_offsets: np.ndarray
    inliers: int
    points: int
    rms_mm: float
    converged: bool


def _points_near(frame: _Frame, extrinsic: np.ndarray, shapes: ShapeSet, radius: float, limit: int) -> np.ndarray:
    points = frame.cloud @ extrinsic[:3, :3].T + extrinsic[:3, 3]
    lo, hi = shapes.bounding_box(radius)
    points = points[np.all((points >= lo) & (points <= hi), axis=1)]
    if len(points) == 0:
        return points
    distance, _ = DistanceField(shapes, extrinsic[:3, 3])(points)
    points = points[np.abs(distance) < radius]
    if len(points) > limit:
        points = points[np.linspace(0, len(points) - 1, limit).astype(np.int64)]
    return points


def refine_extrinsic(frames: Sequence[_Frame], extrinsic: np.ndarray, config: SolveConfig,
                     kinematics: HandKinematics, chains: _JointChains) -> Refinement | str:
    """Robust multi-frame point-to-surface Gauss-Newton: extrinsic correction + per-joint offsets."""
    num_joints = len(frames[0].q)
    estimate_joints = config.joint_offset_sigma > 0
    params = 6 + (num_joints if estimate_joints else 0)
    prior = (config.depth_sigma / config.joint_offset_sigma) ** 2 if estimate_joints else 0.0
    offsets = np.zeros(num_joints)
    distance = np.zeros(0)
    step = np.zeros(params)
    converged = False
    rounds = len(config.refine_radius)
    for round_index, (radius, inlier) in enumerate(zip(config.refine_radius, config.refine_inlier)):
        view = extrinsic[:3, 3]
        sets = []
        for frame in frames:
            points = _points_near(frame, extrinsic, kinematics.collision_shapes(frame.q + offsets), radius,
                                  config.refine_points)
            if len(points):
                sets.append((frame, points))
        total = sum(len(p) for _, p in sets)
        if total < 20 * len(frames):
            return (f"only {total} measured points within {radius * 1e3:.0f} mm of the hand model "
                    f"over {len(frames)} frames")
        rotation, translation = np.eye(3), np.zeros(3)
        schedule = list(np.geomspace(radius, inlier, config.refine_iterations))
        if round_index == rounds - 1:              # then at the final scale until the steps vanish
            schedule += [inlier] * (2 * config.refine_iterations)
        for iteration, scale in enumerate(schedule):
            moved_all, dist_all, normal_all, weight_all, joint_jac = [], [], [], [], []
            for frame, points in sets:
                q = frame.q + offsets
                shapes = kinematics.collision_shapes(q)
                moved = points @ rotation.T + translation
                dist, normal, nearest = DistanceField(shapes, view).query(moved)
                ratio = np.minimum(np.abs(dist) / scale, 1.0)
                moved_all.append(moved)
                dist_all.append(dist)
                normal_all.append(normal)
                weight_all.append((1.0 - ratio * ratio) ** 2)
                if estimate_joints:
                    axes, origins = chains.tables(q)
                    velocity = np.cross(axes[nearest], moved[:, None, :] - origins[nearest])   # (N, joints, 3)
                    joint_jac.append(-np.einsum("njc,nc->nj", velocity, normal))
            moved, distance = np.vstack(moved_all), np.concatenate(dist_all)
            normal, weight = np.vstack(normal_all), np.concatenate(weight_all)
            if np.count_nonzero(weight) < 6 * params:
                return f"only {np.count_nonzero(weight)} points within {scale * 1e3:.1f} mm of the hand model"
            centre = (weight @ moved) / weight.sum()
            jac = np.zeros((len(moved), params))
            jac[:, :3] = np.cross(moved - centre, normal)
            jac[:, 3:6] = normal
            if estimate_joints:
                jac[:, 6:] = np.vstack(joint_jac)
            weighted = jac.T * weight
            hessian = weighted @ jac
            gradient = weighted @ distance
            hessian.flat[::params + 1] += hessian.flat[::params + 1] * 1e-3 + 1e-9
            if estimate_joints:
                hessian[6:, 6:] += prior * np.eye(num_joints)
                gradient[6:] += prior * offsets
            step = -np.linalg.solve(hessian, gradient)
            delta = rotation_from_vector(step[:3])
            rotation = delta @ rotation
            translation = delta @ (translation - centre) + centre + step[3:6]
            if estimate_joints:
                offsets = offsets + step[6:]
            if iteration >= config.refine_iterations - 1 and round_index == rounds - 1:
                converged = bool(np.linalg.norm(step[3:6]) < CONVERGED_M and np.linalg.norm(step[:3]) < CONVERGED_RAD)
                if converged:
                    break
        extrinsic = make_transform(rotation, translation) @ extrinsic
    inliers = np.abs(distance) < config.refine_inlier[-1]
    rms = float(np.sqrt(np.mean(distance[inliers] ** 2)) * 1e3) if inliers.any() else float("nan")
    return Refinement(extrinsic, offsets, int(inliers.sum()), len(distance), rms, converged)


# ----------------------------------------------------------------- selection
@dataclass(frozen=True)
class RenderedFit:
    """How an extrinsic's rendered hand agrees with the measured depth, over frames (:func:`rendered_fit`)."""

    pixel_cost: float                # mean per rendered hand pixel, 0 (exact) .. 1
    hand_pixels: int                 # rendered hand pixels measured within ``clip``
    outline_continuity: float        # share of the ring around the outline where the measured surface
                                     # continues at the model's depth (a hand stands out of its background)

    @property
    def cost(self) -> float:
        """What candidates are ranked by: the pixel cost plus half the outline continuity."""
        return self.pixel_cost + 0.5 * self.outline_continuity


def _dilate(image: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation (maximum) over a disk of ``radius`` pixels; booleans work too."""
    out = image.copy()
    height, width = image.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if (dx or dy) and dx * dx + dy * dy <= radius * radius:
                target = out[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
                np.maximum(target, image[max(dy, 0):height - max(-dy, 0), max(dx, 0):width - max(-dx, 0)],
                           out=target)
    return out


def rendered_fit(frames: Sequence[_Frame], extrinsic: np.ndarray, kinematics: HandKinematics,
                 joint_offsets: np.ndarray | None = None, clip: float = 0.02, occlusion: float = 0.015,
                 ring: float = 0.006) -> RenderedFit:
    """Render the hand with ``extrinsic`` into each frame and score it against the measured depth.

    Per rendered hand pixel: |measured - rendered| / clip, 1 where the
    measurement lies more than ``clip`` behind the hand (the camera sees
    through where the model says the hand is), 0.5 where something nearer
    hides it or there is no measurement; a frame without a rendered hand
    costs 1. Outline: in a ring ``ring`` wide around the rendered hand, the
    share of pixels measured within ``clip`` of the hand's depth next to them
    (a flat surface "fits" a flat hand model, but its surface continues
    past the outline; a hand's background lies behind it).
    """
    costs, pixels, continuous, ring_pixels = [], 0, 0, 0
    for frame in frames:
        q = frame.q if joint_offsets is None else frame.q + joint_offsets
        k = frame.source.intrinsics
        rendered = render_hand_depth(kinematics.collision_shapes(q), k, extrinsic)
        hand = rendered > 0
        if not hand.any():
            costs.append(1.0)
            continue
        measured = frame.depth[hand]
        residual = measured - rendered[hand]
        cost = np.where(residual < -occlusion, 0.5, np.minimum(np.abs(residual) / clip, 1.0))
        cost = np.where(measured > 0, cost, 0.5)
        pixels += int(np.count_nonzero((measured > 0) & (np.abs(residual) < clip)))
        costs.append(float(cost.mean()))
        rows, cols = np.nonzero(hand)
        radius = int(np.clip(round(k.fx * ring / float(np.median(rendered[hand]))), 2, 8))
        window = (slice(max(rows.min() - radius, 0), rows.max() + radius + 1),
                  slice(max(cols.min() - radius, 0), cols.max() + radius + 1))
        near = _dilate(rendered[window], radius)
        outline = (near > 0) & ~hand[window]
        beside = frame.depth[window][outline]
        continuous += int(np.count_nonzero((beside > 0) & (np.abs(beside - near[outline]) < clip)))
        ring_pixels += int(outline.sum())
    return RenderedFit(float(np.mean(costs)), pixels, continuous / max(ring_pixels, 1))


def _check_depth_near_hand(frames: Sequence[_Frame], start: np.ndarray, centroid: np.ndarray,
                           config: SolveConfig) -> None:
    """Fail early and say so when no frame has depth where the hand can be (at its distance from the camera)."""
    distance = float(np.linalg.norm(start[:3, 3] - centroid))
    near = max(distance - config.max_translation - config.hand_radius, 0.0)
    far = distance + config.max_translation + config.hand_radius
    valid = sum(int(np.count_nonzero(f.depth > 0)) for f in frames)
    if valid == 0:
        raise CalibrationSolveError(f"the {len(frames)} depth frames have no valid pixel")
    ranges = [np.linalg.norm(f.cloud, axis=1) for f in frames]            # every other pixel of every other row
    inside = 4 * sum(int(np.count_nonzero((r >= near) & (r <= far))) for r in ranges)
    if inside < config.min_hand_pixels * len(frames):
        raise CalibrationSolveError(
            f"only about {inside} depth pixels over {len(frames)} frames lie {near:.2f}-{far:.2f} m from the "
            f"camera, where the hand must be (need {config.min_hand_pixels} per frame): the hand is out of view "
            "or hidden")


def _same_pose(a: np.ndarray, b: np.ndarray, config: SolveConfig) -> bool:
    shift, turn = transform_difference(a, b)
    return shift < config.distinct_mm and turn < config.distinct_deg


def _spread(items: Sequence, count: int) -> list:
    if len(items) <= count:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(np.int64)]


def solve_extrinsic(frames: Sequence[CalibrationFrame], start: np.ndarray,
                    kinematics: HandKinematics | None = None, config: SolveConfig = SolveConfig()) -> SolveResult:
    """The camera -> palm extrinsic that best explains the hand in ``frames``, searched around ``start``.

    Raises :class:`CalibrationSolveError` with the reason when none is found
    (no hand in the depth within the search range, too few hand pixels, the
    refinement does not converge).
    """
    tic = time.perf_counter()
    try:
        start = validate_rigid(start, name="starting extrinsic")
    except TransformError as exc:
        raise CalibrationSolveError(str(exc)) from exc
    frames = list(frames)
    if not frames:
        raise CalibrationSolveError("no frames to calibrate from")
    kinematics = kinematics or HandKinematics()
    used = [_prepare(f, kinematics) for f in _spread(frames, config.max_frames)]
    searched = _spread(used, config.search_frames)
    for index, frame in enumerate(searched):
        points, normals = sample_hand_surface(frame.shapes, config.surface_spacing, seed=index)
        facing = _visible_from(points, normals, frame.shapes, start[:3, 3])
        frame.samples = points[facing][np.random.default_rng(index).permutation(int(facing.sum()))]
    _check_depth_near_hand(used, start, np.mean(np.vstack([f.samples for f in searched]), axis=0), config)
    seeds, hypotheses = search_poses(searched, start, config)
    if not seeds:
        raise CalibrationSolveError("no hand pose within the search range puts the hand into the image")
    best_matched = max(matched for _, matched, _ in seeds)
    if best_matched < config.min_matched:
        raise CalibrationSolveError(
            f"no pose of the hand model within {config.max_translation * 1e3:.0f} mm / "
            f"{config.max_rotation_deg:g} deg of the start matches the depth: at best {best_matched:.0%} of "
            f"its visible surface (need {config.min_matched:.0%}); is the hand in view, and the start "
            "within that range?")
    chains = _JointChains(kinematics, used[0].shapes)
    refined: list[Candidate] = []
    failures = []
    for score, _, extrinsic in sorted(seeds, key=lambda item: item[0]):
        result = refine_extrinsic(used, extrinsic, config, kinematics, chains)
        if isinstance(result, str):
            failures.append(result)
            continue
        if any(_same_pose(result.extrinsic, c.extrinsic, config) for c in refined):
            continue                                                     # refined onto a pose already found
        fit = rendered_fit(used, result.extrinsic, kinematics, result.joint_offsets)
        refined.append(Candidate(result.extrinsic, result.joint_offsets, fit.cost, fit, score, result.inliers,
                                 result.points, result.rms_mm, result.converged))
    if not refined:
        raise CalibrationSolveError(f"the refinement did not converge from any of {len(seeds)} search results "
                                    f"({failures[0] if failures else 'no result'})")
    refined.sort(key=lambda c: c.cost)
    best = refined[0]
    if best.fit.hand_pixels < config.min_hand_pixels * len(used):
        raise CalibrationSolveError(
            f"only {best.fit.hand_pixels} measured hand pixels over {len(used)} frames at the best pose "
            f"(need {config.min_hand_pixels} per frame): too little of the hand is visible")
    if best.fit.outline_continuity > config.max_outline_continuity:
        raise CalibrationSolveError(
            f"the best pose's outline does not stand out in the depth: the measured surface continues past "
            f"{best.fit.outline_continuity:.0%} of it (a hand's background lies behind it; at most "
            f"{config.max_outline_continuity:.0%}): the depth shows a surface, not the hand")
    if best.inliers < config.min_inlier_fraction * best.points:
        raise CalibrationSolveError(
            f"the refinement did not converge: {best.inliers} of {best.points} measured points within "
            f"{config.refine_inlier[-1] * 1e3:.0f} mm of the hand model at the best pose")
    runner_up = next((c for c in refined[1:]), None)
    return SolveResult(start, best, runner_up, len(used), hypotheses, time.perf_counter() - tic, tuple(refined))
