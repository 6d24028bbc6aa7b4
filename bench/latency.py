"""End-to-end latency of the replay graph: depth stamp -> hand command, ours vs the graph before issue 16.

Runs ``dexterity-ros demo`` (the whole graph on the built-in episode: replay,
segmentation, ONNX student, hand_node, emulated driver), looping the episode
for ``--seconds`` so each setting yields hundreds of targets (a p99 over the
~40 targets of one pass at 3x is just its slowest one), at each replay rate:

* ours: hand_node's prompt command (a fresh target's first command is sent
  when the target arrives) and segmentation at the student's control rate
  (``cloud_rate:=12``: only the frames the policy acts on are segmented);
* real-time: the prompt command, every frame segmented, and the nodes from the
  camera (here the replaying sim bridge) to the hand at SCHED_FIFO 20
  (``realtime_priority:=20``; the emulated driver and the observer are not);
* prompt only: the prompt command, every frame segmented (the launch files' defaults);
* baseline (before issue 16): the command waits for the next 100 Hz tick and
  every frame is segmented.

``--background-load N`` runs N busy processes (one core's worth of other work
each, normal priority) beside every run: the setting a shared or busy machine
gives, where the real-time column is meant to hold.

Prints every run's p99 with the CPU time the hypervisor stole from this VM
during it, then p50/p99 of each setting, the p99 ratio baseline / ours, and the machine's
load average, on two clocks: at publication (the depth header stamp to the
DDS source time of the command hand_node sent: the graph's own latency) and
as received by the demo's monitor (which adds that observer process's own
wake-up, behind the 640x480 frames it also deserializes). The depth rate printed is the episode's (frames / duration,
about 10 Hz) times the replay rate.

    .venv/bin/python bench/latency.py [--rates 1 3] [--seconds 20] [--repeats 1] [--background-load 0]
                                      [--settings ours real-time prompt-only baseline]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
RECEIVED = re.compile(r"end-to-end latency \(depth stamp -> hand command received here\): "
                      r"p50 ([\d.]+) ms, p99 ([\d.]+) ms over (\d+) targets")
PUBLISHED = re.compile(r"at publication \(depth stamp -> command's DDS source time\): "
                       r"p50 ([\d.]+) ms, p99 ([\d.]+) ms over (\d+) targets")


SETTINGS = {
    "ours": ["prompt_command:=true", "cloud_rate:=12"],
    "real-time": ["prompt_command:=true", "cloud_rate:=0", "realtime_priority:=20"],
    "prompt only": ["prompt_command:=true", "cloud_rate:=0"],
    "baseline": ["prompt_command:=false", "cloud_rate:=0"],
}
BUSY_LOOP = "while True: pass"


Figures = tuple[float, float, int]          # p50 ms, p99 ms, targets


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs since boot (/proc/stat; (0, 0) where there is none)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def run_demo(rate: float, launch_args: list[str], seconds: float) -> dict[str, Figures]:
    """One demo run: its latency as the monitor received the commands and at their publication.

    Also prints the run's own figures with the share of CPU time the hypervisor gave to other guests
    (steal): on a shared VM that, more than the load average, is what moves a p99 from run to run."""
    steal0, total0 = cpu_times()
    load0 = os.getloadavg()[0]
    cmd = [sys.executable, "-m", "dexterity_ros.cli", "demo", "--quiet", "--rate", f"{rate:g}",
           "--duration", f"{seconds:g}", "--arg", "loop:=true"]
    for arg in launch_args:
        cmd += ["--arg", arg]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300 + seconds)
    matches = {"received": RECEIVED.search(out.stdout), "published": PUBLISHED.search(out.stdout)}
    if out.returncode != 0 or None in matches.values():
        raise SystemExit(f"demo failed (rate {rate}, {launch_args}):\n{out.stdout[-6000:]}\n{out.stderr[-6000:]}")
    figures = {k: (float(m.group(1)), float(m.group(2)), int(m.group(3))) for k, m in matches.items()}
    steal1, total1 = cpu_times()
    steal = 100.0 * (steal1 - steal0) / max(total1 - total0, 1)
    print(f"  run: rate {rate:g}x, {' '.join(launch_args)}: at publication p50 {figures['published'][0]:.1f} / "
          f"p99 {figures['published'][1]:.1f} ms ({figures['published'][2]} targets); load average "
          f"{load0:.2f} -> {os.getloadavg()[0]:.2f}, CPU steal {steal:.1f} %", flush=True)
    return figures


@contextlib.contextmanager
def background_load(processes: int) -> Iterator[None]:
    """``processes`` busy loops at normal priority for the duration (other work on the machine)."""
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(processes)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def realtime_permitted() -> str:
    """Whether this machine lets a process use SCHED_FIFO (the real-time setting's nodes fall back when not)."""
    probe = ("from dexterity_ros.realtime import apply_realtime_priority as a; o = a(1); "
             "print('yes' if o.refused is None else 'NO: ' + o.refused)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or done.stderr.strip()[-300:]


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
    parser.add_argument("--background-load", type=int, default=0, metavar="N",
                        help="N busy processes beside every run (a loaded machine)")
    flags = {name.replace(" ", "-"): name for name in SETTINGS}        # "prompt only" -> --settings prompt-only
    parser.add_argument("--settings", nargs="+", default=list(flags), choices=list(flags),
                        help="which settings to run")
    args = parser.parse_args()
    chosen = {flags[flag]: SETTINGS[flags[flag]] for flag in flags if flag in args.settings}
    hz = episode_depth_hz()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    if "real-time" in chosen:
        print(f"SCHED_FIFO permitted here: {realtime_permitted()}")
    print(f"background load: {args.background_load} busy process(es)")
    results: dict[float, dict[str, list[dict[str, Figures]]]] = {}
    with background_load(args.background_load):
        for rate in args.rates:
            results[rate] = {name: [run_demo(rate, launch_args, args.seconds) for _ in range(args.repeats)]
                             for name, launch_args in chosen.items()}
    for clock, title in (("published", "at publication (depth stamp -> the command's DDS source time)"),
                         ("received", "as received by the demo's monitor (its own wake-up included)")):
        print(f"\nend-to-end latency {title}")
        ratio = "baseline" in chosen and "ours" in chosen
        print("| depth rate | " + " | ".join(f"{name} p50 / p99 ms" for name in chosen)
              + (" | p99 ratio baseline / ours |" if ratio else " |"))
        print("|---|" + "---|" * len(chosen) + ("---|" if ratio else ""))
        for rate, by_setting in results.items():
            cells, p99 = [], {}
            for name, runs in by_setting.items():
                figures = [r[clock] for r in runs]
                p50 = sorted(f[0] for f in figures)[len(figures) // 2]
                p99[name] = sorted(f[1] for f in figures)[len(figures) // 2]
                cells.append(f"{p50:.1f} / {p99[name]:.1f} ({sum(f[2] for f in figures)} targets)")
            print(f"| {hz * rate:.0f} Hz ({rate:g}x) | " + " | ".join(cells)
                  + (f" | {p99['baseline'] / p99['ours']:.2f}x |" if ratio else " |"), flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
