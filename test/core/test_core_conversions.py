"""ros/conversions.py: message <-> numpy, vectorized, with clear errors on bad messages."""
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField

from dexterity_ros.ros import conversions as conv
from dexterity_ros.camera_model import Intrinsics, quantize_depth_mm


def test_depth_16uc1_round_trip_in_millimetres():
    depth = np.random.default_rng(0).uniform(0.2, 3.0, size=(48, 64)).astype(np.float32)
    msg = conv.depth_to_image(depth, 1_234_567_890_123, "cam", "16UC1")
    assert (msg.encoding, msg.step, msg.height, msg.width) == ("16UC1", 128, 48, 64)
    frame = conv.image_to_depth(msg)
    assert frame.depth.dtype == np.float32
    assert np.abs(frame.depth - depth).max() <= 0.0005 + 1e-6
    assert frame.stamp_ns == 1_234_567_890_123 and frame.frame_id == "cam"
    assert np.array_equal(frame.depth, quantize_depth_mm(depth))


def test_depth_32fc1_nan_inf_become_invalid():
    depth = np.full((4, 5), 0.5, dtype=np.float32)
    depth[0, 0], depth[1, 1], depth[2, 2] = np.nan, np.inf, -np.inf
    frame = conv.image_to_depth(conv.depth_to_image(depth, 0, "c", "32FC1"))
    assert frame.invalid_values == 3
    assert frame.depth[0, 0] == 0 and frame.depth[1, 1] == 0 and frame.depth[2, 2] == 0
    assert frame.depth[3, 3] == np.float32(0.5)


def test_padded_rows_and_big_endian():
    depth_mm = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
    rows = [np.concatenate([r.astype(">u2").view(np.uint8), np.zeros(6, np.uint8)]) for r in depth_mm]
    msg = Image(height=3, width=4, encoding="16UC1", is_bigendian=1, step=14)
    msg.data = np.concatenate(rows).tobytes()
    assert np.allclose(conv.image_to_depth(msg).depth, depth_mm / 1000.0)


@pytest.mark.parametrize("encoding, step, nbytes, message", [
    ("rgb8", 12, 36, "unsupported depth encoding 'rgb8'"),
    ("16UC1", 4, 36, "step 4 is smaller"),
    ("16UC1", 8, 10, "data has 10 bytes"),
])
def test_bad_images_raise_message_errors(encoding, step, nbytes, message):
    msg = Image(height=3, width=4, encoding=encoding, step=step)
    msg.data = bytes(nbytes)
    with pytest.raises(conv.MessageError, match=message):
        conv.image_to_depth(msg)


def test_camera_info_round_trip_and_validation():
    intr = Intrinsics(424, 240, 210.0, 211.0, 211.5, 119.5)
    msg = conv.intrinsics_to_camera_info(intr, 5, "cam")
    assert conv.camera_info_to_intrinsics(msg) == intr
    bad = CameraInfo(width=424, height=240)
    bad.k = [0.0] * 9
    with pytest.raises(conv.MessageError, match="focal length"):
        conv.camera_info_to_intrinsics(bad)


def test_pointcloud2_layout_and_round_trip():
    pts = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    msg = conv.points_to_pointcloud2(pts, 7, "palm")
    assert msg.point_step == 12 and msg.row_step == 1200 and msg.width == 100 and msg.height == 1
    assert msg.is_dense and msg.is_bigendian == (sys.byteorder == "big")
    assert [f.name for f in msg.fields] == ["x", "y", "z"]
    assert np.array_equal(conv.pointcloud2_to_points(msg), pts)


