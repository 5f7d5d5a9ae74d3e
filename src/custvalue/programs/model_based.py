"""Model-based programme effect: membership as a time-varying covariate of the Pareto/NBD.

A second view of a loyalty programme beside the difference-in-differences estimators of
:func:`custvalue.programs.estimate`: the Pareto/NBD with time-varying covariates (Bachmann,
Meierer & Näf 2021, "The Role of Time-Varying Contextual Factors in Latent Attrition Models for
Customer Base Analysis", *Marketing Science* 40(4); :class:`custvalue.models.DynamicParetoNBDModel`)
with ``member`` = 1 from the first period that starts on or after the customer's join date
separates the programme's effect on how often members buy (the purchase rate is multiplied by
``exp(gamma_purchase)``) from its effect on how fast they drop out (the dropout rate is multiplied
by ``exp(gamma_dropout)``). Membership switches on at the first *whole* period after joining, so
the purchase made on the joining day (customers often join at a purchase) does not count as a
member purchase.

Both effects are conditional on the model: they are causal only if joining is unrelated to the
customer's latent purchase and dropout rates given the history the model conditions on.
Self-selection (keen customers join) biases them upwards, exactly like the naive member gap;
the DiD estimators address that with comparison groups, this view with the model's latent
heterogeneity. Read the two side by side.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataValidationError, ParameterError
from .core import _transactions, _treatments

__all__ = ["DynamicEffect", "dynamic_effect", "membership_covariates"]

_DAY_NS = 86_400_000_000_000


@dataclass
class DynamicEffect:
    """Result of :func:`dynamic_effect`.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``["purchase rate", "dropout rate"]``; columns ``ratio`` (the multiplicative
        effect of membership, ``exp(coefficient)``), ``lower``, ``upper`` (95% Wald interval),
        ``coefficient``, ``std_error``, ``p_value``.
    sentences : list of str
        One plain-language sentence per row of ``table``.
    lr_test : dict
        Likelihood-ratio test of both effects against the Pareto/NBD without membership
        (``statistic``, ``df``, ``p_value``).
    model : DynamicParetoNBDModel
        The fitted model (its ``summary()`` has every parameter).
    n_customers, n_members : int
        Customers in the fit, and those who joined before the end of the window.
    period_days : int
        Covariate period length.
    warnings : list of str
        Input problems that were worked around.
    """

    table: pd.DataFrame
    sentences: list[str]
    lr_test: dict[str, Any]
    model: Any
    n_customers: int
    n_members: int
    period_days: int
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Plain-text summary."""
        lines = [
            "Programme effect on the purchase and the dropout rate (Pareto/NBD with membership "
            "as a time-varying covariate)",
            f"  customers: {self.n_customers:,}   members: {self.n_members:,}   periods: "
            f"{self.period_days} days",
            "",
            "  effect           ratio    95% interval       p-value",
        ]
        for name, row in self.table.iterrows():
            lines.append(
                f"  {name:<15} {row['ratio']:7.3f}   {row['lower']:6.3f} - {row['upper']:6.3f}"
                f"     {row['p_value']:.3g}"
            )
        lr = self.lr_test
        lines += ["", *[f"  {s}" for s in self.sentences], "",
                  f"  LR test against no programme effect: {lr['statistic']:.3g} on {lr['df']} df, "
                  f"p = {lr['p_value']:.3g}"]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _days(values: Any) -> np.ndarray:
    ns = pd.to_datetime(pd.Series(np.asarray(values))).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.floor_divide(ns, _DAY_NS)


def _membership_table(
    tx: pd.DataFrame, table: pd.DataFrame, observation_end: Any, step: int, grid_start: Any
) -> tuple[pd.DataFrame, int, int, list[str]]:
    """The covariate table (customer, period start, member) of every customer's window."""
    notes: list[str] = []
    days = _days(tx["date"].to_numpy())
    end_day = int(days.max()) if observation_end is None else int(_days([observation_end])[0])
    keep = days <= end_day
    codes, uniq = pd.factorize(tx["customer_id"].to_numpy()[keep], sort=True)
    index = pd.Index(uniq)
    first = np.full(len(index), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, days[keep])
    pos = index.get_indexer(table["customer_id"].to_numpy())
    unknown = pos < 0
    if unknown.any():
        notes.append(
            f"{int(unknown.sum())} member(s) have no purchase in the window and were left out "
            f"(e.g. {table.loc[unknown, 'customer_id'].head(3).tolist()})")
    join = np.full(len(index), np.inf)
    join[pos[~unknown]] = _days(table["date"].to_numpy()[~unknown])
    origin = int(first.min())
    if grid_start is not None:
        anchor = int(_days([grid_start])[0])
        origin = anchor - step * math.ceil((anchor - origin) / step)  # on the grid, <= first
    first_period = (first - origin) // step
    last_period = (end_day - origin) // step
    n_per = last_period - first_period + 1
    cust = np.repeat(np.arange(len(index)), n_per)
    offs = np.arange(cust.size) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    k = np.repeat(first_period, n_per) + offs
    start_day = origin + step * k
    member = (start_day >= join[cust]).astype(np.float64)
    n_members = int(np.isfinite(join).sum() - (join[np.isfinite(join)] > end_day).sum())
    if not member.any():
        raise DataValidationError(
            "no customer is a member in any whole period of the window (join dates after "
            f"{np.datetime64(end_day, 'D')} or in its last period); nothing to estimate")
    covariates = pd.DataFrame({
        "customer_id": index.to_numpy()[cust],
        "period_start": np.asarray(start_day, dtype="datetime64[D]").astype("datetime64[ns]"),
        "member": member,
    })
    return covariates, end_day, n_members, notes


