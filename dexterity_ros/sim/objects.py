"""The object set of the reorientation task and its canonical surface points.

Primitives (Dactyl's cube, two cuboids, a cylinder) are described by their
sizes; the procedurally generated convex shapes by vertex files under
``models/objects/`` (convex hulls of seeded random points, centred on their
volume centroid). Every object also has a canonical surface point set in its
own frame, stored as ``models/objects/<name>_points.npy`` so the goal
representation is the same bytes on every machine and numpy version.
Regenerate with ``python -m dexterity_ros.sim.objects --write``.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Mapping

import numpy as np

from ..config import ConfigError
from ..geometry import quat_to_matrix
from ..objects.models import box_triangles, sample_cylinder_with_normals
from ..paths import models_path

STORED_POINTS = 1024          # points per object in the stored canonical set
ObjectKind = Literal["box", "cylinder", "mesh"]


class ObjectFileError(ConfigError):
    """An object's data file (vertices or canonical points) is missing or unreadable."""


@dataclass(frozen=True)
class ObjectSpec:
    """One manipulable object. Sizes in metres, in the object's own frame."""

    name: str
    kind: ObjectKind
    size: tuple[float, ...] = ()        # box: half-extents; cylinder: (radius, half-height)
    mass: float = 0.1                   # kg (nominal; randomized per episode)
    rgba: tuple[float, float, float, float] = (0.85, 0.35, 0.2, 1.0)
    mesh_file: str | None = None        # mesh: vertices (.npy) or a mesh file (.obj/.stl)

    @property
    def points_file(self) -> Path:
        return object_directory() / f"{self.name}_points.npy"


# Procedural convex shapes: (seed, number of hull points, semi-axis range in metres).
PROCEDURAL = {
    "convex_0": (1000, 18, (0.024, 0.040)),
    "convex_1": (1001, 24, (0.022, 0.042)),
    "convex_2": (1002, 12, (0.026, 0.038)),
}

OBJECTS: dict[str, ObjectSpec] = {
    "cube": ObjectSpec("cube", "box", (0.0325, 0.0325, 0.0325), 0.10, (0.2, 0.6, 0.9, 1.0)),
    "cuboid_long": ObjectSpec("cuboid_long", "box", (0.025, 0.025, 0.045), 0.11, (0.9, 0.7, 0.2, 1.0)),
    "cuboid_flat": ObjectSpec("cuboid_flat", "box", (0.035, 0.030, 0.0175), 0.09, (0.3, 0.8, 0.3, 1.0)),
    "cylinder": ObjectSpec("cylinder", "cylinder", (0.030, 0.035), 0.10, (0.8, 0.3, 0.7, 1.0)),
    **{name: ObjectSpec(name, "mesh", (), 0.10, (0.85, 0.35, 0.2, 1.0), f"{name}_vertices.npy")
       for name in PROCEDURAL},
}


def object_directory() -> Path:
    return models_path("objects")


def object_names() -> tuple[str, ...]:
    return tuple(OBJECTS)


def get_object(name: str, custom: Mapping[str, str] | None = None) -> ObjectSpec:
    """Look an object up by name; ``custom`` maps extra names to mesh files (sim.yaml)."""
    if custom and name in custom:
        path = Path(custom[name])
        if not path.is_file():
            raise ObjectFileError(f"object '{name}': mesh file not found: {path}")
        if path.suffix.lower() not in (".npy", ".obj", ".stl"):
            raise ObjectFileError(
                f"object '{name}': unsupported mesh file {path} (use .npy vertices, .obj or .stl)")
        return ObjectSpec(name, "mesh", (), 0.1, (0.6, 0.6, 0.6, 1.0), str(path.resolve()))
    try:
        return OBJECTS[name]
    except KeyError:
        known = sorted(OBJECTS) + sorted(custom or {})
        raise ConfigError(f"unknown object '{name}'; known objects: {known}") from None


def mesh_path(spec: ObjectSpec) -> Path:
    if spec.mesh_file is None:
        raise ValueError(f"object '{spec.name}' is not a mesh")
    path = Path(spec.mesh_file)
    if not path.is_absolute():
        path = object_directory() / path
    if not path.is_file():
        raise ObjectFileError(
            f"object '{spec.name}': vertex file not found: {path} "
            "(regenerate with `python -m dexterity_ros.sim.objects --write`)")
    return path


def mesh_vertices(spec: ObjectSpec) -> np.ndarray | None:
    """(V, 3) float64 vertices for .npy meshes; None for mesh files MuJoCo reads itself."""
    path = mesh_path(spec)
    if path.suffix.lower() != ".npy":
        return None
    try:
        verts = np.load(path)
    except (OSError, ValueError) as exc:
        raise ObjectFileError(f"object '{spec.name}': cannot read {path}: {exc}") from exc
    if verts.ndim != 2 or verts.shape[1] != 3 or len(verts) < 4 or not np.all(np.isfinite(verts)):
        raise ObjectFileError(f"object '{spec.name}': {path} must hold (V>=4, 3) finite vertices")
    return np.asarray(verts, dtype=np.float64)


def mesh_asset_xml(spec: ObjectSpec, asset_name: str) -> str:
    """The ``<mesh>`` asset line for a mesh object (MuJoCo takes the convex hull)."""
    verts = mesh_vertices(spec)
    if verts is None:
        return f'<mesh name="{asset_name}" file="{mesh_path(spec)}"/>'
    text = " ".join(repr(float(v)) for v in verts.reshape(-1))
    return f'<mesh name="{asset_name}" vertex="{text}"/>'


