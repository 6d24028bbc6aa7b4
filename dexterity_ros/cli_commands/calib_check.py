"""`dexterity-ros calib-check`: how well a camera->palm extrinsic explains the hand in the depth.

    dexterity-ros calib-check --bag DIR [--extrinsic config/extrinsics.yaml] [--frames 20]
    dexterity-ros calib-check --sim-seed 0 [--mount palm_down] [--sim-jitter off]

Renders the hand's collision shapes at the measured joint positions into each
depth frame with the given extrinsic (and the frame's camera_info) and prints
the depth residual on hand pixels, the share of hand pixels it explains, and
the correction the hand alignment suggests (``--write-corrected`` saves the
corrected extrinsic). docs/calibration.md explains how to read it.

Exit status (also with --json, so scripts and CI can gate on it):
0 the verdict is GOOD; 3 the verdict is CHECK THE CALIBRATION; 1 the check
could not run (unreadable bag, no usable frames, simulator error); 2 bad
arguments or an invalid extrinsic file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

EXIT_GOOD, EXIT_ERROR, EXIT_USAGE, EXIT_CHECK = 0, 1, 2, 3

# verdict thresholds (docs/calibration.md): a good calibration leaves only sensor noise on the hand
GOOD_MEDIAN_MM = 3.0
GOOD_EXPLAINED = 0.75
GOOD_SUGGESTED_MM = 10.0
GOOD_SUGGESTED_DEG = 1.5


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calib-check", help="check a camera->palm extrinsic against the hand seen in the depth",
        description="Render the hand's collision shapes at the measured joint positions into depth frames "
                    "(from a bag or the simulator) with the given extrinsic and report the depth residual "
                    "on hand pixels; a wrong extrinsic gives a clearly larger residual.",
        epilog="exit status: 0 verdict GOOD, 3 verdict CHECK THE CALIBRATION, 1 the check could not run, "
               "2 bad arguments or extrinsic file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bag", type=Path, help="rosbag2 directory or .mcap/.db3 with depth, camera_info and "
                                                 "joint states (e.g. an episode bag or a recording)")
    source.add_argument("--sim-seed", type=int, help="render frames with the simulator (this seed)")
    parser.add_argument("--extrinsic", type=Path, help="extrinsic YAML to check (default config/extrinsics.yaml)")
    parser.add_argument("--frames", type=int, default=10, help="frames to use (default 10)")
    parser.add_argument("--mount", choices=("palm_up", "palm_down"), help="simulator: mount (default: sim.yaml)")
    parser.add_argument("--sim-jitter", choices=("on", "off"), default="on",
                        help="simulator: camera calibration jitter (on: the rendered camera differs from the "
                             "file, as on a real robot; off: the file is exactly right)")
    parser.add_argument("--tolerance-mm", type=float, default=5.0,
                        help="a hand pixel is explained when |residual| <= this (default 5)")
    parser.add_argument("--max-joint-offset", type=float, default=0.1,
                        help="bag: s between a depth frame and its nearest joint state (default 0.1)")
    parser.add_argument("--write-corrected", type=Path, metavar="YAML",
                        help="write the extrinsic corrected by the hand alignment here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------ frame sources
def bag_frames(path: Path, limit: int, max_joint_offset_s: float, notes: list[str]):
    """CalibrationFrames from a bag: each depth image with the last camera_info and the nearest joint state."""
    from ..ros import conversions
    from .. import topics
    from ..bags.io import BagReader
    from ..ros.messages import deserialize
    from ..calibration import CalibrationFrame
    from ..hand_model import JointNameError, default_hand
    from ..joint_buffer import JointStateBuffer

    hand = default_hand()
    names = {t.name.lstrip("/"): t for t in (topics.DEPTH_IMAGE, topics.DEPTH_INFO, topics.JOINT_STATES)}
    joints = JointStateBuffer(capacity=100000)
    depth_msgs, infos = [], []
    with BagReader(path) as reader:
        wanted = [name for name in reader.topics() if name.lstrip("/") in names]
        for raw in reader.messages(wanted):
            topic = names[raw.topic.lstrip("/")]
            msg = deserialize(raw.data, raw.type_name)
            stamp = conversions.stamp_to_ns(msg.header.stamp)
            if topic is topics.JOINT_STATES:
                try:
                    joint_names, positions = conversions.joint_state_to_arrays(msg)
                    joints.add(stamp, hand.to_canonical(joint_names, positions))
                except (conversions.MessageError, JointNameError) as exc:
                    notes.append(f"joint state at {stamp} skipped: {exc}")
            elif topic is topics.DEPTH_INFO:
                try:
                    infos.append((stamp, conversions.camera_info_to_intrinsics(msg)))
                except conversions.MessageError as exc:
                    notes.append(f"camera_info at {stamp} skipped: {exc}")
            else:
                depth_msgs.append((stamp, msg))
    if not depth_msgs:
        raise ValueError(f"{path}: no depth images on {topics.DEPTH_IMAGE.name}")
    if not infos:
        raise ValueError(f"{path}: no usable camera_info on {topics.DEPTH_INFO.name}")
    step = max(1, len(depth_msgs) // max(limit, 1))
    for stamp, msg in depth_msgs[::step][:limit]:
        intrinsics = min(infos, key=lambda item: abs(item[0] - stamp))[1]
        nearest = joints.nearest(stamp)
        if nearest is None or abs(nearest.stamp_ns - stamp) * 1e-9 > max_joint_offset_s:
            notes.append(f"depth frame at {stamp} skipped: no joint state within {max_joint_offset_s} s")
            continue
        try:
            depth = conversions.image_to_depth(msg)
            intrinsics.check_image(depth.depth.shape)
        except (conversions.MessageError, ValueError) as exc:
            notes.append(f"depth frame at {stamp} skipped: {exc}")
            continue
        yield CalibrationFrame(depth.depth, intrinsics, nearest.positions, stamp)


def sim_frames(seed: int, count: int, mount: str | None, jitter: bool, truths: list[np.ndarray]):
    """CalibrationFrames rendered by the simulator (randomized, noisy joints); appends each true extrinsic."""
    import dataclasses

    from ..calibration import CalibrationFrame
    from ..camera_model import quantize_depth_mm
    from ..sim.env import ReorientEnv
    from ..sim.randomization import load_randomization_config
    from ..sim.sim_config import load_sim_config

    rand = load_randomization_config()
    if not jitter:
        rand = dataclasses.replace(rand, **{name: dataclasses.replace(getattr(rand, name), enabled=False)
                                            for name in ("camera_translation_jitter", "camera_rotation_jitter",
                                                         "focal_length_jitter", "principal_point_jitter")})
    config = load_sim_config()
    if mount:
        config = config.with_overrides(mount=mount)
    rng = np.random.default_rng(seed)
    with ReorientEnv(config, rand, seed) as env:
        obs = env.reset(seed=seed)
        produced = 0
        while produced < count:
            frame = obs.render() if not obs.frame_dropped else None
            if frame is not None:
                truths.append(frame.extrinsic.matrix)
                produced += 1
                yield CalibrationFrame(quantize_depth_mm(frame.depth), frame.calibrated_intrinsics,
                                       np.array(obs.joint_positions), obs.time_ns)
            step = env.step(env.initial_joint_positions + rng.normal(0.0, 0.05, env.num_joints))
            obs = step.observation
            if step.terminated or step.truncated:
                obs = env.reset()


# ------------------------------------------------------------------ command
def run(args: argparse.Namespace) -> int:
    from ..calibration import CalibrationReport, check_extrinsic, transform_difference
    from ..config import ConfigError
    from ..extrinsics import Extrinsic, load_extrinsic, save_extrinsic
    from ..paths import config_path

    path = args.extrinsic or config_path("extrinsics.yaml")
    try:
        extrinsic = load_extrinsic(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.frames < 1:
        print("error: --frames must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    notes: list[str] = []
    truths: list[np.ndarray] = []
    if args.bag is not None:
        frames: Iterator = bag_frames(args.bag, args.frames, args.max_joint_offset, notes)
        source = f"bag {args.bag}"
    else:
        frames = sim_frames(args.sim_seed, args.frames, args.mount, args.sim_jitter == "on", truths)
        source = f"simulator seed {args.sim_seed} ({args.mount or 'sim.yaml mount'}, camera jitter {args.sim_jitter})"
    try:
        report: CalibrationReport = check_extrinsic(frames, extrinsic.matrix, tolerance=args.tolerance_mm * 1e-3)
    except Exception as exc:  # noqa: BLE001 - bag/sim/geometry errors all end the command with a message
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    fit = report.fit
    suggested = report.suggested_change
    good = (fit.median_abs_mm <= GOOD_MEDIAN_MM and fit.explained_fraction >= GOOD_EXPLAINED
            and (suggested is None or (suggested[0] <= GOOD_SUGGESTED_MM and suggested[1] <= GOOD_SUGGESTED_DEG)))
    result = {
        "extrinsic_file": str(path), "source": source, "frames": report.frames,
        "hand_pixels": fit.hand_pixels, "compared_pixels": fit.compared, "occluded_pixels": fit.occluded_pixels,
        "missing_depth_pixels": fit.missing_pixels,
        "mean_abs_residual_mm": fit.mean_abs_mm, "median_abs_residual_mm": fit.median_abs_mm,
        "median_signed_residual_mm": fit.median_signed_mm, "explained_fraction": fit.explained_fraction,
        "tolerance_mm": args.tolerance_mm,
        "per_frame_mean_abs_residual_mm": list(report.per_frame_mean_abs_mm),
        "suggested_correction": None if suggested is None else {"translation_mm": suggested[0],
                                                                "rotation_deg": suggested[1]},
        "verdict": "good" if good else "check the calibration",
        "notes": notes,
    }
    if truths:
        errors = [transform_difference(extrinsic.matrix, t) for t in truths]
        result["sim_true_offset"] = {"translation_mm": float(np.median([e[0] for e in errors])),
                                     "rotation_deg": float(np.median([e[1] for e in errors]))}
    if report.suggested_extrinsic is not None:
        corrected = Extrinsic(report.suggested_extrinsic, extrinsic.parent_frame, extrinsic.child_frame)
        result["suggested_extrinsic"] = {"translation": [round(float(v), 6) for v in corrected.translation],
                                         "rotation": [round(float(v), 6) for v in corrected.to_file().rotation]}
        if args.write_corrected:
            save_extrinsic(corrected, args.write_corrected)
            result["written"] = str(args.write_corrected)
    result["exit_status"] = EXIT_GOOD if good else EXIT_CHECK
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_describe(result))
    return result["exit_status"]


def _describe(r: dict) -> str:
    per = r["per_frame_mean_abs_residual_mm"]
    lines = [
        f"extrinsic  {r['extrinsic_file']}",
        f"frames     {r['frames']} from {r['source']}",
        f"hand       {r['hand_pixels']} rendered hand pixels with depth: {r['compared_pixels']} compared, "
        f"{r['occluded_pixels']} behind something nearer (the object); {r['missing_depth_pixels']} without depth",
        f"residual   mean |r| {r['mean_abs_residual_mm']:.2f} mm (each clipped at 50 mm), "
        f"median |r| {r['median_abs_residual_mm']:.2f} mm, median r {r['median_signed_residual_mm']:+.2f} mm "
        f"(r = measured - rendered depth)",
        f"explained  {r['explained_fraction'] * 100:.1f}% of hand pixels within {r['tolerance_mm']:g} mm",
        f"per frame  mean |r| {min(per):.2f} .. {max(per):.2f} mm",
    ]
    s = r["suggested_correction"]
    if s is not None:
        lines.append(f"alignment  the hand model fits the depth best after a {s['translation_mm']:.1f} mm / "
                     f"{s['rotation_deg']:.2f} deg correction (median over frames)")
    if "suggested_extrinsic" in r:
        e = r["suggested_extrinsic"]
        lines.append(f"suggested  translation {e['translation']} rotation (w,x,y,z) {e['rotation']}"
                     + (f" -> written to {r['written']}" if "written" in r else " (--write-corrected YAML saves it)"))
    if "sim_true_offset" in r:
        t = r["sim_true_offset"]
        lines.append(f"sim truth  the simulated camera is {t['translation_mm']:.1f} mm / {t['rotation_deg']:.2f} deg "
                     "away from the checked extrinsic")
    lines.append(f"verdict    {r['verdict'].upper()} (good: median |r| <= {GOOD_MEDIAN_MM:g} mm, explained >= "
                 f"{GOOD_EXPLAINED * 100:.0f}%, suggested correction <= {GOOD_SUGGESTED_MM:g} mm / "
                 f"{GOOD_SUGGESTED_DEG:g} deg); exit status {r['exit_status']}")
    for note in r["notes"][:10]:
        lines.append(f"note       {note}")
    return "\n".join(lines)
