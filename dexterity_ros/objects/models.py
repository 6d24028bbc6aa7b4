"""Object models for pose tracking: canonical surface points with normals, and the symmetry group.

One description per object, loaded by name. The simulator's objects are
built from their specs (dexterity_ros.sim.objects: box, cylinder, convex
hull), so the model is exactly the simulated shape; a user's real object is
converted from its mesh by ``dexterity-ros object add`` into an ``.npz`` file
of the same form, found by name in the model search path (``object_dirs``).

Points are sampled uniformly by area with a seed derived from the name, so a
model is the same on every machine. Normals point outwards.
"""
from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import ConfigError
from .symmetry import Symmetry, SymmetryError, parse_symmetry

MODEL_POINTS = 2048                 # surface points per model
MODEL_FORMAT_VERSION = 1
USER_OBJECT_DIR_ENV = "DEXTERITY_ROS_OBJECT_DIR"

# Symmetry of each simulator object (sim/objects.py sizes: cube equal sides; cuboid_long square
# cross-section about z; cuboid_flat three different sides; the cylinder's axis is z; the
# procedural convex shapes have none).
SIM_OBJECT_SYMMETRY = {
    "cube": "cube",
    "cuboid_long": "square:z",
    "cuboid_flat": "box",
    "cylinder": "cylinder:z",
    "convex_0": "none",
    "convex_1": "none",
    "convex_2": "none",
}


class ObjectModelError(ConfigError):
    """An object model that is unknown, missing or malformed."""


@dataclass(frozen=True)
class ObjectModel:
    """A rigid object as the tracker sees it (object frame, metres)."""

    name: str
    points: np.ndarray = field(repr=False)      # (N, 3) float64 surface points
    normals: np.ndarray = field(repr=False)     # (N, 3) float64 outward unit normals
    symmetry: Symmetry
    source: str = ""                            # where it came from (sim spec or mesh file)

    def __post_init__(self) -> None:
        pts, nrm = np.asarray(self.points), np.asarray(self.normals)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 16:
            raise ObjectModelError(f"object model '{self.name}': need (N >= 16, 3) points, got {pts.shape}")
        if nrm.shape != pts.shape:
            raise ObjectModelError(f"object model '{self.name}': normals {nrm.shape} do not match points "
                                   f"{pts.shape}")
        if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(nrm))):
            raise ObjectModelError(f"object model '{self.name}': non-finite points or normals")
        for array in (pts, nrm):
            array.setflags(write=False)

    @property
    def radius(self) -> float:
        """Largest distance of a surface point from the object origin (m)."""
        return float(np.linalg.norm(self.points, axis=1).max())

    @property
    def extent(self) -> np.ndarray:
        """Axis-aligned size (m) in the object frame."""
        return self.points.max(axis=0) - self.points.min(axis=0)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        np.savez(path, format_version=np.int64(MODEL_FORMAT_VERSION), name=np.str_(self.name),
                 points=self.points.astype(np.float64), normals=self.normals.astype(np.float64),
                 symmetry=np.str_(self.symmetry.spec), source=np.str_(self.source))
        return path


