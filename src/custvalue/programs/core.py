"""`estimate`: the programme-effect analysis from transactions and a treatment table."""

from __future__ import annotations

import warnings as _warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataValidationError, ParameterError
from .did import NEVER, callaway_santanna, imputation_wide, twfe_wide
from .experiment import itt_cuped
from .panel import OUTCOMES, Panel, build_panel, rfm_covariates
from .result import ProgramEffect, effect_frame

__all__ = ["DESIGNS", "estimate"]

DESIGNS: tuple[str, ...] = ("auto", "randomised", "staggered", "matched")
#: What :func:`estimate` accepts (reports read their choices from these annotations).
Design = Literal["auto", "randomised", "staggered", "matched"]
Outcome = Literal["purchases", "revenue", "active"]
Freq = Literal["M", "W", "Q"]
_Z = float(stats.norm.ppf(0.975))
_TREAT_LABELS = {"treatment", "treated", "treat", "test", "1", "true", "yes"}
_CONTROL_LABELS = {"control", "holdout", "0", "false", "no"}
_COVARIATE_NAMES = ("purchases_base", "purchases_recent", "log_total", "recency", "tenure")


def _transactions(transactions: Any, customer_col: str, date_col: str) -> pd.DataFrame:
    if isinstance(transactions, tuple):
        raise ParameterError(
            "transactions is a tuple: load_transactions returns (transactions, quality); "
            "unpack it: `tx, quality = load_transactions(...)` and pass `tx`")
    if isinstance(transactions, pd.DataFrame) and {"customer_id", "date", "amount"} <= set(
            transactions.columns):
        return transactions
    from ..data import load_transactions

    tx, _ = load_transactions(transactions, customer_col=customer_col, date_col=date_col)
    return tx


def _treatments(treatments: Any, customer_col: str, date_col: str, group_col: str | None,
                response_col: str | None = None) -> pd.DataFrame:
    if isinstance(treatments, str | Path):
        path = Path(treatments)
        if not path.exists():
            raise DataValidationError(f"treatment table {path} does not exist")
        table = (pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
                 else pd.read_csv(path))
    elif isinstance(treatments, pd.DataFrame):
        table = treatments
    else:
        raise ParameterError(
            f"treatments must be a DataFrame or a CSV/Parquet path, got {type(treatments).__name__}")
    need = [customer_col] + ([date_col] if date_col else []) + ([group_col] if group_col else [])
    need += [response_col] if response_col else []
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"treatment table lacks column(s) {missing}; it has {list(table.columns)}: name "
            "them with customer_col=, date_col=, group_col=")
    out = pd.DataFrame({"customer_id": table[customer_col].to_numpy()})
    try:
        out["date"] = pd.to_datetime(table[date_col].to_numpy()) if date_col else pd.NaT
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"treatment table column {date_col!r} has values that are not dates "
            f"(e.g. {table[date_col].head(3).tolist()})") from exc
    if group_col:
        out["group"] = table[group_col].astype(str).str.strip().str.lower().to_numpy()
    if response_col:
        col = table[response_col]
        resp = (col.astype(np.float64) if col.dtype == bool
                else pd.to_numeric(col, errors="coerce"))
        bad = resp.isna() | ~resp.isin([0, 1])
        if bad.any():
            raise DataValidationError(
                f"treatment table column {response_col!r} must be 0/1 (or True/False) for "
                f"every row; {int(bad.sum())} rows are not (e.g. "
                f"{table.loc[bad.to_numpy(), response_col].head(3).tolist()})")
        out["response"] = resp.to_numpy(dtype=np.float64)
    return out


def _check_table(table: pd.DataFrame, panel: Panel, warns: list[str]) -> pd.DataFrame:
    dup = table["customer_id"].duplicated(keep=False)
    if dup.any():
        ex = table.loc[dup, "customer_id"].drop_duplicates().head(5).tolist()
        raise DataValidationError(
            f"treatment table: {int(table.loc[dup, 'customer_id'].nunique())} customer(s) "
            f"appear more than once (treated twice?), e.g. {ex}: keep one row per customer "
            "(the first joining date)")
    known = table["customer_id"].isin(panel.customers)
    if not known.all():
        ex = table.loc[~known, "customer_id"].head(5).tolist()
        if not known.any():
            raise DataValidationError(
                f"none of the {len(table):,} customers in the treatment table occur in the "
                f"transactions (e.g. {ex}): check the customer id column and its type")
        warns.append(f"{int((~known).sum()):,} customer(s) in the treatment table have no "
                     f"transactions and were ignored (e.g. {ex})")
        table = table.loc[known]
    return table.reset_index(drop=True)


