"""Map a depth frame's device timestamp onto ROS time (monotonic, close to exposure).

Which clock is used, by ``rs.timestamp_domain`` of the frame:

* ``global_time`` (live D400 default, ``global_time_enabled``): librealsense
  already translates the device's hardware clock into the host system clock
  (it keeps a linear fit of device time against host time from periodic
  round-trip queries), so the stamp is that value moved onto the ROS clock
  (``+ ros_now - system_now``, zero unless ``use_sim_time``). Transfer jitter
  is not in it. A value that is in the future or older than ``max_age_s``
  (fit not converged, clock stepped) falls back to the estimator below.
* ``hardware_clock`` (global time off or unsupported; and every domain when
  the frames come from a *recording*, whose clock is in the past): the
  device clock plus an offset estimated on the fly. Each frame gives a sample
  ``d = arrival_ros - device``; transfer delay only ever adds to ``d``, so
  the minimum of ``d`` over a sliding window (``window_s``) is the clock
  offset plus the smallest transfer delay. The estimate follows that minimum
  through a first-order low-pass (``smoothing`` per frame) so the stamps
  carry the device clock's regular spacing instead of USB/queue jitter, and
  drift is tracked. A device clock that runs backwards (wrap, reset, a looping
  recording) or a minimum far from the estimate (ROS clock jump) restarts it.
* ``system_time`` (no frame metadata, e.g. a kernel without the RealSense
  patches): the SDK's stamp is the host time of arrival, used as is: an
  arrival-time stamp, later than exposure by the transfer time.

In the hardware-clock and global-time domains the stamp is moved from the
start of readout to the middle of exposure when the frame carries both the
``frame_timestamp`` and ``sensor_timestamp`` metadata (``exposure_offset_ms``).
Finally stamps are forced strictly increasing.
"""
from __future__ import annotations

import collections
import enum

from .base import TimestampDomain

_NS_PER_MS = 1_000_000


class StampMethod(str, enum.Enum):
    GLOBAL_TIME = "global time (SDK device->host clock mapping)"
    DEVICE_CLOCK = "device clock + estimated offset (windowed-minimum delay, low-pass)"
    ARRIVAL = "arrival time (system_time domain: no frame metadata)"


class FrameStamper:
    """Turns (device timestamp, domain, arrival time) into a monotonic ROS stamp (ns)."""

    def __init__(self, window_s: float = 2.0, smoothing: float = 0.1, reset_threshold_s: float = 0.5,
                 max_age_s: float = 1.0, future_tolerance_s: float = 0.005):
        self.window_ns = int(window_s * 1e9)
        self.smoothing = smoothing
        self.reset_threshold_ns = int(reset_threshold_s * 1e9)
        self.max_age_ns = int(max_age_s * 1e9)
        self.future_tolerance_ns = int(future_tolerance_s * 1e9)
        self.method: StampMethod | None = None
        self.resets = 0                 # estimator restarts (clock wrap/reset, recording loop, jumps)
        self.monotonic_fixes = 0        # stamps pushed forward to keep them increasing
        self.global_time_rejects = 0    # global-time stamps that failed the sanity check
        self._samples: collections.deque[tuple[int, int]] = collections.deque()  # (arrival_ros, delay)
        self._offset_ns: float | None = None
        self._last_device_ns: int | None = None
        self._last_stamp_ns: int | None = None

    @property
    def offset_ns(self) -> float | None:
        """Current device-clock -> ROS-time offset estimate (None before the first frame)."""
        return self._offset_ns

    def reset(self) -> None:
        """Forget the clock estimate (new device or new recording); stamps stay monotonic."""
        self._samples.clear()
        self._offset_ns = None
        self._last_device_ns = None

    def stamp(self, timestamp_ms: float, domain: TimestampDomain, arrival_ros_ns: int,
              ros_minus_system_ns: int = 0, recorded: bool = False,
              exposure_offset_ms: float = 0.0) -> int:
        """ROS time (ns) of the frame; ``arrival_ros_ns`` is when it reached the host, on the ROS clock."""
        domain = TimestampDomain(domain)
        device_ns = int(round(timestamp_ms * _NS_PER_MS))
        if domain is not TimestampDomain.SYSTEM_TIME:
            device_ns -= int(round(exposure_offset_ms * _NS_PER_MS))
        if not recorded and domain is TimestampDomain.SYSTEM_TIME:
            self.method = StampMethod.ARRIVAL
            stamp = device_ns + ros_minus_system_ns
        elif not recorded and domain is TimestampDomain.GLOBAL_TIME and self._plausible(
                device_ns + ros_minus_system_ns, arrival_ros_ns):
            self.method = StampMethod.GLOBAL_TIME
            stamp = device_ns + ros_minus_system_ns
        else:
            if not recorded and domain is TimestampDomain.GLOBAL_TIME:
                self.global_time_rejects += 1
            self.method = StampMethod.DEVICE_CLOCK
            stamp = device_ns + int(round(self._update_offset(device_ns, arrival_ros_ns)))
        if self._last_stamp_ns is not None and stamp <= self._last_stamp_ns:
            self.monotonic_fixes += 1
            stamp = self._last_stamp_ns + 1
        self._last_stamp_ns = stamp
        return stamp

    def _plausible(self, stamp_ns: int, arrival_ros_ns: int) -> bool:
        age = arrival_ros_ns - stamp_ns
        return -self.future_tolerance_ns <= age <= self.max_age_ns

    def _update_offset(self, device_ns: int, arrival_ros_ns: int) -> float:
        delay = arrival_ros_ns - device_ns
        if self._last_device_ns is not None and device_ns < self._last_device_ns:
            self._restart()
        self._last_device_ns = device_ns
        self._samples.append((arrival_ros_ns, delay))
        while self._samples and arrival_ros_ns - self._samples[0][0] > self.window_ns:
            self._samples.popleft()
        window_min = min(d for _, d in self._samples)
        if self._offset_ns is None or abs(window_min - self._offset_ns) > self.reset_threshold_ns:
            if self._offset_ns is not None:
                self.resets += 1
                self._samples.clear()
                self._samples.append((arrival_ros_ns, delay))
                window_min = delay
            self._offset_ns = float(window_min)
        else:
            self._offset_ns += self.smoothing * (window_min - self._offset_ns)
        return self._offset_ns

    def _restart(self) -> None:
        self.resets += 1
        self._samples.clear()
        self._offset_ns = None
