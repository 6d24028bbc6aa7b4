"""The package installs the two ways a user gets it: colcon on a ROS distro, pip without one."""
import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
NODES = ["camera_node", "segmentation_node", "student_node", "hand_node", "sim_bridge_node",
         "allegro_emulator_node"]
DATA = ["launch/robot.launch.xml", "launch/replay.launch.xml", "launch/sim.launch.xml", "config/perception.yaml",
        "config/hand.yaml", "config/robots/allegro_right.yaml", "config/fastdds_shm.xml", "models/student.onnx",
        "package.xml"]


def test_colcon_build_installs_an_ament_python_package(tmp_path):
    colcon = Path(sys.executable).parent / "colcon"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([str(colcon), "build", "--base-paths", str(ROOT), "--build-base", str(tmp_path / "build"),
                             "--install-base", str(tmp_path / "install"), "--packages-select", "dexterity_ros"],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / "install" / "dexterity_ros"
    for node in NODES + ["dexterity-ros"]:                       # where `ros2 run/launch` looks
        assert (prefix / "lib" / "dexterity_ros" / node).is_file(), node
    share = prefix / "share" / "dexterity_ros"
    for item in DATA:
        assert (share / item).is_file(), item
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "dexterity_ros").is_file()


def test_pip_install_without_ros_distro(tmp_path):
    prefix = tmp_path / "prefix"
    # --ignore-installed: never uninstall the development install of this venv while testing another prefix
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                             "--ignore-installed",
                             "--prefix", str(prefix), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for node in NODES + ["dexterity-ros"]:
        assert (prefix / "bin" / node).is_file(), node
    share = prefix / "share" / "dexterity_ros"
    for item in DATA:
        assert (share / item).is_file(), item
    # the installed package finds its share directory under its prefix (no ament index needed)
    site = next(prefix.glob("lib/python3*/site-packages"))
    probe = subprocess.run([sys.executable, "-c", "import dexterity_ros.paths as p; print(p.share_directory())"],
                           capture_output=True, text=True, cwd=tmp_path,
                           env=dict(os.environ, PYTHONPATH=str(site)))
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).resolve() == share.resolve()
