"""What report notebooks write and show: metrics, score exports, figures and number formatting.

Every helper here is called from a report notebook (or from its module's result object), so the
notebooks hold narrative only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ParameterError

__all__ = [
    "CURRENCY_SYMBOLS",
    "SCORE_COLUMNS",
    "Collapsed",
    "FitDescription",
    "Money",
    "atomic_write_text",
    "by_period_label",
    "export_scores",
    "jsonable",
    "say",
    "show_figure",
    "write_metrics",
]

#: Column order of the per-customer scores export; new columns are only ever appended.
SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "first_purchase",
    "last_purchase",
    "cohort",
    "n_orders",
    "total_spend",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "clv_lower",
    "clv_upper",
    "clv_decile",
    "heuristic_ltv",
)


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        with contextlib.suppress(Exception):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_metrics(
    output_dir: str | os.PathLike[str] | None, metrics: Mapping[str, Any]
) -> Path | None:
    """Write the headline numbers to ``output_dir/metrics.json`` (no-op when ``output_dir`` is None).

    Numpy scalars become Python numbers, timestamps ISO strings, NaN/inf ``null``.
    """
    if output_dir is None:
        return None
    path = Path(output_dir) / "metrics.json"
    atomic_write_text(path, json.dumps(jsonable(dict(metrics)), indent=2, sort_keys=False))
    return path


def show_figure(fig: Any = None, *, alt: str | None = None) -> None:
    """Display a matplotlib figure as PNG with alternative text, then close it.

    The alt text (default: the axes titles) travels in the output's metadata and becomes the
    ``alt`` attribute of the image in the HTML report, so screen readers and text-only views of
    the report say what each figure shows.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    fig = plt.gcf() if fig is None else fig
    if alt is None:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
        alt = "; ".join([t for t in (suptitle, *titles) if t]) or "figure"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"), metadata={"image/png": {"alt": alt}})


def export_scores(
    output_dir: str | os.PathLike[str] | None, scores: Any, *, name: str = "scores"
) -> dict[str, Path]:
    """Write per-customer scores as ``<name>.parquet`` and ``<name>.csv`` with stable columns.

    Columns listed in :data:`SCORE_COLUMNS` come first in that order (those present), then any
    others (attributes) in their existing order. ``customer_id`` is taken from the index when it
    is not a column. The caller's frame is not modified. Returns the written paths (empty when
    ``output_dir`` is None, e.g. when the notebook runs interactively).
    """
    import pandas as pd

    frame = pd.DataFrame(scores).copy()
    if "customer_id" not in frame.columns:
        frame = frame.reset_index()
        if "customer_id" not in frame.columns:
            frame = frame.rename(columns={frame.columns[0]: "customer_id"})
    first = [c for c in SCORE_COLUMNS if c in frame.columns]
    rest = [c for c in frame.columns if c not in first]
    frame = frame[first + rest]
    if output_dir is None:
        return {}
    out = Path(output_dir)
    paths = {"parquet": out / f"{name}.parquet", "csv": out / f"{name}.csv"}
    frame.to_parquet(paths["parquet"], index=False)
    frame.to_csv(paths["csv"], index=False)
    return paths



# --------------------------------------------------------------------------------------------
# money and numbers in the data's currency
# --------------------------------------------------------------------------------------------

#: Symbols of common ISO 4217 codes; any other three-letter code is written before the number.
CURRENCY_SYMBOLS: dict[str, str] = {
    "GBP": "£",
    "USD": "$",
    "EUR": "€",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "KRW": "₩",
    "AUD": "A$",
    "CAD": "C$",
    "BRL": "R$",
}
_ISO_CODE = re.compile(r"^[A-Z]{3}$")