# ----------------------------------------------------------------------------- sampling
def _name_seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _sample_triangles(tri: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Area-weighted uniform samples on triangles (T, 3, 3)."""
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    idx = rng.choice(len(tri), size=n, p=area / area.sum())
    r1 = np.sqrt(rng.random(n))
    r2 = rng.random(n)
    a, b, c = tri[idx, 0], tri[idx, 1], tri[idx, 2]
    return (1 - r1)[:, None] * a + (r1 * (1 - r2))[:, None] * b + (r1 * r2)[:, None] * c


def hull_triangles(spec: ObjectSpec) -> np.ndarray:
    """Triangles (T, 3, 3) of the object's MuJoCo hull, in the object frame."""
    import mujoco  # local: objects.py stays importable without MuJoCo for point loading

    xml = (f"<mujoco><asset>{mesh_asset_xml(spec, 'hull')}</asset><worldbody>"
           '<geom type="mesh" mesh="hull"/></worldbody></mujoco>')
    model = mujoco.MjModel.from_xml_string(xml)
    v0, nv = model.mesh_vertadr[0], model.mesh_vertnum[0]
    f0, nf = model.mesh_faceadr[0], model.mesh_facenum[0]
    verts = model.mesh_vert[v0:v0 + nv].astype(np.float64)
    faces = model.mesh_face[f0:f0 + nf]
    rot = quat_to_matrix(model.geom_quat[0])
    verts = verts @ rot.T + model.geom_pos[0]
    return verts[faces]


def sample_surface(spec: ObjectSpec, n: int = STORED_POINTS) -> np.ndarray:
    """Deterministic (seeded by name) uniform surface samples (n, 3) in the object frame."""
    rng = np.random.default_rng(_name_seed(spec.name))
    if spec.kind == "box":
        points = _sample_triangles(box_triangles(np.asarray(spec.size)), n, rng)
    elif spec.kind == "cylinder":
        radius, half = spec.size
        points, _ = sample_cylinder_with_normals(radius, half, n, rng)
    else:
        points = _sample_triangles(hull_triangles(spec), n, rng)
    return points.astype(np.float32)


def generate_convex_vertices(seed: int, count: int, axes_range: tuple[float, float]) -> np.ndarray:
    """Seeded random points on a jittered ellipsoid, centred on their hull's centroid."""
    import mujoco

    rng = np.random.default_rng(seed)
    axes = rng.uniform(*axes_range, size=3)
    dirs = rng.standard_normal((count, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    verts = dirs * axes * rng.uniform(0.8, 1.0, size=(count, 1))
    text = " ".join(repr(float(v)) for v in verts.reshape(-1))
    model = mujoco.MjModel.from_xml_string(
        f'<mujoco><asset><mesh name="m" vertex="{text}"/></asset><worldbody>'
        '<geom type="mesh" mesh="m"/></worldbody></mujoco>')
    return verts - model.mesh_pos[0]          # volume centroid at the origin


@lru_cache(maxsize=64)
def _stored_points(name: str, custom_file: str | None) -> np.ndarray:
    spec = get_object(name, {name: custom_file} if custom_file else None)
    if custom_file:                       # user meshes: generated deterministically, not stored
        return sample_surface(spec)
    path = spec.points_file
    if not path.is_file():
        raise ObjectFileError(
            f"object '{name}': canonical point file not found: {path} "
            "(regenerate with `python -m dexterity_ros.sim.objects --write`)")
    try:
        points = np.load(path)
    except (OSError, ValueError) as exc:
        raise ObjectFileError(f"object '{name}': cannot read {path}: {exc}") from exc
    if points.shape != (STORED_POINTS, 3) or points.dtype != np.float32:
        raise ObjectFileError(f"object '{name}': {path} must hold ({STORED_POINTS}, 3) float32")
    points.setflags(write=False)
    return points


def canonical_points(name: str, n: int = 256, custom: Mapping[str, str] | None = None) -> np.ndarray:
    """The first ``n`` canonical surface points (object frame, metres, float32, read-only).

    The stored order is random, so any prefix is a uniform subsample and
    ``canonical_points(name, n)`` is the same for every caller.
    """
    if not 1 <= n <= STORED_POINTS:
        raise ValueError(f"n must be in [1, {STORED_POINTS}], got {n}")
    custom_file = (custom or {}).get(name)
    return _stored_points(name, custom_file)[:n]


def write_object_files(directory: Path | None = None) -> list[Path]:
    """(Re)generate vertex and point files; returns the written paths."""
    directory = directory or object_directory()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (seed, count, axes) in PROCEDURAL.items():
        path = directory / OBJECTS[name].mesh_file
        np.save(path, generate_convex_vertices(seed, count, axes))
        written.append(path)
    for spec in OBJECTS.values():
        path = directory / f"{spec.name}_points.npy"
        np.save(path, sample_surface(spec))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate models/objects/*.npy")
    parser.add_argument("--directory", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.write:
        for spec in OBJECTS.values():
            print(f"{spec.name:12s} {spec.kind:8s} size={spec.size} mass={spec.mass}")
        return 0
    for path in write_object_files(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
