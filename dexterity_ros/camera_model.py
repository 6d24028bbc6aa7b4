"""Pinhole camera intrinsics, ray grids and (back)projection.

Depth here is always float32 metres along the optical axis (REP 118), with 0
meaning "no measurement". Conversions from 16UC1 millimetres or 32FC1 with NaN
happen once, at the message boundary.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class IntrinsicsError(ValueError):
    """Intrinsics are unusable (zero focal length, bad size) or disagree with an image."""


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    distortion: tuple[float, ...] = field(default=(0.0, 0.0, 0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise IntrinsicsError(f"image size must be positive, got {self.width}x{self.height}")
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise IntrinsicsError(f"{name} is not finite ({value})")
        if self.fx <= 0 or self.fy <= 0:
            raise IntrinsicsError(f"focal length must be positive, got fx={self.fx}, fy={self.fy}")

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def check_image(self, shape: tuple[int, ...]) -> None:
        if tuple(shape[:2]) != (self.height, self.width):
            raise IntrinsicsError(
                f"depth image is {shape[1]}x{shape[0]} but camera_info says "
                f"{self.width}x{self.height}")

    def scaled(self, factor: float) -> "Intrinsics":
        """Intrinsics of the image resized by ``factor`` (e.g. 0.5 for decimation by 2)."""
        return Intrinsics(int(round(self.width * factor)), int(round(self.height * factor)),
                          self.fx * factor, self.fy * factor,
                          (self.cx + 0.5) * factor - 0.5, (self.cy + 0.5) * factor - 0.5,
                          self.distortion_model, self.distortion)

    @staticmethod
    def from_fov(width: int, height: int, vertical_fov_deg: float) -> "Intrinsics":
        f = 0.5 * height / np.tan(np.deg2rad(vertical_fov_deg) / 2)
        return Intrinsics(width, height, f, f, (width - 1) / 2, (height - 1) / 2)


class RayGrid:
    """Per-pixel rays (x/z, y/z) precomputed once per intrinsics.

    Backprojection is then two multiplies per pixel; distortion is ignored
    because RealSense depth streams are published rectified.
    """

    def __init__(self, intrinsics: Intrinsics):
        self.intrinsics = intrinsics
        u = (np.arange(intrinsics.width, dtype=np.float32) - np.float32(intrinsics.cx)) / np.float32(intrinsics.fx)
        v = (np.arange(intrinsics.height, dtype=np.float32) - np.float32(intrinsics.cy)) / np.float32(intrinsics.fy)
        self.ray_x = np.broadcast_to(u[None, :], (intrinsics.height, intrinsics.width))
        self.ray_y = np.broadcast_to(v[:, None], (intrinsics.height, intrinsics.width))
        self.u = u
        self.v = v

    def backproject(self, window: np.ndarray, rows: slice = slice(None), cols: slice = slice(None)
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Camera-frame points (M, 3) for the valid (> 0) pixels of ``window``.

        ``window`` is ``depth[rows, cols]`` (already cropped); returns the points
        and the flat indices of their pixels within the window.
        """
        valid = np.flatnonzero(window > 0)
        z = window.reshape(-1)[valid]
        width = window.shape[1]
        r = valid // width
        c = valid - r * width
        u = self.u[cols][c]
        v = self.v[rows][r]
        return np.stack([u * z, v * z, z], axis=1), valid


def project(points: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points (N, 3) -> pixel coordinates (N, 2) (u, v) and depth (N,)."""
    z = points[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics.fx * points[:, 0] / z + intrinsics.cx
        v = intrinsics.fy * points[:, 1] / z + intrinsics.cy
    return np.stack([u, v], axis=1), z


def quantize_depth_mm(depth_m: np.ndarray) -> np.ndarray:
    """What a depth image looks like after a 16UC1 round trip (float32 metres, 0 = no return)."""
    mm = np.clip(np.rint(np.nan_to_num(depth_m.astype(np.float64) * 1000.0, nan=0, posinf=0, neginf=0)),
                 0, 65535)
    return mm.astype(np.uint16).astype(np.float32) * np.float32(0.001)
