"""The aggregated distillation dataset: student inputs (as the runtime feeds them) + expert targets.

DAgger aggregates: every iteration's labelled states are appended, nothing is
dropped. Each sample remembers the iteration and episode it came from and who
drove that episode, so the BC baseline can be cut to exactly the same number
of labels (:meth:`Dataset.head`) and analyses can split by source.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .rollout import EpisodeData

FIELDS = ("points", "joints", "history", "goal", "expert_target", "iteration", "episode", "expert_driven",
          "joint_history", "obs", "base")
OPTIONAL = ("joint_history", "obs", "base")      # absent from datasets recorded before they were kept
DRIVERS = {"expert": 1, "student": 0, "hold": 0}


@dataclass
class Dataset:
    points: np.ndarray          # (S, N, 3) float32
    joints: np.ndarray          # (S, J) float32
    history: np.ndarray         # (S, H, J) float32
    goal: np.ndarray            # (S, 4) float32
    expert_target: np.ndarray   # (S, J) float32 rad
    iteration: np.ndarray       # (S,) int32: DAgger iteration that collected it
    episode: np.ndarray         # (S,) int64: episode index in its seed stream
    expert_driven: np.ndarray   # (S,) bool: the expert drove the episode
    joint_history: np.ndarray | None = None   # (S, H, J) float32 measured-pose windows; None in datasets
                                              # recorded before they were kept (students that need it refuse)
    obs: np.ndarray | None = None             # (S, D) float32: a pose student's term vector (point cloud: D = 0)
    base: np.ndarray | None = None            # (S, J) float32: the target a pose student's delta adds to

    def __post_init__(self) -> None:
        if self.joint_history is None:
            self.joint_history = np.full((len(self.points), *self.history.shape[1:]), np.nan, np.float32)
        if self.obs is None:
            self.obs = np.zeros((len(self.points), 0), np.float32)
        if self.base is None:
            self.base = np.zeros((len(self.points), 0), np.float32)
        sizes = {name: len(getattr(self, name)) for name in FIELDS}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"dataset fields disagree in length: {sizes}")

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @classmethod
    def from_episodes(cls, episodes: Sequence[EpisodeData], iteration: int) -> "Dataset":
        if not episodes:
            raise ValueError("no episodes")
        parts = [e for e in episodes]
        cat = lambda key: np.concatenate([getattr(e, key) for e in parts])   # noqa: E731
        counts = [e.labels for e in parts]
        windows = None if any(e.joint_history is None for e in parts) else cat("joint_history")   # None: NaN-filled
        pose = all(e.obs is not None for e in parts)
        if not pose and any(e.obs is not None for e in parts):
            raise ValueError("episodes of a pose student and of a point-cloud student cannot be mixed")
        return cls(points=cat("points"), joints=cat("joints"), history=cat("history"), goal=cat("goal"),
                   expert_target=cat("expert_target"), joint_history=windows,
                   obs=cat("obs") if pose else None, base=cat("base") if pose else None,
                   iteration=np.full(sum(counts), iteration, np.int32),
                   episode=np.repeat([e.job.index for e in parts], counts).astype(np.int64),
                   expert_driven=np.repeat([DRIVERS[e.job.driver] == 1 for e in parts], counts).astype(bool))

    @classmethod
    def concat(cls, parts: Sequence["Dataset"]) -> "Dataset":
        parts = [p for p in parts if p is not None]
        if not parts:
            raise ValueError("nothing to concatenate")
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in FIELDS})

    def head(self, count: int) -> "Dataset":
        """The first ``count`` samples (collection order): BC cut to DAgger's label count."""
        if count > len(self):
            raise ValueError(f"asked for {count} samples, the dataset has {len(self)}")
        return Dataset(**{name: getattr(self, name)[:count] for name in FIELDS})

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial.npz")
        np.savez(tmp, **{name: getattr(self, name) for name in FIELDS})
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "Dataset":
        with np.load(path) as data:
            missing = [name for name in FIELDS if name not in data and name not in OPTIONAL]
            if missing:
                raise ValueError(f"{path}: not a distillation dataset (missing {missing})")
            return cls(**{name: data[name] for name in FIELDS if name in data})


def beta_schedule(iteration: int, initial: float, decay: float) -> float:
    """Probability that the expert drives an episode: 1 at iteration 0, then initial * decay^(i-1)."""
    if iteration < 0:
        raise ValueError("iteration must be >= 0")
    if not (0.0 <= initial <= 1.0 and 0.0 <= decay <= 1.0):
        raise ValueError(f"beta initial and decay must be in [0, 1], got {initial}, {decay}")
    return 1.0 if iteration == 0 else float(initial * decay ** (iteration - 1))


def episode_drivers(iteration: int, episodes: int, beta: float, seed: int) -> list[str]:
    """Who drives each episode of an iteration: exactly round(beta * episodes) expert episodes, placed by seed."""
    experts = int(round(beta * episodes))
    order = np.random.default_rng([int(seed), int(iteration), 0xBE7A]).permutation(episodes)
    chosen = set(order[:experts].tolist())
    return ["expert" if k in chosen else "student" for k in range(episodes)]
