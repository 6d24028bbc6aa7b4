"""Recorder throughput: does `dexterity-ros record` keep every message of a depth camera + joint states?

    .venv/bin/python bench/record.py [--duration 60] [--depth-hz 30] [--joint-hz 300] [--storage mcap]
                                     [--compression none] [--output DIR] [--keep]

Starts the recorder (`python -m dexterity_ros.cli record`) and two publisher
processes: a 640x480 16UC1 depth image stream and a 16-joint JointState
stream, both with sensor QoS (best effort, keep last 5, as the camera and
hand drivers publish). Each message carries its sequence number in
header.stamp.sec. When the publishers finish, the recorder gets SIGINT and
the bag is read back: recorded vs published per topic, missing sequence
numbers, duplicates, recorder CPU and peak memory, bag size.
Baseline = what was published; target ratio recorded/published = 1.000.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEPTH_TOPIC = "/bench/camera/depth/image_rect_raw"
JOINT_TOPIC = "/bench/hand/joint_states"


def publish(kind: str, hz: float, duration: float, width: int, height: int, result_path: str) -> int:
    """Publisher process: wait for the recorder to match, publish for ``duration`` s, report the count."""
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image, JointState

    from dexterity_ros.hand_model import default_hand
    from dexterity_ros.ros.common import qos_profile
    from dexterity_ros.topics import QosClass

    rclpy.init()
    node = Node(f"bench_{kind}_publisher")
    if kind == "depth":
        msg = Image(height=height, width=width, encoding="16UC1", step=width * 2, data=bytes(width * height * 2))
        msg.header.frame_id = "camera_depth_optical_frame"
        publisher = node.create_publisher(Image, DEPTH_TOPIC, qos_profile(QosClass.SENSOR))
    else:
        names = default_hand().joint_names
        msg = JointState(name=list(names), position=[0.1] * len(names), velocity=[0.0] * len(names))
        publisher = node.create_publisher(JointState, JOINT_TOPIC, qos_profile(QosClass.SENSOR))
    deadline = time.monotonic() + 60
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if publisher.get_subscription_count() == 0:
        print(f"{kind}: no subscriber after 60 s", file=sys.stderr)
        return 1
    time.sleep(0.5)   # let discovery settle on both sides
    period = 1.0 / hz
    start = time.monotonic()
    count = 0
    late = 0
    while True:
        due = start + count * period
        if due - start >= duration:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -period:
            late += 1
        msg.header.stamp.sec = count
        publisher.publish(msg)
        count += 1
    time.sleep(0.5)
    Path(result_path).write_text(json.dumps({"published": count, "late": late,
                                             "elapsed_s": time.monotonic() - start}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


def proc_stats(pid: int) -> tuple[float, int]:
    """CPU seconds (user+system) and peak RSS (bytes) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of publishing (default 60; the documented measurement used 600)")
    parser.add_argument("--depth-hz", type=float, default=30.0)
    parser.add_argument("--joint-hz", type=float, default=300.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--compression", choices=("none", "zstd"), default="none")
    parser.add_argument("--output", type=Path, default=None, help="bag directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the bag")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--publisher", choices=("depth", "joint"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        hz = args.depth_hz if args.publisher == "depth" else args.joint_hz
        return publish(args.publisher, hz, args.duration, args.width, args.height, args.result)

    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(ROOT / "config" / "fastdds_shm.xml"))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    workdir = Path(tempfile.mkdtemp(prefix="bench_record_"))
    output = args.output or workdir / "bag"
    if output.exists():
        shutil.rmtree(output)
    recorder = subprocess.Popen(
        [sys.executable, "-m", "dexterity_ros.cli", "record", DEPTH_TOPIC, JOINT_TOPIC, "-o", str(output),
         "--storage", args.storage, "--compression", args.compression],
        env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    publishers = {}
    for kind in ("depth", "joint"):
        result = workdir / f"{kind}.json"
        publishers[kind] = (subprocess.Popen(
            [sys.executable, __file__, "--publisher", kind, "--duration", str(args.duration),
             "--depth-hz", str(args.depth_hz), "--joint-hz", str(args.joint_hz), "--width", str(args.width),
             "--height", str(args.height), "--result", str(result)], env=env, cwd=str(ROOT)), result)
    cpu_start = None
    wall_start = time.monotonic()
    peak_rss = 0
    cpu = 0.0
    while any(p.poll() is None for p, _ in publishers.values()):
        time.sleep(1.0)
        try:
            cpu, rss = proc_stats(recorder.pid)
        except (OSError, IndexError):
            break
        if cpu_start is None:
            cpu_start, wall_cpu0 = cpu, time.monotonic()
        peak_rss = max(peak_rss, rss)
    time.sleep(1.0)
    try:
        cpu, rss = proc_stats(recorder.pid)
        peak_rss = max(peak_rss, rss)
    except OSError:
        pass
    recorder.send_signal(signal.SIGINT)
    log = recorder.communicate(timeout=120)[0]
    if recorder.returncode != 0 or any(p.returncode != 0 for p, _ in publishers.values()):
        print(log)
        print("recorder or a publisher failed", file=sys.stderr)
        return 1

    from dexterity_ros.bags.io import BagReader

    published = {DEPTH_TOPIC: json.loads(publishers["depth"][1].read_text()),
                 JOINT_TOPIC: json.loads(publishers["joint"][1].read_text())}
    sequences: dict[str, list[int]] = {DEPTH_TOPIC: [], JOINT_TOPIC: []}
    with BagReader(output) as reader:
        for m in reader.messages():
            sequences[m.topic].append(struct.unpack_from("<i", m.data, 4)[0])
        bag_bytes = sum(f.stat().st_size for f in reader.storage_files)
        duration = reader.duration_ns * 1e-9
    cpu_used = cpu - (cpu_start or 0.0)
    cpu_wall = time.monotonic() - (wall_cpu0 if cpu_start is not None else wall_start)
    results = {"duration_s": args.duration, "storage": args.storage, "compression": args.compression,
               "bag_MiB": bag_bytes / 2**20, "bag_duration_s": duration,
               "recorder_cpu_percent": 100 * cpu_used / max(cpu_wall, 1e-9), "recorder_peak_rss_MiB": peak_rss / 2**20,
               "topics": {}}
    print(f"recorder bench: {args.duration:g} s, {args.width}x{args.height} 16UC1 depth at {args.depth_hz:g} Hz + "
          f"JointState at {args.joint_hz:g} Hz, {args.storage}, compression {args.compression}, cpus {os.cpu_count()}")
    print(f"{'topic':<36} {'published (baseline)':>20} {'recorded (ours)':>16} {'ratio':>7} {'missing':>8} "
          f"{'dupes':>6}")
    for topic, seqs in sequences.items():
        sent = published[topic]["published"]
        unique = set(seqs)
        missing = sent - len(unique & set(range(sent)))
        dupes = len(seqs) - len(unique)
        ordered = sorted(unique)
        gaps = [b - a - 1 for a, b in zip([-1] + ordered, ordered + [sent]) if b - a > 1]
        results["topics"][topic] = {"published": sent, "recorded": len(seqs), "missing": missing,
                                    "duplicates": dupes, "publisher_late": published[topic]["late"],
                                    "gap_runs": len(gaps), "longest_gap": max(gaps, default=0)}
        print(f"{topic:<36} {sent:>20} {len(seqs):>16} {len(seqs) / max(sent, 1):>7.4f} {missing:>8} {dupes:>6}")
    for topic, r in results["topics"].items():
        if r["missing"]:
            print(f"{topic}: missing messages in {r['gap_runs']} gaps, the longest {r['longest_gap']} in a row")
    print(f"bag {results['bag_MiB']:.0f} MiB over {duration:.1f} s ({results['bag_MiB'] / max(duration, 1e-9):.1f} MiB/s); "
          f"recorder CPU {results['recorder_cpu_percent']:.0f}% of one core, peak RSS "
          f"{results['recorder_peak_rss_MiB']:.0f} MiB")
    print("recorder log tail:\n" + "\n".join(log.strip().splitlines()[-4:]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.keep or args.output is not None:
        for kind in ("depth", "joint"):
            publishers[kind][1].unlink(missing_ok=True)
        if args.output is not None:
            workdir.rmdir()
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    drops = sum(t["missing"] for t in results["topics"].values())
    return 0 if drops == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
