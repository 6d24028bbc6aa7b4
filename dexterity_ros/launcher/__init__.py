"""ROS 2 XML launch files without the launch/launch_ros packages (not installable here).

We write our own because upstream ``launch``/``launch_ros`` cannot be installed from the
package registry; the files we run stay valid for ``ros2 launch`` (same tags, attributes,
substitutions and scoping rules), so the same files work under ROS 2 proper.

Three steps, the first two pure (no rclpy, nothing started), laid out like ros2/launch:

1. parse (:mod:`.frontend`): expat builds an entity tree that remembers file and line of
   every tag, and attribute values are parsed into text and ``$(...)`` parts;
2. evaluate (:mod:`.actions`, :mod:`.substitutions`, :mod:`.parameters`, :mod:`.context`):
   each tag has an explicitly registered action, each substitution a small function in a
   table; ``if``/``unless``, ``<arg>``/``<let>``, ``<group>`` scoping, ``<include>`` and
   ``<push-ros-namespace>`` behave like the ros2 launch XML frontend (upstream launch_xml and
   launch_ros); packages and executables are found through the ament index (:mod:`.packages`);
3. plan (:mod:`.plan`, :mod:`.loader`): every ``<node>``/``<executable>`` becomes a
   :class:`ProcessPlan` with its full command line (``--ros-args -r __node:=... -r __ns:=...
   --params-file ...``).

Starting, watching and stopping the processes is :mod:`.supervisor`'s job. Anything ros2
launch would reject (unknown tag, unknown attribute, undeclared argument, missing include) is
a :class:`LaunchError` naming the file and line, and the ``<include>`` s that led there.
"""
from __future__ import annotations

from .errors import LaunchError
from .frontend import Substitution, XmlElement, parse_template, parse_xml
from .loader import list_arguments, load_launch_plan, parse_launch_arguments
from .packages import (ament_package_prefix, find_launch_file, find_package_prefix, find_package_share,
                       resolve_node_executable)
from .plan import DeclaredArgument, LaunchPlan, ProcessPlan
from .supervisor import (PARENT_DEATH_SIGNAL, SUPERVISOR_PID_ENV, ChildProcess, LaunchHandle, OutputLine, launch,
                         run_until_stopped)

__all__ = [
    "LaunchError", "Substitution", "XmlElement", "parse_template", "parse_xml",
    "list_arguments", "load_launch_plan", "parse_launch_arguments",
    "ament_package_prefix", "find_launch_file", "find_package_prefix", "find_package_share",
    "resolve_node_executable",
    "DeclaredArgument", "LaunchPlan", "ProcessPlan",
    "PARENT_DEATH_SIGNAL", "SUPERVISOR_PID_ENV", "ChildProcess", "LaunchHandle", "OutputLine", "launch",
    "run_until_stopped",
]