def _event_counts(events: Any, panel: Panel, customer_col: str, date_col: str,
                  warns: list[str]) -> np.ndarray:
    """Events per customer and period on the panel's grid (NaN before entry), e.g. a placebo
    outcome; events of customers without transactions or outside the panel are dropped
    with a warning."""
    if isinstance(events, str | Path):
        path = Path(events)
        if not path.exists():
            raise DataValidationError(f"placebo events {path} do not exist")
        events = (pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
                  else pd.read_csv(path))
    if not isinstance(events, pd.DataFrame):
        raise ParameterError("placebo_events must be a DataFrame or a CSV/Parquet path, got "
                             f"{type(events).__name__}")
    missing = [c for c in (customer_col, date_col) if c not in events.columns]
    if missing:
        raise DataValidationError(
            f"placebo events lack column(s) {missing}; they have {list(events.columns)}: name "
            "them with customer_col= and placebo_date_col=")
    try:
        dates = pd.to_datetime(events[date_col].to_numpy())
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"placebo events column {date_col!r} has values that are "
                                  "not dates") from exc
    n, n_t = panel.shape
    rows = panel.customers.get_indexer(events[customer_col].to_numpy())
    cols = panel.column_of(dates)
    unknown = rows < 0
    if unknown.all():
        raise DataValidationError(
            f"none of the {len(events):,} placebo events belong to a customer in the "
            "transactions: check the customer id column and its type")
    if unknown.any():
        warns.append(f"{int(unknown.sum()):,} placebo event(s) of customers without "
                     "transactions were ignored")
    inside = ~unknown & (cols >= 0) & (cols < n_t)
    counts = np.bincount(rows[inside] * n_t + cols[inside], minlength=n * n_t).astype(
        np.float64).reshape(n, n_t)
    counts[np.arange(n_t)[None, :] < panel.entry[:, None]] = np.nan
    return counts


def _groups_from_dates(table: pd.DataFrame, panel: Panel, warns: list[str]) -> np.ndarray:
    """Treatment column per panel customer (NEVER when untreated within the panel)."""
    n, n_t = panel.shape
    group = np.full(n, NEVER, dtype=np.int64)
    dated = table.loc[table["date"].notna()]
    if len(dated) < len(table):
        warns.append(f"{len(table) - len(dated):,} treatment row(s) have no date and count "
                     "as not treated")
    rows = panel.customers.get_indexer(dated["customer_id"])
    cols = panel.column_of(dated["date"])
    late = cols >= n_t
    if late.any():
        warns.append(f"{int(late.sum()):,} customer(s) joined after the last complete period "
                     f"({panel.periods[-1]}) and count as not yet treated")
    early = cols < 0
    if early.all():
        raise DataValidationError(
            f"every joining date is before the data start ({panel.periods[0]}): there is no "
            "pre-period to compare with")
    if early.any():
        warns.append(f"{int(early.sum()):,} customer(s) joined before the data start "
                     f"({panel.periods[0]}; e.g. {dated['customer_id'][early].head(3).tolist()}):"
                     " no pre-period, left out of the analysis")
    g = np.where(late, NEVER, cols)
    group[rows] = g
    return group


def _cohorts(group: np.ndarray, panel: Panel) -> pd.DataFrame:
    treated = group < NEVER
    counts = pd.Series(group[treated]).value_counts().sort_index()
    idx = pd.PeriodIndex([panel.periods[int(g)] if 0 <= g < len(panel.periods) else None
                          for g in counts.index], freq=panel.freq) if len(counts) else \
        pd.PeriodIndex([], freq=panel.freq)
    return pd.DataFrame({"n_customers": counts.to_numpy()}, index=idx.rename("joined"))


