"""The segment report (``notebooks/segment_report.ipynb``): its parameters, checks and analysis.

Built like the value report (:mod:`custvalue.reports.value`): :func:`analyse` returns one
:class:`SegmentReport`, the parameters are declared once in :data:`SEGMENT_PARAMS`,
:func:`check_params` runs before any kernel starts, and :data:`SPEC` registers the report.

The analysis, in the order the report presents it:

1. **Customers**: the RFM summary at the observation end (and at the calibration end, for the
   migration), with every value of the attributes named in ``multi_value_attributes`` (e.g. all
   categories bought; :func:`custvalue.segments.bought_values`).
2. **Model**: a transaction model (BG/NBD, Pareto/NBD or MBG/NBD; ``model="auto"`` picks one on
   the calibration/holdout split with :func:`custvalue.evaluation.compare_models`, the value
   report's rule) refitted on all the data, the Gamma-Gamma spend model, and every customer's
   P(alive) and CLV with its interval (:func:`custvalue.segments.score_customers`). With
   ``covariates`` (static customer attributes) both models are fitted with them, so every
   customer is scored at her own rates and the segments, tiers and lists below use them.
3. **Segments**: RFM segments (:func:`~custvalue.segments.rfm_segments`), value tiers with tier
   probabilities (:func:`~custvalue.segments.value_tiers`), the P(alive) x value grid, the
   migration between the calibration end and now.
4. **Lists**: win-back, club, order milestones, invalid members and one list per named filter
   (:func:`~custvalue.segments.select`), each written next to the report as CSV with
   ``customer_id`` first.
5. **Channel economics** (:func:`~custvalue.segments.channel_economics`) when the data have the
   channel attribute. With ``covariates`` that include the channel attribute, the table
   values a *new* customer per channel from the covariate models of step 2 (``new_customer_clv``, on which LTV/CAC, max CAC and payback are then
   based); otherwise the per-channel averages of the existing customers' CLV are used.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import segments as sg
from ..data import load_transactions
from ..errors import ParameterError
from .inputs import check_freq, customer_base
from .runner import RunResult, run
from .spec import Param, ReportSpec, notebook_path, register_report
from .value import CANDIDATE_MODELS, Freq, ModelKey

__all__ = [
    "LIST_FILES",
    "SEGMENT_PARAMS",
    "SPEC",
    "SegmentReport",
    "analyse",
    "check_params",
    "demo",
    "parse_costs",
    "parse_filters",
    "write_lists",
]

#: The lists written next to the HTML, by attribute of :class:`SegmentReport`.
LIST_FILES: dict[str, str] = {
    "winback": "winback.csv",
    "club": "club.csv",
    "milestones": "milestones.csv",
    "invalid": "invalid_members.csv",
}
_RESERVED = {Path(f).stem for f in LIST_FILES.values()} | {"report", "metrics", "scores"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, buf, quote = [], [], None
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
            buf.append(ch)
        elif ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


def parse_filters(filters: str | Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Named targeting filters from ``"name: filter; name2: filter2"`` (``;`` outside quotes
    separates them), a list of ``"name: filter"`` strings, or a mapping.

    Names become file names (``<name>.csv``): a letter, then letters, digits, ``_`` or ``-``;
    they may not clash with the report's own lists. Each filter's syntax is checked here (the
    fields only once the data are loaded).
    """
    if filters is None or (isinstance(filters, str) and not filters.strip()):
        return {}
    if isinstance(filters, Mapping):
        items = [(str(k), str(v)) for k, v in filters.items()]
    else:
        texts = _split_outside_quotes(filters, ";") if isinstance(filters, str) else list(filters)
        items = []
        for text in texts:
            name, sep, expr = str(text).partition(":")
            if not sep:
                raise ParameterError(
                    f"parameter 'filters': {text!r} needs the form 'name: filter', e.g. "
                    "'vip: clv > 500 and n_orders >= 5'"
                )
            items.append((name.strip(), expr.strip()))
    out: dict[str, str] = {}
    for name, expr in items:
        if not _NAME.fullmatch(name) or name in _RESERVED:
            raise ParameterError(
                f"parameter 'filters': {name!r} cannot name a list: use a letter then letters, "
                f"digits, '_' or '-', and none of {sorted(_RESERVED)}"
            )
        if name in out:
            raise ParameterError(f"parameter 'filters': the name {name!r} is used twice")
        try:
            sg._filter.parse(expr)
        except sg.FilterError as exc:
            raise ParameterError(f"parameter 'filters', filter {name!r}: {exc}") from None
        out[name] = expr
    return out


