"""Preset ``isaacgymenvs-dextreme``: DeXtreme's LSTM policy (IsaacGymEnvs ADR task), saved by rl_games (``.pth``).

Upstream convention, read in isaac-sim/IsaacGymEnvs @aeed2986 and Denys88/rl_games @262cf202:

* Observation. ``cfg/train/AllegroHandDextremeADRPPO.yaml`` ``network.inputs`` lists, in order,
  ``dof_pos_randomized`` 16, ``object_pose_cam_randomized`` 7, ``goal_pose`` 7,
  ``goal_relative_rot_cam_randomized`` 4, ``last_actions`` 16 (sizes: ``tasks/dextreme/allegro_hand_dextreme.py``
  ``get_num_obs_dict``). The network is ``actor_critic``, so ``train.py`` (``obs_spec['obs']``, ``concat: not
  name == "complex_net"``) makes ``utils/rlgames_utils.py`` ``ComplexObsRLGPUEnv.gen_obs_dict`` *concatenate*
  the keys in that order before rl_games sees them: rl_games gets a 50-vector and its normaliser is one
  ``RunningMeanStd`` (``checkpoint['model']['running_mean_std.running_mean'/'running_var']``). A checkpoint
  whose normaliser is rl_games' dict ``RunningMeanStdObs`` (``running_mean_std.running_mean_std.<key>.*``,
  ``algos_torch/running_mean_std.py``; chosen by ``algos_torch/models.py`` ``BaseModelNetwork`` when the
  observation space is a dict) is also read: its per-key statistics are concatenated in the input order.
  The env clamps each key to ``clipObservations`` 50 (``tasks/dextreme/adr_vec_task.py`` ``step``) before
  the normaliser y = clamp((x - mean) / sqrt(var + 1e-5), -5, 5).
  Terms (``allegro_hand_dextreme.py`` ``compute_observations`` of ``AllegroHandDextreme`` and
  ``AllegroHandDextremeADR``): ``unscale(dof_pos)`` to [-1, 1] with the asset's limits (ADR's affine noise
  is training-only); the object pose **in the palm_link (wrist) frame** (``compute_poses_wrt_wrist``:
  inv(T_world_palm) T_world_object), position then quaternion **xyzw**; the goal pose in the same frame
  (the goal position is constant: ``goal_states[:, 0:3]`` is reset to ``goal_init_state``, the palm is
  fixed); ``quat_mul(q_obj_wrist, quat_conjugate(q_goal_wrist))`` xyzw; ``last_actions`` = ``self.actions``,
  the action after ``adr_vec_task.py`` ``step``'s clamp to ``clipActions`` 1.0.
  Wrist quaternions come from ``utils/torch_jit_utils.py`` ``matrix_to_quaternion``, which returns the
  candidate whose largest-magnitude component is positive: the terms use sign ``largest_positive`` for
  the object and goal quaternions, and the relative rotation multiplies the two so signed (``input_sign``)
  and keeps the product's sign.
* Network (``algos_torch/network_builder.py`` ``A2CBuilder.Network``; yaml ``rnn: lstm, units 1024,
  layers 1, before_mlp True, layer_norm True``; ``mlp: [512, 512] elu``; ``separate False``):
  ``load`` reads ``before_mlp``/``layer_norm``/``concat_input``/``concat_output``; ``__init__`` builds
  ``self.rnn = LSTMWithDones(obs_size, units, layers)`` (``common/layers/recurrent.py``: a ``torch.nn.LSTM``
  under ``.rnn``, so keys ``a2c_network.rnn.rnn.weight_ih_l0`` ...) and ``self.layer_norm =
  LayerNorm(units)``; ``forward`` runs obs -> LSTM -> ``layer_norm`` -> ``actor_mlp`` -> ``mu`` (``mu_activation
  None``). The state is (h, c), each (layers, batch, units), zeros at the start
  (``get_default_rnn_state``) and at every done (``players.py``). The deterministic action is ``mu`` clamped
  to [-1, 1] (``players.py`` ``get_action``).
* Action (``allegro_hand_dextreme.py`` ``apply_actions``): target = ``scale(a, lower, upper)``, then
  target = m * target + (1 - m) * previous target with m = ``act_moving_average``, then clamp to the limits.
  m is annealed (``update_action_moving_average``) from ``actionsMovingAverage.range`` upper 0.2 to lower 0.15
  over ``schedule_steps`` 1 000 000 (``cfg/task/AllegroHandDextremeADR.yaml``): a finished run acts with 0.15,
  this preset's default. ``sim.dt`` 1/60 x ``controlFrequencyInv`` 2 = 30 Hz. Limits and DOF order are the
  AllegroHand asset's (the same ``allegro_touch_sensor.urdf``; see :mod:`.isaacgymenvs`).

What the real hand cannot give the same way: the wrist frame (palm_link of the IGE URDF) relative to this
package's palm frame is a calibration, and the goal *position* in that frame depends on the sim's hand and
object start poses: both are required options, never guessed.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..contract_v2 import PolicyContractV2
from ..loading import attach_contract_v2
from . import ImportRefused, ImportResult, Preset
from . import isaacgymenvs as ige
from .common import as_array, check_size, checkpoint_contract, describe_keys, normalizer_from_stats, torch_to_onnx

NAME = "isaacgymenvs-dextreme"
UPSTREAM = ("isaac-sim/IsaacGymEnvs@aeed2986 isaacgymenvs/tasks/dextreme/{allegro_hand_dextreme,adr_vec_task}.py, "
            "cfg/task/AllegroHandDextremeADR.yaml, cfg/train/AllegroHandDextremeADRPPO.yaml, train.py, "
            "utils/rlgames_utils.py; Denys88/rl_games@262cf202 rl_games/algos_torch/{network_builder,models,"
            "running_mean_std,players}.py, rl_games/common/layers/recurrent.py")

# network.inputs of AllegroHandDextremeADRPPO.yaml, in order, with their sizes (get_num_obs_dict)
INPUT_SIZES = {"dof_pos_randomized": 16, "object_pose_cam_randomized": 7, "goal_pose": 7,
               "goal_relative_rot_cam_randomized": 4, "last_actions": 16}
DEFAULT_INPUTS = tuple(INPUT_SIZES)
OBS_SIZE = sum(INPUT_SIZES.values())
NUM_ACTIONS = ige.NUM_ACTIONS
CLIP_OBSERVATIONS = 50.0
CLIP_ACTIONS = 1.0
EMA_ALPHA = 0.15                  # actionsMovingAverage.range lower: the annealed value after 1e6 steps
CONTROL_RATE_HZ = 30.0
STATE_INPUTS, STATE_OUTPUTS = ("h_in", "c_in"), ("h_out", "c_out")

_RNN_KEY = re.compile(r"^a2c_network\.(a_rnn|rnn)\.rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


# ------------------------------------------------------------------ contract
def observation_terms(inputs: tuple[str, ...], goal_position) -> list[dict]:
    """DeXtreme's policy inputs, in ``inputs`` order, as contract terms (``frame: policy`` = palm_link)."""
    quat = {"frame": "policy", "order": "xyzw", "sign": "largest_positive"}     # matrix_to_quaternion's sign
    by_key = {
        "dof_pos_randomized": [{"name": "dof_pos", "kind": "joint_positions", "scaling": "unit_limits"}],
        "object_pose_cam_randomized": [
            {"name": "object_pos", "kind": "object_position", "frame": "policy"},
            {"name": "object_rot", "kind": "object_orientation", **quat}],
        "goal_pose": [{"name": "goal_pos", "kind": "constant", "values": [float(v) for v in goal_position]},
                      {"name": "goal_rot", "kind": "goal_orientation", **quat}],
        # quat_mul(object, conj(goal)) of the two signed quaternions above, the product as it comes
        "goal_relative_rot_cam_randomized": [{"name": "goal_relative_rot", "kind": "quaternion_difference",
                                              "frame": "policy", "order": "xyzw", "sign": "as_is",
                                              "input_sign": "largest_positive"}],
        "last_actions": [{"name": "last_actions", "kind": "previous_actions", "clipped": True}],
    }
    return [term for key in inputs for term in by_key[key]]


