"""Preset ``isaacgymenvs-allegro``: an IsaacGymEnvs AllegroHand policy saved by rl_games (``.pth``).

Upstream convention, read in isaac-sim/IsaacGymEnvs @aeed2986 and Denys88/rl_games @262cf202:

* Observation (``isaacgymenvs/tasks/allegro_hand.py`` ``compute_full_observations``), in this order:
  ``full_no_vel`` (50) = unscale(dof pos, asset limits) 16, object pose 7 (position 3 + quaternion
  **xyzw**), goal pose 7 (position + quaternion), ``quat_mul(object_rot, quat_conjugate(goal_rot))`` 4,
  ``self.actions`` 16; ``full`` (72) adds dof vel x ``vel_obs_scale`` 0.2 after the positions and object
  linear velocity 3 + angular velocity x 0.2 after the object pose. ``full_state`` (88) adds dof forces x 10
  (``acquire_dof_force_tensor``), which the real hand does not measure: refused.
  Quaternions are xyzw (``utils/torch_jit_utils.py`` ``quat_mul`` unpacks ``x, y, z, w``) and never
  sign-canonicalised. ``self.actions`` is the action after ``VecTask.step``'s clamp to ``clipActions``
  (``tasks/base/vec_task.py``), so the previous-action term is the clipped action.
* Frames: poses are those of the root-state tensor, in the environment frame of a hand whose root
  (``allegro_mount`` in ``assets/urdf/kuka_allegro_description/allegro_touch_sensor.urdf``, the yaml's
  ``assetFileName``) stands at p = (0, 0, 0.5), r = Quat(y, pi) * Quat(x, 0.47 pi) * Quat(z, 0.25 pi)
  (``_create_envs``). The goal position is the object start pose (hand + (0, -0.2, 0.06), hard-coded
  ``pose_dy, pose_dz``; the yaml's ``startObjectPoseDY/DZ`` are unused) with z - 0.04:
  (0, -0.2, 0.52) for the block (``goal_states``). The displaced goal marker is not observed.
* Joint order: Isaac Gym DOF order of that URDF, index_joint_0..3, middle_joint_0..3, ring_joint_0..3,
  thumb_joint_0..3 (the code uses DOF indices 0..15 and never names them; the order is the one
  ``shared/upstream-policies.md`` 2a infers: depth-first, siblings by name). Limits are the URDF's:
  fingers j0 +-0.5585, j1..j3 [-0.2792, 1.7278]; thumb j0 [0.2792, 1.5708], j1 [-0.3316, 1.1519],
  j2 [-0.2792, 1.7278], j3 [-0.2792, 1.7627].
* Action (``pre_physics_step``): target = ``scale(a, lower, upper)``, then
  ``actionsMovingAverage`` EMA (1.0 in ``cfg/task/AllegroHand.yaml``), then clamp to the limits; with
  ``useRelativeControl`` target = previous target + ``dofSpeedScale`` (20) * ``sim_params.dt``
  (0.01667, the *sim* dt, not the 30 Hz control period) * a, clamped (no EMA). ``clipActions`` 1.0,
  ``clipObservations`` 5.0 (env clamp before the normaliser); ``controlFrequencyInv`` 2 at dt 1/60: 30 Hz.
* rl_games (``algos_torch/network_builder.py`` A2CBuilder ``_build_sequential_mlp``: Linear then
  activation per unit, so ``a2c_network.actor_mlp.{0,2,4}``; ``a2c_network.mu`` Linear with
  ``mu_activation None``; ``a2c_network.sigma``, ``a2c_network.value``); ``cfg/train/AllegroHandPPO.yaml``:
  units [512, 256, 128], activation elu, separate False, fixed_sigma True, normalize_input True.
  The input normaliser is in ``checkpoint['model']`` as ``running_mean_std.running_mean/running_var/count``
  (``algos_torch/models.py`` ``BaseModelNetwork``; a top-level ``'running_mean_std'`` is also read by
  ``algos_torch/players.py`` ``restore``); ``algos_torch/running_mean_std.py``:
  y = clamp((x - mean) / sqrt(var + 1e-5), -5, 5). The player's deterministic action is ``mus``
  clamped to [-1, 1] (``players.py`` ``get_action``). The checkpoint is ``common/a2c_common.py``
  ``get_full_state_weights``: ``{'model', 'epoch', 'frame', 'optimizer', 'last_mean_rewards', ...}``
  (``torch_ext.load_checkpoint`` strips torch.compile's ``_orig_mod.``).

DeXtreme (an LSTM over its concatenated dict observations) is not handled here: it is the preset
``isaacgymenvs-dextreme`` (:mod:`.dextreme`), to which this preset's refusal of recurrent checkpoints points.
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...geometry import axis_angle_to_quat, quat_multiply
from ..contract_v2 import PolicyContractV2
from ..loading import attach_contract_v2
from . import ImportRefused, ImportResult, Preset
from .common import (as_array, describe_keys, load_checkpoint, normalizer_from_stats,
                     strip_compile_prefix)
from .common import check_size, checkpoint_contract, torch_to_onnx

NAME = "isaacgymenvs-allegro"
UPSTREAM = ("isaac-sim/IsaacGymEnvs@aeed2986 isaacgymenvs/tasks/allegro_hand.py, cfg/task/AllegroHand.yaml, "
            "cfg/train/AllegroHandPPO.yaml, assets/urdf/kuka_allegro_description/allegro_touch_sensor.urdf; "
            "Denys88/rl_games@262cf202 rl_games/algos_torch/{network_builder,models,running_mean_std,players}.py")

FINGERS = (("index", "ff"), ("middle", "mf"), ("ring", "rf"), ("thumb", "th"))
JOINT_NAMES = tuple(f"{finger}_joint_{j}" for finger, _ in FINGERS for j in range(4))
JOINT_ALIASES = {f"{finger}_joint_{j}": f"{short}j{j}" for finger, short in FINGERS for j in range(4)}
# allegro_touch_sensor.urdf <limit> elements, DOF order
_FINGER_LOWER = (-0.558488888889, -0.279244444444, -0.279244444444, -0.279244444444)
_FINGER_UPPER = (0.558488888889, 1.727825, 1.727825, 1.727825)
ASSET_LOWER = _FINGER_LOWER * 3 + (0.279244444444, -0.331602777778, -0.279244444444, -0.279244444444)
ASSET_UPPER = _FINGER_UPPER * 3 + (1.57075, 1.15188333333, 1.727825, 1.76273055556)

HAND_START_POSITION = (0.0, 0.0, 0.5)
# gymapi.Quat.from_axis_angle(y, pi) * from_axis_angle(x, 0.47 pi) * from_axis_angle(z, 0.25 pi), as wxyz
HAND_START_QUAT_WXYZ = tuple(float(v) for v in quat_multiply(
    quat_multiply(axis_angle_to_quat([0, 1, 0], math.pi), axis_angle_to_quat([1, 0, 0], 0.47 * math.pi)),
    axis_angle_to_quat([0, 0, 1], 0.25 * math.pi)))
GOAL_POSITION = (0.0, -0.2, 0.52)           # block: object start (hand + (0, -0.2, 0.06)) with z - 0.04

OBS_SIZES = {"full_no_vel": 50, "full": 72, "full_state": 88}
NUM_ACTIONS = 16
VEL_OBS_SCALE = 0.2
CLIP_OBSERVATIONS = 5.0
CLIP_ACTIONS = 1.0
DOF_SPEED_SCALE = 20.0
SIM_DT = 0.01667
CONTROL_RATE_HZ = 30.0
ACTIVATIONS = ("elu", "relu", "tanh", "sigmoid", "selu", "swish", "gelu", "softplus", "None")


# ------------------------------------------------------------ checkpoint reading (shared with hora.py)
def parse_floats(text: str, count: int, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).replace(",", " ").split())
    except ValueError:
        raise ImportRefused(f"{option}: '{text}' is not {count} numbers") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ImportRefused(f"{option}: expected {count} finite numbers, got '{text}'")
    return values


def parse_palm_pose(text: str | None) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """``"x y z qw qx qy qz"``: this package's palm frame in the IGE environment frame."""
    if text is None:
        return HAND_START_POSITION, HAND_START_QUAT_WXYZ
    values = parse_floats(text, 7, "--palm-pose")
    quat = np.asarray(values[3:])
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > 1e-3:
        raise ImportRefused(f"--palm-pose: the quaternion (qw qx qy qz) {list(values[3:])} has norm {norm:.4g}, "
                            "not 1")
    return values[:3], tuple(float(v) for v in quat / norm)


