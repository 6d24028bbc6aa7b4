"""The pose-based student (Dactyl's split): a policy on the tracked object pose, the goal and the joints.

Perception is the robot's: rendered depth -> ``perception.extract_object_cloud``
(the segmentation node's function) -> :class:`~dexterity_ros.tracking.tracker.PoseTracker`
(the pose tracker node's) -> the pose ``perception/object_pose`` carries. The
policy is a contract-v2 model (``docs/policy_contract.md``): its observation is
the v2 terms below, computed by :func:`dexterity_ros.policy.runtime_v2.assemble_inputs`
both here (training features) and in ``student_node`` (``TermPolicyRuntime``),
so the term math has one home. :class:`TermInputs` keeps the record window
exactly as ``TermPolicyRuntime`` keeps it (its reset rules), so expert-driven
steps get the features the runtime would have built; on student-driven steps
the two are checked bit for bit (:mod:`.rollout`).

Observation (one flat input ``obs``, normalised inside the graph):
the last ``history_length`` measured joint positions, the targets in force at
those steps, the tracked object position relative to the grasp position, the
tracked orientation, the goal, and R(q_object q_goal^-1) (sign-free).
Action: ``delta_previous_target``: target = previous target + scale * tanh(net),
so "hold" is an exact zero and the network learns the change (the point-cloud
student's ``residual`` option, in the contract's own terms).
Memory (``student.recurrent_size`` > 0): a GRU state the contract declares as a
recurrent pair and the runtime carries and resets (docs/policy_contract.md,
"Recurrent state"); trained on sequences cut at :func:`sequence_starts`.
"""
from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..hand_model import HandDescription
from ..policy.contract_v2 import PolicyContractV2
from ..policy.runtime import RuntimeOptions, normalize_goal
from ..policy.runtime_v2 import ObjectPose, assemble_inputs, resolve_joint_order
from ..policy.terms import StepRecord, TermContext

POSE_PROVENANCE_KEY = "pose_student"
DELTA_SCALE_FRACTION = 0.5        # action scale per joint: this fraction of its range (|label| <= 1 for moves
                                  # up to half the range in one step; hold = 0)
POSITION_STD_M = 0.02             # normalisation of the object's offset from its grasp position
INPUT_NAME, OUTPUT_NAME = "obs", "action"
STATE_INPUT, STATE_OUTPUT = "state_in", "state_out"     # recurrent students: the GRU state pair


LINEAR_VELOCITY_SCALE = 10.0      # m/s -> the input: 0.1 m/s (a fast slip) reads 1
ANGULAR_VELOCITY_SCALE = 1.0      # rad/s as is: a turn of the goal's size in a second reads about 1


def pose_terms(history_length: int, origin: Sequence[float], object_velocity: bool = False
               ) -> list[dict[str, Any]]:
    """The contract-v2 terms the pose student reads, in input order.

    ``object_velocity`` adds the object's linear and angular velocity estimated from the last two
    tracked poses (contract terms, so the runtime computes them exactly as in training): the
    privileged expert acts on the object's velocity, which one pose does not show.
    """
    h = int(history_length)
    terms = [
        {"name": "joint_positions", "kind": "joint_position_history", "length": h},
        {"name": "previous_targets", "kind": "previous_targets", "length": h},
        {"name": "object_position", "kind": "object_position", "origin": [float(v) for v in origin]},
        {"name": "object_orientation", "kind": "object_orientation", "sign": "w_nonnegative"},
        {"name": "goal_orientation", "kind": "goal_orientation"},
        {"name": "orientation_error", "kind": "orientation_error_matrix", "rows": [0, 1, 2]},
    ]
    if object_velocity:
        terms += [{"name": "object_linear_velocity", "kind": "object_linear_velocity",
                   "scale": LINEAR_VELOCITY_SCALE},
                  {"name": "object_angular_velocity", "kind": "object_angular_velocity",
                   "scale": ANGULAR_VELOCITY_SCALE}]
    return terms