def build_contract(*, normalizer: dict, rnn_layers: int, rnn_units: int, palm_pose: str,
                   goal_position, inputs: tuple[str, ...] = DEFAULT_INPUTS, joint_limits: str = "asset",
                   ema_alpha: float = EMA_ALPHA, control_rate_hz: float = CONTROL_RATE_HZ,
                   provenance: dict | None = None) -> PolicyContractV2:
    """The contract of a DeXtreme LSTM policy: one flat input, two recurrent pairs (h, c), zeros at a reset."""
    if joint_limits == "asset":
        lower, upper = ige.ASSET_LOWER, ige.ASSET_UPPER
    elif joint_limits == "hand":
        lower, upper = ige.hand_limits_in_ige_order()
    else:
        raise ImportRefused(f"--joint-limits {joint_limits}: must be 'asset' or 'hand'")
    translation, rotation = ige.parse_palm_pose(palm_pose)
    terms = observation_terms(inputs, goal_position)
    state_shape = [1, int(rnn_layers), int(rnn_units)]
    spec = {"contract_version": 2, "name": NAME, "control_rate_hz": control_rate_hz,
            "joint_names": list(ige.JOINT_NAMES), "joint_aliases": dict(ige.JOINT_ALIASES),
            "joint_limits": {"lower": list(lower), "upper": list(upper)},
            "frame": {"translation": list(translation), "rotation_wxyz": list(rotation)},
            "terms": terms,
            "inputs": [{"name": "obs", "terms": [t["name"] for t in terms], "normalizer": normalizer,
                        "description": "DeXtreme policy inputs " + ", ".join(inputs)}],
            "recurrent_inputs": [{"name": name, "shape": state_shape} for name in STATE_INPUTS],
            "recurrent_state": [{"input": i, "output": o, "initial_value": 0.0}
                                for i, o in zip(STATE_INPUTS, STATE_OUTPUTS)],
            "action": {"output": "mu", "mode": "unscale_limits", "input_clip": CLIP_ACTIONS, "ema_alpha": ema_alpha},
            "outputs": [{"name": "mu", "shape": [1, NUM_ACTIONS]}] +
                       [{"name": name, "shape": state_shape, "meaning": "recurrent_state"} for name in STATE_OUTPUTS],
            "description": "IsaacGymEnvs DeXtreme (AllegroHandDextremeADR), rl_games LSTM checkpoint",
            "provenance": dict(provenance or {})}
    return checkpoint_contract(spec)


