"""Preset ``isaaclab-allegro-repose``: Isaac Lab's Allegro cube reorientation, rsl_rl ONNX export.

Input: the ONNX file Isaac Lab's rsl_rl exporter writes
(``source/isaaclab_rl/isaaclab_rl/rsl_rl/exporter.py`` ``_OnnxPolicyExporter``:
``actor(normalizer(obs))``, one input ``"obs"`` (1, D), one output
``"actions"`` (1, 16), opset 11, no dynamic axes; the rsl_rl
``EmpiricalNormalization``, (obs - mean) / (std + 0.01), is *inside* the graph
when the policy was trained with ``empirical_normalization = True``, the
default of ``inhand/config/allegro_hand/agents/rsl_rl_ppo_cfg.py``). The graph
is kept as it is; the importer checks its input/output names and sizes and
attaches a contract v2 for the manager-based task
``Isaac-Repose-Cube-Allegro-v0`` (``-NoVelObs-v0`` with ``--obs no_vel``).
A recurrent export (``obs, h_in, c_in``) and the direct workflow (124 values)
are refused with the reason.

Convention (upstream files under ``isaac-sim/IsaacLab/source/``):

* Observation group ``policy`` in declaration order
  (``isaaclab_tasks/manager_based/manipulation/inhand/inhand_env_cfg.py``
  ``KinematicObsGroupCfg``; ``NoVelocityKinematicObsGroupCfg`` sets
  joint_vel, object_lin_vel, object_ang_vel to None): joint_pos
  ``joint_pos_limit_normalized`` = ``scale_transform`` by the soft limits
  (``isaaclab/envs/mdp/observations.py``), joint_vel ``joint_vel_rel`` x 0.2,
  object ``root_pos_w`` (env frame), ``root_quat_w`` with
  ``make_quat_unique=False``, ``root_lin_vel_w``, ``root_ang_vel_w`` x 0.2,
  ``generated_commands("object_pose")`` = goal position (object default root
  position + ``init_pos_offset`` (0, 0, -0.04), env frame: a constant) and goal
  quaternion (``mdp/commands/orientation_command.py``
  ``InHandReOrientationCommand.command``), ``goal_quat_diff`` =
  q_object * conj(q_goal) (``inhand/mdp/observations.py``), ``last_action`` =
  the raw network output. 72 values, 50 without velocities. Object default
  position (0, -0.19, 0.56) (``InHandObjectSceneCfg.object``).
* Action ``EMAJointPositionToLimitsActionCfg(alpha=0.95,
  rescale_to_limits=True)``
  (``isaaclab/envs/mdp/actions/joint_actions_to_limits.py``): raw x scale (1.0),
  clamp to [-1, 1], ``unscale_transform`` to the soft limits, applied =
  alpha * target + (1 - alpha) * previous applied (the joint positions after a
  reset), clamp to the soft limits. Control at 1/120 s x decimation 4 = 30 Hz.
* Joint order: the articulation's (``robot.joint_names``), never the name list
  of a config. Isaac Lab 3.x ``isaaclab/assets/articulation/ordering.py``:
  convention ``physx`` = BFS joint ordering, ``mjwarp`` (Newton) = DFS. For the
  Allegro asset that gives (⚠ inferred from BFS/DFS over the USD tree, see
  ``../shared/upstream-policies.md`` 1c) index_joint_0, middle_joint_0,
  ring_joint_0, thumb_joint_0, index_joint_1, ... (physx) or index_joint_0..3,
  middle_joint_0..3, ... (newton). Required option: it depends on the backend
  the policy was trained with.
* Quaternions: (w, x, y, z) in Isaac Lab 2.x, (x, y, z, w) in 3.x
  (``docs/source/migration/migrating_to_isaaclab_3-0.rst``). Required option.
* Hand root pose in the env frame: ``isaaclab_assets/robots/allegro.py``
  ``ALLEGRO_HAND_CFG.init_state``: pos (0, 0, 0.5), rot (0.257551, 0.283045,
  0.683330, -0.621782) as wxyz in 2.x, written (0.283045, 0.683330, -0.621782,
  0.257551) as xyzw in 3.x (the same rotation); soft_joint_pos_limit_factor 1.

The helpers at the top (reading an ONNX file, checking its single input and
output, looking for the normaliser, probing one inference) are shared with
the other presets of this package (``playground.py``).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence


from . import ImportRefused, ImportResult, Preset
from .common import (check_single_io, file_digest, hand_limits, load_limits_file,
                     normaliser_note, parse_pose, probe_finite, read_onnx_model)

NAME = "isaaclab-allegro-repose"
UPSTREAM = ("isaac-sim/IsaacLab: source/isaaclab_tasks/isaaclab_tasks/manager_based/manipulation/inhand/"
            "inhand_env_cfg.py, isaaclab/envs/mdp/actions/joint_actions_to_limits.py, "
            "isaaclab_rl/rsl_rl/exporter.py")

INPUT_NAME = "obs"
OUTPUT_NAME = "actions"
NUM_JOINTS = 16
OBS_SIZES = {"full": 72, "no_vel": 50}
DIRECT_OBS_SIZE = 124            # direct workflow, obs_type "full" (not this preset)

FINGERS = (("index", "ff"), ("middle", "mf"), ("ring", "rf"), ("thumb", "th"))
JOINT_ORDERS = {
    # BFS over the articulation tree: every finger's joint k before any joint k+1
    "physx": tuple(f"{finger}_joint_{k}" for k in range(4) for finger, _ in FINGERS),
    # DFS: finger by finger
    "newton": tuple(f"{finger}_joint_{k}" for finger, _ in FINGERS for k in range(4)),
}
JOINT_ALIASES = {f"{finger}_joint_{k}": f"{short}j{k}" for finger, short in FINGERS for k in range(4)}

QUAT_ORDER = {"2": "wxyz", "3": "xyzw"}
HAND_ROOT_POS = (0.0, 0.0, 0.5)
HAND_ROOT_ROT_WXYZ = (0.257551, 0.283045, 0.683330, -0.621782)
OBJECT_DEFAULT_POS = (0.0, -0.19, 0.56)
GOAL_POS_OFFSET = (0.0, 0.0, -0.04)
GOAL_POSITION = tuple(round(a + b, 6) for a, b in zip(OBJECT_DEFAULT_POS, GOAL_POS_OFFSET))
DEFAULTS = {"ema_alpha": 0.95, "action_scale": 1.0, "control_rate_hz": 30.0}

# ops a normaliser at the graph input starts with: (obs - mean) / std, or obs * (1/std) + b
NORMALISER_OPS = {"Sub", "Add", "Div", "Mul"}


# ------------------------------------------------------------------ shared helpers
# ------------------------------------------------------------------ the contract
def terms_for(obs: str, quat_order: str) -> list[dict[str, Any]]:
    """The manager-based task's observation terms in upstream order (``inhand_env_cfg.py``)."""
    velocities = obs == "full"
    terms: list[dict[str, Any]] = [{"name": "joint_pos", "kind": "joint_positions", "scaling": "unit_limits"}]
    if velocities:
        terms.append({"name": "joint_vel", "kind": "joint_velocities", "scale": 0.2})
    # object quaternion: Isaac Lab does not canonicalise (make_quat_unique=False); a simulator's state evolves
    # continuously, so the tracked pose's sign is kept continuous. goal_quat_diff uses the same object
    # quaternion: with the goal fixed between resets, "continuous" on it flips exactly when the object's does.
    terms += [{"name": "object_pos", "kind": "object_position", "frame": "policy"},
              {"name": "object_quat", "kind": "object_orientation", "frame": "policy", "order": quat_order,
               "sign": "continuous"}]
    if velocities:
        terms += [{"name": "object_lin_vel", "kind": "object_linear_velocity", "frame": "policy"},
                  {"name": "object_ang_vel", "kind": "object_angular_velocity", "frame": "policy", "scale": 0.2}]
    terms += [{"name": "goal_pos", "kind": "constant", "values": list(GOAL_POSITION)},
              {"name": "goal_quat", "kind": "goal_orientation", "frame": "policy", "order": quat_order,
               "sign": "as_is"},
              {"name": "goal_quat_diff", "kind": "quaternion_difference", "frame": "policy", "order": quat_order,
               "sign": "continuous"},
              {"name": "last_action", "kind": "previous_actions", "clipped": False}]
    return terms


