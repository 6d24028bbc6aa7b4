"""Contract v2: every observation term's value, the contract's refusals, and the runtime's state rules."""
from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import onnx
import pytest
import torch

from dexterity_ros.geometry import axis_angle_to_quat, quat_conjugate, quat_multiply, quat_to_matrix
from dexterity_ros.hand_model import default_hand
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.policy.contract import ContractError
from dexterity_ros.policy.contract_v2 import PolicyContractV2
from dexterity_ros.policy.loading import (NO_CONTRACT_HINT, attach_contract_v2, contract_from_metadata_any,
                                          load_runtime)
from dexterity_ros.policy.runtime import StepStatus
from dexterity_ros.policy.runtime_v2 import ObjectPose, StepInputs
from dexterity_ros.policy.terms import FrameTransform, StepRecord, TermContext, parse_term

HAND = default_hand()
J = HAND.num_joints
RNG = np.random.default_rng(7)


def record(k: int = 0, q=None, target=None, action=None, pos=(0.05, 0.0, 0.07), quat=(1.0, 0, 0, 0),
           goal=(1.0, 0, 0, 0), dt_ns: int = 50_000_000) -> StepRecord:
    q = np.full(J, 0.1 * (k + 1)) if q is None else np.asarray(q, float)
    return StepRecord(stamp_ns=10**9 + k * dt_ns, q=q, prev_target=q + 0.01 if target is None else np.asarray(target),
                      prev_action=np.full(J, 0.5 * k) if action is None else np.asarray(action),
                      prev_action_clipped=np.clip(np.full(J, 0.5 * k), -1, 1), object_position=np.asarray(pos, float),
                      object_quat=np.asarray(quat, float), object_stamp_ns=10**9 + k * dt_ns,
                      goal=np.asarray(goal, float))


def ctx(frame: FrameTransform = FrameTransform()) -> TermContext:
    fk = HandKinematics(HAND)
    return TermContext(lower=HAND.lower.copy(), upper=HAND.upper.copy(), frame=frame,
                       fingertips=fk.fingertip_positions)


def term(kind: str, **params):
    return parse_term({"name": kind, "kind": kind, **params}, "test")


# ------------------------------------------------------------------ terms
def test_joint_positions_unit_limits_maps_the_limits_onto_minus_one_one():
    c = ctx()
    assert np.allclose(term("joint_positions", scaling="unit_limits").compute([record(q=HAND.lower)], c), -1)
    assert np.allclose(term("joint_positions", scaling="unit_limits").compute([record(q=HAND.upper)], c), 1)
    assert np.allclose(term("joint_positions").compute([record(q=HAND.upper)], c), HAND.upper)


def test_joint_velocities_are_finite_differences_over_stamps_and_zero_after_reset():
    c = ctx()
    recs = [record(0), record(1)]
    v = term("joint_velocities", scale=0.2).compute(recs, c)
    assert np.allclose(v, (recs[1].q - recs[0].q) / 0.05 * 0.2)
    assert np.allclose(term("joint_velocities").compute([record(0), record(0)], c), 0)


def test_history_terms_follow_their_order_and_length():
    c = ctx()
    recs = [record(k) for k in range(4)]
    oldest = term("joint_position_history", length=3).compute(recs, c)
    assert oldest.shape == (3, J) and np.allclose(oldest[:, 0], [0.2, 0.3, 0.4])
    newest = term("previous_targets", length=2, order="newest_first").compute(recs, c)
    assert np.allclose(newest[:, 0], [0.41, 0.31])
    acts = term("previous_actions", length=2).compute(recs, c)
    assert np.allclose(acts[:, 0], [1.0, 1.5])
    clipped = term("previous_actions", clipped=True).compute(recs, c)
    assert np.allclose(clipped, 1.0)
    err = term("joint_tracking_error").compute(recs, c)
    assert np.allclose(err, -0.01)


def test_proprioceptive_history_rows_put_the_fields_side_by_side():
    c = ctx()
    recs = [record(k) for k in range(3)]
    rows = term("proprioceptive_history", length=2).compute(recs, c)
    assert rows.shape == (2, 2 * J)
    from dexterity_ros.policy.terms import unit_from_limits
    assert np.allclose(rows[1, :J], unit_from_limits(recs[2].q, HAND.lower, HAND.upper))
    assert np.allclose(rows[1, J:], recs[2].prev_target)
    assert np.allclose(rows[0, J:], recs[1].prev_target)


def test_fingertips_come_from_forward_kinematics_in_the_requested_finger_order():
    c = ctx()
    q = RNG.uniform(HAND.lower, HAND.upper)
    tips = HandKinematics(HAND).fingertip_positions(q)
    got = term("fingertip_positions", fingers=["th", "ff"]).compute([record(q=q)], c)
    assert np.allclose(got, np.concatenate([tips[3], tips[0]]))


