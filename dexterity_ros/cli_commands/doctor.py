"""`dexterity-ros doctor`: check that this machine can run the stack, and say how to fix what cannot.

Each check prints OK / WARN / FAIL / INFO with what was found and, when
something is wrong, the fix. Required checks (ROS wheels, RMW, the
shared-memory DDS profile, rendering, the student model's contract,
tf2_msgs) make the exit status non-zero; optional ones (no camera plugged
in, UDP disabled in the profile) only warn or inform.

FASTDDS_DEFAULT_PROFILES_FILE unset is a WARN, not a FAIL: every launch file
sets it (``<set_env>``) to the packaged config/fastdds_shm.xml, which is then
checked instead; only nodes started by hand miss it. It FAILs when it names a
missing or invalid profile (or when the packaged one is broken).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL, INFO = "OK", "WARN", "FAIL", "INFO"
MESSAGE_PACKAGES = ("std_msgs", "sensor_msgs", "geometry_msgs", "diagnostic_msgs", "std_srvs",
                    "visualization_msgs", "rosgraph_msgs", "builtin_interfaces", "rcl_interfaces")
# A 848x480 16UC1 depth frame is 814 KB; the segment must hold a few frames plus the history of other topics.
MIN_SHM_SEGMENT = 8 << 20


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check the environment (ROS, RMW, shared memory, camera, rendering, model)",
        description="Check ROS 2 wheels, the RMW, the Fast DDS shared-memory profile, RealSense cameras, the "
                    "MuJoCo offscreen renderer, the student model's contract and tf2_msgs; print what is wrong "
                    "and how to fix it. Exit status 1 when a required check fails.")
    parser.add_argument("--model", type=Path, default=None, help="student model (default: models/student.onnx)")
    parser.add_argument("--perception-config", type=Path, default=None,
                        help="perception YAML the model must match (default: config/perception.yaml)")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                        help="limit for each check that starts a subprocess (rendering)")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------ checks
def check_ros_wheels() -> Check:
    missing = []
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        return Check("ROS 2 wheels", FAIL, f"rclpy cannot be imported ({exc})",
                     "install the ROS 2 Kilted Python wheels: pip install -r requirements.txt")
    for package in MESSAGE_PACKAGES:
        try:
            __import__(f"{package}.msg" if package != "std_srvs" else "std_srvs.srv")
        except ImportError:
            missing.append(package)
    if missing:
        return Check("ROS 2 wheels", FAIL, f"rclpy imports but these interface packages do not: {missing}",
                     "pip install -r requirements.txt (the ros-kilted-* interface wheels)")
    return Check("ROS 2 wheels", OK, f"rclpy and {len(MESSAGE_PACKAGES)} interface packages import")


def check_rmw() -> Check:
    requested = os.environ.get("RMW_IMPLEMENTATION", "")
    try:
        import rclpy
        from rclpy.node import Node
        from rclpy.utilities import get_rmw_implementation_identifier
        context = rclpy.Context()
        rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        try:
            node = Node(f"dexterity_doctor_{os.getpid()}", context=context, start_parameter_services=False)
            identifier = get_rmw_implementation_identifier()
            node.destroy_node()
        finally:
            rclpy.shutdown(context=context)
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return Check("RMW", FAIL, f"cannot start a ROS context/node with RMW_IMPLEMENTATION="
                                  f"'{requested or '(default)'}': {exc}",
                     "unset RMW_IMPLEMENTATION or set it to an installed RMW (rmw_fastrtps_cpp)")
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    return Check("RMW", OK, f"{identifier} (RMW_IMPLEMENTATION={requested or 'unset'}), ROS_DOMAIN_ID={domain}")


def _default_profile() -> Path:
    from ..paths import config_path
    return config_path("fastdds_shm.xml")


def check_shm_profile() -> list[Check]:
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") or "rmw_fastrtps_cpp"
    name = "shared-memory profile"
    if "fastrtps" not in rmw and "fastdds" not in rmw:
        return [Check(name, INFO, f"RMW is {rmw}; the Fast DDS profile does not apply")]
    fix = f"export FASTDDS_DEFAULT_PROFILES_FILE={_default_profile()}"
    value = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    if not value:
        # Every launch file sets it (<set_env>), so a fresh shell is fine for `ros2 launch` / `dexterity-ros
        # launch`; check the profile they use instead, and warn about nodes started by hand.
        launch_files = _launch_files_setting_profile()
        packaged = check_profile_file(_default_profile(), name, fix)
        if packaged[0].status != OK:
            packaged[0].detail = (f"FASTDDS_DEFAULT_PROFILES_FILE is not set, and the packaged profile the launch "
                                  f"files use is broken: {packaged[0].detail}")
            return packaged
        by = ", ".join(launch_files) if launch_files else "the launch files"
        return [Check(name, WARN, f"FASTDDS_DEFAULT_PROFILES_FILE is not set in this shell; {by} set it to "
                                  f"{_default_profile()} (valid: {packaged[0].detail.split(': ', 1)[-1]}), so "
                                  f"launched graphs use shared memory, but nodes started by hand (ros2 run, "
                                  f"python -m) would send depth images over fragmented UDP", fix)] + packaged[1:]
    return check_profile_file(Path(value), name, fix, source=f"FASTDDS_DEFAULT_PROFILES_FILE={value}")


def _launch_files_setting_profile() -> list[str]:
    """Names of the packaged launch files that set FASTDDS_DEFAULT_PROFILES_FILE (<set_env>)."""
    from ..paths import launch_path
    found = []
    try:
        files = sorted(launch_path().glob("*.launch.xml"))
    except FileNotFoundError:
        return found
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError):
            continue
        if any(e.get("name") == "FASTDDS_DEFAULT_PROFILES_FILE" for e in root.iter("set_env")):
            found.append(path.name)
    return found


def check_profile_file(path: Path, name: str = "shared-memory profile", fix: str = "",
                       source: str | None = None) -> list[Check]:
    """Validate a Fast DDS profile: a default participant with a large enough SHM transport."""
    if not path.is_file():
        return [Check(name, FAIL, f"{source or path} does not exist", fix)]
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return [Check(name, FAIL, f"{path} is not valid XML ({exc})", fix)]

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    def find_all(node, tag):
        return [e for e in node.iter() if local(e.tag) == tag]

    def text(node, tag) -> str:
        found = [e for e in node if local(e.tag) == tag]
        return (found[0].text or "").strip() if found else ""

    shm = {}
    udp = set()
    for descriptor in find_all(root, "transport_descriptor"):
        kind, ident = text(descriptor, "type").upper(), text(descriptor, "transport_id")
        if kind == "SHM":
            try:
                shm[ident] = int(text(descriptor, "segment_size") or 0)
            except ValueError:
                return [Check(name, FAIL, f"{path}: SHM transport '{ident}' has a non-numeric segment_size", fix)]
        elif kind.startswith("UDP"):
            udp.add(ident)
    defaults = [p for p in find_all(root, "participant") if p.get("is_default_profile", "").lower() == "true"]
    if not defaults:
        return [Check(name, FAIL, f"{path} has no participant profile with is_default_profile=\"true\"", fix)]
    used = [(e.text or "").strip() for e in find_all(defaults[0], "transport_id")]
    builtin = [e for e in find_all(defaults[0], "useBuiltinTransports")]
    builtin_on = not builtin or (builtin[0].text or "").strip().lower() != "false"
    used_shm = [t for t in used if t in shm]
    if not used_shm:
        return [Check(name, FAIL, f"{path}: the default participant uses no SHM transport_descriptor "
                                  f"(SHM descriptors: {sorted(shm) or 'none'})", fix)]
    segment = max(shm[t] for t in used_shm)
    if segment < MIN_SHM_SEGMENT:
        return [Check(name, FAIL, f"{path}: SHM segment_size {segment} bytes is smaller than "
                                  f"{MIN_SHM_SEGMENT >> 20} MiB (a few depth frames)",
                      f"set <segment_size> to 33554432 (see {_default_profile()})")]
    checks = [Check(name, OK, f"{path}: SHM transport '{used_shm[0]}' with a {segment >> 20} MiB segment")]
    if not builtin_on and not any(t in udp for t in used):
        checks.append(Check("network transport", WARN, "the default participant has no UDP transport: nodes on "
                                                       "other hosts cannot be reached",
                            "add a UDPv4 transport_descriptor to userTransports (as config/fastdds_shm.xml does)"))
    return checks


def check_dds_loopback(timeout: float = 5.0) -> Check:
    """A 640x480 16UC1 image through the configured RMW (and profile), publisher to subscriber."""
    try:
        import rclpy
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
    except ImportError as exc:
        return Check("DDS loopback", FAIL, f"cannot import rclpy/sensor_msgs ({exc})")
    context = rclpy.Context()
    try:
        rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        from rclpy.executors import SingleThreadedExecutor
        node = Node(f"dexterity_doctor_loopback_{os.getpid()}", context=context, start_parameter_services=False)
        topic = f"/dexterity_doctor_{os.getpid()}/image"
        qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        received = []
        node.create_subscription(Image, topic, received.append, qos)
        publisher = node.create_publisher(Image, topic, qos)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        image = Image(height=480, width=640, encoding="16UC1", step=1280, data=bytes(640 * 480 * 2))
        deadline = time.monotonic() + timeout
        sent = 0.0
        while not received and time.monotonic() < deadline:
            if publisher.get_subscription_count() and time.monotonic() - sent > 0.2:
                publisher.publish(image)
                sent = time.monotonic()
            executor.spin_once(timeout_sec=0.02)
        executor.shutdown()
        node.destroy_node()
    except Exception as exc:  # noqa: BLE001
        return Check("DDS loopback", FAIL, f"publishing a depth image failed: {exc}")
    finally:
        if context.ok():
            rclpy.shutdown(context=context)
    if not received or len(received[0].data) != 640 * 480 * 2:
        return Check("DDS loopback", FAIL, f"a 640x480 depth image was not delivered within {timeout:g} s",
                     "check the RMW and FASTDDS_DEFAULT_PROFILES_FILE (a too small SHM segment or a firewall)")
    return Check("DDS loopback", OK, "a 640x480 16UC1 image went from publisher to subscriber")


def check_camera() -> Check:
    try:
        import pyrealsense2 as rs
    except ImportError as exc:
        return Check("RealSense camera", FAIL, f"pyrealsense2 cannot be imported ({exc})",
                     "pip install pyrealsense2 (see requirements.txt)")
    try:
        devices = rs.context().query_devices()
        found = []
        for device in devices:
            info = lambda key: device.get_info(key) if device.supports(key) else "?"  # noqa: E731
            found.append(f"{info(rs.camera_info.name)} serial {info(rs.camera_info.serial_number)} "
                         f"firmware {info(rs.camera_info.firmware_version)}")
    except Exception as exc:  # noqa: BLE001 - librealsense reports USB/permission problems this way
        return Check("RealSense camera", WARN, f"querying devices failed: {exc}",
                     "check USB permissions (udev rules from librealsense) and the cable")
    version = getattr(rs, "__version__", "?")
    if not found:
        return Check("RealSense camera", INFO, f"no RealSense device connected (pyrealsense2 {version}); "
                                               "fine for simulation and replay")
    return Check("RealSense camera", OK, f"{len(found)} device(s): " + "; ".join(found))


_RENDER_PROBE = """
import mujoco
context = mujoco.GLContext(64, 64)
context.make_current()
model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom type="sphere" size=".1"/></worldbody></mujoco>')
data = mujoco.MjData(model)
with mujoco.Renderer(model, 32, 32) as renderer:
    mujoco.mj_forward(model, data)
    renderer.update_scene(data)
    renderer.enable_depth_rendering()
    depth = renderer.render()
