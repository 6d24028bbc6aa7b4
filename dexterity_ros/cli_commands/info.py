"""`dexterity-ros info PATH`: describe a student model (its contract) or a rosbag2 bag.

A path ending in ``.onnx`` prints the policy contract in readable form and
checks it against the hand description, the perception config and the graph
(version 1, this package's students, or version 2, imported or attached
policies: its term table); a model without a contract is refused with the way
to add one (``dexterity-ros import`` / ``dexterity-ros contract attach``).
Other paths go to :func:`describe_bag`: any rosbag2 directory or .mcap/.db3
file (topics, types, counts, duration, frequencies, QoS; ``ros2 bag info``);
``--verify`` also checks every checksum in the storage files (exit status 1
if one does not match). Reading a bag never writes into its directory.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a policy model (.onnx contract, v1 or v2) or a recording",
        description="Print the policy contract of an ONNX policy in readable form, with checks against "
                    "the hand description, the graph and the perception config.")
    parser.add_argument("path", type=Path, help="MODEL.onnx, or a bag directory / .mcap / .db3 file")
    parser.add_argument("--json", action="store_true", help="print the raw contract JSON instead")
    parser.add_argument("--verify", action="store_true",
                        help="bags: also read every storage file whole and check its checksums (MCAP chunk, "
                             "data-section and summary CRCs; sqlite3 integrity_check); exit status 1 on damage")
    parser.add_argument("--perception-config", type=Path,
                        help="perception YAML to compare with (default: config/perception.yaml)")
    parser.set_defaults(func=run)


def describe_bag(path: Path, verify: bool = False) -> str | None:
    """Description of a rosbag2 recording, or None if ``path`` is not one this tool reads.

    Raises ``BagError`` (with the reason) for a bag that cannot be read as it is.
    """
    found = inspect_bag(path, verify)
    return None if found is None else found[0]


def inspect_bag(path: Path, verify: bool = False) -> tuple[str, bool] | None:
    """(description, sound) of a bag; None if ``path`` is not a bag. ``verify`` adds a ``Verify:`` line per
    storage file (:mod:`dexterity_ros.bags.verify`); sound is False when one found damage."""
    from ..bags.inspect import describe, is_bag_path
    from ..bags.io import BagReader

    if not is_bag_path(path):
        return None
    with BagReader(path.parent if path.name == "metadata.yaml" else path) as reader:
        text = describe(reader)
        if not verify:
            return text, True
        checks = reader.verify()
    text += "\n" + "\n".join(f"Verify:            {c.describe()}" for c in checks)
    return text, all(c.ok for c in checks)


def run(args: argparse.Namespace) -> int:
    from ..bags.io import BagError

    path: Path = args.path
    if path.suffix.lower() == ".onnx":
        return _describe_model(path, args)
    if not path.exists():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 2
    try:
        found = inspect_bag(path, verify=args.verify)
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if found is None:
        print(f"error: {path} is neither an ONNX model (.onnx) nor a rosbag2 bag (a directory with "
              "metadata.yaml or .mcap/.db3 files, or a .mcap/.db3 file)", file=sys.stderr)
        return 2
    text, sound = found
    print(text)
    if not sound:
        print(f"error: {path} is damaged: a checksum or record does not match (see the Verify lines)",
              file=sys.stderr)
        return 1
    return 0


def _describe_model(path: Path, args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..hand_model import default_hand
    from ..perception import load_perception_config
    from ..policy.contract import (ContractError, PolicyError, check_default_pose, check_graph_io,
                                   check_perception, joint_permutation)
    from ..policy.contract_v2 import PolicyContractV2
    from ..policy.loading import read_any_contract
    from ..policy.runtime import make_session, session_io

    try:
        contract = read_any_contract(path)     # a file without a contract: the message says how to add one
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(contract.to_json(indent=2))
        return 0
    if isinstance(contract, PolicyContractV2):
        return _describe_model_v2(path, contract, args)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    c = contract
    out = [f"model     {path} ({path.stat().st_size / 1024:.0f} KiB, sha256 {digest})",
           f"contract  v{c.contract_version}  {c.name or '(unnamed)'}"]
    if c.description:
        out.append(f"          {c.description}")
    out.append(f"control   {c.control_rate_hz:g} Hz, action_mode {c.action_mode}, action_ema {c.action_ema:g}")
    hand = default_hand()
    checks: list[str] = []
    try:
        index = joint_permutation(c, hand)
        check_default_pose(c, hand, index)
        checks.append("hand: joint names and default pose ok")
    except ContractError as exc:
        index = None
        checks.append(f"hand: MISMATCH: {exc}")
    out.append("joints    (policy order)")
    out.append(f"    {'#':>2}  {'name':<12} {'hand joint':<10} {'default':>8} {'scale':>7}   hand limits")
    for k, name in enumerate(c.joint_names):
        if index is not None:
            i = index[k]
            hand_name, limits = hand.joint_names[i], f"[{hand.lower[i]:.3f}, {hand.upper[i]:.3f}]"
        else:
            hand_name, limits = "?", ""
        out.append(f"    {k:>2}  {name:<12} {hand_name:<10} {c.default_joint_pos[k]:>8.3f} "
                   f"{c.action_scale[k]:>7.3f}   {limits}")
    out.append("inputs")
    for s in c.inputs:
        norm = s.normalization.kind
        if norm == "mean_std":
            norm += f" ({len(s.normalization.mean)} mean / {len(s.normalization.std)} std)"
        out.append(f"    {s.name:<22} {str(list(s.shape)):<14} {s.dtype:<8} {s.meaning:<23} norm {norm}")
    out.append("outputs")
    for s in c.outputs:
        out.append(f"    {s.name:<22} {str(list(s.shape)):<14} {s.dtype:<8} {s.meaning}")
    out.append(f"points    {c.point_cloud.num_points} points in frame '{c.point_cloud.frame}'")
    out.append("history   " + (f"{c.history.length} steps of {', '.join(c.history.stacked)}"
                               if c.history.stacked else "none"))
    out.append("recurrent " + (", ".join(f"{p.input} <- {p.output} (initial {p.initial_value:g})"
                                         for p in c.recurrent_state) or "none"))
    if c.goal.representation == "quaternion":
        out.append("goal      quaternion (w, x, y, z), unit, w >= 0")
    else:
        out.append(f"goal      {c.goal.num_points} canonical points of '{c.goal.object_name}' rotated to the "
                   f"goal orientation (points sha256 {c.goal.canonical_points_sha256 or 'unchecked'})")
    out.append(f"segmentation config hash {c.segmentation_config_hash}")
    try:
        perception = load_perception_config(args.perception_config)
        problems = check_perception(c, perception)
        checks += [f"perception: MISMATCH: {p}" for p in problems] or [
            "perception: point count and segmentation hash match the perception config"]
    except ConfigError as exc:
        checks.append(f"perception: cannot load config: {exc}")
    try:
        check_graph_io(c, *session_io(make_session(path)))
        checks.append("graph: inputs and outputs match the contract")
    except PolicyError as exc:
        checks.append(f"graph: MISMATCH: {exc}")
    if c.provenance:
        out.append("provenance")
        out += [f"    {k}: {v}" for k, v in c.provenance.items()]
    out.append("checks")
    out += [f"    {line}" for line in checks]
    print("\n".join(out))
    return 0 if not any("MISMATCH" in line or "cannot" in line for line in checks) else 1


def _describe_model_v2(path: Path, c, args: argparse.Namespace) -> int:
    """A contract v2 (imported or attached policy): its table, provenance and checks against the hand and
    the graph (and the perception config when it takes the object cloud)."""
    from ..config import ConfigError
    from ..hand_model import default_hand
    from ..perception import load_perception_config
    from ..policy.contract import PolicyError, mismatch
    from ..policy.runtime import make_session, session_io
    from ..policy.runtime_v2 import resolve_joint_order

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    out = [f"model     {path} ({path.stat().st_size / 1024:.0f} KiB, sha256 {digest})"]
    if c.description:
        out.append(f"          {c.description}")
    out.append(c.table())
    checks: list[str] = []
    hand = default_hand()
    try:
        index = resolve_joint_order(c, hand)
        checks.append("hand: every policy joint maps onto a hand joint ("
                      + ", ".join(f"{n}->{hand.joint_names[i]}" for n, i in list(zip(c.joint_names, index))[:4])
                      + ", ...)")
    except PolicyError as exc:
        checks.append(f"hand: MISMATCH: {exc}")
    if c.num_points:
        try:
            perception = load_perception_config(args.perception_config)
            problems = []
            if c.num_points != perception.num_points:
                problems.append(mismatch("terms[object_points].num_points", c.num_points,
                                         "the perception config", perception.num_points))
            if c.segmentation_config_hash != perception.config_hash():
                problems.append(mismatch("segmentation_config_hash", c.segmentation_config_hash,
                                         "the perception config", perception.config_hash()))
            checks += [f"perception: MISMATCH: {p}" for p in problems] or [
                "perception: point count and segmentation hash match the perception config"]
        except ConfigError as exc:
            checks.append(f"perception: cannot load config: {exc}")
    try:
        c.check_graph_io(*session_io(make_session(path)))
        checks.append("graph: inputs and outputs match the contract")
    except PolicyError as exc:
        checks.append(f"graph: MISMATCH: {exc}")
    if c.provenance:
        out.append("provenance")
        out += [f"    {k}: {v}" for k, v in c.provenance.items()]
    out.append("checks")
    out += [f"    {line}" for line in checks]
    print("\n".join(out))
    return 0 if not any("MISMATCH" in line or "cannot" in line for line in checks) else 1
