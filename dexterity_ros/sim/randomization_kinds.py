"""The distributions a randomization term can have (one typed, validated dataclass per kind).

Separate from :mod:`.randomization` (the term table, the config and the
sampler) so each file reads in one go; a term's entry there names one of these
kinds as its config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

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
