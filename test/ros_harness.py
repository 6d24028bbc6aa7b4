"""Helpers for tests that run real nodes over real DDS.

``RosProbe`` is an in-process rclpy node that publishes and collects
messages; ``NodeProcess`` starts a node executable as its own process with
``--ros-args``, the same way the launcher does, and stops it with SIGINT.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from dexterity_ros.ros.background import BackgroundNode

ROOT = Path(__file__).resolve().parent.parent


class RosProbe(BackgroundNode):
    """A test-side node with its own context and a background executor thread."""

    def __init__(self, name: str = "probe"):
        super().__init__(name)
        self.received: dict[str, list[Any]] = {}
        self._lock = self.lock

    def subscribe(self, msg_type, topic: str, qos, key: str | None = None,
                  stamp: bool = False) -> list[Any]:
        key = key or topic
        with self._lock:
            store = self.received.setdefault(key, [])

        def callback(msg, store=store):
            with self._lock:
                store.append((time.monotonic(), msg) if stamp else msg)

        self.node.create_subscription(msg_type, topic, callback, qos)
        return store

    def publisher(self, msg_type, topic: str, qos):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(poll)
        with self._lock:
            return predicate()

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        return self.call_service(srv_type, name, request, timeout)


class NodeProcess:
    """A node started as ``python -m dexterity_ros.nodes.<module> --ros-args ...``."""

    def __init__(self, module: str, name: str | None = None, params: dict[str, Any] | None = None,
                 remaps: dict[str, str] | None = None, env: dict[str, str] | None = None):
        cmd = [sys.executable, "-m", f"dexterity_ros.nodes.{module}", "--ros-args"]
        if name:
            cmd += ["-r", f"__node:={name}"]
        for key, value in (params or {}).items():
            cmd += ["-p", f"{key}:={_param_text(value)}"]
        for src, dst in (remaps or {}).items():
            cmd += ["-r", f"{src}:={dst}"]
        self.cmd = cmd
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=full_env, cwd=str(ROOT))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_output(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        return self.proc.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_text(v) if not isinstance(v, str) else f"'{v}'" for v in value) + "]"
    return str(value)


def run_telling_where_it_hangs(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run a CLI; past ``timeout`` ask it for its stacks (SIGUSR1) and fail with them (a parity check once hung)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(2.0)
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"{' '.join(command[2:4])} did not end within {timeout:g} s; its output and stacks:\n"
                             f"{out[-3000:]}\n{err[-6000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


STALL_RMW_DESTROY_NODE_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*destroy_fn)(void *);

/* A Fast DDS teardown that blocks, where CI saw one: inside rcl_node_fini (rmw_destroy_node). */
int rmw_destroy_node(void * node)
{
  void * rmw = dlopen("librmw_implementation.so", RTLD_LAZY | RTLD_NOLOAD);
  destroy_fn real = (destroy_fn)dlsym(rmw ? rmw : RTLD_NEXT, "rmw_destroy_node");
  const char * stall = getenv("STALL_RMW_DESTROY_NODE_S");
  if (stall) {
    sleep((unsigned)atoi(stall));
  }
  return real ? real(node) : 1;
}
"""
STALL_ENV = "STALL_RMW_DESTROY_NODE_S"     # seconds every rmw_destroy_node blocks in a process with the library


def build_rmw_destroy_node_stall(folder: Path) -> Path:
    """An LD_PRELOAD library whose rmw_destroy_node blocks for $STALL_RMW_DESTROY_NODE_S s (skips without a C compiler)."""
    import pytest

    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the LD_PRELOAD stand-in for a blocking DDS teardown")
    source, library = folder / "stall.c", folder / "libstall_rmw_destroy_node.so"
    source.write_text(STALL_RMW_DESTROY_NODE_C)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True,
                   capture_output=True, timeout=120)
    return library
