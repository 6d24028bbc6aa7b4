"""Native policies re-expressed in upstream conventions and written in upstream file formats.

The importer proofs (issue 19): a native policy (:mod:`native_policies`, trained here on the demo
episode) is re-expressed in an upstream's convention -- its joint order, scalings, quaternion order,
frame, normaliser and action transform -- by folding the inverse of those (affine) maps into the first
and last layers of its network, and written in the upstream's own file format:

* IsaacGymEnvs AllegroHand via rl_games: a ``.pth`` dict ``{'model': state_dict, 'epoch', 'frame',
  'optimizer', 'last_mean_rewards', 'env_state'}`` whose state dict has rl_games' keys
  (``running_mean_std.*``, ``value_mean_std.*``, ``a2c_network.actor_mlp.{0,2}.*``,
  ``a2c_network.mu.*``, ``a2c_network.sigma``, ``a2c_network.value.*``), as
  ``rl_games/common/a2c_common.py`` ``get_full_state_weights`` writes it;
* HORA: a stage-2 ``.ckpt`` ``{'model', 'running_mean_std', 'sa_mean_std'}`` with the key names of
  ``hora/algo/models/models.py`` ``ActorCritic`` (``actor_mlp.mlp.*``, ``mu``, ``value``, ``sigma``,
  ``env_mlp.mlp.*``, ``adapt_tconv.*``), as ``hora/algo/padapt/padapt.py`` ``save`` writes it.

Each re-expression takes the convention it *assumes* as arguments, so a test can write a file with
one convention broken (joint order, quaternion order, frame, limits, action scale, normaliser) and
show that parity with the native policy then fails. The affine map from the upstream observation to
the native one is built from per-term functions and checked against the runtime's own term
computations on the episode (:func:`check_affine_map`) before anything is folded.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from dexterity_ros.geometry import quat_conjugate, quat_multiply, quat_to_matrix
from dexterity_ros.policy.contract_v2 import PolicyContractV2
from dexterity_ros.policy.importers import hora as hora_preset
from dexterity_ros.policy.importers import isaacgymenvs as ige
from dexterity_ros.policy.runtime_v2 import assemble_inputs
from dexterity_ros.policy.terms import FrameTransform, StepRecord, TermContext, limits_from_unit, unit_from_limits
from native_policies import (CANONICAL, HAND, J, EpisodeSteps, NativePolicy, action_labels, context_for,
                             demo_steps, onnx_with_contract, train_native)

EPS = 1e-5                      # rl_games / HORA RunningMeanStd epsilon

# canonical index of each upstream joint (policy order)
IGE_ORDER = [HAND.aliases()[ige.JOINT_ALIASES[n]] for n in ige.JOINT_NAMES]
BFS_ORDER = [HAND.aliases()[f"{f}j{j}"] for j in range(4) for f in ("ff", "mf", "rf", "th")]   # Isaac Lab PhysX
HORA_ORDER = [HAND.aliases()[n] for n in hora_preset.JOINT_NAMES]
V4_ORDER = list(range(J))


def _in_order(values: Sequence[float], order: Sequence[int]) -> np.ndarray:
    """Canonical-order values -> policy order."""
    return np.asarray(values, dtype=np.float64)[list(order)]


def _to_canonical(values: Sequence[float], order: Sequence[int]) -> np.ndarray:
    out = np.empty(J)
    out[list(order)] = values
    return out


ASSET_LIMITS_CANONICAL = (_to_canonical(ige.ASSET_LOWER, IGE_ORDER), _to_canonical(ige.ASSET_UPPER, IGE_ORDER))
HAND_LIMITS = (HAND.lower.copy(), HAND.upper.copy())


# ------------------------------------------------------------------ trajectories
def trajectory_records(steps: EpisodeSteps, labels: np.ndarray, prev: np.ndarray,
                       order: Sequence[int] = V4_ORDER) -> list[StepRecord]:
    """The demo trajectory as StepRecords in a policy joint order (previous action = the previous label)."""
    order = list(order)
    records, last = [], np.zeros(J)
    for k in range(len(steps)):
        goal = steps.goal[k] / np.linalg.norm(steps.goal[k])
        records.append(StepRecord(int(steps.stamp_ns[k]), steps.q[k][order], prev[k][order], last[order],
                                  np.clip(last, -1, 1)[order], steps.position[k], steps.quat[k],
                                  int(steps.pose_stamp_ns[k]), goal if goal[0] >= 0 else -goal))
        last = labels[k]
    return records


def features(contract: PolicyContractV2, records: list[StepRecord], context: TermContext) -> dict[str, np.ndarray]:
    """Every input of ``contract`` at every record (windows padded with the first record), (S, *shape)."""
    window, rows = [], {s.name: [] for s in contract.inputs}
    h = contract.history_window
    for record in records:
        window = (window + [record])[-h:] if window else [record] * h
        for name, value in assemble_inputs(contract, window, context).items():
            rows[name].append(value[0])
    return {name: np.asarray(v) for name, v in rows.items()}


def upstream_context(contract: PolicyContractV2) -> TermContext:
    lim = contract.joint_limits
    return TermContext(lower=np.asarray(lim.lower), upper=np.asarray(lim.upper), frame=contract.frame)


def affine_of(function: Callable[[np.ndarray], np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, c) with function(x) = A x + c, by evaluation at 0 and the unit vectors (function is affine)."""
    c = function(np.zeros(size))
    a = np.stack([function(np.eye(size)[k]) - c for k in range(size)], axis=1)
    return a, c


