"""Supervised training of the student on (runtime inputs, expert target) pairs.

The loss is the squared joint-target error in radians *after* the contract's
action mapping (``default + scale * action``), i.e. what the hand would be
commanded, averaged over joints. Labels are the expert's targets mapped into
action space with :class:`~.student.ActionMapping`; the graph ends in tanh, so
labels stay inside (-1, 1) by construction. Point noise (Gaussian, per point)
is the only augmentation; it is applied on top of the simulated sensor noise.

A recurrent pose student (``student.recurrent_size`` > 0) trains on sequences
instead of shuffled samples (:func:`train_recurrent`): truncated backpropagation
through time, state carried across chunks and reset where the runtime resets it.
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
    bptt_steps: int = 16                # recurrent students: steps per truncated-BPTT chunk (the state is
                                        # carried into the next chunk of its sequence, detached); a batch holds
                                        # max(1, batch_size // bptt_steps) sequences. Unused by feed-forward ones

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("train: need epochs >= 1, batch_size >= 1, learning_rate > 0")
        if self.bptt_steps < 1:
            raise ValueError(f"train: bptt_steps must be >= 1, got {self.bptt_steps}")
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


def episode_keys(data: Dataset) -> np.ndarray:
    """(S,) int64: one value per recorded episode (iteration, episode index)."""
    return data.iteration.astype(np.int64) * 1_000_000_007 + data.episode


def split_by_episode(data: Dataset, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation sample indices, whole episodes on one side (no leakage between steps)."""
    keys = episode_keys(data)
    unique = np.unique(keys)
    count = int(math.floor(fraction * len(unique)))
    if fraction > 0 and len(unique) >= 4:
        count = max(1, count)
    held = set(np.random.default_rng([seed, 0x5A1]).permutation(unique)[:count].tolist())
    is_val = np.array([k in held for k in keys], dtype=bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def train_student(module: torch.nn.Module, data: Dataset, mapping, config: TrainConfig,
                  progress: bool = False, description: str = "train", obs_variants: np.ndarray | None = None,
                  sequence_starts: np.ndarray | None = None) -> TrainResult:
    """Train ``module`` in place (seeded: same data + config -> same weights).

    ``module``: a point-cloud DistilledStudent with its ActionMapping, or a pose
    student (learning.pose_student) with its DeltaMapping; the loss is the squared
    target error in radians either way. Point noise augments clouds only;
    ``obs_variants`` (K, S, D), a pose student's term vectors with the tracked
    orientation replaced by each symmetric equivalent: each training sample draws
    one of them per epoch (the validation loss uses the recorded rows).
    A recurrent pose student goes to :func:`train_recurrent` with
    ``sequence_starts`` (:func:`.pose_student.sequence_starts`).
    """
    if getattr(module, "recurrent_size", 0) > 0:
        if sequence_starts is None:
            raise ValueError("a recurrent student trains on sequences: pass sequence_starts")
        return train_recurrent(module, data, mapping, config, sequence_starts, progress=progress,
                               description=description, obs_variants=obs_variants)
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


# ------------------------------------------------------------------ recurrent (truncated BPTT)
def sequences_of(starts: np.ndarray, index: np.ndarray) -> list[np.ndarray]:
    """The rows ``index`` (ascending, whole episodes) cut into sequences at ``starts``."""
    if not len(index):
        return []
    cuts = np.flatnonzero(starts[index])
    if not len(cuts) or cuts[0] != 0:
        raise ValueError("the first row of an episode must start a sequence")
    return [index[a:b] for a, b in zip(cuts, [*cuts[1:], len(index)])]


def _padded(obs: torch.Tensor, labels: torch.Tensor, rows: list[np.ndarray]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T, D) observations, (B, T, J) labels and a (B, T) mask; ``obs`` per row (S, D), or per row
    and sequence when 3-d (B, S, D: each sequence's own variant)."""
    length = max(len(r) for r in rows)
    x = torch.zeros(len(rows), length, obs.shape[-1])
    y = torch.zeros(len(rows), length, labels.shape[-1])
    mask = torch.zeros(len(rows), length)
    for b, r in enumerate(rows):
        t = torch.from_numpy(r)
        x[b, :len(r)] = obs[b, t] if obs.dim() == 3 else obs[t]
        y[b, :len(r)] = labels[t]
        mask[b, :len(r)] = 1.0
    return x, y, mask


def train_recurrent(module, data: Dataset, mapping, config: TrainConfig, sequence_starts: np.ndarray, *,
                    progress: bool = False, description: str = "train", obs_variants: np.ndarray | None = None
                    ) -> TrainResult:
    """Truncated backpropagation through time on the recorded sequences (seeded, like :func:`train_student`).

    A sequence is one episode's recorded steps in order from one runtime reset
    to the next (``sequence_starts``): exactly the steps over which
    TermPolicyRuntime carries the state, which starts at zeros (the contract's
    initial value) at each of them. Training sequences are shuffled and batched
    ``max(1, batch_size // bptt_steps)`` at a time; each is run in chunks of
    ``bptt_steps`` with one optimizer step per chunk, the state carried into the
    next chunk detached. The learning rate follows the same cosine over the
    epochs. Symmetry augmentation draws one symmetric equivalent per sequence
    and epoch: a tracker that locked onto another equivalent reports the whole
    stream turned by it, and a per-step draw would show the memory an
    orientation that jumps between equivalents every step, which no stream does.
    The validation loss runs whole sequences with the state carried, as the
    runtime does.
    """
    from tqdm import tqdm

    if data.obs.shape[1] == 0:
        raise ValueError("a pose student needs a dataset recorded with student.kind pose (no term vectors here)")
    starts = np.asarray(sequence_starts, dtype=bool)
    if starts.shape != (len(data),):
        raise ValueError(f"sequence_starts has shape {starts.shape}, the dataset {len(data)} rows")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = split_by_episode(data, config.validation_fraction, config.seed)
    train_seqs, val_seqs = sequences_of(starts, train_idx), sequences_of(starts, val_idx)
    obs = torch.from_numpy(np.ascontiguousarray(data.obs))
    labels = torch.from_numpy(np.ascontiguousarray(_labels(data, np.arange(len(data)), mapping), np.float32))
    variants = None
    if obs_variants is not None:
        if obs_variants.shape[1:] != data.obs.shape:
            raise ValueError(f"obs_variants {obs_variants.shape} do not match the dataset's term vectors "
                             f"{data.obs.shape}")
        variants = torch.from_numpy(np.ascontiguousarray(obs_variants))
    scale = torch.tensor(mapping.scale, dtype=torch.float32)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    per_batch = max(1, config.batch_size // config.bptt_steps)
    batches = max(1, math.ceil(len(train_seqs) / per_batch))
    result = TrainResult(samples=len(train_idx), validation_samples=len(val_idx))
    t0 = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=description, unit="epoch", disable=not progress, dynamic_ncols=True)
    for epoch in bar:
        module.train()
        order = rng.permutation(len(train_seqs))
        running, seen = 0.0, 0.0
        for b, start in enumerate(range(0, len(order), per_batch)):
            rows = [train_seqs[k] for k in order[start:start + per_batch]]
            source = obs
            if variants is not None:             # each sequence: one symmetric equivalent of its orientation
                pick = torch.from_numpy(rng.integers(0, len(variants), len(rows)))
                source = variants[pick]
            x, y, mask = _padded(source, labels, rows)
            fraction = (epoch + b / batches) / config.epochs
            for group in optimizer.param_groups:  # the feed-forward schedule, by progress through the epochs
                group["lr"] = config.learning_rate * (config.final_lr_fraction + (1 - config.final_lr_fraction)
                                                      * 0.5 * (1 + math.cos(math.pi * fraction)))
            state = module.initial_state(len(rows))
            for c in range(0, x.shape[1], config.bptt_steps):
                chunk = slice(c, c + config.bptt_steps)
                predicted, state = module.sequence(x[:, chunk], state)
                m = mask[:, chunk]
                error = (((predicted - y[:, chunk]) * scale) ** 2).mean(-1) * m
                loss = error.sum() / m.sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                state = state.detach()
                running += float(error.sum().detach())
                seen += float(m.sum())
        result.train_loss.append(running / max(1.0, seen))
        result.validation_loss.append(sequence_loss(module, obs, labels, val_seqs, scale, per_batch * 4))
        bar.set_postfix(loss=f"{result.train_loss[-1]:.4f}", val=f"{result.validation_loss[-1]:.4f}")
    bar.close()
    module.eval()
    result.seconds = time.perf_counter() - t0
    return result


@torch.no_grad()
def sequence_loss(module, obs: torch.Tensor, labels: torch.Tensor, rows: list[np.ndarray], scale: torch.Tensor,
                  per_batch: int) -> float:
    """Mean squared target error (rad^2) over whole sequences, the state carried from zeros (the runtime's)."""
    if not rows:
        return float("nan")
    module.eval()
    total, count = 0.0, 0.0
    for start in range(0, len(rows), per_batch):
        group = rows[start:start + per_batch]
        x, y, mask = _padded(obs, labels, group)
        predicted, _ = module.sequence(x, module.initial_state(len(group)))
        total += float(((((predicted - y) * scale) ** 2).mean(-1) * mask).sum())
        count += float(mask.sum())
    return total / count
