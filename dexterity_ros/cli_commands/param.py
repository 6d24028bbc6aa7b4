"""`dexterity-ros param get|set|list NODE [NAME] [VALUE]`: a running node's parameters without the ros2 CLI.

Uses the node's rcl_interfaces parameter services. Values are typed as in a
YAML parameter file (true, 3, 0.5, 1e-3, text, [1, 2]); a set the node
refuses (read-only, out of range, wrong type) prints its reason, exit 1.
"""
from __future__ import annotations

import argparse
import difflib

from ..operator_format import (add_graph_options, coerce_to_declared, format_value,
                               parse_parameter_value, resolve_name)


def register(subparsers) -> None:
    parser = subparsers.add_parser("param", help="get, set and list a running node's parameters (no ros2 CLI needed)",
                                   description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    sub = parser.add_subparsers(dest="param_action", metavar="ACTION")
    sub.required = True
    get = sub.add_parser("get", help="print a parameter's value (NAME: VALUE)",
                         epilog="ros2 equivalent: ros2 param get /hand velocity_scale")
    get.add_argument("node", help="node name, e.g. hand or /left/hand")
    get.add_argument("name", help="parameter name")
    get.add_argument("-d", "--describe", action="store_true",
                     help="also print its type, range, read-only flag and description")
    add_graph_options(get)
    get.set_defaults(func=run)

    setp = sub.add_parser("set", help="set a parameter (typed as YAML: true, 3, 0.5, text, [1, 2])",
                          epilog="ros2 equivalent: ros2 param set /allegro_emulator time_constant 0.08")
    setp.add_argument("node", help="node name")
    setp.add_argument("name", help="parameter name")
    setp.add_argument("value", help="new value; for a string parameter the text as typed")
    add_graph_options(setp)
    setp.set_defaults(func=run)

    lst = sub.add_parser("list", help="every parameter of the node with its value (NAME: VALUE  # type)",
                         epilog="ros2 equivalent: ros2 param dump /hand")
    lst.add_argument("node", help="node name")
    lst.add_argument("prefix", nargs="?", default=None, help="only parameters starting with this")
    add_graph_options(lst)
    lst.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ros.operator import run_command
    return run_command("param", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from ..ros.operator import Operator, OperatorError, kind_name

    fqn = resolve_name(args.node, args.namespace, "node name")
    value = parse_parameter_value(args.value) if args.param_action == "set" else None   # exit 2 before any call
    with Operator(args.timeout) as op:
        op.prepare_parameter_services(fqn)
        op.wait_for_node(fqn)
        if args.param_action == "list":
            names = [n for n in op.list_parameters(fqn) if args.prefix is None or n.startswith(args.prefix)]
            if not names:
                raise OperatorError(f"node {fqn} has no parameter" + (f" starting with '{args.prefix}'"
                                                                       if args.prefix else ""))
            values = op.get_parameters(fqn, names)
            described = op.describe_parameters(fqn, names)
            width = max(len(n) for n in names)
            for name in names:
                d = described.get(name)
                note = kind_name(d.type) + (", read-only" if d.read_only else "") if d is not None else ""
                print(f"{name + ':':<{width + 1}} {format_value(values.get(name))[0]}" + (f"  # {note}" if note
                                                                                            else ""))
            return 0
        described = op.describe_parameters(fqn, [args.name]).get(args.name)
        if described is None or described.type == 0:
            known = op.list_parameters(fqn)
            close = difflib.get_close_matches(args.name, known, n=3, cutoff=0.6)
            raise OperatorError(f"node {fqn} has no parameter '{args.name}'"
                                + (f"; did you mean {', '.join(close)}?" if close else
                                   f" (`dexterity-ros param list {fqn}`)"))
        current = op.get_parameters(fqn, [args.name]).get(args.name)
        if args.param_action == "get":
            print(f"{args.name}: {format_value(current)[0]}")
            if args.describe:
                for line in _describe(described, kind_name):
                    print(f"  {line}")
            return 0
        value = coerce_to_declared(value, args.value, kind_name(described.type))
        ok, reason = op.set_parameter(fqn, args.name, value)
        if not ok:
            raise OperatorError(f"{fqn} refused {args.name} = {format_value(value)[0]}: "
                                f"{reason or 'no reason given'}")
        print(f"{fqn} {args.name}: {format_value(current)[0]} -> {format_value(value)[0]}")
        return 0


def _describe(descriptor, kind_name) -> list[str]:
    lines = [f"type: {kind_name(descriptor.type)}" + (" (read-only: set at start)" if descriptor.read_only else "")]
    for r in descriptor.floating_point_range:
        lines.append(f"range: [{format_value(r.from_value)[0]}, {format_value(r.to_value)[0]}]")
    for r in descriptor.integer_range:
        lines.append(f"range: [{r.from_value}, {r.to_value}]")
    if descriptor.additional_constraints:
        lines.append(f"constraints: {descriptor.additional_constraints}")
    if descriptor.description:
        lines.append(f"description: {descriptor.description}")
    return lines