def test_policy_frame_terms_apply_the_palm_pose():
    rot = axis_angle_to_quat([0, 0, 1], np.pi / 2)
    c = ctx(FrameTransform(translation=(0, 0, 0.5), rotation_wxyz=tuple(rot)))
    r = record(pos=(0.1, 0.0, 0.0))
    assert np.allclose(term("object_position", frame="policy").compute([r], c), [0.0, 0.1, 0.5], atol=1e-12)
    assert np.allclose(term("object_position", origin=[0.1, 0, 0], direction="origin_minus_object").compute([r], c), 0)
    q = term("object_orientation", frame="policy", order="xyzw").compute([r], c)
    assert np.allclose(q, [rot[1], rot[2], rot[3], rot[0]])


def test_quaternion_sign_conventions():
    c = ctx()
    q = np.array([-0.5, 0.5, 0.5, 0.5])
    assert np.allclose(term("object_orientation").compute([record(quat=q)], c), q)
    assert np.allclose(term("object_orientation", sign="w_nonnegative").compute([record(quat=q)], c), -q)
    cont = term("object_orientation", sign="continuous")
    first = cont.compute([record(quat=-q)], c)
    second = cont.compute([record(quat=q)], c)     # q and -q: the continuous sign keeps the first one's
    assert np.allclose(first, second)


def test_object_angular_velocity_from_consecutive_orientations():
    c = ctx()
    q1 = axis_angle_to_quat([0, 0, 1], 0.1)
    w = term("object_angular_velocity", scale=0.2).compute([record(0), record(1, quat=q1)], c)
    assert np.allclose(w, [0, 0, 0.1 / 0.05 * 0.2])
    v = term("object_linear_velocity").compute([record(0), record(1, pos=(0.06, 0, 0.07))], c)
    assert np.allclose(v, [0.01 / 0.05, 0, 0])


def test_goal_difference_terms():
    c = ctx()
    obj = axis_angle_to_quat([1, 0, 0], 0.3)
    goal = axis_angle_to_quat([0, 1, 0], 0.4)
    r = record(quat=obj, goal=goal)
    diff = term("quaternion_difference").compute([r], c)
    assert np.allclose(diff, quat_multiply(obj, quat_conjugate(goal)))
    rows = term("orientation_error_matrix").compute([r], c)
    assert np.allclose(rows, quat_to_matrix(diff).ravel()[3:])
    assert np.allclose(term("goal_orientation", order="xyzw").compute([r], c), goal[[1, 2, 3, 0]])
    assert np.allclose(term("constant", values=[1, 2, 3]).compute([r], c), [1, 2, 3])


