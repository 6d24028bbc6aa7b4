"""``<param>`` s and ``<set_parameter>``: values typed like launch_ros, parameter files.

A value is read as YAML (``value="3"`` is an int, ``value="[1, 2]"`` a list) unless
``type=...`` or ``value-sep=...`` says otherwise; substitutions are performed before the
typing, so ``$(var x)`` gets the type of what it expands to. Lists must be uniform, like
ROS 2 parameters. ``<param from="file.yaml">`` passes the file on (``allow_substs`` writes a
substituted copy next to the generated parameter files).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .frontend import XmlElement, check_entity, has_substitutions

if TYPE_CHECKING:  # pragma: no cover
    from .context import LaunchContext

PARAM_TYPES: dict[str, tuple[type, bool]] = {
    "str": (str, False), "int": (int, False), "float": (float, False), "bool": (bool, False),
    "list_of_str": (str, True), "list_of_int": (int, True), "list_of_float": (float, True),
    "list_of_bool": (bool, True),
}


def params_file(ctx: LaunchContext, element: XmlElement, label: str, index: int) -> Path:
    check_entity(element, {"from", "allow_substs"}, ())
    path_text = ctx.attr(element, "from", required=True) or ""
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        raise element.error(f"parameter file not found: {path_text}")
    allow = ctx.attr(element, "allow_substs")
    if allow is not None and ctx.truth(element, allow, "allow_substs"):
        text = path.read_text()
        substituted = ctx.evaluate(element, ctx.template(element, "from (file contents)", text))
        out = ctx.params_dir / f"{label}-{index}-{path.name}"
        out.write_text(substituted)
        return out
    return path


def nested_params(ctx: LaunchContext, element: XmlElement, prefix: str) -> dict[str, Any]:
    if "from" in element.attrib:
        raise element.error("<param from=...> cannot be nested inside another <param>")
    nested = [c for c in element.children if c.tag == "param"]
    attrs = {"name", "value", "value-sep", "type"} if not nested else {"name"}
    check_entity(element, attrs, {"param"})
    name = ctx.attr(element, "name")
    if name is None:
        raise element.error("<param> needs either name=... (with value=... or nested <param>) "
                            "or from=\"file.yaml\"")
    full = f"{prefix}.{name}" if prefix else name
    if nested:
        result: dict[str, Any] = {}
        for child in nested:
            result.update(nested_params(ctx, child, full))
        return result
    if "value" not in element.attrib:
        raise element.error(f"<param name=\"{name}\"> needs a value attribute or nested <param>s")
    return {full: param_value(ctx, element, full)}


def param_value(ctx: LaunchContext, element: XmlElement, name: str) -> Any:
    """Type a parameter value like launch_ros: YAML rules unless type=... says otherwise."""
    raw = element.attrib["value"]
    sep = element.attrib.get("value-sep")
    type_id = element.attrib.get("type")
    scalar_type: type | None = None
    is_list = False
    if type_id is not None:
        if type_id not in PARAM_TYPES:
            raise element.error(f"unknown parameter type '{type_id}' "
                                f"(one of {', '.join(PARAM_TYPES)})")
        scalar_type, is_list = PARAM_TYPES[type_id]
    if sep is not None:
        if not sep:
            raise element.error("value-sep must not be empty")
        items = [typed_item(ctx, element, name, item, scalar_type, allow_list=False) for item in raw.split(sep)]
        return uniform(element, name, items)
    if is_list:
        loaded = yaml_value(element, name, raw)
        if not isinstance(loaded, list):
            raise element.error(f"parameter '{name}': type {type_id} needs a list like [a, b]")
        items = [typed_item(ctx, element, name, item if isinstance(item, str) else yaml_inline(item),
                            scalar_type, allow_list=False) for item in loaded]
        return uniform(element, name, items)
    if scalar_type is not None and scalar_type is not str:
        return convert(element, name, ctx.evaluate(element, ctx.template(element, "value", raw)),
                       scalar_type)
    return typed_item(ctx, element, name, raw, scalar_type, allow_list=True)


def typed_item(ctx: LaunchContext, element: XmlElement, name: str, text: str, scalar_type: type | None,
               allow_list: bool) -> Any:
    if scalar_type is str:
        return ctx.evaluate(element, ctx.template(element, "value", text))
    if scalar_type is not None:
        return convert(element, name, ctx.evaluate(element, ctx.template(element, "value", text)),
                       scalar_type)
    loaded = yaml_value(element, name, text)
    if isinstance(loaded, list):
        if not allow_list:
            raise element.error(f"parameter '{name}': nested lists are not allowed")
        return uniform(element, name, [substituted(ctx, element, name, x) if isinstance(x, str) else x
                                       for x in loaded])
    if isinstance(loaded, str):
        return substituted(ctx, element, name, loaded)
    return loaded


def substituted(ctx: LaunchContext, element: XmlElement, name: str, text: str) -> Any:
    parts = ctx.template(element, "value", text)
    if not has_substitutions(parts):
        return "".join(p for p in parts if isinstance(p, str))
    value = ctx.evaluate(element, parts)
    if value == "":
        return ""
    loaded = yaml_value(element, name, value)
    if isinstance(loaded, list):
        return uniform(element, name, loaded)
    return loaded


def yaml_value(element: XmlElement, name: str, text: str) -> Any:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise element.error(f"parameter '{name}': value {text!r} is not valid YAML "
                            f"({str(exc).splitlines()[0]}); quote strings like value=\"'...'\"") from None
    if loaded is None:
        raise element.error(f"parameter '{name}': empty value; write value=\"''\" for an empty string")
    if isinstance(loaded, (bool, int, float, str)) or isinstance(loaded, list):
        return loaded
    raise element.error(f"parameter '{name}': value {text!r} is a {type(loaded).__name__}; "
                        "parameters are scalars or uniform lists")


def uniform(element: XmlElement, name: str, items: list[Any]) -> list[Any]:
    if items and not all(type(x) is type(items[0]) for x in items):
        raise element.error(f"parameter '{name}': list items must all have the same type, got "
                            + ", ".join(type(x).__name__ for x in items))
    if any(not isinstance(x, (bool, int, float, str)) for x in items):
        raise element.error(f"parameter '{name}': list items must be bool, int, float or str")
    return items


def convert(element: XmlElement, name: str, text: str, scalar_type: type) -> Any:
    try:
        if scalar_type is bool:
            value = yaml.safe_load(text)
            if not isinstance(value, bool):
                raise ValueError(text)
            return value
        return scalar_type(text)
    except (ValueError, yaml.YAMLError):
        raise element.error(f"parameter '{name}': {text!r} is not a valid {scalar_type.__name__}") from None


def yaml_inline(value: Any) -> str:
    """One-line YAML for ``-p name:=value`` and list items."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_inline(v) for v in value) + "]"
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip().removesuffix("\n...").strip()
