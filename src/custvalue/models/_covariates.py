"""Customer covariates as a design matrix for the lifetime models.

The covariate models (CLVTools' static-covariate Pareto/NBD and BG/NBD, Bachmann, Meierer &
Naef 2021, "The Role of Time-Varying Contextual Factors in Latent Attrition Models for
Customer Base Analysis", *Marketing Science* 40(4), 783-809) let a model parameter vary by
customer as ``theta_i = theta * exp(+-gamma' z_i)``. This module turns named columns of a
customer table into the numeric vector ``z_i``:

* numeric columns (int, float) enter as they are: the coefficient is the effect of one unit;
* categorical columns (object, string, category, bool) are dummy-coded: one 0/1 term per level
  other than a *reference level*, which is the most frequent level (ties: the first in sorted
  order, or the category order of a ``category`` column) unless the caller names one;
* a constant column (one value, or one level) gives no term at all, so a model "with" it is
  exactly the model without it (its effect is not identified: it would only rescale ``theta``).

An encoding is learnt once, from the table given to ``fit`` (:func:`fit_encoding`), and applied to
every later table (:meth:`CovariateEncoding.transform`), so prediction tables get the same terms in
the same order; a level the fit never saw is an error, not a silent zero row.

Public names
------------
:class:`CovariateEncoding`
    The learnt encoding: ``columns``, ``terms``, ``term_columns``, ``term_levels``, ``kinds``,
    ``levels``, ``reference``, ``constant``; ``transform(data)`` -> ``(n, p)`` float array;
    ``describe()`` -> a table of the terms; ``to_dict()`` / ``from_dict()`` for JSON.
:func:`fit_encoding`
    Learn an encoding from a table.
:func:`design_matrix`
    Both at once: ``(Z, encoding)``.
:func:`covariate_table`
    The rows of a table as a DataFrame with the named columns (a dict or a one-row frame for a
    single prospect), validated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataValidationError, ParameterError

__all__ = ["CovariateEncoding", "covariate_table", "design_matrix", "fit_encoding"]

_NUMERIC = "numeric"
_CATEGORICAL = "categorical"


def _examples(index: pd.Index, mask: np.ndarray, k: int = 5) -> str:
    return ", ".join(repr(i) for i in list(index[np.asarray(mask)][:k]))


def _is_categorical(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _level_key(value: Any) -> Any:
    """Levels as plain Python values (numpy scalars become int/float/bool/str) for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _sort_levels(levels: Sequence[Any]) -> list[Any]:
    try:
        return sorted(levels)
    except TypeError:  # mixed types: sort by their text
        return sorted(levels, key=lambda v: (type(v).__name__, str(v)))


def covariate_table(
    data: Any, columns: Sequence[str], *, context: str = "covariates"
) -> pd.DataFrame:
    """The named covariate columns of ``data`` as a DataFrame (the caller's data is not changed).

    Parameters
    ----------
    data : DataFrame, dict or Series
        A customer table, or a single prospect as a dict ``{"channel": "online"}``, a Series or
        a one-row DataFrame.
    columns : sequence of str
        Covariate column names.
    context : str
        Who asks (for the message), e.g. ``"ParetoNBDModel.fit"``.

    Raises
    ------
    DataValidationError
        ``data`` is not a table, or a column is missing (the message lists those present).
    """
    cols = list(columns)
    if isinstance(data, pd.Series):
        data = data.to_frame().T
    elif isinstance(data, Mapping) and not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame({k: np.atleast_1d(np.asarray(v, dtype=object)) for k, v in data.items()})
        except ValueError as exc:
            raise DataValidationError(f"{context}: covariates {dict(data)!r} are not a table ({exc})") from exc
        # object arrays lose dtypes: let pandas infer numbers back
        data = data.infer_objects()
    if not isinstance(data, pd.DataFrame):
        raise DataValidationError(
            f"{context} needs the covariates {cols} as columns of a pandas DataFrame (or a dict "
            f"for one prospect); got {type(data).__name__}"
        )
    missing = [c for c in cols if c not in data.columns]
    if missing:
        present = [str(c) for c in data.columns][:20]
        raise DataValidationError(
            f"{context}: covariate column(s) {missing} not found in the customer table "
            f"(columns present: {present}); merge the covariates onto the summary by customer id"
        )
    return data.loc[:, cols]


