"""Small text helpers shared by the command line, the loaders and the reports.

Messages are one line and bounded: a long value (an exception text, a list of columns) is
shortened instead of dumped whole into an error message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["clip", "clip_list", "one_line"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(text: Any, limit: int = 600) -> str:
    """``text`` on one line: ANSI colours removed, whitespace runs collapsed, at most ``limit``.

    Parameters
    ----------
    text : object
        Anything; converted with ``str``.
    limit : int, default 600
        Longest result; longer text is cut and ends with ``...``.
    """
    line = " ".join(_ANSI.sub("", str(text)).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def clip(text: Any, limit: int = 120) -> str:
    """``str(text)`` cut to at most ``limit`` characters (ending ``...`` when cut)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip_list(items: Iterable[Any], limit: int = 10) -> str:
    """Up to ``limit`` items as ``'a', 'b', ... (and 12 more)``: never a whole array."""
    items = list(items)
    shown = ", ".join(clip(repr(i), 60) for i in items[:limit])
    more = len(items) - limit
    return shown + (f", ... ({more:,} more)" if more > 0 else "")
