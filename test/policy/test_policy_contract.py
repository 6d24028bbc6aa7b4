"""Policy contract: JSON round trip, self-validation, and every mismatch the runtime must refuse."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dexterity_ros.perception import PerceptionConfig
from dexterity_ros.policy.contract import (METADATA_KEY, ContractError, PolicyContract, PolicyError,
                                           canonical_points_hash, read_contract)
from dexterity_ros.policy.runtime import PolicyRuntime, RuntimeOptions
from policy_fixtures import (HAND, PERCEPTION, Normalization, model_with_metadata, probe_contract,
                                 probe_graph, probe_model, replace)


def contract_dict(**changes) -> dict:
    data = json.loads(probe_contract().to_json())
    data.update(changes)
    return data


def refused(model: bytes, **kwargs) -> ContractError:
    with pytest.raises(ContractError) as info:
        PolicyRuntime(model, **kwargs)
    return info.value


def test_json_round_trip_and_onnx_metadata(tmp_path):
    contract = probe_contract(action_mode="relative-to-previous-target", ema=0.3)
    assert PolicyContract.from_json(contract.to_json()) == contract
    path = tmp_path / "probe.onnx"
    path.write_bytes(probe_model(contract))
    assert read_contract(path) == contract
    runtime = PolicyRuntime(path)
    assert runtime.contract == contract
    # version is part of the stored JSON
    import onnx
    stored = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(stored[METADATA_KEY])["contract_version"] == 1


def test_scalar_action_scale_expands_per_joint():
    contract = PolicyContract.from_mapping(contract_dict(action_scale=0.25))
    assert contract.action_scale == (0.25,) * HAND.num_joints


def test_model_without_metadata_is_refused():
    err = refused(model_with_metadata(probe_contract(), {}))
    assert err.field == "metadata" and METADATA_KEY in str(err)


def test_unknown_contract_version_is_refused():
    text = json.dumps(contract_dict(contract_version=7))
    err = refused(model_with_metadata(probe_contract(), {METADATA_KEY: text}))
    assert err.field == "contract_version"
    assert "7" in str(err) and "[1]" in str(err)


def test_missing_version_and_bad_json():
    data = contract_dict()
    del data["contract_version"]
    with pytest.raises(ContractError, match="contract_version"):
        PolicyContract.from_mapping(data)
    with pytest.raises(ContractError, match="not valid JSON"):
        PolicyContract.from_json("{not json")


def test_unknown_key_is_refused_with_its_name():
    with pytest.raises(ContractError, match="action_gain"):
        PolicyContract.from_mapping(contract_dict(action_gain=2.0))


def test_graph_shapes_that_disagree_with_contract_are_refused():
    graph_contract = probe_contract()                  # graph built for 512 points
    lying = probe_contract(num_points=256)             # contract claims 256
    err = refused(model_with_metadata(graph_contract, {METADATA_KEY: lying.to_json()}))
    assert err.field == "inputs['points'].shape"
    assert "[1, 256, 3]" in str(err) and "[1, 512, 3]" in str(err)


def test_graph_input_missing_from_contract_is_refused():
    contract = probe_contract()
    renamed = replace(contract, inputs=tuple(replace(s, name="pts") if s.name == "points" else s
                                             for s in contract.inputs))
    err = refused(model_with_metadata(contract, {METADATA_KEY: renamed.to_json()}))
    assert err.field == "inputs['pts']" and "'points'" in str(err)


def test_joint_names_the_hand_does_not_have():
    names = list(HAND.joint_names)
    names[5] = "index_knuckle"
    err = refused(probe_model(joint_names=names))
    assert err.field == "joint_names"
    assert "index_knuckle" in str(err) and "mfj1" in str(err)


def test_driver_aliases_are_accepted():
    runtime = PolicyRuntime(probe_model(joint_names=HAND.driver_order("allegro_v4")))
    assert runtime.canonical_index.tolist() == list(range(HAND.num_joints))


def test_default_pose_outside_limits():
    default = np.clip(np.full(HAND.num_joints, 0.3), HAND.lower, HAND.upper)
    default[12] = 0.0                                     # thj0 lower limit is 0.263
    err = refused(probe_model(default=default))
    assert err.field == "default_joint_pos[thj0]" and "0.263" in str(err)


def test_segmentation_hash_and_point_count_mismatch():
    other = PerceptionConfig(num_points=256, hand_margin=0.01)
    err = refused(probe_model(), perception=other)
    assert err.field == "point_cloud.num_points" and "512" in str(err) and "256" in str(err)
    same_count = PerceptionConfig(num_points=PERCEPTION.num_points, hand_margin=0.01)
    err = refused(probe_model(), perception=same_count)
    assert err.field == "segmentation_config_hash"
    assert PERCEPTION.config_hash() in str(err) and same_count.config_hash() in str(err)
    allowed = PolicyRuntime(probe_model(), perception=same_count,
                            options=RuntimeOptions(allow_config_mismatch=True))
    assert any("segmentation_config_hash" in w for w in allowed.warnings)


@pytest.mark.parametrize("change, field", [
    (dict(history={"length": 3, "stacked": ["targets"]}), "history.stacked"),
    (dict(recurrent_state=[]), "recurrent_state"),
    (dict(action_ema=1.0), "action_ema"),
    (dict(action_scale=[0.1] * 15), "action_scale"),
    (dict(control_rate_hz=0.0), "control_rate_hz"),
    (dict(goal={"representation": "object_points", "num_points": 64}), "goal.representation"),
    (dict(action_mode="delta"), "action_mode"),
])
def test_inconsistent_contracts_name_the_field(change, field):
    with pytest.raises(ContractError) as info:
        PolicyContract.from_mapping(contract_dict(**change))
    assert info.value.field == field, str(info.value)


def test_normalization_length_must_match_last_axis():
    contract = probe_contract()
    bad = replace(contract, inputs=tuple(
        replace(s, normalization=Normalization("mean_std", (0.0,) * 5, (1.0,) * 5)) if s.name == "q" else s
        for s in contract.inputs))
    with pytest.raises(ContractError) as info:
        bad.validate()
    assert info.value.field == "inputs['q'].normalization.mean" and "5 values" in str(info.value)


def test_goal_points_contract_needs_the_matching_point_set(tmp_path):
    rng = np.random.default_rng(3)
    points = rng.normal(0, 0.02, (64, 3)).astype(np.float32)
    contract = probe_contract(goal_points=64)
    contract = replace(contract, goal=replace(contract.goal, canonical_points_sha256=canonical_points_hash(points)))
    model = probe_model(contract)
    assert refused(model).field == "goal.representation"              # no point set given
    assert refused(model, goal_points=points[:32]).field == "goal.num_points"
    err = refused(model, goal_points=points + 0.001)
    assert err.field == "goal.canonical_points_sha256" and canonical_points_hash(points) in str(err)
    PolicyRuntime(model, goal_points=points)


def test_unreadable_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(PolicyError, match="junk.onnx"):
        PolicyRuntime(junk)
    with pytest.raises(PolicyError, match="not found"):
        PolicyRuntime(tmp_path / "missing.onnx")
    with pytest.raises(PolicyError, match="junk.onnx"):
        read_contract(junk)


def test_probe_graph_is_valid_onnx():
    import onnx
    onnx.checker.check_model(probe_graph(probe_contract()), full_check=True)
