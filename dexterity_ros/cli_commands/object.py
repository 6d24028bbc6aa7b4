"""`dexterity-ros object`: turn a mesh of a real object into a tracking model; list and show models.

The pose tracker knows an object by name (its ``object`` parameter) and needs
its surface points with outward normals and its symmetry
(:mod:`dexterity_ros.objects.models`). The simulator's objects come built in;
``object add MESH --name NAME`` converts a user's STL/OBJ/PLY into a model
file ``NAME.npz`` of the same form, in the user object directory (or
``--output-dir``, then named in the tracker's ``object_dir``).

A conversion refuses what would give a silently wrong model: a file that is
not a triangle mesh, a mesh that is probably in millimetres, a name that
would replace an existing model or a simulator object. The object frame's
origin is the volume centroid (the area centroid for an open surface),
because the symmetry groups turn about the origin. The same mesh and name
give the same file, byte for byte.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import io
import math
import os
import re
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

MESH_SUFFIXES = (".stl", ".obj", ".ply")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_EXTENT_M = 0.5           # larger than anything an Allegro hand holds: probably millimetres
SMALL_EXTENT_M = 0.005       # smaller than anything it can hold: probably scaled twice
MIN_POINTS, MAX_POINTS = 16, 200_000
SYMMETRY_TOLERANCE = 0.02    # mean surface gap after a symmetry turn, as a fraction of the largest side
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ObjectCommandError(Exception):
    """A refusal with its exit status: 2 for a bad argument, 1 for an input or target that will not do."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "object", help="make a tracking model from a mesh of a real object; list and show object models",
        description="Object models for the pose tracker: surface points with outward normals and the "
                    "object's symmetry, known by name.")
    actions = parser.add_subparsers(dest="object_command", metavar="ACTION")
    actions.required = True

    add = actions.add_parser(
        "add", help="convert an STL/OBJ/PLY mesh into a model NAME.npz",
        description="Read a triangle mesh, scale it to metres, put the origin at its centroid, sample "
                    "surface points with outward normals and save them with the symmetry as NAME.npz.")
    add.add_argument("mesh", type=Path, help="mesh file (.stl, .obj or .ply)")
    add.add_argument("--name", required=True, help="object name for the tracker's `object` parameter "
                                                   "(letters, digits, _ and -)")
    add.add_argument("--symmetry", default="none",
                     help="rotations that leave the object looking the same: none (default), box, cube, "
                          "square:AXIS, cyclic:N:AXIS, dihedral:N:AXIS, revolution:AXIS, cylinder:AXIS "
                          "(AXIS = x, y or z of the mesh)")
    add.add_argument("--scale", type=float, default=1.0,
                     help="factor from mesh units to metres (0.001 for a mesh in millimetres)")
    add.add_argument("--keep-origin", action="store_true",
                     help="keep the mesh's own origin instead of moving it to the centroid")
    add.add_argument("--output-dir", type=Path,
                     help="where to write NAME.npz (default: the user object directory, "
                          "$DEXTERITY_ROS_OBJECT_DIR or ~/.local/share/dexterity_ros/objects)")
    add.add_argument("--points", type=int, default=None, help="surface points in the model (default 2048)")
    add.add_argument("--force", action="store_true",
                     help="overwrite an existing model, allow a simulator object's name, allow a mesh "
                          "larger than 0.5 m")
    add.set_defaults(func=_guarded(run_add))

    listing = actions.add_parser("list", help="the known objects: simulator and user models",
                                 description="List every object the tracker can load by name.")
    listing.add_argument("--object-dir", type=Path, action="append", default=[],
                         help="also search this directory first (like the tracker's object_dir); repeatable")
    listing.set_defaults(func=_guarded(run_list))

    show = actions.add_parser("show", help="one object model's details",
                              description="Describe the model the tracker would load for NAME.")
    show.add_argument("name", help="object name")
    show.add_argument("--object-dir", type=Path, action="append", default=[],
                      help="also search this directory first (like the tracker's object_dir); repeatable")
    show.set_defaults(func=_guarded(run_show))


def _guarded(action):
    """Turn the refusals of ``action`` into one ``error:`` line and an exit status, never a traceback."""
    def run(args: argparse.Namespace) -> int:
        from ..config import ConfigError

        try:
            return action(args)
        except ObjectCommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code
        except ConfigError as exc:           # ObjectModelError: unknown name, unreadable model file
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return run


