"""Finalize a node's rcl handle with the GIL released, so a DDS teardown that blocks cannot freeze Python.

Why this exists: rclpy's binding finalizes the node (``rcl_logging_rosout_fini_publisher_for_node``,
then ``rcl_node_fini``, which for the context's last node deletes the Fast DDS participant) while
holding the GIL. When Fast DDS blocks there (seen in CI: 4.5 s and more at the end of a launch,
while the peers' processes were exiting), no Python thread runs, so ``run_node``'s teardown
watchdog cannot leave with the exit code the node had decided (0 for a requested stop), and
faulthandler's backstop ends the process with exit code 1, which the launcher reports as a crash.

Calling the same two rcl functions through ``ctypes.CDLL`` releases the GIL for their duration
(``ctypes`` does so for every ``CDLL`` call), so the watchdog can always act. Both calls are
idempotent in rcl (``rcl_node_fini`` returns OK for a finalized node; the rosout entry is gone),
so rclpy's own deleter, which runs afterwards, finds nothing left to do; the one warning it then
gives about the rosout publisher (it cannot read the finalized node's logger name) is expected
and filtered.

No library offers this; rclpy has no GIL-releasing destroy. The hook is the one place rclpy
calls into its binding at the end of ``Node.destroy_node`` (``destroy_when_not_in_use``), after
every publisher, subscription, service, timer and guard condition is gone, which is the order
rcl requires.
"""
from __future__ import annotations

import ctypes
import warnings
from typing import Any

from rclpy.node import Node

ROSOUT_WARNING = "Failed to fini rosout publisher"   # rclpy's deleter, after the node was finalized here


class _RclNodeApi:
    """The two rcl functions, loaded from the librcl that rclpy already mapped (same handle, no second copy)."""

    def __init__(self, library: str = "librcl.so"):
        self.library = ctypes.CDLL(library)          # CDLL, not PyDLL: the GIL is released during each call
        self.rosout_enabled = self.library.rcl_logging_rosout_enabled
        self.rosout_enabled.restype = ctypes.c_bool
        self.rosout_enabled.argtypes = []
        self.rosout_fini = self.library.rcl_logging_rosout_fini_publisher_for_node
        self.node_fini = self.library.rcl_node_fini
        for function in (self.rosout_fini, self.node_fini):
            function.restype = ctypes.c_int
            function.argtypes = [ctypes.c_void_p]

    def finalize(self, pointer: int) -> tuple[int, int]:
        """rclpy's deleter's order: the node's rosout publisher, then the node. Returns both rcl codes."""
        rosout = self.rosout_fini(pointer) if self.rosout_enabled() else 0
        return rosout, self.node_fini(pointer)


_api: _RclNodeApi | None = None


def rcl_node_api() -> _RclNodeApi:
    global _api
    if _api is None:
        _api = _RclNodeApi()
    return _api


class _HandleFinalizedWithoutGil:
    """Stands in for rclpy's node handle during ``destroy_node``: the final destroy runs GIL-free first."""

    def __init__(self, handle: Any, api: _RclNodeApi):
        self._handle = handle
        self._api = api
        self.codes: tuple[int, int] | None = None

    def destroy_when_not_in_use(self) -> None:
        self.codes = self._api.finalize(self._handle.pointer)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=ROSOUT_WARNING, category=RuntimeWarning)
            self._handle.destroy_when_not_in_use()

    def __enter__(self):
        return self._handle.__enter__()

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


_HANDLE_ATTRIBUTE = "_Node__node"    # rclpy.node.Node's private ``__node``, which destroy_node finalizes last


def destroy_node_without_gil(node: Node, api: _RclNodeApi | None = None) -> tuple[int, int] | None:
    """``node.destroy_node()``, its rcl finalization run with the GIL released.

    Only for a node nothing else uses any more (its executor has stopped spinning, its threads are
    stopped by its own ``destroy_node``): rcl finalizes at once rather than when unused. Falls back
    to plain ``destroy_node`` where this rclpy keeps its handle elsewhere or librcl cannot be loaded.
    Returns the two rcl return codes (rosout publisher, node), or None on the fallback.
    """
    handle = getattr(node, _HANDLE_ATTRIBUTE, None)
    try:
        api = api or rcl_node_api()
    except (OSError, AttributeError):
        api = None
    if handle is None or api is None or not hasattr(handle, "pointer"):
        node.destroy_node()
        return None
    stand_in = _HandleFinalizedWithoutGil(handle, api)
    setattr(node, _HANDLE_ATTRIBUTE, stand_in)
    try:
        node.destroy_node()
    finally:
        setattr(node, _HANDLE_ATTRIBUTE, handle)
    return stand_in.codes
