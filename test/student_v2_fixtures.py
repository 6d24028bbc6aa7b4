"""Tiny contract-v2 policies for the student_node tests (no tests here).

``tiny_v2_model`` exports a Linear+tanh torch module with the legacy exporter
and attaches a v2 contract; ``PROPRIO`` reads joint states only (HORA-like),
``POSE`` the tracked object pose and the goal as well.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx

from dexterity_ros.hand_model import default_hand
from dexterity_ros.policy.contract_v2 import PolicyContractV2
from dexterity_ros.policy.loading import attach_contract_v2

HAND = default_hand()
J = HAND.num_joints

PROPRIO_TERMS = [{"name": "proprio", "kind": "proprioceptive_history", "length": 3}]
POSE_TERMS = [{"name": "joint_pos", "kind": "joint_positions"},
              {"name": "object_position", "kind": "object_position"},
              {"name": "object_orientation", "kind": "object_orientation"},
              {"name": "goal_orientation", "kind": "goal_orientation"},
              {"name": "last_action", "kind": "previous_actions"}]


def contract(terms: list[dict], name: str, control_rate_hz: float = 20.0) -> PolicyContractV2:
    return PolicyContractV2.from_mapping({
        "contract_version": 2, "name": name, "control_rate_hz": control_rate_hz,
        "joint_names": list(HAND.joint_names), "terms": terms,
        "inputs": [{"name": "obs", "terms": [t["name"] for t in terms]}],
        "action": {"output": "actions", "mode": "delta_previous_target", "scale": 0.05},
        "outputs": [{"name": "actions", "shape": [1, J]}]})


def tiny_v2_model(spec: PolicyContractV2, seed: int = 0) -> bytes:
    """Linear(D, J) + tanh with seeded weights, exported to ONNX (opset 17) with ``spec`` attached."""
    import torch

    size = sum(spec.term(t).size(J) for t in spec.inputs[0].terms)
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(size, J), torch.nn.Tanh()).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, size),), buffer, dynamo=False, opset_version=17,
                          input_names=["obs"], output_names=["actions"])
    model = onnx.load_from_string(buffer.getvalue())
    attach_contract_v2(model, spec)
    return model.SerializeToString()


def joint_positions(k: int) -> np.ndarray:
    """A slowly moving hand pose inside the limits (canonical order)."""
    mid = 0.5 * (HAND.lower + HAND.upper)
    span = 0.2 * (HAND.upper - HAND.lower)
    return mid + span * np.sin(0.1 * k + np.arange(J))


def object_pose(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(position, unit quaternion wxyz) of an object turning about z above the palm."""
    angle = 0.05 * k
    return np.array([0.01 * np.sin(angle), 0.0, 0.08]), np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])
