"""Forward kinematics and collision volumes of the hand, in the palm frame.

Used by segmentation to remove the hand's own points from the depth cloud and
by the calibration check to render the hand. Pure numpy; the tree comes from
:mod:`dexterity_ros.hand_model`, never from hard-coded numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import quat_to_matrix
from .hand_model import HandDescription, default_hand


def _axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: rotations about unit ``axis`` by each angle -> (B, 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s = np.sin(angle)[..., None, None]
    c = np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


@dataclass(frozen=True)
class ShapeSet:
    """Collision primitives posed in the palm frame (arrays over shapes)."""

    box_rotation: np.ndarray     # (nb, 3, 3) box frame -> palm
    box_center: np.ndarray       # (nb, 3)
    box_half: np.ndarray         # (nb, 3)
    box_body: tuple[str, ...]
    capsule_a: np.ndarray        # (nc, 3) segment end points in palm frame
    capsule_b: np.ndarray        # (nc, 3)
    capsule_radius: np.ndarray   # (nc,)
    capsule_body: tuple[str, ...]

    def bounding_box(self, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds (palm frame) enclosing every shape plus ``margin``."""
        corners = []
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        for r, c, h in zip(self.box_rotation, self.box_center, self.box_half):
            corners.append(c + (signs * h) @ r.T)
        lo = [np.min(np.vstack(corners), axis=0)] if corners else []
        hi = [np.max(np.vstack(corners), axis=0)] if corners else []
        if len(self.capsule_radius):
            ends = np.vstack([self.capsule_a, self.capsule_b])
            rad = np.concatenate([self.capsule_radius, self.capsule_radius])[:, None]
            lo.append(np.min(ends - rad, axis=0))
            hi.append(np.max(ends + rad, axis=0))
        return np.min(lo, axis=0) - margin, np.max(hi, axis=0) + margin

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Boolean mask of ``points`` (N, 3) inside any shape inflated by ``margin``."""
        points = np.asarray(points, dtype=np.float64)
        inside = np.zeros(len(points), dtype=bool)
        if len(points) == 0:
            return inside
        lo, hi = self.bounding_box(margin)
        near = np.all((points >= lo) & (points <= hi), axis=1)
        idx = np.flatnonzero(near)
        if idx.size == 0:
            return inside
        p = points[idx]
        hit = np.zeros(len(p), dtype=bool)
        for r, c, h in zip(self.box_rotation, self.box_center, self.box_half):
            local = (p - c) @ r           # palm -> box frame (r is box->palm)
            hit |= np.all(np.abs(local) <= h + margin, axis=1)
        for a, b, rad in zip(self.capsule_a, self.capsule_b, self.capsule_radius):
            ab = b - a
            t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-12), 0.0, 1.0)
            d = p - (a + t[:, None] * ab)
            hit |= np.einsum("ij,ij->i", d, d) <= (rad + margin) ** 2
        inside[idx] = hit
        return inside


class HandKinematics:
    """Forward kinematics of every link, relative to the palm body frame."""

    def __init__(self, hand: HandDescription | None = None):
        self.hand = hand or default_hand()
        self.link_names = ("palm",) + tuple(l.name for l in self.hand.links)
        index = {name: i for i, name in enumerate(self.link_names)}
        self._parent = np.array([-1] + [index[l.parent] for l in self.hand.links])
        self._offset_rot = np.array([np.eye(3)] + [quat_to_matrix(l.quat) for l in self.hand.links])
        self._offset_pos = np.array([np.zeros(3)] + [np.array(l.pos, dtype=np.float64) for l in self.hand.links])
        self._joint_of_link = [-1] + [
            self.hand.joint_index(l.joint) if l.joint else -1 for l in self.hand.links]
        self._axis = [None] + [np.array(l.axis) / np.linalg.norm(l.axis) if l.axis else None
                               for l in self.hand.links]
        self._shapes = [self.hand.palm_collision] + [l.collision for l in self.hand.links]
        # constant per-link tables, so one pose costs a few batched numpy calls (segmentation runs it per frame)
        self._jointed = np.array([i for i, j in enumerate(self._joint_of_link) if j >= 0], dtype=np.int64)
        self._jointed_q = np.array([self._joint_of_link[i] for i in self._jointed], dtype=np.int64)
        skew = np.array([[[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]]
                         for a in (self._axis[i] for i in self._jointed)]).reshape(-1, 3, 3)
        self._skew, self._skew2 = skew, skew @ skew
        n_links = len(self.link_names)
        depth = [0] * n_links
        for i in range(1, n_links):                           # parents come first (topological order)
            depth[i] = depth[self._parent[i]] + 1
        self._levels = [(np.array([i for i in range(n_links) if depth[i] == d], dtype=np.int64),
                         np.array([self._parent[i] for i in range(n_links) if depth[i] == d], dtype=np.int64))
                        for d in range(1, max(depth, default=0) + 1)]
        kinds = [s.kind == "box" for s in self._shapes]
        self._box_links = np.array([i for i, b in enumerate(kinds) if b], dtype=np.int64)
        self._cap_links = np.array([i for i, b in enumerate(kinds) if not b], dtype=np.int64)
        self._shape_pos = np.array([s.pos for s in self._shapes], dtype=np.float64)
        self._box_half = np.array([self._shapes[i].size for i in self._box_links], dtype=np.float64).reshape(-1, 3)
        cap_size = np.array([self._shapes[i].size for i in self._cap_links], dtype=np.float64).reshape(-1, 2)
        self._cap_radius, self._cap_half_length = cap_size[:, 0], cap_size[:, 1]

    def link_poses(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rotations (L, 3, 3) and positions (L, 3) of every link for joint vector ``q``."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.hand.num_joints,):
            raise ValueError(f"expected {self.hand.num_joints} joint positions, got shape {q.shape}")
        n = len(self.link_names)
        rot = np.empty((n, 3, 3))
        pos = np.empty((n, 3))
        rot[0] = np.eye(3)
        pos[0] = 0.0
        angle = q[self._jointed_q][:, None, None]            # Rodrigues for every joint at once
        local = self._offset_rot.copy()
        local[self._jointed] = local[self._jointed] @ (
            np.eye(3) + np.sin(angle) * self._skew + (1 - np.cos(angle)) * self._skew2)
        for links, parents in self._levels:                  # one batched step per tree depth
            parent_rot = rot[parents]
            rot[links] = parent_rot @ local[links]
            pos[links] = pos[parents] + np.einsum("bij,bj->bi", parent_rot, self._offset_pos[links])
        return rot, pos

    def fingertip_positions(self, q: np.ndarray) -> np.ndarray:
        rot, pos = self.link_poses(q)
        tips = [i for i, name in enumerate(self.link_names) if name.endswith("_tip")]
        return np.array([pos[i] + rot[i] @ np.array(self._shapes[i].pos) for i in tips])

    def collision_shapes(self, q: np.ndarray) -> ShapeSet:
        """Every collision primitive posed in the palm frame at joint positions ``q``."""
        rot, pos = self.link_poses(q)
        box_r = rot[self._box_links]
        box_c = pos[self._box_links] + np.einsum("bij,bj->bi", box_r, self._shape_pos[self._box_links])
        cap_r = rot[self._cap_links]
        cap_c = pos[self._cap_links] + np.einsum("bij,bj->bi", cap_r, self._shape_pos[self._cap_links])
        axis = cap_r[:, :, 2] * self._cap_half_length[:, None]
        return ShapeSet(box_r, box_c, self._box_half.copy(),
                        tuple(self.link_names[i] for i in self._box_links),
                        cap_c - axis, cap_c + axis, self._cap_radius.copy(),
                        tuple(self.link_names[i] for i in self._cap_links))

