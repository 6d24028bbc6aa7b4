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

A pose student (``student.kind: pose``) gets the same cloud through the robot's
pose tracker instead (:class:`~dexterity_ros.tracking.tracker.PoseTracker`, one
fresh stream per episode, as pose_tracker_node) and its inputs from the tracked
pose, the goal and the joints, mirrored by :class:`~.pose_student.TermInputs`
and run through :class:`~dexterity_ros.policy.runtime_v2.TermPolicyRuntime`.

Steps without a usable cloud (frame dropped, too few points) or, for a pose
student, without a tracked pose hold the previous target, as the robot does,
and are not recorded. Episodes are independent and
seeded (episode seed = f(run seed, index)); :func:`run_episodes` spreads them over
worker processes with identical results for any worker count.
"""
from __future__ import annotations

import hashlib
import math
import time
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from ..sim.episodes import episode_seed
from .backends import local_executor

Driver = Literal["expert", "student", "hold"]
SYMMETRY_FLIP_RAD = math.radians(20.0)     # tracked vs true orientation: this much more apart than modulo the
                                           # object's symmetry = the tracker reports a symmetric equivalent


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
    obs: np.ndarray | None = None             # (T, D) float32: a pose student's term vector (None: point cloud)
    base: np.ndarray | None = None            # (T, J) float32: the target its delta action adds to
    expert_costs: np.ndarray | None = None    # (T, S) float32: the rollout cost of each candidate of the expert's
                                              # last sampling round, per label (None: an expert without candidates)

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
    student: Any = None             # StudentArchitecture (None: a point-cloud student)
    tracking: Any = None            # TrackerConfig: the pose tracker of a pose student

    @property
    def pose(self) -> bool:
        return self.student is not None and self.student.kind == "pose"

    def key(self) -> str:
        return hashlib.sha256(repr((self.sim_config, self.randomization, self.expert, self.history_length,
                                    self.perception, self.student, self.tracking)).encode()).hexdigest()


class _Worker:
    """Built once per process (per setup): env, student view, expert; student runtimes by model."""

    MAX_RUNTIMES = 4

    def __init__(self, setup: WorkerSetup):
        from ..sim.env import ReorientEnv
        from ..sim.student_view import StudentView
        from .expert import make_expert

        self.setup = setup
        self.env = ReorientEnv(setup.sim_config, setup.randomization, seed=0)
        self.perception = setup.perception
        self.view = StudentView(self.perception)
        self.expert = make_expert(setup.expert)
        self.hand = self.env.hand             # the simulated hand (the sim config's robot description)
        self._runtimes: dict[str, Any] = {}
        self._trackers: dict[str, Any] = {}
        self._pose_contract = None

    def runtime(self, model_bytes: bytes | None):
        """(runtime or None, its contract's action mapping) for a student model (None: no student).

        Point-cloud students run on PolicyRuntime (contract v1), pose students on
        TermPolicyRuntime (v2): the runtimes student_node runs.
        """
        if model_bytes is None:
            if self.setup.pose:
                from .pose_student import delta_mapping
                return None, delta_mapping(self.pose_contract(), self.hand)
            from .student import ActionMapping
            return None, ActionMapping.for_pose(self.env.initial_joint_positions, self.hand)
        key = hashlib.sha256(model_bytes).hexdigest()
        if key not in self._runtimes:
            if len(self._runtimes) >= self.MAX_RUNTIMES:
                self._runtimes.pop(next(iter(self._runtimes)))
            self._runtimes[key] = self._make_runtime(model_bytes)
        runtime = self._runtimes[key]
        if self.setup.pose:
            from .pose_student import delta_mapping
            return runtime, delta_mapping(runtime.contract, self.hand)
        from .student import mapping_from_contract
        return runtime, mapping_from_contract(runtime.contract, self.hand)

    def _make_runtime(self, model_bytes: bytes):
        from ..policy.loading import load_runtime
        from ..policy.runtime_v2 import TermPolicyRuntime

        runtime = load_runtime(model_bytes, hand=self.hand, perception=self.perception)
        if self.setup.pose != isinstance(runtime, TermPolicyRuntime):
            want = "a pose student (contract v2)" if self.setup.pose else "a point-cloud student (contract v1)"
            raise ValueError(f"the config's student.kind is {'pose' if self.setup.pose else 'point_cloud'}: "
                             f"it runs {want}, this model's contract is version {runtime.contract.contract_version}")
        return runtime

    def pose_contract(self):
        """The pose student's contract as the run builds it (its terms: what the expert's steps record)."""
        if self._pose_contract is None:
            from .pose_student import build_pose_student
            origin = self.env.config.mount_config().object_position
            _, self._pose_contract = build_pose_student(self.setup.student, self.hand, origin,
                                                        control_rate_hz=1.0 / self.env.policy_period_s)
        return self._pose_contract

    def tracker(self, name: str):
        """The pose tracker of object ``name`` (config/tracking.yaml or the run's), as pose_tracker_node builds it."""
        if name not in self._trackers:
            from ..objects.models import load_object_model
            from ..tracking.tracker import PoseTracker
            self._trackers[name] = PoseTracker(load_object_model(name), self.setup.tracking)
        return self._trackers[name]

    def close(self) -> None:
        self.env.close()
        self.expert.close()


class _CloudInputs:
    """The point-cloud student's step (contract v1): the cloud itself, StudentInputs mirroring PolicyRuntime."""

    def __init__(self, worker: _Worker, runtime, mapping, job: EpisodeJob):
        from .student import StudentInputs

        feeds_joint_history = runtime is not None and any(
            spec.meaning == "joint_position_history" for spec in runtime.contract.inputs)
        self.inputs = StudentInputs(worker.setup.history_length, worker.env.num_joints,
                                    joint_position_history=feeds_joint_history)
        self.runtime, self.mapping = runtime, mapping
        self._frame = None
        self.feeds: dict[str, np.ndarray] = {}

    def observe(self, env, frame) -> bool:
        """Build this step's inputs; False when there are none (no frame or no usable cloud: the robot's
        segmentation publishes nothing and the student holds)."""
        if frame is None or not frame.cloud.ok:
            return False
        self._frame = frame
        self.feeds = self.inputs.feeds(frame.cloud.points, frame.joint_positions, frame.goal_wxyz, frame.stamp_ns)
        return True

    def run_student(self):
        f = self._frame
        return self.runtime.step(f.cloud.points, f.joint_positions, f.goal_wxyz, f.stamp_ns)

    def commit_target(self, target: np.ndarray) -> None:
        self.inputs.commit(self.mapping.action(target))

    def commit_output(self, out) -> None:
        self.inputs.commit(out.action)

    def row(self) -> dict[str, np.ndarray]:
        return {"points": self.feeds["object_points"][0], "joints": self.feeds["joint_positions"][0],
                "history": self.feeds["action_history"][0], "joint_history": self.inputs.joint_window(),
                "goal": self.feeds["goal_quaternion"][0]}

    @staticmethod
    def shapes(worker: _Worker) -> dict[str, tuple[int, ...]]:
        j, h = worker.env.num_joints, worker.setup.history_length
        return {"points": (worker.perception.num_points, 3), "joints": (j,), "history": (h, j),
                "joint_history": (h, j), "goal": (4,)}

    def summary(self) -> dict[str, Any]:
        return {}


class _PoseInputs:
    """The pose student's step (contract v2): the cloud through the pose tracker (as pose_tracker_node runs
    it), then TermInputs mirroring TermPolicyRuntime on the tracked pose, the goal and the joints."""

    def __init__(self, worker: _Worker, runtime, mapping, job: EpisodeJob):
        from .pose_student import TermInputs

        contract = runtime.contract if runtime is not None else worker.pose_contract()
        self.inputs = TermInputs(contract, worker.hand)
        self.runtime, self.mapping = runtime, mapping
        self.tracker = worker.tracker(worker.env.scene.object.name)
        self.tracker.reset()                 # a fresh stream, as a fresh pose_tracker_node would start
        # student.pose_source "simulator": the true pose replaces the tracker's (a diagnostic of the
        # tracker's cost); the student still acts only on frames with a usable cloud, as with the tracker
        self.true_pose = worker.setup.student.pose_source == "simulator"
        self.symmetry = self.tracker.model.symmetry
        self._step = None
        self.feeds: dict[str, np.ndarray] = {}
        self.clouds = self.tracked = 0
        self.track_seconds = 0.0
        self.rotation_errors: list[float] = []
        self.position_errors: list[float] = []
        self.flips = 0

    def observe(self, env, frame) -> bool:
        """Track the frame's cloud; False when there is no pose (no cloud, or the tracker is lost: the
        robot's tracker then publishes nothing and the pose-triggered student does not act)."""
        from ..policy.runtime_v2 import ObjectPose

        if frame is None or not frame.cloud.ok:
            return False
        self.clouds += 1
        truth = env.privileged_state()
        if self.true_pose:
            self.tracked += 1
            return self._use(ObjectPose(truth.object_position.copy(), truth.object_quaternion.copy(),
                                        frame.stamp_ns), frame)
        t0 = time.perf_counter()
        result = self.tracker.update(frame.cloud.points, frame.stamp_ns, frame.palm_from_camera[:3, 3])
        self.track_seconds += time.perf_counter() - t0
        if not result.ok:
            return False
        self.tracked += 1
        if frame.render.step == truth.step:             # a held (frozen) frame shows an earlier step
            error = float(self.symmetry.distance(result.quaternion, truth.object_quaternion))
            self.rotation_errors.append(error)
            self.position_errors.append(float(np.linalg.norm(result.position - truth.object_position)))
            # a symmetric equivalent of the true orientation (the view cannot tell them apart): the pose the
            # student sees is off by the symmetry, the judge's error is not
            raw = 2.0 * math.acos(min(1.0, abs(float(np.dot(result.quaternion, truth.object_quaternion)))))
            self.flips += int(raw - error > SYMMETRY_FLIP_RAD)
        return self._use(ObjectPose(result.position, result.quaternion, frame.stamp_ns), frame)

    def _use(self, pose, frame) -> bool:
        from ..policy.runtime_v2 import StepInputs

        self._step = StepInputs(joint_positions=frame.joint_positions, stamp_ns=frame.stamp_ns,
                                goal_wxyz=frame.goal_wxyz, object_pose=pose)
        self.feeds = self.inputs.feeds(frame.joint_positions, pose, frame.goal_wxyz, frame.stamp_ns)
        self._joints, self._goal = frame.joint_positions, frame.goal_wxyz
        return True

    def run_student(self):
        return self.runtime.step(self._step)

    def commit_target(self, target: np.ndarray) -> None:
        self.inputs.commit_target(target)

    def commit_output(self, out) -> None:
        self.inputs.commit(out.action, out.target)

    def row(self) -> dict[str, np.ndarray]:
        return {"obs": self.feeds["obs"][0], "base": self.inputs.base.astype(np.float32),
                "joints": np.asarray(self._joints, np.float32), "goal": np.asarray(self._goal, np.float32)}

    @staticmethod
    def shapes(worker: _Worker) -> dict[str, tuple[int, ...]]:
        j = worker.env.num_joints
        size = worker.pose_contract().input_shape(worker.pose_contract().inputs[0])[1]
        return {"joints": (j,), "goal": (4,), "obs": (size,), "base": (j,)}

    def summary(self) -> dict[str, Any]:
        rot = np.degrees(self.rotation_errors) if self.rotation_errors else np.zeros(0)
        return {"cloud_frames": self.clouds, "tracked_frames": self.tracked, "tracker_seconds": self.track_seconds,
                "pose_rotation_error_deg_sum": float(rot.sum()), "pose_rotation_error_deg_max":
                float(rot.max()) if len(rot) else 0.0, "pose_position_error_m_sum": float(np.sum(self.position_errors)),
                "pose_error_count": len(self.rotation_errors), "pose_symmetry_flips": self.flips}


def run_episode(worker: _Worker, job: EpisodeJob, model_bytes: bytes | None = None) -> EpisodeData:
    """Run one episode (see the module docstring); ``model_bytes``: the student ONNX, if any."""
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
    path_type = _PoseInputs if worker.setup.pose else _CloudInputs
    path = path_type(worker, runtime, mapping, job) if job.render else None
    state = env.privileged_state()
    target = state.joint_targets.copy()                    # hold the settled grasp until someone acts
    start_distance = float(state.rotation_distance)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in path_type.shapes(worker)}
    rows.update(expert=[], student=[], costs=[])
    errors: list[float] = []
    steps = usable = labelled = 0
    total_reward = 0.0
    info: dict[str, Any] = {"rotation_distance": start_distance, "consecutive_successes": 0, "dropped": False}
    min_distance = start_distance
    for steps in range(1, job.max_steps + 1):
        if not job.render:              # expert (or hold-still) evaluation: true state every step, no camera
            if job.driver == "expert":
                target = expert.act(env)
        elif path.observe(env, view.frame(obs)):
            usable += 1
            student_target = None
            if runtime is not None:
                out = path.run_student()
                if out.target is None:
                    raise RuntimeError(f"the student runtime refused valid inputs: {out.reason}")
                student_target = out.target
                if job.driver == "student":
                    _check_same_feeds(path.feeds, runtime.last_inputs, job, steps,
                                      state_inputs=[r.name for r in getattr(runtime.contract, "recurrent_inputs", ())])
            label = job.driver == "expert" or (job.label_every > 0 and (usable - 1) % job.label_every == 0)
            expert_target = expert.act(env, learner_action=student_target) if label else None
            labelled += int(label)
            if job.record and expert_target is not None:
                rows_now = path.row()             # before the commit: this step's inputs
                if worker.setup.pose:             # recurrent training cuts sequences at this mark: it must be
                    from .pose_student import reset_marks     # exactly where the runtime reset
                    if bool(reset_marks(path.inputs.contract, rows_now["obs"][None])[0]) != path.inputs.was_reset:
                        raise RuntimeError(f"episode {job.index} step {steps}: the recorded row's reset mark "
                                           f"disagrees with the runtime's reset ({path.inputs.was_reset})")
            if job.driver == "expert":
                target = expert_target
                path.commit_target(expert_target)
            elif job.driver == "student":
                target = student_target
                path.commit_output(out)
            else:
                path.commit_target(target)
            if expert_target is not None and job.record:
                for key, value in rows_now.items():
                    rows[key].append(value)
                rows["expert"].append(expert_target.astype(np.float32))
                costs = getattr(expert, "last_costs", None)
                rows["costs"].append(None if costs is None else np.asarray(costs, np.float32))
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
    shapes = {**path_type.shapes(worker), "expert": (env.num_joints,), "student": (env.num_joints,)}

    def stack(key: str) -> np.ndarray:
        return np.stack(rows[key]).astype(np.float32) if rows[key] else np.zeros((0, *shapes[key]), np.float32)

    count = len(rows["expert"])

    def empty(key: str) -> np.ndarray:          # a field this student does not record: no values per sample
        return stack(key) if key in rows else np.zeros((count, *_EMPTY[key](shapes)), np.float32)

    summary = {
        "index": job.index, "seed": job.episode_seed, "driver": job.driver, "object": env.scene.object.name,
        "steps": steps, "usable_steps": usable, "labels": count, "labelled_steps": labelled,
        "successes": int(info["consecutive_successes"]), "dropped": bool(info["dropped"]),
        "final_rotation_distance": float(info["rotation_distance"]), "start_rotation_distance": start_distance,
        "min_rotation_distance": min_distance, "return": total_reward,
        "action_error_sum": float(np.sum(errors)), "action_error_count": len(errors),
        "expert_plans": expert.stats.plans - plans0, "expert_plan_seconds": expert.stats.plan_seconds - plan_seconds0,
        **(path.summary() if path is not None else {}),
    }
    costs = rows["costs"]
    expert_costs = (np.stack(costs) if costs and all(c is not None and c.shape == costs[0].shape for c in costs)
                    else None)
    return EpisodeData(job, empty("points"), stack("joints"), empty("history"), stack("goal"), stack("expert"),
                       stack("student"), summary, joint_history=empty("joint_history"),
                       obs=stack("obs") if "obs" in rows else None, base=stack("base") if "base" in rows else None,
                       expert_costs=expert_costs)


