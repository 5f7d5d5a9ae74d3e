"""Internal array helpers shared by the models and the value layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DataValidationError

__all__ = ["as_float_array", "require_columns"]


def as_float_array(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """Flatten ``values`` to a float64 array, with a clear error when that is impossible.

    Parameters
    ----------
    values : array-like
        Column, Series or model output.
    name : str
        What the values are (a column name or the model method that returned them), used in
        the error message.
    n : int, optional
        Expected length. A model returning another number of values is a programming error in
        that model, reported as ``RuntimeError``.

    Raises
    ------
    DataValidationError
        The values cannot be converted to float (e.g. text in a numeric column).
    RuntimeError
        ``n`` is given and the length differs.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"column {name!r} must be numeric; could not convert it to float ({exc}). "
            "Pass a summary from custvalue.summary.rfm_summary or cast the column first."
        ) from exc
    arr = arr.reshape(-1)
    if n is not None and arr.shape[0] != n:
        raise RuntimeError(f"{name} returned {arr.shape[0]} values for {n} rows")
    return arr


def require_columns(data: Any, columns: Any, what: str) -> None:
    """Raise a clear error when ``data`` (a DataFrame) lacks any of ``columns``.

    Parameters
    ----------
    data : pandas.DataFrame
        The customer summary given to a model or a value function.
    columns : sequence of str
        The columns ``what`` needs.
    what : str
        Who needs them (``"BetaGeoModel.fit"``, ``"customer_lifetime_value"``), for the message.
    """
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataValidationError(
            f"{what} needs columns {list(columns)}; missing {missing} "
            f"(the frame has {list(data.columns)[:12]}). Build the summary with "
            "custvalue.summary.rfm_summary or rename the columns."
        )
