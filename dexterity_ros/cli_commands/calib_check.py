"""`dexterity-ros calib-check`: how well a camera->palm extrinsic explains the hand in the depth, or find one.

    dexterity-ros calib-check --bag DIR [--extrinsic config/extrinsics.yaml] [--frames 20]
    dexterity-ros calib-check --sim-seed 0 [--mount palm_down] [--sim-jitter off]
    dexterity-ros calib-check --bag DIR --solve [--extrinsic START.yaml] [--write NEW.yaml [--force]]
                              [--overlay overlay.png]

Check (default): renders the hand's collision shapes at the measured joint
positions into each depth frame with the given extrinsic (and the frame's
camera_info) and prints the depth residual on hand pixels, the share of hand
pixels it explains, and the correction the hand alignment suggests
(``--write`` saves the corrected extrinsic).

Solve (``--solve``): estimates the extrinsic from scratch, searching within
``--search-translation-mm`` / ``--search-rotation-deg`` of ``--extrinsic``
(dexterity_ros.calibration_solve), and prints it (as the YAML it would
write and as translation / roll-pitch-yaw), its residual, the change from
the start and a verdict; ``--write`` saves it only when the verdict is GOOD.

``--overlay PNG`` draws the hand model on the depth image, before (the given
extrinsic) and after (the solution, or the suggested correction), side by
side. docs/calibration.md explains how to read all of it.

Exit status (also with --json, so scripts and CI can gate on it):
0 the verdict is GOOD; 3 the verdict is CHECK THE CALIBRATION; 4 --solve found
no calibration (no hand in view, too few hand pixels, no convergence; nothing
written); 1 the command could not run (unreadable bag, no usable frames,
simulator error); 2 bad arguments, an invalid extrinsic file, or an output
file that exists (without --force).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

EXIT_GOOD, EXIT_ERROR, EXIT_USAGE, EXIT_CHECK, EXIT_NO_SOLUTION = 0, 1, 2, 3, 4

# verdict thresholds (docs/calibration.md): a good calibration leaves only sensor noise on the hand
GOOD_MEDIAN_MM = 3.0
GOOD_EXPLAINED = 0.75
GOOD_SUGGESTED_MM = 10.0
GOOD_SUGGESTED_DEG = 1.5


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calib-check", help="check a camera->palm extrinsic against the hand seen in the depth, or solve for one",
        description="Render the hand's collision shapes at the measured joint positions into depth frames "
                    "(from a bag or the simulator) with the given extrinsic and report the depth residual "
                    "on hand pixels; a wrong extrinsic gives a clearly larger residual. With --solve, estimate "
                    "the extrinsic from scratch by fitting the hand model to the depth.",
        epilog="exit status: 0 verdict GOOD, 3 verdict CHECK THE CALIBRATION, 4 --solve found no calibration, "
               "1 the command could not run, 2 bad arguments, extrinsic file, or an existing output file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bag", type=Path, help="rosbag2 directory or .mcap/.db3 with depth, camera_info and "
                                                 "joint states (e.g. an episode bag or a recording)")
    source.add_argument("--sim-seed", type=int, help="render frames with the simulator (this seed)")
    parser.add_argument("--extrinsic", type=Path,
                        help="extrinsic YAML to check, or to start the --solve search from "
                             "(default config/extrinsics.yaml)")
    parser.add_argument("--frames", type=int, default=10, help="frames to use (default 10)")
    parser.add_argument("--mount", choices=("palm_up", "palm_down"), help="simulator: mount (default: sim.yaml)")
    parser.add_argument("--sim-jitter", choices=("on", "off"), default="on",
                        help="simulator: camera calibration jitter (on: the rendered camera differs from the "
                             "file, as on a real robot; off: the file is exactly right)")
    parser.add_argument("--tolerance-mm", type=float, default=5.0,
                        help="a hand pixel is explained when |residual| <= this (default 5)")
    parser.add_argument("--max-joint-offset", type=float, default=0.1,
                        help="bag: s between a depth frame and its nearest joint state (default 0.1)")
    parser.add_argument("--solve", action="store_true",
                        help="estimate the extrinsic from scratch (hand model fitted to the depth), searching "
                             "around --extrinsic")
    parser.add_argument("--search-translation-mm", type=float, default=100.0,
                        help="--solve: the start is at most this far from the truth (default 100)")
    parser.add_argument("--search-rotation-deg", type=float, default=30.0,
                        help="--solve: the start's rotation is at most this far off (default 30)")
    parser.add_argument("--write", "--write-corrected", dest="write", type=Path, metavar="YAML",
                        help="write the extrinsic found (--solve, only when the verdict is GOOD) or the one "
                             "corrected by the hand alignment (check) here")
    parser.add_argument("--force", action="store_true", help="let --write replace an existing file")
    parser.add_argument("--overlay", type=Path, metavar="PNG",
                        help="draw the hand model on the depth image, before and after, side by side")
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


def sim_frames(seed: int, count: int, mount: str | None, jitter: bool, truths: list[np.ndarray],
               intrinsics_jitter: bool | None = None, one_episode: bool = False):
    """CalibrationFrames rendered by the simulator (randomized, noisy joints); appends each true extrinsic.

    ``jitter``: the rendered camera differs from the calibrated one (pose and,
    unless ``intrinsics_jitter`` says otherwise, focal length and principal
    point), differently in every episode; ``one_episode`` stops at the end of
    the first episode (one camera) instead of starting the next.
    """
    import dataclasses

    from ..calibration import CalibrationFrame
    from ..camera_model import quantize_depth_mm
    from ..sim.env import ReorientEnv
    from ..sim.randomization import load_randomization_config
    from ..sim.sim_config import load_sim_config

    rand = load_randomization_config()
    intrinsics_jitter = jitter if intrinsics_jitter is None else intrinsics_jitter
    off = (() if jitter else ("camera_translation_jitter", "camera_rotation_jitter")) + \
        (() if intrinsics_jitter else ("focal_length_jitter", "principal_point_jitter"))
    rand = dataclasses.replace(rand, **{name: dataclasses.replace(getattr(rand, name), enabled=False) for name in off})
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
                if one_episode:
                    return
                obs = env.reset()


# ------------------------------------------------------------------ command
def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..extrinsics import load_extrinsic
    from ..paths import config_path

    path = args.extrinsic or config_path("extrinsics.yaml")
    try:
        extrinsic = load_extrinsic(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = _argument_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    notes: list[str] = []
    truths: list[np.ndarray] = []
    if args.bag is not None:
        frame_source: Iterator = bag_frames(args.bag, args.frames, args.max_joint_offset, notes)
        source = f"bag {args.bag}"
    else:
        frame_source = sim_frames(args.sim_seed, args.frames, args.mount, args.sim_jitter == "on", truths,
                                  one_episode=args.solve)          # solve: one episode, one camera
        source = f"simulator seed {args.sim_seed} ({args.mount or 'sim.yaml mount'}, camera jitter {args.sim_jitter})"
    try:
        frames = list(frame_source)
    except Exception as exc:  # noqa: BLE001 - bag/sim errors all end the command with a message
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not frames:
        print(f"error: no usable frames from {source}" + (f" ({notes[0]})" if notes else ""), file=sys.stderr)
        return EXIT_ERROR
    try:
        result, panels = (_solve if args.solve else _check)(args, frames, extrinsic, path, source, notes, truths)
    except Exception as exc:  # noqa: BLE001 - geometry errors in the frames end the command with a message
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if panels and args.overlay is not None:
        try:
            write_overlay(args.overlay, frames[0], panels, args.tolerance_mm * 1e-3)
            result["overlay"] = str(args.overlay)
        except (OSError, ValueError) as exc:
            print(f"error: cannot write the overlay {args.overlay}: {exc}", file=sys.stderr)
            return EXIT_ERROR
    if result.get("to_write") is not None:
        try:
            _save(result.pop("to_write"), args.write)
            result["written"] = str(args.write)
        except OSError as exc:
            print(f"error: cannot write {args.write}: {exc}", file=sys.stderr)
            return EXIT_ERROR
    result.pop("to_write", None)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_describe_solve(result) if args.solve else _describe(result))
    if result["exit_status"] == EXIT_NO_SOLUTION:
        print(f"error: no calibration found: {result['error']}", file=sys.stderr)
    return result["exit_status"]


def _argument_problem(args: argparse.Namespace) -> str | None:
    if args.frames < 1:
        return "--frames must be >= 1"
    if not args.search_translation_mm > 0 or not 0 < args.search_rotation_deg <= 90:
        return "--search-translation-mm must be > 0 and --search-rotation-deg in (0, 90]"
    if args.write is not None:
        if args.write.is_dir():
            return f"--write {args.write} is a directory"
        if args.write.exists() and not args.force:
            return f"{args.write} exists; not overwriting it (--force replaces it)"
    if args.overlay is not None and args.overlay.suffix.lower() != ".png":
        return f"--overlay {args.overlay}: the file name must end in .png"
    return None


def _save(extrinsic, target: Path) -> None:
    from ..extrinsics import save_extrinsic

    save_extrinsic(extrinsic, target)


def _yaml_text(extrinsic) -> str:
    """Exactly what --write would put in the file (written by save_extrinsic, so the format has one home)."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "extrinsic.yaml"
        _save(extrinsic, target)
        return target.read_text()


