"""DeXtreme's rl_games LSTM checkpoint, its observation and its forward pass, written from upstream's code.

For ``test_import_dextreme.py`` (issue 19). Nothing here imports the preset's network code: the
checkpoint uses rl_games' key names, the observation is computed the way DeXtreme computes it and the
forward pass follows rl_games step by step (numpy, float64), so the imported ONNX is checked against an
independent reading of upstream. Sources (Denys88/rl_games @262cf202, isaac-sim/IsaacGymEnvs @aeed2986):

* keys: ``algos_torch/models.py`` ``BaseModelNetwork`` (``running_mean_std``, ``value_mean_std``),
  ``algos_torch/network_builder.py`` ``A2CBuilder.Network.__init__`` l. 254-280 (``self.rnn =
  LSTMWithDones(...)``, ``self.layer_norm = LayerNorm(rnn_units)``), ``common/layers/recurrent.py``
  l. 77-80 (the ``torch.nn.LSTM`` sits under ``.rnn``), ``_build_sequential_mlp`` (``actor_mlp.{0,2}``),
  ``mu``, ``sigma``, ``value``; ``common/a2c_common.py`` ``get_full_state_weights`` (the outer dict);
* forward: ``network_builder.py`` l. 450-492 (non-separate: obs -> rnn l. 476 -> ``layer_norm``
  l. 485-486 -> ``actor_mlp`` l. 489-490 -> ``mu`` l. 510), ``recurrent.py`` l. 26-28 (no dones: plain
  ``torch.nn.LSTM``, gates i, f, g, o), ``running_mean_std.py`` l. 112-113 (normalise, clamp +-5);
* observation: ``tasks/dextreme/allegro_hand_dextreme.py`` ``compute_poses_wrt_wrist`` (inv(T_W_P) T_W_O),
  ``compute_observations`` (``unscale``; ``quat_mul(q_obj, quat_conjugate(q_goal))`` in xyzw,
  ``utils/torch_jit_utils.py``), ``adr_vec_task.py`` ``step`` (obs clamped to +-50, actions to +-1).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from dexterity_ros.geometry import quat_multiply, quat_to_matrix
from dexterity_ros.hand_model import default_hand
from dexterity_ros.policy.importers import isaacgymenvs as ige
from dexterity_ros.policy.runtime_v2 import ObjectPose, StepInputs

HAND = default_hand()
IGE_ORDER = [HAND.aliases()[ige.JOINT_ALIASES[n]] for n in ige.JOINT_NAMES]     # canonical index per DOF
INPUTS = ("dof_pos_randomized", "object_pose_cam_randomized", "goal_pose", "goal_relative_rot_cam_randomized",
          "last_actions")
SIZES = {"dof_pos_randomized": 16, "object_pose_cam_randomized": 7, "goal_pose": 7,
         "goal_relative_rot_cam_randomized": 4, "last_actions": 16}
LOWER, UPPER = np.asarray(ige.ASSET_LOWER), np.asarray(ige.ASSET_UPPER)
EPS = 1e-5
GOAL_POSITION = (0.0125, -0.043, 0.118)            # in the wrist frame (a value a sim would log)
PALM_ROT = quat_multiply(np.array([np.cos(0.15), np.sin(0.15), 0.0, 0.0]),
                         np.array([np.cos(0.1), 0.0, 0.0, np.sin(0.1)]))        # wxyz, 17 + 11 degrees
PALM_POSE = (0.004, -0.011, 0.021, *PALM_ROT)
PALM_POSE_TEXT = " ".join(f"{v:.12g}" for v in PALM_POSE)


# ------------------------------------------------------------------ checkpoint
def make_checkpoint(seed: int = 0, units: int = 1024, layers: int = 1, mlp=(512, 512), layer_norm: bool = True,
                    obs_size: int = 50, actions: int = 16, gates: int = 4, dict_normalizer: bool = False) -> dict:
    """A DeXtreme-shaped rl_games ``.pth`` dict: seeded weights, normaliser statistics of DeXtreme's inputs."""
    rng = np.random.default_rng(seed)

    def t(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)

    def uniform(shape, fan_in):          # torch's default init range
        return t(rng.uniform(-1, 1, shape) / np.sqrt(fan_in))

    model = OrderedDict()
    mean, var = normaliser_stats(rng)
    if dict_normalizer:
        offset = 0
        for key in INPUTS:
            n = SIZES[key]
            base = f"running_mean_std.running_mean_std.{key}"
            model[f"{base}.running_mean"] = torch.as_tensor(mean[offset:offset + n], dtype=torch.float64)
            model[f"{base}.running_var"] = torch.as_tensor(var[offset:offset + n], dtype=torch.float64)
            model[f"{base}.count"] = torch.tensor(123456789, dtype=torch.int64)
            offset += n
    else:
        model["running_mean_std.running_mean"] = torch.as_tensor(mean, dtype=torch.float64)
        model["running_mean_std.running_var"] = torch.as_tensor(var, dtype=torch.float64)
        model["running_mean_std.count"] = torch.tensor(123456789, dtype=torch.int64)
    model["value_mean_std.running_mean"] = torch.zeros(1, dtype=torch.float64)
    model["value_mean_std.running_var"] = torch.ones(1, dtype=torch.float64)
    model["value_mean_std.count"] = torch.tensor(1000, dtype=torch.int64)
    model["a2c_network.sigma"] = torch.zeros(actions)
    for layer in range(layers):
        inputs = obs_size if layer == 0 else units
        model[f"a2c_network.rnn.rnn.weight_ih_l{layer}"] = uniform((gates * units, inputs), units)
        model[f"a2c_network.rnn.rnn.weight_hh_l{layer}"] = uniform((gates * units, units), units)
        model[f"a2c_network.rnn.rnn.bias_ih_l{layer}"] = uniform((gates * units,), units)
        model[f"a2c_network.rnn.rnn.bias_hh_l{layer}"] = uniform((gates * units,), units)
    if layer_norm:
        model["a2c_network.layer_norm.weight"] = t(1.0 + 0.1 * rng.standard_normal(units))
        model["a2c_network.layer_norm.bias"] = t(0.1 * rng.standard_normal(units))
    width = units
    for k, n in enumerate(mlp):
        model[f"a2c_network.actor_mlp.{2 * k}.weight"] = uniform((n, width), width)
        model[f"a2c_network.actor_mlp.{2 * k}.bias"] = uniform((n,), width)
        width = n
    model["a2c_network.value.weight"] = uniform((1, width), width)
    model["a2c_network.value.bias"] = torch.zeros(1)
    model["a2c_network.mu.weight"] = t(rng.uniform(-1, 1, (actions, width)) * 2.0 / np.sqrt(width))
    model["a2c_network.mu.bias"] = t(0.1 * rng.standard_normal(actions))
    return {"model": model, "epoch": 8000, "frame": 8000 * 16 * 16384, "optimizer": {},
            "last_mean_rewards": 412.5, "env_state": None}


