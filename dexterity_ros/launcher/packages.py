"""Package lookup: share and prefix directories, node executables, launch files.

What ament_index_python and launch_ros do, without them: a package is found in the ament
resource index of an ``AMENT_PREFIX_PATH`` entry (a sourced colcon install); dexterity_ros
itself also works from a pip install or a source checkout (``paths.share_directory``).
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from .. import paths

# the directory that holds the dexterity_ros package (a source checkout's root, or site-packages)
_SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent


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
        return [sys.executable, "-m", module], {"PYTHONPATH": str(_SOURCE_ROOT)}
    raise FileNotFoundError(f"executable '{executable}' not found in package '{package}' "
                            f"(looked for: {', '.join(searched)})")


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
