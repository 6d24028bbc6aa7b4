"""The ``$(...)`` substitutions: one small function each, looked up in :data:`SUBSTITUTIONS`.

As in ros2 launch (launch/substitutions, launch_ros/substitutions), every argument is itself
evaluated first, then the substitution named by the table gets the argument strings; the
table also holds how many arguments each takes, so a wrong count is reported uniformly as
``$(name) expects N argument(s), got M`` at the tag's ``file:line``.
"""
from __future__ import annotations

import math
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .frontend import Part, Substitution, XmlElement
from .packages import find_package_prefix, find_package_share

if TYPE_CHECKING:  # pragma: no cover
    from .context import LaunchContext

Perform = Callable[["LaunchContext", XmlElement, "list[str]"], str]


@dataclass(frozen=True)
class SubstitutionSpec:
    """How to perform one substitution and how many arguments it takes."""

    perform: Perform
    min_args: int
    max_args: int


def _var(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    if args[0] in ctx.scope.configurations:
        return ctx.scope.configurations[args[0]]
    if len(args) == 2:
        return args[1]
    raise element.error(f"launch configuration '{args[0]}' does not exist (declare it with <arg> or <let>)")


def _env_value(ctx: LaunchContext, args: list[str]) -> str | None:
    value = ctx.scope.environment.get(args[0])
    if value is None and len(args) == 2:
        return args[1]
    return value


def _env(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    value = _env_value(ctx, args)
    if value is None:
        raise element.error(f"environment variable '{args[0]}' does not exist "
                            f"(give a default: $(env {args[0]} default))")
    return value


def _optenv(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    value = _env_value(ctx, args)
    return "" if value is None else value


def _find_pkg_share(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    try:
        return str(find_package_share(args[0]))
    except FileNotFoundError as exc:
        raise element.error(f"$(find-pkg-share {args[0]}): {exc}") from None


def _find_pkg_prefix(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    try:
        return str(find_package_prefix(args[0]))
    except FileNotFoundError as exc:
        raise element.error(f"$(find-pkg-prefix {args[0]}): {exc}") from None


def _find_exec(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    found = shutil.which(args[0], path=ctx.scope.environment.get("PATH"))
    if not found:
        raise element.error(f"$(find-exec {args[0]}): executable not found on PATH")
    return found


def _dirname(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    return str(ctx.file_stack[-1].parent)


def _filename(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    return str(ctx.file_stack[-1])


def _anon(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    return ctx.anon_names.setdefault(args[0], f"{args[0]}_{os.getpid()}_{uuid.uuid4().hex[:8]}")


def _eval(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
    namespace: dict[str, Any] = {"math": math}
    namespace.update({k: v for k, v in vars(math).items() if not k.startswith("_")})
    try:
        return str(eval(args[0], namespace))  # noqa: S307 - launch files are trusted code, as in ros2
    except Exception as exc:
        raise element.error(f"$(eval {args[0]!r}) failed: {type(exc).__name__}: {exc}") from None


def _boolean(name: str, combine: Callable[[list[bool]], bool]) -> Perform:
    """``$(not a)``, ``$(and a b)``, ``$(or a b)``: booleans in, ``true``/``false`` out."""
    def perform(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
        values = [ctx.truth(element, a, f"$({name})") for a in args]
        return "true" if combine(values) else "false"
    return perform


def _normalise_for_equals(value: str) -> str:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered
    try:
        return repr(float(value))
    except ValueError:
        return value


def _equals(expected: bool) -> Perform:
    """``$(equals a b)`` / ``$(not-equals a b)``: booleans and numbers compare by value."""
    def perform(ctx: LaunchContext, element: XmlElement, args: list[str]) -> str:
        same = _normalise_for_equals(args[0]) == _normalise_for_equals(args[1])
        return "true" if same == expected else "false"
    return perform


SUBSTITUTIONS: dict[str, SubstitutionSpec] = {
    "var": SubstitutionSpec(_var, 1, 2),
    "env": SubstitutionSpec(_env, 1, 2),
    "optenv": SubstitutionSpec(_optenv, 1, 2),
    "find-pkg-share": SubstitutionSpec(_find_pkg_share, 1, 1),
    "find-pkg-prefix": SubstitutionSpec(_find_pkg_prefix, 1, 1),
    "find-exec": SubstitutionSpec(_find_exec, 1, 1),
    "dirname": SubstitutionSpec(_dirname, 0, 0),
    "filename": SubstitutionSpec(_filename, 0, 0),
    "anon": SubstitutionSpec(_anon, 1, 1),
    "eval": SubstitutionSpec(_eval, 1, 2),
    "not": SubstitutionSpec(_boolean("not", lambda v: not v[0]), 1, 1),
    "and": SubstitutionSpec(_boolean("and", all), 2, 2),
    "or": SubstitutionSpec(_boolean("or", any), 2, 2),
    "equals": SubstitutionSpec(_equals(True), 2, 2),
    "not-equals": SubstitutionSpec(_equals(False), 2, 2),
}
# valid in ros2 launch but not implemented here: a clear "not supported" rather than "unknown"
UNSUPPORTED_SUBSTITUTIONS = frozenset({"command", "exec-in-pkg", "find-pkg", "parameter", "ros-param"})


def substitute(ctx: LaunchContext, element: XmlElement, sub: Substitution) -> str:
    """Perform one substitution (its arguments first) in the current scope."""
    args = [perform(ctx, element, a) for a in sub.args]
    spec = SUBSTITUTIONS.get(sub.name)
    if spec is None:
        if sub.name in UNSUPPORTED_SUBSTITUTIONS:
            raise element.error(f"$({sub.name}) is not supported by dexterity-ros launch")
        raise element.error(f"unknown substitution $({sub.name})")
    if not spec.min_args <= len(args) <= spec.max_args:
        count = f"{spec.min_args}" if spec.min_args == spec.max_args else f"{spec.min_args} or {spec.max_args}"
        raise element.error(f"$({sub.name}) expects {count} argument(s), got {len(args)}")
    return spec.perform(ctx, element, args)


def perform(ctx: LaunchContext, element: XmlElement, parts: Sequence[Part]) -> str:
    """A template (text and substitutions) as one string."""
    return "".join(p if isinstance(p, str) else substitute(ctx, element, p) for p in parts)
