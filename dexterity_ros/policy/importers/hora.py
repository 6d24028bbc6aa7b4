"""Preset ``hora``: a HORA (In-Hand Object Rotation via Rapid Motor Adaptation) stage-2 ``.ckpt``.

Upstream convention, read in HaozhiQi/hora @410d9582:

* Checkpoint: ``hora/algo/padapt/padapt.py`` ``save`` writes ``{'model', 'running_mean_std',
  'sa_mean_std'}`` to ``.ckpt``; stage 1 (``hora/algo/ppo/ppo.py`` ``save``) writes ``{'model',
  'running_mean_std', 'value_mean_std'}`` to ``.pth`` and its model has no adaptation module.
* Network (``hora/algo/models/models.py``): ``ActorCritic`` with ``actor_mlp`` = ``MLP`` (``mlp.{0,2,4}``
  Linear each followed by ELU, units [512, 256, 128] in ``configs/train/AllegroHandHora.yaml`` and
  ``deploy.py``), ``mu`` Linear, ``value``, ``sigma``, ``env_mlp`` (stage-1 privileged encoder, unused at
  deploy) and, in stage 2, ``adapt_tconv`` = ``ProprioAdaptTConv``: ``channel_transform`` (Linear 32->32,
  ReLU, Linear 32->32, ReLU) per history step, then ``temporal_aggregation`` (Conv1d 32->32 kernel 9
  stride 2, ReLU, Conv1d kernel 5, ReLU, Conv1d kernel 5, ReLU) over time, ``low_dim_proj`` Linear 96->8.
  Deploy (``_actor_critic`` with ``proprio_adapt``): extrin = tanh(adapt_tconv(proprio_hist));
  mu = mu(actor_mlp(cat[obs, extrin])).
* Normalisers (``hora/algo/models/running_mean_std.py``): y = clamp((x - mean) / sqrt(var + 1e-5), -5, 5);
  ``running_mean_std`` over obs (96,), ``sa_mean_std`` over the history (30, 32), one value per element.
  The sim clamps ``obs`` to ``clipObservations`` 5 first (``hora/tasks/base/vec_task.py``), deploy does
  not; unscaled positions and targets in radians stay within +-2, so the contract has no input clip.
* Observation (``hora/algo/deploy/deploy.py`` ``HardwarePlayer.deploy``, same as the sim's
  ``hora/tasks/allegro_hand_hora.py`` ``compute_observations``): each step's row is
  [unscale(q, limits) (16), the target in force when q was measured, in radians (16)]; ``obs`` is the
  last 3 rows oldest first (the buffer shifts left and writes the newest at 64:96), ``proprio_hist``
  the last 30 (``propHistoryLen`` 30 in ``configs/task/AllegroHandHora.yaml``). At start every row is
  [unscale(q0), q0] (previous target = the measured pose).
* Action: clamp(mu, -1, 1); target = previous target + (1/24) a, clipped to the limits; 20 Hz
  (``rospy.Rate(20)``; sim dt 1/120 x ``controlFrequencyInv`` 6).
* Joint order (``_obs_allegro2hora`` / ``_action_hora2allegro``): index, thumb, middle, ring, i.e. the
  Allegro v4 driver joints 0-3, 12-15, 4-7, 8-11; limits ``allegro_dof_lower/upper`` (equal to the
  ``assets/allegro/allegro*.urdf`` limits and to the v4 hand's).
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
from .common import (as_array, check_size, checkpoint_contract, describe_keys, load_checkpoint,
                     normalizer_from_stats, torch_to_onnx)

NAME = "hora"
UPSTREAM = ("HaozhiQi/hora@410d9582 hora/algo/models/models.py, hora/algo/models/running_mean_std.py, "
            "hora/algo/padapt/padapt.py, hora/algo/deploy/deploy.py, configs/task/AllegroHandHora.yaml")

# HORA order: index, thumb, middle, ring (v4 driver names, which the hand description knows)
V4_INDEX = (0, 1, 2, 3, 12, 13, 14, 15, 4, 5, 6, 7, 8, 9, 10, 11)
JOINT_NAMES = tuple(f"joint_{i}.0" for i in V4_INDEX)
# deploy.py allegro_dof_lower / allegro_dof_upper (HORA order)
LOWER = (-0.4700, -0.1960, -0.1740, -0.2270, 0.2630, -0.1050, -0.1890, -0.1620,
         -0.4700, -0.1960, -0.1740, -0.2270, -0.4700, -0.1960, -0.1740, -0.2270)
UPPER = (0.4700, 1.6100, 1.7090, 1.6180, 1.3960, 1.1630, 1.6440, 1.7190,
         0.4700, 1.6100, 1.7090, 1.6180, 0.4700, 1.6100, 1.7090, 1.6180)
# deploy.py init_pose (HORA order): where the hand is commanded for 4 s before the policy starts
INIT_POSE = (0.0627, 1.2923, 0.3383, 0.1088, 0.0724, 1.1983, 0.1551, 0.1499,
             0.1343, 1.1736, 0.5355, 0.2164, 1.1202, 1.1374, 0.8535, -0.0852)
ACTION_SCALE = 1.0 / 24.0
CONTROL_RATE_HZ = 20.0
NUM_ACTIONS = 16
ROW_FIELDS = ("joint_positions:unit_limits", "previous_targets:radians")
ROW_SIZE = 32
OBS_STEPS = 3
CONV_STRIDES = (2, 1, 1)          # ProprioAdaptTConv: hard-coded in models.py, not in the weights

_LINEAR = re.compile(r"^actor_mlp\.mlp\.(\d+)\.weight$")


def _tensor(model: Mapping, key: str) -> np.ndarray:
    if key not in model:
        raise ImportRefused(f"checkpoint['model'] has no '{key}' (HORA ActorCritic stage 2 expected; found "
                            f"{describe_keys(model)})")
    return as_array(model[key], f"checkpoint['model']['{key}']")


def read_network(model: Mapping[str, Any]) -> dict:
    """The deploy-time weights of HORA's ActorCritic (actor MLP, mu, adapt_tconv), checked for consistency."""
    if not any(isinstance(k, str) and k.startswith("adapt_tconv.") for k in model):
        raise ImportRefused("checkpoint['model'] has no adaptation module (adapt_tconv.*): this is a stage-1 "
                            "(PPO teacher) policy, which needs the simulator's privileged info (env_mlp). HORA "
                            "deploys the stage-2 ProprioAdapt checkpoint: train stage 2 (scripts/train_s2.sh) "
                            "and import its .ckpt (padapt.py save: model, running_mean_std, sa_mean_std)")
    actor = sorted(int(_LINEAR.match(k).group(1)) for k in model if isinstance(k, str) and _LINEAR.match(k))
    if not actor:
        raise ImportRefused(f"checkpoint['model'] has no actor_mlp.mlp.<i>.weight (found {describe_keys(model)})")
    net = {"actor": [(_tensor(model, f"actor_mlp.mlp.{i}.weight"), _tensor(model, f"actor_mlp.mlp.{i}.bias"))
                     for i in actor],
           "mu": (_tensor(model, "mu.weight"), _tensor(model, "mu.bias")),
           "channel": [(_tensor(model, f"adapt_tconv.channel_transform.{i}.weight"),
                        _tensor(model, f"adapt_tconv.channel_transform.{i}.bias")) for i in (0, 2)],
           "conv": [(_tensor(model, f"adapt_tconv.temporal_aggregation.{i}.weight"),
                     _tensor(model, f"adapt_tconv.temporal_aggregation.{i}.bias")) for i in (0, 2, 4)],
           "proj": (_tensor(model, "adapt_tconv.low_dim_proj.weight"), _tensor(model, "adapt_tconv.low_dim_proj.bias"))}
    linears = net["actor"] + [net["mu"]] + net["channel"] + [net["proj"]]
    for k, (w, b) in enumerate(linears):
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ImportRefused(f"linear layer {k}: weight {list(w.shape)} and bias {list(b.shape)} are not a "
                                "Linear's")
    for k in range(1, len(net["actor"]) + 1):
        w_in = (net["actor"] + [net["mu"]])[k][0]
        if w_in.shape[1] != net["actor"][k - 1][0].shape[0]:
            raise ImportRefused(f"actor layer {k} takes {w_in.shape[1]} inputs, the layer before gives "
                                f"{net['actor'][k - 1][0].shape[0]}")
    for k, (w, b) in enumerate(net["conv"]):
        if w.ndim != 3:
            raise ImportRefused(f"adapt_tconv.temporal_aggregation.{2 * k}.weight has shape {list(w.shape)}, not a "
                                "Conv1d's")
    if not all(np.all(np.isfinite(w)) and np.all(np.isfinite(b)) for w, b in linears + net["conv"]):
        raise ImportRefused("the network has NaN or inf weights")
    return net


