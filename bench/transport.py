"""Depth image transport latency: Fast DDS default vs config/fastdds_shm.xml.

Publishes 640x480 16UC1 depth images at 30 Hz from one process to a
subscriber in another, once with Fast DDS defaults (the image exceeds the
default shared-memory segment and falls back to fragmented UDP) and once
with our profile (32 MB shared-memory segment); prints p50/p99 latency
(header stamp -> subscriber callback) for each and their ratio.

    .venv/bin/python bench/transport.py [--frames 300]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "config" / "fastdds_shm.xml"


def publisher(frames: int, rate: float) -> None:
    import numpy as np
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    rclpy.init()
    node = Node("bench_depth_pub")
    pub = node.create_publisher(Image, "bench/depth", 10)
    data = (np.random.default_rng(0).random((480, 640)) * 2000).astype(np.uint16).tobytes()
    deadline = time.monotonic() + 10
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    for _ in range(frames):
        msg = Image(height=480, width=640, encoding="16UC1", step=1280)
        msg.data = data
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(1.0 / rate)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.shutdown()


def subscriber(frames: int, timeout: float) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    rclpy.init()
    node = Node("bench_depth_sub")
    latencies: list[float] = []

    def on_image(msg: Image) -> None:
        sent = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        latencies.append((node.get_clock().now().nanoseconds - sent) * 1e-6)

    node.create_subscription(Image, "bench/depth", on_image, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    while len(latencies) < frames and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    print(json.dumps(latencies))
    node.destroy_node()
    rclpy.shutdown()


def measure(frames: int, profile: Path | None, domain: int) -> list[float]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    if profile is not None:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    sub = subprocess.Popen([sys.executable, __file__, "--role", "sub", "--frames", str(frames)],
                           stdout=subprocess.PIPE, text=True, env=env)
    time.sleep(1.0)
    subprocess.run([sys.executable, __file__, "--role", "pub", "--frames", str(frames)], env=env, check=True)
    out, _ = sub.communicate(timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--role", choices=("pub", "sub"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "pub":
        publisher(args.frames, args.rate)
        return 0
    if args.role == "sub":
        subscriber(args.frames, timeout=args.frames / args.rate + 20)
        return 0
    import numpy as np

    domain = 150 + os.getpid() % 50
    default = measure(args.frames, None, domain)
    ours = measure(args.frames, PROFILE, domain)
    def summary(values):
        return np.percentile(values, 50), np.percentile(values, 99), len(values)
    d50, d99, dn = summary(default)
    o50, o99, on = summary(ours)
    print(f"640x480 16UC1 depth at {args.rate:g} Hz, publisher and subscriber in separate processes")
    print(f"  Fast DDS default profile   : p50 {d50:6.2f} ms  p99 {d99:6.2f} ms  ({dn}/{args.frames} received)")
    print(f"  config/fastdds_shm.xml     : p50 {o50:6.2f} ms  p99 {o99:6.2f} ms  ({on}/{args.frames} received)")
    print(f"  ratio (default / ours)     : p50 {d50 / o50:5.1f}x  p99 {d99 / o99:5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
