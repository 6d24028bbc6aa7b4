"""Registration of a partial view of an object against its model: point-to-plane ICP and a global search.

The camera sees one side of the object, fingers hide parts of it, and the
segmented cloud carries a few hand points; the model is 2048 surface points
with outward normals (dexterity_ros.objects.models). Poses here are
palm_from_object: x_palm = R @ x_object + t.

Where Open3D does the job it is used: ``registration_icp`` (point-to-plane,
Tukey loss) for the frame-to-frame step from the previous pose
(:func:`track_open3d`; bench/pose.py measures it against this module's numpy
ICP on the same points: faster at the same accuracy), its batched KD-tree
search to build the lookup tables. Own numpy code for the rest, because:

* the global search refines hundreds of pose hypotheses per frame; one
  batched Gauss-Newton iteration over all of them (:func:`icp`, robust Tukey
  weights, a small point-to-point term and damping that keep a view of one
  flat face from sliding along it) takes 3.8 ms for 446 hypotheses x 128
  points on one core, one ``registration_icp`` iteration per hypothesis 133 ms
  (measured for convex_0, the call and point-cloud overhead dominating);
* its closest-point search is a lookup table built once per model (the index
  of the nearest model point for every 2 mm voxel around the model), not a
  KD-tree query per point and per hypothesis;
* the scores that rank hypotheses and decide confidence (surface distance
  past an edge, coverage of the model's camera-facing side) have no Open3D
  counterpart; FPFH + RANSAC, Open3D's global registration, is far slower and
  often wrong on these small, partly occluded views (the bench's baseline).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..objects.models import ObjectModel
from ..objects.symmetry import Symmetry

if TYPE_CHECKING:
    import open3d

MAX_GRID_VOXELS = 4_000_000        # a larger object gets coarser voxels


class ModelIndex:
    """A model's closest-point lookup: per voxel of a grid around the model, its nearest model point.

    Points outside the grid (farther than ``margin`` from the model's box) have
    no correspondence. The lookup returns the nearest model point of the voxel
    centre: at most one voxel diagonal farther than the true nearest, which
    point-to-plane residuals do not feel on faces.
    """

    def __init__(self, model: ObjectModel, voxel: float = 0.002, margin: float = 0.02):
        if voxel <= 0 or margin <= 0:
            raise ValueError(f"voxel and margin must be > 0, got {voxel}, {margin}")
        points = np.asarray(model.points, dtype=np.float64)
        self.model = model
        self.points = points
        self.normals = np.asarray(model.normals, dtype=np.float64)
        lo, hi = points.min(axis=0) - margin, points.max(axis=0) + margin
        voxel = max(voxel, float(np.prod(hi - lo) / MAX_GRID_VOXELS) ** (1.0 / 3.0))
        self.voxel = voxel
        self.origin = lo
        self.dims = np.ceil((hi - lo) / voxel).astype(np.int64)
        axes = [lo[i] + (np.arange(self.dims[i]) + 0.5) * voxel for i in range(3)]
        centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        self.grid = _nearest_indices(points, centres).astype(np.int32)
        spacing = np.sqrt(_nearest_indices(points, points, k=2, distances=True)[:, 1])
        self.spacing = float(spacing.mean())          # mean distance between neighbouring model points
        self.radius = float(np.linalg.norm(points, axis=1).max())
        self.px, self.py, self.pz = (np.ascontiguousarray(points[:, i]) for i in range(3))
        self.nx, self.ny, self.nz = (np.ascontiguousarray(self.normals[:, i]) for i in range(3))
        self._strides = np.array([self.dims[1] * self.dims[2], self.dims[2], 1])
        self._neighbours: dict[float, np.ndarray] = {}
        self._target = None

    def target_cloud(self) -> open3d.geometry.PointCloud:
        """The model as an Open3D point cloud with normals (for ``registration_icp``), built once."""
        if self._target is None:
            import open3d as o3d
            self._target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.array(self.points)))
            self._target.normals = o3d.utility.Vector3dVector(np.array(self.normals))
        return self._target

    def neighbours(self, radius: float) -> np.ndarray:
        """(M, K) indices of the model points within ``radius`` of each (padded with the point itself)."""
        if radius not in self._neighbours:
            k = 48
            found, dist2 = _knn(self.points, self.points, k)
            self._neighbours[radius] = np.where(dist2 <= radius * radius, found, found[:, :1]).astype(np.int32)
        return self._neighbours[radius]

    def lookup(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of the nearest model point, inside the grid) for object-frame points (..., 3)."""
        g = np.floor((y - self.origin) * (1.0 / self.voxel)).astype(np.int64)
        inside = np.all((g >= 0) & (g < self.dims), axis=-1)
        np.clip(g, 0, self.dims - 1, out=g)
        flat = (g[..., 0] * self.dims[1] + g[..., 1]) * self.dims[2] + g[..., 2]
        return self.grid[flat], inside

    def lookup_columns(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`lookup` for points stored one row per axis, (H, 3, P) -> (H, P) each."""
        g = (y - self.origin[:, None]) * (1.0 / self.voxel)
        inside = np.ones(g.shape[::2], dtype=bool)
        flat = np.zeros(inside.shape, dtype=np.int64)
        for axis in range(3):
            c = g[:, axis]
            inside &= (c >= 0) & (c < self.dims[axis])
            flat += np.clip(c, 0, self.dims[axis] - 1).astype(np.int64) * self._strides[axis]
        return self.grid[flat], inside


def _knn(reference: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, squared distances) (Q, k) of the k nearest ``reference`` points (Open3D's batched search)."""
    import open3d as o3d

    search = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(np.ascontiguousarray(reference, np.float64)))
    search.knn_index()
    found, dist2 = search.knn_search(o3d.core.Tensor(np.ascontiguousarray(queries, np.float64)), k)
    return found.numpy().astype(np.int64), dist2.numpy()


def _nearest_indices(reference: np.ndarray, queries: np.ndarray, k: int = 1,
                     distances: bool = False) -> np.ndarray:
    """Nearest ``reference`` point of every query (squared distances to the k nearest if asked)."""
    found, dist2 = _knn(reference, queries, k)
    return dist2 if distances else found[:, 0]


@dataclass(frozen=True)
class IcpParams:
    """How one ICP runs (see TrackerConfig for what each value is for)."""

    gates: tuple[float, ...]            # per iteration: max distance (m) to the nearest model point
    point_to_point: float = 0.1         # weight of the point-to-point term next to point-to-plane
    damping: float = 1e-4               # Levenberg-Marquardt damping of the normal equations
    tolerance: float = 1e-5             # stop when the update moves the object less than this (m)


@dataclass(frozen=True)
class Fit:
    """A pose and how well the observed points lie on the model there."""

    rotation: np.ndarray                # (3, 3) palm_from_object
    translation: np.ndarray             # (3,) m
    fitness: float                      # fraction of points within the inlier distance of the surface
    inlier_rmse: float                  # m, over those points (nan: none)
    score: float                        # mean truncated-quadratic agreement in [0, 1] (ranks hypotheses)
    iterations: int = 0

    @property
    def matrix(self) -> np.ndarray:
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = self.rotation, self.translation
        return pose


# ------------------------------------------------------------------ ICP (batched over hypotheses)
def icp(index: ModelIndex, points: np.ndarray, rotations: np.ndarray, translations: np.ndarray,
        params: IcpParams) -> tuple[np.ndarray, np.ndarray, int]:
    """Refine poses (H, 3, 3), (H, 3) against the observed points (P, 3); returns (R, t, iterations run).

    Works on the object_from_palm transform G = (R^T, -R^T t): each iteration
    moves the observed points in the object frame by a small rotation w and
    translation v minimising the Tukey-weighted point-to-plane residuals plus
    ``point_to_point`` times the point-to-point ones. Arrays are kept as one
    row per axis ((H, 3, P)): the fast layout for numpy's element-wise work.
    """
    columns = np.ascontiguousarray(np.asarray(points, dtype=np.float64).T)          # (3, P)
    g_rot = np.ascontiguousarray(np.swapaxes(rotations, 1, 2))
    g_trans = -np.einsum("hij,hj->hi", g_rot, translations)
    done = 0
    for gate in params.gates:
        y = g_rot @ columns + g_trans[:, :, None]                                     # (H, 3, P)
        delta = _gauss_newton_step(index, y, gate, params)
        step_rot = _rodrigues(delta[:, :3])
        g_rot = step_rot @ g_rot
        g_trans = np.einsum("hij,hj->hi", step_rot, g_trans) + delta[:, 3:]
        done += 1
        moved = np.sqrt((delta[:, :3] ** 2).sum(axis=1)) * index.radius + np.sqrt((delta[:, 3:] ** 2).sum(axis=1))
        if float(moved.max()) < params.tolerance:
            break
    rotations = np.swapaxes(g_rot, 1, 2)
    return rotations, -np.einsum("hij,hj->hi", rotations, g_trans), done


def _gauss_newton_step(index: ModelIndex, y: np.ndarray, gate: float, params: IcpParams) -> np.ndarray:
    """One damped Gauss-Newton update (H, 6) = (w, v) for object-frame points y (H, 3, P)."""
    nearest, inside = index.lookup_columns(y)
    y0, y1, y2 = y[:, 0], y[:, 1], y[:, 2]
    n0, n1, n2 = index.nx[nearest], index.ny[nearest], index.nz[nearest]
    d0, d1, d2 = y0 - index.px[nearest], y1 - index.py[nearest], y2 - index.pz[nearest]
    r = d0 * n0 + d1 * n1 + d2 * n2
    dist2 = d0 * d0 + d1 * d1 + d2 * d2
    u = r * (1.0 / gate)
    w = 1.0 - u * u
    w *= w
    w[~inside | (dist2 > gate * gate)] = 0.0                                          # Tukey biweight, gated
    jac = np.stack([y1 * n2 - y2 * n1, y2 * n0 - y0 * n2, y0 * n1 - y1 * n0, n0, n1, n2], axis=1)   # (H, 6, P)
    jw = jac * w[:, None, :]
    a = jw @ np.swapaxes(jac, 1, 2)                                                  # (H, 6, 6)
    b = (jw @ r[:, :, None])[..., 0]
    s0 = w.sum(axis=1)
    if params.point_to_point > 0:
        alpha = params.point_to_point
        yw = y * w[:, None, :]
        s1 = yw.sum(axis=2)
        s2 = yw @ np.swapaxes(y, 1, 2)
        trace = s2[:, 0, 0] + s2[:, 1, 1] + s2[:, 2, 2]
        a[:, :3, :3] += alpha * (trace[:, None, None] * np.eye(3) - s2)
        skew = _skew(s1)
        a[:, :3, 3:] += alpha * skew
        a[:, 3:, :3] -= alpha * skew
        a[:, 3:, 3:] += alpha * s0[:, None, None] * np.eye(3)
        e0, e1, e2 = d0 * w, d1 * w, d2 * w
        b[:, 0] += alpha * (y1 * e2 - y2 * e1).sum(axis=1)
        b[:, 1] += alpha * (y2 * e0 - y0 * e2).sum(axis=1)
        b[:, 2] += alpha * (y0 * e1 - y1 * e0).sum(axis=1)
        b[:, 3] += alpha * e0.sum(axis=1)
        b[:, 4] += alpha * e1.sum(axis=1)
        b[:, 5] += alpha * e2.sum(axis=1)
    diag = np.einsum("hii->hi", a)
    scale = diag.mean(axis=1, keepdims=True) + 1e-12
    a[:, range(6), range(6)] += params.damping * diag + 1e-9 * scale
    delta = -np.linalg.solve(a, b[..., None])[..., 0]
    # no correspondences: stay; a huge step (degenerate view) is shortened
    delta[s0 < 1.0] = 0.0
    angle = np.sqrt((delta[:, :3] ** 2).sum(axis=1))[:, None]
    if float(angle.max()) > 0.5:
        delta[:, :3] *= np.minimum(1.0, 0.5 / np.maximum(angle, 1e-12))
    shift = np.sqrt((delta[:, 3:] ** 2).sum(axis=1))[:, None]
    if float(shift.max()) > gate:
        delta[:, 3:] *= np.minimum(1.0, gate / np.maximum(shift, 1e-12))
    return delta


def _skew(v: np.ndarray) -> np.ndarray:
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def _rodrigues(w: np.ndarray) -> np.ndarray:
    """Rotation matrices (H, 3, 3) of rotation vectors (H, 3)."""
    angle = np.linalg.norm(w, axis=1)
    k = _skew(w / np.maximum(angle, 1e-12)[:, None])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


# ------------------------------------------------------------------ scoring
def evaluate(index: ModelIndex, points: np.ndarray, rotations: np.ndarray, translations: np.ndarray,
             inlier_distance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fitness, inlier RMSE (m, nan without inliers), score) per pose (H,) for points (P, 3).

    The distance of a point to the surface: its point-to-plane distance to the
    nearest model point, plus how far it lies beyond that point along the
    surface by more than the model's point spacing (past an edge).
    """
    points = np.asarray(points, dtype=np.float64)
    y = (points[None] - translations[:, None, :]) @ rotations
    d = surface_distance(index, y)
    inlier = d < inlier_distance
    count = inlier.sum(axis=1)
    fitness = count / max(points.shape[0], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(np.where(inlier, d * d, 0.0).sum(axis=1) / count)
    score = np.clip(1.0 - (d / inlier_distance) ** 2, 0.0, None).mean(axis=1)
    return fitness, np.where(count > 0, rmse, np.nan), score


def surface_distance(index: ModelIndex, y: np.ndarray) -> np.ndarray:
    """Approximate distance (m) of object-frame points (..., 3) to the model surface (inf off the grid)."""
    nearest, inside = index.lookup(y)
    diff = y - index.points[nearest]
    normal = np.einsum("...i,...i->...", diff, index.normals[nearest])
    along = np.sqrt(np.maximum(np.einsum("...i,...i->...", diff, diff) - normal * normal, 0.0))
    past = np.maximum(along - index.spacing, 0.0)
    return np.where(inside, np.sqrt(normal * normal + past * past), np.inf)


def coverage(index: ModelIndex, points: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
             view_point: np.ndarray, inlier_distance: float, radius: float) -> float:
    """Fraction of the model surface facing the camera at this pose that has an inlier within ``radius``.

    The complement of fitness: a model larger than the seen object (a cube
    model on a cylinder's cloud) puts the observed points on its surface, but
    leaves much of its camera-facing surface without any. Fingers hide part of
    the object too, so a right pose scores below 1 (measured in bench/pose.py's
    frames: 5th percentile 0.47). Facing is taken as visible (convex models).
    """
    points = np.asarray(points, dtype=np.float64)
    y = (points - translation) @ rotation
    nearest, _ = index.lookup(y)
    inlier = surface_distance(index, y) < inlier_distance
    covered = np.zeros(len(index.points), dtype=bool)
    covered[index.neighbours(radius)[nearest[inlier]].ravel()] = True
    view = (np.asarray(view_point, dtype=np.float64) - translation) @ rotation          # object frame
    facing = np.einsum("ij,ij->i", index.normals, view - index.points) > 0
    count = int(np.count_nonzero(facing))
    return float(np.count_nonzero(covered & facing) / count) if count else 0.0


# ------------------------------------------------------------------ global search
def orientation_hypotheses(symmetry: Symmetry, resolution_deg: float) -> np.ndarray:
    """Deterministic orientations (H, 4) wxyz covering SO(3) modulo the symmetry at about ``resolution_deg``.

    A discrete group keeps the grid points nearer the identity than to any of
    its other rotations (one copy of each look); a continuous axis needs only
    the axis direction (a Fibonacci sphere, half of it when the group flips the
    axis).
    """
    theta = math.radians(resolution_deg)
    if not 0 < theta < math.pi:
        raise ValueError(f"resolution must be in (0, 180) degrees, got {resolution_deg}")
    if symmetry.axis is not None:
        # a cap of radius theta covers pi theta^2 of the sphere's 4 pi; twice that many directions overlap
        directions = _fibonacci_sphere(max(8, int(math.ceil(8.0 / (theta * theta)))))
        if len(symmetry.rotations) > 1:
            directions = directions[directions[:, 2] >= 0]
        return np.array([_quat_from_to(symmetry.axis, d) for d in directions])
    # Haar measure of a ball of radius theta: (theta - sin theta) / pi; cover SO(3) with that many
    total = int(math.ceil(math.pi / (theta - math.sin(theta))))
    grid = _super_fibonacci(total)
    g = symmetry.rotations
    # w of q * g for every g: q_w g_w - q_v . g_v
    w = np.abs(grid[:, :1] * g[None, :, 0] - grid[:, 1:] @ g[:, 1:].T)
    keep = w[:, 0] >= w.max(axis=1) - 1e-12
    quats = grid[keep]
    return quats * np.where(quats[:, :1] < 0, -1.0, 1.0)


def _super_fibonacci(n: int) -> np.ndarray:
    """n unit quaternions spread evenly over S^3 (Alexa, "Super-Fibonacci Spirals", CVPR 2022)."""
    phi, psi = math.sqrt(2.0), 1.533751168755204288118041
    s = np.arange(n) + 0.5
    r, big_r = np.sqrt(s / n), np.sqrt(1.0 - s / n)
    alpha, beta = 2 * math.pi * s / phi, 2 * math.pi * s / psi
    return np.stack([r * np.sin(alpha), r * np.cos(alpha), big_r * np.sin(beta), big_r * np.cos(beta)], axis=1)[
        :, [3, 0, 1, 2]]


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    ring = np.sqrt(np.maximum(1.0 - z * z, 0.0))
    angle = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([ring * np.cos(angle), ring * np.sin(angle), z], axis=1)


def _quat_from_to(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The shortest rotation (wxyz) taking unit vector a to b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    dot = float(a @ b)
    if dot < -1 + 1e-9:
        other = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = np.cross(a, other)
        return np.concatenate([[0.0], axis / np.linalg.norm(axis)])
    q = np.concatenate([[1.0 + dot], np.cross(a, b)])
    return q / np.linalg.norm(q)


@dataclass(frozen=True)
class SearchParams:
    """The global search's stages (see TrackerConfig)."""

    points: int = 128                                   # observed points the hypotheses are scored on
    stages: tuple[tuple[float, ...], ...] = ((0.015, 0.01, 0.006), (0.006, 0.004, 0.004))   # gates per stage
    keep: tuple[int, ...] = (24, 6)                     # hypotheses kept after each stage
    inlier_distance: float = 0.004
    icp: IcpParams = IcpParams(gates=(0.006,))
    distinct_angle: float = math.radians(10.0)         # survivors closer than this and ...
    distinct_distance: float = 0.005                    # ... this to a better one are dropped


def initial_translations(index: ModelIndex, rotations: np.ndarray, centroid: np.ndarray,
                         view_direction: np.ndarray) -> np.ndarray:
    """Per orientation, the translation that puts the model's camera-facing surface on the observed centroid.

    The cloud's centroid is the centroid of the visible surface, not of the
    object: each model point counts with the cosine of its normal to the view
    direction (pixels per area fall with it), points facing away not at all.
    """
    step = max(1, len(index.points) // 512)
    pts, nrm = index.points[::step], index.normals[::step]
    facing = np.einsum("hji,j->hi", rotations, view_direction)           # view direction in the object frame
    weight = np.clip(nrm @ facing.T, 0.0, None)                           # (M, H)
    visible = (weight.T @ pts) / np.maximum(weight.sum(axis=0), 1e-9)[:, None]
    return centroid[None, :] - np.einsum("hij,hj->hi", rotations, visible)


def global_search(index: ModelIndex, points: np.ndarray, quaternions: np.ndarray, view_point: np.ndarray | None,
                  params: SearchParams, final_points: np.ndarray | None = None) -> list[Fit]:
    """Every orientation hypothesis placed on the cloud and refined; the survivors best first.

    Successive halving: all hypotheses get a few ICP iterations on a subset of
    the points, the best ``keep[k]`` go on to the next stage; the last ones are
    refined on ``final_points`` (default: all points) and scored there.
    """
    from ..geometry import quat_to_matrix

    points = np.asarray(points, dtype=np.float64)
    final_points = points if final_points is None else np.asarray(final_points, dtype=np.float64)
    centroid = points.mean(axis=0)
    view_direction = None
    if view_point is not None:
        ray = np.asarray(view_point, dtype=np.float64) - centroid
        norm = float(np.linalg.norm(ray))
        view_direction = ray / norm if norm > 1e-9 else None
    step = max(1, len(points) // params.points)
    subset = points[::step][:params.points]
    rotations = quat_to_matrix(quaternions)
    if view_direction is not None:
        translations = initial_translations(index, rotations, centroid, view_direction)
    else:
        # the seen side faces along the cloud's axis of least spread, one way or the other: try both
        axis = np.linalg.eigh(np.cov((points - centroid).T))[1][:, 0]
        translations = np.concatenate([initial_translations(index, rotations, centroid, axis),
                                       initial_translations(index, rotations, centroid, -axis)])
        rotations = np.concatenate([rotations, rotations])
    for gates, keep in zip(params.stages, params.keep):
        rotations, translations, _ = icp(index, subset, rotations, translations, IcpParams(
            gates, params.icp.point_to_point, params.icp.damping, 0.0))
        _, _, score = evaluate(index, subset, rotations, translations, params.inlier_distance)
        best = distinct_best(rotations, translations, score, keep, params.distinct_angle, params.distinct_distance)
        rotations, translations = rotations[best], translations[best]
    rotations, translations, iterations = icp(index, final_points, rotations, translations, params.icp)
    fitness, rmse, score = evaluate(index, final_points, rotations, translations, params.inlier_distance)
    order = np.argsort(-score, kind="stable")
    return [Fit(rotations[i], translations[i], float(fitness[i]), float(rmse[i]), float(score[i]), iterations)
            for i in order]


def distinct_best(rotations: np.ndarray, translations: np.ndarray, score: np.ndarray, keep: int,
                  angle: float, distance: float) -> np.ndarray:
    """Indices of the ``keep`` best poses, skipping any within ``angle`` (rad) and ``distance`` (m) of a better
    one kept: hypotheses that converged to the same pose would crowd out the other candidates."""
    order = np.argsort(-score, kind="stable")
    chosen: list[int] = []
    cos_limit = 2.0 * math.cos(angle) + 1.0                      # trace(Ra^T Rb) above this: closer than angle
    for i in order:
        if chosen:
            traces = np.einsum("kij,ij->k", rotations[chosen], rotations[i])
            near = np.linalg.norm(translations[chosen] - translations[i], axis=1) < distance
            if np.any((traces > cos_limit) & near):
                continue
        chosen.append(int(i))
        if len(chosen) == keep:
            break
    return np.array(chosen, dtype=np.int64)


def track(index: ModelIndex, points: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
          params: IcpParams, inlier_distance: float) -> Fit:
    """ICP from one pose (the previous frame's) and the fit it ends in (numpy; see :func:`track_open3d`)."""
    rotations, translations, iterations = icp(index, points, rotation[None], translation[None], params)
    fitness, rmse, score = evaluate(index, points, rotations, translations, inlier_distance)
    return Fit(rotations[0], translations[0], float(fitness[0]), float(rmse[0]), float(score[0]), iterations)


def track_open3d(index: ModelIndex, points: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                 gate: float, robust: float, iterations: int, inlier_distance: float) -> Fit:
    """:func:`track` with Open3D's point-to-plane ``registration_icp`` (Tukey loss of scale ``robust``,
    correspondences within ``gate``): one pose needs no batching, and Open3D's C++ loop is faster than
    numpy's per-iteration overhead (bench/pose.py: 0.9 vs 1.5 ms p50, the same accuracy)."""
    import open3d as o3d

    reg = o3d.pipelines.registration
    source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points, dtype=np.float64)))
    object_from_palm = np.eye(4)
    object_from_palm[:3, :3] = rotation.T
    object_from_palm[:3, 3] = -rotation.T @ translation
    result = reg.registration_icp(source, index.target_cloud(), gate, object_from_palm,
                                  reg.TransformationEstimationPointToPlane(reg.TukeyLoss(k=robust)),
                                  reg.ICPConvergenceCriteria(max_iteration=iterations))
    found = np.asarray(result.transformation)
    rotation = np.ascontiguousarray(found[:3, :3].T)
    translation = -rotation @ found[:3, 3]
    fitness, rmse, score = evaluate(index, points, rotation[None], translation[None], inlier_distance)
    return Fit(rotation, translation, float(fitness[0]), float(rmse[0]), float(score[0]), iterations)


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad) of the rotation between rotation matrices a and b."""
    cos = (float(np.trace(a.T @ b)) - 1.0) / 2.0
    return math.acos(min(1.0, max(-1.0, cos)))


def gate_schedule(start: float, end: float, iterations: int) -> tuple[float, ...]:
    """``iterations`` gates shrinking geometrically from ``start`` to ``end`` (then held)."""
    if iterations <= 1:
        return (end,)
    return tuple(float(g) for g in np.geomspace(start, end, iterations))


__all__: Sequence[str] = ("ModelIndex", "IcpParams", "Fit", "SearchParams", "icp", "evaluate", "surface_distance",
                          "orientation_hypotheses", "initial_translations", "global_search", "track", "track_open3d",
                          "coverage", "rotation_angle", "gate_schedule", "distinct_best")
