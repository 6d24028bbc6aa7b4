"""visualization.py: the TF chain is our forward kinematics, the markers are the shapes and boxes segmentation
uses, and the debug image shows the labels the extraction itself recorded (perception.PixelLabel)."""
from __future__ import annotations

import numpy as np
import pytest
from urdf_parser_py.urdf import URDF

from dexterity_ros import urdf
from dexterity_ros.geometry import make_transform, quat_to_matrix
from dexterity_ros.hand_model import default_hand
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.objects.models import load_object_model
from dexterity_ros.perception import ObjectCloudExtractor, PixelLabel, WorkspaceBox, load_perception_config
from dexterity_ros.visualization import (LABEL_COLOURS, NS_GOAL, NS_HAND, NS_TEXT, NS_TRACKED, NS_WORKSPACE,
                                         MarkerKind, TrackedPose, ViewSettings, debug_image, hand_shape_markers,
                                         labelled_window, link_transforms, model_subset, scene_markers,
                                         workspace_lines)
from perception_fixtures import EXTRINSIC, INTR, OBJECT_CENTER, OBJECT_HALF, cube_surface, grasp_pose, splat

KIN = HandKinematics()


def chain(transforms) -> dict[str, np.ndarray]:
    poses = {"palm": np.eye(4)}
    pending = list(transforms)
    while pending:
        t = next(t for t in pending if t.parent in poses)
        pending.remove(t)
        poses[t.child] = poses[t.parent] @ t.matrix
    return poses


def test_tf_chain_from_the_palm_is_our_forward_kinematics_along_the_urdf_tree():
    hand = default_hand()
    for q in np.random.default_rng(1).uniform(hand.lower, hand.upper, (10, 16)):
        transforms = link_transforms(KIN, q)
        poses = chain(transforms)
        rot, pos = KIN.link_poses(q)
        for i, name in enumerate(KIN.link_names):
            assert np.max(np.abs(poses[name][:3, :3] - rot[i])) < 1e-12
            assert np.max(np.abs(poses[name][:3, 3] - pos[i])) < 1e-12
    model = URDF.from_xml_string(urdf.hand_urdf())
    assert {(t.parent, t.child) for t in transforms} == {(j.parent, j.child) for j in model.joints}


def test_hand_shape_markers_are_segmentations_collision_shapes_inflated_by_its_margin():
    q, margin = grasp_pose(), 0.004
    shapes = KIN.collision_shapes(q)
    markers = hand_shape_markers(KIN, q, margin, stamp_ns=5)
    assert [m.ns for m in markers] == [NS_HAND] * (len(shapes.box_half) + 3 * len(shapes.capsule_radius))
    assert len({m.id for m in markers}) == len(markers)
    cubes = [m for m in markers if m.kind is MarkerKind.CUBE]
    for m, rot, centre, half in zip(cubes, shapes.box_rotation, shapes.box_center, shapes.box_half):
        np.testing.assert_allclose(m.pose, make_transform(rot, centre))
        np.testing.assert_allclose(m.scale, 2 * (half + margin))
    cylinders = [m for m in markers if m.kind is MarkerKind.CYLINDER]
    spheres = [m for m in markers if m.kind is MarkerKind.SPHERE]
    for k, (m, a, b, r) in enumerate(zip(cylinders, shapes.capsule_a, shapes.capsule_b, shapes.capsule_radius)):
        np.testing.assert_allclose(m.pose[:3, 3], (a + b) / 2, atol=1e-12)
        np.testing.assert_allclose(m.pose[:3, 2] * m.scale[2], b - a, atol=1e-12)      # axis and length
        np.testing.assert_allclose(m.pose[:3, :3] @ m.pose[:3, :3].T, np.eye(3), atol=1e-12)
        assert m.scale[0] == m.scale[1] == pytest.approx(2 * (r + margin))
        ends = [s.pose[:3, 3] for s in spheres[2 * k:2 * k + 2]]
        np.testing.assert_allclose(ends, [a, b], atol=1e-12)
    assert all(m.stamp_ns == 5 for m in markers)


def test_workspace_lines_are_the_twelve_edges_of_the_box():
    box = WorkspaceBox((0.01, -0.1, -0.12), (0.2, 0.1, 0.2))
    lines = workspace_lines(box).reshape(12, 2, 3)
    size = np.array(box.max) - np.array(box.min)
    for a, b in lines:
        d = np.abs(b - a)
        assert np.count_nonzero(d > 1e-12) == 1 and d.max() == pytest.approx(size[np.argmax(d)])
    corners = {tuple(c) for c in box.corners()}
    assert {tuple(p) for p in lines.reshape(-1, 3)} == corners
    assert len({tuple(sorted(map(tuple, e))) for e in lines}) == 12


def settings(anchor="beside", points=None) -> ViewSettings:
    model = load_object_model("cube")
    return ViewSettings(WorkspaceBox(), 0.004, model_subset(model.points, 100) if points is None else points,
                        np.array([0.055, -0.15, -0.04]), anchor, pose_timeout_s=0.5)


