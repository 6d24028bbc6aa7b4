"""Segmentation speed and accuracy: our pipeline vs a straightforward Open3D pipeline, same frames.

    .venv/bin/python bench/segmentation.py [--width 640 --height 480] [--episodes 2 --steps 120]
                                           [--jitter on|off] [--repeats 3] [--core 0]

Frames: consecutive simulator steps (ReorientEnv, palm-up and palm-down
grasps, every randomization term of config/randomization.yaml on, including
depth noise, edge dropout and camera jitter unless ``--jitter off``), depth
after the 16UC1 round trip, the calibrated intrinsics/extrinsic and the noisy
measured joint positions: exactly what segmentation_node gets. Ground truth:
the renderer's per-pixel labels.

Timed on one core (thread env vars = 1 before numpy is imported, the process
pinned to ``--core``); each pipeline makes whole passes over the frames, in an
order that rotates every repeat so changes in machine load hit all alike:

* ours: ``ObjectCloudExtractor.extract`` with config/perception.yaml, the
  previous frame's hand alignment passed on as segmentation_node does
  ("warm"); also timed with every frame cold;
* open3d: create_from_depth_image -> transform -> crop -> voxel_down_sample ->
  remove_statistical_outlier -> farthest_point_down_sample (no hand removal:
  that is the straightforward pipeline).

Accuracy (untimed pass): pixel precision/recall of the object before
sampling (recall over object pixels with a depth return whose true point is
inside the workspace; ours reads every ``stride``-th pixel, so its recall is
over the pixels it reads; Open3D's voxels are traced back to their pixels),
and the precision of the final N points. Prints p50/p99 ms per frame and the
ratio open3d / ours.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import time  # noqa: E402

import numpy as np  # noqa: E402

from dexterity_ros.camera_model import RayGrid  # noqa: E402
from dexterity_ros.camera_model import quantize_depth_mm  # noqa: E402
from dexterity_ros.perception import ObjectCloudExtractor, PerceptionConfig, load_perception_config  # noqa: E402
from dexterity_ros.sim.model import LABEL_HAND, LABEL_OBJECT  # noqa: E402

JITTER_TERMS = ("camera_translation_jitter", "camera_rotation_jitter", "focal_length_jitter",
                "principal_point_jitter")


def render_frames(width: int, height: int, episodes: int, steps: int, jitter: bool, seed: int) -> list[list[dict]]:
    """Per episode, its consecutive camera frames with labels and the robot-side inputs."""
    import dataclasses

    from dexterity_ros.sim.env import ReorientEnv
    from dexterity_ros.sim.randomization import load_randomization_config
    from dexterity_ros.sim.sim_config import load_sim_config

    rand = load_randomization_config()
    if not jitter:
        rand = dataclasses.replace(rand, **{k: dataclasses.replace(getattr(rand, k), enabled=False)
                                            for k in JITTER_TERMS})
    rng = np.random.default_rng(seed)
    sequences = []
    for mount in ("palm_up", "palm_down"):
        cfg = load_sim_config().with_overrides(mount=mount, camera__width=width, camera__height=height,
                                                camera__max_render_width=max(width, 640),
                                                camera__max_render_height=max(height, 480),
                                                task__goal_timeout_s=60.0)     # long streams, like the robot
        with ReorientEnv(cfg, rand, seed) as env:
            for episode in range(episodes):
                obs = env.reset(seed=seed + episode)
                frames = []
                for _ in range(steps):
                    rendered = obs.render() if not obs.frame_dropped else None
                    if rendered is not None:
                        frames.append(dict(
                            depth=quantize_depth_mm(rendered.depth), labels=rendered.labels,
                            true_depth=rendered.depth, intrinsics=rendered.calibrated_intrinsics,
                            extrinsic=rendered.calibrated_extrinsic.matrix,
                            joints=np.array(obs.joint_positions, dtype=np.float64),
                            true_intrinsics=rendered.intrinsics, true_extrinsic=rendered.extrinsic.matrix,
                            true_joints=rendered.true_joint_positions, mount=mount))
                    step = env.step(env.initial_joint_positions + rng.normal(0.0, 0.05, env.num_joints))
                    obs = step.observation
                    if step.terminated or step.truncated:
                        break
                sequences.append(frames)
    return sequences


# ------------------------------------------------------------------ open3d baseline
class Open3DPipeline:
    """The straightforward pipeline; ``remove_hand``: plus a step dropping points inside the collision
    shapes (inflated by hand_margin) at the measured joint positions, no alignment."""

    def __init__(self, config: PerceptionConfig, voxel: float, remove_hand: bool = False):
        import open3d as o3d
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
        from dexterity_ros.kinematics import HandKinematics
        self.o3d = o3d
        self.config = config
        self.voxel = voxel
        self.kinematics = HandKinematics() if remove_hand else None
        self.box = o3d.geometry.AxisAlignedBoundingBox(np.array(config.workspace.min, dtype=np.float64),
                                                       np.array(config.workspace.max, dtype=np.float64))

    def camera(self, k):
        return self.o3d.camera.PinholeCameraIntrinsic(k.width, k.height, k.fx, k.fy, k.cx, k.cy)

    def not_hand(self, points, joints: np.ndarray) -> np.ndarray:
        shapes = self.kinematics.collision_shapes(joints)
        return np.flatnonzero(~shapes.contains(np.asarray(points), self.config.hand_margin))

    def run(self, depth: np.ndarray, intrinsics, extrinsic: np.ndarray, joints: np.ndarray):
        o3d, cfg = self.o3d, self.config
        pcd = o3d.geometry.PointCloud.create_from_depth_image(
            o3d.geometry.Image(depth), self.camera(intrinsics), depth_scale=1.0, depth_trunc=cfg.max_depth)
        pcd.transform(extrinsic)
        pcd = pcd.crop(self.box)
        if self.kinematics is not None:
            pcd = pcd.select_by_index(self.not_hand(pcd.points, joints))
        pcd = pcd.voxel_down_sample(self.voxel)
        pcd, _ = pcd.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
        if len(pcd.points) < cfg.num_points:
            return None
        return np.asarray(pcd.farthest_point_down_sample(cfg.num_points).points)

    def traced(self, depth: np.ndarray, intrinsics, extrinsic: np.ndarray, joints: np.ndarray, labels: np.ndarray):
        """The same pipeline with indices kept: (member pixels of surviving voxels, labels of the N points)."""
        o3d, cfg = self.o3d, self.config
        valid = (depth > 0) & (depth <= cfg.max_depth)          # create_from_depth_image order: row-major
        pixel = np.flatnonzero(valid)
        pcd = o3d.geometry.PointCloud.create_from_depth_image(
            o3d.geometry.Image(depth), self.camera(intrinsics), depth_scale=1.0, depth_trunc=cfg.max_depth)
        if len(pcd.points) != len(pixel):
            raise RuntimeError("open3d point order does not match the valid pixels")
        pcd.transform(extrinsic)
        inside = np.asarray(self.box.get_point_indices_within_bounding_box(pcd.points), dtype=np.int64)
        pixel = pixel[inside]
        pcd = pcd.select_by_index(inside.tolist())
        if self.kinematics is not None:
            kept = self.not_hand(pcd.points, joints)
            pixel = pixel[kept]
            pcd = pcd.select_by_index(kept)
        down, _, members = pcd.voxel_down_sample_and_trace(self.voxel, pcd.get_min_bound(), pcd.get_max_bound())
        members = [np.asarray(m, dtype=np.int64) for m in members]
        down, kept = down.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
        kept_members = [members[i] for i in kept]
        flat_labels = labels.reshape(-1)
        voxel_label = np.array([np.bincount(flat_labels[pixel[m]], minlength=4).argmax() for m in kept_members])
        kept_pixels = np.concatenate([pixel[m] for m in kept_members]) if kept_members else np.zeros(0, np.int64)
        if len(down.points) < cfg.num_points:
            return kept_pixels, None
        sampled = np.asarray(down.farthest_point_down_sample(cfg.num_points).points)
        lookup = {tuple(p): i for i, p in enumerate(np.asarray(down.points))}
        return kept_pixels, voxel_label[[lookup[tuple(p)] for p in sampled]]


# ------------------------------------------------------------------ evaluation helpers
def visible_object_pixels(frame: dict, config: PerceptionConfig) -> np.ndarray:
    """(H, W) bool: object pixels with a depth return whose true point is inside the workspace."""
    depth, labels = frame["depth"], frame["labels"]
    rows, cols = np.nonzero((labels == LABEL_OBJECT) & (depth > 0))
    grid = RayGrid(frame["true_intrinsics"])
    z = depth[rows, cols].astype(np.float64)
    cam = np.stack([grid.u[cols] * z, grid.v[rows] * z, z], axis=1)
    ext = frame["true_extrinsic"]
    palm = cam @ ext[:3, :3].T + ext[:3, 3]
    inside = np.all((palm >= config.workspace.min) & (palm <= config.workspace.max), axis=1)
    out = np.zeros(depth.shape, dtype=bool)
    out[rows[inside], cols[inside]] = True
    return out


def point_labels(points: np.ndarray, frame: dict) -> np.ndarray:
    """Labels of palm-frame points that came from pixels of this frame (reprojected, calibrated camera)."""
    ext, k = frame["extrinsic"], frame["intrinsics"]
    cam = (points.astype(np.float64) - ext[:3, 3]) @ ext[:3, :3]
    u = np.rint(k.fx * cam[:, 0] / cam[:, 2] + k.cx).astype(np.int64)
    v = np.rint(k.fy * cam[:, 1] / cam[:, 2] + k.cy).astype(np.int64)
    return frame["labels"][np.clip(v, 0, k.height - 1), np.clip(u, 0, k.width - 1)]


def occluded_boundary_fraction(frame: dict) -> float:
    """Share of the object's outline whose neighbour is a hand pixel nearer the camera (a finger in front)."""
    labels, depth = frame["labels"], frame["true_depth"]
    obj = labels == LABEL_OBJECT
    boundary = np.zeros_like(obj)
    occluded = np.zeros_like(obj)
    for axis in (0, 1):
        for shift in (1, -1):
            other = np.roll(obj, shift, axis)
            other_label = np.roll(labels, shift, axis)
            other_depth = np.roll(depth, shift, axis)
            edge = obj & ~other
            boundary |= edge
            occluded |= edge & (other_label == LABEL_HAND) & (other_depth > 0) & (other_depth < depth)
    return float(occluded.sum() / max(boundary.sum(), 1))