def check_affine_map(a: np.ndarray, c: np.ndarray, upstream: np.ndarray, native: np.ndarray) -> float:
    """max |A x_upstream + c - x_native| over the episode (the map must reproduce the runtime's terms)."""
    return float(np.max(np.abs(upstream.reshape(len(upstream), -1) @ a.T + c - native.reshape(len(native), -1))))


def inflated_stats(x: np.ndarray, axis=0, factor: float = 3.0, floor: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of a normaliser for ``x``: std inflated so no normalised value nears the clamp at 5."""
    mean = x.mean(axis=axis)
    std = x.std(axis=axis) * factor + floor
    return mean, std ** 2


def _block_offsets(contract: PolicyContractV2, input_name: str) -> dict[str, slice]:
    spec = next(s for s in contract.inputs if s.name == input_name)
    out, offset = {}, 0
    for name in spec.terms:
        size = contract.term(name).size(contract.num_joints)
        out[name] = slice(offset, offset + size)
        offset += size
    return out


def _quat_left_matrix(q: np.ndarray) -> np.ndarray:
    """L(q) with q (x) p = L(q) p (wxyz)."""
    return np.stack([quat_multiply(q, e) for e in np.eye(4)], axis=1)


def _wxyz(q: np.ndarray, order: str) -> np.ndarray:
    return q if order == "wxyz" else q[[3, 0, 1, 2]]


# ===================================================================== IsaacGymEnvs
NATIVE_VELOCITY_CLIP = ige.CLIP_OBSERVATIONS / ige.VEL_OBS_SCALE


def ige_native_contract(obs_type: str, *, ema_alpha: float = 1.0, limits=ASSET_LIMITS_CANONICAL,
                        relative_scale: float | None = None) -> PolicyContractV2:
    """A native pose policy with the information of IGE's observation, in this package's conventions
    (canonical joints in radians, palm frame, wxyz, velocities unscaled). Absolute actions unscaled to
    ``limits`` (the IGE asset's by default: then the action re-expression is a pure reordering, exact even
    where the asset's limits are narrower than the hand's), or a delta of ``relative_scale``.

    With velocities (``full``): IGE clamps its whole observation to +-5 before the normaliser
    (clipObservations), and the demo episode has one step (11) where the object's angular velocity
    x 0.2 exceeds 5 in the env frame (0.10 rad target difference measured with a native that does not
    clamp). A clamp is not affine, so the native must have the same one: its inputs are clamped at
    5 / 0.2 = 25 (joint and angular velocities unscaled, so this is IGE's clamp of 0.2 v at 5; nothing
    else in the native observation comes near 25, nor does the object's linear velocity reach IGE's 5 m/s),
    and its angular velocity is observed in the IGE env frame (a per-component clamp does not commute with
    a rotation). Everything else stays in the palm frame."""
    full = obs_type == "full"
    terms = [{"name": "joint_pos", "kind": "joint_positions"}]
    if full:
        terms.append({"name": "joint_vel", "kind": "joint_velocities"})
    terms += [{"name": "object_pos", "kind": "object_position"},
              {"name": "object_quat", "kind": "object_orientation", "order": "wxyz", "sign": "as_is"}]
    if full:
        terms += [{"name": "object_linvel", "kind": "object_linear_velocity"},
                  {"name": "object_angvel", "kind": "object_angular_velocity", "frame": "policy"}]
    terms += [{"name": "goal_quat", "kind": "goal_orientation", "order": "wxyz", "sign": "w_nonnegative"},
              {"name": "quat_diff", "kind": "quaternion_difference", "order": "wxyz", "sign": "as_is"},
              {"name": "last_action", "kind": "previous_actions", "clipped": True}]
    if relative_scale is None:
        action = {"output": "actions", "mode": "unscale_limits", "input_clip": 1.0, "ema_alpha": ema_alpha}
    else:
        action = {"output": "actions", "mode": "delta_previous_target", "scale": relative_scale, "input_clip": 1.0}
    obs = {"name": "obs", "terms": [t["name"] for t in terms]}
    spec = {"contract_version": 2, "name": f"native-ige-{obs_type}", "control_rate_hz": 12.0,
            "joint_names": CANONICAL, "joint_limits": {"lower": list(limits[0]), "upper": list(limits[1])},
            "terms": terms, "inputs": [obs], "action": action, "outputs": [{"name": "actions", "shape": [1, J]}]}
    if full:
        obs["normalizer"] = {"mean": [0.0], "std": [1.0], "clip_input": NATIVE_VELOCITY_CLIP}
        spec["frame"] = {"translation": list(ige.HAND_START_POSITION), "rotation_wxyz": list(ige.HAND_START_QUAT_WXYZ)}
    return PolicyContractV2.from_mapping(spec)


def train_ige_native(obs_type: str, **options) -> NativePolicy:
    return train_native(ige_native_contract(obs_type, **options), hidden=64, iterations=300)


def with_contract(native: NativePolicy, contract: PolicyContractV2) -> NativePolicy:
    """The same trained network under another native contract (e.g. an EMA or a delta action)."""
    return NativePolicy(contract, native.mlp, onnx_with_contract(native.mlp, contract,
                                                                 {"obs": native.mlp[0].in_features}, ["actions"]))


@dataclass(frozen=True)
class IgeConvention:
    """What a re-expression assumes about the IGE side; the defaults are the importer's."""

    obs_type: str = "full_no_vel"
    order: tuple[int, ...] = tuple(IGE_ORDER)            # canonical index of each IGE DOF
    quat_order: str = "xyzw"
    position_limits: str = "asset"                       # limits behind the unit joint positions
    action_limits: str = "asset"                         # limits behind the absolute action
    relative_scale: float | None = None                  # useRelativeControl: dofSpeedScale * dt
    palm_pose: str | None = None                         # --palm-pose text; None = the importer's default
    frame_identity: bool = False                         # pretend the env frame is the palm frame
    vel_scale: float = ige.VEL_OBS_SCALE


def _ige_limits(which: str) -> tuple[np.ndarray, np.ndarray]:
    return ASSET_LIMITS_CANONICAL if which == "asset" else HAND_LIMITS


def ige_observation_map(native: PolicyContractV2, upstream: PolicyContractV2, conv: IgeConvention
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(A, c): native obs = A x_ige + c, under the assumed convention ``conv``."""
    up = _block_offsets(upstream, "obs")
    nat = _block_offsets(native, "obs")
    size = sum(s.stop - s.start for s in up.values())
    order = list(conv.order)
    lo, hi = _ige_limits(conv.position_limits)
    frame = FrameTransform() if conv.frame_identity else upstream.frame
    rot = quat_to_matrix(np.asarray(frame.rotation_wxyz))
    q_frame = np.asarray(frame.rotation_wxyz)
    t = np.asarray(frame.translation)
    left_inv = _quat_left_matrix(quat_conjugate(q_frame))
    a_scale, a_offset = ige_action_map(native, conv)

    def canonical(block: np.ndarray) -> np.ndarray:          # policy order -> canonical
        return _to_canonical(block, order)

    def function(x: np.ndarray) -> np.ndarray:
        block = {name: x[s] for name, s in up.items()}
        out = np.zeros(sum(s.stop - s.start for s in nat.values()))
        values = {
            "joint_pos": lo + (canonical(block["dof_pos"]) + 1.0) * 0.5 * (hi - lo),
            "object_pos": rot.T @ (block["object_pos"] - t),
            "object_quat": left_inv @ _wxyz(block["object_rot"], conv.quat_order),
            "goal_quat": left_inv @ _wxyz(block["goal_rot"], conv.quat_order),
            "quat_diff": quat_multiply(quat_multiply(quat_conjugate(q_frame),
                                                     _wxyz(block["goal_quat_diff"], conv.quat_order)), q_frame),
            "last_action": (canonical(block["actions"]) - a_offset) / a_scale,
        }
        if "dof_vel" in block:
            values["joint_vel"] = canonical(block["dof_vel"]) / conv.vel_scale
            values["object_linvel"] = rot.T @ block["object_linvel"]
            native_rot = quat_to_matrix(np.asarray(native.frame.rotation_wxyz))    # native: env-frame angvel
            values["object_angvel"] = native_rot @ rot.T @ block["object_angvel"] / conv.vel_scale
        for name, s in nat.items():
            out[s] = values[name]
        return out

    return affine_of(function, size)


def ige_action_map(native: PolicyContractV2, conv: IgeConvention) -> tuple[np.ndarray, np.ndarray]:
    """(s, o), canonical order: upstream action = s * native action + o (the same target, assumed convention)."""
    if conv.relative_scale is not None:
        return np.asarray(native.action.scale) / conv.relative_scale * np.ones(J), np.zeros(J)
    lo_n, hi_n = np.asarray(native.joint_limits.lower), np.asarray(native.joint_limits.upper)
    lo_u, hi_u = _ige_limits(conv.action_limits)
    # target = lo_n + (a_n + 1)/2 (hi_n - lo_n) = lo_u + (a_u + 1)/2 (hi_u - lo_u)
    scale = (hi_n - lo_n) / (hi_u - lo_u)
    offset = unit_from_limits(limits_from_unit(np.zeros(J), lo_n, hi_n), lo_u, hi_u)
    return scale, offset


def ige_upstream_contract(conv: IgeConvention) -> PolicyContractV2:
    """The contract the importer builds for this convention (without the normaliser)."""
    return ige.build_contract(conv.obs_type, normalizer=None, palm_pose=conv.palm_pose,
                              relative_control=conv.relative_scale is not None)


@dataclass
class Reexpression:
    checkpoint: dict
    map_error: float            # max |A x_up + c - x_native| on the episode (correct conventions: ~1e-15)
    max_normalized: float       # max |normalised upstream input| on the episode (must stay below the clamp 5)


def reexpress_ige(native: NativePolicy, conv: IgeConvention = IgeConvention(), steps: EpisodeSteps | None = None
                  ) -> Reexpression:
    """The native policy as an rl_games checkpoint of an IGE AllegroHand policy (under ``conv``)."""
    steps = steps or demo_steps()
    upstream = ige_upstream_contract(conv)
    a, c = ige_observation_map(native.contract, upstream, conv)
    labels, prev = action_labels(native.contract, steps)
    records = trajectory_records(steps, labels, prev)           # IGE DOF order is the canonical order
    x_up = features(upstream, records, upstream_context(upstream))["obs"]
    x_native = features(native.contract, records, context_for(native.contract))["obs"]
    mean, var = inflated_stats(x_up)
    std = np.sqrt(var + EPS)
    first, last = native.mlp[0], native.mlp[-1]
    w0, b0 = first.weight.detach().double().numpy(), first.bias.detach().double().numpy()
    w_fold = w0 @ a * std
    b_fold = b0 + w0 @ (a @ mean + c)
    s, o = ige_action_map(native.contract, conv)
    order = list(conv.order)
    w_last, b_last = last.weight.detach().double().numpy(), last.bias.detach().double().numpy()
    mu_w = (s[:, None] * w_last)[order]
    mu_b = (s * b_last + o)[order]
    linears = [m for m in native.mlp if isinstance(m, nn.Linear)]
    weights = [(w_fold, b_fold)] + [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
                                    for m in linears[1:-1]]
    checkpoint = rl_games_checkpoint(weights, (mu_w, mu_b), mean, var)
    return Reexpression(checkpoint, check_affine_map(a, c, x_up, x_native),
                        float(np.max(np.abs((x_up - mean) / std))))


def _t(values, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(np.asarray(values), dtype=dtype)


def rl_games_checkpoint(hidden: list[tuple[np.ndarray, np.ndarray]], mu: tuple[np.ndarray, np.ndarray],
                        mean: np.ndarray, var: np.ndarray, seed: int = 0) -> dict:
    """An rl_games ``.pth`` dict as ``get_full_state_weights`` writes it (ModelA2CContinuousLogStd network)."""
    rng = np.random.default_rng(seed)
    model = OrderedDict()
    model["value_mean_std.running_mean"] = _t(np.zeros(1), torch.float64)
    model["value_mean_std.running_var"] = _t(np.ones(1), torch.float64)
    model["value_mean_std.count"] = torch.tensor(123456, dtype=torch.int64)
    model["running_mean_std.running_mean"] = _t(mean, torch.float64)
    model["running_mean_std.running_var"] = _t(var, torch.float64)
    model["running_mean_std.count"] = torch.tensor(123456, dtype=torch.int64)
    model["a2c_network.sigma"] = _t(np.zeros(mu[0].shape[0]))
    for k, (w, b) in enumerate(hidden):
        model[f"a2c_network.actor_mlp.{2 * k}.weight"] = _t(w)
        model[f"a2c_network.actor_mlp.{2 * k}.bias"] = _t(b)
    model["a2c_network.value.weight"] = _t(rng.normal(size=(1, hidden[-1][0].shape[0])) * 0.1)
    model["a2c_network.value.bias"] = _t(np.zeros(1))
    model["a2c_network.mu.weight"] = _t(mu[0])
    model["a2c_network.mu.bias"] = _t(mu[1])
    return {"model": model, "epoch": 1200, "frame": 1200 * 8 * 16384,
            "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4, "params": list(range(len(model)))}]},
            "last_mean_rewards": np.float32(1234.5), "env_state": None}   # numpy scalar, as rl_games stores it


def with_lstm(checkpoint: dict, units: int = 8) -> dict:
    """The same checkpoint with an rl_games LSTM (DeXtreme-style ``a2c_network.rnn.rnn.*`` keys)."""
    model = OrderedDict(checkpoint["model"])
    inputs = model["a2c_network.actor_mlp.0.weight"].shape[1]
    for name, shape in (("weight_ih_l0", (4 * units, inputs)), ("weight_hh_l0", (4 * units, units)),
                        ("bias_ih_l0", (4 * units,)), ("bias_hh_l0", (4 * units,))):
        model[f"a2c_network.rnn.rnn.{name}"] = torch.zeros(shape)
    model["a2c_network.layer_norm.weight"] = torch.ones(units)
    return {**checkpoint, "model": model}


def save(checkpoint: dict, path: Path) -> Path:
    torch.save(checkpoint, str(path))
    return path


# ============================================================================ HORA
class HoraStructured(nn.Module):
    """A native network with HORA's deploy structure (ProprioAdaptTConv + actor MLP + mu), canonical inputs."""

    def __init__(self, actor_units: Sequence[int] = (64, 64), channels: int = 32, extrin: int = 8,
                 history: int = 30, obs_size: int = 96, row: int = 32):
        super().__init__()
        self.channel_transform = nn.Sequential(nn.Linear(row, channels), nn.ReLU(), nn.Linear(channels, channels),
                                               nn.ReLU())
        self.temporal_aggregation = nn.Sequential(
            nn.Conv1d(channels, channels, 9, stride=2), nn.ReLU(), nn.Conv1d(channels, channels, 5), nn.ReLU(),
            nn.Conv1d(channels, channels, 5), nn.ReLU())
        steps = ((history - 9) // 2 + 1) - 4 - 4
        self.low_dim_proj = nn.Linear(channels * steps, extrin)
        layers, size = [], obs_size + extrin
        for units in actor_units:
            layers += [nn.Linear(size, units), nn.ELU()]
            size = units
        self.actor_mlp = nn.Sequential(*layers)
        self.mu = nn.Linear(size, J)

    def forward(self, obs, proprio_hist):
        x = self.channel_transform(proprio_hist)
        x = self.temporal_aggregation(x.permute(0, 2, 1))
        extrin = torch.tanh(self.low_dim_proj(x.flatten(1)))
        return self.mu(self.actor_mlp(torch.cat([obs, extrin], dim=-1)))


NATIVE_ROW = ("joint_positions:radians", "previous_targets:radians")


def hora_native_contract(history: int = 30, scale: float = hora_preset.ACTION_SCALE) -> PolicyContractV2:
    """A native proprioceptive delta policy: canonical joints, rows [q, previous target] in radians, no
    normaliser; action = previous target + scale * a, clipped to the hand's limits (= HORA's deploy limits)."""
    terms = [{"name": "recent", "kind": "proprioceptive_history", "length": 3, "fields": list(NATIVE_ROW)},
             {"name": "history", "kind": "proprioceptive_history", "length": history, "fields": list(NATIVE_ROW)}]
    return PolicyContractV2.from_mapping({
        "contract_version": 2, "name": "native-hora", "control_rate_hz": 12.0, "joint_names": CANONICAL,
        "joint_limits": {"lower": list(HAND.lower), "upper": list(HAND.upper)}, "terms": terms,
        "inputs": [{"name": "obs", "terms": ["recent"]},
                   {"name": "proprio_hist", "terms": ["history"], "flatten": False}],
        "action": {"output": "actions", "mode": "delta_previous_target", "scale": scale, "input_clip": 1.0},
        "outputs": [{"name": "actions", "shape": [1, J]}]})


@dataclass
class HoraNative:
    contract: PolicyContractV2
    net: HoraStructured
    onnx_bytes: bytes

    def runtime(self):
        from dexterity_ros.policy.runtime import RuntimeOptions
        from dexterity_ros.policy.runtime_v2 import TermPolicyRuntime
        return TermPolicyRuntime(self.onnx_bytes, hand=HAND, options=RuntimeOptions())


def train_hora_native(iterations: int = 300, seed: int = 0, steps: EpisodeSteps | None = None) -> HoraNative:
    """Behaviour cloning of the demo's recorded targets with HORA's network structure (seeded, 1 thread)."""
    steps = steps or demo_steps()
    contract = hora_native_contract()
    labels, prev = action_labels(contract, steps)
    feats = features(contract, trajectory_records(steps, labels, prev), context_for(contract))
    obs = torch.tensor(feats["obs"], dtype=torch.float32)
    hist = torch.tensor(feats["proprio_hist"], dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.float32)
    torch.manual_seed(seed)
    net = HoraStructured()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(iterations):
            opt.zero_grad()
            loss = torch.mean((net(obs, hist) - y) ** 2)
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    net.eval()
    return HoraNative(contract, net, onnx_with_contract(net, contract, {"obs": 96, "proprio_hist": (30, 32)},
                                                        ["actions"]))


@dataclass(frozen=True)
class HoraConvention:
    """What a re-expression assumes about HORA's side; the defaults are the importer's."""

    order: tuple[int, ...] = tuple(HORA_ORDER)           # canonical index of each HORA joint
    fields: tuple[str, str] = ("q_unit", "target_rad")   # per-row halves, in row order
    action_scale: float = hora_preset.ACTION_SCALE


def _hora_row_function(conv: HoraConvention) -> Callable[[np.ndarray], np.ndarray]:
    """One HORA row (32, policy order) -> the native row [q rad, target rad] (canonical)."""
    order = list(conv.order)
    lo, hi = HAND.lower[order], HAND.upper[order]      # the hand's limits equal HORA's deploy limits

    def function(row: np.ndarray) -> np.ndarray:
        half = {conv.fields[0]: row[:J], conv.fields[1]: row[J:]}
        q_rad = limits_from_unit(half["q_unit"], lo, hi) if "q_unit" in half else half["q_rad"]
        return np.concatenate([_to_canonical(q_rad, order), _to_canonical(half["target_rad"], order)])
    return function


def reexpress_hora(native: HoraNative, conv: HoraConvention = HoraConvention(), steps: EpisodeSteps | None = None,
                   identity_normalizers: bool = False) -> Reexpression:
    """The native policy as a HORA stage-2 checkpoint (under ``conv``).

    The adaptation module applies one Linear to every history row, so the history normaliser written
    (sa_mean_std, one value per element of (30, 32) in HORA's format) uses the same statistics for every
    row: then it folds exactly into that Linear. ``identity_normalizers`` writes mean 0 / var 1 instead
    of the statistics the network was folded with (a normaliser "stripped").
    """
    steps = steps or demo_steps()
    upstream = hora_preset.build_contract(obs_normalizer=None, hist_normalizer=None)
    labels, prev = action_labels(native.contract, steps)
    up = features(upstream, trajectory_records(steps, labels, prev, HORA_ORDER), upstream_context(upstream))
    nat = features(native.contract, trajectory_records(steps, labels, prev), context_for(native.contract))
    row_a, row_c = affine_of(_hora_row_function(conv), 2 * J)
    obs_a = np.kron(np.eye(3), row_a)
    obs_c = np.tile(row_c, 3)
    map_error = max(check_affine_map(obs_a, obs_c, up["obs"], nat["obs"]),
                    check_affine_map(row_a, row_c, up["proprio_hist"].reshape(-1, 2 * J),
                                     nat["proprio_hist"].reshape(-1, 2 * J)))
    obs_mean, obs_var = inflated_stats(up["obs"])
    row_mean, row_var = inflated_stats(up["proprio_hist"].reshape(-1, 2 * J))
    obs_std, row_std = np.sqrt(obs_var + EPS), np.sqrt(row_var + EPS)
    max_normalized = max(float(np.max(np.abs((up["obs"] - obs_mean) / obs_std))),
                         float(np.max(np.abs((up["proprio_hist"] - row_mean) / row_std))))

    def numpy(p):
        return p.detach().double().numpy()

    net = native.net
    state = OrderedDict((k, numpy(v)) for k, v in net.state_dict().items())
    w0 = state["actor_mlp.0.weight"]
    w_obs = w0[:, :96]
    state["actor_mlp.0.weight"] = np.concatenate([w_obs @ obs_a * obs_std, w0[:, 96:]], axis=1)
    state["actor_mlp.0.bias"] = state["actor_mlp.0.bias"] + w_obs @ (obs_a @ obs_mean + obs_c)
    wc = state["channel_transform.0.weight"]
    state["channel_transform.0.weight"] = wc @ row_a * row_std
    state["channel_transform.0.bias"] = state["channel_transform.0.bias"] + wc @ (row_a @ row_mean + row_c)
    ratio = native.contract.action.scale[0] / conv.action_scale
    order = list(conv.order)
    state["mu.weight"] = (ratio * state["mu.weight"])[order]
    state["mu.bias"] = (ratio * state["mu.bias"])[order]
    if identity_normalizers:
        obs_mean, obs_var = np.zeros_like(obs_mean), np.ones_like(obs_var)
        row_mean, row_var = np.zeros_like(row_mean), np.ones_like(row_var)
    checkpoint = hora_checkpoint(state, (obs_mean, obs_var), (np.tile(row_mean, (30, 1)), np.tile(row_var, (30, 1))))
    return Reexpression(checkpoint, map_error, max_normalized)


def hora_checkpoint(native_state: dict, obs_stats, hist_stats, seed: int = 0) -> dict:
    """HORA's padapt.py ``save``: {'model': ActorCritic state dict, 'running_mean_std', 'sa_mean_std'}."""
    rng = np.random.default_rng(seed)
    model = OrderedDict()
    hidden = []
    for key in sorted((k for k in native_state if k.startswith("actor_mlp.")), key=lambda k: (int(k.split(".")[1]),
                                                                                               k)):
        index, param = key.split(".")[1:]
        model[f"actor_mlp.mlp.{index}.{param}"] = _t(native_state[key])
        if param == "weight":
            hidden.append(native_state[key].shape[0])
    model["value.weight"] = _t(rng.normal(size=(1, hidden[-1])) * 0.1)
    model["value.bias"] = _t(np.zeros(1))
    model["mu.weight"] = _t(native_state["mu.weight"])
    model["mu.bias"] = _t(native_state["mu.bias"])
    model["sigma"] = _t(np.zeros(J))
    size = 9
    for k, units in zip((0, 2, 4), (16, 16, 8)):          # env_mlp: the stage-1 privileged encoder (unused at deploy)
        model[f"env_mlp.mlp.{k}.weight"] = _t(rng.normal(size=(units, size)) * 0.1)
        model[f"env_mlp.mlp.{k}.bias"] = _t(np.zeros(units))
        size = units
    for key, value in native_state.items():
        if key.startswith(("channel_transform.", "temporal_aggregation.", "low_dim_proj.")):
            model[f"adapt_tconv.{key}"] = _t(value)

    def rms(mean, var):
        return {"running_mean": _t(mean, torch.float64), "running_var": _t(var, torch.float64),
                "count": torch.tensor(1e7, dtype=torch.float64)}
    return {"model": model, "running_mean_std": rms(*obs_stats), "sa_mean_std": rms(*hist_stats)}


def hora_stage1(checkpoint: dict) -> dict:
    """A stage-1 ppo.py ``save`` of the same actor: no adaptation module, value_mean_std, no sa_mean_std."""
    model = OrderedDict((k, v) for k, v in checkpoint["model"].items() if not k.startswith("adapt_tconv."))
    return {"model": model, "running_mean_std": checkpoint["running_mean_std"],
            "value_mean_std": {"running_mean": torch.zeros(1, dtype=torch.float64),
                               "running_var": torch.ones(1, dtype=torch.float64),
                               "count": torch.tensor(1.0, dtype=torch.float64)}}

