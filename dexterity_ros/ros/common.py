"""What every node shell shares: QoS mapping, typed parameters, /diagnostics, main().

A node's parameters are one dataclass (fields made with ``config.param``):
each field is declared as a ROS parameter with its description, and the
values are validated through ``config.from_dict`` so a wrong type or an
inverted range is a clear start-up error rather than a crash mid-run. A
parameter given at start (``-p``, ``--params-file``, launch ``<param>``) that
the node never declared is a typo: rclpy would silently ignore it, so every
DexterityNode refuses to start on one (``reject_unknown_parameters``, run once
the node is fully constructed, so parameters a subclass declares after the
config, e.g. hand_node's per-joint tables, count as known).

Parameters are declared with their type (from the field's annotation) and,
for numbers with ``min``/``max``, a ``FloatingPointRange``/``IntegerRange``, so
``ros2 param describe`` shows both and rclpy refuses a wrong type or an
out-of-range value at set time (SetParameters answers successful=False with
the reason). An integer given for a floating-point parameter (``-p rate:=1``,
``ros2 param set ... rate 2``) is taken as that number: start-up overrides are
converted before the declaration, runtime sets by a pre-set callback. A
wrong type or an out-of-range value at start-up stays a ConfigError naming
the parameter (exit code 2), as the config dataclass would report it. Only
fields whose annotation has no single ROS type (e.g. ``str | int``) keep
``dynamic_typing``.
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import faulthandler
import inspect
import os
import sys
import threading
import time
import traceback
import typing
from typing import Any, Callable, TypeVar

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from .. import diagnostic_keys
from ..config import ConfigError, from_dict
from ..diagnostics import Health, Level
from ..realtime import apply_realtime_priority
from ..stack_dump import register_stack_dump
from ..topics import DIAGNOSTICS, QosClass, Topic
from .native_teardown import destroy_node_without_gil

C = TypeVar("C")


def qos_profile(qos: QosClass | Topic, depth: int | None = None) -> QoSProfile:
    """rclpy QoS for a topic's delivery class (sensor data is best effort, REP 2003)."""
    if isinstance(qos, Topic):
        qos = qos.qos
    if qos is QosClass.SENSOR:
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth or qos_profile_sensor_data.depth,
                             reliability=ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.VOLATILE)
    elif qos is QosClass.LATCHED:
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth or 1,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
    else:
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth or 10,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.VOLATILE)
    return profile


def _ros_name(field: dataclasses.Field) -> str:
    return field.metadata.get("ros_name") or field.name


_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1

_SCALAR_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE,
                 str: Parameter.Type.STRING}
_ARRAY_TYPES = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}
# rclpy cannot declare an empty list (its type would be unknown): an empty default is declared as this
# one-element placeholder of the right type and read back as []
_EMPTY_PLACEHOLDERS = {Parameter.Type.BOOL_ARRAY: [False], Parameter.Type.INTEGER_ARRAY: [0],
                       Parameter.Type.DOUBLE_ARRAY: [0.0], Parameter.Type.STRING_ARRAY: [""]}
_ARRAY_KINDS = (Parameter.Type.BYTE_ARRAY,) + tuple(_EMPTY_PLACEHOLDERS)


def _type_words(ptype: Parameter.Type) -> str:
    words = {Parameter.Type.DOUBLE: "a number", Parameter.Type.INTEGER: "an integer",
             Parameter.Type.BOOL: "true/false", Parameter.Type.STRING: "a string"}
    return words.get(ptype, f"a {ptype.name.lower().replace('_', ' ')}")


