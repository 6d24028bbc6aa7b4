"""Every DexterityNode refuses start-up parameters it never declared (a typo would silently use a default).

rclpy keeps an override for an undeclared name without a word; the base class
(nodes/ros_common.py) checks the overrides once the node's whole constructor
has run, so parameters a node declares itself after its config (hand_node's
per-joint tables) are known, and qos_overrides.* / use_sim_time still pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import rclpy
from rclpy.parameter import Parameter

from ros_harness import NodeProcess  # imports rclpy before pyrealsense2 (see camera/realsense.py)

from dexterity_ros.camera import SoftwareDepthDevice
from dexterity_ros.camera_model import Intrinsics
from dexterity_ros.config import ConfigError, param
from dexterity_ros.nodes.camera_node import CameraNode
from dexterity_ros.nodes.ros_common import DexterityNode
from dexterity_ros.nodes.segmentation_node import SegmentationNode
from dexterity_ros.nodes.student_node import StudentNode

PASS_THROUGH = [Parameter("use_sim_time", value=False),
                Parameter("qos_overrides./perception/object_cloud.publisher.depth", value=3)]


@dataclass(frozen=True)
class LateConfig:
    gain: float = param(1.0, "a gain")


class LateDeclaringNode(DexterityNode):
    """Declares a parameter of its own after the config, as hand_node does with its per-joint tables."""

    def __init__(self, **kwargs):
        super().__init__("late_declaring", LateConfig, **kwargs)
        self.table = self.declare_parameter("table.a", 0.0).value


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def camera(**kwargs) -> CameraNode:
    sw = SoftwareDepthDevice(Intrinsics(64, 48, 50.0, 51.0, 31.5, 23.5), fps=30)
    overrides = [Parameter("depth_module.depth_profile", value="0x0x0")] + kwargs.pop("parameter_overrides")
    return CameraNode(device=sw.device, parameter_overrides=overrides, **kwargs)


@pytest.mark.parametrize("factory,typo,meant", [
    (StudentNode, "modle_path", "model_path"),
    (SegmentationNode, "extrinsic_fil", "extrinsic_file"),
    (camera, "depth_module.depth_profil", "depth_module.depth_profile"),
    (LateDeclaringNode, "tabel.a", "table.a"),
])
def test_unknown_parameters_are_refused_and_known_ones_pass(context, factory, typo, meant):
    with pytest.raises(ConfigError, match=rf"unknown parameter\(s\) \['{typo}'\]; did you mean '{meant}'"):
        factory(context=context, parameter_overrides=PASS_THROUGH + [Parameter(typo, value="x")])
    node = factory(context=context, parameter_overrides=list(PASS_THROUGH))
    node.destroy_node()


def test_parameters_declared_after_the_config_count_as_known(context):
    node = LateDeclaringNode(context=context, parameter_overrides=[Parameter("table.a", value=2.0),
                                                                   Parameter("gain", value=3.0)])
    try:
        assert (node.table, node.config.gain) == (2.0, 3.0)
    finally:
        node.destroy_node()


def test_a_typo_on_the_command_line_exits_2_with_the_name_not_a_traceback():
    node = NodeProcess("student_node", params={"modle_path": "student.onnx"})
    try:
        code = node.proc.wait(timeout=60)
    finally:
        node.stop()
    assert code == 2, node.output
    assert "unknown parameter(s) ['modle_path']" in node.output and "'model_path'" in node.output
    assert "Traceback" not in node.output
