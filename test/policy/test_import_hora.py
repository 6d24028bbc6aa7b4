"""Preset hora: a native network of HORA's structure, written as a HORA stage-2 .ckpt, comes back exact.

The proof (issue 19): :mod:`upstream_rl_games` trains a native proprioceptive delta policy with HORA's
deploy structure (adaptation convolutions over the history, tanh extrinsics, ELU actor, mu) on the
demo episode, re-expresses it in HORA's convention (joint order index, thumb, middle, ring; rows of
[unscaled q, target in radians]; running_mean_std and sa_mean_std normalisers; action 1/24) and writes
padapt.py's checkpoint; the preset imports it and the targets equal the native's within 1e-5 rad.
Each broken convention must break that parity (> 1e-3 rad); malformed files are refused clearly.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import torch

from dexterity_ros.policy.importers import ImportRefused, preset
from dexterity_ros.policy.importers import hora
from dexterity_ros.policy.runtime import RuntimeOptions
from dexterity_ros.policy.runtime_v2 import TermPolicyRuntime
from native_policies import HAND, TOLERANCE, max_target_difference
import upstream_rl_games as ur

BROKEN = 1e-3


@pytest.fixture(scope="module")
def native():
    return ur.train_hora_native()


@pytest.fixture(scope="module")
def checkpoint(native):
    re = ur.reexpress_hora(native)
    assert re.map_error < 1e-9, "the re-expression's row map disagrees with the runtime's terms"
    assert re.max_normalized < 4.0, "the chosen statistics would reach HORA's clamp at 5"
    return re.checkpoint


def import_file(path, *argv):
    parser = argparse.ArgumentParser()
    hora.PRESET.add_arguments(parser)
    return hora.PRESET.build(path, parser.parse_args(list(argv)))


def runtime_of(result) -> TermPolicyRuntime:
    return TermPolicyRuntime(result.model.SerializeToString(), hand=HAND, options=RuntimeOptions())


def imported_difference(native, checkpoint, tmp_path, *argv) -> float:
    path = ur.save(checkpoint, tmp_path / "policy.ckpt")
    return max_target_difference(native.runtime(), runtime_of(import_file(path, *argv)))


def test_imported_policy_reproduces_the_native_targets(native, checkpoint, tmp_path):
    result = import_file(ur.save(checkpoint, tmp_path / "stage2.ckpt"))
    assert preset("hora") is hora.PRESET
    c = result.contract
    assert c.graph_inputs() == [("obs", (1, 96)), ("proprio_hist", (1, 30, 32))]
    assert c.joint_names[4:8] == ("joint_12.0", "joint_13.0", "joint_14.0", "joint_15.0")   # thumb second
    assert c.action.mode == "delta_previous_target" and c.action.scale == (pytest.approx(1 / 24),)
    assert c.control_rate_hz == 20 and c.sources == ("joint_states",)
    assert len(c.inputs[1].normalizer.mean) == 960 and c.inputs[1].normalizer.epsilon == 1e-5
    assert c.joint_limits.lower[4] == 0.263 and c.joint_limits.upper[5] == 1.163
    diff = max_target_difference(native.runtime(), runtime_of(result))
    assert diff <= TOLERANCE, f"imported targets differ from the native's by {diff:.3g} rad"


@pytest.mark.parametrize("change", [
    {"order": tuple(ur.V4_ORDER)},                       # joint order: the driver's instead of HORA's
    {"fields": ("target_rad", "q_unit")},                # target written before q in each row
    {"fields": ("q_rad", "target_rad")},                 # q in radians where HORA unscales it
    {"action_scale": 1 / 20},                            # action scale other than 1/24
], ids=["joint-order", "row-order", "position-scale", "action-scale"])
def test_a_broken_convention_breaks_parity(native, tmp_path, change):
    re = ur.reexpress_hora(native, dataclasses.replace(ur.HoraConvention(), **change))
    diff = imported_difference(native, re.checkpoint, tmp_path)
    assert diff > BROKEN, f"{change}: parity should fail, max difference {diff:.3g} rad"


def test_normaliser_dropped_is_refused_and_stripped_breaks_parity(native, checkpoint, tmp_path):
    no_sa = {k: v for k, v in checkpoint.items() if k != "sa_mean_std"}
    with pytest.raises(ImportRefused, match="no 'sa_mean_std'.*stage-2.*train_s2.sh"):
        import_file(ur.save(no_sa, tmp_path / "a.ckpt"))
    no_rms = {k: v for k, v in checkpoint.items() if k != "running_mean_std"}
    with pytest.raises(ImportRefused, match="no 'running_mean_std'"):
        import_file(ur.save(no_rms, tmp_path / "b.ckpt"))
    stripped = ur.reexpress_hora(native, identity_normalizers=True).checkpoint
    assert imported_difference(native, stripped, tmp_path) > BROKEN


def test_refuses_stage_one_and_malformed_checkpoints(checkpoint, tmp_path):
    with pytest.raises(ImportRefused, match=r"no 'sa_mean_std'.*value_mean_std: a stage-1 ppo.py .pth"):
        import_file(ur.save(ur.hora_stage1(checkpoint), tmp_path / "s1.pth"))
    no_adapt = {**checkpoint, "model": ur.hora_stage1(checkpoint)["model"]}
    with pytest.raises(ImportRefused, match="no adaptation module.*stage-1.*import its .ckpt"):
        import_file(ur.save(no_adapt, tmp_path / "s1b.ckpt"))
    text = tmp_path / "x.ckpt"
    text.write_bytes(b"\x00\x01 garbage")
    with pytest.raises(ImportRefused, match="not a PyTorch checkpoint"):
        import_file(text)
    with pytest.raises(ImportRefused, match=r"no 'model' entry \(found \['weights'\]"):
        import_file(ur.save({"weights": checkpoint["model"]}, tmp_path / "w.ckpt"))
    model = {k: v for k, v in checkpoint["model"].items() if k != "mu.bias"}
    with pytest.raises(ImportRefused, match="no 'mu.bias'"):
        import_file(ur.save({**checkpoint, "model": model}, tmp_path / "m.ckpt"))


def test_refuses_sizes_that_disagree(checkpoint, tmp_path):
    for steps in (20, 40):
        sa = {k: (torch.cat([v] * 2)[:steps] if k != "count" else v) for k, v in checkpoint["sa_mean_std"].items()}
        with pytest.raises(ImportRefused, match=rf"sa_mean_std covers {steps} steps.*low_dim_proj takes 96 = 32 "
                                                r"channels.*built for 29 to 30 steps"):
            import_file(ur.save({**checkpoint, "sa_mean_std": sa}, tmp_path / "s.ckpt"))
    rms = {k: (v[:64] if k != "count" else v) for k, v in checkpoint["running_mean_std"].items()}
    with pytest.raises(ImportRefused, match="observation normaliser size.*expects 96, the model has 64"):
        import_file(ur.save({**checkpoint, "running_mean_std": rms}, tmp_path / "r.ckpt"))
    model = dict(checkpoint["model"])
    model["mu.weight"], model["mu.bias"] = model["mu.weight"][:12], model["mu.bias"][:12]
    with pytest.raises(ImportRefused, match="action size.*expects 16, the model has 12"):
        import_file(ur.save({**checkpoint, "model": model}, tmp_path / "a.ckpt"))


def test_degenerate_normaliser_statistics(checkpoint, tmp_path):
    sa = dict(checkpoint["sa_mean_std"])
    var = sa["running_var"].clone()
    var[0, 3] = 0.0                                     # zero variance: upstream divides by sqrt(1e-5) too
    sa["running_var"] = var
    result = import_file(ur.save({**checkpoint, "sa_mean_std": sa}, tmp_path / "z.ckpt"))
    assert result.contract.inputs[1].normalizer.std[3] == 0.0
    assert np.isfinite(runtime_of(result).step(ur.demo_steps().inputs(0)).target).all()
    var[29, 31] = -2.0
    with pytest.raises(ImportRefused, match=r"sa_mean_std.running_var: negative variance at positions \[959\]"):
        import_file(ur.save({**checkpoint, "sa_mean_std": sa}, tmp_path / "n.ckpt"))
    bad = dict(checkpoint["running_mean_std"])
    bad["running_mean"] = torch.full_like(bad["running_mean"], float("inf"))
    with pytest.raises(ImportRefused, match=r"running_mean_std.running_mean: NaN or inf at positions \[0, 1"):
        import_file(ur.save({**checkpoint, "running_mean_std": bad}, tmp_path / "i.ckpt"))