def load_model_file(path: str | Path) -> ObjectModel:
    """Read an ``.npz`` model written by :meth:`ObjectModel.save`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != MODEL_FORMAT_VERSION:
                raise ObjectModelError(f"{path}: model format {version}, this version reads "
                                       f"{MODEL_FORMAT_VERSION}")
            return ObjectModel(str(data["name"]), np.array(data["points"], dtype=np.float64),
                               np.array(data["normals"], dtype=np.float64),
                               parse_symmetry(str(data["symmetry"])), str(data["source"]))
    except ObjectModelError:
        raise
    except SymmetryError as exc:
        raise ObjectModelError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, EOFError, zlib.error) as exc:
        raise ObjectModelError(f"{path}: not a readable object model ({type(exc).__name__}: {exc})") from None


def user_object_dir() -> Path:
    """Where ``dexterity-ros object add`` writes by default."""
    env = os.environ.get(USER_OBJECT_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dexterity_ros" / "objects"


def model_search_dirs(extra: Sequence[str | Path] = ()) -> list[Path]:
    return [Path(d) for d in extra if str(d)] + [user_object_dir()]


def model_file(name: str, object_dirs: Sequence[str | Path] = ()) -> Path | None:
    """The ``<name>.npz`` that :func:`load_object_model` would read, or None (a simulator object
    or unknown); lets tools say where a model came from."""
    for directory in model_search_dirs(object_dirs):
        path = directory / f"{name}.npz"
        if path.is_file():
            return path
    return None


def known_object_names(extra_dirs: Sequence[str | Path] = ()) -> list[str]:
    names = set(SIM_OBJECT_SYMMETRY)
    for directory in model_search_dirs(extra_dirs):
        if directory.is_dir():
            names.update(p.name[:-len(".npz")] for p in directory.glob("*.npz"))
    return sorted(names)


def load_object_model(name: str, object_dirs: Sequence[str | Path] = ()) -> ObjectModel:
    """The model called ``name``: a file ``<name>.npz`` in ``object_dirs`` (then the user
    directory) wins over the simulator object of that name."""
    if not isinstance(name, str) or not name:
        raise ObjectModelError("object name must be a non-empty string")
    for directory in model_search_dirs(object_dirs):
        path = directory / f"{name}.npz"
        if path.is_file():
            model = load_model_file(path)
            if model.name != name:
                raise ObjectModelError(f"{path} holds object '{model.name}', not '{name}'")
            return model
    if name in SIM_OBJECT_SYMMETRY:
        return sim_object_model(name)
    raise ObjectModelError(f"unknown object '{name}'; known objects: {known_object_names(object_dirs)} "
                           "(add one with `dexterity-ros object add MESH --name NAME`)")


@lru_cache(maxsize=16)
def sim_object_model(name: str) -> ObjectModel:
    """The tracking model of a simulator object, from its spec (exact shape)."""
    from ..sim.objects import OBJECTS, hull_triangles

    if name not in OBJECTS or name not in SIM_OBJECT_SYMMETRY:
        raise ObjectModelError(f"'{name}' is not a simulator object ({sorted(SIM_OBJECT_SYMMETRY)})")
    spec = OBJECTS[name]
    symmetry = parse_symmetry(SIM_OBJECT_SYMMETRY[name])
    rng = np.random.default_rng(zlib.crc32(f"model:{name}".encode()))
    if spec.kind == "box":
        triangles = box_triangles(np.asarray(spec.size))
    elif spec.kind == "cylinder":
        radius, half = spec.size
        return ObjectModel(name, *sample_cylinder_with_normals(radius, half, MODEL_POINTS, rng), symmetry,
                           f"sim:{name} cylinder r={radius} h={2 * half}")
    else:
        triangles = hull_triangles(spec)
    points, normals = sample_triangles_with_normals(triangles, MODEL_POINTS, rng)
    return ObjectModel(name, points, normals, symmetry, f"sim:{name} {spec.kind}")


# ------------------------------------------------------------------ surface sampling
def box_triangles(half_extents: np.ndarray) -> np.ndarray:
    hx, hy, hz = half_extents
    corners = np.array([[sx * hx, sy * hy, sz * hz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return np.array([corners[[q[0], q[1], q[2]]] for q in quads] + [corners[[q[0], q[2], q[3]]] for q in quads])


def sample_triangles_with_normals(triangles: np.ndarray, n: int, rng: np.random.Generator, *,
                                  winding_outward: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform points on triangles (T, 3, 3) and each point's face normal, turned outwards
    (away from the area-weighted centroid: right for convex shapes and most closed meshes).

    ``winding_outward``: the triangles are a closed, consistently oriented surface wound
    counter-clockwise seen from outside, so each normal follows its winding as it is; this is
    also right where the surface is concave (a mug's inside), where "away from the centroid"
    is not. The points are the same either way.
    """
    tri = np.asarray(triangles, dtype=np.float64)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    keep = area > 1e-12
    if not np.any(keep):
        raise ObjectModelError("the mesh has no triangle with a non-zero area")
    tri, cross, area = tri[keep], cross[keep], area[keep]
    normals = cross / (2.0 * area[:, None])
    if not winding_outward:
        centroid = (tri.mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
        outward = np.einsum("ij,ij->i", tri.mean(axis=1) - centroid, normals)
        normals[outward < 0] *= -1.0
    idx = rng.choice(len(tri), size=n, p=area / area.sum())
    r1 = np.sqrt(rng.random(n))
    r2 = rng.random(n)
    a, b, c = tri[idx, 0], tri[idx, 1], tri[idx, 2]
    points = (1 - r1)[:, None] * a + (r1 * (1 - r2))[:, None] * b + (r1 * r2)[:, None] * c
    return points, normals[idx]


def sample_cylinder_with_normals(radius: float, half: float, n: int,
                                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform points on a z-axis cylinder (side and both caps) and their outward normals."""
    side, cap = 2 * math.pi * radius * 2 * half, math.pi * radius ** 2
    kind = rng.choice(3, size=n, p=np.array([side, cap, cap]) / (side + 2 * cap))
    angle = 2 * math.pi * rng.random(n)
    rad = np.where(kind == 0, radius, radius * np.sqrt(rng.random(n)))
    z = np.where(kind == 0, (2 * rng.random(n) - 1) * half, np.where(kind == 1, half, -half))
    points = np.stack([rad * np.cos(angle), rad * np.sin(angle), z], axis=1)
    normals = np.where((kind == 0)[:, None], np.stack([np.cos(angle), np.sin(angle), np.zeros(n)], axis=1),
                       np.stack([np.zeros(n), np.zeros(n), np.where(kind == 1, 1.0, -1.0)], axis=1))
    return points, normals
