"""A short-lived rclpy context for the bag command-line tools, stopped by SIGINT or SIGTERM.

rclpy's own signal handlers shut the context down from inside the signal,
which would leave a recording without its summary and metadata.yaml; here
both signals only set :attr:`RosSession.stop`, and the tool finishes its
work (flush, close) before the context goes away.
"""
from __future__ import annotations

import os
import signal
import threading

import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions


class RosSession:
    def __init__(self, node_name: str, use_sim_time: bool = False):
        self.stop = threading.Event()
        self.signal_name = ""
        self._previous = {}
        self.node_name = f"{node_name}_{os.getpid()}"
        self.use_sim_time = use_sim_time
        self.context = None
        self.node: Node | None = None

    def _handle(self, signum, frame) -> None:
        self.signal_name = signal.Signals(signum).name
        self.stop.set()

    def __enter__(self) -> "RosSession":
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        overrides = [Parameter("use_sim_time", value=True)] if self.use_sim_time else []
        self.node = Node(self.node_name, context=self.context, parameter_overrides=overrides,
                         start_parameter_services=False)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.node is not None:
                self.node.destroy_node()
        finally:
            if self.context is not None and self.context.ok():
                rclpy.shutdown(context=self.context)
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
