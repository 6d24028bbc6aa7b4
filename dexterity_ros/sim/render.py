"""Offscreen depth + ground-truth segmentation of the scene's camera (one GL pass).

Depth is float32 metres along the optical axis with 0 = no return (the robot's
convention, :mod:`dexterity_ros.camera_model`); labels come from MuJoCo's
segmentation rendering mapped through :attr:`SceneModel.geom_labels`. The
sensor model (noise, quantisation, edge dropout) is :func:`apply_depth_effects`,
kept separate so it can be tested without a GL context.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..camera_model import Intrinsics
from .gl_backend import RenderBackendError, create_gl_context, select_backend

__all__ = ["DepthRenderer", "RenderBackendError", "select_backend", "set_camera_intrinsics",
           "apply_depth_effects", "depth_edges", "RawFrame"]


def set_camera_intrinsics(model: mujoco.MjModel, camera_id: int, intrinsics: Intrinsics) -> None:
    """Make MuJoCo's camera ``camera_id`` render with pinhole ``intrinsics`` (pixel-centre cx, cy).

    MuJoCo's intrinsic camera takes a sensor size and focal lengths in one
    length unit plus a principal-point offset from the sensor centre. With one
    unit per pixel, the offsets that reproduce pixel-centre (cx, cy) are
    W/2 - 0.5 - cx and H/2 - 0.5 - cy (checked by rendering a known box and
    backprojecting its depth; see test_sim_render.py).
    """
    w, h = intrinsics.width, intrinsics.height
    model.cam_sensorsize[camera_id] = (w, h)
    model.cam_resolution[camera_id] = (w, h)
    model.cam_intrinsic[camera_id] = (intrinsics.fx, intrinsics.fy,
                                      w / 2.0 - 0.5 - intrinsics.cx, h / 2.0 - 0.5 - intrinsics.cy)


@dataclass(frozen=True)
class RawFrame:
    depth: np.ndarray        # (H, W) float32 metres, 0 where nothing was hit
    geom_id: np.ndarray      # (H, W) int32 MuJoCo geom id, -1 where nothing was hit


class DepthRenderer:
    """Renders depth and geom ids from one fixed camera of ``model`` at ``width`` x ``height``."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(
                f"render size {width}x{height} exceeds the model's offscreen buffer "
                f"{model.vis.global_.offwidth}x{model.vis.global_.offheight} (camera.max_render_*)")
        self.model = model
        self.width, self.height = int(width), int(height)
        self._gl = create_gl_context(self.width, self.height)
        self._context = None
        try:
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
            self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        except Exception as exc:
            self.close()
            raise RenderBackendError(f"MuJoCo render context failed: {exc}") from exc
        self.gl_renderer = _gl_renderer_name()
        self._scene = mujoco.MjvScene(model, maxgeom=max(100, 2 * model.ngeom))
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
        self._scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX, mujoco.mjtRndFlag.mjRND_FOG,
                     mujoco.mjtRndFlag.mjRND_HAZE):
            self._scene.flags[flag] = False
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._rgb = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self._zbuf = np.empty((self.height, self.width), dtype=np.float32)
        near = float(model.vis.map.znear * model.stat.extent)
        far = float(model.vis.map.zfar * model.stat.extent)
        # reversed-Z perspective inverse (as MuJoCo's own Renderer), in float32 like glFrustum
        znear, zfar = np.float32(near), np.float32(far)
        c = -(zfar + znear) / (zfar - znear)
        d = -(np.float32(2) * zfar * znear) / (zfar - znear)
        self._c = float(np.float32(-0.5) * c - np.float32(0.5))
        self._d = float(np.float32(-0.5) * d)
        self.far = far

    def upload_mesh(self, mesh_id: int) -> None:
        """Re-upload a mesh after its vertices changed (object scale randomization)."""
        self._gl.make_current()
        mujoco.mjr_uploadMesh(self.model, self._context, mesh_id)

    def render(self, data: mujoco.MjData, camera_id: int) -> RawFrame:
        """Depth and geom ids for the current kinematics of ``data`` (mj_kinematics + mj_camlight done)."""
        if self._context is None:
            raise RuntimeError("renderer is closed")
        self._gl.make_current()             # cheap (~10 us); other renderers may have switched
        self._camera.fixedcamid = camera_id
        catmask = mujoco.mjtCatBit.mjCAT_STATIC.value | mujoco.mjtCatBit.mjCAT_DYNAMIC.value
        mujoco.mjv_updateScene(self.model, data, self._option, None, self._camera, catmask, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._rgb, self._zbuf, self._rect, self._context)
        ngeom = self._scene.ngeom
        rgb = self._rgb[::-1]
        if ngeom < 255:                     # segment ids fit the red channel
            lut = np.full(256, -1, dtype=np.int32)
            segid = rgb[..., 0]
        else:
            lut = np.full(ngeom + 1, -1, dtype=np.int32)
            wide = rgb.astype(np.int32)
            segid = np.clip(wide[..., 0] + (wide[..., 1] << 8) + (wide[..., 2] << 16), 0, ngeom)
        for i in range(ngeom):
            g = self._scene.geoms[i]
            if g.segid >= 0 and g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                lut[g.segid + 1] = g.objid
        geom_id = lut[segid]                # 0 (background) maps to -1
        z = self._zbuf[::-1].astype(np.float64)
        with np.errstate(divide="ignore"):
            depth = (self._d / (z + self._c)).astype(np.float32)
        depth[(geom_id < 0) | ~np.isfinite(depth) | (depth >= self.far)] = 0.0
        return RawFrame(depth, geom_id)

    def close(self) -> None:
        if getattr(self, "_context", None) is not None:
            try:
                self._gl.make_current()
                self._context.free()
            except Exception:
                pass
            self._context = None
        if getattr(self, "_gl", None) is not None:
            try:
                self._gl.free()
            except Exception:
                pass
            self._gl = None

    def __del__(self) -> None:
        self.close()


