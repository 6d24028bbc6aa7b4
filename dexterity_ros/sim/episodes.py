"""Randomized episodes rolled out with the student and written as episode bags.

Each step renders the camera, turns the frame into the student's cloud with
the robot's own preprocessing (:mod:`.student_view`), runs the student through
the same :class:`~dexterity_ros.policy.runtime.PolicyRuntime` the student_node
uses, and applies its targets. The bag stores exactly the inputs the robot
graph will see on replay plus the actions taken, so a replay through the live
graph must reproduce every action (the parity check).

Episodes are independent and seeded by (seed, index): generation is resumable
(completed episodes are kept, a half-written one is discarded and redone) and
the same command gives the same bags.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from typing import TYPE_CHECKING
from ..paths import models_path
from ..perception import PerceptionConfig, load_perception_config
from .env import ReorientEnv
from .randomization import RandomizationConfig
from .sim_config import SimConfig
from .student_view import StudentView

if TYPE_CHECKING:   # the bag layer needs ROS message packages; rollouts without bags must not
    from ..bags.episode import EpisodeBagWriter

PARTIAL_DIR = ".partial"      # episodes are written here, then moved into place


def episode_seed(seed: int, index: int) -> int:
    """Seed of episode ``index`` of a run: independent of how many episodes are made."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def episode_name(index: int) -> str:
    return f"episode_{index:03d}"


@dataclass
class EpisodeSummary:
    index: int
    seed: int
    object: str
    steps: int
    frames: int
    actions: int
    steps_without_action: int
    successes: int
    dropped: bool
    final_rotation_distance: float
    return_: float
    last_stamp_ns: int


class StudentActor:
    """The student as the robot runs it: PolicyRuntime on the robot-graph cloud."""

    def __init__(self, model: str | Path | None = None, perception: PerceptionConfig | None = None):
        from ..policy.runtime import PolicyRuntime
        self.model_path = Path(model) if model else models_path("student.onnx")
        self.runtime = PolicyRuntime(self.model_path, perception=perception)

    def reset(self) -> None:
        self.runtime.reset("new episode")

    def act(self, frame) -> tuple[np.ndarray | None, str]:
        if frame is None:
            return None, "no camera frame (dropped)"
        if not frame.cloud.ok:
            return None, frame.cloud.reason
        out = self.runtime.step(frame.cloud.points, frame.joint_positions, frame.goal_wxyz, frame.stamp_ns)
        return out.target, out.reason


def run_episode(env: ReorientEnv, view: StudentView, actor: StudentActor, seed: int, index: int,
                max_steps: int, writer: EpisodeBagWriter | None = None,
                on_step: Callable[[int], None] | None = None, stamp_offset_ns: int = 0,
                fresh_graph: bool = True) -> EpisodeSummary:
    """Roll out one episode with the student acting; optionally write it as a bag.

    ``stamp_offset_ns`` shifts the bag stamps (episodes written back to back).
    ``fresh_graph``: the episode starts a new replay, so the perception stream
    state starts fresh too (False for later episodes of one stream bag).
    """
    obs = env.reset(seed=seed)
    actor.reset()
    if fresh_graph:
        view.reset()
    state = env.privileged_state()
    target = state.joint_targets.copy()          # hold the settled grasp until the student acts
    if writer is not None:
        from ..bags.episode import EpisodeStep
        writer.write_physics(obs.time_ns + stamp_offset_ns, state.physics_params)
    frames = actions = idle = 0
    total_reward = 0.0
    info: dict = {"rotation_distance": state.rotation_distance, "consecutive_successes": 0, "dropped": False}
    steps = 0
    for steps in range(1, max_steps + 1):
        frame = view.frame(obs)
        action, _reason = actor.act(frame)
        if action is None:
            idle += 1
        else:
            actions += 1
            target = action
        if frame is not None:
            frames += 1
        if writer is not None:
            priv = env.privileged_state()
            writer.write_step(EpisodeStep(
                stamp_ns=obs.time_ns + stamp_offset_ns,
                depth_m=frame.depth_m if frame is not None else None,
                intrinsics=frame.intrinsics if frame is not None else None,
                joint_positions=np.asarray(obs.joint_positions), goal_wxyz=np.asarray(obs.goal_quaternion),
                action=action,
                object_pose=(priv.object_position, priv.object_quaternion),
                object_twist=(priv.object_linear_velocity, priv.object_angular_velocity)))
        result = env.step(target)
        total_reward += result.reward
        info = result.info
        obs = result.observation
        if on_step is not None:
            on_step(steps)
        if result.terminated or result.truncated:
            break
    return EpisodeSummary(index, seed, env.scene.object.name, steps, frames, actions, idle,
                          int(info["consecutive_successes"]), bool(info["dropped"]),
                          float(info["rotation_distance"]), float(total_reward), obs.time_ns)


def generate(out_dir: str | Path, episodes: int, seed: int = 0, *, model: str | Path | None = None,
             sim_config: SimConfig | str | None = None, randomization: RandomizationConfig | str | None = None,
             perception: PerceptionConfig | None = None, max_steps: int | None = None,
             indices: Iterable[int] | None = None, progress: bool = True) -> list[EpisodeSummary]:
    """Write ``episodes`` episode bags into ``out_dir`` (resumable; see module docstring)."""
    from tqdm import tqdm

    from ..bags.episode import EpisodeBagWriter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    perception = perception or load_perception_config()
    env = ReorientEnv(sim_config, randomization, seed=seed)
    view = StudentView(perception)
    actor = StudentActor(model, perception)
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
            metadata = {"seed": seed, "episode_index": index, "episode_seed": s,
                        **data_fingerprint(actor.model_path),
                        "policy": str(actor.model_path.name), "mount": env.config.mount}
            with EpisodeBagWriter(partial, metadata) as writer:
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
                    overwrite: bool = False) -> list[EpisodeSummary]:
    """Episodes back to back in ONE bag until ``total_steps`` steps (replay/demo data).

    Consecutive episodes are separated by a 1 s stamp gap, so the live student
    resets its history exactly where the generator's did.
    """
    from ..bags.episode import EpisodeBagWriter

    path = Path(path)
    perception = load_perception_config()
    env = ReorientEnv(sim_config, randomization, seed=seed)
    view = StudentView(perception)
    actor = StudentActor(model, perception)
    summaries: list[EpisodeSummary] = []
    staging = path.parent / PARTIAL_DIR / path.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"seed": seed, "stream_steps": total_steps, **data_fingerprint(actor.model_path),
                "policy": actor.model_path.name, "mount": env.config.mount}
    try:
        with EpisodeBagWriter(staging, metadata) as writer:
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


def data_fingerprint(model: str | Path | None = None) -> dict[str, str]:
    """What generated data depends on: the policy file, the perception, sim and randomization configs.

    Stored in every bag's metadata; cached demo data is regenerated when it no longer matches.
    """
    from ..paths import config_path
    model = Path(model) if model else models_path("student.onnx")
    digest = lambda path: hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return {"policy_sha256": digest(model), "perception_config_hash": load_perception_config().config_hash(),
            "sim_config_sha256": digest(config_path("sim.yaml")),
            "randomization_sha256": digest(config_path("randomization.yaml"))}


def generate_demo_episode(path: str | Path) -> list[EpisodeSummary]:
    """The built-in demo data: 10 s of the packaged student on randomized episodes."""
    return generate_stream(path, DEMO_SEED, DEMO_STEPS, overwrite=True)