def feature_normalization(contract: PolicyContractV2, hand: HandDescription) -> tuple[np.ndarray, np.ndarray]:
    """Per-element mean and std of the flat ``obs`` (folded into the graph): joints by their limits,
    the object offset by POSITION_STD_M, quaternions and rotation rows as they are."""
    index = resolve_joint_order(contract, hand)
    mid = (hand.lower[index] + hand.upper[index]) / 2
    half = (hand.upper[index] - hand.lower[index]) / 2
    means, stds = [], []
    for name in contract.inputs[0].terms:
        term = contract.term(name)
        size = term.size(contract.num_joints)
        if term.kind in ("joint_position_history", "previous_targets"):
            reps = size // contract.num_joints
            means.append(np.tile(mid, reps))
            stds.append(np.tile(half, reps))
        elif term.kind == "object_position":
            means.append(np.zeros(3))
            stds.append(np.full(3, POSITION_STD_M))
        else:
            means.append(np.zeros(size))
            stds.append(np.ones(size))
    return np.round(np.concatenate(means), 6), np.round(np.concatenate(stds), 6)


class PoseStudent(nn.Module):
    """MLP on the flat term vector: ((obs - mean) / std) -> hidden (ELU) -> tanh action (delta).

    ``recurrent_size`` R > 0 puts a GRU cell between the trunk and the head (the
    head reads the cell's state): ``forward(obs, state)`` -> ``(action, new_state)``,
    state (B, R), zeros at a reset. The contract declares the pair (``state_in`` ->
    ``state_out``) and TermPolicyRuntime feeds the state back (docs/policy_contract.md).
    The cell's parameters are ``nn.GRUCell``'s but its math is written out in
    :meth:`gru` (two Gemm-able linears and pointwise ops), so the ONNX graph keeps
    the parameter names and :func:`load_torch_pose_student` reads them back.
    """

    input_kind = "pose"

    def __init__(self, hidden: Sequence[int], mean: Sequence[float], std: Sequence[float], num_joints: int,
                 recurrent_size: int = 0):
        super().__init__()
        self.register_buffer("obs_mean", torch.tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("obs_inv_std", 1.0 / torch.tensor(np.asarray(std), dtype=torch.float32))
        layers: list[nn.Module] = []
        width = len(mean)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ELU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.recurrent_size = int(recurrent_size)
        if self.recurrent_size > 0:
            self.cell = nn.GRUCell(width, self.recurrent_size)
            width = self.recurrent_size
        self.head = nn.Linear(width, num_joints)

    def gru(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """torch.nn.GRUCell's update (gates r, z, n in its weight order), spelled out for a plain ONNX graph."""
        c = self.cell
        gi = nn.functional.linear(x, c.weight_ih, c.bias_ih)
        gh = nn.functional.linear(state, c.weight_hh, c.bias_hh)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * state

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(batch, self.recurrent_size)

    def sequence(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) observations in time order from state (B, R) -> ((B, L, J) actions, the last state):
        the trunk over all steps at once, the cell step by step (training; same math as :meth:`forward`)."""
        features = self.body((obs - self.obs_mean) * self.obs_inv_std)
        states = []
        for t in range(obs.shape[1]):
            state = self.gru(features[:, t], state)
            states.append(state)
        return torch.tanh(self.head(torch.stack(states, dim=1))), state

    def forward(self, obs: torch.Tensor, state: torch.Tensor | None = None):
        features = self.body((obs - self.obs_mean) * self.obs_inv_std)
        if self.recurrent_size == 0:
            return torch.tanh(self.head(features))
        if state is None:
            state = self.initial_state(obs.shape[0])
        new_state = self.gru(features, state)
        return torch.tanh(self.head(new_state)), new_state


@dataclass(frozen=True)
class DeltaMapping:
    """target = clip(base + scale * action) (contract v2 ``delta_previous_target``, ema 1, no input clip)."""

    scale: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def action(self, target: np.ndarray, base: np.ndarray) -> np.ndarray:
        """The raw action that moves ``base`` to ``target`` (clipped into the limits first)."""
        clipped = np.clip(np.asarray(target, dtype=np.float64), self.lower, self.upper)
        return (clipped - np.asarray(base, dtype=np.float64)) / self.scale

    def labels(self, targets: np.ndarray, bases: np.ndarray) -> np.ndarray:
        """Training labels (float32) for rows of expert targets and the bases they move from."""
        return self.action(targets, bases).astype(np.float32)


def pose_student_description(teacher: str) -> str:
    """The contract's one-line description, naming the teacher the student was distilled from."""
    return (f"pose student distilled from {teacher}: tracked object pose (perception/object_pose), goal and "
            "joints -> target change")


def teacher_phrase(expert) -> str:
    """How an experiment's ``expert`` section reads in a model's description (ExpertConfig)."""
    if expert.method == "gait":
        return f"a privileged finger gait ({expert.gait}, fitted by CMA-ES)"
    return f"a privileged sampling-MPC expert ({expert.method})"


def build_pose_student(architecture, hand: HandDescription, origin: Sequence[float], *, seed: int = 0,
                       control_rate_hz: float = 12.0, name: str = "pose_student", description: str = "",
                       provenance: dict[str, Any] | None = None) -> tuple[PoseStudent, PolicyContractV2]:
    """A seeded pose student and its contract-v2 (canonical joint order, the hand's limits).

    ``origin``: the object's grasp position (palm frame, the mount's ``object_position``),
    subtracted from the tracked position by the ``object_position`` term.
    """
    scale = np.round((hand.upper - hand.lower) * DELTA_SCALE_FRACTION, 6)
    terms = pose_terms(architecture.history_length, origin, getattr(architecture, "object_velocity", False))
    recurrent = int(getattr(architecture, "recurrent_size", 0))
    memory = {}
    if recurrent > 0:       # the GRU state: fed back by the runtime, zeros at every reset (its initial_value)
        memory = {"recurrent_inputs": [{"name": STATE_INPUT, "shape": [1, recurrent]}],
                  "recurrent_state": [{"input": STATE_INPUT, "output": STATE_OUTPUT, "initial_value": 0.0}]}
    contract = PolicyContractV2.from_mapping({
        "contract_version": 2, "name": name, "control_rate_hz": float(control_rate_hz),
        "description": description or pose_student_description("a privileged teacher"),
        "joint_names": list(hand.joint_names), "terms": terms,
        "inputs": [{"name": INPUT_NAME, "terms": [t["name"] for t in terms],
                    "description": "normalised inside the graph"}],
        "action": {"output": OUTPUT_NAME, "mode": "delta_previous_target", "scale": scale.tolist()},
        "outputs": [{"name": OUTPUT_NAME, "shape": [1, hand.num_joints]}] + (
            [{"name": STATE_OUTPUT, "shape": [1, recurrent], "meaning": "recurrent_state"}] if recurrent else []),
        **memory, "provenance": {}})
    mean, std = feature_normalization(contract, hand)
    record = {"hidden": [int(h) for h in architecture.hidden], "history_length": int(architecture.history_length),
              "seed": int(seed), "obs_mean": mean.tolist(), "obs_std": std.tolist()}
    if recurrent:           # absent for feed-forward students: their contracts stay as they were
        record["recurrent_size"] = recurrent
    if getattr(architecture, "pose_source", "tracker") != "tracker":   # a diagnostic student: say so
        record["pose_source"] = architecture.pose_source
    contract = contract.with_provenance(**{POSE_PROVENANCE_KEY: record}, **(provenance or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = PoseStudent(architecture.hidden, mean, std, hand.num_joints, recurrent_size=recurrent)
        with torch.no_grad():            # start near "hold": a small delta
            module.head.weight.mul_(0.1)
            module.head.bias.zero_()
    return module.eval(), contract


def pose_student_from_contract(contract: PolicyContractV2) -> PoseStudent:
    """An (untrained) module with the shape recorded in the contract's provenance."""
    record = contract.provenance.get(POSE_PROVENANCE_KEY)
    if record is None:
        raise ValueError(f"contract '{contract.name}' has no '{POSE_PROVENANCE_KEY}' provenance: not a pose student")
    return PoseStudent(record["hidden"], record["obs_mean"], record["obs_std"], contract.num_joints,
                       recurrent_size=int(record.get("recurrent_size", 0)))


def delta_mapping(contract: PolicyContractV2, hand: HandDescription) -> DeltaMapping:
    if tuple(contract.joint_names) != tuple(hand.joint_names):
        raise ValueError("pose students use the hand's canonical joint order")
    a = contract.action
    if a.mode != "delta_previous_target" or a.ema_alpha != 1.0 or a.input_scale != 1.0 or a.input_clip is not None \
            or contract.joint_limits is not None:
        raise ValueError(f"pose students are delta_previous_target with ema 1 and the hand's limits, got {a}")
    scale = np.broadcast_to(np.asarray(a.scale, dtype=np.float64), (contract.num_joints,)).copy()
    return DeltaMapping(scale, hand.lower.copy(), hand.upper.copy())


class TermInputs:
    """The feeds TermPolicyRuntime builds for the current step, kept exactly as it keeps them.

    Its rules: a record window of the contract's length (filled with copies of
    the first record after a reset); resets on the first step, a new goal, a gap
    longer than ``reset_after_gap_s`` or time going backwards; after a reset the
    previous target is the measured pose and the previous action zeros. The
    features are the runtime's own :func:`assemble_inputs` on the same records.
    :meth:`commit` records what was executed: the student's action and target, or
    the expert's target (with the action that would have produced it).

    A recurrent contract's state input is not mirrored here: it is the network's
    own output fed back, which the runtime carries and training recomputes from
    the recorded sequence (:func:`sequence_starts` finds where the runtime reset it).
    :attr:`was_reset` says whether the last :meth:`feeds` reset.
    """

    def __init__(self, contract: PolicyContractV2, hand: HandDescription,
                 options: RuntimeOptions = RuntimeOptions()):
        if any(s.normalizer is not None for s in contract.inputs):
            raise ValueError("TermInputs mirrors contracts without contract normalisers")
        self.contract, self.hand = contract, hand
        self.index = resolve_joint_order(contract, hand)
        self.mapping = delta_mapping(contract, hand)
        self.context = TermContext(lower=hand.lower[self.index], upper=hand.upper[self.index], frame=contract.frame,
                                   num_points=contract.num_points)
        self.window = contract.history_window
        self.gap_ns = int(round(options.reset_after_gap_s * 1e9))
        self.reset()

    def reset(self) -> None:
        self._initialized = False
        self._records: collections.deque[StepRecord] = collections.deque(maxlen=self.window)
        self._prev_target: np.ndarray | None = None
        self._last_action = np.zeros(self.contract.num_joints)
        self._last_stamp: int | None = None
        self._last_goal: np.ndarray | None = None
        self._pending: tuple | None = None
        self.was_reset = False

    @property
    def base(self) -> np.ndarray:
        """The target in force for the step whose feeds were built last (policy order): what the delta adds to."""
        if self._pending is None:
            raise RuntimeError("base before feeds()")
        return self._pending[0][-1].prev_target.copy()

    def feeds(self, joint_positions: np.ndarray, pose: ObjectPose, goal_wxyz: np.ndarray, stamp_ns: int
              ) -> dict[str, np.ndarray]:
        q = np.asarray(joint_positions, dtype=np.float64)[self.index]
        goal = normalize_goal(goal_wxyz)
        position = np.asarray(pose.position, dtype=np.float64)
        quat = np.asarray(pose.quat_wxyz, dtype=np.float64)
        quat = quat / float(np.linalg.norm(quat))
        stamp = int(stamp_ns)
        reset = (not self._initialized
                 or (self._last_goal is not None and not np.array_equal(goal, self._last_goal))
                 or (self._last_stamp is not None and (stamp < self._last_stamp
                                                       or stamp - self._last_stamp > self.gap_ns)))
        self.was_reset = reset
        if reset:
            self._records.clear()
            self._prev_target = q.copy()
            self._last_action = np.zeros(self.contract.num_joints)
            self.context.quat_memory.clear()
        record = StepRecord(stamp_ns=stamp, q=q, prev_target=self._prev_target.copy(),
                            prev_action=self._last_action.copy(), prev_action_clipped=self._last_action.copy(),
                            object_position=position, object_quat=quat, object_stamp_ns=int(pose.stamp_ns),
                            goal=goal, object_points=None)
        window = [record] * self.window if reset else (list(self._records) + [record])[-self.window:]
        self._pending = (window, goal, stamp)
        return {name: np.ascontiguousarray(x, dtype=np.float32)
                for name, x in assemble_inputs(self.contract, window, self.context).items()}

    def commit(self, action: np.ndarray, target_canonical: np.ndarray) -> None:
        """The raw action executed and the canonical target it gave (the runtime's StepOutput)."""
        if self._pending is None:
            raise RuntimeError("commit() without feeds()")
        window, goal, stamp = self._pending
        self._records.clear()
        self._records.extend(window)
        self._initialized = True
        self._prev_target = np.asarray(target_canonical, dtype=np.float64)[self.index].copy()
        self._last_action = np.asarray(action, dtype=np.float64).copy()
        self._last_stamp, self._last_goal = stamp, goal
        self._pending = None

    def commit_target(self, target_canonical: np.ndarray) -> None:
        """Someone else (the expert, or holding still) set this target: the action that would give it."""
        target = np.clip(np.asarray(target_canonical, dtype=np.float64), self.hand.lower, self.hand.upper)
        self.commit(self.mapping.action(target[self.index], self.base), target)


def sequence_starts(contract: PolicyContractV2, obs: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
    """(S,) bool: the recorded rows at which TermPolicyRuntime reset its state (history and recurrent state).

    The runtime resets on the first step, a new goal, a gap longer than
    ``reset_after_gap_s`` and time going backwards (and after a failed inference,
    which ends a rollout). Every such reset leaves one mark in the term vector it
    feeds: the window is copies of the current record (the measured joint
    history is one pose repeated) and the previous target is the measured pose,
    bit for bit, which measured joints moving towards a commanded target never
    give otherwise. Reading the mark from the recorded rows (rather than
    re-deriving goal changes and stamps) makes training reset exactly where the
    runtime did, for every reason, and in datasets recorded before this existed;
    :func:`~.rollout.run_episode` checks the mark against :class:`TermInputs` on
    every recorded row. ``keys`` (episode identity per row): a new key starts a
    sequence too (rows are each episode's runtime steps in order).
    """
    starts = reset_marks(contract, obs)
    if keys is not None and len(starts):
        keys = np.asarray(keys)
        starts |= np.r_[True, keys[1:] != keys[:-1]]
    elif len(starts):
        starts[0] = True
    return starts


def reset_marks(contract: PolicyContractV2, obs: np.ndarray) -> np.ndarray:
    """(S,) bool: the rows whose term vector carries the runtime's reset mark (see :func:`sequence_starts`)."""
    obs = np.asarray(obs)
    index = {contract.term(n).kind: n for n in contract.inputs[0].terms}
    offsets, start = {}, 0
    for name in contract.inputs[0].terms:
        size = contract.term(name).size(contract.num_joints)
        offsets[name] = slice(start, start + size)
        start += size
    if "joint_position_history" not in index or "previous_targets" not in index:
        raise ValueError("sequence_starts reads the joint_position_history and previous_targets terms")
    j = contract.num_joints
    joints = obs[:, offsets[index["joint_position_history"]]].reshape(len(obs), -1, j)
    targets = obs[:, offsets[index["previous_targets"]]].reshape(len(obs), -1, j)
    if joints.shape != targets.shape:
        raise ValueError("sequence_starts needs equal joint and target history lengths")
    return (joints == joints[:, -1:]).all(axis=(1, 2)) & (targets == joints).all(axis=(1, 2))


# ------------------------------------------------------------------ symmetry
ORIENTATION_KINDS = ("object_orientation", "quaternion_difference", "orientation_error_matrix")


def symmetry_variants(contract: PolicyContractV2, obs: np.ndarray, symmetry) -> np.ndarray:
    """(K, S, D) float32: each sample's term vector with the tracked orientation replaced by each of its
    K symmetric equivalents (identity first: the rows as recorded).

    A depth tracker knows an object's orientation only up to its symmetry (the
    cuboid_flat "box": four orientations look alike) and reports whichever
    equivalent continues its stream, so the pose student must act alike on all
    of them; the expert's label does not depend on which was reported. The
    orientation terms of each variant are computed by the contract's own terms
    (the runtime's code) from the recorded orientation turned by the symmetry
    element (x_object -> R(q s) x: right multiplication) and the recorded goal.
    """
    from ..geometry import quat_multiply

    obs = np.asarray(obs, dtype=np.float32)
    elements = symmetry.equivalents(np.array([1.0, 0.0, 0.0, 0.0]), samples=8)
    offsets, names = {}, contract.inputs[0].terms
    start = 0
    for name in names:
        size = contract.term(name).size(contract.num_joints)
        offsets[name] = slice(start, start + size)
        start += size
    kinds = {contract.term(n).kind: n for n in names}
    need = {"object_orientation", "goal_orientation"}
    if not need <= set(kinds) or any(contract.term(kinds[k]).params.order != "wxyz" for k in need) or \
            any(contract.term(n).params.frame != "palm" for n in names if contract.term(n).kind in ORIENTATION_KINDS):
        raise ValueError("symmetry variants need object_orientation and goal_orientation terms (wxyz, palm frame)")
    q = obs[:, offsets[kinds["object_orientation"]]].astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    goal = obs[:, offsets[kinds["goal_orientation"]]].astype(np.float64)
    goal /= np.linalg.norm(goal, axis=1, keepdims=True)
    targets = [n for n in names if contract.term(n).kind in ORIENTATION_KINDS]
    context = TermContext(lower=np.zeros(contract.num_joints), upper=np.ones(contract.num_joints),
                          frame=contract.frame)
    zeros = np.zeros(contract.num_joints)
    out = np.repeat(obs[None], len(elements), axis=0)
    for k, element in enumerate(elements[1:], start=1):
        turned = quat_multiply(q, element[None, :])
        for row in range(len(obs)):
            record = StepRecord(stamp_ns=0, q=zeros, prev_target=zeros, prev_action=zeros, prev_action_clipped=zeros,
                                object_quat=turned[row], goal=goal[row])
            for name in targets:
                out[k, row, offsets[name]] = contract.term(name).compute([record], context)
    return out


# ------------------------------------------------------------------ export
@dataclass(frozen=True)
class PoseExportReport:
    path: Path | None
    size_bytes: int
    max_abs_diff: float
    trials: int
    contract: PolicyContractV2


def export_pose_student(module: PoseStudent, contract: PolicyContractV2, output: str | Path | None = None, *,
                        opset: int = 17, trials: int = 8, tolerance: float = 1e-5, seed: int = 0
                        ) -> tuple[bytes, PoseExportReport]:
    """torch -> ONNX with the v2 contract attached; written (atomically) only if every check passes.

    The checks of the v1 exporter (dexterity_ros.policy.export): the contract is
    consistent and matches the graph's inputs/outputs (``attach_contract_v2``),
    ``onnx.checker`` accepts the graph, and onnxruntime matches torch eager on
    seeded random inputs within ``tolerance``; ExportError otherwise, nothing written.
    A recurrent student's ``trials`` inputs are one sequence, each side (torch,
    onnxruntime) feeding its own state output back, as TermPolicyRuntime does;
    actions and states are compared at every step.
    """
    import onnx

    from .. import __version__
    from ..policy.export import ExportError
    from ..policy.importers.common import torch_to_onnx, write_model_atomically
    from ..policy.loading import attach_contract_v2
    from ..policy.runtime import make_session

    module = module.eval()
    size = int(module.obs_mean.numel())
    shape = contract.input_shape(contract.inputs[0])
    if shape != (1, size):
        raise ExportError(f"contract input '{INPUT_NAME}' has shape {list(shape)}, the module takes [1, {size}]")
    recurrent = module.recurrent_size
    if recurrent and contract.graph_inputs() != [(INPUT_NAME, (1, size)), (STATE_INPUT, (1, recurrent))]:
        raise ExportError(f"contract inputs {contract.graph_inputs()} are not the recurrent module's "
                          f"[{INPUT_NAME} [1, {size}], {STATE_INPUT} [1, {recurrent}]]")
    if not recurrent and contract.recurrent_inputs:
        raise ExportError("the contract declares recurrent state, the module is feed-forward")
    shapes = {INPUT_NAME: (1, size), **({STATE_INPUT: (1, recurrent)} if recurrent else {})}
    outputs = [OUTPUT_NAME] + ([STATE_OUTPUT] if recurrent else [])
    try:
        model = torch_to_onnx(module, shapes, outputs, opset=opset)
        stamped = contract.with_provenance(exporter=f"dexterity_ros {__version__}", torch=torch.__version__,
                                           onnx=onnx.__version__, opset=opset)
        attach_contract_v2(model, stamped)
        onnx.checker.check_model(model, full_check=True)
        session = make_session(model.SerializeToString(), intra_op_threads=1)
    except Exception as exc:   # exporter, checker, contract or onnxruntime errors: all mean "not exportable"
        raise ExportError(f"pose student export failed: {exc}") from None
    rng = np.random.default_rng(seed)
    mean, std = module.obs_mean.numpy(), 1.0 / module.obs_inv_std.numpy()
    worst = 0.0
    torch_state = np.zeros((1, recurrent), np.float32)
    onnx_state = torch_state.copy()
    for trial in range(trials):
        x = (mean + std * rng.uniform(-1.5, 1.5, size)).astype(np.float32)[None]
        if recurrent:
            with torch.inference_mode():
                action, state = module(torch.from_numpy(x), torch.from_numpy(torch_state))
            expected, torch_state = action.numpy(), state.numpy()
            got, onnx_state = session.run(outputs, {INPUT_NAME: x, STATE_INPUT: onnx_state})
            worst = max(worst, float(np.max(np.abs(onnx_state.astype(np.float64) - torch_state))))
        else:
            with torch.inference_mode():
                expected = module(torch.from_numpy(x)).numpy()
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - expected))))
        if worst > tolerance:
            raise ExportError(f"onnxruntime and torch disagree: max |diff| {worst:.3g} > tolerance {tolerance:g}")
    final = stamped.with_provenance(parity_max_abs_diff=float(f"{worst:.3g}"), parity_trials=trials)
    attach_contract_v2(model, final)
    data = model.SerializeToString()
    path = None
    if output is not None:
        path = write_model_atomically(model, output)
    return data, PoseExportReport(path, len(data), worst, trials, final)


def load_torch_pose_student(onnx_path: str | Path) -> tuple[PoseStudent, PolicyContractV2]:
    """The torch module of an exported pose student (weights read back from the graph's initializers)."""
    import onnx
    from onnx import numpy_helper

    from ..policy.loading import read_any_contract

    contract = read_any_contract(onnx_path)
    if not isinstance(contract, PolicyContractV2):
        raise ValueError(f"{onnx_path}: contract version {contract.contract_version}, a pose student is v2")
    module = pose_student_from_contract(contract)
    weights = {init.name: numpy_helper.to_array(init) for init in onnx.load(str(onnx_path)).graph.initializer}
    state = module.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise ValueError(f"{onnx_path}: graph initializers do not name the module's tensors {missing[:4]}")
    module.load_state_dict({k: torch.from_numpy(np.array(weights[k])).reshape(v.shape) for k, v in state.items()})
    return module.eval(), contract


def without_export_provenance(contract: PolicyContractV2) -> PolicyContractV2:
    """The contract without what the exporter stamps (re-exporting stamps it again)."""
    keep = {k: v for k, v in contract.provenance.items()
            if k not in ("exporter", "torch", "onnx", "opset", "parity_max_abs_diff", "parity_trials")}
    return dataclasses.replace(contract, provenance=keep)
