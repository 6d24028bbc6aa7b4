"""torch module + contract -> a checked, self-describing ONNX student file.

A file is written only if every check passes: the contract is consistent,
the module is deterministic and returns the contract's output shapes, the
graph passes ``onnx.checker`` and declares exactly the contract's inputs and
outputs, and onnxruntime agrees with torch eager on seeded random inputs
(max |diff| <= tolerance). Anything else raises :class:`ExportError` and
leaves the output path untouched.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from .. import __version__
from ..paths import write_bytes_atomically
from .contract import ContractError, PolicyContract, attach_contract, check_graph_io, sample_inputs
from .runtime import PolicyError, make_session, session_io

DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-5


class ExportError(RuntimeError):
    """The module/contract pair cannot be exported faithfully; nothing was written."""


@dataclass(frozen=True)
class ExportReport:
    path: Path | None
    size_bytes: int
    max_abs_diff: float
    trials: int
    opset: int
    contract: PolicyContract


def _torch_outputs(module: torch.nn.Module, contract: PolicyContract, feeds: dict[str, np.ndarray]
                   ) -> dict[str, np.ndarray]:
    args = tuple(torch.from_numpy(feeds[s.name].copy()) for s in contract.inputs)
    with torch.inference_mode():
        result = module(*args)
    if isinstance(result, torch.Tensor):
        result = (result,)
    result = tuple(result)
    if len(result) != len(contract.outputs):
        raise ExportError(f"contract 'outputs' declares {len(contract.outputs)} outputs "
                          f"{[o.name for o in contract.outputs]}, the module returns {len(result)}")
    return {spec.name: r.detach().cpu().numpy() for spec, r in zip(contract.outputs, result)}


def export_to_bytes(module: torch.nn.Module, contract: PolicyContract, *, opset: int = DEFAULT_OPSET,
                    trials: int = 8, tolerance: float = DEFAULT_TOLERANCE, seed: int = 0
                    ) -> tuple[bytes, ExportReport]:
    """Export and verify in memory; raises ExportError naming the failed check."""
    try:
        contract.validate()
    except ContractError as exc:
        raise ExportError(f"contract is inconsistent: {exc}") from None
    module = module.eval()
    rng = np.random.default_rng(seed)
    example = sample_inputs(contract, rng)
    try:
        first = _torch_outputs(module, contract, example)
        second = _torch_outputs(module, contract, example)
    except ExportError:
        raise
    except Exception as exc:  # shape errors inside the module etc.
        raise ExportError(f"module forward failed on inputs shaped as the contract declares "
                          f"{[(s.name, list(s.shape)) for s in contract.inputs]}: {exc}") from None
    for spec in contract.outputs:
        got = list(first[spec.name].shape)
        if got != list(spec.shape):
            raise ExportError(f"contract field 'outputs['{spec.name}'].shape': contract has {list(spec.shape)}, "
                              f"the module returns {got}")
        if first[spec.name].dtype != np.float32:
            raise ExportError(f"contract field 'outputs['{spec.name}'].dtype': contract has 'float32', "
                              f"the module returns {first[spec.name].dtype}")
        if not np.array_equal(first[spec.name], second[spec.name], equal_nan=True):
            diff = float(np.nanmax(np.abs(first[spec.name] - second[spec.name])))
            raise ExportError(f"module is not deterministic: two forward passes on the same inputs differ "
                              f"(output '{spec.name}', max |diff| {diff:.3g}); random ops or train-mode "
                              "layers cannot be exported")

    buffer = io.BytesIO()
    args = tuple(torch.from_numpy(example[s.name].copy()) for s in contract.inputs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, buffer, dynamo=False, opset_version=opset,
                              input_names=[s.name for s in contract.inputs],
                              output_names=[s.name for s in contract.outputs],
                              do_constant_folding=True, export_params=True)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed: {exc}") from None

    model = onnx.load_from_string(buffer.getvalue())
    stamped = contract.with_provenance(exporter=f"dexterity_ros {__version__}", torch=torch.__version__,
                                       onnx=onnx.__version__, opset=opset)
    attach_contract(model, stamped)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"onnx.checker rejected the graph: {exc}") from None

    try:
        session = make_session(model.SerializeToString(), intra_op_threads=1)
        check_graph_io(contract, *session_io(session))
    except (PolicyError, ContractError) as exc:
        raise ExportError(f"exported graph does not match the contract: {exc}") from None

    worst, worst_where = 0.0, ""
    output_names = [o.name for o in contract.outputs]
    for trial in range(trials):
        feeds = example if trial == 0 else sample_inputs(contract, rng)
        expected = _torch_outputs(module, contract, feeds)
        got = dict(zip(output_names, session.run(output_names, feeds)))
        for name in output_names:
            if got[name].shape != expected[name].shape:
                raise ExportError(f"onnxruntime output '{name}' has shape {list(got[name].shape)}, torch "
                                  f"{list(expected[name].shape)} (trial {trial})")
            if not (np.all(np.isfinite(got[name])) and np.all(np.isfinite(expected[name]))):
                raise ExportError(f"output '{name}' is not finite on random inputs (trial {trial}); "
                                  "parity cannot be checked")
            diff = float(np.max(np.abs(got[name].astype(np.float64) - expected[name])))
            if diff > worst:
                worst, worst_where = diff, f"output '{name}', trial {trial}"
            if diff > tolerance:
                raise ExportError(f"onnxruntime and torch disagree: max |diff| {diff:.3g} > tolerance "
                                  f"{tolerance:g} ({worst_where}); the graph does not compute what the "
                                  "module does (data-dependent Python control flow? unsupported op?)")
    final = stamped.with_provenance(parity_max_abs_diff=float(f"{worst:.3g}"), parity_trials=trials)
    attach_contract(model, final)
    data = model.SerializeToString()
    return data, ExportReport(None, len(data), worst, trials, opset, final)


def export_policy(module: torch.nn.Module, contract: PolicyContract, output: str | Path, **kwargs
                  ) -> ExportReport:
    """Export, verify, then write ``output`` atomically (nothing is written on failure)."""
    data, report = export_to_bytes(module, contract, **kwargs)
    output = write_bytes_atomically(output, data)
    return ExportReport(output, report.size_bytes, report.max_abs_diff, report.trials, report.opset,
                        report.contract)
