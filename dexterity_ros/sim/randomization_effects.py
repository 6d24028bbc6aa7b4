"""What each randomization term does: its sampler and its effect on the model, the action or the observation.

The term table (:data:`dexterity_ros.sim.randomization.TERMS`) pairs each
term's name and config with the functions here, as Isaac Lab's event terms
pair a function with its parameters; split from that module so each file reads
in one go.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from ..geometry import quat_to_matrix
from .randomization_kinds import DropoutTerm, EdgeDropoutTerm, FreezeTerm, ObjectForceTerm, RangeTerm, Term

if TYPE_CHECKING:
    from .randomization import EpisodeParams, EpisodeRandomizer


# ----------------------------------------------------------------------------- terms
@dataclass
class ModelTarget:
    """What an episode's model terms write into (see :attr:`EventTerm.apply`).

    ReorientEnv restores the scene's nominal model, fills this in, lets every
    active term write its values (in term order), then writes the camera pose
    and intrinsics composed here and recomputes the model constants.
    """

    model: Any                          # mujoco.MjModel (its arrays are numpy views)
    object_geom: int
    object_body: int
    hand_geoms: np.ndarray
    joint_dofs: np.ndarray              # canonical joint order
    actuators: np.ndarray
    joints: np.ndarray
    object_bvh: slice
    mesh_verts: slice | None            # None: the object is a primitive
    mesh_bvh: slice | None
    camera_rotation: np.ndarray         # camera optical -> palm, as rendered
    camera_translation: np.ndarray
    intrinsics: np.ndarray              # fx, fy, cx, cy as rendered
    mesh_changed: bool = False          # the object mesh must be uploaded to the renderer again
    hand_bodies: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # moving hand links
    hand_body_joint: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # ^ per hand body, the canonical index of the joint that moves it (a fingertip: its distal link's joint)


Sampler = Callable[[Any, np.random.Generator, int], tuple]


@dataclass(frozen=True)
class EventTerm:
    """One randomization term in one place: its config default, sampling and effect (Isaac Lab's event term).

    ``sample(term_config, rng, num_joints)`` draws the term's episode values, one
    per :class:`EpisodeParams` field named in ``params`` (episode terms only).
    Its effect is one hook, matching ``acts_on``:

    * ``model``: ``apply(target, *values)`` writes the episode values into the
      episode's model (:class:`ModelTarget`); ``writes`` names the fields changed.
    * ``action``: ``on_action(term, action)`` changes the joint targets (or the
      object wrench) of one policy step (:class:`ActionTarget`), drawing its
      per-step values from ``term.rng``.
    * ``observation``: ``on_observation(term, obs)`` changes one observation
      (:class:`ObservationTarget`).
    * ``render``: none here; ReorientEnv._render_source passes the term's values
      to :func:`.render.apply_depth_effects` (one stream per frame, shared by the
      depth terms), or moves the object as the camera sees it
      (:meth:`EpisodeRandomizer.object_offset`: the object-point noise terms).

    A step-time term that keeps state across the steps of an episode (delay
    queue, backlash position, wrench, freeze count) creates it with
    ``init_state(params, start)`` (``start``: the joint targets after reset); it
    lives in :attr:`StepTerm.state` (saved by ReorientEnv.get_state). Step-time
    terms run in the fixed order of :data:`STEP_ORDER`.
    """

    kind: Literal["observation", "physics", "unmodeled", "visual"]
    default: Term                         # the config when the YAML leaves the term out (disabled)
    effect: str
    acts_on: Literal["model", "action", "observation", "render"]
    params: tuple[str, ...] = ()          # EpisodeParams fields sampled (episode terms)
    sample: Sampler | None = None
    apply: Callable[..., None] | None = None
    on_action: "Callable[[StepTerm, ActionTarget], None] | None" = None
    on_observation: "Callable[[StepTerm, ObservationTarget], None] | None" = None
    init_state: Callable[["EpisodeParams", np.ndarray], Any] | None = None
    writes: tuple[str, ...] = ()          # model fields ``apply`` changes ("opt.gravity": an option)
    positive: bool = False                # range must be > 0 (a scale factor)
    nonnegative: bool = False             # range must be >= 0
    distributions: tuple[str, ...] = ()   # allowed distributions (empty: any the term type takes)

    @property
    def sampled(self) -> tuple[str, ...]:
        """Allowed sampling times: per episode when the term has episode values, else per step."""
        return ("episode",) if self.params else ("step",)


def _draw(*shape: int | str, cast: Callable | None = None) -> Sampler:
    """Sampler of one value of the term's distribution with ``shape`` ("J": one per joint)."""
    def sample(term: Any, rng: np.random.Generator, num_joints: int) -> tuple:
        value = term.sample(rng, tuple(num_joints if s == "J" else s for s in shape))
        return (cast(value) if cast else value,)
    return sample


def _sample_friction(term: RangeTerm, rng: np.random.Generator, num_joints: int) -> tuple:
    return tuple(float(v) for v in term.sample(rng, (2,)))          # object, hand


def _sample_edge_dropout(term: EdgeDropoutTerm, rng: np.random.Generator, num_joints: int) -> tuple:
    low, high = term.range
    return (float(rng.uniform(low, high)),)


def _apply_friction(t: ModelTarget, object_scale: float, hand_scale: float) -> None:
    m = t.model
    m.geom_friction[t.object_geom, 0] = m.geom_friction[t.object_geom, 0] * object_scale
    m.geom_friction[t.hand_geoms, 0] = m.geom_friction[t.hand_geoms, 0] * hand_scale


def _apply_object_mass(t: ModelTarget, scale: float) -> None:
    m, b = t.model, t.object_body
    m.body_mass[b] = m.body_mass[b] * scale
    m.body_inertia[b] = m.body_inertia[b] * scale


def _apply_object_scale(t: ModelTarget, s: float) -> None:
    """Object size: geometry, bounding volumes and mesh; inertia (after the mass term) and centre of mass."""
    m, g, b = t.model, t.object_geom, t.object_body
    m.geom_size[g] = m.geom_size[g] * s
    m.geom_rbound[g] = m.geom_rbound[g] * s
    m.geom_aabb[g] = m.geom_aabb[g] * s
    m.geom_pos[g] = m.geom_pos[g] * s
    m.bvh_aabb[t.object_bvh] = m.bvh_aabb[t.object_bvh] * s
    if t.mesh_verts is not None:
        m.mesh_vert[t.mesh_verts] = m.mesh_vert[t.mesh_verts] * np.float32(s)
        m.bvh_aabb[t.mesh_bvh] = m.bvh_aabb[t.mesh_bvh] * s
        t.mesh_changed = True
    m.body_inertia[b] = m.body_inertia[b] * s * s
    m.body_ipos[b] = m.body_ipos[b] * s


def _apply_com_offset(t: ModelTarget, offset: np.ndarray) -> None:
    t.model.body_ipos[t.object_body] = t.model.body_ipos[t.object_body] + offset


def _apply_hand_link_mass(t: ModelTarget, scale: np.ndarray) -> None:
    """Per moving link (one scale per joint; a fingertip shares its distal link's): mass and inertia."""
    m, bodies = t.model, t.hand_bodies
    m.body_mass[bodies] = m.body_mass[bodies] * scale[t.hand_body_joint]
    m.body_inertia[bodies] = m.body_inertia[bodies] * scale[t.hand_body_joint][:, None]


def _apply_joint_damping(t: ModelTarget, scale: np.ndarray) -> None:
    t.model.dof_damping[t.joint_dofs] = t.model.dof_damping[t.joint_dofs] * scale


def _apply_actuator_gain(t: ModelTarget, scale: np.ndarray) -> None:
    m, a = t.model, t.actuators
    m.actuator_gainprm[a, 0] = m.actuator_gainprm[a, 0] * scale        # kp
    m.actuator_biasprm[a, 1] = m.actuator_biasprm[a, 1] * scale        # -kp


def _apply_joint_limit_offset(t: ModelTarget, offset: np.ndarray) -> None:
    limits = t.model.jnt_range[t.joints] + offset
    limits[:, 1] = np.maximum(limits[:, 1], limits[:, 0] + 1e-3)
    t.model.jnt_range[t.joints] = limits


def _apply_gravity(t: ModelTarget, offset: np.ndarray) -> None:
    t.model.opt.gravity[:] = t.model.opt.gravity + offset


def _apply_camera_translation(t: ModelTarget, offset: np.ndarray) -> None:
    t.camera_translation = t.camera_translation + offset


def _apply_camera_rotation(t: ModelTarget, rotvec: np.ndarray) -> None:
    t.camera_rotation = t.camera_rotation @ rotation_vector_matrix(rotvec)


def _apply_focal_length(t: ModelTarget, scale: np.ndarray) -> None:
    t.intrinsics[:2] = t.intrinsics[:2] * scale


def _apply_principal_point(t: ModelTarget, offset: np.ndarray) -> None:
    t.intrinsics[2:] = t.intrinsics[2:] + offset


# -- step-time terms (ReorientEnv.step and _observe loop over them in STEP_ORDER) -----------------
@dataclass
class StepTerm:
    """An active step-time term in one episode: its entry, config, episode values, state and stream."""

    name: str
    event: EventTerm
    config: Any                         # the term's config (a randomization_kinds type)
    params: "EpisodeParams"
    state: Any                          # from ``event.init_state`` (None: stateless)
    randomizer: "EpisodeRandomizer"

    @property
    def rng(self) -> np.random.Generator:
        """The term's own stream (created on first use)."""
        return self.randomizer.rng(self.name)


@dataclass
class ActionTarget:
    """What the action terms change in one policy step (ReorientEnv.step, before clipping to the limits)."""

    targets: np.ndarray                 # joint targets on their way to the actuators (canonical order)
    object_mass: float                  # kg (this episode's)
    wrench: np.ndarray = field(default_factory=lambda: np.zeros(6))   # force/torque on the object (world)
    substeps: int = 0                   # physics steps this policy step lasts (ReorientEnv: the scene's)


class ObservationTarget:
    """What the observation terms change in one observation (ReorientEnv._observe).

    ``points`` are the true object points (palm frame, float64) until a term
    changes them, computed on first use; ``points_held``: the previous
    observation's points are kept (frame dropout) and no object offset is added to them.
    ``held``: the whole previous observation is repeated (sensor freeze); no
    later term runs. ``events``: freeze and dropout may fire (not at reset).
    """

    __slots__ = ("joints", "previous", "events", "_true_points", "_points", "held", "frame_dropped",
                 "points_held")

    def __init__(self, joints: np.ndarray, previous: Any, events: bool, true_points: Callable[[], np.ndarray]):
        self.joints, self.previous, self.events = joints, previous, events
        self._true_points, self._points = true_points, None
        self.held = self.frame_dropped = self.points_held = False

    @property
    def points(self) -> np.ndarray:
        if self._points is None:
            self._points = self._true_points()
        return self._points

    @points.setter
    def points(self, value: np.ndarray) -> None:
        self._points = value


def _act_bias(t: StepTerm, a: ActionTarget) -> None:
    a.targets = a.targets + t.params.action_bias


def _act_noise(t: StepTerm, a: ActionTarget) -> None:
    a.targets = a.targets + t.config.sample(t.rng, (t.randomizer.num_joints,))


def _init_delay(p: "EpisodeParams", start: np.ndarray) -> deque:
    return deque([start.copy()] * p.action_delay_steps)          # the commands still on their way


def _act_delay(t: StepTerm, a: ActionTarget) -> None:
    if t.params.action_delay_steps:
        t.state.append(a.targets)
        a.targets = t.state.popleft()


def _init_backlash(p: "EpisodeParams", start: np.ndarray) -> dict[str, np.ndarray]:
    return {"position": start.copy()}


def _act_backlash(t: StepTerm, a: ActionTarget) -> None:
    half = 0.5 * t.params.backlash
    t.state["position"] = np.clip(t.state["position"], a.targets - half, a.targets + half)
    a.targets = t.state["position"]


def _init_wrench(p: "EpisodeParams", start: np.ndarray) -> dict[str, np.ndarray]:
    return {"wrench": np.zeros(6)}


def draw_object_wrench(term: ObjectForceTerm, rng: np.random.Generator, previous: np.ndarray,
                       mass: float) -> np.ndarray:
    """Next (6,) force/torque on the object: decay the last one or start a new one."""
    if rng.random() < term.probability:
        return np.concatenate([rng.normal(0, term.force_std * mass, 3),
                               rng.normal(0, term.torque_std * mass, 3)])
    return previous * term.decay


def _act_object_force(t: StepTerm, a: ActionTarget) -> None:
    t.state["wrench"] = draw_object_wrench(t.config, t.rng, t.state["wrench"], a.object_mass)
    a.wrench = t.state["wrench"]


def _act_period_jitter(t: StepTerm, a: ActionTarget) -> None:
    """This step lasts (1 + U(range)) policy periods, rounded to whole physics steps.

    Late, never early: a control loop waits for its next frame, and student_node
    skips a frame less than 0.9 period after the last one it acted on (so an early
    step would be one the robot never takes).
    """
    a.substeps = max(1, int(round(a.substeps * (1.0 + float(t.config.sample(t.rng, ()))))))


def draw_freeze_steps(term: FreezeTerm, rng: np.random.Generator) -> int:
    """Steps to hold the observation for, starting now (0: no freeze starts)."""
    if rng.random() < term.probability:
        low, high = term.duration_steps
        return int(rng.integers(low, high, endpoint=True))
    return 0


def _init_freeze(p: "EpisodeParams", start: np.ndarray) -> dict[str, int]:
    return {"left": 0}                  # steps the current freeze still holds


def _observe_freeze(t: StepTerm, o: ObservationTarget) -> None:
    if not o.events or o.previous is None:
        return
    if t.state["left"] > 0:
        t.state["left"] -= 1
        o.held = True
    elif not o.previous.frozen:         # after a freeze ends, one fresh observation first
        hold = draw_freeze_steps(t.config, t.rng)
        if hold > 0:
            t.state["left"] = hold - 1
            o.held = True


def _observe_joint_bias(t: StepTerm, o: ObservationTarget) -> None:
    o.joints = o.joints + t.params.joint_observation_bias


def _observe_joint_noise(t: StepTerm, o: ObservationTarget) -> None:
    o.joints = o.joints + t.config.sample(t.rng, (t.randomizer.num_joints,))


def draw_frame_dropped(term: DropoutTerm, rng: np.random.Generator) -> bool:
    return bool(rng.random() < term.probability)


def _observe_frame_dropout(t: StepTerm, o: ObservationTarget) -> None:
    if o.events and draw_frame_dropped(t.config, t.rng):
        o.frame_dropped = True
        if o.previous is not None:
            o.points, o.points_held = o.previous.object_points, True


def rotation_vector_matrix(rotvec: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    axis = np.asarray(rotvec) / angle
    return quat_to_matrix(np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis]))


_UNIT = (1.0, 1.0)
_CAMERA = ("cam_pos", "cam_quat")
_INTRINSICS = ("cam_intrinsic", "cam_sensorsize", "cam_resolution")

# Order is the stream index of each term (and the order model terms apply in): append, never reorder.
