"""The Allegro hand as described by ``allegro_right.yaml``: joints, limits, names.

This module is the one place that knows joint names and orders. Everything
else asks it: the canonical order is derived from the kinematic tree (finger
order, then palm outwards), driver orders come from the description's
``drivers`` section, and incoming name lists are always mapped by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .config import ConfigError, load_yaml
from .paths import robot_description_path

LINK_ORDER = ("base", "proximal", "medial", "distal", "tip")


@dataclass(frozen=True)
class CollisionShape:
    """A primitive in its body's frame: box (half-extents) or capsule (radius, half-length on z)."""

    kind: str
    size: tuple[float, ...]
    pos: tuple[float, float, float]


@dataclass(frozen=True)
class Link:
    name: str
    parent: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]
    joint: str | None
    axis: tuple[float, float, float] | None
    joint_range: tuple[float, float] | None
    collision: CollisionShape


class JointNameError(ValueError):
    """Incoming joint names cannot be mapped onto the hand's joints."""


@dataclass(frozen=True)
class NameMapping:
    """How an incoming name list maps onto the canonical joint order."""

    canonical_index: np.ndarray        # for each incoming name, its canonical index (-1 if unknown)
    unknown: tuple[str, ...]
    missing: tuple[str, ...]           # canonical joints absent from the incoming list
    duplicates: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not (self.unknown or self.missing or self.duplicates)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing {list(self.missing)}")
        if self.unknown:
            parts.append(f"unknown {list(self.unknown)}")
        if self.duplicates:
            parts.append(f"duplicated {list(self.duplicates)}")
        return "; ".join(parts) if parts else "ok"


@dataclass(frozen=True)
class HandDescription:
    source: str
    palm_collision: CollisionShape
    root_quat: tuple[float, float, float, float]
    links: tuple[Link, ...]                  # topological order (parents first)
    joint_names: tuple[str, ...]             # canonical order
    lower: np.ndarray = field(repr=False)
    upper: np.ndarray = field(repr=False)
    driver_names: Mapping[str, tuple[str, ...]] = field(repr=False)   # profile -> names in canonical order
    contact_exclude: tuple[tuple[str, str], ...] = ()
    joint_damping: float = 1.0
    actuator_kp: float = 10.0
    geom_density: float = 800.0
    palm_mass: float = 0.4
    ros2_control_pattern: str = "ah_joint{finger}{joint}"
    # finger of each ros2_control name digit (drivers.ros2_control.finger_digits): digit 0 is the
    # thumb in the vendor's allegro_hand_ros2 (its URDF gives joint00 the thumb's limits and origin)
    ros2_control_finger_digits: tuple[str, ...] = ("th", "ff", "mf", "rf")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def fingers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n[:2] for n in self.joint_names))

    def joint_index(self, name: str) -> int:
        return self.joint_names.index(name)

    def aliases(self) -> dict[str, int]:
        """Every known name of every joint (canonical and driver names) -> canonical index."""
        table = {name: i for i, name in enumerate(self.joint_names)}
        for names in self.driver_names.values():
            for i, name in enumerate(names):
                table.setdefault(name, i)
        return table

    def map_names(self, names: Sequence[str], vocabulary: Sequence[str] | None = None) -> NameMapping:
        """Map incoming ``names`` onto canonical indices.

        ``vocabulary`` restricts which names are accepted (e.g. one driver's
        names, in canonical order); by default any known alias is.
        """
        if vocabulary is None:
            table = self.aliases()
        else:
            if len(vocabulary) != self.num_joints:
                raise ValueError("vocabulary must list one name per canonical joint")
            table = {n: i for i, n in enumerate(vocabulary)}
        index = np.full(len(names), -1, dtype=np.int64)
        unknown, seen, dups = [], set(), []
        for k, name in enumerate(names):
            i = table.get(name)
            if i is None:
                unknown.append(name)
                continue
            if i in seen:
                dups.append(name)
                continue
            seen.add(i)
            index[k] = i
        missing = tuple(self.joint_names[i] for i in range(self.num_joints) if i not in seen)
        return NameMapping(index, tuple(unknown), missing, tuple(dups))

    def to_canonical(self, names: Sequence[str], values: Sequence[float],
                     vocabulary: Sequence[str] | None = None) -> np.ndarray:
        """Reorder ``values`` (given for ``names``) into canonical order; raise on mismatch."""
        mapping = self.map_names(names, vocabulary)
        if not mapping.complete:
            raise JointNameError(f"joint names do not match the hand: {mapping.describe()}")
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(names),):
            raise JointNameError(
                f"{len(names)} joint names but {values.shape[0] if values.ndim else 0} values")
        out = np.empty(self.num_joints)
        out[mapping.canonical_index] = values
        return out

    def driver_order(self, profile: str) -> tuple[str, ...]:
        try:
            return self.driver_names[profile]
        except KeyError:
            raise ConfigError(
                f"driver profile '{profile}' unknown; known: {sorted(self.driver_names)}") from None

    def ros2_control_names(self, finger_digits: Mapping[str, int]) -> tuple[str, ...]:
        """ros2_control joint names (``ah_joint{finger}{joint}``) for a finger-digit mapping."""
        pattern = self.ros2_control_pattern
        if sorted(finger_digits) != sorted(self.fingers):
            raise ConfigError(
                f"ros2_control finger_digits must name fingers {list(self.fingers)}, "
                f"got {sorted(finger_digits)}")
        return tuple(pattern.format(finger=finger_digits[n[:2]], joint=n[-1]) for n in self.joint_names)

    def clamp(self, q: np.ndarray, margin: float = 0.0) -> np.ndarray:
        return np.clip(q, self.lower + margin, self.upper - margin)