# ------------------------------------------------------------------- network
def _lstm_parts(model: Mapping[str, Any]) -> tuple[str, int, int, list[dict[str, np.ndarray]]]:
    """(prefix, layers, units, per-layer weights) of the actor's rl_games LSTM; refuses other recurrent layouts."""
    rnn = {k: _RNN_KEY.match(k) for k in model if isinstance(k, str) and _RNN_KEY.match(k)}
    if not rnn:
        other = [k for k in model if isinstance(k, str) and (".rnn." in k or "_rnn." in k)]
        if other:
            raise ImportRefused(f"unknown recurrent layout (keys {describe_keys(other, 4)}); rl_games' LSTMWithDones "
                                "keeps its torch.nn.LSTM as a2c_network.rnn.rnn.weight_ih_l0 ...")
        raise ImportRefused("not a recurrent rl_games checkpoint: no a2c_network.rnn.rnn.* keys (DeXtreme's policy "
                            "is an LSTM); an MLP AllegroHand policy is imported by --preset isaacgymenvs-allegro")
    if any(m.group(4) for m in rnn.values()):
        raise ImportRefused("bidirectional LSTM (…_reverse keys): rl_games builds unidirectional ones")
    prefixes = sorted({m.group(1) for m in rnn.values()})
    if prefixes == ["a_rnn", "rnn"]:
        raise ImportRefused("both a2c_network.rnn.* and a2c_network.a_rnn.* keys: not one rl_games network")
    prefix = prefixes[0]            # 'rnn' (separate: False, DeXtreme) or 'a_rnn' (separate: True, the actor's)
    layers = sorted({int(m.group(3)) for m in rnn.values()})
    if layers != list(range(len(layers))):
        raise ImportRefused(f"LSTM layers {layers} are not numbered 0..{len(layers) - 1}")
    parts = []
    for layer in layers:
        weights = {}
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            key = f"a2c_network.{prefix}.rnn.{name}_l{layer}"
            if key not in model:
                raise ImportRefused(f"{key} missing (an LSTM layer has weight_ih, weight_hh, bias_ih, bias_hh)")
            weights[name] = as_array(model[key], key)
        parts.append(weights)
    hh = parts[0]["weight_hh"]
    if hh.ndim != 2 or hh.shape[1] == 0 or hh.shape[0] % hh.shape[1]:
        raise ImportRefused(f"a2c_network.{prefix}.rnn.weight_hh_l0 has shape {list(hh.shape)}: not (G x units, units)")
    units, gates = hh.shape[1], hh.shape[0] // hh.shape[1]
    if gates == 3:
        raise ImportRefused(f"the recurrent layer is a GRU (weight_hh_l0 {list(hh.shape)} = 3 x {units} gates); this "
                            "preset imports DeXtreme's LSTM (4 gates, state h and c)")
    if gates != 4:
        raise ImportRefused(f"a2c_network.{prefix}.rnn.weight_hh_l0 has {gates} x {units} rows: an LSTM has 4 gates")
    for layer, w in enumerate(parts):
        inputs = w["weight_ih"].shape[1] if w["weight_ih"].ndim == 2 else -1
        expected = {"weight_ih": (4 * units, inputs if layer == 0 else units), "weight_hh": (4 * units, units),
                    "bias_ih": (4 * units,), "bias_hh": (4 * units,)}
        for name, shape in expected.items():
            if w[name].shape != shape:
                raise ImportRefused(f"a2c_network.{prefix}.rnn.{name}_l{layer} has shape {list(w[name].shape)}, "
                                    f"an LSTM of {units} units needs {list(shape)}")
            if not np.all(np.isfinite(w[name])):
                raise ImportRefused(f"a2c_network.{prefix}.rnn.{name}_l{layer}: NaN or inf weights")
    return prefix, len(parts), units, parts