def normaliser_stats(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Plausible RunningMeanStd statistics per DeXtreme input (the goal position is constant in training)."""
    parts = {
        "dof_pos_randomized": (rng.uniform(-0.4, 0.4, 16), rng.uniform(0.02, 0.2, 16)),
        "object_pose_cam_randomized": (np.r_[rng.uniform(-0.02, 0.02, 3) + [0.0, -0.04, 0.1],
                                             rng.uniform(-0.2, 0.2, 3), 0.5],
                                       np.r_[rng.uniform(1e-4, 1e-3, 3), rng.uniform(0.1, 0.3, 4)]),
        "goal_pose": (np.r_[GOAL_POSITION, rng.uniform(-0.2, 0.2, 3), 0.5], np.r_[np.full(3, 1e-9),
                                                                                  rng.uniform(0.1, 0.3, 4)]),
        "goal_relative_rot_cam_randomized": (rng.uniform(-0.1, 0.1, 4), rng.uniform(0.1, 0.3, 4)),
        "last_actions": (rng.uniform(-0.1, 0.1, 16), rng.uniform(0.1, 0.5, 16)),
    }
    return np.concatenate([parts[k][0] for k in INPUTS]), np.concatenate([parts[k][1] for k in INPUTS])


def save(checkpoint: dict, path) -> object:
    torch.save(checkpoint, str(path))
    return path


# ------------------------------------------------------------------ trajectory
@dataclass
class Trajectory:
    inputs: list[StepInputs]        # what the runtime gets (canonical joints, palm frame, goal wxyz)


def _axis_angle(axis, angle) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return np.r_[np.cos(angle / 2), np.sin(angle / 2) * axis]


def trajectory(steps: int = 40, seed: int = 1, rate_hz: float = 30.0) -> Trajectory:
    """Smooth joint motion inside the hand's limits, a turning tracked object and one goal (palm frame)."""
    rng = np.random.default_rng(seed)
    mid, half = (HAND.lower + HAND.upper) / 2, (HAND.upper - HAND.lower) / 2
    phase, freq = rng.uniform(0, 2 * np.pi, HAND.num_joints), rng.uniform(0.5, 2.0, HAND.num_joints)
    axis = rng.standard_normal(3)
    goal = _axis_angle(np.array([0.3, -0.2, -1.0]) + 0.1 * rng.standard_normal(3), 2.4)
    out = []
    for k in range(steps):
        t = k / rate_hz
        q = mid + 0.6 * half * np.sin(freq * t + phase)
        pos = np.array([0.01, -0.03, 0.09]) + 0.01 * np.array([np.sin(t), np.cos(2 * t), np.sin(3 * t)])
        # large turns: the wrist-frame quaternions leave the region where w is the largest component, so the
        # sign convention (largest component positive, not w >= 0) matters
        quat = quat_multiply(_axis_angle(axis, 2.6 * np.sin(1.5 * t - 1.2)), _axis_angle([0, 0, 1], 0.2))
        stamp = 1_000_000_000 + int(round(k * 1e9 / rate_hz))
        out.append(StepInputs(q, stamp, goal_wxyz=goal, object_pose=ObjectPose(pos, quat, stamp)))
    return Trajectory(out)


# ------------------------------------------------------------------ observation, as DeXtreme computes it
def xyzw(q_wxyz: np.ndarray) -> np.ndarray:
    return np.asarray(q_wxyz)[[1, 2, 3, 0]]


def quat_mul_xyzw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``torch_jit_utils.quat_mul`` (x, y, z, w unpacked)."""
    x1, y1, z1, w1 = a
    x2, y2, z2, w2 = b
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2, w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2, w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])


def conj_xyzw(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]])


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """IsaacGymEnvs ``utils/torch_jit_utils.py`` ``matrix_to_quaternion`` (pytorch3d's), wxyz: of the four
    candidates the one whose |component| is largest is kept, so that component is positive."""
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = np.asarray(m, dtype=np.float64).ravel()
    q_abs = np.sqrt(np.maximum(0.0, [1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22,
                                     1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22]))
    candidates = np.array([[q_abs[0] ** 2, m21 - m12, m02 - m20, m10 - m01],
                           [m21 - m12, q_abs[1] ** 2, m10 + m01, m02 + m20],
                           [m02 - m20, m10 + m01, q_abs[2] ** 2, m12 + m21],
                           [m10 - m01, m20 + m02, m21 + m12, q_abs[3] ** 2]])
    candidates = candidates / (2.0 * np.maximum(q_abs[:, None], 0.1))
    return candidates[int(np.argmax(q_abs))]


def wrist_quaternions(step: StepInputs) -> tuple[np.ndarray, np.ndarray]:
    """The object's and the goal's orientation in the wrist frame as upstream computes them (wxyz)."""
    rot = np.asarray(PALM_POSE[3:])
    # compute_poses_wrt_wrist goes through rotation matrices: the quaternions come out of matrix_to_quaternion
    return (matrix_to_quaternion(quat_to_matrix(quat_multiply(rot, step.object_pose.quat_wxyz))),
            matrix_to_quaternion(quat_to_matrix(quat_multiply(rot, step.goal_wxyz))))


def observation(step: StepInputs, last_action: np.ndarray, *, order=INPUTS, quat_order: str = "xyzw",
                w_nonnegative: bool = False) -> np.ndarray:
    """DeXtreme's 50 policy inputs for one step: the palm-frame pose is moved into the wrist frame."""
    rot, trans = np.asarray(PALM_POSE[3:]), np.asarray(PALM_POSE[:3])
    q = np.asarray(step.joint_positions)[IGE_ORDER]
    dof = (2.0 * q - UPPER - LOWER) / (UPPER - LOWER)                     # torch_jit_utils.unscale
    obj_pos = quat_to_matrix(rot) @ np.asarray(step.object_pose.position) + trans
    obj_rot, goal_rot = wrist_quaternions(step)
    if w_nonnegative:                                                     # a broken convention
        obj_rot, goal_rot = (-q if q[0] < 0 else q for q in (obj_rot, goal_rot))
    relative = quat_mul_xyzw(xyzw(obj_rot), conj_xyzw(xyzw(goal_rot)))
    if quat_order == "wxyz":                                              # a broken convention
        form = lambda qx: qx[[3, 0, 1, 2]]      # noqa: E731
    else:
        form = lambda qx: qx                    # noqa: E731
    parts = {"dof_pos_randomized": dof,
             "object_pose_cam_randomized": np.r_[obj_pos, form(xyzw(obj_rot))],
             "goal_pose": np.r_[GOAL_POSITION, form(xyzw(goal_rot))],
             "goal_relative_rot_cam_randomized": form(relative),
             "last_actions": np.clip(last_action, -1.0, 1.0)}
    return np.concatenate([parts[k] for k in order])


# ------------------------------------------------------------------ rl_games forward
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


class Reference:
    """rl_games' player forward for a non-separate, before_mlp LSTM network, numpy float64."""

    def __init__(self, checkpoint: dict, layer_norm: bool = True):
        m = {k: v.double().numpy() for k, v in checkpoint["model"].items() if v.dim() > 0 or v.is_floating_point()}
        self.mean, self.var = m["running_mean_std.running_mean"], m["running_mean_std.running_var"]
        self.lstm = []
        layer = 0
        while f"a2c_network.rnn.rnn.weight_ih_l{layer}" in m:
            self.lstm.append(tuple(m[f"a2c_network.rnn.rnn.{n}_l{layer}"]
                                   for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
            layer += 1
        self.units = self.lstm[0][1].shape[1]
        self.norm = (m["a2c_network.layer_norm.weight"], m["a2c_network.layer_norm.bias"]) if layer_norm else None
        self.mlp = []
        k = 0
        while f"a2c_network.actor_mlp.{k}.weight" in m:
            self.mlp.append((m[f"a2c_network.actor_mlp.{k}.weight"], m[f"a2c_network.actor_mlp.{k}.bias"]))
            k += 2
        self.mu = (m["a2c_network.mu.weight"], m["a2c_network.mu.bias"])

    def zero_state(self) -> tuple[np.ndarray, np.ndarray]:
        """``get_default_rnn_state``: zeros (layers, units) for h and c."""
        return np.zeros((len(self.lstm), self.units)), np.zeros((len(self.lstm), self.units))

    def __call__(self, obs: np.ndarray, state) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        x = np.clip(obs, -50.0, 50.0)                                                   # adr_vec_task clip_obs
        x = np.clip((x - self.mean) / np.sqrt(self.var + EPS), -5.0, 5.0)              # RunningMeanStd
        h_all, c_all = state
        h_new, c_new = np.empty_like(h_all), np.empty_like(c_all)
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.lstm):                   # torch.nn.LSTM
            gates = w_ih @ x + b_ih + w_hh @ h_all[layer] + b_hh
            i, f, g, o = np.split(gates, 4)
            c = _sigmoid(f) * c_all[layer] + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            h_new[layer], c_new[layer] = h, c
            x = h
        if self.norm is not None:                                                       # LayerNorm(units)
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-5) * self.norm[0] + self.norm[1]
        for w, b in self.mlp:                                                           # actor_mlp, elu
            x = _elu(w @ x + b)
        return self.mu[0] @ x + self.mu[1], (h_new, c_new)


def rollout(reference: Reference, traj: Trajectory, **obs_options) -> np.ndarray:
    """The reference's mu at every step, closing the loop on last_actions (the clamped previous mu)."""
    state, last, out = reference.zero_state(), np.zeros(16), []
    for step in traj.inputs:
        mu, state = reference(observation(step, last, **obs_options), state)
        out.append(mu)
        last = np.clip(mu, -1.0, 1.0)
    return np.asarray(out)