def parse_costs(costs: str | Mapping[str, float] | None) -> Any:
    """Acquisition costs: ``"organic=5, paid_search=40"`` (or ``organic:5``) -> mapping; an
    existing CSV path or a column name is passed on as it is (see
    :func:`custvalue.segments.channel_economics`)."""
    if costs is None or isinstance(costs, Mapping):
        return costs
    text = str(costs).strip()
    if not text:
        return None
    if os.path.isfile(text) or not re.search(r"[=:]", text):
        return text
    out: dict[str, float] = {}
    for item in _split_outside_quotes(text, ","):
        key, _, value = re.split(r"([=:])", item, maxsplit=1) if re.search(r"[=:]", item) else (item, "", "")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ParameterError(
                f"parameter 'costs': {item!r} is not channel=cost (e.g. organic=5)"
            ) from None
    return out


@dataclasses.dataclass
class SegmentReport:
    """Everything the segment report shows, computed by :func:`analyse`.

    Attributes
    ----------
    customers : pandas.DataFrame
        Scored customer table (RFM summary, attributes, ``p_alive``, CLV columns, ``segment``,
        ``value_tier``, ``tier_probability``).
    rfm, tiers, grid, migration : SegmentResult
        RFM segments, value tiers, P(alive) x value grid, migration from the calibration end.
    winback, club, milestones, invalid : SegmentResult
        The lists written as CSV (:data:`LIST_FILES`).
    filters : dict of str to SegmentResult
        One per named filter.
    channels : SegmentResult or None
        Channel economics when the data have ``channel_col``.
    model_name, model_rule : str
        The transaction model and why it was used.
    covariates : list of str
        The ``covariates`` parameter (customer attributes).
    channel_model, channel_spend_model : fitted models or None
        The covariate transaction model (the report's model with ``covariates`` on the purchase
        and dropout processes) and spend model behind ``new_customer_clv``; None when the
        covariates do not include ``channel_col``.
    covariate_effects : pandas.DataFrame or None
        ``transaction_model.covariate_effects(0.90)`` when ``covariates`` are given: one row per
        coefficient with a sentence.
    channel_value_text : str
        Which value the channel economics shows and why, as a sentence for the report.
    scoring_text : str
        How every customer was scored (with or without covariates), as a sentence.
    """

    first_date: pd.Timestamp
    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp
    freq: str
    horizon_months: float
    discount_rate: float
    margin: float
    interval: float
    model_name: str
    model_rule: str
    transaction_model: Any
    spend_model: Any
    customers: pd.DataFrame
    rfm: sg.SegmentResult
    tiers: sg.SegmentResult
    grid: sg.SegmentResult
    migration: sg.SegmentResult
    winback: sg.SegmentResult
    club: sg.SegmentResult
    milestones: sg.SegmentResult
    invalid: sg.SegmentResult
    filters: dict[str, sg.SegmentResult]
    channels: sg.SegmentResult | None
    channel_col: str
    covariates: list[str] = dataclasses.field(default_factory=list)
    channel_model: Any = None
    channel_spend_model: Any = None
    covariate_effects: pd.DataFrame | None = None
    channel_value_text: str = ""
    scoring_text: str = ""

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def revenue(self) -> float:
        return float(self.customers["total_spend"].sum())

    @property
    def total_value(self) -> float:
        return float(self.customers["clv"].sum())

    def lists(self) -> dict[str, sg.SegmentResult]:
        """File name -> list, for everything written next to the report."""
        out = {LIST_FILES[k]: getattr(self, k) for k in LIST_FILES}
        out.update({f"{name}.csv": res for name, res in self.filters.items()})
        return out

    def metrics(self) -> dict[str, Any]:
        """Headline numbers for ``metrics.json``."""

        def info(res: sg.SegmentResult) -> dict[str, Any]:
            return {"customers": res.size, "past_revenue": res.past_revenue,
                    "expected_value": res.expected_value}

        return {
            "customers": self.n_customers,
            "revenue": self.revenue,
            "expected_value": self.total_value,
            "model": self.model_name,
            "observation_end": self.observation_end.date().isoformat(),
            "calibration_end": self.calibration_end.date().isoformat(),
            "segments": {str(k): int(v) for k, v in self.rfm.table["customers"].items()},
            "lists": {name: info(res) for name, res in self.lists().items()},
        }


