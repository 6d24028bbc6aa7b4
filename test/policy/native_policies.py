"""Native policies for the importer proofs: small networks trained on this package's simulator episodes.

The proof of each importer (issue 19): a policy trained here is re-expressed
in an upstream convention (joint order, scalings, quaternion order,
normaliser, action transform) and saved in that upstream's file format; the
importer brings it back; the imported policy's targets must equal the native
policy's within 1e-5 rad on recorded episodes.

The native policies are fitted by behaviour cloning (seeded, full batch, about
a second) to the joint targets recorded in the built-in demo episode (a
simulator episode with randomization on), from that episode's joint states,
true object pose and goal. Their task skill is not the point (issue 20
trains pose-based students for that); what matters is that they are trained
networks whose actions depend on every input, so any convention mismatch
shows in the targets.

Families (the native contract's action transform matches the convention's
family, since an absolute and a delta policy are not interconvertible):

- ``absolute``: joint positions (rad), object position (palm), object
  orientation (wxyz, continuous sign), goal (wxyz), previous action (clipped);
  action unscaled from [-1, 1] to the limits, EMA ``ema_alpha``.
- ``delta``: same inputs plus the previous target; action = previous target +
  ``scale`` * a (clip ``input_clip``), limits ``joint_limits``.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
import onnx
import torch

from dexterity_ros import topics
from dexterity_ros.hand_model import default_hand
from dexterity_ros.policy.contract_v2 import PolicyContractV2
from dexterity_ros.policy.loading import attach_contract_v2
from dexterity_ros.policy.runtime import RuntimeOptions
from dexterity_ros.policy.runtime_v2 import (ObjectPose, StepInputs, TermPolicyRuntime, assemble_inputs)
from dexterity_ros.policy.terms import StepRecord, TermContext, unit_from_limits

HAND = default_hand()
J = HAND.num_joints
CANONICAL = list(HAND.joint_names)
TOLERANCE = 1e-5


@dataclass(frozen=True)
class EpisodeSteps:
    """One recorded episode, one row per recorded action (canonical joint order, palm frame)."""

    stamp_ns: np.ndarray     # (S,)
    q: np.ndarray            # (S, 16)
    position: np.ndarray     # (S, 3)
    quat: np.ndarray         # (S, 4) wxyz
    pose_stamp_ns: np.ndarray
    goal: np.ndarray         # (S, 4) wxyz
    target: np.ndarray       # (S, 16) recorded joint targets

    def __len__(self) -> int:
        return len(self.stamp_ns)

    def inputs(self, k: int) -> StepInputs:
        return StepInputs(self.q[k], int(self.stamp_ns[k]), goal_wxyz=self.goal[k],
                          object_pose=ObjectPose(self.position[k], self.quat[k], int(self.pose_stamp_ns[k])))


@functools.lru_cache(maxsize=1)
def demo_steps() -> EpisodeSteps:
    """The demo episode's recorded actions with the joint state, true pose and goal at each."""
    from dexterity_ros.bags.io import BagReader
    from dexterity_ros.cli_commands.demo import ensure_demo_episode
    from dexterity_ros.ros.conversions import stamp_to_ns
    from dexterity_ros.ros.messages import deserialize

    reader = BagReader(ensure_demo_episode())
    wanted = {"/" + t.name: t for t in (topics.JOINT_STATES, topics.OBJECT_POSE, topics.GOAL, topics.JOINT_TARGETS)}
    joints, poses, goals, targets = {}, {}, [], {}
    for raw in reader.messages(list(wanted)):
        msg = deserialize(raw.data, raw.type_name)
        stamp = stamp_to_ns(msg.header.stamp)
        if raw.topic == "/" + topics.JOINT_STATES.name:
            joints[stamp] = HAND.to_canonical(list(msg.name), np.asarray(msg.position))
        elif raw.topic == "/" + topics.OBJECT_POSE.name:
            p, o = msg.pose.position, msg.pose.orientation
            poses[stamp] = (np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z]))
        elif raw.topic == "/" + topics.GOAL.name:
            q = msg.quaternion
            goals.append((stamp, np.array([q.w, q.x, q.y, q.z])))
        else:
            targets[stamp] = HAND.to_canonical(list(msg.name), np.asarray(msg.position))
    rows = {k: [] for k in ("stamp", "q", "pos", "quat", "pstamp", "goal", "target")}
    joint_stamps = np.array(sorted(joints))
    pose_stamps = np.array(sorted(poses))
    goals.sort(key=lambda g: g[0])
    for stamp in sorted(targets):
        j = joint_stamps[joint_stamps <= stamp]
        p = pose_stamps[pose_stamps <= stamp]
        if not len(j) or not len(p):
            continue
        g = [goal for t, goal in goals if t <= stamp]        # the goal in force at this frame
        rows["stamp"].append(stamp)
        rows["q"].append(joints[j[-1]])
        rows["pos"].append(poses[p[-1]][0])
        rows["quat"].append(poses[p[-1]][1])
        rows["pstamp"].append(int(p[-1]))
        rows["goal"].append(g[-1] if g else goals[0][1])
        rows["target"].append(targets[stamp])
    a = {k: np.asarray(v) for k, v in rows.items()}
    return EpisodeSteps(a["stamp"].astype(np.int64), a["q"], a["pos"], a["quat"], a["pstamp"].astype(np.int64),
                        a["goal"], a["target"])


