"""`dexterity-ros import`, `contract attach|show`, and `info`/`doctor` on files with and without a contract.

The CLI runs in-process through ``dexterity_ros.cli.main``. Models are small
untrained networks with the upstream input/output names (the parity of each
preset is proven in test_import_isaaclab.py / test_import_playground.py).
A refusal is one ``error:`` line with exit status 1 and nothing written; a
usage error exits 2 and says why a missing option is required.
"""
from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

import upstream_onnx as U
from dexterity_ros.cli import main
from dexterity_ros.policy.contract import METADATA_KEY
from dexterity_ros.policy.contract_v2 import PolicyContractV2
from dexterity_ros.policy.loading import NO_CONTRACT_HINT, read_any_contract

ISAACLAB = ["--preset", "isaaclab-allegro-repose"]
ISAACLAB_OPTIONS = ["--obs", "no_vel", "--joint-order", "physx", "--isaaclab-version", "2"]


def cli(capfd, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:                       # argparse's usage errors and --help
        code = exc.code
    out, err = capfd.readouterr()
    return code, out, err


def mlp_file(path: Path, size: int, output_name: str = "actions") -> Path:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(size, 8), torch.nn.ELU(), torch.nn.Linear(8, 16))
    path.write_bytes(U.export_onnx(net, "obs", size, output_name))
    return path


# ------------------------------------------------------------------ import
def test_help_lists_the_presets_and_a_presets_options(capfd):
    code, out, _ = cli(capfd, "import", "--help")
    assert code == 0
    assert "isaaclab-allegro-repose" in out and "playground-leap-reorient" in out and "--preset PRESET" in out
    code, out, _ = cli(capfd, "import", *ISAACLAB, "--help")
    assert code == 0
    assert "--joint-order" in out and "--isaaclab-version" in out and "--ema-alpha" in out
    code, out, _ = cli(capfd, "import", "--preset", "playground-leap-reorient", "--help")
    assert code == 0 and "--palm-pose" in out and "--joint-order" not in out


def test_a_missing_required_option_is_a_usage_error_saying_why(tmp_path, capfd):
    model = mlp_file(tmp_path / "policy.onnx", 50)
    code, _, err = cli(capfd, "import", *ISAACLAB, model, "-o", tmp_path / "out.onnx", "--obs", "no_vel")
    assert code == 2
    assert "required: --joint-order, --isaaclab-version" in err
    assert "physics backend" in err and "quaternions" in err
    assert not (tmp_path / "out.onnx").exists()
    code, _, err = cli(capfd, "import", "--preset", "nonsense", model, "-o", tmp_path / "out.onnx")
    assert code == 2 and "invalid choice" in err


def test_import_prints_the_table_and_notes_and_writes_the_model(tmp_path, capfd):
    model = mlp_file(tmp_path / "policy.onnx", 50)
    out_path = tmp_path / "models" / "allegro.onnx"
    code, out, err = cli(capfd, "import", *ISAACLAB, model, "-o", out_path, *ISAACLAB_OPTIONS)
    assert code == 0, err
    assert "contract v2: isaaclab-allegro-repose" in out and "goal_quat_diff" in out
    assert "notes:" in out and "⚠" in out and f"wrote {out_path}" in out
    contract = read_any_contract(out_path)
    assert isinstance(contract, PolicyContractV2) and contract.provenance["options"]["joint_order"] == "physx"
    assert not any(p.key == METADATA_KEY for p in onnx.load(str(model)).metadata_props)   # input untouched

    code, out, err = cli(capfd, "info", out_path)
    assert code == 0, out + err
    assert "contract v2: isaaclab-allegro-repose" in out and "graph: inputs and outputs match" in out
    code, out, _ = cli(capfd, "contract", "show", out_path)
    assert code == 0 and "joint order: index_joint_0, middle_joint_0" in out


@pytest.mark.parametrize("case", ["not onnx", "wrong size", "wrong output name"])
def test_a_refused_import_is_one_error_line_and_writes_nothing(tmp_path, capfd, case):
    if case == "not onnx":
        model = tmp_path / "policy.onnx"
        model.write_text("not a model\n")
        preset, options = ISAACLAB, ISAACLAB_OPTIONS
    elif case == "wrong size":
        model, preset, options = mlp_file(tmp_path / "policy.onnx", 72), ISAACLAB, ISAACLAB_OPTIONS
    else:
        model = mlp_file(tmp_path / "policy.onnx", 57, "actions")
        preset, options = ["--preset", "playground-leap-reorient"], []
    out_path = tmp_path / "out.onnx"
    code, out, err = cli(capfd, "import", *preset, model, "-o", out_path, *options)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: import refused:"), err
    if case == "wrong size":
        assert "expects 50" in err and "has 72" in err
    assert not out_path.exists() and out == ""
    assert list(tmp_path.iterdir()) == [model]               # no temporary file left behind


def test_the_output_may_not_be_the_input(tmp_path, capfd):
    model = mlp_file(tmp_path / "policy.onnx", 50)
    code, _, err = cli(capfd, "import", *ISAACLAB, model, "-o", model, *ISAACLAB_OPTIONS)
    assert code == 2 and "is the input model" in err


