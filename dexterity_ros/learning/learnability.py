"""Can a student learn this expert at all? Cross-validated predictability of its labels.

DAgger can only distil what a network can predict from the student's inputs. This
measures that directly, before any training run: expert-driven episodes recorded
exactly as a DAgger iteration 0 records them (the pose student's term vector, the
expert's target), then, **across episodes** (whole episodes held out, k folds),
how much of the label's variance is predicted by

* the mean label (R^2 = 0 by construction: the reference),
* ridge regression on the standardised inputs (a linear policy),
* a small MLP (two layers of 64, ELU, weight decay), trained like the students.

The label is what the pose student outputs: the change of the joint target from the
previous target (rad). R^2 <= 0 means no model beats "always output the average
change": the labels carry no structure a student can learn from this many
episodes. The lag-1 autocorrelation of the labels within an episode says whether
the expert's moves are coherent in time (a gait) or step-to-step noise, and the ridge R^2 of
the *average* move over the next k steps (``horizon_r2``) whether at least the expert's drift
over a fraction of a second is predictable when single steps are not.

An expert that picks among fixed candidate moves (``ExpertConfig.fixed_candidates``) is also
measured as a choice (:class:`CandidateChoice`): a student may fail to regress the expert's action
because the average of its picks is "hold", yet still pick well if it scores the candidates and
takes the best-scored one; the expert's recorded rollout costs say what each pick is worth.

Scikit-learn would do the fitting, but it is not a dependency of the package; ridge
is a 5-line closed form in numpy and the MLP uses torch, which the students need anyway.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

RIDGE_LAMBDA = 100.0      # on standardised inputs; chosen from {10, 100} on the pose runs (100 overfits less)
MLP_HIDDEN = (64, 64)
MLP_EPOCHS = 60
MLP_WEIGHT_DECAY = 1e-2
HORIZONS = (4, 16)        # policy steps (1/3 s and 1.3 s at 12 Hz) for the mean future move


@dataclass
class Learnability:
    """Cross-validated R^2 of the expert's labels from the student's inputs (1: fully predictable)."""

    samples: int
    episodes: int
    folds: int
    label_variance: float                 # rad^2, mean over joints
    r2: dict[str, float] = field(default_factory=dict)      # model name -> cross-validated R^2
    lag1_autocorrelation: float = float("nan")
    horizon_r2: dict[int, float] = field(default_factory=dict)   # k -> ridge R^2 of the mean move over k steps
    choice: "CandidateChoice | None" = None   # an expert with fixed candidates: how well the inputs pick among them

    def line(self) -> str:
        models = ", ".join(f"{name} {value:+.2f}" for name, value in self.r2.items())
        return (f"expert label learnability: {self.samples} labels from {self.episodes} episodes, "
                f"{self.folds}-fold by episode: R^2 {models}; label variance {self.label_variance:.4f} rad^2; "
                f"lag-1 autocorrelation {self.lag1_autocorrelation:+.2f}"
                + "".join(f"; mean move over {k} steps: ridge R^2 {v:+.2f}" for k, v in self.horizon_r2.items())
                + (f"\n{self.choice.line()}" if self.choice is not None else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "episodes": self.episodes, "folds": self.folds,
                "label_variance": self.label_variance, "r2": dict(self.r2),
                "lag1_autocorrelation": self.lag1_autocorrelation,
                "horizon_r2": {str(k): v for k, v in self.horizon_r2.items()},
                **({"choice": self.choice.to_dict()} if self.choice is not None else {})}


def ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  lam: float = RIDGE_LAMBDA) -> np.ndarray:
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-3
    a = np.c_[(x_train - mu) / sd, np.ones(len(x_train))]
    b = np.c_[(x_test - mu) / sd, np.ones(len(x_test))]
    weights = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ y_train)
    return b @ weights


def mlp_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0) -> np.ndarray:
    import torch

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-3
    xt = torch.tensor((x_train - mu) / sd, dtype=torch.float32)
    yt = torch.tensor(y_train, dtype=torch.float32)
    layers: list[torch.nn.Module] = []
    width = x_train.shape[1]
    for hidden in MLP_HIDDEN:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ELU()]
        width = hidden
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, y_train.shape[1]))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=MLP_WEIGHT_DECAY)
    for _ in range(MLP_EPOCHS):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), 128):
            batch = order[start:start + 128]
            loss = ((net(xt[batch]) - yt[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return net(torch.tensor((x_test - mu) / sd, dtype=torch.float32)).numpy()


def lag1_autocorrelation(labels: np.ndarray, episode: np.ndarray) -> float:
    """Mean over episodes of sum(y_t . y_{t-1}) / sum(|y_t|^2), labels centred per episode."""
    values = []
    for key in np.unique(episode):
        y = labels[episode == key]
        if len(y) < 3:
            continue
        y = y - y.mean(0)
        energy = float((y * y).sum())
        if energy > 0:
            values.append(float((y[1:] * y[:-1]).sum()) / energy)
    return float(np.mean(values)) if values else float("nan")


def mean_future_move(labels: np.ndarray, episode: np.ndarray, steps: int) -> np.ndarray:
    """Per sample: the mean label over it and the next ``steps - 1`` samples of its episode (fewer at the end)."""
    out = np.empty_like(labels, dtype=np.float64)
    for key in np.unique(episode):
        rows = np.flatnonzero(episode == key)
        sums = np.concatenate([np.zeros((1, labels.shape[1])), np.cumsum(labels[rows], axis=0)])
        ends = np.minimum(np.arange(len(rows)) + steps, len(rows))
        out[rows] = (sums[ends] - sums[:len(rows)]) / (ends - np.arange(len(rows)))[:, None]
    return out


def _episode_folds(inputs: np.ndarray, targets: np.ndarray, episode: np.ndarray, folds: int, seed: int,
                   what: str, targets_name: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Checked float64 ``inputs`` and ``targets`` and the episode ids of each of ``folds`` seeded folds."""
    inputs = np.asarray(inputs, np.float64)
    targets = np.asarray(targets, np.float64)
    if inputs.ndim != 2 or targets.ndim != 2 or len(inputs) != len(targets) or len(targets) != len(episode):
        raise ValueError(f"{what}: inputs (S, D), {targets_name} and episode (S,) must agree in S")
    if not (np.isfinite(inputs).all() and np.isfinite(targets).all()):
        raise ValueError(f"{what}: inputs and {targets_name.split()[0]} must be finite")
    ids = np.unique(episode)
    if len(ids) < folds or folds < 2:
        raise ValueError(f"{what}: {len(ids)} episodes cannot make {folds} folds (need >= 2 folds, "
                         "one episode per fold at least)")
    return inputs, targets, np.array_split(np.random.default_rng(seed).permutation(ids), folds)