# ------------------------------------------------------------ native contracts
def native_contract(family: str, *, control_rate_hz: float = 12.0, ema_alpha: float = 1.0, scale: float = 1 / 24,
                    input_clip: float | None = 1.0, joint_limits: tuple | None = None,
                    previous_actions_clipped: bool = True, name: str = "native") -> PolicyContractV2:
    terms = [{"name": "joint_pos", "kind": "joint_positions"},
             {"name": "object_pos", "kind": "object_position"},
             {"name": "object_quat", "kind": "object_orientation", "order": "wxyz", "sign": "continuous"},
             {"name": "goal_quat", "kind": "goal_orientation", "order": "wxyz", "sign": "w_nonnegative"},
             {"name": "last_action", "kind": "previous_actions", "clipped": previous_actions_clipped}]
    if family == "absolute":
        action = {"output": "actions", "mode": "unscale_limits", "input_clip": input_clip, "ema_alpha": ema_alpha}
    elif family == "delta":
        terms.append({"name": "last_target", "kind": "previous_targets"})
        action = {"output": "actions", "mode": "delta_previous_target", "scale": scale, "input_clip": input_clip,
                  "ema_alpha": ema_alpha}
    else:
        raise ValueError(family)
    spec = {"contract_version": 2, "name": name, "control_rate_hz": control_rate_hz, "joint_names": CANONICAL,
            "terms": terms, "inputs": [{"name": "obs", "terms": [t["name"] for t in terms]}],
            "action": action, "outputs": [{"name": "actions", "shape": [1, J]}]}
    if joint_limits is not None:
        spec["joint_limits"] = {"lower": list(joint_limits[0]), "upper": list(joint_limits[1])}
    return PolicyContractV2.from_mapping(spec)


def context_for(contract: PolicyContractV2) -> TermContext:
    if contract.joint_limits is not None:
        lower, upper = np.asarray(contract.joint_limits.lower), np.asarray(contract.joint_limits.upper)
    else:
        lower, upper = HAND.lower.copy(), HAND.upper.copy()
    return TermContext(lower=lower, upper=upper, frame=contract.frame)


def action_labels(contract: PolicyContractV2, steps: EpisodeSteps) -> tuple[np.ndarray, np.ndarray]:
    """Raw-action labels that reproduce the recorded targets under the contract's transform, and the
    previous target seen at each step (the recorded previous target; the measured pose at the start)."""
    ctx = context_for(contract)
    a_cfg = contract.action
    prev = np.vstack([steps.q[:1], steps.target[:-1]])
    if a_cfg.mode == "unscale_limits":
        wanted = (steps.target - (1 - a_cfg.ema_alpha) * prev) / a_cfg.ema_alpha
        labels = unit_from_limits(wanted, ctx.lower, ctx.upper)
    else:
        labels = (steps.target - prev) / np.asarray(a_cfg.scale)
    bound = a_cfg.input_clip if a_cfg.input_clip is not None else 0.99
    return np.clip(labels, -bound, bound), prev


