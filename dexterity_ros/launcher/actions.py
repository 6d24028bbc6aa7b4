"""The launch actions: one handler per tag, registered explicitly in :data:`ACTIONS`.

Like ros2 launch's ``@expose_action``: ``@action("tag", attributes=..., children=...)`` binds a
tag to the function that runs it and says which attributes (besides ``if``/``unless``) and
children it takes; :func:`run_action` checks the entity against that before running it, so a
misspelt attribute or a stray child is a LaunchError at its ``file:line``, never ignored.
Scope actions change the :class:`~.context.Scope` (arguments, environment, namespace, remaps,
global parameters); ``<include>`` runs another file in the same scope and adds its location to
an error's include chain; ``<node>``/``<executable>`` append a :class:`~.plan.ProcessPlan`.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from .context import LaunchContext, Scope
from .errors import LaunchError
from .frontend import Substitution, XmlElement, check_entity, parse_xml
from .packages import resolve_node_executable
from .parameters import nested_params, param_value, params_file, yaml_inline
from .plan import DeclaredArgument, ProcessPlan
from .substitutions import substitute

Handler = Callable[[LaunchContext, XmlElement], None]


@dataclass(frozen=True)
class Action:
    """A tag ros2 launch knows and we implement: its handler and the shape of its entity."""

    tag: str
    run: Handler
    attributes: frozenset[str]           # besides if/unless, which every action takes
    children: frozenset[str]
    any_action_children: bool = False    # <group>: children are actions, checked when they run


ACTIONS: dict[str, Action] = {}

# valid in ros2 launch but not implemented here: a clear "unsupported" rather than "unknown"
UNSUPPORTED_ACTIONS = frozenset({
    "timer", "shutdown", "for", "for_each", "scoped_include", "set_parameters_from_file",
    "node_container", "load_composable_node", "composable_node", "lifecycle_node",
    "ros_timer", "set_ros_log_dir", "set_use_sim_time", "lifecycle_transition", "opaque_function",
})
_TAG_HINTS = {
    "set-env": "ros2 launch only knows <set_env> (underscore)",
    "unset-env": "ros2 launch only knows <unset_env> (underscore)",
    "param": "<param> is only valid inside <node>",
    "remap": "<remap> is only valid inside <node>; use <set_remap> for a whole scope",
    "env": "<env> is only valid inside <node>/<executable>; use <set_env> for a whole scope",
}
_OUTPUT_MODES = ("screen", "log", "both", "own_log")
_MAX_INCLUDE_DEPTH = 40
_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def action(*tags: str, attributes: Iterable[str] = (), children: Iterable[str] = (),
           any_action_children: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``tags``."""
    def register(run: Handler) -> Handler:
        for tag in tags:
            if tag in ACTIONS:
                raise ValueError(f"launch action <{tag}> registered twice")
            ACTIONS[tag] = Action(tag, run, frozenset(attributes), frozenset(children), any_action_children)
        return run
    return register


# ------------------------------------------------------------ running


def run_file(ctx: LaunchContext, path: Path, included_by: XmlElement | None = None) -> None:
    """Parse a launch file and run its actions in the current scope."""
    if len(ctx.file_stack) >= _MAX_INCLUDE_DEPTH:
        assert included_by is not None
        raise included_by.error(f"includes nested deeper than {_MAX_INCLUDE_DEPTH} (include cycle?)")
    root = parse_xml(path)
    _collect_declarations(ctx, root)
    ctx.file_stack.append(path)
    try:
        for child in root.children:
            run_action(ctx, child)
    finally:
        ctx.file_stack.pop()


def _collect_declarations(ctx: LaunchContext, element: XmlElement) -> None:
    """Every <arg> of a file counts as declared, even under a false condition (like ros2)."""
    for child in element.children:
        if child.tag == "arg" and "name" in child.attrib:
            ctx.declared_in_files.add(re.sub(r"\\(.)", r"\1", child.attrib["name"]))
        if child.tag not in ("include", "node", "executable"):
            _collect_declarations(ctx, child)


def run_action(ctx: LaunchContext, element: XmlElement) -> None:
    """Check an entity against its registered action, then run it if its condition allows."""
    tag = element.tag
    entry = ACTIONS.get(tag)
    if entry is None:
        if tag in UNSUPPORTED_ACTIONS:
            raise element.error(f"<{tag}> is a ros2 launch action that dexterity-ros launch "
                                "does not support")
        hint = _TAG_HINTS.get(tag)
        raise element.error(f"unknown tag <{tag}>" + (f": {hint}" if hint else ""))
    check_entity(element, entry.attributes | {"if", "unless"}, entry.children,
                 any_action_children=entry.any_action_children)
    if ctx.condition_allows(element):
        entry.run(ctx, element)


# ------------------------------------------------------ scope actions


