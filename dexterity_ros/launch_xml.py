"""ROS 2 XML launch files without the launch/launch_ros packages (not installable here).

Three steps, all pure (no rclpy, nothing started):

1. parse: expat builds an element tree that remembers file and line of every tag;
2. evaluate: substitutions, ``if``/``unless``, ``<arg>``/``<let>``, ``<group>`` scoping,
   ``<include>`` and ``<push-ros-namespace>`` behave like the ros2 launch XML frontend
   (launch_xml + launch_ros), so the same files run under ``ros2 launch``;
3. plan: every ``<node>``/``<executable>`` becomes a :class:`ProcessPlan` with its full
   command line (``--ros-args -r __node:=... -r __ns:=... --params-file ...``).

Starting and stopping the processes is :mod:`dexterity_ros.process_supervisor`'s job.
Anything ros2 launch would reject (unknown tag, unknown attribute, undeclared argument,
missing include) is a :class:`LaunchError` naming the file and line.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import shlex
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union
from xml.parsers import expat

import yaml

from . import paths

# ------------------------------------------------------------------ errors


class LaunchError(Exception):
    """A launch file problem, located as ``file:line`` (plus the include chain)."""

    def __init__(self, message: str, file: Path | str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = Path(file) if file is not None else None
        self.line = line
        self.included_from: list[tuple[Path, int]] = []

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        chain = "".join(f"\n  included from {f}:{n}" for f, n in self.included_from)
        return f"{where}{self.message}{chain}"


# ------------------------------------------------------------- XML parsing


@dataclass
class XmlElement:
    """One tag of a launch file with the location it came from."""

    tag: str
    attrib: dict[str, str]
    file: Path
    line: int
    children: list["XmlElement"] = field(default_factory=list)
    text: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def parse_xml(path: Path | str) -> XmlElement:
    """Parse a launch file into :class:`XmlElement` s (expat: line numbers, no lxml)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LaunchError("launch file not found", path) from None
    except OSError as exc:
        raise LaunchError(f"cannot read launch file: {exc.strerror}", path) from None
    parser = expat.ParserCreate()
    parser.buffer_text = True
    stack: list[XmlElement] = []
    roots: list[XmlElement] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = XmlElement(tag, dict(attrs), path, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise LaunchError(f"XML syntax error: {expat.ErrorString(exc.code)} (column {exc.offset + 1})",
                          path, exc.lineno) from None
    root = roots[0]
    if root.tag != "launch":
        raise LaunchError(f"root tag must be <launch>, found <{root.tag}>", path, root.line)
    return root


# ----------------------------------------------------------- substitutions


@dataclass(frozen=True)
class Substitution:
    """``$(name arg ...)``; every argument is itself a template (text and substitutions)."""

    name: str
    args: tuple[tuple["Part", ...], ...]


Part = Union[str, Substitution]
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _TemplateParser:
    """Recursive descent over the launch frontend substitution grammar (launch/frontend/grammar.lark).

    Top-level text keeps quotes literally; ``\\x`` escapes any character; arguments are
    separated by spaces and may be quoted with '...' or "..." to contain spaces.
    """

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str) -> ValueError:
        return ValueError(f"{message} at column {self.pos + 1} of {self.text!r}")

    def template(self) -> tuple[Part, ...]:
        parts = self._run(terminators="", quote=None)
        if self.pos != len(self.text):  # pragma: no cover - _run consumes everything at top level
            raise self.error("unexpected character")
        return parts

    def _run(self, terminators: str, quote: str | None) -> tuple[Part, ...]:
        parts: list[Part] = []
        buf: list[str] = []
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < n:
                buf.append(text[self.pos + 1])
                self.pos += 2
                continue
            if ch == "$" and text.startswith("$(", self.pos):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self._substitution())
                continue
            if ch in terminators:
                break
            if quote is None and terminators and ch in "'\"(":
                raise self.error(f"unexpected {ch!r} inside a substitution argument (quote the argument)")
            buf.append(ch)
            self.pos += 1
        if buf:
            parts.append("".join(buf))
        return tuple(parts)

    def _substitution(self) -> Substitution:
        start = self.pos
        self.pos += 2
        match = _IDENTIFIER.match(self.text, self.pos)
        if not match:
            raise self.error("expected a substitution name after '$('")
        name = match.group(0)
        self.pos = match.end()
        args: list[tuple[Part, ...]] = []
        while True:
            if self.pos >= len(self.text):
                self.pos = start
                raise self.error("unterminated substitution '$(' (missing ')')")
            ch = self.text[self.pos]
            if ch == ")":
                self.pos += 1
                return Substitution(name, tuple(args))
            if ch != " ":
                raise self.error(f"unexpected {ch!r} in substitution '{name}'")
            while self.pos < len(self.text) and self.text[self.pos] == " ":
                self.pos += 1
            if self.pos < len(self.text) and self.text[self.pos] == ")":
                continue
            args.append(self._argument())

    def _argument(self) -> tuple[Part, ...]:
        ch = self.text[self.pos] if self.pos < len(self.text) else ""
        if ch in ("'", '"'):
            self.pos += 1
            parts = self._run(terminators=ch, quote=ch)
            if self.pos >= len(self.text):
                raise self.error(f"unterminated quoted argument (missing {ch})")
            self.pos += 1
            return parts or ("",)
        return self._run(terminators=" )", quote=None)


def parse_template(text: str) -> tuple[Part, ...]:
    """Parse an attribute value into text and :class:`Substitution` parts (raises ValueError)."""
    if not text:
        return ("",)
    return _TemplateParser(text).template() or ("",)


def has_substitutions(parts: Sequence[Part]) -> bool:
    return any(isinstance(p, Substitution) for p in parts)