def _layer_norm(model: Mapping[str, Any], prefix: str, units: int) -> tuple[np.ndarray, np.ndarray] | None:
    name = "a_layer_norm" if prefix == "a_rnn" else "layer_norm"
    keys = [f"a2c_network.{name}.weight", f"a2c_network.{name}.bias"]
    present = [k for k in keys if k in model]
    if not present:
        return None
    if len(present) == 1:
        raise ImportRefused(f"{present[0]} without {[k for k in keys if k not in model][0]}: a LayerNorm has both")
    w, b = (as_array(model[k], k) for k in keys)
    for key, value in zip(keys, (w, b)):
        if value.shape != (units,):
            raise ImportRefused(f"{key} has shape {list(value.shape)}; rl_games' rnn layer_norm is LayerNorm({units})")
        if not np.all(np.isfinite(value)):
            raise ImportRefused(f"{key}: NaN or inf")
    return w, b


def read_network(model: Mapping[str, Any]) -> dict:
    """LSTM, optional layer norm, actor MLP and mu of an rl_games ``checkpoint['model']``, sizes checked."""
    prefix, layers, units, lstm = _lstm_parts(model)
    norm = _layer_norm(model, prefix, units)
    rnn_input = lstm[0]["weight_ih"].shape[1]
    recurrent = ("a2c_network.rnn.", "a2c_network.a_rnn.", "a2c_network.c_rnn.", "a2c_network.layer_norm.",
                 "a2c_network.a_layer_norm.", "a2c_network.c_layer_norm.", "running_mean_std.")
    feed_forward = {k: v for k, v in model.items() if isinstance(k, str) and not k.startswith(recurrent)}
    mlp = ige.actor_layers(feed_forward)       # actor_mlp (Linear + activation per unit) then mu
    mlp_input = mlp[0][0].shape[1]
    mlp_output = mlp[-2][0].shape[0] if len(mlp) > 1 else None
    if rnn_input != OBS_SIZE and rnn_input == mlp_output:
        raise ImportRefused(f"the LSTM takes the MLP's output ({rnn_input}): rnn.before_mlp False; DeXtreme's config "
                            "(before_mlp: True) runs the LSTM on the observation, which this preset imports")
    check_size("LSTM input size (a2c_network.rnn.rnn.weight_ih_l0, the observation: DeXtreme's 5 inputs)",
               OBS_SIZE, rnn_input, f"{' + '.join(f'{k} {n}' for k, n in INPUT_SIZES.items())}")
    if mlp_input == units + rnn_input:
        raise ImportRefused(f"the actor MLP takes {mlp_input} = LSTM {units} + observation {rnn_input}: "
                            "rnn.concat_output True, which DeXtreme's config does not use and this preset does "
                            "not import")
    check_size("actor MLP input size (a2c_network.actor_mlp.0.weight, after the LSTM)", units, mlp_input,
               "rl_games before_mlp: the MLP reads the LSTM output")
    check_size("action size (mu)", NUM_ACTIONS, mlp[-1][0].shape[0], "an Allegro policy outputs 16 joint actions")
    return {"prefix": prefix, "layers": layers, "units": units, "lstm": lstm, "layer_norm": norm, "mlp": mlp}


