"""Domain randomization: typed, named terms from config/randomization.yaml and their sampler.

Each term (Isaac Lab style) is a named, typed entry with its distribution, its
parameters and when it is sampled: ``episode`` (once at reset) or ``step``
(every policy step). A term that is not enabled has no effect at all, and every
term draws from its own random stream (seed, episode, term), so switching one
term off never changes what the others sample; the same seed gives the same
episode bit for bit.

A term lives in one place, its :class:`EventTerm` in :data:`TERMS` (as Isaac
Lab pairs an event function with its parameters): kind, default config, which
:class:`EpisodeParams` fields it samples and how, and what it writes into the
episode's model. :data:`RandomizationConfig` gets one field per term from it,
and ReorientEnv applies the episode's model terms in a loop (:func:`apply_model_terms`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np

from ..config import ConfigError, config_hash, from_dict, load_config, to_dict
from ..geometry import quat_to_matrix
from ..paths import config_path
from .randomization_kinds import (DepthNoiseTerm, DropoutTerm, EdgeDropoutTerm, FreezeTerm, GaussianTerm,
                                  ObjectForceTerm, RangeTerm, Term)


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


Sampler = Callable[[Any, np.random.Generator, int], tuple]


@dataclass(frozen=True)
class EventTerm:
    """One randomization term in one place: its config default, sampling and effect (Isaac Lab's event term).

    ``sample(term_config, rng, num_joints)`` draws the term's episode values, one
    per :class:`EpisodeParams` field named in ``params`` (episode terms only).
    ``apply(target, *values)`` writes them into the episode's model
    (:class:`ModelTarget`); ``writes`` names the model fields it changes. Terms
    without ``apply`` act where ``acts_on`` says: on the action, the observation
    or the rendered frame (ReorientEnv.step, _observe, _render_source; step terms
    draw through :class:`EpisodeRandomizer`).
    """

    kind: Literal["observation", "physics", "unmodeled", "visual"]
    default: Term                         # the config when the YAML leaves the term out (disabled)
    effect: str
    acts_on: Literal["model", "action", "observation", "render"]
    params: tuple[str, ...] = ()          # EpisodeParams fields sampled (episode terms)
    sample: Sampler | None = None
    apply: Callable[..., None] | None = None
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
TERMS: dict[str, EventTerm] = {
    # -- observation noise: correlated (per episode) + uncorrelated (per step) ----------------
    "joint_position_noise_correlated": EventTerm(
        "observation", GaussianTerm(), "rad added to every measured joint position (per joint)",
        acts_on="observation", params=("joint_observation_bias",), sample=_draw("J")),
    "joint_position_noise_uncorrelated": EventTerm(
        "observation", GaussianTerm(sampled="step"), "rad added to measured joint positions (per joint, per step)",
        acts_on="observation"),
    "object_point_noise_correlated": EventTerm(
        "observation", GaussianTerm(), "m offset added to all object points (per axis)",
        acts_on="observation", params=("point_observation_bias",), sample=_draw(3)),
    "object_point_noise_uncorrelated": EventTerm(
        "observation", GaussianTerm(sampled="step"), "m added to each object point (per point and axis)",
        acts_on="observation"),
    # -- physics, per episode ---------------------------------------------------------------
    "friction": EventTerm(
        "physics", RangeTerm(range=_UNIT), "scale on sliding friction (object and hand drawn separately)",
        acts_on="model", params=("friction_scale_object", "friction_scale_hand"), sample=_sample_friction,
        apply=_apply_friction, writes=("geom_friction",), positive=True),
    "object_mass": EventTerm(
        "physics", RangeTerm(range=_UNIT), "scale on object mass (and inertia)",
        acts_on="model", params=("object_mass_scale",), sample=_draw(cast=float),
        apply=_apply_object_mass, writes=("body_mass", "body_inertia"), positive=True),
    "object_scale": EventTerm(
        "physics", RangeTerm(range=_UNIT), "scale on object size (uniform)",
        acts_on="model", params=("object_scale",), sample=_draw(cast=float), apply=_apply_object_scale,
        writes=("geom_size", "geom_rbound", "geom_aabb", "geom_pos", "bvh_aabb", "mesh_vert", "body_inertia",
                "body_ipos"), positive=True),
    "object_com_offset": EventTerm(
        "physics", RangeTerm(), "m added to the object centre of mass (per axis)",
        acts_on="model", params=("object_com_offset",), sample=_draw(3),
        apply=_apply_com_offset, writes=("body_ipos",)),
    "joint_damping": EventTerm(
        "physics", RangeTerm(distribution="log_uniform", range=_UNIT), "scale on joint damping (per joint)",
        acts_on="model", params=("joint_damping_scale",), sample=_draw("J"),
        apply=_apply_joint_damping, writes=("dof_damping",), positive=True),
    "actuator_gain": EventTerm(
        "physics", RangeTerm(distribution="log_uniform", range=_UNIT), "scale on position-actuator kp (per joint)",
        acts_on="model", params=("actuator_gain_scale",), sample=_draw("J"),
        apply=_apply_actuator_gain, writes=("actuator_gainprm", "actuator_biasprm"), positive=True),
    "joint_limit_offset": EventTerm(
        "physics", RangeTerm(), "rad added to each joint's lower and upper limit",
        acts_on="model", params=("joint_limit_offset",), sample=_draw("J", 2),
        apply=_apply_joint_limit_offset, writes=("jnt_range",)),
    "gravity": EventTerm(
        "physics", GaussianTerm(), "m/s^2 added to gravity (per axis)",
        acts_on="model", params=("gravity_offset",), sample=_draw(3),
        apply=_apply_gravity, writes=("opt.gravity",)),
    # -- unmodeled effects (ReorientEnv.step: bias, noise, delay, backlash, in that order) -----
    "action_delay": EventTerm(
        "unmodeled", RangeTerm(distribution="uniform_int"), "policy steps between command and actuation",
        acts_on="action", params=("action_delay_steps",), sample=_draw(cast=int), nonnegative=True,
        distributions=("uniform_int",)),
    "backlash": EventTerm(
        "unmodeled", RangeTerm(), "rad dead band (play) between command and actuator target (per joint)",
        acts_on="action", params=("backlash",), sample=_draw("J"), nonnegative=True),
    "action_noise_correlated": EventTerm(
        "unmodeled", GaussianTerm(), "rad added to joint targets (per joint)",
        acts_on="action", params=("action_bias",), sample=_draw("J")),
    "action_noise_uncorrelated": EventTerm(
        "unmodeled", GaussianTerm(sampled="step"), "rad added to joint targets (per joint, per step)",
        acts_on="action"),
    "object_force": EventTerm(
        "unmodeled", ObjectForceTerm(), "random force/torque on the object (world axes)", acts_on="action"),
    "sensor_freeze": EventTerm(
        "unmodeled", FreezeTerm(), "observation (joints, points, frame) held", acts_on="observation"),
    "frame_dropout": EventTerm(
        "unmodeled", DropoutTerm(), "camera frame missing (points held, no depth)", acts_on="observation"),
    # -- camera and depth (the camera terms compose the rendered pose and intrinsics) ---------
    "camera_translation_jitter": EventTerm(
        "visual", GaussianTerm(), "m added to the camera position (palm axes)",
        acts_on="model", params=("camera_translation_offset",), sample=_draw(3),
        apply=_apply_camera_translation, writes=_CAMERA),
    "camera_rotation_jitter": EventTerm(
        "visual", GaussianTerm(), "rad rotation of the camera (optical axes)",
        acts_on="model", params=("camera_rotation_offset",), sample=_draw(3),
        apply=_apply_camera_rotation, writes=_CAMERA),
    "focal_length_jitter": EventTerm(
        "visual", RangeTerm(range=_UNIT), "scale on fx and fy (drawn separately)",
        acts_on="model", params=("focal_scale",), sample=_draw(2),
        apply=_apply_focal_length, writes=_INTRINSICS, positive=True),
    "principal_point_jitter": EventTerm(
        "visual", RangeTerm(), "px added to cx and cy",
        acts_on="model", params=("principal_offset",), sample=_draw(2),
        apply=_apply_principal_point, writes=_INTRINSICS),
    "depth_noise": EventTerm("visual", DepthNoiseTerm(), "m added to each depth pixel", acts_on="render"),
    "depth_quantization": EventTerm(
        "visual", RangeTerm(), "m depth step (0: none)",
        acts_on="render", params=("depth_quantization_m",), sample=_draw(cast=float), nonnegative=True),
    "depth_edge_dropout": EventTerm(
        "visual", EdgeDropoutTerm(), "edge pixels set to 0 (no return)",
        acts_on="render", params=("edge_dropout_probability",), sample=_sample_edge_dropout),
}
TERM_STREAM = {name: i for i, name in enumerate(TERMS)}
TASK_STREAM = len(TERMS) + 100          # initial state, goals, object choice
RENDER_STREAM = len(TERMS) + 101        # per-frame depth noise and edge dropout


def apply_model_terms(config: "RandomizationConfig", target: ModelTarget, params: "EpisodeParams") -> None:
    """Write every active model term's episode values into ``target`` (term order)."""
    for name, term in TERMS.items():
        if term.apply is not None and config.active(name):
            term.apply(target, *params.values(term))


def model_fields(*kinds: str) -> tuple[str, ...]:
    """The model fields the model terms (of ``kinds``; all when none given) write, in term order."""
    fields = (f for term in TERMS.values() if not kinds or term.kind in kinds for f in term.writes)
    return tuple(dict.fromkeys(fields))


class _RandomizationConfigMethods:
    """Validation and switches of :data:`RandomizationConfig` (its fields come from :data:`TERMS`)."""

    enabled: bool

    def __post_init__(self) -> None:
        for name, info in TERMS.items():
            term = getattr(self, name)
            if term.sampled not in info.sampled:
                raise ConfigError(f"{name}: sampled must be one of {list(info.sampled)} "
                                  f"for this term, got '{term.sampled}'")
            if info.distributions and term.distribution not in info.distributions:
                raise ConfigError(f"{name}: distribution must be {' or '.join(info.distributions)}, "
                                  f"got '{term.distribution}'")
            if isinstance(term, RangeTerm):
                low = term.range[0]
                if info.positive and low <= 0:
                    raise ConfigError(f"{name}: a scale must be positive, got range "
                                      f"[{term.range[0]:g}, {term.range[1]:g}]")
                if info.nonnegative and low < 0:
                    raise ConfigError(f"{name}: range must be >= 0, got [{term.range[0]:g}, "
                                      f"{term.range[1]:g}]")

    # -- switches ---------------------------------------------------------------------------
    def active(self, name: str) -> bool:
        """Whether term ``name`` has any effect."""
        if name not in TERMS:
            raise ConfigError(f"unknown randomization term '{name}'; known: {list(TERMS)}")
        return self.enabled and getattr(self, name).enabled

    def term(self, name: str) -> Term:
        if name not in TERMS:
            raise ConfigError(f"unknown randomization term '{name}'; known: {list(TERMS)}")
        return getattr(self, name)

    def with_enabled(self, names: "list[str] | tuple[str, ...] | None" = None, enabled: bool = True
                     ) -> "RandomizationConfig":
        """A copy with the named terms (all when None) switched on or off."""
        names = list(TERMS) if names is None else list(names)
        changes = {n: dataclasses.replace(self.term(n), enabled=enabled) for n in names}
        return dataclasses.replace(self, **changes)

    def only(self, *names: str) -> "RandomizationConfig":
        """A copy with just ``names`` enabled."""
        return self.with_enabled(None, False).with_enabled(list(names), True)

    def without(self, *names: str) -> "RandomizationConfig":
        return self.with_enabled(list(names), False)

    def table(self) -> list[dict[str, str]]:
        """One row per term (docs/simulation.md is generated from this)."""
        rows = []
        for name, info in TERMS.items():
            term = getattr(self, name)
            rows.append({"term": name, "kind": info.kind, "enabled": "yes" if term.enabled else "no",
                         "distribution": term.distribution, "parameters": term.parameters(),
                         "sampled": term.sampled, "effect": info.effect})
        return rows

    def config_hash(self) -> str:
        """Stable hash of every parameter (recorded with generated data)."""
        return config_hash(self)


# All randomization terms: a frozen dataclass with the master switch ``enabled`` and one field
# per term of TERMS (type and default from the term); a term left out of the YAML is disabled.
RandomizationConfig = dataclasses.make_dataclass(
    "RandomizationConfig",
    [("enabled", bool, True)]                           # master switch
    + [(name, type(term.default), field(default=term.default)) for name, term in TERMS.items()],
    bases=(_RandomizationConfigMethods,), frozen=True,
    namespace={"__module__": __name__,
               "__doc__": "All randomization terms (one field per TERMS entry); a term left out of the "
                          "YAML is disabled."})


def default_randomization_path() -> Path:
    return config_path("randomization.yaml")


def load_randomization_config(path: str | Path | None = None) -> RandomizationConfig:
    """Load ``config/randomization.yaml`` (section ``randomization``); unknown terms rejected."""
    return load_config(RandomizationConfig, path or default_randomization_path(), section="randomization")


def as_randomization_config(value: RandomizationConfig | str | Path | Mapping | None) -> RandomizationConfig:
    if value is None:
        return load_randomization_config()
    if isinstance(value, RandomizationConfig):
        return value
    if isinstance(value, Mapping):
        return from_dict(RandomizationConfig, value)
    return load_randomization_config(value)


# ----------------------------------------------------------------------------- sampling
def term_rng(seed: int, episode: int, stream: int, *extra: int) -> np.random.Generator:
    """The random stream of one term in one episode (independent of every other term)."""
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(entropy=int(seed), spawn_key=(int(episode), int(stream), *extra))))


