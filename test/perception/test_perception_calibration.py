"""Extrinsic calibration check: hand rendering, depth residuals, alignment, the calib-check CLI.

Simulator frames with camera jitter off are rendered with exactly the camera
of config/extrinsics.yaml, so the true extrinsic is known.
"""
import dataclasses
import json

import numpy as np
import pytest

from dexterity_ros.ros.bags.episode import EpisodeBagWriter, EpisodeStep
from dexterity_ros.calibration import (CalibrationFrame, HandAlignmentConfig, align_hand, check_extrinsic,
                                       render_hand_depth, signed_distance, transform_difference)
from dexterity_ros.cli import main as cli_main
from dexterity_ros.camera_model import quantize_depth_mm
from dexterity_ros.extrinsics import Extrinsic, load_extrinsic, save_extrinsic
from dexterity_ros.geometry import axis_angle_to_quat, make_transform, quat_to_matrix
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.paths import config_path
from dexterity_ros.sim.env import ReorientEnv
from dexterity_ros.sim.model import LABEL_HAND
from dexterity_ros.sim.randomization import load_randomization_config
from dexterity_ros.sim.sim_config import load_sim_config

NOMINAL = load_extrinsic(config_path("extrinsics.yaml"))


def no_camera_jitter():
    rand = load_randomization_config()
    return dataclasses.replace(rand, **{k: dataclasses.replace(getattr(rand, k), enabled=False) for k in (
        "camera_translation_jitter", "camera_rotation_jitter", "focal_length_jitter", "principal_point_jitter")})


@pytest.fixture(scope="module")
def sim_frames():
    """(DepthFrame, measured joints) pairs, both grasps, everything randomized except the camera pose."""
    out = []
    for mount, seed in (("palm_up", 3), ("palm_down", 4)):
        with ReorientEnv(load_sim_config().with_overrides(mount=mount), no_camera_jitter(), 0) as env:
            obs = env.reset(seed=seed)
            for _ in range(2):
                out.append((obs.render(), np.array(obs.joint_positions), env.privileged_state().joint_positions))
                obs = env.step(env.initial_joint_positions).observation
    return out


def calibration_frames(sim_frames):
    return [CalibrationFrame(quantize_depth_mm(f.depth), f.calibrated_intrinsics, q) for f, q, _ in sim_frames]


def perturbed(translation_m=(0.0, 0.0, 0.0), axis=(0.0, 0.0, 1.0), degrees=0.0) -> np.ndarray:
    """The nominal extrinsic with the camera moved/turned in its own (optical) frame."""
    offset = make_transform(quat_to_matrix(axis_angle_to_quat(np.array(axis), np.radians(degrees))),
                            np.array(translation_m))
    return NOMINAL.matrix @ offset


def test_rendered_hand_matches_the_simulator(sim_frames):
    """Ray-cast collision shapes == MuJoCo's render of the same geoms (true joints, true camera)."""
    kin = HandKinematics()
    for frame, _, true_q in sim_frames:
        rendered = render_hand_depth(kin.collision_shapes(true_q), frame.intrinsics, frame.extrinsic.matrix)
        hand = frame.labels == LABEL_HAND
        both = hand & (rendered > 0)
        assert both.sum() / hand.sum() > 0.99                        # every hand pixel is rendered
        assert np.count_nonzero((rendered > 0) & (frame.labels == 0)) < 0.01 * hand.sum()
        measured = frame.depth[both & (frame.depth > 0)]
        assert np.median(np.abs(measured - rendered[both & (frame.depth > 0)])) < 0.002   # depth noise only


def test_correct_extrinsic_explains_the_hand(sim_frames):
    report = check_extrinsic(calibration_frames(sim_frames), NOMINAL.matrix)
    assert report.fit.median_abs_mm < 2.0 and report.fit.explained_fraction > 0.85
    assert report.fit.occluded_pixels > 0                            # the object in front of the palm/fingers
    translation, rotation = report.suggested_change
    assert translation < 3.0 and rotation < 0.8                      # nothing to correct


@pytest.mark.parametrize("offset, factor", [
    (dict(translation_m=(0.01, 0.0, 0.0)), 4.0),          # 1 cm sideways
    (dict(translation_m=(0.0, 0.0, 0.01)), 4.0),          # 1 cm along the optical axis
    (dict(axis=(1.0, 0.0, 0.0), degrees=2.0), 4.0),       # 2 deg tilt
    (dict(axis=(0.0, 0.0, 1.0), degrees=2.0), 2.0),       # 2 deg roll about the optical axis (the hand is
])                                                         # near the axis: mostly a sideways shift at the edges)
def test_perturbed_extrinsic_gives_a_clearly_larger_residual(sim_frames, offset, factor):
    frames = calibration_frames(sim_frames)
    good = check_extrinsic(frames, NOMINAL.matrix, alignment=None)
    bad = check_extrinsic(frames, perturbed(**offset))
    assert bad.fit.mean_abs_mm > factor * good.fit.mean_abs_mm, (good.fit.mean_abs_mm, bad.fit.mean_abs_mm)
    assert bad.fit.explained_fraction < good.fit.explained_fraction - 0.1
    # the alignment sees the error too and finds the way back to (near) the true extrinsic
    shift, turn = bad.suggested_change
    assert shift > 7.0 or turn > 1.5
    translation, rotation = transform_difference(bad.suggested_extrinsic, NOMINAL.matrix)
    assert translation < 4.0 and rotation < 0.8, (translation, rotation)