def parameter_type(hint: Any) -> Parameter.Type | None:
    """The ROS parameter type of a config field annotation; None where no single type fits (dynamic typing)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        return _SCALAR_TYPES.get(kinds.pop()) if len(kinds) == 1 else None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        kinds = {type(m.value) for m in hint}
        return _SCALAR_TYPES.get(kinds.pop()) if len(kinds) == 1 else None
    if hint in _SCALAR_TYPES:
        return _SCALAR_TYPES[hint]
    if origin in (list, tuple, typing.Sequence) and args:
        items = {a for a in args if a is not Ellipsis}
        return _ARRAY_TYPES.get(items.pop()) if len(items) == 1 else None
    return None


def _descriptor(field: dataclasses.Field, ptype: Parameter.Type | None, hint: Any = None) -> ParameterDescriptor:
    """Description, read-only flag, type and numeric range of one config field, as ROS tools show them."""
    meta = field.metadata
    desc = ParameterDescriptor(description=meta.get("description", ""), read_only=meta.get("read_only", False))
    if ptype is None:
        desc.dynamic_typing = True
    else:
        desc.type = ptype.value
    limits = meta.get("constraints") or {}
    if ("min" in limits or "max" in limits) and ptype is Parameter.Type.DOUBLE:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(limits.get("min", -float("inf"))), to_value=float(limits.get("max", float("inf"))),
            step=0.0)]                                        # step 0: any value in the range
    elif ("min" in limits or "max" in limits) and ptype is Parameter.Type.INTEGER:
        desc.integer_range = [IntegerRange(from_value=int(limits.get("min", _INT64_MIN)),
                                           to_value=int(limits.get("max", _INT64_MAX)), step=1)]
    if typing.get_origin(hint) is typing.Literal:
        desc.additional_constraints = "one of: " + ", ".join(str(a) for a in typing.get_args(hint))
    return desc


def _as_declared_type(parameter: Parameter, ptype: Parameter.Type | None) -> Parameter:
    """An integer (array) for a floating-point (array) parameter becomes that number; anything else as given."""
    if ptype is Parameter.Type.DOUBLE and parameter.type_ is Parameter.Type.INTEGER:
        return Parameter(parameter.name, value=float(parameter.value))
    if ptype is Parameter.Type.DOUBLE_ARRAY and parameter.type_ is Parameter.Type.INTEGER_ARRAY:
        return Parameter(parameter.name, value=[float(v) for v in parameter.value])
    return parameter


# Parameters a node may be given without declaring them itself: rclpy declares use_sim_time and
# start_type_description_service (has_parameter sees those); qos_overrides.<topic>.* are only declared for
# publishers/subscriptions created with QoSOverridingOptions, and a launch file may set them for any node.
UNDECLARED_PARAMETER_PREFIXES = ("qos_overrides.",)


class _RejectUnknownParametersAfterInit(type(Node)):
    """Metaclass: once a node's whole ``__init__`` chain has run, reject start-up parameters it never declared.

    A node whose construction fails (this check, a ConfigError, NodeExit) is destroyed before the error
    propagates, so its publishers and threads do not outlive it (run_node never gets the object).
    """

    def __call__(cls, *args, **kwargs):
        node = cls.__new__(cls)
        try:
            node.__init__(*args, **kwargs)
            node.reject_unknown_parameters()
            node.apply_scheduling()          # last: every thread the node's construction started is covered
        except BaseException:
            try:
                node.destroy_node()
            except Exception:  # noqa: BLE001 - the construction error is the one to report
                pass
            raise
        return node


class DexterityNode(Node, metaclass=_RejectUnknownParametersAfterInit):
    """Base class of every dexterity_ros node: typed config, health, /diagnostics at 1 Hz."""

    def __init__(self, node_name: str, config_cls: type[C], diagnostics_period_s: float = 1.0, **kwargs):
        super().__init__(node_name, **kwargs)
        self.add_pre_set_parameters_callback(self._accept_integers_for_doubles)
        self.config_cls = config_cls
        self.config: C = self.declare_config(config_cls)
        self.health = Health(self.get_name())
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS.name, qos_profile(DIAGNOSTICS))
        self._last_log: dict[str, float] = {}
        self.create_timer(diagnostics_period_s, self.publish_diagnostics)

    # ---------------------------------------------------------- parameters
    def declare_config(self, config_cls: type[C]) -> C:
        """Declare every documented field of ``config_cls`` as a typed ROS parameter; the filled config."""
        hints = typing.get_type_hints(config_cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(config_cls):
            if "description" not in field.metadata:
                continue
            hint = hints[field.name]
            ptype = parameter_type(hint)
            descriptor = _descriptor(field, ptype, hint)
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            placeholder = None
            if isinstance(default, (list, tuple)) and len(default) == 0:
                placeholder = _EMPTY_PLACEHOLDERS.get(ptype) or ([""] if "str" in str(hint) else [0.0])
                default = placeholder
            self._prepare_override(config_cls, field, ptype, placeholder)
            value = self.declare_parameter(_ros_name(field), default, descriptor).value
            if isinstance(value, (list, tuple)) or type(value).__name__ == "array":
                value = list(value)
            if placeholder is not None and value == placeholder:
                value = []
            values[field.name] = value
        return self.config_from_values(config_cls, values)

    def declare_typed_parameter(self, name: str, default: Any, descriptor: ParameterDescriptor) -> Any:
        """declare_parameter for a parameter outside the config (typed by its default); ints accepted for floats."""
        ptype = Parameter.Type.from_parameter_value(default)
        override = self._parameter_overrides.get(name)
        if override is not None and override.type_ is not Parameter.Type.NOT_SET:
            override = self._parameter_overrides[name] = _as_declared_type(override, ptype)
            if override.type_ is not ptype:
                raise ConfigError(f"node '{self.get_name()}' parameter '{name}' must be {_type_words(ptype)}, "
                                  f"got {override.value!r}")
        return self.declare_parameter(name, default, descriptor).value

    def _prepare_override(self, config_cls: type, field: dataclasses.Field, ptype: Parameter.Type | None,
                          placeholder: list | None) -> None:
        """Give a start-up value the declared type where that loses nothing; refuse a wrong one as ConfigError.

        rclpy would raise its own exception (a traceback, exit 1) for a wrong type or an out-of-range value;
        a mistyped parameter file must instead name the parameter and exit 2, as before typed declaration.
        """
        name = _ros_name(field)
        override = self._parameter_overrides.get(name)
        if override is None or ptype is None or override.type_ is Parameter.Type.NOT_SET:
            return
        if placeholder is not None and override.type_ in _ARRAY_KINDS and len(override.value) == 0:
            override = Parameter(name, value=list(placeholder))    # an empty list of any element type: []
        override = _as_declared_type(override, ptype)
        self._parameter_overrides[name] = override
        if override.type_ is not ptype:
            where = f"node '{self.get_name()}' parameters"
            try:
                from_dict(config_cls, {field.name: override.value})    # the config's own wording of the error
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            raise ConfigError(f"{where}: {field.name}: expected {_type_words(ptype)}, got {override.value!r}")
        self._check_limits(field, override.value)

    def _accept_integers_for_doubles(self, parameters: list[Parameter]) -> list[Parameter]:
        """Pre-set callback: ``ros2 param set /node rate 2`` sets the floating-point parameter to 2.0."""
        out = []
        for p in parameters:
            descriptor = self._descriptors.get(p.name)
            if descriptor is not None and not descriptor.dynamic_typing:
                p = _as_declared_type(p, Parameter.Type(descriptor.type))
            out.append(p)
        return out

    def unknown_parameters(self) -> list[str]:
        """Start-up parameter overrides (``-p``, params files, launch) that this node has not declared."""
        overrides = getattr(self, "_parameter_overrides", None) or {}
        return sorted(name for name in overrides
                      if not self.has_parameter(name) and not name.startswith(UNDECLARED_PARAMETER_PREFIXES))

    def reject_unknown_parameters(self) -> None:
        """Raise ConfigError naming each undeclared start-up parameter (a typo would silently use a default).

        Runs automatically after the node's constructor; a node may call it earlier (before it touches
        hardware or loads models) once it has declared everything. Idempotent.
        """
        unknown = self.unknown_parameters()
        if not unknown:
            return
        declared = sorted(self._parameters)
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
            if close:
                hints.append(f"'{close[0]}' for '{name}'")
        raise ConfigError(f"node '{self.get_name()}': unknown parameter(s) {unknown}"
                          + (f"; did you mean {', '.join(hints)}?" if hints else "")
                          + " (the node's parameters are listed in README.md, Parameters; "
                            "`ros2 param list` shows them on a running node)")

    def apply_scheduling(self) -> None:
        """SCHED_FIFO for this process's threads when the config asks (``realtime_priority``, RealtimeConfig).

        Refused by the kernel (no CAP_SYS_NICE, no rtprio limit): a warning, a /diagnostics problem
        and the reason under the ``scheduling`` value; the node runs on the normal scheduler.
        """
        priority = getattr(self.config, "realtime_priority", None)
        if priority is None:
            return
        outcome = apply_realtime_priority(int(priority))
        self.health.set_value(diagnostic_keys.SCHEDULING, outcome.describe())
        if outcome.refused is not None:
            self.health.problem(diagnostic_keys.SCHEDULING, Level.WARN, outcome.describe())
            self.get_logger().warning(outcome.describe())
        elif outcome.realtime:
            self.get_logger().info(f"scheduling: {outcome.describe()}")

    def config_from_values(self, config_cls: type[C], values: dict[str, Any]) -> C:
        try:
            config = from_dict(config_cls, values)
        except ConfigError as exc:
            raise ConfigError(f"node '{self.get_name()}' parameters: {exc}") from None
        for field in dataclasses.fields(config_cls):
            self._check_limits(field, getattr(config, field.name))
        return config

    def _check_limits(self, field: dataclasses.Field, value: Any) -> None:
        limits = field.metadata.get("constraints") or {}
        if "min" in limits and value < limits["min"] or "max" in limits and value > limits["max"]:
            raise ConfigError(f"node '{self.get_name()}' parameter '{_ros_name(field)}' = {value} "
                              f"outside [{limits.get('min')}, {limits.get('max')}]")

    # ----------------------------------------------------- guarded callbacks
    def _guarded(self, callback: Callable, what: str) -> Callable:
        """Wrap a callback so an unexpected exception is reported, never fatal."""

        def guarded(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a node must survive garbage
                key = diagnostic_keys.exception_in(what)
                if self.health.counters.get(key, 0) == 0:
                    self.get_logger().error(f"unexpected error in {what}:\n{traceback.format_exc()}")
                self.bad_input(key, f"unexpected error in {what}: {exc!r}", Level.ERROR)
                return None

        return guarded

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):
        guarded = self._guarded(callback, f"{topic} callback")
        if takes_message_info(callback):
            # rclpy passes MessageInfo (DDS source / received times) only to a callback of two parameters
            def guarded_with_info(msg, info):
                return guarded(msg, info)
            return super().create_subscription(msg_type, topic, guarded_with_info, qos_profile, **kwargs)
        return super().create_subscription(msg_type, topic, guarded, qos_profile, **kwargs)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        name = getattr(callback, "__name__", "timer")
        return super().create_timer(timer_period_sec, self._guarded(callback, f"timer {name}"), *args, **kwargs)

    # --------------------------------------------------------- diagnostics
    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def log_throttled(self, key: str, level: Level, message: str, period_s: float = 2.0) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -1e9) < period_s:
            return
        self._last_log[key] = now
        logger = self.get_logger()
        # one call site per severity: rclpy refuses a call site whose severity changes
        if level >= Level.ERROR:
            logger.error(message)
        elif level == Level.WARN:
            logger.warning(message)
        else:
            logger.info(message)

    def bad_input(self, key: str, message: str, level: Level = Level.WARN) -> None:
        """Report garbage input: a log line (throttled per key) and a /diagnostics problem."""
        self.health.problem(key, level, message)
        self.log_throttled(key, level, message)

    def diagnostic_status(self) -> DiagnosticStatus:
        level, message = self.health.status()
        status = DiagnosticStatus(level=bytes([int(level)]), name=f"dexterity_ros: {self.get_fully_qualified_name()}",
                                  message=message[:1000], hardware_id=self.hardware_id())
        status.values = [KeyValue(key=k, value=v) for k, v in self.health.key_values()]
        return status

    def hardware_id(self) -> str:
        return ""

    def publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostic_status()] + self.extra_diagnostics()
        self._diag_pub.publish(msg)

    def extra_diagnostics(self) -> list[DiagnosticStatus]:
        return []


def takes_message_info(callback: Callable) -> bool:
    """A subscription callback of two parameters (message, MessageInfo), as rclpy tells them apart."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(object())
        return False
    except TypeError:
        pass
    try:
        signature.bind(object(), object())
        return True
    except TypeError:
        return False


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Standard main(): init, build the node, spin until Ctrl-C/SIGTERM, exit code.

    A signal asks for a shutdown in every phase, and the exit code is then 0. SIGINT raises
    KeyboardInterrupt wherever Python is (rclpy.init, the factory, spinning); once rclpy.init has
    installed its handler, SIGINT and SIGTERM also shut the rclpy context down, after which rclpy
    calls raise: a node under construction gets "rclpy.init() has not been called", a spinning
    executor "Unable to convert call argument". Such an error with the context shut down is the
    requested shutdown, not a crash. SIGTERM is also the parent-death signal that
    ``dexterity-ros launch`` gives its children, so a node stops cleanly when its launcher dies.

    SIGUSR1 prints every thread's Python stack to stderr (``faulthandler``: it runs in C, so it
    works even while the interpreter is stuck in a native call); the launcher sends it to a node
    that ignored SIGINT and SIGTERM before it kills it, so a hang names where it hung.

    The teardown (destroying the node's DDS entities, shutting rclpy down) is bounded by
    ``TEARDOWN_GRACE_S`` (environment: ``DEXTERITY_TEARDOWN_GRACE_S``): a DDS participant that never finishes closing (Fast DDS can block on a
    shared-memory port left behind by a killed process) must not turn a requested stop into a
    hang the launcher has to SIGKILL. Past the grace the node prints a warning with every
    thread's stack and leaves with the exit code it had already decided on. The watchdog is a
    Python thread, so the node's rcl finalization runs with the GIL released
    (``native_teardown``): rclpy's binding holds it, and a blocked Fast DDS then left only the
    faulthandler backstop (exit code 1).
    """
    register_stack_dump()
    node = None
    code = 0
    initialised = False
    try:
        try:
            rclpy.init(args=args if args is not None else sys.argv)
            initialised = True
            node = factory()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except ConfigError as exc:
            _say(f"[ERROR] {exc}")
            code = 2
        except NodeExit as exc:
            _say(f"[{'ERROR' if exc.code else 'INFO'}] {exc}")
            code = exc.code
        except Exception as exc:  # last resort: a crash must name its cause
            if initialised and not rclpy.ok():
                # a signal shut the context down (rclpy's handler) and rclpy raised from the call in progress
                phase = "while spinning" if node is not None else "during start-up"
                _say(f"[INFO] shut down {phase} ({type(exc).__name__}: {exc})")
            else:
                _say(traceback.format_exc().rstrip("\n"))
                code = 1
        finally:
            _close(node, code)
    except KeyboardInterrupt:
        # SIGINT pending from the shutdown above, raised while it was being handled: the same shutdown
        _close(node, code)
    return code


def _say(text: str) -> None:
    """A line on stderr; nobody may be reading any more (launcher gone: broken pipe), which must not matter."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


TEARDOWN_GRACE_S = 4.0      # the launcher escalates after 5 s: a node ends its own teardown before that
TEARDOWN_GRACE_ENV = "DEXTERITY_TEARDOWN_GRACE_S"   # overrides it (seconds > 0), e.g. with a longer --sigterm-timeout
TEARDOWN_BACKSTOP_S = 0.5   # then, if even the watchdog thread cannot run (GIL held in C): faulthandler's exit


class _TeardownWatchdog:
    """Bounds the teardown: past the grace, print why and every stack, then leave with ``code``.

    The watchdog is a Python thread (it can run while the main thread waits in a native call that
    released the GIL, as DDS calls do); faulthandler's C timer is the backstop for a native call
    that holds the GIL (it exits with status 1 after printing the stacks).
    """

    def __init__(self, grace_s: float, code: int, who: str):
        self.grace_s, self.code, self.who = grace_s, code, who
        self._timer = threading.Timer(grace_s, self._expire)
        self._timer.daemon = True
        self._timer.start()
        try:
            faulthandler.dump_traceback_later(grace_s + TEARDOWN_BACKSTOP_S, exit=True)
        except (ValueError, RuntimeError, OSError):   # no usable stderr: the Python watchdog alone
            pass

    def _expire(self) -> None:
        report_stuck_teardown(self.who, self.grace_s, f"exiting with code {self.code} without waiting for it")
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os._exit(self.code)

    def cancel(self) -> None:
        self._timer.cancel()
        faulthandler.cancel_dump_traceback_later()


def report_stuck_teardown(who: str, grace_s: float, consequence: str) -> None:
    """The one wording of a ROS teardown past its grace (a node's or a side node's), then every thread's stack."""
    _say(f"[WARN] {who}: ROS teardown did not finish within {grace_s:g} s (a DDS entity that does not close); "
         f"{consequence}; the stacks follow")
    try:
        faulthandler.dump_traceback(all_threads=True)
    except (OSError, ValueError, RuntimeError):      # no usable stderr
        pass


def teardown_grace_s() -> float:
    try:
        value = float(os.environ.get(TEARDOWN_GRACE_ENV, TEARDOWN_GRACE_S))
    except ValueError:
        return TEARDOWN_GRACE_S
    return value if value > 0 and value == value else TEARDOWN_GRACE_S


def _close(node: Node | None, code: int = 0) -> None:
    """Destroy the node and shut rclpy down within TEARDOWN_GRACE_S; a second Ctrl-C meanwhile changes nothing."""
    who = "node"
    if node is not None:
        try:
            who = node.get_name()
        except Exception:   # already destroyed: keep the generic word
            pass
    watchdog = _TeardownWatchdog(teardown_grace_s(), code, who)
    try:
        _teardown(node)
    finally:
        watchdog.cancel()


def _teardown(node: Node | None) -> None:
    if node is not None:
        try:
            destroy_node_without_gil(node)     # a blocking DDS teardown must leave the watchdog free to run
        except (Exception, KeyboardInterrupt):
            pass
    try:
        if rclpy.ok():
            rclpy.try_shutdown()
    except (Exception, KeyboardInterrupt):
        pass


class NodeExit(Exception):
    """Raised inside a node to stop it with a message and an exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code