_EMPTY = {"points": lambda shapes: shapes.get("points", (0, 3)),
          "history": lambda shapes: shapes.get("history", (0, shapes["joints"][0])),
          "joint_history": lambda shapes: shapes.get("joint_history", (0, shapes["joints"][0]))}


def _check_same_feeds(mine: dict[str, np.ndarray], runtime: dict[str, np.ndarray] | None, job: EpisodeJob,
                      step: int, state_inputs: Sequence[str] = ()) -> None:
    """On student-driven steps the recorded inputs must be the runtime's, bit for bit.

    ``state_inputs`` (a recurrent contract's state feeds) are left out: the state is
    the network's own output fed back, not an observation; it is not recorded, and
    training recomputes it over the recorded sequence from the same resets.
    """
    if runtime is not None:
        runtime = {k: v for k, v in runtime.items() if k not in set(state_inputs)}
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
        import open3d
        import torch
        torch.set_num_threads(setup.torch_threads)
        # Open3D's ICP (the pose tracker) sums over points in parallel TBB tasks whose order varies
        # from run to run, which changes the tracked pose in the last bits (and, rarely, a float32
        # observation); one thread makes an episode a pure function of its job on every backend.
        open3d.utility.set_max_threads(1)
        worker = _WORKERS[key] = _Worker(setup)
    return worker


