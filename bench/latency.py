"""End-to-end latency of the replay graph: depth stamp -> hand command, prompt command on vs off.

Runs ``dexterity-ros demo`` (the whole graph on the built-in episode: replay,
segmentation, ONNX student, hand_node, emulated driver) at each replay rate,
once with hand_node's prompt command (a fresh target's first command is sent
when the target arrives; ours) and once without it (the command waits for the
next 100 Hz tick; the baseline, as before issue 16), and prints p50/p99 of
each, their ratio, and the machine's load average. The depth rate printed is
the episode's (frames / duration, about 10 Hz) times the replay rate.

    .venv/bin/python bench/latency.py [--rates 1 3] [--repeats 1]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATENCY = re.compile(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms over (\d+) targets")


def run_demo(rate: float, prompt: bool) -> tuple[float, float, int]:
    cmd = [sys.executable, "-m", "dexterity_ros.cli", "demo", "--rate", f"{rate:g}",
           "--arg", f"prompt_command:={'true' if prompt else 'false'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    match = LATENCY.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"demo failed (rate {rate}, prompt {prompt}):\n{out.stdout[-6000:]}\n{out.stderr[-6000:]}")
    return float(match.group(1)), float(match.group(2)), int(match.group(3))


def episode_depth_hz() -> float:
    from dexterity_ros import topics
    from dexterity_ros.bags.io import BagReader
    from dexterity_ros.cli_commands.demo import ensure_demo_episode
    with BagReader(ensure_demo_episode()) as reader:
        name = "/" + topics.DEPTH_IMAGE.name
        first, last = reader.topic_time_ranges()[name]
        count = reader.topics()[name].count
    return (count - 1) / ((last - first) * 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--repeats", type=int, default=1, help="demo runs per setting (latencies pooled by median)")
    args = parser.parse_args()
    hz = episode_depth_hz()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    print("| depth rate | prompt command (ours) p50 / p99 ms | next tick (baseline) p50 / p99 ms | p99 ratio |")
    print("|---|---|---|---|")
    for rate in args.rates:
        ours = [run_demo(rate, True) for _ in range(args.repeats)]
        base = [run_demo(rate, False) for _ in range(args.repeats)]
        o50, o99 = sorted(r[0] for r in ours)[len(ours) // 2], sorted(r[1] for r in ours)[len(ours) // 2]
        b50, b99 = sorted(r[0] for r in base)[len(base) // 2], sorted(r[1] for r in base)[len(base) // 2]
        print(f"| {hz * rate:.0f} Hz ({rate:g}x) | {o50:.1f} / {o99:.1f} ({sum(r[2] for r in ours)} targets) "
              f"| {b50:.1f} / {b99:.1f} ({sum(r[2] for r in base)} targets) | {b99 / o99:.2f}x |", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
