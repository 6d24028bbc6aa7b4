"""Test-session environment: an isolated ROS domain, the shared-memory DDS profile.

Every pytest process gets its own ROS_DOMAIN_ID (derived from its pid) and
localhost-only discovery, so parallel runs and other graphs on the machine
never cross-talk. Child processes started by tests inherit this environment.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(ROOT / "config" / "fastdds_shm.xml"))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYTHONUNBUFFERED", "1")

# A runner that starts us in the background (nohup, `cmd &` in a script) leaves SIGINT ignored, and
# an ignored signal stays ignored in every child process. The tests stop nodes and launchers with
# SIGINT as a user would, so give this process (and through exec, its children) the default.
signal.signal(signal.SIGINT, signal.default_int_handler)


# ------------------------------------------------------------------ markers
# Tests are grouped by component in folders (test/hand, test/bags, ...); each file also has a kind, so
# `pytest -m unit` runs the fast, process-free tests in seconds and `make test` still runs everything.
# A file's kind is its slowest test's: graph = starts nodes or processes and talks over DDS; hil = the
# hardware-in-the-loop scenarios; slow = no processes, but seconds of compute (hypothesis, MuJoCo,
# training); unit = everything else (measured with --durations, each file under ~2.5 s).
KIND_BY_FILE = {
    "hil/test_scenarios.py": "hil",
    **{f: "graph" for f in (
        "hand/test_hand_graph.py", "bags/test_bags_graph.py", "bags/test_bags_cli.py", "launcher/test_launch_xml.py",
        "graph/test_parity_demo.py", "graph/test_graph_replay_launch.py", "camera/test_camera_node.py",
        "policy/test_policy_node.py", "perception/test_graph_segmentation.py", "sim/test_graph_sim_bridge.py",
        "core/test_node_parameters.py", "task/test_goal_node.py", "tracking/test_graph_tracker.py",
        "graph/test_graph_student_v2.py", "graph/test_graph_import_parity.py", "graph/test_graph_view.py",
        "graph/test_graph_visualization.py", "hand/test_operator_graph.py", "learning/test_learning_ray.py",
        "graph/test_demo_live.py")},
    **{f: "slow" for f in (
        "learning/test_learning_expert.py", "learning/test_learning_parity.py", "learning/test_learning_distill.py",
        "bags/test_bags_integrity.py", "sim/test_sim_randomization.py", "camera/test_camera.py",
        "core/test_packaging.py", "hil/test_hil_checks.py", "policy/test_import_isaacgymenvs.py",
        "policy/test_import_hora.py", "policy/test_import_isaaclab.py", "policy/test_import_playground.py",
        "perception/test_calibration_solve.py", "perception/test_calibration_solve_cli.py",
        "perception/test_perception_calibration.py", "learning/test_learning_pose_student.py",
        "policy/test_import_dextreme.py", "learning/test_learning_learnability.py", "learning/test_learning_gait.py")},
}
KINDS = ("unit", "graph", "hil", "slow")


def pytest_collection_modifyitems(config, items):
    import pytest

    test_root = ROOT / "test"
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(test_root).as_posix()
        item.add_marker(getattr(pytest.mark, KIND_BY_FILE.get(rel, "unit")))
