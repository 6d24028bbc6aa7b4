"""Discovery time of a late node: config/fastdds_shm.xml (Fast DDS's 3 s announcements) vs a 0.5 s period.

A launch starts several node processes at once, and a tool (the parity check, the HIL suite, `dexterity-ros
demo`) waits until their publishers and subscribers match before it starts a replay. A participant that
misses another's first announcements finds it only at the next periodic one: Fast DDS sends them every 3 s
by default (our profile keeps that); the candidate sets ``<leaseAnnouncement>`` to 0.5 s. The candidate is
measured, not adopted (docs/benchmarks.md says why).

Each round, an observer process creates its node, then starts ``--nodes`` node processes at once (each with
one publisher and one subscription, as a graph node has); the figure is, per node, the time from the node's
creation to the observer counting its publisher. Both profiles run in every round, alternating which goes
first, on their own ROS domain; the candidate is our profile with ``<leaseAnnouncement>`` added, so the
announcement period is the only difference.

    .venv/bin/python bench/discovery.py [--rounds 10] [--nodes 3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "config" / "fastdds_shm.xml"
GIVE_UP_S = 10.0


def node_process(index: int) -> None:
    """One graph-like node: a publisher and a subscription; prints its creation time, then waits."""
    import rclpy
    from std_msgs.msg import String

    rclpy.init()
    node = rclpy.create_node(f"bench_discovery_{index}")
    node.create_publisher(String, f"bench_discovery/out_{index}", 10)
    node.create_subscription(String, f"bench_discovery/in_{index}", lambda msg: None, 10)
    print(f"CREATED {time.time()}", flush=True)
    time.sleep(GIVE_UP_S + 2.0)


def observer(nodes: int) -> None:
    """Create the observer's node, start the nodes, print each one's creation -> publisher counted (s)."""
    import rclpy

    rclpy.init()
    node = rclpy.create_node("bench_discovery_observer")
    children = [subprocess.Popen([sys.executable, __file__, "--role", "node", "--index", str(i)],
                                 stdout=subprocess.PIPE, text=True) for i in range(nodes)]
    try:
        created = [float(child.stdout.readline().split()[1]) for child in children]
        found: dict[int, float] = {}
        while len(found) < nodes and time.time() - max(created) < GIVE_UP_S:
            for i in range(nodes):
                if i not in found and node.count_publishers(f"/bench_discovery/out_{i}") >= 1:
                    found[i] = time.time() - created[i]
            time.sleep(0.005)
        print(json.dumps([found.get(i) for i in range(nodes)]))
    finally:
        for child in children:
            child.kill()
            child.wait()
        node.destroy_node()
        rclpy.shutdown()


LEASE_ANNOUNCEMENT = """<builtin><discovery_config><leaseAnnouncement><sec>0</sec><nanosec>500000000</nanosec>
          </leaseAnnouncement></discovery_config></builtin>"""


def candidate_profile(directory: Path) -> Path:
    """Our profile with participant announcements every 0.5 s: everything else the same."""
    anchor = "</useBuiltinTransports>"
    text = PROFILE.read_text()
    if text.count(anchor) != 1 or "leaseAnnouncement" in text:
        raise SystemExit(f"{PROFILE} is not the profile this benchmark knows (one {anchor}, no leaseAnnouncement)")
    path = directory / "fastdds_shm_announce_0.5s.xml"
    path.write_text(text.replace(anchor, anchor + "\n        " + LEASE_ANNOUNCEMENT))
    return path


def measure(profile: Path, nodes: int, domain: int) -> list[float | None]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               FASTDDS_DEFAULT_PROFILES_FILE=str(profile))
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    out = subprocess.run([sys.executable, __file__, "--role", "observer", "--nodes", str(nodes)], env=env,
                         capture_output=True, text=True, timeout=GIVE_UP_S + 60, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=3, help="nodes started at once in each round")
    parser.add_argument("--role", choices=("observer", "node"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "node":
        node_process(args.index)
        return 0
    if args.role == "observer":
        observer(args.nodes)
        return 0
    import numpy as np

    domain = 150 + os.getpid() % 50
    with tempfile.TemporaryDirectory() as tmp:
        profiles = {"baseline": PROFILE, "candidate": candidate_profile(Path(tmp))}
        times: dict[str, list[float | None]] = {"baseline": [], "candidate": []}
        for round_index in range(args.rounds):
            order = ("baseline", "candidate") if round_index % 2 == 0 else ("candidate", "baseline")
            for name in order:
                times[name] += measure(profiles[name], args.nodes, domain)

    def summary(values: list[float | None]) -> tuple[float, float, float, int, int]:
        seen = np.array([v for v in values if v is not None])
        slow = int(np.sum(seen > 1.0)) + values.count(None)
        return (np.percentile(seen, 50), np.percentile(seen, 90), seen.max(), slow, len(values)) if len(seen) \
            else (float("nan"),) * 3 + (slow, len(values))

    b50, b90, bmax, bslow, n = summary(times["baseline"])
    o50, o90, omax, oslow, _ = summary(times["candidate"])
    print(f"a node's creation -> its publisher counted by an observer ({args.rounds} rounds of {args.nodes} nodes "
          f"started at once, localhost, shared memory)")
    print(f"  config/fastdds_shm.xml, every 3 s (Fast DDS default): p50 {b50:5.2f} s  p90 {b90:5.2f} s  "
          f"max {bmax:5.2f} s  over 1 s: {bslow}/{n}")
    print(f"  candidate, announcements every 0.5 s                 : p50 {o50:5.2f} s  p90 {o90:5.2f} s  "
          f"max {omax:5.2f} s  over 1 s: {oslow}/{n}")
    print(f"  ratio (3 s / 0.5 s)                                 : p90 {b90 / o90:5.1f}x  max {bmax / omax:5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