@pytest.mark.parametrize("index, max_mm, max_deg", [(0, 1.5, 0.3),     # palm up: open hand, one frame
                                                     (2, 3.5, 0.6)])    # palm down: curled fingers, less to fit
def test_alignment_recovers_a_known_offset_from_sim_points(sim_frames, index, max_mm, max_deg):
    """True joint positions: the fit recovers the offset up to depth noise. (With the noisy readings it also
    absorbs the joint-offset error, 2-5 mm: what hand removal needs, the measured hand on the model.)"""
    frame, _, q = sim_frames[index]
    wrong = perturbed(translation_m=(0.006, -0.01, 0.004), axis=(0.0, 1.0, 0.0), degrees=1.2)
    depth = quantize_depth_mm(frame.depth)
    rows, cols = np.nonzero(depth > 0)
    k = frame.calibrated_intrinsics
    z = depth[rows, cols].astype(np.float64)
    cam = np.stack([(cols - k.cx) / k.fx * z, (rows - k.cy) / k.fy * z, z], axis=1)
    palm = cam @ wrong[:3, :3].T + wrong[:3, 3]
    shapes = HandKinematics().collision_shapes(q)
    distance, _ = signed_distance(shapes, palm[::7], wrong[:3, 3])
    near = palm[::7][np.abs(distance) < 0.03]
    result = align_hand(shapes, near, HandAlignmentConfig(), view_point=wrong[:3, 3])
    assert result.ok, result.reason
    corrected = result.correction @ wrong
    before = transform_difference(wrong, NOMINAL.matrix)
    after = transform_difference(corrected, NOMINAL.matrix)
    assert before[0] > 12 and after[0] < max_mm and after[1] < max_deg, (before, after)


def test_alignment_refuses_without_a_hand():
    shapes = HandKinematics().collision_shapes(np.zeros(16))
    far = np.random.default_rng(0).uniform(0.3, 0.4, size=(200, 3))
    result = align_hand(shapes, far, HandAlignmentConfig(), view_point=NOMINAL.translation)
    assert not result.ok and np.array_equal(result.correction, np.eye(4)) and "hand model" in result.reason


def run_cli(capsys, *args, status: int = 0) -> dict:
    assert cli_main(["calib-check", *args, "--json"]) == status
    return json.loads(capsys.readouterr().out)


def test_cli_on_simulator_frames(tmp_path, capsys):
    good = run_cli(capsys, "--sim-seed", "5", "--frames", "2", "--sim-jitter", "off", "--mount", "palm_down")
    assert good["verdict"] == "good" and good["frames"] == 2
    wrong = tmp_path / "wrong.yaml"
    save_extrinsic(Extrinsic(perturbed(translation_m=(0.01, 0.0, 0.0), axis=(1, 0, 0), degrees=2.0)), wrong)
    fixed = tmp_path / "fixed.yaml"
    bad = run_cli(capsys, "--sim-seed", "5", "--frames", "2", "--sim-jitter", "off", "--mount", "palm_down",
                  "--extrinsic", str(wrong), "--write-corrected", str(fixed), status=3)   # CHECK is not success
    assert bad["verdict"] == "check the calibration" and (good["exit_status"], bad["exit_status"]) == (0, 3)
    assert cli_main(["calib-check", "--sim-seed", "5", "--frames", "1", "--sim-jitter", "off", "--mount",
                     "palm_down", "--extrinsic", str(wrong)]) == 3                      # text output too
    assert "CHECK THE CALIBRATION" in capsys.readouterr().out
    assert bad["mean_abs_residual_mm"] > 3 * good["mean_abs_residual_mm"]
    assert bad["sim_true_offset"]["translation_mm"] > 9.0
    translation, rotation = transform_difference(load_extrinsic(fixed).matrix, NOMINAL.matrix)
    assert translation < 4.0 and rotation < 0.8


def test_cli_reads_an_episode_bag(tmp_path, capsys, sim_frames):
    bag = tmp_path / "episode"
    with EpisodeBagWriter(bag, {"seed": 0}) as writer:
        for k, (frame, q, _) in enumerate(sim_frames):
            writer.write_step(EpisodeStep(stamp_ns=10**9 + k * 83_333_333, depth_m=frame.depth,
                                          intrinsics=frame.calibrated_intrinsics, joint_positions=q,
                                          goal_wxyz=np.array([1.0, 0, 0, 0]), action=None))
    result = run_cli(capsys, "--bag", str(bag), "--frames", "10")
    assert result["frames"] == len(sim_frames) and result["verdict"] == "good", result
    assert result["median_abs_residual_mm"] < 2.0


def test_cli_reports_a_bad_extrinsic_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("translation: [0.4, 0, 0.14]\nrotation: [1.0, 0.2, 0.0, 0.0]\n")
    assert cli_main(["calib-check", "--sim-seed", "0", "--frames", "1", "--extrinsic", str(bad)]) == 2
    assert "unit quaternion" in capsys.readouterr().err
