"""Student network definitions (torch). Imported by export and training code only.

The runtime never imports this module (it runs the exported ONNX graph), so
the robot does not need torch. :class:`PointNetStudent` is the architecture of
the shipped ``models/student.onnx``; training code reuses it, and
:func:`build_reference_student` builds it together with its contract.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..hand_model import HandDescription
from ..sim.sim_config import DEFAULT_POLICY_RATE_HZ
from ..topics import PALM_FRAME
from .contract import (CONTRACT_VERSION, GoalSpec, HistorySpec, Normalization, PointCloudSpec,
                       PolicyContract, RecurrentStateSpec, TensorSpec, canonical_points_hash)

# A plausible power-grasp pose (rad) per canonical joint name: fingers half closed, thumb opposed.
GRASP_POSE = {"j0": 0.0, "j1": 0.7, "j2": 0.6, "j3": 0.5}
THUMB_GRASP_POSE = {"thj0": 1.0, "thj1": 0.6, "thj2": 0.4, "thj3": 0.6}


class SharedPointMLP(nn.Module):
    """PointNet encoder: the same MLP on every point (1x1 convolutions), then a max-pool over points.

    Channels-first 1x1 convolutions are the classic PointNet form; onnxruntime
    runs them markedly faster than per-point Linear layers over a (B, N, C) tensor.
    """

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip((3, *widths[:-1]), widths):
            layers += [nn.Conv1d(a, b, kernel_size=1), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.out_features = widths[-1]

    def forward(self, points: torch.Tensor) -> torch.Tensor:     # (B, N, 3) -> (B, F)
        return self.mlp(points.transpose(1, 2)).amax(dim=2)


class PointNetStudent(nn.Module):
    """Object points + joint positions + previous actions + goal -> 16 joint actions in [-1, 1].

    Inputs (in this order, as named in the contract): object_points (1, N, 3),
    joint_positions (1, J) normalised by the runtime (contract mean/std),
    action_history (1, H, J) if H > 0, features computed by a wrapping module
    (B, extra_features) if extra_features > 0, the goal (quaternion (1, 4) or goal
    points (1, M, 3)), and recurrent_state_in (1, R) if R > 0. Point
    normalisation (centre, scale) is folded into the graph.
    """

    def __init__(self, num_joints: int = 16, history_length: int = 3, goal_points: int = 0,
                 point_widths: Sequence[int] = (64, 128), goal_point_widths: Sequence[int] = (32, 64),
                 hidden: Sequence[int] = (256, 128), recurrent_size: int = 0,
                 point_center: Sequence[float] = (0.1, 0.0, 0.04), point_scale: float = 10.0,
                 extra_features: int = 0):
        super().__init__()
        self.num_joints, self.history_length = num_joints, history_length
        self.extra_features = extra_features
        self.goal_points, self.recurrent_size = goal_points, recurrent_size
        self.register_buffer("point_center", torch.tensor(point_center, dtype=torch.float32))
        self.point_scale = float(point_scale)
        self.points = SharedPointMLP(point_widths)
        self.goal_encoder = SharedPointMLP(goal_point_widths) if goal_points else None
        goal_features = self.goal_encoder.out_features if self.goal_encoder else 4
        features = (self.points.out_features + num_joints + history_length * num_joints + extra_features
                    + goal_features)
        self.recurrent = None
        if recurrent_size:
            self.recurrent = nn.ModuleDict({
                "update_gate": nn.Linear(features + recurrent_size, recurrent_size),
                "candidate": nn.Linear(features + recurrent_size, recurrent_size)})
            features += recurrent_size
        layers: list[nn.Module] = []
        for a, b in zip((features, *hidden[:-1]), hidden):
            layers += [nn.Linear(a, b), nn.ELU()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(hidden[-1], num_joints)

    def forward(self, object_points: torch.Tensor, joint_positions: torch.Tensor, *rest: torch.Tensor):
        rest = list(rest)
        history = rest.pop(0) if self.history_length else None
        extra = rest.pop(0) if self.extra_features else None
        goal = rest.pop(0)
        state = rest.pop(0) if self.recurrent_size else None
        parts = [self.points((object_points - self.point_center) * self.point_scale), joint_positions]
        if history is not None:
            parts.append(history.flatten(1))
        if extra is not None:
            parts.append(extra)
        if self.goal_encoder is not None:
            parts.append(self.goal_encoder(goal * self.point_scale))
        else:
            parts.append(goal)
        x = torch.cat(parts, dim=1)
        if self.recurrent is not None:
            xh = torch.cat([x, state], dim=1)
            z = torch.sigmoid(self.recurrent["update_gate"](xh))
            candidate = torch.tanh(self.recurrent["candidate"](xh))
            state = (1 - z) * state + z * candidate
            x = torch.cat([x, state], dim=1)
        action = torch.tanh(self.head(self.trunk(x)))
        return (action, state) if state is not None else action


def default_grasp_pose(hand: HandDescription) -> np.ndarray:
    """GRASP_POSE in canonical order, clipped into the hand's limits."""
    pose = np.array([THUMB_GRASP_POSE.get(n, GRASP_POSE.get(n[-2:], 0.0)) for n in hand.joint_names])
    return np.clip(pose, hand.lower, hand.upper)