def by_ns(markers, ns):
    return [m for m in markers if m.ns == ns]


def test_scene_markers_draw_the_tracked_object_while_fresh_and_the_goal_beside_or_over_it():
    goal = np.array([np.cos(0.5), 0.0, 0.0, np.sin(0.5)])          # 57.3 deg about z
    tracked = TrackedPose(np.array([0.06, 0.0, -0.03]), np.array([1.0, 0.0, 0.0, 0.0]), stamp_ns=1_000_000_000)
    s = settings()
    fresh = scene_markers(s, KIN, q=grasp_pose(), joints_stamp_ns=9, tracked=tracked, goal=goal,
                          now_ns=1_200_000_000, goal_distance=1.0)
    (workspace,) = by_ns(fresh, NS_WORKSPACE)
    assert workspace.kind is MarkerKind.LINE_LIST and len(workspace.points) == 24
    assert len(by_ns(fresh, NS_HAND)) == 29
    points, axes = by_ns(fresh, NS_TRACKED)
    np.testing.assert_allclose(points.pose, make_transform(np.eye(3), tracked.position))
    assert points.lifetime_s == axes.lifetime_s == 0.5 and points.stamp_ns == tracked.stamp_ns
    np.testing.assert_allclose(points.points, s.object_points)
    goal_points, goal_axes = by_ns(fresh, NS_GOAL)
    np.testing.assert_allclose(goal_points.pose, make_transform(quat_to_matrix(goal), s.goal_position))
    assert goal_points.rgba != points.rgba
    (text,) = by_ns(fresh, NS_TEXT)
    assert text.kind is MarkerKind.TEXT and "57 deg" in text.text
    # the tracker fell silent: no tracked object, goal still drawn, no distance claimed
    stale = scene_markers(s, KIN, q=None, joints_stamp_ns=0, tracked=tracked, goal=goal, now_ns=1_600_000_000,
                          goal_distance=1.0)
    assert not by_ns(stale, NS_TRACKED) and not by_ns(stale, NS_HAND)
    assert len(by_ns(stale, NS_GOAL)) == 2 and by_ns(stale, NS_TEXT)[0].text == "goal"
    # age counts from arrival when known: a bag's old stamps do not hide a pose that just came
    replayed = TrackedPose(tracked.position, tracked.quaternion, stamp_ns=5, received_ns=1_500_000_000)
    assert by_ns(scene_markers(s, KIN, q=None, joints_stamp_ns=0, tracked=replayed, goal=None,
                               now_ns=1_600_000_000), NS_TRACKED)[0].stamp_ns == 5
    # anchor tracked: the goal is drawn over the tracked object while there is one
    over = scene_markers(settings("tracked"), KIN, q=None, joints_stamp_ns=0, tracked=tracked, goal=goal,
                         now_ns=1_200_000_000)
    np.testing.assert_allclose(by_ns(over, NS_GOAL)[0].pose[:3, 3], tracked.position)
    # no object model (object ''): axes only
    bare = scene_markers(settings(points=np.zeros((0, 3))), KIN, q=None, joints_stamp_ns=0, tracked=tracked,
                         goal=goal, now_ns=1_200_000_000)
    assert [m.kind for m in by_ns(bare, NS_TRACKED) + by_ns(bare, NS_GOAL)] == [MarkerKind.LINE_LIST] * 2
    nothing = scene_markers(s, KIN, q=None, joints_stamp_ns=0, tracked=None, goal=None, now_ns=1)
    assert [m.ns for m in nothing] == [NS_WORKSPACE]


# ------------------------------------------------------------------ debug image
def label_of_pixels(image: np.ndarray) -> dict[PixelLabel, np.ndarray]:
    """Which pixels show which label's colour (same hue, any brightness the depth shading gives it)."""
    rgb = image.astype(np.float64)
    norm = np.linalg.norm(rgb, axis=-1)
    out = {}
    for label, colour in LABEL_COLOURS.items():
        c = np.asarray(colour, dtype=np.float64)
        cosine = (rgb @ c) / np.maximum(norm * np.linalg.norm(c), 1e-9)
        out[label] = cosine > 0.998
    return out


@pytest.fixture(scope="module")
def frame():
    """perception_fixtures.scene (cube in the curled hand), sparser so it is quick, plus a few isolated specks
    in the workspace: the density filter's outliers."""
    shapes = KIN.collision_shapes(grasp_pose())
    hand = [c + (cube_surface(np.zeros(3), 1.0, 3000, seed=i + 1) * h) @ r.T
            for i, (r, c, h) in enumerate(zip(shapes.box_rotation, shapes.box_center, shapes.box_half))]
    specks = np.random.default_rng(0).uniform([0.13, -0.08, 0.08], [0.19, 0.08, 0.18], (6, 3))
    return splat(np.vstack([cube_surface(OBJECT_CENTER, OBJECT_HALF, 40000)] + hand + [specks]))


