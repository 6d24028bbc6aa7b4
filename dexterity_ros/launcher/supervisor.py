"""Start, watch and stop the processes of a launch plan, the way ``ros2 launch`` does.

Each child runs in its own session (so a terminal Ctrl-C reaches only the launcher, which
then stops the children in order); its output is echoed line by line as ``[label] line``;
its exit is reported with ros2 launch's wording (``process has died [pid N, exit code C,
cmd '...']``) and the others keep running, unless it was started with ``on_exit="shutdown"``
(then its exit shuts the whole launch down, like ros2 launch's Shutdown action).
Shutdown: SIGINT, then SIGTERM after ``sigterm_timeout``, then SIGKILL after ``sigkill_timeout``;
a child still running that catches SIGUSR1 first gets it: our nodes then print every thread's
Python stack (ros.common.run_node), so the output says where it hung.

Children never outlive the launcher: SIGINT, SIGTERM and SIGHUP (terminal closed) of the
launcher start the same ordered shutdown, and each child is started with the Linux parent-death
signal (``PR_SET_PDEATHSIG`` = SIGTERM, which rclpy nodes handle as a clean shutdown), so even a
SIGKILL of the launcher stops them. Every child also gets ``DEXTERITY_SUPERVISOR_PID`` (the
launcher's pid) so a node can watch its supervisor itself. The parent-death signal belongs to
the *thread* that forked the child, so every child is forked by one spawner thread that lives
as long as the launch (a respawn from a short-lived watcher thread would otherwise be killed
as soon as that thread ends).
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import functools
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence, TextIO

from .loader import load_launch_plan
from .plan import LaunchPlan, ProcessPlan

_SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP",
                 signal.SIGKILL: "SIGKILL"}
SUPERVISOR_PID_ENV = "DEXTERITY_SUPERVISOR_PID"
PARENT_DEATH_SIGNAL = signal.SIGTERM   # rclpy's handler makes it a clean shutdown (run_node returns 0)
_PR_SET_PDEATHSIG = 1
STACK_DUMP_WAIT_S = 0.5   # after SIGUSR1, before SIGKILL: time for a hung node to print its stacks


@dataclass
class ChildProcess:
    """One started process and what happened to it."""

    plan: ProcessPlan
    popen: subprocess.Popen | None = None
    returncode: int | None = None
    starts: int = 0
    crashed: bool = False            # exited non-zero on its own, before shutdown began
    last_signal: int | None = None   # the last signal the supervisor sent it
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def label(self) -> str:
        return self.plan.label

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and not self.exited.is_set()


@dataclass(frozen=True)
class OutputLine:
    label: str
    stream: str   # "stdout", "stderr" or "launch" (the supervisor's own messages)
    text: str


_LIVE_HANDLES: "weakref.WeakSet[LaunchHandle]" = weakref.WeakSet()


def _load_prctl():
    """libc's prctl, resolved here in the launcher: the child must not load libraries between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()


