"""The distilled student: network, contract, and the exact inputs the runtime will feed it.

Action semantics (the contract's, applied by :meth:`PolicyRuntime._action_to_target`):
``absolute`` mode, ``action_ema`` 0, ``default_joint_pos`` = the mount's start
grasp, ``action_scale`` = per joint the larger distance from that pose to a
joint limit (plus a small margin). So ``target = clip(default + scale * action)``
is invertible on the joint range, the expert's target becomes the label
``(target - default) / scale`` in (-1, 1), and a perfect network reproduces the
expert's target exactly through the unchanged runtime.

All normalisation is folded into the graph (``in_graph``): the runtime feeds raw
points, joint positions, previous raw actions and the goal, and the dataset
stores exactly those feeds (:class:`StudentInputs` reproduces the runtime's
history and reset rules so expert-driven steps get the same inputs a student
would have seen; on student-driven steps the two are checked equal).
"""
from __future__ import annotations

import collections
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from ..hand_model import HandDescription, default_hand
from ..perception import PerceptionConfig
from ..policy.contract import (CONTRACT_VERSION, GoalSpec, HistorySpec, Normalization, PointCloudSpec,
                               PolicyContract, TensorSpec)
from ..policy.networks import PointNetStudent
from ..policy.runtime import RuntimeOptions, normalize_goal
from ..sim.sim_config import DEFAULT_POLICY_RATE_HZ
from ..topics import PALM_FRAME

ACTION_SCALE_MARGIN = 1.02          # labels stay inside (-1, 1): tanh can reach them
GOAL_POINTS = 64                    # canonical points of ``goal_object`` the graph rotates to the goal
PROPRIOCEPTION_GAIN = 10.0          # 1/rad: joint motion and tracking error (hundredths of a rad) to O(1) features
PROVENANCE_KEY = "distilled_student"


@dataclass(frozen=True)
class StudentArchitecture:
    """Network shape (config ``student`` section); recorded in the model's provenance.

    ``kind``: ``point_cloud`` (contract v1: the segmented cloud, this module's
    DistilledStudent) or ``pose`` (contract v2: the pose tracker's estimate of the
    object pose from that cloud, the goal and the joints; :mod:`.pose_student`,
    which uses ``hidden``, ``history_length`` and ``recurrent_size``).
    """

    kind: Literal["point_cloud", "pose"] = "point_cloud"
    point_widths: tuple[int, ...] = (32, 64)
    hidden: tuple[int, ...] = (256, 128)
    history_length: int = 3
    point_center: tuple[float, float, float] = (0.05, 0.0, -0.04)    # palm frame, m: where objects sit
    point_scale: float = 10.0
    residual: float = 0.0              # > 0: action = previous action + residual * tanh(net) (clipped to
                                       # [-1, 1]), so "hold" is exact and the net only learns the change
    goal_object: str = ""              # "": the goal quaternion enters the MLP as 4 numbers. An object name:
                                       # the graph rotates that object's canonical points to the goal and
                                       # encodes them with a second PointNet (the goal as the object would
                                       # look there, compared point set to point set with the observed cloud);
                                       # the model is then specific to that object
    symmetry_augmentation: bool = False    # pose, one object: train on every symmetric equivalent of the
                                       # tracked orientation (a depth tracker reports any of them)
    joint_position_history: bool = False   # true: the contract adds joint_position_history (the last
                                       # history_length measured poses) and the graph feeds the network each
                                       # joint's motion over that window and the last target's tracking error
                                       # (target - measured: a finger pressing on the object lags its target)
    recurrent_size: int = 0            # pose only: > 0 puts a GRU cell of this size between the MLP and the
                                       # head, its state carried by the runtime (contract v2 recurrent_state),
                                       # reset where the runtime resets, trained with truncated BPTT
                                       # (train.bptt_steps); 0: feed-forward. The point-cloud student's
                                       # network has a cell too, but it is not wired (fixed at 0)
    pose_source: Literal["tracker", "simulator"] = "tracker"   # pose only. "tracker": the robot's tracker on
                                       # the rendered depth (what student_node gets). "simulator": the simulator's
                                       # true object pose instead, a diagnostic that measures what the
                                       # tracker's error costs (such a student was not trained on what the
                                       # robot sees; its provenance says so)
    object_velocity: bool = False      # pose only: also the object's linear and angular velocity from the last
                                       # two tracked poses (contract terms object_linear/angular_velocity)

    def __post_init__(self) -> None:
        if not self.point_widths or not self.hidden or min(*self.point_widths, *self.hidden) < 1:
            raise ValueError("student: point_widths and hidden need positive widths")
        if not (math.isfinite(self.residual) and 0.0 <= self.residual <= 2.0):
            raise ValueError(f"student: residual must be in [0, 2] (0 = off), got {self.residual}")
        if self.history_length < 1:
            raise ValueError("student: history_length must be >= 1 (the contract asks for previous actions)")
        if self.kind == "pose":
            cloud_only = [name for name, value, off in (("residual", self.residual, 0.0),
                                                         ("goal_object", self.goal_object, ""),
                                                         ("joint_position_history", self.joint_position_history,
                                                          False)) if value != off]
            if cloud_only:
                raise ValueError(f"student: {cloud_only} are options of the point_cloud student, not of kind pose "
                                 "(its action is a delta of the previous target, its inputs the tracked pose, "
                                 "the goal and the joint and target history)")
        if self.recurrent_size < 0:
            raise ValueError(f"student: recurrent_size must be >= 0 (0 = feed-forward), got {self.recurrent_size}")
        if self.recurrent_size and self.kind != "pose":
            raise ValueError("student: recurrent_size is wired for kind pose only (the point-cloud student is "
                             "feed-forward)")
        if self.pose_source not in ("tracker", "simulator"):
            raise ValueError(f"student: pose_source must be 'tracker' or 'simulator', got {self.pose_source!r}")
        if self.pose_source != "tracker" and self.kind != "pose":
            raise ValueError("student: pose_source is an option of kind pose")
        if self.object_velocity and self.kind != "pose":
            raise ValueError("student: object_velocity is an option of kind pose (the tracked pose's velocity)")
        if self.symmetry_augmentation and self.kind != "pose":
            raise ValueError("student: symmetry_augmentation is an option of kind pose (the tracked orientation)")
        if self.goal_object:
            from ..sim.objects import object_names
            if self.goal_object not in object_names():
                raise ValueError(f"student: goal_object {self.goal_object!r} is not one of {list(object_names())}")


