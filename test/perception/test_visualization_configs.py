"""The viewer configurations match the graph: every topic config/dexterity.rviz and config/foxglove_layout.json
name exists in dexterity_ros/topics.py (with the QoS the display asks for), the frames, marker namespaces and
plotted joints are the code's, and the launch files start hand_view_node behind `visualization`."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from dexterity_ros import topics, visualization
from dexterity_ros.hand_model import default_hand

ROOT = Path(__file__).resolve().parents[2]
TOPICS = {t.name.lstrip("/"): t for t in vars(topics).values() if isinstance(t, topics.Topic)}


def known(name: str) -> topics.Topic:
    topic = TOPICS.get(name.lstrip("/"))
    assert topic is not None, f"{name} is not a topic of dexterity_ros/topics.py"
    return topic


def rviz_displays() -> list[dict]:
    config = yaml.safe_load((ROOT / "config" / "dexterity.rviz").read_text())
    return config["Visualization Manager"]["Displays"], config["Visualization Manager"]["Global Options"]


def test_rviz_config_names_only_known_topics_with_their_qos_and_the_palm_frame():
    displays, options = rviz_displays()
    assert options["Fixed Frame"] == topics.PALM_FRAME
    reliability = {topics.QosClass.SENSOR: "Best Effort", topics.QosClass.RELIABLE: "Reliable",
                   topics.QosClass.LATCHED: "Reliable"}
    seen = set()
    for display in displays:
        for key in ("Topic", "Description Topic"):
            if key in display:
                qos = display[key]
                topic = known(qos["Value"])
                seen.add(topic.name)
                assert qos["Reliability Policy"] == reliability[topic.qos], (display["Name"], topic.name)
                if topic.qos is topics.QosClass.LATCHED:
                    assert qos["Durability Policy"] == "Transient Local", display["Name"]
    assert {topics.ROBOT_DESCRIPTION.name, topics.VIS_MARKERS.name, topics.OBJECT_CLOUD.name,
            topics.DEBUG_IMAGE.name, topics.DEPTH_IMAGE.name} <= seen
    classes = {d["Class"] for d in displays}
    assert {"rviz_default_plugins/RobotModel", "rviz_default_plugins/TF", "rviz_default_plugins/MarkerArray",
            "rviz_default_plugins/PointCloud2", "rviz_default_plugins/Image"} <= classes
    (markers,) = [d for d in displays if d["Class"] == "rviz_default_plugins/MarkerArray"]
    namespaces = {v for k, v in vars(visualization).items() if k.startswith("NS_")}
    assert set(markers["Namespaces"]) == namespaces


def foxglove_topics(value, found: list[str]) -> list[str]:
    """Every string in the layout that names a topic: keys and values starting with '/' (message paths cut
    at their first '.')."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("/"):
                found.append(key)
            foxglove_topics(item, found)
    elif isinstance(value, list):
        for item in value:
            foxglove_topics(item, found)
    elif isinstance(value, str) and value.startswith("/"):
        found.append(value.split(".")[0])
    return found


def test_foxglove_layout_names_only_known_topics_and_is_one_consistent_layout():
    layout = json.loads((ROOT / "config" / "foxglove_layout.json").read_text())
    panels = layout["configById"]
    names = foxglove_topics(panels, [])
    for name in names:
        known(name)
    assert {topics.ROBOT_DESCRIPTION.name, topics.VIS_MARKERS.name, topics.OBJECT_CLOUD.name,
            topics.DEBUG_IMAGE.name} <= {n.lstrip("/") for n in names}

    def leaves(node) -> list[str]:
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(panels)
    three_d = panels["3D!hand"]
    assert three_d["followTf"] == topics.PALM_FRAME
    (urdf_layer,) = [layer for layer in three_d["layers"].values() if layer["layerId"] == "foxglove.Urdf"]
    assert urdf_layer["sourceType"] == "topic"
    assert panels["Image!debug"]["imageMode"]["imageTopic"].lstrip("/") == topics.DEBUG_IMAGE.name
    # plot labels name the joint at each index, in the canonical order the hand publishes
    hand = default_hand()
    for path in panels["Plot!joints"]["paths"]:
        index = int(re.search(r"\.position\[(\d+)\]$", path["value"]).group(1))
        assert path["label"].split()[0] == hand.joint_names[index], path


@pytest.mark.parametrize("launch_file, default", [("replay.launch.xml", "true"), ("sim.launch.xml", "false"),
                                                  ("robot.launch.xml", "false")])
def test_launch_files_start_hand_view_behind_the_visualization_argument(launch_file, default):
    root = ET.parse(ROOT / "launch" / launch_file).getroot()
    (arg,) = [a for a in root.iter("arg") if a.get("name") == "visualization"]
    assert arg.get("default") == default and "hand_view_node" in arg.get("description")
    (node,) = [n for n in root.iter("node") if n.get("exec") == "hand_view_node"]
    assert node.get("if") == "$(var visualization)"
    params = {p.get("name") for p in node.iter("param")}
    assert {"perception_config", "sim_config", "object"} <= params
