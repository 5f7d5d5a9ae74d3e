"""The programme-effect report (``notebooks/program_report.ipynb``): parameters, checks, analysis.

Built like the value and segment reports: :func:`analyse` returns one :class:`ProgramReport`,
the parameters are declared once in :data:`PROGRAM_PARAMS`, :func:`check_params` runs before
any kernel starts and :data:`SPEC` registers the report (``custvalue report program``).

The analysis is :func:`custvalue.programs.estimate` (design chosen from the treatment table:
randomised, staggered opt-in or matched cohort) plus what the report shows around it: raw
means by period relative to joining, cohort sizes, and the true effect when the data are a
simulation that knows it (:func:`demo`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import programs
from ..errors import DataValidationError, ParameterError
from .runner import RunResult, run
from .spec import Param, ReportSpec, notebook_path, register_report

__all__ = ["PROGRAM_PARAMS", "SPEC", "ProgramReport", "analyse", "check_params", "demo",
           "model_based_view", "plot_event_study", "raw_means"]


@dataclasses.dataclass
class ProgramReport:
    """Everything the programme-effect report shows.

    Attributes
    ----------
    effect : custvalue.programs.ProgramEffect
    raw : pandas.DataFrame or None
        Mean outcome of the treated customers by period relative to joining (``event_time``)
        and of the comparison customers in the same calendar periods.
    true_effect : float or None
        Known true effect (simulated data), shown beside the estimate.
    outcome, freq, currency : str
    model_based : custvalue.programs.DynamicEffect or None
        The model-based view beside the DiD estimates: membership as a time-varying
        covariate of the Pareto/NBD (:func:`custvalue.programs.dynamic_effect`), fitted on a
        random sample of customers; None when not run.
    model_based_note : str
        Why it was not run, or on how many customers it was.
    """

    effect: programs.ProgramEffect
    raw: pd.DataFrame | None
    true_effect: float | None
    outcome: str
    freq: str
    currency: str
    model_based: Any = None
    model_based_note: str = ""

    def metrics(self) -> dict[str, Any]:
        """Headline numbers for ``metrics.json``."""
        a = self.effect.att
        out: dict[str, Any] = {
            "design": self.effect.design,
            "outcome": self.outcome,
            "att_level": a.loc["level", "estimate"],
            "att_level_lower": a.loc["level", "lower"],
            "att_level_upper": a.loc["level", "upper"],
            "att_ratio": a.loc["ratio", "estimate"],
            "naive_gap_level": self.effect.naive.loc["level", "estimate"],
            "pretrend_p": self.effect.pretrend_p,
            "n_treated": self.effect.n_treated,
            "n_control": self.effect.n_control,
            "true_effect": self.true_effect,
            "warnings": list(self.effect.warnings),
        }
        if self.effect.economics is not None:
            e = self.effect.economics
            for name in e.index:
                key = name.split(" (")[0].replace(" ", "_").lower()
                out[key] = e.loc[name, "estimate"]
        if self.effect.clv is not None:
            c = self.effect.clv
            out["clv_horizon"] = c.attrs["horizon"]
            for name in c.index:
                key = "clv_" + name.replace(" ", "_").lower()
                out[key] = c.loc[name, "estimate"]
                out[key + "_lower"] = c.loc[name, "lower"]
                out[key + "_upper"] = c.loc[name, "upper"]
        if self.model_based is not None:
            t = self.model_based.table
            out["model_based_purchase_rate_ratio"] = t.loc["purchase rate", "ratio"]
            out["model_based_dropout_rate_ratio"] = t.loc["dropout rate", "ratio"]
        fals = self.effect.falsification
        if fals is not None and len(fals):
            out["placebo_p_values"] = {k: float(v) for k, v in fals["p_value"].items()}
        return out


def raw_means(transactions: pd.DataFrame, treatments: pd.DataFrame, *, outcome: str = "purchases",
              freq: str = "M", date_col: str = "date", customer_col: str = "customer_id",
              window: int = 6) -> pd.DataFrame:
    """Mean outcome per customer of the treated, by period relative to joining, next to the
    never-treated customers' mean in the same calendar periods (descriptive, no adjustment:
    the gap includes self-selection)."""
    panel = programs.build_panel(transactions, freq=freq)
    table = treatments[[customer_col, date_col]].dropna()
    rows = panel.customers.get_indexer(table[customer_col])
    ok = rows >= 0
    g = np.full(panel.shape[0], -10**9)
    g[rows[ok]] = panel.column_of(table.loc[ok, date_col])
    y = panel.outcomes[outcome]
    n_t = panel.shape[1]
    t = np.arange(n_t)[None, :]
    treated = g > -10**9
    rel = t - g[:, None]
    out = []
    never_mean = np.array([np.nanmean(y[~treated, c]) if np.any(~treated) else np.nan
                           for c in range(n_t)])
    for e in range(-window, window + 1):
        cell = treated[:, None] & (rel == e) & ~np.isnan(y)
        if not cell.any():
            continue
        cols = np.nonzero(cell)[1]
        out.append({"event_time": e, "treated_mean": float(y[cell].mean()),
                    "comparison_mean": float(never_mean[cols].mean()),
                    "n_customers": int(cell.sum())})
    return pd.DataFrame(out).set_index("event_time") if out else pd.DataFrame()


def plot_event_study(event_study: pd.DataFrame, *, outcome: str = "purchases",
                     freq: str = "M", ax: Any = None, true_effect: float | None = None) -> Any:
    """Event-study plot: effect by period relative to joining with 95% intervals."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    es = event_study
    ax.errorbar(es.index, es["estimate"], yerr=[es["estimate"] - es["lower"],
                                                es["upper"] - es["estimate"]],
                fmt="o", capsize=3, label="estimate with 95% interval")
    ax.axhline(0, color="grey", lw=1)
    ax.axvline(-0.5, color="grey", ls="--", lw=1)
    if true_effect is not None:
        ax.axhline(true_effect, color="tab:green", ls=":", label="true effect (simulation)")
    unit = {"M": "months", "W": "weeks", "Q": "quarters"}.get(freq, freq)
    ax.set_xlabel(f"{unit} relative to joining (0 = the joining {unit[:-1]})")
    ax.set_ylabel(f"effect on {outcome} per customer and {unit[:-1]}")
    ax.set_title("Effect by time since joining (before joining: should be zero)")
    ax.legend(loc="best")
    return ax


