"""One entry point for any policy file: read its contract (v1 or v2), build the matching runtime.

Version 1 files (this package's students) run on :class:`PolicyRuntime`
unchanged; version 2 files (observation terms: imported or attached policies)
on :class:`TermPolicyRuntime`. A file without a contract is refused with the
way to add one (``dexterity-ros import`` or ``dexterity-ros contract attach``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Union

from .contract import METADATA_KEY, ContractError, PolicyContract, PolicyError
from .contract_v2 import CONTRACT_VERSION_2, PolicyContractV2

AnyContract = Union[PolicyContract, PolicyContractV2]
SUPPORTED = (1, 2)

NO_CONTRACT_HINT = ("add one with `dexterity-ros import --preset PRESET MODEL -o OUT.onnx` (Isaac Lab, "
                    "IsaacGymEnvs, HORA, MuJoCo Playground) or `dexterity-ros contract attach MODEL --spec "
                    "SPEC.yaml` (any other policy); see docs/policy_contract.md")


def contract_from_text(text: str) -> AnyContract:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ContractError("(json)", f"not valid JSON: {exc}") from None
    return contract_from_data(data)


def contract_from_data(data) -> AnyContract:
    if isinstance(data, Mapping) and data.get("contract_version") == CONTRACT_VERSION_2:
        return PolicyContractV2.from_mapping(data)
    if isinstance(data, Mapping) and "contract_version" in data and data["contract_version"] not in SUPPORTED:
        raise ContractError("contract_version", f"model has {data['contract_version']!r}, this runtime supports "
                                                f"versions {list(SUPPORTED)}")
    return PolicyContract.from_mapping(data)


def contract_from_metadata_any(metadata: Mapping[str, str], source: str = "model") -> AnyContract:
    text = metadata.get(METADATA_KEY)
    if text is None:
        raise ContractError("metadata", f"{source} has no policy contract: ONNX metadata key '{METADATA_KEY}' is "
                                        f"missing (metadata keys present: {sorted(metadata)}); {NO_CONTRACT_HINT}")
    return contract_from_text(text)


def contract_of_session(session, source: str) -> AnyContract:
    return contract_from_metadata_any(session.get_modelmeta().custom_metadata_map, source)


def read_any_contract(path: str | Path) -> AnyContract:
    """The contract of an ONNX file on disk, either version (reads the protobuf only)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise PolicyError(f"{path}: not a readable ONNX model ({exc})") from None
    return contract_from_metadata_any({p.key: p.value for p in model.metadata_props}, str(path))


def load_runtime(model, hand=None, options=None, perception=None, goal_points=None):
    """PolicyRuntime (v1) or TermPolicyRuntime (v2), chosen by the file's contract version."""
    from .runtime import PolicyRuntime, RuntimeOptions, make_session
    from .runtime_v2 import TermPolicyRuntime

    options = options or RuntimeOptions()
    if isinstance(model, (str, Path)):
        contract = read_any_contract(model)
    else:
        session = make_session(model, 1)
        contract = contract_of_session(session, "model bytes")
    if isinstance(contract, PolicyContractV2):
        return TermPolicyRuntime(model, hand=hand, options=options, perception=perception,
                                 goal_points=goal_points, contract=contract)
    return PolicyRuntime(model, hand=hand, options=options, perception=perception, goal_points=goal_points)


def attach_contract_v2(model, contract: PolicyContractV2, check_graph: bool = True) -> None:
    """Validate ``contract`` against the ``onnx.ModelProto``'s graph and write it into its metadata."""
    contract.validate()
    if check_graph:
        contract.check_graph_io(*graph_io(model))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept:
        model.metadata_props.add(key=key, value=value)
    model.metadata_props.add(key=METADATA_KEY, value=contract.to_json())


_ONNX_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32", 10: "float16", 9: "bool"}


def graph_io(model):
    """GraphTensor lists of an onnx.ModelProto (initializers excluded from the inputs)."""
    from .contract import GraphTensor

    init = {i.name for i in model.graph.initializer}

    def convert(values):
        out = []
        for v in values:
            if v.name in init:
                continue
            tt = v.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
            out.append(GraphTensor(v.name, dims, _ONNX_DTYPES.get(tt.elem_type, str(tt.elem_type))))
        return out
    return convert(model.graph.input), convert(model.graph.output)
