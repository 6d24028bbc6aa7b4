"""student_node with contract-v2 policies over real DDS.

Three nodes run side by side (each with its own targets topic): a
proprioceptive policy (joint states only, no cloud, pose or goal publisher),
a pose-based policy reading the object pose on ``sim/object_pose``, and the
same pose policy pointed at a topic nobody publishes, which must exit
(code 2) naming that topic once ``source_wait`` has run out. The targets
published must equal :class:`TermPolicyRuntime` fed the same inputs offline.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, QuaternionStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import JointState

from dexterity_ros import topics
from dexterity_ros.diagnostic_keys import Student, count
from dexterity_ros.policy.runtime import normalize_goal
from dexterity_ros.policy.runtime_v2 import ObjectPose, StepInputs
from dexterity_ros.policy.student_config import StudentNodeConfig, build_runtime
from dexterity_ros.ros import conversions as conv
from dexterity_ros.ros.common import qos_profile
from ros_harness import NodeProcess, RosProbe
from student_v2_fixtures import (HAND, POSE_TERMS, PROPRIO_TERMS, contract, joint_positions, object_pose,
                                 tiny_v2_model)

POSE_TOPIC = "sim/object_pose"
MISSING_TOPIC = "nobody/object_pose"
GOAL = normalize_goal(np.array([np.cos(0.3), 0.0, np.sin(0.3), 0.0]))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student_v2")
    models = {"proprio": folder / "proprio.onnx", "pose": folder / "pose.onnx"}
    models["proprio"].write_bytes(tiny_v2_model(contract(PROPRIO_TERMS, "proprio"), seed=1))
    models["pose"].write_bytes(tiny_v2_model(contract(POSE_TERMS, "pose"), seed=2))
    nodes = {
        "proprio": NodeProcess("student_node", name="student_proprio", params={"model_path": str(models["proprio"])},
                               remaps={topics.JOINT_TARGETS.name: "proprio/joint_targets"}),
        "pose": NodeProcess("student_node", name="student_pose",
                            params={"model_path": str(models["pose"]), "object_pose_topic": POSE_TOPIC},
                            remaps={topics.JOINT_TARGETS.name: "pose/joint_targets"}),
        "exit": NodeProcess("student_node", name="student_exit",
                            params={"model_path": str(models["pose"]), "object_pose_topic": MISSING_TOPIC,
                                    "source_wait": 1.0},
                            remaps={topics.JOINT_TARGETS.name: "exit/joint_targets"}),
    }
    probe = RosProbe("student_v2_probe")
    targets = {name: probe.subscribe(JointState, f"{name}/joint_targets", qos_profile(topics.JOINT_TARGETS))
               for name in ("proprio", "pose")}
    diags = probe.subscribe(DiagnosticArray, "/diagnostics", qos_profile(topics.DIAGNOSTICS))
    pubs = {
        "joints": probe.publisher(JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES)),
        "goal": probe.publisher(QuaternionStamped, topics.GOAL.name, qos_profile(topics.GOAL)),
        "pose": probe.publisher(PoseStamped, POSE_TOPIC, qos_profile(topics.OBJECT_POSE_TRACKED)),
    }
    pubs["goal"].publish(conv.goal_msg(GOAL, probe.node.get_clock().now().nanoseconds, topics.PALM_FRAME))
    connected = lambda: (pubs["joints"].get_subscription_count() >= 2 and   # noqa: E731
                         pubs["pose"].get_subscription_count() >= 1 and pubs["goal"].get_subscription_count() >= 1)
    assert probe.wait_for(connected, 30), "\n".join(n.output for n in nodes.values())
    yield nodes, probe, pubs, targets, models, diags
    probe.close()
    for node in nodes.values():
        node.stop()


def subscribes_to(probe, node_name: str, expected: set[str], timeout: float = 5.0) -> bool:
    """Whether the node's subscriptions (as discovered) are exactly ``expected`` (plus /parameter_events)."""
    def found():
        try:
            pairs = probe.node.get_subscriber_names_and_types_by_node(node_name, "/")
        except Exception:          # NodeNameNonExistentError until discovery has seen the node
            return False
        return {name for name, _ in pairs} - {"/parameter_events"} == expected
    return probe.wait_for(found, timeout)


