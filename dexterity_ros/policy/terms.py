"""Observation terms of contract v2: one entry per term (its parameters, shape, sources, computation).

A policy trained elsewhere (Isaac Lab, IsaacGymEnvs, HORA, MuJoCo Playground)
sees a flat vector assembled from named quantities, each with its own scaling,
frame and quaternion order. Contract v2 lists these as terms; this module is
the one home of what each term means, in the style of Isaac Lab's observation
terms: a parameters dataclass and a function in one registry entry
(:data:`TERM_KINDS`). Pure numpy, no rclpy.

Every term is computed from a :class:`StepRecord` window the runtime keeps
(newest last): the measured joints, the target in force when they were
measured, the previous action, the tracked object pose and the goal. History
terms read older records; after a reset the window is filled with copies of the
first record, so velocities start at zero, previous actions at zero and
previous targets at the measured pose (the upstream reset conventions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from ..config import ConfigError, from_dict
from ..geometry import quat_conjugate, quat_multiply, quat_to_matrix

QuatOrder = Literal["wxyz", "xyzw"]
QuatSign = Literal["as_is", "w_nonnegative", "continuous", "largest_positive"]
# largest_positive: the largest-magnitude component >= 0, the sign a rotation matrix converted by
# pytorch3d-style ``matrix_to_quaternion`` gets (IsaacGymEnvs torch_jit_utils, DeXtreme's wrist-frame poses)
JointScaling = Literal["radians", "unit_limits"]
HistoryOrder = Literal["oldest_first", "newest_first"]
Frame = Literal["palm", "policy"]

# where a term's data comes from; the node refuses to start when a source is not published
SOURCES = ("joint_states", "object_pose", "goal", "object_points")


class TermError(ValueError):
    """A term entry is malformed; the message names the term and the field."""


@dataclass(frozen=True)
class FrameTransform:
    """Pose of the palm in the policy's observation frame: x_policy = R(rotation) x_palm + translation.

    Isaac Lab and IsaacGymEnvs observe the object in the environment frame of a
    hand fixed at a known root pose; Playground in the world frame. Terms with
    ``frame: policy`` are expressed through this transform.
    """

    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class StepRecord:
    """What the runtime knew at one control step (policy joint order, palm frame)."""

    stamp_ns: int
    q: np.ndarray                       # measured joint positions, rad
    prev_target: np.ndarray             # the target in force when q was measured (measured pose after reset)
    prev_action: np.ndarray             # previous raw network output (zeros after reset)
    prev_action_clipped: np.ndarray     # the same after the contract's input clip
    object_position: np.ndarray | None = None   # (3,) m, palm frame
    object_quat: np.ndarray | None = None       # (4,) wxyz, palm frame
    object_stamp_ns: int | None = None
    goal: np.ndarray | None = None              # (4,) wxyz unit, palm frame, w >= 0
    object_points: np.ndarray | None = None     # (N, 3) palm frame


@dataclass
class TermContext:
    """Fixed per runtime: limits in policy order, the frame transform, kinematics for fingertips."""

    lower: np.ndarray
    upper: np.ndarray
    frame: FrameTransform
    fingertips: Callable[[np.ndarray], np.ndarray] | None = None   # policy-order q -> (F, 3) palm frame by finger
    goal_points: Callable[[np.ndarray], np.ndarray] | None = None  # goal wxyz -> (M, 3)
    num_points: int = 0
    quat_memory: dict[str, np.ndarray] = field(default_factory=dict)   # term name -> last emitted quaternion
    current_term: str = ""                                              # set by ObservationTerm.compute

    @property
    def rotation(self) -> np.ndarray:
        return quat_to_matrix(np.asarray(self.frame.rotation_wxyz, dtype=np.float64))


# ------------------------------------------------------------ helpers
def unit_from_limits(q: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """(2q - upper - lower) / (upper - lower): [-1, 1] over the limits (Isaac Lab/IGE ``unscale``)."""
    return (2.0 * q - upper - lower) / (upper - lower)


def limits_from_unit(a: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The inverse: 0.5 (a + 1)(upper - lower) + lower (IGE ``scale``, Isaac Lab ``unscale_transform``)."""
    return 0.5 * (a + 1.0) * (upper - lower) + lower


