"""The one place where ROS messages become numpy arrays and back (vectorized).

Message classes come from the ROS interface packages; rclpy is never
imported, so these functions also serve bag tools and tests. Payloads are
assigned with ``ndarray.tobytes()`` (assigning arrays element-wise is ~300x
slower in rclpy).
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, Quaternion, QuaternionStamped, TransformStamped
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField
from std_msgs.msg import Float64MultiArray, Header

from ..camera_model import Intrinsics, IntrinsicsError
from ..geometry import matrix_to_quat


class MessageError(ValueError):
    """A message cannot be converted: unsupported encoding, inconsistent sizes, bad values."""


SUPPORTED_DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
_HOST_BIG_ENDIAN = sys.byteorder == "big"


# --------------------------------------------------------------------- time
def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def cdr_stamp_ns(data: bytes) -> int:
    """The leading builtin_interfaces/Time of a serialized message (a Header's stamp, a Clock's clock).

    CDR: 4 bytes of encapsulation (byte 1 says the byte order), then int32 sec, uint32 nanosec.
    """
    if len(data) < 12:
        raise ValueError(f"serialized message of {len(data)} bytes has no time stamp")
    order = "<" if data[1] & 1 else ">"
    sec, nanosec = struct.unpack_from(order + "iI", data, 4)
    return sec * 1_000_000_000 + nanosec


def ns_to_stamp(ns: int) -> Time:
    ns = int(ns)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def make_header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


# -------------------------------------------------------------------- depth
@dataclass(frozen=True)
class DepthFrame:
    """Depth in float32 metres (0 = no measurement) plus what was fixed on the way in."""

    depth: np.ndarray
    stamp_ns: int
    frame_id: str
    invalid_values: int = 0   # NaN/inf/negative values replaced by 0


def image_to_depth(msg: Image) -> DepthFrame:
    """Depth Image (16UC1 millimetres or 32FC1 metres) -> float32 metres.

    NaN and +-inf (REP 118's "no return" markers) and negative values become 0
    and are counted, so callers can report them instead of crashing on them.
    """
    enc = msg.encoding
    if enc not in SUPPORTED_DEPTH_ENCODINGS:
        raise MessageError(
            f"unsupported depth encoding '{enc}' (supported: {', '.join(SUPPORTED_DEPTH_ENCODINGS)})")
    height, width = int(msg.height), int(msg.width)
    item = 2 if enc in ("16UC1", "mono16") else 4
    if height == 0 or width == 0:
        raise MessageError(f"depth image is empty ({width}x{height})")
    step = int(msg.step)
    if step < width * item:
        raise MessageError(f"step {step} is smaller than width*{item} = {width * item}")
    buf = msg.data
    if len(buf) < step * (height - 1) + width * item:
        raise MessageError(f"data has {len(buf)} bytes, expected {step * height} for "
                           f"{width}x{height} {enc} with step {step}")
    base = np.dtype("<u2" if item == 2 else "<f4")
    dtype = base.newbyteorder(">" if msg.is_bigendian else "<")
    rows = np.frombuffer(buf, dtype=np.uint8)
    if step == width * item:
        raw = rows[: height * step].view(dtype).reshape(height, width)
    else:  # padded rows: gather the payload of each row, then reinterpret
        raw = np.lib.stride_tricks.as_strided(
            rows, shape=(height, width * item), strides=(step, 1)).copy().view(dtype)
    if item == 2:
        depth = raw.astype(np.float32) * np.float32(0.001)
        invalid = 0
    else:
        depth = raw.astype(np.float32, copy=True)
        bad = ~np.isfinite(depth) | (depth < 0)
        invalid = int(np.count_nonzero(bad))
        if invalid:
            depth[bad] = 0.0
    return DepthFrame(depth, stamp_to_ns(msg.header.stamp), msg.header.frame_id, invalid)


def depth_to_image(depth_m: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "16UC1") -> Image:
    """float metres -> Image in ``encoding`` (16UC1 rounds to millimetres, clips at 65.535 m)."""
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise MessageError(f"depth must be 2-D, got shape {depth_m.shape}")
    height, width = depth_m.shape
    if encoding in ("16UC1", "mono16"):
        mm = np.nan_to_num(depth_m.astype(np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
        data = np.clip(np.rint(mm), 0, 65535).astype("<u2")
        item = 2
    elif encoding == "32FC1":
        data = depth_m.astype("<f4")
        item = 4
    else:
        raise MessageError(f"unsupported depth encoding '{encoding}'")
    msg = Image(header=make_header(stamp_ns, frame_id), height=height, width=width,
                encoding=encoding, is_bigendian=0, step=width * item)
    msg.data = np.ascontiguousarray(data).tobytes()
    return msg


# ------------------------------------------------------------- camera info
def camera_info_to_intrinsics(msg: CameraInfo) -> Intrinsics:
    k = list(msg.k)
    if len(k) != 9:
        raise MessageError(f"camera_info K has {len(k)} entries, expected 9")
    try:
        return Intrinsics(int(msg.width), int(msg.height), float(k[0]), float(k[4]), float(k[2]),
                          float(k[5]), msg.distortion_model or "plumb_bob", tuple(float(d) for d in msg.d))
    except IntrinsicsError as exc:
        raise MessageError(f"camera_info unusable: {exc}") from exc


def intrinsics_to_camera_info(intr: Intrinsics, stamp_ns: int, frame_id: str) -> CameraInfo:
    msg = CameraInfo(header=make_header(stamp_ns, frame_id), height=intr.height, width=intr.width,
                     distortion_model=intr.distortion_model)
    msg.d = [float(d) for d in intr.distortion]
    msg.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


# -------------------------------------------------------------- point cloud
_XYZ_FIELDS = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
               for i, n in enumerate("xyz")]
_POINTFIELD_DTYPES = {PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2",
                      PointField.UINT16: "u2", PointField.INT32: "i4", PointField.UINT32: "u4",
                      PointField.FLOAT32: "f4", PointField.FLOAT64: "f8"}


def points_to_pointcloud2(points: np.ndarray, stamp_ns: int, frame_id: str) -> PointCloud2:
    """(N, 3) points -> unorganised PointCloud2 with float32 x, y, z (point_step 12)."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise MessageError(f"points must be (N, 3), got {points.shape}")
    data = np.ascontiguousarray(points, dtype=np.float32)
    msg = PointCloud2(header=make_header(stamp_ns, frame_id), height=1, width=len(points),
                      fields=_XYZ_FIELDS, is_bigendian=_HOST_BIG_ENDIAN, point_step=12,
                      row_step=12 * len(points), is_dense=bool(np.all(np.isfinite(data))))
    msg.data = data.tobytes()
    return msg


def pointcloud2_layout_problem(msg: PointCloud2) -> str | None:
    """Why the layout of ``msg`` cannot be read as x, y, z points (None: it can).

    Checks what reading relies on: x, y and z present once each with a known datatype, every field
    inside ``point_step`` (offset + size * count), x/y/z not overlapping, ``row_step`` holding a row of
    ``width`` points, and ``data`` holding ``height`` rows.
    """
    names = [f.name for f in msg.fields]
    if not all(n in names for n in "xyz"):
        return f"PointCloud2 lacks x/y/z fields (has {sorted(set(names))})"
    step, width, height, row_step = int(msg.point_step), int(msg.width), int(msg.height), int(msg.row_step)
    if step <= 0:
        return f"point_step is {step}; a point needs at least the 12 bytes of x, y, z"
    spans: dict[str, tuple[int, int]] = {}
    for f in msg.fields:
        if f.name in spans and f.name in ("x", "y", "z"):
            return f"field '{f.name}' appears twice"
        if f.datatype not in _POINTFIELD_DTYPES:
            return f"field '{f.name}' has unknown datatype {f.datatype} (PointField datatypes are 1..8)"
        if f.name in ("x", "y", "z") and f.count != 1:
            return f"field '{f.name}' has count {f.count}, expected 1"
        size = np.dtype(_POINTFIELD_DTYPES[f.datatype]).itemsize * max(int(f.count), 1)
        if int(f.offset) + size > step:
            return (f"field '{f.name}' (offset {f.offset}, {size} bytes) ends past point_step {step}")
        spans[f.name] = (int(f.offset), int(f.offset) + size)
    xyz = sorted(spans[n] + (n,) for n in "xyz")
    for (a0, a1, a), (b0, _, b) in zip(xyz, xyz[1:]):
        if b0 < a1:
            return f"fields '{a}' and '{b}' overlap (bytes {a0}..{a1} and {b0}..)"
    if width == 0 or height == 0:
        return None
    if row_step < width * step:
        return f"row_step {row_step} is smaller than width * point_step = {width} * {step}"
    needed = row_step * (height - 1) + width * step
    if len(msg.data) < needed:
        return (f"PointCloud2 data has {len(msg.data)} bytes, expected {row_step * height} "
                f"({height} rows of row_step {row_step})")
    return None


def pointcloud2_to_points(msg: PointCloud2, drop_invalid: bool = True) -> np.ndarray:
    """PointCloud2 with x, y, z fields (any layout, row padding, endianness) -> float32 (N, 3).

    A layout that cannot be read (see :func:`pointcloud2_layout_problem`) is a :class:`MessageError`.
    ``drop_invalid``: leave out points with a non-finite coordinate (values beyond float32 become inf).
    """
    problem = pointcloud2_layout_problem(msg)
    if problem is not None:
        raise MessageError(problem)
    fields = {f.name: f for f in msg.fields}
    width, height = int(msg.width), int(msg.height)
    if width == 0 or height == 0:
        return np.zeros((0, 3), dtype=np.float32)
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({"names": list("xyz"),
                      "formats": [order + _POINTFIELD_DTYPES[fields[n].datatype] for n in "xyz"],
                      "offsets": [int(fields[n].offset) for n in "xyz"], "itemsize": int(msg.point_step)})
    raw = np.ndarray((height, width), dtype=dtype, buffer=memoryview(msg.data).cast("B"),
                     strides=(int(msg.row_step), int(msg.point_step))).reshape(-1)
    points = np.empty((len(raw), 3), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for i, n in enumerate("xyz"):
            points[:, i] = raw[n]
    if drop_invalid:
        points = points[np.all(np.isfinite(points), axis=1)]
    return points


# ------------------------------------------------------------- joint state
def joint_state_to_arrays(msg: JointState) -> tuple[list[str], np.ndarray]:
    names = list(msg.name)
    positions = np.asarray(msg.position, dtype=np.float64)
    if len(positions) != len(names):
        raise MessageError(f"JointState has {len(names)} names but {len(positions)} positions")
    if not np.all(np.isfinite(positions)):
        raise MessageError("JointState positions contain NaN or inf")
    return names, positions


def arrays_to_joint_state(names: Sequence[str], positions: np.ndarray, stamp_ns: int,
                          velocities: np.ndarray | None = None) -> JointState:
    msg = JointState(header=make_header(stamp_ns, ""))
    msg.name = list(names)
    msg.position = np.asarray(positions, dtype=np.float64).tolist()
    if velocities is not None:
        msg.velocity = np.asarray(velocities, dtype=np.float64).tolist()
    return msg


# ------------------------------------------------------------- orientation
def quaternion_msg_to_wxyz(q: Quaternion) -> np.ndarray:
    return np.array([q.w, q.x, q.y, q.z], dtype=np.float64)


def wxyz_to_quaternion_msg(q: np.ndarray) -> Quaternion:
    return Quaternion(w=float(q[0]), x=float(q[1]), y=float(q[2]), z=float(q[3]))


def goal_msg(q_wxyz: np.ndarray, stamp_ns: int, frame_id: str) -> QuaternionStamped:
    return QuaternionStamped(header=make_header(stamp_ns, frame_id), quaternion=wxyz_to_quaternion_msg(q_wxyz))


def transform_to_msg(t: np.ndarray, stamp_ns: int, parent: str, child: str) -> TransformStamped:
    """4x4 pose of ``child`` in ``parent`` -> TransformStamped (the tf convention)."""
    msg = TransformStamped(header=make_header(stamp_ns, parent), child_frame_id=child)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in t[:3, 3])
    msg.transform.rotation = wxyz_to_quaternion_msg(matrix_to_quat(t[:3, :3]))
    return msg


def pose_to_msg(t: np.ndarray, stamp_ns: int, frame_id: str) -> PoseStamped:
    """4x4 pose of an object in ``frame_id`` -> PoseStamped (orientation w >= 0)."""
    t = np.asarray(t, dtype=np.float64)
    msg = PoseStamped(header=make_header(stamp_ns, frame_id))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in t[:3, 3])
    msg.pose.orientation = wxyz_to_quaternion_msg(matrix_to_quat(t[:3, :3]))
    return msg