def _pick_model(model: str | None, cal: pd.DataFrame) -> tuple[str, str]:
    """Key of the transaction model and the sentence saying why."""
    if model is not None and model != "auto":
        if model not in CANDIDATE_MODELS:
            raise ParameterError(f"model must be one of {', '.join(CANDIDATE_MODELS)} or auto")
        return model, f"{CANDIDATE_MODELS[model][0]} was chosen by the report's parameters."
    from .. import evaluation
    from .. import models as cvmodels

    candidates = {name: getattr(cvmodels, cls)() for name, cls in CANDIDATE_MODELS.values()}
    comparison = evaluation.compare_models(candidates, cal)
    if comparison.chosen_name is None:
        return "bgnbd", "no candidate could be scored on the holdout; BG/NBD was used."
    key = next(k for k, (name, _) in CANDIDATE_MODELS.items() if name == comparison.chosen_name)
    return key, f"{comparison.chosen_name} was chosen on the holdout: {comparison.rule}"


def analyse(
    tx: pd.DataFrame,
    *,
    freq: Freq = "D",
    calibration_end: Any = None,
    observation_end: Any = None,
    model: ModelKey | None = None,
    horizon_months: float = 12.0,
    discount_rate: float = 0.1,
    margin: float = 1.0,
    interval: float = 0.9,
    n_draws: int = 100,
    rules: Any = None,
    costs: Any = None,
    channel_col: str = "channel",
    milestones: Sequence[int] = (5, 10, 50),
    filters: Any = None,
    multi_value_attributes: Sequence[str] = ("category",),
    today: Any = None,
    seed: int | None = 42,
    covariates: Sequence[str] = (),
) -> SegmentReport:
    """Run the segment report's analysis on validated transactions.

    Parameters
    ----------
    tx : pandas.DataFrame
        Canonical transactions (``customer_id``, ``date``, ``amount`` [, ``order_id``],
        attributes), e.g. from :func:`custvalue.reports.load_report_data`.
    freq : {"D", "W", "M"}
        Unit of the summaries and models.
    calibration_end, observation_end : date-like, optional
        The migration compares segments at ``calibration_end`` and at ``observation_end``; the
        automatic model choice fits on the calibration period and scores the holdout.
    model : {"bgnbd", "pareto_nbd", "mbgnbd"}, optional
        None (or ``"auto"``) picks one on the calibration/holdout split.
    horizon_months, discount_rate, margin, interval, n_draws
        CLV settings (:func:`custvalue.segments.score_customers`); ``n_draws`` also drives the
        tier probabilities.
    rules : DataFrame, list of dict or CSV path, optional
        RFM segment rules (default :data:`custvalue.segments.RFM_SEGMENT_RULES`).
    costs : mapping, CSV path, column name or ``"a=5, b=40"``, optional
        Acquisition cost per customer by ``channel_col``.
    channel_col : str, default "channel"
    milestones : sequence of int
    filters : str, list or mapping, optional
        Named targeting filters (:func:`parse_filters`).
    multi_value_attributes : sequence of str
        Attributes carried with every value a customer has (for ``has``), when present.
    today : date-like, optional
        Reference date of ``within`` filters (default: the observation end).
    seed : int, optional
    covariates : sequence of str, default ()
        Customer attributes that shift the purchase and dropout rates (static covariates in
        CLVTools' parameterisation, see :class:`custvalue.models.ParetoNBDModel`) and the spend
        scale (:class:`custvalue.models.GammaGammaModel` ``spend_covariates``). The chosen
        transaction model and the spend model are fitted with them, so customer scores, value
        tiers, segments and lists use each customer's own rates
        (:func:`custvalue.segments.score_customers`). When they include ``channel_col``,
        :func:`custvalue.segments.channel_economics` also values a new customer per channel
        from those models (``model=``, ``spend_model=``). Each must be an attribute of the data.
    """
    check_freq(freq)
    if model is not None and model != "auto" and model not in CANDIDATE_MODELS:
        raise ParameterError(
            f"model must be one of {', '.join(CANDIDATE_MODELS)} or None (auto); got {model!r}"
        )
    named = parse_filters(filters)
    cal_end, obs_end, attributes, customers = customer_base(tx, freq, calibration_end, observation_end)
    covariates = list(dict.fromkeys(covariates or []))
    missing_cov = [c for c in covariates if c not in attributes]
    if missing_cov:
        raise ParameterError(
            f"covariates {missing_cov} are not customer attributes of the data (attributes: "
            f"{attributes}); list them in attributes= as well"
        )
    from .. import summary as cvsummary

    then = cvsummary.rfm_summary(
        tx, freq=freq, observation_end=cal_end, attributes=attributes or None
    )
    for col in multi_value_attributes:
        if col in tx.columns:
            customers[col] = sg.bought_values(tx, col).reindex(customers.index).to_numpy()
    cal = cvsummary.calibration_holdout(
        tx, calibration_end=cal_end, observation_end=obs_end, freq=freq, attributes=()
    )
    key, rule = _pick_model(model, cal)
    scored = sg.score_customers(
        customers, model=key, horizon_months=horizon_months, discount_rate=discount_rate,
        margin=margin, interval=interval, n_draws=n_draws, seed=seed, covariates=covariates,
    )
    effects = None
    if covariates:
        effects = scored.transaction_model.covariate_effects(0.90)
        scoring_text = (
            f"Every customer is scored at her own rates: the {CANDIDATE_MODELS[key][0]} model is "
            f"fitted with the covariates {', '.join(covariates)} on the purchase and the dropout "
            f"process, so P(alive), expected purchases, CLV, the value tiers and every list below "
            f"use each customer's {', '.join(covariates)}. {scored.spend_note}"
        )
    else:
        scoring_text = (
            "Every customer is scored with the same population parameters (no covariates were "
            "given: parameter `covariates` lets attributes such as the channel shift each "
            "customer's rates)."
        )
    if isinstance(rules, str | os.PathLike) and str(rules).strip():
        rules = pd.read_csv(rules)
    elif isinstance(rules, str):
        rules = None
    rfm = sg.rfm_segments(scored.customers, rules)
    tiers = sg.value_tiers(
        rfm.customers, scored.transaction_model, scored.spend_model, horizon=horizon_months,
        time_unit="M", margin=margin, n_draws=max(int(n_draws), 2), seed=seed,
    )
    table = tiers.customers
    grid = sg.alive_value_grid(table)
    migration = sg.migration(sg.rfm_segments(then, rules).customers, table)
    invalid = sg.invalid_members(table)
    valid = table.loc[~table.index.isin(invalid.ids)]
    ref = obs_end if today is None else today
    channels = channel_model = channel_spend = None
    value_text = ""
    if channel_col in table.columns:
        extra: dict[str, Any] = {}
        if channel_col in covariates:
            channel_model, channel_spend = scored.transaction_model, scored.spend_model
            spend_note = scored.spend_note
            extra = {"model": channel_model, "spend_model": channel_spend,
                     "discount_rate": discount_rate, "margin": margin,
                     "n_draws": int(n_draws), "seed": seed}
            value_text = (
                f"The value per channel is that of a new customer acquired today through each "
                f"{channel_col}, from the {CANDIDATE_MODELS[key][0]} model fitted with the "
                f"covariates {', '.join(covariates)} (column *new customer clv*, with its "
                f"{interval:.0%} interval from the model's parameter uncertainty). "
                f"{spend_note} LTV/CAC, payback and max CAC use it. *mean clv* beside it is the "
                "average value of the channel's existing customers."
            )
        else:
            why = ("no covariates were given" if not covariates else
                   f"the covariates ({', '.join(covariates)}) do not include {channel_col}")
            value_text = (
                f"The value per channel is the average expected value of the channel's existing "
                f"customers (*mean clv*), because {why} (parameter `covariates`): LTV/CAC, "
                f"payback and max CAC use it."
            )
        channels = sg.channel_economics(table, table, by=channel_col, costs=parse_costs(costs),
                                        horizon_months=horizon_months, interval=interval, **extra)
    return SegmentReport(
        first_date=pd.Timestamp(tx["date"].min()),
        calibration_end=cal_end,
        observation_end=obs_end,
        freq=freq,
        horizon_months=float(horizon_months),
        discount_rate=float(discount_rate),
        margin=float(margin),
        interval=float(interval),
        model_name=CANDIDATE_MODELS[key][0],
        model_rule=rule,
        transaction_model=scored.transaction_model,
        spend_model=scored.spend_model,
        customers=table,
        rfm=rfm,
        tiers=tiers,
        grid=grid,
        migration=migration,
        winback=sg.winback_candidates(valid),
        club=sg.club_candidates(valid),
        milestones=sg.order_milestones(valid, milestones),
        invalid=invalid,
        filters={name: sg.select(table, expr, today=ref, name=name) for name, expr in named.items()},
        channels=channels,
        channel_col=channel_col,
        covariates=covariates,
        channel_model=channel_model,
        channel_spend_model=channel_spend,
        covariate_effects=effects,
        channel_value_text=value_text,
        scoring_text=scoring_text,
    )


