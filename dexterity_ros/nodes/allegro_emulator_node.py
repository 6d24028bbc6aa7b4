"""allegro_emulator_node: a stand-in Allegro driver speaking the real protocols.

It takes commands and publishes feedback exactly as the chosen driver does
(topics, message types, joint names and orders from
:mod:`dexterity_ros.hand.profiles`) and moves 16 simulated joints
(:class:`dexterity_ros.hand.EmulatedHand`). Faults can be switched on and off
at runtime through parameters (``fault_*``), so graph tests and operators
can rehearse a stopped driver, a stuck joint or a renamed joint.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType

from ..config import ConfigError, param
from ..diagnostic_keys import Emulator as K
from ..diagnostics import Level
from ..hand import DriverProfileConfig, EmulatedHand, SafetyLimits, load_safety_tables, make_profile
from ..hand_model import default_hand
from ..ros.driver_endpoint import DriverEndpoint
from ..ros.common import DexterityNode, run_node

FAULT_PARAMETERS = ("fault_stop_feedback", "fault_freeze_joint", "fault_reorder_names", "fault_rename_joint")


@dataclass(frozen=True)
class EmulatorConfig(DriverProfileConfig):
    """The driver-profile parameters (as hand_node's: DriverProfileConfig) plus the simulated hand's."""

    time_constant: float = param(0.05, "s, first-order response of every joint", min=1e-4)
    rate_hz: float = param(100.0, "simulation and feedback rate (Hz)", min=1.0, max=1000.0, read_only=True)
    initial_pose: tuple[float, ...] = param(
        [], "initial joint positions, canonical order (hand_model); empty: the home pose of config/hand.yaml",
        read_only=True)
    fault_stop_feedback: bool = param(False, "fault: publish no feedback (runtime switch)")
    fault_freeze_joint: int = param(-1, "fault: canonical index of a joint that stops moving, -1 none (runtime)",
                                    min=-1, max=15)
    fault_reorder_names: bool = param(False, "fault: list feedback joints in reverse order (runtime)")
    fault_rename_joint: int = param(-1, "fault: canonical index of a joint whose feedback name gets a "
                                    "'_renamed' suffix, -1 none (runtime)", min=-1, max=15)


class AllegroEmulatorNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("allegro_emulator", EmulatorConfig, **kwargs)
        cfg: EmulatorConfig = self.config
        self.hand = default_hand()
        self.profile = make_profile(cfg, self.hand)
        if cfg.initial_pose:
            initial = np.asarray(cfg.initial_pose, dtype=np.float64)
            if initial.shape != (self.hand.num_joints,):
                raise ConfigError(f"initial_pose needs {self.hand.num_joints} values, got {initial.size}")
        else:
            initial = SafetyLimits.from_tables(load_safety_tables(), self.hand).home
        self.sim = EmulatedHand(self.hand.lower, self.hand.upper, cfg.time_constant, initial)
        self._apply_faults(cfg)
        self.max_command_step = 0.0
        self.commands_outside_limits = 0

        cmd = self.profile.command_topic
        self.endpoint = DriverEndpoint(self, self.profile, self._command, self._protocol_error, self.hand,
                                       leap_positions=self._leap_positions)
        self.feedback_topic = self.endpoint.feedback_topic
        self.health.set_value(K.FEEDBACK, self.endpoint.describe_feedback())
        if self.feedback_topic is None and self.endpoint.feedback_service is None:
            self.get_logger().warning("leap profile without leap_feedback_topic, and the leap_hand interface "
                                      "package (leap_position service) is not installed: no feedback is offered")
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self._last_step = time.monotonic()
        self.create_timer(1.0 / cfg.rate_hz, self.on_timer, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"Allegro emulator ({cfg.driver_profile}): commands on '{cmd.name}', feedback on "
                               f"{self.endpoint.describe_feedback()} at {cfg.rate_hz:g} Hz, "
                               f"tau {cfg.time_constant} s")

    def _leap_positions(self) -> np.ndarray:
        """What the emulated LEAP node's leap_position service answers: driver order, LEAP embodiment."""
        return self.sim.position[self.profile.command_index] + self.profile.feedback_offset

    # -------------------------------------------------------- parameters
    def _apply_faults(self, cfg) -> None:
        faults = self.sim.faults
        faults.stop_feedback = bool(cfg.fault_stop_feedback)
        faults.freeze_joint = int(cfg.fault_freeze_joint)
        faults.reorder_names = bool(cfg.fault_reorder_names)
        faults.rename_joint = int(cfg.fault_rename_joint)
        active = [f"{k}={getattr(cfg, k)}" for k in FAULT_PARAMETERS
                  if getattr(cfg, k) not in (False, -1)]
        self.health.set_value(K.FAULTS, ", ".join(active) if active else "none")
        if active:
            self.health.set_state(Level.WARN, f"fault injection active: {', '.join(active)}")
        else:
            self.health.set_state(Level.OK, "ok")

    def on_set_parameters(self, parameters) -> SetParametersResult:
        values = {}
        for p in parameters:
            if p.name in FAULT_PARAMETERS or p.name == "time_constant":
                values[p.name] = p.value
        if not values:
            return SetParametersResult(successful=True)
        current = {k: getattr(self.config, k) for k in FAULT_PARAMETERS + ("time_constant",)}
        current.update(values)
        try:
            merged = self.config_from_values(EmulatorConfig, {**self._config_values(), **current})
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.config = merged
        self.sim.time_constant = merged.time_constant
        self._apply_faults(merged)
        self.get_logger().warning(f"emulator parameters changed: {values}")
        return SetParametersResult(successful=True)

    def _config_values(self) -> dict:
        from dataclasses import fields
        return {f.name: (list(v) if isinstance(v := getattr(self.config, f.name), tuple) else v)
                for f in fields(EmulatorConfig)}

    # ---------------------------------------------------------- commands
    def _command(self, target: np.ndarray) -> None:
        audit = self.sim.command(target)
        self.health.tick(K.COMMANDS)
        self.health.count(K.COMMANDS_RECEIVED)
        if audit.outside_limits:
            self.commands_outside_limits += 1
        self.max_command_step = max(self.max_command_step, audit.step)

    def _protocol_error(self, message: str) -> None:
        self.bad_input(K.PROTOCOL_ERROR, f"{self.profile.name} command ignored: {message}", Level.ERROR)

    # ------------------------------------------------------------ timer
    def on_timer(self) -> None:
        now = time.monotonic()
        self.sim.step(now - self._last_step)
        self._last_step = now
        if self.sim.faults.stop_feedback:
            return
        names, positions, velocities = self.sim.feedback(self.profile)
        self.endpoint.publish_feedback(names, positions, velocities, self.now_ns())
        self.health.tick(K.FEEDBACK)

    def publish_diagnostics(self) -> None:
        self.health.set_value(K.COMMANDS_OUTSIDE_LIMITS, self.commands_outside_limits)
        self.health.set_value(K.LARGEST_COMMAND_STEP, f"{self.max_command_step:.6f}")
        self.health.set_value(K.POSITIONS, np.array2string(self.sim.position, precision=3))
        super().publish_diagnostics()


def main(args=None):
    return run_node(lambda: AllegroEmulatorNode(), args)


if __name__ == "__main__":
    sys.exit(main())
