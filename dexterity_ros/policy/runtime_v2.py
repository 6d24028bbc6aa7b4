"""Runtime for contract v2 policies: build every observation term, normalise, infer, transform the action.

Like :class:`dexterity_ros.policy.runtime.PolicyRuntime` (version 1, this
package's point-cloud students, unchanged), :class:`TermPolicyRuntime` is pure
(numpy + onnxruntime) and deterministic, and runs both in ``student_node`` and
offline. It takes only the sources its contract needs (:attr:`sources`): a
proprioceptive policy (HORA) acts on joint states alone, a pose-based one
(Isaac Lab, IGE, Playground) on joint states, the tracked object pose and the
goal. A missing or invalid source gives no action and a reason, never a
guessed observation.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry import quat_to_matrix
from ..hand_model import HandDescription, default_hand
from .contract import ContractError, PolicyError, mismatch
from .contract_v2 import InputSpec, PolicyContractV2
from .runtime import (GoalError, RuntimeOptions, StepOutput, StepStatus, make_session, normalize_goal,
                      session_io)
from .terms import StepRecord, TermContext, TermError, limits_from_unit

POSE_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ObjectPose:
    """Tracked object pose in the palm frame (what ``perception/object_pose`` carries)."""

    position: np.ndarray          # (3,) m
    quat_wxyz: np.ndarray         # (4,) unit
    stamp_ns: int


@dataclass(frozen=True)
class StepInputs:
    """Everything one step may use; a contract reads only the sources it declares."""

    joint_positions: np.ndarray                  # canonical order, rad
    stamp_ns: int
    goal_wxyz: np.ndarray | None = None          # palm frame
    object_points: np.ndarray | None = None      # (N, 3) palm frame
    object_pose: ObjectPose | None = None


def resolve_joint_order(contract: PolicyContractV2, hand: HandDescription) -> np.ndarray:
    """Canonical index of each policy joint, by name (through ``joint_aliases``), or a ContractError."""
    table = hand.aliases()
    index, unknown, seen, dups = [], [], set(), []
    for name in contract.joint_names:
        resolved = contract.joint_aliases.get(name, name)
        i = table.get(resolved)
        if i is None:
            unknown.append(name if resolved == name else f"{name} (alias of {resolved})")
            continue
        if i in seen:
            dups.append(name)
        seen.add(i)
        index.append(i)
    if unknown:
        raise ContractError("joint_names", f"contract has {unknown}, which the hand ({Path(hand.source).name}) "
                                           f"does not know; map them in joint_aliases to one of "
                                           f"{list(hand.joint_names)} (or their driver aliases)")
    if dups:
        raise ContractError("joint_names", f"{dups} name hand joints already listed")
    missing = [hand.joint_names[i] for i in range(hand.num_joints) if i not in seen]
    if missing:
        raise mismatch("joint_names", f"{contract.num_joints} joints", f"the hand ({Path(hand.source).name})",
                       f"{hand.num_joints} joints, missing from the contract: {missing}")
    return np.asarray(index, dtype=np.int64)


def assemble_inputs(contract: PolicyContractV2, records: list[StepRecord], context: TermContext
                    ) -> dict[str, np.ndarray]:
    """Every graph input (batch 1, float64, before normalisation) from a record window, newest last."""
    out = {}
    for spec in contract.inputs:
        parts = [contract.term(name).compute(records, context) for name in spec.terms]
        shape = contract.input_shape(spec)
        if spec.flatten or len(parts) > 1:
            out[spec.name] = np.concatenate([p.ravel() for p in parts]).reshape(shape)
        else:
            out[spec.name] = parts[0].reshape(shape)
    return out


class _PreparedNormalizer:
    def __init__(self, spec: InputSpec, shape: tuple[int, ...]):
        norm = spec.normalizer
        per_sample = shape[1:]
        size = int(np.prod(per_sample))

        def arr(values):
            a = np.asarray(values, dtype=np.float64)
            return a.reshape(per_sample) if a.size == size and a.size != per_sample[-1] else a
        self.mean = arr(norm.mean)
        std = arr(norm.std)
        self.denominator = std if norm.epsilon == 0 else np.sqrt(std * std + norm.epsilon)
        self.clip = norm.clip
        self.clip_input = norm.clip_input

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.clip_input is not None:
            x = np.clip(x, -self.clip_input, self.clip_input)
        y = (x - self.mean) / self.denominator
        if self.clip is not None:
            y = np.clip(y, -self.clip, self.clip)
        return y


class TermPolicyRuntime:
    """Runs one contract-v2 ONNX policy; ``step`` returns a canonical-order target or the reason for none."""

    def __init__(self, model: str | Path | bytes, hand: HandDescription | None = None,
                 options: RuntimeOptions = RuntimeOptions(), perception=None,
                 goal_points: np.ndarray | None = None, contract: PolicyContractV2 | None = None):
        from .loading import contract_of_session
        self.source = "model bytes" if isinstance(model, bytes) else str(model)
        self.options = options
        self.hand = hand or default_hand()
        if options.intra_op_threads < 1:
            raise PolicyError(f"intra_op_threads must be >= 1, got {options.intra_op_threads}")
        self.session = make_session(model, options.intra_op_threads)
        c = contract or contract_of_session(self.session, self.source)
        if not isinstance(c, PolicyContractV2):
            raise PolicyError(f"{self.source}: contract version {c.contract_version}; TermPolicyRuntime runs v2")
        self.contract = c
        c.check_graph_io(*session_io(self.session))
        self.canonical_index = resolve_joint_order(c, self.hand)
        self.joint_names = self.hand.joint_names
        self._hand_lower = self.hand.lower[self.canonical_index]
        self._hand_upper = self.hand.upper[self.canonical_index]
        if c.joint_limits is not None:
            self._lower = np.asarray(c.joint_limits.lower, dtype=np.float64)
            self._upper = np.asarray(c.joint_limits.upper, dtype=np.float64)
        else:
            self._lower, self._upper = self._hand_lower.copy(), self._hand_upper.copy()
        self.warnings: list[str] = []
        self._check_default_pose()
        self.sources = c.sources
        if "object_points" in self.sources:
            if perception is None:
                from ..perception import load_perception_config
                perception = load_perception_config()
            self._check_perception(perception)
        self._goal_points_canonical = self._check_goal_points(goal_points)
        self._fk = None
        if "fingertip_positions" in c.term_kinds():
            from ..kinematics import HandKinematics
            self._fk = HandKinematics(self.hand)
        self.context = TermContext(lower=self._lower, upper=self._upper, frame=c.frame,
                                   fingertips=self._fingertips if self._fk else None,
                                   goal_points=self._goal_points if self._goal_points_canonical is not None
                                   else None, num_points=c.num_points)
        self._shapes = {s.name: c.input_shape(s) for s in c.inputs}
        self._normalizers = {s.name: _PreparedNormalizer(s, self._shapes[s.name])
                             for s in c.inputs if s.normalizer is not None}
        self._scale = np.broadcast_to(np.asarray(c.action.scale, dtype=np.float64), (c.num_joints,)).copy()
        self._default = np.asarray(c.action.default_joint_pos, dtype=np.float64)
        self._output_names = [o.name for o in c.outputs]
        self._checked_outputs = [o.name for o in c.outputs if o.meaning != "ignored"]
        self._gap_ns = int(round(options.reset_after_gap_s * 1e9))
        self.control_period_ns = int(round(1e9 / c.control_rate_hz))
        self.last_inputs: dict[str, np.ndarray] | None = None
        self._initialized = False
        self._pending_reset = "first step"
        self._records: collections.deque[StepRecord] = collections.deque(maxlen=c.history_window)
        self._prev_target: np.ndarray | None = None
        self._last_action = np.zeros(c.num_joints)
        self._last_action_clipped = np.zeros(c.num_joints)
        self._last_stamp_ns: int | None = None
        self._last_goal: np.ndarray | None = None
        self._recurrent: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------ checks
    def _check_default_pose(self) -> None:
        c = self.contract
        for k, value in enumerate(c.action.default_joint_pos):
            if not self._hand_lower[k] <= value <= self._hand_upper[k]:
                self.warnings.append(f"action.default_joint_pos[{c.joint_names[k]}] = {value:g} lies outside the "
                                     f"hand's limits [{self._hand_lower[k]:g}, {self._hand_upper[k]:g}]; targets "
                                     "are clipped to the hand's limits")

    def _check_perception(self, perception) -> None:
        c = self.contract
        problems = []
        if c.num_points != perception.num_points:
            problems.append(mismatch("terms[object_points].num_points", c.num_points,
                                     "the perception config (num_points)", perception.num_points))
        if c.segmentation_config_hash != perception.config_hash():
            problems.append(mismatch("segmentation_config_hash", c.segmentation_config_hash,
                                     "the perception config in use", perception.config_hash()))
        if problems and not self.options.allow_config_mismatch:
            raise problems[0]
        self.warnings += [f"{p} (allowed by allow_config_mismatch)" for p in problems]

    def _check_goal_points(self, goal_points: np.ndarray | None) -> np.ndarray | None:
        terms = [t for t in self.contract.terms if t.kind == "goal_points"]
        if not terms:
            return None
        if goal_points is None:
            raise ContractError("terms[goal_points]", "needs the object's canonical point set (parameter "
                                                      "goal_points_path)")
        points = np.asarray(goal_points, dtype=np.float32)
        want = terms[0].params.num_points
        if points.ndim != 2 or points.shape != (want, 3):
            raise mismatch("terms[goal_points].num_points", want, "the canonical point set", list(points.shape))
        return points

    # ------------------------------------------------------ context hooks
    def _fingertips(self, q_policy: np.ndarray) -> np.ndarray:
        q = np.empty(self.hand.num_joints)
        q[self.canonical_index] = q_policy
        return self._fk.fingertip_positions(q)

    def _goal_points(self, goal: np.ndarray) -> np.ndarray:
        return self._goal_points_canonical.astype(np.float64) @ quat_to_matrix(goal).T

    # -------------------------------------------------------------- state
    def reset(self, reason: str = "reset requested") -> None:
        self._initialized = False
        self._pending_reset = reason

    def _reset_reason(self, goal: np.ndarray | None, stamp_ns: int) -> str | None:
        if not self._initialized:
            return self._pending_reset
        if goal is not None and self._last_goal is not None and not np.array_equal(goal, self._last_goal):
            return "new goal"
        if self._last_stamp_ns is not None:
            dt = stamp_ns - self._last_stamp_ns
            if dt < 0:
                return f"input time went backwards by {-dt / 1e9:.3f} s"
            if dt > self._gap_ns:
                return f"gap of {dt / 1e9:.3f} s in inputs (reset_after_gap {self.options.reset_after_gap_s:g} s)"
        return None

    # ------------------------------------------------------------ inputs
    def _validate(self, inputs: StepInputs) -> tuple[StepOutput | None, dict]:
        need = self.sources
        got: dict = {}
        q = np.asarray(inputs.joint_positions, dtype=np.float64)
        if q.shape != (self.hand.num_joints,):
            return StepOutput(None, f"joint positions must be canonical ({self.hand.num_joints},), got {q.shape}",
                              StepStatus.BAD_JOINTS), got
        if not np.all(np.isfinite(q)):
            return StepOutput(None, "joint positions contain NaN or inf", StepStatus.BAD_JOINTS), got
        got["q"] = q
        if "goal" in need:
            if inputs.goal_wxyz is None:
                return StepOutput(None, "no goal (the contract's goal terms need one)", StepStatus.BAD_GOAL), got
            try:
                got["goal"] = normalize_goal(inputs.goal_wxyz)
            except GoalError as exc:
                return StepOutput(None, str(exc), StepStatus.BAD_GOAL), got
        if "object_points" in need:
            points = inputs.object_points
            if points is None:
                return StepOutput(None, "no object cloud", StepStatus.BAD_POINTS), got
            points = np.asarray(points, dtype=np.float32)
            n = self.contract.num_points
            if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] != n:
                return StepOutput(None, f"point cloud must be ({n}, 3), got {points.shape}",
                                  StepStatus.BAD_POINTS), got
            if not np.all(np.isfinite(points)):
                return StepOutput(None, "point cloud has NaN or inf", StepStatus.BAD_POINTS), got
            got["points"] = points
        if "object_pose" in need:
            pose = inputs.object_pose
            if pose is None:
                return StepOutput(None, "no tracked object pose (the contract's object terms need one)",
                                  StepStatus.BAD_POSE), got
            pos = np.asarray(pose.position, dtype=np.float64)
            quat = np.asarray(pose.quat_wxyz, dtype=np.float64)
            if pos.shape != (3,) or quat.shape != (4,) or not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
                return StepOutput(None, "object pose must be a finite position (3) and quaternion (4)",
                                  StepStatus.BAD_POSE), got
            norm = float(np.linalg.norm(quat))
            if abs(norm - 1.0) > POSE_NORM_TOLERANCE:
                return StepOutput(None, f"object pose quaternion is not unit (norm {norm:.4g})",
                                  StepStatus.BAD_POSE), got
            got["pose"] = (pos, quat / norm, int(pose.stamp_ns))
        return None, got

    # -------------------------------------------------------------- step
    def step(self, inputs: StepInputs) -> StepOutput:
        c = self.contract
        refused, got = self._validate(inputs)
        if refused is not None:
            return refused
        q_policy = got["q"][self.canonical_index]
        goal = got.get("goal")
        stamp = int(inputs.stamp_ns)
        reset_reason = self._reset_reason(goal, stamp)
        pose = got.get("pose")
        if reset_reason is not None:
            self._records.clear()
            self._prev_target = q_policy.copy()
            self._last_action = np.zeros(c.num_joints)
            self._last_action_clipped = np.zeros(c.num_joints)
            self.context.quat_memory.clear()
            self._recurrent = {r.name: np.full(r.shape, pair.initial_value, dtype=np.float32)
                               for r in c.recurrent_inputs for pair in c.recurrent_state if pair.input == r.name}
        record = StepRecord(stamp_ns=stamp, q=q_policy, prev_target=self._prev_target.copy(),
                            prev_action=self._last_action.copy(), prev_action_clipped=self._last_action_clipped.copy(),
                            object_position=None if pose is None else pose[0],
                            object_quat=None if pose is None else pose[1],
                            object_stamp_ns=None if pose is None else pose[2],
                            goal=goal, object_points=got.get("points"))
        records = list(self._records)
        if reset_reason is not None:
            records = [record] * c.history_window
        else:
            records = (records + [record])[-c.history_window:]
        try:
            feeds = self._feeds(records)
        except TermError as exc:
            return StepOutput(None, str(exc), StepStatus.BAD_POSE, reset_reason=reset_reason)
        self.last_inputs = feeds

        t0 = time.perf_counter()
        try:
            outputs = dict(zip(self._output_names, self.session.run(self._output_names, feeds)))
        except Exception as exc:   # onnxruntime error types; never crash the caller
            self.reset("previous inference failed")
            return StepOutput(None, f"inference failed: {exc}", StepStatus.BAD_OUTPUT, reset_reason=reset_reason)
        inference_ms = (time.perf_counter() - t0) * 1e3
        nonfinite = [n for n in self._checked_outputs if not np.all(np.isfinite(outputs[n]))]
        if nonfinite:
            self.reset("previous step produced a non-finite output")
            return StepOutput(None, f"policy output {nonfinite} contains NaN or inf; nothing forwarded, state reset",
                              StepStatus.NAN_OUTPUT, reset_reason=reset_reason, inference_ms=inference_ms)
        action = outputs[c.action.output]
        if action.shape != (1, c.num_joints):
            self.reset("previous step produced a malformed output")
            return StepOutput(None, f"output '{c.action.output}' has shape {list(action.shape)}, contract says "
                              f"[1, {c.num_joints}]", StepStatus.BAD_OUTPUT, reset_reason=reset_reason,
                              inference_ms=inference_ms)
        raw = action[0].astype(np.float64)
        clipped, target_policy = self._action_to_target(raw, q_policy)

        # commit
        self._records.clear()
        self._records.extend(records)
        self._initialized = True
        self._prev_target = target_policy
        self._last_action = raw
        self._last_action_clipped = clipped
        for pair in c.recurrent_state:
            self._recurrent[pair.input] = outputs[pair.output].astype(np.float32)
        self._last_stamp_ns = stamp
        if goal is not None:
            self._last_goal = goal
        target = np.empty(self.hand.num_joints, dtype=np.float64)
        target[self.canonical_index] = target_policy
        return StepOutput(target, "ok", StepStatus.ACTION, action=raw.astype(np.float32), reset_reason=reset_reason,
                          inference_ms=inference_ms)

    def observation(self, records: list[StepRecord]) -> dict[str, np.ndarray]:
        """Un-normalised inputs (float64) for a record window (newest last)."""
        return assemble_inputs(self.contract, records, self.context)

    def _feeds(self, records: list[StepRecord]) -> dict[str, np.ndarray]:
        feeds = {}
        for name, x in self.observation(records).items():
            norm = self._normalizers.get(name)
            if norm is not None:
                x = norm(x)
            feeds[name] = np.ascontiguousarray(x, dtype=np.float32)
        feeds.update(self._recurrent)
        return feeds

    def _action_to_target(self, raw: np.ndarray, q_policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a_cfg = self.contract.action
        a = raw * a_cfg.input_scale
        if a_cfg.input_clip is not None:
            a = np.clip(a, -a_cfg.input_clip, a_cfg.input_clip)
        if a_cfg.mode == "absolute":
            target = self._default + self._scale * a
        elif a_cfg.mode == "unscale_limits":
            target = limits_from_unit(a, self._lower, self._upper)
        elif a_cfg.mode == "delta_previous_target":
            target = self._prev_target + self._scale * a
        else:   # delta_measured
            target = q_policy + self._scale * a
        if a_cfg.ema_alpha < 1.0:
            target = a_cfg.ema_alpha * target + (1.0 - a_cfg.ema_alpha) * self._prev_target
        target = np.clip(target, self._lower, self._upper)
        return a, np.clip(target, self._hand_lower, self._hand_upper)

    # -------------------------------------------------------------- info
    def describe(self) -> str:
        c = self.contract
        return (f"{c.name or 'policy'} (contract v2, {c.control_rate_hz:g} Hz, action {c.action.mode}, "
                f"terms {', '.join(t.name for t in c.terms)}; sources {', '.join(self.sources)}) from {self.source}")
