"""Domain randomization: typed, named terms from config/randomization.yaml and their sampler.

Each term (Isaac Lab style) is a named, typed entry with its distribution, its
parameters and when it is sampled: ``episode`` (once at reset) or ``step``
(every policy step). A term that is not enabled has no effect at all, and every
term draws from its own random stream (seed, episode, term), so switching one
term off never changes what the others sample; the same seed gives the same
episode bit for bit.

A term lives in one place, its :class:`EventTerm` in :data:`TERMS` (as Isaac
Lab pairs an event function with its parameters): kind, default config, which
:class:`EpisodeParams` fields it samples and how, and its effect: what it writes
into the episode's model, or what it does to each action or observation (with
any per-episode state it keeps). :data:`RandomizationConfig` gets one field per
term from it; ReorientEnv applies the episode's model terms in a loop
(:func:`apply_model_terms`) and the step-time terms in loops in :data:`STEP_ORDER`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config import ConfigError, config_hash, from_dict, load_config, to_dict
from ..paths import config_path
from .randomization_kinds import (DepthNoiseTerm, DropoutTerm, EdgeDropoutTerm, FreezeTerm, GaussianTerm,
                                  ObjectForceTerm, RangeTerm, Term)
# what each term does (its sampler and its effect): randomization_effects; the table below pairs them
from .randomization_effects import (
    ModelTarget, EventTerm, _draw, _sample_friction, _sample_edge_dropout, _apply_friction, _apply_object_mass,
    _apply_object_scale, _apply_com_offset, _apply_joint_damping, _apply_actuator_gain,
    _apply_joint_limit_offset, _apply_gravity, _apply_camera_translation, _apply_camera_rotation,
    _apply_focal_length, _apply_principal_point, StepTerm, _act_bias, _act_noise, _init_delay, _act_delay,
    _init_backlash, _act_backlash, _init_wrench, draw_object_wrench, _act_object_force, draw_freeze_steps,
    _init_freeze, _observe_freeze, _observe_joint_bias, _observe_joint_noise, draw_frame_dropped,
    _observe_frame_dropout, _apply_hand_link_mass, _act_period_jitter, _UNIT, _CAMERA, _INTRINSICS)




TERMS: dict[str, EventTerm] = {
    # -- observation noise: correlated (per episode) + uncorrelated (per step) ----------------
    "joint_position_noise_correlated": EventTerm(
        "observation", GaussianTerm(), "rad added to every measured joint position (per joint)",
        acts_on="observation", params=("joint_observation_bias",), sample=_draw("J"),
        on_observation=_observe_joint_bias),
    "joint_position_noise_uncorrelated": EventTerm(
        "observation", GaussianTerm(sampled="step"), "rad added to measured joint positions (per joint, per step)",
        acts_on="observation", on_observation=_observe_joint_noise),
    # the object as the camera sees it is moved (rendered depth, so the cloud and the tracked pose, and
    # Observation.object_points): EpisodeRandomizer.object_offset
    "object_point_noise_correlated": EventTerm(
        "observation", GaussianTerm(), "m offset of the object as the camera sees it (per axis, palm frame)",
        acts_on="render", params=("point_observation_bias",), sample=_draw(3)),
    "object_point_noise_uncorrelated": EventTerm(
        "observation", GaussianTerm(sampled="step"),
        "m offset of the object as the camera sees it (per axis and frame, palm frame)", acts_on="render"),
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
    # -- unmodeled effects (ReorientEnv.step: in STEP_ORDER) -------------------------------------
    "action_delay": EventTerm(
        "unmodeled", RangeTerm(distribution="uniform_int"), "policy steps between command and actuation",
        acts_on="action", params=("action_delay_steps",), sample=_draw(cast=int), nonnegative=True,
        distributions=("uniform_int",), init_state=_init_delay, on_action=_act_delay),
    "backlash": EventTerm(
        "unmodeled", RangeTerm(), "rad dead band (play) between command and actuator target (per joint)",
        acts_on="action", params=("backlash",), sample=_draw("J"), nonnegative=True,
        init_state=_init_backlash, on_action=_act_backlash),
    "action_noise_correlated": EventTerm(
        "unmodeled", GaussianTerm(), "rad added to joint targets (per joint)",
        acts_on="action", params=("action_bias",), sample=_draw("J"), on_action=_act_bias),
    "action_noise_uncorrelated": EventTerm(
        "unmodeled", GaussianTerm(sampled="step"), "rad added to joint targets (per joint, per step)",
        acts_on="action", on_action=_act_noise),
    "object_force": EventTerm(
        "unmodeled", ObjectForceTerm(), "random force/torque on the object (world axes)", acts_on="action",
        init_state=_init_wrench, on_action=_act_object_force),
    "sensor_freeze": EventTerm(
        "unmodeled", FreezeTerm(), "observation (joints, points, frame) held", acts_on="observation",
        init_state=_init_freeze, on_observation=_observe_freeze),
    "frame_dropout": EventTerm(
        "unmodeled", DropoutTerm(), "camera frame missing (points held, no depth)", acts_on="observation",
        on_observation=_observe_frame_dropout),
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
    # -- appended later (a term's position is its stream: append, never reorder) -------------------
    "hand_link_mass": EventTerm(
        "physics", RangeTerm(range=_UNIT), "scale on hand link mass and inertia (per link; a tip with its "
        "distal link)", acts_on="model", params=("hand_link_mass_scale",), sample=_draw("J"),
        apply=_apply_hand_link_mass, writes=("body_mass", "body_inertia"), positive=True),
    "control_period_jitter": EventTerm(
        "unmodeled", RangeTerm(sampled="step"), "fraction of the policy period added to this step's duration "
        "(whole physics steps; late, never early)", acts_on="action", on_action=_act_period_jitter,
        nonnegative=True, distributions=("uniform",)),
}
TERM_STREAM = {name: i for i, name in enumerate(TERMS)}

# The order the step-time terms act in (not the stream order of TERMS). Action: bias, noise, delay,
# backlash on the commanded targets (then ReorientEnv clips them to the joint limits), the wrench
# on the object, the step's duration. Observation: a sensor freeze repeats the previous observation
# (nothing else runs); else joint bias and noise, then frame dropout (the previous points held). The
# object offset (the two point-noise terms) is added after them to points not held, and to the render.
STEP_ORDER: dict[str, tuple[str, ...]] = {
    "action": ("action_noise_correlated", "action_noise_uncorrelated", "action_delay", "backlash",
               "object_force", "control_period_jitter"),
    "observation": ("sensor_freeze", "joint_position_noise_correlated", "joint_position_noise_uncorrelated",
                    "frame_dropout"),
}
for _acts_on, _names in STEP_ORDER.items():
    assert sorted(_names) == sorted(n for n, t in TERMS.items() if t.acts_on == _acts_on), _acts_on
# fixed numbers (26 terms + 100 and + 101 when they were introduced): terms appended since must not move them
TASK_STREAM = 126                       # initial state, goals, object choice
RENDER_STREAM = 127                     # per-frame depth noise and edge dropout
assert len(TERMS) < TASK_STREAM


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
    hand_link_mass_scale: np.ndarray = field(default_factory=lambda: np.ones(0))

    @classmethod
    def nominal(cls, num_joints: int) -> "EpisodeParams":
        """Every term off (per-joint values sized for ``num_joints``)."""
        n = num_joints
        return cls(joint_damping_scale=np.ones(n), actuator_gain_scale=np.ones(n),
                   joint_limit_offset=np.zeros((n, 2)), backlash=np.zeros(n), action_bias=np.zeros(n),
                   joint_observation_bias=np.zeros(n), hand_link_mass_scale=np.ones(n))

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
    # (The terms' own hooks draw these in ReorientEnv; kept for inspecting one episode's draws.)
    def joint_noise(self) -> np.ndarray | None:
        if not self.active("joint_position_noise_uncorrelated"):
            return None
        term = self.config.joint_position_noise_uncorrelated
        return term.sample(self.rng("joint_position_noise_uncorrelated"), (self.num_joints,))

    def object_offset(self, step: int) -> np.ndarray | None:
        """Palm-frame offset (m) of the object as the camera sees it at policy step ``step``; None: none.

        The two object-point noise terms: this episode's bias plus a draw of the frame's
        own stream (seed, episode, term, step), so the render of a step and that step's
        Observation.object_points get the same offset, in any order and any number of times.
        """
        bias, jitter = self.active("object_point_noise_correlated"), self.active("object_point_noise_uncorrelated")
        if not (bias or jitter):
            return None
        offset = np.array(self.params.point_observation_bias, dtype=np.float64) if bias else np.zeros(3)
        if jitter:
            name = "object_point_noise_uncorrelated"
            rng = term_rng(self.seed, self.episode, TERM_STREAM[name], int(step))
            offset = offset + self.config.term(name).sample(rng, (3,))
        return offset

    def action_noise(self) -> np.ndarray | None:
        if not self.active("action_noise_uncorrelated"):
            return None
        term = self.config.action_noise_uncorrelated
        return term.sample(self.rng("action_noise_uncorrelated"), (self.num_joints,))

    def object_wrench(self, previous: np.ndarray, mass: float) -> np.ndarray:
        """Next (6,) force/torque on the object: decay the last one or start a new one."""
        if not self.active("object_force"):
            return previous
        return draw_object_wrench(self.config.object_force, self.rng("object_force"), previous, mass)

    def freeze_steps(self) -> int:
        """Steps to hold the observation for, starting now (0: no freeze starts)."""
        if not self.active("sensor_freeze"):
            return 0
        return draw_freeze_steps(self.config.sensor_freeze, self.rng("sensor_freeze"))

    def frame_dropped(self) -> bool:
        if not self.active("frame_dropout"):
            return False
        return draw_frame_dropped(self.config.frame_dropout, self.rng("frame_dropout"))

    def step_terms(self, acts_on: str, start: np.ndarray) -> list[StepTerm]:
        """The active terms acting on ``acts_on`` ("action", "observation") in :data:`STEP_ORDER`,
        each with its fresh episode state (``start``: the joint targets after reset)."""
        terms = []
        for name in STEP_ORDER[acts_on]:
            if self.active(name):
                event = TERMS[name]
                state = event.init_state(self.params, start) if event.init_state is not None else None
                terms.append(StepTerm(name, event, self.config.term(name), self.params, state, self))
        return terms

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