# ------------------------------------------------------------------ contract
def observation_terms(obs_type: str, goal_position=GOAL_POSITION) -> list[dict]:
    """The IGE observation, in upstream order, as contract terms (``frame: policy`` = IGE env frame)."""
    if obs_type not in ("full_no_vel", "full"):
        raise ImportRefused(f"--obs-type {obs_type}: only full_no_vel and full are importable")
    full = obs_type == "full"
    terms = [{"name": "dof_pos", "kind": "joint_positions", "scaling": "unit_limits"}]
    if full:
        terms.append({"name": "dof_vel", "kind": "joint_velocities", "scale": VEL_OBS_SCALE})
    terms += [{"name": "object_pos", "kind": "object_position", "frame": "policy"},
              {"name": "object_rot", "kind": "object_orientation", "frame": "policy", "order": "xyzw",
               "sign": "as_is"}]
    if full:
        terms += [{"name": "object_linvel", "kind": "object_linear_velocity", "frame": "policy", "scale": 1.0},
                  {"name": "object_angvel", "kind": "object_angular_velocity", "frame": "policy",
                   "scale": VEL_OBS_SCALE}]
    terms += [{"name": "goal_pos", "kind": "constant", "values": [float(v) for v in goal_position]},
              {"name": "goal_rot", "kind": "goal_orientation", "frame": "policy", "order": "xyzw", "sign": "as_is"},
              {"name": "goal_quat_diff", "kind": "quaternion_difference", "frame": "policy", "order": "xyzw",
               "sign": "as_is"},
              {"name": "actions", "kind": "previous_actions", "clipped": True}]
    return terms


