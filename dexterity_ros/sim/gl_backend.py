"""Choose MuJoCo's offscreen OpenGL backend (EGL first, OSMesa as fallback).

MuJoCo binds its GL platform (and PyOpenGL its platform) when ``mujoco`` is
imported with MUJOCO_GL set, and cannot switch afterwards. So:

* at import of :mod:`dexterity_ros.sim` (before MuJoCo is imported),
  :func:`prepare_mujoco_import` makes sure a requested backend whose library is
  missing cannot break ``import mujoco`` itself (physics must keep working); the
  problem is remembered and reported at the first render;
* at the first render, :func:`select_backend` uses MUJOCO_GL when it is set, and
  otherwise probes EGL then OSMesa in throw-away subprocesses (a backend that
  crashes cannot take this process down), exports the winner in MUJOCO_GL so
  worker processes skip the probe, and raises :class:`RenderBackendError` with
  every backend's reason when none starts.
"""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

OFFSCREEN_BACKENDS = ("egl", "osmesa")
_LIBRARIES = {"egl": "EGL", "osmesa": "OSMesa"}
_import_problems: dict[str, str] = {}
_selected: str | None = None


class RenderBackendError(RuntimeError):
    """No offscreen OpenGL backend could start; the message says why for each one."""


def _requested() -> str:
    return os.environ.get("MUJOCO_GL", "").strip().lower()


def library_present(backend: str) -> bool:
    return ctypes.util.find_library(_LIBRARIES[backend]) is not None


def prepare_mujoco_import() -> None:
    """Import MuJoCo so that a broken GL request cannot make the import itself fail."""
    if "mujoco" in sys.modules:
        return
    requested = _requested()
    if requested in OFFSCREEN_BACKENDS and not library_present(requested):
        _import_problems[requested] = (
            f"lib{_LIBRARIES[requested]} was not found on this system "
            f"(install {'libegl1 and a GPU/Mesa EGL driver' if requested == 'egl' else 'libosmesa6'})")
        os.environ["MUJOCO_GL"] = "disabled"
        try:
            import mujoco  # noqa: F401  (physics only; rendering reports the problem)
        finally:
            os.environ["MUJOCO_GL"] = requested


_PROBE = """
import os, sys
backend = sys.argv[1]
if backend == "egl":
    from mujoco.egl import GLContext
else:
    from mujoco.osmesa import GLContext
import mujoco
ctx = GLContext(16, 16)
ctx.make_current()
model = mujoco.MjModel.from_xml_string("<mujoco/>")
con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
con.free(); ctx.free()
print("ok")
"""


def probe_backend(backend: str, timeout_s: float = 60.0) -> str | None:
    """None when ``backend`` starts in a fresh process, else the reason it does not."""
    if not library_present(backend):
        return f"lib{_LIBRARIES[backend]} not found"
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE, backend], env=env, capture_output=True,
                                text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"probe timed out after {timeout_s:.0f} s"
    if result.returncode == 0 and result.stdout.strip().endswith("ok"):
        return None
    tail = (result.stderr or result.stdout).strip().splitlines()
    return tail[-1] if tail else f"probe exited with {result.returncode}"


def _platform_bound() -> str | None:
    """The PyOpenGL platform already bound in this process, if any."""
    if "OpenGL" not in sys.modules:
        return None
    return (os.environ.get("PYOPENGL_PLATFORM") or "").lower() or "default"


def select_backend() -> str:
    """Decide (once per process) which backend renders; raise RenderBackendError if none can."""
    global _selected
    if _selected is not None:
        return _selected
    requested = _requested()
    if requested and requested not in OFFSCREEN_BACKENDS:
        raise RenderBackendError(
            f"MUJOCO_GL={requested!r} cannot render offscreen depth; set MUJOCO_GL=egl (GPU or Mesa) "
            "or MUJOCO_GL=osmesa (software), or unset it to choose automatically")
    if requested in _import_problems:
        raise RenderBackendError(f"MUJOCO_GL={requested}: {_import_problems[requested]}; "
                                 "unset MUJOCO_GL to try the other backend")
    bound = _platform_bound()
    if requested:
        candidates = [requested]
    elif bound in OFFSCREEN_BACKENDS:
        candidates = [bound]
    else:
        candidates = list(OFFSCREEN_BACKENDS)
    if bound is not None and any(c != bound for c in candidates):
        raise RenderBackendError(
            f"PyOpenGL is already bound to platform {bound!r} in this process, so MuJoCo cannot "
            f"render with {candidates}; set MUJOCO_GL before anything imports OpenGL")
    if len(candidates) == 1:
        _selected = candidates[0]
    else:
        reasons = {}
        for backend in candidates:
            reason = probe_backend(backend)
            if reason is None:
                _selected = backend
                break
            reasons[backend] = reason
        else:
            raise RenderBackendError(
                "no offscreen OpenGL backend could start: "
                + "; ".join(f"{b}: {r}" for b, r in reasons.items())
                + ". Install an EGL driver (GPU or Mesa libegl1) or OSMesa (libosmesa6).")
    os.environ["MUJOCO_GL"] = _selected
    os.environ.setdefault("PYOPENGL_PLATFORM", _selected)
    return _selected


def create_gl_context(width: int, height: int):
    """A current GL context of the selected backend; errors become RenderBackendError."""
    backend = select_backend()
    try:
        if backend == "egl":
            from mujoco.egl import GLContext
        else:
            from mujoco.osmesa import GLContext
        context = GLContext(width, height)
        context.make_current()
    except Exception as exc:     # ImportError, RuntimeError, GLError, AttributeError...
        raise RenderBackendError(
            f"MuJoCo's {backend} OpenGL context could not start: {type(exc).__name__}: {exc}. "
            + ("Unset MUJOCO_GL to let the simulator try OSMesa, or install an EGL driver."
               if backend == "egl" else "Install libosmesa6, or use MUJOCO_GL=egl.")) from exc
    return context