def history_length_out(length: int, net: dict) -> int:
    for (w, _), stride in zip(net["conv"], CONV_STRIDES):
        length = (length - w.shape[2]) // stride + 1
    return length


def deploy_module(net: dict):
    """torch module (obs, proprio_hist) -> mu, HORA's ActorCritic._actor_critic with proprio_adapt."""
    import torch
    from torch import nn

    def linear(w, b):
        layer = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            layer.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        return layer

    def conv(w, b, stride):
        layer = nn.Conv1d(w.shape[1], w.shape[0], w.shape[2], stride=stride)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            layer.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        return layer

    class HoraDeploy(nn.Module):
        def __init__(self):
            super().__init__()
            (w0, b0), (w1, b1) = net["channel"]
            self.channel_transform = nn.Sequential(linear(w0, b0), nn.ReLU(), linear(w1, b1), nn.ReLU())
            convs = []
            for (w, b), stride in zip(net["conv"], CONV_STRIDES):
                convs += [conv(w, b, stride), nn.ReLU()]
            self.temporal_aggregation = nn.Sequential(*convs)
            self.low_dim_proj = linear(*net["proj"])
            actor = []
            for w, b in net["actor"]:
                actor += [linear(w, b), nn.ELU()]
            self.actor_mlp = nn.Sequential(*actor)
            self.mu = linear(*net["mu"])

        def forward(self, obs, proprio_hist):
            x = self.channel_transform(proprio_hist)          # (1, T, 32)
            x = self.temporal_aggregation(x.permute(0, 2, 1))  # (1, 32, T')
            extrin = torch.tanh(self.low_dim_proj(x.flatten(1)))
            return self.mu(self.actor_mlp(torch.cat([obs, extrin], dim=-1)))

    return HoraDeploy().eval()


