"""Supervised training of the student on (runtime inputs, expert target) pairs.

The loss is the squared joint-target error in radians *after* the contract's
action mapping (``default + scale * action``), i.e. what the hand would be
commanded, averaged over joints. Labels are the expert's targets mapped into
action space with :class:`~.student.ActionMapping`; the graph ends in tanh, so
labels stay inside (-1, 1) by construction. Point noise (Gaussian, per point)
is the only augmentation; it is applied on top of the simulated sensor noise.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .dataset import Dataset
from .student import ActionMapping, DistilledStudent


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    point_noise_std: float = 0.002      # m, augmentation
    final_lr_fraction: float = 0.1      # cosine decay to this fraction of learning_rate
    validation_fraction: float = 0.1    # held-out episodes (by episode index) for the validation loss
    threads: int = 2                    # torch intra-op threads
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("train: need epochs >= 1, batch_size >= 1, learning_rate > 0")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError("train: validation_fraction must be in [0, 1)")


@dataclass
class TrainResult:
    train_loss: list[float] = field(default_factory=list)        # per epoch, rad^2 (mean over joints)
    validation_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0
    validation_samples: int = 0

    def to_json(self) -> dict:
        return {"train_loss": self.train_loss, "validation_loss": self.validation_loss,
                "seconds": self.seconds, "samples": self.samples, "validation_samples": self.validation_samples}


def _labels(data: Dataset, index: np.ndarray, mapping) -> np.ndarray:
    """Raw-action labels: the action whose target is the expert's (a pose student's: from its base)."""
    if not len(index):
        return np.zeros((0, data.expert_target.shape[1]), np.float32)
    if isinstance(mapping, ActionMapping):
        return np.stack([mapping.action(t) for t in data.expert_target[index]])
    return mapping.labels(data.expert_target[index], data.base[index])


def _tensors(data: Dataset, index: np.ndarray, mapping) -> dict[str, torch.Tensor]:
    labels = _labels(data, index, mapping)
    return {"obs": torch.from_numpy(np.ascontiguousarray(data.obs[index])),
            "points": torch.from_numpy(np.ascontiguousarray(data.points[index])),
            "joints": torch.from_numpy(np.ascontiguousarray(data.joints[index])),
            "history": torch.from_numpy(np.ascontiguousarray(data.history[index])),
            "joint_history": torch.from_numpy(np.ascontiguousarray(data.joint_history[index])),
            "goal": torch.from_numpy(np.ascontiguousarray(data.goal[index])),
            "label": torch.from_numpy(labels.astype(np.float32))}


def _student_args(module: DistilledStudent, tensors: dict[str, torch.Tensor], rows, points: torch.Tensor
                  ) -> tuple[torch.Tensor, ...]:
    """The module's inputs in the contract's order for the rows ``rows``."""
    if getattr(module, "input_kind", "points") == "pose":
        return (tensors["obs"][rows],)
    args = [points, tensors["joints"][rows], tensors["history"][rows]]
    if module.architecture.joint_position_history:
        args.append(tensors["joint_history"][rows])
    return (*args, tensors["goal"][rows])


def split_by_episode(data: Dataset, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation sample indices, whole episodes on one side (no leakage between steps)."""
    keys = data.iteration.astype(np.int64) * 1_000_000_007 + data.episode
    unique = np.unique(keys)
    count = int(math.floor(fraction * len(unique)))
    if fraction > 0 and len(unique) >= 4:
        count = max(1, count)
    held = set(np.random.default_rng([seed, 0x5A1]).permutation(unique)[:count].tolist())
    is_val = np.array([k in held for k in keys], dtype=bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def train_student(module: torch.nn.Module, data: Dataset, mapping, config: TrainConfig,
                  progress: bool = False, description: str = "train", obs_variants: np.ndarray | None = None
                  ) -> TrainResult:
    """Train ``module`` in place (seeded: same data + config -> same weights).

    ``module``: a point-cloud DistilledStudent with its ActionMapping, or a pose
    student (learning.pose_student) with its DeltaMapping; the loss is the squared
    target error in radians either way. Point noise augments clouds only;
    ``obs_variants`` (K, S, D), a pose student's term vectors with the tracked
    orientation replaced by each symmetric equivalent: each training sample draws
    one of them per epoch (the validation loss uses the recorded rows).
    """
    pose = getattr(module, "input_kind", "points") == "pose"
    if pose and data.obs.shape[1] == 0:
        raise ValueError("a pose student needs a dataset recorded with student.kind pose (no term vectors here)")
    if not pose and data.points.shape[1] == 0:
        raise ValueError("a point-cloud student needs a dataset with clouds (this one was recorded for a pose "
                         "student)")
    from tqdm import tqdm

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = split_by_episode(data, config.validation_fraction, config.seed)
    if not pose and module.architecture.joint_position_history and np.isnan(data.joint_history).any():
        raise ValueError("student.joint_position_history: this dataset has no measured-pose windows "
                         "(recorded before they were kept); collect it again")
    train, val = _tensors(data, train_idx, mapping), _tensors(data, val_idx, mapping)
    variants = None
    if obs_variants is not None:
        if not pose or obs_variants.shape[1:] != data.obs.shape:
            raise ValueError(f"obs_variants {obs_variants.shape} do not match the dataset's term vectors "
                             f"{data.obs.shape}")
        variants = torch.from_numpy(np.ascontiguousarray(obs_variants[:, train_idx]))
    scale = torch.tensor(mapping.scale, dtype=torch.float32)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    batches_per_epoch = max(1, math.ceil(len(train_idx) / config.batch_size))
    total = config.epochs * batches_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: config.final_lr_fraction + (
        1 - config.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * min(k, total) / total)))
    result = TrainResult(samples=len(train_idx), validation_samples=len(val_idx))
    t0 = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=description, unit="epoch", disable=not progress, dynamic_ncols=True)
    for _ in bar:
        module.train()
        order = rng.permutation(len(train_idx))
        running, seen = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = torch.from_numpy(order[start:start + config.batch_size])
            points = train["points"][batch]
            if config.point_noise_std > 0 and not pose:
                points = points + config.point_noise_std * torch.from_numpy(
                    rng.standard_normal(points.shape).astype(np.float32))
            if variants is not None:                 # each sample: one symmetric equivalent of its orientation
                pick = torch.from_numpy(rng.integers(0, len(variants), len(batch)))
                predicted = module(variants[pick, batch])
            else:
                predicted = module(*_student_args(module, train, batch, points))
            loss = (((predicted - train["label"][batch]) * scale) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += float(loss.detach()) * len(batch)
            seen += len(batch)
        result.train_loss.append(running / max(1, seen))
        result.validation_loss.append(evaluate_loss(module, val, scale, config.batch_size * 4))
        bar.set_postfix(loss=f"{result.train_loss[-1]:.4f}", val=f"{result.validation_loss[-1]:.4f}")
    bar.close()
    module.eval()
    result.seconds = time.perf_counter() - t0
    return result


@torch.no_grad()
def evaluate_loss(module: DistilledStudent, tensors: dict[str, torch.Tensor], scale: torch.Tensor,
                  batch_size: int) -> float:
    n = len(tensors["label"])
    if n == 0:
        return float("nan")
    module.eval()
    total = 0.0
    for start in range(0, n, batch_size):
        s = slice(start, start + batch_size)
        predicted = module(*_student_args(module, tensors, s, tensors["points"][s]))
        total += float((((predicted - tensors["label"][s]) * scale) ** 2).mean()) * len(tensors["label"][s])
    return total / n
