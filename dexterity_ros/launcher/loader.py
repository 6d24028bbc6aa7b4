"""The launcher's entry points for evaluating files: arguments in, a :class:`LaunchPlan` out.

Pure: nothing is started here (:mod:`.supervisor` does that); the only side effect is the
directory of generated ``--params-file`` YAML that :meth:`LaunchPlan.cleanup` removes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from .actions import run_file
from .context import LaunchContext
from .errors import LaunchError
from .frontend import XmlElement, parse_xml
from .plan import DeclaredArgument, LaunchPlan


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
    ctx = LaunchContext(os.environ if environ is None else environ, directory)
    ctx.scope.configurations.update(given)
    try:
        run_file(ctx, path)
        unknown = sorted(set(given) - ctx.declared_in_files)
        if unknown:
            declared = ", ".join(sorted(ctx.declared_in_files)) or "none"
            raise LaunchError(f"launch argument(s) {', '.join(repr(u) for u in unknown)} not declared by this "
                              f"launch file or its includes (declared: {declared})", path)
    except BaseException:
        if owns:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return LaunchPlan(file=path, processes=ctx.processes, arguments=dict(ctx.argument_values),
                      declared_arguments=dict(ctx.declared), messages=ctx.messages,
                      params_dir=directory, _owns_params_dir=owns)

