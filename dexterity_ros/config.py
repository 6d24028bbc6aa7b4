"""Typed configuration: dataclasses filled from YAML, unknown keys rejected.

A typo in a config key must fail loudly at start-up, not silently fall back to
a default on the robot. Every config in the package is a (frozen) dataclass
built through :func:`from_dict`, which checks keys and types recursively and
names the offending path in its error.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or mapping does not match its schema."""


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning I/O and syntax problems into ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("r", encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc


def load_config(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Load dataclass ``cls`` from a YAML file (optionally one top-level section)."""
    data = load_yaml(path)
    if data is None:
        data = {}
    if section is not None:
        if not isinstance(data, Mapping) or section not in data:
            raise ConfigError(f"{path}: missing top-level section '{section}'")
        data = data[section]
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def merge_over(base: Any, variant: Any) -> Any:
    """``variant`` deep-merged over ``base``: mappings merge key by key, anything else replaces."""
    if isinstance(base, Mapping) and isinstance(variant, Mapping):
        merged = dict(base)
        for key, value in variant.items():
            merged[key] = merge_over(base[key], value) if key in base else value
        return merged
    return variant


def load_section_with_base(path: str | Path, section: str, _chain: tuple[Path, ...] = ()) -> Any:
    """A YAML file's ``section``, where ``section.base: OTHER.yaml`` (relative to the file) inherits OTHER's.

    A variant states only what differs (as Isaac Lab's config inheritance and
    Playground's env configs do); bases may chain, a cycle is an error.
    """
    path = Path(path).resolve()
    if path in _chain:
        raise ConfigError(f"{path}: 'base' chain loops: {' -> '.join(str(p) for p in (*_chain, path))}")
    data = load_yaml(path)
    if not isinstance(data, Mapping) or section not in data:
        raise ConfigError(f"{path}: missing top-level section '{section}'")
    own = data[section] if data[section] is not None else {}
    if not isinstance(own, Mapping):
        raise ConfigError(f"{path}: section '{section}' must be a mapping")
    base = own.get("base")
    if base is None:
        return dict(own)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: '{section}.base' must name a YAML file, got {base!r}")
    inherited = load_section_with_base(path.parent / base, section, (*_chain, path))
    return merge_over(inherited, {k: v for k, v in own.items() if k != "base"})


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    where = path or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], f"{path + '.' if path else ''}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key '{name}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        text, section = str(exc), where.rsplit(".", 1)[-1]
        if text.startswith(section + ":"):       # the class named its own section already: say it once
            text = text[len(section) + 1:].lstrip()
        raise ConfigError(f"{where}: {text}") from exc


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: {value!r} matches none of {args}: {errors}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(
                f"{path}: {value!r} is not one of {[m.value for m in tp]}") from None
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        key_t, val_t = args if args else (Any, Any)
        return {_coerce(key_t, k, f"{path}.<key>"): _coerce(val_t, v, f"{path}.{k}")
                for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain YAML/JSON-friendly structure (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def config_hash(obj: Any) -> str:
    """Stable 16-hex hash of every field of a config (sha256 of its sorted, compact JSON)."""
    text = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def param(default: Any, description: str, ros_name: str | None = None, read_only: bool = False,
          **constraints: float) -> Any:
    """A dataclass field documented for ROS parameter declaration and the README.

    ``ros_name`` overrides the parameter name (realsense-ros style dotted names);
    ``constraints`` may give ``min``/``max`` for numeric parameters.
    """
    metadata = {"description": description, "ros_name": ros_name, "read_only": read_only,
                "constraints": constraints}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def describe_fields(cls: type) -> list[tuple[str, Any, str]]:
    """(parameter name, default, description) for each documented field of ``cls``."""
    rows = []
    for f in dataclasses.fields(cls):
        if "description" not in f.metadata:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((f.metadata.get("ros_name") or f.name, default, f.metadata["description"]))
    return rows
