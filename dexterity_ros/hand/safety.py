"""The safety filter between policy targets and the hand, and its independent output check.

Every command passes the same three gates: targets must be finite, are
clamped into the joint limits shrunk by a margin, and the command moves at
most ``max_velocity * dt`` per joint per command period (optionally after an
EMA). The filter starts from the *measured* position, so enabling the hand
never jumps; a measured position is trusted only within
``feedback_limit_tolerance`` of the hard joint limits (further out is a
sensor or mapping fault, see :meth:`SafetyLimits.implausible_feedback`), and
the start is clamped into the hard limits. :class:`OutputMonitor` re-checks
every output with separate code: no command ever leaves the hard joint
limits, whatever the state; any violation it counts is a bug, not a tuning
problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config import ConfigError, from_dict, load_yaml
from ..hand_model import HandDescription
from ..paths import config_path


class TargetRejected(ValueError):
    """A target that cannot be made safe by clamping (wrong size, NaN, inf)."""


PER_JOINT_TABLES = ("joint_margin", "max_velocity", "home_pose")   # ROS parameters <table>.<joint>
SCALAR_KEYS = ("limit_margin", "default_max_velocity", "home_velocity_scale", "smoothing",
               "feedback_limit_tolerance")


@dataclass(frozen=True)
class SafetyTables:
    """The safety part of hand_node's parameters; per-joint tables are keyed by joint name."""

    limit_margin: float = 0.03                          # rad kept free at both ends of every joint
    joint_margin: dict[str, float] = field(default_factory=dict)      # per-joint overrides (rad)
    default_max_velocity: float = 1.5                   # rad/s
    max_velocity: dict[str, float] = field(default_factory=dict)      # per-joint overrides (rad/s)
    home_pose: dict[str, float] = field(default_factory=dict)         # every joint (rad)
    home_velocity_scale: float = 0.5                    # homing runs at this fraction of max_velocity
    smoothing: float = 0.0                              # EMA weight of the previous value, [0, 1)
    feedback_limit_tolerance: float = 0.035             # rad a measured joint may read beyond its hard limit

    @classmethod
    def from_parameters(cls, flat: Mapping[str, Any]) -> "SafetyTables":
        """From flat ROS parameter names (``max_velocity.ffj0``); other names are ignored."""
        data: dict[str, Any] = {k: flat[k] for k in SCALAR_KEYS if k in flat}
        for table in PER_JOINT_TABLES:
            prefix = table + "."
            data[table] = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
        return from_dict(cls, data)

    def to_parameters(self) -> dict[str, Any]:
        flat: dict[str, Any] = {k: getattr(self, k) for k in SCALAR_KEYS}
        for table in PER_JOINT_TABLES:
            flat.update({f"{table}.{joint}": value for joint, value in getattr(self, table).items()})
        return flat


def flatten_parameters(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mappings -> dotted ROS parameter names (what --params-file does)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_parameters(value, name))
        else:
            flat[name] = value
    return flat


def load_hand_parameters(path: str | Path | None = None) -> dict[str, Any]:
    """The ``/**: ros__parameters:`` section of a hand parameter file, flattened.

    The packaged ``config/hand.yaml`` is both hand_node's parameter file for
    launch files and the source of its per-joint defaults.
    """
    path = Path(path) if path else config_path("hand.yaml")
    data = load_yaml(path)
    try:
        section = data["/**"]["ros__parameters"]
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: expected a ROS 2 parameter file with a '/**: ros__parameters:' "
                          "section") from None
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: ros__parameters must be a mapping")
    return flatten_parameters(section)


def load_safety_tables(path: str | Path | None = None) -> SafetyTables:
    """Safety tables of a hand parameter file (default: the packaged config/hand.yaml)."""
    try:
        return SafetyTables.from_parameters(load_hand_parameters(path))
    except ConfigError as exc:
        raise ConfigError(f"{path or config_path('hand.yaml')}: {exc}") from None


def _per_joint(hand: HandDescription, table: Mapping[str, float], default: float | None,
               what: str) -> np.ndarray:
    aliases = hand.aliases()
    unknown = sorted(n for n in table if n not in aliases)
    if unknown:
        raise ConfigError(f"{what}: unknown joint name(s) {unknown}; known: {list(hand.joint_names)}")
    values = np.full(hand.num_joints, np.nan if default is None else float(default))
    seen: dict[int, str] = {}
    for name, value in table.items():
        i = aliases[name]
        if i in seen:
            raise ConfigError(f"{what}: joint {hand.joint_names[i]} given twice ({seen[i]}, {name})")
        seen[i] = name
        values[i] = float(value)
    if default is None and np.isnan(values).any():
        missing = [hand.joint_names[i] for i in np.flatnonzero(np.isnan(values))]
        raise ConfigError(f"{what}: missing joint(s) {missing}")
    return values