def _naive(y: np.ndarray, group: np.ndarray, entry: np.ndarray) -> tuple[tuple[float, float],
                                                                        tuple[float, float]]:
    """Members' mean per period after joining minus non-members' mean in the same periods."""
    n_t = y.shape[1]
    t = np.arange(n_t)[None, :]
    obs = t >= entry[:, None]
    mem = obs & (t >= group[:, None]) & (group[:, None] < NEVER)
    non = obs & (t < group[:, None])
    yz = np.nan_to_num(y)
    n1 = mem.sum(axis=0).astype(float)
    n0 = non.sum(axis=0).astype(float)
    ok = (n1 > 0) & (n0 > 0)
    m1 = np.where(ok, (yz * mem).sum(axis=0) / np.maximum(n1, 1), 0.0)
    m0 = np.where(ok, (yz * non).sum(axis=0) / np.maximum(n0, 1), 0.0)
    w = np.where(ok, n1, 0.0)
    total = w.sum()
    if total == 0:
        return (np.nan, np.nan), (np.nan, np.nan)
    gap = float(np.sum(w * (m1 - m0)) / total)
    base = float(np.sum(w * m0) / total)
    # influence per customer (clustered): members and non-members parts
    phi = ((yz - m1) * mem * ok).sum(axis=1) / total
    phi -= ((yz - m0) * non * (ok * w / np.maximum(n0, 1))).sum(axis=1) / total
    phi_base = ((yz - m0) * non * (ok * w / np.maximum(n0, 1))).sum(axis=1) / total
    se = float(np.sqrt(np.sum(phi ** 2)))
    ratio = gap / base if base > 0 else np.nan
    phi_r = (phi / base - gap * phi_base / base ** 2) if base > 0 else phi * 0
    return (gap, se), (float(ratio), float(np.sqrt(np.sum(phi_r ** 2))))


def _row(est: float, se: float, role: str, note: str = "") -> dict[str, Any]:
    return {"estimate": est, "std_error": se, "lower": est - _Z * se, "upper": est + _Z * se,
            "p_value": float(2 * stats.norm.sf(abs(est / se))) if se > 0 else np.nan,
            "role": role, "note": note}