def _scaled_joints(values: np.ndarray, scaling: str, ctx: TermContext) -> np.ndarray:
    return unit_from_limits(values, ctx.lower, ctx.upper) if scaling == "unit_limits" else values


def _ordered(rows: list[np.ndarray], order: str) -> np.ndarray:
    return np.stack(rows[::-1] if order == "newest_first" else rows)


def _window(records: Sequence[StepRecord], length: int) -> list[StepRecord]:
    return list(records)[-length:]


def _largest_positive(q: np.ndarray) -> np.ndarray:
    """q or -q, whichever has its largest-magnitude component positive (the first one on a tie, as argmax)."""
    return -q if q[int(np.argmax(np.abs(q)))] < 0 else q


def _input_signed(q: np.ndarray, sign: str) -> np.ndarray:
    if sign == "w_nonnegative":
        return -q if q[0] < 0 else q
    if sign == "largest_positive":
        return _largest_positive(q)
    return q


def _quat_out(q_wxyz: np.ndarray, order: str, sign: str, ctx: TermContext) -> np.ndarray:
    q = np.asarray(q_wxyz, dtype=np.float64)
    if sign == "w_nonnegative" and q[0] < 0:
        q = -q
    elif sign == "largest_positive":
        q = _largest_positive(q)
    elif sign == "continuous":
        last = ctx.quat_memory.get(ctx.current_term)     # per term: two terms never share a sign history
        if last is not None and float(np.dot(last, q)) < 0:
            q = -q
        ctx.quat_memory[ctx.current_term] = q
    return q if order == "wxyz" else q[[1, 2, 3, 0]]


def _to_frame(position: np.ndarray, frame: str, ctx: TermContext) -> np.ndarray:
    if frame == "palm":
        return position
    return ctx.rotation @ position + np.asarray(ctx.frame.translation, dtype=np.float64)


def _quat_to_frame(q_wxyz: np.ndarray, frame: str, ctx: TermContext) -> np.ndarray:
    if frame == "palm":
        return q_wxyz
    return quat_multiply(np.asarray(ctx.frame.rotation_wxyz, dtype=np.float64), q_wxyz)


def _require(record: StepRecord, attribute: str, term: str) -> np.ndarray:
    value = getattr(record, attribute)
    if value is None:
        raise TermError(f"term '{term}': no {attribute.replace('_', ' ')} available this step")
    return value


# ------------------------------------------------------ term parameters
@dataclass(frozen=True)
class JointPositions:
    """Measured joint positions, rad or unscaled to [-1, 1] by the policy's limits."""
    scaling: JointScaling = "radians"


@dataclass(frozen=True)
class JointVelocities:
    """Joint velocities estimated by finite differences of measured positions over their stamps, times scale."""
    scale: float = 1.0


@dataclass(frozen=True)
class JointPositionHistory:
    """Last ``length`` measured positions including the current one."""
    length: int = 1
    scaling: JointScaling = "radians"
    order: HistoryOrder = "oldest_first"


@dataclass(frozen=True)
class PreviousTargets:
    """Targets in force at the last ``length`` steps (the measured pose after a reset)."""
    length: int = 1
    scaling: JointScaling = "radians"
    order: HistoryOrder = "oldest_first"


@dataclass(frozen=True)
class PreviousActions:
    """Last ``length`` network outputs (raw, or after the action's input clip); zeros after a reset."""
    length: int = 1
    clipped: bool = False
    order: HistoryOrder = "oldest_first"


@dataclass(frozen=True)
class JointTrackingError:
    """Measured position minus the target in force, over ``length`` steps (Playground's qpos error)."""
    length: int = 1
    order: HistoryOrder = "newest_first"


@dataclass(frozen=True)
class ProprioceptiveHistory:
    """Per step, the listed quantities side by side, over ``length`` steps (HORA: unit q, target in rad)."""
    length: int = 1
    fields: tuple[str, ...] = ("joint_positions:unit_limits", "previous_targets:radians")
    order: HistoryOrder = "oldest_first"