def actor_module(network: dict, activation: str):
    """torch module (obs, h_in, c_in) -> (mu, h_out, c_out); states are (1, layers, units), batch first."""
    import torch

    lstm = torch.nn.LSTM(OBS_SIZE, network["units"], num_layers=network["layers"])
    with torch.no_grad():
        for layer, weights in enumerate(network["lstm"]):
            for name, value in weights.items():
                getattr(lstm, f"{name}_l{layer}").copy_(torch.as_tensor(value, dtype=torch.float32))
    norm = None
    if network["layer_norm"] is not None:
        norm = torch.nn.LayerNorm(network["units"])     # rl_games: torch default eps 1e-5
        with torch.no_grad():
            norm.weight.copy_(torch.as_tensor(network["layer_norm"][0], dtype=torch.float32))
            norm.bias.copy_(torch.as_tensor(network["layer_norm"][1], dtype=torch.float32))
    head = ige.actor_module(network["mlp"], activation)

    class DextremeActor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.norm, self.head = lstm, norm or torch.nn.Identity(), head

        def forward(self, obs, h_in, c_in):
            # rl_games: (seq 1, batch 1, D) through the LSTM, state (layers, batch, units)
            out, (h, c) = self.lstm(obs.unsqueeze(0), (h_in.transpose(0, 1), c_in.transpose(0, 1)))
            return self.head(self.norm(out[0])), h.transpose(0, 1), c.transpose(0, 1)

    return DextremeActor().eval()


# --------------------------------------------------------------- normaliser
def input_normalizer(checkpoint: Mapping, model: Mapping, inputs: tuple[str, ...]
                     ) -> tuple[np.ndarray, np.ndarray, str]:
    """Flat RunningMeanStd (what IGE's concatenated obs gives), or the dict RunningMeanStdObs joined in input order."""
    per_key = {k[len("running_mean_std.running_mean_std."):] for k in model
               if isinstance(k, str) and k.startswith("running_mean_std.running_mean_std.")}
    if not per_key:
        return ige.input_normalizer(checkpoint, model)
    keys = {k.rsplit(".", 1)[0] for k in per_key}
    missing, extra = [k for k in inputs if k not in keys], sorted(keys - set(inputs))
    if missing or extra:
        raise ImportRefused(f"dict normaliser (running_mean_std.running_mean_std.<key>.*) has keys {sorted(keys)}; "
                            f"the policy inputs are {list(inputs)}: missing {missing}, unexpected {extra}")
    means, variances = [], []
    for key in inputs:
        base = f"running_mean_std.running_mean_std.{key}"
        for stat in ("running_mean", "running_var"):
            if f"{base}.{stat}" not in model:
                raise ImportRefused(f"{base}.{stat} missing")
        mean, var = as_array(model[f"{base}.running_mean"], base), as_array(model[f"{base}.running_var"], base)
        check_size(f"normaliser size of '{key}' ({base}.running_mean)", INPUT_SIZES[key], mean.size)
        check_size(f"normaliser size of '{key}' ({base}.running_var)", INPUT_SIZES[key], var.size)
        means.append(mean.ravel())
        variances.append(var.ravel())
    return np.concatenate(means), np.concatenate(variances), \
        "checkpoint['model']['running_mean_std.running_mean_std.<key>.*'] joined in input order"


# --------------------------------------------------------------------- preset
def _parse_inputs(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_INPUTS
    names = tuple(n for n in str(text).replace(",", " ").split() if n)
    if sorted(names) != sorted(DEFAULT_INPUTS):
        raise ImportRefused(f"--inputs {text!r}: must list each of {list(DEFAULT_INPUTS)} once (the order of "
                            "network.inputs in the training yaml)")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--palm-pose", required=True, metavar='"x y z qw qx qy qz"',
                        help="pose of this hand's palm frame in DeXtreme's wrist frame (palm_link of the IGE "
                             "Allegro URDF), in which every pose input is expressed; a calibration the file "
                             "cannot carry (\"0 0 0 1 0 0 0\" if the frames coincide)")
    parser.add_argument("--goal-position", required=True, metavar='"x y z"',
                        help="the goal position in the wrist frame (goal_pose[:3] of the training sim: constant, "
                             "set by the sim's hand and object start poses; log obs_dict['goal_pose'] once)")
    parser.add_argument("--ema-alpha", type=float, default=EMA_ALPHA,
                        help=f"act_moving_average (default {EMA_ALPHA}: upstream anneals 0.2 -> 0.15 over 1e6 steps, "
                             "so a finished run acts with 0.15; give 0.2 for an early checkpoint)")
    parser.add_argument("--joint-limits", choices=("asset", "hand"), default="asset",
                        help="limits to unscale positions and actions: the IGE asset's (default, as trained) or "
                             "this hand's")
    parser.add_argument("--activation", default="elu", choices=ige.ACTIVATIONS,
                        help="network.mlp.activation (AllegroHandDextremeADRPPO.yaml: elu)")
    parser.add_argument("--inputs", default=None, metavar="KEY,KEY,...",
                        help="network.inputs order of the training yaml (default: "
                             f"{','.join(DEFAULT_INPUTS)})")
    parser.add_argument("--control-rate-hz", type=float, default=CONTROL_RATE_HZ,
                        help="policy rate (upstream: 30 Hz = dt 1/60 x controlFrequencyInv 2)")


