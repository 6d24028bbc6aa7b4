"""Policy contract version 2: observation terms, normalisers and the action transform.

Version 1 (``contract.py``) describes this package's own students: graph
inputs with fixed meanings and an object cloud always present. Version 2
describes any policy, including those trained in Isaac Lab, IsaacGymEnvs,
HORA or MuJoCo Playground: the inputs are ordered lists of named observation
terms (:mod:`dexterity_ros.policy.terms`) concatenated into one flat input or
fed as separate inputs, each input with its observation normaliser, and the
action transform is spelled out step by step. Joint order is by name
(``joint_names`` in policy order, with ``joint_aliases`` mapping upstream
names onto the hand description's). Specified in ``docs/policy_contract.md``.
Pure (numpy only).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ..config import ConfigError, from_dict, to_dict
from .contract import ContractError, GraphTensor, RecurrentStateSpec, mismatch
from .terms import FrameTransform, ObservationTerm, TermError, parse_term

CONTRACT_VERSION_2 = 2

ActionModeV2 = Literal["absolute", "unscale_limits", "delta_previous_target", "delta_measured"]
ACTION_MODES_V2: tuple[str, ...] = ("absolute", "unscale_limits", "delta_previous_target", "delta_measured")


@dataclass(frozen=True)
class Normalizer:
    """y = clip((clip_input(x) - mean) / sqrt(std^2 + epsilon), -clip, clip), over the input's values.

    ``mean``/``std`` have one value, one per last-axis element, or one per
    element of the input (row-major). rl_games and HORA: std = sqrt(running
    var), epsilon 1e-5, clip 5; Brax/Playground: epsilon 0, no clip.
    """

    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    epsilon: float = 0.0
    clip: float | None = None
    clip_input: float | None = None


@dataclass(frozen=True)
class InputSpec:
    """One graph input: the terms it carries, in order, and its normaliser.

    With one term and ``flatten: false`` the input keeps the term's shape
    (e.g. HORA's (1, 30, 32) history); otherwise terms are flattened and
    concatenated into (1, D).
    """

    name: str
    terms: tuple[str, ...]
    flatten: bool = True
    normalizer: Normalizer | None = None
    description: str = ""


@dataclass(frozen=True)
class OutputSpec:
    name: str
    shape: tuple[int, ...]
    meaning: Literal["action", "recurrent_state", "ignored"] = "action"


@dataclass(frozen=True)
class RecurrentInputSpec:
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class JointLimits:
    """The policy's own joint limits (its simulator asset's), policy order; used by unit scaling."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]


@dataclass(frozen=True)
class ActionTransform:
    """Network output -> joint target, in this order:

    1. a = clip(input_scale * raw, -input_clip, input_clip)   (no clip if input_clip is null)
    2. target = default_joint_pos + scale * a                 (absolute)
              = limits_from_unit(a) with the policy's limits   (unscale_limits; scale ignored)
              = previous target + scale * a                    (delta_previous_target)
              = measured position + scale * a                  (delta_measured)
    3. target = ema_alpha * target + (1 - ema_alpha) * previous target   (Isaac Lab convention)
    4. clip to the policy's limits, then always to the hand's limits.
    """

    output: str
    mode: ActionModeV2
    scale: tuple[float, ...] = (1.0,)
    input_scale: float = 1.0
    input_clip: float | None = None
    default_joint_pos: tuple[float, ...] = ()
    ema_alpha: float = 1.0