# ------------------------------------------------------------------ contract attach / show
SPEC = """\
# a policy no preset covers: joint positions (rad) and the last action -> absolute targets
name: my-policy
control_rate_hz: 20
joint_names: [ffj0, ffj1, ffj2, ffj3, mfj0, mfj1, mfj2, mfj3, rfj0, rfj1, rfj2, rfj3, thj0, thj1, thj2, thj3]
terms:
  - {name: q, kind: joint_positions}
  - {name: last, kind: previous_actions}
inputs: [{name: obs, terms: [q, last]}]
action: {output: actions, mode: unscale_limits, input_clip: 1.0}
outputs: [{name: actions, shape: [1, 16]}]
"""


def test_contract_attach_validates_prints_and_writes_next_to_the_model(tmp_path, capfd):
    model = mlp_file(tmp_path / "policy.onnx", 32)
    spec = tmp_path / "contract.yaml"
    spec.write_text(SPEC)
    code, out, err = cli(capfd, "contract", "attach", model, "--spec", spec)
    assert code == 0, err
    written = tmp_path / "policy.contract.onnx"
    assert "contract v2: my-policy" in out and f"wrote {written}" in out
    contract = read_any_contract(written)
    assert contract.name == "my-policy" and contract.provenance["spec"] == "contract.yaml"
    with pytest.raises(Exception, match="no policy contract"):
        read_any_contract(model)                              # the input is never changed without --in-place
    code, _, err = cli(capfd, "contract", "attach", model, "--spec", spec, "-o", model)
    assert code == 2 and "--in-place" in err
    code, out, err = cli(capfd, "contract", "attach", model, "--spec", spec, "--in-place")
    assert code == 0, err
    assert read_any_contract(model).name == "my-policy"
    code, out, _ = cli(capfd, "info", model)
    assert code == 0 and "hand: every policy joint maps onto a hand joint" in out


def _spec_with(**changes) -> str:
    import yaml
    data = yaml.safe_load(SPEC)
    data.update(changes)
    return yaml.safe_dump(data)


@pytest.mark.parametrize("changes, words", [
    ({"inputs": [{"name": "observation", "terms": ["q", "last"]}]},
     ["observation", "not among the model graph's inputs"]),
    ({"terms": [{"name": "q", "kind": "joint_positions"}, {"name": "last", "kind": "previous_actions", "length": 2}]},
     ["inputs['obs'].shape", "48", "32"]),
    ({"contract_version": 1}, ["contract_version", "`dexterity-ros export`"]),
    ({"joint_names": [f"j{k}" for k in range(16)]}, ["joint_names", "joint_aliases"]),
    ({"action": {"output": "actions", "mode": "sideways"}}, ["action", "sideways"]),
])
def test_contract_attach_refuses_a_spec_that_does_not_fit(tmp_path, capfd, changes, words):
    model = mlp_file(tmp_path / "policy.onnx", 32)
    spec = tmp_path / "contract.yaml"
    spec.write_text(_spec_with(**changes))
    code, _, err = cli(capfd, "contract", "attach", model, "--spec", spec)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: contract not attached:"), err
    for word in words:
        assert word in err
    assert not (tmp_path / "policy.contract.onnx").exists()


def test_contract_attach_reads_json_and_refuses_unreadable_inputs(tmp_path, capfd):
    import json

    import yaml
    model = mlp_file(tmp_path / "policy.onnx", 32)
    spec = tmp_path / "contract.json"
    spec.write_text(json.dumps(yaml.safe_load(SPEC)))
    code, _, err = cli(capfd, "contract", "attach", model, "--spec", spec, "-o", tmp_path / "a.onnx")
    assert code == 0, err
    spec.write_text("{not json")
    code, _, err = cli(capfd, "contract", "attach", model, "--spec", spec, "-o", tmp_path / "b.onnx")
    assert code == 1 and "not valid JSON" in err
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    spec.write_text(json.dumps(yaml.safe_load(SPEC)))
    code, _, err = cli(capfd, "contract", "attach", text, "--spec", spec)
    assert code == 1 and "not a readable ONNX model" in err


# ------------------------------------------------------------------ info / doctor without a contract
def test_info_and_doctor_say_how_to_add_a_missing_contract(tmp_path, capfd):
    model = mlp_file(tmp_path / "policy.onnx", 50)
    code, out, err = cli(capfd, "info", model)
    assert code == 1 and NO_CONTRACT_HINT in err and "no policy contract" in err
    code, out, err = cli(capfd, "contract", "show", model)
    assert code == 1 and NO_CONTRACT_HINT in err

    from dexterity_ros.cli_commands.doctor import FAIL, OK, check_model
    check = check_model(model, None)
    assert check.status == FAIL and "no policy contract" in check.detail and check.fix == NO_CONTRACT_HINT
    imported = tmp_path / "imported.onnx"
    assert cli(capfd, "import", *ISAACLAB, model, "-o", imported, *ISAACLAB_OPTIONS)[0] == 0
    check = check_model(imported, None)
    assert check.status == OK and "contract v2 'isaaclab-allegro-repose'" in check.detail, check
