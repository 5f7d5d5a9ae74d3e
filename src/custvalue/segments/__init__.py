"""Segments and targeting lists: rule-based RFM segments, model-based value segments with their
uncertainty, a safe targeting-filter language, CRM exports, segment migration and channel
economics.

Every function takes the customer table: an RFM summary from :func:`custvalue.rfm_summary`
(``frequency``, ``recency``, ``T``, ``monetary_value``, ``first_purchase``, ``last_purchase``,
``n_orders``, ``total_spend`` and attribute columns) indexed by customer id, optionally joined
with model scores (``p_alive``, ``expected_purchases``, ``clv``, ``clv_lower``, ``clv_upper``). It
never modifies that table and returns a :class:`SegmentResult`: the customers concerned in
``.customers`` (a new frame, the input's columns plus what the function adds), a summary table in
``.table``, and a text (``print``) and HTML (notebook) view with the size, past revenue and
expected value.

Rule-based
    :func:`rfm_scores`, :func:`rfm_segments` (rules in :data:`RFM_SEGMENT_RULES`, a table a user
    can replace), :func:`order_milestones`, :func:`invalid_members`.
Model-based
    :func:`value_tiers` (with each customer's probability of truly belonging to their tier),
    :func:`alive_value_grid`, :func:`winback_candidates`, :func:`club_candidates`,
    :func:`value_deciles`, :func:`value_by`.
Targeting
    :func:`select` (the filter language of :mod:`custvalue.segments._filter`),
    :func:`export_list`, :func:`bought_values`, :func:`score_customers` (the customer table
    joined with P(alive) and CLV from freshly fitted models).
Over time and money
    :func:`migration`, :func:`channel_economics`.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._time import DAYS_PER_UNIT, normalize_unit
from ..errors import DataValidationError, ParameterError
from ._filter import FilterError, describe_fields, evaluate

__all__ = [
    "RFM_SEGMENT_RULES",
    "SCORE_COLUMNS",
    "SCORE_MODELS",
    "FilterError",
    "ScoredCustomers",
    "SegmentResult",
    "alive_value_grid",
    "bought_values",
    "channel_economics",
    "club_candidates",
    "describe_fields",
    "export_list",
    "invalid_members",
    "migration",
    "order_milestones",
    "rfm_scores",
    "rfm_segments",
    "score_customers",
    "select",
    "value_by",
    "value_deciles",
    "value_tiers",
    "winback_candidates",
]


# ------------------------------------------------------------------------------------------------
# result object
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SegmentResult:
    """A group of customers (or a segmentation of them) with its summary.

    Attributes
    ----------
    name : str
        What the result is ("win-back candidates", "RFM segments", ...).
    customers : pandas.DataFrame
        The customers concerned, indexed by customer id: the input's columns plus those the
        function adds (``segment``, ``value_tier``, ``days_since_last_order``, ...), ranked where
        the function ranks.
    table : pandas.DataFrame
        Summary per segment / band / channel (may be empty for a plain list).
    notes : list of str
        Plain-language sentences on how the result was made (rules, thresholds).
    extra : dict
        Further tables (e.g. ``"value"`` for the migration matrix of value).
    """

    name: str
    customers: pd.DataFrame
    table: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of customers."""
        return len(self.customers)

    @property
    def ids(self) -> pd.Index:
        """Their customer ids."""
        return self.customers.index

    @property
    def past_revenue(self) -> float:
        """Their total past spend (``total_spend``), NaN when the table has none."""
        if "total_spend" not in self.customers:
            return float("nan")
        return float(self.customers["total_spend"].sum())

    @property
    def expected_value(self) -> float:
        """Their total expected value (``clv``), NaN when the table has no CLV."""
        if "clv" not in self.customers:
            return float("nan")
        return float(self.customers["clv"].sum())

    def _headline(self) -> str:
        parts = [f"{self.size:,} customers"]
        if not math.isnan(self.past_revenue):
            parts.append(f"past revenue {self.past_revenue:,.2f}")
        if not math.isnan(self.expected_value):
            parts.append(f"expected value {self.expected_value:,.2f}")
        return f"{self.name}: " + ", ".join(parts)

    def __str__(self) -> str:
        lines = [self._headline()]
        lines += [f"  {n}" for n in self.notes]
        if len(self.table):
            lines += ["", self.table.to_string(max_rows=40)]
        elif len(self.customers):
            lines += ["", self.customers.head(10).to_string()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<SegmentResult {self._headline()}>"

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        body = self.table if len(self.table) else self.customers.head(10)
        return (
            f"<div><p><strong>{html.escape(self._headline())}</strong></p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + body.to_html(float_format=lambda v: f"{v:,.2f}", max_rows=40)
            + "</div>"
        )


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _check_table(
    customers: Any, required: Sequence[str] = (), what: str = "customers"
) -> pd.DataFrame:
    if isinstance(customers, SegmentResult):
        customers = customers.customers
    if (
        isinstance(customers, tuple)
        and len(customers) == 2
        and isinstance(customers[0], pd.DataFrame)
    ):
        raise DataValidationError(
            f"{what} is a (frame, quality) pair as returned by load_transactions: unpack it, "
            "summarise the transactions with rfm_summary and pass the summary"
        )
    if not isinstance(customers, pd.DataFrame):
        raise DataValidationError(
            f"{what} must be a customer table (a DataFrame from rfm_summary), got {type(customers).__name__}"
        )
    missing = [c for c in required if c not in customers.columns]
    if missing:
        raise DataValidationError(
            f"{what} has no column(s) {missing}; it has {list(customers.columns)[:20]}. "
            "Summarise with custvalue.rfm_summary and join model scores (p_alive, clv, ...) first"
        )
    if not customers.index.is_unique:
        dup = customers.index[customers.index.duplicated()][:5].tolist()
        raise DataValidationError(f"{what} must have one row per customer; repeated ids: {dup}")
    return customers


def _observation_end(customers: pd.DataFrame) -> pd.Timestamp:
    end = customers.attrs.get("observation_end")
    if end is not None:
        return pd.Timestamp(end)
    if "last_purchase" in customers:
        return pd.Timestamp(customers["last_purchase"].max())
    raise DataValidationError("customers has neither attrs['observation_end'] nor last_purchase")


def _days_since_last(customers: pd.DataFrame) -> pd.Series:
    end = _observation_end(customers).normalize()
    return (end - customers["last_purchase"].dt.normalize()).dt.days


def _score(values: pd.Series, bins: int) -> np.ndarray:
    """1..bins by the share of customers with a strictly lower value (ties share the lower bin)."""
    arr = values.to_numpy(dtype=float)
    order = np.argsort(arr, kind="stable")
    ranked = arr[order]
    below = np.empty(len(arr), dtype=np.int64)
    below[order] = np.searchsorted(ranked, ranked, side="left")  # sorted queries: one pass
    return (1 + np.floor(bins * below / len(arr))).astype(int).clip(1, bins)


def _group_table(
    frame: pd.DataFrame, by: str | list[str], total: pd.DataFrame | None = None
) -> pd.DataFrame:
    """customers, share, past revenue, expected value (and mean P(alive)) per group."""
    total = frame if total is None else total
    agg: dict[str, tuple[str, str]] = {"customers": (frame.columns[0], "size")}
    if "total_spend" in frame:
        agg["past_revenue"] = ("total_spend", "sum")
    if "clv" in frame:
        agg["expected_value"] = ("clv", "sum")
        agg["mean_clv"] = ("clv", "mean")
    if "p_alive" in frame:
        agg["mean_p_alive"] = ("p_alive", "mean")
    table = frame.groupby(by, observed=True, sort=True).agg(**agg)
    table.insert(1, "share_of_customers", table["customers"] / max(len(total), 1))
    if "expected_value" in table:
        denom = float(total["clv"].sum()) if "clv" in total else float("nan")
        table["share_of_value"] = table["expected_value"] / denom if denom else np.nan
    return table


# ------------------------------------------------------------------------------------------------
# value by group and deciles (used by the value report)
# ------------------------------------------------------------------------------------------------
def value_by(scores: pd.DataFrame, column: str) -> pd.DataFrame:
    """Expected value per group of customers.

    Parameters
    ----------
    scores : pandas.DataFrame
        Per-customer scores with ``clv``, ``p_alive`` and ``column``.
    column : str
        Column to group by (e.g. ``cohort``, ``channel``).

    Returns
    -------
    pandas.DataFrame
        Per group: ``customers``, ``total_clv``, ``mean_clv``, ``mean_p_alive`` and
        ``share_of_value`` (of the total over all groups).
    """
    table = scores.groupby(column, observed=True).agg(
        customers=("clv", "size"),
        total_clv=("clv", "sum"),
        mean_clv=("clv", "mean"),
        mean_p_alive=("p_alive", "mean"),
    )
    table["share_of_value"] = table["total_clv"] / table["total_clv"].sum()
    return table


def value_deciles(scores: pd.DataFrame, column: str = "clv") -> tuple[pd.Series, pd.DataFrame]:
    """Value decile of every customer (1 = the most valuable tenth) and the table per decile.

    Customers are ranked by ``column`` (ties in order of appearance) and decile *k* holds ranks
    ``(k-1)n/10 < rank <= kn/10``.

    Parameters
    ----------
    scores : pandas.DataFrame
        Per-customer scores with ``column``, ``p_alive`` and ``total_spend``.
    column : str, default "clv"

    Returns
    -------
    decile : pandas.Series
        ``clv_decile`` per customer (int, 1..10), aligned on ``scores``.
    table : pandas.DataFrame
        Per decile: ``customers``, ``expected_value``, ``mean_clv``, ``mean_p_alive``,
        ``past_spend_per_customer`` and ``share_of_value``.
    """
    order = scores[column].rank(method="first", ascending=False)
    decile = pd.Series(
        np.ceil(order / len(scores) * 10).astype(int), index=scores.index, name="clv_decile"
    )
    frame = scores.assign(clv_decile=decile)
    table = frame.groupby("clv_decile").agg(
        customers=(column, "size"),
        expected_value=(column, "sum"),
        mean_clv=(column, "mean"),
        mean_p_alive=("p_alive", "mean"),
        past_spend_per_customer=("total_spend", "mean"),
    )
    table["share_of_value"] = table["expected_value"] / table["expected_value"].sum()
    return decile, table


# ------------------------------------------------------------------------------------------------
# RFM
# ------------------------------------------------------------------------------------------------
#: The default named RFM segments: first matching row wins; score ranges are inclusive, on the
#: 1..5 scores of :func:`rfm_scores` (R: recency of the last order, 5 = most recent; F: number of
#: orders; M: past spend). The grid of R x F is covered completely, so every customer gets one
#: segment. These follow the widely used 11-segment RFM map (R and F scores; M breaks no ties).
RFM_SEGMENT_RULES: pd.DataFrame = pd.DataFrame(
    [
        ("champions", 5, 5, 4, 5, 1, 5, "bought recently, often and much"),
        ("loyal", 3, 5, 4, 5, 1, 5, "buy often; recently enough"),
        ("potential loyalists", 4, 5, 2, 3, 1, 5, "recent, with a few orders"),
        ("new", 5, 5, 1, 1, 1, 5, "first order very recently"),
        ("promising", 4, 4, 1, 1, 1, 5, "first order recently"),
        ("need attention", 3, 3, 3, 3, 1, 5, "middling recency and frequency"),
        ("about to sleep", 3, 3, 1, 2, 1, 5, "few orders, not recent"),
        ("can't lose them", 1, 2, 5, 5, 1, 5, "used to buy the most, long gone"),
        ("at risk", 1, 2, 3, 4, 1, 5, "bought often, long ago"),
        ("lost", 1, 1, 1, 1, 1, 5, "one order, longest ago"),
        ("hibernating", 1, 2, 1, 2, 1, 5, "few orders, long ago"),
    ],
    columns=["segment", "r_min", "r_max", "f_min", "f_max", "m_min", "m_max", "description"],
)


def rfm_scores(customers: pd.DataFrame, bins: int = 5) -> SegmentResult:
    """Recency, frequency and monetary scores, 1 (worst) .. ``bins`` (best).

    * ``r_score`` from the days since the last order (fewer is better), computed at the
      observation end (``customers.attrs["observation_end"]``, else the latest last purchase);
    * ``f_score`` from ``n_orders``; ``m_score`` from ``total_spend``.

    Each score is ``1 + floor(bins * share of customers with a strictly worse value)``, so tied
    customers share a score (the lower one): with 60 % one-order customers they all get
    ``f_score = 1``, rather than being spread over bins at random as with quantile cuts of ranks.
    This is the quantile-bin RFM scoring of Hughes (1994, "Strategic Database Marketing"),
    with ties kept together.

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table with ``last_purchase``, ``n_orders`` and ``total_spend``.
    bins : int, default 5

    Returns
    -------
    SegmentResult
        ``customers`` with ``days_since_last_order``, ``r_score``, ``f_score``, ``m_score`` and
        ``rfm_score`` (text ``"RFM"``, e.g. ``"545"``); ``table``: counts per R x F score.
    """
    customers = _check_table(customers, ("last_purchase", "n_orders", "total_spend"))
    if not isinstance(bins, (int, np.integer)) or not 2 <= bins <= 9:
        raise ParameterError(f"bins must be a whole number from 2 to 9, got {bins!r}")
    if len(customers) == 0:
        raise DataValidationError("customers is empty: nothing to score")
    out = customers.copy()
    days = _days_since_last(customers)
    out["days_since_last_order"] = days
    out["r_score"] = _score(-days.astype(float), bins)
    out["f_score"] = _score(customers["n_orders"].astype(float), bins)
    out["m_score"] = _score(customers["total_spend"].astype(float), bins)
    r, f, m = (out[c].to_numpy() - 1 for c in ("r_score", "f_score", "m_score"))
    labels = [
        f"{a}{b}{c}"
        for a in range(1, bins + 1)
        for b in range(1, bins + 1)
        for c in range(1, bins + 1)
    ]
    out["rfm_score"] = pd.Categorical.from_codes((r * bins + f) * bins + m, categories=labels)
    counts = np.bincount(r * bins + f, minlength=bins * bins).reshape(bins, bins)
    scores_1 = pd.RangeIndex(1, bins + 1)
    table = pd.DataFrame(
        counts, index=scores_1.rename("r_score"), columns=scores_1.rename("f_score")
    )
    return SegmentResult(
        "RFM scores",
        out,
        table,
        [
            f"scores 1..{bins}, higher is better; table: customers per recency (rows) and frequency (columns) score"
        ],
    )


def _rules_frame(rules: Any) -> pd.DataFrame:
    if rules is None:
        return RFM_SEGMENT_RULES
    frame = pd.DataFrame(list(rules) if not isinstance(rules, pd.DataFrame) else rules)
    if "segment" not in frame:
        raise ParameterError(f"segment rules need a 'segment' column; got {list(frame.columns)}")
    frame = frame.copy()
    for key in ("r", "f", "m"):
        for end, default in (("min", 1), ("max", 9)):
            col = f"{key}_{end}"
            if col not in frame:
                frame[col] = default
            frame[col] = pd.to_numeric(frame[col].fillna(default), errors="coerce")
            if frame[col].isna().any():
                raise ParameterError(f"segment rules: column {col!r} must hold whole-number scores")
    return frame


def rfm_segments(customers: pd.DataFrame, rules: Any = None, *, bins: int = 5) -> SegmentResult:
    """Named RFM segments (champions, loyal, ..., lost) from :func:`rfm_scores`.

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table (see :func:`rfm_scores`); model columns such as ``clv`` and ``p_alive``,
        when present, are summed/averaged per segment.
    rules : DataFrame or list of dict, optional
        One row per segment, checked in order, the first match wins: ``segment`` and inclusive
        score ranges ``r_min``, ``r_max``, ``f_min``, ``f_max``, ``m_min``, ``m_max`` (missing
        ranges allow every score). Default :data:`RFM_SEGMENT_RULES` (for ``bins=5``).
        Customers matching no rule get ``"other"``.
    bins : int, default 5
        Score bins.

    Returns
    -------
    SegmentResult
        ``customers`` with the score columns and ``segment``; ``table`` per segment (in rule
        order): customers, share, past revenue, expected value, mean P(alive); ``extra["rules"]``.
    """
    table_in = _check_table(customers, ("last_purchase", "n_orders", "total_spend"))
    frame = _rules_frame(rules)
    if rules is None and bins != 5:
        raise ParameterError(
            "the default segment rules are for 5 score bins; pass rules= for other bins"
        )
    scored = rfm_scores(table_in, bins=bins).customers
    r, f, m = (scored[c].to_numpy() for c in ("r_score", "f_score", "m_score"))
    conditions = [
        (r >= row.r_min)
        & (r <= row.r_max)
        & (f >= row.f_min)
        & (f <= row.f_max)
        & (m >= row.m_min)
        & (m <= row.m_max)
        for row in frame.itertuples(index=False)  # one vectorised test per rule (few rules)
    ]
    labels = frame["segment"].astype(str).tolist()
    codes = np.select(conditions, np.arange(len(labels)), default=len(labels))
    categories = list(dict.fromkeys(labels))  # a repeated name keeps its first position
    codes = np.array([categories.index(x) for x in labels] + [len(categories)])[codes]
    if (codes == len(categories)).any():
        categories.append("other")
    scored["segment"] = pd.Categorical.from_codes(codes, categories=categories)
    table = _group_table(scored, "segment")
    return SegmentResult(
        "RFM segments",
        scored,
        table,
        ["segments from recency (R) and frequency (F) scores 1-5; first matching rule wins"],
        {"rules": frame},
    )


# ------------------------------------------------------------------------------------------------
# model-based segments
# ------------------------------------------------------------------------------------------------
#: Tier labels for the default value-tier cut points.
def _tier_labels(tiers: Sequence[float]) -> list[str]:
    labels = [f"top {t * 100:g}%" for t in tiers]
    return [*labels, "rest"]


def _rank_tiers(values: np.ndarray, tiebreak: np.ndarray, tiers: Sequence[float]) -> np.ndarray:
    """Tier index (0 = top) of each customer from the rank by (values desc, tiebreak desc)."""
    n = len(values)
    order = np.lexsort((-tiebreak, -values))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    cuts = np.array([math.ceil(t * n) for t in tiers])
    return np.searchsorted(cuts, rank, side="right")


def _posterior_future(
    kind: str,
    params: Mapping[str, float | np.ndarray],
    x: np.ndarray,
    T: np.ndarray,
    p_alive: np.ndarray,
    horizon: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One draw of every customer's number of purchases in the next ``horizon`` model units.

    Alive at the observation end with probability ``p_alive``; given alive, the latent rates are
    drawn from their posterior and the future process is simulated:

    * BG/NBD (Fader, Hardie & Lee 2005, assumptions i-v): given alive, ``lambda ~ Gamma(r + x,
      alpha + T)`` and ``p ~ Beta(a, b + x)`` (the likelihood given alive is ``lambda^x
      e^{-lambda T} (1-p)^x``, their eq. 3); MBG/NBD (Batislam et al. 2007) has ``b + x + 1``
      (dropout possible after every purchase, the first included). Future purchases: ``min(M,
      N)`` with ``M ~ Poisson(lambda t)`` and ``N ~ Geometric(p)`` purchases until the dropout.
    * Pareto/NBD (Schmittlein, Morrison & Colombo 1987): given alive, ``lambda ~ Gamma(r + x,
      alpha + T)``, ``mu ~ Gamma(s, beta + T)``; the remaining lifetime ``tau ~ Exp(mu)`` and
      ``Poisson(lambda * min(tau, t))`` purchases.

    A parameter moved by covariates is an array with each customer's value (``alpha_i`` etc.,
    :func:`_customer_params`); the draws broadcast over it.
    """
    n = len(x)
    alive = rng.random(n) < p_alive
    lam = rng.gamma(params["r"] + x, 1.0 / (params["alpha"] + T))
    if kind == "pareto_nbd":
        mu = rng.gamma(params["s"], 1.0 / (params["beta"] + T))
        tau = rng.exponential(1.0 / mu)
        k = rng.poisson(lam * np.minimum(tau, horizon))
    else:
        extra = 1.0 if kind == "mbgnbd" else 0.0
        p = rng.beta(params["a"], params["b"] + x + extra)
        m = rng.poisson(lam * horizon)
        k = np.minimum(m, rng.geometric(np.clip(p, 1e-12, 1.0)))
    return np.where(alive, k, 0)


def _model_kind(model: Any) -> str:
    from ..models import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel

    if isinstance(model, ModifiedBetaGeoModel):
        return "mbgnbd"
    if isinstance(model, BetaGeoModel):
        return "bgnbd"
    if isinstance(model, ParetoNBDModel):
        return "pareto_nbd"
    raise ParameterError(
        f"value_tiers simulates BG/NBD, MBG/NBD and Pareto/NBD customers; got {type(model).__name__}"
    )


def value_tiers(
    customers: pd.DataFrame,
    transaction_model: Any = None,
    spend_model: Any = None,
    *,
    tiers: Sequence[float] = (0.01, 0.05, 0.2),
    horizon: float = 12.0,
    time_unit: str = "M",
    margin: float = 1.0,
    n_draws: int = 100,
    seed: int | None = 0,
) -> SegmentResult:
    """Value tiers by expected CLV (top 1 %, 5 %, 20 %, rest) with the probability of truly
    belonging to one's tier.

    Tiers are nested ranks: ``top 1%`` holds the ``ceil(0.01 n)`` customers with the highest
    ``clv``, ``top 5%`` the next ones up to ``ceil(0.05 n)``, and so on.

    With a transaction model (BG/NBD, MBG/NBD or Pareto/NBD) and a Gamma-Gamma spend model,
    each customer's ``tier_probability`` is the share of ``n_draws`` simulated futures in which
    her realised value over the horizon ranks in the same tier. Each draw takes both models'
    parameters from their asymptotic normal sampling distribution (``sample_params``, the
    parameter uncertainty the CLV intervals use) and then simulates every customer's future
    from the posterior predictive given her history: alive or not (``probability_alive``), her
    latent rates from their posterior and her purchases over the horizon (see
    ``_posterior_future``), and her spend from the Gamma-Gamma posterior ``nu ~ Gamma(q + p x,
    gamma + x m)`` with a purchase total ``Gamma(p K, nu)`` (Fader, Hardie & Lee 2005b; Fader &
    Hardie 2013, eq. 4). Values are scaled by ``margin`` and each customer's average discount
    factor ``clv / (margin * expected_purchases * expected_spend)`` when those columns exist.
    Ties in a draw (e.g. the many customers with no future purchase) are broken by ``clv``. A
    low probability says the evidence for the tier is thin: few orders, or a value that sits
    near a cut point.

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table with ``clv`` (and ``frequency``, ``recency``, ``T``, ``monetary_value`` in
        the transaction model's unit when models are given).
    transaction_model, spend_model : fitted models, optional
        Without them only the tiers are assigned (no ``tier_probability``).
    tiers : sequence of float, default (0.01, 0.05, 0.2)
        Increasing cumulative shares.
    horizon : float, default 12
        Horizon of the simulated futures, in ``time_unit`` (use the CLV's horizon).
    time_unit : str, default "M"
    margin : float, default 1.0
    n_draws : int, default 100
    seed : int, optional

    Returns
    -------
    SegmentResult
        ``customers`` with ``value_tier`` (ordered categorical) [and ``tier_probability``];
        ``table`` per tier with customers, past revenue, expected value and the mean tier
        probability.
    """
    need = ["clv"] + (
        ["frequency", "recency", "T", "monetary_value"] if transaction_model is not None else []
    )
    customers = _check_table(customers, need)
    tiers = [float(t) for t in tiers]
    if (
        not tiers
        or any(not 0 < t < 1 for t in tiers)
        or any(b <= a for a, b in itertools.pairwise(tiers))
    ):
        raise ParameterError(f"tiers must be increasing shares between 0 and 1, got {tiers}")
    if len(customers) == 0:
        raise DataValidationError("customers is empty: nothing to tier")
    labels = _tier_labels(tiers)
    clv = customers["clv"].to_numpy(dtype=float)
    if not np.isfinite(clv).all():
        raise DataValidationError("clv has missing or infinite values; value every customer first")
    point = _rank_tiers(clv, np.zeros(len(clv)), tiers)
    out = customers.copy()
    out["value_tier"] = pd.Categorical.from_codes(point, categories=labels, ordered=True)
    notes = [f"tiers by expected CLV: {', '.join(labels)}"]
    if transaction_model is not None:
        if spend_model is None and "expected_spend" not in customers:
            raise ParameterError(
                "value_tiers needs a spend model (or an expected_spend column) with a transaction model"
            )
        if int(n_draws) < 2:
            raise ParameterError(f"n_draws must be at least 2, got {n_draws}")
        kind = _model_kind(transaction_model)
        unit = normalize_unit(time_unit)
        model_unit = getattr(transaction_model, "time_unit_", None) or "D"
        t_model = float(horizon) * DAYS_PER_UNIT[unit] / DAYS_PER_UNIT[model_unit]
        x = customers["frequency"].to_numpy(dtype=float)
        T = customers["T"].to_numpy(dtype=float)
        mbar = customers["monetary_value"].to_numpy(dtype=float)
        disc = np.ones(len(customers))
        if {"expected_purchases", "expected_spend"} <= set(customers.columns):
            base = (
                margin
                * customers["expected_purchases"].to_numpy(float)
                * customers["expected_spend"].to_numpy(float)
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                disc = np.where(base > 0, clv / base, 1.0)
            disc = np.clip(np.nan_to_num(disc, nan=1.0), 0.0, 1.0)
        rng = np.random.default_rng(seed)
        seeds = rng.integers(0, 2**63 - 1, size=3)
        tx_draws = transaction_model.sample_params(int(n_draws), seed=int(seeds[0]))
        sp_draws = (
            spend_model.sample_params(int(n_draws), seed=int(seeds[1]))
            if spend_model is not None
            else None
        )
        sim_rng = np.random.default_rng(int(seeds[2]))
        hits = np.zeros(len(customers))
        for d in range(int(n_draws)):  # loop over draws; every step inside is vectorised
            params = tx_draws.iloc[d].to_dict()
            p_alive = (
                transaction_model.with_params(params).probability_alive(customers).to_numpy(float)
            )
            own = _customer_params(transaction_model, params, customers)
            k = _posterior_future(kind, own, x, T, p_alive, t_model, sim_rng)
            if sp_draws is not None:
                sp = _customer_params(spend_model, sp_draws.iloc[d].to_dict(), customers)
                nu = sim_rng.gamma(sp["q"] + sp["p"] * x, 1.0 / (sp["gamma"] + x * mbar))
                spend = np.where(
                    k > 0, sim_rng.gamma(np.maximum(sp["p"] * k, 1e-300), 1.0 / nu), 0.0
                )
            else:
                spend = k * customers["expected_spend"].to_numpy(float)
            draw_tier = _rank_tiers(margin * spend * disc, clv, tiers)
            hits += draw_tier == point
        out["tier_probability"] = hits / int(n_draws)
        notes.append(
            f"tier_probability: share of {int(n_draws)} simulated futures (parameter draws and "
            "each customer's posterior predictive) in which the customer ranks in the same tier"
        )
    table = _group_table(out, "value_tier")
    if "tier_probability" in out:
        table["mean_tier_probability"] = out.groupby("value_tier", observed=True)[
            "tier_probability"
        ].mean()
    return SegmentResult("value tiers", out, table, notes)


def alive_value_grid(
    customers: pd.DataFrame,
    *,
    alive_bands: Sequence[float] = (0.0, 0.2, 0.5, 0.8, 1.0),
    value_bands: Sequence[float] = (0.5, 0.8, 0.95),
) -> SegmentResult:
    """P(alive) bands x value bands with counts, past revenue and expected value.

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table with ``p_alive`` and ``clv``.
    alive_bands : sequence of float
        Edges of the P(alive) bands (intervals closed on the right, the first also on the left).
    value_bands : sequence of float
        Cumulative shares of customers by CLV rank from the bottom: the default makes the bottom
        50 %, 50-80 %, 80-95 % and the top 5 %.

    Returns
    -------
    SegmentResult
        ``customers`` with ``alive_band`` and ``value_band``; ``table`` long (one row per band
        pair); ``extra["counts"]``, ``extra["expected_value"]`` and ``extra["past_revenue"]`` as
        matrices (P(alive) bands as rows, value bands as columns).
    """
    customers = _check_table(customers, ("p_alive", "clv"))
    edges = [float(e) for e in alive_bands]
    if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ParameterError(f"alive_bands must be increasing edges, got {edges}")
    shares = [float(s) for s in value_bands]
    if any(not 0 < s < 1 for s in shares) or any(b <= a for a, b in itertools.pairwise(shares)):
        raise ParameterError(f"value_bands must be increasing shares between 0 and 1, got {shares}")
    out = customers.copy()
    alive_labels = [f"{a:.0%}-{b:.0%}" for a, b in itertools.pairwise(edges)]
    out["alive_band"] = pd.cut(out["p_alive"], edges, labels=alive_labels, include_lowest=True)
    n = len(out)
    rank_from_bottom = out["clv"].rank(method="first", ascending=True).to_numpy() - 1
    cuts = np.array([math.ceil(s * n) for s in shares])
    bounds = [0.0, *shares, 1.0]
    value_labels = [f"{a:.0%}-{b:.0%}" for a, b in itertools.pairwise(bounds)]
    codes = np.searchsorted(cuts, rank_from_bottom, side="right")
    out["value_band"] = pd.Categorical.from_codes(codes, categories=value_labels, ordered=True)
    table = _group_table(out, ["alive_band", "value_band"])
    extra = {
        key: table[col].unstack("value_band").fillna(0)
        for key, col in (
            ("counts", "customers"),
            ("expected_value", "expected_value"),
            ("past_revenue", "past_revenue"),
        )
        if col in table
    }
    return SegmentResult(
        "P(alive) x value grid",
        out,
        table,
        [
            "value bands are shares of customers ranked by CLV from the lowest (e.g. 95%-100% = top 5%)"
        ],
        extra,
    )


def winback_candidates(
    customers: pd.DataFrame,
    *,
    max_p_alive: float = 0.3,
    min_past_value: float | None = None,
    top_share: float = 0.2,
    n: int | None = None,
) -> SegmentResult:
    """Customers who were valuable and are probably gone, ranked by the value expected if won
    back.

    Candidates have ``p_alive <= max_p_alive`` and a past spend (``total_spend``) of at least
    ``min_past_value`` (default: the spend of the top ``top_share`` of all customers). The value
    if won back is the expected value given alive, ``clv / p_alive``: under BG/NBD, MBG/NBD and
    Pareto/NBD a customer who has dropped out buys nothing, so ``E[value] = P(alive) E[value |
    alive]`` (Fader, Hardie & Lee 2005, eq. 10 is ``P(alive)`` times the alive-customer
    expectation).

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table with ``p_alive``, ``clv``, ``total_spend`` and ``last_purchase``.
    max_p_alive : float, default 0.3
    min_past_value : float, optional
    top_share : float, default 0.2
        Used for the default ``min_past_value``.
    n : int, optional
        Keep the first ``n`` of the ranking.

    Returns
    -------
    SegmentResult
        ``customers`` ranked with ``value_if_won_back`` and ``days_since_last_order``.
    """
    customers = _check_table(customers, ("p_alive", "clv", "total_spend", "last_purchase"))
    if not 0 <= max_p_alive <= 1:
        raise ParameterError(f"max_p_alive must be a probability, got {max_p_alive}")
    if min_past_value is None:
        if not 0 < top_share <= 1:
            raise ParameterError(f"top_share must be in (0, 1], got {top_share}")
        min_past_value = float(customers["total_spend"].quantile(1 - top_share))
    p = customers["p_alive"].to_numpy(float)
    keep = (p <= max_p_alive) & (customers["total_spend"].to_numpy(float) >= min_past_value)
    out = customers.loc[keep].copy()
    pa = np.clip(out["p_alive"].to_numpy(float), 1e-300, 1.0)
    out["value_if_won_back"] = np.where(
        out["clv"].to_numpy(float) > 0, out["clv"].to_numpy(float) / pa, 0.0
    )
    out["days_since_last_order"] = _days_since_last(out) if len(out) else pd.Series(dtype=int)
    out = out.sort_values(["value_if_won_back", "total_spend"], ascending=False, kind="stable")
    if n is not None:
        out = out.head(int(n))
    return SegmentResult(
        "win-back candidates",
        out,
        pd.DataFrame(),
        [
            f"P(alive) <= {max_p_alive:g} and past spend >= {min_past_value:,.2f}; ranked by value if won back (clv / P(alive))"
        ],
    )


def club_candidates(
    customers: pd.DataFrame,
    *,
    min_orders: int = 3,
    min_p_alive: float = 0.7,
    top_share: float = 0.2,
    min_certainty: float = 0.5,
    n: int | None = None,
) -> SegmentResult:
    """Regular customers with high expected value and high certainty: the regular-customer club
    and VIP tier.

    A candidate has at least ``min_orders`` orders, ``p_alive >= min_p_alive``, a CLV in the top
    ``top_share`` of customers, and certainty: with ``tier_probability`` (from
    :func:`value_tiers`) at least ``min_certainty`` of being in a top tier; else with
    ``clv_lower`` a lower interval bound that is itself above the top-share cut point; else no
    further condition. Ranked by ``clv``.

    Returns
    -------
    SegmentResult
        ``customers`` ranked by ``clv``.
    """
    customers = _check_table(customers, ("n_orders", "p_alive", "clv"))
    if not 0 < top_share <= 1:
        raise ParameterError(f"top_share must be in (0, 1], got {top_share}")
    clv = customers["clv"].to_numpy(float)
    cut = float(np.quantile(clv, 1 - top_share)) if len(clv) else 0.0
    keep = (
        (customers["n_orders"].to_numpy() >= min_orders)
        & (customers["p_alive"].to_numpy(float) >= min_p_alive)
        & (clv >= cut)
    )
    note = f"at least {min_orders} orders, P(alive) >= {min_p_alive:g}, CLV in the top {top_share:.0%} (>= {cut:,.2f})"
    if "tier_probability" in customers and "value_tier" in customers:
        top = customers["value_tier"].astype(str) != "rest"
        keep &= top.to_numpy() & (customers["tier_probability"].to_numpy(float) >= min_certainty)
        note += f", probability of the tier >= {min_certainty:g}"
    elif "clv_lower" in customers:
        keep &= customers["clv_lower"].to_numpy(float) >= cut
        note += ", lower CLV bound above that cut"
    out = customers.loc[keep].sort_values("clv", ascending=False, kind="stable")
    if n is not None:
        out = out.head(int(n))
    return SegmentResult("club candidates", out.copy(), pd.DataFrame(), [note])


def order_milestones(
    customers: pd.DataFrame, milestones: Sequence[int] = (5, 10, 50)
) -> SegmentResult:
    """Customers at, or one order short of, an order milestone (for reward programmes).

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table with ``n_orders``.
    milestones : sequence of int, default (5, 10, 50)

    Returns
    -------
    SegmentResult
        ``customers`` with ``milestone`` (the milestone concerned) and ``orders_to_go`` (0 =
        reached it with the last order, 1 = the next order reaches it), sorted by milestone;
        ``table`` per milestone and orders to go.
    """
    customers = _check_table(customers, ("n_orders",))
    ms = sorted({int(m) for m in milestones})
    if not ms or ms[0] < 1:
        raise ParameterError(
            f"milestones must be positive whole numbers of orders, got {list(milestones)}"
        )
    n_orders = customers["n_orders"].to_numpy()
    milestone = np.zeros(len(customers), dtype=np.int64)
    for m in reversed(ms):  # a customer one short of 10 and at 9... takes the nearest milestone
        milestone = np.where((n_orders == m) | (n_orders == m - 1), m, milestone)
    keep = milestone > 0
    out = customers.loc[keep].copy()
    out["milestone"] = milestone[keep]
    out["orders_to_go"] = out["milestone"] - out["n_orders"]
    out = out.sort_values(["milestone", "orders_to_go"], kind="stable")
    table = (
        _group_table(out, ["milestone", "orders_to_go"], total=customers)
        if len(out)
        else pd.DataFrame()
    )
    return SegmentResult(
        "order milestones",
        out,
        table,
        [f"customers with exactly m or m-1 orders for m in {ms}"],
    )


def invalid_members(
    customers: pd.DataFrame,
    *,
    members: Iterable[Any] | pd.DataFrame | pd.Series | None = None,
    flagged: Iterable[Any] | None = None,
    quality: Any = None,
) -> SegmentResult:
    """Members with no valid purchase, to list and to exclude from targeting.

    A customer is invalid when

    * their net spend is zero or negative (``total_spend <= 0``) or they have no order
      (``n_orders == 0``) in the customer table;
    * they are on the member roster ``members`` but absent from the customer table: every one of
      their orders was cancelled or returned, so :func:`custvalue.load_transactions` removed
      them (reason ``no valid purchase``);
    * their id is in ``flagged`` (e.g. test accounts, or ids the data-quality checks named).

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table.
    members : iterable, Series or DataFrame, optional
        The member roster (ids, or a frame with ``customer_id`` as column or index).
    flagged : iterable, optional
        Further ids to exclude.
    quality : DataQuality, optional
        Only reported in the notes (its checks count rows, not customers).

    Returns
    -------
    SegmentResult
        ``customers``: one row per invalid id with ``reason`` and the table's columns where the
        customer is in it; ``table``: count per reason.
    """
    customers = _check_table(customers)
    reasons = pd.Series("", index=customers.index, dtype=object)
    if "total_spend" in customers:
        reasons[customers["total_spend"].to_numpy(float) <= 0] = "net spend <= 0"
    if "n_orders" in customers:
        reasons[customers["n_orders"].to_numpy() <= 0] = "no orders"
    if flagged is not None:
        flag_ids = pd.Index(list(flagged))
        hit = customers.index.isin(flag_ids)
        reasons[hit & (reasons == "").to_numpy()] = "flagged"
    listed = customers.loc[(reasons != "").to_numpy()].copy()
    listed.insert(0, "reason", reasons[reasons != ""])
    extra_ids: list[Any] = []
    extra_reason: list[str] = []
    if members is not None:
        if isinstance(members, pd.DataFrame):
            ids = pd.Index(members["customer_id"] if "customer_id" in members else members.index)
        else:
            ids = pd.Index(list(members))
        absent = ids[~ids.isin(customers.index)].unique()
        extra_ids += list(absent)
        extra_reason += ["no valid purchase"] * len(absent)
    if flagged is not None:
        absent = pd.Index(list(flagged))
        absent = absent[~absent.isin(customers.index) & ~absent.isin(extra_ids)].unique()
        extra_ids += list(absent)
        extra_reason += ["flagged"] * len(absent)
    if extra_ids:
        more = pd.DataFrame(
            {"reason": extra_reason}, index=pd.Index(extra_ids, name=customers.index.name)
        )
        listed = pd.concat([listed, more]) if len(listed) else more
    listed.index.name = customers.index.name or "customer_id"
    table = (
        listed.groupby("reason").size().rename("customers").to_frame()
        if len(listed)
        else pd.DataFrame()
    )
    notes = ["excluded from select() and the lists by default"]
    if quality is not None and getattr(quality, "ok", True) is False:
        notes.append("the data-quality checks found problems: see the DataQuality report")
    return SegmentResult("invalid members", listed, table, notes)


def _valid_mask(customers: pd.DataFrame) -> np.ndarray:
    keep = np.ones(len(customers), dtype=bool)
    if "total_spend" in customers:
        keep &= customers["total_spend"].to_numpy(float) > 0
    if "n_orders" in customers:
        keep &= customers["n_orders"].to_numpy() > 0
    return keep


# ------------------------------------------------------------------------------------------------
# targeting
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ScoredCustomers:
    """Result of :func:`score_customers`: the scored table and the models behind it."""

    customers: pd.DataFrame
    transaction_model: Any
    spend_model: Any
    #: How the spend per purchase was modelled, as a sentence (with covariates: whether the
    #: Gamma-Gamma model carries them or fell back to the population average).
    spend_note: str = ""


#: Transaction models :func:`score_customers` can fit, by name.
SCORE_MODELS = ("bgnbd", "pareto_nbd", "mbgnbd")
#: The columns :func:`score_customers` adds.
SCORE_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv", "clv_lower", "clv_upper")


def score_customers(
    customers: pd.DataFrame,
    *,
    model: str = "bgnbd",
    horizon_months: float = 12.0,
    discount_rate: float = 0.1,
    margin: float = 1.0,
    interval: float | None = 0.9,
    n_draws: int = 100,
    seed: int | None = 0,
    covariates: Sequence[str] = (),
) -> ScoredCustomers:
    """The customer table joined with model scores, for selecting and segmenting on them.

    Fits the transaction model (BG/NBD, Fader, Hardie & Lee 2005; Pareto/NBD, Schmittlein,
    Morrison & Colombo 1987; MBG/NBD, Batislam et al. 2007) on all customers and the
    Gamma-Gamma spend model (Fader, Hardie & Lee 2005b) on the repeat customers with a positive
    mean spend, then adds ``p_alive`` and :func:`custvalue.value.customer_lifetime_value`'s
    ``expected_purchases``, ``expected_spend``, ``clv`` [, ``clv_lower``, ``clv_upper``].

    Parameters
    ----------
    customers : pandas.DataFrame
        An RFM summary (:func:`custvalue.rfm_summary`), in the unit the model is fitted in.
    model : {"bgnbd", "pareto_nbd", "mbgnbd"}, default "bgnbd"
    horizon_months, discount_rate, margin, interval, n_draws, seed
        As for :func:`custvalue.value.customer_lifetime_value` (``horizon`` in months;
        ``interval=None`` for no interval).
    covariates : sequence of str, default ()
        Columns of ``customers`` (static customer attributes) that shift the purchase and the
        dropout process of the transaction model and the spend scale of the Gamma-Gamma model
        (CLVTools' parameterisation, Bachmann, Meierer & Naef 2021: ``alpha_i = alpha
        exp(-g'z_i)`` etc., see :class:`custvalue.models.ParetoNBDModel`), so every customer is
        scored at her own rates. When a level of a categorical covariate has no repeat customer
        with a positive spend, its spend cannot be estimated and the spend model is fitted
        without covariates (``spend_note`` says so).

    Returns
    -------
    ScoredCustomers
        ``customers``: a new frame, the input's columns plus :data:`SCORE_COLUMNS`;
        ``transaction_model`` and ``spend_model``: the fitted models (for :func:`value_tiers`);
        ``spend_note``: which spend model was used.
    """
    from .. import models as cvmodels
    from ..value import _clv_over_months

    classes = {
        "bgnbd": cvmodels.BetaGeoModel,
        "pareto_nbd": cvmodels.ParetoNBDModel,
        "mbgnbd": cvmodels.ModifiedBetaGeoModel,
    }
    if model not in classes:
        raise ParameterError(f"model must be one of {', '.join(SCORE_MODELS)}; got {model!r}")
    covariates = list(dict.fromkeys(covariates or ()))
    customers = _check_table(
        customers, ("frequency", "recency", "T", "monetary_value", *covariates)
    )
    unit = str(customers.attrs.get("freq", "D"))
    cov_args = (
        {"purchase_covariates": covariates, "dropout_covariates": covariates} if covariates else {}
    )
    tx_model = classes[model](time_unit=unit, **cov_args).fit(customers)
    repeat = (customers["frequency"] > 0) & (customers["monetary_value"] > 0)
    if repeat.sum() < 10:
        raise DataValidationError(
            f"only {int(repeat.sum())} customers bought more than once with a positive spend: too "
            "few to fit the spend model (need at least 10)"
        )
    spend_model, spend_note = _spend_model(customers, repeat.to_numpy(), covariates)
    clv = _clv_over_months(
        tx_model, spend_model, customers, horizon_months=horizon_months,
        discount_rate=discount_rate, margin=margin, interval=interval, n_draws=max(n_draws, 2),
        seed=seed,
    )
    clv = getattr(clv, "frame", clv)
    out = customers.copy()
    out["p_alive"] = tx_model.probability_alive(customers)
    for col in SCORE_COLUMNS[1:]:
        if col in clv.columns:
            out[col] = clv[col]
    return ScoredCustomers(out, tx_model, spend_model, spend_note)


def _spend_model(
    customers: pd.DataFrame, repeat: np.ndarray, covariates: list[str]
) -> tuple[Any, str]:
    """Gamma-Gamma on the repeat customers, with ``covariates`` on the spend scale when every
    level of each categorical covariate has a repeat customer (else without), and a clause
    saying which (a sentence)."""
    from .. import models as cvmodels

    rows = customers[repeat]
    if not covariates:
        return cvmodels.GammaGammaModel().fit(rows), ""

    def categorical(col: str) -> bool:
        dtype = customers[col].dtype
        return not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)

    thin = [c for c in covariates if categorical(c)
            and set(customers[c].astype(str)) - set(rows[c].astype(str))]
    if thin:
        return cvmodels.GammaGammaModel().fit(rows), (
            "The spend per purchase is the population average (some level of "
            f"{', '.join(thin)} has no repeat customer with a positive spend)."
        )
    return cvmodels.GammaGammaModel(spend_covariates=covariates).fit(rows), (
        "The spend per purchase is the Gamma-Gamma model's with the same covariates on the "
        "spend scale."
    )


def _customer_params(model: Any, params: Mapping[str, float], customers: pd.DataFrame) -> dict:
    """Each customer's natural parameters under ``params``: a float for a parameter no
    covariate moves, an array (one value per row of ``customers``) for one a covariate moves."""
    drawn = model.with_params(params)
    names = list(type(model)._param_names)
    rows = getattr(drawn, "_rows_from_table", None)
    if rows is None:
        return {n: float(params[n]) for n in names}
    return dict(zip(names, rows(customers, len(customers), "value_tiers"), strict=True))


def select(
    customers: pd.DataFrame,
    where: str,
    *,
    today: Any = None,
    include_invalid: bool = False,
    name: str | None = None,
) -> SegmentResult:
    """The customers a targeting filter selects.

    The filter language (see :mod:`custvalue.segments._filter` for the full grammar)::

        region in ["Jiangsu", "Zhejiang", "Shanghai"] and total_spend >= 500
        n_orders >= 5
        p_alive >= 0.5 and clv > 100
        category has "shoes"
        member and first_purchase between "2024-01-01" and "2024-06-30"
        birthday within 7 days

    ``and``, ``or``, ``not``, parentheses, ``= == != < <= > >=``, ``in [...]``, ``between ... and
    ...`` (inclusive), ``has`` (a list or ``;``-joined column holds a value; see
    :func:`bought_values`), ``within N days`` (yearly anniversary) and ``within last/next N
    days``. Fields are the table's columns and its index (``customer_id``); backticks quote
    other column names. The text is parsed and evaluated column by column; it is never executed,
    passed to ``eval``/``DataFrame.query`` or put into SQL.

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table.
    where : str
        The filter.
    today : date-like, optional
        Reference date of ``within`` (default: today).
    include_invalid : bool, default False
        Keep customers with ``total_spend <= 0`` or no orders (see :func:`invalid_members`).
    name : str, optional
        Name of the result.

    Raises
    ------
    FilterError
        (a :class:`~custvalue.errors.ParameterError`) syntax error, unknown field (lists the
        available fields) or type mismatch, with a caret under the position.
    """
    customers = _check_table(customers)
    mask = evaluate(where, customers, today=today)
    if not include_invalid:
        mask &= _valid_mask(customers)
    return SegmentResult(
        name or f"select: {where}", customers.loc[mask].copy(), pd.DataFrame(), [f"filter: {where}"]
    )


def bought_values(
    tx: pd.DataFrame, column: str, *, customer_col: str = "customer_id", sep: str = ";"
) -> pd.Series:
    """Every distinct value of a per-transaction attribute a customer has, joined by ``sep``.

    :func:`custvalue.rfm_summary` carries an attribute's value at the first purchase; for
    ``category has "shoes"`` (any category ever bought) join this onto the customer table.

    Parameters
    ----------
    tx : pandas.DataFrame
        Transactions with ``customer_col`` and ``column``.
    column : str
    customer_col : str, default "customer_id"
    sep : str, default ";"

    Returns
    -------
    pandas.Series
        Indexed by customer id, values sorted and joined (``"bags;shoes"``), named ``column``.
    """
    for col in (customer_col, column):
        if col not in tx.columns:
            raise DataValidationError(
                f"transactions have no column {col!r}; they have {list(tx.columns)}"
            )
    pairs = tx[[customer_col, column]].dropna().drop_duplicates()
    values = pairs[column].astype(str)
    if values.str.contains(sep, regex=False).any():
        raise DataValidationError(
            f"values of {column!r} contain the separator {sep!r}; choose another sep"
        )
    pairs = pairs.assign(_v=values).sort_values([customer_col, "_v"], kind="stable")
    out = pairs.groupby(customer_col, sort=True)["_v"].agg(sep.join)
    out.name = column
    out.index.name = customer_col
    return out


def _atomic_write(write: Any, path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(2, "output directory does not exist", str(parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_list(
    selection: Any,
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    format: str | None = None,
) -> Path:
    """Write a customer list for CRM and e-mail tools, atomically.

    The file has ``customer_id`` first, then ``columns`` (default: every column), with
    timestamps as ISO dates and categoricals as text. It is written to a temporary file in the
    same directory and renamed over ``path``, so a failure leaves any previous file intact.

    Parameters
    ----------
    selection : SegmentResult or pandas.DataFrame
        Customers indexed by id.
    path : path-like
        ``.csv`` or ``.parquet``.
    columns : sequence of str, optional
    format : {"csv", "parquet"}, optional
        Instead of the file name's suffix.

    Returns
    -------
    pathlib.Path
    """
    frame = selection.customers if isinstance(selection, SegmentResult) else selection
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(
            f"selection must be a SegmentResult or DataFrame, got {type(selection).__name__}"
        )
    target = Path(path)
    fmt = format or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(
        target.suffix.lower()
    )
    if fmt not in ("csv", "parquet"):
        raise ParameterError(f"{os.fspath(path)!r}: write a .csv or .parquet file")
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ParameterError(
                f"columns {missing} are not in the list; it has {list(frame.columns)}"
            )
        frame = frame[list(columns)]
    out = frame.copy()
    out.attrs = {}
    out.index = out.index.rename("customer_id")
    out = out.drop(columns=[c for c in ("customer_id",) if c in out.columns]).reset_index()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    if fmt == "csv":
        _atomic_write(
            lambda tmp: out.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S"), target
        )
    else:
        _atomic_write(lambda tmp: out.to_parquet(tmp, index=False), target)
    return target


# ------------------------------------------------------------------------------------------------
# over time and money
# ------------------------------------------------------------------------------------------------
def migration(
    customers_then: pd.DataFrame, customers_now: pd.DataFrame, *, rules: Any = None
) -> SegmentResult:
    """How customers moved between segments between two dates.

    Segments come from a ``segment`` column when both tables have one, else from
    :func:`rfm_segments` with ``rules``. Customers in ``customers_now`` only are counted as
    coming from ``"(new)"``; customers in ``customers_then`` only go to ``"(gone)"``.

    Returns
    -------
    SegmentResult
        ``table``: counts (rows: segment then, columns: segment now); ``extra["value"]``: the
        expected value now (``clv``, else ``total_spend``) of each cell; ``extra["share"]``:
        row shares; ``customers``: one row per customer with ``segment_then``, ``segment_now``.
    """
    then = _check_table(customers_then, what="customers_then")
    now = _check_table(customers_now, what="customers_now")

    def seg(frame: pd.DataFrame) -> pd.Series:
        if "segment" in frame:
            return frame["segment"].astype(str)
        return rfm_segments(frame, rules).customers["segment"].astype(str)

    s_then, s_now = seg(then), seg(now)
    ids = s_then.index.union(s_now.index)
    joined = pd.DataFrame(
        {
            "segment_then": s_then.reindex(ids).fillna("(new)"),
            "segment_now": s_now.reindex(ids).fillna("(gone)"),
        },
        index=ids,
    )
    value_col = "clv" if "clv" in now else "total_spend"
    joined["value_now"] = now[value_col].reindex(ids).fillna(0.0).to_numpy(float)
    order_then = [*_ordered(s_then), "(new)"]
    order_now = [*_ordered(s_now), "(gone)"]
    counts = pd.crosstab(joined["segment_then"], joined["segment_now"]).reindex(
        index=[s for s in order_then if s in set(joined["segment_then"])],
        columns=[s for s in order_now if s in set(joined["segment_now"])],
        fill_value=0,
    )
    value = (
        joined.pivot_table(
            index="segment_then",
            columns="segment_now",
            values="value_now",
            aggfunc="sum",
            fill_value=0.0,
        )
        .reindex_like(counts)
        .fillna(0.0)
    )
    share = counts.div(counts.sum(axis=1), axis=0)
    return SegmentResult(
        "segment migration",
        joined,
        counts,
        [f"rows: segment then; columns: segment now; value: {value_col} now"],
        {"value": value, "share": share},
    )


def _ordered(s: pd.Series) -> list[str]:
    rule_order = [*RFM_SEGMENT_RULES["segment"], "other"]
    seen = set(s)
    return [x for x in rule_order if x in seen] + sorted(seen - set(rule_order))


def _clv_frame(clv: Any) -> tuple[pd.DataFrame, float | None, str | None]:
    """The per-customer CLV frame (with ``cash_flow_k`` columns when computed), its horizon
    and time unit, from a ``CLVResult`` (``.frame``, ``.settings``) or a DataFrame (``attrs``)."""
    if hasattr(clv, "frame") and isinstance(clv.frame, pd.DataFrame):
        frame = clv.to_frame() if hasattr(clv, "to_frame") else clv.frame
    else:
        frame = clv
    settings = getattr(clv, "settings", None)
    if settings is not None:
        horizon, unit = getattr(settings, "horizon", None), getattr(settings, "time_unit", None)
    else:
        attrs = getattr(frame, "attrs", {}) or {}
        horizon, unit = attrs.get("horizon"), attrs.get("time_unit")
    if not isinstance(frame, pd.DataFrame) or "clv" not in frame:
        raise DataValidationError(
            "clv must be the result of customer_lifetime_value (a frame with a 'clv' column, or an "
            f"object with .frame); got {type(clv).__name__}"
        )
    horizon = None if horizon is None or not np.isfinite(float(horizon)) else float(horizon)
    return frame, horizon, None if unit is None else str(unit)


def _costs(costs: Any, customers: pd.DataFrame, by: str) -> pd.Series | None:
    if costs is None:
        return None
    if isinstance(costs, Mapping):
        return pd.Series({str(k): float(v) for k, v in costs.items()}, dtype=float)
    if isinstance(costs, pd.Series):
        return costs.astype(float).rename(index=str)
    if isinstance(costs, (str, os.PathLike)) and os.fspath(costs) in customers.columns:
        col = os.fspath(costs)
        return customers.groupby(customers[by].astype(str))[col].mean().astype(float)
    if isinstance(costs, (str, os.PathLike)):
        path = Path(costs)
        if not path.exists():
            raise ParameterError(
                f"costs={os.fspath(costs)!r} is neither a column of customers nor an existing CSV file"
            )
        table = pd.read_csv(path)
        if by not in table.columns or table.shape[1] < 2:
            raise DataValidationError(
                f"cost table {os.fspath(path)!r} needs a {by!r} column and a cost column; it has {list(table.columns)}"
            )
        cost_col = "cost" if "cost" in table else next(c for c in table.columns if c != by)
        return pd.Series(
            pd.to_numeric(table[cost_col], errors="raise").to_numpy(float),
            index=table[by].astype(str),
        )
    raise ParameterError(
        f"costs must be a mapping, a Series, a CSV path or a column name; got {type(costs).__name__}"
    )


def channel_economics(
    clv: Any,
    customers: pd.DataFrame,
    by: str = "channel",
    costs: Any = None,
    *,
    target_ratio: float = 3.0,
    horizon_months: float | None = None,
    interval: float = 0.9,
    model: Any = None,
    spend_model: Any = None,
    discount_rate: float = 0.1,
    margin: float = 1.0,
    n_draws: int = 200,
    seed: int | None = 0,
) -> SegmentResult:
    """CLV by acquisition channel (or any attribute) with intervals, against acquisition cost.

    Per channel: ``customers``, ``mean_clv`` and an interval for it, ``total_clv``; with costs,
    ``cac`` (acquisition cost per customer), ``ltv_cac`` (= mean CLV / CAC) and its value at the
    interval bounds, ``payback_months``, ``max_cac`` (mean CLV / ``target_ratio``, the most a
    channel can pay per customer at that ratio) and ``max_cac_lower`` (the same from the lower
    bound).

    * Interval of the mean CLV: parameter uncertainty is shared by all customers (one set of
      model parameters), so the per-customer bounds move together and their mean is close to the
      bound of the mean (exact when they are comonotone); the sampling error of the channel's
      mean over its customers (``sd / sqrt(n)``, normal quantile) is added in quadrature.
    * Payback period: the first month in which the mean cumulative discounted margin reaches
      the CAC, interpolated within the month, from the cash-flow columns (``cash_flow_k`` of
      ``customer_lifetime_value(..., cash_flows=True, time_unit="M")``) when present; otherwise
      assuming an even flow of ``mean_clv / horizon_months`` per month. NaN when the CLV over the
      horizon does not pay the CAC back.
    * Where an extra unit of budget does most: with a constant cost per customer, one more unit
      of budget buys ``1 / CAC`` customers worth ``mean_clv`` each, i.e. ``ltv_cac`` units of
      value. The rule: fund the channel with the highest ``ltv_cac`` at the *lower* interval
      bound, as long as it is above 1 (``best_for_budget``). Saturation (rising CAC with spend)
      is not in the data and is not modelled.

    Parameters
    ----------
    clv : pandas.DataFrame or object with ``.frame``
        :func:`custvalue.customer_lifetime_value` output (``clv`` [, ``clv_lower``,
        ``clv_upper``, cash flows]), indexed by customer id.
    customers : pandas.DataFrame
        Customer table with ``by``.
    by : str, default "channel"
    costs : mapping, Series, CSV path or column name, optional
        Acquisition cost per customer by channel; a CSV has a ``by`` column and ``cost``; a
        column of ``customers`` gives the mean per channel.
    target_ratio : float, default 3
        Target LTV/CAC for ``max_cac``.
    horizon_months : float, optional
        Horizon of the CLV, for the payback period without cash flows (default:
        the horizon of ``clv`` when in months).
    interval : float, default 0.9
        Coverage of the sampling part of the interval.
    model : fitted transaction model, optional
        A BG/NBD, MBG/NBD or Pareto/NBD model fitted with ``by`` among its covariates
        (``purchase_covariates`` / ``dropout_covariates``). The table then gets
        ``new_customer_clv`` (with ``_lower`` / ``_upper``): the value of a customer acquired
        today through the channel, from the covariate model's expected repeat purchases of a new
        customer (FHL 2005 eq. 9 / SMC 1987 eq. 17 at the channel's ``alpha_i``, ``beta_i`` or
        ``a_i, b_i``) month by month over ``horizon_months``, times ``margin`` and the expected
        spend, discounted at ``discount_rate`` a year; other covariates of the model are those of
        the channel's customers (their average new-customer value). The interval re-evaluates it
        at ``n_draws`` parameter draws (``model.sample_params``). ``ltv_cac``, ``max_cac`` and the
        payback then use ``new_customer_clv`` - the value the acquisition cost buys - instead of
        the mean CLV of the existing customers.
    spend_model : GammaGammaModel, optional
        Expected spend per purchase of a new customer (``expected_population_spend``, by channel
        when it has spend covariates); default 1 (value in purchases).
    discount_rate, margin : float
        Annual discount rate and margin for ``new_customer_clv``.
    n_draws : int, default 200
        Parameter draws for the interval of ``new_customer_clv`` (0: none).
    seed : int, optional
    """
    from statistics import NormalDist

    frame, clv_horizon, clv_unit = _clv_frame(clv)
    monthly_unit = clv_unit in ("M", "month", None)
    customers = _check_table(customers, (by,))
    if not target_ratio > 0:
        raise ParameterError(f"target_ratio must be > 0, got {target_ratio}")
    group = customers[by].reindex(frame.index)
    if group.isna().all():
        raise DataValidationError(
            f"no customer of the CLV frame has a {by!r} in customers (ids do not match)"
        )
    data = frame.assign(_group=group.astype(str).where(group.notna(), "(unknown)"))
    g = data.groupby("_group", sort=True)
    table = pd.DataFrame(
        {"customers": g.size(), "mean_clv": g["clv"].mean(), "total_clv": g["clv"].sum()}
    )
    se = g["clv"].std(ddof=1).fillna(0.0) / np.sqrt(table["customers"])
    if not 0 < interval < 1:
        raise ParameterError(f"interval must be between 0 and 1, got {interval}")
    z = NormalDist().inv_cdf(0.5 + interval / 2)
    has_bounds = {"clv_lower", "clv_upper"} <= set(frame.columns)
    par_lo = table["mean_clv"] - (g["clv_lower"].mean() if has_bounds else table["mean_clv"])
    par_hi = (g["clv_upper"].mean() if has_bounds else table["mean_clv"]) - table["mean_clv"]
    table["mean_clv_lower"] = table["mean_clv"] - np.sqrt(par_lo.clip(lower=0) ** 2 + (z * se) ** 2)
    table["mean_clv_upper"] = table["mean_clv"] + np.sqrt(par_hi.clip(lower=0) ** 2 + (z * se) ** 2)
    table.index.name = by
    notes = [
        f"mean CLV per customer acquired through each {by}, {interval:.0%} interval (parameter and sampling uncertainty)"
    ]
    value_col = "mean_clv"
    monthly_flows = None
    if model is not None:
        h = horizon_months if horizon_months is not None else (
            clv_horizon if clv_unit in ("M", "month") else None)
        if h is None:
            raise ParameterError("channel_economics with model= needs horizon_months=")
        new, lo, hi, monthly_flows = _new_customer_value(
            model, spend_model, customers, by, list(table.index), float(h), discount_rate, margin,
            interval, n_draws, seed,
        )
        table["new_customer_clv"] = new
        if lo is not None:
            table["new_customer_clv_lower"], table["new_customer_clv_upper"] = lo, hi
        value_col = "new_customer_clv"
        notes.append(
            f"new_customer_clv: value over {h:g} months of a customer acquired today through each "
            f"{by}, from {type(model).__name__}'s covariate effects (repeat purchases, margin "
            f"{margin:g}, discounted at {discount_rate:.0%} a year); LTV/CAC, max CAC and payback use it"
        )
    cac = _costs(costs, customers, by)
    if cac is not None:
        missing = [c for c in table.index if c not in cac.index]
        if missing:
            raise DataValidationError(
                f"no acquisition cost for {by} {missing}; costs given for {list(cac.index)}"
            )
        given = cac.reindex(table.index)
        if (given < 0).any() or not np.isfinite(given.to_numpy(float)).all():
            raise DataValidationError(f"acquisition costs must be finite and >= 0: {given.to_dict()}")
        table["cac"] = given.to_numpy(float)
        paid = table["cac"].where(table["cac"] > 0)  # no ratio for a channel that costs nothing
        lower_col = f"{value_col}_lower" if f"{value_col}_lower" in table else value_col
        upper_col = f"{value_col}_upper" if f"{value_col}_upper" in table else value_col
        table["ltv_cac"] = table[value_col] / paid
        table["ltv_cac_lower"] = table[lower_col] / paid
        table["ltv_cac_upper"] = table[upper_col] / paid
        if (table["cac"] == 0).any():
            notes.append(f"{by} with no acquisition cost have no LTV/CAC ratio and a payback of 0")
        table["max_cac"] = table[value_col] / target_ratio
        table["max_cac_lower"] = table[lower_col].clip(lower=0) / target_ratio
        flows = sorted(
            (c for c in frame.columns if c.startswith("cash_flow_")),
            key=lambda c: int(c.rsplit("_", 1)[1]),
        )
        if monthly_flows is not None:
            cum = np.cumsum(monthly_flows, axis=1)
            table["payback_months"] = [
                _payback(c, k) for c, k in zip(cum, table["cac"], strict=True)
            ]
        elif flows and monthly_unit:
            mean_flows = (
                data.groupby("_group", sort=True)[flows].mean().reindex(table.index).to_numpy(float)
            )
            cum = np.cumsum(mean_flows, axis=1)
            table["payback_months"] = [
                _payback(c, k) for c, k in zip(cum, table["cac"], strict=True)
            ]
        else:
            h = horizon_months
            if h is None and clv_unit in ("M", "month"):
                h = clv_horizon
            if h is None:
                table["payback_months"] = np.nan
                notes.append("payback needs horizon_months= or cash flows")
            else:
                monthly = table["mean_clv"] / float(h)
                pb = table["cac"] / monthly.where(monthly > 0)
                table["payback_months"] = pb.where(pb <= float(h))
        ok = table["ltv_cac_lower"] > 1
        table["best_for_budget"] = False
        if ok.any():
            table.loc[table["ltv_cac_lower"].where(ok).idxmax(), "best_for_budget"] = True
        notes.append(
            f"max_cac: the most a {by} can pay per customer at LTV/CAC = {target_ratio:g}; an extra "
            "unit of budget goes to the highest LTV/CAC at the lower bound (if above 1)"
        )
    return SegmentResult(
        f"economics by {by}", data.drop(columns="_group").assign(**{by: group.to_numpy()}), table, notes
    )


def _new_customer_value(
    model: Any, spend_model: Any, customers: pd.DataFrame, by: str, groups: list[str],
    horizon_months: float, discount_rate: float, margin: float, interval: float, n_draws: int,
    seed: int | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Discounted value of a new customer per group from a covariate transaction model.

    Month ``k`` contributes ``margin * spend * (E[X(k)] - E[X(k-1)]) / (1 + d)^(k/12)`` with
    ``E[X(t)]`` the model's ``expected_purchases_new_customer(t, covariates=...)``; for several
    prospects (other covariates taken from the group's customers) their mean. Returns the values,
    the interval bounds (None without draws) and the monthly discounted flows ``(groups, months)``.
    """
    encs = getattr(model, "covariate_encodings_", None) or {}
    cols = sorted({c for enc in encs.values() for c in enc.columns})
    if by not in cols:
        raise ParameterError(
            f"channel_economics: model= must be fitted with {by!r} among its covariates "
            f"(purchase_covariates/dropout_covariates); its covariates are {cols}"
        )
    if not 0 < float(horizon_months) <= 1200:
        raise ParameterError(f"horizon_months must be in (0, 1200]; got {horizon_months}")
    months = np.arange(1, math.ceil(horizon_months) + 1, dtype=float)
    months[-1] = float(horizon_months)
    unit = normalize_unit(getattr(model, "time_unit_", None) or "D")
    t_model = months * (365.25 / 12.0) / DAYS_PER_UNIT[unit]
    disc = (1.0 + float(discount_rate)) ** (-months / 12.0)
    others = [c for c in cols if c != by]
    known = customers[by].astype(str)
    prospects: dict[str, pd.DataFrame] = {}
    for g in groups:
        rows = customers.loc[known == g]
        if rows.empty:
            raise DataValidationError(f"no customer with {by} = {g!r} to describe a new customer")
        level = rows[by].iloc[0]
        if others:
            weight = rows.groupby(others, observed=True, sort=False).size()
            frame = weight.rename("_w").reset_index()
        else:
            frame = pd.DataFrame({"_w": [1.0]})
        frame[by] = [level] * len(frame)
        prospects[g] = frame

    def flows_for(m: Any) -> np.ndarray:
        out = np.empty((len(groups), months.size))
        for i, g in enumerate(groups):  # one small closed-form evaluation per channel
            frame = prospects[g]
            w = frame["_w"].to_numpy(float)
            cum = np.empty((len(frame), months.size))
            for p in range(len(frame)):  # prospects: the distinct covariate rows of the channel
                val = m.expected_purchases_new_customer(t_model, covariates=frame[cols].iloc[[p]])
                cum[p] = np.asarray(val, dtype=float).reshape(-1)
            per_month = np.diff(cum, axis=1, prepend=0.0)
            if spend_model is None:
                spend = np.ones(len(frame))
            elif getattr(spend_model, "covariate_encodings_", None):
                spend = np.array([
                    spend_model.expected_population_spend(frame[cols].iloc[[k]]) for k in range(len(frame))
                ])
            else:
                spend = np.full(len(frame), spend_model.expected_population_spend())
            value = per_month * spend[:, None] * float(margin) * disc[None, :]
            out[i] = np.einsum("p,pk->k", w, value) / w.sum()
        return out

    flows = flows_for(model)
    total = flows.sum(axis=1)
    if n_draws <= 0 or getattr(model, "covariance_", None) is None:
        return total, None, None, flows
    draws = model.sample_params(int(n_draws), seed=seed)
    sims = np.array([flows_for(model.with_params(row)).sum(axis=1)
                     for row in draws.to_dict("records")])
    q = (1.0 - float(interval)) / 2.0
    return total, np.quantile(sims, q, axis=0), np.quantile(sims, 1.0 - q, axis=0), flows


def _payback(cum: np.ndarray, cac: float) -> float:
    reached = np.nonzero(cum >= cac)[0]
    if len(reached) == 0:
        return float("nan")
    k = int(reached[0])
    before = cum[k - 1] if k > 0 else 0.0
    step = cum[k] - before
    return float(k + ((cac - before) / step if step > 0 else 1.0))
