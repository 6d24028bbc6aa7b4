"""A node that watches a graph from the side: its own context, spun by a background thread.

Tools that observe or drive a running graph (the demo report, the parity
check, the HIL scenarios, test probes) share this instead of each writing
its own init/spin/shutdown and service-call loop.
"""
from __future__ import annotations

import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class BackgroundNode:
    """``self.node`` lives in a private rclpy context; callbacks run on a daemon thread."""

    def __init__(self, name: str, start_parameter_services: bool = True):
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)     # not sys.argv: a CLI's own arguments are not ROS arguments
        self.node = Node(name, context=self.context, start_parameter_services=start_parameter_services)
        self.lock = threading.Lock()          # guards what callbacks collect
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stopping = False
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

    def close(self) -> None:
        self._stopping = True
        self._thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