@action("arg", attributes={"name", "default", "description"}, children={"choice"})
def declare_launch_argument(ctx: LaunchContext, element: XmlElement) -> None:
    name = ctx.literal(element, "name", required=True)
    assert name is not None
    default = element.attrib.get("default")
    description = ctx.literal(element, "description") or ""
    choices: list[str] = []
    for choice in element.children:
        check_entity(choice, {"value"}, ())
        choices.append(ctx.literal(choice, "value", required=True) or "")
    ctx.declared[name] = DeclaredArgument(name, default, description, tuple(choices), element.where)
    if name not in ctx.scope.configurations:
        if default is None:
            raise element.error(f'required launch argument "{name}" '
                                f'(description: "{description or "no description given"}") was not provided; '
                                f"pass {name}:=VALUE")
        ctx.scope.configurations[name] = ctx.evaluate(element, ctx.template(element, "default", default))
    value = ctx.scope.configurations[name]
    if choices and value not in choices:
        raise element.error(f'argument "{name}" provided value "{value}" is not valid; '
                            f"valid options are: {choices}")
    ctx.argument_values[name] = value


@action("let", attributes={"name", "value"})
def set_launch_configuration(ctx: LaunchContext, element: XmlElement) -> None:
    name = ctx.attr(element, "name", required=True)
    ctx.scope.configurations[name] = ctx.attr(element, "value", required=True)


@action("set_env", attributes={"name", "value"})
def set_environment_variable(ctx: LaunchContext, element: XmlElement) -> None:
    name = ctx.attr(element, "name", required=True)
    ctx.scope.environment[name] = ctx.attr(element, "value", required=True)


@action("unset_env", attributes={"name"})
def unset_environment_variable(ctx: LaunchContext, element: XmlElement) -> None:
    ctx.scope.environment.pop(ctx.attr(element, "name", required=True), None)


@action("append_env", attributes={"name", "value", "prepend", "separator"})
def append_environment_variable(ctx: LaunchContext, element: XmlElement) -> None:
    name = ctx.attr(element, "name", required=True)
    value = ctx.attr(element, "value", required=True)
    prepend = ctx.truth(element, ctx.attr(element, "prepend") or "false", "<append_env prepend=...>")
    separator = ctx.attr(element, "separator") or os.pathsep
    current = ctx.scope.environment.get(name)
    if current:
        value = value + separator + current if prepend else current + separator + value
    ctx.scope.environment[name] = value


@action("push-ros-namespace", "push_ros_namespace", attributes={"namespace"})
def push_ros_namespace(ctx: LaunchContext, element: XmlElement) -> None:
    pushed = ctx.attr(element, "namespace", required=True)
    namespace = make_namespace_absolute(prefix_namespace(ctx.scope.ros_namespace, pushed))
    validate_namespace(element, namespace)
    ctx.scope.ros_namespace = namespace


@action("set_remap", attributes={"from", "to"})
def set_remap(ctx: LaunchContext, element: XmlElement) -> None:
    ctx.scope.remaps.append((ctx.attr(element, "from", required=True), ctx.attr(element, "to", required=True)))


@action("set_parameter", attributes={"name", "value"})
def set_parameter(ctx: LaunchContext, element: XmlElement) -> None:
    name = ctx.attr(element, "name", required=True)
    ctx.scope.global_params.append((name, param_value(ctx, element, name)))


@action("log", attributes={"message"})
def log_info(ctx: LaunchContext, element: XmlElement) -> None:
    ctx.messages.append(ctx.attr(element, "message", required=True) or "")


@action("group", attributes={"scoped", "forwarding"}, children={"keep"}, any_action_children=True)
def group_action(ctx: LaunchContext, element: XmlElement) -> None:
    scoped = ctx.literal_bool(element, "scoped", default=True)
    forwarding = ctx.literal_bool(element, "forwarding", default=True)
    keeps: list[tuple[str, str]] = []
    for keep in (c for c in element.children if c.tag == "keep"):
        check_entity(keep, {"name", "value"}, ())
        keeps.append((ctx.attr(keep, "name", required=True), ctx.attr(keep, "value", required=True)))
    actions = [c for c in element.children if c.tag != "keep"]
    if not scoped:
        ctx.scope.configurations.update(keeps)
        for child in actions:
            run_action(ctx, child)
        return
    inner = ctx.scope.copy() if forwarding else Scope({}, dict(ctx.initial_environment))
    inner.configurations.update(keeps)
    with ctx.scoped(inner):
        for child in actions:
            run_action(ctx, child)