def _run_task(setup: WorkerSetup, job: EpisodeJob, model_bytes: bytes | None) -> EpisodeData:
    return run_episode(_worker_for(setup), job, model_bytes)


def run_episodes(setup: WorkerSetup, tasks: Sequence[Task], workers: int = 0, progress: bool = False,
                 description: str = "episodes", executor: Executor | None = None) -> list[EpisodeData]:
    """Run ``tasks`` in-process (workers=0, no executor), in local worker processes or on the given
    executor (backends: local processes or Ray); results in task order.

    Every episode is a pure function of its job and model, so the results do not
    depend on the backend, the number of workers or the order in which they finish.
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
            pool = executor or local_executor(workers)
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
        **_tracking_metrics(s),
    }


def _tracking_metrics(s: list[dict[str, Any]]) -> dict[str, float]:
    """Pose students: how often the tracker gave a pose, what it cost, how far it was from the truth."""
    if not any("cloud_frames" in x for x in s):
        return {}
    clouds = sum(x.get("cloud_frames", 0) for x in s)
    tracked = sum(x.get("tracked_frames", 0) for x in s)
    compared = sum(x.get("pose_error_count", 0) for x in s)
    nan = float("nan")
    return {"tracked_fraction": tracked / clouds if clouds else nan,
            "tracker_ms_per_frame": 1e3 * sum(x.get("tracker_seconds", 0.0) for x in s) / clouds if clouds else nan,
            "pose_rotation_error_deg": sum(x.get("pose_rotation_error_deg_sum", 0.0) for x in s) / compared
            if compared else nan,
            "pose_position_error_mm": 1e3 * sum(x.get("pose_position_error_m_sum", 0.0) for x in s) / compared
            if compared else nan,
            "pose_symmetry_flip_fraction": sum(x.get("pose_symmetry_flips", 0) for x in s) / compared
            if compared else nan}


def summaries(episodes: Sequence[EpisodeData]) -> list[dict[str, Any]]:
    return [dict(e.summary, job=asdict(e.job)) for e in episodes]