@dataclass(frozen=True)
class FingertipPositions:
    """Fingertip positions by forward kinematics of the measured joints (fingers in the given order)."""
    fingers: tuple[str, ...] = ("ff", "mf", "rf", "th")
    frame: Frame = "palm"


@dataclass(frozen=True)
class ObjectPosition:
    """Tracked object position; ``origin`` is subtracted (``object_minus_origin``) or the reverse."""
    frame: Frame = "palm"
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: Literal["object_minus_origin", "origin_minus_object"] = "object_minus_origin"


@dataclass(frozen=True)
class ObjectOrientation:
    """Tracked object orientation as a quaternion in the stated order and sign convention."""
    frame: Frame = "palm"
    order: QuatOrder = "wxyz"
    sign: QuatSign = "as_is"


@dataclass(frozen=True)
class ObjectLinearVelocity:
    """Object velocity by finite differences of tracked positions over their stamps, times scale."""
    frame: Frame = "palm"
    scale: float = 1.0


@dataclass(frozen=True)
class ObjectAngularVelocity:
    """Object angular velocity (rad/s) from consecutive tracked orientations, times scale."""
    frame: Frame = "palm"
    scale: float = 1.0


@dataclass(frozen=True)
class GoalOrientation:
    """Goal orientation as a quaternion in the stated order and sign convention."""
    frame: Frame = "palm"
    order: QuatOrder = "wxyz"
    sign: QuatSign = "w_nonnegative"


@dataclass(frozen=True)
class QuaternionDifference:
    """q_object * conj(q_goal) (Isaac Lab/IGE ``quat_diff``), in the stated order.

    ``input_sign`` signs both factors before the product (``as_is``, ``w_nonnegative`` or
    ``largest_positive``): upstream multiplies the quaternions its own observation carries, so the
    product's sign follows theirs (DeXtreme: both from ``matrix_to_quaternion``).
    """
    frame: Frame = "palm"
    order: QuatOrder = "wxyz"
    sign: QuatSign = "as_is"
    input_sign: QuatSign = "as_is"

    def __post_init__(self) -> None:
        if self.input_sign == "continuous":
            raise TermError("quaternion_difference: input_sign 'continuous' is not supported (the factors keep no "
                            "history); use as_is, w_nonnegative or largest_positive")


@dataclass(frozen=True)
class OrientationErrorMatrix:
    """Rows of R(q_object * conj(q_goal)), flattened (Playground: rows 1 and 2, i.e. ravel()[3:])."""
    rows: tuple[int, ...] = (1, 2)
    frame: Frame = "palm"


@dataclass(frozen=True)
class ObjectPoints:
    """The segmented object cloud, palm frame, (N, 3)."""
    num_points: int = 512


@dataclass(frozen=True)
class GoalPoints:
    """The object's canonical points rotated to the goal orientation, (M, 3)."""
    num_points: int = 0


@dataclass(frozen=True)
class Constant:
    """Fixed values the policy saw (e.g. Isaac Lab's goal position, a constant in its env frame)."""
    values: tuple[float, ...] = ()


PROPRIO_QUANTITIES = ("joint_positions", "previous_targets", "previous_actions")


def _proprio_fields(params: ProprioceptiveHistory) -> list[tuple[str, str]]:
    out = []
    for entry in params.fields:
        quantity, _, scaling = entry.partition(":")
        scaling = scaling or "radians"
        if quantity not in PROPRIO_QUANTITIES:
            raise TermError(f"field '{entry}': quantity must be one of {list(PROPRIO_QUANTITIES)}")
        if scaling not in ("radians", "unit_limits", "raw"):
            raise TermError(f"field '{entry}': scaling must be radians, unit_limits (joints) or raw (actions)")
        out.append((quantity, scaling))
    return out


# ------------------------------------------------------- computations
def _c_joint_positions(p: JointPositions, recs, ctx):
    return _scaled_joints(recs[-1].q, p.scaling, ctx)


def _c_joint_velocities(p: JointVelocities, recs, ctx):
    now, before = recs[-1], recs[-2] if len(recs) > 1 else recs[-1]
    dt = (now.stamp_ns - before.stamp_ns) * 1e-9
    return (now.q - before.q) / dt * p.scale if dt > 0 else np.zeros_like(now.q)


