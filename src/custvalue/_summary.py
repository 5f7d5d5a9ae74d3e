"""One summary object for every result: prints as text, shows as HTML in notebooks.

statsmodels' convention: ``print(result.summary())`` in a terminal, ``result.summary()`` as the
last expression of a notebook cell renders a table. :func:`build_summary` lays out a title,
key/value information, tables and notes the same way for every result of the package.
"""

from __future__ import annotations

import html as _html
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

__all__ = ["Summary", "build_summary"]


class Summary:
    """Text and HTML views of one result.

    Parameters
    ----------
    text : str
        What ``str()`` / ``print()`` show.
    html : str
        What Jupyter shows (``_repr_html_``).
    title : str, optional
    """

    def __init__(self, text: str, html: str, title: str = "") -> None:
        self.text = text
        self.html = html
        self.title = title

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.html


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def build_summary(
    title: str,
    info: Sequence[tuple[str, Any]] = (),
    tables: Sequence[tuple[str, pd.DataFrame]] = (),
    notes: Sequence[str] = (),
    float_format: Callable[[float], str] = lambda v: f"{v:,.4g}",
) -> Summary:
    """A :class:`Summary` laid out as title, key/value lines, captioned tables and notes."""
    rows = [(str(k), _fmt_value(v)) for k, v in info]
    width = max((len(k) for k, _ in rows), default=0)
    lines = [title, "=" * len(title)]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    for caption, table in tables:
        lines += ["", caption] if caption else [""]
        lines.append(table.to_string(float_format=float_format))
    for note in notes:
        lines += ["", f"Note: {note}"]
    info_html = "".join(
        f"<tr><th style='text-align:left'>{_html.escape(k)}</th><td>{_html.escape(v)}</td></tr>"
        for k, v in rows
    )
    parts = [f"<div><h4>{_html.escape(title)}</h4>"]
    if rows:
        parts.append(f"<table>{info_html}</table>")
    for caption, table in tables:
        if caption:
            parts.append(f"<p>{_html.escape(caption)}</p>")
        parts.append(table.to_html(float_format=float_format))
    parts += [f"<p><em>Note:</em> {_html.escape(n)}</p>" for n in notes]
    parts.append("</div>")
    return Summary("\n".join(lines), "".join(parts), title)