def build_contract(*, obs: str, joint_order: str, isaaclab_version: str, ema_alpha: float = 0.95,
                   action_scale: float = 1.0, control_rate_hz: float = 30.0,
                   palm_pose: Sequence[float] | None = None, joint_limits: str = "hand",
                   provenance: dict | None = None):
    """The contract v2 of an Isaac Lab Allegro reorientation policy (no model needed)."""
    from ..contract_v2 import PolicyContractV2

    if obs not in OBS_SIZES:
        raise ImportRefused(f"--obs: {obs!r} is not one of {sorted(OBS_SIZES)}")
    if joint_order not in JOINT_ORDERS:
        raise ImportRefused(f"--joint-order: {joint_order!r} is not one of {sorted(JOINT_ORDERS)}")
    version = str(isaaclab_version)
    if version not in QUAT_ORDER:
        raise ImportRefused(f"--isaaclab-version: {isaaclab_version!r} is not one of {sorted(QUAT_ORDER)}")
    quat_order = QUAT_ORDER[version]
    default_quat = HAND_ROOT_ROT_WXYZ if quat_order == "wxyz" else (*HAND_ROOT_ROT_WXYZ[1:], HAND_ROOT_ROT_WXYZ[0])
    translation, rotation = parse_pose(palm_pose, HAND_ROOT_POS, default_quat, quat_order, "--palm-pose")
    names = JOINT_ORDERS[joint_order]
    if joint_limits == "hand":
        lower, upper = hand_limits(names, JOINT_ALIASES)
    else:
        lower, upper = load_limits_file(joint_limits, names, JOINT_ALIASES)
    terms = terms_for(obs, quat_order)
    spec = {
        "contract_version": 2,
        "name": NAME,
        "description": f"Isaac Lab Isaac-Repose-Cube-Allegro{'' if obs == 'full' else '-NoVelObs'}-v0 "
                       f"(manager-based), rsl_rl ONNX export; Isaac Lab {version}.x, {joint_order} joint order",
        "control_rate_hz": float(control_rate_hz),
        "joint_names": list(names),
        "joint_aliases": dict(JOINT_ALIASES),
        "joint_limits": {"lower": list(lower), "upper": list(upper)},
        "frame": {"translation": list(translation), "rotation_wxyz": list(rotation)},
        "terms": terms,
        "inputs": [{"name": INPUT_NAME, "terms": [t["name"] for t in terms],
                    "description": "rsl_rl export: EmpiricalNormalization inside the graph"}],
        "action": {"output": OUTPUT_NAME, "mode": "unscale_limits", "scale": [1.0],
                   "input_scale": float(action_scale), "input_clip": 1.0, "ema_alpha": float(ema_alpha)},
        "outputs": [{"name": OUTPUT_NAME, "shape": [1, NUM_JOINTS], "meaning": "action"}],
        "provenance": dict(provenance or {}),
    }
    return PolicyContractV2.from_mapping(spec)


