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
:func:`encodings_from_coefficients`
    The encodings of a published fit from its coefficient names (for ``from_params``).
:func:`covariate_table`
    The rows of a table as a DataFrame with the named columns (a dict or a one-row frame for a
    single prospect), validated.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import DataValidationError, ModelNotFittedError, ParameterError

__all__ = [
    "CovariateEncoding",
    "CovariateModelMixin",
    "covariate_table",
    "design_matrix",
    "encodings_from_coefficients",
    "fit_encoding",
]

_NUMERIC = "numeric"
_CATEGORICAL = "categorical"
# per-customer gradient at which the warm-start subset's L-BFGS-B hands over to Newton steps
_SUBSET_HANDOVER = 1e-4


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
        # every column is validated (also those that give no term: a missing value is an error)
        # and decoded once
        decoded: dict[str, np.ndarray] = {}
        for col in self.columns:
            if self.kinds[col] == _NUMERIC:
                decoded[col] = _numeric_values(table[col], col, table.index, context)
            else:
                decoded[col] = _level_codes(table[col], col, self.levels[col], table.index, context)
        for j, (col, level) in enumerate(zip(self.term_columns, self.term_levels, strict=True)):
            if self.kinds[col] == _NUMERIC:
                out[:, j] = decoded[col]
            else:
                out[:, j] = decoded[col] == self.levels[col].index(level)
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
    known = pd.Index(list(levels), dtype=object)
    if isinstance(series.dtype, pd.CategoricalDtype):  # decode the categories, not every row
        cats = pd.Index([_level_key(c) for c in series.cat.categories], dtype=object)
        cat_codes = series.cat.codes.to_numpy()
        codes = np.asarray(known.get_indexer(cats), dtype=np.int64)[cat_codes] if len(cats) else cat_codes
    else:  # look up the distinct values only (no missing values here: checked above)
        row_codes, uniques = pd.factorize(series, sort=False)
        keys = pd.Index([_level_key(u) for u in uniques], dtype=object)
        codes = np.asarray(known.get_indexer(keys), dtype=np.int64)[row_codes] if len(keys) else row_codes
    unknown = codes < 0
    if unknown.any():
        values = [_level_key(v) for v in series.to_numpy(dtype=object)[unknown]]
        seen = sorted({repr(v) for v in values})[:5]
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
            # count the distinct values, then turn only those into plain levels
            raw = series.value_counts(sort=False, dropna=True)
            raw = raw[raw.to_numpy() > 0]  # a category nobody has is not a level
            keys = pd.Index([_level_key(v) for v in raw.index], dtype=object)
            counts = pd.Series(raw.to_numpy(), index=keys).groupby(level=0, sort=False).sum()
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


def encodings_from_coefficients(
    blocks: Sequence[str],
    coefficients: Any,
    *,
    levels: Mapping[str, Sequence[Any]] | None = None,
    reference: Mapping[str, Any] | None = None,
    encodings: Mapping[str, Any] | None = None,
    context: str = "from_params",
) -> tuple[dict[str, CovariateEncoding], dict[str, float]]:
    """The encodings and the coefficients of a published covariate fit (no data needed).

    Used by ``from_params`` to build a model from someone else's estimates (CLVTools' static
    covariate fits, Bachmann, Meierer & Naef 2021, or a colleague's custvalue fit): each
    coefficient is named ``"<block>:<term>"`` as in a fitted model's ``params_``, a term being a
    numeric column (``"age"``) or a dummy ``"column[level]"`` of a categorical column whose
    levels are given in ``levels``.

    Parameters
    ----------
    blocks : sequence of str
        The model's covariate blocks in parameter order (``"purchase"``, ``"dropout"``;
        ``"spend"`` for Gamma-Gamma).
    coefficients : mapping or Series
        ``{"purchase:channel[offline]": 0.3, "dropout:age": -0.01}``, or nested
        ``{"purchase": {"channel[offline]": 0.3}}``.
    levels : mapping, optional
        Categorical column -> its levels, the reference level first (unless ``reference`` names
        it). Columns not listed are numeric.
    reference : mapping, optional
        Categorical column -> reference level (default: the first of its ``levels``).
    encodings : mapping, optional
        Block -> :class:`CovariateEncoding` (or its :meth:`~CovariateEncoding.to_dict`), e.g. a
        fitted model's ``covariate_encodings_``; instead of ``levels`` / ``reference``.
    context : str
        Who asks, for the messages.

    Returns
    -------
    (dict, dict)
        Block -> encoding (blocks without coefficients left out, in ``blocks`` order) and the
        coefficients as ``"<block>:<term>" -> float``.

    Raises
    ------
    ParameterError
        A coefficient names an unknown block, a column given no levels, an unknown level or the
        reference level; a non-reference level of a categorical column has no coefficient; a
        value is not finite; ``levels`` names a column no coefficient uses; or both ``levels``
        and ``encodings`` are given.
    """
    blocks = list(blocks)
    if isinstance(coefficients, pd.Series):
        coefficients = coefficients.to_dict()
    if not isinstance(coefficients, Mapping):
        raise ParameterError(
            f"{context}: coefficients must be a dict like {{'{blocks[0]}:<term>': value}}; got "
            f"{type(coefficients).__name__}"
        )
    flat: dict[str, Any] = {}
    for key, value in coefficients.items():
        if isinstance(value, Mapping):
            for term, v in value.items():
                flat[f"{key}:{term}"] = v
        else:
            flat[str(key)] = value
    by_block: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        block, sep, term = key.partition(":")
        if not sep or block not in blocks or not term:
            raise ParameterError(
                f"{context}: coefficient {key!r} must be named '<block>:<term>' with block one of "
                f"{blocks} (e.g. '{blocks[0]}:channel[offline]' or '{blocks[0]}:age')"
            )
        try:
            val = float(value)
        except (TypeError, ValueError):
            val = float("nan")
        if not np.isfinite(val):
            raise ParameterError(f"{context}: coefficient {key!r} must be a finite number; got {value!r}")
        by_block.setdefault(block, {})[term] = val
    if encodings is not None:
        if levels is not None or reference is not None:
            raise ParameterError(
                f"{context}: give either encodings= or levels=/covariate_reference=, not both"
            )
        encs = {}
        for block, enc in dict(encodings).items():
            if block not in blocks:
                raise ParameterError(f"{context}: encodings name block {block!r}; blocks are {blocks}")
            encs[block] = enc if isinstance(enc, CovariateEncoding) else CovariateEncoding.from_dict(enc)
    else:
        encs = _encodings_from_terms(blocks, by_block, dict(levels or {}), dict(reference or {}), context)
    out_encs: dict[str, CovariateEncoding] = {}
    out_coefs: dict[str, float] = {}
    for block in blocks:
        enc = encs.get(block)
        given = by_block.get(block, {})
        terms = list(enc.terms) if enc is not None else []
        unknown = [t for t in given if t not in terms]
        if unknown:
            raise ParameterError(
                f"{context}: coefficient(s) {[f'{block}:{t}' for t in unknown]} name no term of the "
                f"{block} covariates; its terms are {terms}"
            )
        missing = [t for t in terms if t not in given]
        if missing:
            raise ParameterError(
                f"{context}: coefficient(s) {[f'{block}:{t}' for t in missing]} are missing; give "
                "every term a value (0.0 for a level with no effect)"
            )
        if terms:
            out_encs[block] = enc  # type: ignore[assignment]
            out_coefs.update({f"{block}:{t}": given[t] for t in terms})
    return out_encs, out_coefs