def cross_validated_learnability(inputs: np.ndarray, labels: np.ndarray, episode: np.ndarray, *,
                                 folds: int = 4, seed: int = 0, mlp: bool = True,
                                 horizons: tuple[int, ...] = ()) -> Learnability:
    """R^2 of each model on whole held-out episodes (``episode``: one id per sample)."""
    inputs, labels, groups = _episode_folds(inputs, labels, episode, folds, seed, "learnability", "labels (S, J)")
    ids = np.unique(episode)
    models = {"mean": lambda a, b, c: np.repeat(b.mean(0, keepdims=True), len(c), 0), "ridge": ridge_predict}
    if mlp:
        models["mlp"] = lambda a, b, c: mlp_predict(a, b, c, seed)
    squared = {name: np.zeros(len(labels)) for name in models}
    for group in groups:
        test = np.isin(episode, group)
        for name, predict in models.items():
            predicted = predict(inputs[~test], labels[~test], inputs[test])
            squared[name][test] = ((predicted - labels[test]) ** 2).mean(1)
    variance = float(labels.var(0).mean())
    r2 = {name: float(1.0 - err.mean() / variance) if variance > 0 else float("nan") for name, err in squared.items()}
    horizon_r2 = {}
    for steps in horizons:
        smoothed = mean_future_move(labels, episode, steps)
        error = np.zeros(len(labels))
        for group in groups:
            test = np.isin(episode, group)
            error[test] = ((ridge_predict(inputs[~test], smoothed[~test], inputs[test]) - smoothed[test]) ** 2).mean(1)
        spread = float(smoothed.var(0).mean())
        horizon_r2[steps] = float(1.0 - error.mean() / spread) if spread > 0 else float("nan")
    return Learnability(samples=len(labels), episodes=len(ids), folds=folds, label_variance=variance, r2=r2,
                        lag1_autocorrelation=lag1_autocorrelation(labels, episode), horizon_r2=horizon_r2)


@dataclass
class CandidateChoice:
    """How well the student's inputs pick among the expert's fixed candidate moves, on held-out episodes.

    Regressing the expert's action averages its choices into "hold" wherever the student cannot tell which
    candidate wins (section 11). A student that instead scores the candidates and takes the best-scored
    one avoids that average: this measures whether such a choice is informed. Costs are the expert's own
    rollout costs of each candidate from the true state (lower is better); gains are the mean cost of
    "hold" (candidate 0) minus the chosen candidate's, so the expert's own choice gains ``oracle_gain``
    and a chooser that gains <= 0 does no better than holding still.
    """

    samples: int
    episodes: int
    folds: int
    candidates: int
    oracle_gain: float
    gain: dict[str, float] = field(default_factory=dict)             # chooser -> mean gain over hold
    better_than_hold: dict[str, float] = field(default_factory=dict)  # chooser -> share of states it beats hold
    worse_than_hold: dict[str, float] = field(default_factory=dict)
    top1: dict[str, float] = field(default_factory=dict)              # chooser -> share picking the expert's choice

    def line(self) -> str:
        choosers = "; ".join(f"{name}: gain {self.gain[name]:+.2f}, beats hold {self.better_than_hold[name]:.2f}, "
                             f"loses to it {self.worse_than_hold[name]:.2f}, the expert's pick {self.top1[name]:.3f}"
                             for name in self.gain)
        return (f"candidate choice: {self.samples} states from {self.episodes} episodes, {self.folds}-fold by "
                f"episode, {self.candidates} candidates (chance {1 / self.candidates:.3f}); cost of hold minus "
                f"the chosen candidate's, the expert's own choice: {self.oracle_gain:+.2f}; {choosers}")

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "episodes": self.episodes, "folds": self.folds,
                "candidates": self.candidates, "oracle_gain": self.oracle_gain, "gain": dict(self.gain),
                "better_than_hold": dict(self.better_than_hold), "worse_than_hold": dict(self.worse_than_hold),
                "top1": dict(self.top1)}