@dataclass(frozen=True)
class SafetyLimits:
    """Resolved arrays (canonical order) the filter works with."""

    lower: np.ndarray              # joint lower limit + margin
    upper: np.ndarray              # joint upper limit - margin
    max_velocity: np.ndarray       # rad/s
    home: np.ndarray
    home_velocity_scale: float = 0.5
    smoothing: float = 0.0
    hard_lower: np.ndarray | None = None     # the joint limits themselves (None: lower/upper)
    hard_upper: np.ndarray | None = None
    feedback_tolerance: float = 0.035        # rad beyond a hard limit a measurement may read
    joint_names: tuple[str, ...] = ()

    def __post_init__(self):
        if self.hard_lower is None:
            object.__setattr__(self, "hard_lower", np.asarray(self.lower, dtype=np.float64))
        if self.hard_upper is None:
            object.__setattr__(self, "hard_upper", np.asarray(self.upper, dtype=np.float64))
        if not self.joint_names:
            object.__setattr__(self, "joint_names", tuple(f"joint {i}" for i in range(np.size(self.lower))))

    @classmethod
    def from_tables(cls, tables: SafetyTables, hand: HandDescription, velocity_scale: float = 1.0) -> "SafetyLimits":
        margins = _per_joint(hand, tables.joint_margin, tables.limit_margin, "joint_margin")
        if np.any(margins < 0) or np.any(2 * margins >= hand.upper - hand.lower):
            raise ConfigError("limit_margin/joint_margin must be >= 0 and leave part of every joint range free")
        vmax = _per_joint(hand, tables.max_velocity, tables.default_max_velocity, "max_velocity")
        if not np.all(np.isfinite(vmax)) or np.any(vmax <= 0):
            raise ConfigError("max_velocity values must be positive rad/s")
        if not 0 < velocity_scale <= 1:
            raise ConfigError(f"velocity_scale must be in (0, 1], got {velocity_scale}")
        if not 0 < tables.home_velocity_scale <= 1:
            raise ConfigError("home_velocity_scale must be in (0, 1]")
        if not 0 <= tables.smoothing < 1:
            raise ConfigError("smoothing must be in [0, 1)")
        if not 0 <= tables.feedback_limit_tolerance <= 0.2:
            raise ConfigError("feedback_limit_tolerance must be in [0, 0.2] rad")
        lower, upper = hand.lower + margins, hand.upper - margins
        home = _per_joint(hand, tables.home_pose, None, "home_pose")
        outside = [hand.joint_names[i] for i in np.flatnonzero((home < lower) | (home > upper))]
        if outside:
            raise ConfigError(f"home_pose outside the margin-shrunk limits for {outside}")
        return cls(lower, upper, vmax * velocity_scale, home, tables.home_velocity_scale, tables.smoothing,
                   hand.lower.copy(), hand.upper.copy(), float(tables.feedback_limit_tolerance),
                   tuple(hand.joint_names))

    def clamp(self, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self.lower, self.upper)

    def clamp_hard(self, q: np.ndarray) -> np.ndarray:
        """Into the joint limits themselves (where a slightly-out measured start is moved)."""
        return np.clip(q, self.hard_lower, self.hard_upper)

    def implausible_feedback(self, measured: np.ndarray) -> str | None:
        """Why a measured pose cannot be a real hand (None if it can).

        A joint that reads NaN or further than ``feedback_tolerance`` beyond its
        hard limit is a broken encoder, a wrong driver mapping (e.g. a finger
        digit that sends the thumb's readings to the index finger) or a
        corrupted message: commanding from it would command outside the limits.
        """
        q = np.asarray(measured, dtype=np.float64)
        if q.shape != self.hard_lower.shape:
            return f"feedback has {q.size} joints, expected {self.hard_lower.size}"
        tol = self.feedback_tolerance
        bad = np.flatnonzero(~np.isfinite(q) | (q < self.hard_lower - tol) | (q > self.hard_upper + tol))
        if bad.size == 0:
            return None
        parts = [f"{self.joint_names[i]} = {q[i]:.4g} rad (limits [{self.hard_lower[i]:.3f}, "
                 f"{self.hard_upper[i]:.3f}])" for i in bad[:6]]
        more = f" and {bad.size - 6} more" if bad.size > 6 else ""
        return (f"driver feedback outside the joint limits by more than feedback_limit_tolerance {tol:g} rad: "
                + ", ".join(parts) + more)


@dataclass(frozen=True)
class StepResult:
    command: np.ndarray
    rate_limited: int           # joints whose step was cut to the speed limit