@pytest.mark.parametrize("entry, fragment", [
    ({"name": "x", "kind": "joint_speed"}, "is not one of"),
    ({"name": "x", "kind": "joint_positions", "scaling": "degrees"}, "degrees"),
    ({"name": "x", "kind": "joint_positions", "scale": 2}, "unknown key"),
    ({"name": "x", "kind": "previous_targets", "length": 0}, "length"),
    ({"name": "x", "kind": "fingertip_positions", "fingers": ["pinky"]}, "fingers"),
    ({"name": "x", "kind": "constant", "values": []}, "values"),
    ({"kind": "constant", "values": [1]}, "name"),
])
def test_bad_terms_are_refused_naming_the_field(entry, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_term(entry, "terms[0]")


# ---------------------------------------------------------- contracts
def pose_spec(**changes) -> dict:
    spec = {
        "contract_version": 2, "name": "probe", "control_rate_hz": 20,
        "joint_names": [f"joint_{i}.0" for i in (12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)],
        "terms": [{"name": "q", "kind": "joint_positions", "scaling": "unit_limits"},
                  {"name": "pos", "kind": "object_position"},
                  {"name": "quat", "kind": "object_orientation", "order": "xyzw"},
                  {"name": "goal", "kind": "goal_orientation", "order": "xyzw"},
                  {"name": "last", "kind": "previous_actions"}],
        "inputs": [{"name": "obs", "terms": ["q", "pos", "quat", "goal", "last"],
                    "normalizer": {"mean": [0.0], "std": [2.0], "epsilon": 0.0, "clip": 5.0}}],
        "action": {"output": "mu", "mode": "unscale_limits", "input_clip": 1.0, "ema_alpha": 0.5},
        "outputs": [{"name": "mu", "shape": [1, 16]}],
    }
    spec.update(changes)
    return spec


OBS = 16 + 3 + 4 + 4 + 16


def test_a_contract_round_trips_through_json():
    c = PolicyContractV2.from_mapping(pose_spec())
    again = PolicyContractV2.from_json(c.to_json())
    assert again == c
    assert c.sources == ("joint_states", "object_pose", "goal")
    assert c.input_shape(c.inputs[0]) == (1, OBS)
    assert "obs" in c.table() and "unscale_limits" in c.table()


def _edit(path: str, value):
    spec = pose_spec()
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    node[int(last) if isinstance(node, list) else last] = value
    return spec


@pytest.mark.parametrize("path, value, fragment", [
    ("inputs.0.normalizer.std", [0.0], "zero"),
    ("inputs.0.normalizer.mean", [0.0, 1.0], "normalizer.mean"),
    ("inputs.0.normalizer.clip", -1.0, "clip"),
    ("inputs.0.terms", ["q", "pos", "quat", "goal"], "not fed"),
    ("inputs.0.terms", ["q", "q", "pos", "quat", "goal", "last"], "more than once"),
    ("inputs.0.terms", ["q", "pos", "quat", "goal", "last", "nope"], "not terms"),
    ("action.scale", [1.0, 2.0], "action.scale"),
    ("action.ema_alpha", 0.0, "ema_alpha"),
    ("action.mode", "absolute", "default_joint_pos"),
    ("action.output", "actions", "action.output"),
    ("outputs", [{"name": "mu", "shape": [1, 12]}], "shape"),
    ("joint_names", ["ffj0"] * 16, "duplicated"),
    ("control_rate_hz", 0, "control_rate_hz"),
    ("contract_version", 3, "contract_version"),
    ("frame", {"rotation_wxyz": [1, 1, 0, 0]}, "unit"),
    ("joint_limits", {"lower": [0.0] * 16, "upper": [0.0] * 16}, "below"),
])
def test_inconsistent_contracts_are_refused_naming_the_field(path, value, fragment):
    with pytest.raises(ContractError, match=fragment):
        PolicyContractV2.from_mapping(_edit(path, value))


def test_unknown_keys_are_refused():
    with pytest.raises(ContractError, match="unknown key"):
        PolicyContractV2.from_mapping(pose_spec(control_rate=20))


# ------------------------------------------------------------ runtime
class Probe(torch.nn.Module):
    """mu = tanh(W obs) with fixed weights, so the test can recompute the action from the fed observation."""

    def __init__(self, size: int, nan_above: float | None = None):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = torch.nn.Parameter(torch.randn(size, 16, generator=g) * 0.2, requires_grad=False)
        self.nan_above = nan_above

    def forward(self, obs):
        out = torch.tanh(obs @ self.w)
        if self.nan_above is not None:
            out = out + torch.where(obs[:, :1] > self.nan_above, torch.full_like(out[:, :1], float("nan")),
                                    torch.zeros_like(out[:, :1]))
        return out


def model_bytes(spec: dict, module: torch.nn.Module | None = None, size: int = OBS) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module or Probe(size), (torch.zeros(1, size),), buffer, dynamo=False, opset_version=17,
                          input_names=["obs"], output_names=[spec["action"]["output"]])
    model = onnx.load_from_string(buffer.getvalue())
    attach_contract_v2(model, PolicyContractV2.from_mapping(spec))
    return model.SerializeToString()


def pose_inputs(k: int, q=None, goal=(1.0, 0, 0, 0)) -> StepInputs:
    q = np.clip(np.full(J, 0.2 + 0.01 * k), HAND.lower, HAND.upper) if q is None else q
    return StepInputs(q, 10**9 + k * 50_000_000, goal_wxyz=np.asarray(goal),
                      object_pose=ObjectPose(np.array([0.05, 0.0, 0.07]), axis_angle_to_quat([0, 0, 1], 0.1 * k),
                                             10**9 + k * 50_000_000))


def test_runtime_maps_joints_by_name_and_applies_normaliser_and_ema():
    spec = pose_spec()
    rt = load_runtime(model_bytes(spec))
    probe = Probe(OBS)
    order = HAND.map_names(spec["joint_names"]).canonical_index
    prev = None
    last_action = np.zeros(16)
    for k in range(4):
        out = rt.step(pose_inputs(k))
        assert out.ok, out.reason
        obs = rt.last_inputs["obs"]
        # the fed observation is the normalised one: |x| / 2, clipped at 5
        q_unit = (2 * pose_inputs(k).joint_positions[order] - HAND.upper[order] - HAND.lower[order]) / (
            HAND.upper[order] - HAND.lower[order])
        assert np.allclose(obs[0, :16], q_unit / 2.0, atol=1e-6)
        a = torch.tanh(torch.from_numpy(obs) @ probe.w).numpy()[0].astype(np.float64)
        target = 0.5 * (a + 1) * (HAND.upper[order] - HAND.lower[order]) + HAND.lower[order]
        base = pose_inputs(0).joint_positions[order] if prev is None else prev
        target = 0.5 * target + 0.5 * base
        assert np.allclose(out.target[order], target, atol=1e-6)
        prev = out.target[order]
        # previous actions: zeros on the first step, then the last raw output
        assert np.allclose(obs[0, -16:], 0 if k == 0 else last_action / 2.0, atol=1e-6)
        last_action = a