def _fit_summary(fit) -> dict:
    return {"hand_pixels": fit.hand_pixels, "compared_pixels": fit.compared, "occluded_pixels": fit.occluded_pixels,
            "missing_depth_pixels": fit.missing_pixels, "mean_abs_residual_mm": fit.mean_abs_mm,
            "median_abs_residual_mm": fit.median_abs_mm, "median_signed_residual_mm": fit.median_signed_mm,
            "explained_fraction": fit.explained_fraction}


def _truth_offset(matrix: np.ndarray, truths: list[np.ndarray]) -> dict:
    """Median distance of an extrinsic from the simulated cameras of the frames."""
    from ..calibration import transform_difference

    errors = [transform_difference(matrix, t) for t in truths]
    return {"translation_mm": float(np.median([e[0] for e in errors])),
            "rotation_deg": float(np.median([e[1] for e in errors]))}


def _check(args, frames, extrinsic, path, source, notes, truths) -> tuple[dict, list]:
    from ..calibration import CalibrationReport, check_extrinsic
    from ..extrinsics import Extrinsic

    report: CalibrationReport = check_extrinsic(frames, extrinsic.matrix, tolerance=args.tolerance_mm * 1e-3)
    fit = report.fit
    suggested = report.suggested_change
    good = (fit.median_abs_mm <= GOOD_MEDIAN_MM and fit.explained_fraction >= GOOD_EXPLAINED
            and (suggested is None or (suggested[0] <= GOOD_SUGGESTED_MM and suggested[1] <= GOOD_SUGGESTED_DEG)))
    result = {
        "mode": "check", "extrinsic_file": str(path), "source": source, "frames": report.frames,
        **_fit_summary(fit),
        "tolerance_mm": args.tolerance_mm,
        "per_frame_mean_abs_residual_mm": list(report.per_frame_mean_abs_mm),
        "suggested_correction": None if suggested is None else {"translation_mm": suggested[0],
                                                                "rotation_deg": suggested[1]},
        "verdict": "good" if good else "check the calibration",
        "notes": notes,
    }
    if truths:
        result["sim_true_offset"] = _truth_offset(extrinsic.matrix, truths)
    panels = [("before: the checked extrinsic", extrinsic.matrix)]
    if report.suggested_extrinsic is not None:
        corrected = Extrinsic(report.suggested_extrinsic, extrinsic.parent_frame, extrinsic.child_frame)
        result["suggested_extrinsic"] = {"translation": [round(float(v), 6) for v in corrected.translation],
                                         "rotation": [round(float(v), 6) for v in corrected.to_file().rotation]}
        panels.append(("after: corrected by the hand alignment", corrected.matrix))
        if args.write:
            result["to_write"] = corrected
    result["exit_status"] = EXIT_GOOD if good else EXIT_CHECK
    return result, panels