@dataclass(frozen=True)
class PolicyContractV2:
    contract_version: int
    joint_names: tuple[str, ...]
    control_rate_hz: float
    terms: tuple[ObservationTerm, ...]
    inputs: tuple[InputSpec, ...]
    action: ActionTransform
    outputs: tuple[OutputSpec, ...]
    joint_aliases: dict[str, str] = field(default_factory=dict)
    joint_limits: JointLimits | None = None
    frame: FrameTransform = field(default_factory=FrameTransform)
    recurrent_inputs: tuple[RecurrentInputSpec, ...] = ()
    recurrent_state: tuple[RecurrentStateSpec, ...] = ()
    segmentation_config_hash: str = ""
    goal_object: str = ""                     # goal_points: whose canonical points
    name: str = ""
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------- JSON
    def to_mapping(self) -> dict[str, Any]:
        data = to_dict(dataclasses.replace(self, terms=()))
        data["terms"] = [t.to_mapping() for t in self.terms]
        return data

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_mapping(), indent=indent)

    @classmethod
    def from_mapping(cls, data: Any) -> "PolicyContractV2":
        if not isinstance(data, Mapping):
            raise ContractError("(json)", f"expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        if data.get("contract_version") != CONTRACT_VERSION_2:
            raise ContractError("contract_version", f"{data.get('contract_version')!r} is not 2")
        raw_terms = data.pop("terms", None)
        if not isinstance(raw_terms, list) or not raw_terms:
            raise ContractError("terms", "missing or empty: a v2 contract lists its observation terms")
        try:
            terms = tuple(parse_term(t, f"terms[{i}]") for i, t in enumerate(raw_terms))
        except TermError as exc:
            raise ContractError("terms", str(exc)) from None
        action = data.get("action")
        if isinstance(action, Mapping) and isinstance(action.get("scale"), (int, float)) \
                and not isinstance(action.get("scale"), bool):
            data["action"] = {**action, "scale": [float(action["scale"])]}
        try:
            contract = from_dict(cls, {**data, "terms": []})
        except ConfigError as exc:
            text = str(exc)
            where, _, detail = text.partition(": ")
            raise ContractError(where.replace("PolicyContractV2", "(top level)"), detail or text) from None
        contract = dataclasses.replace(contract, terms=terms)
        contract.validate()
        return contract

    @classmethod
    def from_json(cls, text: str) -> "PolicyContractV2":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ContractError("(json)", f"not valid JSON: {exc}") from None
        return cls.from_mapping(data)

    def with_provenance(self, **entries: Any) -> "PolicyContractV2":
        return dataclasses.replace(self, provenance={**self.provenance, **entries})

    # ---------------------------------------------------------- lookups
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def term(self, name: str) -> ObservationTerm:
        return next(t for t in self.terms if t.name == name)

    def input_shape(self, spec: InputSpec) -> tuple[int, ...]:
        j = self.num_joints
        if not spec.flatten and len(spec.terms) == 1:
            return (1, *self.term(spec.terms[0]).shape(j))
        return (1, sum(self.term(t).size(j) for t in spec.terms))

    @property
    def sources(self) -> tuple[str, ...]:
        """What the runtime must receive: joint states always, plus each term's sources."""
        wanted = {"joint_states"}
        for t in self.terms:
            wanted.update(t.sources)
        from .terms import SOURCES
        return tuple(s for s in SOURCES if s in wanted)

    def term_kinds(self) -> set[str]:
        return {t.kind for t in self.terms}

    @property
    def history_window(self) -> int:
        return max([t.window for t in self.terms] + [1])

    def action_output(self) -> OutputSpec:
        return next(o for o in self.outputs if o.name == self.action.output)

    @property
    def num_points(self) -> int:
        for t in self.terms:
            if t.kind == "object_points":
                return int(t.params.num_points)
        return 0

    # ------------------------------------------------------- validation
    def validate(self) -> None:
        j = self.num_joints
        if j == 0:
            raise ContractError("joint_names", "empty")
        dups = sorted({n for n in self.joint_names if self.joint_names.count(n) > 1})
        if dups:
            raise ContractError("joint_names", f"duplicated names {dups}")
        if not (math.isfinite(self.control_rate_hz) and 0 < self.control_rate_hz <= 1000):
            raise ContractError("control_rate_hz", f"{self.control_rate_hz} is not in (0, 1000] Hz")
        for alias, target in self.joint_aliases.items():
            if not isinstance(alias, str) or not isinstance(target, str) or not alias or not target:
                raise ContractError("joint_aliases", f"{alias!r}: {target!r} must map a name to a name")
        if self.joint_limits is not None:
            lim = self.joint_limits
            for which, values in (("lower", lim.lower), ("upper", lim.upper)):
                if len(values) != j:
                    raise mismatch(f"joint_limits.{which}", f"{len(values)} values", "joint_names", f"{j} joints")
                if not all(math.isfinite(v) for v in values):
                    raise ContractError(f"joint_limits.{which}", "contains NaN or inf")
            bad = [self.joint_names[k] for k in range(j) if not lim.lower[k] < lim.upper[k]]
            if bad:
                raise ContractError("joint_limits", f"lower must be below upper for every joint; not for {bad}")
        for name, values in (("translation", self.frame.translation), ("rotation_wxyz", self.frame.rotation_wxyz)):
            if not all(math.isfinite(v) for v in values):
                raise ContractError(f"frame.{name}", "contains NaN or inf")
        norm = math.sqrt(sum(v * v for v in self.frame.rotation_wxyz))
        if abs(norm - 1.0) > 1e-6:
            raise ContractError("frame.rotation_wxyz", f"must be a unit quaternion, norm is {norm:.6g}")
        self._validate_terms_and_inputs()
        self._validate_action()
        self._validate_outputs()

    def _validate_terms_and_inputs(self) -> None:
        names = [t.name for t in self.terms]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ContractError("terms", f"duplicated term names {dups}")
        if not self.inputs:
            raise ContractError("inputs", "empty: at least one graph input must carry terms")
        used: list[str] = []
        input_names = [s.name for s in self.inputs] + [r.name for r in self.recurrent_inputs]
        dups = sorted({n for n in input_names if input_names.count(n) > 1})
        if dups:
            raise ContractError("inputs", f"duplicated input names {dups}")
        for spec in self.inputs:
            where = f"inputs['{spec.name}']"
            if not spec.terms:
                raise ContractError(f"{where}.terms", "empty")
            unknown = [t for t in spec.terms if t not in names]
            if unknown:
                raise ContractError(f"{where}.terms", f"{unknown} are not terms of this contract ({names})")
            if not spec.flatten and len(spec.terms) != 1:
                raise ContractError(f"{where}.flatten", "false needs exactly one term (terms are concatenated "
                                                        "flat)")
            used += list(spec.terms)
            if spec.normalizer is not None:
                self._validate_normalizer(spec, where)
        unused = [n for n in names if n not in used]
        if unused:
            raise ContractError("terms", f"{unused} are not fed to any input")
        twice = sorted({n for n in used if used.count(n) > 1})
        if twice:
            raise ContractError("inputs", f"terms {twice} are fed more than once")
        kinds = self.term_kinds()
        if "object_points" in kinds and not self.segmentation_config_hash:
            raise ContractError("segmentation_config_hash", "empty, but an object_points term is present (the "
                                                            "cloud must come from the segmentation it was "
                                                            "trained with)")
        if "goal_points" in kinds and not self.goal_object:
            raise ContractError("goal_object", "empty, but a goal_points term is present")

    def _validate_normalizer(self, spec: InputSpec, where: str) -> None:
        norm = spec.normalizer
        shape = self.input_shape(spec)[1:]
        sizes = {1, shape[-1], int(np.prod(shape))}
        for name, values in (("mean", norm.mean), ("std", norm.std)):
            if len(values) not in sizes:
                raise mismatch(f"{where}.normalizer.{name}", f"{len(values)} values", "the input",
                               f"shape {list(shape)}: 1, {shape[-1]} or {int(np.prod(shape))} values")
            if not all(math.isfinite(v) for v in values):
                raise ContractError(f"{where}.normalizer.{name}", "contains NaN or inf")
        if not (math.isfinite(norm.epsilon) and norm.epsilon >= 0):
            raise ContractError(f"{where}.normalizer.epsilon", f"must be finite and >= 0, got {norm.epsilon}")
        zero = [k for k, s in enumerate(norm.std) if s * s + norm.epsilon <= 0]
        if zero:
            raise ContractError(f"{where}.normalizer.std", f"zero (with epsilon {norm.epsilon:g}) at positions "
                                                           f"{zero[:8]}{' ...' if len(zero) > 8 else ''}: the "
                                                           "normalised input would be infinite")
        if any(s < 0 for s in norm.std):
            raise ContractError(f"{where}.normalizer.std", "negative values")
        for name in ("clip", "clip_input"):
            value = getattr(norm, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ContractError(f"{where}.normalizer.{name}", f"must be > 0 or null, got {value}")

    def _validate_action(self) -> None:
        a, j = self.action, self.num_joints
        if len(a.scale) not in (1, j):
            raise mismatch("action.scale", f"{len(a.scale)} values", "joint_names", f"{j} joints (or 1)")
        if not all(math.isfinite(v) and v != 0 for v in a.scale):
            raise ContractError("action.scale", f"must be finite and non-zero, got {list(a.scale)}")
        if not (math.isfinite(a.input_scale) and a.input_scale != 0):
            raise ContractError("action.input_scale", f"must be finite and non-zero, got {a.input_scale}")
        if a.input_clip is not None and not (math.isfinite(a.input_clip) and a.input_clip > 0):
            raise ContractError("action.input_clip", f"must be > 0 or null, got {a.input_clip}")
        if not (math.isfinite(a.ema_alpha) and 0.0 < a.ema_alpha <= 1.0):
            raise ContractError("action.ema_alpha", f"{a.ema_alpha} is not in (0, 1] (1 = no moving average)")
        if a.mode == "absolute":
            if len(a.default_joint_pos) != j:
                raise mismatch("action.default_joint_pos", f"{len(a.default_joint_pos)} values", "joint_names",
                               f"{j} joints (mode 'absolute' needs the default pose)")
        elif a.default_joint_pos:
            raise ContractError("action.default_joint_pos", f"only used by mode 'absolute', not '{a.mode}'")
        if not all(math.isfinite(v) for v in a.default_joint_pos):
            raise ContractError("action.default_joint_pos", "contains NaN or inf")

    def _validate_outputs(self) -> None:
        names = [o.name for o in self.outputs]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ContractError("outputs", f"duplicated names {dups}")
        for o in self.outputs:
            if not o.shape or any(d <= 0 for d in o.shape) or o.shape[0] != 1:
                raise ContractError(f"outputs['{o.name}'].shape",
                                    f"{list(o.shape)}: need positive static dims with batch 1 first")
        actions = [o for o in self.outputs if o.meaning == "action"]
        if len(actions) != 1 or actions[0].name != self.action.output:
            raise ContractError("action.output", f"'{self.action.output}' must be the one output with meaning "
                                                 f"'action' (outputs: {[(o.name, o.meaning) for o in self.outputs]})")
        if tuple(actions[0].shape) != (1, self.num_joints):
            raise mismatch(f"outputs['{actions[0].name}'].shape", list(actions[0].shape), "joint_names",
                           [1, self.num_joints])
        rec_in = {r.name: r for r in self.recurrent_inputs}
        rec_out = {o.name: o for o in self.outputs if o.meaning == "recurrent_state"}
        used_in, used_out = set(), set()
        for i, pair in enumerate(self.recurrent_state):
            where = f"recurrent_state[{i}]"
            if pair.input not in rec_in:
                raise ContractError(f"{where}.input", f"'{pair.input}' is not in recurrent_inputs {sorted(rec_in)}")
            if pair.output not in rec_out:
                raise ContractError(f"{where}.output", f"'{pair.output}' is not an output with meaning "
                                                       f"'recurrent_state' ({sorted(rec_out)})")
            if tuple(rec_in[pair.input].shape) != tuple(rec_out[pair.output].shape):
                raise mismatch(where, f"input shape {list(rec_in[pair.input].shape)}", "its output",
                               f"shape {list(rec_out[pair.output].shape)}")
            used_in.add(pair.input)
            used_out.add(pair.output)
        if set(rec_in) != used_in or set(rec_out) != used_out:
            raise ContractError("recurrent_state", f"unpaired recurrent tensors: inputs "
                                                   f"{sorted(set(rec_in) - used_in)}, outputs "
                                                   f"{sorted(set(rec_out) - used_out)}")

    # ---------------------------------------------------- graph check
    def graph_inputs(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(s.name, self.input_shape(s)) for s in self.inputs] + \
               [(r.name, tuple(r.shape)) for r in self.recurrent_inputs]

    def check_graph_io(self, graph_inputs: Sequence[GraphTensor], graph_outputs: Sequence[GraphTensor]) -> None:
        """Names, shapes and dtypes of the graph must equal the contract's (symbolic dims accept any value)."""
        declared_in = dict(self.graph_inputs())
        declared_out = {o.name: tuple(o.shape) for o in self.outputs}
        for kind, declared, tensors in (("inputs", declared_in, graph_inputs), ("outputs", declared_out,
                                                                                  graph_outputs)):
            graph = {t.name: t for t in tensors}
            for name, shape in declared.items():
                tensor = graph.get(name)
                if tensor is None:
                    raise ContractError(f"{kind}['{name}']", f"declared by the contract but not among the model "
                                                             f"graph's {kind} {sorted(graph)}")
                if len(tensor.shape) != len(shape) or any(
                        isinstance(g, int) and g != c for g, c in zip(tensor.shape, shape)):
                    raise mismatch(f"{kind}['{name}'].shape", list(shape), "the model graph", list(tensor.shape))
                if tensor.dtype != "float32":
                    raise mismatch(f"{kind}['{name}'].dtype", "float32", "the model graph", tensor.dtype)
            extra = sorted(set(graph) - set(declared))
            if extra and kind == "inputs":
                raise ContractError(kind, f"the model graph has inputs {extra} that the contract does not declare "
                                          f"(contract declares {sorted(declared)})")
            if extra:
                raise ContractError(kind, f"the model graph has outputs {extra} that the contract does not "
                                          f"declare; declare them (meaning 'ignored' if unused)")

    # ---------------------------------------------------------- table
    def table(self) -> str:
        """Human-readable summary (printed by import/attach/info)."""
        j = self.num_joints
        lines = [f"contract v2: {self.name or '(unnamed)'}  {self.control_rate_hz:g} Hz, {j} joints",
                 f"joint order: {', '.join(self.joint_names)}"]
        if self.joint_aliases:
            lines.append("joint names map to the hand by: " + ", ".join(
                f"{k}->{v}" for k, v in list(self.joint_aliases.items())[:6]) +
                (" ..." if len(self.joint_aliases) > 6 else ""))
        lines.append(f"{'input':<14}{'offset':>7}{'dims':>6}  term")
        for spec in self.inputs:
            offset = 0
            shape = self.input_shape(spec)
            norm = spec.normalizer
            if norm is not None:
                ntext = f"normaliser: {len(norm.mean)} means, eps {norm.epsilon:g}, clip {norm.clip}"
            else:
                ntext = spec.description or "no normaliser in the contract"
            lines.append(f"{spec.name:<14}{'':>7}{'':>6}  shape {list(shape)}, {ntext}")
            for name in spec.terms:
                t = self.term(name)
                size = t.size(j)
                lines.append(f"{'':<14}{offset:>7}{size:>6}  {name}: {t.describe()}")
                offset += size
        for r in self.recurrent_inputs:
            pair = next((p for p in self.recurrent_state if p.input == r.name), None)
            fed = (f", fed back from output '{pair.output}', starts at {pair.initial_value:g}, reset with the "
                   "history") if pair is not None else ""
            lines.append(f"{r.name:<14}{'':>7}{int(np.prod(r.shape)):>6}  recurrent state {list(r.shape)}{fed}")
        a = self.action
        scale = a.scale[0] if len(set(a.scale)) == 1 else list(a.scale)
        lines.append(f"action '{a.output}': mode {a.mode}, scale {scale}, input clip {a.input_clip}, "
                     f"input scale {a.input_scale:g}, EMA alpha {a.ema_alpha:g}")
        if self.frame != FrameTransform():
            lines.append(f"policy frame: palm at {list(self.frame.translation)}, rotation (wxyz) "
                         f"{list(self.frame.rotation_wxyz)}")
        lines.append(f"sources needed: {', '.join(self.sources)}")
        return "\n".join(lines)