def _gl_renderer_name() -> str:
    """GL_RENDERER of the current context (e.g. 'llvmpipe' = software), for reports."""
    try:
        from OpenGL import GL
        name = GL.glGetString(GL.GL_RENDERER)
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"unknown ({type(exc).__name__})"


def depth_edges(depth: np.ndarray, threshold: float, dilation: int) -> np.ndarray:
    """Pixels next to a depth jump larger than ``threshold`` (or a valid/invalid border)."""
    edge = np.zeros(depth.shape, dtype=bool)
    dz = np.abs(np.diff(depth, axis=1)) > threshold
    edge[:, 1:] |= dz
    edge[:, :-1] |= dz
    dz = np.abs(np.diff(depth, axis=0)) > threshold
    edge[1:, :] |= dz
    edge[:-1, :] |= dz
    for _ in range(dilation):
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def apply_depth_effects(depth: np.ndarray, rng: np.random.Generator, *, min_depth: float,
                        max_depth: float, noise_base: float = 0.0, noise_quadratic: float = 0.0,
                        quantization: float = 0.0, edge_probability: float = 0.0,
                        edge_threshold: float = 0.01, edge_dilation: int = 1) -> np.ndarray:
    """The depth sensor model: edge dropout, distance-dependent noise, quantisation, range limits.

    Whole-image float32 arithmetic (no masked gathers): zero stays zero through
    noise and quantisation, so "no return" pixels are never revived.
    """
    out = np.array(depth, dtype=np.float32, copy=True)
    if edge_probability > 0:
        edges = depth_edges(out, edge_threshold, edge_dilation)
        out[edges & (rng.random(out.shape, dtype=np.float32) < np.float32(edge_probability))] = 0.0
    if noise_base > 0 or noise_quadratic > 0:
        sigma = np.float32(noise_base) + np.float32(noise_quadratic) * out * out
        sigma[out <= 0] = 0.0
        out += sigma * rng.standard_normal(out.shape, dtype=np.float32)
    if quantization > 0:
        q = np.float32(quantization)
        out = np.round(out / q) * q
    out[(out < min_depth) | (out > max_depth)] = 0.0
    return out