# ------------------------------------------------------------- evaluation

_TRUE = ("true", "1")
_FALSE = ("false", "0")

# ros2 launch actions we implement: tag -> allowed attributes (besides if/unless), allowed children
_ACTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "arg": (frozenset({"name", "default", "description"}), frozenset({"choice"})),
    "let": (frozenset({"name", "value"}), frozenset()),
    "set_env": (frozenset({"name", "value"}), frozenset()),
    "unset_env": (frozenset({"name"}), frozenset()),
    "append_env": (frozenset({"name", "value", "prepend", "separator"}), frozenset()),
    "group": (frozenset({"scoped", "forwarding"}), frozenset({"keep"})),  # + any action
    "include": (frozenset({"file"}), frozenset({"arg"})),
    "node": (frozenset({"pkg", "exec", "name", "namespace", "exec_name", "args", "ros_args",
                        "launch-prefix", "output", "cwd", "respawn", "respawn_delay", "on_exit"}),
             frozenset({"param", "remap", "env"})),
    "executable": (frozenset({"cmd", "name", "cwd", "launch-prefix", "output", "respawn",
                              "respawn_delay", "on_exit"}), frozenset({"env"})),
    "push-ros-namespace": (frozenset({"namespace"}), frozenset()),
    "push_ros_namespace": (frozenset({"namespace"}), frozenset()),
    "set_remap": (frozenset({"from", "to"}), frozenset()),
    "set_parameter": (frozenset({"name", "value"}), frozenset()),
    "log": (frozenset({"message"}), frozenset()),
}
# valid in ros2 launch but not implemented here: a clear "unsupported" rather than "unknown"
_UNSUPPORTED_ACTIONS = frozenset({
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
_UNSUPPORTED_ATTRS = {"shell": "shell=true is not supported by dexterity-ros launch"}
_OUTPUT_MODES = ("screen", "log", "both", "own_log")
_PARAM_TYPES: dict[str, tuple[type, bool]] = {
    "str": (str, False), "int": (int, False), "float": (float, False), "bool": (bool, False),
    "list_of_str": (str, True), "list_of_int": (int, True), "list_of_float": (float, True),
    "list_of_bool": (bool, True),
}
_MAX_INCLUDE_DEPTH = 40


@dataclass(frozen=True)
class DeclaredArgument:
    """An ``<arg>`` declaration (``ros2 launch -s`` shows these)."""

    name: str
    default: str | None
    description: str
    choices: tuple[str, ...]
    where: str


@dataclass(frozen=True)
class ProcessPlan:
    """One process the launch file asks for, fully resolved."""

    label: str                               # "talker-1": prefixes its output, like ros2 launch
    kind: str                                # "node" or "executable"
    cmd: tuple[str, ...]
    env: Mapping[str, str]                   # the complete environment of the child
    env_changes: Mapping[str, str | None]    # what the launch file changed (None = unset)
    cwd: str | None
    output: str                              # "screen" | "log" | "both"
    respawn: bool
    respawn_delay: float
    source: str                              # "file.launch.xml:12"
    package: str | None = None
    executable: str | None = None
    node_name: str | None = None
    namespace: str | None = None             # absolute, or None when not namespaced
    parameters: tuple[Mapping[str, Any] | Path, ...] = ()   # inline dicts and --params-file paths, in order
    params_files: tuple[Path, ...] = ()      # every --params-file, generated ones included
    remappings: tuple[tuple[str, str], ...] = ()
    on_exit: str | None = None               # "shutdown": its exit shuts the whole launch down

    @property
    def fully_qualified_name(self) -> str | None:
        if self.node_name is None:
            return None
        ns = self.namespace or "/"
        return ns.rstrip("/") + "/" + self.node_name

    @property
    def inline_parameters(self) -> dict[str, Any]:
        """Parameters written in the launch file (not those from ``from=`` files), merged."""
        merged: dict[str, Any] = {}
        for item in self.parameters:
            if isinstance(item, Mapping):
                merged.update(item)
        return merged


@dataclass
class LaunchPlan:
    """The evaluated launch file: processes to start, nothing started yet."""

    file: Path
    processes: list[ProcessPlan]
    arguments: dict[str, str]                     # final values of every declared argument
    declared_arguments: dict[str, DeclaredArgument]
    messages: list[str]                           # <log message="..."/>, in order
    params_dir: Path | None = None
    _owns_params_dir: bool = False

    def cleanup(self) -> None:
        """Remove the generated parameter files (call after the processes are gone)."""
        if self._owns_params_dir and self.params_dir is not None:
            shutil.rmtree(self.params_dir, ignore_errors=True)

    def describe(self) -> str:
        """Human-readable plan (``dexterity-ros launch --print``)."""
        lines = [f"# {self.file}"]
        if self.arguments:
            lines.append("# arguments: " + ", ".join(f"{k}:={v}" for k, v in sorted(self.arguments.items())))
        for message in self.messages:
            lines.append(f"# log: {message}")
        for proc in self.processes:
            head = f"[{proc.label}] {proc.kind}"
            if proc.kind == "node":
                head += f" {proc.package or ''}/{proc.executable}"
                if proc.fully_qualified_name:
                    head += f" as {proc.fully_qualified_name}"
                elif proc.namespace:
                    head += f" in {proc.namespace}"
            lines.append(f"{head}  ({proc.source}, output={proc.output}"
                         + (f", respawn after {proc.respawn_delay:g} s" if proc.respawn else "")
                         + (f", on_exit={proc.on_exit}" if proc.on_exit else "") + ")")
            lines.append(f"  cmd: {shlex.join(proc.cmd)}")
            if proc.cwd:
                lines.append(f"  cwd: {proc.cwd}")
            for key, value in proc.env_changes.items():
                lines.append(f"  env: {key}={value}" if value is not None else f"  env: unset {key}")
            for path in proc.params_files:
                if self.params_dir is not None and self.params_dir in path.parents:
                    lines.append(f"  params file {path.name} (generated):")
                    try:
                        lines.extend("    " + ln for ln in path.read_text().splitlines())
                    except OSError:
                        pass
        return "\n".join(lines)


@dataclass
class _Scope:
    """Launch configurations and everything ros2 launch keeps in them (scoped together)."""

    configurations: dict[str, str]
    environment: dict[str, str]
    ros_namespace: str | None = None
    remaps: list[tuple[str, str]] = field(default_factory=list)
    global_params: list[tuple[str, Any]] = field(default_factory=list)

    def copy(self) -> "_Scope":
        return _Scope(dict(self.configurations), dict(self.environment), self.ros_namespace,
                      list(self.remaps), list(self.global_params))


class _Evaluator:
    def __init__(self, environ: Mapping[str, str], params_dir: Path):
        self.initial_environment = dict(environ)
        self.scope = _Scope({}, dict(environ))
        self.params_dir = params_dir
        self.processes: list[ProcessPlan] = []
        self.declared: dict[str, DeclaredArgument] = {}
        self.argument_values: dict[str, str] = {}
        self.declared_in_files: set[str] = set()
        self.messages: list[str] = []
        self.file_stack: list[Path] = []
        self.include_stack: list[tuple[Path, int]] = []
        self.anon_names: dict[str, str] = {}

    # ------------------------------------------------------ errors / helpers
    def error(self, element: XmlElement, message: str) -> LaunchError:
        return LaunchError(message, element.file, element.line)

    def template(self, element: XmlElement, attr: str, text: str) -> tuple[Part, ...]:
        try:
            return parse_template(text)
        except ValueError as exc:
            raise self.error(element, f"<{element.tag}> attribute '{attr}': {exc}") from None

    def attr(self, element: XmlElement, name: str, required: bool = False) -> str | None:
        """Attribute value with substitutions performed."""
        raw = element.attrib.get(name)
        if raw is None:
            if required:
                raise self.error(element, f"<{element.tag}> needs the attribute '{name}'")
            return None
        return self.evaluate(element, self.template(element, name, raw))

    def evaluate(self, element: XmlElement, parts: Sequence[Part]) -> str:
        return "".join(p if isinstance(p, str) else self.substitute(element, p) for p in parts)

    def literal(self, element: XmlElement, name: str, required: bool = False) -> str | None:
        """Attribute without substitutions (ros2's escape_characters only)."""
        raw = element.attrib.get(name)
        if raw is None:
            if required:
                raise self.error(element, f"<{element.tag}> needs the attribute '{name}'")
            return None
        return re.sub(r"\\(.)", r"\1", raw)

    def check_entity(self, element: XmlElement, attrs: Iterable[str], children: Iterable[str],
                     any_action_children: bool = False) -> None:
        allowed = set(attrs)
        for attr in element.attrib:
            if attr not in allowed:
                hint = _UNSUPPORTED_ATTRS.get(attr)
                raise self.error(element, hint if hint else
                                 f"unknown attribute '{attr}' in <{element.tag}> "
                                 f"(allowed: {', '.join(sorted(allowed))})")
        allowed_children = set(children)
        for child in element.children:
            if child.tag in allowed_children or any_action_children:
                continue
            raise self.error(child, f"unexpected <{child.tag}> inside <{element.tag}>"
                             + (f" (allowed: {', '.join(sorted(allowed_children))})" if allowed_children
                                else f" (<{element.tag}> takes no children)"))
        if element.text.strip():
            raise self.error(element, f"unexpected text {element.text.strip()[:40]!r} inside <{element.tag}>"
                             " (launch files use attributes, e.g. value=\"...\")")

    # ---------------------------------------------------------- substitutions
    def substitute(self, element: XmlElement, sub: Substitution) -> str:
        args = [self.evaluate(element, a) for a in sub.args]

        def need(lo: int, hi: int) -> None:
            if not lo <= len(args) <= hi:
                count = f"{lo}" if lo == hi else f"{lo} or {hi}"
                raise self.error(element, f"$({sub.name}) expects {count} argument(s), got {len(args)}")

        name = sub.name
        if name == "var":
            need(1, 2)
            if args[0] in self.scope.configurations:
                return self.scope.configurations[args[0]]
            if len(args) == 2:
                return args[1]
            raise self.error(element, f"launch configuration '{args[0]}' does not exist "
                             "(declare it with <arg> or <let>)")
        if name in ("env", "optenv"):
            need(1, 2)
            value = self.scope.environment.get(args[0])
            if value is not None:
                return value
            if len(args) == 2:
                return args[1]
            if name == "optenv":
                return ""
            raise self.error(element, f"environment variable '{args[0]}' does not exist "
                             f"(give a default: $(env {args[0]} default))")
        if name == "find-pkg-share":
            need(1, 1)
            try:
                return str(find_package_share(args[0]))
            except FileNotFoundError as exc:
                raise self.error(element, f"$(find-pkg-share {args[0]}): {exc}") from None
        if name == "find-pkg-prefix":
            need(1, 1)
            try:
                return str(find_package_prefix(args[0]))
            except FileNotFoundError as exc:
                raise self.error(element, f"$(find-pkg-prefix {args[0]}): {exc}") from None
        if name == "find-exec":
            need(1, 1)
            found = shutil.which(args[0], path=self.scope.environment.get("PATH"))
            if not found:
                raise self.error(element, f"$(find-exec {args[0]}): executable not found on PATH")
            return found
        if name == "dirname":
            need(0, 0)
            return str(self.file_stack[-1].parent)
        if name == "filename":
            need(0, 0)
            return str(self.file_stack[-1])
        if name == "anon":
            need(1, 1)
            return self.anon_names.setdefault(args[0], f"{args[0]}_{os.getpid()}_{uuid.uuid4().hex[:8]}")
        if name == "eval":
            need(1, 2)
            namespace: dict[str, Any] = {"math": math}
            namespace.update({k: v for k, v in vars(math).items() if not k.startswith("_")})
            try:
                return str(eval(args[0], namespace))  # noqa: S307 - launch files are trusted code, as in ros2
            except Exception as exc:
                raise self.error(element, f"$(eval {args[0]!r}) failed: {type(exc).__name__}: {exc}") from None
        if name in ("not", "and", "or"):
            need(1 if name == "not" else 2, 1 if name == "not" else 2)
            values = [self.truth(element, a, f"$({name})") for a in args]
            result = (not values[0]) if name == "not" else (all(values) if name == "and" else any(values))
            return "true" if result else "false"
        if name in ("equals", "not-equals"):
            need(2, 2)
            same = _normalise_for_equals(args[0]) == _normalise_for_equals(args[1])
            return "true" if same == (name == "equals") else "false"
        if name in ("command", "exec-in-pkg", "find-pkg", "parameter", "ros-param"):
            raise self.error(element, f"$({name}) is not supported by dexterity-ros launch")
        raise self.error(element, f"unknown substitution $({name})")

    def truth(self, element: XmlElement, value: str, what: str) -> bool:
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise self.error(element, f"{what}: '{value}' is not a boolean "
                         "(expected true/false/1/0, case-insensitive)")

    def condition_allows(self, element: XmlElement) -> bool:
        if_value = element.attrib.get("if")
        unless_value = element.attrib.get("unless")
        if if_value is not None and unless_value is not None:
            raise self.error(element, f"<{element.tag}>: if and unless can't be used together")
        if if_value is not None:
            return self.truth(element, self.attr(element, "if") or "", f"<{element.tag} if=...>")
        if unless_value is not None:
            return not self.truth(element, self.attr(element, "unless") or "", f"<{element.tag} unless=...>")
        return True

    # ---------------------------------------------------------------- files
    def run_file(self, path: Path, included_by: XmlElement | None = None) -> None:
        if len(self.file_stack) >= _MAX_INCLUDE_DEPTH:
            raise self.error(included_by, f"includes nested deeper than {_MAX_INCLUDE_DEPTH} (include cycle?)")
        root = parse_xml(path)
        self._collect_declarations(root)
        self.file_stack.append(path)
        try:
            for child in root.children:
                self.run_action(child)
        finally:
            self.file_stack.pop()

    def _collect_declarations(self, element: XmlElement) -> None:
        """Every <arg> of a file counts as declared, even under a false condition (like ros2)."""
        for child in element.children:
            if child.tag == "arg" and "name" in child.attrib:
                self.declared_in_files.add(re.sub(r"\\(.)", r"\1", child.attrib["name"]))
            if child.tag not in ("include", "node", "executable"):
                self._collect_declarations(child)

    # -------------------------------------------------------------- actions
    def run_action(self, element: XmlElement) -> None:
        tag = element.tag
        if tag not in _ACTIONS:
            if tag in _UNSUPPORTED_ACTIONS:
                raise self.error(element, f"<{tag}> is a ros2 launch action that dexterity-ros launch "
                                 "does not support")
            hint = _TAG_HINTS.get(tag)
            raise self.error(element, f"unknown tag <{tag}>" + (f": {hint}" if hint else ""))
        attrs, children = _ACTIONS[tag]
        self.check_entity(element, attrs | {"if", "unless"}, children, any_action_children=(tag == "group"))
        if not self.condition_allows(element):
            return
        getattr(self, "do_" + tag.replace("-", "_"))(element)

    def do_arg(self, element: XmlElement) -> None:
        name = self.literal(element, "name", required=True)
        assert name is not None
        default = element.attrib.get("default")
        description = self.literal(element, "description") or ""
        choices: list[str] = []
        for choice in element.children:
            self.check_entity(choice, {"value"}, ())
            choices.append(self.literal(choice, "value", required=True) or "")
        self.declared[name] = DeclaredArgument(name, default, description, tuple(choices), element.where)
        if name not in self.scope.configurations:
            if default is None:
                raise self.error(element, f'required launch argument "{name}" '
                                 f'(description: "{description or "no description given"}") was not provided; '
                                 f"pass {name}:=VALUE")
            self.scope.configurations[name] = self.evaluate(element, self.template(element, "default", default))
        value = self.scope.configurations[name]
        if choices and value not in choices:
            raise self.error(element, f'argument "{name}" provided value "{value}" is not valid; '
                             f"valid options are: {choices}")
        self.argument_values[name] = value

    def do_let(self, element: XmlElement) -> None:
        name = self.attr(element, "name", required=True)
        self.scope.configurations[name] = self.attr(element, "value", required=True)

    def do_set_env(self, element: XmlElement) -> None:
        name = self.attr(element, "name", required=True)
        self.scope.environment[name] = self.attr(element, "value", required=True)

    def do_unset_env(self, element: XmlElement) -> None:
        self.scope.environment.pop(self.attr(element, "name", required=True), None)

    def do_append_env(self, element: XmlElement) -> None:
        name = self.attr(element, "name", required=True)
        value = self.attr(element, "value", required=True)
        prepend = self.truth(element, self.attr(element, "prepend") or "false", "<append_env prepend=...>")
        separator = self.attr(element, "separator") or os.pathsep
        current = self.scope.environment.get(name)
        if current:
            value = value + separator + current if prepend else current + separator + value
        self.scope.environment[name] = value

    def do_push_ros_namespace(self, element: XmlElement) -> None:
        pushed = self.attr(element, "namespace", required=True)
        namespace = make_namespace_absolute(prefix_namespace(self.scope.ros_namespace, pushed))
        self.validate_namespace(element, namespace)
        self.scope.ros_namespace = namespace

    def do_set_remap(self, element: XmlElement) -> None:
        self.scope.remaps.append((self.attr(element, "from", required=True), self.attr(element, "to", required=True)))

    def do_set_parameter(self, element: XmlElement) -> None:
        name = self.attr(element, "name", required=True)
        self.scope.global_params.append((name, self.param_value(element, name)))

    def do_log(self, element: XmlElement) -> None:
        self.messages.append(self.attr(element, "message", required=True) or "")

    def do_group(self, element: XmlElement) -> None:
        scoped = self.literal_bool(element, "scoped", default=True)
        forwarding = self.literal_bool(element, "forwarding", default=True)
        keeps: list[tuple[str, str]] = []
        for keep in (c for c in element.children if c.tag == "keep"):
            self.check_entity(keep, {"name", "value"}, ())
            keeps.append((self.attr(keep, "name", required=True), self.attr(keep, "value", required=True)))
        actions = [c for c in element.children if c.tag != "keep"]
        if not scoped:
            self.scope.configurations.update(keeps)
            for child in actions:
                self.run_action(child)
            return
        saved = self.scope
        inner = saved.copy()
        if not forwarding:
            inner = _Scope({}, dict(self.initial_environment))
        inner.configurations.update(keeps)
        self.scope = inner
        try:
            for child in actions:
                self.run_action(child)
        finally:
            self.scope = saved

    def literal_bool(self, element: XmlElement, name: str, default: bool) -> bool:
        raw = element.attrib.get(name)
        if raw is None:
            return default
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, bool):
            raise self.error(element, f"<{element.tag}> attribute '{name}' must be true or false, got {raw!r}")
        return value

    def do_include(self, element: XmlElement) -> None:
        file_text = self.attr(element, "file", required=True) or ""
        for arg in element.children:
            self.check_entity(arg, {"name", "value"}, ())
            name = self.attr(arg, "name", required=True)
            self.scope.configurations[name] = self.attr(arg, "value", required=True)
        path = Path(file_text).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            hint = ("" if Path(file_text).is_absolute() else
                    " (relative paths are resolved against the current directory, as in ros2 launch; "
                    "use $(dirname)/... or $(find-pkg-share pkg)/...)")
            raise self.error(element, f"included launch file not found: {file_text}{hint}")
        if not path.name.endswith(".xml"):
            raise self.error(element, f"only XML launch files can be included here, not {path.name}")
        self.include_stack.append((element.file, element.line))
        try:
            self.run_file(path, included_by=element)
        except LaunchError as exc:
            if not exc.included_from or exc.included_from[-1] != (element.file, element.line):
                exc.included_from.append((element.file, element.line))
            raise
        finally:
            self.include_stack.pop()

    # ----------------------------------------------------------- processes
    def next_label(self, base: str) -> str:
        return f"{base}-{len(self.processes) + 1}"

    def process_common(self, element: XmlElement) -> dict[str, Any]:
        output = self.attr(element, "output") or "log"
        if output not in _OUTPUT_MODES:
            raise self.error(element, f"output='{output}' is not one of {', '.join(_OUTPUT_MODES)}")
        respawn_text = self.attr(element, "respawn")
        respawn = self.truth(element, respawn_text, "respawn") if respawn_text is not None else False
        delay_text = self.attr(element, "respawn_delay")
        delay = 0.0
        if delay_text is not None:
            try:
                delay = float(delay_text)
            except ValueError:
                raise self.error(element, f"respawn_delay must be a number, got {delay_text!r}") from None
            if delay < 0:
                raise self.error(element, "respawn_delay must be non-negative")
        env = dict(self.scope.environment)
        env_changes: dict[str, str | None] = {
            k: v for k, v in env.items() if self.initial_environment.get(k) != v}
        env_changes.update({k: None for k in self.initial_environment if k not in env})
        for child in element.children:
            if child.tag == "env":
                self.check_entity(child, {"name", "value"}, ())
                key = self.attr(child, "name", required=True)
                env[key] = env_changes[key] = self.attr(child, "value", required=True)
        prefix_text = self.attr(element, "launch-prefix")
        try:
            prefix = shlex.split(prefix_text) if prefix_text else []
        except ValueError as exc:
            raise self.error(element, f"launch-prefix: {exc}") from None
        cwd = self.attr(element, "cwd")
        on_exit = element.attrib.get("on_exit")
        if on_exit is not None and on_exit != "shutdown":
            # launch's ExecuteProcess.parse compares the raw text: no substitutions, no other action
            raise self.error(element, f"on_exit=\"{on_exit}\" is not supported: ros2 launch accepts only "
                             "on_exit=\"shutdown\" (written literally, no substitutions)")
        return dict(output="log" if output == "own_log" else output, respawn=respawn, respawn_delay=delay,
                    env=env, env_changes=env_changes, prefix=prefix, cwd=cwd, on_exit=on_exit)

    def command_line(self, element: XmlElement, attr: str) -> list[str]:
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

        for part in self.template(element, attr, raw):
            if isinstance(part, Substitution):
                current.append(self.substitute(element, part))
                pending = True
                continue
            try:
                tokens = shlex.split(part)
            except ValueError as exc:
                raise self.error(element, f"attribute '{attr}': {exc}") from None
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

    def do_executable(self, element: XmlElement) -> None:
        common = self.process_common(element)
        cmd = self.command_line(element, "cmd")
        if not cmd:
            raise self.error(element, "<executable> needs a non-empty cmd")
        label = self.next_label(self.attr(element, "name") or os.path.basename(cmd[0]))
        self.processes.append(ProcessPlan(
            label=label, kind="executable", cmd=tuple(common["prefix"] + cmd), env=common["env"],
            env_changes=common["env_changes"], cwd=common["cwd"], output=common["output"],
            respawn=common["respawn"], respawn_delay=common["respawn_delay"], source=element.where,
            on_exit=common["on_exit"]))

    def do_node(self, element: XmlElement) -> None:
        common = self.process_common(element)
        package = self.attr(element, "pkg")
        executable = self.attr(element, "exec", required=True) or ""
        node_name = self.attr(element, "name")
        if node_name is not None:
            node_name = node_name.lstrip("/")
            if not _NAME_TOKEN.fullmatch(node_name):
                raise self.error(element, f"invalid node name '{node_name}': use letters, digits and '_', "
                                 "not starting with a digit")
        namespace = make_namespace_absolute(prefix_namespace(self.scope.ros_namespace, self.attr(element, "namespace")))
        if namespace is not None:
            self.validate_namespace(element, namespace)
        label = self.next_label(self.attr(element, "exec_name") or executable)
        try:
            base_cmd, extra_env = resolve_node_executable(package, executable)
        except FileNotFoundError as exc:
            raise self.error(element, str(exc)) from None
        env = common["env"]
        for key, value in extra_env.items():
            previous = env.get(key)
            env[key] = value + (os.pathsep + previous if previous else "")

        fqn = None if node_name is None else (namespace or "/").rstrip("/") + "/" + node_name
        cmd = common["prefix"] + base_cmd + self.command_line(element, "args")
        ros_args = self.command_line(element, "ros_args")
        if ros_args:
            cmd += ["--ros-args"] + ros_args
        cmd.append("--ros-args")
        if node_name is not None:
            cmd += ["-r", f"__node:={node_name}"]
        if namespace is not None:
            cmd += ["-r", f"__ns:={namespace}"]
        for name, value in self.scope.global_params:
            cmd += ["-p", f"{name}:={_yaml_inline(value)}"]

        parameters: list[Mapping[str, Any] | Path] = []
        params_files: list[Path] = []
        inline: dict[str, Any] = {}

        def flush_inline() -> None:
            nonlocal inline
            if not inline:
                return
            path = self.params_dir / f"{label}-{len(params_files)}.yaml"
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
                path = self.params_file(child, label, len(params_files))
                parameters.append(path)
                params_files.append(path)
            else:
                inline.update(self.nested_params(child, prefix=""))
        flush_inline()
        for path in params_files:
            cmd += ["--params-file", str(path)]

        remappings = list(self.scope.remaps)
        for child in element.children:
            if child.tag == "remap":
                self.check_entity(child, {"from", "to"}, ())
                remappings.append((self.attr(child, "from", required=True), self.attr(child, "to", required=True)))
        for src, dst in remappings:
            cmd += ["-r", f"{src}:={dst}"]

        self.processes.append(ProcessPlan(
            label=label, kind="node", cmd=tuple(cmd), env=env, env_changes=common["env_changes"],
            cwd=common["cwd"], output=common["output"], respawn=common["respawn"],
            respawn_delay=common["respawn_delay"], source=element.where, package=package,
            executable=executable, node_name=node_name, namespace=namespace, parameters=tuple(parameters),
            params_files=tuple(params_files), remappings=tuple(remappings), on_exit=common["on_exit"]))

    def validate_namespace(self, element: XmlElement, namespace: str) -> None:
        if namespace == "/":
            return
        tokens = namespace[1:].split("/")
        if not namespace.startswith("/") or not all(_NAME_TOKEN.fullmatch(t) for t in tokens):
            raise self.error(element, f"invalid namespace '{namespace}': tokens of letters, digits and '_' "
                             "separated by '/', none starting with a digit")

    # ------------------------------------------------------------ parameters
    def params_file(self, element: XmlElement, label: str, index: int) -> Path:
        self.check_entity(element, {"from", "allow_substs"}, ())
        path_text = self.attr(element, "from", required=True) or ""
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            raise self.error(element, f"parameter file not found: {path_text}")
        allow = self.attr(element, "allow_substs")
        if allow is not None and self.truth(element, allow, "allow_substs"):
            text = path.read_text()
            substituted = self.evaluate(element, self.template(element, "from (file contents)", text))
            out = self.params_dir / f"{label}-{index}-{path.name}"
            out.write_text(substituted)
            return out
        return path

    def nested_params(self, element: XmlElement, prefix: str) -> dict[str, Any]:
        if "from" in element.attrib:
            raise self.error(element, "<param from=...> cannot be nested inside another <param>")
        nested = [c for c in element.children if c.tag == "param"]
        attrs = {"name", "value", "value-sep", "type"} if not nested else {"name"}
        self.check_entity(element, attrs, {"param"})
        name = self.attr(element, "name")
        if name is None:
            raise self.error(element, "<param> needs either name=... (with value=... or nested <param>) "
                             "or from=\"file.yaml\"")
        full = f"{prefix}.{name}" if prefix else name
        if nested:
            result: dict[str, Any] = {}
            for child in nested:
                result.update(self.nested_params(child, full))
            return result
        if "value" not in element.attrib:
            raise self.error(element, f"<param name=\"{name}\"> needs a value attribute or nested <param>s")
        return {full: self.param_value(element, full)}

    def param_value(self, element: XmlElement, name: str) -> Any:
        """Type a parameter value like launch_ros: YAML rules unless type=... says otherwise."""
        raw = element.attrib["value"]
        sep = element.attrib.get("value-sep")
        type_id = element.attrib.get("type")
        scalar_type: type | None = None
        is_list = False
        if type_id is not None:
            if type_id not in _PARAM_TYPES:
                raise self.error(element, f"unknown parameter type '{type_id}' "
                                 f"(one of {', '.join(_PARAM_TYPES)})")
            scalar_type, is_list = _PARAM_TYPES[type_id]
        if sep is not None:
            if not sep:
                raise self.error(element, "value-sep must not be empty")
            items = [self.typed_item(element, name, item, scalar_type, allow_list=False) for item in raw.split(sep)]
            return self.uniform(element, name, items)
        if is_list:
            loaded = self.yaml_value(element, name, raw)
            if not isinstance(loaded, list):
                raise self.error(element, f"parameter '{name}': type {type_id} needs a list like [a, b]")
            items = [self.typed_item(element, name, item if isinstance(item, str) else _yaml_inline(item),
                                     scalar_type, allow_list=False) for item in loaded]
            return self.uniform(element, name, items)
        if scalar_type is not None and scalar_type is not str:
            return self.convert(element, name, self.evaluate(element, self.template(element, "value", raw)),
                                scalar_type)
        return self.typed_item(element, name, raw, scalar_type, allow_list=True)

    def typed_item(self, element: XmlElement, name: str, text: str, scalar_type: type | None,
                   allow_list: bool) -> Any:
        if scalar_type is str:
            return self.evaluate(element, self.template(element, "value", text))
        if scalar_type is not None:
            return self.convert(element, name, self.evaluate(element, self.template(element, "value", text)),
                                scalar_type)
        loaded = self.yaml_value(element, name, text)
        if isinstance(loaded, list):
            if not allow_list:
                raise self.error(element, f"parameter '{name}': nested lists are not allowed")
            return self.uniform(element, name, [self.substituted(element, name, x) if isinstance(x, str) else x
                                                for x in loaded])
        if isinstance(loaded, str):
            return self.substituted(element, name, loaded)
        return loaded

    def substituted(self, element: XmlElement, name: str, text: str) -> Any:
        parts = self.template(element, "value", text)
        if not has_substitutions(parts):
            return "".join(p for p in parts if isinstance(p, str))
        value = self.evaluate(element, parts)
        if value == "":
            return ""
        loaded = self.yaml_value(element, name, value)
        if isinstance(loaded, list):
            return self.uniform(element, name, loaded)
        return loaded

    def yaml_value(self, element: XmlElement, name: str, text: str) -> Any:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise self.error(element, f"parameter '{name}': value {text!r} is not valid YAML "
                             f"({str(exc).splitlines()[0]}); quote strings like value=\"'...'\"") from None
        if loaded is None:
            raise self.error(element, f"parameter '{name}': empty value; write value=\"''\" for an empty string")
        if isinstance(loaded, (bool, int, float, str)) or isinstance(loaded, list):
            return loaded
        raise self.error(element, f"parameter '{name}': value {text!r} is a {type(loaded).__name__}; "
                         "parameters are scalars or uniform lists")

    def uniform(self, element: XmlElement, name: str, items: list[Any]) -> list[Any]:
        if items and not all(type(x) is type(items[0]) for x in items):
            raise self.error(element, f"parameter '{name}': list items must all have the same type, got "
                             + ", ".join(type(x).__name__ for x in items))
        if any(not isinstance(x, (bool, int, float, str)) for x in items):
            raise self.error(element, f"parameter '{name}': list items must be bool, int, float or str")
        return items

    def convert(self, element: XmlElement, name: str, text: str, scalar_type: type) -> Any:
        try:
            if scalar_type is bool:
                value = yaml.safe_load(text)
                if not isinstance(value, bool):
                    raise ValueError(text)
                return value
            return scalar_type(text)
        except (ValueError, yaml.YAMLError):
            raise self.error(element, f"parameter '{name}': {text!r} is not a valid {scalar_type.__name__}") from None


_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _normalise_for_equals(value: str) -> str:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered
    try:
        return repr(float(value))
    except ValueError:
        return value


def _yaml_inline(value: Any) -> str:
    """One-line YAML for ``-p name:=value`` and list items."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_inline(v) for v in value) + "]"
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip().removesuffix("\n...").strip()


# ------------------------------------------------------- ROS name helpers


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


# ------------------------------------------------------- package lookup


def find_package_share(package: str) -> Path:
    """``$(find-pkg-share pkg)``: dexterity_ros via paths.share_directory(), others via the ament index."""
    return paths.share_directory(package)


_RESOURCE_INDEX = Path("share") / "ament_index" / "resource_index" / "packages"


def ament_package_prefix(package: str) -> Path | None:
    """ament_index_python's get_package_prefix without the dependency: the first AMENT_PREFIX_PATH
    entry whose resource index lists ``package`` (None when no entry does)."""
    if not package or "/" in package or os.sep in package:
        return None
    for entry in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if entry and (Path(entry) / _RESOURCE_INDEX / package).is_file():
            return Path(entry)
    return None


def find_package_prefix(package: str) -> Path:
    prefix = ament_package_prefix(package)
    if prefix is not None:
        return prefix
    share = find_package_share(package)
    return share.parent.parent if share.parent.name == "share" else share


def _script_command(path: Path) -> list[str]:
    """Run ``#!/usr/bin/env python`` scripts with this interpreter (the venv has rclpy, /usr/bin may not)."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(200).decode("utf-8", "replace").strip()
    except OSError:
        return [str(path)]
    if first.startswith("#!") and "python" in first:
        interpreter = first[2:].split()[0] if first[2:].split() else ""
        if interpreter.endswith("/env") or not os.access(interpreter, os.X_OK) or not os.access(path, os.X_OK):
            return [sys.executable, str(path)]
    return [str(path)]


def resolve_node_executable(package: str | None, executable: str) -> tuple[list[str], dict[str, str]]:
    """``pkg``/``exec`` -> (command prefix, environment additions); FileNotFoundError names what was tried.

    As launch_ros: a package in an ament prefix (AMENT_PREFIX_PATH, e.g. a sourced colcon install)
    runs ``<prefix>/lib/<pkg>/<exec>``, and nothing else. Only dexterity_ros itself, when no ament
    prefix has it (pip install, source checkout), falls back to its console script next to the
    running Python, then ``<sys.prefix>/lib/dexterity_ros/<exec>``, then
    ``python -m dexterity_ros.nodes.<exec>``.
    """
    if package is None:
        return [executable], {}
    prefix = ament_package_prefix(package)
    if prefix is not None:
        libexec = prefix / "lib" / package
        candidate = libexec / executable
        if candidate.is_file():
            return _script_command(candidate), {}
        raise FileNotFoundError(f"executable '{executable}' not found in package '{package}' "
                                f"(looked in {libexec}; the package's ament prefix {prefix} is on AMENT_PREFIX_PATH)")
    if package != paths.PACKAGE_NAME:
        raise FileNotFoundError(f"package '{package}' not found (not in the ament index; "
                                f"AMENT_PREFIX_PATH={os.environ.get('AMENT_PREFIX_PATH', '')!r})")
    searched: list[str] = []
    script = Path(sys.executable).parent / executable
    searched.append(str(script))
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], {}
    candidate = Path(sys.prefix) / "lib" / package / executable
    searched.append(str(candidate))
    if candidate.is_file():
        return _script_command(candidate), {}
    module = f"{paths.PACKAGE_NAME}.nodes.{executable}"
    searched.append(f"python -m {module}")
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", executable) and importlib.util.find_spec(module) is not None:
        source_root = str(Path(__file__).resolve().parent.parent)
        return [sys.executable, "-m", module], {"PYTHONPATH": source_root}
    raise FileNotFoundError(f"executable '{executable}' not found in package '{package}' "
                            f"(looked for: {', '.join(searched)})")