@action("include", attributes={"file"}, children={"arg"})
def include_launch_description(ctx: LaunchContext, element: XmlElement) -> None:
    file_text = ctx.attr(element, "file", required=True) or ""
    for argument in element.children:
        check_entity(argument, {"name", "value"}, ())
        name = ctx.attr(argument, "name", required=True)
        ctx.scope.configurations[name] = ctx.attr(argument, "value", required=True)
    path = Path(file_text).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        hint = ("" if Path(file_text).is_absolute() else
                " (relative paths are resolved against the current directory, as in ros2 launch; "
                "use $(dirname)/... or $(find-pkg-share pkg)/...)")
        raise element.error(f"included launch file not found: {file_text}{hint}")
    if not path.name.endswith(".xml"):
        raise element.error(f"only XML launch files can be included here, not {path.name}")
    ctx.include_stack.append((element.file, element.line))
    try:
        run_file(ctx, path, included_by=element)
    except LaunchError as exc:
        if not exc.included_from or exc.included_from[-1] != (element.file, element.line):
            exc.included_from.append((element.file, element.line))
        raise
    finally:
        ctx.include_stack.pop()


# ----------------------------------------------------------- processes


def process_common(ctx: LaunchContext, element: XmlElement) -> dict[str, Any]:
    output = ctx.attr(element, "output") or "log"
    if output not in _OUTPUT_MODES:
        raise element.error(f"output='{output}' is not one of {', '.join(_OUTPUT_MODES)}")
    respawn_text = ctx.attr(element, "respawn")
    respawn = ctx.truth(element, respawn_text, "respawn") if respawn_text is not None else False
    delay_text = ctx.attr(element, "respawn_delay")
    delay = 0.0
    if delay_text is not None:
        try:
            delay = float(delay_text)
        except ValueError:
            raise element.error(f"respawn_delay must be a number, got {delay_text!r}") from None
        if delay < 0:
            raise element.error("respawn_delay must be non-negative")
    env = dict(ctx.scope.environment)
    env_changes: dict[str, str | None] = {
        k: v for k, v in env.items() if ctx.initial_environment.get(k) != v}
    env_changes.update({k: None for k in ctx.initial_environment if k not in env})
    for child in element.children:
        if child.tag == "env":
            check_entity(child, {"name", "value"}, ())
            key = ctx.attr(child, "name", required=True)
            env[key] = env_changes[key] = ctx.attr(child, "value", required=True)
    prefix_text = ctx.attr(element, "launch-prefix")
    try:
        prefix = shlex.split(prefix_text) if prefix_text else []
    except ValueError as exc:
        raise element.error(f"launch-prefix: {exc}") from None
    cwd = ctx.attr(element, "cwd")
    on_exit = element.attrib.get("on_exit")
    if on_exit is not None and on_exit != "shutdown":
        # launch's ExecuteProcess.parse compares the raw text: no substitutions, no other action
        raise element.error(f"on_exit=\"{on_exit}\" is not supported: ros2 launch accepts only "
                            "on_exit=\"shutdown\" (written literally, no substitutions)")
    return dict(output="log" if output == "own_log" else output, respawn=respawn, respawn_delay=delay,
                env=env, env_changes=env_changes, prefix=prefix, cwd=cwd, on_exit=on_exit)


def command_line(ctx: LaunchContext, element: XmlElement, attr: str) -> list[str]:
    """Split like ros2's ExecuteProcess._parse_cmdline: text is shell-split, substitution results are not."""
    raw = element.attrib.get(attr)
    if raw is None:
        return []
    result: list[str] = []
    current: list[str] = []
    pending = False

    def flush() -> None:
        nonlocal current, pending
        if pending:
            result.append("".join(current))
        current, pending = [], False

    for part in ctx.template(element, attr, raw):
        if isinstance(part, Substitution):
            current.append(substitute(ctx, element, part))
            pending = True
            continue
        try:
            tokens = shlex.split(part)
        except ValueError as exc:
            raise element.error(f"attribute '{attr}': {exc}") from None
        if not tokens:
            flush()
            continue
        if part[0].isspace():
            flush()
        current.append(tokens[0])
        pending = True
        if len(tokens) > 1:
            flush()
            result.extend(tokens[1:-1])
            current, pending = [tokens[-1]], True
        if part[-1].isspace():
            flush()
    flush()
    return result


@action("executable", attributes={"cmd", "name", "cwd", "launch-prefix", "output", "respawn", "respawn_delay",
                                  "on_exit"}, children={"env"})
def execute_process(ctx: LaunchContext, element: XmlElement) -> None:
    common = process_common(ctx, element)
    cmd = command_line(ctx, element, "cmd")
    if not cmd:
        raise element.error("<executable> needs a non-empty cmd")
    label = ctx.next_label(ctx.attr(element, "name") or os.path.basename(cmd[0]))
    ctx.processes.append(ProcessPlan(
        label=label, kind="executable", cmd=tuple(common["prefix"] + cmd), env=common["env"],
        env_changes=common["env_changes"], cwd=common["cwd"], output=common["output"],
        respawn=common["respawn"], respawn_delay=common["respawn_delay"], source=element.where,
        on_exit=common["on_exit"]))