def cross_validated_choice(inputs: np.ndarray, costs: np.ndarray, episode: np.ndarray, *, folds: int = 4,
                           seed: int = 0, mlp: bool = True) -> CandidateChoice:
    """Choose a candidate per held-out state from the inputs alone and score it with the expert's costs.

    Choosers: ``random`` (the mean over candidates: what a blind pick gains on average), ``best fixed``
    (the candidate of lowest mean rank on the training folds, whatever the state), and ``ridge`` / ``mlp``,
    which regress every candidate's rank within its state (0 best, 1 worst: ranks, not costs, because a
    drop's cost dwarfs every other difference and would decide a squared-error fit) and take the lowest.
    Candidate 0 is "hold".
    """
    inputs, costs, groups = _episode_folds(inputs, costs, episode, folds, seed, "candidate choice", "costs (S, K)")
    if costs.shape[1] < 2:
        raise ValueError("candidate choice: need at least 2 candidates")
    ids = np.unique(episode)
    count = costs.shape[1]
    gain = costs[:, :1] - costs                                         # > 0: the candidate beats hold
    ranks = costs.argsort(1, kind="stable").argsort(1, kind="stable") / (count - 1)
    names = ["random", "best fixed", "ridge"] + (["mlp"] if mlp else [])
    chosen = {name: np.zeros(len(costs), np.int64) for name in names if name != "random"}
    for group in groups:
        test = np.isin(episode, group)
        train = ~test
        chosen["best fixed"][test] = int(ranks[train].mean(0).argmin())
        chosen["ridge"][test] = ridge_predict(inputs[train], ranks[train], inputs[test]).argmin(1)
        if mlp:
            chosen["mlp"][test] = mlp_predict(inputs[train], ranks[train], inputs[test], seed).argmin(1)
    rows = np.arange(len(costs))
    best = costs.argmin(1)
    result = CandidateChoice(samples=len(costs), episodes=len(ids), folds=folds, candidates=count,
                             oracle_gain=float(gain[rows, best].mean()))
    result.gain["random"] = float(gain.mean())
    result.better_than_hold["random"] = float((gain > 0).mean())
    result.worse_than_hold["random"] = float((gain < 0).mean())
    result.top1["random"] = 1.0 / count
    for name, pick in chosen.items():
        picked = gain[rows, pick]
        result.gain[name] = float(picked.mean())
        result.better_than_hold[name] = float((picked > 0).mean())
        result.worse_than_hold[name] = float((picked < 0).mean())
        result.top1[name] = float((pick == best).mean())
    return result


def expert_learnability(config, *, episodes: int = 16, workers: int = 0, progress: bool = True,
                        folds: int = 4, perception=None) -> tuple[Learnability, dict[str, float]]:
    """Record ``episodes`` expert-driven training episodes of a pose-student run and cross-validate.

    The episodes are the run's own iteration-0 episodes (its training seed stream, index 0 on), so
    the figure describes exactly the labels DAgger starts from. Returns the learnability and the
    expert's metrics on those episodes.
    """
    from .evaluate import _run, _setup
    from .rollout import EpisodeJob, summarize

    if config.student.kind != "pose":
        raise ValueError("learnability needs a pose student (student.kind: pose): its inputs are one term vector")
    jobs = [EpisodeJob(k, config.seed, "expert", config.episode_steps) for k in range(episodes)]
    out = _run(_setup(config, perception), [(job, None) for job in jobs], workers, progress, "expert")
    inputs = np.concatenate([e.obs for e in out])
    labels = np.concatenate([e.expert_target - e.base for e in out])
    episode = np.repeat([e.job.index for e in out], [len(e.obs) for e in out])
    result = cross_validated_learnability(inputs, labels, episode, folds=folds, horizons=HORIZONS)
    if config.expert.fixed_candidates:
        if any(e.expert_costs is None for e in out):
            raise RuntimeError("learnability: the expert has fixed candidates but an episode recorded no costs")
        result.choice = cross_validated_choice(inputs, np.concatenate([e.expert_costs for e in out]), episode,
                                               folds=folds)
    return result, summarize(out)