# ------------------------------------------------------------------ add
@dataclass(frozen=True)
class Conversion:
    """What ``object add`` did to the mesh, for its summary."""

    triangles: int
    surface: str                  # "closed", or "open" (no volume: area centroid, normals by centroid)
    origin: str                   # "volume centroid", "area centroid" or "kept"
    shift_m: np.ndarray           # the new origin in the scaled mesh's frame (object = mesh - shift)
    warnings: tuple[str, ...]


def run_add(args: argparse.Namespace) -> int:
    from ..objects.models import MODEL_POINTS, SIM_OBJECT_SYMMETRY, user_object_dir
    from ..objects.symmetry import SymmetryError, parse_symmetry

    name: str = args.name
    if not NAME_PATTERN.fullmatch(name):
        raise ObjectCommandError(f"--name {name!r}: use 1 to 64 letters, digits, '_' or '-' (it becomes the "
                                 "file name and the tracker's `object` parameter)", 2)
    try:
        symmetry = parse_symmetry(args.symmetry)
    except SymmetryError as exc:
        raise ObjectCommandError(f"--symmetry: {exc}", 2) from None
    scale = float(args.scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ObjectCommandError(f"--scale must be a positive number, got {args.scale}", 2)
    points = MODEL_POINTS if args.points is None else int(args.points)
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise ObjectCommandError(f"--points must be in [{MIN_POINTS}, {MAX_POINTS}], got {points}", 2)
    if name in SIM_OBJECT_SYMMETRY and not args.force:
        raise ObjectCommandError(f"'{name}' is a simulator object; a model of that name would replace it for "
                                 "the tracker: choose another --name (or pass --force to replace it)")
    directory = (args.output_dir or user_object_dir()).expanduser().absolute()
    in_user_dir = directory.resolve() == user_object_dir().expanduser().resolve()
    target = directory / f"{name}.npz"
    if directory.exists() and not directory.is_dir():
        raise ObjectCommandError(f"output directory {directory} exists and is not a directory", 2)
    if target.exists() and not args.force:
        raise ObjectCommandError(f"{target} already exists: pass --force to overwrite it, or choose another --name")

    vertices, triangles = read_mesh(args.mesh)
    try:
        model, conversion = mesh_to_model(name, vertices, triangles, symmetry, scale=scale, points=points,
                                          keep_origin=args.keep_origin, force=args.force,
                                          source=_source_text(args.mesh, scale, args.keep_origin))
    except ObjectCommandError as exc:
        raise ObjectCommandError(f"{args.mesh}: {exc}", exc.code) from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_model(model, target)
    except OSError as exc:
        raise ObjectCommandError(f"cannot write {target}: {exc.strerror or exc}") from None

    warnings = list(conversion.warnings)
    if name in SIM_OBJECT_SYMMETRY:
        warnings.append(f"'{name}' now means this model, not the simulator's, wherever {directory} is searched")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    extent_mm = model.extent * 1e3
    origin = conversion.origin if conversion.origin == "kept" else \
        f"{conversion.origin}, at {_vector_mm(conversion.shift_m * 1e3)} mm in the mesh's frame"
    print(f"added object '{name}'\n"
          f"  mesh       {args.mesh} ({conversion.triangles} triangles, {conversion.surface} surface)\n"
          f"  scale      {scale:g} (mesh units -> m)\n"
          f"  extent     {_extent_mm(extent_mm)} mm\n"
          f"  origin     {origin}\n"
          f"  points     {len(model.points)} with outward normals\n"
          f"  symmetry   {model.symmetry.spec} ({_order_text(model.symmetry)})\n"
          f"  written    {target}")
    if in_user_dir:
        print(f"use it:      pose_tracker_node parameter object:={name} (the user object directory is always "
              "searched)")
    else:
        print(f"use it:      pose_tracker_node parameters object:={name} object_dir:={directory} "
              "(without object_dir only the user object directory is searched)")
    return 0


def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (T, 3) int64 triangles of a mesh file, through Open3D.

    Open3D answers a file it cannot read with an empty mesh and a warning on the
    process's own stdout; the warning is captured and becomes part of the error.
    """
    if not path.exists():
        raise ObjectCommandError(f"{path} does not exist", 2)
    if path.is_dir():
        raise ObjectCommandError(f"{path} is a directory, not a mesh file", 2)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise ObjectCommandError(f"{path}: unsupported mesh format '{path.suffix or '(no extension)'}'; "
                                 "use .stl, .obj or .ply", 2)
    if path.stat().st_size == 0:
        raise ObjectCommandError(f"{path} is empty, not a mesh")
    import open3d as o3d

    with _native_output() as captured:
        mesh = o3d.io.read_triangle_mesh(str(path))
    vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
    triangles = np.asarray(mesh.triangles, dtype=np.int64).reshape(-1, 3)
    if len(triangles) == 0:
        if len(vertices):
            raise ObjectCommandError(f"{path} holds {len(vertices)} points but no triangles (a point cloud): "
                                     "export the object's surface as a triangle mesh")
        reason = _open3d_reason(captured.getvalue())
        raise ObjectCommandError(f"{path} is not a readable {path.suffix.lower()[1:].upper()} mesh"
                                 + (f" (Open3D: {reason})" if reason else ""))
    if triangles.min() < 0 or triangles.max() >= len(vertices):
        raise ObjectCommandError(f"{path}: triangles refer to vertices that do not exist")
    used = vertices[np.unique(triangles)]
    bad = int((~np.isfinite(used).all(axis=1)).sum())
    if bad:
        raise ObjectCommandError(f"{path}: {bad} {'vertex is' if bad == 1 else 'vertices are'} not finite "
                                 "(NaN or inf)")
    return vertices, triangles


def mesh_to_model(name: str, vertices: np.ndarray, triangles: np.ndarray, symmetry, *, scale: float = 1.0,
                  points: int | None = None, keep_origin: bool = False, force: bool = False,
                  source: str = ""):
    """The :class:`ObjectModel` of a triangle mesh, and what was done to get it.

    The sampling seed comes from the name, so a mesh gives the same model on every machine.
    """
    from ..objects.models import MODEL_POINTS, ObjectModel, ObjectModelError, sample_triangles_with_normals

    vertices = np.asarray(vertices, dtype=np.float64) * scale
    vertices, triangles = _weld(vertices, np.asarray(triangles, dtype=np.int64))
    warnings: list[str] = []
    if len(triangles) == 0:
        raise ObjectCommandError("the mesh has no triangle with three different corners")
    corners = vertices[triangles]
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    if not area.sum() > 1e-12:
        raise ObjectCommandError("the mesh has zero surface area (all its triangles are degenerate)")
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    largest = float(extent.max())
    if largest > MAX_EXTENT_M and not force:
        hint = ("a mesh in millimetres needs --scale 0.001" if scale == 1.0
                else f"is --scale {scale:g} right?")
        sides = " x ".join(f"{v:.3g}" for v in extent)
        raise ObjectCommandError(f"at --scale {scale:g} the object is {sides} m, larger than the "
                                 f"{MAX_EXTENT_M:g} m an object in the hand can be: {hint} "
                                 "(or pass --force to keep this size)")
    if largest < SMALL_EXTENT_M:
        warnings.append(f"the object is only {_extent_mm(extent * 1e3)} mm: is --scale {scale:g} right?")

    triangles, closed = _orient_closed(vertices, triangles)
    volume_centroid = None
    if closed:
        volume_centroid, triangles = _volume_centroid(vertices, triangles)
        closed = volume_centroid is not None
    if volume_centroid is not None:
        centroid, origin = volume_centroid, "volume centroid"
    else:
        centroid = (corners.mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
        origin = "area centroid"
        if not keep_origin:
            warnings.append("the mesh is not a closed surface, so the origin is its surface's centroid rather "
                            "than its volume's, and normals point away from that centroid (check them for a "
                            "concave object)")
    if keep_origin:
        shift, origin = np.zeros(3), "kept"
        offset = float(np.linalg.norm(centroid))
        if offset > 0.1 * largest and not symmetry.is_trivial:
            warnings.append(f"--keep-origin: the {'volume' if closed else 'surface'} centroid is "
                            f"{offset * 1e3:.1f} mm from the origin; the symmetry turns about the origin")
    else:
        shift = centroid
    vertices = vertices - shift

    rng = np.random.default_rng(zlib.crc32(f"model:{name}".encode()))
    try:
        sampled, normals = sample_triangles_with_normals(vertices[triangles], MODEL_POINTS if points is None
                                                         else points, rng, winding_outward=closed)
        model = ObjectModel(name, sampled, normals, symmetry, source)
    except ObjectModelError as exc:
        raise ObjectCommandError(str(exc)) from None
    gap = _symmetry_gap(model, vertices, triangles)
    if gap is not None and gap > SYMMETRY_TOLERANCE * largest:
        warnings.append(f"symmetry {symmetry.spec}: a turn of the group moves the surface off itself by "
                        f"{gap * 1e3:.1f} mm on average (object {largest * 1e3:.1f} mm); check the axis "
                        "(the mesh's own x, y, z) and that the object really looks the same")
    conversion = Conversion(len(triangles), "closed" if closed else "open", origin, shift, tuple(warnings))
    return model, conversion


def write_model(model, path: Path) -> Path:
    """Save ``model`` at ``path`` atomically, with fixed zip timestamps so equal models are equal files."""
    path = Path(path)
    fd, scratch = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        model.save(scratch)
        with zipfile.ZipFile(scratch) as original:
            members = [(info, original.read(info)) for info in original.infolist()]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as fixed:
            for info, data in members:
                stamped = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
                stamped.external_attr = 0o644 << 16
                fixed.writestr(stamped, data)
        Path(scratch).write_bytes(buffer.getvalue())
        os.chmod(scratch, 0o644)
        os.replace(scratch, path)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return path


def _source_text(mesh: Path, scale: float, keep_origin: bool) -> str:
    """Provenance stored in the model: the file's name and content hash, not its path (same bytes anywhere)."""
    digest = hashlib.sha256(mesh.read_bytes()).hexdigest()[:16]
    return f"mesh:{mesh.name} sha256:{digest} scale:{scale:g}" + (" origin:kept" if keep_origin else "")


def _weld(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices (STL stores each triangle's corners separately) and drop triangles that
    lose a corner, so the edges show whether the surface is closed."""
    used = vertices[triangles.reshape(-1)]
    size = float((used.max(axis=0) - used.min(axis=0)).max()) if len(used) else 0.0
    tolerance = max(size * 1e-7, 1e-12)
    keys = np.round(used / tolerance).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    welded = used[first]
    tri = inverse.reshape(-1).reshape(-1, 3)
    distinct = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    return welded, tri[distinct]


def _edge_counts(triangles: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return edges[:, 0] * n + edges[:, 1], edges[:, 1] * n + edges[:, 0]


def _is_oriented_closed(triangles: np.ndarray, n: int) -> bool:
    """Every edge used once in each direction: closed, and all triangles wound the same way round."""
    directed, reverse = _edge_counts(triangles, n)
    _, counts = np.unique(directed, return_counts=True)
    return bool(counts.max() == 1 and np.isin(reverse, directed).all())


def _orient_closed(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, bool]:
    """(triangles, closed): a closed surface with its triangles wound consistently (Open3D re-orients one
    whose winding is mixed); an open surface unchanged."""
    n = len(vertices)
    if _is_oriented_closed(triangles, n):
        return triangles, True
    directed, reverse = _edge_counts(triangles, n)
    undirected = np.minimum(directed, reverse)
    _, counts = np.unique(undirected, return_counts=True)
    if not np.all(counts == 2):
        return triangles, False
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(triangles))
    if not mesh.orient_triangles():
        return triangles, False
    oriented = np.asarray(mesh.triangles, dtype=np.int64)
    return (oriented, True) if _is_oriented_closed(oriented, n) else (triangles, False)


def _volume_centroid(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(centroid, triangles) of the solid a consistently wound closed surface bounds (tetrahedra to the
    origin); the centroid is None for no volume. Triangles wound inwards come back turned outwards, so
    the winding gives outward normals."""
    corners = vertices[triangles]
    signed = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])) / 6.0
    volume = float(signed.sum())
    size = float((vertices.max(axis=0) - vertices.min(axis=0)).max())
    if not abs(volume) > 1e-6 * size ** 3:
        return None, triangles
    centroid = (signed[:, None] * corners.sum(axis=1)).sum(axis=0) / (4.0 * volume)
    return centroid, (triangles if volume > 0 else triangles[:, [0, 2, 1]])