def build_contract(*, obs_normalizer: dict | None, hist_normalizer: dict | None, history_length: int = 30,
                   control_rate_hz: float = CONTROL_RATE_HZ, provenance: dict | None = None) -> PolicyContractV2:
    """The contract of a HORA stage-2 policy (buildable without a model, for tests and docs)."""
    terms = [{"name": "obs_history", "kind": "proprioceptive_history", "length": OBS_STEPS,
              "fields": list(ROW_FIELDS), "order": "oldest_first"},
             {"name": "proprio_hist", "kind": "proprioceptive_history", "length": history_length,
              "fields": list(ROW_FIELDS), "order": "oldest_first"}]
    spec = {"contract_version": 2, "name": NAME, "control_rate_hz": control_rate_hz,
            "joint_names": list(JOINT_NAMES), "joint_limits": {"lower": list(LOWER), "upper": list(UPPER)},
            "terms": terms,
            "inputs": [{"name": "obs", "terms": ["obs_history"], "normalizer": obs_normalizer,
                        "description": "last 3 steps of [unscaled q, previous target (rad)], oldest first"},
                       {"name": "proprio_hist", "terms": ["proprio_hist"], "flatten": False,
                        "normalizer": hist_normalizer,
                        "description": f"last {history_length} steps, same rows, for the adaptation module"}],
            "action": {"output": "mu", "mode": "delta_previous_target", "scale": ACTION_SCALE, "input_clip": 1.0},
            "outputs": [{"name": "mu", "shape": [1, NUM_ACTIONS]}],
            "description": "HORA stage-2 (ProprioAdapt) in-hand rotation policy",
            "provenance": dict(provenance or {})}
    return checkpoint_contract(spec)


def _stats(checkpoint: Mapping, key: str) -> tuple[np.ndarray, np.ndarray]:
    stats = checkpoint.get(key)
    if not isinstance(stats, Mapping):
        raise ImportRefused(f"checkpoint['{key}'] is {'missing' if stats is None else type(stats).__name__}")
    missing = [k for k in ("running_mean", "running_var") if k not in stats]
    if missing:
        raise ImportRefused(f"checkpoint['{key}']: missing {missing} (found {describe_keys(stats)})")
    mean = as_array(stats["running_mean"], f"checkpoint['{key}']['running_mean']")
    var = as_array(stats["running_var"], f"checkpoint['{key}']['running_var']")
    if mean.shape != var.shape:
        raise ImportRefused(f"checkpoint['{key}']: running_mean {list(mean.shape)} and running_var "
                            f"{list(var.shape)} differ in shape")
    return mean, var


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--control-rate-hz", type=float, default=CONTROL_RATE_HZ,
                        help="policy rate (upstream: 20 Hz, deploy.py rospy.Rate(20))")


