"""Preset ``playground-leap-reorient``: MuJoCo Playground's LeapCubeReorient, Brax policy as ONNX.

Input: the ONNX file ``mujoco_playground/experimental/brax_network_to_onnx.ipynb``
writes for a Brax PPO policy (the published
``experimental/sim2sim/onnx/leap_reorient_policy.onnx`` is one): input
``"obs"`` (1, 57), output ``"continuous_actions"`` (1, 16), opset 11, written
by tf2onnx; the Brax running-statistics normaliser (``params[0].mean/std
["state"]``, (obs - mean) / std) and the ``tanh`` of the Gaussian's mean are
*inside* the graph. The graph is kept; the importer checks the names and
sizes and attaches a contract v2.

Convention (upstream files under ``google-deepmind/mujoco_playground/``):

* ``mujoco_playground/_src/manipulation/leap_hand/reorient.py``
  ``CubeReorient._get_obs`` "state" (history_len 1): joint angles (rad, 16,
  ``leap_hand_constants.JOINT_NAMES`` order), joint angles - motor_targets
  (the target in force; newest first), ``palm_position`` - cube position
  (3; sensor ``palm_position`` = ``framepos`` of site ``grasp_site``, world
  frame; ``xmls/scene_mjx_cube.xml``), ``quat_to_mat(q_cube *
  quat_inv(q_goal)).ravel()[3:]`` (rows 1 and 2, 6; MuJoCo quaternions w, x,
  y, z), last action (16, the raw network output). 57 values.
* ``CubeReorient.step``: motor_targets = clip(ctrl + action_scale (0.5) *
  action, ctrlrange), EMA alpha 1 (none): a delta on the previous command;
  ctrl = the reset pose at the start. ``ctrl_dt`` 0.05 s: 20 Hz.
  ``experimental/sim2sim/play_leap_reorient.py`` deploys exactly this.
* ``leap_hand/xmls/leap_rh_mjx.xml``: position actuators with
  ``inheritrange="1"``, so ctrlrange = joint range: mcp [-0.314, 2.23], rot
  [-1.047, 1.047], pip [-0.506, 1.885], dip [-0.366, 2.042], th_cmc and th_axl
  [-0.349, 2.094], th_mcp [-0.47, 2.443], th_ipl [-1.34, 1.88]. The hand is
  fixed: body ``leap_mount`` at the world origin, identity, carries
  ``grasp_site`` at (0.11, 0, 0.03); Playground's world frame is the mount's.

Joint mapping onto the hand description (canonical ffj0..thj3 = Allegro
numbering, which the LEAP hardware shares: ``LEAP_Hand_API``
``leap_hand_utils.allegro_to_LEAPhand`` adds only an offset of pi, see
``dexterity_ros/hand/profiles.py``): the MJCF puts the flexion joint
(``if_mcp`` = LEAP hardware joint 1, "MCP forward") before the abduction
joint (``if_rot`` = hardware 0, "MCP side"), so if_mcp->ffj1, if_rot->ffj0,
if_pip->ffj2, if_dip->ffj3, likewise mf/rf; thumb by chain position
th_cmc->thj0, th_axl->thj1, th_mcp->thj2, th_ipl->thj3 (⚠ th_axl/th_mcp
ranges differ from the hardware's 13/14: ``../shared/upstream-policies.md``
6d). Angles: MJCF angle = hardware angle - pi = canonical angle (⚠ inferred
from identical ranges and axes, not measured).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from . import ImportRefused, ImportResult, Preset
from .common import (check_single_io, file_digest, normaliser_note, parse_pose, probe_finite, read_onnx_model)

NAME = "playground-leap-reorient"
UPSTREAM = ("google-deepmind/mujoco_playground: mujoco_playground/_src/manipulation/leap_hand/reorient.py, "
            "leap_hand_constants.py, xmls/leap_rh_mjx.xml, experimental/brax_network_to_onnx.ipynb")

INPUT_NAME = "obs"
OUTPUT_NAME = "continuous_actions"
NUM_JOINTS = 16
OBS_SIZE = 57
HISTORY_LEN = 1

JOINT_NAMES = ("if_mcp", "if_rot", "if_pip", "if_dip", "mf_mcp", "mf_rot", "mf_pip", "mf_dip",
               "rf_mcp", "rf_rot", "rf_pip", "rf_dip", "th_cmc", "th_axl", "th_mcp", "th_ipl")
_FINGER_JOINT = {"mcp": 1, "rot": 0, "pip": 2, "dip": 3}
_THUMB_JOINT = {"cmc": 0, "axl": 1, "mcp": 2, "ipl": 3}
_FINGER = {"if": "ff", "mf": "mf", "rf": "rf", "th": "th"}
JOINT_ALIASES = {
    name: f"{_FINGER[name[:2]]}j{(_THUMB_JOINT if name[:2] == 'th' else _FINGER_JOINT)[name[3:]]}"
    for name in JOINT_NAMES}
_RANGES = {"mcp": (-0.314, 2.23), "rot": (-1.047, 1.047), "pip": (-0.506, 1.885), "dip": (-0.366, 2.042),
           "cmc": (-0.349, 2.094), "axl": (-0.349, 2.094), "th_mcp": (-0.47, 2.443), "ipl": (-1.34, 1.88)}
CTRL_RANGE = tuple(_RANGES["th_mcp" if n == "th_mcp" else n[3:]] for n in JOINT_NAMES)   # JOINT_NAMES order
GRASP_SITE = (0.11, 0.0, 0.03)          # palm_position sensor site in the world (= leap_mount) frame
DEFAULTS = {"action_scale": 0.5, "control_rate_hz": 20.0}


def terms_for(grasp_site: Sequence[float]) -> list[dict[str, Any]]:
    """``CubeReorient._get_obs`` "state" in order (history_len 1)."""
    return [
        {"name": "joint_angles", "kind": "joint_positions", "scaling": "radians"},
        {"name": "qpos_error", "kind": "joint_tracking_error", "length": HISTORY_LEN, "order": "newest_first"},
        {"name": "cube_pos_error", "kind": "object_position", "frame": "policy", "origin": list(grasp_site),
         "direction": "origin_minus_object"},
        {"name": "cube_ori_error", "kind": "orientation_error_matrix", "rows": [1, 2], "frame": "policy"},
        {"name": "last_act", "kind": "previous_actions", "clipped": False},
    ]


def build_contract(*, action_scale: float = 0.5, control_rate_hz: float = 20.0,
                   palm_pose: Sequence[float] | None = None, grasp_site: Sequence[float] | None = None,
                   provenance: dict | None = None):
    """The contract v2 of a LeapCubeReorient policy (no model needed)."""
    from ..contract_v2 import PolicyContractV2

    translation, rotation = parse_pose(palm_pose, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), "wxyz", "--palm-pose")
    site = tuple(float(v) for v in (grasp_site if grasp_site is not None else GRASP_SITE))
    if len(site) != 3:
        raise ImportRefused(f"--grasp-site: expected 3 numbers, got {len(site)}")
    terms = terms_for(site)
    spec = {
        "contract_version": 2,
        "name": NAME,
        "description": "MuJoCo Playground LeapCubeReorient (Brax PPO), ONNX as brax_network_to_onnx.ipynb writes it",
        "control_rate_hz": float(control_rate_hz),
        "joint_names": list(JOINT_NAMES),
        "joint_aliases": dict(JOINT_ALIASES),
        "joint_limits": {"lower": [r[0] for r in CTRL_RANGE], "upper": [r[1] for r in CTRL_RANGE]},
        "frame": {"translation": list(translation), "rotation_wxyz": list(rotation)},
        "terms": terms,
        "inputs": [{"name": INPUT_NAME, "terms": [t["name"] for t in terms],
                    "description": "Brax running-statistics normaliser and tanh inside the graph"}],
        "action": {"output": OUTPUT_NAME, "mode": "delta_previous_target", "scale": [float(action_scale)],
                   "input_scale": 1.0, "input_clip": None, "ema_alpha": 1.0},
        "outputs": [{"name": OUTPUT_NAME, "shape": [1, NUM_JOINTS], "meaning": "action"}],
        "provenance": dict(provenance or {}),
    }
    return PolicyContractV2.from_mapping(spec)


def import_playground(path: str | Path, *, action_scale: float = 0.5, control_rate_hz: float = 20.0,
                      palm_pose: Sequence[float] | None = None,
                      grasp_site: Sequence[float] | None = None) -> ImportResult:
    """Read a Brax/Playground LeapCubeReorient ONNX, check it, attach the contract; nothing is written."""
    from ...hand_model import default_hand
    from ..contract import ContractError
    from ..loading import attach_contract_v2
    from ..runtime_v2 import resolve_joint_order

    path = Path(path)
    what = ("a LeapCubeReorient policy as experimental/brax_network_to_onnx.ipynb writes it (input 'obs' "
            "(1, 57), output 'continuous_actions' (1, 16))")
    model = read_onnx_model(path, what)
    check_single_io(model, INPUT_NAME, OBS_SIZE, OUTPUT_NAME, NUM_JOINTS, "experimental/brax_network_to_onnx.ipynb")
    options = {"action_scale": action_scale, "control_rate_hz": control_rate_hz,
               "palm_pose": list(palm_pose) if palm_pose is not None else None,
               "grasp_site": list(grasp_site) if grasp_site is not None else None}
    contract = build_contract(**options, provenance={
        "preset": NAME, "options": options, "source": path.name, "source_sha256": file_digest(path),
        "upstream": UPSTREAM})
    hand = default_hand()
    try:
        resolve_joint_order(contract, hand)
    except ContractError as exc:
        raise ImportRefused(f"the contract's joints do not map onto the hand description: {exc}") from None
    attach_contract_v2(model, contract)
    probe_finite(model, INPUT_NAME, OBS_SIZE, OUTPUT_NAME)
    return ImportResult(model, contract, notes_for(contract, model, hand, palm_pose))


def notes_for(contract, model, hand, palm_pose) -> list[str]:
    import numpy as np

    mapping = ", ".join(f"{k}->{v}" for k, v in list(JOINT_ALIASES.items())[:4])
    table = hand.aliases()
    index = [table[JOINT_ALIASES[n]] for n in JOINT_NAMES]
    lower = np.array([r[0] for r in CTRL_RANGE])
    upper = np.array([r[1] for r in CTRL_RANGE])
    narrower = [n for k, n in enumerate(JOINT_NAMES)
                if hand.lower[index[k]] > lower[k] + 1e-9 or hand.upper[index[k]] < upper[k] - 1e-9]
    notes = [
        f"joints in Playground order mapped onto the hand through the LEAP<->Allegro numbering ({mapping}, ...); "
        "⚠ thumb mapped by chain position (th_cmc->thj0, th_axl->thj1, th_mcp->thj2, th_ipl->thj3): the MJCF's "
        "th_axl/th_mcp ranges differ from the LEAP hardware's joints 13/14; verify on the hand",
        "⚠ angles: Playground's MJCF angle is taken as the hand's canonical angle (LEAP hardware angle - pi, as "
        "the leap driver profile converts); inferred from identical ranges and axes, not measured",
        "observation frame: Playground's world frame (the fixed leap_mount's); palm - cube uses the grasp_site "
        f"position {list(contract.term('cube_pos_error').params.origin)} in it. ⚠ Our palm's pose in that frame "
        + ("is the identity by default, which is almost certainly wrong for a real hand: pass --palm-pose "
           "X Y Z QW QX QY QZ (the LEAP palm body sits at (0.124, -0.0305, -0.06045) in leap_mount)"
           if palm_pose is None else "is set by --palm-pose; check it against the mount"),
        f"action: target = previous target + {contract.action.scale[0]:g} x action (no clip on the action), "
        "clipped to the LEAP ctrlrange (leap_rh_mjx.xml); the previous target is the measured pose after a reset "
        "(Playground: ctrl = the reset pose)",
        normaliser_note(model, INPUT_NAME, "Brax's ONNX conversion (brax_network_to_onnx.ipynb)",
                        "it would see unnormalised observations and act wrongly"),
    ]
    if narrower:
        notes.append(f"⚠ the hand description ({Path(hand.source).name}) has narrower limits than the LEAP "
                     f"ctrlrange for {narrower}; targets are clipped to the hand's limits as well. For a LEAP hand "
                     "use a LEAP hand description")
    return notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--action-scale", type=float, default=DEFAULTS["action_scale"],
                        help="reorient.py default_config action_scale (default 0.5): target = previous target + "
                             "scale x action")
    parser.add_argument("--control-rate-hz", type=float, default=DEFAULTS["control_rate_hz"],
                        help="policy rate, 1 / ctrl_dt (default 20 = 1 / 0.05 s)")
    parser.add_argument(
        "--palm-pose", type=float, nargs=7, metavar=("X", "Y", "Z", "QW", "QX", "QY", "QZ"),
        help="pose of our palm frame in Playground's world (= leap_mount) frame, m and quaternion w x y z. "
             "Default identity, which you must replace with your hand's: Playground observes the cube in its "
             "world frame, our tracker in the palm frame")
    parser.add_argument("--grasp-site", type=float, nargs=3, metavar=("X", "Y", "Z"),
                        help="position of the grasp_site (palm_position sensor) in Playground's world frame "
                             "(default 0.11 0 0.03, leap_rh_mjx.xml)")


def build(path: Path, args: argparse.Namespace) -> ImportResult:
    return import_playground(path, action_scale=args.action_scale, control_rate_hz=args.control_rate_hz,
                             palm_pose=args.palm_pose, grasp_site=args.grasp_site)


PRESET = Preset(
    name=NAME,
    summary="MuJoCo Playground LeapCubeReorient, Brax policy as ONNX (obs (1, 57) -> continuous_actions)",
    upstream=UPSTREAM,
    add_arguments=add_arguments,
    build=build,
)