def _c_joint_position_history(p: JointPositionHistory, recs, ctx):
    return _ordered([_scaled_joints(r.q, p.scaling, ctx) for r in _window(recs, p.length)], p.order)


def _c_previous_targets(p: PreviousTargets, recs, ctx):
    return _ordered([_scaled_joints(r.prev_target, p.scaling, ctx) for r in _window(recs, p.length)], p.order)


def _c_previous_actions(p: PreviousActions, recs, ctx):
    key = "prev_action_clipped" if p.clipped else "prev_action"
    return _ordered([getattr(r, key) for r in _window(recs, p.length)], p.order)


def _c_joint_tracking_error(p: JointTrackingError, recs, ctx):
    return _ordered([r.q - r.prev_target for r in _window(recs, p.length)], p.order)


def _c_proprioceptive_history(p: ProprioceptiveHistory, recs, ctx):
    fields = _proprio_fields(p)
    rows = []
    for r in _window(recs, p.length):
        parts = []
        for quantity, scaling in fields:
            if quantity == "previous_actions":
                parts.append(r.prev_action)
            else:
                value = r.q if quantity == "joint_positions" else r.prev_target
                parts.append(_scaled_joints(value, scaling, ctx))
        rows.append(np.concatenate(parts))
    return _ordered(rows, p.order)


def _c_fingertip_positions(p: FingertipPositions, recs, ctx):
    tips = ctx.fingertips(recs[-1].q)   # (F, 3) in the hand's finger order
    return np.concatenate([_to_frame(tips[i], p.frame, ctx) for i in _finger_rows(p.fingers)])


_HAND_FINGERS = ("ff", "mf", "rf", "th")


def _finger_rows(fingers: Sequence[str]) -> list[int]:
    return [_HAND_FINGERS.index(f) for f in fingers]


def _c_object_position(p: ObjectPosition, recs, ctx):
    pos = _to_frame(_require(recs[-1], "object_position", "object_position"), p.frame, ctx)
    origin = np.asarray(p.origin, dtype=np.float64)
    return pos - origin if p.direction == "object_minus_origin" else origin - pos


def _c_object_orientation(p: ObjectOrientation, recs, ctx, name="object_orientation"):
    q = _quat_to_frame(_require(recs[-1], "object_quat", name), p.frame, ctx)
    return _quat_out(q, p.order, p.sign, ctx)


def _c_object_linear_velocity(p: ObjectLinearVelocity, recs, ctx):
    now, before = recs[-1], recs[-2] if len(recs) > 1 else recs[-1]
    a = _to_frame(_require(now, "object_position", "object_linear_velocity"), p.frame, ctx)
    b = _to_frame(_require(before, "object_position", "object_linear_velocity"), p.frame, ctx)
    dt = ((now.object_stamp_ns or 0) - (before.object_stamp_ns or 0)) * 1e-9
    return (a - b) / dt * p.scale if dt > 0 else np.zeros(3)


def _c_object_angular_velocity(p: ObjectAngularVelocity, recs, ctx):
    now, before = recs[-1], recs[-2] if len(recs) > 1 else recs[-1]
    qa = _quat_to_frame(_require(now, "object_quat", "object_angular_velocity"), p.frame, ctx)
    qb = _quat_to_frame(_require(before, "object_quat", "object_angular_velocity"), p.frame, ctx)
    dt = ((now.object_stamp_ns or 0) - (before.object_stamp_ns or 0)) * 1e-9
    if dt <= 0:
        return np.zeros(3)
    delta = quat_multiply(qa, quat_conjugate(qb))      # rotation from before to now, in the (space) frame
    if delta[0] < 0:
        delta = -delta
    vec = delta[1:]
    sin_half = float(np.linalg.norm(vec))
    angle = 2.0 * math.atan2(sin_half, float(delta[0]))
    axis = vec / sin_half if sin_half > 1e-12 else np.zeros(3)
    return axis * angle / dt * p.scale


def _c_goal_orientation(p: GoalOrientation, recs, ctx):
    q = _quat_to_frame(_require(recs[-1], "goal", "goal_orientation"), p.frame, ctx)
    return _quat_out(q, p.order, p.sign, ctx)


