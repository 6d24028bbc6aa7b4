"""ament_python package: `colcon build` on a ROS 2 distro, or `pip install .` without one."""
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "dexterity_ros"
ROOT = Path(__file__).resolve().parent


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing ``folder`` recursively under share/<package>/."""
    entries = []
    for directory in sorted(p for p in (ROOT / folder).rglob("*") if p.is_dir()) + [ROOT / folder]:
        files = sorted(str(f.relative_to(ROOT)) for f in directory.iterdir()
                       if f.is_file() and not f.name.startswith("."))
        if files:
            entries.append((f"share/{PACKAGE}/{directory.relative_to(ROOT)}", files))
    return entries


NODES = ["camera_node", "segmentation_node", "student_node", "hand_node",
         "sim_bridge_node", "allegro_emulator_node", "pose_tracker_node", "goal_node", "hand_view_node"]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench", "bench.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("models"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="dexterity_ros developers",
    maintainer_email="dev@dexterity-ros.org",
    description="Sim-to-real dexterous manipulation on an Allegro hand with a depth camera (ROS 2).",
    license="Apache-2.0",
    python_requires=">=3.10",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [f"{node} = {PACKAGE}.nodes.{node}:main" for node in NODES]
        + [f"dexterity-ros = {PACKAGE}.cli:main"],
    },
)
