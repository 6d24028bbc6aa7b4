"""Driver profiles: how each Allegro driver names, orders and carries the 16 joints.

A profile turns a canonical command vector into the driver's message payload
and the driver's feedback back into canonical order, always by joint name
(the names come from :mod:`dexterity_ros.hand_model`). The same profile
objects serve hand_node (client side) and the emulator (driver side), so
both ends of a protocol are defined once.

:class:`DriverProfileConfig` is the one set of parameters that chooses and
configures a profile; hand_node, allegro_emulator_node and sim_bridge_node
(live mode) inherit it, so the parameter names, defaults and descriptions are
the same on both ends of the protocol.
"""
from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from ..config import ConfigError, param
from ..hand_model import HandDescription
from ..topics import (ALLEGRO_V4_COMMAND, ALLEGRO_V4_FEEDBACK, LEAP_COMMAND, LEAP_POSITION_SERVICE,
                      ROS2_CONTROL_COMMAND, ROS2_CONTROL_FEEDBACK, Topic)

ProfileName = Literal["allegro_v4", "ros2_control", "leap"]
PROFILE_NAMES: tuple[str, ...] = typing.get_args(ProfileName)

# LEAP_Hand_API leap_hand_utils.allegro_to_LEAPhand: LEAP motor angle = Allegro angle + this.
LEAP_EMBODIMENT_OFFSET = 3.14159


class FeedbackMismatch(ValueError):
    """Driver feedback does not carry the joints the profile expects."""


@dataclass(frozen=True)
class DriverProfile:
    """One driver protocol, resolved against the hand description.

    ``command_names[k]`` is the driver's name of slot ``k`` of a command and
    ``command_index[k]`` its canonical joint index; ``feedback_vocabulary``
    lists the driver's name of every canonical joint (canonical order).
    """

    name: str
    command_topic: Topic
    command_kind: str                      # "joint_state" | "float64_array"
    command_names: tuple[str, ...]
    command_index: np.ndarray = field(repr=False)
    feedback_kind: str                     # "named" (JointState by name) | "positional" (by index, no names)
    feedback_topic: Topic | None
    feedback_vocabulary: tuple[str, ...]
    feedback_offset: float = 0.0           # subtracted from feedback positions (LEAP embodiment)
    feedback_service: str | None = None    # LEAP: polled service instead of a topic
    canonical_names: tuple[str, ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.command_names)

    def command_values(self, q_canonical: np.ndarray) -> np.ndarray:
        """Canonical positions -> values in the driver's command slot order."""
        return np.asarray(q_canonical, dtype=np.float64)[self.command_index]

    def command_to_canonical(self, values: Sequence[float]) -> np.ndarray:
        """Driver command slots -> canonical positions (the emulator's side of the protocol)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.num_joints,):
            raise FeedbackMismatch(f"{self.name} command must have {self.num_joints} values, "
                                   f"got {values.size}")
        out = np.empty(self.num_joints)
        out[self.command_index] = values
        return out

    def driver_name(self, canonical: str) -> str:
        return self.feedback_vocabulary[self.canonical_names.index(canonical)]

    # ---- the driver's side of the protocol (emulator, live simulation) ----
    def decode_command(self, names: Sequence[str], positions: Sequence[float],
                       effort: Sequence[float] = ()) -> np.ndarray:
        """A received command -> canonical targets, as the real driver reads it.

        Raises FeedbackMismatch with the reason when the driver would reject
        or misread the message.
        """
        values = np.asarray(positions, dtype=np.float64)
        if len(effort):
            raise FeedbackMismatch("command fills effort; the position interface takes positions only")
        if self.name == "allegro_v4" and list(names) != list(self.command_names):
            # The v4 driver reads position[k] as joint_k.0 whatever the names say: a different
            # name list means the sender's order differs from the driver's, which is a bug.
            raise FeedbackMismatch(f"command names {list(names)} are not the driver order "
                                   f"{list(self.command_names)}")
        if not np.all(np.isfinite(values)):
            raise FeedbackMismatch("command contains NaN or inf")
        return self.command_to_canonical(values)

    def encode_feedback(self, q_canonical: np.ndarray, qd_canonical: np.ndarray | None = None
                        ) -> tuple[list[str], np.ndarray, np.ndarray | None]:
        """(names, positions, velocities) as the driver publishes them (driver slot order)."""
        index = self.command_index
        positions = np.asarray(q_canonical, dtype=np.float64)[index] + self.feedback_offset
        velocities = None if qd_canonical is None else np.asarray(qd_canonical, dtype=np.float64)[index]
        if self.feedback_kind == "positional":
            return [], positions, None
        return [self.feedback_vocabulary[i] for i in index], positions, velocities


def _v4_number(name: str) -> int:
    match = re.fullmatch(r"joint_(\d+)\.0", name)
    if not match:
        raise ConfigError(f"allegro_v4 joint name '{name}' is not joint_<k>.0")
    return int(match.group(1))


def _native_v4_order(hand: HandDescription) -> np.ndarray:
    """Canonical index of each v4 command slot: the v4 driver reads position[k] as joint_k.0."""
    names = hand.driver_order("allegro_v4")
    numbers = [_v4_number(n) for n in names]
    if sorted(numbers) != list(range(hand.num_joints)):
        raise ConfigError(f"allegro_v4 joint numbers must be 0..{hand.num_joints - 1}, got {sorted(numbers)}")
    index = np.empty(hand.num_joints, dtype=np.int64)
    for canonical_i, k in enumerate(numbers):
        index[k] = canonical_i
    return index


def ros2_control_order(hand: HandDescription, finger_digits: Sequence[str],
                       joint_names: Sequence[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names in canonical order, names in the controller's command order).

    ``finger_digits[d]`` is the finger whose joints are ``ah_joint{d}{j}``
    (empty: the robot description's ``drivers.ros2_control.finger_digits``,
    thumb first as in the vendor driver); ``joint_names`` is the controller's
    configured ``joints`` list (empty: ascending names, i.e. finger digit then
    joint digit).
    """
    digits = list(finger_digits) or list(hand.ros2_control_finger_digits)
    if sorted(digits) != sorted(hand.fingers):
        raise ConfigError(f"ros2_control_finger_digits must list each finger of {list(hand.fingers)} "
                          f"once (digit = position in the list), got {digits}")
    vocabulary = hand.ros2_control_names({finger: d for d, finger in enumerate(digits)})
    if not joint_names:
        return vocabulary, tuple(sorted(vocabulary))
    order = tuple(joint_names)
    missing = [n for n in vocabulary if n not in order]
    unknown = [n for n in order if n not in vocabulary]
    dups = sorted({n for n in order if order.count(n) > 1})
    if missing or unknown or dups:
        raise ConfigError(f"ros2_control_joint_names must list the 16 names {sorted(vocabulary)} once each: "
                          f"missing {missing}, unknown {unknown}, duplicated {dups}")
    return vocabulary, order