class DistilledStudent(nn.Module):
    """PointNetStudent with the joint normalisation folded in (the graph takes raw radians).

    With ``architecture.residual`` > 0 the graph adds the network's bounded output to
    the last raw action of ``action_history`` (zeros after a reset, i.e. the default
    pose, which is where an episode starts). An expert label moves a target by a few
    hundredths of a radian per step; an absolute head must reproduce the held target to
    that precision before it can express the move, a residual head holds it exactly.
    """

    def __init__(self, architecture: StudentArchitecture, joint_mean: Sequence[float], joint_std: Sequence[float],
                 mapping: "ActionMapping | None" = None):
        super().__init__()
        a = architecture
        self.architecture = a
        joints = len(joint_mean)
        goal_points = GOAL_POINTS if a.goal_object else 0
        # proprioception: motion over the window (history_length - 1 differences) + tracking error
        extra = a.history_length * joints if a.joint_position_history else 0
        self.net = PointNetStudent(num_joints=joints, history_length=a.history_length,
                                   goal_points=goal_points, point_widths=a.point_widths, hidden=a.hidden,
                                   recurrent_size=0, point_center=a.point_center, point_scale=a.point_scale,
                                   extra_features=extra)
        self.register_buffer("joint_mean", torch.tensor(joint_mean, dtype=torch.float32))
        self.register_buffer("joint_inv_std", 1.0 / torch.tensor(joint_std, dtype=torch.float32))
        if a.joint_position_history:
            if mapping is None:
                raise ValueError("student: joint_position_history needs the action mapping (tracking error)")
            # not persistent: they come from the contract (default_joint_pos, action_scale), not the weights
            self.register_buffer("action_default", torch.tensor(mapping.default, dtype=torch.float32),
                                 persistent=False)
            self.register_buffer("action_scale", torch.tensor(mapping.scale, dtype=torch.float32),
                                 persistent=False)
            self.register_buffer("action_lower", torch.tensor(mapping.lower, dtype=torch.float32), persistent=False)
            self.register_buffer("action_upper", torch.tensor(mapping.upper, dtype=torch.float32), persistent=False)
        if a.goal_object:
            from ..sim.objects import canonical_points
            points = np.array(canonical_points(a.goal_object, GOAL_POINTS), dtype=np.float32)
            self.register_buffer("goal_canonical_points", torch.from_numpy(points))

    def forward(self, object_points: torch.Tensor, joint_positions: torch.Tensor, action_history: torch.Tensor,
                *rest: torch.Tensor) -> torch.Tensor:
        """Inputs in the contract's order: ..., action_history, [joint_position_history], goal_quaternion."""
        joints = (joint_positions - self.joint_mean) * self.joint_inv_std
        goal_quaternion = rest[-1]
        goal = goal_quaternion
        if self.architecture.goal_object:           # the object's points in the goal orientation (palm frame)
            goal = self.goal_canonical_points @ quaternion_to_matrix(goal_quaternion).transpose(1, 2)
        if self.architecture.joint_position_history:
            action = self.net(object_points, joints, action_history, self.proprioception(rest[0], action_history),
                              goal)
        else:
            action = self.net(object_points, joints, action_history, goal)
        if self.architecture.residual > 0:
            action = torch.clamp(action_history[:, -1] + self.architecture.residual * action, -1.0, 1.0)
        return action

    def proprioception(self, joint_position_history: torch.Tensor, action_history: torch.Tensor) -> torch.Tensor:
        """(B, H, J) measured poses (oldest first, the current one last) -> (B, H * J) features.

        Each earlier pose minus the current one (how each joint moved: contact stops or
        drags a finger) and the last target minus the current pose (after a reset the
        last action is zeros, i.e. the contract's default pose), both scaled by
        PROPRIOCEPTION_GAIN. The robot's runtime feeds the same window, so sim and
        robot compute these features identically, inside the graph.
        """
        current = joint_position_history[:, -1:]
        motion = (joint_position_history[:, :-1] - current).flatten(1)
        target = torch.minimum(torch.maximum(self.action_default + self.action_scale * action_history[:, -1],
                                             self.action_lower), self.action_upper)
        tracking = target - joint_position_history[:, -1]
        return torch.cat([motion, tracking], dim=1) * PROPRIOCEPTION_GAIN


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(B, 4) quaternions (w, x, y, z) -> (B, 3, 3) rotations (as geometry.quat_to_matrix; exportable ops)."""
    q = q / torch.linalg.vector_norm(q, dim=1, keepdim=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=1).reshape(-1, 3, 3)


@dataclass(frozen=True)
class ActionMapping:
    """target = clip(default + scale * action, lower, upper) (contract: absolute, ema 0)."""

    default: np.ndarray
    scale: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def for_pose(cls, default_pose: np.ndarray, hand: HandDescription) -> "ActionMapping":
        default = np.clip(np.round(np.asarray(default_pose, dtype=np.float64), 6), hand.lower, hand.upper)
        reach = np.maximum(hand.upper - default, default - hand.lower)
        scale = np.round(np.maximum(reach, 1e-3) * ACTION_SCALE_MARGIN, 6)
        return cls(default, scale, hand.lower.copy(), hand.upper.copy())

    def action(self, target: np.ndarray) -> np.ndarray:
        """The raw action whose runtime target is ``target`` (clipped into the limits first)."""
        clipped = np.clip(np.asarray(target, dtype=np.float64), self.lower, self.upper)
        return ((clipped - self.default) / self.scale).astype(np.float32)

    def target(self, action: np.ndarray) -> np.ndarray:
        return np.clip(self.default + self.scale * np.asarray(action, dtype=np.float64), self.lower, self.upper)


POSE_ONLY_OPTIONS = ("kind", "symmetry_augmentation", "recurrent_size", "pose_source", "object_velocity")


def build_student(architecture: StudentArchitecture, default_pose: np.ndarray, *, hand: HandDescription,
                  perception: PerceptionConfig, seed: int = 0, control_rate_hz: float = DEFAULT_POLICY_RATE_HZ,
                  name: str = "distilled_student", description: str = "",
                  provenance: dict[str, Any] | None = None) -> tuple[DistilledStudent, PolicyContract]:
    """A seeded student network and its complete contract (canonical joint order).

    ``hand``: the joints and limits; ``perception``: the segmentation it is trained on (the
    contract records its point count and hash); ``control_rate_hz``: the sim's policy rate.
    """
    mapping = ActionMapping.for_pose(default_pose, hand)
    mean = np.round((hand.lower + hand.upper) / 2, 6)
    std = np.round((hand.upper - hand.lower) / 2, 6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = DistilledStudent(architecture, mean.tolist(), std.tolist(), mapping)
        with torch.no_grad():          # start near "hold the default pose"
            module.net.head.weight.mul_(0.1)
            module.net.head.bias.zero_()
    module.eval()
    joints, n_points, h = hand.num_joints, perception.num_points, architecture.history_length
    inputs = (
        TensorSpec("object_points", (1, n_points, 3), "object_points",
                   description="segmented object points in the palm frame (m)", normalization=Normalization("in_graph")),
        TensorSpec("joint_positions", (1, joints), "joint_positions",
                   description="measured joint positions (rad)", normalization=Normalization("in_graph")),
        TensorSpec("action_history", (1, h, joints), "action_history",
                   description="previous raw actions, oldest first (zeros after a reset)"),
        *((TensorSpec("joint_position_history", (1, h, joints), "joint_position_history",
                      description="last measured joint positions (rad) incl. the current one, oldest first "
                      "(the measured pose repeated after a reset)", normalization=Normalization("in_graph")),)
          if architecture.joint_position_history else ()),
        TensorSpec("goal_quaternion", (1, 4), "goal_quaternion",
                   description="goal orientation (w, x, y, z) in the palm frame"
                   + (f"; the graph turns {architecture.goal_object}'s canonical points to it"
                      if architecture.goal_object else "")),
    )
    outputs = (TensorSpec("action", (1, joints), "action",
                          description="absolute: target = default_joint_pos + action_scale * action"),)
    if architecture.kind != "point_cloud":
        raise ValueError(f"build_student makes point-cloud students; kind {architecture.kind!r}: "
                         "learning.pose_student.build_pose_student")
    shape = {k: v for k, v in asdict(architecture).items()        # provenance as before the pose options
             if k not in POSE_ONLY_OPTIONS}
    record = {"architecture": _jsonable(shape), "seed": seed,
              "joint_mean": mean.tolist(), "joint_std": std.tolist()}
    contract = PolicyContract(
        contract_version=CONTRACT_VERSION, name=name,
        description=description or "PointNet student distilled from a privileged sampling-MPC expert (DAgger)",
        joint_names=hand.joint_names, control_rate_hz=float(control_rate_hz), action_mode="absolute",
        action_scale=tuple(mapping.scale.tolist()), action_ema=0.0,
        default_joint_pos=tuple(mapping.default.tolist()),
        inputs=inputs, outputs=outputs, point_cloud=PointCloudSpec(n_points, PALM_FRAME),
        segmentation_config_hash=perception.config_hash(),
        history=HistorySpec(h, ("actions", "joint_positions") if architecture.joint_position_history else ("actions",)),
        goal=GoalSpec("quaternion"), provenance={PROVENANCE_KEY: record, **(provenance or {})})
    contract.validate()
    return module, contract


def mapping_from_contract(contract: PolicyContract, hand: HandDescription) -> ActionMapping:
    if tuple(contract.joint_names) != tuple(hand.joint_names):
        raise ValueError("distilled students use the hand's canonical joint order")
    if contract.action_mode != "absolute" or contract.action_ema != 0.0:
        raise ValueError(f"distilled students are absolute with ema 0, got {contract.action_mode} / "
                         f"{contract.action_ema}")
    return ActionMapping(np.asarray(contract.default_joint_pos, dtype=np.float64),
                         np.asarray(contract.action_scale, dtype=np.float64), hand.lower.copy(), hand.upper.copy())


def student_from_contract(contract: PolicyContract, hand: HandDescription) -> DistilledStudent:
    """An (untrained) module with the architecture recorded in ``contract``'s provenance."""
    record = contract.provenance.get(PROVENANCE_KEY)
    if record is None:
        raise ValueError(f"contract '{contract.name}' has no '{PROVENANCE_KEY}' provenance")
    arch = record["architecture"]
    architecture = StudentArchitecture(
        point_widths=tuple(arch["point_widths"]), hidden=tuple(arch["hidden"]),
        history_length=int(arch["history_length"]), point_center=tuple(arch["point_center"]),
        point_scale=float(arch["point_scale"]), residual=float(arch.get("residual", 0.0)),
        goal_object=str(arch.get("goal_object", "")),
        joint_position_history=bool(arch.get("joint_position_history", False)))
    return DistilledStudent(architecture, record["joint_mean"], record["joint_std"],
                            mapping_from_contract(contract, hand))