def build(path: Path, args: argparse.Namespace) -> ImportResult:
    inputs = _parse_inputs(args.inputs)
    goal_position = ige.parse_floats(args.goal_position, 3, "--goal-position")
    checkpoint, model = ige.load_rl_games_checkpoint(path)
    network = read_network(model)
    mean, var, source = input_normalizer(checkpoint, model, inputs)
    check_size(f"input normaliser size ({source})", OBS_SIZE, mean.size)
    check_size(f"input normaliser variance size ({source})", OBS_SIZE, var.size)
    normalizer = normalizer_from_stats(mean, var, source, CLIP_OBSERVATIONS)
    contract = build_contract(normalizer=normalizer, rnn_layers=network["layers"], rnn_units=network["units"],
                              palm_pose=args.palm_pose, goal_position=goal_position, inputs=inputs,
                              joint_limits=args.joint_limits, ema_alpha=args.ema_alpha,
                              control_rate_hz=args.control_rate_hz,
                              provenance={"preset": NAME, "source": Path(path).name, "upstream": UPSTREAM,
                                          "normalizer": source, "activation": args.activation,
                                          "rnn": f"lstm {network['layers']}x{network['units']}, layer_norm "
                                                 f"{network['layer_norm'] is not None}, before_mlp",
                                          "epoch": ige._scalar(checkpoint.get("epoch"))})
    state = (1, network["layers"], network["units"])
    onnx_model = torch_to_onnx(actor_module(network, args.activation),
                               {"obs": (1, OBS_SIZE), "h_in": state, "c_in": state}, ["mu", "h_out", "c_out"])
    attach_contract_v2(onnx_model, contract)
    return ImportResult(onnx_model, contract, _notes(args, network, contract))


def _notes(args: argparse.Namespace, network: dict, contract: PolicyContractV2) -> list[str]:
    notes = [f"recurrent: LSTM {network['layers']} x {network['units']} (h_in/c_in -> h_out/c_out, zeros at every "
             "reset, as rl_games' get_default_rnn_state and its reset on done)"]
    if network["layer_norm"] is None:
        notes.append("⚠ no rnn layer_norm in the checkpoint: AllegroHandDextremeADRPPO.yaml trains with "
                     "layer_norm: True; imported as the file says (without it)")
    if network["prefix"] == "a_rnn":
        notes.append("separate actor/critic (a2c_network.a_rnn, a_layer_norm): the actor's LSTM is imported")
    notes.append(f"frame: poses in DeXtreme's wrist (palm_link) frame from --palm-pose "
                 f"{list(contract.frame.translation)}, wxyz {list(contract.frame.rotation_wxyz)}")
    notes.append(f"goal position: the constant {list(contract.term('goal_pos').params.values)} in the wrist frame "
                 "(--goal-position)")
    notes.append("quaternion sign: largest-magnitude component positive, as upstream's matrix_to_quaternion "
                 "gives its wrist-frame object and goal quaternions; their product (goal_relative_rot) as it comes")
    notes.append(f"action: unscale from the {'asset' if args.joint_limits == 'asset' else 'hand'} limits, EMA "
                 f"alpha {args.ema_alpha:g} (upstream anneals 0.2 -> 0.15), clamp; {contract.control_rate_hz:g} Hz")
    notes.append("not reproduced (training-only ADR): dof/pose noise, pose delays and refresh rates, action "
                 "latency and the random network adversary; last_actions start at zero after a reset")
    if args.joint_limits == "hand":
        notes.append("⚠ --joint-limits hand: positions and actions are unscaled with this hand's limits, not the "
                     "asset limits the policy was trained with")
    return notes


PRESET = Preset(name=NAME, summary="IsaacGymEnvs DeXtreme (ADR), rl_games .pth with an LSTM (h, c carried)",
                upstream=UPSTREAM, add_arguments=add_arguments, build=build)