@dataclass(frozen=True)
class DriverProfileConfig:
    """The driver-profile parameters, shared by every node on either end of the driver protocol.

    Read once at start (read-only parameters). A node config inherits these fields (``class
    HandNodeConfig(DriverProfileConfig)``), so they are declared under these names on hand_node (the
    client), allegro_emulator_node and sim_bridge_node in live mode (stand-ins for the driver).
    """

    driver_profile: ProfileName = param(
        "allegro_v4", "driver protocol between hand_node and the driver or its stand-in (allegro_emulator_node, "
        "sim_bridge_node in live mode): allegro_v4 | ros2_control | leap (topics in docs/hand.md)", read_only=True)
    ros2_control_finger_digits: tuple[str, ...] = param(
        [], "ros2_control: finger of each joint-name digit, e.g. [th, ff, mf, rf] means ah_joint0X are the "
        "thumb's joints; empty: the robot description's drivers.ros2_control.finger_digits ([th, ff, mf, rf], "
        "as in the vendor's allegro_hand_ros2)", read_only=True)
    ros2_control_joint_names: tuple[str, ...] = param(
        [], "ros2_control: the controller's configured joint order (empty: ah_joint00..ah_joint33 ascending)",
        read_only=True)
    leap_feedback_topic: str = param(
        "", "leap: JointState topic with LEAP-embodiment positions by index (hand_node reads it, a stand-in "
        "driver publishes on it); empty: positions only through the LEAP node's leap_position service, as the "
        "real LEAP node offers them (needs the leap_hand interface package)", read_only=True)

    def __post_init__(self) -> None:
        if self.driver_profile not in PROFILE_NAMES:
            raise ConfigError(f"driver_profile '{self.driver_profile}' unknown; choose one of {list(PROFILE_NAMES)}")


def make_profile(config: DriverProfileConfig | str, hand: HandDescription) -> DriverProfile:
    """Build the profile a :class:`DriverProfileConfig` describes (a bare profile name: its defaults)."""
    if isinstance(config, str):
        config = DriverProfileConfig(driver_profile=config)
    name, leap_feedback_topic = config.driver_profile, config.leap_feedback_topic
    canonical = hand.joint_names
    if name == "allegro_v4" or name == "leap":
        vocabulary = hand.driver_order("allegro_v4")
        index = _native_v4_order(hand)
        command_names = tuple(vocabulary[i] for i in index)
        if name == "allegro_v4":
            return DriverProfile(name, ALLEGRO_V4_COMMAND, "joint_state", command_names, index,
                                 "named", ALLEGRO_V4_FEEDBACK, vocabulary, canonical_names=canonical)
        # The LEAP node reads cmd_allegro positions by index (index 0-3, middle 4-7, ring 8-11,
        # thumb 12-15; same numbering as the v4 driver) and reports positions, without names,
        # through its leap_position service in LEAP embodiment (Allegro + pi).
        feedback_topic = (Topic(leap_feedback_topic, "sensor_msgs/msg/JointState", ALLEGRO_V4_FEEDBACK.qos,
                                "LEAP hand positions by index (LEAP embodiment)")
                          if leap_feedback_topic else None)
        return DriverProfile(name, LEAP_COMMAND, "joint_state", command_names, index, "positional",
                             feedback_topic, vocabulary, feedback_offset=LEAP_EMBODIMENT_OFFSET,
                             feedback_service=None if leap_feedback_topic else LEAP_POSITION_SERVICE,
                             canonical_names=canonical)
    if name == "ros2_control":
        vocabulary, order = ros2_control_order(hand, config.ros2_control_finger_digits,
                                               config.ros2_control_joint_names)
        index = np.array([vocabulary.index(n) for n in order], dtype=np.int64)
        return DriverProfile(name, ROS2_CONTROL_COMMAND, "float64_array", order, index, "named",
                             ROS2_CONTROL_FEEDBACK, vocabulary, canonical_names=canonical)
    raise ConfigError(f"driver_profile '{name}' unknown; choose one of {list(PROFILE_NAMES)}")


