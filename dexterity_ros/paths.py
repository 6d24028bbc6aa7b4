"""Where the package's data files (launch/, config/, models/) live.

Three layouts must work: a colcon install (ament index), a pip install
(``<prefix>/share/dexterity_ros``) and a source checkout (the repo root).
"""
from __future__ import annotations

import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

PACKAGE_NAME = "dexterity_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _looks_like_share(path: Path) -> bool:
    return (path / "launch").is_dir() and (path / "config").is_dir()


@lru_cache(maxsize=None)
def share_directory(package: str = PACKAGE_NAME) -> Path:
    """Return the share directory of ``package`` (``$(find-pkg-share pkg)``)."""
    if package == PACKAGE_NAME:
        override = os.environ.get("DEXTERITY_ROS_SHARE")
        if override:
            return Path(override)
        # Source checkout first: editing the repo must affect the next run.
        if _looks_like_share(_SOURCE_ROOT) and (_SOURCE_ROOT / "package.xml").is_file():
            return _SOURCE_ROOT
        # pip or colcon install: <prefix>/lib/pythonX.Y/site-packages/dexterity_ros -> <prefix>/share/
        here = Path(__file__).resolve().parent
        for prefix in (here.parents[3] if len(here.parents) > 3 else None, Path(sys.prefix)):
            if prefix is not None and _looks_like_share(prefix / "share" / package):
                return prefix / "share" / package
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(package))
    except Exception as exc:  # PackageNotFoundError or ament index missing
        raise FileNotFoundError(
            f"package '{package}' not found (no ament index entry and no "
            f"share directory under {sys.prefix})") from exc


def config_path(*parts: str) -> Path:
    return share_directory().joinpath("config", *parts)


def launch_path(*parts: str) -> Path:
    return share_directory().joinpath("launch", *parts)


def models_path(*parts: str) -> Path:
    return share_directory().joinpath("models", *parts)


def data_directory() -> Path:
    """Writable directory for generated data (demo bags); not part of share."""
    override = os.environ.get("DEXTERITY_ROS_DATA")
    if override:
        return Path(override)
    if (_SOURCE_ROOT / "package.xml").is_file():
        return _SOURCE_ROOT / "data"
    return Path.home() / ".cache" / PACKAGE_NAME


def robot_description_path() -> Path:
    """The Allegro description YAML shipped with the package (a copy of shared/)."""
    return config_path("robots", "allegro_right.yaml")


def write_bytes_atomically(output: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``output`` through a temp file + rename: readers never see a half-written file,
    and a failure leaves nothing behind (the exporter and the importers write models this way)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return output