def stream(probe, pubs, seconds: float, rate_hz: float, poses: bool) -> tuple[dict, dict]:
    """Joint states (and poses with the same stamps) at ``rate_hz``; returns what was sent, by stamp."""
    sent_q, sent_pose = {}, {}
    k = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        stamp = probe.node.get_clock().now().nanoseconds
        q = joint_positions(k)
        pubs["joints"].publish(conv.arrays_to_joint_state(HAND.joint_names, q, stamp))
        sent_q[stamp] = q
        if poses:
            position, quat = object_pose(k)
            msg = PoseStamped(header=conv.make_header(stamp, topics.PALM_FRAME))
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
            msg.pose.orientation = conv.wxyz_to_quaternion_msg(quat)
            pubs["pose"].publish(msg)
            sent_pose[stamp] = conv.pose_msg_to_arrays(msg)      # what the node reads from it
        k += 1
        time.sleep(1.0 / rate_hz)
    return sent_q, sent_pose


def offline_targets(model, received, sent_q, sent_pose=None) -> tuple[np.ndarray, np.ndarray]:
    """(published targets, TermPolicyRuntime's on the same inputs in the same order), one row per target."""
    runtime = build_runtime(StudentNodeConfig(model_path=str(model)))    # the node's defaults
    got, want = [], []
    for msg in received:
        stamp = conv.stamp_to_ns(msg.header.stamp)
        pose = None if sent_pose is None else ObjectPose(*sent_pose[stamp], stamp)
        out = runtime.step(StepInputs(sent_q[stamp], stamp, goal_wxyz=None if sent_pose is None else GOAL,
                                      object_pose=pose))
        assert out.target is not None, out.reason
        got.append(HAND.to_canonical(list(msg.name), np.asarray(msg.position)))
        want.append(out.target)
    return np.array(got), np.array(want)


def test_pose_policy_without_a_pose_publisher_exits_naming_the_topic(graph):
    nodes = graph[0]
    node = nodes["exit"]
    assert node.proc.wait(timeout=20) == 2, node.output
    assert f"/{MISSING_TOPIC}" in node.output and "object_position, object_orientation" in node.output
    assert "source_wait" in node.output and "Traceback" not in node.output


def test_proprioceptive_policy_acts_on_joint_states_alone(graph):
    nodes, probe, pubs, targets, models, diags = graph
    assert subscribes_to(probe, "student_proprio", {f"/{topics.JOINT_STATES.name}"})
    time.sleep(0.6)                                       # > reset_after_gap: the next step starts afresh
    del targets["proprio"][:]
    sent_q, _ = stream(probe, pubs, 1.5, rate_hz=50.0, poses=False)
    assert probe.wait_for(lambda: len(targets["proprio"]) >= 10, 3), nodes["proprio"].output
    received = list(targets["proprio"])
    assert all(conv.stamp_to_ns(m.header.stamp) in sent_q for m in received)
    assert len(received) <= 1.5 * 20 + 2                  # rate-gated at the contract's 20 Hz
    got, want = offline_targets(models["proprio"], received, sent_q)
    np.testing.assert_array_equal(got, want)
    assert nodes["proprio"].alive()


def test_pose_policy_acts_on_poses_and_matches_the_offline_runtime(graph):
    nodes, probe, pubs, targets, models, diags = graph
    assert subscribes_to(probe, "student_pose", {f"/{topics.JOINT_STATES.name}", f"/{topics.GOAL.name}",
                                                 f"/{POSE_TOPIC}"})
    time.sleep(0.6)
    del targets["pose"][:]
    sent_q, sent_pose = stream(probe, pubs, 1.5, rate_hz=30.0, poses=True)
    assert probe.wait_for(lambda: len(targets["pose"]) >= 8, 3), nodes["pose"].output
    received = list(targets["pose"])
    got, want = offline_targets(models["pose"], received, sent_q, sent_pose)
    np.testing.assert_array_equal(got, want)

    # bad pose messages are rejected with a reason; the node runs on
    for frame, w in (("camera_depth_optical_frame", 1.0), (topics.PALM_FRAME, 2.0)):
        msg = PoseStamped(header=conv.make_header(probe.node.get_clock().now().nanoseconds, frame))
        msg.pose.orientation.w = w
        pubs["pose"].publish(msg)
    assert nodes["pose"].wait_for_output("object pose rejected: frame 'camera_depth_optical_frame'", 5)

    def rejected_twice():
        values = [{kv.key: kv.value for kv in s.values} for arr in diags[-3:] for s in arr.status
                  if "student_pose" in s.name]
        return any(v.get(count(Student.BAD_POSE)) == "2" for v in values)
    assert probe.wait_for(rejected_twice, 5), nodes["pose"].output

    # a model reading other sources needs a restart: refused, the pose model keeps running
    request = SetParameters.Request()
    request.parameters = [Parameter(name="model_path", value=ParameterValue(
        type=ParameterType.PARAMETER_STRING, string_value=str(models["proprio"])))]
    result = probe.call(SetParameters, "/student_pose/set_parameters", request).results[0]
    assert not result.successful and "restart student_node" in result.reason
    assert nodes["pose"].alive()