def build(path: Path, args: argparse.Namespace) -> ImportResult:
    checkpoint = load_checkpoint(path, "a HORA stage-2 .ckpt")
    if not isinstance(checkpoint, Mapping) or "model" not in checkpoint:
        found = describe_keys(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ImportRefused(f"{path}: not a HORA checkpoint: no 'model' entry (found {found}; padapt.py saves "
                            "model, running_mean_std, sa_mean_std)")
    model = checkpoint["model"]
    if not isinstance(model, Mapping):
        raise ImportRefused(f"{path}: checkpoint['model'] is a {type(model).__name__}, not a state dict")
    if "sa_mean_std" not in checkpoint:
        stage = " (it has value_mean_std: a stage-1 ppo.py .pth)" if "value_mean_std" in checkpoint else ""
        raise ImportRefused(f"{path}: no 'sa_mean_std' (found {describe_keys(checkpoint)}){stage}: HORA deploys "
                            "the stage-2 ProprioAdapt checkpoint (padapt.py save: model, running_mean_std, "
                            "sa_mean_std); train stage 2 (scripts/train_s2.sh) and import its .ckpt")
    net = read_network(model)
    if "running_mean_std" not in checkpoint:
        raise ImportRefused(f"{path}: no 'running_mean_std' (the observation normaliser; found "
                            f"{describe_keys(checkpoint)})")
    obs_mean, obs_var = _stats(checkpoint, "running_mean_std")
    hist_mean, hist_var = _stats(checkpoint, "sa_mean_std")
    if hist_mean.ndim != 2:
        raise ImportRefused(f"checkpoint['sa_mean_std'] has shape {list(hist_mean.shape)}; HORA's is "
                            "(propHistoryLen, 32)")
    history_length, row = hist_mean.shape
    check_size("history row size (sa_mean_std's last axis)", ROW_SIZE, row, "16 joint positions + 16 targets")
    check_size("adaptation input (channel_transform.0 inputs)", ROW_SIZE, net["channel"][0][0].shape[1])
    if net["channel"][1][0].shape[0] != net["conv"][0][0].shape[1]:
        raise ImportRefused("adapt_tconv: channel_transform output and the first Conv1d's channels differ")
    channels, proj_in = net["conv"][-1][0].shape[0], net["proj"][0].shape[1]
    built_for = [n for n in range(1, 1001) if channels * history_length_out(n, net) == proj_in]
    if history_length_out(history_length, net) * channels != proj_in:
        raise ImportRefused(f"history length: sa_mean_std covers {history_length} steps, but the adaptation module "
                            f"(low_dim_proj takes {proj_in} = {channels} channels x steps left after the "
                            f"convolutions) was built for {built_for[0] if built_for else 'no'} "
                            f"{'steps' if len(built_for) < 2 else f'to {built_for[-1]} steps'}")
    obs_size = OBS_STEPS * ROW_SIZE
    check_size("observation normaliser size (running_mean_std)", obs_size, obs_mean.size,
               "3 steps x [16 unscaled q, 16 targets]")
    extrin = net["proj"][0].shape[0]
    check_size(f"actor input (actor_mlp.mlp.0: obs {obs_size} + extrinsics {extrin})", obs_size + extrin,
               net["actor"][0][0].shape[1])
    check_size("action size (mu)", NUM_ACTIONS, net["mu"][0].shape[0])
    contract = build_contract(
        obs_normalizer=normalizer_from_stats(obs_mean, obs_var, "running_mean_std", None),
        hist_normalizer=normalizer_from_stats(hist_mean, hist_var, "sa_mean_std", None),
        history_length=history_length, control_rate_hz=args.control_rate_hz,
        provenance={"preset": NAME, "source": Path(path).name, "upstream": UPSTREAM})
    onnx_model = torch_to_onnx(deploy_module(net), {"obs": (1, obs_size), "proprio_hist": (1, history_length, row)},
                               ["mu"])
    attach_contract_v2(onnx_model, contract)
    notes = [
        "joint order: HORA's index, thumb, middle, ring (v4 joints 0-3, 12-15, 4-7, 8-11), mapped by name",
        "history rows: [unscaled q (deploy limits), previous target in radians], oldest first; after a reset "
        "every row is the measured pose (deploy.py)",
        "start: deploy.py first commands init_pose for 4 s with the object grasped (HORA order "
        f"{list(INIT_POSE)}); start the policy from that grasp",
        f"control rate {args.control_rate_hz:g} Hz (upstream 20 Hz); HORA trained with torque PD (p 3, d 0.1, "
        "+-0.5 Nm) in sim and ran the driver's PD position controller on the real hand",
    ]
    return ImportResult(onnx_model, contract, notes)


PRESET = Preset(name=NAME, summary="HORA stage-2 .ckpt (proprioceptive history + adaptation module)",
                upstream=UPSTREAM, add_arguments=add_arguments, build=build)