def _solve(args, frames, extrinsic, path, source, notes, truths) -> tuple[dict, list]:
    from ..calibration import check_extrinsic
    from ..calibration_solve import CalibrationSolveError, SolveConfig, solve_extrinsic
    from ..extrinsics import Extrinsic
    from ..hand_model import default_hand
    from ..urdf import matrix_to_rpy

    config = SolveConfig(max_translation=args.search_translation_mm * 1e-3, max_rotation_deg=args.search_rotation_deg)
    result: dict = {"mode": "solve", "start_extrinsic_file": str(path), "source": source, "frames": len(frames),
                    "search_range": {"translation_mm": args.search_translation_mm,
                                     "rotation_deg": args.search_rotation_deg},
                    "tolerance_mm": args.tolerance_mm, "notes": notes}
    if truths:
        result["sim_true_offset"] = _truth_offset(extrinsic.matrix, truths)
    try:
        solved = solve_extrinsic(frames, extrinsic.matrix, config=config)
    except CalibrationSolveError as exc:
        result.update(verdict="no calibration found", error=str(exc), exit_status=EXIT_NO_SOLUTION)
        return result, []
    tolerance = args.tolerance_mm * 1e-3
    after = check_extrinsic(frames, solved.extrinsic, tolerance=tolerance, alignment=None).fit
    before = check_extrinsic(frames, extrinsic.matrix, tolerance=tolerance, alignment=None).fit
    found = Extrinsic(solved.extrinsic, extrinsic.parent_frame, extrinsic.child_frame)
    best = solved.best
    reasons = solve_verdict(solved, after, config)
    change = solved.change
    if change[0] > args.search_translation_mm or change[1] > args.search_rotation_deg:
        notes.append(f"the solution lies outside the search range around the start ({change[0]:.0f} mm / "
                     f"{change[1]:.1f} deg)")
    names = default_hand().joint_names
    offsets_deg = np.degrees(best.joint_offsets)
    result.update({
        "solution": {
            "translation": [round(float(v), 6) for v in found.translation],
            "rotation": [round(float(v), 6) for v in found.to_file().rotation],
            "rpy_deg": [round(float(np.degrees(v)), 4) for v in matrix_to_rpy(found.rotation)],
            "yaml": _yaml_text(found)},
        "change_from_start": {"translation_mm": change[0], "rotation_deg": change[1]},
        "residual": _fit_summary(after), "start_residual": _fit_summary(before),
        "refinement": {"inliers": best.inliers, "points": best.points, "rms_mm": best.rms_mm,
                       "converged": best.converged, "cost": best.cost,
                       "outline_continuity": best.fit.outline_continuity,
                       "joint_offsets_deg": {n: round(float(v), 3) for n, v in zip(names, offsets_deg)}},
        "search": {"hypotheses": solved.hypotheses, "refined": len(solved.candidates),
                   "seconds": round(solved.seconds, 2)},
        "runner_up": None if solved.runner_up is None else {
            "cost": solved.runner_up.cost,
            "translation_mm_from_solution": _difference(solved.runner_up.extrinsic, best.extrinsic)[0],
            "rotation_deg_from_solution": _difference(solved.runner_up.extrinsic, best.extrinsic)[1]},
        "margin": None if solved.runner_up is None else solved.margin,
        "verdict": "good" if not reasons else "check the calibration",
        "reasons": reasons,
        "exit_status": EXIT_GOOD if not reasons else EXIT_CHECK,
    })
    if truths:
        result["sim_solution_error"] = _truth_offset(solved.extrinsic, truths)
    if args.write is not None and not reasons:
        result["to_write"] = found
    return result, [("before: the starting extrinsic", extrinsic.matrix), ("after: the solution", solved.extrinsic)]


