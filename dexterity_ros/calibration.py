"""Camera -> palm calibration measured against the hand itself.

The hand is always in view and its geometry is known (forward kinematics of
the measured joint positions + the collision shapes of the robot
description), so it is its own calibration target:

* :func:`render_hand_depth` ray-casts the posed collision shapes into the
  depth image of a given camera model; :func:`depth_fit` compares that with a
  measured depth frame (``dexterity-ros calib-check`` prints the result, a
  wrong extrinsic shows up as a large residual on hand pixels);
* :func:`align_hand` finds the small rigid correction that puts the measured
  hand points onto the model surface (robust point-to-surface Gauss-Newton on
  the signed distance of the shapes). Segmentation uses it every frame to
  place the hand model before removing its points, so calibration, intrinsics
  and joint-offset errors of a centimetre do not leave hand points in the
  object cloud; calib-check uses it to suggest a corrected extrinsic.

Both assume an extrinsic that is nearly right; finding one from scratch
(``calib-check --solve``) is :mod:`dexterity_ros.calibration_solve`.

Pure numpy; docs/calibration.md describes the extrinsic file and the check.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

from .camera_model import Intrinsics, RayGrid
from .geometry import TransformError, invert_transform, make_transform, validate_rigid
from .kinematics import HandKinematics, ShapeSet


# ----------------------------------------------------------------- shapes
def transform_shapes(shapes: ShapeSet, transform: np.ndarray) -> ShapeSet:
    """The same shapes expressed in another frame: ``transform`` maps old -> new coordinates."""
    rot, trans = transform[:3, :3], transform[:3, 3]
    return replace(shapes,
                   box_rotation=np.einsum("ij,bjk->bik", rot, shapes.box_rotation),
                   box_center=shapes.box_center @ rot.T + trans,
                   capsule_a=shapes.capsule_a @ rot.T + trans,
                   capsule_b=shapes.capsule_b @ rot.T + trans)


class DistanceField:
    """Signed distance to the union of posed shapes, with its gradient; built once per frame.

    With ``view_point`` (the camera position in the shapes' frame), a point
    inside a box is measured to the nearest face that faces the camera rather
    than to the nearest face: measured points lie on the visible surface, and
    a finger is thinner than a calibration error can be, so the nearest face
    may be the hidden back face, which would pull the wrong way. Vectorized
    over shapes x points with one (shapes, N) array per coordinate: meant for
    a few hundred points, not whole frames.
    """

    def __init__(self, shapes: ShapeSet, view_point: np.ndarray | None = None):
        rot = shapes.box_rotation
        self.num_boxes = nb = len(shapes.box_half)
        self.box_rotation = rot
        # rows [axis * nb + box]: local coordinate ``axis`` of every box = row . p - offset
        self.axes = rot.transpose(2, 0, 1).reshape(3 * nb, 3)
        self.offset = np.einsum("ij,ij->i", self.axes, np.tile(shapes.box_center, (3, 1)))[:, None]
        self.half = shapes.box_half.T[:, :, None]                        # (3, nb, 1)
        if view_point is not None:
            facing = -np.sign(np.einsum("bji,bj->bi", rot, shapes.box_center - np.asarray(view_point)))
            facing[facing == 0] = 1.0
            self.facing = facing                                         # (nb, 3)
            self.facing_t = facing.T[:, :, None]
        else:
            self.facing = self.facing_t = None
        self.cap_a = shapes.capsule_a
        self.cap_ab = shapes.capsule_b - shapes.capsule_a
        self.cap_a_dot_ab = np.einsum("ci,ci->c", self.cap_a, self.cap_ab)[:, None]
        self.cap_inv_len2 = 1.0 / np.maximum(np.einsum("ci,ci->c", self.cap_ab, self.cap_ab), 1e-12)[:, None]
        self.cap_radius = shapes.capsule_radius[:, None]

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance (N,), outward unit normal (N, 3)) for points (N, 3)."""
        distance, normal, _ = self.query(points)
        return distance, normal

    def query(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distance, normal, index of the nearest shape: boxes first, then capsules) for points (N, 3)."""
        p = np.asarray(points, dtype=np.float64)
        n, nb, nc = len(p), self.num_boxes, len(self.cap_radius)
        dist = np.empty((nb + nc, n))
        if nb:
            local = (self.axes @ p.T - self.offset).reshape(3, nb, n)
            q = np.abs(local) - self.half
            outside = np.maximum(q, 0.0)
            out_norm = np.sqrt(outside[0] ** 2 + outside[1] ** 2 + outside[2] ** 2)
            q_in = q if self.facing_t is None else local * self.facing_t - self.half
            inner = np.minimum(np.maximum(np.maximum(q_in[0], q_in[1]), q_in[2]), 0.0)
            dist[:nb] = np.where(out_norm > 0, out_norm, inner)
        if nc:
            t = np.clip((self.cap_ab @ p.T - self.cap_a_dot_ab) * self.cap_inv_len2, 0.0, 1.0)   # (nc, n)
            offset = p.T[None] - (self.cap_a[:, :, None] + t[:, None, :] * self.cap_ab[:, :, None])  # (nc, 3, n)
            length = np.sqrt(np.einsum("cin,cin->cn", offset, offset))
            dist[nb:] = length - self.cap_radius
        nearest = dist.argmin(axis=0)
        columns = np.arange(n)
        distance = dist[nearest, columns]
        normal = np.empty((n, 3))
        ib = np.flatnonzero(nearest < nb)                     # winners only from here on
        if ib.size:
            k = nearest[ib]
            lo = local[:, k, ib].T                            # (m, 3) local coordinates
            qo = outside[:, k, ib].T
            no = out_norm[k, ib]
            sign = np.where(lo < 0, -1.0, 1.0)
            outward = qo * sign / np.maximum(no, 1e-12)[:, None]
            face = q_in[:, k, ib].argmax(axis=0)
            face_sign = (sign if self.facing is None else self.facing[k])[np.arange(len(ib)), face]
            local_normal = np.where((no > 0)[:, None], outward, np.eye(3)[face] * face_sign[:, None])
            normal[ib] = np.einsum("mij,mj->mi", self.box_rotation[k], local_normal)
        ic = np.flatnonzero(nearest >= nb)
        if ic.size:
            c = nearest[ic] - nb
            normal[ic] = offset[c, :, ic] / np.maximum(length[c, ic], 1e-12)[:, None]
        return distance, normal, nearest


def signed_distance(shapes: ShapeSet, points: np.ndarray, view_point: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance of ``points`` to the union of the shapes and its gradient (see :class:`DistanceField`)."""
    return DistanceField(shapes, view_point)(points)


# --------------------------------------------------------------- alignment
@dataclass(frozen=True)
class HandAlignmentConfig:
    """Per-frame alignment of the hand model to the measured hand points (see :func:`align_hand`)."""

    enabled: bool = True
    search_radius: float = 0.03          # m: measured points this close to the model take part
    max_points: int = 300                # evenly spaced subset used for the fit
    iterations: int = 7                  # cold start (no previous correction)
    translation_first: int = 3           # of those, translation only, on a third of the points
    warm_iterations: int = 2             # starting from the previous frame's correction
    inlier_distance: float = 0.005       # m: final robust-weight scale (depth noise + model error)
    min_inliers: int = 40                # fewer points near the hand: no correction
    poor_fit_rms: float = 0.0014         # m: a cold fit worse than this is tried once more (longer translation phase)
    warm_tolerance: float = 1.25         # a warm fit whose rms grew by more than this factor over the previous
                                         # frame's (or whose inlier count fell below 1 / this of it) is redone cold
    max_translation: float = 0.04        # m: larger corrections are rejected (not applied)
    max_rotation_deg: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.inlier_distance <= self.search_radius:
            raise ValueError("hand_alignment: need 0 < inlier_distance <= search_radius")
        if self.max_points < 10 or self.iterations < 1 or self.min_inliers < 6 or self.warm_iterations < 1:
            raise ValueError("hand_alignment: need max_points >= 10, iterations >= 1, warm_iterations >= 1, "
                             "min_inliers >= 6")
        if not 0 <= self.translation_first < self.iterations:
            raise ValueError("hand_alignment: need 0 <= translation_first < iterations")
        if self.max_translation <= 0 or self.max_rotation_deg <= 0:
            raise ValueError("hand_alignment: max_translation and max_rotation_deg must be > 0")
        if self.warm_tolerance < 1:
            raise ValueError("hand_alignment: warm_tolerance must be >= 1")


@dataclass(frozen=True)
class HandAlignment:
    """``correction`` maps measured palm-frame points onto the hand model (identity if not ``ok``)."""

    correction: np.ndarray
    ok: bool
    reason: str
    inliers: int = 0
    rms_mm: float = float("nan")
    translation_mm: float = 0.0
    rotation_deg: float = 0.0
    candidates: int = 0              # measured points near the hand model
    fit_points: int = 0              # of those, used for the fit
    warm: bool = False               # started from the previous frame's fit (and kept it)
    iterations: int = 0              # Gauss-Newton iterations this frame (0: the previous correction still fit)
    reference_rms_mm: float = float("nan")      # quality of the last cold fit, what later warm frames must match
    reference_inlier_fraction: float = 0.0

    @staticmethod
    def identity(reason: str, candidates: int = 0) -> "HandAlignment":
        return HandAlignment(np.eye(4), False, reason, candidates=candidates)


def rotation_from_vector(omega: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis * angle in radians), Rodrigues' formula."""
    angle = float(np.linalg.norm(omega))
    k = np.array([[0.0, -omega[2], omega[1]], [omega[2], 0.0, -omega[0]], [-omega[1], omega[0], 0.0]])
    if angle < 1e-12:
        return np.eye(3) + k
    return np.eye(3) + math.sin(angle) / angle * k + (1 - math.cos(angle)) / angle ** 2 * (k @ k)


def _fit(field_: DistanceField, points: np.ndarray, coarse: np.ndarray, start: np.ndarray,
         scales: Sequence[float], translation_only: int, min_inliers: int
         ) -> tuple[np.ndarray, np.ndarray] | str:
    """Robust Gauss-Newton iterations; (correction, signed distances at the last pose) or a failure reason."""
    rotation, translation = start[:3, :3].copy(), start[:3, 3].copy()
    distance = np.zeros(0)
    for iteration, scale in enumerate(scales):
        subset = coarse if iteration < translation_only else points
        moved = subset @ rotation.T + translation
        distance, normal = field_(moved)
        ratio = np.minimum(np.abs(distance) * (1.0 / scale), 1.0)
        weights = (1.0 - ratio * ratio) ** 2                     # Tukey: 0 beyond the scale
        inlying = np.count_nonzero(weights)
        if inlying < min_inliers * len(subset) / len(points):
            return f"only {inlying} of {len(subset)} points within {scale * 1e3:.0f} mm of the hand model"
        if iteration < translation_only:
            weighted = normal.T * weights
            step = np.zeros(6)
            hessian = weighted @ normal
            hessian.flat[::4] += hessian.flat[::4] * 1e-3 + 1e-9
            step[3:] = -np.linalg.solve(hessian, weighted @ distance)
            translation = translation + step[3:]
            continue
        centre = (weights @ moved) / weights.sum()               # rotate about the weighted centroid
        arm = moved - centre
        jac = np.empty((len(subset), 6))
        jac[:, 0] = arm[:, 1] * normal[:, 2] - arm[:, 2] * normal[:, 1]   # d distance / d rotation = arm x n
        jac[:, 1] = arm[:, 2] * normal[:, 0] - arm[:, 0] * normal[:, 2]
        jac[:, 2] = arm[:, 0] * normal[:, 1] - arm[:, 1] * normal[:, 0]
        jac[:, 3:] = normal
        weighted = jac.T * weights
        hessian = weighted @ jac
        hessian.flat[::7] += hessian.flat[::7] * 1e-3 + 1e-9     # Levenberg damping
        step = -np.linalg.solve(hessian, weighted @ distance)
        delta = rotation_from_vector(step[:3])
        rotation = delta @ rotation
        translation = delta @ (translation - centre) + centre + step[3:]
    return make_transform(rotation, translation), distance


def align_hand(shapes: ShapeSet, points: np.ndarray, config: HandAlignmentConfig = HandAlignmentConfig(),
               view_point: np.ndarray | None = None, previous: HandAlignment | None = None) -> HandAlignment:
    """Rigid correction that moves measured ``points`` (palm frame) onto the surface of ``shapes``.

    Robust Gauss-Newton on the signed distance (:class:`DistanceField`, with
    ``view_point`` the camera position), Tukey weights whose scale shrinks
    from ``search_radius`` to ``inlier_distance`` so object points touching
    the hand and depth outliers lose their pull. Cold start: translation-only
    iterations on a third of the points, then full 6-DoF. With ``initial``
    (the previous frame's correction; the calibration error does not change
    between frames) a few fine iterations suffice; a poor warm fit is redone
    cold. The result is rejected (identity) when too few points fit or the
    correction is implausibly large.

    ``previous``: the previous frame's result; when it is ``ok`` its
    correction is the start (the calibration error does not change between
    frames) and a few fine iterations suffice. A warm fit clearly worse than
    the previous one (``warm_tolerance``) is redone cold.
    """
    points = np.asarray(points, dtype=np.float64)
    candidates = len(points)
    if candidates < config.min_inliers:
        return HandAlignment.identity(f"{candidates} points near the hand model (< {config.min_inliers})",
                                      candidates)
    if candidates > config.max_points:
        points = points[np.linspace(0, candidates - 1, config.max_points).astype(np.int64)]
    field_ = DistanceField(shapes, view_point)
    coarse = points[::3] if len(points) >= 3 * config.min_inliers else points
    if previous is not None and previous.ok:
        start = np.asarray(previous.correction, dtype=np.float64)
        if start.shape != (4, 4) or not np.all(np.isfinite(start)) or \
                np.abs(start[:3, :3] @ start[:3, :3].T - np.eye(3)).max() > 1e-6:
            raise TransformError("previous hand alignment: correction is not a rigid 4x4 transform")
        reference = (previous.reference_rms_mm, previous.reference_inlier_fraction)
        if not np.isfinite(reference[0]):
            reference = (previous.rms_mm, previous.inliers / max(previous.fit_points, 1))

        def as_good(result: HandAlignment) -> bool:
            return (result.ok and result.rms_mm <= reference[0] * config.warm_tolerance
                    and result.inliers / len(points) * config.warm_tolerance >= reference[1])

        # the calibration error does not change between frames: often the previous correction still fits
        # (checked on every other point: the statistics compare, at half the work)
        check = points[::2]
        distance, _ = field_(check @ start[:3, :3].T + start[:3, 3])
        kept = _judge(start, distance, config, candidates, warm=True, iterations=0, reference=reference)
        if kept.ok and kept.rms_mm <= reference[0] * config.warm_tolerance \
                and kept.inliers / len(check) * config.warm_tolerance >= reference[1]:
            return kept
        warm_scales = np.geomspace(2 * config.inlier_distance, config.inlier_distance, config.warm_iterations)
        fitted = _fit(field_, points, coarse, start, warm_scales, 0, config.min_inliers)
        if not isinstance(fitted, str):
            result = _judge(*fitted, config, candidates, warm=True, iterations=config.warm_iterations,
                            reference=reference)
            if as_good(result):
                return result
    best: HandAlignment | None = None
    failure = ""
    # cold start; a poor fit (stuck short of a large offset) gets a second try with a longer translation phase
    for iterations, translation_only in ((config.iterations, config.translation_first),
                                         (config.iterations + 2, config.translation_first + 2)):
        scales = np.geomspace(config.search_radius, config.inlier_distance, max(iterations - 1, 1))
        scales = np.append(scales, config.inlier_distance)[:iterations]
        fitted = _fit(field_, points, coarse, np.eye(4), scales, translation_only, config.min_inliers)
        if isinstance(fitted, str):
            failure = fitted
            continue
        result = _judge(*fitted, config, candidates, warm=False, iterations=iterations)
        if best is None or (result.ok, result.inliers - 10 * result.rms_mm) > (best.ok, best.inliers - 10 * best.rms_mm):
            best = result
        if best.ok and best.rms_mm <= config.poor_fit_rms * 1e3:
            break
    return best if best is not None else HandAlignment.identity(failure, candidates)


def _judge(correction: np.ndarray, distance: np.ndarray, config: HandAlignmentConfig, candidates: int,
           warm: bool, iterations: int, reference: tuple[float, float] | None = None) -> HandAlignment:
    """Package a fit; reject it if too few points fit or it moves implausibly far."""
    inliers = np.abs(distance) < config.inlier_distance
    rotation = correction[:3, :3]
    angle = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(rotation) - 1) / 2))))
    shift = float(np.linalg.norm(correction[:3, 3]))
    rms = float(np.sqrt(np.mean(distance[inliers] ** 2)) * 1e3) if inliers.any() else float("nan")
    count = int(inliers.sum())
    if reference is None:                              # a cold fit sets the reference for later warm frames
        reference = (rms, count / max(len(distance), 1))
    result = HandAlignment(correction, True, "ok", count, rms, shift * 1e3, angle, candidates,
                           len(distance), warm, iterations, reference[0], reference[1])
    if result.inliers < config.min_inliers:
        return replace(result, correction=np.eye(4), ok=False,
                       reason=f"only {result.inliers} points fit the hand model (< {config.min_inliers})")
    if shift > config.max_translation or angle > config.max_rotation_deg:
        return replace(result, correction=np.eye(4), ok=False,
                       reason=f"correction {shift * 1e3:.0f} mm / {angle:.1f} deg exceeds the limits "
                              f"{config.max_translation * 1e3:.0f} mm / {config.max_rotation_deg:.1f} deg")
    return result