def _symmetry_gap(model, vertices: np.ndarray, triangles: np.ndarray) -> float | None:
    """Largest (over the group) mean distance of the turned model points from the mesh surface (m).

    Zero for a true symmetry; a wrong axis or an off-centre origin shows up here.
    """
    if model.symmetry.is_trivial:
        return None
    import open3d as o3d

    from ..geometry import quat_to_matrix

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles.astype(np.uint32)))
    rotations = quat_to_matrix(model.symmetry.equivalents(np.array([1.0, 0.0, 0.0, 0.0])))
    turned = np.einsum("kij,nj->kni", rotations, model.points).reshape(-1, 3)
    gaps = scene.compute_distance(o3d.core.Tensor(turned.astype(np.float32))).numpy()
    return float(gaps.reshape(len(rotations), -1).mean(axis=1).max())


@contextlib.contextmanager
def _native_output() -> Iterator[io.StringIO]:
    """Capture what a reader prints: Open3D's warnings go through Python's ``sys.stdout`` (its pybind
    print hook), the file readers underneath write to file descriptors 1 and 2."""
    captured, python_side = io.StringIO(), io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_streams = sys.stdout, sys.stderr
    try:
        saved_fds = [os.dup(1), os.dup(2)]
    except OSError:
        saved_fds = []
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in (1, 2) if saved_fds else ():
                os.dup2(sink.fileno(), fd)
            sys.stdout = sys.stderr = python_side
            yield captured
        finally:
            sys.stdout, sys.stderr = saved_streams
            if saved_fds:
                ctypes.CDLL(None).fflush(None)
                os.dup2(saved_fds[0], 1)
                os.dup2(saved_fds[1], 2)
                for fd in saved_fds:
                    os.close(fd)
            sink.seek(0)
            captured.write(python_side.getvalue() + sink.read().decode("utf-8", "replace"))


