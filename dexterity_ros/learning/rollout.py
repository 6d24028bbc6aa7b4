"""Episodes for distillation and evaluation: who drives, what is recorded, what the expert says.

One episode (:func:`run_episode`) renders every step's camera frame and turns it
into the student's cloud through :class:`~dexterity_ros.sim.student_view.StudentView`
(the robot's preprocessing). On every step with a usable cloud:

* the student's inputs are built exactly as the runtime builds them
  (:class:`~.student.StudentInputs`);
* if a student model is given, it runs through the same
  :class:`~dexterity_ros.policy.runtime.PolicyRuntime` the robot runs;
* the privileged expert is asked for its target when the step is labelled;
* the driver's target is applied: the expert's (DAgger iteration 0, beta
  mixing, BC data) or the student's.

Steps without a usable cloud (frame dropped, too few points) hold the previous
target, as the robot does, and are not recorded. Episodes are independent and
seeded (episode seed = f(run seed, index)); :func:`run_episodes` spreads them over
worker processes with identical results for any worker count.
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from ..sim.episodes import episode_seed

Driver = Literal["expert", "student", "hold"]


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run (picklable)."""

    index: int                      # index in its seed stream
    seed: int                       # base seed of the stream; the episode seed is episode_seed(seed, index)
    driver: Driver
    max_steps: int
    label_every: int = 1            # expert label on every k-th step with a cloud (0: never)
    render: bool = True             # False: expert-only episodes without the camera (expert evaluation)
    record: bool = True             # keep the labelled samples (False: evaluation, summary only)

    @property
    def episode_seed(self) -> int:
        return episode_seed(self.seed, self.index)


