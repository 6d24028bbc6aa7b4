"""Where episodes run: in this process, in local worker processes, or on a Ray cluster.

Every episode is a pure function of its job and model, and :func:`~.rollout.run_episodes`
puts results back in task order, so a backend only decides *where* the work happens: the
dataset is the same whichever backend and however many workers (test/learning/test_learning_ray.py).

Expert labelling (about 0.2 CPU-s per label) is what limits distillation, and one machine has
few cores; ``distill --ray ADDRESS`` runs the episodes on the CPUs of a Ray cluster instead:

* ``local``: start a private Ray instance on this machine with ``--workers`` CPUs (tests, and
  the labels/s benchmark, bench/labels.py);
* ``auto``: join the cluster this machine belongs to (``ray start --head`` here, or the
  ``RAY_ADDRESS`` environment variable), as ``ray.init(address="auto")``;
* anything else: a cluster address (``HOST:6379`` from a cluster node, ``ray://HOST:10001``
  through Ray Client).

Both backends are ``concurrent.futures.Executor`` objects, so run_episodes treats them alike.
A Ray task whose worker process or node dies is retried (``max_retries``) and an episode is
only added to the dataset once its result has arrived, so a lost worker costs time, not labels;
an exception raised by our own code is a bug and is not retried. Each worker process keeps its
simulator between episodes (rollout._worker_for), as local workers do. Docs: docs/ray.md.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable

RAY_TASK_RETRIES = 3            # retries after a worker process or node is lost (not after our exceptions)
_LOCAL = "local"


def local_executor(workers: int) -> ProcessPoolExecutor:
    """Local worker processes (forkserver: never fork MuJoCo/GL state); each keeps its env between episodes."""
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    os.environ.setdefault("MUJOCO_GL", "egl")
    return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context(method),
                               initializer=count_mujoco_warnings)


MUJOCO_WARNINGS = {"count": 0}


def count_mujoco_warnings() -> None:
    """Worker processes: count MuJoCo's warnings instead of printing each one.

    Coarse planner rollouts occasionally diverge (the expert scores them as the
    worst case); MuJoCo would print a warning line for every one of them.
    """
    if MUJOCO_WARNINGS.get("installed"):
        return
    import mujoco

    def handler(message: str) -> None:
        MUJOCO_WARNINGS["count"] += 1

    mujoco.set_mju_user_warning(handler)
    MUJOCO_WARNINGS["installed"] = 1


def _in_ray_worker(fn: Callable[..., Any], *args: Any) -> Any:
    """What a Ray task runs: the worker set-up local workers get from their initializer, then ``fn``."""
    count_mujoco_warnings()
    return fn(*args)


class RayExecutor(Executor):
    """Episodes as Ray tasks (one CPU each) on a local instance or a cluster; see the module docstring."""

    def __init__(self, address: str, workers: int = 0):
        try:
            import ray
        except ImportError as exc:    # pragma: no cover - ray is in requirements.txt
            raise RuntimeError("--ray needs the 'ray' package (pip install -r requirements.txt)") from exc
        self._ray = ray
        self.address = address
        env = {"env_vars": {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}}
        self._started_here = not ray.is_initialized()
        if self._started_here:
            if address == _LOCAL:
                if workers < 1:
                    raise ValueError("--ray local needs --workers >= 1 (the CPUs of the local Ray instance)")
                ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env, log_to_driver=True,
                         configure_logging=False)
            else:
                try:
                    ray.init(address=address, runtime_env=env, configure_logging=False)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise RuntimeError(f"cannot join the Ray cluster at '{address}': {exc} (start one with "
                                       "`ray start --head`, or use --ray local)") from exc
        self.workers = int(ray.cluster_resources().get("CPU", 0))
        self._task = ray.remote(num_cpus=1, max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(_in_ray_worker)
        self._shared: dict[int, tuple[Any, Any]] = {}     # id(argument) -> (argument, its object ref)
        self._pending: list[Any] = []

    @property
    def description(self) -> str:
        where = "a local Ray instance" if self.address == _LOCAL else f"the Ray cluster at {self.address}"
        return f"{where} ({self.workers} CPUs)"

    def _put_once(self, value: Any) -> Any:
        """Large arguments (the worker setup, a student model) go to the object store once, not per task."""
        from .rollout import WorkerSetup
        if not isinstance(value, (bytes, bytearray, WorkerSetup)):
            return value
        entry = self._shared.get(id(value))
        if entry is None or entry[0] is not value:
            entry = self._shared[id(value)] = (value, self._ray.put(value))
        return entry[1]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if kwargs:
            raise TypeError("RayExecutor.submit takes positional arguments only")
        ref = self._task.remote(fn, *[self._put_once(a) for a in args])
        self._pending.append(ref)
        return ref.future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            for ref in self._pending:
                try:
                    self._ray.cancel(ref)
                except Exception:   # already finished or gone: nothing to cancel
                    pass
        self._pending.clear()
        self._shared.clear()
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def make_backend(workers: int, ray_address: str | None = None) -> Executor | None:
    """The executor for a run: Ray when an address is given, else local processes (None: in this process)."""
    if ray_address:
        return RayExecutor(ray_address, workers)
    return local_executor(workers) if workers > 0 else None


def describe_backend(executor: Executor | None, workers: int) -> str:
    if isinstance(executor, RayExecutor):
        return executor.description
    return f"{workers} local worker process(es)" if executor is not None else "in this process"