def training_features(contract: PolicyContractV2, steps: EpisodeSteps) -> np.ndarray:
    """The native observation at every recorded step, as the runtime would build it on that trajectory."""
    ctx = context_for(contract)
    labels, prev = action_labels(contract, steps)
    window: list[StepRecord] = []
    rows = []
    last_action = np.zeros(J)
    for k in range(len(steps)):
        record = StepRecord(int(steps.stamp_ns[k]), steps.q[k], prev[k], last_action, np.clip(last_action, -1, 1),
                            steps.position[k], steps.quat[k], int(steps.pose_stamp_ns[k]), steps.goal[k] / np.sign(
                                steps.goal[k][0] or 1.0))
        window = (window + [record])[-contract.history_window:] if window else [record] * contract.history_window
        rows.append(assemble_inputs(contract, window, ctx)["obs"][0])
        last_action = labels[k]
    return np.asarray(rows)


@dataclass
class NativePolicy:
    contract: PolicyContractV2
    mlp: torch.nn.Sequential          # obs (1, D) float32 -> actions (1, 16), canonical order
    onnx_bytes: bytes

    def runtime(self) -> TermPolicyRuntime:
        return TermPolicyRuntime(self.onnx_bytes, hand=HAND, options=RuntimeOptions())


def train_native(contract: PolicyContractV2, steps: EpisodeSteps | None = None, *, hidden: int = 64,
                 iterations: int = 400, seed: int = 0, activation: type = torch.nn.ELU,
                 tanh_output: bool = False) -> NativePolicy:
    """Behaviour cloning of the recorded targets (seeded, deterministic on one thread)."""
    steps = steps or demo_steps()
    x = torch.tensor(training_features(contract, steps), dtype=torch.float32)
    y = torch.tensor(action_labels(contract, steps)[0], dtype=torch.float32)
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(x.shape[1], hidden), activation(), torch.nn.Linear(hidden, hidden), activation(),
              torch.nn.Linear(hidden, J)]
    if tanh_output:
        layers.append(torch.nn.Tanh())
    mlp = torch.nn.Sequential(*layers)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt = torch.optim.Adam(mlp.parameters(), lr=3e-3)
        for _ in range(iterations):
            opt.zero_grad()
            loss = torch.mean((mlp(x) - y) ** 2)
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    mlp.eval()
    return NativePolicy(contract, mlp, onnx_with_contract(mlp, contract, {"obs": x.shape[1]}, ["actions"]))


def onnx_with_contract(module: torch.nn.Module, contract: PolicyContractV2 | None, input_sizes: dict,
                       output_names: list[str]) -> bytes:
    """torch module -> ONNX bytes (legacy exporter, opset 17), with a v2 contract attached if given."""
    buffer = io.BytesIO()
    args = tuple(torch.zeros(1, n) if isinstance(n, int) else torch.zeros(1, *n) for n in input_sizes.values())
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=17, input_names=list(input_sizes),
                          output_names=output_names)
    model = onnx.load_from_string(buffer.getvalue())
    if contract is not None:
        attach_contract_v2(model, contract)
    return model.SerializeToString()


def run_episode(runtime: TermPolicyRuntime, steps: EpisodeSteps | None = None) -> np.ndarray:
    """Targets (S, 16 canonical) of the runtime fed the recorded inputs in order (NaN where no action)."""
    steps = steps or demo_steps()
    out = np.full((len(steps), J), np.nan)
    for k in range(len(steps)):
        result = runtime.step(steps.inputs(k))
        if result.target is not None:
            out[k] = result.target
    return out


def max_target_difference(a: TermPolicyRuntime, b: TermPolicyRuntime, steps: EpisodeSteps | None = None) -> float:
    ta, tb = run_episode(a, steps), run_episode(b, steps)
    if np.isnan(ta).any() or np.isnan(tb).any():
        return float("inf")
    return float(np.max(np.abs(ta - tb)))