def write_lists(output_dir: str | os.PathLike[str] | None, result: SegmentReport) -> dict[str, Path]:
    """Write every list of ``result`` next to the report (no-op without ``output_dir``)."""
    if output_dir is None:
        return {}
    return {name: sg.export_list(res, Path(output_dir) / name) for name, res in result.lists().items()}


# --------------------------------------------------------------------------------------------
# the report's declaration
# --------------------------------------------------------------------------------------------
def check_params(values: dict[str, Any]) -> None:
    """Impossible parameter combinations of the segment report (run before any kernel starts)."""
    cal, obs = values.get("calibration_end"), values.get("observation_end")
    if cal is not None and obs is not None and cal >= obs:
        raise ParameterError(
            f"parameter 'calibration_end' ({cal}) must be before 'observation_end' ({obs})"
        )
    parse_filters(values.get("filters"))
    parse_costs(values.get("costs"))
    carried = values.get("attributes") or []
    stray = [c for c in values.get("covariates") or [] if c not in carried]
    if carried and stray:  # without attributes, bundled data carry their own (checked later)
        raise ParameterError(
            f"parameter 'covariates' names {stray}, which are not in 'attributes' "
            f"({carried}); a covariate must be a carried attribute"
        )
    try:
        ms = [int(m) for m in values.get("milestones") or []]
    except ValueError:
        raise ParameterError(
            f"parameter 'milestones' must be whole numbers of orders, got {values.get('milestones')}"
        ) from None
    if not ms or min(ms) < 1:
        raise ParameterError("parameter 'milestones' needs at least one positive number of orders")
    rules = values.get("rules")
    if rules and not os.path.isfile(rules):
        raise ParameterError(f"parameter 'rules': {rules!r} is not a CSV file of segment rules")


