"""What evaluating a launch file produces: a :class:`LaunchPlan` of :class:`ProcessPlan` s.

Plain data, nothing started: :mod:`.supervisor` starts the processes, ``--print`` shows
them (:meth:`LaunchPlan.describe`), tests inspect them.
"""
from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


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

