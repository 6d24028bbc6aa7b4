"""ReorientEnv: the randomized Allegro in-hand reorientation task (Dactyl-style reward).

One policy step = ``substeps`` MuJoCo steps at the configured policy rate. The
observation carries what the robot measures (noisy joint positions, the sim
clock, the goal) plus noisy object points, and renders the depth camera only
when asked (:meth:`Observation.render`), so training without pixels pays
nothing for the camera. Randomization comes from :mod:`.randomization`; each
episode is a pure function of (seed, episode index), bit for bit.

Longer than 600 lines because one class holds the task's whole step (physics,
unmodeled effects, observation, reward, termination): split, the step would
be read across files.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Mapping

import mujoco
import numpy as np

from ..camera_model import Intrinsics
from ..config import ConfigError
from ..extrinsics import Extrinsic
from ..geometry import (make_transform, matrix_to_quat, quat_conjugate, quat_multiply, quat_to_matrix,
                        random_quaternion)
from ..hand.safety import SafetyFilter, SafetyLimits, load_hand_parameters, load_safety_tables
from ..objects.models import SIM_OBJECT_SYMMETRY
from ..objects.symmetry import Symmetry, parse_symmetry
from ..task import GoalSampler, TaskJudge, TaskMetrics, TaskRules
from .model import LABEL_BACKGROUND, OPTICAL_TO_MUJOCO_CAMERA, SceneModel, build_scene
from .objects import canonical_points
from .randomization import (RENDER_STREAM, TASK_STREAM, EpisodeParams, EpisodeRandomizer, RandomizationConfig,
                            apply_model_terms, as_randomization_config, term_rng)
from .randomization_effects import ActionTarget, ModelTarget, ObservationTarget, StepTerm
from .render import DepthRenderer, apply_depth_effects, set_camera_intrinsics
from .sim_config import SimConfig, as_sim_config

HOLD_CHECK_S = 0.25            # after settling: true gravity for this long, then check the grasp
MAX_RESET_ATTEMPTS = 5
HELD_MAX_SPEED = 0.05        # m/s: an object still moving faster after settling is not held


class StaleObservationError(RuntimeError):
    """An observation from an earlier episode was asked to render (the model has changed since)."""


@dataclass(frozen=True)
class DepthFrame:
    """One simulated depth frame, in the robot's conventions."""

    depth: np.ndarray                   # (H, W) float32 metres, 0 = no return
    labels: np.ndarray                  # (H, W) uint8: 0 background, 1 hand, 2 object, 3 table/other
    intrinsics: Intrinsics              # as rendered (after jitter)
    extrinsic: Extrinsic                # camera optical -> palm as rendered (after jitter)
    calibrated_intrinsics: Intrinsics   # nominal: what the robot's camera_info would say
    calibrated_extrinsic: Extrinsic     # nominal: config/extrinsics.yaml
    time_ns: int
    episode: int
    step: int
    true_joint_positions: np.ndarray | None = None   # (16,) the pose rendered (ground truth, never the student's)


class _FrameSource:
    """What is needed to render one observation's frame later: the pose snapshot."""

    __slots__ = ("env", "episode", "step", "time_ns", "qpos", "frame")

    def __init__(self, env: "ReorientEnv", episode: int, step: int, time_ns: int, qpos: np.ndarray):
        self.env = weakref.ref(env)
        self.episode, self.step, self.time_ns, self.qpos = episode, step, time_ns, qpos
        self.frame: DepthFrame | None = None

    def render(self) -> DepthFrame:
        if self.frame is None:
            env = self.env()
            if env is None:
                raise StaleObservationError("the environment of this observation is gone")
            self.frame = env._render_source(self)
        return self.frame


@dataclass(frozen=True, eq=False)
class Observation:
    """What the student may see at one policy step."""

    time_ns: int                        # sim clock (monotonic across episodes)
    episode: int
    step: int
    joint_positions: np.ndarray         # (16,) rad, canonical order, noisy
    object_points: np.ndarray           # (N, 3) float32 palm frame (sim stand-in for perception), moved by the
                                        # object offset the camera sees (the object-point noise terms)
    goal_quaternion: np.ndarray         # (4,) w, x, y, z, palm frame
    frozen: bool = False                # sensor freeze: this is the previous observation held
    frame_dropped: bool = False         # no camera frame this step (object_points held)
    _frame: _FrameSource | None = field(default=None, repr=False)

    def render(self) -> DepthFrame | None:
        """The depth frame of this observation (rendered on first call; None if dropped)."""
        return None if self._frame is None else self._frame.render()


