"""Preset ``isaaclab-allegro-repose``: a native policy re-expressed as an Isaac Lab rsl_rl export comes back exact.

The proof (issue 19): :mod:`upstream_onnx` rewrites a native policy in Isaac
Lab's convention (BFS/DFS joint order, limit-normalised joints, env frame,
wxyz/xyzw quaternions, velocity scales, raw last action, EMA action to the
limits) with the rsl_rl normaliser inside the graph, as
``isaaclab_rl/rsl_rl/exporter.py`` writes it. Imported with the matching
options, the runtime's targets equal the native policy's on the demo episode
within 1e-5 rad; each convention taken the other way (joint order, Isaac Lab
version, missing normaliser, action scale, palm pose) moves them by more than
1e-3 rad. Files that are not what the preset reads are refused, naming why.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import upstream_onnx as U
from native_policies import HAND, TOLERANCE, demo_steps, max_target_difference, run_episode, train_native
from dexterity_ros.policy.importers import ImportRefused, preset
from dexterity_ros.policy.importers.isaaclab import JOINT_ORDERS, import_isaaclab
from dexterity_ros.policy.runtime import StepStatus
from dexterity_ros.policy.runtime_v2 import TermPolicyRuntime

BROKEN = 1e-3
OPTIONS = {"obs": "full", "joint_order": "physx", "isaaclab_version": "2"}


@pytest.fixture(scope="module")
def natives():
    return {obs: train_native(U.isaaclab_native_contract(obs)) for obs in ("full", "no_vel")}


def import_bytes(tmp_path, data: bytes, **options):
    path = tmp_path / "policy.onnx"
    path.write_bytes(data)
    result = import_isaaclab(path, **options)
    return TermPolicyRuntime(result.model.SerializeToString(), hand=HAND), result


def mlp_onnx(size: int, *, input_name="obs", output_name="actions", outputs=16) -> bytes:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(size, 8), torch.nn.ELU(), torch.nn.Linear(8, outputs))
    return U.export_onnx(net, input_name, size, output_name)


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("obs, order, version", [("full", "physx", "2"), ("full", "newton", "3"),
                                                 ("no_vel", "physx", "3"), ("no_vel", "newton", "2")])
def test_reexpressed_native_policy_imports_with_the_same_targets(tmp_path, natives, obs, order, version):
    native = natives[obs]
    data = U.isaaclab_onnx(native, obs=obs, joint_order=order, version=version)
    runtime, result = import_bytes(tmp_path, data, obs=obs, joint_order=order, isaaclab_version=version)
    diff = max_target_difference(native.runtime(), runtime)
    assert diff <= TOLERANCE, diff
    assert result.contract.joint_names == JOINT_ORDERS[order]
    assert any("normaliser: the graph starts with Sub" in n for n in result.notes)


def test_palm_pose_in_the_version_3_convention_and_a_trained_action_scale_round_trip(tmp_path, natives):
    native = natives["full"]
    xyz, wxyz = (0.05, -0.1, 0.45), (0.5, 0.5, -0.5, 0.5)
    data = U.isaaclab_onnx(native, obs="full", joint_order="physx", version="3", palm_xyz=xyz, palm_wxyz=wxyz,
                           action_scale=0.5)
    xyzw = (*wxyz[1:], wxyz[0])                       # as Isaac Lab 3.x writes it
    runtime, result = import_bytes(tmp_path, data, obs="full", joint_order="physx", isaaclab_version="3",
                                   palm_pose=(*xyz, *xyzw), action_scale=0.5)
    assert max_target_difference(native.runtime(), runtime) <= TOLERANCE
    assert result.contract.frame.rotation_wxyz == pytest.approx(wxyz)


@pytest.mark.parametrize("broken", ["joint order", "Isaac Lab version", "missing normaliser", "action scale",
                                    "palm pose"])
def test_each_convention_taken_the_other_way_breaks_parity(tmp_path, natives, broken):
    native = natives["full"]
    make = {"obs": "full", "joint_order": "physx", "version": "2"}
    options = dict(OPTIONS)
    if broken == "joint order":
        options["joint_order"] = "newton"
    elif broken == "Isaac Lab version":
        options["isaaclab_version"] = "3"
    elif broken == "missing normaliser":
        make["normaliser"] = False
    elif broken == "action scale":
        options["action_scale"] = 0.5
    else:
        make.update(palm_xyz=(0.0, 0.0, 0.4), palm_wxyz=(0.0, 1.0, 0.0, 0.0))
    runtime, _ = import_bytes(tmp_path, U.isaaclab_onnx(native, **make), **options)
    assert max_target_difference(native.runtime(), runtime) > BROKEN


# ------------------------------------------------------------------ the contract
def test_contract_follows_the_manager_based_task(tmp_path, natives):
    data = U.isaaclab_onnx(natives["no_vel"], obs="no_vel", joint_order="newton", version="3")
    _, result = import_bytes(tmp_path, data, obs="no_vel", joint_order="newton", isaaclab_version="3")
    c = result.contract
    assert [t.name for t in c.terms] == ["joint_pos", "object_pos", "object_quat", "goal_pos", "goal_quat",
                                         "goal_quat_diff", "last_action"]
    assert c.input_shape(c.inputs[0]) == (1, 50) and c.inputs[0].normalizer is None
    assert {t.params.order for t in c.terms if hasattr(t.params, "order") and t.kind != "previous_actions"} \
        == {"xyzw"}
    assert c.term("goal_pos").params.values == pytest.approx((0.0, -0.19, 0.52))
    assert c.joint_aliases["thumb_joint_2"] == "thj2" and c.joint_names[:5] == (
        "index_joint_0", "index_joint_1", "index_joint_2", "index_joint_3", "middle_joint_0")
    a = c.action
    assert (a.mode, a.input_clip, a.ema_alpha, a.input_scale, c.control_rate_hz) == \
        ("unscale_limits", 1.0, 0.95, 1.0, 30.0)
    assert c.provenance["preset"] == "isaaclab-allegro-repose" and c.provenance["options"]["obs"] == "no_vel"
    assert any("⚠" in n and "USD" in n for n in result.notes)


def test_joint_limits_from_a_file_by_name_or_in_policy_order(tmp_path):
    data = mlp_onnx(50)
    names = JOINT_ORDERS["physx"]
    by_name = tmp_path / "limits.yaml"
    by_name.write_text("".join(f"{n}: [{-0.1 - k / 100}, {1.0 + k / 100}]\n" for k, n in enumerate(names)))
    _, result = import_bytes(tmp_path, data, obs="no_vel", joint_order="physx", isaaclab_version="2",
                             joint_limits=str(by_name))
    assert result.contract.joint_limits.lower[3] == pytest.approx(-0.13)
    in_order = tmp_path / "limits.json"
    in_order.write_text('{"lower": [%s], "upper": [%s]}' % (", ".join(["-0.2"] * 16), ", ".join(["1.5"] * 16)))
    _, result = import_bytes(tmp_path, data, obs="no_vel", joint_order="physx", isaaclab_version="2",
                             joint_limits=str(in_order))
    assert result.contract.joint_limits.upper == (1.5,) * 16
    bad = tmp_path / "bad.yaml"
    bad.write_text("index_joint_0: [1.0, 0.0]\n")
    with pytest.raises(ImportRefused, match="no limits for"):
        import_bytes(tmp_path, data, obs="no_vel", joint_order="physx", isaaclab_version="2",
                     joint_limits=str(bad))


def test_a_plain_mlp_export_is_flagged_as_missing_its_normaliser(tmp_path):
    _, result = import_bytes(tmp_path, mlp_onnx(72), **OPTIONS)
    assert any(n.startswith("⚠ normaliser") and "Gemm" in n for n in result.notes)


# ------------------------------------------------------------------ refusals
def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "policy.pt"
    path.write_bytes(b"PK\x03\x04 this is a torch zip, not ONNX" * 8)
    with pytest.raises(ImportRefused, match="not a valid ONNX model.*rsl_rl exporter"):
        import_isaaclab(path, **OPTIONS)
    with pytest.raises(ImportRefused, match="no such file"):
        import_isaaclab(tmp_path / "missing.onnx", **OPTIONS)


@pytest.mark.parametrize("size, obs, words", [
    (60, "full", ["expects 72", "has 60"]),
    (50, "full", ["expects 72", "has 50", "--obs no_vel"]),
    (72, "no_vel", ["expects 50", "has 72", "--obs full"]),
    (124, "full", ["expects 72", "has 124", "direct workflow"]),
])
def test_an_input_size_that_disagrees_with_the_variant_is_refused_naming_both(tmp_path, size, obs, words):
    with pytest.raises(ImportRefused) as info:
        import_bytes(tmp_path, mlp_onnx(size), **{**OPTIONS, "obs": obs})
    for word in words:
        assert word in str(info.value)


def test_other_input_output_names_sizes_and_recurrent_exports_are_refused(tmp_path):
    with pytest.raises(ImportRefused, match="inputs 'input' .* preset expects one input 'obs'"):
        import_bytes(tmp_path, mlp_onnx(72, input_name="input"), **OPTIONS)
    with pytest.raises(ImportRefused, match="output 'actions' size .* expects 16, the model has 12"):
        import_bytes(tmp_path, mlp_onnx(72, outputs=12), **OPTIONS)

    class Recurrent(torch.nn.Module):
        def forward(self, obs, h_in, c_in):
            return obs[:, :16] + h_in.sum() + c_in.sum(), h_in, c_in
    import io
    import warnings
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Recurrent(), (torch.zeros(1, 72), torch.zeros(1, 1, 8), torch.zeros(1, 1, 8)), buffer,
                          dynamo=False, opset_version=11, input_names=["obs", "h_in", "c_in"],
                          output_names=["actions", "h_out", "c_out"])
    with pytest.raises(ImportRefused, match="recurrent exports"):
        import_bytes(tmp_path, buffer.getvalue(), **OPTIONS)


def test_bad_option_values_are_refused(tmp_path):
    with pytest.raises(ImportRefused, match="--isaaclab-version"):
        import_bytes(tmp_path, mlp_onnx(72), **{**OPTIONS, "isaaclab_version": "4"})
    with pytest.raises(ImportRefused, match="--palm-pose.*norm"):
        import_bytes(tmp_path, mlp_onnx(72), **OPTIONS, palm_pose=(0, 0, 0.5, 1, 1, 1, 1))
    from dexterity_ros.policy.contract import ContractError
    with pytest.raises(ContractError, match="ema_alpha"):
        import_bytes(tmp_path, mlp_onnx(72), **OPTIONS, ema_alpha=1.5)


class _NaNWhenMoved(torch.nn.Module):
    """Finite on a zero observation, NaN as soon as the first joint is off-centre."""

    def forward(self, obs):
        return torch.zeros(1, 16) + torch.sqrt(-torch.abs(obs[:, :1]))


def test_nan_output_is_refused_at_import_and_gives_no_action_at_run(tmp_path):
    class NaNAlways(torch.nn.Module):
        def forward(self, obs):
            return obs[:, :16] * float("nan")
    with pytest.raises(ImportRefused, match="NaN"):
        import_bytes(tmp_path, U.export_onnx(NaNAlways(), "obs", 72, "actions"), **OPTIONS)

    runtime, _ = import_bytes(tmp_path, U.export_onnx(_NaNWhenMoved(), "obs", 72, "actions"), **OPTIONS)
    steps = demo_steps()
    out = runtime.step(steps.inputs(0))
    assert out.target is None and out.status is StepStatus.NAN_OUTPUT
    assert np.isnan(run_episode(runtime, steps)).all()


def test_preset_registry_and_cli_hooks():
    p = preset("isaaclab-allegro-repose")
    assert p.name == "isaaclab-allegro-repose" and "exporter.py" in p.upstream
    import argparse
    parser = argparse.ArgumentParser()
    p.add_arguments(parser)
    args = parser.parse_args(["--obs", "full", "--joint-order", "newton", "--isaaclab-version", "3"])
    assert (args.ema_alpha, args.control_rate_hz, args.joint_limits, args.palm_pose) == (0.95, 30.0, "hand", None)