SEGMENT_PARAMS: tuple[Param, ...] = (
    Param("data", "data", "simulated",
          "transactions: a CSV/Parquet path or glob, or cdnow-sample, cdnow-master, simulated"),
    Param("customer_col", "str", "customer_id", "column (or SQL expression) with the customer id"),
    Param("date_col", "str", "date", "column with the transaction date"),
    Param("amount_col", "str", "amount",
          "column (or SQL expression) with the amount, currency units"),
    Param("order_col", "str", None, "column with the order id, when one order has several lines",
          nullable=True),
    Param("attributes", "list", [], "attribute columns to carry (e.g. region,channel,category)"),
    Param("returns", "choice", "net", "how to treat negative amounts (returns)",
          feeds=(load_transactions, "returns")),
    Param("freq", "choice", "D", "time unit the models are fitted in: D, W or M",
          feeds=(analyse, "freq")),
    Param("calibration_end", "date", None,
          "segments are compared between this day and the observation end (auto: halfway)",
          nullable=True),
    Param("observation_end", "date", None,
          "last day of the observation period (auto: the last transaction date)", nullable=True),
    Param("model", "choice", None,
          "transaction model (auto: the best on the calibration/holdout split)",
          feeds=(analyse, "model"), nullable=True),
    Param("horizon_months", "float", 12.0, "how far ahead customer value is projected, months",
          minimum=0.0, maximum=600.0, exclusive_minimum=True),
    Param("discount_rate", "float", 0.10, "annual discount rate for future value, 0.10 means 10%",
          minimum=0.0, maximum=1.0),
    Param("margin", "float", 1.0, "profit margin applied to revenue, 1.0 means value in revenue",
          minimum=0.0, maximum=1.0, exclusive_minimum=True),
    Param("interval", "float", 0.90, "coverage of the CLV intervals, 0.90 means 90%",
          minimum=0.5, maximum=0.99),
    Param("n_draws", "int", 100,
          "parameter draws for CLV intervals and tier probabilities", minimum=2, maximum=2000),
    Param("rules", "str", "", "CSV of RFM segment rules (empty: the standard 11 segments)"),
    Param("costs", "str", "",
          "acquisition cost per customer by channel: organic:5, paid_search:40 (or a "
          "CSV with channel and cost columns, or a column name); empty for none"),
    Param("channel_col", "str", "channel", "attribute holding the acquisition channel"),
    Param("covariates", "list", [],
          "attributes that shift purchase, dropout and spend in a covariate model that scores "
          "every customer; with the channel among them, channel economics values a new "
          "customer per channel (e.g. channel)"),
    Param("milestones", "list", ["5", "10", "50"], "order milestones for reward lists"),
    Param("filters", "str", "",
          "named targeting filters 'name: filter; name2: filter2', each written as <name>.csv"),
    Param("today", "date", None, "reference date of 'within N days' filters (auto: observation "
          "end)", nullable=True),
    Param("seed", "int", 42, "random seed (intervals, tier probabilities, simulated data)",
          minimum=0),
    Param("title", "str", "Customer segment report", "title shown at the top of the report"),
    Param("currency", "str", "$", "currency symbol shown before amounts"),
)

SPEC = register_report(
    ReportSpec(
        name="segment",
        title="Customer segment report",
        description="Whom to reward, whom to win back, whom to leave alone, and what a channel's "
        "customers are worth.",
        notebook=notebook_path("segment_report.ipynb"),
        params=SEGMENT_PARAMS,
        check=check_params,
        outputs=("metrics.json", *LIST_FILES.values()),
    )
)


def demo(*, out: str | os.PathLike[str] = "reports", data: str = "simulated") -> RunResult:
    """The segment report on simulated customers with regions, channels and categories, with
    the simulation's acquisition costs and two example filters."""
    from ..datasets import DEFAULT_CHANNELS

    costs = ", ".join(f"{name}={cfg['cost']:g}" for name, cfg in DEFAULT_CHANNELS.items())
    params = {
        "costs": costs,
        "filters": 'vip_north: region in ["North", "East"] and clv > 200; '
        'book_buyers: category has "books" and n_orders >= 5',
    }
    return run("segment", data=data, params=params, out=out)
