"""Randomized episodes rolled out with the student (written as episode bags by dexterity_ros.ros.bags.generate).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..hand_model import HandDescription
from ..paths import models_path
from ..perception import PerceptionConfig, load_perception_config
from .env import ReorientEnv
from .randomization import RandomizationConfig, as_randomization_config
from .sim_config import SimConfig, as_sim_config
from .episode_step import EpisodeStep
from .student_view import StudentView

class StepWriter(Protocol):
    """Where a rollout's steps go (the episode bag writer, dexterity_ros.ros.bags.episode)."""

    def write_physics(self, stamp_ns: int, params: dict) -> None: ...

    def write_step(self, step: EpisodeStep) -> None: ...


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

    def __init__(self, model: str | Path | None, perception: PerceptionConfig, hand: HandDescription):
        from ..policy.runtime import PolicyRuntime
        self.model_path = Path(model) if model else models_path("student.onnx")
        self.runtime = PolicyRuntime(self.model_path, hand=hand, perception=perception)

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
                max_steps: int, writer: StepWriter | None = None,
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


def resolve_configs(sim_config: SimConfig | str | None, randomization: RandomizationConfig | str | None,
             perception: PerceptionConfig | None) -> tuple[SimConfig, RandomizationConfig, PerceptionConfig]:
    """The configs a run uses (None: the packaged ones), loaded once."""
    return (as_sim_config(sim_config), as_randomization_config(randomization),
            perception if perception is not None else load_perception_config())


def data_fingerprint(model: str | Path | None = None, sim_config: SimConfig | str | None = None,
                     randomization: RandomizationConfig | str | None = None,
                     perception: PerceptionConfig | None = None) -> dict[str, str]:
    """What generated data depends on: the policy file and the perception, sim and randomization configs.

    Pass the configs the data is made with (None: the packaged ones, as the demo
    data uses); each is hashed by content (``config_hash``). Stored in every
    bag's metadata; cached demo data is regenerated when it no longer matches.
    """
    sim_config, randomization, perception = resolve_configs(sim_config, randomization, perception)
    model = Path(model) if model else models_path("student.onnx")
    return {"policy_sha256": hashlib.sha256(model.read_bytes()).hexdigest()[:16],
            "perception_config_hash": perception.config_hash(),
            "sim_config_hash": sim_config.config_hash(),
            "randomization_config_hash": randomization.config_hash()}
