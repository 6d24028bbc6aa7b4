"""Pairing frames with joint states (pure): the buffer, and the wait both segmentation_node and student_node use."""
from __future__ import annotations

import numpy as np

from dexterity_ros import diagnostic_keys
from dexterity_ros.joint_buffer import JointStateBuffer, PairOutcome, StampPairing


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def pairing(wait_s: float = 0.05):
    joints, clock = JointStateBuffer(), Clock()
    return joints, clock, StampPairing(joints.has_at_or_after, wait_s, clock)


def test_a_frame_whose_joint_state_is_there_goes_at_once():
    joints, _, p = pairing()
    joints.add(1_000, np.zeros(16))
    [released] = p.offer("frame", 1_000)
    assert (released.item, released.outcome, released.waited_s) == ("frame", PairOutcome.AT_ONCE, 0.0)
    assert not p.waiting and p.poll() is None


def test_a_frame_waits_for_its_joint_state_and_goes_when_it_arrives():
    joints, clock, p = pairing()
    joints.add(900, np.zeros(16))
    assert p.offer("frame", 1_000) == [] and p.waiting
    clock.t += 0.02
    assert p.poll() is None                       # neither arrived nor timed out
    joints.add(1_000, np.zeros(16))
    released = p.poll()
    assert released.outcome is PairOutcome.PAIRED and released.stamp_ns == 1_000
    assert abs(released.waited_s - 0.02) < 1e-9 and not p.waiting


def test_a_frame_goes_ahead_without_its_joint_state_once_the_wait_runs_out():
    _, clock, p = pairing(0.05)
    p.offer("frame", 1_000)
    clock.t += 0.049
    assert p.poll() is None
    clock.t += 0.001
    assert p.poll().outcome is PairOutcome.TIMED_OUT


def test_a_newer_frame_supersedes_the_waiting_one_and_the_outcomes_are_counted():
    joints, clock, p = pairing()
    p.offer("old", 1_000)
    clock.t += 0.01
    [superseded] = p.offer("new", 2_000)
    assert (superseded.item, superseded.outcome) == ("old", PairOutcome.SUPERSEDED)
    joints.add(2_000, np.zeros(16))
    assert p.poll().item == "new"
    assert p.counts == {PairOutcome.AT_ONCE: 0, PairOutcome.PAIRED: 1, PairOutcome.TIMED_OUT: 0,
                        PairOutcome.SUPERSEDED: 1}


def test_no_wait_configured_means_no_waiting_and_clear_forgets():
    _, _, p = pairing(0.0)
    assert p.offer("frame", 1_000)[0].outcome is PairOutcome.AT_ONCE
    p.wait_s = 0.05                               # a node may change it at runtime (student: joint_state_wait)
    p.offer("frame", 1_000)
    p.clear()
    assert not p.waiting and p.poll() is None


def test_diagnostic_keys_are_spelled_with_spaces():
    """One style for every key; a ROS name inside a key keeps its spelling (issue 17 renamed the student's)."""
    ros_names = ("joint_state", "camera_info", "tf_static", "num_points")
    keys = [(f"{cls.__name__}.{name}", value)
            for cls in vars(diagnostic_keys).values() if isinstance(cls, type)
            for name, value in vars(cls).items() if name.isupper()]
    assert len(keys) > 100
    def without_ros_names(key: str) -> str:
        for ros_name in ros_names:
            key = key.replace(ros_name, "")
        return key

    assert not [(name, key) for name, key in keys if "_" in without_ros_names(key)]
    for cls in (diagnostic_keys.Hand, diagnostic_keys.Student, diagnostic_keys.Segmentation):
        values = [v for n, v in vars(cls).items() if n.isupper()]
        assert len(values) == len(set(values)), cls
    assert diagnostic_keys.Student.BAD_JOINT_STATE == diagnostic_keys.Segmentation.BAD_JOINT_STATE
    assert diagnostic_keys.count(diagnostic_keys.Student.NAN_OUTPUTS) == "nan outputs count"