def _encodings_from_terms(
    blocks: list[str],
    by_block: dict[str, dict[str, float]],
    levels: dict[str, Sequence[Any]],
    reference: dict[str, Any],
    context: str,
) -> dict[str, CovariateEncoding]:
    """Encodings whose terms are the coefficient names (see :func:`encodings_from_coefficients`)."""
    lv: dict[str, tuple[Any, ...]] = {}
    refs: dict[str, Any] = {}
    for col, given in levels.items():
        if isinstance(given, str) or not isinstance(given, Sequence | np.ndarray | pd.Index):
            raise ParameterError(f"{context}: levels[{col!r}] must be a list of levels; got {given!r}")
        vals = [_level_key(v) for v in given]
        if len(vals) < 2 or len(set(map(repr, vals))) != len(vals):
            raise ParameterError(
                f"{context}: levels[{col!r}] must list at least two distinct levels (the reference "
                f"and one with a coefficient); got {vals}"
            )
        ref = _level_key(reference[col]) if col in reference else vals[0]
        if ref not in vals:
            raise ParameterError(
                f"{context}: reference level {ref!r} of {col!r} is not among its levels {vals}"
            )
        lv[col] = (ref, *[v for v in vals if v != ref])
        refs[col] = ref
    stray = [c for c in reference if c not in levels]
    if stray:
        raise ParameterError(
            f"{context}: covariate_reference names {stray}, which have no levels=; give their levels"
        )
    dummy_of = {f"{col}[{v}]": (col, v) for col, vals in lv.items() for v in vals}
    used: set[str] = set()
    encs: dict[str, CovariateEncoding] = {}
    for block in blocks:
        cols: list[str] = []
        for term in by_block.get(block, {}):
            if term in dummy_of:
                col, level = dummy_of[term]
                if level == refs[col]:
                    raise ParameterError(
                        f"{context}: coefficient '{block}:{term}' is for the reference level of "
                        f"{col!r}, which has none (every other level is compared with it); drop it "
                        f"or name another reference with covariate_reference="
                    )
            elif term.endswith("]") and "[" in term:
                col = term[: term.index("[")]
                if col in lv:
                    raise ParameterError(
                        f"{context}: coefficient '{block}:{term}' names a level of {col!r} that is "
                        f"not among its levels {list(lv[col])}"
                    )
                raise ParameterError(
                    f"{context}: coefficient '{block}:{term}' looks like a level of the categorical "
                    f"covariate {col!r}, but levels= does not list it; give "
                    f"levels={{{col!r}: [<reference level>, <other levels>...]}}"
                )
            else:
                col = term
            if col not in cols:
                cols.append(col)
        used.update(cols)
        if cols:
            kinds = {c: (_CATEGORICAL if c in lv else _NUMERIC) for c in cols}
            encs[block] = _build(
                tuple(cols), kinds, {c: lv[c] for c in cols if c in lv},
                {c: refs[c] for c in cols if c in refs}, (),
            )
    unused = [c for c in lv if c not in used]
    if unused:
        raise ParameterError(
            f"{context}: levels= names covariate(s) {unused} that no coefficient uses; coefficients "
            f"are named '<block>:<column>[<level>]'"
        )
    return encs