@dataclass
class EpisodeData:
    """What one episode produced: the labelled samples and its summary."""

    job: EpisodeJob
    points: np.ndarray              # (T, N, 3) float32: the runtime's feeds, per labelled step
    joints: np.ndarray              # (T, J) float32
    history: np.ndarray             # (T, H, J) float32
    goal: np.ndarray                # (T, 4) float32
    expert_target: np.ndarray       # (T, J) float32 rad
    student_target: np.ndarray      # (T, J) float32 rad (NaN where no student ran)
    summary: dict[str, Any] = field(default_factory=dict)
    joint_history: np.ndarray | None = None   # (T, H, J) float32: the measured-pose window (None: not recorded)

    @property
    def labels(self) -> int:
        return int(self.points.shape[0])


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to build its env, view and expert (picklable; students come per job)."""

    sim_config: Any                 # SimConfig
    randomization: Any              # RandomizationConfig
    expert: Any                     # ExpertConfig
    history_length: int
    perception: Any                 # PerceptionConfig: the student view's and the runtimes'
    torch_threads: int = 1

    def key(self) -> str:
        return hashlib.sha256(repr((self.sim_config, self.randomization, self.expert, self.history_length,
                                    self.perception)).encode()).hexdigest()


class _Worker:
    """Built once per process (per setup): env, student view, expert; student runtimes by model."""

    MAX_RUNTIMES = 4

    def __init__(self, setup: WorkerSetup):
        from ..sim.env import ReorientEnv
        from ..sim.student_view import StudentView
        from .expert import SamplingExpert

        self.setup = setup
        self.env = ReorientEnv(setup.sim_config, setup.randomization, seed=0)
        self.perception = setup.perception
        self.view = StudentView(self.perception)
        self.expert = SamplingExpert(setup.expert)
        self.hand = self.env.hand             # the simulated hand (the sim config's robot description)
        self._runtimes: dict[str, Any] = {}

    def runtime(self, model_bytes: bytes | None):
        """(PolicyRuntime or None, ActionMapping) for a student model (None: no student)."""
        from ..policy.runtime import PolicyRuntime
        from .student import ActionMapping, mapping_from_contract

        if model_bytes is None:
            return None, ActionMapping.for_pose(self.env.initial_joint_positions, self.hand)
        key = hashlib.sha256(model_bytes).hexdigest()
        if key not in self._runtimes:
            if len(self._runtimes) >= self.MAX_RUNTIMES:
                self._runtimes.pop(next(iter(self._runtimes)))
            self._runtimes[key] = PolicyRuntime(model_bytes, hand=self.hand, perception=self.perception)
        runtime = self._runtimes[key]
        return runtime, mapping_from_contract(runtime.contract, self.hand)

    def close(self) -> None:
        self.env.close()
        self.expert.close()


def run_episode(worker: _Worker, job: EpisodeJob, model_bytes: bytes | None = None) -> EpisodeData:
    """Run one episode (see the module docstring); ``model_bytes``: the student ONNX, if any."""
    from .student import StudentInputs

    env, view, expert = worker.env, worker.view, worker.expert
    runtime, mapping = worker.runtime(model_bytes)
    if job.driver == "student" and runtime is None:
        raise ValueError("a student-driven episode needs a student model")
    obs = env.reset(seed=job.episode_seed)
    view.reset()                      # the cloud stream starts fresh, as a fresh graph would
    expert.reset(env)
    plans0, plan_seconds0 = expert.stats.plans, expert.stats.plan_seconds
    if runtime is not None:
        runtime.reset("new episode")
    feeds_joint_history = runtime is not None and any(
        spec.meaning == "joint_position_history" for spec in runtime.contract.inputs)
    inputs = StudentInputs(worker.setup.history_length, env.num_joints, joint_position_history=feeds_joint_history)
    state = env.privileged_state()
    target = state.joint_targets.copy()                    # hold the settled grasp until someone acts
    start_distance = float(state.rotation_distance)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("points", "joints", "history", "joint_history", "goal",
                                                         "expert", "student")}
    errors: list[float] = []
    steps = usable = labelled = 0
    total_reward = 0.0
    info: dict[str, Any] = {"rotation_distance": start_distance, "consecutive_successes": 0, "dropped": False}
    min_distance = start_distance
    for steps in range(1, job.max_steps + 1):
        if not job.render:              # expert (or hold-still) evaluation: true state every step, no camera
            if job.driver == "expert":
                target = expert.act(env)
        else:
            frame = view.frame(obs)
            if frame is not None and frame.cloud.ok:
                usable += 1
                feeds = inputs.feeds(frame.cloud.points, frame.joint_positions, frame.goal_wxyz, frame.stamp_ns)
                student_target = None
                if runtime is not None:
                    out = runtime.step(frame.cloud.points, frame.joint_positions, frame.goal_wxyz, frame.stamp_ns)
                    if out.target is None:
                        raise RuntimeError(f"the student runtime refused a valid cloud: {out.reason}")
                    student_target = out.target
                    if job.driver == "student":
                        _check_same_feeds(feeds, runtime.last_inputs, job, steps)
                label = job.driver == "expert" or (job.label_every > 0 and (usable - 1) % job.label_every == 0)
                expert_target = expert.act(env) if label else None
                labelled += int(label)
                if job.driver == "expert":
                    target = expert_target
                    inputs.commit(mapping.action(expert_target))
                elif job.driver == "student":
                    target = student_target
                    inputs.commit(out.action)
                else:
                    inputs.commit(mapping.action(target))
                if expert_target is not None and job.record:
                    rows["points"].append(feeds["object_points"][0])
                    rows["joints"].append(feeds["joint_positions"][0])
                    rows["history"].append(feeds["action_history"][0])
                    rows["joint_history"].append(inputs.joint_window())
                    rows["goal"].append(feeds["goal_quaternion"][0])
                    rows["expert"].append(expert_target.astype(np.float32))
                    rows["student"].append(np.full(env.num_joints, np.nan, np.float32) if student_target is None
                                           else student_target.astype(np.float32))
                if expert_target is not None and student_target is not None:
                    errors.append(float(np.mean(np.abs(student_target - np.clip(expert_target, env.action_low,
                                                                                 env.action_high)))))
        result = env.step(target)
        total_reward += result.reward
        info = result.info
        min_distance = min(min_distance, float(info["rotation_distance"]))
        obs = result.observation
        if result.terminated or result.truncated:
            break
    n_points = worker.view.perception.num_points
    joints = env.num_joints
    h = worker.setup.history_length

    def stack(key: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.stack(rows[key]).astype(np.float32) if rows[key] else np.zeros((0, *shape), np.float32)

    summary = {
        "index": job.index, "seed": job.episode_seed, "driver": job.driver, "object": env.scene.object.name,
        "steps": steps, "usable_steps": usable, "labels": len(rows["expert"]), "labelled_steps": labelled,
        "successes": int(info["consecutive_successes"]), "dropped": bool(info["dropped"]),
        "final_rotation_distance": float(info["rotation_distance"]), "start_rotation_distance": start_distance,
        "min_rotation_distance": min_distance, "return": total_reward,
        "action_error_sum": float(np.sum(errors)), "action_error_count": len(errors),
        "expert_plans": expert.stats.plans - plans0, "expert_plan_seconds": expert.stats.plan_seconds - plan_seconds0,
    }
    return EpisodeData(job, stack("points", (n_points, 3)), stack("joints", (joints,)), stack("history", (h, joints)),
                       stack("goal", (4,)), stack("expert", (joints,)), stack("student", (joints,)), summary,
                       joint_history=stack("joint_history", (h, joints)))


def _check_same_feeds(mine: dict[str, np.ndarray], runtime: dict[str, np.ndarray] | None, job: EpisodeJob,
                      step: int) -> None:
    """On student-driven steps the recorded inputs must be the runtime's, bit for bit."""
    if runtime is None or set(mine) != set(runtime) or not all(np.array_equal(mine[k], runtime[k]) for k in mine):
        raise RuntimeError(f"episode {job.index} step {step}: recorded student inputs differ from the "
                           "runtime's feeds (StudentInputs no longer mirrors PolicyRuntime)")


