"""A node that watches a graph from the side: its own context, spun by a background thread.

Tools that observe or drive a running graph (the demo report, the parity
check, the HIL scenarios, test probes) share this instead of each writing
its own init/spin/shutdown and service-call loop.

Its teardown is bounded as a node's is (``ros.common.run_node``): destroying DDS entities can
block (Fast DDS waiting on a shared-memory port a killed process left behind), and a CLI call
whose answer is already known must not hang on it. Past the grace the teardown is left running
on a daemon thread, said on stderr with every thread's stack, and counted
(:func:`teardown_left_behind`), so the ``dexterity-ros`` program can exit without the
interpreter's finalizers touching the stuck entities.
"""
from __future__ import annotations

import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from .common import report_stuck_teardown, teardown_grace_s
from .native_teardown import destroy_node_without_gil

SPIN_JOIN_S = 2.0            # the spin thread wakes every 0.05 s; more than that is a callback that hangs
EXECUTOR_SHUTDOWN_S = 1.0

_left_behind: list[str] = []   # names of side nodes whose teardown overran its grace in this process


def teardown_left_behind() -> list[str]:
    """The side nodes of this process whose teardown is still blocked (their DDS entities never closed)."""
    return list(_left_behind)


class BackgroundNode:
    """``self.node`` lives in a private rclpy context; callbacks run on a daemon thread."""

    def __init__(self, name: str, start_parameter_services: bool = True):
        self.name = name
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)     # not sys.argv: a CLI's own arguments are not ROS arguments
        self.node = Node(name, context=self.context, start_parameter_services=start_parameter_services)
        self.lock = threading.Lock()          # guards what callbacks collect
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stopping = False           # set once, by close()
        self._thread = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stopping and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                if self._stopping or not self.context.ok():
                    return
                raise

    def call_service(self, srv_type, name: str, request, timeout: float = 10.0):
        """Call a service and wait for the answer; TimeoutError names what did not happen."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} is not available")
            future = client.call_async(request)
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.005)
            if not future.done():
                raise TimeoutError(f"service {name} did not answer within {timeout:g} s")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self, grace_s: float | None = None) -> bool:
        """Stop spinning, destroy the node, shut the context down: within ``grace_s`` (default: a node's grace).

        Returns False when the teardown overran: it is then left on a daemon thread, and
        stderr says so with every thread's stack. Closing twice does nothing the second time.
        """
        if self._stopping:
            return True
        self._stopping = True
        grace = teardown_grace_s() if grace_s is None else grace_s
        failure: list[BaseException] = []

        def tear_down() -> None:
            try:
                self._teardown()
            except BaseException as exc:     # raised again on the caller's thread, as a plain call would
                failure.append(exc)

        teardown = threading.Thread(target=tear_down, name=f"{self.name}-teardown", daemon=True)
        teardown.start()
        teardown.join(timeout=grace)
        if not teardown.is_alive():
            if failure:
                raise failure[0]
            return True
        _left_behind.append(self.name)
        report_stuck_teardown(self.name, grace, "going on without it")
        return False

    def _teardown(self) -> None:
        self._thread.join(timeout=SPIN_JOIN_S)
        self.executor.shutdown(timeout_sec=EXECUTOR_SHUTDOWN_S)
        if self._thread.is_alive():      # a callback still runs: rclpy destroys the node once it is unused
            self.node.destroy_node()
        else:
            destroy_node_without_gil(self.node)      # a blocked DDS teardown must leave the caller's thread free
        rclpy.shutdown(context=self.context)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
