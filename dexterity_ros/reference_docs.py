"""Reference tables for the README, generated from the code that defines them.

Topics come from :mod:`dexterity_ros.topics`, parameters from each node's
config dataclass; ``python -m dexterity_ros.reference_docs --write`` rewrites
the marked sections of README.md and a test fails when they are stale, so the
README cannot drift from the nodes.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from . import topics
from .config import describe_fields

NODES = {
    # executable: (module, config class)
    "camera_node": ("dexterity_ros.nodes.camera_node", "CameraNodeConfig"),
    "segmentation_node": ("dexterity_ros.nodes.segmentation_node", "SegmentationNodeConfig"),
    "student_node": ("dexterity_ros.nodes.student_node", "StudentNodeConfig"),
    "hand_node": ("dexterity_ros.nodes.hand_node", "HandNodeConfig"),
    "sim_bridge_node": ("dexterity_ros.nodes.sim_bridge_node", "SimBridgeConfig"),
    "allegro_emulator_node": ("dexterity_ros.nodes.allegro_emulator_node", "EmulatorConfig"),
    "goal_node": ("dexterity_ros.nodes.goal_node", "GoalNodeConfig"),
    "pose_tracker_node": ("dexterity_ros.nodes.pose_tracker_node", "PoseTrackerNodeConfig"),
    "hand_view_node": ("dexterity_ros.nodes.hand_view_node", "HandViewNodeConfig"),
}

_QOS_TEXT = {
    topics.QosClass.SENSOR: "sensor data (best effort, keep last 5)",
    topics.QosClass.RELIABLE: "reliable, keep last 10",
    topics.QosClass.LATCHED: "reliable, transient local, keep last 1",
}


def topics_table() -> str:
    rows = ["| topic | type | QoS | content |", "|---|---|---|---|"]
    for t in topics.ALL_TOPICS:
        rows.append(f"| `{t.name}` | `{t.type_name}` | {_QOS_TEXT[t.qos]} | {t.description} |")
    return "\n".join(rows)


def _format_default(value) -> str:
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def parameters_tables() -> str:
    out = []
    for executable, (module_name, class_name) in NODES.items():
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
        out.append(f"#### {executable}\n")
        out.append("| parameter | default | description |")
        out.append("|---|---|---|")
        for name, default, description in describe_fields(cls):
            out.append(f"| `{name}` | {_format_default(default)} | {description.replace('|', '/')} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


SECTIONS = {"topics": topics_table, "parameters": parameters_tables}


def render(readme: str) -> str:
    for key, fn in SECTIONS.items():
        pattern = re.compile(rf"(<!-- BEGIN GENERATED {key} -->\n).*?(<!-- END GENERATED {key} -->)", re.S)
        if not pattern.search(readme):
            raise ValueError(f"README has no generated section '{key}'")
        readme = pattern.sub(lambda m: m.group(1) + fn().rstrip() + "\n" + m.group(2), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parent.parent / "README.md")
    parser.add_argument("--write", action="store_true", help="rewrite the generated sections in place")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = render(text)
    if args.write:
        args.readme.write_text(new)
        return 0
    if new != text:
        print("README.md generated sections are stale: run python -m dexterity_ros.reference_docs --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
