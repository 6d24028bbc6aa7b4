"""SIGUSR1 prints every thread's Python stack to stderr: a node or a tool that hangs can say where.

faulthandler runs in C, so the dump comes even while Python is stuck in a native call. Shared by the
nodes (``ros.common.run_node``) and the ``dexterity-ros`` CLI; pure (no rclpy).
"""
from __future__ import annotations

import faulthandler
import signal

TRACEBACK_SIGNAL = signal.SIGUSR1


def register_stack_dump() -> None:
    """Dump all threads' stacks on TRACEBACK_SIGNAL (a no-op where there is no such signal or stderr)."""
    try:
        faulthandler.register(TRACEBACK_SIGNAL, all_threads=True, chain=False)
    except (AttributeError, ValueError, RuntimeError, OSError):   # no SIGUSR1 (Windows) or no usable stderr
        pass
