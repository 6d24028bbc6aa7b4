"""`dexterity-ros calib-check --solve`: exit codes, the written YAML, the overlay, refusals and failures.

Simulator frames with camera jitter off are rendered with exactly the camera
of config/extrinsics.yaml, so the true extrinsic is known; the start given to
--solve is far off it.
"""
import json
import math

import numpy as np
import pytest
from matplotlib.image import imread

from dexterity_ros.calibration import rotation_from_vector, transform_difference
from dexterity_ros.cli import main as cli_main
from dexterity_ros.cli_commands.calib_check import (EXIT_CHECK, EXIT_GOOD, EXIT_NO_SOLUTION, EXIT_USAGE,
                                                    sim_frames)
from dexterity_ros.extrinsics import Extrinsic, load_extrinsic, save_extrinsic
from dexterity_ros.geometry import make_transform
from dexterity_ros.paths import config_path
from dexterity_ros.ros.bags.episode import EpisodeBagWriter, EpisodeStep

NOMINAL = load_extrinsic(config_path("extrinsics.yaml"))
SIM = ["--sim-seed", "5", "--frames", "4", "--sim-jitter", "off", "--mount", "palm_up"]


def far_start(tmp_path, shift=(0.0, 0.06, -0.05), axis=(1.0, 0.0, 1.0), degrees=20.0):
    axis = np.asarray(axis) / np.linalg.norm(axis)
    matrix = make_transform(NOMINAL.rotation @ rotation_from_vector(axis * math.radians(degrees)),
                            NOMINAL.translation + np.asarray(shift))
    path = tmp_path / "start.yaml"
    save_extrinsic(Extrinsic(matrix), path)
    return path


def test_solve_writes_the_yaml_and_the_overlay_and_refuses_to_overwrite(tmp_path, capsys):
    start = far_start(tmp_path)
    written, overlay = tmp_path / "solved.yaml", tmp_path / "overlay.png"
    status = cli_main(["calib-check", *SIM, "--extrinsic", str(start), "--solve", "--write", str(written),
                       "--overlay", str(overlay), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert status == EXIT_GOOD and result["verdict"] == "good", result
    assert result["sim_true_offset"]["translation_mm"] > 70 and result["sim_true_offset"]["rotation_deg"] > 19
    assert result["sim_solution_error"]["translation_mm"] < 3.0 and result["sim_solution_error"]["rotation_deg"] < 1.0
    assert result["residual"]["median_abs_residual_mm"] < 2.0 < result["start_residual"]["median_abs_residual_mm"]
    # the file is the printed YAML, and it is the true camera
    assert written.read_text() == result["solution"]["yaml"]
    assert transform_difference(load_extrinsic(written).matrix, NOMINAL.matrix)[0] < 3.0
    assert result["change_from_start"]["translation_mm"] == pytest.approx(
        transform_difference(load_extrinsic(start).matrix, load_extrinsic(written).matrix)[0], abs=0.01)
    assert np.allclose(result["solution"]["translation"], load_extrinsic(written).translation, atol=1e-6)
    # the overlay: two panels (before, after) of the depth image with the model drawn on it
    assert overlay.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and overlay.stat().st_size > 20_000
    image = imread(overlay)
    assert image.shape[1] > 1.8 * image.shape[0]
    left, right = image[:, : image.shape[1] // 2], image[:, image.shape[1] // 2:]
    assert np.abs(left[..., :3] - right[..., :3]).mean() > 0.01
    # the same --write again: refused before any work, the file untouched
    before = written.read_bytes()
    assert cli_main(["calib-check", *SIM, "--extrinsic", str(start), "--solve", "--write", str(written)]) == EXIT_USAGE
    assert "exists" in capsys.readouterr().err and written.read_bytes() == before


def test_check_exits_non_zero_when_far_off_and_force_replaces_a_file(tmp_path, capsys):
    start = far_start(tmp_path, shift=(0.0, 0.08, 0.0), degrees=0.0)
    assert cli_main(["calib-check", *SIM, "--extrinsic", str(start)]) == EXIT_CHECK
    out = capsys.readouterr().out
    assert "CHECK THE CALIBRATION" in out and "--solve" in out            # no correction: points to --solve
    near = far_start(tmp_path, shift=(0.008, 0.0, 0.0), degrees=0.0)
    target = tmp_path / "existing.yaml"
    target.write_text("placeholder\n")
    assert cli_main(["calib-check", *SIM, "--extrinsic", str(near), "--write", str(target)]) == EXIT_USAGE
    assert target.read_text() == "placeholder\n"
    assert cli_main(["calib-check", *SIM, "--extrinsic", str(near), "--write", str(target), "--force"]) == EXIT_CHECK
    assert transform_difference(load_extrinsic(target).matrix, NOMINAL.matrix)[0] < 4.0   # the corrected one


def test_no_hand_in_the_bag_is_no_calibration_and_nothing_is_written(tmp_path, capsys):
    truths: list = []
    bag = tmp_path / "handless"
    with EpisodeBagWriter(bag, {"seed": 0}) as writer:
        for k, frame in enumerate(sim_frames(5, 3, "palm_up", False, truths)):
            depth = np.where(frame.depth < 0.7, 0.0, frame.depth).astype(np.float32)   # hand and object cut out
            writer.write_step(EpisodeStep(stamp_ns=10**9 + k * 83_333_333, depth_m=depth,
                                          intrinsics=frame.intrinsics, joint_positions=frame.joint_positions,
                                          goal_wxyz=np.array([1.0, 0, 0, 0]), action=None))
    written, overlay = tmp_path / "solved.yaml", tmp_path / "overlay.png"
    status = cli_main(["calib-check", "--bag", str(bag), "--solve", "--write", str(written), "--overlay", str(overlay)])
    captured = capsys.readouterr()
    assert status == EXIT_NO_SOLUTION
    assert "NO CALIBRATION FOUND" in captured.out and "no calibration found" in captured.err
    assert "out of view" in captured.err and "Traceback" not in captured.err
    assert not written.exists() and not overlay.exists()


@pytest.mark.parametrize("extra, message", [
    (["--overlay", "x.jpg"], "must end in .png"),
    (["--solve", "--search-rotation-deg", "120"], "--search-rotation-deg"),
    (["--frames", "0"], "--frames"),
])
def test_bad_arguments_are_refused(tmp_path, capsys, extra, message):
    assert cli_main(["calib-check", "--sim-seed", "0", *extra]) == EXIT_USAGE
    assert message in capsys.readouterr().err
