"""Every DexterityNode refuses start-up parameters it never declared (a typo would silently use a default).

rclpy keeps an override for an undeclared name without a word; the base class
(ros/common.py) checks the overrides once the node's whole constructor
has run, so parameters a node declares itself after its config (hand_node's
per-joint tables) are known, and qos_overrides.* / use_sim_time still pass.

Parameters are declared typed, with their ranges (issue 17): rclpy refuses a wrong
type or an out-of-range value at set time and ``ros2 param describe`` shows both;
an integer is still accepted for a floating-point parameter.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
import rclpy
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import DescribeParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from ros_harness import NodeProcess  # imports rclpy before pyrealsense2 (see camera/realsense.py)

from dexterity_ros.camera import SoftwareDepthDevice
from dexterity_ros.camera_model import Intrinsics
from dexterity_ros.config import ConfigError, describe_fields, param
from dexterity_ros.hand import DriverProfileConfig, make_profile
from dexterity_ros.nodes.allegro_emulator_node import AllegroEmulatorNode, EmulatorConfig
from dexterity_ros.nodes.camera_node import CameraNode
from dexterity_ros.nodes.goal_node import GoalNode
from dexterity_ros.nodes.hand_node import HandNode, HandNodeConfig
from dexterity_ros.nodes.pose_tracker_node import PoseTrackerNode
from dexterity_ros.ros.common import DexterityNode
from dexterity_ros.nodes.segmentation_node import SegmentationNode
from dexterity_ros.nodes.sim_bridge_node import SimBridgeConfig
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
    (GoalNode, "succes_hold_frames", "success_hold_frames"),
    (PoseTrackerNode, "tracking_confg", "tracking_config"),
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


# ------------------------------------------------------------- typed parameters (issue 17)
def _spin(context, *nodes):
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    return executor, thread


def _call(client_node, srv_type, name: str, request, timeout: float = 10.0):
    client = client_node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), name
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.done(), f"{name} did not answer"
    return future.result()


def test_parameter_service_refuses_out_of_range_values_and_describes_type_and_range(context):
    """ros2 param set / describe on a running node: rclpy checks the declared type and range itself."""
    emulator = AllegroEmulatorNode(context=context)
    client = rclpy.create_node("param_client", context=context)
    executor, thread = _spin(context, emulator, client)
    try:
        request = SetParameters.Request(parameters=[
            Parameter("fault_freeze_joint", value=16).to_parameter_msg(),   # range [-1, 15]
            Parameter("time_constant", value=-0.5).to_parameter_msg(),      # range [1e-4, inf)
            Parameter("fault_freeze_joint", value=3).to_parameter_msg(),
            Parameter("time_constant", value=1).to_parameter_msg(),         # an int for a float: taken as 1.0
            Parameter("time_constant", value="slow").to_parameter_msg(),    # wrong type
        ])
        results = _call(client, SetParameters, "/allegro_emulator/set_parameters", request).results
        assert [r.successful for r in results] == [False, False, True, True, False], results
        assert "fault_freeze_joint" in results[0].reason and "out of range" in results[0].reason
        assert "time_constant" in results[1].reason and "out of range" in results[1].reason
        assert results[4].reason.startswith("Wrong parameter type")
        assert emulator.config.fault_freeze_joint == 3 and emulator.config.time_constant == 1.0
        assert emulator.get_parameter("time_constant").type_ is Parameter.Type.DOUBLE

        names = ["fault_freeze_joint", "time_constant", "rate_hz", "driver_profile", "initial_pose",
                 "ros2_control_finger_digits", "fault_stop_feedback"]
        described = _call(client, DescribeParameters, "/allegro_emulator/describe_parameters",
                          DescribeParameters.Request(names=names)).descriptors
        d = dict(zip(names, described))
        assert {n: d[n].type for n in names} == {
            "fault_freeze_joint": ParameterType.PARAMETER_INTEGER, "time_constant": ParameterType.PARAMETER_DOUBLE,
            "rate_hz": ParameterType.PARAMETER_DOUBLE, "driver_profile": ParameterType.PARAMETER_STRING,
            "initial_pose": ParameterType.PARAMETER_DOUBLE_ARRAY,
            "ros2_control_finger_digits": ParameterType.PARAMETER_STRING_ARRAY,
            "fault_stop_feedback": ParameterType.PARAMETER_BOOL}
        assert not any(x.dynamic_typing for x in described)
        [ints] = d["fault_freeze_joint"].integer_range
        assert (ints.from_value, ints.to_value, ints.step) == (-1, 15, 1)
        [floats] = d["rate_hz"].floating_point_range
        assert (floats.from_value, floats.to_value, floats.step) == (1.0, 1000.0, 0.0)   # step 0: continuous
        [one_sided] = d["time_constant"].floating_point_range
        assert one_sided.from_value == 1e-4 and one_sided.to_value == float("inf")
        assert d["rate_hz"].read_only and not d["time_constant"].read_only
        assert "ros2_control" in d["driver_profile"].additional_constraints
        assert d["time_constant"].description.startswith("s, first-order response")
    finally:
        executor.shutdown()
        thread.join(timeout=5)
        client.destroy_node()
        emulator.destroy_node()


def test_start_up_values_take_ints_for_floats_and_refuse_wrong_types_and_ranges_by_name(context):
    hand = HandNode(context=context, parameter_overrides=[Parameter("command_rate_hz", value=50),
                                                          Parameter("max_velocity.ffj0", value=1)])
    try:
        assert hand.config.command_rate_hz == 50.0 and hand.get_parameter("max_velocity.ffj0").value == 1.0
        assert hand.get_parameter("command_rate_hz").type_ is Parameter.Type.DOUBLE
    finally:
        hand.destroy_node()
    emulator = AllegroEmulatorNode(context=context, parameter_overrides=[Parameter("initial_pose", value=[])])
    assert emulator.config.initial_pose == ()        # an empty list (any element type) is []
    emulator.destroy_node()
    with pytest.raises(ConfigError, match=r"node 'allegro_emulator' parameters: time_constant: expected a number"):
        AllegroEmulatorNode(context=context, parameter_overrides=[Parameter("time_constant", value="slow")])
    with pytest.raises(ConfigError, match=r"parameter 'rate_hz' = 5000.0 outside \[1.0, 1000.0\]"):
        AllegroEmulatorNode(context=context, parameter_overrides=[Parameter("rate_hz", value=5000)])
    with pytest.raises(ConfigError, match=r"fault_freeze_joint: expected an integer, got 1.5"):
        AllegroEmulatorNode(context=context, parameter_overrides=[Parameter("fault_freeze_joint", value=1.5)])
    with pytest.raises(ConfigError, match=r"parameter 'max_velocity.ffj0' must be a number, got 'fast'"):
        HandNode(context=context, parameter_overrides=[Parameter("max_velocity.ffj0", value="fast")])


def test_hand_node_and_both_driver_stand_ins_share_one_driver_profile_config(context):
    shared = describe_fields(DriverProfileConfig)
    assert [name for name, _, _ in shared] == ["driver_profile", "ros2_control_finger_digits",
                                               "ros2_control_joint_names", "leap_feedback_topic"]
    for cls in (HandNodeConfig, EmulatorConfig, SimBridgeConfig):
        assert issubclass(cls, DriverProfileConfig)
        rows = {name: (default, text) for name, default, text in describe_fields(cls)}
        assert {name: rows[name] for name, _, _ in shared} == {name: (d, t) for name, d, t in shared}, cls
    # the emulator's driver_profile was called protocol: a launch file still setting it must not start
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['protocol'\]"):
        AllegroEmulatorNode(context=context, parameter_overrides=[Parameter("protocol", value="leap")])
    leap = AllegroEmulatorNode(context=context, parameter_overrides=[
        Parameter("driver_profile", value="leap"), Parameter("leap_feedback_topic", value="leap_joint_states")])
    try:
        assert leap.profile.name == "leap" and leap.endpoint.feedback_topic == "leap_joint_states"
        assert make_profile(leap.config, leap.hand).feedback_topic.name == "leap_joint_states"
    finally:
        leap.destroy_node()
