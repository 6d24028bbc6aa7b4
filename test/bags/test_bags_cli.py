"""`dexterity-ros info` on bags (and still on models), `reindex` refusals, and `dexterity-ros doctor`."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bag_fixtures import write_unusual_sqlite3
from policy_fixtures import probe_model
from dexterity_ros.bags.writer import SplitBagWriter
from dexterity_ros.cli_commands import doctor
from ros_harness import ROOT


@pytest.fixture
def student(tmp_path):
    """A student whose contract matches the hand and the perception config as they are now."""
    path = tmp_path / "student.onnx"
    path.write_bytes(probe_model())
    return path


def cli(*args, env: dict | None = None, timeout: float = 120) -> tuple[int, str]:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    for key in [k for k, v in full_env.items() if v is None]:
        del full_env[key]
    result = subprocess.run([sys.executable, "-m", "dexterity_ros.cli", *map(str, args)], env=full_env,
                            capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    return result.returncode, result.stdout + result.stderr


def test_info_describes_any_bag_and_still_models(tmp_path, student):
    write_unusual_sqlite3(tmp_path / "odd")
    code, text = cli("info", tmp_path / "odd")
    assert code == 0, text
    assert "Storage id:        sqlite3" in text and "Messages:          12" in text
    assert "zstd (per message)" in text and "best_effort, volatile, keep last 5; reliable, volatile, keep last 10" in text
    joints = next(line for line in text.splitlines() if line.strip().startswith("/joints"))
    assert "sensor_msgs/msg/JointState" in joints and "  10 msgs" in joints and "20.00 Hz" in joints

    code, text = cli("info", student)
    assert code == 0 and "contract" in text and "checks" in text, text

    (tmp_path / "plain").mkdir()
    code, text = cli("info", tmp_path / "plain")
    assert code == 2 and "neither an ONNX model" in text
    code, text = cli("info", tmp_path / "absent")
    assert code == 2 and "does not exist" in text

    broken = tmp_path / "broken"
    with SplitBagWriter(broken) as writer:
        c = writer.add_connection("/t", "std_msgs/msg/String")
        writer.write(c, 1, b"\x00\x01\x00\x00\x02\x00\x00\x00a\x00")
    text_yaml = (broken / "metadata.yaml").read_text().replace("message_count: 1", "message_count: 7")
    (broken / "metadata.yaml").write_text(text_yaml)
    code, text = cli("info", broken)
    assert code == 1 and "disagrees with its storage" in text and "reindex" in text
    code, text = cli("reindex", broken)
    assert code == 1 and "--overwrite" in text
    code, text = cli("reindex", broken, "--overwrite")
    assert code == 0 and "1 messages" in text
    assert cli("info", broken)[0] == 0


def test_doctor_passes_in_the_test_environment_and_fails_on_a_bad_profile(tmp_path, student):
    code, text = cli("doctor", "--model", student)
    assert code == 0, text
    for name in ("ROS 2 wheels", "RMW", "shared-memory profile", "DDS loopback", "tf2_msgs", "RealSense camera",
                 "rendering", "student model"):
        assert name in text
    assert "all required checks passed" in text

    small = tmp_path / "small_shm.xml"
    small.write_text((ROOT / "config" / "fastdds_shm.xml").read_text().replace("<segment_size>33554432",
                                                                              "<segment_size>1048576"))
    code, text = cli("doctor", "--model", tmp_path / "missing.onnx", env={"FASTDDS_DEFAULT_PROFILES_FILE": str(small)})
    assert code == 1
    assert "segment_size 1048576 bytes is smaller than 8 MiB" in text and "fix: set <segment_size>" in text
    assert "missing.onnx does not exist" in text
    assert "2 required check(s) failed: shared-memory profile, student model" in text


@pytest.mark.parametrize("content,expected", [
    (None, "does not exist"),
    ("<dds><profiles>", "not valid XML"),
    ('<dds><profiles><participant profile_name="p" is_default_profile="true"><rtps/></participant></profiles></dds>',
     "uses no SHM transport"),
    ("<dds/>", "no participant profile"),
])
def test_doctor_explains_each_profile_problem(tmp_path, monkeypatch, content, expected):
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    profile = tmp_path / "profile.xml"
    if content is not None:
        profile.write_text(content)
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    [check] = doctor.check_shm_profile()
    assert check.status == doctor.FAIL and expected in check.detail
    assert "FASTDDS_DEFAULT_PROFILES_FILE=" in check.fix


def test_doctor_profile_unset_is_a_warning_because_every_launch_file_sets_it(tmp_path, monkeypatch):
    """A fresh shell has no FASTDDS_DEFAULT_PROFILES_FILE; the launch files set it, so that is no failure."""
    from dexterity_ros import paths

    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    checks = doctor.check_shm_profile()
    assert checks[0].status == doctor.WARN and doctor.FAIL not in {c.status for c in checks}, checks
    for launch_file in ("robot.launch.xml", "sim.launch.xml", "replay.launch.xml"):
        assert launch_file in checks[0].detail
    assert "is not set in this shell" in checks[0].detail and "32 MiB segment" in checks[0].detail
    assert "FASTDDS_DEFAULT_PROFILES_FILE=" in checks[0].fix
    # ... but the profile the launch files would use is still checked
    share = tmp_path / "share"
    (share / "launch").mkdir(parents=True)
    (share / "config").mkdir()
    (share / "config" / "fastdds_shm.xml").write_text("<dds/>")
    monkeypatch.setenv("DEXTERITY_ROS_SHARE", str(share))
    paths.share_directory.cache_clear()
    try:
        [check] = doctor.check_shm_profile()
    finally:
        monkeypatch.delenv("DEXTERITY_ROS_SHARE")
        paths.share_directory.cache_clear()
    assert check.status == doctor.FAIL and "packaged profile the launch files use is broken" in check.detail
    assert "no participant profile" in check.detail


def test_doctor_checks_the_model_contract_against_the_perception_config(tmp_path, student):
    changed = tmp_path / "perception.yaml"
    original = (ROOT / "config" / "perception.yaml").read_text()
    edited = re.sub(r"(?m)^num_points:\s*\d+", "num_points: 7", original)
    assert edited != original
    changed.write_text(edited)
    check = doctor.check_model(student, changed)
    assert check.status == doctor.FAIL and "num_points" in check.detail and "re-export" in check.fix
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    check = doctor.check_model(garbage, None)
    assert check.status == doctor.FAIL and "garbage.onnx" in check.detail
    assert doctor.check_model(student, None).status == doctor.OK
    assert doctor.check_camera().status in (doctor.OK, doctor.INFO)    # none connected is not an error