# --------------------------------------------------------------- rendering
def render_hand_depth(shapes: ShapeSet, intrinsics: Intrinsics, palm_from_camera: np.ndarray) -> np.ndarray:
    """Depth image (float32 metres, 0 = no hand) of the posed collision shapes seen by the camera.

    Exact ray casting (slab test for boxes, cylinder + end spheres for
    capsules) of each shape over the image rectangle its bounds project to;
    the nearest hit wins.
    """
    camera_from_palm = invert_transform(validate_rigid(palm_from_camera, name="camera->palm extrinsic"))
    cam = transform_shapes(shapes, camera_from_palm)
    grid = RayGrid(intrinsics)
    depth = np.full((intrinsics.height, intrinsics.width), np.inf)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    for rot, centre, half in zip(cam.box_rotation, cam.box_center, cam.box_half):
        corners = centre + (signs * half) @ rot.T
        window = _pixel_window(corners, 0.0, intrinsics)
        if window is None:
            continue
        rows, cols = window
        rx, ry = np.meshgrid(grid.u[cols], grid.v[rows])
        direction = np.stack([rx, ry, np.ones_like(rx)], axis=-1) @ rot       # box frame, z = 1 per unit depth
        origin = -centre @ rot
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - origin) / direction
            t2 = (half - origin) / direction
        near = np.nanmax(np.minimum(t1, t2), axis=-1)
        far = np.nanmin(np.maximum(t1, t2), axis=-1)
        hit = (near <= far) & (near > 0)
        block = depth[rows, cols]
        np.minimum(block, np.where(hit, near, np.inf), out=block)
        depth[rows, cols] = block
    for a, b, radius in zip(cam.capsule_a, cam.capsule_b, cam.capsule_radius):
        window = _pixel_window(np.vstack([a, b]), radius, intrinsics)
        if window is None:
            continue
        rows, cols = window
        rx, ry = np.meshgrid(grid.u[cols], grid.v[rows])
        ray = np.stack([rx, ry, np.ones_like(rx)], axis=-1)
        length = np.linalg.norm(ray, axis=-1)
        t = _ray_capsule(ray / length[..., None], a, b, radius)
        block = depth[rows, cols]
        np.minimum(block, np.where(t > 0, t / length, np.inf), out=block)    # distance -> depth (z)
        depth[rows, cols] = block
    depth[~np.isfinite(depth)] = 0.0
    return depth.astype(np.float32)


