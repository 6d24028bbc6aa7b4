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
