"""The ROS side of the operator commands: one short-lived node that finds the graph and talks to it.

`dexterity-ros hand|goal|topic|param` stand in for ``ros2 service call``,
``ros2 topic pub/echo/hz/list`` and ``ros2 param`` where no ROS distro (and so
no ros2cli) is installed. Each command builds an :class:`Operator` (a hidden
node, ``_dexterity_ros_cli_<pid>``, in its own context), waits at most
``--timeout`` for what it needs and says plainly when the graph is not there.
Parsing and text are in :mod:`dexterity_ros.operator_format` (pure).
"""
from __future__ import annotations

import array
import importlib
import os
import sys
import time
from typing import Any, Callable

import numpy as np
from rclpy.duration import Duration
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..operator_format import (EXIT_BAD_INPUT, EXIT_FAILED, OperatorInputError, choose_qos, no_graph_message,
                               same_name_elsewhere, split_node_name)
from .background import BackgroundNode

POLL_S = 0.02
CLIENT_GRACE_S = 0.3         # a new client waits this long before its first request (the server must discover it)
ANSWER_PATIENCE_S = 1.5      # then a request unanswered this long is sent again (doubling)
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"     # rmw's name for an endpoint whose node is not known yet


class OperatorError(Exception):
    """A command failed: printed as one line, exit code ``code`` (no traceback)."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def domain_id() -> str:
    """ROS_DOMAIN_ID as the messages show it (with a note when discovery is switched off)."""
    domain = os.environ.get("ROS_DOMAIN_ID", "") or "0"
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "OFF":
        domain += " (ROS_AUTOMATIC_DISCOVERY_RANGE=OFF: no other process is discovered)"
    return domain


def run_command(command: str, body: Callable[[], int]) -> int:
    """Run one operator command: its errors become a line on stderr and an exit code."""
    try:
        return int(body() or 0)
    except BrokenPipeError:                      # `... | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OperatorInputError as exc:
        _error(command, str(exc))
        return EXIT_BAD_INPUT
    except OperatorError as exc:
        _error(command, str(exc))
        return exc.code


def _error(command: str, message: str) -> None:
    print(f"dexterity-ros {command}: error: {message}", file=sys.stderr, flush=True)


def warn(command: str, message: str) -> None:
    print(f"dexterity-ros {command}: warning: {message}", file=sys.stderr, flush=True)


def kind_name(parameter_type: int) -> str:
    """rcl_interfaces ParameterType number -> 'double', 'string_array', ... ('not set' for 0)."""
    order = {1: "bool", 2: "integer", 3: "double", 4: "string", 5: "byte_array", 6: "bool_array",
             7: "integer_array", 8: "double_array", 9: "string_array"}
    return order.get(int(parameter_type), "not set")


class Operator(BackgroundNode):
    """A hidden node that waits for the graph (at most ``timeout`` s per wait) and talks to it."""

    def __init__(self, timeout: float):
        if not timeout > 0:
            raise OperatorInputError(f"--timeout must be > 0 s, got {timeout:g}")
        super().__init__(f"_dexterity_ros_cli_{os.getpid()}", start_parameter_services=False)
        self.timeout = float(timeout)
        self.me = self.node.get_fully_qualified_name()
        self._clients: dict[str, tuple[Any, float]] = {}

    # ------------------------------------------------------------ graph
    def node_names(self) -> set[str]:
        """Fully qualified names of the other, visible nodes (hidden ones start with '_')."""
        return {n for n in self.node.get_fully_qualified_node_names()
                if n != self.me and not split_node_name(n)[1].startswith("_")}

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)

    def wait_for_node(self, fqn: str) -> None:
        """Return once ``fqn`` is on the graph; OperatorError with the one "is the graph running?" wording."""
        if self.wait_until(lambda: fqn in self.node_names()):
            return
        seen = self.node_names()
        raise OperatorError(no_graph_message(f"node {fqn}", domain_id(), self.timeout, seen,
                                             same_name_elsewhere(fqn, seen)))

    def wait_for_graph(self, settle_s: float = 1.0) -> set[str]:
        """Some node of the graph, then until what is known of it stops changing for ``settle_s``.

        Names and endpoints are discovered one by one (a loaded machine takes seconds), so the graph
        counts as known once every node shows a publisher (each has /rosout) and nothing changed for a while.
        """
        if not self.wait_until(lambda: bool(self.node_names())):
            raise OperatorError(no_graph_message("node", domain_id(), self.timeout))
        last, stable_since = None, time.monotonic()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            nodes = self.node_names()
            complete = all(self._has_publishers(n) for n in nodes)
            now = (frozenset(nodes), frozenset((t, self.node.count_publishers(t), self.node.count_subscribers(t))
                                               for t, _ in self.node.get_topic_names_and_types()))
            if now != last or not complete:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= settle_s:
                break
            time.sleep(POLL_S * 5)
        return self.node_names()

    def _has_publishers(self, fqn: str) -> bool:
        ns, base = split_node_name(fqn)
        try:
            return bool(self.node.get_publisher_names_and_types_by_node(base, ns))
        except Exception:  # noqa: BLE001 - the node left the graph meanwhile (rclpy's NodeNameNonExistentError)
            return True

    def topic_types(self) -> dict[str, list[str]]:
        return {name: list(types) for name, types in self.node.get_topic_names_and_types()}

    def wait_for_topic(self, topic: str, need_publisher: bool = False) -> str:
        """The type of ``topic`` once it is on the graph (with a publisher other than us, if asked)."""
        def present() -> bool:
            if topic not in self.topic_types():
                return False
            return not need_publisher or bool(self.publishers(topic))

        if not self.wait_until(present):
            seen = self.node_names()
            if not seen:
                raise OperatorError(no_graph_message(f"node (looking for topic {topic})", domain_id(), self.timeout))
            close = [t for t in self.topic_types() if t.rsplit("/", 1)[-1] == topic.rsplit("/", 1)[-1]]
            hint = f"did you mean {', '.join(sorted(close))}? (--namespace)" if close else \
                "`dexterity-ros topic list` shows the topics"
            what = f"publisher of {topic}" if need_publisher and topic in self.topic_types() else f"topic {topic}"
            raise OperatorError(no_graph_message(what, domain_id(), self.timeout, hint=hint))
        types = self.topic_types()[topic]
        if len(types) != 1:
            raise OperatorError(f"topic {topic} has several types on the graph: {', '.join(types)}")
        return types[0]

    def publishers(self, topic: str) -> list:
        return [i for i in self.node.get_publishers_info_by_topic(topic)
                if f"{i.node_namespace.rstrip('/')}/{i.node_name}" != self.me]

    def subscribers(self, topic: str) -> list:
        return [i for i in self.node.get_subscriptions_info_by_topic(topic)
                if f"{i.node_namespace.rstrip('/')}/{i.node_name}" != self.me]

    @staticmethod
    def endpoint_node(info) -> str:
        if info.node_name == UNKNOWN_NODE:
            return "(a node not yet named)"
        return f"{info.node_namespace.rstrip('/')}/{info.node_name}"

    def matching_qos(self, topic: str, depth: int = 10) -> tuple[QoSProfile, str]:
        """A subscription QoS that matches every known publisher of ``topic``, and its description."""
        infos = self.publishers(topic)
        words = [(_policy_word(i.qos_profile.reliability), _policy_word(i.qos_profile.durability)) for i in infos]
        reliability, durability = choose_qos(words)
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                             reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                             else ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if durability == "transient_local"
                             else DurabilityPolicy.VOLATILE)
        return profile, f"{reliability.replace('_', ' ')}, {durability.replace('_', ' ')}"

    # --------------------------------------------------------- services
    def client(self, srv_type, service: str):
        """One client per service, kept: create it early (:meth:`prepare`) so the server discovers it in time."""
        entry = self._clients.get(service)
        if entry is None:
            entry = self._clients[service] = (self.node.create_client(srv_type, service), time.monotonic())
        return entry

    def prepare(self, *services: tuple[Any, str]) -> None:
        """Create the clients of services about to be called, while the graph is still being discovered."""
        for srv_type, service in services:
            self.client(srv_type, service)

    def call(self, srv_type, service: str, request) -> Any:
        """Call a service; a request whose answer does not come is sent again (with rising patience).

        A server answers only a client whose response reader it has discovered, and rmw waits for that
        just briefly: under load, the first answer to a new client can be lost. Every service called
        here is idempotent in effect (reads, parameter sets, hand state requests), so a repeat is safe;
        it is reported when its answer is the one used.
        """
        client, created = self.client(srv_type, service)
        if not client.wait_for_service(timeout_sec=self.timeout):
            raise OperatorError(f"service {service} is not available (ROS_DOMAIN_ID={domain_id()}, "
                                f"--timeout {self.timeout:g} s)")
        time.sleep(max(0.0, created + CLIENT_GRACE_S - time.monotonic()))
        deadline = time.monotonic() + self.timeout
        patience, attempt = ANSWER_PATIENCE_S, 0
        while True:
            attempt += 1
            future = client.call_async(request)
            until = min(deadline, time.monotonic() + patience)
            while not future.done() and time.monotonic() < until:
                time.sleep(0.005)
            if future.done():
                if attempt > 1:
                    warn("operator", f"{service}: the first answer was lost (discovery); this is the answer to "
                                     f"request {attempt}")
                return future.result()
            client.remove_pending_request(future)
            if time.monotonic() >= deadline:
                raise OperatorError(f"service {service} did not answer within {self.timeout:g} s "
                                    f"(ROS_DOMAIN_ID={domain_id()})")
            patience *= 2

    def has_service(self, service: str) -> bool:
        return any(name == service for name, _ in self.node.get_service_names_and_types())

    # ------------------------------------------------------ diagnostics
    def diagnostic_status(self, fqn: str, wait_s: float):
        """The newest /diagnostics status of node ``fqn`` (published at 1 Hz and on changes) and its age."""
        from diagnostic_msgs.msg import DiagnosticArray

        from ..topics import DIAGNOSTICS
        from .common import qos_profile

        wanted = f"dexterity_ros: {fqn}"
        found: list = []

        def on_array(msg) -> None:
            for status in msg.status:
                if status.name == wanted:
                    with self.lock:
                        found.append((time.monotonic(), status))

        sub = self.node.create_subscription(DiagnosticArray, DIAGNOSTICS.name, on_array, qos_profile(DIAGNOSTICS))
        try:
            if not self.wait_until(lambda: bool(found), wait_s):
                raise OperatorError(f"node {fqn} published no status on {DIAGNOSTICS.name} within {wait_s:g} s "
                                    f"(expected '{wanted}' at 1 Hz)")
            with self.lock:
                received, status = found[-1]
            return status, time.monotonic() - received
        finally:
            self.node.destroy_subscription(sub)

    # ------------------------------------------------------- parameters
    def prepare_parameter_services(self, fqn: str) -> None:
        self.prepare(*(self._parameter_service(fqn, kind) for kind in ("get", "set", "list", "describe")))

    def _parameter_service(self, fqn: str, kind: str):
        from rcl_interfaces import srv
        types = {"get": srv.GetParameters, "set": srv.SetParameters, "list": srv.ListParameters,
                 "describe": srv.DescribeParameters}
        names = {"get": "get_parameters", "set": "set_parameters", "list": "list_parameters",
                 "describe": "describe_parameters"}
        return types[kind], f"{fqn}/{names[kind]}"

    def get_parameters(self, fqn: str, names: list[str]) -> dict[str, Any]:
        """name -> Python value; a name the node does not have is left out."""
        srv_type, service = self._parameter_service(fqn, "get")
        response = self.call(srv_type, service, srv_type.Request(names=list(names)))
        out = {}
        for name, value in zip(names, response.values):
            if value.type != 0:
                python = parameter_value_to_python(value)
                out[name] = list(python) if isinstance(python, (array.array, np.ndarray, tuple)) else python
        return out

    def list_parameters(self, fqn: str, prefixes: list[str] | None = None) -> list[str]:
        srv_type, service = self._parameter_service(fqn, "list")
        response = self.call(srv_type, service, srv_type.Request(prefixes=list(prefixes or []), depth=0))
        return sorted(response.result.names)

    def describe_parameters(self, fqn: str, names: list[str]) -> dict[str, Any]:
        srv_type, service = self._parameter_service(fqn, "describe")
        response = self.call(srv_type, service, srv_type.Request(names=list(names)))
        return {name: d for name, d in zip(names, response.descriptors)}

    def set_parameter(self, fqn: str, name: str, value: Any) -> tuple[bool, str]:
        srv_type, service = self._parameter_service(fqn, "set")
        try:
            message = Parameter(name, value=value).to_parameter_msg()
        except (TypeError, ValueError) as exc:
            raise OperatorInputError(f"{name}: {value!r} is not a ROS parameter value ({exc})") from None
        response = self.call(srv_type, service, srv_type.Request(parameters=[message]))
        result = response.results[0]
        return bool(result.successful), result.reason

    # ------------------------------------------------------------ topics
    def latest_message(self, msg_type, topic: str, qos: QoSProfile, wait_s: float):
        """One message (e.g. a latched one), or None after ``wait_s``."""
        got: list = []
        sub = self.node.create_subscription(msg_type, topic, got.append, qos)
        try:
            self.wait_until(lambda: bool(got), wait_s)
            return got[-1] if got else None
        finally:
            self.node.destroy_subscription(sub)

    def settle_delivery(self, publisher, topic: str, expect: list[str], timeout: float,
                        settle_s: float = 0.5) -> tuple[list[str], bool]:
        """After a publish on a reliable latched topic: stay until the ``expect`` nodes and every subscription
        discovered so far have matched and acknowledged it, and nothing new matched for ``settle_s`` (discovery
        on a loaded machine is piecemeal; a late match still gets the latched message). Returns the expected
        nodes that never showed up within ``timeout`` and whether every matched subscription acknowledged."""
        deadline = time.monotonic() + timeout
        matched, since = -1, time.monotonic()
        while True:
            now = time.monotonic()
            count = publisher.get_subscription_count()
            if count != matched:
                matched, since = count, now
            subscribers = self.subscribers(topic)
            present = {self.endpoint_node(i) for i in subscribers}
            missing = [n for n in expect if n not in present]
            complete = not missing and count >= len(subscribers)
            acked = bool(publisher.wait_for_all_acked(Duration(seconds=0.1)))
            if complete and acked and now - since >= settle_s or now >= deadline:
                return missing, acked
            time.sleep(POLL_S)


def _policy_word(policy) -> str:
    return getattr(policy, "name", str(policy)).lower()


# ------------------------------------------------------------- messages
def message_class(type_name: str):
    """``pkg/msg/Type`` -> the message class (rosidl_runtime_py where installed, else ``pkg.msg``)."""
    try:
        from rosidl_runtime_py.utilities import get_message
    except ImportError:
        get_message = None
    parts = type_name.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise OperatorError(f"'{type_name}' is not a message type name (package/msg/Type)")
    package, _, name = parts
    try:
        if get_message is not None:
            return get_message(type_name)
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError, ValueError):
        raise OperatorError(f"message type {type_name} is not installed in this environment (Python package "
                            f"'{package}' with {name}); `dexterity-ros doctor` lists what is") from None


def message_to_data(msg) -> dict[str, Any]:
    """A ROS message -> a plain dict (nested messages as dicts, arrays as numpy arrays), field order kept.

    A single ``byte`` (octet) field, which rclpy gives as 1-byte ``bytes``, becomes its number.
    """
    out = {}
    for field, kind in msg.get_fields_and_field_types().items():
        value = getattr(msg, field)
        if kind == "octet" and isinstance(value, bytes) and len(value) == 1:
            value = value[0]
        out[field] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "get_fields_and_field_types"):
        return message_to_data(value)
    if isinstance(value, array.array):
        return np.array(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        if items and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return np.array(items)
        return items
    return value
