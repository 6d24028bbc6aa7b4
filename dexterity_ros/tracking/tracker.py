"""The object pose tracker: segmented object points in, the object's pose in the palm frame out, or why not.

Each cloud is registered against the object's model by ICP from the previous
pose; when there is none (first frame, after a gap) or that fit is poor, a
global search over orientation hypotheses re-initialises. A pose is reported
only when the fit is confident: a stale or wrong pose is worse than none, so
anything else is ``LOST`` with the reason (publish-nothing semantics).
Orientations that differ by a symmetry of the object look the same; the one
reported is the equivalent nearest the previous report, so the output is
continuous from frame to frame.

Pure numpy (no rclpy): pose_tracker_node wraps it, bench/pose.py measures it.
"""
from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..config import load_config
from ..geometry import matrix_to_quat, quat_to_matrix
from ..objects.models import ObjectModel
from ..paths import config_path
from .registration import (Fit, IcpParams, ModelIndex, SearchParams, coverage, gate_schedule, global_search,
                           orientation_hypotheses, rotation_angle, track, track_open3d)


AMBIGUITY_POINTS = 256       # ambiguity_margin is the margin at this many points


class TrackStatus(enum.Enum):
    TRACKING = "tracking"        # a confident pose this frame
    LOST = "lost"                # no pose this frame (see TrackResult.reason)