def _size_hint(obs: str, size: int) -> str:
    other = {v: k for k, v in OBS_SIZES.items()}.get(size)
    if other is not None and other != obs:
        return (f"the model has the size of --obs {other} "
                f"({'Isaac-Repose-Cube-Allegro-v0' if other == 'full' else 'Isaac-Repose-Cube-Allegro-NoVelObs-v0'})"
                f"; check which task it was trained on")
    if size == DIRECT_OBS_SIZE:
        return "124 is the direct workflow (Isaac-Repose-Cube-Allegro-Direct-v0), which this preset does not import"
    return f"{OBS_SIZES['full']} = full kinematic observations, {OBS_SIZES['no_vel']} = without velocities"


def import_isaaclab(path: str | Path, *, obs: str, joint_order: str, isaaclab_version: str,
                    ema_alpha: float = 0.95, action_scale: float = 1.0, control_rate_hz: float = 30.0,
                    palm_pose: Sequence[float] | None = None, joint_limits: str = "hand") -> ImportResult:
    """Read an rsl_rl ONNX export, check it, attach the contract; nothing is written."""
    from ...hand_model import default_hand
    from ..contract import ContractError
    from ..loading import attach_contract_v2
    from ..runtime_v2 import resolve_joint_order

    path = Path(path)
    what = ("the ONNX file Isaac Lab's rsl_rl exporter writes (exported/policy.onnx: input 'obs', output "
            "'actions')")
    if obs not in OBS_SIZES:
        raise ImportRefused(f"--obs: {obs!r} is not one of {sorted(OBS_SIZES)}")
    model = read_onnx_model(path, what)
    size = check_single_io(model, INPUT_NAME, None, OUTPUT_NAME, NUM_JOINTS, "isaaclab_rl/rsl_rl/exporter.py")
    if size != OBS_SIZES[obs]:
        from .common import check_size
        check_size(f"input '{INPUT_NAME}' size for --obs {obs}", OBS_SIZES[obs], size, _size_hint(obs, size))
    options = {"obs": obs, "joint_order": joint_order, "isaaclab_version": str(isaaclab_version),
               "ema_alpha": ema_alpha, "action_scale": action_scale, "control_rate_hz": control_rate_hz,
               "palm_pose": list(palm_pose) if palm_pose is not None else None,
               "joint_limits": str(joint_limits)}
    contract = build_contract(**options, provenance={
        "preset": NAME, "options": options, "source": path.name, "source_sha256": file_digest(path),
        "upstream": UPSTREAM})
    try:
        resolve_joint_order(contract, default_hand())
    except ContractError as exc:
        raise ImportRefused(f"the contract's joints do not map onto the hand description: {exc}") from None
    attach_contract_v2(model, contract)
    probe_finite(model, INPUT_NAME, size, OUTPUT_NAME)
    return ImportResult(model, contract, notes_for(contract, model, obs, joint_order, str(isaaclab_version),
                                                   joint_limits, palm_pose))