@action("node", attributes={"pkg", "exec", "name", "namespace", "exec_name", "args", "ros_args", "launch-prefix",
                            "output", "cwd", "respawn", "respawn_delay", "on_exit"},
        children={"param", "remap", "env"})
def node(ctx: LaunchContext, element: XmlElement) -> None:
    common = process_common(ctx, element)
    package = ctx.attr(element, "pkg")
    executable = ctx.attr(element, "exec", required=True) or ""
    node_name = ctx.attr(element, "name")
    if node_name is not None:
        node_name = node_name.lstrip("/")
        if not _NAME_TOKEN.fullmatch(node_name):
            raise element.error(f"invalid node name '{node_name}': use letters, digits and '_', "
                                "not starting with a digit")
    namespace = make_namespace_absolute(prefix_namespace(ctx.scope.ros_namespace, ctx.attr(element, "namespace")))
    if namespace is not None:
        validate_namespace(element, namespace)
    label = ctx.next_label(ctx.attr(element, "exec_name") or executable)
    try:
        base_cmd, extra_env = resolve_node_executable(package, executable)
    except FileNotFoundError as exc:
        raise element.error(str(exc)) from None
    env = common["env"]
    for key, value in extra_env.items():
        previous = env.get(key)
        env[key] = value + (os.pathsep + previous if previous else "")

    fqn = None if node_name is None else (namespace or "/").rstrip("/") + "/" + node_name
    cmd = common["prefix"] + base_cmd + command_line(ctx, element, "args")
    ros_args = command_line(ctx, element, "ros_args")
    if ros_args:
        cmd += ["--ros-args"] + ros_args
    cmd.append("--ros-args")
    if node_name is not None:
        cmd += ["-r", f"__node:={node_name}"]
    if namespace is not None:
        cmd += ["-r", f"__ns:={namespace}"]
    for name, value in ctx.scope.global_params:
        cmd += ["-p", f"{name}:={yaml_inline(value)}"]

    parameters: list[Mapping[str, Any] | Path] = []
    params_files: list[Path] = []
    inline: dict[str, Any] = {}

    def flush_inline() -> None:
        nonlocal inline
        if not inline:
            return
        path = ctx.params_dir / f"{label}-{len(params_files)}.yaml"
        key = fqn if fqn is not None else "/**"
        path.write_text(yaml.safe_dump({key: {"ros__parameters": inline}}, default_flow_style=False,
                                       sort_keys=False))
        parameters.append(dict(inline))
        params_files.append(path)
        inline = {}

    for child in element.children:
        if child.tag != "param":
            continue
        if "from" in child.attrib:
            flush_inline()
            path = params_file(ctx, child, label, len(params_files))
            parameters.append(path)
            params_files.append(path)
        else:
            inline.update(nested_params(ctx, child, prefix=""))
    flush_inline()
    for path in params_files:
        cmd += ["--params-file", str(path)]

    remappings = list(ctx.scope.remaps)
    for child in element.children:
        if child.tag == "remap":
            check_entity(child, {"from", "to"}, ())
            remappings.append((ctx.attr(child, "from", required=True), ctx.attr(child, "to", required=True)))
    for src, dst in remappings:
        cmd += ["-r", f"{src}:={dst}"]

    ctx.processes.append(ProcessPlan(
        label=label, kind="node", cmd=tuple(cmd), env=env, env_changes=common["env_changes"],
        cwd=common["cwd"], output=common["output"], respawn=common["respawn"],
        respawn_delay=common["respawn_delay"], source=element.where, package=package,
        executable=executable, node_name=node_name, namespace=namespace, parameters=tuple(parameters),
        params_files=tuple(params_files), remappings=tuple(remappings), on_exit=common["on_exit"]))


# ----------------------------------------------------------- ROS names


def prefix_namespace(base: str | None, namespace: str | None) -> str | None:
    """launch_ros.utilities.prefix_namespace: a relative namespace goes under the pushed one."""
    if base is None and namespace is None:
        return None
    if namespace is None:
        combined = base
    elif not base or namespace.startswith("/"):
        combined = namespace
    else:
        combined = ("" if base == "/" else base) + "/" + namespace
    assert combined is not None
    return combined if combined == "/" else combined.rstrip("/")


def make_namespace_absolute(namespace: str | None) -> str | None:
    if namespace is None:
        return None
    return namespace if namespace.startswith("/") else "/" + namespace


def validate_namespace(element: XmlElement, namespace: str) -> None:
    if namespace == "/":
        return
    tokens = namespace[1:].split("/")
    if not namespace.startswith("/") or not all(_NAME_TOKEN.fullmatch(t) for t in tokens):
        raise element.error(f"invalid namespace '{namespace}': tokens of letters, digits and '_' "
                            "separated by '/', none starting with a digit")