def test_runtime_needs_each_declared_source_and_says_which():
    rt = load_runtime(model_bytes(pose_spec()))
    no_pose = StepInputs(np.full(J, 0.3), 10**9, goal_wxyz=np.array([1.0, 0, 0, 0]))
    out = rt.step(no_pose)
    assert out.status is StepStatus.BAD_POSE and "pose" in out.reason
    out = rt.step(StepInputs(np.full(J, 0.3), 10**9, object_pose=pose_inputs(0).object_pose))
    assert out.status is StepStatus.BAD_GOAL
    bad = ObjectPose(np.array([0.0, 0.0, np.nan]), np.array([1.0, 0, 0, 0]), 10**9)
    assert rt.step(StepInputs(np.full(J, 0.3), 10**9, goal_wxyz=np.array([1.0, 0, 0, 0]),
                              object_pose=bad)).status is StepStatus.BAD_POSE
    not_unit = ObjectPose(np.zeros(3), np.array([2.0, 0, 0, 0]), 10**9)
    assert "not unit" in rt.step(StepInputs(np.full(J, 0.3), 10**9, goal_wxyz=np.array([1.0, 0, 0, 0]),
                                            object_pose=not_unit)).reason


def test_a_proprioceptive_policy_acts_on_joint_states_alone():
    spec = pose_spec(terms=[{"name": "h", "kind": "proprioceptive_history", "length": 3}],
                     inputs=[{"name": "obs", "terms": ["h"]}],
                     action={"output": "mu", "mode": "delta_previous_target", "scale": 1 / 24, "input_clip": 1.0})
    rt = load_runtime(model_bytes(spec, size=96))
    assert rt.sources == ("joint_states",)
    q = np.full(J, 0.3)
    q = np.clip(q, HAND.lower, HAND.upper)
    previous = q
    for k in range(3):
        out = rt.step(StepInputs(q, 10**9 + k * 50_000_000))
        assert out.ok
        assert np.max(np.abs(out.target - previous)) <= 1 / 24 + 1e-9
        previous = out.target


def test_new_goal_gap_and_nan_output_reset_the_state():
    rt = load_runtime(model_bytes(pose_spec()))
    assert rt.step(pose_inputs(0)).reset_reason == "first step"
    assert rt.step(pose_inputs(1)).reset_reason is None
    assert rt.step(pose_inputs(2, goal=(0.0, 1.0, 0, 0))).reset_reason == "new goal"
    late = pose_inputs(40, goal=(0.0, 1.0, 0, 0))
    assert "gap" in rt.step(late).reset_reason
    spec = pose_spec()
    nan_rt = load_runtime(model_bytes(spec, Probe(OBS, nan_above=0.0)))
    out = nan_rt.step(pose_inputs(0, q=np.clip(np.full(J, 1.2), HAND.lower, HAND.upper)))
    assert out.target is None and out.status is StepStatus.NAN_OUTPUT


def test_joint_names_resolve_through_aliases_and_unknown_names_are_refused():
    names = [f"index_joint_{k}" for k in range(4)] + [f"j{k}" for k in range(12)]
    aliases = {f"index_joint_{k}": f"ffj{k}" for k in range(4)}
    aliases.update({f"j{k}": HAND.joint_names[4 + k] for k in range(12)})
    rt = load_runtime(model_bytes(pose_spec(joint_names=names, joint_aliases=aliases)))
    assert list(rt.canonical_index) == list(range(16))
    with pytest.raises(ContractError, match="joint_aliases"):
        load_runtime(model_bytes(pose_spec(joint_names=names)))


def test_graph_that_disagrees_with_the_contract_is_refused():
    spec = pose_spec()
    data = model_bytes(spec)
    model = onnx.load_from_string(data)
    bad = copy.deepcopy(spec)
    bad["terms"] = bad["terms"][:-1]
    bad["inputs"][0]["terms"] = bad["inputs"][0]["terms"][:-1]
    with pytest.raises(ContractError, match="shape"):
        attach_contract_v2(model, PolicyContractV2.from_mapping(bad))


def test_a_contract_less_model_says_how_to_add_one():
    with pytest.raises(ContractError) as info:
        contract_from_metadata_any({}, "policy.onnx")
    assert NO_CONTRACT_HINT in str(info.value)