def build_reference_student(seed: int = 0, *, hand: HandDescription, perception,
                            num_points: int | None = None, history_length: int = 3, recurrent_size: int = 0,
                            goal_points: np.ndarray | None = None, control_rate_hz: float = DEFAULT_POLICY_RATE_HZ,
                            action_mode: str = "absolute", action_scale: float = 0.2,
                            action_ema: float = 0.2) -> tuple[PointNetStudent, PolicyContract]:
    """The untrained interface student (seeded weights) and its complete contract.

    ``hand`` gives the joints and limits; ``perception`` (a PerceptionConfig) the
    point count and the segmentation hash.
    """
    n_points = int(num_points or perception.num_points)
    joints = hand.num_joints
    goal_m = 0 if goal_points is None else int(np.asarray(goal_points).shape[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = PointNetStudent(num_joints=joints, history_length=history_length, goal_points=goal_m,
                                 recurrent_size=recurrent_size)
        with torch.no_grad():   # untrained: keep actions small so targets stay near the default pose
            module.head.weight.mul_(0.1)
            module.head.bias.zero_()
    module.eval()

    mid = (hand.lower + hand.upper) / 2
    half = (hand.upper - hand.lower) / 2
    inputs = [
        TensorSpec("object_points", (1, n_points, 3), "object_points",
                   description="object points in the palm frame (m)",
                   normalization=Normalization("in_graph")),
        TensorSpec("joint_positions", (1, joints), "joint_positions",
                   description="measured joint positions (rad)",
                   normalization=Normalization("mean_std", tuple(np.round(mid, 6).tolist()),
                                                 tuple(np.round(half, 6).tolist()))),
    ]
    if history_length:
        inputs.append(TensorSpec("action_history", (1, history_length, joints), "action_history",
                                 description="previous raw actions, oldest first"))
    goal = GoalSpec("quaternion")
    if goal_m:
        inputs.append(TensorSpec("goal_points", (1, goal_m, 3), "goal_points",
                                 description="object points at the goal orientation (m)",
                                 normalization=Normalization("in_graph")))
        goal = GoalSpec("object_points", goal_m, "reference object", canonical_points_hash(goal_points))
    else:
        inputs.append(TensorSpec("goal_quaternion", (1, 4), "goal_quaternion",
                                 description="goal orientation (w, x, y, z) in the palm frame"))
    outputs = [TensorSpec("action", (1, joints), "action", description="actions in [-1, 1]")]
    recurrent: list[RecurrentStateSpec] = []
    if recurrent_size:
        inputs.append(TensorSpec("recurrent_state_in", (1, recurrent_size), "recurrent_state"))
        outputs.append(TensorSpec("recurrent_state_out", (1, recurrent_size), "recurrent_state"))
        recurrent.append(RecurrentStateSpec("recurrent_state_in", "recurrent_state_out", 0.0))
    builder_args: dict[str, Any] = {"seed": seed, "num_points": n_points, "history_length": history_length,
                                    "recurrent_size": recurrent_size, "goal_points": goal_m}
    contract = PolicyContract(
        contract_version=CONTRACT_VERSION,
        name="reference_student",
        description=("UNTRAINED interface model: PointNet-style student with seeded random weights; "
                     "replaced by the distilled student"),
        joint_names=hand.joint_names,
        control_rate_hz=float(control_rate_hz),
        action_mode=action_mode,
        action_scale=(float(action_scale),) * joints,
        action_ema=float(action_ema),
        default_joint_pos=tuple(default_grasp_pose(hand).tolist()),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        point_cloud=PointCloudSpec(n_points, PALM_FRAME),
        segmentation_config_hash=perception.config_hash(),
        history=HistorySpec(history_length, ("actions",) if history_length else ()),
        recurrent_state=tuple(recurrent),
        goal=goal,
        provenance={"reference_student": builder_args},
    )
    contract.validate()
    return module, contract