print('rendered', depth.shape)
"""


def check_rendering(timeout: float) -> Check:
    configured = os.environ.get("MUJOCO_GL", "")
    backends = [configured] if configured else []
    backends += [b for b in ("egl", "osmesa") if b not in backends]
    failures = []
    for backend in backends:
        env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend if backend != "glfw" else "")
        try:
            result = subprocess.run([sys.executable, "-c", _RENDER_PROBE], env=env, capture_output=True, text=True,
                                    timeout=timeout)
        except subprocess.TimeoutExpired:
            failures.append(f"{backend}: timed out after {timeout:g} s")
            continue
        if result.returncode == 0 and "rendered" in result.stdout:
            if configured and backend != configured:
                return Check("rendering", FAIL, f"MUJOCO_GL={configured} cannot create an offscreen context, but "
                                                f"{backend} can", f"export MUJOCO_GL={backend}")
            note = "" if configured else f" (MUJOCO_GL unset; set MUJOCO_GL={backend} so MuJoCo picks it)"
            return Check("rendering", OK if configured else WARN,
                         f"MuJoCo offscreen {backend} context renders depth{note}",
                         "" if configured else f"export MUJOCO_GL={backend}")
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        failures.append(f"{backend}: {last[:200]}")
    return Check("rendering", FAIL, "no MuJoCo offscreen backend works: " + "; ".join(failures),
                 "install an EGL driver (libegl1 + GPU driver) and export MUJOCO_GL=egl, or "
                 "apt-get install libosmesa6 and export MUJOCO_GL=osmesa")


def check_model(model: Path | None, perception_config: Path | None) -> Check:
    import numpy as np

    from ..config import ConfigError
    from ..paths import models_path
    from ..perception import load_perception_config
    from ..policy.contract import ContractError, PolicyError, sample_inputs
    from ..policy.contract_v2 import PolicyContractV2
    from ..policy.loading import NO_CONTRACT_HINT, read_any_contract
    from ..policy.runtime import PolicyRuntime

    path = model or models_path("student.onnx")
    name = "student model"
    if not path.is_file():
        return Check(name, FAIL, f"{path} does not exist",
                     "export a student with `dexterity-ros export` (or `make demo`) or pass --model")
    if not os.access(path, os.R_OK):
        return Check(name, FAIL, f"{path} is not readable", f"chmod a+r {path}")
    try:
        perception = load_perception_config(perception_config)
    except ConfigError as exc:
        return Check(name, FAIL, f"perception config cannot be loaded: {exc}", "fix config/perception.yaml")
    try:
        contract = read_any_contract(path)
    except ContractError as exc:
        if exc.field == "metadata":           # an ONNX file without a policy contract
            return Check(name, FAIL, f"{path} has no policy contract", NO_CONTRACT_HINT)
        return Check(name, FAIL, f"{path}: {exc}", "fix the contract (`dexterity-ros info MODEL.onnx` shows it)")
    except PolicyError as exc:
        return Check(name, FAIL, f"{path}: {exc}", "re-export or re-import the model")
    if isinstance(contract, PolicyContractV2):
        return _check_model_v2(path, contract, perception)
    try:
        runtime = PolicyRuntime(path, perception=perception)
        feeds = sample_inputs(runtime.contract, np.random.default_rng(0))
        runtime.session.run(None, feeds)
    except (PolicyError, ValueError) as exc:
        return Check(name, FAIL, f"{path}: {exc}",
                     "re-export the model against the current hand and config/perception.yaml "
                     "(`dexterity-ros info MODEL.onnx` shows each mismatch)")
    except Exception as exc:  # noqa: BLE001 - onnxruntime errors are not PolicyError
        return Check(name, FAIL, f"{path} cannot run: {exc}", "re-export the model")
    c = runtime.contract
    return Check(name, OK, f"{path.name}: contract v{c.contract_version} valid against the hand and the perception "
                           f"config; {c.point_cloud.num_points} points, {c.control_rate_hz:g} Hz, one inference ran")


def _check_model_v2(path: Path, contract, perception) -> Check:
    """A contract v2 policy (imported or attached): the runtime loads it and one inference runs."""
    import numpy as np

    from ..policy.contract import PolicyError
    from ..policy.runtime import RuntimeOptions
    from ..policy.runtime_v2 import TermPolicyRuntime

    name = "student model"
    try:
        runtime = TermPolicyRuntime(path, options=RuntimeOptions(), perception=perception, contract=contract)
        feeds = {n: np.zeros(shape, dtype=np.float32) for n, shape in contract.graph_inputs()}
        runtime.session.run(None, feeds)
    except (PolicyError, ValueError) as exc:
        return Check(name, FAIL, f"{path}: {exc}",
                     "fix the contract or re-import the model (`dexterity-ros info MODEL.onnx` shows each "
                     "mismatch)")
    except Exception as exc:  # noqa: BLE001 - onnxruntime errors are not PolicyError
        return Check(name, FAIL, f"{path} cannot run: {exc}", "re-import the model")
    c = contract
    return Check(name, OK, f"{path.name}: contract v2 '{c.name or '(unnamed)'}' valid against the hand; terms "
                           f"{', '.join(t.name for t in c.terms)}; needs {', '.join(c.sources)}; "
                           f"{c.control_rate_hz:g} Hz, one inference ran")


def check_tf2() -> Check:
    try:
        from tf2_msgs.msg import TFMessage  # noqa: F401
    except ImportError as exc:
        return Check("tf2_msgs", FAIL, f"tf2_msgs cannot be imported ({exc}); /tf_static cannot be published",
                     f"bash dexterity_ros/tools/build_tf2_msgs.sh {sys.prefix} (builds and installs tf2_msgs)")
    return Check("tf2_msgs", OK, "tf2_msgs.msg.TFMessage imports")


def run_checks(args: argparse.Namespace) -> list[Check]:
    checks = [check_ros_wheels()]
    ros_ok = checks[0].status == OK
    if ros_ok:
        checks.append(check_rmw())
    checks += check_shm_profile()
    if ros_ok and checks[1].status == OK:
        checks.append(check_dds_loopback())
    checks.append(check_tf2())
    checks.append(check_camera())
    checks.append(check_rendering(args.timeout))
    checks.append(check_model(args.model, args.perception_config))
    return checks


def run(args: argparse.Namespace) -> int:
    checks = run_checks(args)
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"[{c.status:^4}] {c.name:<{width}}  {c.detail}")
        if c.fix and c.status in (FAIL, WARN):
            print(f"       {'':<{width}}  fix: {c.fix}")
    failed = [c.name for c in checks if c.status == FAIL]
    print(f"\n{len(failed)} required check(s) failed: {', '.join(failed)}" if failed else "\nall required checks passed")
    return 1 if failed else 0