class Tally:
    def __init__(self):
        self.tp = self.fp = self.visible = 0
        self.cloud_object = self.cloud_points = 0
        self.no_cloud = 0

    def add_pixels(self, kept: np.ndarray, labels: np.ndarray, visible: np.ndarray) -> None:
        self.tp += int(np.count_nonzero(kept & (labels == LABEL_OBJECT)))
        self.fp += int(np.count_nonzero(kept & (labels != LABEL_OBJECT)))
        self.visible += int(np.count_nonzero(visible))

    def add_cloud(self, cloud_labels: np.ndarray | None) -> None:
        if cloud_labels is None:
            self.no_cloud += 1
            return
        self.cloud_object += int(np.count_nonzero(cloud_labels == LABEL_OBJECT))
        self.cloud_points += len(cloud_labels)

    def precision_recall(self) -> tuple[float, float]:
        return self.tp / max(self.tp + self.fp, 1), self.tp / max(self.visible, 1)

    def row(self) -> str:
        precision, recall = self.precision_recall()
        cloud = self.cloud_object / max(self.cloud_points, 1)
        return f"{precision:9.4f} {recall:9.4f} {cloud:9.4f} {self.no_cloud:6d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--episodes", type=int, default=2, help="per mount")
    parser.add_argument("--steps", type=int, default=120, help="policy steps per episode (a continuous stream: "
                                                               "the hand alignment starts cold once per episode)")
    parser.add_argument("--jitter", choices=("on", "off"), default="on", help="camera calibration jitter")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over all frames")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: no pinning)")
    parser.add_argument("--voxel", type=float, default=0.004, help="Open3D voxel size (m)")
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument("--config", type=Path, help="perception YAML (default config/perception.yaml)")
    args = parser.parse_args(argv)
    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    config = load_perception_config(args.config)
    load_before = os.getloadavg()
    sequences = render_frames(args.width, args.height, args.episodes, args.steps, args.jitter == "on", args.seed)
    frames = [f for seq in sequences for f in seq]
    ours = ObjectCloudExtractor(config)
    baselines = {"open3d": Open3DPipeline(config, args.voxel),
                 "open3d+hand": Open3DPipeline(config, args.voxel, remove_hand=True)}

    # accuracy (untimed); "ours without regrow" shows what contact regrow adds
    import dataclasses
    no_regrow = ObjectCloudExtractor(dataclasses.replace(
        config, contact_regrow=dataclasses.replace(config.contact_regrow, steps=0)))
    regrow_added = {"object": 0, "other": 0}
    tally = {"ours": Tally(), "ours without regrow": Tally(), "open3d": Tally(), "open3d+hand": Tally()}
    occlusion = []
    correction_mm = []
    for seq in sequences:
        previous = plain_previous = None
        for frame in seq:
            visible = visible_object_pixels(frame, config)
            result = ours.extract(frame["depth"], frame["intrinsics"], frame["extrinsic"], frame["joints"],
                                  want_mask=True, previous_alignment=previous)
            previous = result.alignment
            if result.alignment is not None and result.alignment.ok:
                correction_mm.append(result.alignment.translation_mm)
            grid = np.zeros_like(visible)
            pixels = ours.pixel_grid(frame["intrinsics"], frame["extrinsic"])
            grid[pixels.rows, pixels.cols] = True
            tally["ours"].add_pixels(result.object_mask, frame["labels"], visible & grid)
            tally["ours"].add_cloud(point_labels(result.points, frame) if result.ok else None)
            plain = no_regrow.extract(frame["depth"], frame["intrinsics"], frame["extrinsic"], frame["joints"],
                                      want_mask=True, previous_alignment=plain_previous)
            plain_previous = plain.alignment
            tally["ours without regrow"].add_pixels(plain.object_mask, frame["labels"], visible & grid)
            added = result.object_mask & ~plain.object_mask
            regrow_added["object"] += int(np.count_nonzero(added & (frame["labels"] == LABEL_OBJECT)))
            regrow_added["other"] += int(np.count_nonzero(added & (frame["labels"] != LABEL_OBJECT)))
            for name, baseline in baselines.items():
                kept, cloud_labels = baseline.traced(frame["depth"], frame["intrinsics"], frame["extrinsic"],
                                                     frame["joints"], frame["labels"])
                mask = np.zeros(frame["depth"].size, dtype=bool)
                mask[kept] = True
                tally[name].add_pixels(mask.reshape(visible.shape), frame["labels"], visible)
                tally[name].add_cloud(cloud_labels)
            occlusion.append(occluded_boundary_fraction(frame))

    # speed: each pipeline runs a whole pass over the frames (its caches warm, as a node between frames),
    # the order rotating every repeat so slow changes in machine load hit all alike
    times = {name: [] for name in ("ours", "ours cold", "open3d", "open3d+hand")}
    cpu = {name: [] for name in times}
    stages: dict[str, list[float]] = {}
    names = list(times)
    for repeat in range(args.repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            for seq in sequences:
                previous = None
                for frame in seq:
                    inputs = (frame["depth"], frame["intrinsics"], frame["extrinsic"], frame["joints"])
                    c0, t0 = time.process_time(), time.perf_counter()
                    if name == "ours":
                        result = ours.extract(*inputs, previous_alignment=previous)
                        previous = result.alignment
                        for stage, ms in result.timings_ms.items():
                            stages.setdefault(stage, []).append(ms)
                    elif name == "ours cold":
                        ours.extract(*inputs)
                    else:
                        baselines[name].run(*inputs)
                    times[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.process_time() - c0)
    load_after = os.getloadavg()

    stride = config.pixel_stride(args.width)
    occlusion = np.array(occlusion)
    print(f"frames: {len(frames)} at {args.width}x{args.height} ({len(sequences)} episodes, palm_up + palm_down), "
          f"randomization on, camera jitter {args.jitter}; ours reads every {stride}. pixel "
          f"(working_width {config.working_width}); open3d voxel {args.voxel * 1e3:.1f} mm")
    print(f"hand in front of the object: {occlusion.mean() * 100:.0f}% of the object outline on average, "
          f">10% in {np.mean(occlusion > 0.1) * 100:.0f}% of frames; hand alignment correction "
          f"median {np.median(correction_mm) if correction_mm else float('nan'):.1f} mm")
    print(f"one core (pinned to {args.core}), load average {load_before[0]:.1f} -> {load_after[0]:.1f}, "
          f"{args.repeats} timed passes")
    print(f"{'pipeline':12s} {'p50 ms':>7s} {'p99 ms':>7s} {'cpu p50':>8s} {'cpu p99':>8s} "
          f"{'pixel P':>9s} {'pixel R':>9s} {'cloud P':>9s} {'no cloud':>6s}")
    for name in times:
        ms, cpu_ms = np.array(times[name]) * 1e3, np.array(cpu[name]) * 1e3
        acc = tally["ours" if name.startswith("ours") else name].row()
        print(f"{name:12s} {np.median(ms):7.2f} {np.quantile(ms, 0.99):7.2f} {np.median(cpu_ms):8.2f} "
              f"{np.quantile(cpu_ms, 0.99):8.2f} {acc}")
    plain_p, plain_r = tally["ours without regrow"].precision_recall()
    print(f"ours without contact regrow: pixel P {plain_p:.4f} R {plain_r:.4f}; regrow added "
          f"{regrow_added['object']} object pixels and {regrow_added['other']} others")
    print("ours per stage, p50 / p99 ms: " + ", ".join(
        f"{stage} {np.median(ms):.2f} / {np.quantile(ms, 0.99):.2f}" for stage, ms in stages.items()))
    for clock, table in (("wall", times), ("cpu", cpu)):
        o3d_ms, ours_ms = np.array(table["open3d"]), np.array(table["ours"])
        print(f"ratio open3d / ours ({clock}): p50 {np.median(o3d_ms) / np.median(ours_ms):.1f}x, "
              f"p99 {np.quantile(o3d_ms, 0.99) / np.quantile(ours_ms, 0.99):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
