"""A finger-gait teacher: one periodic joint-target cycle per turning sense, found by CMA-ES.

Why it exists (docs/results.md sections 11-12): the sampling-MPC expert's labels are close
to white noise that no student input predicts, so every student distilled from it learnt
"hold". A student can only learn a teacher whose action is a smooth function of what the
student sees. This teacher's action is exactly that:

* the *phase* is read back from the previous command (least squares on the cycle's two
  harmonics), so the teacher carries no hidden state: the previous targets, a student input,
  determine it;
* the *sense* (which cycle) is the sign of the turn from the object's orientation to the
  goal about the palm normal, and within ``hold_threshold_rad`` of the goal the teacher
  repeats its previous command (hold);
* next target = the cycle one phase step (``omega``) on from that phase, clipped into the
  joint limits;
* optionally (``position_gain``), plus a linear correction on the object's offset from its
  grasp position (palm frame), another student input: feedback that keeps the object on the
  palm; the phase is then read from the previous command less the correction for the offset now.

It is privileged only in that it reads the simulator's true object pose (the student reads
the tracker's). The cycles are fitted, not hand-written: :mod:`.gait_search` runs CMA-ES
(the ``cma`` package) on the simulator's own reward with every randomization term on, and
the result is a small JSON file (``config/gaits/``) with the command that made it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..geometry import quat_conjugate, quat_multiply
from ..paths import config_path

GAIT_FORMAT = "dexterity_ros/gait/v1"
SENSES = (+1, -1)          # row 0 of every per-sense array turns the object +x (palm normal), row 1 -x


def signed_turn_about_palm_normal(object_quaternion: np.ndarray, goal_quaternion: np.ndarray
                                  ) -> tuple[float, float]:
    """(rotation distance, its signed component about the palm's +x) from the object to the goal.

    Both quaternions are w, x, y, z in the palm frame; the turn is goal * object^-1, the
    rotation the goal sampler applies for ``goal_axis: palm_normal`` (task/goals.py).
    """
    turn = quat_multiply(np.asarray(goal_quaternion, dtype=np.float64),
                         quat_conjugate(np.asarray(object_quaternion, dtype=np.float64)))
    if turn[0] < 0:
        turn = -turn
    sine = float(np.linalg.norm(turn[1:]))
    angle = 2.0 * math.atan2(sine, float(turn[0]))
    if sine < 1e-12:
        return angle, 0.0
    return angle, float(turn[1] / sine * angle)


@dataclass(frozen=True)
class Gait:
    """Two cycles (one per sense): target(phase) = base + sin_amplitude sin(phase) + cos_amplitude cos(phase)."""

    joint_names: tuple[str, ...]
    base: np.ndarray                  # (2, J) rad, rows: SENSES
    sin_amplitude: np.ndarray         # (2, J) rad
    cos_amplitude: np.ndarray         # (2, J) rad
    omega: float                      # phase advance per policy step (rad)
    hold_threshold_rad: float         # within this of the goal: repeat the previous command
    lower: np.ndarray                 # (J,) the joint limits the cycle is clipped into
    upper: np.ndarray
    provenance: dict[str, Any] | None = None
    position_gain: np.ndarray | None = None   # (J, 3) rad per m of object offset from the grasp position

    def __post_init__(self) -> None:
        joints = len(self.joint_names)
        for name in ("base", "sin_amplitude", "cos_amplitude"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (2, joints) or not np.all(np.isfinite(value)):
                raise ValueError(f"gait: {name} must be 2 x {joints} finite values, got shape {value.shape}")
            object.__setattr__(self, name, value)
        for name in ("lower", "upper"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (joints,):
                raise ValueError(f"gait: {name} must have {joints} values")
            object.__setattr__(self, name, value)
        gain = np.zeros((joints, 3)) if self.position_gain is None else \
            np.asarray(self.position_gain, dtype=np.float64)
        if gain.shape != (joints, 3) or not np.all(np.isfinite(gain)):
            raise ValueError(f"gait: position_gain must be {joints} x 3 finite values, got shape {gain.shape}")
        object.__setattr__(self, "position_gain", gain)
        if not (0.0 < self.omega < math.pi) or not (0.0 <= self.hold_threshold_rad < math.pi):
            raise ValueError(f"gait: need 0 < omega < pi and 0 <= hold_threshold_rad < pi, got {self.omega}, "
                             f"{self.hold_threshold_rad}")
        harmonics = np.stack([self.sin_amplitude, self.cos_amplitude], axis=2)       # (2, J, 2)
        # a cycle whose two harmonics are (nearly) parallel has no readable phase
        if np.any(np.linalg.svd(harmonics, compute_uv=False)[:, 1] < 1e-6):
            raise ValueError("gait: each cycle needs two independent harmonics (its phase is read back from them)")
        object.__setattr__(self, "_pinv", np.linalg.pinv(harmonics))                  # (2, 2, J)

    # ------------------------------------------------------------------ the cycle
    def _cycle(self, sense: int, phase: float) -> np.ndarray:
        row = SENSES.index(sense)
        return self.base[row] + self.sin_amplitude[row] * math.sin(phase) + self.cos_amplitude[row] * math.cos(phase)

    def target(self, sense: int, phase: float) -> np.ndarray:
        """The cycle of ``sense`` (+1 / -1) at ``phase``, clipped into the joint limits."""
        return np.clip(self._cycle(sense, phase), self.lower, self.upper)

    def phase_of(self, sense: int, command: np.ndarray) -> float:
        """The phase of the point on the cycle of ``sense`` nearest ``command`` (least squares)."""
        row = SENSES.index(sense)
        sine, cosine = self._pinv[row] @ (np.asarray(command, dtype=np.float64) - self.base[row])
        return math.atan2(sine, cosine)

    def phase_step(self, sense: int, phase: float, max_step: np.ndarray | None = None) -> float:
        """``omega``, or the largest smaller step that moves no joint's target by more than ``max_step``
        (rad per policy step: hand_node's speed limits), so the hand can follow the cycle's shape
        instead of a speed-clipped distortion of it; a function of the phase alone (bisection)."""
        if max_step is None:
            return self.omega
        start = self.target(sense, phase)

        def fits(step: float) -> bool:
            return bool(np.all(np.abs(self.target(sense, phase + step) - start) <= max_step))

        if fits(self.omega):
            return self.omega
        low, high = 0.0, self.omega
        for _ in range(PHASE_STEP_BISECTIONS):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if fits(middle) else (low, middle)
        return low

    def next_target(self, previous_command: np.ndarray, rotation_distance: float, signed_turn: float,
                    object_offset: np.ndarray | None = None, max_step: np.ndarray | None = None) -> np.ndarray:
        """The teacher's action from its previous command, the object's turn to the goal and (with a
        position gain) the object's offset from its grasp position (m, palm frame); with ``max_step``
        the phase advances no faster than the hand's speed limits let it follow (:meth:`phase_step`)."""
        previous = np.asarray(previous_command, dtype=np.float64)
        if rotation_distance <= self.hold_threshold_rad:
            return previous.copy()
        sense = +1 if signed_turn >= 0 else -1
        correction = self.position_gain @ np.asarray(object_offset, dtype=np.float64) \
            if object_offset is not None else np.zeros(len(previous))
        phase = self.phase_of(sense, previous - correction)
        phase += self.phase_step(sense, phase, max_step)
        return np.clip(self._cycle(sense, phase) + correction, self.lower, self.upper)

    # ------------------------------------------------------------------ file
    def to_json(self) -> dict[str, Any]:
        return {"format": GAIT_FORMAT, "joint_names": list(self.joint_names),
                "senses": ["+x (palm normal)", "-x"],
                "base": self.base.tolist(), "sin_amplitude": self.sin_amplitude.tolist(),
                "cos_amplitude": self.cos_amplitude.tolist(), "omega": self.omega,
                "hold_threshold_rad": self.hold_threshold_rad, "lower": self.lower.tolist(),
                "upper": self.upper.tolist(), "position_gain": self.position_gain.tolist(),
                "provenance": self.provenance or {}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Gait":
        if not isinstance(data, dict) or data.get("format") != GAIT_FORMAT:
            raise ValueError(f"not a gait file (format must be {GAIT_FORMAT!r})")
        known = {"format", "joint_names", "senses", "base", "sin_amplitude", "cos_amplitude", "omega",
                 "hold_threshold_rad", "lower", "upper", "provenance", "position_gain"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"gait file: unknown keys {unknown}")
        return cls(tuple(data["joint_names"]), np.array(data["base"]), np.array(data["sin_amplitude"]),
                   np.array(data["cos_amplitude"]), float(data["omega"]), float(data["hold_threshold_rad"]),
                   np.array(data["lower"]), np.array(data["upper"]), data.get("provenance") or None,
                   np.array(data["position_gain"]) if "position_gain" in data else None)


def gait_path(name: str) -> Path:
    """A gait file by path, or by name in the packaged config/gaits/."""
    path = Path(name)
    if path.suffix == ".json" and path.exists():
        return path
    return config_path("gaits", name if name.endswith(".json") else f"{name}.json")


def load_gait(name: str) -> Gait:
    path = gait_path(name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"gait file not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"gait file {path}: not JSON ({error})") from None
    return Gait.from_json(data)


def save_gait(gait: Gait, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(gait.to_json(), indent=1) + "\n")


class GaitStats:
    """The planner statistics the rollout code reads from every expert (a gait plans nothing)."""

    plans = 0
    plan_seconds = 0.0
    ms_per_plan = 0.0


class GaitExpert:
    """The gait as an expert with :class:`~.expert.SamplingExpert`'s interface (reset / act / close)."""

    def __init__(self, gait: Gait):
        self.gait = gait
        self.stats = GaitStats()
        self._grasp_position = np.zeros(3)

    def reset(self, env) -> None:
        if tuple(env.joint_names) != self.gait.joint_names:
            raise ValueError(f"gait joints {list(self.gait.joint_names)} differ from the simulator's "
                             f"{list(env.joint_names)}")
        self._grasp_position = np.asarray(env.config.mount_config().object_position, dtype=np.float64)

    def act(self, env, noise_rng: np.random.Generator | None = None,
            learner_action: np.ndarray | None = None) -> np.ndarray:
        """Next target from the true pose, the goal and the env's last command (not the applied target);
        the learner's action plays no part (the gait plans nothing)."""
        state = env.privileged_state()
        distance, turn = signed_turn_about_palm_normal(state.object_quaternion, state.goal_quaternion)
        return self.gait.next_target(env.commanded_targets, distance, turn,
                                     state.object_position - self._grasp_position, env.hand_command_max_step)

    def hold_targets(self, env_state: dict) -> np.ndarray:
        return np.asarray(env_state["commanded_targets"], dtype=np.float64)

    def close(self) -> None:
        pass


def gait_from_vector(theta: Sequence[float], initial: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                     joint_names: Sequence[str], hold_threshold_rad: float, provenance: dict | None = None,
                     position_feedback: bool = False, omega_range: tuple[float, float] | None = None) -> Gait:
    """The search's parameter vector (per sense: base offset from ``initial``, sin, cos; then omega's
    logit) as a :class:`Gait`; a vector of one sense only is mirrored (the other sense runs it backwards:
    sin(-phase) = -sin(phase)). With ``position_feedback`` the last 3 x J values before omega's logit are the
    position gain in units of GAIN_SCALE rad/m. Omega's logit maps into ``omega_range`` (default
    OMEGA_MIN..OMEGA_MAX)."""
    theta = np.asarray(theta, dtype=np.float64)
    joints = len(joint_names)
    gain = None
    if theta.shape in ((6 * joints + 1,), (9 * joints + 1,)) and position_feedback:
        gain = theta[-1 - 3 * joints:-1].reshape(joints, 3) * GAIN_SCALE
        theta = np.concatenate([theta[:-1 - 3 * joints], theta[-1:]])
    if theta.shape == (3 * joints + 1,):          # mirrored: the -x cycle is the +x cycle run backwards
        forward = theta[:3 * joints].reshape(3, joints)
        theta = np.concatenate([forward.reshape(-1), (forward * np.array([1.0, -1.0, 1.0])[:, None]).reshape(-1),
                                theta[-1:]])
    if theta.shape != (6 * joints + 1,):
        raise ValueError(f"gait vector: expected {6 * joints + 1} values (or {3 * joints + 1} mirrored), "
                         f"got {theta.shape}")
    per_sense = theta[:6 * joints].reshape(2, 3, joints)
    low, high = omega_range or (OMEGA_MIN, OMEGA_MAX)
    omega = low + (high - low) / (1.0 + math.exp(-float(theta[-1])))
    return Gait(tuple(joint_names), initial[None] + per_sense[:, 0], per_sense[:, 1], per_sense[:, 2], omega,
                hold_threshold_rad, lower, upper, provenance, gain)


PHASE_STEP_BISECTIONS = 12             # omega / 4096: far finer than any speed limit needs
OMEGA_MIN, OMEGA_MAX = 0.3, 0.8        # rad per 12 Hz step: a cycle of 0.65-1.75 s
GAIN_SCALE = 20.0                      # rad per m per unit of the search vector: 1 cm offset -> 0.2 rad
