"""metadata.yaml of a rosbag2 directory: parsed, built and written the way rosbag2 does.

rosbag2 (and `ros2 bag info/play`) trusts metadata.yaml for the list of
storage files, topics, QoS and counts; a recorder writes it when it closes,
so a killed recording has none and `reindex` rebuilds it from the storage.
Versions 4..9 are read; version 9 (Jazzy and later) is written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rosbags.interfaces import Qos
from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.metadata import dump_qos_v9, parse_qos

METADATA_FILE = "metadata.yaml"
WRITTEN_VERSION = 9
ROS_DISTRO = "kilted"


class MetadataError(ValueError):
    """metadata.yaml is unreadable or lacks a required key."""


@dataclass
class TopicEntry:
    """One ``topics_with_message_count`` entry (a topic may have several, one per type/QoS set)."""

    name: str
    type_name: str
    count: int
    qos: list[Qos] = field(default_factory=list)
    serialization_format: str = "cdr"
    type_hash: str = ""


@dataclass
class FileEntry:
    path: str
    start_ns: int
    duration_ns: int
    count: int


@dataclass
class BagMetadata:
    storage: str                      # 'mcap' or 'sqlite3'
    files: list[str]                  # relative storage file names, in order
    topics: list[TopicEntry]
    start_ns: int = 0
    duration_ns: int = 0
    count: int = 0
    compression_format: str = ""      # 'zstd' or ''
    compression_mode: str = ""        # 'MESSAGE', 'FILE' or '' (MCAP chunk compression is a storage detail)
    file_entries: list[FileEntry] = field(default_factory=list)
    custom_data: dict[str, str] = field(default_factory=dict)
    ros_distro: str = ROS_DISTRO
    version: int = WRITTEN_VERSION

    def topic_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.topics:
            counts[t.name] = counts.get(t.name, 0) + t.count
        return counts

    def to_dict(self) -> dict[str, Any]:
        info = {
            "version": self.version,
            "storage_identifier": self.storage,
            "duration": {"nanoseconds": int(self.duration_ns)},
            "starting_time": {"nanoseconds_since_epoch": int(self.start_ns)},
            "message_count": int(self.count),
            "topics_with_message_count": [
                {"topic_metadata": {"name": t.name, "type": t.type_name,
                                    "serialization_format": t.serialization_format,
                                    "offered_qos_profiles": [dict(q) for q in dump_qos_v9(list(t.qos))],
                                    "type_description_hash": t.type_hash},
                 "message_count": int(t.count)}
                for t in self.topics],
            "compression_format": self.compression_format,
            "compression_mode": self.compression_mode,
            "relative_file_paths": list(self.files),
            "files": [{"path": f.path, "starting_time": {"nanoseconds_since_epoch": int(f.start_ns)},
                       "duration": {"nanoseconds": int(f.duration_ns)}, "message_count": int(f.count)}
                      for f in self.file_entries],
            "custom_data": dict(self.custom_data),
            "ros_distro": self.ros_distro,
        }
        return {"rosbag2_bagfile_information": info}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


def parse_metadata(text: str) -> BagMetadata:
    """metadata.yaml text -> BagMetadata; MetadataError names what is wrong."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MetadataError(f"not valid YAML ({exc})") from None
    except RecursionError:
        raise MetadataError("not valid YAML (nested too deeply)") from None
    if not isinstance(document, dict) or "rosbag2_bagfile_information" not in document:
        raise MetadataError("no 'rosbag2_bagfile_information' section (not a rosbag2 metadata file)")
    info = document["rosbag2_bagfile_information"]
    try:
        version = int(info["version"])
        if version > 9:
            raise MetadataError(f"rosbag2 metadata version {version} is newer than this tool reads (<= 9)")
        topics = []
        for entry in info.get("topics_with_message_count") or []:
            meta = entry["topic_metadata"]
            try:
                qos = parse_qos(meta.get("offered_qos_profiles") or [])
            except (ReaderError, KeyError, TypeError) as exc:
                raise MetadataError(f"topic {meta.get('name')}: unreadable offered_qos_profiles ({exc})") from None
            topics.append(TopicEntry(meta["name"], meta["type"], int(entry.get("message_count", 0)), qos,
                                     meta.get("serialization_format", "cdr"),
                                     meta.get("type_description_hash", "") or ""))
        listed = info["relative_file_paths"]
        if not isinstance(listed, list) or not all(isinstance(p, str) and Path(p).name for p in listed):
            raise MetadataError(f"relative_file_paths must be a list of file names, got {listed!r:.200}")
        files = [Path(p).name for p in listed]
        file_entries = [FileEntry(Path(str(f["path"])).name, int(f["starting_time"]["nanoseconds_since_epoch"]),
                                  int(f["duration"]["nanoseconds"]), int(f["message_count"]))
                        for f in info.get("files") or []]
        return BagMetadata(
            storage=str(info["storage_identifier"]), files=files, topics=topics,
            start_ns=int(info["starting_time"]["nanoseconds_since_epoch"]),
            duration_ns=int(info["duration"]["nanoseconds"]), count=int(info["message_count"]),
            compression_format=str(info.get("compression_format") or ""),
            compression_mode=str(info.get("compression_mode") or ""),
            file_entries=file_entries, custom_data={str(k): str(v) for k, v in (info.get("custom_data") or {}).items()},
            ros_distro=str(info.get("ros_distro") or ""), version=version)
    except MetadataError:
        raise
    except KeyError as exc:
        raise MetadataError(f"required key {exc} is missing") from None
    except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
        raise MetadataError(f"invalid value ({exc})") from None


MAX_METADATA_BYTES = 64 << 20     # a metadata.yaml is kilobytes; a bigger one is not one


def read_metadata(directory: Path) -> BagMetadata:
    path = Path(directory) / METADATA_FILE
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise MetadataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError(f"{path} is larger than {MAX_METADATA_BYTES >> 20} MiB (not a rosbag2 metadata file)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): a binary or "
                            "damaged file, not a rosbag2 metadata file") from None
    return parse_metadata(text)


def write_metadata(directory: Path, metadata: BagMetadata) -> Path:
    """Write metadata.yaml atomically (a reader never sees half a file)."""
    path = Path(directory) / METADATA_FILE
    tmp = path.with_suffix(".yaml.tmp")
    with open(tmp, "w") as f:
        f.write(metadata.to_yaml())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