def notes_for(contract, model, obs: str, joint_order: str, version: str, joint_limits: str,
              palm_pose) -> list[str]:
    quat_order = QUAT_ORDER[version]
    order_text = ", ".join(contract.joint_names[:5]) + ", ..."
    notes = [
        f"joint order '{joint_order}' ({'BFS' if joint_order == 'physx' else 'DFS'}: {order_text}) mapped by name "
        "onto the hand (index->ff, middle->mf, ring->rf, thumb->th). ⚠ The orders are inferred from Isaac Lab's "
        "BFS/DFS articulation ordering, not read from the asset: confirm with env.scene['robot'].joint_names of "
        "the training run (PhysX: Isaac Lab 2.x and 3.x with PhysX; newton: 3.x with Newton/MJWarp)",
        f"quaternions are {quat_order} (Isaac Lab {version}.x); the object's sign is kept continuous (Isaac Lab "
        "does not canonicalise it), the goal's is used as given",
        "observation frame: Isaac Lab's env frame, our palm at "
        f"{list(contract.frame.translation)} with rotation (wxyz) "
        f"{[round(v, 6) for v in contract.frame.rotation_wxyz]}"
        + (" (ALLEGRO_HAND_CFG's root pose)" if palm_pose is None else " (--palm-pose)")
        + ". ⚠ That our hand description's palm frame coincides with the Allegro asset's root link is not "
          "verified; if not, pass the palm's pose in the env frame with --palm-pose",
        f"goal position: the constant {list(GOAL_POSITION)} (object default position + (0, 0, -0.04), env frame), "
        "as InHandReOrientationCommand always commands",
        ("joint limits: the hand description's (Allegro v4). Isaac Lab scales joints and actions by the USD "
         "asset's soft limits (factor 1.0); ⚠ those were not read from the USD: pass --joint-limits FILE if "
         "they differ" if joint_limits == "hand" else f"joint limits from {joint_limits} (policy's asset limits)"),
        f"action: clamp to [-1, 1], unscale to the limits, EMA alpha {contract.action.ema_alpha:g} with the "
        "measured pose as the previous target after a reset (EMAJointPositionToLimitsAction), clip to the "
        "limits; targets are also clipped to the hand's limits",
        normaliser_note(model, INPUT_NAME, "Isaac Lab's rsl_rl exporter",
                        "it would see unnormalised observations and act wrongly"),
    ]
    if obs == "full":
        notes.append("⚠ velocities are finite differences of the measured joints and of the tracked object pose "
                     "(Isaac Lab observes the simulator's); a noisy tracker gives noisy velocities. A policy "
                     "trained with --obs no_vel avoids them")
    return notes


