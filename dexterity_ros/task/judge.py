"""Success and drop judging of the reorientation task: one implementation for the simulator and the robot.

The simulator (``ReorientEnv``) feeds the true pose once per policy step; the
goal node feeds the tracker's pose once per camera frame, or ``None`` when the
object is not seen. Both get the same rules, so "success" means the same thing
in training and on the robot:

* the rotation error to the goal (symmetry-aware when ``symmetry_aware``: a
  tracker only knows the pose up to the object's symmetry) is below
  ``success_threshold_rad`` for ``success_hold_frames`` consecutive seen frames
  -> success; the next goal is drawn from the :class:`GoalSampler`;
* the object centre is more than ``drop_distance_m`` from its reference
  position (or its position is not finite), or it was not seen for
  ``lost_timeout_s`` -> drop;
* no success within ``goal_timeout_s`` -> goal timeout (counted in frames when
  frames come at a fixed period, as the simulator's steps do, else by stamps);
* ``max_consecutive_successes`` in one episode -> the task is done.

Each of the last three ends the episode. The simulator then resets its physics
and calls :meth:`TaskJudge.start_episode`; on the robot the judge starts the
next episode itself once the object has been seen inside the drop distance for
``restart_frames`` frames (someone put it back in the hand).

A judge without a sampler is a *follower*: it judges the goals it is given
(:meth:`TaskJudge.set_goal`, :meth:`TaskJudge.start_episode` with ``goal``),
counts each reached goal once and draws none, e.g. the goal node's shadow judge
on the true pose, which must follow the goals the tracked-pose judge draws.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..diagnostic_keys import TaskMetrics as K
from ..geometry import rotation_distance
from ..objects.symmetry import Symmetry
from .goals import GoalSampler


@dataclass(frozen=True)
class TaskRules:
    """When a frame is a success, a drop or a timeout (see the module docstring)."""

    success_threshold_rad: float = 0.4
    success_hold_frames: int = 1          # consecutive frames below the threshold (1: the simulator's rule)
    drop_distance_m: float = 0.1          # object centre this far from the reference position = drop
    lost_timeout_s: float = 1.0           # object not seen this long = drop (the simulator always sees it)
    goal_timeout_s: float = 8.0           # math.inf: never
    max_consecutive_successes: int = 50
    restart_frames: int = 5               # seen frames inside the drop distance before the next episode starts
    symmetry_aware: bool = False          # rotation error and goal distance up to the object's symmetry

    def __post_init__(self) -> None:
        for name in ("success_threshold_rad", "drop_distance_m", "lost_timeout_s", "goal_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and not math.isnan(value)):
                raise ValueError(f"task rules: {name} must be a positive number, got {value!r}")
        for name in ("success_hold_frames", "max_consecutive_successes", "restart_frames"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"task rules: {name} must be an integer >= 1, got {value!r}")

    @classmethod
    def from_task(cls, task: Any, **overrides: Any) -> "TaskRules":
        """From a task section (``sim_config.TaskConfig`` or anything with these fields), then ``overrides``."""
        values = {f.name: getattr(task, f.name) for f in fields(cls) if hasattr(task, f.name)}
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class Verdict:
    """What one frame (or a timer check) decided."""

    judged: bool                          # a running episode judged a seen pose
    distance: float                       # rad, to the goal in force at this frame (nan: not judged)
    rotation_error: float                 # rad, to the goal in force after it (a new one after a success)
    success: bool = False
    dropped: bool = False
    lost: bool = False                    # the drop: the object unseen for lost_timeout_s
    goal_timeout: bool = False
    task_done: bool = False               # max_consecutive_successes reached
    episode_started: bool = False
    new_goal: np.ndarray | None = None    # a goal drawn (or started with) at this frame: publish it

    @property
    def episode_over(self) -> bool:
        return self.dropped or self.goal_timeout or self.task_done


@dataclass(frozen=True)
class TaskMetrics:
    """Counters and the current state of a judge; :meth:`key_values` for a DiagnosticStatus."""

    running: bool
    episodes: int                         # episodes started
    consecutive_successes: int            # in the current (or last) episode
    goals_reached: int                    # in all episodes
    drops: int
    drops_lost: int
    goal_timeouts: int
    rotation_error_rad: float             # nan until a pose was judged against a goal
    frames_below_threshold: int
    object_seen: bool                     # the last frame saw the object
    goal: tuple[float, float, float, float] | None

    def key_values(self) -> list[tuple[str, str]]:
        goal = "none" if self.goal is None else "[" + ", ".join(f"{v:.4f}" for v in self.goal) + "]"
        return [(K.STATE, "running" if self.running else "waiting"),
                (K.ROTATION_ERROR, f"{self.rotation_error_rad:.4f}"),
                (K.CONSECUTIVE_SUCCESSES, str(self.consecutive_successes)),
                (K.GOALS_REACHED, str(self.goals_reached)),
                (K.EPISODES, str(self.episodes)),
                (K.DROPS_SO_FAR, str(self.drops)),
                (K.DROPS_LOST, str(self.drops_lost)),
                (K.GOAL_TIMEOUTS, str(self.goal_timeouts)),
                (K.FRAMES_BELOW_THRESHOLD, str(self.frames_below_threshold)),
                (K.OBJECT_SEEN, str(self.object_seen).lower()),
                (K.GOAL, goal)]


_STATE = ("running", "goal", "goal_stamp_ns", "frames_since_goal", "frames_below", "goal_reached", "consecutive",
          "seen_since_ns", "last_quaternion", "object_seen", "restart_count", "rotation_error", "episodes",
          "goals_reached", "drops", "drops_lost", "goal_timeouts")


class TaskJudge:
    """Judges one pose per frame against the current goal and sequences goals (see the module docstring).

    ``reference_position``: where the object rests in the hand (palm frame, m),
    the centre of the drop distance. ``frame_period_s``: frames come at this fixed
    period (the simulator's policy step), so the goal timeout is counted in frames
    exactly as the simulator always did; None: by stamps. ``judge_success=False``:
    never declares a success (the simulator when the goal node judges).
    """

    def __init__(self, rules: TaskRules, reference_position: np.ndarray, sampler: GoalSampler | None = None,
                 rng: np.random.Generator | None = None, symmetry: Symmetry | None = None,
                 frame_period_s: float | None = None, judge_success: bool = True):
        self.rules = rules
        self.reference = np.asarray(reference_position, dtype=np.float64).reshape(3)
        self.rng = rng                              # the simulator hands in each episode's generator
        self.judge_success = judge_success
        self._base_sampler = sampler
        self.sampler: GoalSampler | None = sampler
        self.symmetry: Symmetry | None = None
        self.set_symmetry(symmetry)
        self._timeout_frames: int | None = None
        if frame_period_s is not None and math.isfinite(rules.goal_timeout_s):
            self._timeout_frames = int(math.ceil(rules.goal_timeout_s / frame_period_s - 1e-9))
        self._frame_mode = frame_period_s is not None
        self.running = False
        self.goal: np.ndarray | None = None
        self.goal_stamp_ns = 0
        self.frames_since_goal = 0
        self.frames_below = 0
        self.goal_reached = False
        self.consecutive = 0
        self.seen_since_ns: int | None = None      # stamp of the last seen frame (or of the episode start)
        self.last_quaternion: np.ndarray | None = None
        self.object_seen = False
        self.restart_count = 0
        self.rotation_error = math.nan
        self.episodes = self.goals_reached = self.drops = self.drops_lost = self.goal_timeouts = 0

    # ------------------------------------------------------------------ configuration
    def set_symmetry(self, symmetry: Symmetry | None) -> None:
        """The object's symmetry (the simulator draws an object per episode); used if ``symmetry_aware``."""
        aware = self.rules.symmetry_aware and symmetry is not None and not symmetry.is_trivial
        self.symmetry = symmetry if aware else None
        if self._base_sampler is not None:
            self.sampler = self._base_sampler.with_symmetry(self.symmetry)

    @property
    def draws_goals(self) -> bool:
        return self.sampler is not None

    # ------------------------------------------------------------------ goals and episodes
    def start_episode(self, stamp_ns: int, quaternion: np.ndarray | None = None,
                      goal: np.ndarray | None = None) -> np.ndarray:
        """Begin an episode with ``goal``, or one drawn for an object at ``quaternion``; the goal."""
        if goal is None and (self.sampler is None or quaternion is None):
            raise ValueError("start_episode: a follower judge needs the goal, a leader the orientation")
        if quaternion is not None:
            self.last_quaternion = np.asarray(quaternion, dtype=np.float64)
        if goal is None:
            goal = self._draw(self.last_quaternion)
        self.goal = np.asarray(goal, dtype=np.float64).copy()
        self.running = True
        self.consecutive = 0
        self.restart_count = 0
        self.episodes += 1
        self.seen_since_ns = stamp_ns
        self._new_goal(stamp_ns)
        q = self.last_quaternion
        if q is None:
            self.rotation_error = math.nan
        elif self.symmetry is not None:
            self.rotation_error = self.symmetry.distance(q, self.goal)
        else:
            self.rotation_error = float(rotation_distance(q, self.goal))     # the simulator's reset value
        return self.goal.copy()

    def set_goal(self, goal: np.ndarray, stamp_ns: int) -> None:
        """Judge against ``goal`` from now on (an external goal); the episode goes on."""
        self.goal = np.asarray(goal, dtype=np.float64).copy()
        self._new_goal(stamp_ns)
        if self.last_quaternion is not None:
            self.rotation_error = self._distance(self.last_quaternion, self.goal)

    def _new_goal(self, stamp_ns: int) -> None:
        self.goal_stamp_ns = stamp_ns
        self.frames_since_goal = 0
        self.frames_below = 0
        self.goal_reached = False

    # ------------------------------------------------------------------ judging
    def update(self, stamp_ns: int, position: np.ndarray | None, quaternion: np.ndarray | None) -> Verdict:
        """One frame: the object's pose (palm frame; w, x, y, z), or None where it was not seen."""
        if position is None or quaternion is None:
            self.object_seen = False
            self.frames_below = 0
            self.restart_count = 0
            return self.check(stamp_ns)
        q = np.asarray(quaternion, dtype=np.float64)
        offset = np.asarray(position, dtype=np.float64) - self.reference
        inside = math.sqrt(float(offset @ offset)) <= self.rules.drop_distance_m     # False when not finite
        self.last_quaternion = q
        self.object_seen = True
        self.seen_since_ns = stamp_ns
        if not self.running:
            return self._waiting(stamp_ns, q, inside)
        rules = self.rules
        self.frames_since_goal += 1
        distance = self._distance(q, self.goal)
        dropped = not inside
        if not dropped and distance < rules.success_threshold_rad:
            self.frames_below += 1
        else:
            self.frames_below = 0
        success = (self.judge_success and not self.goal_reached
                   and self.frames_below >= rules.success_hold_frames)
        error, new_goal = distance, None
        if success:
            self.consecutive += 1
            self.goals_reached += 1
            self.frames_since_goal = 0
            self.frames_below = 0
            if self.sampler is not None:
                self.goal = new_goal = self._draw(q)
                self.goal_stamp_ns = stamp_ns
                error = self._distance(q, self.goal)
            else:
                self.goal_reached = True            # a follower counts a goal once
        self.rotation_error = error
        task_done = self.consecutive >= rules.max_consecutive_successes
        timeout = not dropped and not task_done and self._goal_timed_out(stamp_ns)
        self.drops += dropped
        self.goal_timeouts += timeout
        if dropped or task_done or timeout:
            self.running = False
        return Verdict(True, distance, error, success, dropped, False, timeout, task_done,
                       new_goal=None if new_goal is None else new_goal.copy())

    def check(self, stamp_ns: int) -> Verdict:
        """Timeouts without a seen frame (a timer calls this): the object lost, the goal not reached in time."""
        if not self.running:
            return Verdict(False, math.nan, self.rotation_error)
        seen = self.seen_since_ns if self.seen_since_ns is not None else self.goal_stamp_ns
        if stamp_ns - seen >= self.rules.lost_timeout_s * 1e9:
            self.running = False
            self.drops += 1
            self.drops_lost += 1
            return Verdict(False, math.nan, self.rotation_error, dropped=True, lost=True)
        if not self._frame_mode and self._goal_timed_out(stamp_ns):
            self.running = False
            self.goal_timeouts += 1
            return Verdict(False, math.nan, self.rotation_error, goal_timeout=True)
        return Verdict(False, math.nan, self.rotation_error)

    def _waiting(self, stamp_ns: int, q: np.ndarray, inside: bool) -> Verdict:
        """Between episodes: a leader starts the next one once the object is back in the hand."""
        self.restart_count = self.restart_count + 1 if inside else 0
        if self.goal is not None:
            self.rotation_error = self._distance(q, self.goal)
        if self.sampler is not None and self.restart_count >= self.rules.restart_frames:
            goal = self.start_episode(stamp_ns, q)
            return Verdict(False, math.nan, self.rotation_error, episode_started=True, new_goal=goal)
        return Verdict(False, math.nan, self.rotation_error)

    def _draw(self, current: np.ndarray) -> np.ndarray:
        if self.rng is None:
            raise RuntimeError("this judge draws goals but has no random generator (set judge.rng)")
        return self.sampler.sample(current, self.rng)

    def _goal_timed_out(self, stamp_ns: int) -> bool:
        if self._frame_mode:
            return self._timeout_frames is not None and self.frames_since_goal >= self._timeout_frames
        return stamp_ns - self.goal_stamp_ns >= self.rules.goal_timeout_s * 1e9

    def _distance(self, q: np.ndarray, goal: np.ndarray) -> float:
        if self.symmetry is not None:
            return self.symmetry.distance(q, goal)
        # geodesic angle, scalar fast path of geometry.rotation_distance (the simulator's per-step value)
        return 2.0 * math.acos(min(1.0, abs(float(q @ goal))))

    # ------------------------------------------------------------------ reporting and state
    def metrics(self) -> TaskMetrics:
        goal = None if self.goal is None else tuple(float(v) for v in self.goal)
        return TaskMetrics(self.running, self.episodes, self.consecutive, self.goals_reached, self.drops,
                           self.drops_lost, self.goal_timeouts, float(self.rotation_error), self.frames_below,
                           self.object_seen, goal)

    def snapshot(self) -> dict[str, Any]:
        """Everything :meth:`restore` needs to continue identically (not the random generator: its owner's)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in _STATE}

    def restore(self, state: dict[str, Any]) -> None:
        for name in _STATE:
            setattr(self, name, copy.deepcopy(state[name]))