@dataclass
class EpisodeParams:
    """Everything sampled once per episode (nominal values where a term is off).

    Each field belongs to one term of :data:`TERMS` (its ``params``); the field
    order is the order of the JSON record in the episode bags.
    """

    friction_scale_object: float = 1.0
    friction_scale_hand: float = 1.0
    object_mass_scale: float = 1.0
    object_scale: float = 1.0
    object_com_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    joint_damping_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    actuator_gain_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    joint_limit_offset: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    gravity_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    action_delay_steps: int = 0
    backlash: np.ndarray = field(default_factory=lambda: np.zeros(0))
    action_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    joint_observation_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_observation_bias: np.ndarray = field(default_factory=lambda: np.zeros(3))
    camera_translation_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    camera_rotation_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    focal_scale: np.ndarray = field(default_factory=lambda: np.ones(2))
    principal_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))
    depth_quantization_m: float = 0.0
    edge_dropout_probability: float = 0.0

    @classmethod
    def nominal(cls, num_joints: int) -> "EpisodeParams":
        """Every term off (per-joint values sized for ``num_joints``)."""
        n = num_joints
        return cls(joint_damping_scale=np.ones(n), actuator_gain_scale=np.ones(n),
                   joint_limit_offset=np.zeros((n, 2)), backlash=np.zeros(n), action_bias=np.zeros(n),
                   joint_observation_bias=np.zeros(n))

    def values(self, term: EventTerm) -> tuple:
        """The values of ``term`` (its ``params``)."""
        return tuple(getattr(self, name) for name in term.params)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