def model_based_view(transactions: pd.DataFrame, treatments: pd.DataFrame, *, sample: int,
                     customer_col: str = "customer_id", date_col: str = "date",
                     observation_end: Any = None, period_days: int = 28, seed: int = 0
                     ) -> tuple[Any, str]:
    """:func:`custvalue.programs.dynamic_effect` on a random sample of ``sample`` customers
    (seeded; the Pareto/NBD with time-varying covariates costs minutes per 10^4 customers,
    its two effects are population quantities). Returns the result (or None) and a sentence
    saying on what it was fitted, or why not."""
    from ..errors import ConvergenceError

    ids = pd.unique(transactions["customer_id"])
    if sample <= 0:
        return None, "The model-based view was not run (model_based_sample = 0)."
    pick = ids if len(ids) <= sample else np.random.default_rng(seed).choice(
        ids, sample, replace=False)
    keep = set(pick.tolist())
    tx = transactions[transactions["customer_id"].isin(keep)]
    tx.attrs = dict(transactions.attrs)
    members = treatments[treatments[customer_col].isin(keep)]
    try:
        res = programs.dynamic_effect(tx, members, customer_col=customer_col,
                                      date_col=date_col, observation_end=observation_end,
                                      period_days=period_days)
    except (DataValidationError, ConvergenceError, np.linalg.LinAlgError) as exc:
        return None, f"The model-based view could not be fitted: {exc}"
    return res, (f"Fitted on {res.n_customers:,} customers ({res.n_members:,} members), a "
                 f"random sample of {len(ids):,}, with {period_days}-day covariate periods.")


def analyse(transactions: pd.DataFrame, treatments: Any, *, true_effect: float | None = None,
            currency: str = "$", model_based_sample: int = 0, **options: Any) -> ProgramReport:
    """Run :func:`custvalue.programs.estimate` with ``options`` and collect the report's tables;
    with ``model_based_sample`` > 0 also :func:`model_based_view` (observational designs)."""
    if isinstance(treatments, str | os.PathLike):
        path = Path(treatments)
        if not path.is_file():
            raise DataValidationError(f"treatment table {path} does not exist")
        treatments = (pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
                      else pd.read_csv(path))
    if options.get("design") is None:
        options["design"] = "auto"
    effect = programs.estimate(transactions, treatments, **options)
    raw = None
    if effect.design != "randomised":
        date_col = options.get("date_col", "date")
        cust = options.get("customer_col", "customer_id")
        frame = treatments.copy()
        frame[date_col] = pd.to_datetime(frame[date_col])
        raw = raw_means(transactions, frame, outcome=options.get("outcome", "purchases"),
                        freq=options.get("freq", "M"), date_col=date_col, customer_col=cust)
    model_based, note = None, "The model-based view applies to opt-in programmes, not to a " \
        "randomised campaign."
    if effect.design != "randomised":
        model_based, note = model_based_view(
            transactions, frame[frame[options.get("date_col", "date")].notna()],
            sample=int(model_based_sample),
            customer_col=options.get("customer_col", "customer_id"),
            date_col=options.get("date_col", "date"),
            observation_end=options.get("observation_end"))
    return ProgramReport(effect=effect, raw=raw, true_effect=true_effect,
                         outcome=options.get("outcome", "purchases"),
                         freq=options.get("freq", "M"), currency=currency,
                         model_based=model_based, model_based_note=note)


def check_params(values: dict[str, Any]) -> None:
    """Impossible parameter combinations (run before any kernel starts)."""
    path = values.get("treatments")
    if not path:
        raise ParameterError("parameter 'treatments' is required: a CSV/Parquet file with one "
                             "row per treated (or assigned) customer")
    if values.get("response_col") and not values.get("group_col"):
        raise ParameterError("parameter 'response_col' needs 'group_col' (a randomised design)")
    for name in ("cost_per_member", "cost_per_reward", "cost_per_contact"):
        if (values.get(name) or 0) < 0:
            raise ParameterError(f"parameter {name!r} must not be negative")


