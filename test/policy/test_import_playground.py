"""Preset ``playground-leap-reorient``: a native policy re-expressed as a Brax/Playground ONNX comes back exact.

The proof (issue 19): :mod:`upstream_onnx` rewrites a native delta policy
(scale 0.5, LEAP limits, tanh output) in LeapCubeReorient's convention
(Playground joint order if_mcp, if_rot, ..., joint tracking error against the
previous command, palm - cube in the world frame, rows 1-2 of the error
matrix, raw last action) with the Brax normaliser inside the graph, as
``experimental/brax_network_to_onnx.ipynb`` writes it (``obs`` ->
``continuous_actions``). Imported with the matching options, the targets equal
the native policy's on the demo episode within 1e-5 rad; a missing
normaliser, another action scale or a wrong palm pose moves them by more than
1e-3 rad.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import upstream_onnx as U
from native_policies import HAND, TOLERANCE, demo_steps, max_target_difference, run_episode
from dexterity_ros.geometry import quat_normalize
from dexterity_ros.policy.importers import ImportRefused, preset
from dexterity_ros.policy.importers.playground import CTRL_RANGE, JOINT_ALIASES, JOINT_NAMES, import_playground
from dexterity_ros.policy.runtime import StepStatus
from dexterity_ros.policy.runtime_v2 import TermPolicyRuntime

BROKEN = 1e-3
# the LEAP palm body's pose in leap_mount (leap_rh_mjx.xml): a realistic non-identity palm pose
PALM_XYZ = (0.124, -0.0305, -0.06045)
PALM_WXYZ = tuple(float(v) for v in quat_normalize(np.array([0.0, 1.0, 0.0, -0.175])))


@pytest.fixture(scope="module")
def native():
    return U.train_playground_native()


def import_bytes(tmp_path, data: bytes, **options):
    path = tmp_path / "leap_reorient_policy.onnx"
    path.write_bytes(data)
    result = import_playground(path, **options)
    return TermPolicyRuntime(result.model.SerializeToString(), hand=HAND), result


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("pose", ["identity", "leap palm"])
def test_reexpressed_native_policy_imports_with_the_same_targets(tmp_path, native, pose):
    if pose == "identity":
        data, options = U.playground_onnx(native), {}
    else:
        data = U.playground_onnx(native, palm_xyz=PALM_XYZ, palm_wxyz=PALM_WXYZ)
        options = {"palm_pose": (*PALM_XYZ, *PALM_WXYZ)}
    runtime, result = import_bytes(tmp_path, data, **options)
    diff = max_target_difference(native.runtime(), runtime)
    assert diff <= TOLERANCE, diff
    assert any("normaliser: the graph starts with Sub" in n for n in result.notes)


def test_an_action_scale_option_matching_training_round_trips(tmp_path, native):
    runtime, _ = import_bytes(tmp_path, U.playground_onnx(native, action_scale=0.6), action_scale=0.6)
    assert max_target_difference(native.runtime(), runtime) <= TOLERANCE


@pytest.mark.parametrize("broken", ["missing normaliser", "action scale", "palm pose", "grasp site"])
def test_each_convention_taken_the_other_way_breaks_parity(tmp_path, native, broken):
    make, options = {}, {}
    if broken == "missing normaliser":
        make["normaliser"] = False
    elif broken == "action scale":
        options["action_scale"] = 0.6
    elif broken == "palm pose":
        make.update(palm_xyz=PALM_XYZ, palm_wxyz=PALM_WXYZ)
    else:
        options["grasp_site"] = (0.0, 0.0, 0.0)
    runtime, _ = import_bytes(tmp_path, U.playground_onnx(native, **make), **options)
    assert max_target_difference(native.runtime(), runtime) > BROKEN


# ------------------------------------------------------------------ the contract
def test_contract_follows_leap_cube_reorient(tmp_path, native):
    _, result = import_bytes(tmp_path, U.playground_onnx(native))
    c = result.contract
    assert c.joint_names == tuple(U.PLAYGROUND_JOINTS)
    canonical = [HAND.joint_names[i] for i in U.PLAYGROUND_CANONICAL]
    assert [JOINT_ALIASES[n] for n in JOINT_NAMES] == canonical
    assert JOINT_ALIASES["if_mcp"] == "ffj1" and JOINT_ALIASES["if_rot"] == "ffj0"
    by_canonical = dict(zip(canonical, zip(c.joint_limits.lower, c.joint_limits.upper)))
    expected = dict(zip(HAND.joint_names, zip(*U.LEAP_LIMITS_CANONICAL)))
    assert by_canonical == expected            # same literals from leap_rh_mjx.xml
    assert tuple(zip(c.joint_limits.lower, c.joint_limits.upper)) == CTRL_RANGE
    assert [t.kind for t in c.terms] == ["joint_positions", "joint_tracking_error", "object_position",
                                         "orientation_error_matrix", "previous_actions"]
    assert c.input_shape(c.inputs[0]) == (1, 57)
    assert c.term("cube_pos_error").params.origin == (0.11, 0.0, 0.03)
    assert c.term("cube_ori_error").params.rows == (1, 2)
    a = c.action
    assert (a.output, a.mode, a.scale, a.input_clip, a.ema_alpha, c.control_rate_hz) == \
        ("continuous_actions", "delta_previous_target", (0.5,), None, 1.0, 20.0)
    assert any("⚠" in n and "--palm-pose" in n for n in result.notes)
    assert any("⚠" in n and "thumb" in n for n in result.notes)


# ------------------------------------------------------------------ refusals
def test_files_the_preset_does_not_read_are_refused_naming_the_difference(tmp_path):
    path = tmp_path / "params.pkl"
    path.write_bytes(b"\x80\x04\x95 not an onnx file at all")
    with pytest.raises(ImportRefused, match="not a valid ONNX model.*brax_network_to_onnx"):
        import_playground(path)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(56, 16), torch.nn.Tanh())
    with pytest.raises(ImportRefused, match="expects 57, the model has 56"):
        import_bytes(tmp_path, U.export_onnx(net, "obs", 56, "continuous_actions"))
    net = torch.nn.Sequential(torch.nn.Linear(57, 16), torch.nn.Tanh())
    with pytest.raises(ImportRefused, match="outputs 'actions' .* 'continuous_actions'"):
        import_bytes(tmp_path, U.export_onnx(net, "obs", 57, "actions"))


def test_nan_output_gives_no_action(tmp_path):
    class NaNWhenMoved(torch.nn.Module):
        def forward(self, obs):
            return torch.zeros(1, 16) + torch.sqrt(-torch.abs(obs[:, :1]))
    runtime, _ = import_bytes(tmp_path, U.export_onnx(NaNWhenMoved(), "obs", 57, "continuous_actions"))
    out = runtime.step(demo_steps().inputs(0))
    assert out.target is None and out.status is StepStatus.NAN_OUTPUT
    assert np.isnan(run_episode(runtime)).all()


def test_preset_registry():
    assert preset("playground-leap-reorient").name == "playground-leap-reorient"