class EpisodeRandomizer:
    """Per-episode parameters and the per-step draws of one episode."""

    def __init__(self, config: RandomizationConfig, seed: int, episode: int, num_joints: int):
        self.config = config
        self.seed = int(seed)
        self.episode = int(episode)
        self.num_joints = num_joints
        self._streams: dict[str, np.random.Generator] = {}
        self.params = self._sample_episode()

    def rng(self, name: str) -> np.random.Generator:
        if name not in self._streams:
            self._streams[name] = term_rng(self.seed, self.episode, TERM_STREAM[name])
        return self._streams[name]

    def active(self, name: str) -> bool:
        return self.config.active(name)

    def _sample_episode(self) -> EpisodeParams:
        """Nominal values, then each active episode term's own draws (from its own stream)."""
        p = EpisodeParams.nominal(self.num_joints)
        for name, term in TERMS.items():
            if term.sample is not None and self.active(name):
                values = term.sample(self.config.term(name), self.rng(name), self.num_joints)
                for param, value in zip(term.params, values, strict=True):
                    setattr(p, param, value)
        return p

    # -- per-step draws (zero / no event when the term is off) ---------------------------------
    def joint_noise(self) -> np.ndarray | None:
        if not self.active("joint_position_noise_uncorrelated"):
            return None
        term = self.config.joint_position_noise_uncorrelated
        return term.sample(self.rng("joint_position_noise_uncorrelated"), (self.num_joints,))

    def point_noise(self, count: int) -> np.ndarray | None:
        if not self.active("object_point_noise_uncorrelated"):
            return None
        term = self.config.object_point_noise_uncorrelated
        return term.sample(self.rng("object_point_noise_uncorrelated"), (count, 3))

    def action_noise(self) -> np.ndarray | None:
        if not self.active("action_noise_uncorrelated"):
            return None
        term = self.config.action_noise_uncorrelated
        return term.sample(self.rng("action_noise_uncorrelated"), (self.num_joints,))

    def object_wrench(self, previous: np.ndarray, mass: float) -> np.ndarray:
        """Next (6,) force/torque on the object: decay the last one or start a new one."""
        if not self.active("object_force"):
            return previous
        term = self.config.object_force
        rng = self.rng("object_force")
        if rng.random() < term.probability:
            return np.concatenate([rng.normal(0, term.force_std * mass, 3),
                                   rng.normal(0, term.torque_std * mass, 3)])
        return previous * term.decay

    def freeze_steps(self) -> int:
        """Steps to hold the observation for, starting now (0: no freeze starts)."""
        if not self.active("sensor_freeze"):
            return 0
        term = self.config.sensor_freeze
        rng = self.rng("sensor_freeze")
        if rng.random() < term.probability:
            low, high = term.duration_steps
            return int(rng.integers(low, high, endpoint=True))
        return 0

    def frame_dropped(self) -> bool:
        if not self.active("frame_dropout"):
            return False
        return bool(self.rng("frame_dropout").random() < self.config.frame_dropout.probability)

    def stream_states(self) -> dict[str, Any]:
        return {name: rng.bit_generator.state for name, rng in self._streams.items()}

    def restore_streams(self, states: Mapping[str, Any]) -> None:
        self._streams = {}
        for name, state in states.items():
            rng = term_rng(self.seed, self.episode, TERM_STREAM[name])
            rng.bit_generator.state = state
            self._streams[name] = rng


def randomization_table_markdown(config: RandomizationConfig) -> str:
    """Markdown table of every term (used to generate docs/simulation.md)."""
    rows = config.table()
    head = "| term | kind | enabled | distribution | parameters | sampled | effect |\n|---|---|---|---|---|---|---|"
    body = "\n".join(f"| `{r['term']}` | {r['kind']} | {r['enabled']} | {r['distribution']} | "
                     f"{r['parameters']} | {r['sampled']} | {r['effect']} |" for r in rows)
    return head + "\n" + body


def config_to_yaml_dict(config: RandomizationConfig) -> dict[str, Any]:
    return {"randomization": to_dict(config)}


def main(argv: list[str] | None = None) -> int:
    """Print the term table of a randomization config (docs/simulation.md embeds it)."""
    import argparse
    parser = argparse.ArgumentParser(description="print the randomization term table (markdown)")
    parser.add_argument("config", nargs="?", default=None, help="randomization YAML (default: packaged)")
    args = parser.parse_args(argv)
    print(randomization_table_markdown(load_randomization_config(args.config)))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