def load_torch_student(onnx_path: str | Path, hand: HandDescription | None = None
                       ) -> tuple[DistilledStudent, PolicyContract]:
    """Rebuild the torch module of a distilled ONNX student (weights read back from the graph).

    Used by benchmarks to compare torch eager against onnxruntime on the same weights.
    ``hand``: the limits of its action mapping (None: the packaged hand description).
    """
    import onnx
    from onnx import numpy_helper

    from ..policy.contract import read_contract

    contract = read_contract(onnx_path)
    module = student_from_contract(contract, hand if hand is not None else default_hand())
    graph = onnx.load(str(onnx_path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    state = module.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise ValueError(f"{onnx_path}: graph initializers do not name the module's tensors {missing[:4]}")
    module.load_state_dict({k: torch.from_numpy(np.array(weights[k])).reshape(v.shape) for k, v in state.items()})
    module.eval()
    return module, contract


class StudentInputs:
    """The runtime's feeds for the current step, kept exactly as PolicyRuntime keeps them.

    Mirrors PolicyRuntime's rules: history of raw actions (zeros after a reset),
    resets on the first step, a new goal, a gap longer than ``reset_after_gap_s``
    or time going backwards. :meth:`feeds` builds one step's inputs; :meth:`commit`
    records the raw action that was executed (the student's own, or the expert's
    label when the expert drove that step).
    """

    def __init__(self, history_length: int, num_joints: int = 16, options: RuntimeOptions = RuntimeOptions(),
                 joint_position_history: bool = False):
        self.history_length, self.num_joints = history_length, num_joints
        self.joint_position_history = joint_position_history     # feed it (the window is kept either way)
        self.gap_ns = int(round(options.reset_after_gap_s * 1e9))
        self.reset()

    def reset(self) -> None:
        self._initialized = False
        self._history: collections.deque = collections.deque(maxlen=self.history_length)
        self._joint_history: collections.deque = collections.deque(maxlen=self.history_length)
        self._last_goal: np.ndarray | None = None
        self._last_stamp: int | None = None
        self._pending: np.ndarray | None = None

    def feeds(self, points: np.ndarray, joint_positions: np.ndarray, goal_wxyz: np.ndarray, stamp_ns: int
              ) -> dict[str, np.ndarray]:
        goal = normalize_goal(goal_wxyz)
        reset = (not self._initialized
                 or (self._last_goal is not None and not np.array_equal(goal, self._last_goal))
                 or (self._last_stamp is not None and (stamp_ns < self._last_stamp
                                                       or stamp_ns - self._last_stamp > self.gap_ns)))
        q32 = np.asarray(joint_positions, np.float64).astype(np.float32)
        if reset:
            self._history = collections.deque([np.zeros(self.num_joints, np.float32)] * self.history_length,
                                              maxlen=self.history_length)
            self._joint_history = collections.deque([q32.copy() for _ in range(self.history_length)],
                                                    maxlen=self.history_length)
            self._initialized = True
        self._joint_history.append(q32.copy())        # the runtime's rule: measured pose after a reset, then each step
        self._pending = (goal, int(stamp_ns))
        feeds = {
            "object_points": np.ascontiguousarray(np.asarray(points, np.float32)[None]),
            "joint_positions": q32[None],
            "action_history": np.stack(list(self._history))[None].astype(np.float32),
            "goal_quaternion": goal.astype(np.float32)[None],
        }
        if self.joint_position_history:
            feeds["joint_position_history"] = self.joint_window()[None]
        return feeds

    def joint_window(self) -> np.ndarray:
        """(H, J) the last measured poses incl. the current one, oldest first (recorded for every sample)."""
        return np.stack(list(self._joint_history)).astype(np.float32)

    def commit(self, action: np.ndarray) -> None:
        """The raw action executed for the step whose feeds were built last."""
        if self._pending is None:
            raise RuntimeError("commit() without feeds()")
        self._history.append(np.asarray(action, dtype=np.float32).copy())
        self._last_goal, self._last_stamp = self._pending
        self._pending = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
