"""Message definitions for bag files: the text ``ros2 bag`` stores next to each type.

rosbags' Kilted typestore knows the standard interfaces; any other type is
built from the ``.msg`` files its interface package installs (the ros-*
wheels put them under ``<prefix>/share/<pkg>/msg``). A type whose
definition cannot be found is recorded with an empty definition (readers
that have the type installed still decode it), and the caller warns.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import TypesysError


@dataclass(frozen=True)
class MessageDefinition:
    type_name: str
    encoding: str      # 'ros2msg' (or '' when unknown)
    text: str          # full definition with dependencies, as rosbag2 stores it
    type_hash: str     # RIHS01 type description hash ('' when unknown)

    @property
    def known(self) -> bool:
        return bool(self.text)


def share_directories() -> list[Path]:
    """Where interface packages install their .msg files (venv prefix, AMENT_PREFIX_PATH)."""
    prefixes = [sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)]
    seen: list[Path] = []
    for prefix in prefixes:
        if prefix and (Path(prefix) / "share").is_dir() and Path(prefix) / "share" not in seen:
            seen.append(Path(prefix) / "share")
    return seen


def _referenced_types(node) -> Iterable[str]:
    if isinstance(node, str):
        if node.count("/") == 2:
            yield node
    elif isinstance(node, (tuple, list)):
        for item in node:
            yield from _referenced_types(item)


class DefinitionLibrary:
    """Looks up definitions in the typestore, then in installed .msg files."""

    def __init__(self, search_paths: Iterable[Path] | None = None):
        self.store = get_typestore(Stores.ROS2_KILTED)     # a private copy: we may register types
        self.search_paths = list(search_paths) if search_paths is not None else share_directories()

    def _msg_file(self, type_name: str) -> Path | None:
        package, kind, name = type_name.split("/")
        for share in self.search_paths:
            candidate = share / package / kind / f"{name}.msg"
            if candidate.is_file():
                return candidate
        return None

    def _load(self, type_name: str, depth: int = 0) -> bool:
        if type_name in self.store.types:
            return True
        if depth > 32 or type_name.count("/") != 2:
            return False
        path = self._msg_file(type_name)
        if path is None:
            return False
        try:
            types = get_types_from_msg(path.read_text(), type_name)
        except (TypesysError, OSError, ValueError):
            return False
        for name, (_, fields) in types.items():
            for dependency in set(_referenced_types(fields)):
                if dependency != name and not self._load(dependency, depth + 1):
                    return False
        try:
            self.store.register(types)
        except TypesysError:
            return False
        return True

    def lookup(self, type_name: str) -> MessageDefinition:
        if self._load(type_name):
            try:
                text, _ = self.store.generate_msgdef(type_name, ros_version=2)
                return MessageDefinition(type_name, "ros2msg", text, self.store.hash_rihs01(type_name))
            except (TypesysError, KeyError, ValueError):
                pass
        return MessageDefinition(type_name, "", "", "")


@lru_cache(maxsize=None)
def _default_library() -> DefinitionLibrary:
    return DefinitionLibrary()


def message_definition(type_name: str) -> MessageDefinition:
    """Definition of ``type_name`` (empty text when it cannot be found: record anyway, and warn)."""
    return _default_library().lookup(type_name)