def _pixel_window(points_cam: np.ndarray, radius: float, intrinsics: Intrinsics
                  ) -> tuple[slice, slice] | None:
    """Image rectangle covering points (camera frame) grown by ``radius``; None if behind or outside."""
    if np.any(points_cam[:, 2] - radius <= 1e-3):
        return None
    z = points_cam[:, 2] - radius
    u = intrinsics.fx * points_cam[:, 0] / points_cam[:, 2] + intrinsics.cx
    v = intrinsics.fy * points_cam[:, 1] / points_cam[:, 2] + intrinsics.cy
    pad_u = intrinsics.fx * radius / z.min() + 1
    pad_v = intrinsics.fy * radius / z.min() + 1
    u0, u1 = int(max(np.floor(u.min() - pad_u), 0)), int(min(np.ceil(u.max() + pad_u) + 1, intrinsics.width))
    v0, v1 = int(max(np.floor(v.min() - pad_v), 0)), int(min(np.ceil(v.max() + pad_v) + 1, intrinsics.height))
    if u0 >= u1 or v0 >= v1:
        return None
    return slice(v0, v1), slice(u0, u1)


def _ray_capsule(direction: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    """Distance along unit rays from the origin to a capsule (-1: miss); vectorized over rays."""
    ba = b - a
    oa = -a
    baba = ba @ ba
    bard = direction @ ba
    baoa = oa @ ba
    rdoa = direction @ oa
    oaoa = oa @ oa
    qa = baba - bard * bard
    qb = baba * rdoa - baoa * bard
    qc = baba * oaoa - baoa * baoa - radius * radius * baba
    disc = qb * qb - qa * qc
    with np.errstate(divide="ignore", invalid="ignore"):
        t_body = (-qb - np.sqrt(np.maximum(disc, 0.0))) / qa
    y = baoa + t_body * bard
    body = (disc >= 0) & (y > 0) & (y < baba) & np.isfinite(t_body)
    # end caps: the sphere on the side the body test fell off
    cap_centre = np.where((y <= 0)[..., None], a, b)
    oc = -cap_centre
    cb = np.einsum("...i,...i->...", direction, oc)
    cc = np.einsum("...i,...i->...", oc, oc) - radius * radius
    ch = cb * cb - cc
    t_cap = -cb - np.sqrt(np.maximum(ch, 0.0))
    cap = (disc >= 0) & ~body & (ch > 0)
    return np.where(body, t_body, np.where(cap, t_cap, -1.0))


# ---------------------------------------------------------------- the check
@dataclass(frozen=True)
class DepthFit:
    """How well a rendered hand explains a measured depth frame (residual = measured - rendered)."""

    hand_pixels: int                 # rendered hand pixels with a valid measurement
    occluded_pixels: int             # of those, measured far in front of the hand (object, other)
    missing_pixels: int              # rendered hand pixels without a measurement
    residuals: np.ndarray = field(repr=False)   # metres, on the non-occluded hand pixels
    tolerance: float = 0.005
    clip: float = 0.05

    @property
    def compared(self) -> int:
        return len(self.residuals)

    @property
    def mean_abs_mm(self) -> float:
        """Mean |residual|, each clipped at ``clip`` (a background pixel counts as clip, not 0.5 m)."""
        if not self.compared:
            return float("nan")
        return float(np.mean(np.minimum(np.abs(self.residuals), self.clip)) * 1e3)

    @property
    def median_abs_mm(self) -> float:
        return float(np.median(np.abs(self.residuals)) * 1e3) if self.compared else float("nan")

    @property
    def median_signed_mm(self) -> float:
        return float(np.median(self.residuals) * 1e3) if self.compared else float("nan")

    @property
    def explained_fraction(self) -> float:
        """Share of compared hand pixels measured within ``tolerance`` of the rendered depth."""
        if not self.compared:
            return float("nan")
        return float(np.mean(np.abs(self.residuals) <= self.tolerance))


def depth_fit(measured: np.ndarray, rendered: np.ndarray, tolerance: float = 0.005,
              occlusion: float = 0.015, clip: float = 0.05) -> DepthFit:
    """Compare a measured depth frame with the rendered hand (both float metres, 0 = none).

    Pixels measured more than ``occlusion`` in front of the rendered hand are
    something else in front of it (the object) and are counted, not scored.
    """
    if measured.shape != rendered.shape:
        raise ValueError(f"depth {measured.shape} and rendered hand {rendered.shape} differ in size")
    measured = np.where(np.isfinite(measured), measured, 0.0)
    hand = rendered > 0
    valid = hand & (measured > 0)
    residual = (measured - rendered)[valid]
    occluded = residual < -occlusion
    return DepthFit(int(valid.sum()), int(occluded.sum()), int((hand & ~(measured > 0)).sum()),
                    residual[~occluded].astype(np.float64), tolerance, clip)


@dataclass(frozen=True)
class CalibrationFrame:
    """One depth frame with what is needed to render the hand into it."""

    depth: np.ndarray                # float metres, 0 = no measurement
    intrinsics: Intrinsics
    joint_positions: np.ndarray      # canonical order, measured
    stamp_ns: int = 0


@dataclass(frozen=True)
class CalibrationReport:
    """Residuals of one extrinsic over several frames, plus the alignment's suggested correction."""

    frames: int
    fit: DepthFit                                   # all frames' residuals pooled
    per_frame_mean_abs_mm: tuple[float, ...]
    alignments: tuple[HandAlignment, ...]
    suggested_extrinsic: np.ndarray | None          # palm_from_camera after the median correction

    @property
    def suggested_change(self) -> tuple[float, float] | None:
        """(translation mm, rotation deg) of the median alignment correction, if any frame aligned."""
        ok = [a for a in self.alignments if a.ok]
        if not ok:
            return None
        return (float(np.median([a.translation_mm for a in ok])), float(np.median([a.rotation_deg for a in ok])))


def check_extrinsic(frames: Iterable[CalibrationFrame], palm_from_camera: np.ndarray,
                    kinematics: HandKinematics | None = None, tolerance: float = 0.005,
                    occlusion: float = 0.015, clip: float = 0.05,
                    alignment: HandAlignmentConfig | None = HandAlignmentConfig()) -> CalibrationReport:
    """Render the hand at each frame's joint positions with ``palm_from_camera`` and pool the residuals."""
    palm_from_camera = validate_rigid(palm_from_camera, name="camera->palm extrinsic")
    kinematics = kinematics or HandKinematics()
    residuals, per_frame, alignments = [], [], []
    hand = occluded = missing = 0
    corrections = []
    count = 0
    for frame in frames:
        frame.intrinsics.check_image(frame.depth.shape)
        shapes = kinematics.collision_shapes(np.asarray(frame.joint_positions, dtype=np.float64))
        rendered = render_hand_depth(shapes, frame.intrinsics, palm_from_camera)
        fit = depth_fit(frame.depth, rendered, tolerance, occlusion, clip)
        count += 1
        hand, occluded, missing = hand + fit.hand_pixels, occluded + fit.occluded_pixels, missing + fit.missing_pixels
        residuals.append(fit.residuals)
        per_frame.append(fit.mean_abs_mm)
        if alignment is not None:
            points = _points_near_hand(frame, palm_from_camera, shapes, alignment.search_radius)
            result = align_hand(shapes, points, alignment, view_point=palm_from_camera[:3, 3])
            alignments.append(result)
            if result.ok:
                corrections.append(result.correction)
    if count == 0:
        raise ValueError("no frames to check")
    pooled = DepthFit(hand, occluded, missing, np.concatenate(residuals), tolerance, clip)
    suggested = None
    if corrections:
        suggested = _median_transform(corrections) @ palm_from_camera
    return CalibrationReport(count, pooled, tuple(per_frame), tuple(alignments), suggested)


def _points_near_hand(frame: CalibrationFrame, palm_from_camera: np.ndarray, shapes: ShapeSet,
                      radius: float) -> np.ndarray:
    grid = RayGrid(frame.intrinsics)
    depth = np.where(np.isfinite(frame.depth), frame.depth, 0.0)
    pts_cam, _ = grid.backproject(depth.astype(np.float32))
    pts = pts_cam.astype(np.float64) @ palm_from_camera[:3, :3].T + palm_from_camera[:3, 3]
    lo, hi = shapes.bounding_box(radius)
    pts = pts[np.all((pts >= lo) & (pts <= hi), axis=1)]
    if len(pts) > 20000:                         # plenty for a fit; bounds the (N x shapes) work
        pts = pts[np.linspace(0, len(pts) - 1, 20000).astype(np.int64)]
    if len(pts) == 0:
        return pts
    distance, _ = signed_distance(shapes, pts, palm_from_camera[:3, 3])
    return pts[np.abs(distance) < radius]


def _median_transform(transforms: Sequence[np.ndarray]) -> np.ndarray:
    """Element-wise median of small corrections, re-orthonormalized (SVD)."""
    stack = np.stack(transforms)
    rot = np.median(stack[:, :3, :3], axis=0)
    u, _, vt = np.linalg.svd(rot)
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        u[:, -1] *= -1
        rot = u @ vt
    return make_transform(rot, np.median(stack[:, :3, 3], axis=0))


def transform_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(translation mm, rotation deg) between two rigid transforms."""
    delta = invert_transform(a) @ b
    angle = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(delta[:3, :3]) - 1) / 2))))
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3]) * 1e3), angle
