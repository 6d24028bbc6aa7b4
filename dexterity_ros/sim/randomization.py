"""Domain randomization: typed, named terms from config/randomization.yaml and their sampler.

Each term (Isaac Lab style) is a named, typed entry with its distribution, its
parameters and when it is sampled: ``episode`` (once at reset) or ``step``
(every policy step). A term that is not enabled has no effect at all, and every
term draws from its own random stream (seed, episode, term), so switching one
term off never changes what the others sample; the same seed gives the same
episode bit for bit.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from ..config import ConfigError, from_dict, load_config, to_dict
from ..paths import config_path

Sampled = Literal["episode", "step"]


# Term validation raises ValueError: config.from_dict prefixes it with the term's name.
def _finite(where: str, **values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{where}: {name} must be finite, got {value}")


@dataclass(frozen=True)
class RangeTerm:
    """A value drawn from [low, high]: uniform, log-uniform or uniform integer."""

    enabled: bool = False
    distribution: Literal["uniform", "log_uniform", "uniform_int"] = "uniform"
    range: tuple[float, float] = (0.0, 0.0)
    sampled: Sampled = "episode"

    def __post_init__(self) -> None:
        low, high = self.range
        _finite("range", low=low, high=high)
        if low > high:
            raise ValueError(f"inverted range [{low}, {high}] (low must be <= high)")
        if self.distribution == "log_uniform" and low <= 0:
            raise ValueError(f"log_uniform needs a positive range, got [{low}, {high}]")
        if self.distribution == "uniform_int" and (low != int(low) or high != int(high)):
            raise ValueError(f"uniform_int needs integer bounds, got [{low}, {high}]")

    def parameters(self) -> str:
        return f"[{self.range[0]:g}, {self.range[1]:g}]"

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        low, high = self.range
        if self.distribution == "uniform":
            return rng.uniform(low, high, size=shape)
        if self.distribution == "log_uniform":
            return np.exp(rng.uniform(np.log(low), np.log(high), size=shape))
        return rng.integers(int(low), int(high), endpoint=True, size=shape)


@dataclass(frozen=True)
class GaussianTerm:
    """Zero-mean Gaussian with standard deviation ``std``."""

    enabled: bool = False
    distribution: Literal["gaussian"] = "gaussian"
    std: float = 0.0
    sampled: Sampled = "episode"

    def __post_init__(self) -> None:
        _finite("std", std=self.std)
        if self.std < 0:
            raise ValueError(f"std must be >= 0, got {self.std}")

    def parameters(self) -> str:
        return f"std {self.std:g}"

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        return rng.normal(0.0, self.std, size=shape)


@dataclass(frozen=True)
class ObjectForceTerm:
    """Random force/torque on the object: started with ``probability`` per step, decaying after."""

    enabled: bool = False
    distribution: Literal["gaussian"] = "gaussian"
    force_std: float = 0.0           # N per kg of object mass, per axis
    torque_std: float = 0.0          # N m per kg of object mass, per axis
    probability: float = 0.0         # per step
    decay: float = 0.9               # per step factor on the previous perturbation
    sampled: Literal["step"] = "step"

    def __post_init__(self) -> None:
        _finite("object_force", force_std=self.force_std, torque_std=self.torque_std)
        if self.force_std < 0 or self.torque_std < 0:
            raise ValueError("force_std and torque_std must be >= 0")
        if not 0 <= self.probability <= 1 or not 0 <= self.decay <= 1:
            raise ValueError("probability and decay must be in [0, 1]")

    def parameters(self) -> str:
        return (f"p {self.probability:g}/step, force std {self.force_std:g} N/kg, "
                f"torque std {self.torque_std:g} N m/kg, decay {self.decay:g}")


@dataclass(frozen=True)
class FreezeTerm:
    """Hold the previous observation: starts with ``probability`` per step, lasts ``duration_steps``."""

    enabled: bool = False
    distribution: Literal["bernoulli"] = "bernoulli"
    probability: float = 0.0
    duration_steps: tuple[int, int] = (1, 1)
    sampled: Literal["step"] = "step"

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {self.probability}")
        low, high = self.duration_steps
        if low < 1 or low > high:
            raise ValueError(f"duration_steps must be 1 <= low <= high, got [{low}, {high}]")

    def parameters(self) -> str:
        return f"p {self.probability:g}/step, {self.duration_steps[0]}..{self.duration_steps[1]} steps"


@dataclass(frozen=True)
class DropoutTerm:
    """An event with ``probability`` per step."""

    enabled: bool = False
    distribution: Literal["bernoulli"] = "bernoulli"
    probability: float = 0.0
    sampled: Literal["step"] = "step"

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {self.probability}")

    def parameters(self) -> str:
        return f"p {self.probability:g}/step"


@dataclass(frozen=True)
class DepthNoiseTerm:
    """Per-pixel Gaussian depth noise with std = std_base + std_quadratic * z^2 (stereo-like)."""

    enabled: bool = False
    distribution: Literal["gaussian"] = "gaussian"
    std_base: float = 0.0            # m
    std_quadratic: float = 0.0       # m per m^2
    sampled: Literal["step"] = "step"

    def __post_init__(self) -> None:
        _finite("depth_noise", std_base=self.std_base, std_quadratic=self.std_quadratic)
        if self.std_base < 0 or self.std_quadratic < 0:
            raise ValueError("std_base and std_quadratic must be >= 0")

    def parameters(self) -> str:
        return f"std {self.std_base:g} + {self.std_quadratic:g} z^2 m"


@dataclass(frozen=True)
class EdgeDropoutTerm:
    """Missing pixels at depth edges: per-episode drop probability, per-frame pixel draws."""

    enabled: bool = False
    distribution: Literal["uniform"] = "uniform"
    range: tuple[float, float] = (0.0, 0.0)     # drop probability of an edge pixel
    threshold_m: float = 0.01                   # depth jump that makes an edge
    dilation_px: int = 1
    sampled: Literal["episode"] = "episode"

    def __post_init__(self) -> None:
        low, high = self.range
        if low > high:
            raise ValueError(f"inverted range [{low}, {high}] (low must be <= high)")
        if not (0 <= low and high <= 1):
            raise ValueError(f"range is a probability and must lie in [0, 1], got [{low}, {high}]")
        if self.threshold_m <= 0 or self.dilation_px < 0:
            raise ValueError("threshold_m must be > 0 and dilation_px >= 0")

    def parameters(self) -> str:
        return (f"p in [{self.range[0]:g}, {self.range[1]:g}], edge > {self.threshold_m:g} m, "
                f"dilate {self.dilation_px} px")


Term = (RangeTerm | GaussianTerm | ObjectForceTerm | FreezeTerm | DropoutTerm | DepthNoiseTerm
        | EdgeDropoutTerm)


@dataclass(frozen=True)
class TermInfo:
    """What a term does (documentation and validation; the YAML holds the numbers)."""

    kind: Literal["observation", "physics", "unmodeled", "visual"]
    sampled: tuple[str, ...]          # allowed sampling times
    effect: str
    positive: bool = False            # range must be > 0 (a scale factor)
    nonnegative: bool = False         # range must be >= 0


# Order is the stream index of each term: append, never reorder.
TERMS: dict[str, TermInfo] = {
    "joint_position_noise_correlated": TermInfo(
        "observation", ("episode",), "rad added to every measured joint position (per joint)"),
    "joint_position_noise_uncorrelated": TermInfo(
        "observation", ("step",), "rad added to measured joint positions (per joint, per step)"),
    "object_point_noise_correlated": TermInfo(
        "observation", ("episode",), "m offset added to all object points (per axis)"),
    "object_point_noise_uncorrelated": TermInfo(
        "observation", ("step",), "m added to each object point (per point and axis)"),
    "friction": TermInfo(
        "physics", ("episode",), "scale on sliding friction (object and hand drawn separately)",
        positive=True),
    "object_mass": TermInfo("physics", ("episode",), "scale on object mass (and inertia)", positive=True),
    "object_scale": TermInfo("physics", ("episode",), "scale on object size (uniform)", positive=True),
    "object_com_offset": TermInfo("physics", ("episode",), "m added to the object centre of mass (per axis)"),
    "joint_damping": TermInfo("physics", ("episode",), "scale on joint damping (per joint)", positive=True),
    "actuator_gain": TermInfo("physics", ("episode",), "scale on position-actuator kp (per joint)",
                              positive=True),
    "joint_limit_offset": TermInfo(
        "physics", ("episode",), "rad added to each joint's lower and upper limit"),
    "gravity": TermInfo("physics", ("episode",), "m/s^2 added to gravity (per axis)"),
    "action_delay": TermInfo("unmodeled", ("episode",), "policy steps between command and actuation",
                             nonnegative=True),
    "backlash": TermInfo("unmodeled", ("episode",), "rad dead band (play) between command and actuator "
                         "target (per joint)", nonnegative=True),
    "action_noise_correlated": TermInfo("unmodeled", ("episode",), "rad added to joint targets (per joint)"),
    "action_noise_uncorrelated": TermInfo(
        "unmodeled", ("step",), "rad added to joint targets (per joint, per step)"),
    "object_force": TermInfo("unmodeled", ("step",), "random force/torque on the object (world axes)"),
    "sensor_freeze": TermInfo("unmodeled", ("step",), "observation (joints, points, frame) held"),
    "frame_dropout": TermInfo("unmodeled", ("step",), "camera frame missing (points held, no depth)"),
    "camera_translation_jitter": TermInfo("visual", ("episode",), "m added to the camera position (palm axes)"),
    "camera_rotation_jitter": TermInfo("visual", ("episode",), "rad rotation of the camera (optical axes)"),
    "focal_length_jitter": TermInfo("visual", ("episode",), "scale on fx and fy (drawn separately)",
                                    positive=True),
    "principal_point_jitter": TermInfo("visual", ("episode",), "px added to cx and cy"),
    "depth_noise": TermInfo("visual", ("step",), "m added to each depth pixel"),
    "depth_quantization": TermInfo("visual", ("episode",), "m depth step (0: none)", nonnegative=True),
    "depth_edge_dropout": TermInfo("visual", ("episode",), "edge pixels set to 0 (no return)"),
}
TERM_STREAM = {name: i for i, name in enumerate(TERMS)}
TASK_STREAM = len(TERMS) + 100          # initial state, goals, object choice
RENDER_STREAM = len(TERMS) + 101        # per-frame depth noise and edge dropout


@dataclass(frozen=True)
class RandomizationConfig:
    """All randomization terms; a term left out of the YAML is disabled."""

    enabled: bool = True                # master switch
    joint_position_noise_correlated: GaussianTerm = field(default_factory=GaussianTerm)
    joint_position_noise_uncorrelated: GaussianTerm = field(
        default_factory=lambda: GaussianTerm(sampled="step"))
    object_point_noise_correlated: GaussianTerm = field(default_factory=GaussianTerm)
    object_point_noise_uncorrelated: GaussianTerm = field(
        default_factory=lambda: GaussianTerm(sampled="step"))
    friction: RangeTerm = field(default_factory=lambda: RangeTerm(range=(1.0, 1.0)))
    object_mass: RangeTerm = field(default_factory=lambda: RangeTerm(range=(1.0, 1.0)))
    object_scale: RangeTerm = field(default_factory=lambda: RangeTerm(range=(1.0, 1.0)))
    object_com_offset: RangeTerm = field(default_factory=RangeTerm)
    joint_damping: RangeTerm = field(
        default_factory=lambda: RangeTerm(distribution="log_uniform", range=(1.0, 1.0)))
    actuator_gain: RangeTerm = field(
        default_factory=lambda: RangeTerm(distribution="log_uniform", range=(1.0, 1.0)))
    joint_limit_offset: RangeTerm = field(default_factory=RangeTerm)
    gravity: GaussianTerm = field(default_factory=GaussianTerm)
    action_delay: RangeTerm = field(default_factory=lambda: RangeTerm(distribution="uniform_int"))
    backlash: RangeTerm = field(default_factory=RangeTerm)
    action_noise_correlated: GaussianTerm = field(default_factory=GaussianTerm)
    action_noise_uncorrelated: GaussianTerm = field(default_factory=lambda: GaussianTerm(sampled="step"))
    object_force: ObjectForceTerm = field(default_factory=ObjectForceTerm)
    sensor_freeze: FreezeTerm = field(default_factory=FreezeTerm)
    frame_dropout: DropoutTerm = field(default_factory=DropoutTerm)
    camera_translation_jitter: GaussianTerm = field(default_factory=GaussianTerm)
    camera_rotation_jitter: GaussianTerm = field(default_factory=GaussianTerm)
    focal_length_jitter: RangeTerm = field(default_factory=lambda: RangeTerm(range=(1.0, 1.0)))
    principal_point_jitter: RangeTerm = field(default_factory=RangeTerm)
    depth_noise: DepthNoiseTerm = field(default_factory=DepthNoiseTerm)
    depth_quantization: RangeTerm = field(default_factory=RangeTerm)
    depth_edge_dropout: EdgeDropoutTerm = field(default_factory=EdgeDropoutTerm)

    def __post_init__(self) -> None:
        for name, info in TERMS.items():
            term = getattr(self, name)
            if term.sampled not in info.sampled:
                raise ConfigError(f"{name}: sampled must be one of {list(info.sampled)} "
                                  f"for this term, got '{term.sampled}'")
            if isinstance(term, RangeTerm):
                low = term.range[0]
                if info.positive and low <= 0:
                    raise ConfigError(f"{name}: a scale must be positive, got range "
                                      f"[{term.range[0]:g}, {term.range[1]:g}]")
                if info.nonnegative and low < 0:
                    raise ConfigError(f"{name}: range must be >= 0, got [{term.range[0]:g}, "
                                      f"{term.range[1]:g}]")
        if self.action_delay.distribution != "uniform_int":
            raise ConfigError("action_delay: distribution must be uniform_int (whole steps)")

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
    """Everything sampled once per episode (nominal values where a term is off)."""

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
        c, n = self.config, self.num_joints
        p = EpisodeParams(joint_damping_scale=np.ones(n), actuator_gain_scale=np.ones(n),
                          joint_limit_offset=np.zeros((n, 2)), backlash=np.zeros(n),
                          action_bias=np.zeros(n), joint_observation_bias=np.zeros(n))
        on = self.active
        if on("friction"):
            p.friction_scale_object, p.friction_scale_hand = (
                float(v) for v in c.friction.sample(self.rng("friction"), (2,)))
        if on("object_mass"):
            p.object_mass_scale = float(c.object_mass.sample(self.rng("object_mass")))
        if on("object_scale"):
            p.object_scale = float(c.object_scale.sample(self.rng("object_scale")))
        if on("object_com_offset"):
            p.object_com_offset = c.object_com_offset.sample(self.rng("object_com_offset"), (3,))
        if on("joint_damping"):
            p.joint_damping_scale = c.joint_damping.sample(self.rng("joint_damping"), (n,))
        if on("actuator_gain"):
            p.actuator_gain_scale = c.actuator_gain.sample(self.rng("actuator_gain"), (n,))
        if on("joint_limit_offset"):
            p.joint_limit_offset = c.joint_limit_offset.sample(self.rng("joint_limit_offset"), (n, 2))
        if on("gravity"):
            p.gravity_offset = c.gravity.sample(self.rng("gravity"), (3,))
        if on("action_delay"):
            p.action_delay_steps = int(c.action_delay.sample(self.rng("action_delay")))
        if on("backlash"):
            p.backlash = c.backlash.sample(self.rng("backlash"), (n,))
        if on("action_noise_correlated"):
            p.action_bias = c.action_noise_correlated.sample(self.rng("action_noise_correlated"), (n,))
        if on("joint_position_noise_correlated"):
            p.joint_observation_bias = c.joint_position_noise_correlated.sample(
                self.rng("joint_position_noise_correlated"), (n,))
        if on("object_point_noise_correlated"):
            p.point_observation_bias = c.object_point_noise_correlated.sample(
                self.rng("object_point_noise_correlated"), (3,))
        if on("camera_translation_jitter"):
            p.camera_translation_offset = c.camera_translation_jitter.sample(
                self.rng("camera_translation_jitter"), (3,))
        if on("camera_rotation_jitter"):
            p.camera_rotation_offset = c.camera_rotation_jitter.sample(
                self.rng("camera_rotation_jitter"), (3,))
        if on("focal_length_jitter"):
            p.focal_scale = c.focal_length_jitter.sample(self.rng("focal_length_jitter"), (2,))
        if on("principal_point_jitter"):
            p.principal_offset = c.principal_point_jitter.sample(self.rng("principal_point_jitter"), (2,))
        if on("depth_quantization"):
            p.depth_quantization_m = float(c.depth_quantization.sample(self.rng("depth_quantization")))
        if on("depth_edge_dropout"):
            low, high = c.depth_edge_dropout.range
            p.edge_dropout_probability = float(self.rng("depth_edge_dropout").uniform(low, high))
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
