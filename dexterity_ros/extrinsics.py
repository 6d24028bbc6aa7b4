"""Camera -> palm extrinsic: load, validate, save (format in docs/calibration.md)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .config import ConfigError, from_dict, load_yaml
from .geometry import TransformError, make_transform, matrix_to_quat, quat_to_matrix, validate_rigid
from .topics import CAMERA_FRAME, PALM_FRAME


@dataclass(frozen=True)
class ExtrinsicFile:
    parent_frame: str = PALM_FRAME
    child_frame: str = CAMERA_FRAME
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Extrinsic:
    """``matrix`` maps camera-frame points into the parent (palm) frame."""

    matrix: np.ndarray
    parent_frame: str = PALM_FRAME
    child_frame: str = CAMERA_FRAME

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", validate_rigid(self.matrix, name="camera->palm extrinsic"))

    @property
    def rotation(self) -> np.ndarray:
        return self.matrix[:3, :3]

    @property
    def translation(self) -> np.ndarray:
        return self.matrix[:3, 3]

    def to_file(self) -> ExtrinsicFile:
        return ExtrinsicFile(self.parent_frame, self.child_frame,
                             tuple(float(v) for v in self.translation),
                             tuple(float(v) for v in matrix_to_quat(self.rotation)))


def extrinsic_from_file(data: ExtrinsicFile, quaternion_tolerance: float = 1e-3) -> Extrinsic:
    q = np.asarray(data.rotation, dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or abs(norm - 1.0) > quaternion_tolerance:
        raise TransformError(
            f"extrinsic rotation {list(data.rotation)} is not a unit quaternion (norm {norm:.6f}); "
            "a rotation must be orthonormal")
    return Extrinsic(make_transform(quat_to_matrix(q), np.asarray(data.translation)),
                     data.parent_frame, data.child_frame)


def load_extrinsic(path: str | Path) -> Extrinsic:
    """Read and validate an extrinsic YAML; errors name the file."""
    try:
        data = from_dict(ExtrinsicFile, load_yaml(path))
        return extrinsic_from_file(data)
    except (ConfigError, TransformError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_extrinsic(extrinsic: Extrinsic, path: str | Path) -> None:
    f = extrinsic.to_file()
    text = yaml.safe_dump({"parent_frame": f.parent_frame, "child_frame": f.child_frame,
                           "translation": list(f.translation), "rotation": list(f.rotation)},
                          sort_keys=False)
    Path(path).write_text("# camera -> palm extrinsic (docs/calibration.md)\n" + text)