# ---------------------------------------------------------------- parallel execution
_WORKERS: dict[str, _Worker] = {}
Task = tuple[EpisodeJob, "bytes | None"]          # an episode and the student model it runs (if any)


def _worker_for(setup: WorkerSetup) -> _Worker:
    key = setup.key()
    worker = _WORKERS.get(key)
    if worker is None:
        for old in list(_WORKERS.values()):       # one setup per process at a time
            old.close()
        _WORKERS.clear()
        import torch
        torch.set_num_threads(setup.torch_threads)
        worker = _WORKERS[key] = _Worker(setup)
    return worker


def _run_task(setup: WorkerSetup, job: EpisodeJob, model_bytes: bytes | None) -> EpisodeData:
    return run_episode(_worker_for(setup), job, model_bytes)


def run_episodes(setup: WorkerSetup, tasks: Sequence[Task], workers: int = 0, progress: bool = False,
                 description: str = "episodes", executor: ProcessPoolExecutor | None = None) -> list[EpisodeData]:
    """Run ``tasks`` in-process (workers=0, no executor) or in worker processes; results in task order.

    Every episode is a pure function of its job and model, so the results do not
    depend on the number of workers or on the order in which they finish.
    """
    from tqdm import tqdm

    results: dict[int, EpisodeData] = {}
    bar = tqdm(total=len(tasks), desc=description, unit="ep", disable=not progress, dynamic_ncols=True)

    def done(k: int, data: EpisodeData) -> None:
        results[k] = data
        s = data.summary
        bar.set_postfix(obj=s["object"], steps=s["steps"], goals=s["successes"])
        bar.update(1)

    try:
        if workers <= 0 and executor is None:
            for k, (job, model) in enumerate(tasks):
                done(k, _run_task(setup, job, model))
        else:
            pool = executor or make_executor(workers)
            try:
                futures = {pool.submit(_run_task, setup, job, model): k for k, (job, model) in enumerate(tasks)}
                for future in as_completed(futures):
                    done(futures[future], future.result())
            finally:
                if executor is None:
                    pool.shutdown(cancel_futures=True)
    finally:
        bar.close()
    return [results[k] for k in range(len(tasks))]


def make_executor(workers: int) -> ProcessPoolExecutor:
    """Worker processes (forkserver: never fork MuJoCo/GL state); each keeps its env between episodes."""
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    os.environ.setdefault("MUJOCO_GL", "egl")
    return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context(method),
                               initializer=_count_mujoco_warnings)


MUJOCO_WARNINGS = {"count": 0}


def _count_mujoco_warnings() -> None:
    """Worker processes: count MuJoCo's warnings instead of printing each one.

    Coarse planner rollouts occasionally diverge (the expert scores them as the
    worst case); MuJoCo would print a warning line for every one of them.
    """
    import mujoco

    def handler(message: str) -> None:
        MUJOCO_WARNINGS["count"] += 1

    mujoco.set_mju_user_warning(handler)


def summarize(episodes: Sequence[EpisodeData]) -> dict[str, float]:
    """Task metrics over episodes (the numbers reported in docs/results.md)."""
    s = [e.summary for e in episodes]
    if not s:
        return {}
    count = sum(x["action_error_count"] for x in s)
    plans = sum(x["expert_plans"] for x in s)
    return {
        "episodes": len(s),
        "success_rate": float(np.mean([x["successes"] > 0 for x in s])),
        "consecutive_successes": float(np.mean([x["successes"] for x in s])),
        "drop_rate": float(np.mean([x["dropped"] for x in s])),
        "final_rotation_error_rad": float(np.mean([x["final_rotation_distance"] for x in s])),
        "min_rotation_error_rad": float(np.mean([x["min_rotation_distance"] for x in s])),
        "start_rotation_error_rad": float(np.mean([x["start_rotation_distance"] for x in s])),
        "mean_steps": float(np.mean([x["steps"] for x in s])),
        "action_error_rad": float(sum(x["action_error_sum"] for x in s) / count) if count else float("nan"),
        "action_error_samples": int(count),
        "labels": int(sum(x["labels"] for x in s)),
        "expert_ms_per_plan": float(1e3 * sum(x["expert_plan_seconds"] for x in s) / plans) if plans else float("nan"),
    }


def summaries(episodes: Sequence[EpisodeData]) -> list[dict[str, Any]]:
    return [dict(e.summary, job=asdict(e.job)) for e in episodes]