def _object_goal_delta(frame: str, recs, name: str, ctx, input_sign: str = "as_is") -> np.ndarray:
    q_obj = _input_signed(_quat_to_frame(_require(recs[-1], "object_quat", name), frame, ctx), input_sign)
    q_goal = _input_signed(_quat_to_frame(_require(recs[-1], "goal", name), frame, ctx), input_sign)
    return quat_multiply(q_obj, quat_conjugate(q_goal))


def _c_quaternion_difference(p: QuaternionDifference, recs, ctx):
    delta = _object_goal_delta(p.frame, recs, "quaternion_difference", ctx, p.input_sign)
    return _quat_out(delta, p.order, p.sign, ctx)


def _c_orientation_error_matrix(p: OrientationErrorMatrix, recs, ctx):
    matrix = quat_to_matrix(_object_goal_delta(p.frame, recs, "orientation_error_matrix", ctx))
    return matrix[list(p.rows)].ravel()


def _c_object_points(p: ObjectPoints, recs, ctx):
    return _require(recs[-1], "object_points", "object_points")


def _c_goal_points(p: GoalPoints, recs, ctx):
    return ctx.goal_points(_require(recs[-1], "goal", "goal_points"))


def _c_constant(p: Constant, recs, ctx):
    return np.asarray(p.values, dtype=np.float64)


# --------------------------------------------------------------- registry
@dataclass(frozen=True)
class TermKind:
    params: type
    compute: Callable[[Any, Sequence[StepRecord], TermContext], np.ndarray]
    shape: Callable[[Any, int], tuple[int, ...]]      # (params, num_joints) -> per-sample shape
    sources: tuple[str, ...]
    window: Callable[[Any], int] = lambda p: 1        # records needed (newest last)


def _length(p) -> int:
    return int(p.length)


TERM_KINDS: dict[str, TermKind] = {
    "joint_positions": TermKind(JointPositions, _c_joint_positions, lambda p, j: (j,), ("joint_states",)),
    "joint_velocities": TermKind(JointVelocities, _c_joint_velocities, lambda p, j: (j,), ("joint_states",),
                                 lambda p: 2),
    "joint_position_history": TermKind(JointPositionHistory, _c_joint_position_history,
                                       lambda p, j: (p.length, j), ("joint_states",), _length),
    "previous_targets": TermKind(PreviousTargets, _c_previous_targets, lambda p, j: (p.length, j),
                                 ("joint_states",), _length),
    "previous_actions": TermKind(PreviousActions, _c_previous_actions, lambda p, j: (p.length, j),
                                 ("joint_states",), _length),
    "joint_tracking_error": TermKind(JointTrackingError, _c_joint_tracking_error, lambda p, j: (p.length, j),
                                     ("joint_states",), _length),
    "proprioceptive_history": TermKind(ProprioceptiveHistory, _c_proprioceptive_history,
                                       lambda p, j: (p.length, j * len(p.fields)), ("joint_states",), _length),
    "fingertip_positions": TermKind(FingertipPositions, _c_fingertip_positions,
                                    lambda p, j: (3 * len(p.fingers),), ("joint_states",)),
    "object_position": TermKind(ObjectPosition, _c_object_position, lambda p, j: (3,), ("object_pose",)),
    "object_orientation": TermKind(ObjectOrientation, _c_object_orientation, lambda p, j: (4,), ("object_pose",)),
    "object_linear_velocity": TermKind(ObjectLinearVelocity, _c_object_linear_velocity, lambda p, j: (3,),
                                       ("object_pose",), lambda p: 2),
    "object_angular_velocity": TermKind(ObjectAngularVelocity, _c_object_angular_velocity, lambda p, j: (3,),
                                        ("object_pose",), lambda p: 2),
    "goal_orientation": TermKind(GoalOrientation, _c_goal_orientation, lambda p, j: (4,), ("goal",)),
    "quaternion_difference": TermKind(QuaternionDifference, _c_quaternion_difference, lambda p, j: (4,),
                                      ("object_pose", "goal")),
    "orientation_error_matrix": TermKind(OrientationErrorMatrix, _c_orientation_error_matrix,
                                         lambda p, j: (3 * len(p.rows),), ("object_pose", "goal")),
    "object_points": TermKind(ObjectPoints, _c_object_points, lambda p, j: (p.num_points, 3), ("object_points",)),
    "goal_points": TermKind(GoalPoints, _c_goal_points, lambda p, j: (p.num_points, 3), ("goal",)),
    "constant": TermKind(Constant, _c_constant, lambda p, j: (len(p.values),), ()),
}