def _prepare_child(launcher_pid: int) -> None:
    """In the child, between fork and exec.

    SIGINT/SIGTERM back to their defaults: a launcher started in the background inherits SIGINT
    ignored, and an ignored signal would stay ignored in every node, so the SIGINT that starts a
    clean shutdown would never arrive. Then the parent-death signal, with the standard race check:
    if the launcher died before prctl took effect, the child was already re-parented and no signal
    will ever come, so it ends itself the same way.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != launcher_pid:
            os.kill(os.getpid(), PARENT_DEATH_SIGNAL)


class _Spawner:
    """One long-lived thread that forks every child (the parent-death signal fires when the forking thread ends)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        if threading.current_thread() is self._thread:
            return subprocess.Popen(*args, **kwargs)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="launch-spawner", daemon=True)
                self._thread.start()
        done = threading.Event()
        result: list = []
        self._requests.put((args, kwargs, result, done))
        done.wait()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            args, kwargs, result, done = request
            try:
                result.append(subprocess.Popen(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                result.append(exc)
            done.set()

    def close(self) -> None:
        """Let the thread end (call only once every child has exited: ending it signals the children)."""
        with self._lock:
            if self._thread is not None:
                self._requests.put(None)
                self._thread.join(timeout=5.0)
                self._thread = None


class LaunchHandle:
    """Running processes of a launch plan: wait for them, read their output, stop them."""

    def __init__(self, processes: Sequence[ProcessPlan], *, plan: LaunchPlan | None = None,
                 echo: TextIO | bool | None = True, sigterm_timeout: float = 5.0,
                 sigkill_timeout: float = 5.0, stop_on_death: bool = False, keep_lines: int = 20000):
        self.plan = plan
        self.children = [ChildProcess(p) for p in processes]
        self.echo: TextIO | None = sys.stdout if echo is True else (echo or None)   # True: this sys.stdout
        self.sigterm_timeout = sigterm_timeout
        self.sigkill_timeout = sigkill_timeout
        self.stop_on_death = stop_on_death
        self._lines: collections.deque[OutputLine] = collections.deque(maxlen=keep_lines)
        self._lines_changed = threading.Condition()
        self._echo_lock = threading.Lock()
        self._shutting_down = threading.Event()
        self.shutdown_requested = threading.Event()   # set when stop_on_death or on_exit="shutdown" fires
        self.shutdown_reason: str | None = None
        self._spawner = _Spawner()
        self._escalate = threading.Event()
        self._stop_lock = threading.Lock()
        self._spawn_lock = threading.Lock()   # a respawn never races the start of shutdown
        self._threads: list[threading.Thread] = []
        self._exit_code: int | None = None
        self._started = False

    # ------------------------------------------------------------ logging
    def log(self, level: str, name: str, message: str) -> None:
        """A launcher message in ros2 launch's screen format: ``[LEVEL] [name]: message``."""
        self._emit(OutputLine(name, "launch", f"[{level}] [{name}]: {message}"), echo=True)

    def _emit(self, line: OutputLine, echo: bool) -> None:
        with self._lines_changed:
            self._lines.append(line)
            self._lines_changed.notify_all()
        if echo and self.echo is not None:
            text = line.text if line.stream == "launch" else f"[{line.label}] {line.text}"
            with self._echo_lock:
                try:
                    self.echo.write(text + "\n")
                    self.echo.flush()
                except (OSError, ValueError):
                    pass

    # --------------------------------------------------------------- start
    def start(self) -> "LaunchHandle":
        if self._started:
            raise RuntimeError("launch handle already started")
        self._started = True
        _LIVE_HANDLES.add(self)
        if self.plan is not None:
            for message in self.plan.messages:
                self.log("INFO", "launch.user", message)
        for child in self.children:
            self._spawn(child)
        return self

    def _spawn(self, child: ChildProcess) -> None:
        plan = child.plan
        env = dict(plan.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[SUPERVISOR_PID_ENV] = str(os.getpid())
        try:
            popen = self._spawner.popen(list(plan.cmd), env=env, cwd=plan.cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                        preexec_fn=functools.partial(_prepare_child, os.getpid()))
        except (OSError, subprocess.SubprocessError) as exc:
            self.log("ERROR", child.label, f"exception occurred while executing process: {exc} "
                     f"[cmd '{shlex.join(plan.cmd)}']")
            child.returncode = 127
            child.crashed = not self._shutting_down.is_set()
            child.exited.set()
            self._after_exit(child, crashed=child.crashed)
            return
        child.popen = popen
        child.returncode = None
        child.exited.clear()
        child.starts += 1
        self.log("INFO", child.label, f"process started with pid [{popen.pid}]")
        readers = [self._thread(self._read, child, popen.stdout, "stdout"),
                   self._thread(self._read, child, popen.stderr, "stderr")]
        self._thread(self._watch, child, popen, readers)

    def _thread(self, target, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _read(self, child: ChildProcess, pipe, stream: str) -> None:
        echo = stream == "stderr" or child.plan.output in ("screen", "both")
        with pipe:
            for raw in iter(pipe.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._emit(OutputLine(child.label, stream, text), echo=echo)

    def _watch(self, child: ChildProcess, popen: subprocess.Popen, readers: list[threading.Thread]) -> None:
        code = popen.wait()
        for reader in readers:
            reader.join(timeout=2.0)   # report the exit after its last output line, like ros2 launch
        child.returncode = code
        if code == 0:
            self.log("INFO", child.label, f"process has finished cleanly [pid {popen.pid}]")
        else:
            self.log("ERROR", child.label, f"process has died [pid {popen.pid}, exit code {code}, "
                     f"cmd '{shlex.join(child.plan.cmd)}'].")
        if code != 0 and not self._shutting_down.is_set():
            child.crashed = True
        self._after_exit(child, crashed=code != 0)
        respawn = child.plan.respawn and not self._shutting_down.is_set() and not self.shutdown_requested.is_set()
        if respawn:
            if child.plan.respawn_delay > 0 and self._shutting_down.wait(child.plan.respawn_delay):
                respawn = False
        with self._spawn_lock:
            if respawn and not self._shutting_down.is_set():
                self._spawn(child)
                return
            child.exited.set()

    def _after_exit(self, child: ChildProcess, crashed: bool) -> None:
        """A child ended on its own: ``on_exit="shutdown"`` or ``stop_on_death`` ask for a shutdown."""
        if self._shutting_down.is_set() or self.shutdown_requested.is_set():
            return
        if child.plan.on_exit == "shutdown":
            self.shutdown_reason = f"process[{child.label}] exited and has on_exit=\"shutdown\""
        elif crashed and self.stop_on_death:
            self.shutdown_reason = f"process[{child.label}] died and stop_on_death is set"
        else:
            return
        self.log("INFO" if child.returncode == 0 else "ERROR", "launch", self.shutdown_reason + ", shutting down")
        self.shutdown_requested.set()

    # ---------------------------------------------------------- inspection
    @property
    def started(self) -> bool:
        return self._started

    @property
    def running(self) -> bool:
        """True while any child is running (or about to be respawned)."""
        return any(not c.exited.is_set() for c in self.children)

    def child(self, label_prefix: str) -> ChildProcess:
        """The child whose label is ``label_prefix`` or starts with ``label_prefix-``."""
        for c in self.children:
            if c.label == label_prefix or c.label.rsplit("-", 1)[0] == label_prefix:
                return c
        raise KeyError(f"no process labelled {label_prefix!r} (have {[c.label for c in self.children]})")

    def lines(self, label: str | None = None) -> list[OutputLine]:
        with self._lines_changed:
            return [ln for ln in self._lines if label is None or ln.label == label]

    @property
    def output(self) -> str:
        """Everything as it was (or would have been) echoed."""
        return "\n".join(ln.text if ln.stream == "launch" else f"[{ln.label}] {ln.text}" for ln in self.lines())

    def wait_for_output(self, text: str, timeout: float, label: str | None = None) -> bool:
        deadline = time.monotonic() + timeout
        with self._lines_changed:
            while True:
                if any(text in ln.text and (label is None or ln.label == label) for ln in self._lines):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lines_changed.wait(remaining)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every child has exited for good; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for child in self.children:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not child.exited.wait(remaining):
                return False
        return True

    @property
    def exit_code(self) -> int | None:
        return self._exit_code

    # ---------------------------------------------------------------- stop
    def escalate(self) -> None:
        """Skip the current wait of the shutdown sequence (a second Ctrl-C)."""
        self._escalate.set()

    def _signal(self, child: ChildProcess, sig: int) -> None:
        if child.popen is None or child.exited.is_set():
            return
        child.last_signal = sig
        if sig == signal.SIGINT:
            self.log("INFO", "launch", f"sending signal 'SIGINT' to process[{child.label}]")
        try:
            os.killpg(child.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                child.popen.send_signal(sig)
            except ProcessLookupError:
                pass

    @staticmethod
    def _dumps_stacks(child: ChildProcess) -> bool:
        """Whether the child catches SIGUSR1 (our nodes print their stacks on it: ros.common.run_node).

        Read from /proc (SigCgt), so a process that would die of SIGUSR1 never gets it.
        """
        if child.popen is None or child.exited.is_set():
            return False
        try:
            with open(f"/proc/{child.popen.pid}/status") as status:
                caught = next((int(line.split()[1], 16) for line in status if line.startswith("SigCgt:")), 0)
        except (OSError, ValueError):
            return False
        return bool(caught & (1 << (int(signal.SIGUSR1) - 1)))

    def _dump_stacks(self, child: ChildProcess) -> None:
        """Before SIGKILL: ask a hung node of ours where it hangs, so the kill leaves a cause in the output."""
        if not self._dumps_stacks(child):
            return
        self.log("ERROR", "launch", f"process[{child.label}]: its Python stacks follow (SIGUSR1)")
        try:
            child.popen.send_signal(signal.SIGUSR1)
        except ProcessLookupError:
            pass

    def _wait_all(self, children: Iterable[ChildProcess], timeout: float) -> list[ChildProcess]:
        deadline = time.monotonic() + timeout
        pending = [c for c in children if not c.exited.is_set()]
        while pending and time.monotonic() < deadline and not self._escalate.is_set():
            pending[0].exited.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            pending = [c for c in pending if not c.exited.is_set()]
        self._escalate.clear()
        return [c for c in pending if not c.exited.is_set()]

    def stop(self) -> int:
        """Stop every child (SIGINT -> SIGTERM -> SIGKILL) and return the launch exit code.

        0 when every child finished cleanly or ended in response to the shutdown; 1 when a
        child crashed on its own, exited non-zero when asked to stop, or had to be killed.
        """
        with self._stop_lock:
            if self._exit_code is not None:
                return self._exit_code
            with self._spawn_lock:
                self._shutting_down.set()
            live = [c for c in self.children if c.running]
            for child in live:
                self._signal(child, signal.SIGINT)
            remaining = self._wait_all(live, self.sigterm_timeout)
            for child in remaining:
                self.log("ERROR", "launch", f"process[{child.label}] failed to terminate "
                         f"'{self.sigterm_timeout:g}' seconds after receiving 'SIGINT', escalating to 'SIGTERM'")
                self._signal(child, signal.SIGTERM)
            remaining = self._wait_all(remaining, self.sigkill_timeout)
            killed = list(remaining)
            for child in remaining:
                self.log("ERROR", "launch", f"process[{child.label}] failed to terminate "
                         f"'{self.sigkill_timeout:g}' seconds after receiving 'SIGTERM', escalating to 'SIGKILL'")
                self._dump_stacks(child)
            if remaining:
                self._wait_all(remaining, STACK_DUMP_WAIT_S)   # the dumps reach the output (or the child exits)
            for child in remaining:
                self._signal(child, signal.SIGKILL)
            self._wait_all(remaining, 10.0)
            for child in self.children:
                if not child.exited.is_set() and child.popen is None:
                    child.exited.set()   # never started (respawn pending): nothing to wait for
            self.wait(timeout=5.0)
            for thread in self._threads:
                thread.join(timeout=2.0)
            if not any(c.popen is not None and c.popen.poll() is None for c in self.children):
                self._spawner.close()   # only now: its end would send the parent-death signal
            if self.plan is not None:
                self.plan.cleanup()
            _LIVE_HANDLES.discard(self)
            self._exit_code = self._compute_exit_code(killed)
            return self._exit_code

    def _compute_exit_code(self, killed: list[ChildProcess]) -> int:
        for child in self.children:
            if child.crashed or child in killed:
                return 1
            code = child.returncode
            if code is None or code == 0:
                continue
            if child.last_signal is not None and code == -child.last_signal:
                continue   # ended by the signal we sent it
            return 1
        return 0

    def __enter__(self) -> "LaunchHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def launch(path: Path | str, arguments: Mapping[str, str] | Iterable[str] | None = None, *,
           echo: TextIO | bool | None = True, sigterm_timeout: float = 5.0, sigkill_timeout: float = 5.0,
           stop_on_death: bool = False, environ: Mapping[str, str] | None = None) -> LaunchHandle:
    """Evaluate a launch file and start its processes; ``handle.stop()`` (or ``with``) ends them.

    Raises :class:`~dexterity_ros.launcher.errors.LaunchError` before starting anything if the file is bad.
    """
    plan = load_launch_plan(path, arguments, environ=environ)
    handle = LaunchHandle(plan.processes, plan=plan, echo=echo, sigterm_timeout=sigterm_timeout,
                          sigkill_timeout=sigkill_timeout, stop_on_death=stop_on_death)
    try:
        return handle.start()
    except BaseException:
        handle.stop()
        raise


def run_until_stopped(handle: LaunchHandle, duration: float | None = None,
                      handle_signals: bool = True) -> int:
    """Block until SIGINT/SIGTERM/SIGHUP, ``duration`` seconds, every child exited, or a child asked
    for a shutdown (``on_exit="shutdown"``, ``stop_on_death``); then stop; exit code.

    SIGHUP (the terminal was closed) is a shutdown like SIGINT, unless the launcher was started
    with SIGHUP ignored (``nohup``), which is respected. A handle that is not started yet is
    started here, once the signal handlers are in place.
    """
    stop_reason = threading.Event()
    previous: dict[int, object] = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        def on_signal(signum, _frame) -> None:
            name = "ctrl-c (SIGINT)" if signum == signal.SIGINT else _SIGNAL_NAMES.get(signum, str(signum))
            if stop_reason.is_set():
                handle.log("WARNING", "launch", f"received {name} again, escalating")
                handle.escalate()
                return
            handle.log("WARNING", "launch", f"user interrupted with {name}" if signum == signal.SIGINT
                       else f"received {name}, shutting down")
            stop_reason.set()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue
            previous[sig] = signal.signal(sig, on_signal)
    try:
        if not handle.started:
            handle.start()   # after the handlers are in place: a signal during start-up stops cleanly too
        deadline = None if duration is None else time.monotonic() + duration
        while not stop_reason.is_set():
            if handle.shutdown_requested.is_set():
                break   # the reason was logged when it was requested
            if not handle.running:
                handle.log("INFO", "launch", "all processes have exited")
                break
            if deadline is not None and time.monotonic() >= deadline:
                handle.log("INFO", "launch", f"--duration {duration:g} s elapsed, shutting down")
                break
            stop_reason.wait(0.05)
        stop_reason.set()
        return handle.stop()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@atexit.register
def _stop_leftovers() -> None:
    """Never leave children behind when the launching interpreter exits."""
    for handle in list(_LIVE_HANDLES):
        handle.sigterm_timeout = min(handle.sigterm_timeout, 2.0)
        handle.sigkill_timeout = min(handle.sigkill_timeout, 2.0)
        try:
            handle.stop()
        except Exception:
            pass
