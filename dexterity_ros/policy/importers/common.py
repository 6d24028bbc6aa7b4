"""Helpers shared by the importers: reading ONNX models and torch checkpoints safely, size checks that
name the difference, poses and limits from options, atomic writes, ONNX from torch."""
from __future__ import annotations

import hashlib
import io
import math
import pickle
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...paths import write_bytes_atomically
from . import ImportRefused

NORMALISER_OPS = {"Sub", "Add", "Div", "Mul"}    # ops of an in-graph (x - mean) / std
RMS_EPSILON = 1e-5     # rl_games and HORA RunningMeanStd: (x - mean) / sqrt(var + 1e-5), clamped to +-5
RMS_CLIP = 5.0


def check_size(what: str, expected: int, got: int, hint: str = "") -> None:
    """Refuse a model whose input/output size disagrees with the preset, naming both."""
    if expected != got:
        raise ImportRefused(f"{what}: the preset expects {expected}, the model has {got}"
                            + (f" ({hint})" if hint else ""))


def torch_to_onnx(module, input_shapes: dict[str, Sequence[int]], output_names: list[str], opset: int = 17):
    """Export a torch module (legacy exporter, static shapes, batch 1) to an onnx.ModelProto."""
    import onnx
    import torch

    buffer = io.BytesIO()
    args = tuple(torch.zeros(*shape) for shape in input_shapes.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, buffer, dynamo=False, opset_version=opset,
                          input_names=list(input_shapes), output_names=output_names)
    return onnx.load_from_string(buffer.getvalue())


def write_model_atomically(model, output: str | Path) -> Path:
    """Serialize an onnx.ModelProto to ``output`` (temp file + rename: nothing half-written on failure)."""
    return write_bytes_atomically(output, model.SerializeToString())


