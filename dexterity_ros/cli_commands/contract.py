"""`dexterity-ros contract attach|show`: write a contract v2 you specify into any ONNX policy; print one.

    dexterity-ros contract attach policy.onnx --spec contract.yaml            # -> policy.contract.onnx
    dexterity-ros contract attach policy.onnx --spec contract.json -o my.onnx
    dexterity-ros contract attach policy.onnx --spec contract.yaml --in-place
    dexterity-ros contract show policy.contract.onnx [--json]

``attach`` is for policies no import preset covers: SPEC is a YAML or JSON
file with the fields of a contract v2 (``docs/policy_contract.md``;
``contract_version: 2`` may be left out). The contract is validated, checked
against the graph (input/output names, shapes, dtypes) and against the hand
description (every joint name maps onto a hand joint), its table printed,
and the model with the contract is written atomically. The default output is
MODEL with the suffix ``.contract.onnx`` (``policy.onnx`` ->
``policy.contract.onnx``); the input is overwritten only with ``--in-place``.
Any refusal is one ``error:`` line, exit status 1, nothing written; usage
errors exit 2.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "contract", help="attach a contract v2 you write to an ONNX policy; show a model's contract",
        description="Contracts for policies no import preset covers: attach one written in YAML/JSON "
                    "(validated against the graph and the hand), or print a model's contract.")
    actions = parser.add_subparsers(dest="contract_command", metavar="ACTION")
    actions.required = True

    attach = actions.add_parser(
        "attach", help="validate a YAML/JSON contract v2 against MODEL and write MODEL with it",
        description="Validate SPEC (a contract v2 in YAML or JSON) against the model's graph and the hand "
                    "description, print its table, and write the model with the contract attached.")
    attach.add_argument("model", type=Path, metavar="MODEL.onnx", help="the ONNX policy")
    attach.add_argument("--spec", type=Path, required=True, metavar="SPEC.yaml",
                        help="contract v2 as YAML or JSON (fields in docs/policy_contract.md)")
    where = attach.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT.onnx",
                       help="file to write (default: MODEL with the suffix .contract.onnx)")
    where.add_argument("--in-place", action="store_true", help="replace MODEL itself (atomically)")
    attach.set_defaults(func=run_attach)

    show = actions.add_parser("show", help="print the contract of MODEL (either version)",
                              description="Print the contract table of an ONNX policy (v2), or its JSON.")
    show.add_argument("model", type=Path, metavar="MODEL.onnx")
    show.add_argument("--json", action="store_true", help="print the contract JSON")
    show.set_defaults(func=run_show)


def default_output(model: Path) -> Path:
    """``policy.onnx`` -> ``policy.contract.onnx`` (next to the input)."""
    return model.with_suffix(".contract.onnx") if model.suffix else model.with_name(model.name + ".contract.onnx")


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def load_spec(path: Path):
    """The contract v2 in a YAML/JSON file (ContractError/PolicyError naming what is wrong)."""
    from ..config import ConfigError, load_yaml
    from ..policy.contract import ContractError, PolicyError
    from ..policy.contract_v2 import CONTRACT_VERSION_2, PolicyContractV2

    if not path.is_file():
        raise PolicyError(f"--spec {path}: no such file")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = load_yaml(path)
    except (json.JSONDecodeError, ConfigError, UnicodeDecodeError) as exc:
        raise PolicyError(f"--spec {path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} "
                          f"({exc})") from None
    if not isinstance(data, dict):
        raise PolicyError(f"--spec {path}: expected a mapping of contract fields, got {type(data).__name__}")
    version = data.setdefault("contract_version", CONTRACT_VERSION_2)
    if version != CONTRACT_VERSION_2:
        raise ContractError("contract_version", f"{version!r}: `contract attach` writes version 2 contracts "
                                                "(version 1 student contracts are written by `dexterity-ros "
                                                "export`)")
    return PolicyContractV2.from_mapping(data)


def run_attach(args: argparse.Namespace) -> int:
    import onnx

    from ..hand_model import default_hand
    from ..policy.contract import METADATA_KEY, PolicyError
    from ..policy.importers.common import write_model_atomically
    from ..policy.loading import attach_contract_v2
    from ..policy.runtime_v2 import resolve_joint_order

    model_path: Path = args.model
    output = model_path if args.in_place else (args.output or default_output(model_path))
    if not args.in_place and output.resolve() == model_path.resolve():
        return _fail(f"-o {output} is the input model; pass --in-place to replace it", 2)
    if not model_path.is_file():
        return _fail(f"{model_path}: no such file")
    try:
        contract = load_spec(args.spec)
        try:
            model = onnx.load(str(model_path))
        except Exception as exc:   # DecodeError and friends
            raise PolicyError(f"{model_path} is not a readable ONNX model ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None
        replaced = any(p.key == METADATA_KEY for p in model.metadata_props)
        resolve_joint_order(contract, default_hand())
        digest = hashlib.sha256(args.spec.read_bytes()).hexdigest()[:16]
        contract = contract.with_provenance(attached_by="dexterity-ros contract attach", spec=args.spec.name,
                                            spec_sha256=digest)
        attach_contract_v2(model, contract)
    except PolicyError as exc:
        return _fail(f"contract not attached: {exc}")
    print(contract.table())
    if replaced:
        print(f"note: {model_path} already carried a contract; it is replaced")
    try:
        written = write_model_atomically(model, output)
    except OSError as exc:
        return _fail(f"cannot write {output}: {exc}")
    print(f"wrote {written}; `dexterity-ros info {written}` checks it against the hand and the graph")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..policy.contract import PolicyError
    from ..policy.contract_v2 import PolicyContractV2
    from ..policy.loading import read_any_contract

    try:
        contract = read_any_contract(args.model)
    except PolicyError as exc:
        return _fail(str(exc))
    if args.json:
        print(contract.to_json(indent=2))
    elif isinstance(contract, PolicyContractV2):
        print(contract.table())
    else:
        print(f"contract v{contract.contract_version} (a student of this package): "
              f"`dexterity-ros info {args.model}` describes it, --json prints it")
    return 0
