"""Native policies re-expressed in upstream conventions and saved in the upstream's file format.

The importer proofs (issue 19): a native policy (:mod:`native_policies`, a
small network trained here on the demo episode) is rewritten as the policy an
upstream code base would have produced, in that upstream's file format:

* Isaac Lab (``isaaclab-allegro-repose``): the ONNX Isaac Lab's rsl_rl
  exporter writes (``isaaclab_rl/rsl_rl/exporter.py``: ``actor(normalizer(obs))``,
  input ``"obs"`` (1, 72 or 50), output ``"actions"`` (1, 16), opset 11, the
  rsl_rl ``EmpiricalNormalization`` (x - mean) / (std + 0.01) inside).
* Playground (``playground-leap-reorient``): the ONNX
  ``experimental/brax_network_to_onnx.ipynb`` writes (input ``"obs"`` (1, 57),
  output ``"continuous_actions"`` (1, 16), opset 11, (x - mean) / std inside,
  tanh at the output).

The "actor" of each re-expression takes the upstream observation (after the
in-graph normaliser), undoes the upstream conventions (normalisation, joint
order, unit scaling by the asset's limits, quaternion order, the env/world
frame, velocity scales, the error-matrix rows) to rebuild the native
observation exactly, runs the native MLP and turns its action into the
upstream action (joint order). The layouts here are written from the upstream
sources (``inhand_env_cfg.py``, ``reorient.py``), independently of the
importers, so an importer that gets a convention wrong fails the parity.

The importer brings the file back; the imported runtime's targets on the demo
episode must equal the native runtime's within 1e-5 rad. ``broken=...``
variants produce a file with one convention wrong.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import torch

from native_policies import CANONICAL, HAND, J, NativePolicy, native_contract, train_native
from dexterity_ros.geometry import quat_to_matrix
from dexterity_ros.policy.contract_v2 import PolicyContractV2

# ------------------------------------------------------------------ torch quaternion helpers (w, x, y, z)


def qmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bw, bx, by, bz = b[:, 0:1], b[:, 1:2], b[:, 2:3], b[:, 3:4]
    return torch.cat([aw * bw - ax * bx - ay * by - az * bz,
                      aw * bx + ax * bw + ay * bz - az * by,
                      aw * by - ax * bz + ay * bw + az * bx,
                      aw * bz + ax * by - ay * bx + az * bw], dim=1)


def qconj(q: torch.Tensor) -> torch.Tensor:
    return q * torch.tensor([1.0, -1.0, -1.0, -1.0])


def export_onnx(module: torch.nn.Module, input_name: str, size: int, output_name: str, opset: int = 11) -> bytes:
    """torch -> ONNX bytes as the upstream exporters call it (legacy exporter, batch 1, no dynamic axes)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, size),), buffer, dynamo=False, opset_version=opset,
                          input_names=[input_name], output_names=[output_name], dynamic_axes={})
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model)
    return buffer.getvalue()


def stats(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Observation statistics for the in-graph normaliser (any affine map serves the proof)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.3, size).astype(np.float32), rng.uniform(0.3, 2.0, size).astype(np.float32)


# ================================================================== Isaac Lab (manager-based Allegro)
FINGERS = ("index", "middle", "ring", "thumb")       # canonical ff, mf, rf, th
ISAACLAB_ORDERS = {   # upstream position -> joint name (articulation order of the backend)
    "physx": [f"{f}_joint_{k}" for k in range(4) for f in FINGERS],
    "newton": [f"{f}_joint_{k}" for f in FINGERS for k in range(4)],
}
ALLEGRO_ROOT_POS = (0.0, 0.0, 0.5)
ALLEGRO_ROOT_WXYZ = (0.257551, 0.283045, 0.683330, -0.621782)


def isaaclab_canonical_index(order: str) -> list[int]:
    """perm[p] = canonical index of the joint at upstream position p (index_joint_k -> ffjk, ...)."""
    return [FINGERS.index(name.split("_")[0]) * 4 + int(name[-1]) for name in ISAACLAB_ORDERS[order]]


def isaaclab_layout(obs: str) -> dict[str, slice]:
    """``inhand_env_cfg.py`` KinematicObsGroupCfg (72) / NoVelocityKinematicObsGroupCfg (50), in order."""
    sizes = [("joint_pos", 16), ("joint_vel", 16), ("object_pos", 3), ("object_quat", 4), ("object_lin_vel", 3),
             ("object_ang_vel", 3), ("goal_pos", 3), ("goal_quat", 4), ("goal_quat_diff", 4), ("last_action", 16)]
    if obs == "no_vel":
        sizes = [s for s in sizes if s[0] not in ("joint_vel", "object_lin_vel", "object_ang_vel")]
    out, offset = {}, 0
    for name, n in sizes:
        out[name] = slice(offset, offset + n)
        offset += n
    out["size"] = slice(0, offset)
    return out