# ----------------------------------------------------- ONNX models (Isaac Lab, Playground)
def read_onnx_model(path: str | Path, what: str):
    """An ``onnx.ModelProto`` from ``path``, or ImportRefused saying why it is not one."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:   # DecodeError, ValidationError, external data errors: all mean "not usable ONNX"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportRefused(f"{path} is not a valid ONNX model ({type(exc).__name__}: {first[:200]}); this "
                            f"preset reads {what}") from None
    if not model.graph.input or not model.graph.output or not model.graph.node:
        raise ImportRefused(f"{path} is not an ONNX policy (its graph has no nodes, inputs or outputs); this "
                            f"preset reads {what}")
    return model


def _shape_text(shape: Sequence) -> str:
    return "(" + ", ".join(str(d) if d is not None else "?" for d in shape) + ")"


def check_single_io(model, input_name: str, input_size: int | None, output_name: str, output_size: int,
                    what: str) -> int:
    """Check one float32 input ``input_name`` (1, D) and one output ``output_name`` (1, output_size).

    Returns D. Refuses naming the difference (names, ranks, sizes); a symbolic
    batch dimension is accepted, a symbolic feature dimension is not.
    """
    from ..loading import graph_io

    inputs, outputs = graph_io(model)
    got_in = ", ".join(f"'{t.name}' {_shape_text(t.shape)}" for t in inputs)
    got_out = ", ".join(f"'{t.name}' {_shape_text(t.shape)}" for t in outputs)
    expected = f"one input '{input_name}' (1, D) and one output '{output_name}' (1, {output_size}) ({what})"
    if [t.name for t in inputs] != [input_name] or [t.name for t in outputs] != [output_name]:
        extra = ""
        if len(inputs) > 1 and inputs[0].name == input_name:
            extra = "; recurrent exports (extra state inputs such as h_in/c_in) are not supported by this preset"
        raise ImportRefused(f"the model has inputs {got_in} and outputs {got_out}; the preset expects {expected}"
                            + extra)
    tin, tout = inputs[0], outputs[0]
    for tensor in (tin, tout):
        if tensor.dtype != "float32":
            raise ImportRefused(f"'{tensor.name}' is {tensor.dtype}; the preset expects float32")
        if len(tensor.shape) != 2 or tensor.shape[0] not in (1, None) and not isinstance(tensor.shape[0], str):
            raise ImportRefused(f"'{tensor.name}' has shape {_shape_text(tensor.shape)}; the preset expects "
                                f"(1, N) (batch first)")
    size = tin.shape[1]
    if not isinstance(size, int):
        raise ImportRefused(f"input '{input_name}' has a symbolic size {size!r}; the preset needs a static "
                            "observation size to check the layout")
    from .common import check_size
    if input_size is not None:
        check_size(f"input '{input_name}' size", input_size, size)
    if not isinstance(tout.shape[1], int):
        raise ImportRefused(f"output '{output_name}' has a symbolic size {tout.shape[1]!r}; the preset expects "
                            f"{output_size} (one per joint)")
    check_size(f"output '{output_name}' size (one action per joint)", output_size, tout.shape[1])
    return size


def input_consumers(model, input_name: str) -> list[str]:
    """Op types of the nodes reading ``input_name`` directly (where a baked-in normaliser would start)."""
    return sorted({n.op_type for n in model.graph.node if input_name in n.input})


def normaliser_note(model, input_name: str, exporter: str, consequence: str) -> str:
    """A note saying whether the graph starts with a normaliser-like op on the input (a heuristic)."""
    ops = input_consumers(model, input_name)
    if ops and set(ops) <= NORMALISER_OPS:
        return (f"normaliser: the graph starts with {'/'.join(ops)} on '{input_name}', as {exporter} writes the "
                "observation normaliser into the graph; the contract adds none")
    return (f"⚠ normaliser: the graph reads '{input_name}' directly with {'/'.join(ops) or 'nothing'}, not with a "
            f"subtraction/scaling: {exporter} puts the observation normaliser inside the graph, so this export "
            f"probably lacks it ({consequence}). If the policy was trained without observation normalisation, "
            "ignore this")


def probe_finite(model, input_name: str, input_size: int, output_name: str) -> None:
    """One inference on a zero observation must give finite actions (a NaN/inf model is refused)."""
    from ..runtime import make_session

    try:
        session = make_session(model.SerializeToString(), 1)
        out = session.run([output_name], {input_name: np.zeros((1, input_size), dtype=np.float32)})[0]
    except Exception as exc:   # PolicyError from make_session, onnxruntime errors
        raise ImportRefused(f"the model cannot run in onnxruntime: {exc}") from None
    if not np.all(np.isfinite(out)):
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise ImportRefused(f"the model's output '{output_name}' has {bad} NaN/inf values on a zero observation; "
                            "a model that outputs NaN cannot drive the hand")


def parse_pose(values: Sequence[float] | None, default_xyz: Sequence[float], default_quat: Sequence[float],
               quat_order: str, option: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``X Y Z Q1 Q2 Q3 Q4`` (quaternion in ``quat_order``) -> (translation, unit rotation wxyz)."""
    if values is None:
        xyz, quat = tuple(default_xyz), tuple(default_quat)
    else:
        if len(values) != 7:
            raise ImportRefused(f"{option}: expected 7 numbers (x y z and a quaternion), got {len(values)}")
        xyz, quat = tuple(float(v) for v in values[:3]), tuple(float(v) for v in values[3:])
    if not all(math.isfinite(v) for v in (*xyz, *quat)):
        raise ImportRefused(f"{option}: NaN or inf in {list(xyz) + list(quat)}")
    wxyz = quat if quat_order == "wxyz" else (quat[3], quat[0], quat[1], quat[2])
    norm = math.sqrt(sum(v * v for v in wxyz))
    if abs(norm - 1.0) > 1e-2:
        raise ImportRefused(f"{option}: the quaternion {list(quat)} ({quat_order}) has norm {norm:.4g}; give a "
                            "unit quaternion")
    return xyz, tuple(v / norm for v in wxyz)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def load_limits_file(path: str | Path, joint_names: Sequence[str], aliases: dict[str, str]
                     ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Joint limits from YAML/JSON: ``{lower: [...], upper: [...]}`` in the policy's joint order, or one
    ``name: [lower, upper]`` per joint (upstream names or the hand's canonical names)."""
    from ...config import ConfigError, load_yaml

    path = Path(path)
    try:
        data = load_yaml(path)
    except (OSError, ConfigError, ValueError) as exc:
        raise ImportRefused(f"--joint-limits {path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise ImportRefused(f"--joint-limits {path}: expected a mapping, got {type(data).__name__}")
    n = len(joint_names)
    if set(data) == {"lower", "upper"}:
        lower, upper = data["lower"], data["upper"]
        if not (isinstance(lower, list) and isinstance(upper, list) and len(lower) == n and len(upper) == n):
            raise ImportRefused(f"--joint-limits {path}: 'lower' and 'upper' must each list {n} numbers in the "
                                f"policy's joint order ({', '.join(joint_names)})")
    else:
        reverse = {v: k for k, v in aliases.items()}
        by_name = {}
        for key, value in data.items():
            name = key if key in joint_names else reverse.get(key)
            if name is None:
                raise ImportRefused(f"--joint-limits {path}: unknown joint '{key}'; use {list(joint_names)} or "
                                    f"{[aliases[j] for j in joint_names]}")
            if not (isinstance(value, list) and len(value) == 2):
                raise ImportRefused(f"--joint-limits {path}: '{key}' must be [lower, upper]")
            by_name[name] = value
        missing = [j for j in joint_names if j not in by_name]
        if missing:
            raise ImportRefused(f"--joint-limits {path}: no limits for {missing}")
        lower = [by_name[j][0] for j in joint_names]
        upper = [by_name[j][1] for j in joint_names]
    try:
        lower, upper = tuple(float(v) for v in lower), tuple(float(v) for v in upper)
    except (TypeError, ValueError):
        raise ImportRefused(f"--joint-limits {path}: limits must be numbers") from None
    bad = [joint_names[k] for k in range(n) if not (math.isfinite(lower[k]) and math.isfinite(upper[k])
                                                    and lower[k] < upper[k])]
    if bad:
        raise ImportRefused(f"--joint-limits {path}: need finite lower < upper for {bad}")
    return lower, upper


def hand_limits(joint_names: Sequence[str], aliases: dict[str, str]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The packaged hand description's limits, in the policy's joint order (through the aliases)."""
    from ...hand_model import default_hand

    hand = default_hand()
    table = hand.aliases()
    index = [table[aliases.get(j, j)] for j in joint_names]
    return tuple(float(hand.lower[i]) for i in index), tuple(float(hand.upper[i]) for i in index)


# ------------------------------------------------- torch checkpoints (rl_games, HORA)
def _numpy_safe_globals() -> list:
    """The numpy objects rl_games' own ``torch_ext.safe_load`` allows (scalars in stats entries)."""
    names = []
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    scalar = getattr(getattr(core, "multiarray", None), "scalar", None)
    if scalar is not None:
        names.append(scalar)
    names.append(np.dtype)
    for dtype_name in ("Float64DType", "Float32DType", "Int64DType"):
        cls = getattr(getattr(np, "dtypes", None), dtype_name, None)
        if cls is not None:
            names.append(cls)
    return names


def _unpickler_detail(exc: Exception) -> str:
    """The informative line of torch's weights-only error (after 'WeightsUnpickler error:')."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
        text = text.split("Check the documentation", 1)[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def load_checkpoint(path: Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` (plus the numpy scalars rl_games allows), or ImportRefused.

    Never unpickles arbitrary objects: a checkpoint that needs more than tensors, containers and numpy
    scalars is refused with the global it asks for.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "Unsupported global" not in str(exc) or not hasattr(torch.serialization, "safe_globals"):
                raise
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(exc)
        if "Unsupported global" in str(exc):
            raise ImportRefused(f"{path}: the checkpoint pickles objects other than tensors, containers and numpy "
                                f"scalars, which this importer will not unpickle ({detail}); re-save the part "
                                "needed, e.g. torch.save({'model': ckpt['model']}, 'policy.pth')") from None
        raise ImportRefused(f"{path}: not a PyTorch checkpoint ({what} expected): {detail}") from None
    except Exception as exc:   # zip/pickle/EOF errors of a file that is not a checkpoint
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ImportRefused(f"{path}: not a PyTorch checkpoint ({what} expected): "
                            f"{type(exc).__name__}{': ' + text if text else ''}") from None


def strip_compile_prefix(state: Mapping) -> dict:
    """rl_games ``torch_ext._strip_compile_prefix``: torch.compile saves keys as ``..._orig_mod....``."""
    return {(k.replace("_orig_mod.", "") if isinstance(k, str) else k): v for k, v in state.items()}


def describe_keys(keys, limit: int = 12) -> str:
    keys = sorted(str(k) for k in keys)
    return f"{keys[:limit]}{f' ... ({len(keys)} in all)' if len(keys) > limit else ''}"


def as_array(value, what: str) -> np.ndarray:
    try:
        return np.asarray(value.detach().cpu().double().numpy() if hasattr(value, "detach") else value,
                          dtype=np.float64)
    except Exception as exc:
        raise ImportRefused(f"{what}: not a numeric tensor ({type(value).__name__}: {exc})") from None


def normalizer_from_stats(mean: np.ndarray, var: np.ndarray, what: str, clip_input: float | None) -> dict:
    """RunningMeanStd statistics -> the contract normaliser (std = sqrt(var), epsilon 1e-5, clip 5)."""
    mean, var = np.asarray(mean, dtype=np.float64).ravel(), np.asarray(var, dtype=np.float64).ravel()
    for name, values in ((f"{what}.running_mean", mean), (f"{what}.running_var", var)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ImportRefused(f"{name}: NaN or inf at positions {bad[:8].tolist()}")
    negative = np.flatnonzero(var < 0)
    if negative.size:
        raise ImportRefused(f"{what}.running_var: negative variance at positions {negative[:8].tolist()} "
                            f"(values {var[negative[:4]].tolist()}): not a RunningMeanStd")
    return {"mean": mean.tolist(), "std": np.sqrt(var).tolist(), "epsilon": RMS_EPSILON, "clip": RMS_CLIP,
            "clip_input": clip_input}


def checkpoint_contract(spec: Mapping[str, Any]):
    """The contract-v2 of an importer's ``spec``; a spec the checkpoint made invalid is refused, with why."""
    from ..contract import ContractError
    from ..contract_v2 import PolicyContractV2

    try:
        return PolicyContractV2.from_mapping(spec)
    except ContractError as exc:
        raise ImportRefused(f"the contract built from this checkpoint is invalid: {exc}") from None