def membership_covariates(
    transactions: Any,
    treatments: Any,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    observation_end: Any = None,
    period_days: int = 7,
    grid_start: Any = None,
) -> pd.DataFrame:
    """The time-varying ``member`` covariate that :func:`dynamic_effect` fits, as a table.

    One row per customer and period (``customer_id, period_start, member``) from the period of
    the first purchase to the one holding ``observation_end``; ``member`` is 1 from the first
    period that starts on or after the join date. Add other columns (a season flag, say) and
    fit :class:`custvalue.models.DynamicParetoNBDModel` directly for a richer model.
    Arguments as :func:`dynamic_effect`.
    """
    if int(period_days) != period_days or period_days < 1:
        raise ParameterError(f"period_days must be a whole number >= 1; got {period_days!r}")
    tx = _transactions(transactions, "customer_id", "date")
    table = _check_treatments(_treatments(treatments, customer_col, date_col, None))
    return _membership_table(tx, table, observation_end, int(period_days), grid_start)[0]


def _check_treatments(table: pd.DataFrame) -> pd.DataFrame:
    dup = table["customer_id"].duplicated(keep=False)
    if dup.any():
        raise DataValidationError(
            f"treatments list {int(table.loc[dup, 'customer_id'].nunique())} customer(s) more than "
            f"once (e.g. {table.loc[dup, 'customer_id'].head(3).tolist()}); keep one join date each")
    if table["date"].isna().any():
        raise DataValidationError(
            f"{int(table['date'].isna().sum())} treatment rows have no join date; drop them or "
            "fill them")
    return table


def dynamic_effect(
    transactions: Any,
    treatments: Any,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    observation_end: Any = None,
    period_days: int = 7,
    grid_start: Any = None,
    time_unit: str = "W",
) -> DynamicEffect:
    """Effect of joining a programme on the purchase rate and on dropout, from a lifetime model.

    Fits :class:`custvalue.models.DynamicParetoNBDModel` (Bachmann, Meierer & Näf 2021) with
    one covariate, ``member``, on both processes: 0 before and 1 from the first period (of
    ``period_days`` days, on a calendar grid starting at the earliest first purchase) that
    starts on or after the customer's join date. A member's purchase rate is
    ``exp(gamma_purchase)`` times and her dropout rate ``exp(gamma_dropout)`` times what they
    were before joining, given her latent rates.

    Parameters
    ----------
    transactions : DataFrame or source
        As :func:`custvalue.load_transactions` returns (or anything it accepts).
    treatments : DataFrame or path
        One row per member: ``customer_col`` and ``date_col`` (the join date). Customers who
        never joined are simply absent.
    customer_col, date_col : str
        Column names in ``treatments`` (the transactions use the canonical names).
    observation_end : date-like, optional
        End of the estimation window (default: the last transaction).
    period_days : int, default 7
        Length of the covariate periods.
    grid_start : date-like, optional
        Start of one period of the calendar grid (e.g. a Monday for weeks starting on Mondays);
        default: the earliest first purchase.
    time_unit : str, default "W"
        Model time unit.

    Returns
    -------
    DynamicEffect

    Raises
    ------
    DataValidationError
        A customer is listed twice in ``treatments``, a join date is missing, or nobody joined
        within the window.
    """
    from ..models.pareto_nbd_dynamic import DynamicParetoNBDModel

    if int(period_days) != period_days or period_days < 1:
        raise ParameterError(f"period_days must be a whole number >= 1; got {period_days!r}")
    step = int(period_days)
    tx = _transactions(transactions, "customer_id", "date")
    table = _check_treatments(_treatments(treatments, customer_col, date_col, None))
    notes: list[str] = []
    covariates, end_day, n_members, extra = _membership_table(tx, table, observation_end, step,
                                                             grid_start)
    notes += extra
    index = pd.Index(pd.unique(covariates["customer_id"]))
    model = DynamicParetoNBDModel(["member"], ["member"], time_unit=time_unit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(tx, covariates, observation_end=pd.Timestamp(np.datetime64(end_day, "D")),
                  period_days=step)
    notes += [str(c.message) for c in caught if "BoundaryFitWarning" in type(c.message).__name__]
    eff = model.effects_
    rows, sentences = {}, []
    for proc, label in (("purchase", "purchase rate"), ("dropout", "dropout rate")):
        r = eff.loc[(proc, "member")]
        rows[label] = {
            "ratio": r["ratio"], "lower": r["lower"], "upper": r["upper"],
            "coefficient": r["coefficient"], "std_error": r["std_error"], "p_value": r["p_value"],
        }
        if proc == "purchase":
            sentences.append(
                f"After joining, members buy {r['ratio']:.2f} times as often as before "
                f"(95% CI {r['lower']:.2f}-{r['upper']:.2f}), given their own latent rate.")
        else:
            pct = 100 * (1 - r["ratio"])
            change = (f"{pct:.0f}% lower" if pct >= 0 else f"{-pct:.0f}% higher")
            sentences.append(
                f"Their risk of dropping out in any week is {change} than before joining "
                f"(ratio {r['ratio']:.2f}, 95% CI {r['lower']:.2f}-{r['upper']:.2f}).")
    out = pd.DataFrame.from_dict(rows, orient="index")
    if not all(math.isfinite(v) for v in out.to_numpy().ravel()):  # pragma: no cover
        raise DataValidationError("the membership effects are not finite; see model.summary()")
    return DynamicEffect(
        table=out, sentences=sentences, lr_test=dict(model.lr_test_), model=model,
        n_customers=len(index), n_members=n_members, period_days=step, warnings=notes,
    )
