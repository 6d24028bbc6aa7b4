"""DAgger distillation of the privileged expert into a student (point cloud or pose), with a BC baseline.

Schedule (``run_distill``; every stage is checkpointed under the output
directory and skipped when its files exist, so an interrupted run resumes):

1. iteration 0: the expert drives ``initial_episodes`` episodes; every state is
   labelled with the expert's target -> D_0; the expert's own held-out
   evaluation runs in the same batch. Train S_0 on D_0.
2. iteration i >= 1: ``episodes_per_iteration`` episodes, each driven by the
   expert with probability beta_i (exactly round(beta_i * E) of them) and by
   S_{i-1} otherwise (through PolicyRuntime, as on the robot); every visited
   state is labelled by the expert, D_i = D_{i-1} + new labels; S_i is trained
   from scratch on D_i. S_{i-1}'s held-out evaluation runs in the same batch.
3. BC baseline: more expert-driven episodes (the first ones are D_0's) until
   there are as many expert-only labels as DAgger has at each iteration; BC_i is
   the same network and training on the first |D_i| of them (BC_0 = S_0).
4. Every S_i and BC_i is evaluated on the same held-out seeds (a seed stream
   disjoint from training): success rate, consecutive successes, drops,
   final rotation error, and the action error against the expert on states
   the student itself visits.

Results: ``<out>/results.json`` (and per-stage JSON), students as
``<out>/<stage>/student.onnx`` (exported through the contract exporter) and
``student.pt``.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..config import to_dict
from ..perception import PerceptionConfig, load_perception_config
from ..policy.export import export_policy
from ..sim.randomization import as_randomization_config
from .config import DistillConfig
from .dataset import Dataset, beta_schedule, episode_drivers
from .backends import describe_backend, make_backend
from .rollout import EpisodeData, EpisodeJob, WorkerSetup, run_episodes, summaries, summarize
from .student import build_student, mapping_from_contract
from .train import train_student

BC_INDEX_OFFSET = 1_000_000          # BC's extra expert episodes: indices far from DAgger's


class Distiller:
    """One distillation run in ``out_dir`` (see the module docstring)."""

    def __init__(self, config: DistillConfig, out_dir: str | Path, progress: bool = True,
                 log: Callable[[str], None] = print, perception: PerceptionConfig | None = None,
                 ray_address: str | None = None):
        self.config = config
        self.out = Path(out_dir)
        self.progress = progress
        self.log = log
        c = config
        self.sim_config = c.build_sim_config()
        self.randomization = as_randomization_config(c.randomization_value())
        # loaded once (None: config/perception.yaml): a run is consistent even if the file changes
        self.perception = perception if perception is not None else load_perception_config()
        self.tracking = c.tracker_config()          # pose students: the tracker they see the object through
        self.setup = WorkerSetup(self.sim_config, self.randomization, c.expert, c.student.history_length,
                                 self.perception, student=c.student if c.student.kind == "pose" else None,
                                 tracking=self.tracking)
        # where episodes run (local processes, or Ray with ray_address); the data do not depend on it
        self.executor = make_backend(c.workers, ray_address)
        self.backend = describe_backend(self.executor, c.workers)
        from ..sim.env import ReorientEnv
        env = ReorientEnv(self.sim_config, self.randomization, seed=0)
        self.default_pose = env.initial_joint_positions
        self.control_rate_hz = 1.0 / env.policy_period_s
        self.hand = env.hand
        self.object_origin = env.config.mount_config().object_position
        env.close()
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ bookkeeping
    def _check_out_dir(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        stamp = self.out / "config.json"
        digest = self.config.digest()
        perception = self.perception.config_hash()
        # what else changes the data: the randomization and (pose students) the tracker config
        inputs = {"randomization_config_hash": self.randomization.config_hash()}
        if self.tracking is not None:
            from ..config import config_hash
            inputs["tracking_config_hash"] = config_hash(self.tracking)
        if stamp.is_file():
            previous = json.loads(stamp.read_text())
            if previous.get("digest") != digest:
                raise RuntimeError(f"{self.out} holds a run of a different configuration (digest "
                                   f"{previous.get('digest')} vs {digest}); use another --out or delete it")
            if previous.get("perception_config_hash") != perception:
                raise RuntimeError(f"{self.out} was collected with perception config "
                                   f"{previous.get('perception_config_hash')}, config/perception.yaml is now "
                                   f"{perception}: its clouds are not what the student would see; start a new run")
            for key, value in inputs.items():      # runs stamped before a key existed are not checked on it
                if key in previous and previous[key] != value:
                    raise RuntimeError(f"{self.out} was collected with {key.replace('_', ' ')} {previous[key]}, "
                                       f"now {value}: its episodes are not this configuration's; start a new run")
        else:
            stamp.write_text(json.dumps({"digest": digest, "perception_config_hash": perception, **inputs,
                                         "config": to_dict(self.config)}, indent=1))

    def _episodes(self, tasks: list[tuple[EpisodeJob, bytes | None]], what: str) -> list[EpisodeData]:
        t0 = time.perf_counter()
        out = run_episodes(self.setup, tasks, workers=self.config.workers, progress=self.progress,
                           description=what, executor=self.executor)
        self.timings[what] = self.timings.get(what, 0.0) + time.perf_counter() - t0
        return out

    def _stage(self, name: str) -> Path:
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def _write(path: Path, data: Any) -> None:
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps(data, indent=1, default=_json_default))
        tmp.replace(path)

    # ------------------------------------------------------------------ jobs
    def _training_jobs(self, iteration: int, first_index: int, drivers: list[str]) -> list[EpisodeJob]:
        jobs = [EpisodeJob(first_index + k, self.config.seed, driver, self.config.episode_steps)
                for k, driver in enumerate(drivers)]
        return self._held_out_check(jobs)

    def _held_out_check(self, jobs: list[EpisodeJob]) -> list[EpisodeJob]:
        """Training episodes never reuse an evaluation episode's seed (held-out means held out)."""
        e = self.config.evaluation
        held_out = {job.episode_seed for job in self._evaluation_jobs("student") + self._evaluation_jobs("expert")}
        clash = [job.index for job in jobs if job.episode_seed in held_out]
        if clash:
            raise RuntimeError(f"training episodes {clash} would reuse held-out seeds (evaluation seed {e.seed})")
        return jobs

    def _evaluation_jobs(self, driver: str) -> list[EpisodeJob]:
        e = self.config.evaluation
        if driver == "expert":
            return [EpisodeJob(k, e.seed, "expert", e.max_steps, render=False, record=False)
                    for k in range(e.expert_episodes)]
        return [EpisodeJob(k, e.seed, "student", e.max_steps, label_every=e.label_every, record=False)
                for k in range(e.episodes)]

    def _first_index(self, iteration: int) -> int:
        d = self.config.dagger
        return 0 if iteration == 0 else d.initial_episodes + (iteration - 1) * d.episodes_per_iteration

    # ------------------------------------------------------------------ students
    def _train(self, stage: str, data: Dataset) -> tuple[bytes, dict]:
        """Train a fresh student on ``data``, export it; cached in ``<out>/<stage>/``."""
        folder = self._stage(stage)
        onnx_path, report_path = folder / "student.onnx", folder / "train.json"
        if onnx_path.is_file() and report_path.is_file():
            return onnx_path.read_bytes(), json.loads(report_path.read_text())
        t0 = time.perf_counter()
        try:
            return self._train_now(stage, data, folder, onnx_path, report_path)
        finally:
            self.timings["training"] = self.timings.get("training", 0.0) + time.perf_counter() - t0

    def _train_now(self, stage: str, data: Dataset, folder: Path, onnx_path: Path, report_path: Path
                   ) -> tuple[bytes, dict]:
        c = self.config
        if c.student.kind == "pose":
            return self._train_pose(stage, data, folder, onnx_path, report_path)
        module, contract = build_student(
            c.student, self.default_pose, seed=c.train.seed, control_rate_hz=self.control_rate_hz,
            hand=self.hand, perception=self.perception,
            provenance={"distill": {"config": c.name, "config_digest": c.digest(), "stage": stage,
                                    "labels": len(data)}})
        mapping = mapping_from_contract(contract, self.hand)
        result = train_student(module, data, mapping, c.train, progress=self.progress, description=f"train {stage}")
        torch.save(module.state_dict(), folder / "student.pt")
        report = export_policy(module, contract, onnx_path)
        info = {"stage": stage, "labels": len(data), **result.to_json(),
                "export_max_abs_diff": report.max_abs_diff}
        self._write(report_path, info)
        self.log(f"{stage}: {len(data)} labels, loss {result.train_loss[0]:.4f} -> {result.train_loss[-1]:.4f} "
                 f"(validation {result.validation_loss[-1]:.4f}), {result.seconds:.0f} s")
        return onnx_path.read_bytes(), info

    def _train_pose(self, stage: str, data: Dataset, folder: Path, onnx_path: Path, report_path: Path
                    ) -> tuple[bytes, dict]:
        """The pose student (contract v2): the same training, exported with its v2 contract."""
        from .pose_student import (build_pose_student, delta_mapping, export_pose_student, pose_student_description,
                                   teacher_phrase)
        c = self.config
        module, contract = build_pose_student(
            c.student, self.hand, self.object_origin, seed=c.train.seed, control_rate_hz=self.control_rate_hz,
            description=pose_student_description(teacher_phrase(c.expert)),
            provenance={"distill": {"config": c.name, "config_digest": c.digest(), "stage": stage,
                                    "labels": len(data)}})
        variants = None
        if c.student.symmetry_augmentation:
            from ..objects.models import load_object_model
            from .pose_student import symmetry_variants
            variants = symmetry_variants(contract, data.obs, load_object_model(self.sim_config.objects[0]).symmetry)
        starts = None
        if c.student.recurrent_size:              # sequences: cut where the runtime resets the state
            from .pose_student import sequence_starts
            from .train import episode_keys
            starts = sequence_starts(contract, data.obs, episode_keys(data))
        result = train_student(module, data, delta_mapping(contract, self.hand), c.train, progress=self.progress,
                               description=f"train {stage}", obs_variants=variants, sequence_starts=starts)
        torch.save(module.state_dict(), folder / "student.pt")
        _, report = export_pose_student(module, contract, onnx_path)
        info = {"stage": stage, "labels": len(data), **result.to_json(), "export_max_abs_diff": report.max_abs_diff}
        self._write(report_path, info)
        self.log(f"{stage}: {len(data)} labels, loss {result.train_loss[0]:.4f} -> {result.train_loss[-1]:.4f} "
                 f"(validation {result.validation_loss[-1]:.4f}), {result.seconds:.0f} s")
        return onnx_path.read_bytes(), info

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        c, d = self.config, self.config.dagger
        self._check_out_dir()
        started = time.perf_counter()
        results: dict[str, Any] = {"config": c.name, "config_digest": c.digest(), "iterations": []}
        datasets: list[Dataset] = []
        model: bytes | None = None
        evaluations: dict[str, dict] = {}

        expert_eval_path = self.out / "expert_evaluation.json"
        for i in range(d.iterations):
            folder = self._stage(f"iter_{i:02d}")
            data_path = folder / "data.npz"
            beta = beta_schedule(i, d.beta_initial, d.beta_decay)
            episodes = d.initial_episodes if i == 0 else d.episodes_per_iteration
            drivers = ["expert"] * episodes if i == 0 else episode_drivers(i, episodes, beta, c.seed)
            pending_eval = f"dagger_{i - 1:02d}" if i > 0 else None
            tasks: list[tuple[EpisodeJob, bytes | None]] = []
            collect = not data_path.is_file()
            if collect:
                jobs = self._training_jobs(i, self._first_index(i), drivers)
                # with a learner prior (MPC-guided policy search) the learner acts alongside the expert in
                # every episode, so each label starts from the learner's action
                guided = c.expert.learner_prior > 0
                tasks += [(job, model if job.driver == "student" or guided else None) for job in jobs]
            n_collect = len(tasks)
            if i == 0 and not expert_eval_path.is_file():
                tasks += [(job, None) for job in self._evaluation_jobs("expert")]
            eval_path = self.out / f"{pending_eval}_evaluation.json" if pending_eval else None
            if eval_path is not None and not eval_path.is_file():
                tasks += [(job, model) for job in self._evaluation_jobs("student")]
            if tasks:
                episodes_out = self._episodes(tasks, f"iteration {i}")
                if collect:             # data.npz last: it marks the iteration as collected
                    new = episodes_out[:n_collect]
                    self._write(folder / "episodes.json", summaries(new))
                    Dataset.from_episodes(new, i).save(data_path)
                rest = episodes_out[n_collect:]
                if i == 0 and not expert_eval_path.is_file():
                    k = c.evaluation.expert_episodes
                    self._write(expert_eval_path, {"metrics": summarize(rest[:k]), "episodes": summaries(rest[:k])})
                    rest = rest[k:]
                if eval_path is not None and rest:
                    self._write(eval_path, {"metrics": summarize(rest), "episodes": summaries(rest)})
            datasets.append(Dataset.load(data_path))
            aggregate = Dataset.concat(datasets)
            model, train_info = self._train(f"dagger_{i:02d}", aggregate)
            collected = json.loads((folder / "episodes.json").read_text())
            results["iterations"].append({
                "iteration": i, "beta": beta, "drivers": drivers, "new_labels": len(datasets[-1]),
                "labels": len(aggregate), "collection": summarize_json(collected), "train": _short(train_info)})
            if eval_path is not None:
                evaluations[pending_eval] = json.loads(eval_path.read_text())["metrics"]
            self.log(f"iteration {i}: beta {beta:.2f}, {len(datasets[-1])} new labels, {len(aggregate)} in total")

        # final DAgger evaluation + BC pool in one batch
        final = f"dagger_{d.iterations - 1:02d}"
        label_counts = [r["labels"] for r in results["iterations"]]
        bc_pool = self._bc_pool(label_counts, datasets[0], final_eval=(final, model))
        evaluations[final] = json.loads((self.out / f"{final}_evaluation.json").read_text())["metrics"]
        results["expert"] = json.loads(expert_eval_path.read_text())["metrics"]

        if c.bc_baseline:
            bc_models: dict[str, bytes] = {}
            for i, count in enumerate(label_counts):
                if i == 0:
                    continue                       # BC_0 is S_0 (the same data and training)
                bc_models[f"bc_{i:02d}"], _ = self._train(f"bc_{i:02d}", bc_pool.head(count))
            tasks = []
            names = []
            for name, blob in bc_models.items():
                if not (self.out / f"{name}_evaluation.json").is_file():
                    names.append(name)
                    tasks += [(job, blob) for job in self._evaluation_jobs("student")]
            if tasks:
                out = self._episodes(tasks, "evaluate BC")
                per = len(self._evaluation_jobs("student"))
                for k, name in enumerate(names):
                    part = out[k * per:(k + 1) * per]
                    self._write(self.out / f"{name}_evaluation.json",
                                {"metrics": summarize(part), "episodes": summaries(part)})
            for name in bc_models:
                evaluations[name] = json.loads((self.out / f"{name}_evaluation.json").read_text())["metrics"]
            evaluations["bc_00"] = evaluations["dagger_00"]
        for entry in results["iterations"]:
            i = entry["iteration"]
            entry["dagger"] = evaluations[f"dagger_{i:02d}"]
            if c.bc_baseline:
                entry["bc"] = evaluations[f"bc_{i:02d}"]
                entry["bc_train"] = _short(json.loads((self.out / (f"bc_{i:02d}" if i else "dagger_00")
                                                       / "train.json").read_text()))
        results["final_student"] = str(self.out / final / "student.onnx")
        results["perception_config_hash"] = self.perception.config_hash()
        results["seconds"] = time.perf_counter() - started          # this invocation
        results["timings"] = self.timings
        results["workers"] = c.workers
        results["backend"] = self.backend
        # wall time summed over every invocation that did work on this run (a resumed run adds up)
        ledger_path = self.out / "wall_time.json"
        ledger = json.loads(ledger_path.read_text()) if ledger_path.is_file() else []
        if self.timings:
            ledger.append({"seconds": results["seconds"], "workers": c.workers, "backend": self.backend,
                           "stages": self.timings})
            self._write(ledger_path, ledger)
        results["total_seconds"] = float(sum(entry["seconds"] for entry in ledger))
        self._write(self.out / "results.json", results)
        return results

    def _bc_pool(self, label_counts: list[int], first: Dataset, final_eval: tuple[str, bytes]) -> Dataset:
        """Expert-only labels for BC: D_0, then more expert episodes until |pool| >= max |D_i|."""
        c = self.config
        pool_path = self.out / "bc" / "data.npz"
        needed = max(label_counts) if c.bc_baseline else 0
        parts = [first]
        next_index = BC_INDEX_OFFSET
        if pool_path.is_file():
            parts.append(Dataset.load(pool_path))
            next_index = int(parts[-1].episode.max()) + 1
        name, model = final_eval
        eval_path = self.out / f"{name}_evaluation.json"
        per_episode = max(1.0, len(first) / max(1, c.dagger.initial_episodes))
        while True:
            have = sum(len(p) for p in parts)
            missing = max(0, needed - have)
            tasks: list[tuple[EpisodeJob, bytes | None]] = []
            count = 0
            if missing:
                count = max(1, math.ceil(1.1 * missing / per_episode))
                extra = self._held_out_check([EpisodeJob(next_index + k, c.seed, "expert", c.episode_steps)
                                              for k in range(count)])
                tasks += [(job, None) for job in extra]
            if not eval_path.is_file():
                tasks += [(job, model) for job in self._evaluation_jobs("student")]
            if not tasks:
                break
            out = self._episodes(tasks, "BC data + final evaluation" if not eval_path.is_file() else "BC data")
            if count:
                parts.append(Dataset.from_episodes(out[:count], -1))
                Dataset.concat(parts[1:]).save(pool_path)
                next_index += count
            if not eval_path.is_file():
                rest = out[count:]
                self._write(eval_path, {"metrics": summarize(rest), "episodes": summaries(rest)})
        return Dataset.concat(parts)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None


def summarize_json(episodes: list[dict]) -> dict[str, float]:
    """Collection statistics from stored episode summaries."""
    if not episodes:
        return {}
    return {"episodes": len(episodes),
            "expert_driven": sum(e["driver"] == "expert" for e in episodes),
            "success_rate": float(np.mean([e["successes"] > 0 for e in episodes])),
            "drop_rate": float(np.mean([e["dropped"] for e in episodes])),
            "mean_steps": float(np.mean([e["steps"] for e in episodes])),
            "labels": int(sum(e["labels"] for e in episodes))}


def _short(train: dict) -> dict:
    return {"labels": train["labels"], "first_loss": train["train_loss"][0], "final_loss": train["train_loss"][-1],
            "validation_loss": train["validation_loss"][-1], "seconds": train["seconds"]}


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def run_distill(config: DistillConfig, out_dir: str | Path, progress: bool = True,
                log: Callable[[str], None] = print, perception: PerceptionConfig | None = None,
                ray_address: str | None = None) -> dict[str, Any]:
    distiller = Distiller(config, out_dir, progress=progress, log=log, perception=perception,
                          ray_address=ray_address)
    try:
        return distiller.run()
    finally:
        distiller.close()