def _shape(entry: Mapping) -> CollisionShape:
    kind = entry["type"]
    if kind not in ("box", "capsule"):
        raise ConfigError(f"collision type '{kind}' not supported (box, capsule)")
    return CollisionShape(kind, tuple(float(v) for v in entry["size"]),
                          tuple(float(v) for v in entry.get("pos", (0, 0, 0))))


def load_hand_description(path: str | Path | None = None) -> HandDescription:
    """Parse the robot description YAML; the canonical joint order follows the tree."""
    path = Path(path) if path is not None else robot_description_path()
    data = load_yaml(path)
    try:
        shapes = {name: _shape(entry) for name, entry in data["link_collision"].items()}
        links: list[Link] = []
        joint_names: list[str] = []
        lower: list[float] = []
        upper: list[float] = []
        for finger, chain in data["fingers"].items():
            for part in LINK_ORDER:
                e = chain[part]
                joint = e.get("joint")
                rng = tuple(float(v) for v in e["range"]) if joint else None
                links.append(Link(
                    name=f"{finger}_{part}", parent=e["parent"],
                    pos=tuple(float(v) for v in e["pos"]),
                    quat=tuple(float(v) for v in e["quat"]),
                    joint=joint,
                    axis=tuple(float(v) for v in e["axis"]) if joint else None,
                    joint_range=rng,
                    collision=shapes[e["collision"]]))
                if joint:
                    joint_names.append(joint)
                    lower.append(rng[0])
                    upper.append(rng[1])
        drivers: dict[str, tuple[str, ...]] = {"canonical": tuple(joint_names)}
        v4 = data["drivers"]["allegro_v4"]
        v4_map = dict(zip(v4["canonical"], v4["names"]))
        if sorted(v4_map) != sorted(joint_names):
            raise ConfigError("drivers.allegro_v4.canonical does not list the tree's joints")
        drivers["allegro_v4"] = tuple(v4_map[n] for n in joint_names)
        ros2_control = data["drivers"].get("ros2_control", {})
        pattern = ros2_control.get("names_pattern", "ah_joint{finger}{joint}")
        finger_digits = tuple(str(f) for f in ros2_control.get("finger_digits", ("th", "ff", "mf", "rf")))
        fingers = tuple(dict.fromkeys(n[:2] for n in joint_names))
        if sorted(finger_digits) != sorted(fingers):
            raise ConfigError(f"{path}: drivers.ros2_control.finger_digits must list each finger of "
                              f"{list(fingers)} once, got {list(finger_digits)}")
        defaults = data.get("defaults", {})
        desc = HandDescription(
            source=str(path),
            palm_collision=_shape(data["root"]["collision"]),
            root_quat=tuple(float(v) for v in data["root"]["quat"]),
            links=tuple(links),
            joint_names=tuple(joint_names),
            lower=np.array(lower), upper=np.array(upper),
            driver_names=drivers,
            contact_exclude=tuple(tuple(p) for p in data.get("contact_exclude", [])),
            joint_damping=float(defaults.get("joint_damping", 1.0)),
            actuator_kp=float(defaults.get("position_actuator_kp", 10.0)),
            geom_density=float(defaults.get("geom_density", 800.0)),
            palm_mass=float(data["root"].get("approx_mass_kg", 0.4)),
            ros2_control_pattern=pattern,
            ros2_control_finger_digits=finger_digits,
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"{path}: malformed robot description ({exc!r})") from exc
    return desc


@lru_cache(maxsize=4)
def default_hand() -> HandDescription:
    """The packaged Allegro right-hand description (cached)."""
    return load_hand_description()