@dataclass(frozen=True)
class StepResult:
    observation: Observation
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


@dataclass(frozen=True)
class PrivilegedState:
    """Ground truth (never a student input): poses and velocities in the palm frame."""

    time_ns: int
    episode: int
    step: int
    object_name: str
    mount: str
    object_position: np.ndarray          # (3,) m
    object_quaternion: np.ndarray        # (4,) w, x, y, z
    object_linear_velocity: np.ndarray   # (3,) m/s
    object_angular_velocity: np.ndarray  # (3,) rad/s
    goal_quaternion: np.ndarray
    rotation_distance: float
    joint_positions: np.ndarray          # (16,) true, canonical order
    joint_velocities: np.ndarray
    joint_targets: np.ndarray            # (16,) actuator targets actually applied
    consecutive_successes: int
    physics_params: dict[str, Any]       # JSON-able

    def to_json(self) -> dict[str, Any]:
        out = {}
        for key, value in self.__dict__.items():
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


@dataclass(frozen=True)
class SimState:
    """Full state for rollouts from a copy: MuJoCo integration state + the env's own state."""

    episode: int
    object_name: str
    physics: np.ndarray                  # mj_getState(mjSTATE_INTEGRATION)
    env: dict[str, Any]


class _SceneSlot:
    """A compiled scene, its data, nominal parameters and (lazily) a renderer."""

    def __init__(self, scene: SceneModel):
        self.scene = scene
        self.model = scene.model
        self.data = mujoco.MjData(scene.model)
        self.scratch = mujoco.MjData(scene.model)           # for rendering snapshots
        m, g, b = scene.model, scene.object_geom_id, scene.object_body_id
        self.mesh_id = int(m.geom_dataid[g]) if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH else -1
        self.nominal = {name: getattr(m, name).copy() for name in (
            "geom_friction", "geom_size", "geom_rbound", "geom_aabb", "geom_pos", "body_mass",
            "body_inertia", "body_ipos", "dof_damping", "actuator_gainprm", "actuator_biasprm",
            "jnt_range", "bvh_aabb", "mesh_vert", "cam_pos", "cam_quat", "cam_intrinsic",
            "cam_sensorsize", "cam_resolution")}
        self.nominal_gravity = m.opt.gravity.copy()
        self.object_bvh = slice(int(m.body_bvhadr[b]), int(m.body_bvhadr[b] + m.body_bvhnum[b]))
        if self.mesh_id >= 0:
            self.mesh_bvh = slice(int(m.mesh_bvhadr[self.mesh_id]),
                                  int(m.mesh_bvhadr[self.mesh_id] + m.mesh_bvhnum[self.mesh_id]))
            self.mesh_verts = slice(int(m.mesh_vertadr[self.mesh_id]),
                                    int(m.mesh_vertadr[self.mesh_id] + m.mesh_vertnum[self.mesh_id]))
        self.renderer: DepthRenderer | None = None
        self.mesh_dirty = False
        self.palm_quat_conjugate = quat_conjugate(matrix_to_quat(scene.palm_rotation))
        # moving hand links and the canonical joint that moves each (a fingertip: its distal link's joint)
        joint_of_body = {int(b): k for k, b in enumerate(m.jnt_bodyid[scene.joint_ids])}
        bodies, joints = [], []
        for body in sorted(set(scene.link_body_ids.values()) - {scene.palm_body_id}):
            up = body
            while up not in joint_of_body and up > 0:
                up = int(m.body_parentid[up])
            if up in joint_of_body:
                bodies.append(body)
                joints.append(joint_of_body[up])
        self.hand_bodies = np.array(bodies, dtype=np.int64)
        self.hand_body_joint = np.array(joints, dtype=np.int64)

    def restore(self) -> None:
        for name, value in self.nominal.items():
            getattr(self.model, name)[:] = value
        self.model.opt.gravity[:] = self.nominal_gravity