def _balance(x: np.ndarray, d: np.ndarray, names: tuple[str, ...]
             ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Standardised mean differences before and after inverse-probability (odds) weighting,
    and propensity-score overlap (Austin 2009, Stat. Med. 28; |SMD| < 0.1 is balanced)."""
    from .did import _logit, _usable_columns

    xs = _usable_columns(x)
    ps, _ = _logit(xs, d.astype(float))
    w = np.where(d == 1, 1.0, ps / (1 - np.minimum(ps, 1 - 1e-6)))
    rows = {}
    for j, name in enumerate(names, start=1):
        v = x[:, j]
        t, c = v[d == 1], v[d == 0]
        sd = np.sqrt((t.var() + c.var()) / 2) or 1.0
        cw = np.average(c, weights=w[d == 0])
        rows[name] = {"treated_mean": t.mean(), "control_mean": c.mean(),
                      "smd": (t.mean() - c.mean()) / sd,
                      "control_mean_weighted": cw, "smd_weighted": (t.mean() - cw) / sd}
    ps_t, ps_c = ps[d == 1], ps[d == 0]
    overlap = {
        "ps_treated_min": float(ps_t.min()), "ps_treated_max": float(ps_t.max()),
        "ps_control_min": float(ps_c.min()), "ps_control_max": float(ps_c.max()),
        "share_treated_outside_control_range": float(np.mean(ps_t > ps_c.max())),
        "share_controls_trimmed": float(np.mean(ps_c >= 0.995)),
    }
    return pd.DataFrame(rows).T, overlap


def _economics(rev_level: tuple[float, float], n_cells: int, n_treated: int, n_contacted: int,
               purchases_treated: float, margin: float | None, cost_per_member: float,
               cost_per_reward: float, cost_per_contact: float) -> pd.DataFrame:
    est, se = rev_level
    inc_rev = est * n_cells
    inc_rev_se = se * n_cells
    m = 1.0 if margin is None else margin
    inc_margin, inc_margin_se = m * inc_rev, m * inc_rev_se
    cost = (cost_per_member * n_treated + cost_per_reward * purchases_treated
            + cost_per_contact * n_contacted)
    rows = {
        "incremental revenue": (inc_rev, inc_rev_se),
        "incremental margin": (inc_margin, inc_margin_se),
        "programme cost": (cost, 0.0),
        "net incremental margin": (inc_margin - cost, inc_margin_se),
        "incremental margin per treated customer": (inc_margin / max(n_treated, 1),
                                                     inc_margin_se / max(n_treated, 1)),
    }
    if cost > 0:
        rows["ROI (net margin / cost)"] = ((inc_margin - cost) / cost, inc_margin_se / cost)
    out = pd.DataFrame({k: {"estimate": v[0], "std_error": v[1], "lower": v[0] - _Z * v[1],
                            "upper": v[0] + _Z * v[1]} for k, v in rows.items()}).T
    return out.astype(np.float64)


def estimate(
    transactions: Any,
    treatments: Any = None,
    *,
    design: Design = "auto",
    outcome: Outcome = "purchases",
    freq: Freq = "M",
    customer_col: str = "customer_id",
    date_col: str = "date",
    group_col: str | None = None,
    response_col: str | None = None,
    start: Any = None,
    observation_end: Any = None,
    covariates: str | None = "launch",
    launch: Any = None,
    max_pre: int = 6,
    placebo_shift: int = 3,
    secondary: bool = True,
    margin: float | None = None,
    cost_per_member: float = 0.0,
    cost_per_reward: float = 0.0,
    cost_per_contact: float = 0.0,
    planned_share: float = 0.5,
    heterogeneity: bool = True,
    placebo_events: Any = None,
    placebo_date_col: str = "date",
    clv_horizon: int | None = 12,
) -> ProgramEffect:
    """Estimate the effect of a programme or campaign on the treated customers.

    Parameters
    ----------
    transactions : DataFrame or source
        The frame :func:`custvalue.load_transactions` returns, or anything it accepts.
    treatments : DataFrame or path
        One row per customer: ``customer_col``, ``date_col`` (joining / treatment date) and,
        for randomised designs, ``group_col`` (treatment / control, also for customers who
        never responded).
    design : {"auto", "randomised", "staggered", "matched"}
        ``auto``: randomised when ``group_col`` holds a treatment and a control group;
        matched when every customer joined in one period; staggered otherwise.
    outcome : {"purchases", "revenue", "active"}
        Per customer and period.
    freq : {"M", "W", "Q"}
        Period.
    response_col : str, optional
        Randomised design: 0/1 column saying who actually took the treatment (default:
        everyone assigned to treatment).
    covariates : {"launch", "base", None}
        Pre-period behaviour used for the doubly robust adjustment (purchases in the last
        period and the last three, log of all purchases, recency, tenure), measured
        ``"launch"``: when the programme reached the customer (the period before the launch,
        or her first period if she came later) -- time-invariant covariates as in Callaway &
        Sant'Anna (2021), right when joining may depend on later purchases only through
        this history; ``"base"``: in the period before each cohort's joining.
    launch : date-like, optional
        Programme launch (default: the earliest joining date).
    max_pre : int
        Pre-joining periods in the event study and the pre-trend test.
    placebo_shift : int
        Falsification: joining dates moved this many periods earlier, with the data cut
        before the real joining; the estimate should be zero.
    secondary : bool
        Also run the imputation estimator and the TWFE benchmark (pyfixest).
    margin : float, optional
        Margin as a share of revenue; with the costs it gives the economics table.
    cost_per_member, cost_per_reward, cost_per_contact : float
        Programme cost per treated customer, per purchase of a treated customer after
        joining, and per contacted customer (randomised treatment group).
    planned_share : float
        Randomised design: planned share of the treatment group (sample-ratio check).
    placebo_events : DataFrame or path, optional
        A placebo outcome (falsification): events the programme cannot affect, one row per
        event with ``customer_col`` and ``placebo_date_col`` -- e.g. purchases in a store or
        category the programme does not cover, or service contacts. Their count per
        customer and period shares the customers' self-selection (heavy buyers have more of
        them) but not the programme's effect, so the same estimator (same design, same
        comparison customers and covariates) must find no effect on it: a clearly non-zero
        estimate means the comparison does not remove self-selection (Imbens 2015, J. Human
        Resources 50(2), sec. 6 "pseudo-outcomes"; Athey & Imbens 2017, J. Economic
        Perspectives 31(2), sec. 5). ``custvalue.datasets.simulate(loyalty={"placebo":
        True})`` draws one.
    placebo_date_col : str
        Date column of ``placebo_events``.
    clv_horizon : int or None
        With economics (``margin`` or a cost given): the programme's effect on CLV, the
        incremental purchases, revenue and margin of the members over this many periods
        after the observation window (:func:`custvalue.programs.value.clv_effect`: the
        estimated relative effect on purchases applied to the members' BG/NBD-expected
        purchases; assumptions stated there). 0 or None: skip.
    heterogeneity : bool
        Also estimate the effect by segment of activity before the programme reached the
        customer (purchases in the last three periods: none, one, two or more), segments
        defined on the pre-joining period so joining cannot change them.

    Returns
    -------
    ProgramEffect
    """
    if outcome not in OUTCOMES:
        raise ParameterError(f"outcome={outcome!r}: use one of {list(OUTCOMES)}")
    if design not in DESIGNS:
        raise ParameterError(f"design={design!r}: use one of {list(DESIGNS)}")
    if covariates not in ("launch", "base", None):
        raise ParameterError(f"covariates={covariates!r}: use 'launch', 'base' or None")
    if freq not in ("M", "W", "Q"):
        raise ParameterError(f"freq={freq!r}: use 'M' (months), 'W' (weeks) or 'Q' (quarters)")
    if treatments is None:
        raise ParameterError("treatments is required: a DataFrame or CSV/Parquet path with one "
                             "row per treated (or assigned) customer")
    warns: list[str] = []
    tx = _transactions(transactions, customer_col, date_col)
    panel = build_panel(tx, freq=freq, start=start, observation_end=observation_end)
    table = _check_table(_treatments(treatments, customer_col, date_col, group_col,
                                     response_col), panel, warns)
    labels = set(table["group"]) if "group" in table else set()
    randomised_ok = bool(labels & _TREAT_LABELS) and bool(labels & _CONTROL_LABELS)
    if group_col and not randomised_ok:
        raise DataValidationError(
            f"group column {group_col!r} has labels {sorted(labels)[:6]}: a randomised design "
            "needs a treatment group and a control group (treatment/control)")
    if design == "auto":
        if randomised_ok:
            design, reason = "randomised", (
                f"the treatment table assigns customers to a treatment and a control group "
                f"({group_col!r}), so the control group is a randomised comparison")
        else:
            group = _groups_from_dates(table, panel, [])
            g = np.unique(group[group < NEVER])
            if g.size == 1:
                design, reason = "matched", (
                    f"everyone joined in one period ({panel.periods[int(g[0])]}): treated "
                    "customers are compared with never-treated customers of similar "
                    "pre-period behaviour (doubly robust DiD)")
            else:
                design, reason = "staggered", (
                    f"customers chose to join, in {g.size} different periods: group-time "
                    "effects against not-yet-treated customers with doubly robust adjustment "
                    "for pre-period behaviour (Callaway & Sant'Anna 2021)")
    else:
        reason = f"design={design!r} was requested"
        if design == "randomised" and not randomised_ok:
            raise DataValidationError(
                "design='randomised' needs group_col= naming a treatment/control column")
    if design == "randomised":
        return _randomised(panel, table, outcome, reason, warns, planned_share, margin,
                           cost_per_contact)
    placebo_y = None
    if placebo_events is not None:
        placebo_y = _event_counts(placebo_events, panel, customer_col, placebo_date_col, warns)
    if clv_horizon is not None and (int(clv_horizon) != clv_horizon or clv_horizon < 0):
        raise ParameterError(f"clv_horizon={clv_horizon!r} must be a whole number of periods "
                             "(0 or None: no projection)")
    clv_args = None if not clv_horizon else (tx, int(clv_horizon), observation_end)
    return _observational(panel, table, design, outcome, reason, warns, covariates, max_pre,
                          placebo_shift, secondary, margin, cost_per_member, cost_per_reward,
                          launch, heterogeneity, placebo_y, clv_args)


def _clv(clv_args: tuple[pd.DataFrame, int, Any], panel: Panel, members: pd.Index,
         ratio: tuple[float, float], margin: float | None, warns: list[str]
         ) -> pd.DataFrame | None:
    """The effect on CLV beyond the window (:func:`custvalue.programs.value.clv_effect`)."""
    from .value import clv_effect

    tx, horizon, end = clv_args
    if not np.all(np.isfinite(ratio)):
        warns.append("the effect on CLV was not projected: the effect on purchases on the "
                     "ratio scale is not finite")
        return None
    if end is None:  # the window the effect was measured in ends with the last full period
        end = panel.periods[-1].end_time.normalize()
    return clv_effect(tx, members, ratio, horizon=horizon, freq=panel.freq,
                      margin=1.0 if margin is None else margin, observation_end=end)


def _observational(panel: Panel, table: pd.DataFrame, design: str, outcome: str, reason: str,
                   warns: list[str], covariates: str | None, max_pre: int, placebo_shift: int,
                   secondary: bool, margin: float | None, cost_per_member: float,
                   cost_per_reward: float, launch: Any, heterogeneity: bool,
                   placebo_y: np.ndarray | None = None,
                   clv_args: tuple[pd.DataFrame, int, Any] | None = None) -> ProgramEffect:
    group = _groups_from_dates(table, panel, warns)
    entry = panel.entry
    treated = group < NEVER
    no_pre = treated & (group <= entry)
    first_period = no_pre & (group >= 0)  # (joined before the data start: warned above)
    if first_period.any():
        warns.append(f"{int(first_period.sum()):,} treated customer(s) joined in (or before) "
                     "their first observed period: no pre-period, left out of the analysis")
    if no_pre.all() and treated.any():
        raise DataValidationError(
            "no treated customer has a period before joining: the effect cannot be "
            "separated from who joined")
    keep = ~no_pre
    y = np.where(keep[:, None], panel.outcomes[outcome], np.nan)
    entry_k = np.where(keep, entry, panel.shape[1])  # excluded customers never observed
    control = "nevertreated" if design == "matched" else "notyettreated"
    if design == "matched" and not np.any(keep & ~treated):
        raise DataValidationError("matched design: no never-treated customers to compare with")
    if design == "staggered" and not np.any(keep & (group > np.min(group[treated & keep]))):
        raise DataValidationError(
            "no untreated or not-yet-treated customers: every customer joined at the first "
            "joining date, so there is no comparison group")
    cache: dict[int, np.ndarray] = {}
    patterns: dict = {}  # distinct covariate rows, shared by every pass below

    def cov(base: int) -> np.ndarray:
        if base not in cache:
            cache[base] = rfm_covariates(panel, base)
        return cache[base]

    if launch is None:
        launch_col = int(np.min(group[treated])) if treated.any() else 0
    else:
        launch_col = int(panel.column_of(pd.Series([pd.Timestamp(launch)]))[0])
    at_launch = None
    if covariates == "launch" or heterogeneity:
        reached = np.clip(np.maximum(launch_col, entry + 1) - 1, 0, panel.shape[1] - 1)
        at_launch = np.zeros((panel.shape[0], 1 + len(_COVARIATE_NAMES)))
        for c in np.unique(reached):
            rows_c = reached == c
            at_launch[rows_c] = rfm_covariates(panel, int(c), rows=rows_c)

    def cov_launch(base: int) -> np.ndarray:
        return at_launch

    cov_fn = {"base": cov, "launch": cov_launch, None: None}[covariates]
    segments = None
    if heterogeneity:
        recent = at_launch[:, 2]
        seg_of = np.where(recent >= 2, "2+ purchases", np.where(recent >= 1, "1 purchase",
                                                                  "no purchase"))
        seg_rows = {}
        for name in ("no purchase", "1 purchase", "2+ purchases"):
            inside = keep & (seg_of == name)
            if not np.any(inside & treated):
                continue
            try:
                with _warnings.catch_warnings():
                    _warnings.simplefilter("ignore")
                    part = callaway_santanna(np.where(inside[:, None], y, np.nan),
                                             np.where(inside, entry_k, panel.shape[1]), group,
                                             cov_fn, control=control, max_pre=1,
                                             patterns=patterns)
            except (DataValidationError, np.linalg.LinAlgError):
                continue
            seg_rows[name] = {**_row(*part.overall, "segment"), "n_treated": part.n_treated}
        if seg_rows:
            segments = pd.DataFrame(seg_rows).T
            for c in ("estimate", "std_error", "lower", "upper", "p_value"):
                segments[c] = segments[c].astype(np.float64)
            segments["n_treated"] = segments["n_treated"].astype(np.int64)
            segments.index.name = "activity in the 3 periods before the programme"
    cs = callaway_santanna(y, entry_k, group, cov_fn, control=control, max_pre=max_pre,
                           patterns=patterns)
    if cs.dropped_cells:
        warns.append(f"{len(cs.dropped_cells)} group-period cell(s) had no comparison "
                     "customers and were left out (late periods where everyone had joined)")
    main_name = ("Callaway & Sant'Anna (doubly robust, not-yet-treated)" if design == "staggered"
                 else "doubly robust DiD (never-treated)")
    rows = {main_name: _row(*cs.overall, "main")}
    cs_plain = callaway_santanna(y, entry_k, group, None, control=control, max_pre=1)
    rows["Callaway & Sant'Anna without covariates"] = _row(*cs_plain.overall, "check")
    if secondary:
        observed = keep & (entry_k < panel.shape[1])
        rows["imputation (Borusyak, Jaravel & Spiess; did2s)"] = _row(
            *imputation_wide(y, entry_k, group, observed), "check",
            "unit and period effects fitted on untreated cells")
        try:
            rows["two-way fixed effects"] = _row(
                *twfe_wide(y, entry_k, group, observed), "benchmark",
                "biased with staggered joining and changing effects (Goodman-Bacon 2021)")
        except (np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError) as exc:
            # the benchmark must not sink the main estimate
            warns.append(f"the TWFE benchmark failed ({type(exc).__name__}: {exc})")
    naive_level, naive_ratio = _naive(y, group, entry_k)
    rows["naive member vs non-member gap"] = _row(*naive_level, "naive",
                                                  "self-selection, not an effect")
    estimators = pd.DataFrame(rows).T
    for c in ("estimate", "std_error", "lower", "upper", "p_value"):
        estimators[c] = estimators[c].astype(np.float64)
    estimators.index.name = "estimator"
    # falsification: placebo joining dates, pre-trend, placebo outcome (none defined here)
    fals = {}
    shifted = np.where(treated & keep, group - placebo_shift, NEVER)
    ok_shift = shifted < NEVER
    valid = ok_shift & (shifted > entry_k)
    if valid.any():
        try:
            pl = callaway_santanna(y, entry_k, np.where(valid, shifted, np.where(
                treated, group + 0, NEVER)), cov_fn, control=control, max_pre=1,
                last_time=np.where(valid, group - 1, panel.shape[1] - 1), patterns=patterns)
            fals[f"placebo joining {placebo_shift} periods earlier"] = _row(
                *pl.overall, "placebo", "data cut before the real joining; expect zero")
        except DataValidationError as exc:
            warns.append(f"placebo analysis not possible: {exc}")
    if placebo_y is not None:
        try:
            po = callaway_santanna(np.where(keep[:, None], placebo_y, np.nan), entry_k, group,
                                   cov_fn, control=control, max_pre=1, patterns=patterns)
            fals["placebo outcome (events the programme cannot affect)"] = _row(
                *po.overall, "placebo outcome",
                "same estimator on an outcome with the same self-selection; expect zero")
        except DataValidationError as exc:
            warns.append(f"placebo outcome not analysed: {exc}")
    if np.isfinite(cs.pretrend_p):
        fals["pre-trend test (joint Wald, chi2)"] = {
            "estimate": cs.pretrend_stat, "std_error": np.nan, "lower": np.nan,
            "upper": np.nan, "p_value": cs.pretrend_p, "role": "pre-trend",
            "note": f"{cs.pretrend_df} pre-joining periods"}
    falsification = pd.DataFrame(fals).T if fals else None
    balance, overlap = None, {}
    gs = np.unique(group[treated & keep])
    if gs.size:
        base = int(gs[0]) - 1 if design == "matched" else None
        if base is not None and base >= 0:
            d_ = (group == gs[0]) & keep & (entry <= base)
            c_ = ~treated & keep & (entry <= base)
            sel = d_ | c_
            balance, overlap = _balance(rfm_covariates(panel, base)[sel], d_[sel].astype(int),
                                        _COVARIATE_NAMES)
    economics = None
    if margin is not None or cost_per_member or cost_per_reward:
        if outcome == "revenue":
            rev = cs
        else:
            rev = callaway_santanna(np.where(keep[:, None], panel.outcomes["revenue"], np.nan),
                                    entry_k, group, cov_fn, control=control, max_pre=1,
                                    patterns=patterns)
        n_treated_k = int(np.sum(treated & keep))
        t = np.arange(panel.shape[1])[None, :]
        post = (t >= group[:, None]) & (treated & keep)[:, None]
        purchases_treated = float(np.nansum(np.where(post, panel.outcomes["purchases"], 0.0)))
        economics = _economics(rev.overall, rev.n_cells, n_treated_k, 0, purchases_treated,
                               margin, cost_per_member, cost_per_reward, 0.0)
    clv = None
    if economics is not None and clv_args is not None:
        purch = cs if outcome == "purchases" else callaway_santanna(
            np.where(keep[:, None], panel.outcomes["purchases"], np.nan), entry_k, group,
            cov_fn, control=control, max_pre=1, patterns=patterns)
        members = panel.customers[treated & keep & (group > entry_k)]
        clv = _clv(clv_args, panel, members, purch.ratio, margin, warns)
    n_control = int(np.sum(keep & ~treated))
    return ProgramEffect(
        design=design, design_reason=reason, outcome=outcome, freq=panel.freq,
        att=effect_frame(cs.overall, cs.ratio), naive=effect_frame(naive_level, naive_ratio),
        estimators=estimators, event_study=cs.event_study, pretrend_p=cs.pretrend_p,
        n_treated=cs.n_treated, n_control=n_control, att_gt=cs.att_gt,
        cohorts=_cohorts(np.where(keep, group, NEVER), panel), balance=balance,
        overlap=overlap, falsification=falsification, economics=economics,
        experiment={"n_cells": cs.n_cells, "treated_mean": cs.treated_mean},
        segments=segments, clv=clv,
        warnings=warns,
    )


def _randomised(panel: Panel, table: pd.DataFrame, outcome: str, reason: str, warns: list[str],
                planned_share: float, margin: float | None, cost_per_contact: float
                ) -> ProgramEffect:
    is_t = table["group"].isin(_TREAT_LABELS).to_numpy()
    is_c = table["group"].isin(_CONTROL_LABELS).to_numpy()
    other = ~(is_t | is_c)
    if other.any():
        warns.append(f"{int(other.sum()):,} row(s) with group labels other than treatment/"
                     f"control were ignored (e.g. {table.loc[other, 'group'].head(3).tolist()})")
    table = table.loc[~other].reset_index(drop=True)
    z = table["group"].isin(_TREAT_LABELS).to_numpy().astype(float)
    dates = table["date"]
    if dates.isna().all():
        raise DataValidationError("randomised design: the treatment table has no treatment "
                                  "date (date_col); give the send / start date")
    send = dates.where(dates.notna(), dates.dropna().min())
    cols = panel.column_of(send)
    n_t = panel.shape[1]
    if np.any(cols >= n_t) or np.any(cols < 1):
        raise DataValidationError(
            f"randomised design: treatment dates must leave at least one period before and "
            f"after them inside {panel.periods[0]}..{panel.periods[-1]}")
    rows = panel.customers.get_indexer(table["customer_id"])
    y_all = panel.outcomes[outcome][rows]
    t = np.arange(n_t)[None, :]
    entry = panel.entry[rows]
    post = t >= cols[:, None]
    pre = (t < cols[:, None]) & (t >= np.maximum(entry, cols - 6)[:, None])
    yz = np.nan_to_num(y_all)
    y = (yz * post).sum(axis=1) / post.sum(axis=1)
    npre = pre.sum(axis=1)
    x = np.where(npre > 0, (yz * pre).sum(axis=1) / np.maximum(npre, 1), 0.0)
    take = z.copy() if "response" not in table else table["response"].to_numpy(dtype=float)
    res = itt_cuped(y, z, x, take, planned_share)
    if res.srm_p < 0.001:
        warns.append(f"sample-ratio mismatch: {res.n_treatment:,} treatment vs "
                     f"{res.n_control:,} control (planned share {planned_share:g}, p = "
                     f"{res.srm_p:.2g}): the assignment may not be random")
    estimators = pd.DataFrame({
        "ITT with CUPED (HC1)": _row(res.itt, res.itt_se, "main",
                                     f"variance reduction {res.variance_reduction:.0%}"),
        "ITT, difference in means (HC1)": _row(res.unadjusted, res.unadjusted_se, "check"),
        "effect of responding (Wald/2SLS)": _row(res.late, res.late_se, "check",
                                                 "assignment as instrument"),
    }).T
    for c in ("estimate", "std_error", "lower", "upper", "p_value"):
        estimators[c] = estimators[c].astype(np.float64)
    estimators.index.name = "estimator"
    economics = None
    if margin is not None or cost_per_contact:
        rev = panel.outcomes["revenue"][rows]
        yr = (np.nan_to_num(rev) * post).sum(axis=1) / post.sum(axis=1)
        xr = np.where(npre > 0, (np.nan_to_num(rev) * pre).sum(axis=1) / np.maximum(npre, 1), 0)
        rr = itt_cuped(yr, z, xr, take, planned_share)
        periods = float(post[z == 1].sum(axis=1).mean())
        n1 = int(z.sum())
        economics = _economics((rr.itt, rr.itt_se), round(periods * n1), n1, n1, 0.0,
                               margin, 0.0, 0.0, cost_per_contact)
    exp = {k: getattr(res, k) for k in ("srm_p", "planned_share", "mde", "power_at_estimate",
                                         "variance_reduction", "theta", "control_mean",
                                         "take_up_treatment", "take_up_control", "late",
                                         "late_se")}
    level = (res.itt, res.itt_se)
    return ProgramEffect(
        design="randomised", design_reason=reason, outcome=outcome, freq=panel.freq,
        att=effect_frame(level, (res.ratio, res.ratio_se)),
        naive=effect_frame((res.unadjusted, res.unadjusted_se),
                           (res.unadjusted / res.control_mean if res.control_mean > 0 else np.nan,
                            res.ratio_se)),
        estimators=estimators, event_study=None, pretrend_p=float("nan"),
        n_treated=res.n_treatment, n_control=res.n_control, economics=economics,
        experiment=exp, warnings=warns,
    )