@dataclass(frozen=True)
class ObservationTerm:
    """One named term: its kind and that kind's parameters."""

    name: str
    kind: str
    params: Any

    @property
    def entry(self) -> TermKind:
        return TERM_KINDS[self.kind]

    def shape(self, num_joints: int) -> tuple[int, ...]:
        return tuple(self.entry.shape(self.params, num_joints))

    def size(self, num_joints: int) -> int:
        return int(np.prod(self.shape(num_joints)))

    @property
    def sources(self) -> tuple[str, ...]:
        return self.entry.sources

    @property
    def window(self) -> int:
        return int(self.entry.window(self.params))

    def compute(self, records: Sequence[StepRecord], ctx: TermContext) -> np.ndarray:
        ctx.current_term = self.name
        return np.asarray(self.entry.compute(self.params, records, ctx), dtype=np.float64)

    def to_mapping(self) -> dict[str, Any]:
        from ..config import to_dict
        return {"name": self.name, "kind": self.kind, **to_dict(self.params)}

    def describe(self) -> str:
        from ..config import to_dict
        params = ", ".join(f"{k}={v}" for k, v in to_dict(self.params).items()
                           if not (k == "values" and len(v) > 6))
        return f"{self.kind}({params})" if params else self.kind


def parse_term(data: Any, where: str) -> ObservationTerm:
    """``{name, kind, **params}`` -> ObservationTerm; unknown kinds/keys are errors naming the place."""
    if not isinstance(data, Mapping):
        raise TermError(f"{where}: expected a mapping with 'name' and 'kind', got {type(data).__name__}")
    data = dict(data)
    name, kind = data.pop("name", None), data.pop("kind", None)
    if not isinstance(name, str) or not name:
        raise TermError(f"{where}.name: missing or empty")
    if kind not in TERM_KINDS:
        raise TermError(f"{where} ('{name}').kind: {kind!r} is not one of {sorted(TERM_KINDS)}")
    try:
        params = from_dict(TERM_KINDS[kind].params, data, f"{where} ('{name}')")
    except ConfigError as exc:
        raise TermError(str(exc)) from None
    _validate_params(kind, params, f"{where} ('{name}')")
    return ObservationTerm(name, kind, params)


def _validate_params(kind: str, p: Any, where: str) -> None:
    if hasattr(p, "length") and p.length < 1:
        raise TermError(f"{where}.length: must be >= 1, got {p.length}")
    if hasattr(p, "scale") and not (math.isfinite(p.scale) and p.scale != 0):
        raise TermError(f"{where}.scale: must be finite and non-zero, got {p.scale}")
    if kind == "proprioceptive_history":
        if not p.fields:
            raise TermError(f"{where}.fields: empty")
        try:
            _proprio_fields(p)
        except TermError as exc:
            raise TermError(f"{where}.fields: {exc}") from None
    if kind == "fingertip_positions":
        bad = [f for f in p.fingers if f not in _HAND_FINGERS]
        if bad or not p.fingers:
            raise TermError(f"{where}.fingers: {list(p.fingers)} must be a non-empty list of {list(_HAND_FINGERS)}")
    if kind == "orientation_error_matrix":
        if not p.rows or any(r not in (0, 1, 2) for r in p.rows):
            raise TermError(f"{where}.rows: {list(p.rows)} must be rows 0..2")
    if kind in ("object_points", "goal_points") and p.num_points < 1:
        raise TermError(f"{where}.num_points: must be >= 1, got {p.num_points}")
    if kind == "constant":
        if not p.values or not all(math.isfinite(v) for v in p.values):
            raise TermError(f"{where}.values: must be a non-empty list of finite numbers")
    for attr in ("origin",):
        if hasattr(p, attr) and not all(math.isfinite(v) for v in getattr(p, attr)):
            raise TermError(f"{where}.{attr}: NaN or inf")