def _patterns(
    data: Any, encodings: Mapping[str, CovariateEncoding], contexts: Mapping[str, str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Covariate pattern of every row and each block's design vector per pattern.

    Every source column that gives a term is decoded once (level codes of a categorical column,
    factorised values of a numeric one, validated as in :meth:`CovariateEncoding.transform`);
    the codes are combined into one integer key per row, and the distinct keys, in order of first
    occurrence, are the patterns. Returns ``(pattern, {block: (n_patterns, p) array})`` with
    ``zg[block][pattern]`` equal to ``encodings[block].transform(data)``.
    """
    decoded: dict[tuple[str, Any], tuple[np.ndarray, np.ndarray | None]] = {}
    for block, enc in encodings.items():
        table = None
        for col in dict.fromkeys(enc.term_columns):
            key = (col, enc.levels.get(col))
            if key in decoded:
                continue
            if table is None:
                table = covariate_table(data, enc.columns, context=contexts[block])
            if enc.kinds[col] == _NUMERIC:
                values = _numeric_values(table[col], col, table.index, contexts[block])
                codes, uniques = pd.factorize(values, sort=False)
                decoded[key] = (np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=np.float64))
            else:
                codes = _level_codes(table[col], col, enc.levels[col], table.index, contexts[block])
                decoded[key] = (np.asarray(codes, dtype=np.int64), None)
    keys = list(decoded)
    code_cols = [decoded[k][0] for k in keys]
    sizes = [int(c.max()) + 1 if c.size else 1 for c in code_cols]
    if float(np.prod(np.asarray(sizes, dtype=np.float64))) < 2.0**62:
        combined = np.ravel_multi_index(tuple(code_cols), tuple(sizes)) if len(code_cols) > 1 else code_cols[0]
        pattern, uniq = pd.factorize(combined, sort=False)
        pattern = np.asarray(pattern, dtype=np.int64)
        n_pat = len(uniq)
    else:  # many distinct numeric values: hash the code columns themselves
        from .base import unique_rows

        uniq_cols, pattern = unique_rows(code_cols)
        pattern = np.asarray(pattern, dtype=np.int64)
        n_pat = uniq_cols[0].size
    first = np.empty(n_pat, dtype=np.int64)
    first[pattern[::-1]] = np.arange(pattern.size - 1, -1, -1)
    zg: dict[str, np.ndarray] = {}
    for block, enc in encodings.items():
        z = np.zeros((n_pat, enc.n_terms), dtype=np.float64)
        for j, (col, level) in enumerate(zip(enc.term_columns, enc.term_levels, strict=True)):
            codes, uniques = decoded[(col, enc.levels.get(col))]
            at = codes[first]
            z[:, j] = uniques[at] if uniques is not None else at == enc.levels[col].index(level)
        zg[block] = z
    return pattern, zg


# ---------------------------------------------------------------------------------------------
# covariate models: the machinery the lifetime models share

_BLOCK_WORDS = {
    # block -> (what exp(+-coef) multiplies, verb phrase used in sentences)
    "purchase": "purchase rate",
    "dropout": "dropout",
    "spend": "spend per transaction",
}


class CovariateModelMixin:
    """Static covariates for a :class:`~custvalue.models.base.BaseModel` (put it first in the bases).

    A model lists its covariate *blocks* in ``_covariate_blocks``: ``(block, option, targets)``
    with ``option`` the constructor argument holding the column names and ``targets`` the model
    parameters the block moves, each with a sign: ``theta_i = theta * exp(sign * gamma' z_i)``.
    CLVTools' parameterisation (Bachmann, Meierer & Naef 2021; CLVTools ``pnbd_staticcov`` and
    ``bgnbd_staticcov``):

    * Pareto/NBD: ``alpha_i = alpha exp(-gamma_purchase' z_i)``, ``beta_i = beta exp(-gamma_dropout' z_i)``;
    * BG/NBD and MBG/NBD: ``alpha_i = alpha exp(-gamma_purchase' z_i)``,
      ``a_i = a exp(gamma_dropout' z_i)``, ``b_i = b exp(gamma_dropout' z_i)`` (one coefficient
      vector moves both Beta parameters);
    * Gamma-Gamma: ``gamma_i = gamma exp(-delta' z_i)`` (the spend-rate scale, placed like ``alpha``).

    With every coefficient 0 each ``theta_i = theta``: the model without covariates. The
    parameter vector is the model's own parameters (optimised on the log scale) followed by the
    coefficients (unconstrained), named ``"<block>:<term>"``, e.g. ``"purchase:channel[offline]"``.

    The model's likelihood hook ``_row_core(lp_groups, groups, data, need_grad)`` receives the
    per-covariate-pattern log-parameters ``(G, k)`` and each row's pattern, and returns the row
    log-likelihood and its derivatives with respect to the row's log-parameters ``(n, k)``; the
    chain rule to the coefficients is done here: ``d ll_i / d gamma = sign * d ll_i / d log theta_i
    * z_i``.
    """

    _covariate_blocks: ClassVar[tuple[tuple[str, str, tuple[tuple[str, float], ...]], ...]] = ()

    # ---- options and fitted encodings
    def _init_covariates(self, covariate_reference: Mapping[str, Any] | None, **lists: Any) -> None:
        name = type(self).__name__
        for option, cols in lists.items():
            if cols is None:
                setattr(self, option, None)
                continue
            if isinstance(cols, str) or not all(isinstance(c, str) for c in cols):
                raise ParameterError(
                    f"{name}: {option} must be a list of column names; got {cols!r}"
                    + (f" (write [{cols!r}])" if isinstance(cols, str) else "")
                )
            setattr(self, option, list(cols))
        if covariate_reference is not None and not isinstance(covariate_reference, Mapping):
            raise ParameterError(
                f"{name}: covariate_reference must be a dict column -> reference level; got "
                f"{covariate_reference!r}"
            )
        self.covariate_reference = None if covariate_reference is None else dict(covariate_reference)

    def _encodings(self) -> dict[str, CovariateEncoding]:
        return dict(getattr(self, "covariate_encodings_", None) or {})

    def _base_names(self) -> tuple[str, ...]:
        return type(self)._param_names  # type: ignore[attr-defined]

    def _coef_names(self) -> list[str]:
        return [f"{block}:{term}" for block, enc in self._encodings().items() for term in enc.terms]

    def _names(self) -> tuple[str, ...]:
        return (*self._base_names(), *self._coef_names())

    def _has_covariates(self) -> bool:
        return bool(self._coef_names())

    def _log_mask(self) -> np.ndarray:
        k0, p = len(self._base_names()), len(self._coef_names())
        return np.concatenate([np.ones(k0, dtype=bool), np.zeros(p, dtype=bool)])

    def _compress_columns(self) -> tuple[str, ...]:
        # one column, the covariate pattern of each row (see _extra_fit_arrays), instead of one
        # per design term: rows are identical when summary and covariates agree either way
        if not self._has_covariates():
            return self._fit_columns()  # type: ignore[attr-defined]
        return (*self._fit_columns(), "_pat")  # type: ignore[attr-defined]

    def _extra_fit_arrays(self, data: Any, index: pd.Index) -> dict[str, np.ndarray]:
        """Learn each block's encoding from the fit table and add the rows' covariate patterns.

        A row's design vector ``z_i`` takes one of few distinct values (the combinations of the
        covariate levels that occur): the rows get a pattern code ``"_pat"`` (first-occurrence
        order) and the design vector of each pattern is kept per block (``_pattern_z``). Each
        source column is decoded once, also when both blocks use it.
        """
        name = type(self).__name__
        refs = getattr(self, "covariate_reference", None) or {}
        wanted = [c for _, option, _ in self._covariate_blocks for c in (getattr(self, option) or [])]
        stray = [c for c in refs if c not in wanted]
        if stray:
            raise ParameterError(
                f"{name}: covariate_reference names {stray}, which are not covariates of this model "
                f"({wanted})"
            )
        encodings: dict[str, CovariateEncoding] = {}
        contexts: dict[str, str] = {}
        learnt: dict[tuple[str, ...], CovariateEncoding] = {}
        for block, option, _ in self._covariate_blocks:
            cols = getattr(self, option) or []
            if not cols:
                continue
            ctx = f"{name}.fit ({option})"
            key = tuple(cols)
            if key not in learnt:  # the same columns on both processes: learnt once
                learnt[key] = fit_encoding(
                    data, cols, reference={c: refs[c] for c in cols if c in refs}, context=ctx
                )
            encodings[block] = learnt[key]
            contexts[block] = ctx
        self.covariate_encodings_ = encodings
        self.__dict__.pop("_lr_cache", None)
        self._pattern_z: dict[str, np.ndarray] = {}
        if not any(enc.n_terms for enc in encodings.values()):
            return {}
        pattern, self._pattern_z = _patterns(data, encodings, contexts)
        return {"_pat": pattern.astype(np.float64)}

    # ---- likelihood
    def _prepare_data(self, data: dict[str, np.ndarray]) -> dict[str, Any]:
        if self._has_covariates():
            out: dict[str, Any] = dict(data)
            if "_pat" not in data:
                raise ModelNotFittedError(
                    f"{type(self).__name__}: covariate rows need their patterns from "
                    "_extra_fit_arrays (internal: the data were not prepared by fit)"
                )
            groups = np.asarray(data["_pat"]).astype(np.int64)
            out["_grp"] = groups
            n_groups = int(groups.max()) + 1 if groups.size else 0
            for block, enc in self._encodings().items():
                zg = self._pattern_z.get(block) if enc.n_terms else None
                out[f"_zg_{block}"] = None if zg is None else zg[:n_groups]
            data = out
        return super()._prepare_data(data)  # type: ignore[misc]

    def _targets(self) -> list[tuple[str, int, int, list[tuple[int, float]]]]:
        """(block, offset in the parameter vector, number of terms, [(param index, sign)])."""
        base = list(self._base_names())
        out = []
        offset = len(base)
        encs = self._encodings()
        for block, _, targets in self._covariate_blocks:
            enc = encs.get(block)
            if enc is None or enc.n_terms == 0:
                continue
            out.append((block, offset, enc.n_terms, [(base.index(t), float(s)) for t, s in targets]))
            offset += enc.n_terms
        return out

    def _group_log_params(self, phi: np.ndarray, data: Mapping[str, Any]) -> np.ndarray:
        k0 = len(self._base_names())
        n_groups = int(data["_grp"].max()) + 1 if data["_grp"].size else 0
        lp = np.tile(np.asarray(phi[:k0], dtype=np.float64), (n_groups, 1))
        for block, off, p, targets in self._targets():
            eta = np.einsum("gp,p->g", data[f"_zg_{block}"], phi[off : off + p])  # no BLAS
            for j, sign in targets:
                lp[:, j] += sign * eta
        return lp

    def _cov_rows(
        self, phi: np.ndarray, data: Mapping[str, Any], need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if "_grp" not in data:
            data = self._prepare_data(dict(data))
        lpg = self._group_log_params(np.asarray(phi, dtype=np.float64), data)
        groups = data["_grp"]
        ll, d = self._row_core(lpg, groups, data, need_grad)  # type: ignore[attr-defined]
        if not need_grad:
            return ll, None
        k0 = len(self._base_names())
        grad = np.empty((ll.size, k0 + len(self._coef_names())))
        grad[:, :k0] = d
        for block, off, p, targets in self._targets():
            s = np.zeros(ll.size)
            for j, sign in targets:
                s += sign * d[:, j]
            grad[:, off : off + p] = s[:, None] * data[f"_zg_{block}"][groups]
        return ll, grad

    def _log_likelihood_rows(self, log_params: np.ndarray, data: Mapping[str, Any]) -> np.ndarray:
        if not self._has_covariates():
            return super()._log_likelihood_rows(log_params, data)  # type: ignore[misc]
        last = data.get("_last_rows")
        phi = np.asarray(log_params, dtype=np.float64)
        if last is not None and last[0] == phi.tobytes():
            return last[2]  # the rows of the objective's last evaluation, at this very point
        return self._cov_rows(log_params, data, need_grad=False)[0]

    def _gradient_rows(self, log_params: np.ndarray, data: Mapping[str, Any]) -> np.ndarray:
        if not self._has_covariates():
            return super()._gradient_rows(log_params, data)  # type: ignore[misc]
        return self._cov_rows(log_params, data, need_grad=True)[1]  # type: ignore[return-value]

    def _loglik_and_gradient_rows(
        self, log_params: np.ndarray, data: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if not self._has_covariates():
            return super()._loglik_and_gradient_rows(log_params, data)  # type: ignore[misc]
        return self._cov_rows(log_params, data, need_grad=True)  # type: ignore[return-value]

    def _loglik_and_gradient_totals(
        self, log_params: np.ndarray, data: Mapping[str, Any], weights: np.ndarray
    ) -> tuple[float, np.ndarray] | None:
        """Weighted total log-likelihood and its gradient without the ``(rows, k)`` matrix.

        The chain rule through ``lp_g = phi_base + sign * z_g' gamma`` is linear, so a
        coefficient's total is ``sum_g z_g * sum_{i in g} w_i * sign * d_i`` with ``d_i`` the row
        gradient in the base log-parameters: one ``bincount`` over the rows per block, then a
        product over the (few) covariate patterns.
        """
        if not self._has_covariates():
            return super()._loglik_and_gradient_totals(log_params, data, weights)  # type: ignore[misc]
        if "_grp" not in data:
            data = self._prepare_data(dict(data))
        phi = np.asarray(log_params, dtype=np.float64)
        lpg = self._group_log_params(phi, data)
        groups = data["_grp"]
        ll, d = self._row_core(lpg, groups, data, True)  # type: ignore[attr-defined]
        if isinstance(data, dict):  # the forward-difference Hessian at this point reuses them
            data["_last_rows"] = (phi.tobytes(), d, ll)
        w = np.asarray(weights, dtype=np.float64)
        k0 = len(self._base_names())
        g = np.empty(k0 + len(self._coef_names()))
        g[:k0] = np.einsum("ij,i->j", d, w)  # no BLAS: threads contend
        n_groups = lpg.shape[0]
        for block, off, p, targets in self._targets():
            s = np.zeros(ll.size)
            for j, sign in targets:
                s += sign * d[:, j]
            per_group = np.bincount(groups, weights=w * s, minlength=n_groups)
            g[off : off + p] = np.einsum("gp,g->p", data[f"_zg_{block}"], per_group)
        return float(np.einsum("i,i->", w, ll)), g

    def _objective_factory(self, data: Mapping[str, Any], weights: np.ndarray) -> tuple[Any, Any]:
        loglik, grad = super()._objective_factory(data, weights)  # type: ignore[misc]
        if self._has_covariates():
            # read by _hessian_log: the Hessian of this objective from the rows' own gradients
            grad._covariate_hessian = lambda phi, central: self._covariate_hessian(
                phi, data, weights, central
            )
        return loglik, grad

    def _covariate_hessian(
        self, phi: np.ndarray, data: Mapping[str, Any], weights: np.ndarray, central: bool
    ) -> np.ndarray:
        """Hessian of the penalised total log-likelihood in the optimiser's coordinates.

        Each row's log-likelihood depends on ``phi`` only through its pattern's base
        log-parameters ``lp_g = J_g phi`` (``J_g`` constant: ones for the base parameters,
        ``sign * z_g`` for the coefficients), so ``H = sum_g J_g' (sum_{i in g} w_i H_i) J_g``,
        where ``H_i`` is the ``k0 x k0`` Hessian of row ``i`` in its base log-parameters:
        differences of the analytic row gradients (``2 k0`` evaluations of the rows for central
        differences, ``k0 + 1`` forward) instead of ``2 k`` evaluations of the full gradient.
        The step sizes are those of :meth:`BaseModel._hessian_log`.
        """
        if "_grp" not in data:
            data = self._prepare_data(dict(data))
        phi = np.asarray(phi, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        groups = data["_grp"]
        lpg = self._group_log_params(phi, data)
        n_groups, k0 = lpg.shape
        k = phi.size
        base = None
        if not central:
            last = data.get("_last_rows")
            if last is not None and last[0] == phi.tobytes():
                base = last[1]  # the row gradients at phi, from the objective's last evaluation
            else:
                base = self._row_core(lpg, groups, data, True)[1]  # type: ignore[attr-defined]
        per_group = np.empty((n_groups, k0, k0))
        for j in range(k0):
            h = (1e-5 if central else 2e-6) * max(1.0, abs(phi[j]))
            up = lpg.copy()
            up[:, j] += h
            d_up = self._row_core(up, groups, data, True)[1]  # type: ignore[attr-defined]
            if central:
                down = lpg.copy()
                down[:, j] -= h
                diff = (d_up - self._row_core(down, groups, data, True)[1]) / (2 * h)  # type: ignore[attr-defined]
            else:
                diff = (d_up - base) / h
            for a in range(k0):
                per_group[:, a, j] = np.bincount(groups, weights=w * diff[:, a], minlength=n_groups)
        per_group = (per_group + per_group.transpose(0, 2, 1)) / 2.0
        jac = np.zeros((n_groups, k0, k))
        jac[:, np.arange(k0), np.arange(k0)] = 1.0
        for block, off, p, targets in self._targets():
            for j, sign in targets:
                jac[:, j, off : off + p] += sign * data[f"_zg_{block}"]
        hess = np.einsum("gak,gab,gbl->kl", jac, per_group, jac)
        pen = float(getattr(self, "penalizer_coef", 0.0) or 0.0)
        if pen:  # - total_w * pen * sum(theta^2): exp(2 phi) on the log scale, phi^2 otherwise
            mask = self._log_mask()
            curv = np.where(mask, 4.0 * np.exp(2.0 * np.where(mask, phi, 0.0)), 2.0)
            hess -= float(w.sum()) * pen * np.diag(curv)
        return (hess + hess.T) / 2.0

    def _hessian_log(self, grad: Any, phi: np.ndarray, central: bool = True) -> np.ndarray:
        fast = getattr(grad, "_covariate_hessian", None)
        if fast is None:
            return super()._hessian_log(grad, phi, central)  # type: ignore[misc]
        phi = np.asarray(phi, dtype=np.float64)
        key = (phi.tobytes(), bool(central))
        known = getattr(grad, "_hessian_at", None)
        if known is not None and known[0] == key:
            return known[1].copy()  # asked again at the same point (polish, then covariance)
        hess = fast(phi, central)
        grad._hessian_at = (key, hess)
        return hess.copy()

    def _polish(
        self,
        loglik: Any,
        grad: Any,
        phi: np.ndarray,
        boundary_groups: Any,
        central: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`BaseModel._polish`, without evaluating a Newton step below 1e-8.

        The large-data Newton iterations stop on a step below 1e-8 (:meth:`_newton_fixed`); a
        polish step that small moves no parameter by more than rounding, so the point and the
        Hessian computed there are returned as they are, saving one pass over the rows.
        """
        if boundary_groups or getattr(grad, "_covariate_hessian", None) is None:
            return super()._polish(loglik, grad, phi, boundary_groups, central)  # type: ignore[misc]
        g = grad(phi)
        h = self._hessian_log(grad, phi, central=central)
        try:
            step = np.linalg.solve(h, -g)
        except np.linalg.LinAlgError:
            return phi, h
        if np.all(np.isfinite(step)) and float(np.max(np.abs(step))) < 1e-8:
            return phi, h
        return super()._polish(loglik, grad, phi, boundary_groups, central)  # type: ignore[misc]

    def _newton_fixed(
        self,
        loglik: Any,
        grad: Any,
        phi: np.ndarray,
        hess: np.ndarray,
        scale: float,
        max_iter: int = 15,
    ) -> Any:
        """:meth:`BaseModel._newton_fixed` with the subset Hessian refined by secant updates.

        With covariates the warm-start subset's Hessian matches the full one less well (the rows
        spread over the covariate patterns), and the fixed-Hessian steps shrink slowly. Each
        accepted step ``s`` and the change ``y`` of the full-data gradient update the Hessian by
        the BFGS formula (Nocedal & Wright 2006, *Numerical Optimization*, eq. 6.19, applied to
        ``-H``; skipped unless ``y's < 0``, which keeps it negative definite), so the steps
        converge superlinearly. Same line search and stopping rule as the base method (a step
        below 1e-8 or a relative gain below 1e-13), and a step is not even tried when its
        quadratic-model gain ``g's / 2`` is below that 1e-13 and the gradient per customer below
        1e-7 (ten times inside :meth:`BaseModel._is_interior`): that last pass over all rows
        would change nothing the polish's exact Newton step does not. The covariance still comes
        from the full-data Hessian at the optimum (the polish).
        """
        if getattr(grad, "_covariate_hessian", None) is None:
            return super()._newton_fixed(loglik, grad, phi, hess, scale, max_iter)  # type: ignore[misc]
        from scipy import optimize

        from .base import ascent_step

        neg = -np.array(hess, dtype=np.float64)  # B = -H, positive definite
        cur = loglik(phi)
        it = 0
        msg = "Newton (subset Hessian with BFGS updates): converged"
        g = grad(phi)
        for it in range(1, max_iter + 1):  # noqa: B007
            try:
                step = np.linalg.solve(neg, g)
            except np.linalg.LinAlgError:
                msg = "fixed-Hessian Newton: singular Hessian"
                break
            if not np.all(np.isfinite(step)):
                msg = "fixed-Hessian Newton: non-finite step"
                break
            if float(np.max(np.abs(step))) < 1e-8:
                break  # converged: the step moves no parameter by more than the stopping rule
            if (
                0.5 * float(np.einsum("i,i->", g, step)) < 1e-13 * max(1.0, abs(cur))
                and float(np.max(np.abs(g))) < 1e-7 * scale
            ):
                break  # converged: the step would gain less than the stopping rule asks for
            found = ascent_step(loglik, phi, step, cur)
            if found is None:
                msg = "fixed-Hessian Newton: no ascent"
                break
            cand, val, _ = found
            s_vec = cand - phi
            phi, gain, cur = cand, val - cur, val
            size = float(np.max(np.abs(s_vec)))
            if size < 1e-8 or abs(gain) < 1e-13 * max(1.0, abs(cur)):
                break
            g_new = grad(phi)
            y_vec = g - g_new  # change of the gradient of -loglik
            g = g_new
            ys = float(np.einsum("i,i->", y_vec, s_vec))
            bs = np.einsum("ij,j->i", neg, s_vec)
            sbs = float(np.einsum("i,i->", s_vec, bs))
            if ys > 1e-12 * max(sbs, 1e-300) and sbs > 0:
                neg = neg + np.outer(y_vec, y_vec) / ys - np.outer(bs, bs) / sbs
                neg = (neg + neg.T) / 2.0
        return optimize.OptimizeResult(x=phi, fun=-cur / scale, success=True, message=msg, nit=it)

    def _subset_search(self, sub: Any, starts: Sequence[np.ndarray]) -> list[Any]:
        """The warm-start subset's multi-start, with L-BFGS-B stopped early and Newton finishing.

        On 18 parameters L-BFGS-B spends about half its evaluations on the last digits, where
        its curvature estimate is still poor; the covariate Hessian costs only ``k0`` row
        evaluations by forward differences (:meth:`_covariate_hessian`). So every start runs
        L-BFGS-B until the gradient per customer is below ``_SUBSET_HANDOVER``, the Hessian is
        computed once at the best of them (forward differences: a starting Hessian needs no
        more), and :meth:`_newton_fixed` (that Hessian with secant updates) finishes each
        start, converging superlinearly from there. The same acceptance as
        :meth:`BaseModel._multi_start`: the starts must reach the same log-likelihood (to 1e-7
        relative); when they do not, or the Hessian is not negative definite, the plain
        multi-start runs instead. The Hessian travels with the results (``hess_log``) as the
        full-data Newton steps' starting Hessian: taken where the gradient is already below
        1e-4, it differs from the one at the subset optimum far less than the subset's differs
        from the full data's.
        """
        done = self._handover_search(sub, starts)
        return done if done is not None else super()._subset_search(sub, starts)  # type: ignore[misc]

    def _handover_search(self, sub: Any, starts: Sequence[np.ndarray]) -> list[Any] | None:
        """:meth:`_subset_search`'s own route, or ``None`` where it does not apply or fails."""
        from .base import _optima_agree

        if getattr(sub.grad, "_covariate_hessian", None) is None:
            return None
        loose = [
            self._optimise(sub.loglik, sub.grad, s, sub.scale, gtol=_SUBSET_HANDOVER)  # type: ignore[attr-defined]
            for s in starts
        ]
        if not all(np.isfinite(r.fun) and r.fun < 1e299 for r in loose):
            return None
        best = min(loose, key=lambda r: r.fun)
        hess = self._hessian_log(sub.grad, best.x, central=False)
        if not (np.all(np.isfinite(hess)) and np.all(np.linalg.eigvalsh(-hess) > 0)):
            return None
        done = [self._newton_fixed(sub.loglik, sub.grad, r.x, hess, sub.scale) for r in loose]
        if not _optima_agree(done):
            return None
        for r in done:
            r.hess_log = hess
        return done

    def _fit_problem(self, params: np.ndarray, data: Mapping[str, Any], weights: np.ndarray) -> str | None:
        k0 = len(self._base_names())
        return super()._fit_problem(np.asarray(params)[:k0], data, weights)  # type: ignore[misc]

    def _fit_core(self, data: dict[str, Any], weights: np.ndarray) -> None:
        super()._fit_core(data, weights)  # type: ignore[misc]
        if self._has_covariates():
            # kept for the likelihood-ratio test against the model without covariates
            cols = list(self._fit_columns())  # type: ignore[attr-defined]
            self._lr_data = ({c: np.asarray(data[c]) for c in cols}, np.asarray(weights))
            self._lr_ll = float(self.log_likelihood_)  # type: ignore[attr-defined]

    # ---- parameters
    def _checked_params(self, params: Mapping[str, Any]) -> pd.Series:
        names = list(self._names())
        missing = [n for n in names if n not in params]
        extra = [n for n in params if n not in names]
        if missing or extra:
            raise ParameterError(
                f"{type(self).__name__} needs exactly the parameters {names}; missing {missing}, "
                f"unexpected {extra}"
            )
        values = np.array([float(params[n]) for n in names], dtype=np.float64)
        mask = self._log_mask()
        bad = ~np.isfinite(values) | (mask & (values <= 0))
        if bad.any():
            shown = {n: params[n] for n, b in zip(names, bad, strict=True) if b}
            raise ParameterError(
                f"{type(self).__name__}: model parameters must be finite and > 0 and covariate "
                f"coefficients finite; got {shown}"
            )
        return pd.Series(values, index=names, name="estimate", dtype=np.float64)

    def _extra_state(self) -> dict[str, Any] | None:
        encs = self._encodings()
        if not encs:
            return None
        return {"covariates": {block: enc.to_dict() for block, enc in encs.items()}}

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        self.covariate_encodings_ = {
            block: CovariateEncoding.from_dict(d) for block, d in dict(state.get("covariates", {})).items()
        }

    def _copy_state(self, other: Any) -> None:
        other.covariate_encodings_ = self._encodings()

    def _adopt_encodings(self, encodings: Mapping[str, CovariateEncoding]) -> None:
        """Take published encodings (``from_params``): the fitted encodings and column options."""
        self.covariate_encodings_ = {b: encodings[b] for b, _, _ in self._covariate_blocks if b in encodings}
        for block, option, _ in self._covariate_blocks:
            enc = encodings.get(block)
            setattr(self, option, list(enc.columns) if enc is not None else None)
        refs = {c: r for enc in encodings.values() for c, r in enc.reference.items()}
        self.covariate_reference = refs or None
        self.__dict__.pop("_lr_cache", None)

    # ---- per-customer parameters for predictions
    def _rows_from_table(self, data: Any, n: int, context: str) -> list[Any]:
        """Natural parameters per customer: a float for a parameter no covariate moves, else
        an array with one value per row of ``data``."""
        theta = self._params_array()  # type: ignore[attr-defined]
        k0 = len(self._base_names())
        base = [float(v) for v in theta[:k0]]
        if not self._has_covariates():
            return base
        lp = np.tile(np.log(theta[:k0]), (n, 1))
        moved: set[int] = set()
        encs = self._encodings()
        option_of = {block: option for block, option, _ in self._covariate_blocks}
        for block, off, p, targets in self._targets():
            z = encs[block].transform(data, context=f"{type(self).__name__}.{context} ({option_of[block]})")
            if z.shape[0] != n:
                raise DataValidationError(
                    f"{type(self).__name__}.{context}: the covariates have {z.shape[0]} rows but "
                    f"the summary has {n}"
                )
            eta = np.einsum("np,p->n", z, theta[off : off + p])
            for j, sign in targets:
                lp[:, j] += sign * eta
                moved.add(j)
        return [np.exp(lp[:, j]) if j in moved else base[j] for j in range(k0)]

    def _prospect_params(self, covariates: Any, context: str) -> tuple[list[Any], pd.Index | None]:
        """Parameters of new customers described by ``covariates`` (a dict or a frame)."""
        name = type(self).__name__
        if not self._has_covariates():
            if covariates is not None and self._encodings() == {} and not any(
                getattr(self, option, None) for _, option, _ in self._covariate_blocks
            ):
                raise ParameterError(
                    f"{name}.{context}: the model has no covariates, so covariates= has no effect; "
                    "drop it, or fit the model with purchase_covariates=/dropout_covariates="
                )
            return self._rows_from_table(None, 1, context), None
        if covariates is None:
            cols = sorted({c for enc in self._encodings().values() for c in enc.columns})
            raise ParameterError(
                f"{name}.{context}: the model has covariates {cols}; describe the prospect with "
                f"covariates={{{', '.join(repr(c) + ': ...' for c in cols)}}} (a dict or a one-row "
                "DataFrame)"
            )
        table = covariate_table(
            covariates,
            sorted({c for enc in self._encodings().values() for c in enc.columns}),
            context=f"{name}.{context}",
        )
        index = table.index if isinstance(covariates, pd.DataFrame) and len(table) > 1 else None
        return self._rows_from_table(table, len(table), context), index

    # ---- inference
    def likelihood_ratio_test(self) -> dict[str, float]:
        """Likelihood-ratio test of the covariates against the same model without them.

        Refits the model without covariates on the rows this fit used and compares twice the
        difference in log-likelihood with a chi-squared distribution with as many degrees of
        freedom as there are coefficients (Wilks 1938). Computed once and cached.

        Returns
        -------
        dict
            ``statistic``, ``df``, ``p_value``, ``log_likelihood`` (with covariates) and
            ``log_likelihood_restricted`` (without).
        """
        cached = getattr(self, "_lr_cache", None)
        if cached is not None:
            return dict(cached)
        stored = getattr(self, "_lr_data", None)
        if stored is None:
            raise ModelNotFittedError(
                f"{type(self).__name__} has no fit with covariates to test (fit it to data with "
                "covariates first; a loaded model keeps no data)"
            )
        from scipy import stats

        data, weights = stored
        base_opts = {"penalizer_coef": getattr(self, "penalizer_coef", 0.0), "time_unit": self._unit()}  # type: ignore[attr-defined]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            restricted = type(self)(**base_opts).fit(pd.DataFrame(data), weights=weights)
        # both log-likelihoods on the rows the optimiser saw (Gamma-Gamma: the same rescaled
        # spend, so the Jacobian of the rescaling cancels in the difference)
        ll_r = float(restricted.log_likelihood_)
        ll_f = float(self._lr_ll)
        df = len(self._coef_names())
        stat = max(2.0 * (ll_f - ll_r), 0.0)
        shift = float(self.log_likelihood_) - ll_f  # type: ignore[attr-defined]
        out = {
            "statistic": stat,
            "df": float(df),
            "p_value": float(stats.chi2.sf(stat, df)),
            "log_likelihood": ll_f + shift,
            "log_likelihood_restricted": ll_r + shift,
        }
        self._lr_cache = out
        return dict(out)

    def covariate_effects(self, level: float = 0.90) -> pd.DataFrame:
        """One row per coefficient: estimate, standard error, Wald interval, the multiplier it
        implies and a sentence a marketer reads.

        The multiplier is what the term does to the quantity its block moves, relative to the
        reference level of a dummy (or per unit of a numeric covariate):

        * ``purchase``: the mean purchase rate ``r / alpha_i`` is multiplied by ``exp(gamma)``;
        * ``dropout`` (Pareto/NBD): the mean dropout rate ``s / beta_i`` by ``exp(gamma)``;
        * ``dropout`` (BG/NBD, MBG/NBD): ``a_i`` and ``b_i`` both by ``exp(gamma)``, which keeps
          the mean dropout probability ``a / (a + b)`` and concentrates the Beta around it;
        * ``spend`` (Gamma-Gamma): the mean spend per transaction ``p gamma_i / (q - 1)`` by
          ``exp(-delta)``.

        Intervals are Wald intervals ``gamma +- z se`` mapped through the multiplier.

        Parameters
        ----------
        level : float, default 0.90

        Returns
        -------
        pd.DataFrame
            Indexed by parameter name (``"purchase:channel[offline]"``).
        """
        if not 0 < level < 1:
            raise ParameterError(f"level must be between 0 and 1; got {level}")
        from scipy import stats

        theta = self._params_array()  # type: ignore[attr-defined]
        se_all = getattr(self, "standard_errors_", None)
        z = float(stats.norm.ppf(0.5 + level / 2.0))
        rows = []
        pct = f"{100 * level:g}%"
        encs = self._encodings()
        for block, off, p, targets in self._targets():
            enc = encs[block]
            sign = targets[0][1]
            for j in range(p):
                name = f"{block}:{enc.terms[j]}"
                coef = float(theta[off + j])
                se = float(se_all.iloc[off + j]) if se_all is not None else float("nan")
                lo, hi = coef - z * se, coef + z * se
                # multiplier on the quantity the block moves
                m_sign = -1.0 if block == "spend" else 1.0
                if block == "dropout" and sign < 0:  # Pareto/NBD: beta_i = beta exp(-g z)
                    m_sign = 1.0
                mult = float(np.exp(m_sign * coef))
                ml, mh = sorted((float(np.exp(m_sign * lo)), float(np.exp(m_sign * hi))))
                col, lvl = enc.term_columns[j], enc.term_levels[j]
                who = (
                    f"customers with {col} = {lvl}" if lvl is not None else f"each additional unit of {col}"
                )
                than = f" as those with {col} = {enc.reference[col]}" if lvl is not None else ""
                ci = (f"{pct} CI {ml:.3g}-{mh:.3g}" if np.isfinite(se)  # from_params: no covariance
                      else "no interval without a covariance")
                if block == "purchase":
                    text = (
                        f"{who[0].upper() + who[1:]} buy {mult:.3g} times as often{than} ({ci})"
                        if lvl is not None
                        else f"Each additional unit of {col} multiplies the purchase rate by {mult:.3g} ({ci})"
                    )
                elif block == "spend":
                    text = (
                        f"{who[0].upper() + who[1:]} spend {mult:.3g} times as much per transaction{than} ({ci})"
                        if lvl is not None
                        else f"Each additional unit of {col} multiplies the spend per transaction by {mult:.3g} ({ci})"
                    )
                elif sign < 0:  # Pareto/NBD dropout rate
                    text = (
                        f"{who[0].upper() + who[1:]} drop out {mult:.3g} times as fast{than} ({ci})"
                        if lvl is not None
                        else f"Each additional unit of {col} multiplies the dropout rate by {mult:.3g} ({ci})"
                    )
                else:  # BG/NBD: a and b move together
                    text = (
                        f"For {who}, compared with those with {col} = {enc.reference.get(col)}, the dropout-probability "
                        f"distribution's a and b are {mult:.3g} times as large ({ci}): the same mean "
                        "dropout probability per purchase, more concentrated around it when above 1"
                        if lvl is not None
                        else f"Each additional unit of {col} multiplies a and b of the dropout-probability "
                        f"distribution by {mult:.3g} ({ci}); the mean dropout probability is unchanged"
                    )
                p_value = float(2.0 * stats.norm.sf(abs(coef) / se)) if se > 0 else float("nan")
                rows.append(
                    {
                        "name": name,
                        "block": block,
                        "column": col,
                        "level": lvl,
                        "reference": enc.reference.get(col),
                        "coefficient": coef,
                        "std_error": se,
                        f"lower {pct}": lo,
                        f"upper {pct}": hi,
                        "p_value": p_value,
                        "multiplier": mult,
                        f"multiplier lower {pct}": ml,
                        f"multiplier upper {pct}": mh,
                        "sentence": text,
                    }
                )
        frame = pd.DataFrame(rows)
        return frame.set_index("name") if len(frame) else frame

    def summary(self, level: float = 0.95) -> Any:
        out = super().summary(level)  # type: ignore[misc]
        encs = self._encodings()
        for block, enc in encs.items():
            for col in enc.constant:
                out.notes.append(
                    f"{block} covariate {col} is constant in the data: no effect estimated (the "
                    "model is the one without it)"
                )
        if not self._has_covariates():
            return out
        out.notes = [
            n.replace(
                "intervals are", "intervals of the model parameters are"
            ).replace("always positive", "always positive; coefficients get plain Wald intervals")
            if n.startswith("intervals are")
            else n
            for n in out.notes
        ]
        effects = self.covariate_effects(0.90)
        for block, enc in encs.items():
            for col, ref in enc.reference.items():
                if col not in enc.constant:
                    out.notes.append(f"{block} covariate {col}: dummies relative to the reference level {ref!r}")
        out.notes.extend(effects["sentence"].tolist())
        if getattr(self, "_lr_data", None) is not None:
            lr = self.likelihood_ratio_test()
            out.info["LR test vs no covariates"] = (
                f"chi2 = {lr['statistic']:.4g}, df = {lr['df']:g}, p = {lr['p_value']:.3g}"
            )
        return out


class TwoProcessCovariatesMixin(CovariateModelMixin):
    """Covariate options of the buy-till-you-die models (BG/NBD, MBG/NBD, Pareto/NBD): one
    block on the purchase process and one on the dropout process (``_covariate_blocks`` of the
    model says which parameters each moves)."""

    def __init__(
        self,
        penalizer_coef: float = 0.0,
        time_unit: str | None = None,
        *,
        purchase_covariates: list[str] | None = None,
        dropout_covariates: list[str] | None = None,
        covariate_reference: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(penalizer_coef=penalizer_coef, time_unit=time_unit)  # type: ignore[call-arg]
        self._init_covariates(
            covariate_reference,
            purchase_covariates=purchase_covariates,
            dropout_covariates=dropout_covariates,
        )
