"""`dexterity-ros hand status|enable|disable|estop|reset|home`: drive hand_node without the ros2 CLI.

Calls hand_node's services (``~/enable`` SetBool, ``~/estop``, ``~/reset``,
``~/home`` Trigger; docs/hand.md) and reads its /diagnostics status, so a pip
install can bring the hand up. Exit status 0 when the node did it, 1 when it
refused (its reason is printed) or is not running.
"""
from __future__ import annotations

import argparse

from ..operator_format import add_graph_options, format_hand_status, resolve_name

ACTIONS = {
    "status": "print the hand's state, faults, limits and rates from its /diagnostics status",
    "enable": "~/enable true: start commanding (ramps from the measured position; refused in FAULT/ESTOP or "
              "without fresh driver feedback)",
    "disable": "~/enable false: stop commanding (DISABLED; refused while ESTOP is latched)",
    "estop": "~/estop: stop commanding at once, latched until reset (the power switch is the real e-stop)",
    "reset": "~/reset: FAULT or ESTOP -> DISABLED (then enable again)",
    "home": "~/home: ramp to the home pose now at home_velocity_scale (only while enabled; a fresh policy "
            "target takes over again)",
}
SETTINGS = ("velocity_scale", "home_velocity_scale", "command_rate_hz", "enable_on_start")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "hand", help="hand_node: status, enable, disable, estop, reset, home (no ros2 CLI needed)",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog="actions:\n" + "\n".join(f"  {k:<8} {v}" for k, v in ACTIONS.items())
               + "\n\nros2 equivalent: ros2 service call /hand/enable std_srvs/srv/SetBool \"{data: true}\"",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=tuple(ACTIONS), help="what to do (see below)")
    parser.add_argument("--node", default="hand", help="hand_node's name (default: hand, as in the launch files)")
    add_graph_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ros.operator import run_command
    return run_command("hand", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from std_srvs.srv import SetBool, Trigger

    from ..ros.operator import Operator, OperatorError

    fqn = resolve_name(args.node, args.namespace, "node name")
    if args.action in ("enable", "disable"):
        srv_type, service, request = SetBool, f"{fqn}/enable", SetBool.Request(data=args.action == "enable")
    else:
        srv_type, service, request = Trigger, f"{fqn}/{args.action}", Trigger.Request()
    with Operator(args.timeout) as op:
        if args.action == "status":
            op.prepare_parameter_services(fqn)
        else:
            op.prepare((srv_type, service))
        op.wait_for_node(fqn)
        if args.action == "status":
            status, age = op.diagnostic_status(fqn, max(args.timeout, 2.5))
            values = {kv.key: kv.value for kv in status.values}
            try:
                settings = op.get_parameters(fqn, list(SETTINGS))
            except OperatorError:
                settings = {}
            for line in format_hand_status(fqn, status.level[0] if isinstance(status.level, bytes)
                                           else int(status.level), status.message, values, age, settings):
                print(line)
            return 0
        if not op.wait_until(lambda: op.has_service(service)):
            older = " (a hand_node from before the ~/home service?)" if args.action == "home" else ""
            raise OperatorError(f"node {fqn} offers no service {service}{older}")
        response = op.call(srv_type, service, request)
        if not response.success:
            raise OperatorError(f"{fqn} {args.action}: {response.message}")
        print(f"hand {fqn}: {response.message}", flush=True)
        return 0
