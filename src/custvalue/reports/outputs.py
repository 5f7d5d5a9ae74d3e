"""What report notebooks write and show: metrics, score exports, figures and number formatting.

Every helper here is called from a report notebook (or from its module's result object), so the
notebooks hold narrative only.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "SCORE_COLUMNS",
    "atomic_write_text",
    "export_scores",
    "jsonable",
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