def _open3d_reason(text: str) -> str:
    """The first Open3D warning or error in captured output, without its colour codes and prefix."""
    for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines():
        found = re.search(r"\[Open3D (?:WARNING|ERROR)\]\s*(.*)", line)
        if found and found.group(1).strip():
            return found.group(1).strip()
    return text.strip().splitlines()[0].strip() if text.strip() else ""


# ------------------------------------------------------------------ list / show
def _search_dirs(args: argparse.Namespace) -> list[Path]:
    for directory in args.object_dir:
        if not directory.is_dir():
            raise ObjectCommandError(f"--object-dir {directory} is not a directory", 2)
    return list(args.object_dir)


def run_list(args: argparse.Namespace) -> int:
    from ..objects.models import (SIM_OBJECT_SYMMETRY, ObjectModelError, known_object_names, load_object_model,
                                  model_file, user_object_dir)

    dirs = _search_dirs(args)
    rows, broken = [], []
    for name in known_object_names(dirs):
        path = model_file(name, dirs)
        where = "simulator" if path is None else str(path)
        if path is not None and name in SIM_OBJECT_SYMMETRY:
            where += " (replaces the simulator's)"
        try:
            model = load_object_model(name, dirs)
        except ObjectModelError as exc:
            broken.append(str(exc))
            rows.append((name, "?", "unreadable", "?", where))
            continue
        rows.append((name, model.symmetry.spec, _extent_mm(model.extent * 1e3), str(len(model.points)), where))
    header = ("NAME", "SYMMETRY", "EXTENT (mm)", "POINTS", "FROM")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print(f"\nuser object directory: {user_object_dir()} (add one: dexterity-ros object add MESH --name NAME)")
    for problem in broken:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..objects.models import load_object_model, model_file

    dirs = _search_dirs(args)
    model = load_object_model(args.name, dirs)
    path = model_file(args.name, dirs)
    sym = model.symmetry
    centre_mm = model.points.mean(axis=0) * 1e3
    print(f"object     {model.name}\n"
          f"file       {path if path is not None else '(built in: simulator object)'}\n"
          f"source     {model.source or '-'}\n"
          f"symmetry   {sym.spec} ({_order_text(sym)})\n"
          f"points     {len(model.points)} with outward normals\n"
          f"extent     {_extent_mm(model.extent * 1e3)} mm\n"
          f"bounds     min {_vector_mm(model.points.min(axis=0) * 1e3)} mm, "
          f"max {_vector_mm(model.points.max(axis=0) * 1e3)} mm\n"
          f"radius     {model.radius * 1e3:.1f} mm (farthest point from the origin)\n"
          f"centre     {_vector_mm(centre_mm)} mm (mean of the points)")
    return 0


# ------------------------------------------------------------------ formatting
def _extent_mm(extent_mm: Sequence[float]) -> str:
    return " x ".join(f"{v:.1f}" for v in extent_mm)


def _vector_mm(vector_mm: Sequence[float]) -> str:
    return "(" + ", ".join(f"{round(float(v), 1) + 0.0:.1f}" for v in vector_mm) + ")"


def _order_text(symmetry) -> str:
    if symmetry.axis is not None:
        axis = "xyz"[int(np.argmax(np.abs(symmetry.axis)))]
        return f"any turn about {axis}" + (", and the flip" if len(symmetry.rotations) > 1 else "")
    count = len(symmetry.rotations)
    return "no symmetry" if count == 1 else f"{count} equivalent orientations"
