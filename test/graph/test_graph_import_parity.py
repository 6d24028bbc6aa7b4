"""Every importer, proven through the live graph: a policy trained on this package's simulator episodes,
re-expressed in an upstream convention and saved in that upstream's file format, is brought back by
`dexterity-ros import`; `dexterity-ros parity --reference` replays the demo episode through the graph
(sim bridge -> student nodes over real DDS) with the imported policy and the native original side by
side, and their targets must agree within 1e-5 rad on every step. One broken convention must fail it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))

import native_policies as N          # noqa: E402
import upstream_onnx as U            # noqa: E402
import upstream_rl_games as ur       # noqa: E402
from dexterity_ros.cli import main   # noqa: E402
from ros_harness import run_telling_where_it_hangs   # noqa: E402


def _isaaclab(tmp: Path):
    native = N.train_native(U.isaaclab_native_contract("full"))
    path = tmp / "policy.onnx"
    path.write_bytes(U.isaaclab_onnx(native, obs="full", joint_order="physx", version="2"))
    return native.onnx_bytes, path, ["--obs", "full", "--joint-order", "physx", "--isaaclab-version", "2"]


def _isaacgymenvs(tmp: Path):
    native = ur.train_ige_native("full_no_vel")
    return native.onnx_bytes, ur.save(ur.reexpress_ige(native).checkpoint, tmp / "AllegroHand.pth"), [
        "--obs-type", "full_no_vel"]


def _hora(tmp: Path):
    native = ur.train_hora_native()
    return native.onnx_bytes, ur.save(ur.reexpress_hora(native).checkpoint, tmp / "best.ckpt"), []


def _playground(tmp: Path):
    native = U.train_playground_native()
    path = tmp / "leap_reorient_policy.onnx"
    path.write_bytes(U.playground_onnx(native))
    return native.onnx_bytes, path, []


CASES = {"isaaclab-allegro-repose": _isaaclab, "isaacgymenvs-allegro": _isaacgymenvs, "hora": _hora,
         "playground-leap-reorient": _playground}


def imported_and_native(preset: str, tmp: Path, extra: list[str] = ()) -> tuple[Path, Path]:
    native_bytes, upstream, options = CASES[preset](tmp)
    native = tmp / "native.onnx"
    native.write_bytes(native_bytes)
    imported = tmp / "imported.onnx"
    # the native policies act at the simulator's 12 Hz; the import states that rate as a training choice
    code = main(["import", "--preset", preset, str(upstream), "-o", str(imported), "--control-rate-hz", "12",
                 *options, *extra])
    assert code == 0 and imported.is_file()
    return imported, native


def parity(model: Path, reference: Path) -> subprocess.CompletedProcess:
    """Replay at twice the speed, on the replay's clock: the stamps keep the recorded spacing, so both models
    act on every recorded step (113 of the 117 frames; 120 joint states for HORA) in 7 s less than at 1x."""
    from dexterity_ros.cli_commands.demo import ensure_demo_episode

    return run_telling_where_it_hangs([sys.executable, "-m", "dexterity_ros.cli", "parity", str(ensure_demo_episode()),
                                       "--model", str(model), "--reference", str(reference), "--object-pose-topic",
                                       "sim/object_pose", "--tolerance", "1e-5", "--quiet", "--rate", "2"], 300)


@pytest.mark.parametrize("preset", sorted(CASES))
def test_imported_policy_acts_like_its_native_original_through_the_live_graph(preset, tmp_path):
    imported, native = imported_and_native(preset, tmp_path)
    result = parity(imported, native)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verdict: PASS" in result.stdout
    assert "missing live: 0, extra live: 0" in result.stdout
    live = int(result.stdout.split("live actions")[1].split()[0])
    assert live >= 110, f"only {live} live actions compared"


def test_a_wrong_joint_order_fails_the_live_parity(tmp_path):
    native_bytes, upstream, options = _isaaclab(tmp_path)
    options[options.index("physx")] = "newton"
    native = tmp_path / "native.onnx"
    native.write_bytes(native_bytes)
    imported = tmp_path / "imported.onnx"
    assert main(["import", "--preset", "isaaclab-allegro-repose", str(upstream), "-o", str(imported),
                 "--control-rate-hz", "12", *options]) == 0
    result = parity(imported, native)
    assert result.returncode == 1 and "verdict: FAIL" in result.stdout, result.stdout[-3000:]