def solve_verdict(solved, fit, config) -> list[str]:
    """Why a solution (SolveResult, its pooled DepthFit, the SolveConfig) is not GOOD; empty when it is."""
    reasons = []
    if not fit.median_abs_mm <= GOOD_MEDIAN_MM:
        reasons.append(f"median |r| {fit.median_abs_mm:.2f} mm > {GOOD_MEDIAN_MM:g} mm")
    if not fit.explained_fraction >= GOOD_EXPLAINED:
        reasons.append(f"explained {fit.explained_fraction:.0%} < {GOOD_EXPLAINED:.0%}")
    if solved.margin < config.min_margin:
        shift, turn = _difference(solved.runner_up.extrinsic, solved.best.extrinsic)
        reasons.append(f"ambiguous: a pose {shift:.0f} mm / {turn:.1f} deg away explains the depth almost as well "
                       f"(cost {solved.runner_up.cost:.3f} vs {solved.best.cost:.3f})")
    if not solved.best.converged:
        reasons.append("the refinement did not settle (last step above 0.1 mm / 0.01 deg)")
    return reasons


def _difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from ..calibration import transform_difference

    return transform_difference(a, b)


# ------------------------------------------------------------------ overlay
def write_overlay(target: Path, frame, panels: list[tuple[str, np.ndarray]], tolerance: float) -> None:
    """The hand model rendered with each extrinsic, coloured by its depth residual, over the measured depth."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from ..calibration import depth_fit, render_hand_depth
    from ..kinematics import HandKinematics

    kinematics = HandKinematics()
    depth = np.where(np.isfinite(frame.depth), frame.depth, 0.0)
    valid = depth > 0
    lo, hi = (np.percentile(depth[valid], [2, 98]) if valid.any() else (0.0, 1.0))
    shown = np.where(valid, np.clip((hi - depth) / max(hi - lo, 1e-6), 0.0, 1.0), 0.0)   # near = bright
    colours = {"within": (0.1, 0.8, 0.2), "off": (1.0, 0.75, 0.0), "behind": (0.9, 0.1, 0.1),
               "occluded": (0.2, 0.4, 1.0), "missing": (0.7, 0.2, 0.9)}
    figure = Figure(figsize=(6.0 * len(panels), 5.2), dpi=100)
    FigureCanvasAgg(figure)
    shapes = kinematics.collision_shapes(np.asarray(frame.joint_positions, dtype=np.float64))
    for index, (title, extrinsic) in enumerate(panels):
        axis = figure.add_subplot(1, len(panels), index + 1)
        axis.imshow(shown, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        rendered = render_hand_depth(shapes, frame.intrinsics, extrinsic)
        hand = rendered > 0
        residual = depth - rendered
        classes = {"within": hand & valid & (np.abs(residual) <= tolerance),
                   "off": hand & valid & (np.abs(residual) > tolerance) & (residual <= 0.015) & (residual >= -0.015),
                   "behind": hand & valid & (residual > 0.015),
                   "occluded": hand & valid & (residual < -0.015),
                   "missing": hand & ~valid}
        overlay = np.zeros(depth.shape + (4,))
        for name, mask in classes.items():
            overlay[mask] = (*colours[name], 0.6)
        axis.imshow(overlay, interpolation="nearest")
        if hand.any():
            axis.contour(hand.astype(float), levels=[0.5], colors=["cyan"], linewidths=0.8)
        fit = depth_fit(depth, rendered, tolerance)
        axis.set_title(f"{title}\nmedian |r| {fit.median_abs_mm:.1f} mm, {fit.explained_fraction * 100:.0f}% of "
                       f"{fit.hand_pixels} hand pixels within {tolerance * 1e3:g} mm", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    labels = {"within": f"within {tolerance * 1e3:g} mm", "off": f"{tolerance * 1e3:g}-15 mm off",
              "behind": "measured > 15 mm behind (free space)", "occluded": "measured > 15 mm in front (occluded)",
              "missing": "no depth"}
    figure.legend(handles=[Patch(color=colours[k], label=v) for k, v in labels.items()], loc="lower center",
                  ncol=len(labels), fontsize=8, frameon=False)
    figure.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.07, wspace=0.03)
    figure.savefig(str(target), format="png")


# ------------------------------------------------------------------ text output
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
    else:
        lines.append("alignment  no correction found (the hand model is too far from the measured hand)")
    if "suggested_extrinsic" in r:
        e = r["suggested_extrinsic"]
        lines.append(f"suggested  translation {e['translation']} rotation (w,x,y,z) {e['rotation']}"
                     + (f" -> written to {r['written']}" if "written" in r else " (--write YAML saves it)"))
    if "sim_true_offset" in r:
        t = r["sim_true_offset"]
        lines.append(f"sim truth  the simulated camera is {t['translation_mm']:.1f} mm / {t['rotation_deg']:.2f} deg "
                     "away from the checked extrinsic")
    if "overlay" in r:
        lines.append(f"overlay    {r['overlay']}")
    lines.append(f"verdict    {r['verdict'].upper()} (good: median |r| <= {GOOD_MEDIAN_MM:g} mm, explained >= "
                 f"{GOOD_EXPLAINED * 100:.0f}%, suggested correction <= {GOOD_SUGGESTED_MM:g} mm / "
                 f"{GOOD_SUGGESTED_DEG:g} deg); exit status {r['exit_status']}")
    if r["exit_status"] != EXIT_GOOD:
        lines.append("hint       the alignment only corrects an extrinsic that is nearly right; --solve estimates it "
                     "from scratch (within 10 cm / 30 deg of this one)")
    for note in r["notes"][:10]:
        lines.append(f"note       {note}")
    return "\n".join(lines)


def _describe_solve(r: dict) -> str:
    lines = [f"start      {r['start_extrinsic_file']} (search within {r['search_range']['translation_mm']:g} mm / "
             f"{r['search_range']['rotation_deg']:g} deg of it)",
             f"frames     {r['frames']} from {r['source']}"]
    if r["exit_status"] == EXIT_NO_SOLUTION:
        lines.append(f"verdict    NO CALIBRATION FOUND: {r['error']}; nothing written; exit status {r['exit_status']}")
        lines += [f"note       {note}" for note in r["notes"][:10]]
        return "\n".join(lines)
    s, c, a, b = r["solution"], r["change_from_start"], r["residual"], r["start_residual"]
    f, q = r["search"], r["refinement"]
    offsets = q["joint_offsets_deg"]
    largest = max(offsets, key=lambda name: abs(offsets[name]))
    rms = float(np.sqrt(np.mean(np.square(list(offsets.values())))))
    lines += [
        f"search     {f['hypotheses']} hand poses scored, {f['refined']} distinct refined, {f['seconds']:.1f} s",
        f"solution   translation {s['translation']} m, rpy {s['rpy_deg']} deg (URDF roll-pitch-yaw), "
        f"rotation (w,x,y,z) {s['rotation']}",
        f"change     {c['translation_mm']:.1f} mm / {c['rotation_deg']:.2f} deg from the start",
        f"residual   median |r| {a['median_abs_residual_mm']:.2f} mm, mean |r| {a['mean_abs_residual_mm']:.2f} mm, "
        f"{a['explained_fraction'] * 100:.1f}% of {a['hand_pixels']} hand pixels within {r['tolerance_mm']:g} mm "
        f"(start: median |r| {b['median_abs_residual_mm']:.2f} mm, {b['explained_fraction'] * 100:.1f}%)",
        f"fit        {q['inliers']}/{q['points']} measured points within 3 mm of the model, rms {q['rms_mm']:.2f} mm, "
        f"{'converged' if q['converged'] else 'NOT converged'}; joint reading offsets fitted alongside: rms "
        f"{rms:.2f} deg, largest {largest} {offsets[largest]:+.2f} deg",
    ]
    if r["runner_up"] is None:
        lines.append("unique     every search candidate refined to this pose")
    else:
        u = r["runner_up"]
        lines.append(f"unique     next best distinct pose ({u['translation_mm_from_solution']:.0f} mm / "
                     f"{u['rotation_deg_from_solution']:.1f} deg away) costs {u['cost']:.3f} vs "
                     f"{q['cost']:.3f} (margin {r['margin']:.3f})")
    if "sim_solution_error" in r:
        t, e = r["sim_true_offset"], r["sim_solution_error"]
        lines.append(f"sim truth  the solution is {e['translation_mm']:.1f} mm / {e['rotation_deg']:.2f} deg from the "
                     f"simulated camera (the start was {t['translation_mm']:.1f} mm / {t['rotation_deg']:.2f} deg)")
    lines.append("yaml       " + ("written to " + r["written"] if "written" in r else
                                  "(--write YAML saves it)" if r["exit_status"] == EXIT_GOOD else
                                  "(not written: the verdict is not GOOD)"))
    lines += ["    " + line for line in s["yaml"].rstrip().splitlines()]
    if "overlay" in r:
        lines.append(f"overlay    {r['overlay']}")
    lines.append(f"verdict    {r['verdict'].upper()}" + (f" ({'; '.join(r['reasons'])})" if r["reasons"] else
                 f" (median |r| <= {GOOD_MEDIAN_MM:g} mm, explained >= {GOOD_EXPLAINED * 100:.0f}%, unique, "
                 "converged)") + f"; exit status {r['exit_status']}")
    lines += [f"note       {note}" for note in r["notes"][:10]]
    return "\n".join(lines)