def test_pointcloud2_other_layouts_are_read():
    # x y z padded to 16 bytes, big endian, two rows
    pts = np.arange(24, dtype=np.float32).reshape(8, 3)
    rec = np.zeros(8, dtype=[("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("pad", ">f4")])
    rec["x"], rec["y"], rec["z"] = pts.T
    msg = PointCloud2(height=2, width=4, is_bigendian=True, point_step=16, row_step=64,
                      fields=[PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                              for i, n in enumerate("xyz")])
    msg.data = rec.tobytes()
    assert np.array_equal(conv.pointcloud2_to_points(msg), pts)
    msg.fields = msg.fields[:2]
    with pytest.raises(conv.MessageError, match="lacks x/y/z"):
        conv.pointcloud2_to_points(msg)


def test_joint_state_conversion_checks_lengths_and_values():
    msg = conv.arrays_to_joint_state(["a", "b"], np.array([0.1, 0.2]), 3)
    names, pos = conv.joint_state_to_arrays(msg)
    assert names == ["a", "b"] and np.allclose(pos, [0.1, 0.2])
    with pytest.raises(conv.MessageError, match="2 names but 1 positions"):
        conv.joint_state_to_arrays(JointState(name=["a", "b"], position=[0.1]))
    with pytest.raises(conv.MessageError, match="NaN"):
        conv.joint_state_to_arrays(JointState(name=["a"], position=[float("nan")]))


def test_stamps_and_transform_message():
    assert conv.stamp_to_ns(conv.ns_to_stamp(1_700_000_000_123_456_789)) == 1_700_000_000_123_456_789
    t = np.eye(4)
    t[:3, 3] = [0.1, 0.2, 0.3]
    msg = conv.transform_to_msg(t, 0, "palm", "cam")
    assert msg.child_frame_id == "cam" and msg.transform.rotation.w == 1.0
    assert msg.transform.translation.z == pytest.approx(0.3)


# ------------------------------------------------------ malformed PointCloud2
def _cloud(fields, point_step, width=2, height=1, row_step=None, nbytes=None, big=False) -> PointCloud2:
    msg = PointCloud2(height=height, width=width, is_bigendian=big, point_step=point_step,
                      row_step=width * point_step if row_step is None else row_step,
                      fields=[PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields])
    msg.data = bytes(range(256)) * 4 if nbytes is None else bytes(nbytes)
    return msg


F32, F64 = PointField.FLOAT32, PointField.FLOAT64
XYZ32 = [("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)]


@pytest.mark.parametrize("msg, message", [
    (_cloud(XYZ32, 0), "point_step is 0"),
    (_cloud(XYZ32, 4), "field 'y' .* ends past point_step 4"),
    (_cloud(XYZ32, 11), "field 'z' .* ends past point_step 11"),
    (_cloud([("x", 0, F64, 1), ("y", 8, F64, 1), ("z", 16, F64, 1)], 12), "field 'y' .* ends past point_step 12"),
    (_cloud(XYZ32 + [("rgb", 12, F32, 1)], 12), "field 'rgb' .* ends past point_step 12"),
    (_cloud([("x", 0, F64, 1), ("y", 4, F64, 1), ("z", 16, F64, 1)], 24), "fields 'x' and 'y' overlap"),
    (_cloud(XYZ32[:2] + [("z", 8, 9, 1)], 12), "unknown datatype 9"),
    (_cloud(XYZ32[:2] + [("z", 8, 0, 1)], 12), "unknown datatype 0"),
    (_cloud(XYZ32 + [("x", 12, F32, 1)], 16), "field 'x' appears twice"),
    (_cloud(XYZ32[:2] + [("z", 8, F32, 0)], 12), "field 'z' has count 0"),
    (_cloud(XYZ32, 12, row_step=20), "row_step 20 is smaller than width \\* point_step"),
    (_cloud(XYZ32, 12, width=4, height=2, nbytes=95), "data has 95 bytes, expected 96"),
    (_cloud(XYZ32, 12, width=2**31, height=2**31, nbytes=24), "data has 24 bytes"),
])
def test_malformed_pointcloud2_layouts_are_message_errors(msg, message):
    with pytest.raises(conv.MessageError, match=message):
        conv.pointcloud2_to_points(msg)


def test_pointcloud2_row_padding_is_honoured():
    # 2 rows of 3 points, each row padded to 40 bytes (row_step > width * point_step)
    pts = np.arange(18, dtype=np.float32).reshape(6, 3)
    rows = [np.concatenate([pts[3 * r:3 * r + 3].astype("<f4").view(np.uint8).ravel(), np.full(4, 0xFF, np.uint8)])
            for r in range(2)]
    msg = PointCloud2(height=2, width=3, is_bigendian=False, point_step=12, row_step=40, fields=_XYZ_FIELDS())
    msg.data = np.concatenate(rows).tobytes()
    assert np.array_equal(conv.pointcloud2_to_points(msg), pts)
    empty = PointCloud2(height=1, width=0, point_step=12, row_step=0, fields=_XYZ_FIELDS())
    assert conv.pointcloud2_to_points(empty).shape == (0, 3)


def _XYZ_FIELDS():
    return [PointField(name=n, offset=4 * i, datatype=F32, count=1) for i, n in enumerate("xyz")]


_FORMATS = {1: "b", 2: "B", 3: "h", 4: "H", 5: "i", 6: "I", 7: "f", 8: "d"}


def _reference_points(msg) -> np.ndarray:
    """x, y, z of every point, read one value at a time with struct (the slow, obvious way)."""
    import struct
    fields = {f.name: f for f in msg.fields}
    order = ">" if msg.is_bigendian else "<"
    data = bytes(msg.data)
    out = []
    for r in range(msg.height):
        for c in range(msg.width):
            base = r * msg.row_step + c * msg.point_step
            out.append([struct.unpack_from(order + _FORMATS[fields[n].datatype], data, base + fields[n].offset)[0]
                        for n in "xyz"])
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(out, dtype=np.float64).reshape(-1, 3).astype(np.float32)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_pointcloud2_layout_gives_points_or_a_message_error(data):
    """Random layouts (offsets, datatypes, counts, steps, sizes, endianness, data length): the result is
    an (N, 3) float32 array equal to a value-by-value reading, or MessageError; never another exception."""
    if data.draw(st.booleans()):       # anything
        names = data.draw(st.lists(st.sampled_from(["x", "y", "z", "rgb", "", "intensity"]), max_size=6))
        names += data.draw(st.sampled_from([[], ["x", "y", "z"]]))
        fields = [PointField(name=n, offset=data.draw(st.integers(0, 40)), datatype=data.draw(st.integers(0, 9)),
                             count=data.draw(st.sampled_from([0, 1, 1, 1, 2]))) for n in names]
        point_step = data.draw(st.integers(0, 48))
    else:                              # fields packed one after another with gaps, step near their end
        extra = data.draw(st.lists(st.sampled_from(["rgb", "intensity", "ring"]), max_size=2, unique=True))
        fields, offset = [], 0
        for n in data.draw(st.permutations(["x", "y", "z"] + extra)):
            offset += data.draw(st.integers(0, 3))
            datatype = data.draw(st.integers(1, 8))
            fields.append(PointField(name=n, offset=offset, datatype=datatype, count=1))
            offset += {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 8: 8}[datatype]
        point_step = max(offset + data.draw(st.integers(-3, 8)), 0)
    width, height = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 4))
    row_step = data.draw(st.sampled_from([width * point_step] * 2 + [
        width * point_step + data.draw(st.integers(0, 9)), data.draw(st.integers(0, 300))]))
    needed = row_step * height
    size = data.draw(st.sampled_from([needed] * 3 + [max(needed - data.draw(st.integers(1, 8)), 0),
                                      needed + data.draw(st.integers(0, 8)), data.draw(st.integers(0, 400))]))
    msg = PointCloud2(height=height, width=width, is_bigendian=data.draw(st.booleans()), point_step=point_step,
                      row_step=row_step, fields=fields)
    msg.data = data.draw(st.binary(min_size=size, max_size=size))
    drop = data.draw(st.booleans())
    try:
        points = conv.pointcloud2_to_points(msg, drop_invalid=drop)
    except conv.MessageError as exc:
        assert str(exc)
        event("MessageError")
        return
    event("points" if len(points) else "no points")
    assert isinstance(points, np.ndarray) and points.dtype == np.float32 and points.ndim == 2
    assert points.shape[1] == 3 and len(points) <= width * height
    expected = _reference_points(msg)
    if drop:
        expected = expected[np.all(np.isfinite(expected), axis=1)]
        assert np.all(np.isfinite(points))
    np.testing.assert_array_equal(points, expected)
