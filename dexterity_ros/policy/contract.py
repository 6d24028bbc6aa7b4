"""The student policy contract: what an ONNX policy file promises about itself.

A sim-trained policy usually fails on a real robot through a silent mismatch
(joint order, normalisation, action scale, history length, units). Every
student file therefore carries a versioned JSON contract in its ONNX
``metadata_props`` (key :data:`METADATA_KEY`), and the runtime refuses a
policy whose contract it cannot honour. The format is specified in
``docs/policy_contract.md``; this module is its one implementation (pure:
numpy only, ``onnx`` imported lazily where a ModelProto is read or written).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ..config import ConfigError, from_dict, to_dict
from ..geometry import random_quaternion

CONTRACT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
METADATA_KEY = "dexterity_ros.policy_contract"

ActionMode = Literal["absolute", "relative-to-previous-target", "relative-to-measured"]
ACTION_MODES: tuple[str, ...] = ("absolute", "relative-to-previous-target", "relative-to-measured")

InputMeaning = Literal["object_points", "joint_positions", "joint_position_history", "action_history",
                       "target_history", "goal_quaternion", "goal_points", "recurrent_state"]
OutputMeaning = Literal["action", "recurrent_state"]

# history input meaning -> the quantity it stacks (the words used in ``history.stacked``)
HISTORY_INPUTS: dict[str, str] = {
    "joint_position_history": "joint_positions",
    "action_history": "actions",
    "target_history": "targets",
}
HistoryQuantity = Literal["joint_positions", "actions", "targets"]
MEANING_DESCRIPTIONS: dict[str, str] = {
    "object_points": "object point cloud, (1, N, 3) metres in point_cloud.frame",
    "joint_positions": "measured joint positions, (1, J) rad in joint_names order",
    "joint_position_history": "last H measured joint positions incl. the current one, (1, H, J), oldest first",
    "action_history": "previous H raw actions (network outputs), (1, H, J), oldest first, zeros after reset",
    "target_history": "previous H joint targets, (1, H, J) rad, oldest first, measured pose after reset",
    "goal_quaternion": "goal orientation (w, x, y, z), unit, w >= 0, (1, 4)",
    "goal_points": "object's canonical points rotated to the goal orientation, (1, M, 3) metres",
    "recurrent_state": "recurrent state fed back from its paired output",
    "action": "raw action, (1, J) in joint_names order; see action_mode/action_scale",
}


class PolicyError(ValueError):
    """A policy model cannot be used (unreadable file, bad contract, mismatch)."""


class ContractError(PolicyError):
    """A contract field is malformed or disagrees with what the runtime has; names the field."""

    def __init__(self, field_name: str, detail: str):
        self.field = field_name
        self.detail = detail
        super().__init__(f"policy contract field '{field_name}': {detail}")


def mismatch(field_name: str, contract_value: Any, other_label: str, other_value: Any) -> ContractError:
    """The standard 'both values' error: contract says X, the runtime's side says Y."""
    return ContractError(field_name, f"contract has {_fmt(contract_value)}, {other_label} has {_fmt(other_value)}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return repr(value)


@dataclass(frozen=True)
class Normalization:
    """How an input is normalised: ``none``, ``in_graph`` (folded into the ONNX graph),
    or ``mean_std`` (the runtime feeds (x - mean) / std over the last axis)."""

    kind: Literal["none", "in_graph", "mean_std"] = "none"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, static shape (batch 1 first), dtype, meaning."""

    name: str
    shape: tuple[int, ...]
    meaning: str
    dtype: Literal["float32"] = "float32"
    description: str = ""
    normalization: Normalization = field(default_factory=Normalization)


@dataclass(frozen=True)
class PointCloudSpec:
    num_points: int
    frame: str = "palm"


@dataclass(frozen=True)
class HistorySpec:
    length: int = 0
    stacked: tuple[HistoryQuantity, ...] = ()


@dataclass(frozen=True)
class RecurrentStateSpec:
    input: str
    output: str
    initial_value: float = 0.0


@dataclass(frozen=True)
class GoalSpec:
    representation: Literal["quaternion", "object_points"] = "quaternion"
    num_points: int = 0                     # object_points only: M
    object_name: str = ""                   # object_points only: which object's canonical points
    canonical_points_sha256: str = ""       # object_points only: canonical_points_hash() of the set


@dataclass(frozen=True)
class PolicyContract:
    """Everything the runtime must honour to run a student correctly (version 1)."""

    contract_version: int
    joint_names: tuple[str, ...]
    control_rate_hz: float
    action_mode: ActionMode
    action_scale: tuple[float, ...]
    action_ema: float
    default_joint_pos: tuple[float, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    point_cloud: PointCloudSpec
    segmentation_config_hash: str
    history: HistorySpec = field(default_factory=HistorySpec)
    recurrent_state: tuple[RecurrentStateSpec, ...] = ()
    goal: GoalSpec = field(default_factory=GoalSpec)
    name: str = ""
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ JSON
    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(to_dict(self), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "PolicyContract":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ContractError("(json)", f"not valid JSON: {exc}") from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Any) -> "PolicyContract":
        """Parse and self-validate; the version is checked before anything else."""
        if not isinstance(data, Mapping):
            raise ContractError("(json)", f"expected a JSON object, got {type(data).__name__}")
        if "contract_version" not in data:
            raise ContractError("contract_version", "missing (cannot tell which contract format this is)")
        version = data["contract_version"]
        if isinstance(version, bool) or not isinstance(version, int) or version not in SUPPORTED_VERSIONS:
            raise ContractError("contract_version", f"model has {version!r}, this runtime supports "
                                                    f"versions {list(SUPPORTED_VERSIONS)}")
        data = dict(data)
        scale = data.get("action_scale")
        if isinstance(scale, (int, float)) and not isinstance(scale, bool) and "joint_names" in data:
            data["action_scale"] = [float(scale)] * len(data["joint_names"])
        try:
            contract = from_dict(cls, data)
        except ConfigError as exc:
            text = str(exc)
            where, _, detail = text.partition(": ")
            raise ContractError(where.replace("PolicyContract", "(top level)"), detail or text) from None
        contract.validate()
        return contract

    # ------------------------------------------------------ lookups
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    def input_by_meaning(self, meaning: str) -> TensorSpec | None:
        for spec in self.inputs:
            if spec.meaning == meaning:
                return spec
        return None

    def action_output(self) -> TensorSpec:
        return next(o for o in self.outputs if o.meaning == "action")

    def with_provenance(self, **entries: Any) -> "PolicyContract":
        return dataclasses.replace(self, provenance={**self.provenance, **entries})

    # ---------------------------------------------------- validation
    def validate(self) -> None:
        """Self-consistency: shapes agree with counts, every input has a known filling rule."""
        joints = self.num_joints
        if joints == 0:
            raise ContractError("joint_names", "empty")
        dups = sorted({n for n in self.joint_names if self.joint_names.count(n) > 1})
        if dups:
            raise ContractError("joint_names", f"duplicated names {dups}")
        if not (math.isfinite(self.control_rate_hz) and 0 < self.control_rate_hz <= 1000):
            raise ContractError("control_rate_hz", f"{self.control_rate_hz} is not in (0, 1000] Hz")
        for name, values in (("action_scale", self.action_scale), ("default_joint_pos", self.default_joint_pos)):
            if len(values) != joints:
                raise mismatch(name, f"{len(values)} values", "joint_names", f"{joints} joints")
            if not all(math.isfinite(v) for v in values):
                raise ContractError(name, "contains NaN or inf")
        if any(v <= 0 for v in self.action_scale):
            raise ContractError("action_scale", f"must be > 0 for every joint, got {list(self.action_scale)}")
        if not (math.isfinite(self.action_ema) and 0.0 <= self.action_ema < 1.0):
            raise ContractError("action_ema", f"{self.action_ema} is not in [0, 1)")
        if self.point_cloud.num_points <= 0:
            raise ContractError("point_cloud.num_points", f"must be positive, got {self.point_cloud.num_points}")
        if not self.point_cloud.frame:
            raise ContractError("point_cloud.frame", "empty")
        if not self.segmentation_config_hash:
            raise ContractError("segmentation_config_hash", "empty")
        if self.history.length < 0:
            raise ContractError("history.length", f"must be >= 0, got {self.history.length}")
        self._validate_tensors()

    def _validate_tensors(self) -> None:
        joints, hist = self.num_joints, self.history.length
        expected_shape = {
            "object_points": (1, self.point_cloud.num_points, 3),
            "joint_positions": (1, joints),
            "joint_position_history": (1, hist, joints),
            "action_history": (1, hist, joints),
            "target_history": (1, hist, joints),
            "goal_quaternion": (1, 4),
            "goal_points": (1, self.goal.num_points, 3),
        }
        allowed_in = set(expected_shape) | {"recurrent_state"}
        for kind, specs, allowed in (("inputs", self.inputs, allowed_in),
                                     ("outputs", self.outputs, {"action", "recurrent_state"})):
            names = [s.name for s in specs]
            dups = sorted({n for n in names if names.count(n) > 1})
            if dups:
                raise ContractError(kind, f"duplicated names {dups}")
            for spec in specs:
                where = f"{kind}['{spec.name}']"
                if spec.meaning not in allowed:
                    raise ContractError(f"{where}.meaning", f"'{spec.meaning}' is not one of {sorted(allowed)}")
                if not spec.shape or any(d <= 0 for d in spec.shape) or spec.shape[0] != 1:
                    raise ContractError(f"{where}.shape",
                                        f"{list(spec.shape)}: need positive static dims with batch 1 first")
                want = expected_shape.get(spec.meaning) if kind == "inputs" else (
                    (1, joints) if spec.meaning == "action" else None)
                if want is not None and tuple(spec.shape) != want:
                    raise mismatch(f"{where}.shape", list(spec.shape),
                                   f"its meaning '{spec.meaning}' (from the other fields)", list(want))
                _validate_normalization(spec, where)
        meanings = [s.meaning for s in self.inputs if s.meaning != "recurrent_state"]
        dups = sorted({m for m in meanings if meanings.count(m) > 1})
        if dups:
            raise ContractError("inputs", f"more than one input with meaning {dups}")
        if self.input_by_meaning("object_points") is None:
            raise ContractError("inputs", "no input with meaning 'object_points' (point_cloud is declared)")
        actions = [o for o in self.outputs if o.meaning == "action"]
        if len(actions) != 1:
            raise ContractError("outputs", f"need exactly one output with meaning 'action', found {len(actions)}")
        # history: stacked quantities == the history inputs present
        present = sorted(HISTORY_INPUTS[s.meaning] for s in self.inputs if s.meaning in HISTORY_INPUTS)
        if sorted(self.history.stacked) != present:
            raise mismatch("history.stacked", sorted(self.history.stacked), "the history inputs' meanings", present)
        if present and self.history.length < 1:
            raise ContractError("history.length", f"must be >= 1 when history inputs exist ({present})")
        # recurrent pairs
        rec_in = {s.name: s for s in self.inputs if s.meaning == "recurrent_state"}
        rec_out = {s.name: s for s in self.outputs if s.meaning == "recurrent_state"}
        used_in, used_out = set(), set()
        for i, pair in enumerate(self.recurrent_state):
            where = f"recurrent_state[{i}]"
            if pair.input not in rec_in:
                raise ContractError(f"{where}.input",
                                    f"'{pair.input}' is not an input with meaning 'recurrent_state' ({sorted(rec_in)})")
            if pair.output not in rec_out:
                raise ContractError(f"{where}.output",
                                    f"'{pair.output}' is not an output with meaning 'recurrent_state' "
                                    f"({sorted(rec_out)})")
            if tuple(rec_in[pair.input].shape) != tuple(rec_out[pair.output].shape):
                raise mismatch(f"{where}", f"input shape {list(rec_in[pair.input].shape)}",
                               "its output", f"shape {list(rec_out[pair.output].shape)}")
            if not math.isfinite(pair.initial_value):
                raise ContractError(f"{where}.initial_value", "NaN or inf")
            used_in.add(pair.input)
            used_out.add(pair.output)
        if set(rec_in) != used_in or set(rec_out) != used_out:
            raise ContractError("recurrent_state",
                                f"unpaired recurrent tensors: inputs {sorted(set(rec_in) - used_in)}, "
                                f"outputs {sorted(set(rec_out) - used_out)}")
        # goal
        has_q = self.input_by_meaning("goal_quaternion") is not None
        has_p = self.input_by_meaning("goal_points") is not None
        if self.goal.representation == "quaternion" and (not has_q or has_p):
            raise ContractError("goal.representation",
                                "'quaternion' needs one 'goal_quaternion' input and no 'goal_points' input")
        if self.goal.representation == "object_points":
            if self.goal.num_points <= 0:
                raise ContractError("goal.num_points", f"must be positive for object_points, got {self.goal.num_points}")
            if not has_p or has_q:
                raise ContractError("goal.representation",
                                    "'object_points' needs one 'goal_points' input and no 'goal_quaternion' input")


def _validate_normalization(spec: TensorSpec, where: str) -> None:
    norm = spec.normalization
    if norm.kind != "mean_std":
        if norm.mean or norm.std:
            raise ContractError(f"{where}.normalization", f"kind '{norm.kind}' takes no mean/std")
        return
    last = spec.shape[-1]
    for name, values in (("mean", norm.mean), ("std", norm.std)):
        if len(values) not in (1, last):
            raise mismatch(f"{where}.normalization.{name}", f"{len(values)} values",
                           "the input's last axis", f"{last} (or 1)")
        if not all(math.isfinite(v) for v in values):
            raise ContractError(f"{where}.normalization.{name}", "contains NaN or inf")
    if any(v <= 0 for v in norm.std):
        raise ContractError(f"{where}.normalization.std", f"must be > 0, got {list(norm.std)}")


# ------------------------------------------------------------ graph checks
@dataclass(frozen=True)
class GraphTensor:
    """A tensor as the ONNX graph declares it (dims may be symbolic: str or None)."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str   # numpy-style: float32, int64, ...


def check_graph_io(contract: PolicyContract, graph_inputs: Sequence[GraphTensor],
                   graph_outputs: Sequence[GraphTensor]) -> None:
    """The graph's inputs/outputs must be exactly the contract's (names, shapes, dtypes).

    A symbolic graph dimension accepts the contract's static value.
    """
    for kind, specs, tensors in (("inputs", contract.inputs, graph_inputs),
                                 ("outputs", contract.outputs, graph_outputs)):
        graph = {t.name: t for t in tensors}
        declared = {s.name for s in specs}
        for spec in specs:
            where = f"{kind}['{spec.name}']"
            tensor = graph.get(spec.name)
            if tensor is None:
                raise ContractError(where, f"declared by the contract but not among the model graph's {kind} "
                                           f"{sorted(graph)} (torch.onnx drops inputs the module never uses)")
            if len(tensor.shape) != len(spec.shape) or any(
                    isinstance(g, int) and g != c for g, c in zip(tensor.shape, spec.shape)):
                raise mismatch(f"{where}.shape", list(spec.shape), "the model graph", list(tensor.shape))
            if tensor.dtype != spec.dtype:
                raise mismatch(f"{where}.dtype", spec.dtype, "the model graph", tensor.dtype)
        extra = sorted(set(graph) - declared)
        if extra:
            raise ContractError(kind, f"the model graph has {kind} {extra} that the contract does not declare "
                                      f"(contract declares {sorted(declared)})")


def joint_permutation(contract: PolicyContract, hand) -> np.ndarray:
    """Canonical index of each contract joint (policy order), or a ContractError naming both sides.

    ``hand`` is a :class:`dexterity_ros.hand_model.HandDescription`; any alias it knows is accepted.
    """
    mapping = hand.map_names(contract.joint_names)
    if mapping.unknown:
        raise ContractError("joint_names", f"contract has {list(mapping.unknown)}, which the hand "
                                           f"({Path(hand.source).name}) does not have; the hand has "
                                           f"{list(hand.joint_names)} (or their driver aliases)")
    if mapping.duplicates:
        raise ContractError("joint_names", f"{list(mapping.duplicates)} name hand joints already listed")
    if mapping.missing:
        raise mismatch("joint_names", f"{contract.num_joints} joints", f"the hand ({Path(hand.source).name})",
                       f"{hand.num_joints} joints, missing from the contract: {list(mapping.missing)}")
    return mapping.canonical_index.copy()


def check_default_pose(contract: PolicyContract, hand, canonical_index: np.ndarray) -> None:
    lower, upper = hand.lower[canonical_index], hand.upper[canonical_index]
    for k, value in enumerate(contract.default_joint_pos):
        if not lower[k] <= value <= upper[k]:
            raise ContractError(f"default_joint_pos[{contract.joint_names[k]}]",
                                f"contract has {value:g}, outside the hand's limits "
                                f"[{lower[k]:g}, {upper[k]:g}]")


def check_perception(contract: PolicyContract, perception) -> list[ContractError]:
    """Differences from the segmentation config (``perception.PerceptionConfig``) in use."""
    problems = []
    if contract.point_cloud.num_points != perception.num_points:
        problems.append(mismatch("point_cloud.num_points", contract.point_cloud.num_points,
                                 "the perception config (num_points)", perception.num_points))
    actual = perception.config_hash()
    if contract.segmentation_config_hash != actual:
        problems.append(mismatch("segmentation_config_hash", contract.segmentation_config_hash,
                                 "the perception config in use", actual))
    return problems


def canonical_points_hash(points: np.ndarray) -> str:
    """Identity of an object's canonical point set (float32 bytes, C order)."""
    data = np.ascontiguousarray(np.asarray(points, dtype=np.float32))
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


# ---------------------------------------------------------- metadata I/O
def contract_from_metadata(metadata: Mapping[str, str], source: str = "model") -> PolicyContract:
    text = metadata.get(METADATA_KEY)
    if text is None:
        raise ContractError("metadata", f"{source} has no policy contract: ONNX metadata key '{METADATA_KEY}' "
                                        f"is missing (metadata keys present: {sorted(metadata)})")
    return PolicyContract.from_json(text)


def attach_contract(model, contract: PolicyContract) -> None:
    """Write ``contract`` into an ``onnx.ModelProto``'s metadata_props (replacing any old one)."""
    contract.validate()
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept:
        model.metadata_props.add(key=key, value=value)
    model.metadata_props.add(key=METADATA_KEY, value=contract.to_json())


def read_contract(path: str | Path) -> PolicyContract:
    """The contract of an ONNX file on disk (reads the protobuf only, no inference session)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends: not an ONNX protobuf
        raise PolicyError(f"{path}: not a readable ONNX model ({exc})") from None
    return contract_from_metadata({p.key: p.value for p in model.metadata_props}, str(path))


# ------------------------------------------------------- example inputs
def sample_inputs(contract: PolicyContract, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible random graph inputs per meaning (export parity checks, benchmarks)."""
    feeds: dict[str, np.ndarray] = {}
    for spec in contract.inputs:
        shape = tuple(spec.shape)
        if spec.meaning in ("object_points", "goal_points"):
            x = rng.normal(0.0, 0.04, shape) + np.array([0.08, 0.0, 0.05])[: shape[-1]]
        elif spec.meaning in ("joint_positions", "joint_position_history", "target_history"):
            x = rng.uniform(-0.2, 1.2, shape)
        elif spec.meaning == "action_history":
            x = rng.uniform(-1.0, 1.0, shape)
        elif spec.meaning == "goal_quaternion":
            x = random_quaternion(rng).reshape(shape)
        else:
            x = rng.normal(0.0, 0.5, shape)
        feeds[spec.name] = np.ascontiguousarray(x, dtype=np.float32)
    return feeds
