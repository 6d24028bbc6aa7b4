"""The XML frontend: launch files as a tree of entities that know their file and line.

``parse_xml`` reads a file with expat (line numbers, no lxml) into :class:`XmlElement` s;
``parse_template`` turns an attribute value into text and :class:`Substitution` parts,
following the launch frontend grammar (launch/frontend/grammar.lark); ``check_entity``
rejects attributes, children and text that ``ros2 launch`` would reject. Nothing here
evaluates anything: that is :mod:`.substitutions` and :mod:`.actions`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, Union
from xml.parsers import expat

from .errors import LaunchError

# attributes ros2 launch knows but we refuse, with the reason (instead of "unknown attribute")
UNSUPPORTED_ATTRIBUTES = {"shell": "shell=true is not supported by dexterity-ros launch"}

# ------------------------------------------------------------- XML parsing


@dataclass
class XmlElement:
    """One tag of a launch file with the location it came from."""

    tag: str
    attrib: dict[str, str]
    file: Path
    line: int
    children: list["XmlElement"] = field(default_factory=list)
    text: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def error(self, message: str) -> LaunchError:
        """A LaunchError located at this tag."""
        return LaunchError(message, self.file, self.line)


def parse_xml(path: Path | str) -> XmlElement:
    """Parse a launch file into :class:`XmlElement` s (expat: line numbers, no lxml)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LaunchError("launch file not found", path) from None
    except OSError as exc:
        raise LaunchError(f"cannot read launch file: {exc.strerror}", path) from None
    parser = expat.ParserCreate()
    parser.buffer_text = True
    stack: list[XmlElement] = []
    roots: list[XmlElement] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = XmlElement(tag, dict(attrs), path, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise LaunchError(f"XML syntax error: {expat.ErrorString(exc.code)} (column {exc.offset + 1})",
                          path, exc.lineno) from None
    root = roots[0]
    if root.tag != "launch":
        raise LaunchError(f"root tag must be <launch>, found <{root.tag}>", path, root.line)
    return root


def check_entity(element: XmlElement, attrs: Iterable[str], children: Iterable[str],
                 any_action_children: bool = False) -> None:
    """LaunchError for an attribute not in ``attrs``, a child tag not in ``children`` (unless
    ``any_action_children``: the actions check themselves) or text inside the tag."""
    allowed = set(attrs)
    for attr in element.attrib:
        if attr not in allowed:
            hint = UNSUPPORTED_ATTRIBUTES.get(attr)
            raise element.error(hint if hint else
                                f"unknown attribute '{attr}' in <{element.tag}> "
                                f"(allowed: {', '.join(sorted(allowed))})")
    allowed_children = set(children)
    for child in element.children:
        if child.tag in allowed_children or any_action_children:
            continue
        raise child.error(f"unexpected <{child.tag}> inside <{element.tag}>"
                          + (f" (allowed: {', '.join(sorted(allowed_children))})" if allowed_children
                             else f" (<{element.tag}> takes no children)"))
    if element.text.strip():
        raise element.error(f"unexpected text {element.text.strip()[:40]!r} inside <{element.tag}>"
                            " (launch files use attributes, e.g. value=\"...\")")


# ------------------------------------------------- substitution grammar


@dataclass(frozen=True)
class Substitution:
    """``$(name arg ...)``; every argument is itself a template (text and substitutions)."""

    name: str
    args: tuple[tuple["Part", ...], ...]


Part = Union[str, Substitution]
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _TemplateParser:
    """Recursive descent over the launch frontend substitution grammar (launch/frontend/grammar.lark).

    Top-level text keeps quotes literally; ``\\x`` escapes any character; arguments are
    separated by spaces and may be quoted with '...' or "..." to contain spaces.
    """

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str) -> ValueError:
        return ValueError(f"{message} at column {self.pos + 1} of {self.text!r}")

    def template(self) -> tuple[Part, ...]:
        parts = self._run(terminators="", quote=None)
        if self.pos != len(self.text):  # pragma: no cover - _run consumes everything at top level
            raise self.error("unexpected character")
        return parts

    def _run(self, terminators: str, quote: str | None) -> tuple[Part, ...]:
        parts: list[Part] = []
        buf: list[str] = []
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < n:
                buf.append(text[self.pos + 1])
                self.pos += 2
                continue
            if ch == "$" and text.startswith("$(", self.pos):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self._substitution())
                continue
            if ch in terminators:
                break
            if quote is None and terminators and ch in "'\"(":
                raise self.error(f"unexpected {ch!r} inside a substitution argument (quote the argument)")
            buf.append(ch)
            self.pos += 1
        if buf:
            parts.append("".join(buf))
        return tuple(parts)

    def _substitution(self) -> Substitution:
        start = self.pos
        self.pos += 2
        match = _IDENTIFIER.match(self.text, self.pos)
        if not match:
            raise self.error("expected a substitution name after '$('")
        name = match.group(0)
        self.pos = match.end()
        args: list[tuple[Part, ...]] = []
        while True:
            if self.pos >= len(self.text):
                self.pos = start
                raise self.error("unterminated substitution '$(' (missing ')')")
            ch = self.text[self.pos]
            if ch == ")":
                self.pos += 1
                return Substitution(name, tuple(args))
            if ch != " ":
                raise self.error(f"unexpected {ch!r} in substitution '{name}'")
            while self.pos < len(self.text) and self.text[self.pos] == " ":
                self.pos += 1
            if self.pos < len(self.text) and self.text[self.pos] == ")":
                continue
            args.append(self._argument())

    def _argument(self) -> tuple[Part, ...]:
        ch = self.text[self.pos] if self.pos < len(self.text) else ""
        if ch in ("'", '"'):
            self.pos += 1
            parts = self._run(terminators=ch, quote=ch)
            if self.pos >= len(self.text):
                raise self.error(f"unterminated quoted argument (missing {ch})")
            self.pos += 1
            return parts or ("",)
        return self._run(terminators=" )", quote=None)


def parse_template(text: str) -> tuple[Part, ...]:
    """Parse an attribute value into text and :class:`Substitution` parts (raises ValueError)."""
    if not text:
        return ("",)
    return _TemplateParser(text).template() or ("",)


def has_substitutions(parts: Sequence[Part]) -> bool:
    return any(isinstance(p, Substitution) for p in parts)
