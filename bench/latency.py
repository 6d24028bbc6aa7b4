"""End-to-end latency of the replay graph: depth stamp -> hand command, ours vs the graph before issue 16.

Runs ``dexterity-ros demo`` (the whole graph on the built-in episode: replay,
segmentation, ONNX student, hand_node, emulated driver), looping the episode
for ``--seconds`` so each setting yields hundreds of targets (a p99 over the
~40 targets of one pass at 3x is just its slowest one), at each replay rate:

* ours: hand_node's prompt command (a fresh target's first command is sent
  when the target arrives) and segmentation at the student's control rate
  (``cloud_rate:=12``: only the frames the policy acts on are segmented);
* prompt only: the prompt command, every frame segmented;
* baseline (before issue 16): the command waits for the next 100 Hz tick and
  every frame is segmented.

Prints p50/p99 of each, the p99 ratio baseline / ours, and the machine's
load average. The depth rate printed is the episode's (frames / duration,
about 10 Hz) times the replay rate.

    .venv/bin/python bench/latency.py [--rates 1 3] [--seconds 20] [--repeats 1]
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


SETTINGS = {
    "ours": ["prompt_command:=true", "cloud_rate:=12"],
    "prompt only": ["prompt_command:=true", "cloud_rate:=0"],
    "baseline": ["prompt_command:=false", "cloud_rate:=0"],
}


def run_demo(rate: float, launch_args: list[str], seconds: float) -> tuple[float, float, int]:
    cmd = [sys.executable, "-m", "dexterity_ros.cli", "demo", "--quiet", "--rate", f"{rate:g}",
           "--duration", f"{seconds:g}", "--arg", "loop:=true"]
    for arg in launch_args:
        cmd += ["--arg", arg]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300 + seconds)
    match = LATENCY.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"demo failed (rate {rate}, {launch_args}):\n{out.stdout[-6000:]}\n{out.stderr[-6000:]}")
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
    parser.add_argument("--seconds", type=float, default=20.0, help="replay time per run (the episode loops)")
    parser.add_argument("--repeats", type=int, default=1, help="demo runs per setting (latencies pooled by median)")
    args = parser.parse_args()
    hz = episode_depth_hz()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    print("| depth rate | " + " | ".join(f"{name} p50 / p99 ms" for name in SETTINGS) + " | p99 ratio baseline / ours |")
    print("|---|" + "---|" * len(SETTINGS) + "---|")
    for rate in args.rates:
        cells, p99 = [], {}
        for name, launch_args in SETTINGS.items():
            runs = [run_demo(rate, launch_args, args.seconds) for _ in range(args.repeats)]
            p50 = sorted(r[0] for r in runs)[len(runs) // 2]
            p99[name] = sorted(r[1] for r in runs)[len(runs) // 2]
            cells.append(f"{p50:.1f} / {p99[name]:.1f} ({sum(r[2] for r in runs)} targets)")
        print(f"| {hz * rate:.0f} Hz ({rate:g}x) | " + " | ".join(cells)
              + f" | {p99['baseline'] / p99['ours']:.2f}x |", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
