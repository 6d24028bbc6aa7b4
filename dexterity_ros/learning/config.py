"""Typed distillation config (config/experiments/distill_small.yaml, config/experiments/distill_full.yaml; section ``distill``)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ..config import ConfigError, from_dict, load_section_with_base, to_dict
from ..paths import config_path
from .expert import ExpertConfig
from .student import StudentArchitecture
from .train import TrainConfig


@dataclass(frozen=True)
class DaggerConfig:
    iterations: int = 4                  # including iteration 0 (expert-driven rollouts only)
    initial_episodes: int = 8            # iteration 0
    episodes_per_iteration: int = 8      # iterations >= 1
    beta_initial: float = 0.5            # P(expert drives an episode) at iteration 1
    beta_decay: float = 0.5              # beta_i = beta_initial * beta_decay^(i-1)

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.initial_episodes < 1 or self.episodes_per_iteration < 1:
            raise ValueError("dagger: iterations, initial_episodes and episodes_per_iteration must be >= 1")


@dataclass(frozen=True)
class EvaluationConfig:
    episodes: int = 10                   # held-out episodes per evaluated student
    max_steps: int = 192                 # per episode (the sim's own limits still apply)
    label_every: int = 2                 # expert labels every k-th student step (action error); 0: none
    expert_episodes: int = 10            # held-out episodes for the expert's own metrics
    seed: int = 1000                     # held-out seed stream (disjoint from the training seed)


@dataclass(frozen=True)
class TaskOverrides:
    """This run's changes to the sim config's ``task`` section (None: keep the sim config's value)."""

    goal_axis: Literal["any", "palm_normal"] | None = None
    min_goal_distance_rad: float | None = None
    max_goal_distance_rad: float | None = None

    def apply(self, sim_config):
        """The sim config with these task values in (validated by TaskConfig)."""
        changes = {f"task__{k}": v for k, v in to_dict(self).items() if v is not None}
        return sim_config.with_overrides(**changes) if changes else sim_config


# (section, key) -> the default that reproduces the behaviour from before the option existed;
# key None: the whole section
LATER_OPTIONS = {("task", None): to_dict(TaskOverrides()), ("expert", "plans_per_action"): 1,
                 ("expert", "hold"): "applied", ("student", "residual"): 0.0, ("objects", None): [],
                 ("expert", "common_noise"): False, ("student", "goal_object"): "",
                 ("student", "joint_position_history"): False, ("student", "kind"): "point_cloud",
                 ("student", "symmetry_augmentation"): False, ("tracking", None): "",
                 ("student", "recurrent_size"): 0, ("train", "bptt_steps"): 16, ("student", "pose_source"): "tracker",
                 ("student", "object_velocity"): False, ("expert", "gait"): "", ("expert", "learner_prior"): 0.0,
                 ("expert", "knowledge"): "privileged"}


@dataclass(frozen=True)
class DistillConfig:
    name: str = "small"
    seed: int = 0                        # training seed stream: episode seeds, driver draws
    workers: int = 2                     # simulation worker processes (0: in-process)
    sim_config: str = ""                 # empty: config/sim.yaml
    randomization: str = ""              # empty: config/randomization.yaml
    tracking: str = ""                   # student.kind pose: the pose tracker's YAML (empty: config/tracking.yaml)
    task: TaskOverrides = field(default_factory=TaskOverrides)
    objects: list[str] = field(default_factory=list)   # empty: the sim config's objects; else a subset of them
    episode_steps: int = 96              # max steps per training episode
    bc_baseline: bool = True             # also train BC students with DAgger's label counts
    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    student: StudentArchitecture = field(default_factory=StudentArchitecture)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.episode_steps < 1:
            raise ValueError("episode_steps must be >= 1")
        if self.evaluation.seed == self.seed:
            raise ValueError(f"evaluation.seed must differ from seed ({self.seed}): held-out seeds must be disjoint")
        if self.student.symmetry_augmentation and len(self.objects) != 1:
            raise ValueError(f"student.symmetry_augmentation uses one object's symmetry: set objects: [NAME] "
                             f"(got {list(self.objects)})")
        if self.student.goal_object and list(self.objects) != [self.student.goal_object]:
            raise ValueError(f"student.goal_object {self.student.goal_object!r} makes a model for that object only: "
                             f"set objects: [{self.student.goal_object}] (got {list(self.objects)})")

    def digest(self, ignore: tuple[str, ...] = ("workers",)) -> str:
        """Identity of everything that changes results (the worker count does not).

        Options added after runs were made are left out while at their default (which
        is the behaviour before they existed), so those runs keep their digest and resume.
        """
        data = {k: v for k, v in to_dict(self).items() if k not in ignore}
        for (section, key), default in LATER_OPTIONS.items():
            if key is None and data.get(section) == default:
                del data[section]
            elif key is not None and section in data and data[section].get(key) == default:
                del data[section][key]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def with_workers(self, workers: int) -> "DistillConfig":
        return replace(self, workers=workers)

    def with_seed(self, seed: int) -> "DistillConfig":
        """The same run with another training seed (episodes, drivers, networks); held-out seeds kept."""
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return replace(self, seed=seed, train=replace(self.train, seed=seed))

    def sim_config_value(self):
        return _config_file(self.sim_config)

    def build_sim_config(self):
        """The SimConfig every episode of this run uses: the sim config file plus ``task`` and ``objects``."""
        from ..sim.sim_config import as_sim_config
        sim_config = self.task.apply(as_sim_config(self.sim_config_value()))
        if self.objects:
            unknown = sorted(set(self.objects) - set(sim_config.objects))
            if unknown:
                raise ValueError(f"distill.objects: {unknown} not among the sim config's objects {list(sim_config.objects)}")
            sim_config = sim_config.with_overrides(objects=tuple(self.objects))
        return sim_config

    def randomization_value(self):
        return _config_file(self.randomization)

    def tracker_config(self):
        """The pose tracker's config for ``student.kind: pose`` (None for a point-cloud student)."""
        if self.student.kind != "pose":
            return None
        from ..tracking.tracker import load_tracker_config
        return load_tracker_config(_config_file(self.tracking))


def _config_file(value: str):
    if not value:
        return None
    path = Path(value)
    return str(path if path.is_absolute() or path.exists() else config_path(value))


def load_distill_config(path: str | Path) -> DistillConfig:
    """An experiment file (config/experiments/); ``distill.base: OTHER.yaml`` inherits another one."""
    path = Path(path)
    if not path.is_file() and not path.is_absolute() and config_path(str(path)).is_file():
        path = config_path(str(path))
    data = load_section_with_base(path, "distill")
    try:
        return from_dict(DistillConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def with_overrides(config: DistillConfig, assignments: list[str]) -> DistillConfig:
    """``config`` with ``SECTION.KEY=VALUE`` assignments applied (values parsed as YAML), re-validated.

    For one-off measurements (``dexterity-ros evaluate --set expert.temperature=2``) without a copy of
    the experiment file; a key that does not exist, or a value of the wrong type, is refused like in a file.
    """
    import yaml

    data = to_dict(config)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {assignment!r}: expected SECTION.KEY=VALUE, e.g. expert.temperature=2")
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"--set {assignment!r}: '{part}' is not a section of the experiment config")
            node = node[part]
        if leaf not in node:
            raise ConfigError(f"--set {assignment!r}: unknown key '{key.strip()}'")
        node[leaf] = yaml.safe_load(text)
    try:
        return from_dict(DistillConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"--set: {exc}") from None
