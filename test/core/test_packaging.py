"""The package installs the two ways a user gets it: colcon on a ROS distro, pip without one."""
import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
NODES = ["camera_node", "segmentation_node", "student_node", "hand_node", "sim_bridge_node",
         "allegro_emulator_node", "goal_node", "pose_tracker_node", "hand_view_node"]
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


# ------------------------------------------------------------------ declared dependencies
PACKAGE_XML = ROOT / "package.xml"
# Interface packages imported only inside `try: ... except ImportError` (the code copes without them):
# LEAP_Hand_API's ros2_module is not released into any ROS distro, so rosdep cannot install it.
OPTIONAL_INTERFACES = {"leap_hand"}
# The python3-* rosdep keys package.xml may use: each checked to exist in ros/rosdistro rosdep/python.yaml
# (commit 8468e88c, 2026-08-22). There is no key for onnx (python3-onnx-pip is not one) and torch has
# only the distro's apt build (python3-torch); requirements-robot.txt pins both instead.
ROSDEP_PYTHON_KEYS = {"python3-numpy", "python3-yaml", "python3-opencv", "python3-tqdm", "python3-matplotlib",
                      "python3-pytest",
                      "python3-hypothesis", "python3-onnxruntime-pip", "python3-open3d-pip",
                      "python3-pyrealsense2-pip", "python3-rosbags-pip", "python3-mujoco-pip"}
# pip distributions those apt-backed keys provide (the rest of the python3-*-pip keys are also pinned)
ROSDEP_PROVIDES = {"python3-numpy": "numpy", "python3-yaml": "pyyaml", "python3-opencv": "opencv-python-headless",
                   "python3-tqdm": "tqdm", "python3-matplotlib": "matplotlib"}


def _package_xml_keys() -> set[str]:
    import xml.etree.ElementTree as ET
    root = ET.parse(PACKAGE_XML).getroot()
    return {e.text.strip() for e in root if e.tag in ("depend", "exec_depend", "build_depend", "test_depend")}


def _imports() -> list[tuple[str, str, bool]]:
    """(dotted module, file, optional) for every absolute import in dexterity_ros; optional = inside the body
    of a ``try`` that catches ImportError (the fallback in the handler is not optional)."""
    import ast
    found = []
    for path in sorted((ROOT / "dexterity_ros").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        rel = path.relative_to(ROOT).as_posix()
        optional_nodes = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    h.type is not None and any(n in ast.unparse(h.type) for n in ("ImportError", "ModuleNotFound"))
                    for h in node.handlers):
                optional_nodes |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(a.name, rel, id(node) in optional_nodes) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.module, rel, id(node) in optional_nodes))
    return found


def test_every_ros_interface_package_used_is_declared_in_package_xml():
    from dexterity_ros import topics
    from dexterity_ros.cli_commands.doctor import MESSAGE_PACKAGES

    declared = _package_xml_keys()
    used: dict[str, set[str]] = {}
    optional: dict[str, bool] = {}
    for module, path, is_optional in _imports():
        parts = module.split(".")
        if len(parts) >= 2 and parts[1] in ("msg", "srv", "action"):
            used.setdefault(parts[0], set()).add(path)
            optional[parts[0]] = optional.get(parts[0], True) and is_optional
    for topic in vars(topics).values():                     # types named in the graph contract
        if isinstance(topic, topics.Topic):
            used.setdefault(topic.type_name.split("/")[0], set()).add("dexterity_ros/topics.py")
    for package in MESSAGE_PACKAGES:                        # what doctor requires
        used.setdefault(package, set()).add("dexterity_ros/cli_commands/doctor.py")
    assert {"rcl_interfaces", "builtin_interfaces", "sensor_msgs"} <= set(used)   # the scan sees them
    missing = {p: sorted(files) for p, files in used.items() if p not in declared and p not in OPTIONAL_INTERFACES}
    assert not missing, f"interface packages used but not <exec_depend> in package.xml: {missing}"
    for package in OPTIONAL_INTERFACES & set(used):
        assert optional[package], f"{package} is imported outside try/except ImportError: declare it"


def test_package_xml_uses_only_existing_rosdep_keys_for_python_packages():
    unknown = sorted(k for k in _package_xml_keys() if k.startswith("python3-") and k not in ROSDEP_PYTHON_KEYS)
    assert not unknown, f"not rosdep keys (ros/rosdistro rosdep/python.yaml): {unknown}; pin them in " \
                        f"requirements-robot.txt instead"


def _canonical(name: str) -> str:
    import re
    return re.sub(r"[-_.]+", "-", name).lower()


def test_robot_requirements_cover_every_third_party_import():
    """On the robot, rosdep installs package.xml's keys and pip requirements-robot.txt: together they must
    provide every non-ROS distribution dexterity_ros imports (directly or through a pinned package)."""
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    pins = [Requirement(line.split("#")[0].strip()) for line in
            (ROOT / "requirements-robot.txt").read_text().splitlines() if line.split("#")[0].strip()]
    assert all(len(r.specifier) == 1 and str(r.specifier).startswith("==") for r in pins), "pin exact versions"
    keys = _package_xml_keys()
    covered = {_canonical(r.name) for r in pins} | {ROSDEP_PROVIDES[k] for k in keys if k in ROSDEP_PROVIDES}
    todo = list(covered)
    while todo:                                              # what pip pulls in for the pinned packages
        try:
            requires = metadata.requires(todo.pop()) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                name = _canonical(req.name)
                if name not in covered:
                    covered.add(name)
                    todo.append(name)
    distributions = metadata.packages_distributions()
    uncovered = {}
    for module, path, optional in _imports():
        top = module.split(".")[0]
        if optional or top == "dexterity_ros" or top in sys.stdlib_module_names or top in keys:
            continue                                         # ROS packages (rclpy, *_msgs) come from rosdep
        dists = {_canonical(d) for d in distributions.get(top, [])}
        if not dists & covered:
            uncovered.setdefault(top, set()).add(path)
    assert not uncovered, f"imported but neither pinned in requirements-robot.txt nor a rosdep key: {uncovered}"
