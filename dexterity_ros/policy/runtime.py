"""The student's runtime core: contract checks, observation building, inference, action -> target.

The SAME object runs inside ``student_node`` and inside the simulator when it
records a policy's actions offline: :meth:`PolicyRuntime.step` takes plain
arrays (palm-frame points, canonical joint positions, goal quaternion, stamp)
and is deterministic, so the two give bit-identical targets for the same
inputs. No rclpy, no torch: numpy + onnxruntime only.
"""
from __future__ import annotations

import collections
import enum
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..geometry import TransformError, quat_normalize, quat_to_matrix
from ..hand_model import HandDescription, default_hand
from .contract import (HISTORY_INPUTS, ContractError, GraphTensor, PolicyContract, PolicyError,
                       canonical_points_hash, check_default_pose, check_graph_io, check_perception,
                       contract_from_metadata, joint_permutation, mismatch)

_ORT_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
               "tensor(int32)": "int32", "tensor(float16)": "float16", "tensor(bool)": "bool"}


class GoalError(ValueError):
    """A goal quaternion that cannot be used (zero norm, NaN or inf)."""


@dataclass(frozen=True)
class RuntimeOptions:
    """Knobs that are not part of the contract (the node maps its parameters onto these)."""

    intra_op_threads: int = 1            # onnxruntime threads; keep equal in sim and on the robot for bit-parity
    reset_after_gap_s: float = 0.5       # inputs further apart than this reset history / recurrent state
    allow_config_mismatch: bool = False  # run although the perception config differs from the contract's


class StepStatus(enum.Enum):
    ACTION = "action"
    BAD_POINTS = "bad_points"
    BAD_JOINTS = "bad_joints"
    BAD_GOAL = "bad_goal"
    BAD_POSE = "bad_pose"
    NAN_OUTPUT = "nan_output"
    BAD_OUTPUT = "bad_output"


@dataclass(frozen=True)
class StepOutput:
    """A canonical-order joint target (rad) or ``None`` with the reason."""

    target: np.ndarray | None
    reason: str
    status: StepStatus
    action: np.ndarray | None = None        # raw network output, policy (contract) joint order
    reset_reason: str | None = None         # set when history/recurrent state were reset before this step
    inference_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.target is not None


