"""Rotational symmetry of an object and the symmetry-aware rotation distance.

A depth camera cannot tell a cube from the same cube turned by 90 degrees, so
the tracker's estimate and the goal check must both treat orientations that
differ by a symmetry of the object as the same orientation. A symmetry group
here is a finite set of proper rotations of the object frame (identity first)
and, for solids of revolution, a continuous axis:

* ``none``: identity only;
* ``box``: the three 180-degree turns about the object axes (a cuboid with
  three different sides; 4 rotations);
* ``cube``: the 24 rotations of the cube;
* ``dihedral:N:AXIS``: N turns about AXIS plus the N flips that turn AXIS
  upside down (``square:AXIS`` = ``dihedral:4:AXIS``: a square prism, 8);
* ``cyclic:N:AXIS``: N turns about AXIS only (2N-fold ambiguity never);
* ``revolution:AXIS``: any turn about AXIS (a cone, a bottle);
* ``cylinder:AXIS``: any turn about AXIS and the flip (a cylinder).

AXIS is ``x``, ``y`` or ``z`` of the object frame. Quaternions are (w, x, y,
z); an orientation ``q`` maps object coordinates to the palm frame, and ``q``
and ``q * g`` (g in the group) look the same.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry import axis_angle_to_quat, matrix_to_quat, quat_conjugate, quat_multiply

AXES = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}
_IDENTITY = np.array([[1.0, 0.0, 0.0, 0.0]])


class SymmetryError(ValueError):
    """A symmetry specification that cannot be parsed."""


@dataclass(frozen=True)
class Symmetry:
    """A rotational symmetry group of an object (see the module docstring)."""

    spec: str                                   # the canonical text form, e.g. "cube", "cylinder:z"
    rotations: np.ndarray = field(repr=False)   # (K, 4) discrete part, identity first
    axis: np.ndarray | None = None              # continuous symmetry axis (object frame), or None

    @property
    def is_trivial(self) -> bool:
        return self.axis is None and len(self.rotations) == 1

    @property
    def order(self) -> float:
        """Number of rotations in the group (inf for a continuous one)."""
        return math.inf if self.axis is not None else len(self.rotations)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Smallest rotation angle (rad) between orientation ``a`` and any equivalent of ``b``."""
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if self.axis is not None:
            return _axis_distance(a, b, self.axis, flip=len(self.rotations) > 1)
        candidates = quat_multiply(b[None, :], self.rotations)
        dots = np.abs(candidates @ a) / (np.linalg.norm(a) * np.linalg.norm(b))
        return float(2.0 * math.acos(min(1.0, float(dots.max()))))

    def distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``distance`` for (N, 4) arrays ``a`` and ``b`` (or one of them (4,))."""
        a, b = np.broadcast_arrays(np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64))
        return np.array([self.distance(x, y) for x, y in zip(a, b)])

    def closest_equivalent(self, q: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """The orientation equivalent to ``q`` that is nearest ``reference`` (w >= 0).

        The tracker reports this equivalent so its output does not jump by a
        symmetry from frame to frame, and a goal check against ``reference``
        sees the true remaining rotation.
        """
        q = _unit(q)
        reference = _unit(reference)
        best = q
        if self.axis is not None:
            flips = self.rotations if len(self.rotations) > 1 else _IDENTITY
            best_dot = -1.0
            for flip in flips:
                candidate = quat_multiply(q, flip)
                # r = candidate^-1 * reference; turning candidate by phi about axis maximizes
                # |cos(phi/2) r_w + sin(phi/2) axis.r_v| at phi/2 = atan2(axis.r_v, r_w)
                r = quat_multiply(quat_conjugate(candidate), reference)
                half = math.atan2(float(self.axis @ r[1:]), float(r[0]))
                turned = quat_multiply(candidate, axis_angle_to_quat(self.axis, 2.0 * half))
                dot = abs(float(turned @ reference))
                if dot > best_dot:
                    best, best_dot = turned, dot
        else:
            candidates = quat_multiply(q[None, :], self.rotations)
            best = candidates[int(np.argmax(np.abs(candidates @ reference)))]
        best = best / np.linalg.norm(best)
        return best if best[0] >= 0 else -best

    def equivalents(self, q: np.ndarray, samples: int = 8) -> np.ndarray:
        """Orientations that look like ``q``: the discrete ones, or ``samples`` turns about the axis."""
        q = _unit(q)
        rotations = self.rotations
        if self.axis is not None:
            turns = np.array([axis_angle_to_quat(self.axis, 2 * math.pi * k / samples) for k in range(samples)])
            rotations = quat_multiply(rotations[:, None, :], turns[None, :, :]).reshape(-1, 4)
        return quat_multiply(q[None, :], rotations)


def parse_symmetry(spec: str) -> Symmetry:
    """Build a :class:`Symmetry` from its text form (see the module docstring)."""
    if not isinstance(spec, str):
        raise SymmetryError(f"symmetry must be a string, got {type(spec).__name__}")
    text = spec.strip().lower()
    parts = text.split(":")
    kind = parts[0]
    try:
        if kind == "none" and len(parts) == 1:
            return Symmetry("none", _IDENTITY.copy())
        if kind == "box" and len(parts) == 1:
            return Symmetry("box", _rotation_set([np.eye(3), _turn("x", math.pi), _turn("y", math.pi),
                                                  _turn("z", math.pi)]))
        if kind == "cube" and len(parts) == 1:
            return Symmetry("cube", _cube_rotations())
        if kind in ("square", "revolution", "cylinder") and len(parts) == 2:
            axis = _axis(parts[1])
            if kind == "square":
                return Symmetry(f"square:{parts[1]}", _dihedral(4, parts[1]))
            flips = _dihedral(1, parts[1]) if kind == "cylinder" else _IDENTITY.copy()
            return Symmetry(f"{kind}:{parts[1]}", flips, axis)
        if kind in ("cyclic", "dihedral") and len(parts) == 3:
            n = int(parts[1])
            if not 1 <= n <= 360:
                raise SymmetryError(f"symmetry '{spec}': N must be in [1, 360], got {n}")
            _axis(parts[2])
            rotations = _cyclic(n, parts[2]) if kind == "cyclic" else _dihedral(n, parts[2])
            return Symmetry(f"{kind}:{n}:{parts[2]}", rotations)
    except ValueError as exc:
        if isinstance(exc, SymmetryError):
            raise
        raise SymmetryError(f"symmetry '{spec}': {exc}") from None
    raise SymmetryError(f"unknown symmetry '{spec}': use none, box, cube, square:AXIS, cyclic:N:AXIS, "
                        "dihedral:N:AXIS, revolution:AXIS or cylinder:AXIS (AXIS = x, y or z)")


# ------------------------------------------------------------------ helpers
def _unit(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if q.shape != (4,) or not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"expected a finite non-zero quaternion (w, x, y, z), got {q.tolist()}")
    return q / norm


def _axis(name: str) -> np.ndarray:
    if name not in AXES:
        raise SymmetryError(f"unknown axis '{name}': use x, y or z")
    return AXES[name]


def _turn(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i = "xyz".index(axis)
    j, k = (i + 1) % 3, (i + 2) % 3
    m = np.eye(3)
    m[j, j], m[j, k], m[k, j], m[k, k] = c, -s, s, c
    return m


def _rotation_set(matrices: list[np.ndarray]) -> np.ndarray:
    quats = [matrix_to_quat(np.round(m, 12)) for m in matrices]
    return np.array(quats)


def _cyclic(n: int, axis: str) -> np.ndarray:
    return _rotation_set([_turn(axis, 2 * math.pi * k / n) for k in range(n)])


def _dihedral(n: int, axis: str) -> np.ndarray:
    """N turns about ``axis`` and N half-turns about perpendicular axes (a flip of ``axis``)."""
    perpendicular = "xyz"[("xyz".index(axis) + 1) % 3]
    flip = _turn(perpendicular, math.pi)
    turns = [_turn(axis, 2 * math.pi * k / n) for k in range(n)]
    return _rotation_set(turns + [t @ flip for t in turns])


def _cube_rotations() -> np.ndarray:
    """The 24 signed permutation matrices with determinant +1 (identity first)."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            for row, (col, sign) in enumerate(zip(perm, signs)):
                m[row, col] = sign
            if np.linalg.det(m) > 0:
                mats.append(m)
    mats.sort(key=lambda m: -np.trace(m))             # identity (trace 3) first
    return _rotation_set(mats)


def _axis_distance(a: np.ndarray, b: np.ndarray, axis: np.ndarray, flip: bool) -> float:
    """Angle between the symmetry axis as oriented by a and by b (min with its flip)."""
    from ..geometry import quat_to_matrix

    ua = quat_to_matrix(a / np.linalg.norm(a)) @ axis
    ub = quat_to_matrix(b / np.linalg.norm(b)) @ axis
    cos = float(np.clip(ua @ ub, -1.0, 1.0))
    if flip:
        cos = abs(cos)
    return math.acos(cos)
