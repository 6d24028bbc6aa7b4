"""Episode bags from randomized rollouts: the simulator's steps written as the robot's messages.

The rollout itself is pure (:func:`dexterity_ros.sim.episodes.run_episode`);
this module opens the bags (:class:`.episode.EpisodeBagWriter`, rclpy
serialization) and keeps generation resumable: completed episodes are kept, a
half-written one is discarded and redone, and the same command gives the same
bags. ``dexterity-ros generate`` and the demo data use it.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from ...perception import PerceptionConfig
from ...sim.env import ReorientEnv
from ...sim.episodes import (PARTIAL_DIR, EpisodeSummary, StudentActor, data_fingerprint, episode_name,
                             episode_seed, resolve_configs, run_episode)
from ...sim.randomization import RandomizationConfig
from ...sim.sim_config import SimConfig
from ...sim.student_view import StudentView
from .episode import EpisodeBagWriter


def generate(out_dir: str | Path, episodes: int, seed: int = 0, *, model: str | Path | None = None,
             sim_config: SimConfig | str | None = None, randomization: RandomizationConfig | str | None = None,
             perception: PerceptionConfig | None = None, max_steps: int | None = None,
             indices: Iterable[int] | None = None, progress: bool = True) -> list[EpisodeSummary]:
    """Write ``episodes`` episode bags into ``out_dir`` (resumable; see module docstring).

    Configs: dataclass, YAML path or None (the packaged one); the bags record their hashes.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim_config, randomization, perception = resolve_configs(sim_config, randomization, perception)
    env = ReorientEnv(sim_config, randomization, seed=seed)
    view = StudentView(perception)
    actor = StudentActor(model, perception, env.hand)
    fingerprint = data_fingerprint(actor.model_path, sim_config, randomization, perception)
    steps_cap = max_steps or env.config.task.max_episode_steps
    summaries = []
    todo = list(indices) if indices is not None else list(range(episodes))
    staging = out / PARTIAL_DIR
    shutil.rmtree(staging, ignore_errors=True)    # an interrupted episode: redo it from its seed
    staging.mkdir()
    bar = tqdm(total=len(todo), desc="episodes", unit="ep", disable=not progress)
    try:
        for index in todo:
            final = out / episode_name(index)
            if (final / "metadata.yaml").is_file():
                bar.update(1)
                continue
            partial = staging / episode_name(index)
            s = episode_seed(seed, index)
            metadata = {"seed": seed, "episode_index": index, "episode_seed": s, **fingerprint,
                        "policy": str(actor.model_path.name), "mount": env.config.mount}
            with EpisodeBagWriter(partial, metadata, hand=env.hand) as writer:
                summary = run_episode(env, view, actor, s, index, steps_cap, writer)
            (partial / "summary.json").write_text(json.dumps(asdict(summary), indent=1))
            partial.rename(final)                 # atomic: a complete episode or none
            summaries.append(summary)
            bar.set_postfix(obj=summary.object, steps=summary.steps)
            bar.update(1)
    finally:
        bar.close()
        env.close()
        shutil.rmtree(staging, ignore_errors=True)
    return summaries


DEMO_SEED = 2026
DEMO_STEPS = 120                 # 10 s at 12 Hz
EPISODE_GAP_NS = 1_000_000_000   # between episodes of a stream: longer than any reset-after-gap


def generate_stream(path: str | Path, seed: int, total_steps: int, *, model: str | Path | None = None,
                    sim_config: SimConfig | str | None = None,
                    randomization: RandomizationConfig | str | None = None,
                    perception: PerceptionConfig | None = None,
                    overwrite: bool = False) -> list[EpisodeSummary]:
    """Episodes back to back in ONE bag until ``total_steps`` steps (replay/demo data).

    Consecutive episodes are separated by a 1 s stamp gap, so the live student
    resets its history exactly where the generator's did.
    """
    path = Path(path)
    sim_config, randomization, perception = resolve_configs(sim_config, randomization, perception)
    env = ReorientEnv(sim_config, randomization, seed=seed)
    view = StudentView(perception)
    actor = StudentActor(model, perception, env.hand)
    summaries: list[EpisodeSummary] = []
    staging = path.parent / PARTIAL_DIR / path.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"seed": seed, "stream_steps": total_steps,
                **data_fingerprint(actor.model_path, sim_config, randomization, perception),
                "policy": actor.model_path.name, "mount": env.config.mount}
    try:
        with EpisodeBagWriter(staging, metadata, hand=env.hand) as writer:
            offset = 0
            index = 0
            remaining = total_steps
            while remaining > 0:
                summary = run_episode(env, view, actor, episode_seed(seed, index), index, remaining, writer,
                                      stamp_offset_ns=offset, fresh_graph=index == 0)
                summaries.append(summary)
                remaining -= summary.steps
                offset += EPISODE_GAP_NS
                index += 1
        (staging / "summary.json").write_text(json.dumps([asdict(s) for s in summaries], indent=1))
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        env.close()
        shutil.rmtree(staging.parent, ignore_errors=True)
    return summaries


def generate_demo_episode(path: str | Path) -> list[EpisodeSummary]:
    """The built-in demo data: 10 s of the packaged student on randomized episodes."""
    return generate_stream(path, DEMO_SEED, DEMO_STEPS, overwrite=True)
