"""The customer value report (``notebooks/value_report.ipynb``): its parameters, checks and analysis.

A report module holds four things, in this order: the analysis (:func:`analyse`, returning one
result object, :class:`ValueReport`), the declared parameters (:data:`VALUE_PARAMS`), the
checks run before any kernel starts (:func:`check_params`), and the registration
(:data:`SPEC`). The segment and programme reports are built the same way.

The notebook holds the narrative and the presentation; everything it shows is computed here by
:func:`analyse` and returned as one :class:`ValueReport`, so the same numbers are available to
tests, other reports and interactive work without executing the notebook.

The analysis, in the order the report presents it:

1. **Customer base**: the per-customer RFM summary (:func:`custvalue.summary.rfm_summary`) and
   acquisition cohorts (:func:`custvalue.summary.cohort_table`), monthly when the first
   purchases span at most two years, else quarterly.
2. **Models**: each candidate transaction model (BG/NBD, Fader, Hardie & Lee 2005; Pareto/NBD,
   Schmittlein, Morrison & Colombo 1987; MBG/NBD, Batislam, Denizel & Filiztekin 2007) is fitted
   on the calibration period and scored on the holdout
   (:func:`custvalue.evaluation.compare_models`), which picks one.
3. **Value**: the chosen model refitted on all the data, the Gamma-Gamma spend model (Fader,
   Hardie & Lee 2005b) fitted on the repeat customers with a positive average spend (its
   likelihood has ``ln m``), and the discounted CLV with parameter-uncertainty intervals of
   every customer (:func:`custvalue.value.customer_lifetime_value`; the spend prediction is
   linear in ``m``, so repeat customers whose purchases were all worth 0 are valued too).
4. **Breakdowns**: value deciles, top customers, value by acquisition cohort, channel and
   region, and the rule-of-thumb LTV beside the model (:func:`custvalue.value.heuristic_ltv`,
   :func:`custvalue.value.compare_heuristic`).

>>> from custvalue import reports
>>> tx, quality = reports.load_report_data("cdnow-sample")
>>> result = reports.value.analyse(tx, models=["bgnbd"], n_draws=50)
>>> result.chosen_name, round(result.total_value["estimate"])  # doctest: +SKIP
('BG/NBD', 48210)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._time import UNIT_NAMES
from ..data import load_transactions
from ..errors import ConvergenceError, DataValidationError, ParameterError
from ..segments import value_by, value_deciles
from .inputs import Freq, check_freq, customer_base, resolve_periods
from .outputs import Money
from .runner import RunResult, run
from .spec import Param, ReportSpec, notebook_path, register_report

if TYPE_CHECKING:  # the models take a second to import: only analyse() needs them
    from .. import evaluation, value
    from .. import models as cvmodels

__all__ = [
    "CANDIDATE_MODELS",
    "CHOICE_RULE",
    "LOST_THRESHOLD",
    "RMSE_TOLERANCE",
    "SEGMENT_COLUMNS",
    "SPEC",
    "VALUE_PARAMS",
    "ValueReport",
    "analyse",
    "check_data",
    "check_params",
    "choose_model",
    "demo",
    "value_by",
]

#: Transaction models the report can compare: parameter value -> (display name, class name in
#: :mod:`custvalue.models`).
CANDIDATE_MODELS: dict[str, tuple[str, str]] = {
    "bgnbd": ("BG/NBD", "BetaGeoModel"),
    "pareto_nbd": ("Pareto/NBD", "ParetoNBDModel"),
    "mbgnbd": ("MBG/NBD", "ModifiedBetaGeoModel"),
}

#: The candidate models' keys, as :func:`analyse` accepts them (``models=``).
ModelKey = Literal[tuple(CANDIDATE_MODELS)]  # type: ignore[valid-type]

#: Customer attributes the value is broken down by when the data have them, in report order.
SEGMENT_COLUMNS: tuple[str, ...] = ("channel", "region")

_COHORT_PERIOD_NAMES = {"M": "month", "Q": "quarter"}
#: Columns of the top-customers table (those present).
_TOP_COLUMNS = (
    "first_purchase",
    "last_purchase",
    "n_orders",
    "total_spend",
    "p_alive",
    "expected_purchases",
    "clv",
    "clv_lower",
    "clv_upper",
    "region",
    "channel",
)
#: Customers below this probability of being active count as probably lost in the report.
LOST_THRESHOLD = 0.2


@dataclasses.dataclass
class ValueReport:
    """Everything the value report shows, computed by :func:`analyse`.

    Attributes
    ----------
    calibration_end, observation_end : pandas.Timestamp
        End of the calibration period and of the observation period.
    first_date : pandas.Timestamp
        Date of the first transaction.
    freq : str
        Time unit the models are fitted in (``"D"``, ``"W"`` or ``"M"``); ``unit`` is its name.
    unit : str
    attributes : list of str
        Customer attribute columns carried from the transactions (e.g. ``region``).
    customers : pandas.DataFrame
        RFM summary of every customer up to ``observation_end`` (:func:`~custvalue.summary.rfm_summary`).
    calibration : pandas.DataFrame
        Calibration/holdout summary (:func:`~custvalue.summary.calibration_holdout`).
    n_customers, n_orders : int
    revenue : float
        Total spend of all customers.
    repeat_rate : float
        Share of customers who bought more than once.
    recommendation : custvalue.models.Recommendation
        Which model families fit this kind of data, and why.
    comparison : custvalue.evaluation.ModelComparison
        The candidates fitted on the calibration period, ranked on the holdout, one chosen.
    chosen_name : str
        Display name of the chosen model (e.g. ``"BG/NBD"``).
    scorecard : custvalue.evaluation.Scorecard
        Holdout scorecard of the chosen model against the naive baselines.
    tracking : pandas.DataFrame
        Weekly actual vs expected repeat purchases of the chosen model
        (:func:`~custvalue.evaluation.tracking`).
    final_model : BaseModel
        The chosen model refitted on all the data (``customers``).
    spend_model : custvalue.models.GammaGammaModel
        Gamma-Gamma fitted on the repeat customers with ``monetary_value > 0``.
    zero_value_repeat_customers : int
        Repeat customers whose repeat purchases were all worth 0: left out of the spend fit,
        valued like everybody else.
    clv : custvalue.value.CLVResult
        :func:`~custvalue.value.customer_lifetime_value` of every customer.
    total_value : pandas.Series
        ``estimate`` [, ``lower``, ``upper``, ...] of the total value (:func:`~custvalue.value.total_value`).
    horizon_months, discount_rate, margin : float
        The valuation settings.
    interval : float or None
        Coverage of the CLV intervals; None when no intervals were computed.
    scores : pandas.DataFrame
        One row per customer, indexed by customer id: the summary, ``cohort``, ``p_alive``, the
        CLV columns, ``clv_decile`` (1 = most valuable tenth) and ``heuristic_ltv`` (see
        :data:`custvalue.reports.SCORE_COLUMNS`), plus attributes.
    deciles : pandas.DataFrame
        Per value decile: ``customers``, ``expected_value``, ``mean_clv``, ``mean_p_alive``,
        ``past_spend_per_customer``, ``share_of_value``.
    top_customers : pandas.DataFrame
        The ``top_n`` most valuable customers with their history, ``p_alive`` and CLV.
    cohort_freq : str
        ``"M"`` or ``"Q"``: the acquisition cohort period; ``cohort_period_name`` is its name.
    cohort_period_name : str
    cohorts : pandas.DataFrame
        Long :func:`~custvalue.summary.cohort_table`.
    cohort_retention : pandas.DataFrame
        Share of each cohort (rows) buying in each period since acquisition (columns, at most 24).
    cohort_revenue : pandas.DataFrame
        Cumulative revenue per customer of each cohort by period since acquisition.
    cohort_summary : pandas.DataFrame
        Per cohort: ``customers``, ``revenue`` to date and ``revenue_per_customer``.
    cohort_value : pandas.DataFrame
        Expected value per acquisition cohort (see :func:`value_by`).
    segment_value : dict of str to pandas.DataFrame
        Expected value per ``channel`` / ``region`` where the data have them.
    segment : str or None
        Attribute the rule of thumb is computed by (the first of :data:`SEGMENT_COLUMNS`
        present), None for one overall figure.
    heuristic : pandas.DataFrame
        :func:`~custvalue.value.heuristic_ltv` per ``segment``.
    heuristic_vs_model : pandas.DataFrame
        :func:`~custvalue.value.compare_heuristic`: rule of thumb beside the model per segment.
    """

    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp
    first_date: pd.Timestamp
    freq: str
    unit: str
    attributes: list[str]
    customers: pd.DataFrame
    calibration: pd.DataFrame
    n_customers: int
    n_orders: int
    revenue: float
    repeat_rate: float
    recommendation: cvmodels.Recommendation
    comparison: evaluation.ModelComparison
    chosen_name: str
    scorecard: evaluation.Scorecard
    tracking: pd.DataFrame
    final_model: Any
    spend_model: cvmodels.GammaGammaModel
    zero_value_repeat_customers: int
    clv: value.CLVResult
    total_value: pd.Series
    horizon_months: float
    discount_rate: float
    margin: float
    interval: float | None
    scores: pd.DataFrame
    deciles: pd.DataFrame
    top_customers: pd.DataFrame
    cohort_freq: str
    cohort_period_name: str
    cohorts: pd.DataFrame
    cohort_retention: pd.DataFrame
    cohort_revenue: pd.DataFrame
    cohort_summary: pd.DataFrame
    cohort_value: pd.DataFrame
    segment_value: dict[str, pd.DataFrame]
    segment: str | None
    heuristic: pd.DataFrame
    heuristic_vs_model: pd.DataFrame
    covariates: list[str] = dataclasses.field(default_factory=list)
    covariate_effects: pd.DataFrame | None = None
    covariate_test: dict[str, float] | None = None

    # ---------------------------------------------------------------- headline numbers
    @property
    def chosen_model(self) -> Any:
        """The chosen model as fitted on the calibration period."""
        return self.comparison.chosen

    @property
    def reference_model(self) -> Any:
        """The final model for a customer at every covariate's reference level (or 0): the model
        itself without covariates. Plots over (frequency, recency) use it."""
        if not self.covariates:
            return self.final_model
        k0 = len(self.final_model._base_names())
        base = self.final_model.params_.iloc[:k0]
        return type(self.final_model).from_params(time_unit=self.final_model.time_unit_, **base.to_dict())

    @property
    def covariate_reference_text(self) -> str:
        """Which customers :attr:`reference_model` describes, in words."""
        encs = getattr(self.final_model, "covariate_encodings_", {}) or {}
        parts: list[str] = []
        for enc in encs.values():
            for col in enc.columns:
                text = f"{col} = {enc.reference[col]}" if col in enc.reference else f"{col} = 0"
                if text not in parts:
                    parts.append(text)
        return ", ".join(parts)

    @property
    def has_interval(self) -> bool:
        """Whether the total value has an interval (``n_draws > 0``)."""
        return "lower" in self.total_value.index

    @property
    def holdout_model(self) -> pd.Series:
        """Holdout metrics of the chosen model (``rmse``, ``total_error_pct``, ...)."""
        return self.scorecard.metrics.loc["model"]

    @property
    def holdout_carry_forward(self) -> pd.Series:
        """Holdout metrics of the carry-forward baseline."""
        return self.scorecard.metrics.loc["carry_forward"]

    @property
    def p_alive(self) -> pd.Series:
        """Probability that each customer is still active (final model), by customer id."""
        return self.scores["p_alive"]

    @property
    def mean_p_alive(self) -> float:
        """Average probability of being active over all customers."""
        return float(self.scores["p_alive"].mean())

    @property
    def share_probably_lost(self) -> float:
        """Share of customers whose probability of being active is below :data:`LOST_THRESHOLD`."""
        return float((self.scores["p_alive"] < LOST_THRESHOLD).mean())

    @property
    def top_decile_share(self) -> float:
        """Share of the expected value held by the most valuable tenth of customers."""
        return float(self.deciles.loc[1, "share_of_value"])

    @property
    def top_three_deciles_share(self) -> float:
        """Share of the expected value held by the most valuable 30% of customers."""
        return float(self.deciles["share_of_value"].iloc[:3].sum())

    @property
    def bottom_half_share(self) -> float:
        """Share of the expected value held by the least valuable half of customers."""
        return float(self.deciles["share_of_value"].iloc[5:].sum())

    @property
    def retention_next_period(self) -> float:
        """Average share of a cohort buying again in the period after acquisition."""
        return float(self.cohort_retention.iloc[:, 1].mean())

    @property
    def retention_latest_period(self) -> float:
        """Average share of a cohort buying in the latest period shown (of those observed)."""
        return float(self.cohort_retention.iloc[:, -1].dropna().mean())

    @property
    def comparison_table(self) -> pd.DataFrame:
        """The candidates side by side for readers: holdout ``rmse``, ``mae``,
        ``total_error_pct``, ``gini``, ``log_likelihood``, ``bic``, ``fitted`` ("yes" or "did not
        fit": the error itself is in :attr:`fit_failures`) and ``chosen``."""
        table = self.comparison.table
        show = [c for c in ("rmse", "mae", "total_error_pct", "gini", "log_likelihood", "bic")
                if c in table.columns]
        out = table[show].copy()
        out["fitted"] = np.where(table.index.isin(list(self.fit_failures)), "did not fit", "yes")
        out["chosen"] = table["chosen"]
        return out

    @property
    def fit_failures(self) -> dict[str, str]:
        """Candidates whose fit failed, with the error (technical; the report collapses it)."""
        if "error" not in self.comparison.table:
            return {}
        errors = self.comparison.table["error"].fillna("").astype(str)
        return {str(k): v for k, v in errors.items() if v.strip()}

    @property
    def choice_table(self) -> pd.DataFrame:
        """The candidates as the choice rule sees them: holdout ``rmse``, ``within_tolerance``
        (of the best RMSE, :data:`RMSE_TOLERANCE`), ``total_error_pct``, ``bic`` and ``chosen``."""
        table = self.comparison.table
        ok = table["rmse"].notna()
        best = table.loc[ok, "rmse"].min()
        out = pd.DataFrame(
            {
                "rmse": table["rmse"],
                "within_tolerance": ok & (table["rmse"] <= best * (1.0 + RMSE_TOLERANCE) + 1e-15),
                "total_error_pct": table["total_error_pct"],
                "bic": table["bic"] if "bic" in table else np.nan,
                "chosen": table["chosen"],
            }
        )
        return out

    @property
    def choice_explanation(self) -> str:
        """Why :attr:`chosen_name` was chosen, in one or two sentences with the numbers."""
        table = self.choice_table
        tied = table[table["within_tolerance"]]
        chosen = table.loc[self.chosen_name]
        if len(tied) == 1:
            return (
                f"{self.chosen_name} has the lowest holdout error per customer (RMSE "
                f"{chosen['rmse']:.3f}); no other model is within {RMSE_TOLERANCE:.0%} of it. "
                f"Its predicted holdout total is {chosen['total_error_pct']:+.1f}% off the actual."
            )
        others = ", ".join(
            f"{name} {row['total_error_pct']:+.1f}% (RMSE {row['rmse']:.3f})"
            for name, row in tied.iterrows()
            if name != self.chosen_name
        )
        return (
            f"{len(tied)} models are within {RMSE_TOLERANCE:.0%} of the best holdout RMSE, so they "
            f"predict individual customers equally well. {self.chosen_name} predicts the holdout "
            f"total best: {chosen['total_error_pct']:+.1f}% off the actual (RMSE "
            f"{chosen['rmse']:.3f}), against {others}."
        )

    def fit_descriptions(self) -> dict[str, Any]:
        """Each candidate's fit for readers (:class:`~custvalue.reports.outputs.FitDescription`):
        estimates, "converged" in words, the optimiser's messages in a collapsed section."""
        from .outputs import FitDescription

        return {
            name: FitDescription.of(name, fitted.summary())
            for name, fitted in self.comparison.models.items()
        }

    def metrics(self) -> dict[str, Any]:
        """The headline numbers written to ``metrics.json`` (stable keys)."""
        total = self.total_value
        card_model, card_cf = self.holdout_model, self.holdout_carry_forward
        return {
            "customers": self.n_customers,
            "orders": self.n_orders,
            "revenue": self.revenue,
            "repeat_rate": self.repeat_rate,
            "first_date": self.first_date,
            "calibration_end": self.calibration_end,
            "observation_end": self.observation_end,
            "horizon_months": self.horizon_months,
            "discount_rate": self.discount_rate,
            "margin": self.margin,
            "clv_total": float(total["estimate"]),
            "clv_total_lower": float(total["lower"]) if self.has_interval else None,
            "clv_total_upper": float(total["upper"]) if self.has_interval else None,
            "clv_interval": self.interval if self.has_interval else None,
            "clv_per_customer": float(total["estimate"]) / self.n_customers,
            "top_decile_share": self.top_decile_share,
            "mean_p_alive": self.mean_p_alive,
            "zero_value_repeat_customers": self.zero_value_repeat_customers,
            "chosen_model": self.chosen_name,
            "holdout_rmse": float(card_model["rmse"]),
            "holdout_rmse_carry_forward": float(card_cf["rmse"]),
            "holdout_total_error_pct": float(card_model["total_error_pct"]),
            "holdout_gini": float(self.scorecard.ranking["gini"]),
            "model_params": {k: float(v) for k, v in self.final_model.params_.items()},
            "spend_params": {k: float(v) for k, v in self.spend_model.params_.items()},
        }


#: Relative tolerance on the holdout RMSE within which candidate models count as tied.
RMSE_TOLERANCE = 0.01

#: The model-choice rule in words (shown in the report).
CHOICE_RULE = (
    "Each candidate model is fitted on the calibration period and predicts every customer's "
    "purchases in the holdout period. Models whose holdout error per customer (RMSE) is within "
    f"{RMSE_TOLERANCE:.0%} of the best count as equally good at the customer level; among them "
    "the one whose predicted holdout total is closest to the actual total (smallest absolute "
    "total error) is chosen, because the report's headline is a total. Remaining ties go to "
    "the lowest BIC."
)


def choose_model(table: pd.DataFrame, tolerance: float = RMSE_TOLERANCE) -> str:
    """The model the value report uses, from a comparison table (:data:`CHOICE_RULE`).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per candidate, indexed by name, with holdout ``rmse`` and ``total_error_pct``
        (NaN for a candidate that failed to fit) and, optionally, ``bic``
        (:attr:`custvalue.evaluation.ModelComparison.table`).
    tolerance : float, default :data:`RMSE_TOLERANCE`
        Relative tolerance on the RMSE within which candidates count as tied.

    Returns
    -------
    str
        Name of the chosen candidate.

    Raises
    ------
    ConvergenceError
        If no candidate has a holdout RMSE.
    """
    ok = table[table["rmse"].notna()] if "rmse" in table else table.iloc[:0]
    if ok.empty:
        raise ConvergenceError("no transaction model could be fitted; nothing to choose from")
    near = ok[ok["rmse"] <= ok["rmse"].min() * (1.0 + tolerance) + 1e-15]
    bic = near["bic"] if "bic" in near else pd.Series(np.nan, index=near.index)
    keys = pd.DataFrame(
        {"abs_total_error": near["total_error_pct"].abs(), "bic": bic.fillna(np.inf)}
    )
    return str(keys.sort_values(["abs_total_error", "bic"], kind="stable").index[0])


def _apply_choice(comparison: Any, name: str) -> Any:
    """The comparison with ``name`` chosen under :data:`CHOICE_RULE` (a new object)."""
    table = comparison.table.copy()
    table["chosen"] = table.index == name
    rest = table.loc[~table["chosen"]].sort_values("rmse", na_position="last")
    table = pd.concat([table.loc[table["chosen"]], rest])
    return dataclasses.replace(
        comparison, table=table, chosen=comparison.models[name], chosen_name=name,
        rule=CHOICE_RULE,
    )


def _candidates(models: Sequence[str]) -> dict[str, Any]:
    names = list(models)
    unknown = [m for m in names if m not in CANDIDATE_MODELS]
    if unknown or not names:
        raise ParameterError(
            f"models must name at least one of {', '.join(CANDIDATE_MODELS)}; got {names!r}"
        )
    from .. import models as cvmodels

    return {CANDIDATE_MODELS[m][0]: getattr(cvmodels, CANDIDATE_MODELS[m][1])() for m in names}


def _cohort_freq(customers: pd.DataFrame) -> str:
    span = customers["first_purchase"].max() - customers["first_purchase"].min()
    return "M" if span.days <= 2 * 366 else "Q"


def analyse(
    tx: pd.DataFrame,
    *,
    freq: Freq = "W",
    calibration_end: Any = None,
    observation_end: Any = None,
    horizon_months: float = 12.0,
    discount_rate: float = 0.1,
    margin: float = 1.0,
    interval: float = 0.9,
    n_draws: int = 200,
    models: Sequence[ModelKey] = tuple(CANDIDATE_MODELS),
    top_n: int = 20,
    seed: int | None = 42,
    covariates: Sequence[str] = (),
) -> ValueReport:
    """Run the value report's analysis on validated transactions.

    Parameters
    ----------
    tx : pandas.DataFrame
        Canonical transactions (``customer_id``, ``date``, ``amount`` [, ``order_id``],
        attributes), e.g. from :func:`custvalue.reports.load_report_data` or
        :func:`custvalue.data.load_transactions`. Every other column is a customer attribute.
    freq : {"D", "W", "M"}, default "W"
        Time unit the transaction models are fitted in.
    calibration_end, observation_end : date-like, optional
        End of the calibration period and of the observation period; by default halfway
        through the data and the last transaction date (:func:`custvalue.reports.resolve_periods`).
    horizon_months : float, default 12
        How far ahead customer value is projected.
    discount_rate : float, default 0.1
        Annual discount rate.
    margin : float, default 1.0
        Profit margin applied to revenue.
    interval : float, default 0.9
        Coverage of the CLV intervals.
    n_draws : int, default 200
        Parameter draws for the intervals; 0 computes no intervals (and no ``clv_lower`` /
        ``clv_upper`` columns).
    models : sequence of str, default all of :data:`CANDIDATE_MODELS`
        Candidate transaction models, by key of :data:`CANDIDATE_MODELS`.
    top_n : int, default 20
        Rows of :attr:`ValueReport.top_customers`.
    seed : int, optional
        Seed of the parameter draws.
    covariates : sequence of str, default ()
        Customer attributes (columns among the transactions' attributes, e.g. ``channel``)
        that shift both the purchase and the dropout rate of the chosen model when it is
        refitted on all the data (static covariates in CLVTools' parameterisation, see
        :class:`custvalue.models.ParetoNBDModel`). The model comparison itself is done
        without covariates; :attr:`ValueReport.covariate_effects` holds the effects with a
        sentence each and :attr:`ValueReport.covariate_test` the likelihood-ratio test.

    Returns
    -------
    ValueReport

    Raises
    ------
    ParameterError
        Unknown model names or impossible periods.
    ConvergenceError
        When none of the candidate models could be fitted.
    """
    from .. import evaluation, value
    from .. import models as cvmodels
    from .. import summary as cvsummary

    check_freq(freq)
    candidates = _candidates(models)
    # customer base
    cal_end, obs_end, attributes, customers = customer_base(tx, freq, calibration_end, observation_end)
    covariates = list(covariates or [])
    missing_cov = [c for c in covariates if c not in attributes]
    if missing_cov:
        raise ParameterError(
            f"covariates {missing_cov} are not customer attributes of the data (attributes: "
            f"{attributes}); list them in attributes= as well"
        )
    cal = cvsummary.calibration_holdout(
        tx,
        calibration_end=cal_end,
        observation_end=obs_end,
        freq=freq,
        attributes=attributes or None,
    )
    n_customers = len(customers)

    # models: fit each candidate on the calibration period, score it on the holdout, pick one
    recommendation = cvmodels.recommend(tx)
    comparison = evaluation.compare_models(candidates, cal)
    if comparison.chosen is None or comparison.chosen_name is None:
        errors = comparison.table["error"].dropna() if "error" in comparison.table else []
        raise ConvergenceError(
            "no transaction model could be fitted: "
            + "; ".join(f"{k}: {v}" for k, v in dict(errors).items())
        )
    comparison = _apply_choice(comparison, choose_model(comparison.table))
    chosen_name = comparison.chosen_name
    card = comparison.scorecards[chosen_name]
    track = evaluation.tracking(
        comparison.chosen, tx, cal, period="W", calibration_end=cal_end, end=obs_end
    )

    # value: the chosen model refitted on all the data; spend from Gamma-Gamma fitted on the
    # repeat customers with positive spend (the likelihood has ln m); every customer is valued
    if covariates:
        final_model = type(comparison.chosen)(
            purchase_covariates=covariates, dropout_covariates=covariates
        ).fit(customers)
        covariate_effects = final_model.covariate_effects(0.90)
        covariate_test = final_model.likelihood_ratio_test()
    else:
        final_model = type(comparison.chosen)().fit(customers)
        covariate_effects = covariate_test = None
    repeat = customers["frequency"] > 0
    spend_model = cvmodels.GammaGammaModel().fit(
        customers[repeat & (customers["monetary_value"] > 0)]
    )
    clv = value._clv_over_months(
        final_model, spend_model, customers, horizon_months=horizon_months,
        discount_rate=discount_rate, margin=margin, interval=interval if n_draws > 0 else None,
        n_draws=max(n_draws, 1), seed=seed,
    )
    total = value.total_value(clv)

    # per-customer scores (stable column names, see custvalue.reports.SCORE_COLUMNS)
    cohort_freq = _cohort_freq(customers)
    scores = customers.copy()
    scores["cohort"] = scores["first_purchase"].dt.to_period(cohort_freq).dt.start_time
    scores["p_alive"] = final_model.probability_alive(customers)
    for col in ("expected_purchases", "expected_spend", "clv", "clv_lower", "clv_upper"):
        if col in clv.frame.columns:
            scores[col] = clv.frame[col]
    scores["clv_decile"], deciles = value_deciles(scores)

    # rule of thumb per segment (the first attribute of SEGMENT_COLUMNS the data have)
    segment = next((c for c in SEGMENT_COLUMNS if c in attributes), None)
    heuristic = value.heuristic_ltv(
        tx, margin=margin, by=segment, horizon_months=horizon_months, observation_end=obs_end
    )
    heuristic_vs_model = value.compare_heuristic(heuristic, clv, scores, by=segment)
    h_col = "heuristic_ltv" if "heuristic_ltv" in heuristic.columns else heuristic.columns[-1]
    scores["heuristic_ltv"] = (
        scores[segment].map(heuristic[h_col]) if segment else float(heuristic[h_col].iloc[0])
    )

    top_columns = [c for c in _TOP_COLUMNS if c in scores.columns]
    top_customers = scores.sort_values("clv", ascending=False).head(top_n)[top_columns]

    # acquisition cohorts: activity and revenue to date, and expected value
    cohorts = cvsummary.cohort_table(tx, cohort_freq=cohort_freq, observation_end=obs_end)
    retention = cvsummary.pivot_cohorts(cohorts, "active_share").iloc[:, :24]
    cum_revenue = cvsummary.pivot_cohorts(cohorts, "cumulative_revenue_per_customer")
    cohort_summary = cohorts.groupby("cohort").agg(
        customers=("cohort_size", "first"), revenue=("revenue", "sum")
    )
    cohort_summary["revenue_per_customer"] = cohort_summary["revenue"] / cohort_summary["customers"]

    repeat_zero_value = int((repeat & (customers["monetary_value"] <= 0)).sum())
    return ValueReport(
        # periods and customer base
        calibration_end=cal_end, observation_end=obs_end, first_date=pd.Timestamp(tx["date"].min()),
        freq=freq, unit=UNIT_NAMES[freq], attributes=attributes,
        customers=customers, calibration=cal, n_customers=n_customers,
        n_orders=int(customers["n_orders"].sum()), revenue=float(customers["total_spend"].sum()),
        repeat_rate=float(repeat.mean()),
        # models
        recommendation=recommendation, comparison=comparison, chosen_name=chosen_name,
        scorecard=card, tracking=track,
        # value
        final_model=final_model, spend_model=spend_model,
        zero_value_repeat_customers=repeat_zero_value, clv=clv, total_value=total,
        horizon_months=float(horizon_months), discount_rate=float(discount_rate),
        margin=float(margin),
        interval=float(interval) if n_draws > 0 and interval is not None else None,
        # breakdowns
        scores=scores, deciles=deciles, top_customers=top_customers,
        cohort_freq=cohort_freq, cohort_period_name=_COHORT_PERIOD_NAMES[cohort_freq],
        cohorts=cohorts, cohort_retention=retention, cohort_revenue=cum_revenue,
        cohort_summary=cohort_summary, cohort_value=value_by(scores, "cohort"),
        segment_value={c: value_by(scores, c) for c in SEGMENT_COLUMNS if c in scores.columns},
        segment=segment, heuristic=heuristic, heuristic_vs_model=heuristic_vs_model,
        covariates=covariates, covariate_effects=covariate_effects, covariate_test=covariate_test,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# the report's declaration
# --------------------------------------------------------------------------------------------


def check_params(values: dict[str, Any]) -> None:
    """Impossible parameter combinations of the value report (run before any kernel starts)."""
    cal, obs = values.get("calibration_end"), values.get("observation_end")
    if cal is not None and obs is not None and cal >= obs:
        raise ParameterError(
            f"parameter 'calibration_end' ({cal}) must be before 'observation_end' ({obs})"
        )
    Money(values.get("currency") or "")  # a currency that cannot be written is refused here
    stray = [c for c in values.get("covariates") or [] if c not in (values.get("attributes") or [])]
    if stray:
        raise ParameterError(
            f"parameter 'covariates' names {stray}, which are not in 'attributes' "
            f"({values.get('attributes') or []}); a covariate must be a carried attribute"
        )
    if not values.get("models"):
        raise ParameterError(
            f"parameter 'models' needs at least one of {', '.join(CANDIDATE_MODELS)}"
        )


#: Least data the value report can work with (checked before any kernel starts): customers who
#: bought by the calibration end, and customers among them with purchases on two or more days
#: (the transaction models' purchase-rate and dropout parameters, and Gamma-Gamma's spend
#: parameters, are estimated from repeat buyers).
MIN_CUSTOMERS = 10
MIN_REPEAT_CUSTOMERS = 5
#: Of the data as a whole: customers with purchases on two or more days and a positive spend,
#: for the Gamma-Gamma spend model (three parameters).
MIN_SPEND_CUSTOMERS = 5


def check_data(tx: pd.DataFrame, values: dict[str, Any]) -> None:
    """What the value report needs from its data, checked before any kernel starts.

    A calibration period with transactions on both sides of its end, at least
    :data:`MIN_CUSTOMERS` customers by the calibration end of whom at least
    :data:`MIN_REPEAT_CUSTOMERS` bought on two or more days, and at least
    :data:`MIN_SPEND_CUSTOMERS` repeat buyers with a positive spend overall.

    Raises
    ------
    DataValidationError
        Saying what is missing and what the data have.
    """
    # load_report_data has already dropped the transactions after observation_end
    cal_end, _ = resolve_periods(
        tx, values.get("calibration_end"), values.get("observation_end")
    )
    day = pd.to_datetime(tx["date"]).dt.normalize()
    in_cal = day <= cal_end
    span = f"the data run from {day.min().date()} to {day.max().date()}"
    problems = []
    if not (~in_cal).any():
        problems.append(f"no transactions after the calibration end {cal_end.date()} ({span})")
    days_cal = day[in_cal].groupby(tx.loc[in_cal, "customer_id"]).nunique()
    if len(days_cal) < MIN_CUSTOMERS:
        problems.append(
            f"{len(days_cal)} customer(s) bought by the calibration end {cal_end.date()}, "
            f"at least {MIN_CUSTOMERS} are needed"
        )
    n_repeat = int((days_cal >= 2).sum())
    if n_repeat < MIN_REPEAT_CUSTOMERS:
        problems.append(
            f"{n_repeat} of them bought on two or more days before the calibration end, "
            f"at least {MIN_REPEAT_CUSTOMERS} repeat buyers are needed to fit the models"
        )
    per_customer = pd.DataFrame(
        {"days": day.groupby(tx["customer_id"]).nunique(),
         "spend": tx.groupby("customer_id")["amount"].sum()}
    )
    n_spend = int(((per_customer["days"] >= 2) & (per_customer["spend"] > 0)).sum())
    if n_spend < MIN_SPEND_CUSTOMERS:
        problems.append(
            f"{n_spend} repeat buyer(s) with a positive spend, at least {MIN_SPEND_CUSTOMERS} "
            "are needed for the spend model"
        )
    if problems:
        raise DataValidationError(
            "the value report cannot be computed from these data: " + "; ".join(problems)
        )


VALUE_PARAMS: tuple[Param, ...] = (
    Param(
        "data",
        "data",
        "cdnow-sample",
        "transactions: a CSV/Parquet path or glob, or cdnow-sample, cdnow-master, simulated",
    ),
    Param("customer_col", "str", "customer_id", "column (or SQL expression) with the customer id"),
    Param("date_col", "str", "date", "column with the transaction date"),
    Param(
        "amount_col", "str", "amount", "column (or SQL expression) with the amount, currency units"
    ),
    Param(
        "order_col",
        "str",
        None,
        "column with the order id, when one order has several lines",
        nullable=True,
    ),
    Param("attributes", "list", [], "attribute columns to carry (e.g. region,channel)"),
    Param(
        "returns",
        "choice",
        "net",
        "how to treat negative amounts (returns)",
        feeds=(load_transactions, "returns"),
    ),
    Param(
        "freq",
        "choice",
        "W",
        "time unit the models are fitted in: D, W or M",
        feeds=(analyse, "freq"),
    ),
    Param(
        "calibration_end",
        "date",
        None,
        "last day of the calibration period (auto: halfway through the data)",
        nullable=True,
    ),
    Param(
        "observation_end",
        "date",
        None,
        "last day of the observation period (auto: the last transaction date)",
        nullable=True,
    ),
    Param(
        "horizon_months",
        "float",
        12.0,
        "how far ahead customer value is projected, months",
        minimum=0.0,
        maximum=600.0,
        exclusive_minimum=True,
    ),
    Param(
        "discount_rate",
        "float",
        0.10,
        "annual discount rate for future value (0.10 means 10%)",
        minimum=0.0,
        maximum=1.0,
    ),
    Param(
        "margin",
        "float",
        1.0,
        "profit margin applied to revenue (1.0 means value in revenue)",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    ),
    Param(
        "interval",
        "float",
        0.90,
        "coverage of the CLV intervals (0.90 means 90%)",
        minimum=0.5,
        maximum=0.99,
    ),
    Param(
        "n_draws",
        "int",
        200,
        "parameter draws used for the CLV intervals (0: no intervals)",
        minimum=0,
        maximum=5000,
    ),
    Param(
        "models",
        "list",
        list(CANDIDATE_MODELS),
        "transaction models to compare",
        feeds=(analyse, "models"),
    ),
    Param(
        "covariates",
        "list",
        [],
        "attributes that shift purchase and dropout rates in the refitted model (e.g. channel)",
    ),
    Param("top_n", "int", 20, "rows in the top-customers table", minimum=1, maximum=1000),
    Param("seed", "int", 42, "random seed (intervals, simulated data)", minimum=0),
    Param("title", "str", "Customer value report", "title shown at the top of the report"),
    Param(
        "currency",
        "str",
        "",
        "currency of the amounts: an ISO code (GBP, EUR) or a symbol; empty for plain numbers",
    ),
)

SPEC = register_report(
    ReportSpec(
        name="value",
        title="Customer value report",
        description="Who the customers are, what they will be worth, and how sure we are.",
        notebook=notebook_path("value_report.ipynb"),
        params=VALUE_PARAMS,
        check=check_params,
        requirements=check_data,
        outputs=("metrics.json", "scores.parquet", "scores.csv"),
    )
)


def demo(*, out: str | os.PathLike[str] = "reports", data: str = "cdnow-master") -> RunResult:
    """The value report on CDNOW master, weekly models, 39-week calibration (Fader et al. 2005)."""
    params: dict[str, Any] = {"freq": "W"}
    if data.startswith("cdnow"):
        # The split used in Fader, Hardie & Lee (2005), "Counting your customers the easy way".
        params.update(calibration_end="1997-09-30", observation_end="1998-06-30", currency="USD")
    return run("value", data=data, params=params, out=out)