def isaaclab_native_contract(obs: str) -> PolicyContractV2:
    """The native policy each Isaac Lab variant re-expresses (absolute family, EMA 0.95).

    ``no_vel``: :func:`native_policies.native_contract` ("absolute"). ``full``: the same plus joint
    velocities, object velocities and the object-goal quaternion difference (palm frame, unscaled), so
    that every upstream term reaches the network and a wrong velocity scale or frame shows.
    """
    if obs == "no_vel":
        return native_contract("absolute", ema_alpha=0.95, name="native-isaaclab-no_vel")
    terms = [{"name": "joint_pos", "kind": "joint_positions"},
             {"name": "joint_vel", "kind": "joint_velocities"},
             {"name": "object_pos", "kind": "object_position"},
             {"name": "object_quat", "kind": "object_orientation", "order": "wxyz", "sign": "continuous"},
             {"name": "object_lin_vel", "kind": "object_linear_velocity"},
             {"name": "object_ang_vel", "kind": "object_angular_velocity"},
             {"name": "goal_quat", "kind": "goal_orientation", "order": "wxyz", "sign": "w_nonnegative"},
             {"name": "quat_diff", "kind": "quaternion_difference", "order": "wxyz", "sign": "continuous"},
             {"name": "last_action", "kind": "previous_actions", "clipped": True}]
    return PolicyContractV2.from_mapping({
        "contract_version": 2, "name": "native-isaaclab-full", "control_rate_hz": 12.0, "joint_names": CANONICAL,
        "terms": terms, "inputs": [{"name": "obs", "terms": [t["name"] for t in terms]}],
        "action": {"output": "actions", "mode": "unscale_limits", "input_clip": 1.0, "ema_alpha": 0.95},
        "outputs": [{"name": "actions", "shape": [1, J]}]})


