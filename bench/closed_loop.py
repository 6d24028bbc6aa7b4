"""Closed loop in the live simulator: goal_node's successes from the TRACKED pose vs from the true pose.

Runs ``sim.launch.xml`` with the privileged MPC expert driving the simulated
hand (``expert_config``: the expert of config/experiments/distill_rotate.yaml,
which reaches goals; the student reaches none yet), the simulated camera,
segmentation_node, pose_tracker_node and goal_node. goal_node draws goals from
the task distribution (turns about the palm normal, as the expert was tuned
for), the simulator follows them (goal_source topic), and two judges with the
same rules count successes on the same goals: one from the tracker's pose
(task/metrics, what the robot would report), one from the simulator's true
pose (task/metrics_truth). Prints both counts, drops, goal timeouts and every
goal on which they disagree, after ``--episodes`` episodes of the tracked judge.

    .venv/bin/python bench/closed_loop.py [--object cuboid_flat] [--episodes 20] [--seed 0]
                                          [--real-time-factor 0.12] [--max-minutes 45]

The expert plans ~0.3 s per 83 ms step on one core, so the simulation runs
slower than real time (``--real-time-factor``); every node runs on the
simulated stamps, so the judges see the same sequence as at full speed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from dexterity_ros import topics  # noqa: E402
from dexterity_ros.diagnostic_keys import TaskMetrics as M  # noqa: E402
from dexterity_ros.launcher import launch  # noqa: E402
from dexterity_ros.paths import config_path, launch_path  # noqa: E402
from dexterity_ros.ros.background import BackgroundNode  # noqa: E402
from dexterity_ros.ros.common import qos_profile  # noqa: E402
from dexterity_ros.ros.graph_monitor import JudgeLog  # noqa: E402

EXPERT = "config/experiments/distill_rotate.yaml"


def closed_loop_sim_config(directory: Path, object_name: str) -> Path:
    """config/sim.yaml with the expert's task (turns about the palm normal) and short episodes."""
    data = yaml.safe_load(config_path("sim.yaml").read_text())
    experiment = yaml.safe_load((Path(__file__).resolve().parent.parent / EXPERT).read_text())["distill"]
    data["sim"]["objects"] = [object_name]
    data["sim"]["task"].update(experiment["task"])
    data["sim"]["task"]["max_consecutive_successes"] = 3          # ~20 episodes in reasonable time
    # the simulator resets the physics after 20 s: a grasp that hides the object from the camera (goal_node
    # then waits for it) does not stall the run for the default 50 s
    data["sim"]["task"]["max_episode_steps"] = 240
    path = directory / "closed_loop_sim.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def closed_loop_expert(directory: Path, num_samples: int) -> Path:
    """The expert of EXPERT with ``num_samples`` samples per plan (fewer: faster, less successful)."""
    path = directory / "closed_loop_expert.yaml"
    path.write_text(yaml.safe_dump({"distill": {"base": str((Path(__file__).resolve().parent.parent / EXPERT)),
                                                "expert": {"num_samples": num_samples}}}))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object", default="cuboid_flat")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real-time-factor", type=float, default=0.12)
    parser.add_argument("--max-minutes", type=float, default=45.0)
    parser.add_argument("--expert-samples", type=int, default=32,
                        help="MPPI samples per plan (distill_rotate.yaml: 64; 32 plans twice as fast)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)",
          flush=True)
    tracked, truth = JudgeLog(), JudgeLog()
    probe = BackgroundNode("closed_loop_probe")
    probe.node.create_subscription(DiagnosticStatus, topics.TASK_METRICS.name, tracked.on_status,
                                   qos_profile(topics.TASK_METRICS))
    probe.node.create_subscription(DiagnosticStatus, topics.TASK_METRICS_TRUTH.name, truth.on_status,
                                   qos_profile(topics.TASK_METRICS_TRUTH))
    with tempfile.TemporaryDirectory() as tmp:
        sim_config = closed_loop_sim_config(Path(tmp), args.object)
        expert = closed_loop_expert(Path(tmp), args.expert_samples)
        handle = launch(launch_path("sim.launch.xml"),
                        [f"object:={args.object}", f"seed:={args.seed}", f"sim_config:={sim_config}",
                         "student:=false", f"expert_config:={expert}",
                         f"real_time_factor:={args.real_time_factor:g}", "use_sim_time:=true"], echo=False)
        t0 = time.monotonic()
        last_report = 0
        try:
            while time.monotonic() - t0 < args.max_minutes * 60:
                with probe.lock:
                    finished = tracked.count(M.EPISODES) > args.episodes       # the (N+1)-th has started
                if finished or any(c.crashed for c in handle.children):
                    break
                time.sleep(1.0)
                minute = int((time.monotonic() - t0) // 60)
                if minute > last_report:
                    last_report = minute
                    with probe.lock:
                        print(f"  {time.monotonic() - t0:5.0f} s: tracked {tracked.count(M.GOALS_REACHED)} "
                              f"goals / {tracked.count(M.EPISODES)} episodes, truth "
                              f"{truth.count(M.GOALS_REACHED)} goals", flush=True)
        finally:
            code = handle.stop()
            probe.close()
    crashed = [c.label for c in handle.children if c.crashed]
    if crashed:
        print(f"processes that died: {crashed}\n{handle.output[-4000:]}")
        return 1
    episodes = max(tracked.count(M.EPISODES) - 1, 0)
    print(f"\nclosed loop: {args.object}, seed {args.seed}, expert {EXPERT} with {args.expert_samples} samples, "
          f"real-time factor "
          f"{args.real_time_factor:g}, {(time.monotonic() - t0) / 60:.1f} min, launch exit {code}")
    print("| judge | episodes | goals reached | drops | goal timeouts |")
    print("|---|---|---|---|---|")
    for name, log in (("tracked pose (task/metrics)", tracked), ("true pose (task/metrics_truth)", truth)):
        print(f"| {name} | {episodes} | {log.count(M.GOALS_REACHED)} | {log.count(M.DROPS_SO_FAR)} | "
              f"{log.count(M.GOAL_TIMEOUTS)} |")
    only_tracked = [g for g in tracked.reached_goals if g not in truth.reached_goals]
    only_truth = [g for g in truth.reached_goals if g not in tracked.reached_goals]
    print(f"goals reached by the tracked judge only: {len(only_tracked)} {only_tracked}")
    print(f"goals reached by the true judge only:    {len(only_truth)} {only_truth}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
