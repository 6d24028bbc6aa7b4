"""Helpers shared by the test_policy_* files (no tests here).

``probe_model`` builds a tiny ONNX graph with onnx.helper whose outputs are
simple known functions of its inputs, so runtime semantics (action modes,
history, recurrent state, resets, NaN handling) can be checked against a
re-implementation of docs/policy_contract.md.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper

from dexterity_ros.hand_model import default_hand
from dexterity_ros.perception import load_perception_config
from dexterity_ros.policy.contract import (CONTRACT_VERSION, GoalSpec, HistorySpec, Normalization, PointCloudSpec,
                                           PolicyContract, RecurrentStateSpec, TensorSpec, attach_contract)

HAND = default_hand()
PERCEPTION = load_perception_config()
J = HAND.num_joints
NAN_TRIGGER = 3.0          # the probe emits NaN when a measured joint position exceeds this (rad)
STATE_GAIN = 0.01          # action += STATE_GAIN * recurrent state
HISTORY_WEIGHTS = (0.1, 0.2, 0.4)   # action += sum_k w_k * action_history[k] (oldest first)


def base_action() -> np.ndarray:
    return (0.01 * (np.arange(J) + 1)).astype(np.float32)


def probe_contract(*, action_mode: str = "relative-to-measured", scale: float = 1.0, ema: float = 0.0,
                   joint_names=None, default=None, history: int = 3, num_points: int | None = None,
                   goal_points: int = 0) -> PolicyContract:
    n = num_points or PERCEPTION.num_points
    names = tuple(joint_names or HAND.joint_names)
    inputs = [TensorSpec("points", (1, n, 3), "object_points"),
              TensorSpec("q", (1, J), "joint_positions"),
              TensorSpec("hist", (1, history, J), "action_history")]
    if goal_points:
        inputs.append(TensorSpec("goal", (1, goal_points, 3), "goal_points"))
        goal = GoalSpec("object_points", goal_points, "test object")
    else:
        inputs.append(TensorSpec("goal", (1, 4), "goal_quaternion"))
        goal = GoalSpec("quaternion")
    inputs.append(TensorSpec("state_in", (1, 1), "recurrent_state"))
    if default is None:
        default = np.clip(np.full(J, 0.3), HAND.lower, HAND.upper)
    return PolicyContract(
        contract_version=CONTRACT_VERSION, joint_names=names, control_rate_hz=12.0, action_mode=action_mode,
        action_scale=(float(scale),) * J, action_ema=float(ema), default_joint_pos=tuple(map(float, default)),
        inputs=tuple(inputs),
        outputs=(TensorSpec("action", (1, J), "action"), TensorSpec("state_out", (1, 1), "recurrent_state")),
        point_cloud=PointCloudSpec(n, "palm"), segmentation_config_hash=PERCEPTION.config_hash(),
        history=HistorySpec(history, ("actions",)), recurrent_state=(RecurrentStateSpec("state_in", "state_out", 0.0),),
        goal=goal, name="probe")


def probe_graph(contract: PolicyContract) -> onnx.ModelProto:
    """action = base + sum_k w_k hist[k] + STATE_GAIN*state + 0*sqrt(NAN_TRIGGER - q);  state_out = state + 1."""
    shapes = {s.name: list(s.shape) for s in (*contract.inputs, *contract.outputs)}
    history = contract.history.length
    weights = np.array(HISTORY_WEIGHTS[:history], dtype=np.float32).reshape(1, history, 1)
    consts = {
        "base": base_action().reshape(1, J), "w": weights, "axis1": np.array([1], dtype=np.int64),
        "gain": np.array([[STATE_GAIN]], dtype=np.float32), "trigger": np.array([[NAN_TRIGGER]], dtype=np.float32),
        "zero": np.array([[0.0]], dtype=np.float32), "one": np.array([[1.0]], dtype=np.float32),
    }
    nodes = [
        helper.make_node("Mul", ["hist", "w"], ["hw"]),
        helper.make_node("ReduceSum", ["hw", "axis1"], ["hsum"], keepdims=0),
        helper.make_node("Mul", ["state_in", "gain"], ["sterm"]),
        helper.make_node("Sub", ["trigger", "q"], ["margin"]),
        helper.make_node("Sqrt", ["margin"], ["root"]),
        helper.make_node("Mul", ["root", "zero"], ["nanterm"]),
        helper.make_node("Add", ["base", "hsum"], ["a1"]),
        helper.make_node("Add", ["a1", "sterm"], ["a2"]),
        helper.make_node("Add", ["a2", "nanterm"], ["action"]),
        helper.make_node("Add", ["state_in", "one"], ["state_out"]),
    ]
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()]
    graph = helper.make_graph(
        nodes, "probe",
        [helper.make_tensor_value_info(s.name, TensorProto.FLOAT, shapes[s.name]) for s in contract.inputs],
        [helper.make_tensor_value_info(s.name, TensorProto.FLOAT, shapes[s.name]) for s in contract.outputs],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def probe_model(contract: PolicyContract | None = None, **kwargs) -> bytes:
    contract = contract or probe_contract(**kwargs)
    model = probe_graph(contract)
    attach_contract(model, contract)
    return model.SerializeToString()


def model_with_metadata(contract: PolicyContract, metadata: dict[str, str]) -> bytes:
    """The probe graph for ``contract`` with raw metadata (to plant malformed contracts)."""
    model = probe_graph(contract)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def replace(contract: PolicyContract, **changes) -> PolicyContract:
    return dataclasses.replace(contract, **changes)


def cloud(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    n = n or PERCEPTION.num_points
    return (rng.normal(0, 0.02, (n, 3)) + [0.08, 0.0, 0.05]).astype(np.float32)


__all__ = ["HAND", "PERCEPTION", "J", "NAN_TRIGGER", "STATE_GAIN", "HISTORY_WEIGHTS", "base_action",
           "probe_contract", "probe_graph", "probe_model", "model_with_metadata", "replace", "cloud",
           "Normalization"]