@dataclass(frozen=True)
class DecodedFeedback:
    positions: np.ndarray                  # canonical order, radians
    velocities: np.ndarray | None


class FeedbackDecoder:
    """Driver feedback -> canonical positions, checking names against the profile.

    The name mapping is cached per name list, so a 333 Hz driver costs one
    dictionary walk per distinct list, not per message.
    """

    def __init__(self, profile: DriverProfile, allow_extra_names: bool = False):
        self.profile = profile
        self.allow_extra_names = allow_extra_names
        self._table = {n: i for i, n in enumerate(profile.feedback_vocabulary)}
        self._cache_names: tuple[str, ...] | None = None
        self._cache: tuple[np.ndarray, np.ndarray] | None = None   # (message slots used, canonical index)
        self._cache_error: str | None = None

    def differences(self, names: Sequence[str]) -> str | None:
        """None if ``names`` carry exactly the profile's joints, else what differs."""
        self._map(tuple(names))
        return self._cache_error

    def _map(self, names: tuple[str, ...]) -> None:
        if names == self._cache_names:
            return
        slots, index, unknown, dups, seen = [], [], [], [], set()
        for k, name in enumerate(names):
            i = self._table.get(name)
            if i is None:
                unknown.append(name)
            elif i in seen:
                dups.append(name)
            else:
                seen.add(i)
                slots.append(k)
                index.append(i)
        vocab, canon = self.profile.feedback_vocabulary, self.profile.canonical_names
        missing = [f"{vocab[i]} ({canon[i]})" for i in range(len(vocab)) if i not in seen]
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unknown and not self.allow_extra_names:
            parts.append(f"unexpected {unknown}")
        if dups:
            parts.append(f"duplicated {dups}")
        self._cache_names = names
        self._cache = (np.array(slots, dtype=np.int64), np.array(index, dtype=np.int64))
        self._cache_error = "; ".join(parts) if parts else None

    def decode(self, names: Sequence[str], positions: np.ndarray,
               velocities: np.ndarray | None = None) -> DecodedFeedback:
        n = self.profile.num_joints
        positions = np.asarray(positions, dtype=np.float64)
        if self.profile.feedback_kind == "positional":
            if positions.shape != (n,):
                raise FeedbackMismatch(f"{self.profile.name} feedback must carry {n} positions by index, "
                                       f"got {positions.size}")
            q = np.empty(n)
            q[self.profile.command_index] = positions - self.profile.feedback_offset
            v = None
            if velocities is not None and velocities.shape == (n,):
                v = np.empty(n)
                v[self.profile.command_index] = velocities
            return DecodedFeedback(q, v)
        self._map(tuple(names))
        if self._cache_error:
            where = self.profile.feedback_topic.name if self.profile.feedback_topic else "feedback"
            raise FeedbackMismatch(f"joint names on {where} do not match driver profile "
                                   f"'{self.profile.name}': {self._cache_error}")
        slots, index = self._cache
        q = np.empty(n)
        q[index] = positions[slots] - self.profile.feedback_offset
        v = None
        if velocities is not None and velocities.shape == positions.shape:
            v = np.empty(n)
            v[index] = velocities[slots]
        return DecodedFeedback(q, v)


class TargetDecoder:
    """Policy targets (any joint alias the hand knows) -> canonical positions; strict by name."""

    def __init__(self, hand: HandDescription):
        self.hand = hand
        self._cache_names: tuple[str, ...] | None = None
        self._cache_index: np.ndarray | None = None
        self._cache_error: str | None = None

    def decode(self, names: Sequence[str], positions: np.ndarray) -> np.ndarray:
        """Raise FeedbackMismatch (names) or ValueError (sizes, non-finite values)."""
        names = tuple(names)
        if names != self._cache_names:
            mapping = self.hand.map_names(names)
            self._cache_names = names
            self._cache_index = mapping.canonical_index
            self._cache_error = None if mapping.complete else mapping.describe()
        if self._cache_error:
            raise FeedbackMismatch(f"target joint names do not match the hand: {self._cache_error}")
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (len(names),):
            raise ValueError(f"{len(names)} joint names but {positions.size} positions")
        if not np.all(np.isfinite(positions)):
            bad = [names[k] for k in np.flatnonzero(~np.isfinite(positions))]
            raise ValueError(f"target positions are NaN/inf for {bad}")
        q = np.empty(self.hand.num_joints)
        q[self._cache_index] = positions
        return q