class SafetyFilter:
    """Clamp, smooth and rate-limit, starting from the measured position."""

    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self.command: np.ndarray | None = None
        self._smoothed: np.ndarray | None = None

    def check_target(self, q: np.ndarray) -> tuple[np.ndarray, int]:
        """(clamped target, number of joints clamped); TargetRejected if not 16 finite values."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != self.limits.lower.shape:
            raise TargetRejected(f"target must have {self.limits.lower.size} joints, got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            raise TargetRejected("target contains NaN or inf")
        clamped = self.limits.clamp(q)
        return clamped, int(np.count_nonzero(clamped != q))

    def reset(self, measured: np.ndarray) -> None:
        """Start from where the hand is, clamped into the hard limits.

        The start may lie outside the margin box (the command then moves
        inwards at the speed limit); a measurement a little beyond a hard limit
        (within the feedback tolerance, checked by the caller) starts at that limit.
        """
        self.command = self.limits.clamp_hard(np.array(measured, dtype=np.float64))
        self._smoothed = self.limits.clamp(self.command)

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """The filter's state (a simulator saving an episode mid-way), for :meth:`restore`."""
        if self.command is None:
            raise RuntimeError("SafetyFilter.snapshot before reset(measured)")
        return self.command.copy(), self._smoothed.copy()

    def restore(self, snapshot: tuple[np.ndarray, np.ndarray]) -> None:
        command, smoothed = snapshot
        self.command, self._smoothed = np.array(command, dtype=np.float64), np.array(smoothed, dtype=np.float64)

    def hold(self) -> np.ndarray:
        """Keep the last command; the EMA restarts from it so resuming does not jump."""
        self._smoothed = self.limits.clamp(self.command)
        return self.command.copy()

    def step(self, desired: np.ndarray, dt: float, speed_scale: float = 1.0) -> StepResult:
        """Move the command towards ``desired`` (clamped) by at most max_velocity*speed_scale*dt."""
        if self.command is None:
            raise RuntimeError("SafetyFilter.step before reset(measured)")
        goal = self.limits.clamp(np.asarray(desired, dtype=np.float64))
        alpha = self.limits.smoothing
        if alpha > 0:
            self._smoothed = alpha * self._smoothed + (1.0 - alpha) * goal
            goal = self.limits.clamp(self._smoothed)
        max_step = self.limits.max_velocity * (speed_scale * max(dt, 0.0))
        delta = goal - self.command
        limited = np.abs(delta) > max_step
        self.command = self.command + np.clip(delta, -max_step, max_step)
        return StepResult(self.command.copy(), int(np.count_nonzero(limited)))


class OutputMonitor:
    """Independent check of what is sent: inside the margin box and within the speed limit.

    A joint that starts outside the box (measured there at enable) may stay
    outside the box only while it moves towards it, and never outside the
    hard joint limits.
    """

    def __init__(self, limits: SafetyLimits, rel_tol: float = 1e-9, abs_tol: float = 1e-12):
        self.limits = limits
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.previous: np.ndarray | None = None

    def reset(self, measured: np.ndarray) -> None:
        self.previous = np.clip(np.array(measured, dtype=np.float64), self.limits.hard_lower, self.limits.hard_upper)

    def _outside(self, q: np.ndarray) -> np.ndarray:
        return np.maximum(self.limits.lower - q, 0.0) + np.maximum(q - self.limits.upper, 0.0)

    def check(self, command: np.ndarray, dt: float) -> list[str]:
        """Problems with ``command`` (empty if fine); remembers it as the previous command."""
        problems = []
        command = np.asarray(command, dtype=np.float64)
        if command.shape != self.limits.hard_lower.shape or not np.all(np.isfinite(command)):
            problems.append("non-finite command")
            return problems
        beyond = np.flatnonzero((command < self.limits.hard_lower) | (command > self.limits.hard_upper))
        if beyond.size:
            problems.append(f"command outside the hard joint limits on joints "
                            f"{[self.limits.joint_names[i] for i in beyond]}")
        if self.previous is not None:
            step = np.abs(command - self.previous)
            allowed = self.limits.max_velocity * max(dt, 0.0) * (1 + self.rel_tol) + self.abs_tol
            fast = np.flatnonzero(step > allowed)
            if fast.size:
                problems.append(f"speed limit exceeded on joints {fast.tolist()}")
            grew = self._outside(command) > self._outside(self.previous) + self.abs_tol
            outside_now = self._outside(command) > self.abs_tol
            bad = np.flatnonzero(grew & outside_now)
            if bad.size:
                problems.append(f"joint limits (minus margin) left on joints {bad.tolist()}")
        self.previous = command.copy()
        return problems
