"""A simulated Allegro hand behind a driver protocol: first-order joints, limits, faults.

The emulator stands in for the real driver in graph tests and replay: each
joint follows its commanded position with a first-order lag (time constant
``tau``) and stops at its mechanical limits. Faults reproduce what goes
wrong on real rigs: feedback stops, a joint sticks, the driver lists its
joints in another order, or names a joint differently. It also watches the
commands it receives, as an independent witness of hand_node's limits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .profiles import DriverProfile


@dataclass
class EmulatorFaults:
    stop_feedback: bool = False     # publish no feedback
    freeze_joint: int = -1          # canonical index of a joint that no longer moves (-1: none)
    reorder_names: bool = False     # feedback lists the joints in reverse order (names and values)
    rename_joint: int = -1          # canonical index whose feedback name gets a '_renamed' suffix (-1: none)


@dataclass(frozen=True)
class CommandAudit:
    """What the emulator saw in one command: how far outside the hard limits, how big a step."""

    outside_limits: int
    step: float


class EmulatedHand:
    """16 joints with first-order position response, clamped to the hard joint limits."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, time_constant: float,
                 initial: np.ndarray | None = None):
        if time_constant <= 0:
            raise ValueError("time_constant must be > 0")
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        self.time_constant = float(time_constant)
        start = np.zeros_like(self.lower) if initial is None else np.asarray(initial, dtype=np.float64)
        if start.shape != self.lower.shape:
            raise ValueError(f"initial pose must have {self.lower.size} joints, got {start.size}")
        self.position = np.clip(start, self.lower, self.upper)
        self.velocity = np.zeros_like(self.position)
        self.target = self.position.copy()
        self.faults = EmulatorFaults()
        self._last_command: np.ndarray | None = None

    def command(self, target: np.ndarray) -> CommandAudit:
        target = np.asarray(target, dtype=np.float64)
        outside = int(np.count_nonzero((target < self.lower) | (target > self.upper)))
        step = 0.0 if self._last_command is None else float(np.max(np.abs(target - self._last_command)))
        self._last_command = target.copy()
        self.target = np.clip(target, self.lower, self.upper)
        return CommandAudit(outside, step)

    def step(self, dt: float) -> None:
        if dt <= 0:
            return
        gain = 1.0 - np.exp(-dt / self.time_constant)
        new = self.position + gain * (self.target - self.position)
        if 0 <= self.faults.freeze_joint < new.size:
            new[self.faults.freeze_joint] = self.position[self.faults.freeze_joint]
        new = np.clip(new, self.lower, self.upper)
        self.velocity = (new - self.position) / dt
        self.position = new

    def feedback(self, profile: DriverProfile) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(names, positions, velocities) as the driver would publish them, faults applied."""
        names, positions, velocities = profile.encode_feedback(self.position, self.velocity)
        names = list(names) or [profile.feedback_vocabulary[i] for i in profile.command_index]
        if velocities is None:
            velocities = self.velocity[profile.command_index]
        if 0 <= self.faults.rename_joint < len(profile.feedback_vocabulary):
            bad = profile.feedback_vocabulary[self.faults.rename_joint]
            names = [n + "_renamed" if n == bad else n for n in names]
        if self.faults.reorder_names:
            names, positions, velocities = names[::-1], positions[::-1], velocities[::-1]
        return names, positions, velocities