def pose_msg_to_arrays(msg: PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    """PoseStamped -> (position (3,), unit quaternion wxyz (4,)); a non-finite or zero quaternion or a
    non-finite position is a :class:`MessageError`."""
    p = msg.pose.position
    position = np.array([p.x, p.y, p.z], dtype=np.float64)
    q = quaternion_msg_to_wxyz(msg.pose.orientation)
    norm = float(np.linalg.norm(q))
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(q))):
        raise MessageError(f"pose has non-finite values: position {position.tolist()}, orientation {q.tolist()}")
    if abs(norm - 1.0) > 0.01:
        raise MessageError(f"pose orientation is not a unit quaternion (norm {norm:.4f})")
    return position, q / norm


# ------------------------------------------------------ driver command arrays
def joint_state_velocities(msg: JointState) -> np.ndarray | None:
    """Velocities of a JointState, or None when absent, malformed or not finite (they are optional)."""
    if len(msg.velocity) != len(msg.name) or len(msg.velocity) == 0:
        return None
    velocities = np.asarray(msg.velocity, dtype=np.float64)
    return velocities if np.all(np.isfinite(velocities)) else None


def array_to_float64_multi_array(values: np.ndarray) -> Float64MultiArray:
    """1-D array -> Float64MultiArray (what ros2_control forward controllers take)."""
    msg = Float64MultiArray()
    msg.data = np.asarray(values, dtype=np.float64).ravel().tolist()
    return msg


def float64_multi_array_to_array(msg: Float64MultiArray) -> np.ndarray:
    values = np.asarray(msg.data, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise MessageError("Float64MultiArray data contain NaN or inf")
    return values
