#!/usr/bin/env bash
# Make sure the Debian packages our Python wheels need at import time exist:
#   libusb-1.0-0  (pyrealsense2, open3d)
#   libegl1, libgl1 (MuJoCo offscreen rendering through EGL)
# As root they are installed with apt-get; otherwise we name them and fail.
set -euo pipefail
need=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib 'libusb-1.0.so.0' || need+=(libusb-1.0-0)
have_lib 'libEGL.so.1'     || need+=(libegl1)
have_lib 'libGL.so.1'      || need+=(libgl1)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo ">>> installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
    apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
  exit 0
fi
echo "error: missing system packages: ${need[*]}" >&2
echo "       install them with: sudo apt-get install -y ${need[*]}" >&2
exit 1
