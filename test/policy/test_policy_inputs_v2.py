"""What student_node subscribes to and what triggers it, by contract; the pose buffer; v2 runtime loading."""
from __future__ import annotations

import pytest

from dexterity_ros.policy.inputs import (V1_SOURCES, InputPlan, PoseBuffer, Trigger, input_plan, staleness,
                                         terms_by_source, unpublished_sources_message)
from dexterity_ros.policy.runtime import PolicyRuntime
from dexterity_ros.policy.runtime_v2 import TermPolicyRuntime
from dexterity_ros.policy.student_config import StudentNodeConfig, build_runtime
from student_v2_fixtures import POSE_TERMS, PROPRIO_TERMS, contract, tiny_v2_model

MS = 1_000_000


@pytest.mark.parametrize("sources,trigger", [
    (None, Trigger.CLOUD),                                                   # every version-1 contract
    (("joint_states",), Trigger.JOINTS),                                     # HORA-like
    (("joint_states", "object_pose", "goal"), Trigger.POSE),                 # Isaac Lab / IGE / Playground
    (("joint_states", "object_pose", "goal", "object_points"), Trigger.CLOUD),
    (("joint_states", "goal", "object_points"), Trigger.CLOUD),
    ((), Trigger.JOINTS),                                                    # constants only: joint states anyway
])
def test_trigger_is_the_cloud_else_the_pose_else_the_joint_states(sources, trigger):
    plan = input_plan(sources)
    assert plan.trigger is trigger
    assert plan.sources[0] == "joint_states" and plan.needs("joint_states")
    assert plan.describe().endswith(f"triggered by {trigger.value}")


def test_version_1_plan_reads_cloud_joint_states_and_goal():
    assert input_plan(None) == InputPlan(V1_SOURCES, Trigger.CLOUD)
    assert set(input_plan(None).sources) == set(input_plan(("joint_states", "goal", "object_points")).sources)


def test_contract_sources_give_the_plan_and_the_terms_that_need_them():
    proprio, pose = contract(PROPRIO_TERMS, "proprio"), contract(POSE_TERMS, "pose")
    assert input_plan(proprio.sources) == InputPlan(("joint_states",), Trigger.JOINTS)
    assert input_plan(pose.sources) == InputPlan(("joint_states", "object_pose", "goal"), Trigger.POSE)
    needed_by = terms_by_source(pose.terms)
    assert needed_by["object_pose"] == ["object_position", "object_orientation"]
    assert needed_by["goal"] == ["goal_orientation"]
    text = unpublished_sources_message({"object_pose": "/perception/object_pose", "goal": "/goal/orientation"},
                                       needed_by, 1.5)
    assert "'/perception/object_pose' (object_pose, needed by terms object_position, object_orientation)" in text
    assert "'/goal/orientation' (goal, needed by terms goal_orientation)" in text
    assert "1.5 s (source_wait)" in text
    assert "needed by the runtime (always)" in unpublished_sources_message(
        {"joint_states": "/hand/joint_states"}, terms_by_source(contract([{"name": "c", "kind": "constant",
                                                                          "values": [1.0]}], "c").terms), 5)


def test_pose_buffer_gives_the_nearest_pose_within_max_pose_age():
    poses: PoseBuffer[str] = PoseBuffer(capacity=4)
    assert poses.nearest(0, 0.2) == (None, "no object pose received yet")
    for stamp in (100 * MS, 200 * MS, 300 * MS):
        poses.add(stamp, f"p{stamp // MS}")
    assert poses.nearest(240 * MS, 0.2) == ("p200", None)
    assert poses.nearest(260 * MS, 0.2) == ("p300", None)
    assert poses.nearest(250 * MS, 0.2) == ("p200", None)          # a tie goes to the older pose
    pose, why = poses.nearest(600 * MS, 0.2)
    assert pose is None and "300 ms older than the step stamp (max_pose_age 200 ms)" in why
    pose, why = poses.nearest(0, 0.05)
    assert pose is None and "100 ms newer" in why
    poses.add(150 * MS, "late")                                    # out of order: kept sorted
    assert poses.nearest(160 * MS, 0.02) == ("late", None)
    poses.add(400 * MS, "p400")                                    # capacity 4: the oldest goes
    assert len(poses) == 4 and poses.nearest(100 * MS, 0.01)[0] is None


def test_pose_buffer_restarts_when_time_jumps_back():
    poses: PoseBuffer[str] = PoseBuffer()
    poses.add(10_000 * MS, "before")
    poses.add(1 * MS, "after the jump")                            # a looping bag
    assert len(poses) == 1 and poses.nearest(10_000 * MS, 1e3) == ("after the jump", None)
    poses.clear()
    assert len(poses) == 0


def test_staleness_names_the_trigger():
    now = 10_000 * MS
    assert "stale cloud" in staleness(now, now - 300 * MS, now, 0.2, 0.05)           # version 1 wording kept
    assert "stale object pose" in staleness(now, now - 300 * MS, now, 0.2, 0.05, "object pose")
    assert "object pose and joint state stamps differ by 80 ms" in staleness(now, now, now - 80 * MS, 0.2, 0.05,
                                                                             "object pose")
    assert staleness(now, now - 10 * MS, now - 10 * MS, 0.2, 0.05, "joint state") is None


def test_build_runtime_loads_either_contract_version(tmp_path):
    path = tmp_path / "proprio.onnx"
    path.write_bytes(tiny_v2_model(contract(PROPRIO_TERMS, "proprio")))
    runtime = build_runtime(StudentNodeConfig(model_path=str(path)))
    assert isinstance(runtime, TermPolicyRuntime) and runtime.sources == ("joint_states",)
    assert isinstance(build_runtime(StudentNodeConfig()), PolicyRuntime)
    defaults = StudentNodeConfig()
    assert (defaults.object_pose_topic, defaults.max_pose_age, defaults.source_wait) == \
        ("perception/object_pose", 0.2, 5.0)