def hand_limits_in_ige_order() -> tuple[tuple[float, ...], tuple[float, ...]]:
    from ...hand_model import default_hand

    hand = default_hand()
    index = [hand.aliases()[JOINT_ALIASES[n]] for n in JOINT_NAMES]
    return tuple(float(hand.lower[i]) for i in index), tuple(float(hand.upper[i]) for i in index)


def build_contract(obs_type: str, *, normalizer: dict | None, joint_limits: str = "asset", ema_alpha: float = 1.0,
                   relative_control: bool = False, palm_pose: str | None = None,
                   goal_position=GOAL_POSITION, control_rate_hz: float = CONTROL_RATE_HZ,
                   provenance: dict | None = None) -> PolicyContractV2:
    """The contract of an IGE AllegroHand policy (importable without a model, for tests and docs)."""
    if joint_limits == "asset":
        lower, upper = ASSET_LOWER, ASSET_UPPER
    elif joint_limits == "hand":
        lower, upper = hand_limits_in_ige_order()
    else:
        raise ImportRefused(f"--joint-limits {joint_limits}: must be 'asset' or 'hand'")
    if relative_control and ema_alpha != 1.0:
        raise ImportRefused(f"--ema-alpha {ema_alpha:g} with --relative-control: IGE applies "
                            "actionsMovingAverage only to absolute targets (pre_physics_step); drop one")
    translation, rotation = parse_palm_pose(palm_pose)
    terms = observation_terms(obs_type, goal_position)
    action = ({"output": "mu", "mode": "delta_previous_target", "scale": DOF_SPEED_SCALE * SIM_DT,
               "input_clip": CLIP_ACTIONS}
              if relative_control else
              {"output": "mu", "mode": "unscale_limits", "input_clip": CLIP_ACTIONS, "ema_alpha": ema_alpha})
    spec = {"contract_version": 2, "name": NAME, "control_rate_hz": control_rate_hz,
            "joint_names": list(JOINT_NAMES), "joint_aliases": dict(JOINT_ALIASES),
            "joint_limits": {"lower": list(lower), "upper": list(upper)},
            "frame": {"translation": list(translation), "rotation_wxyz": list(rotation)},
            "terms": terms,
            "inputs": [{"name": "obs", "terms": [t["name"] for t in terms], "normalizer": normalizer,
                        "description": f"IsaacGymEnvs AllegroHand observationType {obs_type}"}],
            "action": action, "outputs": [{"name": "mu", "shape": [1, NUM_ACTIONS]}],
            "description": f"IsaacGymEnvs AllegroHand ({obs_type}), rl_games checkpoint",
            "provenance": dict(provenance or {})}
    return checkpoint_contract(spec)


# ------------------------------------------------------------------- network
_ACTOR_KEY = re.compile(r"^a2c_network\.actor_mlp\.(\d+)\.(weight|bias)$")