@dataclass(frozen=True)
class TrackerConfig:
    """Parameters of :class:`PoseTracker` (config/tracking.yaml). Distances in metres."""

    # input
    min_points: int = 40                  # fewer distinct finite points than this: LOST
    max_points: int = 512                 # registration uses at most this many distinct points (an even subset)
    workspace_min: tuple[float, float, float] | None = None   # optional palm-frame box the object must be in:
    workspace_max: tuple[float, float, float] | None = None   # points outside are dropped (None: no box)
    view_point: tuple[float, float, float] | None = None      # camera position (palm frame) when update() is not
                                                              # given one; tells the re-initialisation which side
                                                              # of the object is seen (None: side unknown)
    # model lookup
    model_voxel: float = 0.002            # voxel of the closest-point table (a point found is at most one voxel
                                          # diagonal farther than the nearest)
    model_margin: float = 0.02            # the table reaches this far around the model: farther points are outliers
    # confidence: a pose is reported only when all of these hold
    inlier_distance: float = 0.003        # a point this close to the model surface is an inlier (noise + scale)
    min_fitness: float = 0.9              # at least this fraction of the points are inliers ...
    max_rmse: float = 0.002               # ... with at most this RMS distance ...
    min_coverage: float = 0.3             # ... and this fraction of the model's camera-facing surface has an
    coverage_radius: float = 0.005        # inlier within this distance (needs the view point; 0: not checked)
    # frame-to-frame tracking
    track_backend: Literal["open3d", "numpy"] = "open3d"   # ICP from the previous pose: Open3D's registration_icp
                                          # (faster for one pose, bench/pose.py) or this package's numpy ICP
    track_iterations: int = 10            # ICP iterations from the previous pose (fewer when converged)
    track_gate_start: float = 0.012       # correspondence gate (max motion per frame; numpy: of the first iteration
    track_gate_end: float = 0.005         # ... shrinking to this one; open3d: the Tukey loss scale)
    max_gap_s: float = 0.5                # previous pose older than this (stamps): re-initialise instead
    max_rotation_step_deg: float = 60.0   # a tracked pose that turned more than this in one frame is not trusted
    # verification: a confident tracked fit that is worse than usual is checked against the global search
    verify_fitness: float = 0.95          # fitness below this ...
    verify_rmse_ratio: float = 1.2        # ... or inlier RMSE above this times its running mean ...
    verify_rotation_deg: float = 15.0     # ... or a turn of more than this in one frame ...
    verify_translation: float = 0.008     # ... or a move of more than this: the best of tracked and searched wins
    # the numpy ICP (the global search's, and tracking with track_backend numpy)
    point_to_point: float = 0.1           # weight of point-to-point next to point-to-plane residuals (keeps views
                                          # of one flat face from sliding along it)
    damping: float = 1e-4                 # Levenberg-Marquardt damping of the normal equations
    tolerance: float = 1e-4               # ICP stops when an update moves the object less than this
    # global re-initialisation (first frame, after a gap, when tracking fails or is verified)
    reinit_resolution_deg: float = 20.0   # spacing of the orientation hypotheses (modulo the object's symmetry)
    reinit_points: int = 128              # points the hypotheses are scored on (an even subset)
    reinit_gates: tuple[tuple[float, ...], ...] = ((0.02, 0.015, 0.01, 0.006), (0.006, 0.004, 0.004))  # per stage
    reinit_keep: tuple[int, ...] = (24, 6)          # distinct hypotheses kept after each stage
    reinit_iterations: int = 20           # ICP iterations of the survivors on all points, the gate shrinking from
    reinit_final_gate: float = 0.003      # the last stage's first to this (they are ranked on inlier_distance)
    ambiguity_margin: float = 0.03        # another orientation whose score is within this of the best (at 256
                                          # points; x sqrt(256 / points) for fewer) ...
    ambiguity_angle_deg: float = 20.0     # ... and differs by more than this (modulo symmetry): ambiguous, LOST;
                                          # after that, a new pose is reported once the next frame agrees
    prior_max_age_s: float = 1.0          # an ambiguous view is resolved by the last reported pose when that is
                                          # at most this old (stamps) ... (0: never)
    prior_angle_deg: float = 30.0         # ... and the tied orientations within this of it (modulo symmetry) agree
                                          # with each other: the best of them is reported

    def __post_init__(self) -> None:
        if self.min_points < 6 or self.max_points < self.min_points or self.reinit_points < 6:
            raise ValueError("need 6 <= min_points <= max_points and reinit_points >= 6")
        if (self.workspace_min is None) != (self.workspace_max is None):
            raise ValueError("give both workspace_min and workspace_max, or neither")
        if self.workspace_min is not None and any(lo >= hi for lo, hi in zip(self.workspace_min,
                                                                              self.workspace_max)):
            raise ValueError(f"workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max}")
        positive = dict(model_voxel=self.model_voxel, model_margin=self.model_margin,
                        coverage_radius=self.coverage_radius, reinit_final_gate=self.reinit_final_gate,
                        inlier_distance=self.inlier_distance, max_rmse=self.max_rmse,
                        track_gate_start=self.track_gate_start, track_gate_end=self.track_gate_end,
                        max_gap_s=self.max_gap_s, reinit_resolution_deg=self.reinit_resolution_deg,
                        max_rotation_step_deg=self.max_rotation_step_deg)
        bad = [k for k, v in positive.items() if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(f"must be positive: {bad}")
        if not 0 < self.min_fitness <= 1 or not 0 <= self.min_coverage <= 1:
            raise ValueError(f"need 0 < min_fitness <= 1 and 0 <= min_coverage <= 1, got {self.min_fitness}, "
                             f"{self.min_coverage}")
        if self.track_iterations < 1 or self.reinit_iterations < 1:
            raise ValueError("track_iterations and reinit_iterations must be >= 1")
        if len(self.reinit_gates) != len(self.reinit_keep) or not self.reinit_gates or \
                any(not g for g in self.reinit_gates) or any(k < 1 for k in self.reinit_keep):
            raise ValueError("reinit_gates and reinit_keep: one non-empty gate list and a count >= 1 per stage")
        if self.point_to_point < 0 or self.damping < 0 or self.tolerance < 0 or self.ambiguity_margin < 0:
            raise ValueError("point_to_point, damping, tolerance and ambiguity_margin must be >= 0")

    def track_params(self) -> IcpParams:
        return IcpParams(gate_schedule(self.track_gate_start, self.track_gate_end, self.track_iterations),
                         self.point_to_point, self.damping, self.tolerance)

    def search_params(self) -> SearchParams:
        final = IcpParams(gate_schedule(self.reinit_gates[-1][0], self.reinit_final_gate, self.reinit_iterations),
                          self.point_to_point, self.damping, self.tolerance)
        return SearchParams(self.reinit_points, self.reinit_gates, self.reinit_keep, self.inlier_distance, final)


def load_tracker_config(path: str | Path | None = None) -> TrackerConfig:
    """config/tracking.yaml (or ``path``); unknown keys are an error."""
    return load_config(TrackerConfig, path or config_path("tracking.yaml"))


@dataclass(frozen=True)
class TrackResult:
    """One frame's outcome. ``pose``/``quaternion``/``position`` are None unless TRACKING."""

    status: TrackStatus
    pose: np.ndarray | None               # (4, 4) palm_from_object
    quaternion: np.ndarray | None         # (4,) wxyz, w >= 0, the symmetry equivalent nearest the previous report
    position: np.ndarray | None           # (3,) m, palm frame
    fitness: float                        # fraction of the points within inlier_distance of the model (nan: no fit)
    inlier_rmse: float                    # m, RMS distance of those points (nan: no fit)
    reason: str                           # what happened / why lost, for people
    reinitialized: bool                   # the pose (or the attempt) came from the global search
    num_points: int                       # points used for the registration
    num_invalid: int                      # NaN/inf points dropped (and points outside the workspace box)
    stamp_ns: int
    timings_ms: dict[str, float] = field(default_factory=dict)   # 'track', 'reinit', 'total'

    @property
    def ok(self) -> bool:
        return self.status is TrackStatus.TRACKING


class PoseTracker:
    """Tracks one object; call :meth:`update` per cloud, :meth:`reset` when the stream restarts."""

    def __init__(self, model: ObjectModel, config: TrackerConfig | None = None):
        self.model = model
        self.config = config or TrackerConfig()
        self.index = ModelIndex(model, self.config.model_voxel, self.config.model_margin)
        self.hypotheses = orientation_hypotheses(model.symmetry, self.config.reinit_resolution_deg)
        self._track_params = self.config.track_params()
        self._search_params = self.config.search_params()
        self.reset()

    def reset(self) -> None:
        """Forget the previous pose and the orientation reference: the next frame starts from scratch."""
        self._rotation: np.ndarray | None = None
        self._translation: np.ndarray | None = None
        self._stamp_ns: int | None = None
        self._reported: np.ndarray | None = None
        self._reported_ns: int | None = None        # stamp of the last TRACKING result
        self._rmse_mean: float | None = None          # running mean of the inlier RMSE while tracking
        self._tentative = False        # after an ambiguous view: a new pose waits for the next frame's agreement

    @property
    def has_pose(self) -> bool:
        return self._rotation is not None

    def update(self, points: np.ndarray, stamp_ns: int, view_point: np.ndarray | None = None) -> TrackResult:
        """Register this frame's object points (N, 3) (palm frame, m); ``view_point``: the camera position."""
        t0 = time.perf_counter()
        cfg = self.config
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got shape {points.shape}")
        if view_point is not None:
            view_point = np.asarray(view_point, dtype=np.float64)
            if view_point.shape != (3,):
                raise ValueError(f"view_point must be (3,), got shape {view_point.shape}")
            if not np.all(np.isfinite(view_point)):
                view_point = None
        elif cfg.view_point is not None:
            view_point = np.asarray(cfg.view_point, dtype=np.float64)
        stamp_ns = int(stamp_ns)
        pts, invalid, notes, problem = self._clean(np.asarray(points, dtype=np.float64))
        if problem is not None:
            return self._lost("; ".join([problem] + notes), len(pts), invalid, stamp_ns, t0)

        timings = {"track": 0.0, "reinit": 0.0}
        reason = ""
        fit = None
        tracked = None              # a confident tracked fit that the global search must beat
        if self._rotation is not None:
            gap_s = (stamp_ns - self._stamp_ns) * 1e-9
            if gap_s < 0 or gap_s > cfg.max_gap_s:
                reason = f"previous pose is {gap_s:.2f} s old (max_gap_s {cfg.max_gap_s})"
            else:
                t1 = time.perf_counter()
                if cfg.track_backend == "open3d":
                    candidate = track_open3d(self.index, pts, self._rotation, self._translation, cfg.track_gate_start,
                                             cfg.track_gate_end, cfg.track_iterations, cfg.inlier_distance)
                else:
                    candidate = track(self.index, pts, self._rotation, self._translation, self._track_params,
                                      cfg.inlier_distance)
                timings["track"] = (time.perf_counter() - t1) * 1e3
                turned = math.degrees(rotation_angle(candidate.rotation, self._rotation))
                problem = self._problem(candidate, pts, view_point)
                if problem is None and turned > cfg.max_rotation_step_deg:
                    problem = f"tracked pose turned {turned:.0f} deg in one frame"
                if problem is not None:
                    reason = f"tracking failed ({problem})"
                else:
                    doubt = self._doubt(candidate, turned, float(np.linalg.norm(candidate.translation -
                                                                                 self._translation)))
                    if doubt is None and self._tentative:
                        doubt = "confirming the pose found after an ambiguous view"
                    if doubt is None:
                        fit = candidate
                    else:
                        tracked, reason = candidate, f"verified ({doubt})"
        if fit is None:
            t2 = time.perf_counter()
            fits = global_search(self.index, pts, self.hypotheses, view_point, self._search_params)
            if tracked is not None:
                fits = sorted(fits + [tracked], key=lambda f: -f.score)
            timings["reinit"] = (time.perf_counter() - t2) * 1e3
            reinitialized = True
            best = fits[0]
            problem = self._problem(best, pts, view_point)
            ambiguity = None if problem else self._ambiguity(fits, len(pts))
            if ambiguity is not None:
                prior = self._resolve_by_prior(fits, len(pts), stamp_ns, pts, view_point)
                if prior is not None:
                    best, ambiguity, self._tentative = prior, None, False
                    reason = "; ".join(r for r in (reason, "ambiguous view resolved by the last pose") if r)
            if problem or ambiguity:
                self._tentative = self._tentative or ambiguity is not None
                reason = "; ".join(r for r in (reason, f"re-initialisation failed ({problem or ambiguity})") if r)
                return self._lost(reason, len(pts), invalid, stamp_ns, t0, timings, best, reinitialized)
            fit = best
            agrees = tracked is not None and (best is tracked or self._apart_deg(best, tracked) <=
                                              cfg.ambiguity_angle_deg)
            if tracked is not None:
                reason += ": tracked pose kept" if best is tracked else ": the search found a better pose"
            else:
                reason = "; ".join(r for r in (reason, "re-initialised") if r)
            if self._tentative and not agrees:
                # one search after ambiguous views may win by chance: hold it until the next frame agrees
                self._rotation, self._translation, self._stamp_ns = best.rotation, best.translation.copy(), stamp_ns
                return self._lost(f"{reason}; after an ambiguous view, waiting for the next frame to confirm",
                                  len(pts), invalid, stamp_ns, t0, timings, best, reinitialized)
            self._tentative = False
        else:
            reinitialized = False
        return self._tracking(fit, reason or "tracking", len(pts), invalid, stamp_ns, t0, timings, reinitialized,
                              notes)

    # ------------------------------------------------------------ helpers
    def _clean(self, pts: np.ndarray) -> tuple[np.ndarray, int, list[str], str | None]:
        """(the distinct finite points in the workspace, at most max_points; how many were dropped; notes;
        why the frame cannot be used, or None)."""
        cfg = self.config
        finite = np.all(np.isfinite(pts), axis=1)
        invalid = int(len(pts) - np.count_nonzero(finite))
        notes = [f"{invalid} NaN/inf points dropped"] if invalid else []
        pts = pts[finite]
        if cfg.workspace_min is not None and len(pts):
            inside = np.all((pts >= cfg.workspace_min) & (pts <= cfg.workspace_max), axis=1)
            outside = int(len(pts) - np.count_nonzero(inside))
            if outside:
                invalid += outside
                notes.append(f"{outside} points outside the workspace box dropped")
                if np.count_nonzero(inside) < cfg.min_points:
                    return pts[inside], invalid, notes, f"object left the workspace ({outside} of {len(pts)} " \
                                                        f"points outside)"
                pts = pts[inside]
        pts = pts[_distinct_rows(pts)]            # a cloud padded to its size by repeating points counts each once
        if len(pts) < cfg.min_points:
            if len(pts) == 0 and invalid:
                return pts, invalid, notes, "no finite points"
            return pts, invalid, notes, f"too few points ({len(pts)} < min_points {cfg.min_points})"
        if len(pts) > cfg.max_points:
            pts = pts[np.linspace(0, len(pts) - 1, cfg.max_points).astype(np.int64)]
        return pts, invalid, notes, None

    def _problem(self, fit: Fit, points: np.ndarray, view_point: np.ndarray | None) -> str | None:
        """Why ``fit`` is not confident, or None."""
        cfg = self.config
        if not fit.fitness >= cfg.min_fitness:
            return f"fitness {fit.fitness:.2f} < {cfg.min_fitness:.2f}"
        if not fit.inlier_rmse <= cfg.max_rmse:
            return f"inlier rmse {fit.inlier_rmse * 1e3:.2f} mm > {cfg.max_rmse * 1e3:.2f} mm"
        if view_point is not None and cfg.min_coverage > 0:
            covered = coverage(self.index, points, fit.rotation, fit.translation, view_point, cfg.inlier_distance,
                               cfg.coverage_radius)
            if covered < cfg.min_coverage:
                return f"the points cover {covered:.2f} < {cfg.min_coverage:.2f} of the model's visible side"
        return None

    def _doubt(self, fit: Fit, turned_deg: float, moved: float) -> str | None:
        """Why a confident tracked fit should still be checked against the global search, or None.

        A fast turn can leave ICP in a wrong minimum that fits a partial view
        almost as well as the right pose (measured on the convex objects:
        fitness 0.8-0.93, RMSE 1.4-2.0 mm, against >= 0.93 and about 1.2 mm
        when right), so a fit worse than this stream's usual one is verified.
        """
        cfg = self.config
        if fit.fitness < cfg.verify_fitness:
            return f"fitness {fit.fitness:.2f} < {cfg.verify_fitness:.2f}"
        if self._rmse_mean is not None and fit.inlier_rmse > cfg.verify_rmse_ratio * self._rmse_mean:
            return f"inlier rmse {fit.inlier_rmse * 1e3:.2f} mm > {cfg.verify_rmse_ratio:.2f} x mean " \
                   f"{self._rmse_mean * 1e3:.2f} mm"
        if turned_deg > cfg.verify_rotation_deg:
            return f"turned {turned_deg:.0f} deg in one frame"
        if moved > cfg.verify_translation:
            return f"moved {moved * 1e3:.0f} mm in one frame"
        return None

    def _ambiguity(self, fits: list[Fit], num_points: int) -> str | None:
        """Another orientation fitting about as well as the best: the view cannot tell them apart.

        The scores are means over the points, so their noise, and the margin,
        grow as 1 / sqrt(points): a small view must win by more.
        """
        cfg = self.config
        best = fits[0]
        margin = cfg.ambiguity_margin * math.sqrt(AMBIGUITY_POINTS / max(num_points, 1))
        for other in fits[1:]:
            if other.score < best.score - margin:
                break
            apart = self._apart_deg(best, other)
            if apart > cfg.ambiguity_angle_deg:
                return f"ambiguous: orientations {apart:.0f} deg apart fit alike (score {best.score:.3f} vs " \
                       f"{other.score:.3f})"
        return None

    def _resolve_by_prior(self, fits: list[Fit], num_points: int, stamp_ns: int, points: np.ndarray,
                          view_point: np.ndarray | None) -> Fit | None:
        """The tied fit that continues the last reported pose, when that is recent and unambiguous, or None.

        The views that tie (a few faces of a hull seen between the fingers) tie orientations 100-180 deg
        apart; an object does not turn that far in a fraction of a second, so the tie is broken by the
        pose reported just before (within prior_angle_deg), as long as every tied orientation near it
        agrees with the others and the chosen fit is confident on its own.
        """
        cfg = self.config
        if cfg.prior_max_age_s <= 0 or self._reported is None or self._reported_ns is None:
            return None
        age_s = (stamp_ns - self._reported_ns) * 1e-9
        if not 0 <= age_s <= cfg.prior_max_age_s:
            return None
        margin = cfg.ambiguity_margin * math.sqrt(AMBIGUITY_POINTS / max(num_points, 1))
        tied = [f for f in fits if f.score >= fits[0].score - margin]
        near = [f for f in tied if math.degrees(self.model.symmetry.distance(matrix_to_quat(f.rotation),
                                                                             self._reported)) <= cfg.prior_angle_deg]
        if not near or any(self._apart_deg(near[0], f) > cfg.ambiguity_angle_deg for f in near[1:]):
            return None
        chosen = near[0]
        return chosen if self._problem(chosen, points, view_point) is None else None

    def _apart_deg(self, a: Fit, b: Fit) -> float:
        """Rotation between two fits, modulo the object's symmetry (degrees)."""
        return math.degrees(self.model.symmetry.distance(matrix_to_quat(a.rotation), matrix_to_quat(b.rotation)))

    def _tracking(self, fit: Fit, reason: str, num_points: int, invalid: int, stamp_ns: int, t0: float,
                  timings: dict[str, float], reinitialized: bool, notes: list[str]) -> TrackResult:
        q = matrix_to_quat(fit.rotation)
        if self._reported is not None:
            q = self.model.symmetry.closest_equivalent(q, self._reported)
        q = q if q[0] >= 0 else -q
        rotation = quat_to_matrix(q)
        self._rotation, self._translation, self._stamp_ns, self._reported = rotation, fit.translation.copy(), \
            stamp_ns, q
        self._reported_ns = stamp_ns
        rmse = fit.inlier_rmse
        self._rmse_mean = rmse if self._rmse_mean is None else 0.9 * self._rmse_mean + 0.1 * rmse
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = rotation, fit.translation
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return TrackResult(TrackStatus.TRACKING, pose, q, fit.translation.copy(), fit.fitness, fit.inlier_rmse,
                           "; ".join([reason] + notes), reinitialized, num_points, invalid, stamp_ns, timings)

    def _lost(self, reason: str, num_points: int, invalid: int, stamp_ns: int, t0: float,
              timings: dict[str, float] | None = None, fit: Fit | None = None,
              reinitialized: bool = False) -> TrackResult:
        timings = dict(timings or {"track": 0.0, "reinit": 0.0})
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return TrackResult(TrackStatus.LOST, None, None, None, fit.fitness if fit else math.nan,
                           fit.inlier_rmse if fit else math.nan, reason, reinitialized, int(num_points), invalid,
                           stamp_ns, timings)


def _distinct_rows(points: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the first occurrence of each distinct row."""
    if len(points) < 2:
        return np.arange(len(points))
    order = np.lexsort(points.T[::-1])
    ordered = points[order]
    first = np.ones(len(points), dtype=bool)
    first[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    return np.sort(order[first])
