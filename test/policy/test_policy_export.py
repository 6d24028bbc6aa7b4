"""Exporter: verified files only; `dexterity-ros export` / `info` on real models."""
from __future__ import annotations

import argparse
import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from dexterity_ros.cli_commands import export as export_cmd
from dexterity_ros.cli_commands import info as info_cmd
from dexterity_ros.paths import models_path
from dexterity_ros.policy.contract import read_contract, sample_inputs
from dexterity_ros.policy.export import ExportError, export_policy
from dexterity_ros.policy.networks import build_reference_student
from dexterity_ros.policy.runtime import PolicyRuntime
from policy_fixtures import HAND, J, PERCEPTION, cloud, probe_model, replace

GOAL = np.array([1.0, 0.0, 0.0, 0.0])


def cli(*argv: str) -> int:
    """Run our subcommands through argparse exactly as `dexterity-ros` does."""
    parser = argparse.ArgumentParser(prog="dexterity-ros")
    sub = parser.add_subparsers(dest="command", required=True)
    export_cmd.register(sub)
    info_cmd.register(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def small_student():
    return build_reference_student(0, hand=HAND, perception=PERCEPTION, history_length=2)


def test_reference_student_exports_and_runs(tmp_path, small_student):
    module, contract = small_student
    report = export_policy(module, contract, tmp_path / "s.onnx")
    assert report.max_abs_diff <= 1e-5 and report.path.is_file()
    stored = read_contract(report.path)
    assert stored.joint_names == HAND.joint_names
    assert stored.provenance["parity_max_abs_diff"] <= 1e-5 and stored.provenance["opset"] == 17
    runtime = PolicyRuntime(report.path)
    # the runtime's ONNX action equals torch eager on the same graph inputs
    out = runtime.step(cloud(np.random.default_rng(0)), np.clip(np.full(J, 0.4), HAND.lower, HAND.upper), GOAL, 0)
    args = [torch.from_numpy(runtime.last_inputs[s.name]) for s in contract.inputs]
    with torch.inference_mode():
        np.testing.assert_allclose(out.action, module(*args)[0].numpy(), atol=1e-5)


class DataDependentBranch(nn.Module):
    """Traces only the branch taken by the example input: ONNX silently computes the wrong thing."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, J)

    def forward(self, points, q, history, goal):
        uses_all = 0 * (points.sum() + q.sum() + history.sum())
        if float(points[..., 0].mean()) > 0.08:
            return torch.tanh(self.linear(goal)) + uses_all
        return -torch.tanh(self.linear(goal)) + uses_all


class RandomNoise(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, J)

    def forward(self, points, q, history, goal):
        return self.linear(goal) + torch.rand(1, J)


class TwelveJoints(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 12)

    def forward(self, points, q, history, goal):
        return self.linear(goal)


@pytest.mark.parametrize("module, message", [
    (DataDependentBranch(), "onnxruntime and torch disagree"),
    (RandomNoise(), "not deterministic"),
    (TwelveJoints(), "outputs['action'].shape': contract has [1, 16], the module returns [1, 12]"),
])
def test_exporter_refuses_and_writes_nothing(tmp_path, small_student, module, message):
    _, contract = small_student
    target = tmp_path / "refused.onnx"
    with pytest.raises(ExportError) as info:
        export_policy(module, contract, target)
    assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_exporter_refuses_inconsistent_contract(tmp_path, small_student):
    module, contract = small_student
    with pytest.raises(ExportError, match="default_joint_pos"):
        export_policy(module, replace(contract, default_joint_pos=(0.1,) * 3), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_recurrent_student_carries_state_and_resets(tmp_path):
    module, contract = build_reference_student(1, hand=HAND, perception=PERCEPTION, history_length=0,
                                               recurrent_size=8,
                                               action_mode="relative-to-previous-target", action_scale=0.05)
    report = export_policy(module, contract, tmp_path / "rec.onnx", trials=3)
    runtime = PolicyRuntime(report.path)
    rng = np.random.default_rng(0)
    points, q = cloud(rng), np.clip(np.full(J, 0.4), HAND.lower, HAND.upper)
    states = []
    for k in range(3):
        runtime.step(points, q, GOAL, k * 83_000_000)
        states.append(runtime.last_inputs["recurrent_state_in"].copy())
    np.testing.assert_array_equal(states[0], np.zeros((1, 8), np.float32))   # initial_value
    assert not np.array_equal(states[1], states[0]) and not np.array_equal(states[2], states[1])
    out = runtime.step(points, q, np.array([0.0, 1.0, 0.0, 0.0]), 3 * 83_000_000)
    assert out.reset_reason == "new goal"
    np.testing.assert_array_equal(runtime.last_inputs["recurrent_state_in"], states[0])


def test_reference_student_export_is_byte_reproducible(tmp_path):
    # models/student.onnx is the distilled student now (test_learning_parity.py checks it)
    for name in ("a.onnx", "b.onnx"):
        assert cli("export", "--reference-student", "--seed", "0", "-o", str(tmp_path / name)) == 0
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()     # noqa: E731
    assert digest(tmp_path / "a.onnx") == digest(tmp_path / "b.onnx")
    assert read_contract(tmp_path / "a.onnx").provenance["command"] == "dexterity-ros export --reference-student --seed 0"


def test_cli_export_refuses_with_exit_code(tmp_path, capsys):
    contract_file = tmp_path / "contract.json"
    _, contract = build_reference_student(0, hand=HAND, perception=PERCEPTION)
    contract_file.write_text(contract.to_json())
    code = cli("export", "--module", "test_policy_export:TwelveJoints", "--contract", str(contract_file),
               "-o", str(tmp_path / "m.onnx"))
    assert code == 1 and "export refused" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_cli_info_describes_the_contract(capsys):
    assert cli("info", str(models_path("student.onnx"))) == 0
    text = capsys.readouterr().out
    for expected in ("contract  v1  distilled_student", "action_mode absolute", "512 points in frame 'palm'",
                     "3 steps of actions", "goal      quaternion", "thj0", "[0.263, 1.396]",
                     "graph: inputs and outputs match the contract",
                     "perception: point count and segmentation hash match"):
        assert expected in text, expected
    assert cli("info", "--json", str(models_path("student.onnx"))) == 0
    assert '"contract_version": 1' in capsys.readouterr().out


def test_cli_info_errors(tmp_path, capsys):
    assert cli("info", str(tmp_path / "episode_bag")) == 2          # neither a model nor a bag
    assert "does not exist" in capsys.readouterr().err
    names = list(HAND.joint_names)
    names[3] = "pinky"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(probe_model(joint_names=names))
    assert cli("info", str(bad)) == 1
    assert "hand: MISMATCH" in capsys.readouterr().out
    lying = tmp_path / "lying.onnx"
    from policy_fixtures import model_with_metadata, probe_contract
    from dexterity_ros.policy.contract import METADATA_KEY
    lying.write_bytes(model_with_metadata(probe_contract(), {METADATA_KEY: probe_contract(history=2).to_json()}))
    assert cli("info", str(lying)) == 1
    assert "graph: MISMATCH" in capsys.readouterr().out
    (tmp_path / "none.onnx").write_bytes(b"\x00garbage")
    assert cli("info", str(tmp_path / "none.onnx")) == 1
    assert "none.onnx" in capsys.readouterr().err


def test_sample_inputs_match_contract_shapes(small_student):
    _, contract = small_student
    feeds = sample_inputs(contract, np.random.default_rng(0))
    assert {k: v.shape for k, v in feeds.items()} == {s.name: tuple(s.shape) for s in contract.inputs}