def actor_layers(model: Mapping[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(weight, bias)] of the actor MLP then mu, from an rl_games ``checkpoint['model']``; refuses others."""
    keys = [k for k in model if isinstance(k, str)]
    recurrent = [k for k in keys if k.startswith("a2c_network.rnn.") or ".rnn." in k]
    if recurrent:
        raise ImportRefused(f"recurrent rl_games network (keys {describe_keys(recurrent, 4)}): an LSTM policy "
                            "such as DeXtreme's is not supported by this preset yet: import it with --preset "
                            "isaacgymenvs-dextreme (GRU policies remain a later issue)")
    if any(k.startswith("running_mean_std.running_mean_std.") for k in keys):
        raise ImportRefused("dict observations (running_mean_std.running_mean_std.<key>.*, RunningMeanStdObs): "
                            "a DeXtreme-style dict-observation policy is not supported by this preset; for "
                            "DeXtreme's LSTM use --preset isaacgymenvs-dextreme")
    if any(k.startswith("a2c_network.actor_cnn.") for k in keys):
        raise ImportRefused("the network has a CNN (a2c_network.actor_cnn.*); AllegroHand policies are MLPs")
    actor = [k for k in keys if k.startswith("a2c_network.actor_mlp.")]
    missing = [k for k in ("a2c_network.mu.weight", "a2c_network.mu.bias") if k not in model]
    if not actor or missing:
        raise ImportRefused(f"not an rl_games A2C continuous actor: missing "
                            f"{(['a2c_network.actor_mlp.<i>.weight'] if not actor else []) + missing} in "
                            f"checkpoint['model'] (found keys {describe_keys(keys)})")
    odd = [k for k in actor if not _ACTOR_KEY.match(k)]
    if odd:
        raise ImportRefused(f"unsupported actor MLP layout (keys {describe_keys(odd, 4)}; d2rl is not supported)")
    indices = sorted({int(_ACTOR_KEY.match(k).group(1)) for k in actor})
    layers = []
    for i in indices:
        w = as_array(model.get(f"a2c_network.actor_mlp.{i}.weight"), f"a2c_network.actor_mlp.{i}.weight")
        b_key = f"a2c_network.actor_mlp.{i}.bias"
        if w.ndim != 2:
            raise ImportRefused(f"a2c_network.actor_mlp.{i}.weight has shape {list(w.shape)}: normalisation layers "
                                "in the MLP (layer_norm/batch_norm) are not supported")
        if b_key not in model:
            raise ImportRefused(f"{b_key} missing")
        layers.append((w, as_array(model[b_key], b_key)))
    layers.append((as_array(model["a2c_network.mu.weight"], "a2c_network.mu.weight"),
                   as_array(model["a2c_network.mu.bias"], "a2c_network.mu.bias")))
    for k, (w, b) in enumerate(layers):
        if b.shape != (w.shape[0],):
            raise ImportRefused(f"layer {k}: bias shape {list(b.shape)} does not match weight {list(w.shape)}")
        if k and w.shape[1] != layers[k - 1][0].shape[0]:
            raise ImportRefused(f"layer {k} takes {w.shape[1]} inputs, the layer before gives "
                                f"{layers[k - 1][0].shape[0]}")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ImportRefused(f"layer {k}: NaN or inf weights")
    return layers


def _activation(name: str):
    import torch

    table = {"elu": torch.nn.ELU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
             "selu": torch.nn.SELU, "swish": torch.nn.SiLU, "gelu": torch.nn.GELU, "softplus": torch.nn.Softplus,
             "None": torch.nn.Identity}
    if name not in table:
        raise ImportRefused(f"--activation {name}: one of {list(table)}")
    return table[name]()


def actor_module(layers: list[tuple[np.ndarray, np.ndarray]], activation: str):
    """torch Sequential: (Linear, activation) per actor_mlp layer, then mu (Linear, mu_activation None)."""
    import torch

    modules = []
    for k, (w, b) in enumerate(layers):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            linear.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        modules.append(linear)
        if k < len(layers) - 1:
            modules.append(_activation(activation))
    return torch.nn.Sequential(*modules).eval()


def input_normalizer(checkpoint: Mapping, model: Mapping) -> tuple[np.ndarray, np.ndarray, str]:
    if "running_mean_std.running_mean" in model or "running_mean_std.running_var" in model:
        source, stats = "checkpoint['model']['running_mean_std.*']", {
            k[len("running_mean_std."):]: v for k, v in model.items()
            if isinstance(k, str) and k.startswith("running_mean_std.")}
    elif isinstance(checkpoint.get("running_mean_std"), Mapping):
        source, stats = "checkpoint['running_mean_std']", checkpoint["running_mean_std"]
    else:
        raise ImportRefused("no input normaliser: neither checkpoint['model']['running_mean_std.running_mean'/"
                            "'running_var'] nor checkpoint['running_mean_std'] is present (AllegroHandPPO.yaml "
                            "trains with normalize_input: True, so the policy cannot run without it); if it "
                            "really was trained with normalize_input: False, pass --no-normalizer")
    missing = [k for k in ("running_mean", "running_var") if k not in stats]
    if missing:
        raise ImportRefused(f"{source}: missing {missing} (found {describe_keys(stats)})")
    return as_array(stats["running_mean"], f"{source} running_mean"), \
        as_array(stats["running_var"], f"{source} running_var"), source


# --------------------------------------------------------------------- preset
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--obs-type", required=True, choices=sorted(OBS_SIZES),
                        help="observationType the policy was trained with (a training choice: no default); "
                             "full_state is refused (dof forces are not measured on the real hand)")
    parser.add_argument("--joint-limits", choices=("asset", "hand"), default="asset",
                        help="limits used to unscale positions and actions: the IGE asset's URDF limits "
                             "(default, what the policy was trained with) or this hand's")
    parser.add_argument("--ema-alpha", type=float, default=1.0,
                        help="actionsMovingAverage of the training run (default 1.0 = none)")
    parser.add_argument("--relative-control", action="store_true",
                        help="the run used useRelativeControl: target = previous target + 20 * 0.01667 * a")
    parser.add_argument("--palm-pose", default=None, metavar='"x y z qw qx qy qz"',
                        help="pose of this hand's palm frame in the IGE environment frame (default: the IGE "
                             "hand start pose; see the notes)")
    parser.add_argument("--goal-position", default=None, metavar='"x y z"',
                        help=f"the constant goal position in the IGE env frame (default {list(GOAL_POSITION)}, "
                             "the block's)")
    parser.add_argument("--activation", default="elu", choices=ACTIVATIONS,
                        help="network.mlp.activation of the training config (AllegroHandPPO.yaml: elu)")
    parser.add_argument("--control-rate-hz", type=float, default=CONTROL_RATE_HZ,
                        help="policy rate (upstream: 30 Hz = dt 1/60 x controlFrequencyInv 2)")
    parser.add_argument("--no-normalizer", action="store_true",
                        help="the policy was trained with normalize_input: False (no running_mean_std)")


def _size_hint(size: int) -> str:
    match = [name for name, n in OBS_SIZES.items() if n == size]
    return f"a {size}-input model matches --obs-type {match[0]}" if match else \
        f"no IGE observationType has {size} values ({OBS_SIZES})"


def load_rl_games_checkpoint(path: Path) -> tuple[dict, dict]:
    """An rl_games ``.pth`` and its ``checkpoint['model']`` state dict (torch.compile prefixes stripped)."""
    checkpoint = load_checkpoint(path, "an rl_games .pth")
    if not isinstance(checkpoint, Mapping) or "model" not in checkpoint:
        found = describe_keys(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ImportRefused(f"{path}: not an rl_games checkpoint: no 'model' entry (found {found})")
    checkpoint = strip_compile_prefix(checkpoint)
    model = checkpoint["model"]
    if not isinstance(model, Mapping):
        raise ImportRefused(f"{path}: checkpoint['model'] is a {type(model).__name__}, not a state dict")
    return checkpoint, strip_compile_prefix(model)


def build(path: Path, args: argparse.Namespace) -> ImportResult:
    obs_type = args.obs_type
    if obs_type == "full_state":
        raise ImportRefused("--obs-type full_state: its observation includes 16 dof forces (dof_force_tensor x 10, "
                            "simulator joint torques) that the real hand does not measure; retrain with "
                            "observationType full_no_vel or full")
    if obs_type not in OBS_SIZES:
        raise ImportRefused(f"--obs-type {obs_type}: one of {sorted(OBS_SIZES)}")
    checkpoint, model = load_rl_games_checkpoint(path)
    layers = actor_layers(model)
    obs_size, num_actions = layers[0][0].shape[1], layers[-1][0].shape[0]
    check_size(f"observation size (--obs-type {obs_type})", OBS_SIZES[obs_type], obs_size,
               f"the first actor layer takes {obs_size}; {_size_hint(obs_size)}")
    check_size("action size (mu)", NUM_ACTIONS, num_actions, "an Allegro policy outputs 16 joint actions")
    notes = []
    if args.no_normalizer:
        normalizer = {"mean": [0.0], "std": [1.0], "epsilon": 0.0, "clip": None, "clip_input": CLIP_OBSERVATIONS}
        source = "none (--no-normalizer)"
        notes.append("--no-normalizer: the observation goes to the network unnormalised (only the env clamp "
                     f"+-{CLIP_OBSERVATIONS:g}); right only for a run with normalize_input: False")
    else:
        mean, var, source = input_normalizer(checkpoint, model)
        check_size(f"input normaliser size ({source})", obs_size, mean.size)
        check_size(f"input normaliser variance size ({source})", obs_size, var.size)
        normalizer = normalizer_from_stats(mean, var, source, CLIP_OBSERVATIONS)
    goal_position = GOAL_POSITION if args.goal_position is None else \
        parse_floats(args.goal_position, 3, "--goal-position")
    contract = build_contract(obs_type, normalizer=normalizer, joint_limits=args.joint_limits,
                              ema_alpha=args.ema_alpha, relative_control=args.relative_control,
                              palm_pose=args.palm_pose, goal_position=goal_position,
                              control_rate_hz=args.control_rate_hz,
                              provenance={"preset": NAME, "source": Path(path).name, "upstream": UPSTREAM,
                                          "normalizer": source, "activation": args.activation,
                                          "epoch": _scalar(checkpoint.get("epoch"))})
    onnx_model = torch_to_onnx(actor_module(layers, args.activation), {"obs": (1, obs_size)}, ["mu"])
    attach_contract_v2(onnx_model, contract)
    notes += _notes(obs_type, args, contract)
    return ImportResult(onnx_model, contract, notes)


def _scalar(value):
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _notes(obs_type: str, args: argparse.Namespace, contract: PolicyContractV2) -> list[str]:
    notes = []
    if args.palm_pose is None:
        notes.append("⚠ frame: object poses are mapped into the IGE environment frame with the hand's start pose "
                     "(p = (0, 0, 0.5), r = Ry(pi) Rx(0.47 pi) Rz(0.25 pi)), i.e. assuming this package's palm "
                     "frame is the asset root. It is not: the root of allegro_touch_sensor.urdf is allegro_mount, "
                     "palm_link hangs off it at xyz (-0.008219, -0.02063, 0.08086) rpy (0, -1.5708, 0.785398), "
                     "and palm_link's axes are not verified against this hand description's palm. Measure the "
                     "palm's pose in the IGE env frame and pass --palm-pose \"x y z qw qx qy qz\"")
    else:
        notes.append(f"frame: palm pose in the IGE env frame from --palm-pose: {list(contract.frame.translation)}, "
                     f"wxyz {list(contract.frame.rotation_wxyz)}")
    notes.append(f"goal position: the constant {list(contract.term('goal_pos').params.values)} in the IGE env "
                 "frame (block; a pen starts at hand z + 0.02, so its goal is (0, -0.2, 0.48): use "
                 "--goal-position)")
    if args.joint_limits == "asset":
        notes.append("joint limits: the IGE asset's (allegro_touch_sensor.urdf), as in training; they differ "
                     "from this hand's (e.g. finger j0 +-0.5585 vs +-0.47, thumb j0 lower 0.2792 vs 0.263, "
                     "thumb j1 upper 1.1519 vs 1.163); targets are clipped to both")
    else:
        notes.append("⚠ --joint-limits hand: positions and actions are unscaled with this hand's limits, not "
                     "the asset limits the policy was trained with")
    if args.relative_control:
        notes.append(f"relative control: target = previous target + {DOF_SPEED_SCALE:g} x {SIM_DT:g} x a "
                     "(dofSpeedScale x sim dt, as pre_physics_step; not x the 30 Hz period)")
    if obs_type == "full":
        notes.append("velocities: joint and object velocities are finite differences of measured joint "
                     "states and tracked poses (IGE read the simulator's); noisy tracking shows here")
    notes.append("quaternions: xyzw, fed as tracked (IGE never canonicalises the sign); the goal is sent with "
                 "w >= 0 in the palm frame")
    notes.append(f"control rate {contract.control_rate_hz:g} Hz (upstream 30 Hz); previous actions start at "
                 "zero after a reset, targets from the measured pose")
    return notes


PRESET = Preset(name=NAME, summary="IsaacGymEnvs AllegroHand, rl_games .pth (MLP; obs full_no_vel or full)",
                upstream=UPSTREAM, add_arguments=add_arguments, build=build)
