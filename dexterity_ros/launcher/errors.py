"""The one error type of the launcher: a launch file problem located as ``file:line``.

Every module raises :class:`LaunchError` for what ``ros2 launch`` would reject; an error
inside an included file also lists the ``<include>`` tags that led to it (innermost first).
"""
from __future__ import annotations

from pathlib import Path


class LaunchError(Exception):
    """A launch file problem, located as ``file:line`` (plus the include chain)."""

    def __init__(self, message: str, file: Path | str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = Path(file) if file is not None else None
        self.line = line
        self.included_from: list[tuple[Path, int]] = []

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        chain = "".join(f"\n  included from {f}:{n}" for f, n in self.included_from)
        return f"{where}{self.message}{chain}"
