"""Helpers shared by the importers: size checks that name the difference, atomic writes, ONNX from torch."""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

from . import ImportRefused


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
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(model.SerializeToString())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return output
