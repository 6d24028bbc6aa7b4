"""The state of one evaluation, like ros2 launch's LaunchContext.

:class:`Scope` holds what ``<group>`` scopes (launch configurations, environment, pushed ROS
namespace, ``<set_remap>`` s, ``<set_parameter>`` s); :class:`LaunchContext` holds the current
scope plus everything collected on the way (processes, declared arguments, log messages) and
the helpers every action uses to read attributes: with substitutions performed (``attr``),
literally (``literal``, ``literal_bool``), as booleans (``truth``) and as ``if``/``unless``.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from .frontend import Part, XmlElement, parse_template
from .plan import DeclaredArgument, ProcessPlan
from .substitutions import perform

TRUE = ("true", "1")
FALSE = ("false", "0")


@dataclass
class Scope:
    """Launch configurations and everything ros2 launch keeps in them (scoped together)."""

    configurations: dict[str, str]
    environment: dict[str, str]
    ros_namespace: str | None = None
    remaps: list[tuple[str, str]] = field(default_factory=list)
    global_params: list[tuple[str, Any]] = field(default_factory=list)

    def copy(self) -> "Scope":
        return Scope(dict(self.configurations), dict(self.environment), self.ros_namespace,
                     list(self.remaps), list(self.global_params))


class LaunchContext:
    """One evaluation of a launch file and its includes."""

    def __init__(self, environ: Mapping[str, str], params_dir: Path):
        self.initial_environment = dict(environ)
        self.scope = Scope({}, dict(environ))
        self.params_dir = params_dir
        self.processes: list[ProcessPlan] = []
        self.declared: dict[str, DeclaredArgument] = {}
        self.argument_values: dict[str, str] = {}
        self.declared_in_files: set[str] = set()
        self.messages: list[str] = []
        self.file_stack: list[Path] = []
        self.include_stack: list[tuple[Path, int]] = []
        self.anon_names: dict[str, str] = {}

    @contextlib.contextmanager
    def scoped(self, scope: Scope) -> Iterator[Scope]:
        """Run the body with ``scope`` as the current scope, then restore the previous one."""
        saved = self.scope
        self.scope = scope
        try:
            yield scope
        finally:
            self.scope = saved

    # ------------------------------------------------------------ attributes
    def template(self, element: XmlElement, attr: str, text: str) -> tuple[Part, ...]:
        try:
            return parse_template(text)
        except ValueError as exc:
            raise element.error(f"<{element.tag}> attribute '{attr}': {exc}") from None

    def evaluate(self, element: XmlElement, parts: Sequence[Part]) -> str:
        return perform(self, element, parts)

    def attr(self, element: XmlElement, name: str, required: bool = False) -> str | None:
        """Attribute value with substitutions performed."""
        raw = element.attrib.get(name)
        if raw is None:
            if required:
                raise element.error(f"<{element.tag}> needs the attribute '{name}'")
            return None
        return self.evaluate(element, self.template(element, name, raw))

    def literal(self, element: XmlElement, name: str, required: bool = False) -> str | None:
        """Attribute without substitutions (ros2's escape_characters only)."""
        raw = element.attrib.get(name)
        if raw is None:
            if required:
                raise element.error(f"<{element.tag}> needs the attribute '{name}'")
            return None
        return re.sub(r"\\(.)", r"\1", raw)

    def literal_bool(self, element: XmlElement, name: str, default: bool) -> bool:
        raw = element.attrib.get(name)
        if raw is None:
            return default
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, bool):
            raise element.error(f"<{element.tag}> attribute '{name}' must be true or false, got {raw!r}")
        return value

    def truth(self, element: XmlElement, value: str, what: str) -> bool:
        lowered = value.lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise element.error(f"{what}: '{value}' is not a boolean "
                            "(expected true/false/1/0, case-insensitive)")

    def condition_allows(self, element: XmlElement) -> bool:
        if_value = element.attrib.get("if")
        unless_value = element.attrib.get("unless")
        if if_value is not None and unless_value is not None:
            raise element.error(f"<{element.tag}>: if and unless can't be used together")
        if if_value is not None:
            return self.truth(element, self.attr(element, "if") or "", f"<{element.tag} if=...>")
        if unless_value is not None:
            return not self.truth(element, self.attr(element, "unless") or "", f"<{element.tag} unless=...>")
        return True

    # ------------------------------------------------------------ processes
    def next_label(self, base: str) -> str:
        return f"{base}-{len(self.processes) + 1}"
