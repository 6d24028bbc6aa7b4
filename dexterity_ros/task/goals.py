"""The goal distribution of the reorientation task, shared by the simulator and the goal node.

Moved out of ``ReorientEnv._sample_goal`` unchanged: the same draws from the same
generator, so simulated episodes stay bit for bit what they were. The one
addition is symmetry: a depth camera cannot tell a cube from the cube turned by
90 degrees, so with a non-trivial :class:`~dexterity_ros.objects.symmetry.Symmetry`
a goal is redrawn until it is at least ``min_goal_distance_rad`` from the current
orientation *up to the symmetry*, so no goal is reached before the hand moves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ..geometry import axis_angle_to_quat, quat_multiply, random_quaternion, rotation_distance
from ..objects.symmetry import Symmetry

GoalAxis = Literal["any", "palm_normal"]
MAX_ATTEMPTS = 100          # rejection draws before the farthest candidate is taken


@dataclass(frozen=True)
class GoalSampler:
    """Random goal orientations (w, x, y, z, palm frame) between ``min_`` and ``max_goal_distance_rad``.

    ``goal_axis: any`` with ``max_goal_distance_rad >= pi``: uniform over SO(3)
    (rejection, the Dactyl task). Otherwise the object is turned from the current
    orientation by an angle uniform in [min, max] about a uniformly random axis, or
    about the palm normal (+x of the palm frame, either sense) for ``palm_normal``.
    """

    min_goal_distance_rad: float = 0.8
    max_goal_distance_rad: float = math.pi
    goal_axis: GoalAxis = "any"
    symmetry: Symmetry | None = None        # None or trivial: plain rotation distance (the simulator's)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_goal_distance_rad <= self.max_goal_distance_rad <= math.pi:
            raise ValueError("goal sampler: need 0 <= min_goal_distance_rad <= max_goal_distance_rad <= pi, got "
                             f"{self.min_goal_distance_rad}, {self.max_goal_distance_rad}")
        if self.goal_axis not in ("any", "palm_normal"):
            raise ValueError(f"goal sampler: goal_axis must be 'any' or 'palm_normal', got {self.goal_axis!r}")

    @classmethod
    def from_task(cls, task: Any, symmetry: Symmetry | None = None) -> "GoalSampler":
        """From a task section (``sim_config.TaskConfig`` or anything with its goal fields)."""
        return cls(float(task.min_goal_distance_rad), float(task.max_goal_distance_rad), task.goal_axis, symmetry)

    def with_symmetry(self, symmetry: Symmetry | None) -> "GoalSampler":
        return replace(self, symmetry=symmetry)

    @property
    def symmetric(self) -> bool:
        return self.symmetry is not None and not self.symmetry.is_trivial

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """The rotation distance this sampler keeps goals apart by (symmetry-aware when it has one)."""
        if self.symmetric:
            return self.symmetry.distance(a, b)
        return float(rotation_distance(a, b))

    def sample(self, current: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A goal for an object now at ``current``; draws only from ``rng``."""
        if not self.symmetric:
            return self._draw(current, rng)
        best, best_distance = None, -1.0
        for _ in range(MAX_ATTEMPTS):
            goal = self._draw(current, rng)
            distance = self.symmetry.distance(goal, current)
            if distance >= self.min_goal_distance_rad:
                return goal
            if distance > best_distance:
                best, best_distance = goal, distance
        return best          # the symmetry never allows min_goal_distance_rad (e.g. > 1.1 rad for a cube)

    def _draw(self, current: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One goal as the simulator always drew it (its rejection loop for uniform SO(3) included)."""
        if self.goal_axis == "any" and self.max_goal_distance_rad >= math.pi:
            for _ in range(MAX_ATTEMPTS):
                goal = random_quaternion(rng)
                if rotation_distance(goal, current) >= self.min_goal_distance_rad:
                    return goal
            return goal
        angle = rng.uniform(self.min_goal_distance_rad, self.max_goal_distance_rad)
        if self.goal_axis == "palm_normal":
            axis = np.array([1.0, 0.0, 0.0]) * rng.choice((-1.0, 1.0))
        else:
            axis = rng.normal(size=3)                         # axis_angle_to_quat normalizes it
        goal = quat_multiply(axis_angle_to_quat(axis, angle), current)      # a turn in the palm frame
        goal /= np.linalg.norm(goal)
        return goal if goal[0] >= 0 else -goal
