"""`dexterity-ros export`: torch module + contract -> a verified ONNX student file.

    dexterity-ros export --reference-student --seed 0 -o models/student.onnx
    dexterity-ros export --module my_pkg.nets:make_student --checkpoint ckpt.pt \\
        --contract contract.json -o student.onnx

Nothing is written unless onnx.checker passes and onnxruntime matches torch
(see dexterity_ros.policy.export).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a torch student + contract to a verified ONNX file",
        description="Export a torch policy with its contract to ONNX; refuses to write a file that fails "
                    "onnx.checker or onnxruntime-vs-torch parity.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference-student", action="store_true",
                        help="the untrained PointNet interface student (dexterity_ros.policy.networks)")
    source.add_argument("--module", metavar="PKG.MOD:CALLABLE",
                        help="callable returning a torch.nn.Module (used with --contract)")
    parser.add_argument("--checkpoint", type=Path, help="state_dict (torch.save) loaded into --module's module")
    parser.add_argument("--contract", type=Path, help="contract JSON file (required with --module)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--seed", type=int, default=0, help="weight seed of the reference student (default 0)")
    parser.add_argument("--perception-config", type=Path,
                        help="perception YAML giving num_points and the segmentation hash "
                             "(default: config/perception.yaml)")
    parser.add_argument("--history", type=int, default=3, help="reference student: action history length")
    parser.add_argument("--recurrent-size", type=int, default=0, help="reference student: recurrent state size")
    parser.add_argument("--action-mode", default="absolute",
                        choices=("absolute", "relative-to-previous-target", "relative-to-measured"),
                        help="reference student: action mode (default absolute)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="max |onnxruntime - torch| allowed on random inputs (default 1e-5)")
    parser.set_defaults(func=run)


def _load_callable(spec: str):
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"--module must look like package.module:callable, got '{spec}'")
    return getattr(importlib.import_module(module_name), attr)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..perception import load_perception_config
    from ..policy.contract import PolicyContract, PolicyError
    from ..policy.export import ExportError, export_policy

    try:
        if args.reference_student:
            from ..hand_model import default_hand
            from ..policy.networks import build_reference_student
            perception = load_perception_config(args.perception_config)
            module, contract = build_reference_student(
                args.seed, hand=default_hand(), perception=perception, history_length=args.history,
                recurrent_size=args.recurrent_size, action_mode=args.action_mode)
            contract = contract.with_provenance(
                command=f"dexterity-ros export --reference-student --seed {args.seed}"
                        + (f" --history {args.history}" if args.history != 3 else "")
                        + (f" --recurrent-size {args.recurrent_size}" if args.recurrent_size else "")
                        + (f" --action-mode {args.action_mode}" if args.action_mode != "absolute" else ""))
        else:
            if args.contract is None:
                print("error: --module needs --contract CONTRACT.json", file=sys.stderr)
                return 2
            contract = PolicyContract.from_json(args.contract.read_text(encoding="utf-8"))
            module = _load_callable(args.module)()
            if args.checkpoint is not None:
                import torch
                state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
                module.load_state_dict(state)
        report = export_policy(module, contract, args.output, opset=args.opset, tolerance=args.tolerance,
                               seed=args.seed)
    except (ExportError, PolicyError, ConfigError, ValueError, OSError, ImportError, AttributeError) as exc:
        print(f"export refused: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {report.path} ({report.size_bytes / 1024:.0f} KiB): onnx.checker ok, "
          f"onnxruntime vs torch max |diff| {report.max_abs_diff:.2g} over {report.trials} random inputs")
    print(f"contract: {report.contract.name or '(unnamed)'} v{report.contract.contract_version}, "
          f"{len(json.loads(report.contract.to_json())['inputs'])} inputs; see `dexterity-ros info {report.path}`")
    return 0