def normalize_goal(goal_wxyz) -> np.ndarray:
    """Unit quaternion (w, x, y, z) with w >= 0, or GoalError naming what is wrong."""
    q = np.asarray(goal_wxyz, dtype=np.float64)
    if q.shape != (4,):
        raise GoalError(f"goal quaternion must have 4 components (w, x, y, z), got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise GoalError(f"goal quaternion contains NaN or inf: {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if norm < 1e-6:
        raise GoalError(f"goal quaternion has zero norm ({norm:.3g}): {q.tolist()}")
    try:
        q = quat_normalize(q)
    except TransformError as exc:
        raise GoalError(str(exc)) from None
    return q if q[0] >= 0 else -q


def load_point_set(path: str | Path) -> np.ndarray:
    """An object's canonical point set: ``.npy`` (M, 3) metres in the object frame."""
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"canonical point set not found: {path}")
    try:
        points = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise PolicyError(f"{path}: not a .npy point set ({exc})") from None
    if points.ndim != 2 or points.shape[1] != 3 or not np.all(np.isfinite(points)):
        raise PolicyError(f"{path}: canonical points must be finite (M, 3), got shape {points.shape}")
    return points.astype(np.float32)


def make_session(model: str | Path | bytes, intra_op_threads: int = 1) -> ort.InferenceSession:
    """Deterministic CPU session (sequential, fixed thread count)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(intra_op_threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.use_deterministic_compute = True
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    if not isinstance(model, bytes) and not Path(model).is_file():
        raise PolicyError(f"model file not found: {model}")
    try:
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
        label = "model bytes" if isinstance(model, bytes) else str(model)
        raise PolicyError(f"{label}: onnxruntime cannot load it as an ONNX model ({exc})") from None


def session_io(session: ort.InferenceSession) -> tuple[list[GraphTensor], list[GraphTensor]]:
    def convert(args):
        return [GraphTensor(a.name, tuple(a.shape), _ORT_DTYPES.get(a.type, a.type)) for a in args]
    return convert(session.get_inputs()), convert(session.get_outputs())


class PolicyRuntime:
    """Loads a student, validates its contract against hand/config, and steps it.

    Construction raises :class:`PolicyError` / :class:`ContractError` for every
    mismatch, so a caller that swaps models (parameter reload) builds the new
    runtime first and keeps the old one if that fails.
    """

    def __init__(self, model: str | Path | bytes, *, hand: HandDescription | None = None,
                 options: RuntimeOptions = RuntimeOptions(), perception=None,
                 goal_points: np.ndarray | None = None):
        self.source = "model bytes" if isinstance(model, bytes) else str(model)
        self.options = options
        self.hand = hand or default_hand()
        if options.intra_op_threads < 1:
            raise PolicyError(f"intra_op_threads must be >= 1, got {options.intra_op_threads}")
        self.session = make_session(model, options.intra_op_threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.contract: PolicyContract = contract_from_metadata(meta, self.source)
        graph_in, graph_out = session_io(self.session)
        check_graph_io(self.contract, graph_in, graph_out)
        c = self.contract
        self.canonical_index = joint_permutation(c, self.hand)
        check_default_pose(c, self.hand, self.canonical_index)
        self.warnings: list[str] = []
        if perception is None:
            from ..perception import load_perception_config
            perception = load_perception_config()
        problems = check_perception(c, perception)
        if problems and not options.allow_config_mismatch:
            raise problems[0]
        self.warnings += [f"{p} (allowed by allow_config_mismatch)" for p in problems]
        self._goal_points_canonical = self._check_goal_points(goal_points)

        self.joint_names = self.hand.joint_names                     # canonical output order
        self._lower = self.hand.lower[self.canonical_index]          # policy order
        self._upper = self.hand.upper[self.canonical_index]
        self._scale = np.asarray(c.action_scale, dtype=np.float64)
        self._default = np.asarray(c.default_joint_pos, dtype=np.float64)
        self._norm = {s.name: (np.asarray(s.normalization.mean, np.float32), np.asarray(s.normalization.std, np.float32))
                      for s in c.inputs if s.normalization.kind == "mean_std"}
        self._output_names = [o.name for o in c.outputs]
        self._action_name = c.action_output().name
        self._gap_ns = int(round(options.reset_after_gap_s * 1e9))
        self.control_period_ns = int(round(1e9 / c.control_rate_hz))
        self.last_inputs: dict[str, np.ndarray] | None = None
        self._goal_cache: tuple[bytes, np.ndarray] | None = None
        self._initialized = False
        self._pending_reset = "first step"
        self._last_stamp_ns: int | None = None
        self._last_goal: np.ndarray | None = None
        self._prev_target: np.ndarray | None = None
        self._history: dict[str, collections.deque] = {}
        self._recurrent: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------- checks
    def _check_goal_points(self, goal_points: np.ndarray | None) -> np.ndarray | None:
        goal = self.contract.goal
        if goal.representation != "object_points":
            return None
        if goal_points is None:
            raise ContractError("goal.representation", "contract asks for 'object_points' (the object's canonical "
                                "points at the goal orientation) but no canonical point set was given "
                                "(parameter goal_points_path)")
        points = np.asarray(goal_points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ContractError("goal.num_points", f"canonical point set must be (M, 3), got {points.shape}")
        if points.shape[0] != goal.num_points:
            raise mismatch("goal.num_points", goal.num_points, "the canonical point set", points.shape[0])
        if goal.canonical_points_sha256:
            actual = canonical_points_hash(points)
            if actual != goal.canonical_points_sha256:
                raise mismatch("goal.canonical_points_sha256", goal.canonical_points_sha256,
                               "the canonical point set given", actual)
        return points

    # -------------------------------------------------------------- state
    def reset(self, reason: str = "reset requested") -> None:
        """Forget history and recurrent state; the next step starts a fresh episode."""
        self._initialized = False
        self._pending_reset = reason

    def _start_episode(self, q_policy: np.ndarray) -> None:
        c = self.contract
        self._prev_target = q_policy.copy()
        self._history = {}
        for spec in c.inputs:
            if spec.meaning in HISTORY_INPUTS:
                if spec.meaning == "action_history":
                    fill = np.zeros(c.num_joints, dtype=np.float32)
                else:   # measured pose: what the hand holds before the first action
                    fill = q_policy.astype(np.float32)
                self._history[spec.meaning] = collections.deque(
                    [fill.copy() for _ in range(c.history.length)], maxlen=c.history.length)
        shapes = {s.name: tuple(s.shape) for s in c.inputs}
        self._recurrent = {pair.input: np.full(shapes[pair.input], pair.initial_value, dtype=np.float32)
                           for pair in c.recurrent_state}
        self._initialized = True

    def _reset_reason(self, goal: np.ndarray, stamp_ns: int) -> str | None:
        if not self._initialized:
            return self._pending_reset
        if self._last_goal is not None and not np.array_equal(goal, self._last_goal):
            return "new goal"
        if self._last_stamp_ns is not None:
            dt = stamp_ns - self._last_stamp_ns
            if dt < 0:
                return f"input time went backwards by {-dt / 1e9:.3f} s"
            if dt > self._gap_ns:
                return f"gap of {dt / 1e9:.3f} s in inputs (reset_after_gap {self.options.reset_after_gap_s:g} s)"
        return None

    # --------------------------------------------------------------- step
    def goal_points(self, goal: np.ndarray) -> np.ndarray:
        """The canonical point set rotated into the goal orientation (float32, (M, 3))."""
        key = goal.tobytes()
        if self._goal_cache is None or self._goal_cache[0] != key:
            rotated = self._goal_points_canonical.astype(np.float64) @ quat_to_matrix(goal).T
            self._goal_cache = (key, rotated.astype(np.float32))
        return self._goal_cache[1]

    def step(self, points_palm: np.ndarray, joint_positions: np.ndarray, goal_wxyz, stamp_ns: int) -> StepOutput:
        """One control step: (N, 3) palm-frame points, canonical joint positions (rad), goal, stamp."""
        c = self.contract
        points = np.asarray(points_palm, dtype=np.float32)
        need = c.point_cloud.num_points
        if points.ndim != 2 or points.shape[1] != 3:
            return StepOutput(None, f"point cloud must be (N, 3), got shape {points.shape}", StepStatus.BAD_POINTS)
        if points.shape[0] != need:
            relation = "fewer than" if points.shape[0] < need else "more than"
            return StepOutput(None, f"point cloud has {points.shape[0]} points, {relation} the "
                              f"{need} the contract needs (point_cloud.num_points)", StepStatus.BAD_POINTS)
        bad = int(np.count_nonzero(~np.all(np.isfinite(points), axis=1)))
        if bad:
            return StepOutput(None, f"point cloud has {bad} points with NaN or inf", StepStatus.BAD_POINTS)
        q = np.asarray(joint_positions, dtype=np.float64)
        if q.shape != (self.hand.num_joints,):
            return StepOutput(None, f"joint positions must be canonical ({self.hand.num_joints},), got {q.shape}",
                              StepStatus.BAD_JOINTS)
        if not np.all(np.isfinite(q)):
            return StepOutput(None, "joint positions contain NaN or inf", StepStatus.BAD_JOINTS)
        try:
            goal = normalize_goal(goal_wxyz)
        except GoalError as exc:
            return StepOutput(None, str(exc), StepStatus.BAD_GOAL)

        q_policy = q[self.canonical_index]
        reset_reason = self._reset_reason(goal, int(stamp_ns))
        if reset_reason is not None:
            self._start_episode(q_policy)
        feeds = self._feeds(points, q_policy, goal)
        self.last_inputs = feeds

        t0 = time.perf_counter()
        try:
            outputs = dict(zip(self._output_names, self.session.run(self._output_names, feeds)))
        except Exception as exc:  # onnxruntime error types; never crash the caller
            self.reset("previous inference failed")
            return StepOutput(None, f"inference failed: {exc}", StepStatus.BAD_OUTPUT, reset_reason=reset_reason)
        inference_ms = (time.perf_counter() - t0) * 1e3

        nonfinite = [name for name, value in outputs.items() if not np.all(np.isfinite(value))]
        if nonfinite:
            self.reset("previous step produced a non-finite output")
            return StepOutput(None, f"policy output {nonfinite} contains NaN or inf; nothing forwarded, "
                              "state reset", StepStatus.NAN_OUTPUT, reset_reason=reset_reason,
                              inference_ms=inference_ms)
        action = outputs[self._action_name]
        if action.shape != (1, c.num_joints):
            self.reset("previous step produced a malformed output")
            return StepOutput(None, f"output '{self._action_name}' has shape {list(action.shape)}, contract "
                              f"says [1, {c.num_joints}]", StepStatus.BAD_OUTPUT, reset_reason=reset_reason,
                              inference_ms=inference_ms)
        action = action[0].astype(np.float32)
        target_policy = self._action_to_target(action.astype(np.float64), q_policy)

        # commit the step
        self._prev_target = target_policy
        if "action_history" in self._history:
            self._history["action_history"].append(action.copy())
        if "target_history" in self._history:
            self._history["target_history"].append(target_policy.astype(np.float32))
        for pair in c.recurrent_state:
            self._recurrent[pair.input] = outputs[pair.output].astype(np.float32)
        self._last_stamp_ns = int(stamp_ns)
        self._last_goal = goal

        target = np.empty(self.hand.num_joints, dtype=np.float64)
        target[self.canonical_index] = target_policy
        return StepOutput(target, "ok", StepStatus.ACTION, action=action, reset_reason=reset_reason,
                          inference_ms=inference_ms)

    def _feeds(self, points: np.ndarray, q_policy: np.ndarray, goal: np.ndarray) -> dict[str, np.ndarray]:
        c = self.contract
        q32 = q_policy.astype(np.float32)
        if "joint_position_history" in self._history:
            self._history["joint_position_history"].append(q32.copy())
        feeds: dict[str, np.ndarray] = {}
        for spec in c.inputs:
            m = spec.meaning
            if m == "object_points":
                x = points[None]
            elif m == "joint_positions":
                x = q32[None]
            elif m in HISTORY_INPUTS:
                x = np.stack(list(self._history[m]))[None]
            elif m == "goal_quaternion":
                x = goal.astype(np.float32)[None]
            elif m == "goal_points":
                x = self.goal_points(goal)[None]
            else:  # recurrent_state
                x = self._recurrent[spec.name]
            norm = self._norm.get(spec.name)
            if norm is not None:
                x = (x - norm[0]) / norm[1]
            feeds[spec.name] = np.ascontiguousarray(x, dtype=np.float32)
        return feeds

    def _action_to_target(self, action: np.ndarray, q_policy: np.ndarray) -> np.ndarray:
        """Contract semantics: base (by action_mode) + action_scale * action, EMA, joint limits."""
        mode = self.contract.action_mode
        if mode == "absolute":
            base = self._default
        elif mode == "relative-to-previous-target":
            base = self._prev_target
        else:  # relative-to-measured
            base = q_policy
        target = base + self._scale * action
        ema = self.contract.action_ema
        if ema > 0.0:
            target = ema * self._prev_target + (1.0 - ema) * target
        return np.clip(target, self._lower, self._upper)

    # -------------------------------------------------------------- info
    def describe(self) -> str:
        c = self.contract
        return (f"{c.name or 'policy'} (contract v{c.contract_version}, {c.control_rate_hz:g} Hz, "
                f"{c.action_mode}, {c.point_cloud.num_points} points, history {c.history.length}, "
                f"goal {c.goal.representation}) from {self.source}")
