"""goal_node over real DDS: goals drawn, successes counted from poses, the shadow judge, garbage survived."""
from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, QuaternionStamped

from dexterity_ros import topics
from dexterity_ros.diagnostic_keys import GoalNode as G, TaskMetrics as K, count
from dexterity_ros.ros import conversions as conv
from dexterity_ros.ros.common import qos_profile
from ros_harness import NodeProcess, RosProbe

REF = np.array([0.055, 0.0, -0.04])          # config/sim.yaml palm_up object_position
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def graph():
    node = NodeProcess("goal_node", name="goal", params={
        "success_hold_frames": 2, "restart_frames": 2, "lost_timeout_s": 1.0, "seed": 3,
        "truth_pose_topic": topics.OBJECT_POSE.name})
    probe = RosProbe("goal_probe")
    goals = probe.subscribe(QuaternionStamped, topics.GOAL.name, qos_profile(topics.GOAL))
    metrics = probe.subscribe(DiagnosticStatus, topics.TASK_METRICS.name, qos_profile(topics.TASK_METRICS))
    truth = probe.subscribe(DiagnosticStatus, topics.TASK_METRICS_TRUTH.name, qos_profile(topics.TASK_METRICS_TRUTH))
    diags = probe.subscribe(DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS))
    pubs = {"pose": probe.publisher(PoseStamped, topics.OBJECT_POSE_TRACKED.name,
                                    qos_profile(topics.OBJECT_POSE_TRACKED)),
            "truth": probe.publisher(PoseStamped, topics.OBJECT_POSE.name, qos_profile(topics.OBJECT_POSE))}
    connected = lambda: all(p.get_subscription_count() > 0 for p in pubs.values())   # noqa: E731
    assert probe.wait_for(connected, 30), node.output
    yield node, probe, pubs, goals, metrics, truth, diags
    probe.close()
    node.stop()


def pose(probe, q, position=REF, frame=topics.PALM_FRAME) -> PoseStamped:
    msg = PoseStamped(header=conv.make_header(probe.node.get_clock().now().nanoseconds, frame))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    msg.pose.orientation = conv.wxyz_to_quaternion_msg(np.asarray(q, dtype=float))
    return msg


def send(probe, pubs, q, frames: int, truth=True, tracked=True, **kwargs) -> None:
    for _ in range(frames):
        if truth:
            pubs["truth"].publish(pose(probe, q))
        if tracked:
            pubs["pose"].publish(pose(probe, q, **kwargs))
        time.sleep(1 / 30)


def values(store) -> dict[str, str]:
    return {kv.key: kv.value for kv in store[-1].values} if store else {}


def node_values(diags) -> dict[str, str]:
    for arr in reversed(diags):
        for s in arr.status:
            if "goal" in s.name and "dexterity_ros" in s.name:
                return {kv.key: kv.value for kv in s.values}
    return {}


def test_a_reached_goal_counts_as_success_and_a_new_goal_is_drawn(graph):
    node, probe, pubs, goals, metrics, truth, diags = graph
    send(probe, pubs, IDENTITY, 10)                     # the object appears in the hand: an episode starts
    assert probe.wait_for(lambda: len(goals) >= 1, 5), node.output
    first = conv.quaternion_msg_to_wxyz(goals[-1].quaternion)
    assert goals[-1].header.frame_id == topics.PALM_FRAME and abs(np.linalg.norm(first) - 1) < 1e-9
    assert probe.wait_for(lambda: values(metrics).get(K.STATE) == "running", 5), node.output
    assert float(values(metrics)[K.ROTATION_ERROR]) >= 0.8 - 1e-6           # not already reached (cube symmetry)
    n_goals = len(goals)
    # the true pose reaches the goal first (the tracker lags it), then the tracked one
    send(probe, pubs, first, 3, tracked=False)
    assert probe.wait_for(lambda: values(truth).get(K.GOALS_REACHED) == "1", 5), values(truth)
    assert len(goals) == n_goals                          # only the tracked-pose judge draws goals
    send(probe, pubs, first, 4)                           # held at the goal for >= success_hold_frames
    assert probe.wait_for(lambda: len(goals) > n_goals, 5), node.output
    second = conv.quaternion_msg_to_wxyz(goals[-1].quaternion)
    assert not np.allclose(second, first)
    assert probe.wait_for(lambda: values(metrics).get(K.GOALS_REACHED) == "1", 5), values(metrics)
    assert values(metrics)[K.CONSECUTIVE_SUCCESSES] == "1" and values(metrics)[K.EPISODES] == "1"
    # the shadow judge follows the same goals on the "true" pose: one success for this goal, the next goal
    assert probe.wait_for(lambda: values(truth).get(K.GOAL) == values(metrics)[K.GOAL], 5), values(truth)
    assert values(truth)[K.GOALS_REACHED] == "1" and values(truth)[K.EPISODES] == "1"


def test_garbage_poses_give_diagnostics_and_the_node_keeps_judging(graph):
    node, probe, pubs, goals, metrics, truth, diags = graph
    send(probe, pubs, [float("nan"), 0.0, 0.0, 1.0], 3, truth=False)
    send(probe, pubs, IDENTITY, 3, truth=False, frame="camera_depth_optical_frame")
    send(probe, pubs, [2.0, 0.0, 0.0, 0.0], 2, truth=False)                 # not a unit quaternion
    assert probe.wait_for(lambda: int(node_values(diags).get(count(G.BAD_POSE), 0)) >= 8, 5), node_values(diags)
    assert any("is not 'palm'" in line or "non-finite" in line for line in node.lines), node.output
    assert node.alive()
    before = len(metrics)
    send(probe, pubs, IDENTITY, 3)
    assert probe.wait_for(lambda: len(metrics) > before, 5) and values(metrics)[K.OBJECT_SEEN] == "true"


def test_an_object_not_seen_for_lost_timeout_is_a_drop(graph):
    node, probe, pubs, goals, metrics, truth, diags = graph
    send(probe, pubs, IDENTITY, 5)                       # a running episode (started again if it had ended)
    drops = int(values(metrics).get(K.DROPS_LOST, 0))
    time.sleep(1.6)                                      # the tracker publishes nothing while lost
    assert probe.wait_for(lambda: int(values(metrics).get(K.DROPS_LOST, 0)) == drops + 1, 5), values(metrics)
    assert values(metrics)[K.STATE] == "waiting"
    n_goals = len(goals)
    send(probe, pubs, IDENTITY, 5)                       # back in the hand: the next episode, a new goal
    assert probe.wait_for(lambda: len(goals) > n_goals, 5), node.output
    assert probe.wait_for(lambda: values(metrics).get(K.STATE) == "running", 5)
    assert node.alive()