class ReorientEnv:
    """Reorient the object in hand to a goal orientation (palm up or palm down).

    ``sim_config`` / ``randomization_config``: dataclass, YAML path, mapping or
    None (the packaged config/sim.yaml and config/randomization.yaml).
    ``external_goals``: someone else (the goal node) sets the goals
    (:meth:`set_goal`) and judges success; the env then never declares a
    success, draws no goal after one and has no goal timeout, but still ends
    the episode on a drop (its physics reset). Success, drop and timeout are
    decided by :class:`dexterity_ros.task.TaskJudge`, the robot's rules.
    """

    def __init__(self, sim_config: SimConfig | str | Mapping | None = None,
                 randomization_config: RandomizationConfig | str | Mapping | None = None,
                 seed: int = 0, external_goals: bool = False):
        self.config = as_sim_config(sim_config)
        self.randomization = as_randomization_config(randomization_config)
        self._seed = int(seed)
        self._next_episode = 0
        self._slots: dict[str, _SceneSlot] = {}
        for name in dict.fromkeys(self.config.objects):      # build (and validate) every object now
            self._slots[name] = _SceneSlot(build_scene(self.config, name, self.config.mount))
        first = self._slots[self.config.objects[0]]
        self._slot = first
        self.hand = first.scene.hand
        self.joint_names = self.hand.joint_names
        self.num_joints = self.hand.num_joints
        self.policy_period_s = first.scene.policy_period_s
        self.policy_period_ns = int(round(self.policy_period_s * 1e9))
        self.action_low = self.hand.lower.copy()
        self.action_high = self.hand.upper.copy()
        self._hand_filter = hand_command_filter(self.config, self.hand)      # None: targets go to the actuators
        mount = self.config.mount_config()
        self._initial_joints = self._initial_pose(mount.initial_joints)
        self._clock_ns = 0
        self._episode = -1
        self._done = True
        self._rand: EpisodeRandomizer | None = None
        self._action_terms: list[StepTerm] = []         # active step-time terms, in STEP_ORDER
        self._observation_terms: list[StepTerm] = []
        task = self.config.task
        rules = TaskRules.from_task(task)
        if external_goals:
            rules = dataclasses.replace(rules, goal_timeout_s=math.inf)
        self.external_goals = bool(external_goals)
        self._judge = TaskJudge(rules, np.array(mount.object_position), GoalSampler.from_task(task),
                                frame_period_s=self.policy_period_s, judge_success=not external_goals)
        self._symmetries: dict[str, Symmetry] = {}

    # ------------------------------------------------------------------ public properties
    @property
    def scene(self) -> SceneModel:
        return self._slot.scene

    @property
    def model(self) -> mujoco.MjModel:
        return self._slot.model

    @property
    def data(self) -> mujoco.MjData:
        return self._slot.data

    @property
    def episode(self) -> int:
        return self._episode

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def commanded_targets(self) -> np.ndarray:
        """The last action given to :meth:`step` (before bias, noise, delay, backlash): what a policy
        that repeats its previous command sends; the settled grasp's targets before the first step."""
        return self._commanded_targets.copy()

    @property
    def hand_command(self) -> np.ndarray | None:
        """hand_node's command for the last target (``hand_command.filter``; None when the filter is off)."""
        return None if self._hand_filter is None else self._hand_filter.command.copy()

    @property
    def hand_command_max_step(self) -> np.ndarray | None:
        """How far hand_node lets each joint's command move in one policy period (rad; None: filter off)."""
        return None if self._hand_filter is None else self._hand_filter.limits.max_velocity * self.policy_period_s

    @property
    def initial_joint_positions(self) -> np.ndarray:
        """The mount's start joint targets (canonical order, rad): a "hold still" action."""
        return self._initial_joints.copy()

    @property
    def _goal(self) -> np.ndarray:
        return self._judge.goal

    def task_metrics(self) -> TaskMetrics:
        """The judge's counters (all episodes of this env) and current state."""
        return self._judge.metrics()

    @property
    def episode_params(self) -> EpisodeParams:
        if self._rand is None:
            raise RuntimeError("call reset() first")
        return self._rand.params

    def _initial_pose(self, by_name: Mapping[str, float]) -> np.ndarray:
        q = np.zeros(self.num_joints)
        aliases = self.hand.aliases()
        for name, value in by_name.items():
            if name not in aliases:
                raise ConfigError(f"initial_joints: unknown joint '{name}'")
            q[aliases[name]] = float(value)
        return self.hand.clamp(q)

    # ------------------------------------------------------------------ reset
    def reset(self, seed: int | None = None) -> Observation:
        """Start the next episode (or episode 0 of ``seed``)."""
        if seed is not None:
            self._seed = int(seed)
            self._next_episode = 0
        self._episode = episode = self._next_episode
        self._next_episode += 1
        task_rng = term_rng(self._seed, episode, TASK_STREAM)
        name = self.config.objects[int(task_rng.integers(len(self.config.objects)))]
        self._slot = slot = self._slots[name]
        self._rand = EpisodeRandomizer(self.randomization, self._seed, episode, self.num_joints)
        self._apply_params(slot, self._rand.params)
        self._task_rng = task_rng
        self._reference = np.array(self.config.mount_config().object_position)
        self.reset_attempts = self._settle(slot, task_rng)
        d, scene = slot.data, slot.scene
        start = d.ctrl[scene.actuator_index].copy()
        self._action_terms = self._rand.step_terms("action", start)      # each with its episode state
        self._observation_terms = self._rand.step_terms("observation", start)
        self._applied_targets = start.copy()
        self._commanded_targets = start.copy()     # the last action given to step() (before noise/delay)
        if self._hand_filter is not None:
            self._hand_filter.reset(start)         # hand_node starts from the measured pose
        self._step = 0
        self._done = False
        self._clock_ns += self.policy_period_ns
        self._judge.rng = task_rng                     # goals: the episode's task stream, after the placement
        self._judge.set_symmetry(self._object_symmetry(name))
        self._judge.start_episode(self._clock_ns, self._object_quaternion())
        self._distance = self._judge.rotation_error
        self._last_obs: Observation | None = None
        self._last_obs = self._observe(allow_events=False)
        return self._last_obs

    def _apply_params(self, slot: _SceneSlot, p: EpisodeParams) -> None:
        """Restore the nominal model, let each active model term write this episode's values, set the camera."""
        slot.restore()
        m, scene = slot.model, slot.scene
        ext, k = scene.extrinsic, scene.intrinsics
        target = ModelTarget(
            m, scene.object_geom_id, scene.object_body_id, scene.hand_geom_ids, scene.joint_dof_index,
            scene.actuator_index, scene.joint_ids, slot.object_bvh,
            slot.mesh_verts if slot.mesh_id >= 0 else None, slot.mesh_bvh if slot.mesh_id >= 0 else None,
            camera_rotation=ext.rotation, camera_translation=ext.translation,
            intrinsics=np.array([k.fx, k.fy, k.cx, k.cy]), hand_bodies=slot.hand_bodies,
            hand_body_joint=slot.hand_body_joint)
        apply_model_terms(self.randomization, target, p)
        slot.mesh_dirty = slot.mesh_dirty or target.mesh_changed
        self._gravity = m.opt.gravity.copy()
        # camera: the rendered pose/intrinsics differ from the calibrated ones by the jitter terms
        self._true_extrinsic = Extrinsic(make_transform(target.camera_rotation, target.camera_translation),
                                         ext.parent_frame, ext.child_frame)
        m.cam_pos[scene.camera_id] = self._true_extrinsic.translation
        m.cam_quat[scene.camera_id] = matrix_to_quat(target.camera_rotation @ OPTICAL_TO_MUJOCO_CAMERA)
        fx, fy, cx, cy = target.intrinsics
        self._true_intrinsics = Intrinsics(k.width, k.height, fx, fy, cx, cy)
        set_camera_intrinsics(m, scene.camera_id, self._true_intrinsics)
        mujoco.mj_setConst(m, slot.data)

    def _settle(self, slot: _SceneSlot, rng: np.random.Generator) -> int:
        """Place hand and object, let them settle (gravity into the palm), check the grasp holds."""
        m, d, scene = slot.model, slot.data, slot.scene
        mount = self.config.mount_config()
        palm_gravity = scene.palm_gravity(float(np.linalg.norm(slot.nominal_gravity)))
        for attempt in range(1, MAX_RESET_ATTEMPTS + 1):
            mujoco.mj_resetData(m, d)
            noise = rng.uniform(-1, 1, self.num_joints) * mount.initial_joint_noise_rad
            target = self.hand.clamp(self._initial_joints + noise)
            start = self.hand.clamp(np.zeros(self.num_joints)) if mount.start_open else target
            d.qpos[scene.joint_qpos_index] = start
            d.ctrl[scene.actuator_index] = target
            a = scene.object_qpos_start
            offset = rng.uniform(-1, 1, 3) * mount.object_position_noise_m
            d.qpos[a:a + 3] = scene.palm_position + scene.palm_rotation @ (self._reference + offset)
            quat = random_quaternion(rng) if self.config.task.random_initial_orientation else np.array([1.0, 0, 0, 0])
            d.qpos[a + 3:a + 7] = quat_multiply(matrix_to_quat(scene.palm_rotation), quat)
            m.opt.gravity[:] = palm_gravity if mount.palm_gravity_settle else self._gravity
            mujoco.mj_forward(m, d)
            mujoco.mj_step(m, d, nstep=max(1, int(round(mount.settle_time_s / m.opt.timestep))))
            m.opt.gravity[:] = self._gravity
            mujoco.mj_step(m, d, nstep=max(1, int(round(HOLD_CHECK_S / m.opt.timestep))))
            v0 = scene.object_dof_start
            near = np.linalg.norm(self._object_position() - self._reference) < 0.5 * self.config.task.drop_distance_m
            if near and np.linalg.norm(d.qvel[v0:v0 + 3]) < HELD_MAX_SPEED:
                return attempt
        return MAX_RESET_ATTEMPTS + 1          # not held: the first step will report the drop

    def _object_symmetry(self, name: str) -> Symmetry | None:
        """The object's symmetry for a symmetry-aware judge (mesh objects: none); None when not asked for."""
        if not self.config.task.symmetry_aware:
            return None
        if name not in self._symmetries:
            self._symmetries[name] = parse_symmetry(SIM_OBJECT_SYMMETRY.get(name, "none"))
        return self._symmetries[name]

    def set_goal(self, goal: np.ndarray) -> None:
        """Judge (and reward) against ``goal`` (w, x, y, z, palm frame) from the next step on."""
        if self._episode < 0:
            raise RuntimeError("call reset() first")
        q = np.asarray(goal, dtype=np.float64)
        norm = float(np.linalg.norm(q)) if q.shape == (4,) else math.nan
        if not (math.isfinite(norm) and norm > 1e-6):
            raise ValueError(f"goal must be a finite non-zero quaternion (w, x, y, z), got {q.tolist()}")
        q = q / norm
        self._judge.set_goal(q if q[0] >= 0 else -q, self._clock_ns)
        self._distance = self._judge.rotation_error

    # ------------------------------------------------------------------ pose helpers
    def _object_position(self) -> np.ndarray:
        scene, d = self.scene, self.data
        a = scene.object_qpos_start
        return scene.palm_rotation.T @ (d.qpos[a:a + 3] - scene.palm_position)

    def _object_quaternion(self) -> np.ndarray:
        """Object orientation in the palm frame (w >= 0); mju_* keeps the hot path cheap."""
        a = self.scene.object_qpos_start
        q = np.empty(4)
        mujoco.mju_mulQuat(q, self._slot.palm_quat_conjugate, self.data.qpos[a + 3:a + 7])
        q /= math.sqrt(float(q @ q))
        return q if q[0] >= 0 else -q

    # ------------------------------------------------------------------ step
    def step(self, joint_targets: np.ndarray) -> StepResult:
        """Apply joint position targets (canonical order, rad) for one policy period."""
        if self._done:
            raise RuntimeError("the episode is over (or never started): call reset()")
        action = np.asarray(joint_targets, dtype=np.float64)
        if action.shape != (self.num_joints,):
            raise ValueError(f"expected {self.num_joints} joint targets in canonical order "
                             f"{list(self.joint_names)}, got shape {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"joint targets must be finite, got {action.tolist()}")
        slot, scene = self._slot, self.scene
        m, d = slot.model, slot.data
        action = np.clip(action, self.action_low, self.action_high)
        self._commanded_targets = action.copy()
        if self._hand_filter is not None:       # hand_node's clamp and speed limit, as on the robot
            action = self._hand_filter.step(action, self.policy_period_s).command
        # the active action terms (randomization.STEP_ORDER): bias, noise, delay, backlash, object wrench,
        # this step's duration
        act = ActionTarget(action, float(m.body_mass[scene.object_body_id]), substeps=scene.substeps)
        for term in self._action_terms:
            term.event.on_action(term, act)
        self._applied_targets = np.clip(act.targets, self.action_low, self.action_high)
        d.ctrl[scene.actuator_index] = self._applied_targets
        d.xfrc_applied[scene.object_body_id] = act.wrench
        mujoco.mj_step(m, d, nstep=act.substeps)
        self._step += 1
        # the clock is the simulated time: one policy period, or what control_period_jitter made of it
        self._clock_ns += self.policy_period_ns if act.substeps == scene.substeps else \
            int(round(act.substeps * scene.physics_timestep * 1e9))

        # success, drop and goal timeout: the task's judge (the robot's rules); the reward stays here
        task = self.config.task
        position = self._object_position() if np.isfinite(d.qpos).all() else np.full(3, np.nan)  # blow-up: drop
        verdict = self._judge.update(self._clock_ns, position, self._object_quaternion())
        reward = self._distance - verdict.distance
        dropped, success = bool(verdict.dropped), bool(verdict.success)
        if dropped:
            reward += task.drop_penalty
        if success:
            reward += task.success_bonus
        self._distance = distance = verdict.rotation_error
        terminated = dropped or verdict.task_done
        truncated = (not terminated) and (self._step >= task.max_episode_steps or verdict.goal_timeout)
        self._done = terminated or truncated
        obs = self._observe(allow_events=True)
        self._last_obs = obs
        info = {"rotation_distance": distance, "success": success, "dropped": dropped,
                "consecutive_successes": self._judge.consecutive, "episode_step": self._step,
                "goal_timeout": bool(verdict.goal_timeout)}
        return StepResult(obs, float(reward), bool(terminated), bool(truncated), info)

    # ------------------------------------------------------------------ observation
    def _observe(self, allow_events: bool) -> Observation:
        scene, d, prev = self.scene, self.data, self._last_obs
        # the active observation terms (randomization.STEP_ORDER): sensor freeze (holds everything),
        # joint bias and noise, frame dropout (holds the points); then the object offset the camera sees
        obs = ObservationTarget(d.qpos[scene.joint_qpos_index], prev, allow_events, self._true_object_points)
        for term in self._observation_terms:
            term.event.on_observation(term, obs)
            if obs.held:
                return _held(prev, self._clock_ns, self._step, self._goal)
        if obs.points_held:
            points, frame = obs.points, None
        else:
            offset = self._rand.object_offset(self._step)
            points = (obs.points if offset is None else obs.points + offset).astype(np.float32)
            frame = _FrameSource(self, self._episode, self._step, self._clock_ns, d.qpos.copy())
        return Observation(self._clock_ns, self._episode, self._step, _frozen_array(obs.joints),
                           _frozen_array(points), _frozen_array(self._goal), False, bool(obs.frame_dropped),
                           frame)

    def _true_object_points(self) -> np.ndarray:
        """The object's points in the palm frame (float64; the observation terms add bias and noise)."""
        scene, p = self.scene, self._rand.params
        canon = canonical_points(scene.object.name, self.config.task.object_points, self.config.mesh_objects)
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, self._object_quaternion())
        return (canon.astype(np.float64) * p.object_scale) @ rot.reshape(3, 3).T + self._object_position()

    def goal_points(self, n: int | None = None) -> np.ndarray:
        """Canonical points of the current object rotated to the goal (goal representation)."""
        canon = canonical_points(self.scene.object.name, n or self.config.task.object_points,
                                 self.config.mesh_objects)
        return (canon.astype(np.float64) @ quat_to_matrix(self._goal).T).astype(np.float32)

    # ------------------------------------------------------------------ rendering
    def render(self) -> DepthFrame:
        """Render the current state (not subject to freeze/dropout)."""
        if self._episode < 0:
            raise RuntimeError("call reset() first")
        source = _FrameSource(self, self._episode, self._step, self._clock_ns, self.data.qpos.copy())
        return source.render()

    def _render_source(self, source: _FrameSource) -> DepthFrame:
        if source.episode != self._episode:
            raise StaleObservationError(
                f"observation of episode {source.episode} rendered during episode {self._episode}: "
                "render observations before the next reset()")
        slot, scene, cam = self._slot, self.scene, self.config.camera
        if slot.renderer is None:
            slot.renderer = DepthRenderer(slot.model, cam.width, cam.height)
            slot.mesh_dirty = False
        if slot.mesh_dirty:
            slot.renderer.upload_mesh(slot.mesh_id)
            slot.mesh_dirty = False
        scratch = slot.scratch
        scratch.qpos[:] = source.qpos
        offset = self._rand.object_offset(source.step)      # the object-point noise terms: where it is seen
        if offset is not None:
            a = scene.object_qpos_start
            scratch.qpos[a:a + 3] += scene.palm_rotation @ offset
        mujoco.mj_kinematics(slot.model, scratch)
        mujoco.mj_camlight(slot.model, scratch)
        raw = slot.renderer.render(scratch, scene.camera_id)
        labels = np.where(raw.geom_id >= 0, scene.geom_labels[np.maximum(raw.geom_id, 0)],
                          LABEL_BACKGROUND).astype(np.uint8)
        rc, p = self.randomization, self._rand.params
        rng = term_rng(self._seed, self._episode, RENDER_STREAM, source.step)
        noise_on = self._rand.active("depth_noise")
        edge = rc.depth_edge_dropout
        depth = apply_depth_effects(
            raw.depth, rng, min_depth=cam.min_depth_m, max_depth=cam.max_depth_m,
            noise_base=rc.depth_noise.std_base if noise_on else 0.0,
            noise_quadratic=rc.depth_noise.std_quadratic if noise_on else 0.0,
            quantization=p.depth_quantization_m, edge_probability=p.edge_dropout_probability,
            edge_threshold=edge.threshold_m, edge_dilation=edge.dilation_px)
        return DepthFrame(depth, labels, self._true_intrinsics, self._true_extrinsic, scene.intrinsics,
                          scene.extrinsic, source.time_ns, source.episode, source.step,
                          source.qpos[scene.joint_qpos_index].copy())

    # ------------------------------------------------------------------ ground truth and state
    def privileged_state(self) -> PrivilegedState:
        if self._episode < 0:
            raise RuntimeError("call reset() first")
        scene, d = self.scene, self.data
        rp = scene.palm_rotation
        v0 = scene.object_dof_start
        r_obj = d.xmat[scene.object_body_id].reshape(3, 3)
        params = self._rand.params.to_json()
        params.update(object=scene.object.name, mount=scene.mount,
                      object_mass_kg=float(self.model.body_mass[scene.object_body_id]),
                      gravity=self.model.opt.gravity.tolist(), physics_timestep_s=scene.physics_timestep,
                      substeps=scene.substeps, seed=self._seed, episode=self._episode,
                      reset_attempts=self.reset_attempts)
        return PrivilegedState(
            time_ns=self._clock_ns, episode=self._episode, step=self._step,
            object_name=scene.object.name, mount=scene.mount,
            object_position=self._object_position(), object_quaternion=self._object_quaternion(),
            object_linear_velocity=rp.T @ d.qvel[v0:v0 + 3],
            object_angular_velocity=rp.T @ (r_obj @ d.qvel[v0 + 3:v0 + 6]),
            goal_quaternion=self._goal.copy(), rotation_distance=self._distance,
            joint_positions=d.qpos[scene.joint_qpos_index].copy(),
            joint_velocities=d.qvel[scene.joint_dof_index].copy(),
            joint_targets=self._applied_targets.copy(),
            consecutive_successes=self._judge.consecutive, physics_params=params)

    def get_state(self) -> SimState:
        """Everything needed to continue this episode identically after :meth:`set_state`."""
        if self._episode < 0:
            raise RuntimeError("call reset() first")
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, physics, spec)
        terms = {t.name: t for t in self._action_terms}
        env = {"step": self._step, "done": self._done, "goal": self._goal.copy(),   # goal: for planners
               "distance": self._distance, "judge": self._judge.snapshot(),      # success/drop/timeout state
               "applied_targets": self._applied_targets.copy(), "commanded_targets": self._commanded_targets.copy(),
               "last_obs": self._last_obs, "clock_ns": self._clock_ns,
               "hand_filter": None if self._hand_filter is None else self._hand_filter.snapshot(),
               # each active step-time term's own state (delay queue, backlash, wrench, freeze count)
               "terms": {t.name: copy.deepcopy(t.state) for t in self._action_terms + self._observation_terms},
               # read-only copies for planners (learning/expert.py): commands still delayed, object wrench
               "action_queue": [a.copy() for a in terms["action_delay"].state] if "action_delay" in terms else [],
               "wrench": terms["object_force"].state["wrench"].copy() if "object_force" in terms else np.zeros(6),
               "streams": copy.deepcopy(self._rand.stream_states()),
               "task_rng": copy.deepcopy(self._task_rng.bit_generator.state)}
        return SimState(self._episode, self.scene.object.name, physics, env)

    def set_state(self, state: SimState) -> None:
        """Restore a state of the current episode (the episode's model parameters must match)."""
        if state.episode != self._episode or state.object_name != self.scene.object.name:
            raise ValueError(f"state is from episode {state.episode} ({state.object_name}) but the env is "
                             f"in episode {self._episode} ({self.scene.object.name}); "
                             f"reset(seed={self._seed}) to that episode first")
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        if state.physics.shape != (mujoco.mj_stateSize(self.model, spec),):
            raise ValueError("physics state size does not match this model")
        mujoco.mj_setState(self.model, self.data, state.physics, spec)
        mujoco.mj_forward(self.model, self.data)
        e = state.env
        self._step, self._done, self._distance = e["step"], e["done"], e["distance"]
        self._judge.restore(e["judge"])
        self._applied_targets = e["applied_targets"].copy()
        self._commanded_targets = e["commanded_targets"].copy()
        if self._hand_filter is not None:
            self._hand_filter.restore(e["hand_filter"])
        for term in self._action_terms + self._observation_terms:
            term.state = copy.deepcopy(e["terms"][term.name])
        self._last_obs, self._clock_ns = e["last_obs"], e["clock_ns"]
        self._rand.restore_streams(copy.deepcopy(e["streams"]))
        self._task_rng.bit_generator.state = copy.deepcopy(e["task_rng"])

    def close(self) -> None:
        for slot in self._slots.values():
            if slot.renderer is not None:
                slot.renderer.close()
                slot.renderer = None

    def __enter__(self) -> "ReorientEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hand_command_filter(config: SimConfig, hand) -> SafetyFilter | None:
    """hand_node's safety filter built from its own parameter file, or None (``hand_command.filter`` off)."""
    if not config.hand_command.filter:
        return None
    path = config.hand_command.hand_config_path()
    velocity_scale = float(load_hand_parameters(path).get("velocity_scale", 1.0))
    return SafetyFilter(SafetyLimits.from_tables(load_safety_tables(path), hand, velocity_scale))


def _held(prev: Observation, time_ns: int, step: int, goal: np.ndarray) -> Observation:
    """The previous observation, re-stamped (sensor freeze); the goal stays current."""
    return Observation(time_ns, prev.episode, step, prev.joint_positions, prev.object_points,
                       _frozen_array(goal), True, prev.frame_dropped, prev._frame)


def _frozen_array(values: np.ndarray) -> np.ndarray:
    """A read-only copy: observations are shared by held (frozen) observations and recorders."""
    if isinstance(values, np.ndarray) and not values.flags.writeable:
        return values                   # already an observation's array: share it
    out = np.array(values, copy=True)
    out.setflags(write=False)
    return out