def test_labels_come_from_the_extraction_and_change_nothing_else(frame):
    config = load_perception_config()
    plain = ObjectCloudExtractor(config).extract(frame, INTR, EXTRINSIC, grasp_pose(), want_mask=True)
    labelled = ObjectCloudExtractor(config).extract(frame, INTR, EXTRINSIC, grasp_pose(), want_mask=True,
                                                   want_labels=True)
    assert plain.labels is None
    np.testing.assert_array_equal(plain.points, labelled.points)
    assert plain.counts == labelled.counts
    labels, stride = labelled.labels, labelled.label_stride
    assert stride == config.pixel_stride(INTR.width)
    counts = np.bincount(labels.ravel(), minlength=len(PixelLabel))
    c = labelled.counts
    assert counts[PixelLabel.OBJECT] + counts[PixelLabel.REGROWN] == c["object_points"]
    assert counts[PixelLabel.HAND] == c["hand_removed"] and counts[PixelLabel.HAND] > 100
    assert counts[PixelLabel.OUTLIER] == c["outliers_removed"] >= 1
    assert counts[PixelLabel.REGROWN] == c.get("contact_regrown", 0)
    # object labels sit exactly on the pixels the extraction reports as object
    object_pixels = np.isin(labels, [PixelLabel.OBJECT, PixelLabel.REGROWN])
    np.testing.assert_array_equal(object_pixels, labelled.object_mask[::stride, ::stride])
    assert not labelled.object_mask[labels.shape[0] * stride:, :].any()


def test_debug_image_colours_every_label_and_shades_the_background_by_depth(frame):
    result = ObjectCloudExtractor(load_perception_config()).extract(frame, INTR, EXTRINSIC, grasp_pose(),
                                                                    want_labels=True)
    labels = result.labels
    image = debug_image(frame, labels, result.label_stride, min_width=1)
    h, w = labels.shape
    assert image.dtype == np.uint8 and image.shape[1:] == (w, 3) and image.shape[0] > h       # legend below
    view = image[:h]
    seen = label_of_pixels(view)
    for label in (PixelLabel.OBJECT, PixelLabel.HAND, PixelLabel.OUTLIER):
        np.testing.assert_array_equal(seen[label], labels == label, err_msg=label.name)
    sampled = frame[::result.label_stride, ::result.label_stride]
    background = (labels == PixelLabel.BACKGROUND) & (sampled > 0)
    grey = view[background]
    assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2])
    assert np.all(view[(labels == PixelLabel.BACKGROUND) & (sampled == 0)] == 0)       # no depth: black
    # nearer is lighter
    near, far = np.argmin(np.where(background, sampled, np.inf)), np.argmax(np.where(background, sampled, -1))
    assert view.reshape(-1, 3)[near, 0] > view.reshape(-1, 3)[far, 0]
    legend = image[h:]
    for label in (PixelLabel.OBJECT, PixelLabel.HAND, PixelLabel.OUTLIER):
        assert (np.all(legend == LABEL_COLOURS[label], axis=-1)).sum() >= 50, label.name     # its swatch
    small = debug_image(frame, labels, result.label_stride, legend=False, min_width=2 * w)
    assert small.shape == (2 * h, 2 * w, 3)
    np.testing.assert_array_equal(small[::2, ::2], view)
    # zoomed to what segmentation touched: that part of the same picture, every labelled pixel in it
    stride = result.label_stride
    window = labelled_window(labels, stride)
    rows, cols = (slice(w.start // stride, -(-w.stop // stride)) for w in window)
    part = debug_image(frame, labels, stride, window, legend=False, min_width=1)
    assert 0 < part.shape[0] * part.shape[1] < h * w
    labelled = labels != PixelLabel.BACKGROUND
    assert labelled[rows, cols].sum() == labelled.sum()
    assert rows.start % 8 == 0 and cols.start % 8 == 0
    assert label_of_pixels(part)[PixelLabel.OBJECT].sum() == (labels == PixelLabel.OBJECT).sum()
    np.testing.assert_array_equal(label_of_pixels(part)[PixelLabel.HAND], labels[rows, cols] == PixelLabel.HAND)
    assert labelled_window(np.zeros_like(labels), stride) is None
    with pytest.raises(ValueError):
        debug_image(frame, labels[:-1], result.label_stride)


def test_label_colours_are_distinct_hues_none_grey():
    colours = np.array([c for c in LABEL_COLOURS.values()], dtype=np.float64)
    unit = colours / np.linalg.norm(colours, axis=1, keepdims=True)
    cosine = unit @ unit.T
    assert np.all(cosine[~np.eye(len(unit), dtype=bool)] < 0.95)
    assert np.all(unit @ (np.ones(3) / np.sqrt(3)) < 0.95)