@dataclasses.dataclass(frozen=True)
class Money:
    """Amounts written in the data's currency, never an assumed one.

    Parameters
    ----------
    currency : str, default ""
        An ISO 4217 code (``"GBP"`` gives ``£1,234``; a code without a known symbol, such as
        ``"SEK"``, gives ``SEK 1,234``), a symbol (``"£"``, ``"kr"``), or ``""`` for plain numbers
        in "currency units".

    Examples
    --------
    >>> money = Money("GBP")
    >>> money(1234.5), money(12.345), money.label
    ('£1,234', '£12.35', 'GBP')
    """

    currency: str = ""

    def __post_init__(self) -> None:
        text = str(self.currency).strip()
        if len(text) > 4 or any(ch.isdigit() or ch.isspace() for ch in text):
            raise ParameterError(
                f"currency {self.currency!r}: give an ISO code such as GBP or EUR, a symbol "
                "such as £, or nothing for plain numbers"
            )
        object.__setattr__(self, "currency", text)

    @property
    def prefix(self) -> str:
        """What is written before a number: a symbol, ``"SEK "``, or nothing."""
        code = self.currency
        if code.upper() in CURRENCY_SYMBOLS and _ISO_CODE.match(code.upper()):
            return CURRENCY_SYMBOLS[code.upper()]
        if _ISO_CODE.match(code):
            return code + " "
        return code

    @property
    def label(self) -> str:
        """The unit for axis labels and column notes: the code or symbol, else "currency units"."""
        return self.currency or "currency units"

    def __call__(self, amount: float, decimals: int | None = None) -> str:
        """``amount`` with its currency; whole units from 100 up, cents below (unless given)."""
        amount = float(amount)
        if decimals is None:
            decimals = 0 if abs(amount) >= 100 else 2
        sign = "-" if amount < 0 else ""
        return f"{sign}{self.prefix}{abs(amount):,.{decimals}f}"

    def formatter(self, decimals: int = 0) -> Callable[[Any], str]:
        """A function for ``DataFrame.style.format`` writing amounts with ``decimals`` places."""

        def fmt(value: Any) -> str:
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return ""
            return self(value, decimals)

        return fmt


# --------------------------------------------------------------------------------------------
# report text and tables
# --------------------------------------------------------------------------------------------


def say(text: str) -> None:
    """Show a paragraph of report text (Markdown; ``$`` is money here, never maths)."""
    from IPython.display import Markdown, display

    display(Markdown(text.replace("$", r"\$")))


def by_period_label(frame: Any, fmt: str = "%Y-%m") -> Any:
    """``frame`` with its date index written as text (acquisition cohorts as ``YYYY-MM``)."""
    return frame.set_axis([f"{d:{fmt}}" for d in frame.index])


@dataclasses.dataclass
class FitDescription:
    """A fitted model's summary for readers: estimates, "converged" in words, details collapsed.

    The optimiser's own message (e.g. ``CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH``),
    gradient norm and Hessian condition are technical detail: they go into a collapsed
    ``<details>`` section, never into the report's text.
    """

    name: str
    table: Any
    info: dict[str, Any]
    notes: list[str]

    @classmethod
    def of(cls, name: str, summary: Any) -> FitDescription:
        """From a model's :meth:`summary` (a ``ModelSummary``)."""
        return cls(name, summary.table, dict(summary.info), list(summary.notes))

    @property
    def status(self) -> str:
        """One plain sentence on how the fit went."""
        converged = self.info.get("converged")
        customers = self.info.get("customers")
        who = f" on {int(customers):,} customers" if customers is not None else ""
        if converged is None:
            return f"Parameters given, not fitted{who}."
        if converged:
            return f"Fitted{who}: the estimation converged."
        return (
            f"Fitted{who}, but the estimation did not fully converge: treat these estimates "
            "with care (details below)."
        )

    def __str__(self) -> str:
        lines = [self.name, self.status, "", self.table.to_string(float_format=lambda v: f"{v:.4g}")]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html as _html

        rows = "".join(
            f"<tr><th style='text-align:left'>{_html.escape(str(k))}</th>"
            f"<td>{_html.escape(f'{v:.6g}' if isinstance(v, float) else str(v))}</td></tr>"
            for k, v in self.info.items()
        )
        notes = "".join(f"<li>{_html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div class='cv-fit'><p>{_html.escape(self.status)}</p>"
            + self.table.to_html(float_format=lambda v: f"{v:.4g}", border=0)
            + "<details><summary>Technical details of the fit</summary>"
            + f"<table>{rows}</table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</details></div>"
        )


@dataclasses.dataclass
class Collapsed:
    """Technical text a reader can open: ``<details>`` in the HTML report, plain in a terminal."""

    summary: str
    text: str

    def __str__(self) -> str:
        return f"{self.summary}\n{self.text}"

    def _repr_html_(self) -> str:
        import html as _html

        return (
            f"<details><summary>{_html.escape(self.summary)}</summary>"
            f"<pre style='white-space: pre-wrap'>{_html.escape(self.text)}</pre></details>"
        )