PROGRAM_PARAMS: tuple[Param, ...] = (
    Param("data", "data", "simulated",
          "transactions: a CSV/Parquet path or glob, or cdnow-sample, cdnow-master, simulated"),
    Param("treatments", "path", None,
          "treatment table (CSV/Parquet): one row per customer with the joining / treatment "
          "date and, for randomised designs, the assigned group", nullable=True),
    Param("customer_col", "str", "customer_id", "customer id column, in both tables"),
    Param("date_col", "str", "date", "transaction date column"),
    Param("amount_col", "str", "amount", "amount column (or SQL expression), currency units"),
    Param("treatment_date_col", "str", "date", "joining / treatment date column of the table"),
    Param("group_col", "str", None, "assigned group column (treatment/control) for randomised "
          "designs", nullable=True),
    Param("response_col", "str", None, "0/1 column: who actually took the treatment",
          nullable=True),
    Param("design", "choice", None, "estimation design (auto: from the treatment table)",
          nullable=True, feeds=(programs.estimate, "design")),
    Param("outcome", "choice", "purchases", "outcome per customer and period",
          feeds=(programs.estimate, "outcome")),
    Param("freq", "choice", "M", "period length", feeds=(programs.estimate, "freq")),
    Param("observation_end", "date", None, "last observed day (auto: last transaction)",
          nullable=True),
    Param("margin", "float", 0.3, "margin as a share of revenue, e.g. 0.3 for 30%",
          minimum=0.0, maximum=1.0, exclusive_minimum=True),
    Param("cost_per_member", "float", 0.0, "programme cost per treated customer", minimum=0.0),
    Param("cost_per_reward", "float", 0.0, "cost per purchase of a member after joining",
          minimum=0.0),
    Param("cost_per_contact", "float", 0.0, "cost per contacted customer (randomised)",
          minimum=0.0),
    Param("placebo_events", "path", None,
          "placebo outcome (CSV/Parquet): events the programme cannot affect, one row per "
          "event with the customer id and a date, e.g. purchases in a store the programme does "
          "not cover", nullable=True),
    Param("placebo_date_col", "str", "date", "date column of the placebo events"),
    Param("clv_horizon", "int", 12, "periods after the observation window over which the "
          "effect on CLV is projected (0: no projection)", minimum=0),
    Param("model_based_sample", "int", 3000, "customers (a random sample) on which the "
          "model-based view, the Pareto/NBD with membership as a time-varying covariate, is "
          "fitted beside the DiD estimates (0: not run)", minimum=0),
    Param("true_effect", "float", None, "known true effect per customer and period (simulated "
          "data only), shown beside the estimate", nullable=True),
    Param("seed", "int", 42, "random seed (simulated data)", minimum=0),
    Param("title", "str", "Programme effect report", "title shown at the top of the report"),
    Param("currency", "str", "$", "currency symbol shown before amounts"),
)

SPEC = register_report(
    ReportSpec(
        name="program",
        title="Programme effect report",
        description="Did the club, the win-back campaign or the promotion pay off?",
        notebook=notebook_path("program_report.ipynb"),
        params=PROGRAM_PARAMS,
        check=check_params,
        outputs=("metrics.json",),
    )
)


def demo(*, out: str | os.PathLike[str] = "reports", n_customers: int = 5000,
         seed: int = 7) -> RunResult:
    """The report on a simulated self-selected, staggered club with a known effect.

    The simulation (``loyalty={"history": True}``: active, heavy buyers join more and earlier;
    members buy 30% more while alive) is written next to the report, and the true effect per
    member-month (computed from each member's untreated path) is stated beside the estimate.
    Its "service contacts" (same self-selection, no effect) are the placebo outcome.
    """
    from ..datasets import simulate

    sim = simulate(n_customers, seed=seed, acquisition_period="180D",
                   loyalty={"history": True, "effect": 1.3, "launch": "2022-09-01",
                            "placebo": True})
    folder = Path(out) / "program_demo_data"
    folder.mkdir(parents=True, exist_ok=True)
    tx_path, m_path = folder / "transactions.parquet", folder / "members.csv"
    p_path = folder / "service_contacts.csv"
    tx = sim.transactions.copy()
    tx.attrs = {}  # parquet metadata cannot hold timestamps; the end is a parameter instead
    tx.to_parquet(tx_path)
    sim.memberships.to_csv(m_path, index=False)
    sim.placebo.to_csv(p_path, index=False)
    params = {"treatments": str(m_path), "treatment_date_col": "join_date",
              "placebo_events": str(p_path),
              "observation_end": sim.truth["observation_end"].strftime("%Y-%m-%d"),
              "true_effect": sim.truth["loyalty"]["att"]["level"], "margin": 0.3,
              "cost_per_member": 2.0}
    return run("program", data=str(tx_path), params=params, out=out)
