"""replay.launch.xml through our launcher: the whole graph on a replayed episode.

Asserts hand commands arrive in the driver's protocol, never leave the joint
limits, and map onto the policy targets by joint name (each driver slot
follows the target of the joint it is named after, not any other joint).
"""
import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from dexterity_ros import topics
from dexterity_ros.ros.bags.episode import bag_topic
from dexterity_ros.bags.io import BagReader
from dexterity_ros.diagnostic_keys import Hand, Segmentation, Student, count
from dexterity_ros.hand.profiles import make_profile
from dexterity_ros.hand_model import default_hand
from dexterity_ros.ros.graph_monitor import (ACTION_QUEUE_DEPTH, GraphMonitor, replay_graph_requirements, start_replay,
                                              wait_for_graph)
from dexterity_ros.ros.common import qos_profile
from dexterity_ros.paths import launch_path
from dexterity_ros.launcher import launch
from dexterity_ros.ros.bags.generate import generate_stream


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "episode"
    generate_stream(path, seed=11, total_steps=48)     # 4 s at 12 Hz
    return path


def counts_settled(report, targets_seen: int) -> bool:
    """The student's own action count (its 1 Hz /diagnostics) matches the targets seen so far."""
    actions = report.diagnostic_value("student", count(Student.ACTIONS))
    return actions is not None and int(actions) == report.targets == targets_seen


def test_replay_graph_commands_in_limits_and_mapped_by_name(episode):
    hand = default_hand()
    profile = make_profile("allegro_v4", hand)
    monitor = GraphMonitor(profile.command_topic.name)
    commands, targets = [], []
    monitor.node.create_subscription(JointState, profile.command_topic.name,
                                     lambda m: commands.append((time.monotonic(), list(m.name), np.array(m.position))),
                                     qos_profile(profile.command_topic, ACTION_QUEUE_DEPTH))
    monitor.node.create_subscription(JointState, topics.JOINT_TARGETS.name,
                                     lambda m: targets.append((time.monotonic(), list(m.name), np.array(m.position))),
                                     qos_profile(topics.JOINT_TARGETS, ACTION_QUEUE_DEPTH))
    with BagReader(episode) as reader:
        frames_in_bag = reader.topics()[bag_topic(topics.DEPTH_IMAGE)].count
        recorded_ns = reader.start_ns
    # stamps long past (simulation time from 0), as in a bag recorded on the robot and replayed later: the
    # graph acts on every frame because sim_bridge_node restamps them (README: how to replay a robot bag)
    assert time.time_ns() - recorded_ns > 365 * 86400 * 10**9
    handle = launch(launch_path("replay.launch.xml"), [f"bag:={episode}", "start_paused:=true"], echo=False)
    try:
        missing = wait_for_graph(monitor.node, replay_graph_requirements(True, profile.command_topic.name), 60)
        assert not missing, (missing, handle.output[-3000:])
        # This observer saw every writer, but a writer matches this observer's reader on its own side, maybe later:
        # a reliable target published before that is never sent here (CI: the student counted 44 actions, this
        # observer got 43). Let the matches settle, as `dexterity-ros parity` does (0.5 s; docs/benchmarks.md)
        time.sleep(0.5)
        start_replay(monitor)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and monitor.report().frames < frames_in_bag:
            time.sleep(0.2)
        time.sleep(1.5)
        # counts are compared while the graph still runs: a target published as the nodes shut
        # down may count in the student's last diagnostics yet never be delivered
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not counts_settled(monitor.report(), len(targets)):
            time.sleep(0.2)
        running = monitor.report()
        targets_seen = len(targets)
    finally:
        code = handle.stop()
        report = monitor.report()
        monitor.close()
    assert not [c.label for c in handle.children if c.crashed], handle.output[-3000:]
    assert code == 0, handle.output[-3000:]
    assert report.frames == frames_in_bag, report.lines()
    assert report.clouds >= 0.5 * frames_in_bag, report.lines()      # frames without the object give none
    # every cloud the student receives gives a target, except those it says on /diagnostics it
    # passed over (a newer cloud came while it waited for the joint state, or stale inputs).
    # Counted by the nodes themselves: clouds travel best-effort (sensor QoS), so an observer
    # may miss one that the student got; targets are reliable, so the observer sees them all
    published = int(running.diagnostic_value("segmentation", count(Segmentation.CLOUDS_PUBLISHED)) or -1)
    actions = int(running.diagnostic_value("student", count(Student.ACTIONS)) or -1)
    passed_over = {k: int(running.diagnostic_value("student", count(k)) or 0)
                   for k in (Student.SKIPPED, Student.STALE)}
    assert published > 0 and actions > 0, ("diagnostics not received", running.lines())
    assert targets_seen == running.targets == actions, (actions, running.lines())
    assert actions + sum(passed_over.values()) <= published, (published, actions, passed_over)
    assert actions >= 0.9 * published, (published, actions, passed_over, report.lines())
    assert len(commands) > 100, report.lines()

    # protocol: names in the driver's slot order, positions only, inside the limits
    v4_names = list(profile.command_names)
    assert all(names == v4_names for _, names, _ in commands)
    lower, upper = hand.lower[profile.command_index], hand.upper[profile.command_index]
    values = np.array([v for _, _, v in commands])
    assert np.all(values >= lower - 1e-9) and np.all(values <= upper + 1e-9)
    assert report.diagnostic_value("hand", Hand.LIMIT_VIOLATIONS) == "0", "hand diagnostics not received"

    # name mapping: each command slot carries the target of the joint it is named after.
    # Targets change slowly, so after the ramp-in the command equals the latest target of
    # its own joint; joints whose targets differ tell a wrong mapping apart.
    target_t = np.array([t for t, _, _ in targets])
    target_q = np.array([hand.to_canonical(n, v) for _, n, v in targets])
    settled = [(t, v) for t, _, v in commands if target_t[0] + 1.5 <= t <= target_t[-1]]
    assert len(settled) > 50
    idx = np.clip(np.searchsorted(target_t, [t for t, _ in settled]) - 1, 0, len(target_t) - 1)
    cmd = np.array([v for _, v in settled])
    ref = target_q[idx]
    errors = np.median(np.abs(cmd[:, :, None] - ref[:, None, :]), axis=0)   # [slot, canonical joint]
    distinct = 0
    for slot, canonical in enumerate(profile.command_index):
        name = f"{v4_names[slot]} -> {hand.joint_names[canonical]}"
        assert errors[slot, canonical] < 0.03, (name, errors[slot].round(3))
        others = np.abs(np.median(ref, axis=0) - np.median(ref[:, canonical])) > 0.1
        if others.any():
            assert errors[slot, others].min() > errors[slot, canonical] + 0.05, name
            distinct += 1
    assert distinct == hand.num_joints