# ------------------------------------------------------------- public API


def parse_launch_arguments(items: Iterable[str]) -> dict[str, str]:
    """``["name:=value", ...]`` -> dict; ValueError for anything else (as ``ros2 launch``)."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"malformed launch argument '{item}', expected format '<name>:=<value>'")
        result[name] = value
    return result


def list_arguments(path: Path | str) -> list[DeclaredArgument]:
    """The ``<arg>`` s declared in a launch file itself (``--show-args``; includes not followed)."""
    root = parse_xml(path)
    found: list[DeclaredArgument] = []

    def walk(element: XmlElement) -> None:
        for child in element.children:
            if child.tag == "arg":
                choices = tuple(c.attrib.get("value", "") for c in child.children if c.tag == "choice")
                found.append(DeclaredArgument(child.attrib.get("name", ""), child.attrib.get("default"),
                                              child.attrib.get("description", ""), choices, child.where))
            elif child.tag == "group":
                walk(child)

    walk(root)
    return found


def load_launch_plan(path: Path | str, arguments: Mapping[str, str] | Iterable[str] | None = None, *,
                     environ: Mapping[str, str] | None = None, params_dir: Path | str | None = None) -> LaunchPlan:
    """Evaluate a launch file into a :class:`LaunchPlan` (writes generated params YAML, starts nothing).

    ``arguments``: ``{"name": "value"}`` or ``["name:=value"]`` as on the command line; an argument
    the file (and the files it includes) does not declare is a LaunchError, like a required
    ``<arg>`` that is not given. ``environ`` defaults to ``os.environ``.
    """
    path = Path(path).expanduser().resolve()
    if arguments is None:
        given: dict[str, str] = {}
    elif isinstance(arguments, Mapping):
        given = {str(k): str(v) for k, v in arguments.items()}
    else:
        try:
            given = parse_launch_arguments(arguments)
        except ValueError as exc:
            raise LaunchError(str(exc), path) from None
    owns = params_dir is None
    directory = Path(tempfile.mkdtemp(prefix="dexterity_launch_")) if owns else Path(params_dir)
    directory.mkdir(parents=True, exist_ok=True)
    evaluator = _Evaluator(os.environ if environ is None else environ, directory)
    evaluator.scope.configurations.update(given)
    try:
        evaluator.run_file(path)
        unknown = sorted(set(given) - evaluator.declared_in_files)
        if unknown:
            declared = ", ".join(sorted(evaluator.declared_in_files)) or "none"
            raise LaunchError(f"launch argument(s) {', '.join(repr(u) for u in unknown)} not declared by this "
                              f"launch file or its includes (declared: {declared})", path)
    except BaseException:
        if owns:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return LaunchPlan(file=path, processes=evaluator.processes, arguments=dict(evaluator.argument_values),
                      declared_arguments=dict(evaluator.declared), messages=evaluator.messages,
                      params_dir=directory, _owns_params_dir=owns)


def find_launch_file(package: str, file_name: str) -> Path:
    """``ros2 launch PKG FILE``: FILE anywhere under the package's share directory."""
    share = find_package_share(package)
    direct = share / "launch" / file_name
    if direct.is_file():
        return direct
    matches = sorted(p for p in share.rglob(file_name) if p.is_file())
    if not matches:
        raise FileNotFoundError(f"launch file '{file_name}' not found in package '{package}' ({share})")
    return matches[0]
