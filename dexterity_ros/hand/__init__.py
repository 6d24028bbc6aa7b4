"""Pure core of the hand command interface (no rclpy): profiles, safety, watchdog, emulator."""
from .controller import (COMMANDING, STATE_LEVEL, Counters, HandController, HandState, JitterMeter, TickOutput,
                         Transition, WatchdogConfig)
from .emulator import EmulatedHand, EmulatorFaults
from .interpolation import INTERPOLATION_MODES, TargetInterpolator
from .profiles import (LEAP_EMBODIMENT_OFFSET, PROFILE_NAMES, DriverProfile, DriverProfileConfig,
                       FeedbackDecoder, FeedbackMismatch, TargetDecoder, make_profile, ros2_control_order)
from .safety import (OutputMonitor, SafetyFilter, SafetyLimits, SafetyTables, TargetRejected,
                     load_hand_parameters, load_safety_tables)

__all__ = [
    "COMMANDING", "STATE_LEVEL", "Counters", "HandController", "HandState", "JitterMeter", "TickOutput", "Transition",
    "WatchdogConfig", "EmulatedHand", "EmulatorFaults", "INTERPOLATION_MODES", "TargetInterpolator",
    "LEAP_EMBODIMENT_OFFSET", "PROFILE_NAMES", "DriverProfile", "DriverProfileConfig", "FeedbackDecoder",
    "FeedbackMismatch", "TargetDecoder", "make_profile", "ros2_control_order", "OutputMonitor",
    "SafetyFilter", "SafetyLimits", "SafetyTables", "TargetRejected", "load_hand_parameters",
    "load_safety_tables",
]
