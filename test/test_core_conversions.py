"""conversions.py: message <-> numpy, vectorized, with clear errors on bad messages."""
import sys

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField

from dexterity_ros import conversions as conv
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