class EmpiricalNormalization(torch.nn.Module):
    """rsl_rl ``modules/normalization.py`` at inference: (x - mean) / (std + eps), eps 0.01, no clip."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, eps: float = 1e-2):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))
        self.eps = eps

    def forward(self, x):
        return (x - self.mean) / (self.std + self.eps)


class IsaacLabActor(torch.nn.Module):
    """Normalised Isaac Lab observation -> Isaac Lab action, through the native MLP."""

    def __init__(self, native: NativePolicy, obs: str, order: str, version: str, palm_xyz, palm_wxyz,
                 mean: np.ndarray, std: np.ndarray, eps: float, action_scale: float = 1.0):
        super().__init__()
        self.mlp = native.mlp
        self.obs, self.version = obs, version
        self.layout = isaaclab_layout(obs)
        perm = isaaclab_canonical_index(order)
        inv = [perm.index(c) for c in range(J)]
        self.register_buffer("perm", torch.tensor(perm))          # upstream p <- canonical perm[p]
        self.register_buffer("inv", torch.tensor(inv))            # canonical c <- upstream inv[c]
        lower, upper = HAND.lower[perm], HAND.upper[perm]         # the asset's limits, upstream order
        self.register_buffer("lower", torch.tensor(lower, dtype=torch.float32))
        self.register_buffer("upper", torch.tensor(upper, dtype=torch.float32))
        self.register_buffer("t", torch.tensor(palm_xyz, dtype=torch.float32))
        self.register_buffer("R", torch.tensor(quat_to_matrix(np.asarray(palm_wxyz)), dtype=torch.float32))
        self.register_buffer("qf", torch.tensor(palm_wxyz, dtype=torch.float32).reshape(1, 4))
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("scale", torch.tensor(std) + eps)
        self.action_scale = action_scale

    def _quat(self, u, name):   # upstream quaternion -> (w, x, y, z)
        q = u[:, self.layout[name]]
        return q if self.version == "2" else q[:, [3, 0, 1, 2]]

    def forward(self, x):
        u = x * self.scale + self.mean                                  # the upstream observation
        L = self.layout
        q_up = 0.5 * (u[:, L["joint_pos"]] + 1.0) * (self.upper - self.lower) + self.lower
        parts = [q_up[:, self.inv]]
        if self.obs == "full":
            parts.append((u[:, L["joint_vel"]] / 0.2)[:, self.inv])
        parts.append((u[:, L["object_pos"]] - self.t) @ self.R)        # R^T (p_env - t)
        to_palm = qconj(self.qf)
        parts.append(qmul(to_palm, self._quat(u, "object_quat")))
        if self.obs == "full":
            parts.append(u[:, L["object_lin_vel"]] @ self.R)
            parts.append((u[:, L["object_ang_vel"]] / 0.2) @ self.R)
        goal = qmul(to_palm, self._quat(u, "goal_quat"))
        parts.append(torch.where(goal[:, 0:1] < 0, -goal, goal))       # native goal: w >= 0
        if self.obs == "full":
            parts.append(qmul(qmul(to_palm, self._quat(u, "goal_quat_diff")), self.qf))
        # upstream last_action is the raw output (native action / scale); the native's is clipped
        parts.append(torch.clamp(u[:, L["last_action"]] * self.action_scale, -1.0, 1.0)[:, self.inv])
        action = self.mlp(torch.cat(parts, dim=1))                      # canonical order, [-1, 1] units
        return action[:, self.perm] / self.action_scale


class RslRlOnnxExporter(torch.nn.Module):
    """``isaaclab_rl/rsl_rl/exporter.py`` ``_OnnxPolicyExporter.forward``: actor(normalizer(x))."""

    def __init__(self, actor, normalizer=None):
        super().__init__()
        self.actor = actor
        self.normalizer = normalizer if normalizer is not None else torch.nn.Identity()

    def forward(self, x):
        return self.actor(self.normalizer(x))


@dataclass(frozen=True)
class IsaacLabExport:
    onnx: bytes
    obs: str
    joint_order: str
    version: str


def isaaclab_onnx(native: NativePolicy, *, obs: str, joint_order: str, version: str,
                  palm_xyz=ALLEGRO_ROOT_POS, palm_wxyz=ALLEGRO_ROOT_WXYZ, normaliser: bool = True,
                  action_scale: float = 1.0, seed: int = 0) -> bytes:
    """``native`` as an Isaac Lab rsl_rl policy.onnx (trained with ``action_scale`` in the action term)."""
    size = isaaclab_layout(obs)["size"].stop
    mean, std = stats(size, seed)
    actor = IsaacLabActor(native, obs, joint_order, version, palm_xyz, palm_wxyz, mean, std, 1e-2, action_scale)
    exporter = RslRlOnnxExporter(actor, EmpiricalNormalization(mean, std) if normaliser else None)
    return export_onnx(exporter, "obs", size, "actions")


# ================================================================== MuJoCo Playground (LeapCubeReorient)
PLAYGROUND_JOINTS = ["if_mcp", "if_rot", "if_pip", "if_dip", "mf_mcp", "mf_rot", "mf_pip", "mf_dip",
                     "rf_mcp", "rf_rot", "rf_pip", "rf_dip", "th_cmc", "th_axl", "th_mcp", "th_ipl"]
# LEAP hardware numbering = Allegro numbering (LEAP_Hand_API allegro_to_LEAPhand); the MJCF's mcp (flexion)
# is hardware joint 1, rot (abduction) hardware joint 0; thumb by chain position
PLAYGROUND_CANONICAL = [1, 0, 2, 3, 5, 4, 6, 7, 9, 8, 10, 11, 12, 13, 14, 15]   # upstream p -> canonical
# leap_rh_mjx.xml ctrlrange (= joint range, inheritrange) in canonical order (ffj0 = rot, ffj1 = mcp, ...)
_FINGER_RANGES = [(-1.047, 1.047), (-0.314, 2.23), (-0.506, 1.885), (-0.366, 2.042)]
_THUMB_RANGES = [(-0.349, 2.094), (-0.349, 2.094), (-0.47, 2.443), (-1.34, 1.88)]
LEAP_LIMITS_CANONICAL = (tuple(r[0] for r in _FINGER_RANGES * 3 + _THUMB_RANGES),
                         tuple(r[1] for r in _FINGER_RANGES * 3 + _THUMB_RANGES))
GRASP_SITE = (0.11, 0.0, 0.03)
PLAYGROUND_LAYOUT = {"joint_angles": slice(0, 16), "qpos_error": slice(16, 32), "cube_pos_error": slice(32, 35),
                     "cube_ori_error": slice(35, 41), "last_act": slice(41, 57)}


def playground_native_contract() -> PolicyContractV2:
    """Delta family as LeapCubeReorient acts (scale 0.5, no action clip, LEAP limits); the object's
    orientation relative to the goal as the full error matrix (palm frame), which Playground's two rows
    determine."""
    terms = [{"name": "joint_pos", "kind": "joint_positions"},
             {"name": "last_target", "kind": "previous_targets"},
             {"name": "object_pos", "kind": "object_position"},
             {"name": "rot_err", "kind": "orientation_error_matrix", "rows": [0, 1, 2]},
             {"name": "last_action", "kind": "previous_actions"}]
    return PolicyContractV2.from_mapping({
        "contract_version": 2, "name": "native-playground", "control_rate_hz": 12.0, "joint_names": CANONICAL,
        "terms": terms, "inputs": [{"name": "obs", "terms": [t["name"] for t in terms]}],
        "action": {"output": "actions", "mode": "delta_previous_target", "scale": 0.5, "input_clip": None},
        "joint_limits": {"lower": list(LEAP_LIMITS_CANONICAL[0]), "upper": list(LEAP_LIMITS_CANONICAL[1])},
        "outputs": [{"name": "actions", "shape": [1, J]}]})


def train_playground_native() -> NativePolicy:
    return train_native(playground_native_contract(), tanh_output=True)


class PlaygroundActor(torch.nn.Module):
    """Brax-normalised Playground "state" -> continuous_actions, through the native MLP (tanh inside)."""

    def __init__(self, native: NativePolicy, palm_xyz, palm_wxyz, grasp_site, mean, std, action_scale=0.5):
        super().__init__()
        self.mlp = native.mlp
        perm = PLAYGROUND_CANONICAL
        self.register_buffer("perm", torch.tensor(perm))
        self.register_buffer("inv", torch.tensor([perm.index(c) for c in range(J)]))
        self.register_buffer("t", torch.tensor(palm_xyz, dtype=torch.float32))
        self.register_buffer("R", torch.tensor(quat_to_matrix(np.asarray(palm_wxyz)), dtype=torch.float32))
        self.register_buffer("site", torch.tensor(grasp_site, dtype=torch.float32))
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))
        self.gain = 0.5 / action_scale

    def forward(self, x):
        u = x * self.std + self.mean
        L = PLAYGROUND_LAYOUT
        q = u[:, L["joint_angles"]]
        prev = q - u[:, L["qpos_error"]]                                 # motor_targets
        p_world = self.site - u[:, L["cube_pos_error"]]                  # cube in the world frame
        p_palm = (p_world - self.t) @ self.R
        r1, r2 = u[:, 35:38], u[:, 38:41]                                # rows 1, 2 of R_w(q_cube q_goal^-1)
        r0 = torch.cat([r1[:, 1:2] * r2[:, 2:3] - r1[:, 2:3] * r2[:, 1:2],
                        r1[:, 2:3] * r2[:, 0:1] - r1[:, 0:1] * r2[:, 2:3],
                        r1[:, 0:1] * r2[:, 1:2] - r1[:, 1:2] * r2[:, 0:1]], dim=1)
        m_world = torch.stack([r0, r1, r2], dim=1)                       # (B, 3, 3)
        m_palm = self.R.T @ m_world @ self.R
        native_obs = torch.cat([q[:, self.inv], prev[:, self.inv], p_palm, m_palm.reshape(-1, 9),
                                (u[:, L["last_act"]] / self.gain)[:, self.inv]], dim=1)
        return self.mlp(native_obs)[:, self.perm] * self.gain


class BraxOnnxPolicy(torch.nn.Module):
    """``brax_network_to_onnx.ipynb`` ``MLP``: (x - mean) / std, then the layers (tanh at the output)."""

    def __init__(self, actor, mean=None, std=None):
        super().__init__()
        self.actor = actor
        self.normalise = mean is not None
        if self.normalise:
            self.register_buffer("mean", torch.tensor(mean))
            self.register_buffer("std", torch.tensor(std))

    def forward(self, x):
        if self.normalise:
            x = (x - self.mean) / self.std
        return self.actor(x)


def playground_onnx(native: NativePolicy, *, palm_xyz=(0.0, 0.0, 0.0), palm_wxyz=(1.0, 0.0, 0.0, 0.0),
                    grasp_site=GRASP_SITE, normaliser: bool = True, action_scale: float = 0.5,
                    seed: int = 1) -> bytes:
    """``native`` as a Playground LeapCubeReorient ONNX (trained with ``action_scale``)."""
    mean, std = stats(57, seed)
    actor = PlaygroundActor(native, palm_xyz, palm_wxyz, grasp_site, mean, std, action_scale)
    policy = BraxOnnxPolicy(actor, mean, std) if normaliser else BraxOnnxPolicy(actor)
    return export_onnx(policy, "obs", 57, "continuous_actions")