@dataclass(frozen=True)
class CovariateEncoding:
    """How named customer columns become the covariate vector ``z_i`` (see the module docstring).

    Attributes
    ----------
    columns : tuple of str
        The source columns, in the order given.
    kinds : dict
        Column -> ``"numeric"`` or ``"categorical"``.
    levels : dict
        Categorical column -> its levels seen at fit, reference level first.
    reference : dict
        Categorical column -> reference level (the level every dummy is compared with).
    constant : tuple of str
        Columns with a single value at fit; they give no term (no identified effect).
    terms : tuple of str
        Names of the design columns: a numeric column's own name, ``"column[level]"`` for a dummy.
    term_columns : tuple of str
        Source column of each term.
    term_levels : tuple
        Level of each dummy term (``None`` for numeric terms).
    """

    columns: tuple[str, ...]
    kinds: dict[str, str]
    levels: dict[str, tuple[Any, ...]]
    reference: dict[str, Any]
    constant: tuple[str, ...]
    terms: tuple[str, ...] = field(default=())
    term_columns: tuple[str, ...] = field(default=())
    term_levels: tuple[Any, ...] = field(default=())

    @property
    def n_terms(self) -> int:
        """Number of design columns ``p``."""
        return len(self.terms)

    def transform(self, data: Any, *, context: str = "predict") -> np.ndarray:
        """The ``(n, p)`` design matrix of ``data`` (float64, row order of ``data``).

        Parameters
        ----------
        data : DataFrame, dict or Series
            A table with every column of :attr:`columns` (extra columns are ignored), or one
            prospect as a dict.
        context : str
            Who asks, for the message.

        Raises
        ------
        DataValidationError
            A column is missing, has missing or non-finite values, a numeric column holds text,
            or a categorical column holds a level the fit never saw (the message names the column,
            the levels and example rows).
        """
        table = covariate_table(data, self.columns, context=context)
        n = len(table)
        out = np.zeros((n, self.n_terms), dtype=np.float64)
        for j, (col, level) in enumerate(zip(self.term_columns, self.term_levels, strict=True)):
            series = table[col]
            if self.kinds[col] == _NUMERIC:
                out[:, j] = _numeric_values(series, col, table.index, context)
            else:
                codes = _level_codes(series, col, self.levels[col], table.index, context)
                out[:, j] = codes == self.levels[col].index(level)
        # columns that produce no term still have to be valid (a missing value is an error)
        for col in self.columns:
            if col in self.term_columns:
                continue
            if self.kinds[col] == _NUMERIC:
                _numeric_values(table[col], col, table.index, context)
            else:
                _level_codes(table[col], col, self.levels[col], table.index, context)
        return out

    def describe(self) -> pd.DataFrame:
        """One row per term: source column, kind, level and reference level."""
        rows = []
        for term, col, level in zip(self.terms, self.term_columns, self.term_levels, strict=True):
            rows.append(
                {
                    "term": term,
                    "column": col,
                    "kind": self.kinds[col],
                    "level": level,
                    "reference": self.reference.get(col),
                }
            )
        return pd.DataFrame(rows, columns=["term", "column", "kind", "level", "reference"]).set_index("term")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (levels as plain values); inverse of :meth:`from_dict`."""
        return {
            "columns": list(self.columns),
            "kinds": dict(self.kinds),
            "levels": {k: [_level_key(v) for v in vals] for k, vals in self.levels.items()},
            "reference": {k: _level_key(v) for k, v in self.reference.items()},
            "constant": list(self.constant),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> CovariateEncoding:
        """Rebuild an encoding written by :meth:`to_dict`."""
        return _build(
            tuple(payload["columns"]),
            dict(payload["kinds"]),
            {k: tuple(v) for k, v in payload["levels"].items()},
            dict(payload["reference"]),
            tuple(payload["constant"]),
        )


def _numeric_values(series: pd.Series, col: str, index: pd.Index, context: str) -> np.ndarray:
    try:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{context}: covariate {col!r} was numeric when the model was fitted but holds "
            f"non-numeric values here (e.g. {series.iloc[:3].tolist()}): {exc}"
        ) from exc
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataValidationError(
            f"{context}: covariate {col!r} has {int(bad.sum())} of {values.size} rows missing or "
            f"non-finite (customers {_examples(index, bad)}); fill or drop them first"
        )
    return values


def _level_codes(
    series: pd.Series, col: str, levels: Sequence[Any], index: pd.Index, context: str
) -> np.ndarray:
    missing = series.isna().to_numpy()
    if missing.any():
        raise DataValidationError(
            f"{context}: covariate {col!r} has {int(missing.sum())} of {len(series)} rows missing "
            f"(customers {_examples(index, missing)}); fill them (e.g. with an 'unknown' level) "
            "or drop those customers"
        )
    values = [_level_key(v) for v in series.to_numpy(dtype=object)]
    lookup = {lvl: i for i, lvl in enumerate(levels)}
    codes = np.fromiter((lookup.get(v, -1) for v in values), dtype=np.int64, count=len(values))
    unknown = codes < 0
    if unknown.any():
        seen = sorted({repr(v) for v, u in zip(values, unknown, strict=True) if u})[:5]
        raise DataValidationError(
            f"{context}: covariate {col!r} has level(s) {', '.join(seen)} that the model never saw "
            f"when it was fitted ({int(unknown.sum())} rows, customers {_examples(index, unknown)}); "
            f"known levels: {list(levels)}. Refit with these customers, or map them to a known level"
        )
    return codes


def _build(
    columns: tuple[str, ...],
    kinds: dict[str, str],
    levels: dict[str, tuple[Any, ...]],
    reference: dict[str, Any],
    constant: tuple[str, ...],
) -> CovariateEncoding:
    terms: list[str] = []
    term_columns: list[str] = []
    term_levels: list[Any] = []
    for col in columns:
        if col in constant:
            continue
        if kinds[col] == _NUMERIC:
            terms.append(col)
            term_columns.append(col)
            term_levels.append(None)
        else:
            for level in levels[col]:
                if level == reference[col]:
                    continue
                terms.append(f"{col}[{level}]")
                term_columns.append(col)
                term_levels.append(level)
    return CovariateEncoding(
        columns=columns,
        kinds=kinds,
        levels=levels,
        reference=reference,
        constant=constant,
        terms=tuple(terms),
        term_columns=tuple(term_columns),
        term_levels=tuple(term_levels),
    )


def fit_encoding(
    data: Any,
    columns: Sequence[str],
    *,
    reference: Mapping[str, Any] | None = None,
    context: str = "fit",
) -> CovariateEncoding:
    """Learn the encoding of ``columns`` from a customer table.

    Parameters
    ----------
    data : DataFrame
        The table the model is fitted on (one row per customer).
    columns : sequence of str
        Covariate columns; each name once.
    reference : mapping, optional
        Reference level per categorical column (default: its most frequent level).
    context : str
        Who asks, for the message.

    Returns
    -------
    CovariateEncoding

    Raises
    ------
    ParameterError
        ``columns`` is not a list of names, names a column twice, or ``reference`` names a column
        that is not a categorical covariate or a level that does not occur.
    DataValidationError
        A column is missing or has missing / non-finite values.
    """
    if isinstance(columns, str):
        raise ParameterError(
            f"{context}: covariates must be a list of column names, not the string {columns!r} "
            f"(write [{columns!r}])"
        )
    cols = tuple(str(c) for c in columns)
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise ParameterError(f"{context}: covariate column(s) {dupes} are listed more than once")
    ref_in = dict(reference or {})
    table = covariate_table(data, cols, context=context)
    kinds: dict[str, str] = {}
    levels: dict[str, tuple[Any, ...]] = {}
    refs: dict[str, Any] = {}
    constant: list[str] = []
    for col in cols:
        series = table[col]
        if _is_categorical(series):
            kinds[col] = _CATEGORICAL
            missing = series.isna().to_numpy()
            if missing.any():
                _level_codes(series, col, (), table.index, context)  # raises with examples
            values = pd.Series([_level_key(v) for v in series.to_numpy(dtype=object)], dtype=object)
            counts = values.value_counts(sort=False)
            if isinstance(series.dtype, pd.CategoricalDtype):
                order = [_level_key(v) for v in series.cat.categories if _level_key(v) in counts.index]
            else:
                order = _sort_levels(list(counts.index))
            if col in ref_in:
                ref = _level_key(ref_in[col])
                if ref not in order:
                    raise ParameterError(
                        f"{context}: reference level {ref!r} for covariate {col!r} does not occur in "
                        f"the data; its levels are {order}"
                    )
            else:
                top = max(int(counts[v]) for v in order)
                ref = next(v for v in order if int(counts[v]) == top)
            levels[col] = (ref, *[v for v in order if v != ref])
            refs[col] = ref
            if len(order) == 1:
                constant.append(col)
        else:
            kinds[col] = _NUMERIC
            values = _numeric_values(series, col, table.index, context)
            if values.size and np.all(values == values[0]):
                constant.append(col)
    stray = [c for c in ref_in if c not in refs]
    if stray:
        raise ParameterError(
            f"{context}: reference levels given for {stray}, which are not categorical covariates "
            f"(categorical: {sorted(refs)})"
        )
    return _build(cols, kinds, levels, refs, tuple(constant))


def design_matrix(
    data: Any,
    columns: Sequence[str],
    *,
    reference: Mapping[str, Any] | None = None,
    context: str = "fit",
) -> tuple[np.ndarray, CovariateEncoding]:
    """Learn the encoding of ``columns`` from ``data`` and return ``(Z, encoding)``.

    ``Z`` is the ``(n, p)`` float64 design matrix in the row order of ``data`` (no intercept
    column: the model's own parameter is the intercept). See :func:`fit_encoding`.
    """
    enc = fit_encoding(data, columns, reference=reference, context=context)
    return enc.transform(data, context=context), enc