# ------------------------------------------------------------------ CLI hooks
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--obs", choices=sorted(OBS_SIZES), required=True,
        help="observation group the policy was trained with: full (Isaac-Repose-Cube-Allegro-v0, 72 values) or "
             "no_vel (-NoVelObs-v0, 50 values); required so that a model is never read with a guessed layout "
             "(the size is checked against it)")
    parser.add_argument(
        "--joint-order", choices=sorted(JOINT_ORDERS), required=True,
        help="articulation joint order of the training run: physx (BFS: index_joint_0, middle_joint_0, ..., "
             "Isaac Lab 2.x, or 3.x with PhysX) or newton (DFS: index_joint_0..3, middle_joint_0..3, ...; 3.x "
             "with Newton/MJWarp). Required: it depends on the physics backend, which the ONNX file does not "
             "record (print env.scene['robot'].joint_names to check)")
    parser.add_argument(
        "--isaaclab-version", choices=sorted(QUAT_ORDER), required=True,
        help="Isaac Lab major version of the training run: 2 (quaternions w, x, y, z) or 3 (x, y, z, w). "
             "Required: the ONNX file does not record it and both orders give plausible-looking inputs")
    parser.add_argument("--ema-alpha", type=float, default=DEFAULTS["ema_alpha"],
                        help="EMAJointPositionToLimitsActionCfg.alpha (default 0.95, the task's)")
    parser.add_argument("--action-scale", type=float, default=DEFAULTS["action_scale"],
                        help="the action term's scale applied before the [-1, 1] clamp (default 1.0)")
    parser.add_argument("--control-rate-hz", type=float, default=DEFAULTS["control_rate_hz"],
                        help="policy rate: 1 / (sim.dt x decimation) (default 30 = 1/120 s x 4)")
    parser.add_argument(
        "--palm-pose", type=float, nargs=7, metavar=("X", "Y", "Z", "Q1", "Q2", "Q3", "Q4"),
        help="pose of the hand root (our palm) in Isaac Lab's env frame: position in m and the quaternion as "
             "that Isaac Lab version writes it (2.x: w x y z, 3.x: x y z w); default ALLEGRO_HAND_CFG's "
             "(0, 0, 0.5) and (w, x, y, z) = (0.257551, 0.283045, 0.683330, -0.621782)")
    parser.add_argument(
        "--joint-limits", default="hand", metavar="hand|FILE",
        help="the limits the policy scales joints and actions by (the asset's soft limits): 'hand' (default: "
             "the hand description's, the Allegro v4 limits) or a YAML/JSON file with {lower: [...], upper: "
             "[...]} in the policy's joint order or one 'name: [lower, upper]' per joint")


def build(path: Path, args: argparse.Namespace) -> ImportResult:
    return import_isaaclab(path, obs=args.obs, joint_order=args.joint_order,
                           isaaclab_version=args.isaaclab_version, ema_alpha=args.ema_alpha,
                           action_scale=args.action_scale, control_rate_hz=args.control_rate_hz,
                           palm_pose=args.palm_pose, joint_limits=args.joint_limits)


PRESET = Preset(
    name=NAME,
    summary="Isaac Lab Isaac-Repose-Cube-Allegro-v0 (manager-based), rsl_rl ONNX export (obs -> actions)",
    upstream=UPSTREAM,
    add_arguments=add_arguments,
    build=build,
)
