"""Real-time scheduling (SCHED_FIFO) for a node's process: the control path runs before other work.

Why: on the 2-core machine the graph's tail latency is made by wake-ups that find both cores busy.
With one core's worth of other work, the replay graph's p99 (depth stamp -> hand command) went
from ~13 ms to 18-21 ms; with its nodes at SCHED_FIFO it stayed at 8.5-9 ms (docs/benchmarks.md).
ros2_control's controller_manager does the same for its update thread (``thread_priority``,
SCHED_FIFO, a warning where the kernel refuses); a robot running the graph wants it for every
node between the camera and the hand.

Why our own: ``os.sched_setscheduler`` sets one thread, and a node's DDS threads (shared-memory
listeners, which wake first on a frame) already exist when its parameters are known; this sets
every thread listed in /proc/self/task, as ``chrt -a`` does (threads started later inherit the
policy of the thread that starts them). Pure: no rclpy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import param

MAX_PRIORITY = 99
HOW_TO_PERMIT = ("run with CAP_SYS_NICE or raise the rtprio limit (/etc/security/limits.conf: "
                 "'<user> - rtprio 50'; README: Real-time priority)")


@dataclass(frozen=True)
class RealtimeConfig:
    """The scheduling parameter shared by the nodes on the path from the camera to the hand."""

    realtime_priority: int = param(
        0, "SCHED_FIFO priority of every thread of this node, 1-99 (0: the normal scheduler). Puts the control "
           "path before other work on the machine; needs CAP_SYS_NICE or an rtprio limit, else the node warns "
           "and runs normally (README: Real-time priority)", min=0, max=MAX_PRIORITY, read_only=True)


@dataclass(frozen=True)
class SchedulingOutcome:
    """What :func:`apply_realtime_priority` did: the threads set, or why the kernel refused."""

    requested: int
    threads: int = 0
    refused: str | None = None

    @property
    def realtime(self) -> bool:
        return self.requested > 0 and self.refused is None

    def describe(self) -> str:
        """One line for /diagnostics and the log."""
        if self.requested == 0:
            return "normal (SCHED_OTHER)"
        if self.refused is None:
            return f"SCHED_FIFO {self.requested} ({self.threads} threads)"
        return f"normal (SCHED_OTHER): realtime_priority {self.requested} refused: {self.refused}"


def apply_realtime_priority(priority: int, tasks: Path = Path("/proc/self/task")) -> SchedulingOutcome:
    """Every thread of this process to SCHED_FIFO ``priority`` (0: leave the scheduler as it is).

    All or nothing: if the kernel refuses a thread, the threads already set go back to SCHED_OTHER,
    so a process never runs half real-time. A thread that ends meanwhile is skipped.
    """
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"realtime_priority must be in [0, {MAX_PRIORITY}], got {priority}")
    if priority == 0:
        return SchedulingOutcome(0)
    if not hasattr(os, "sched_setscheduler"):
        return SchedulingOutcome(priority, refused="this platform has no SCHED_FIFO")
    try:
        thread_ids = sorted(int(entry.name) for entry in tasks.iterdir())
    except OSError as exc:
        return SchedulingOutcome(priority, refused=f"cannot list the threads in {tasks}: {exc.strerror}")
    done: list[int] = []
    for tid in thread_ids:
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
        except ProcessLookupError:
            continue
        except OSError as exc:
            for undone in done:
                try:
                    os.sched_setscheduler(undone, os.SCHED_OTHER, os.sched_param(0))
                except OSError:
                    pass
            return SchedulingOutcome(priority, refused=f"{exc.strerror or exc}; {HOW_TO_PERMIT}")
        done.append(tid)
    return SchedulingOutcome(priority, threads=len(done))
