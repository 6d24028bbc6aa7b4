"""The package's main rule, checked: a pure core that never touches ROS, and thin ROS shells around it.

Only ``dexterity_ros/ros/`` (the ROS boundary), ``nodes/`` (the executables),
``hil/`` and ``cli_commands/`` (tools that run a graph) may import rclpy or a
ROS interface package, and the pure core may not import those folders either
(that would pull rclpy in through the back door). ``nodes/`` holds only
executables: one module per console entry point.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dexterity_ros"
ROS_SIDE = ("ros", "nodes", "hil", "cli_commands")          # folders allowed to import ROS
ROS_TOP_LEVEL = {"rclpy", "rcl_interfaces", "builtin_interfaces", "rosidl_runtime_py", "rosgraph_msgs",
                 "rosidl_parser", "rpyutils", "leap_hand"}


def _is_ros_module(name: str) -> bool:
    top = name.split(".")[0]
    return top in ROS_TOP_LEVEL or top.endswith("_msgs") or top.endswith("_srvs")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, nested ones included."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return found


def _on_ros_side(path: Path) -> bool:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] in ROS_SIDE or rel.name == "cli.py"


def test_the_pure_core_imports_no_ros_package():
    offenders = [f"{p.relative_to(PACKAGE.parent)}:{line} imports {module}"
                 for p in _modules() if not _on_ros_side(p)
                 for line, module in _imports(p) if _is_ros_module(module)]
    assert not offenders, "ROS imports outside ros/, nodes/, hil/, cli_commands/:\n" + "\n".join(offenders)


def test_the_pure_core_does_not_import_the_ros_side():
    ros_side = tuple(f"dexterity_ros.{folder}" for folder in ROS_SIDE)
    offenders = sorted({f"{p.relative_to(PACKAGE.parent)}:{line} imports {module}"
                        for p in _modules() if not _on_ros_side(p)
                        for line, module in _imports(p)
                        if module == "dexterity_ros.cli" or module.startswith(ros_side)})
    assert not offenders, "the pure core reaches into the ROS side:\n" + "\n".join(offenders)


def test_nodes_holds_only_executables():
    setup = (PACKAGE.parent / "setup.py").read_text()
    entry_points = set(re.findall(r'"(\w+_node)"', setup))
    modules = {p.stem for p in (PACKAGE / "nodes").glob("*.py") if p.stem != "__init__"}
    assert modules == entry_points, f"nodes/ modules {sorted(modules)} vs console scripts {sorted(entry_points)}"
    for name in modules:
        tree = ast.parse((PACKAGE / "nodes" / f"{name}.py").read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), f"{name} has no main()"


def test_no_executable_is_imported_as_a_library():
    offenders = sorted({f"{p.relative_to(PACKAGE.parent)}:{line} imports {module}"
                        for p in _modules() if p.parent.name != "nodes"
                        for line, module in _imports(p) if module.startswith("dexterity_ros.nodes.")})
    assert not offenders, "nodes/ modules are executables, import their logic from elsewhere:\n" + "\n".join(offenders)


@pytest.mark.parametrize("rule_check", [_is_ros_module])
def test_the_rule_recognises_ros_imports(rule_check):
    assert rule_check("rclpy.node") and rule_check("sensor_msgs.msg") and rule_check("std_srvs.srv")
    assert not rule_check("numpy") and not rule_check("dexterity_ros.topics")


def test_no_module_over_600_lines_without_a_stated_reason():
    long_ones = []
    for p in _modules():
        lines = p.read_text().count("\n")
        docstring = ast.get_docstring(ast.parse(p.read_text())) or ""
        if lines > 600 and "Longer than 600 lines because" not in docstring:
            long_ones.append(f"{p.relative_to(PACKAGE.parent)} ({lines} lines)")
    assert not long_ones, "split these modules or say why in their docstring: " + ", ".join(long_ones)
