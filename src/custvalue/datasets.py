"""Bundled datasets and a transaction simulator with known truth.

Real data
    :func:`load_cdnow` returns the CDNOW transaction logs and :func:`load_donations` the BG/BB
    donations summary, both read from the files that the ``lifetimes`` package ships.

Simulated data
    :func:`simulate` draws customers from the probability models the package fits -- BG/NBD
    (Fader, Hardie & Lee 2005) or Pareto/NBD (Schmittlein, Morrison & Colombo 1987) purchasing
    with Gamma-Gamma spend (Fader, Hardie & Lee 2005b), or shifted-beta-geometric subscriptions
    (Fader & Hardie 2007) -- and adds what real customer bases have: regions, acquisition
    channels with costs, product categories, a loyalty programme with self-selection, a
    randomised win-back campaign. Everything the estimators should recover is returned in
    :attr:`Simulation.truth`.

Every array is drawn in one vectorised pass (per-transaction arrays are built with
``np.repeat`` and grouped cumulative sums, never a loop over customers): one million customers
take a few seconds.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ._time import DAYS_PER_UNIT, normalize_unit
from .errors import DataValidationError, ParameterError

__all__ = [
    "DEFAULT_BGNBD_PARAMS",
    "DEFAULT_CATEGORIES",
    "DEFAULT_CHANNELS",
    "DEFAULT_JOIN_HISTORY",
    "DEFAULT_PARETO_NBD_PARAMS",
    "DEFAULT_REGIONS",
    "DEFAULT_SPEND_PARAMS",
    "DEFAULT_SUBSCRIPTION",
    "Simulation",
    "load_cdnow",
    "load_donations",
    "simulate",
]

# --------------------------------------------------------------------------------------------
# Defaults (daily units). Sources are the published CDNOW estimates, converted from weeks.
# --------------------------------------------------------------------------------------------

#: BG/NBD on CDNOW as reported by Fader, Hardie & Lee (2005) (r=0.243, alpha=4.414 weeks,
#: a=0.793, b=2.426), with alpha converted to days (x 7).
DEFAULT_BGNBD_PARAMS: dict[str, float] = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}

#: Pareto/NBD on CDNOW as reported by Fader, Hardie & Lee (2005) (r=0.553, alpha=10.58,
#: s=0.606, beta=11.67 weeks),
#: alpha and beta converted to days (x 7).
DEFAULT_PARETO_NBD_PARAMS: dict[str, float] = {
    "r": 0.553,
    "alpha": 10.58 * 7,
    "s": 0.606,
    "beta": 11.67 * 7,
}

#: Gamma-Gamma spend on CDNOW (Fader, Hardie & Lee 2005b: p=6.25, q=3.74, gamma=15.44 dollars).
DEFAULT_SPEND_PARAMS: dict[str, float] = {"p": 6.25, "q": 3.74, "gamma": 15.44}

#: Acquisition channels: share of new customers, acquisition cost per customer (currency units)
#: and ``tilt``, how strongly the channel attracts customers with a high purchase rate (see
#: :func:`simulate`; 0 means no relation, positive means better-than-average buyers).
DEFAULT_CHANNELS: dict[str, dict[str, float]] = {
    "organic": {"share": 0.35, "cost": 0.0, "tilt": 0.3},
    "paid_search": {"share": 0.30, "cost": 25.0, "tilt": 0.0},
    "social": {"share": 0.20, "cost": 15.0, "tilt": -0.4},
    "referral": {"share": 0.15, "cost": 10.0, "tilt": 0.5},
}

DEFAULT_REGIONS: dict[str, float] = {"North": 0.30, "South": 0.25, "East": 0.25, "West": 0.20}

DEFAULT_CATEGORIES: dict[str, float] = {
    "books": 0.30,
    "music": 0.25,
    "electronics": 0.20,
    "home": 0.15,
    "toys": 0.10,
}

#: Subscription mode: sBG churn heterogeneity per monthly period (alpha, beta as in the
#: "high end" segment of Fader & Hardie 2007) and plans with share and monthly price.
DEFAULT_SUBSCRIPTION: dict[str, Any] = {
    "alpha": 0.668,
    "beta": 3.806,
    "plans": {
        "basic": {"share": 0.6, "price": 9.99},
        "standard": {"share": 0.3, "price": 14.99},
        "premium": {"share": 0.1, "price": 24.99},
    },
}

_DEFAULT_LOYALTY: dict[str, Any] = {"join_rate": 0.002, "selection": 1.0, "effect": 1.3, "launch": None,
                                    "recency": None, "recent_days": 30, "history": None,
                                    "placebo": None}
_DEFAULT_WINBACK: dict[str, Any] = {
    "send_date": None,
    "lapsed_days": 120,
    "response_days": 30,
    "treatment_share": 0.5,
    "effect": 0.10,
}
#: Monthly joining on the customer's history (``loyalty={"history": True}``): log-odds
#: ``intercept + recent * purchases in the last 3 months + recency * months since the last
#: purchase (capped at 12) + total * log(1 + all purchases so far)``.
DEFAULT_JOIN_HISTORY: dict[str, float] = {"intercept": -4.5, "recent": 0.5, "recency": -0.15,
                                          "total": 0.6}
_FAVOURITE_CATEGORY_PROB = 0.6
_MIN_RATE = 1e-300


# --------------------------------------------------------------------------------------------
# Bundled data
# --------------------------------------------------------------------------------------------


def _lifetimes_file(name: str) -> Path:
    """Path of a data file shipped in ``lifetimes/datasets``.

    The package directory is found with :func:`importlib.util.find_spec` (which does not import
    lifetimes and its autograd stack, ~2 s); if the file is not a plain file there (zipped
    install), :mod:`importlib.resources` is asked instead.
    """
    try:
        spec = importlib.util.find_spec("lifetimes")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModuleNotFoundError(
            f"custvalue reads {name} from the 'lifetimes' package, which is not installed: "
            "run `pip install lifetimes` (it is a custvalue dependency, so `pip install -e .` "
            "in the repository installs it too)"
        )
    for location in spec.submodule_search_locations or ():
        candidate = Path(location) / "datasets" / name
        if candidate.is_file():
            return candidate
    resource = resources.files("lifetimes.datasets") / name
    if resource.is_file():
        # as_file keeps a real path for the lifetime of the interpreter for zipped installs
        with resources.as_file(resource) as path:
            return Path(path)
    raise ModuleNotFoundError(
        f"the installed lifetimes package has no datasets/{name}: reinstall it with "
        "`pip install --force-reinstall lifetimes==0.11.3`"
    )


def load_cdnow(kind: str = "master") -> pd.DataFrame:
    """Load the CDNOW transaction log as canonical transactions.

    CDNOW is the music retailer data set used throughout the buy-till-you-die literature
    (Fader, Hardie & Lee 2005): the 23,570 customers who made their first purchase in the first
    quarter of 1997, followed until the end of June 1998. ``"sample"`` is the 1/10th systematic
    sample (2,357 customers) used in the papers' worked examples.

    Parameters
    ----------
    kind : {"master", "sample"}
        ``"master"``: all 69,659 transaction lines of 23,570 customers. ``"sample"``: 6,919 lines
        of 2,357 customers; ``customer_id`` is then the sample's own id (1..2357, the ``ID`` of
        lifetimes' ``cdnow_customers_summary.csv``) and ``master_customer_id`` the id in the
        master file.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64), ``date`` (datetime64[ns], day precision), ``amount``
        (float64, US dollars), ``quantity`` (int64, number of CDs) -- plus
        ``master_customer_id`` for the sample -- one row per transaction line, sorted by
        customer and date.

    Raises
    ------
    ParameterError
        If ``kind`` is not ``"master"`` or ``"sample"``.
    ModuleNotFoundError
        If the ``lifetimes`` package (which ships the files) is not installed.
    """
    key = str(kind).strip().lower()
    if key not in ("master", "sample"):
        raise ParameterError(f"load_cdnow(kind={kind!r}): kind must be 'master' or 'sample'")
    if key == "master":
        path = _lifetimes_file("CDNOW_master.txt")
        names = ["customer_id", "date", "quantity", "amount"]
        skip = 1  # header line: customer_id date number_of_cds dollar_value
    else:
        path = _lifetimes_file("CDNOW_sample.txt")
        names = ["master_customer_id", "customer_id", "date", "quantity", "amount"]
        skip = 0
    raw = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        skiprows=skip,
        names=names,
        dtype={"customer_id": "int64", "master_customer_id": "int64", "date": str,
               "quantity": "int64", "amount": "float64"},
        engine="c",
    )
    dates = pd.to_datetime(raw["date"], format="%Y%m%d", errors="coerce")
    if dates.isna().any():
        bad = raw.loc[dates.isna(), "date"].head(3).tolist()
        raise DataValidationError(
            f"{path.name}: {int(dates.isna().sum())} dates are not YYYYMMDD (e.g. {bad}); "
            "the lifetimes installation looks damaged: reinstall lifetimes"
        )
    out = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].to_numpy(dtype=np.int64),
            "date": dates.to_numpy().astype("datetime64[ns]"),
            "amount": raw["amount"].to_numpy(dtype=np.float64),
            "quantity": raw["quantity"].to_numpy(dtype=np.int64),
        }
    )
    if key == "sample":
        out["master_customer_id"] = raw["master_customer_id"].to_numpy(dtype=np.int64)
    out = out.sort_values(["customer_id", "date"], kind="stable", ignore_index=True)
    out.attrs["source"] = f"lifetimes/datasets/{path.name}"
    return out


def load_donations() -> pd.DataFrame:
    """Load the donations summary used to illustrate the BG/BB model.

    The data are the repeat donations of the 11,104 members of the 1995 cohort of a non-profit
    organisation over the six annual opportunities 1996-2001 (Fader, Hardie & Shang 2010,
    "Customer-base analysis in a discrete-time noncontractual setting", Marketing Science
    29(6)), compressed to one row per distinct (frequency, recency) pattern.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency`` (repeat donations, 0..6), ``recency`` (opportunity of the last
        donation, 0 when none), ``T`` (number of opportunities, 6) and ``weight`` (number of
        donors with that pattern; the weights sum to 11,104). All int64.

    Raises
    ------
    ModuleNotFoundError
        If the ``lifetimes`` package (which ships ``donations.csv``) is not installed.
    """
    path = _lifetimes_file("donations.csv")
    raw = pd.read_csv(path)
    expected = {"frequency", "recency", "periods", "weights"}
    if not expected.issubset(raw.columns):
        raise DataValidationError(
            f"{path.name} has columns {list(raw.columns)}, expected {sorted(expected)}: "
            "reinstall lifetimes"
        )
    out = pd.DataFrame(
        {
            "frequency": raw["frequency"].to_numpy(dtype=np.int64),
            "recency": raw["recency"].to_numpy(dtype=np.int64),
            "T": raw["periods"].to_numpy(dtype=np.int64),
            "weight": raw["weights"].to_numpy(dtype=np.int64),
        }
    )
    out.attrs["source"] = f"lifetimes/datasets/{path.name}"
    return out


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Simulation:
    """Result of :func:`simulate`: observable tables plus the truth behind them.

    Attributes
    ----------
    transactions : pandas.DataFrame
        Canonical transactions ``customer_id, date, amount`` plus ``region, channel,
        category`` (categoricals), sorted by date then customer. In subscription mode one row
        per monthly payment, ``category`` being the plan.
    customers : pandas.DataFrame
        One row per customer (``customer_id`` 1..n) with observable attributes
        (``first_purchase``, ``region``, ``channel``, ``acquisition_cost``) and the true latent
        values (``lambda``, ``p`` or ``mu``, ``mean_spend``, ``lifetime_days``,
        ``alive_at_end``, ... -- see :func:`simulate`).
    memberships : pandas.DataFrame or None
        Loyalty members: ``customer_id, join_date``; None without a loyalty programme.
    campaign : pandas.DataFrame or None
        Win-back campaign: ``customer_id, group`` ("treatment"/"control"), ``send_date``;
        None without a campaign.
    subscriptions : pandas.DataFrame or None
        Subscription mode: ``customer_id, start, end`` (NaT while active), ``plan, price``.
    counterfactual : pandas.DataFrame or None
        With a loyalty programme: ``customer_id, date`` of the purchases that members would
        have made after joining without the programme (the base process's own draws, which
        the programme replaced). Together with the observed purchases this gives each member's
        untreated path, from which ``truth["loyalty"]["att"]`` is computed.
    placebo : pandas.DataFrame or None
        With ``loyalty={"placebo": ...}``: ``customer_id, date`` of "service contacts", an
        outcome with the purchases' self-selection that membership does not affect (a
        placebo outcome for :func:`custvalue.programs.estimate`).
    truth : dict
        The generating process and its parameters (see :func:`simulate`).
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    memberships: pd.DataFrame | None = None
    campaign: pd.DataFrame | None = None
    subscriptions: pd.DataFrame | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    counterfactual: pd.DataFrame | None = None
    placebo: pd.DataFrame | None = None

    def __repr__(self) -> str:
        parts = [
            f"process={self.truth.get('process')!r}",
            f"customers={len(self.customers):,}",
            f"transactions={len(self.transactions):,}",
        ]
        if self.memberships is not None:
            parts.append(f"members={len(self.memberships):,}")
        if self.campaign is not None:
            parts.append(f"campaign={len(self.campaign):,}")
        if self.subscriptions is not None:
            parts.append(f"subscriptions={len(self.subscriptions):,}")
        return f"Simulation({', '.join(parts)})"


def _as_timestamp(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name}={value!r} is not a date: use e.g. '2022-01-01'") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ParameterError(f"{name}={value!r} is not a date: use e.g. '2022-01-01'")
    if ts.tzinfo is not None:
        raise ParameterError(f"{name}={value!r} has a time zone: pass a tz-naive date")
    return ts.normalize()


def _as_days(value: Any, name: str) -> float:
    """A duration as a positive number of days (int/float days, Timedelta or '365D')."""
    if isinstance(value, bool):
        raise ParameterError(f"{name}={value!r} is not a duration: pass days or e.g. '365D'")
    if isinstance(value, int | float | np.integer | np.floating):
        days = float(value)
    else:
        try:
            days = pd.Timedelta(value) / pd.Timedelta(days=1)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"{name}={value!r} is not a duration: pass a number of days or e.g. '365D'"
            ) from exc
    if not np.isfinite(days) or days <= 0:
        raise ParameterError(f"{name}={value!r} must be a positive, finite duration")
    return days


def _is_duration(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | np.integer | np.floating | pd.Timedelta | np.timedelta64):
        return True
    if isinstance(value, _dt.timedelta):
        return True
    if isinstance(value, str):
        try:
            pd.Timedelta(value)
        except (TypeError, ValueError):
            return False
        return True
    return False


def _positive_params(given: Mapping[str, Any] | None, default: Mapping[str, float],
                     what: str) -> dict[str, float]:
    if given is None:
        return dict(default)
    if not isinstance(given, Mapping):
        raise ParameterError(f"{what} must be a dict like {dict(default)}, got {given!r}")
    unknown = sorted(set(given) - set(default))
    missing = sorted(set(default) - set(given))
    if unknown or missing:
        raise ParameterError(
            f"{what} needs exactly the keys {sorted(default)}: "
            + (f"unknown {unknown} " if unknown else "")
            + (f"missing {missing}" if missing else "")
        )
    out: dict[str, float] = {}
    for key in default:
        try:
            val = float(given[key])
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{what}[{key!r}]={given[key]!r} is not a number") from exc
        if not np.isfinite(val) or val <= 0:
            raise ParameterError(f"{what}[{key!r}]={given[key]!r} must be positive and finite")
        out[key] = val
    return out


def _number(cfg: Mapping[str, Any], key: str, what: str) -> float:
    try:
        return float(cfg[key])
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{what}[{key!r}]={cfg[key]!r} is not a number") from exc


def _shares(spec: Any, name: str) -> tuple[list[str], np.ndarray]:
    """Names and normalised shares from {name: share} / {name: {"share": ..}} / [names]."""
    if isinstance(spec, str) or not isinstance(spec, Mapping | list | tuple):
        raise ParameterError(f"{name} must be a dict of name -> share or a list of names")
    if isinstance(spec, list | tuple):
        names = [str(s) for s in spec]
        raw = np.ones(len(names))
    else:
        names = [str(k) for k in spec]
        vals = [v.get("share", 1.0) if isinstance(v, Mapping) else v for v in spec.values()]
        try:
            raw = np.asarray(vals, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{name}: shares must be numbers, got {vals!r}") from exc
    if len(names) == 0:
        raise ParameterError(f"{name} is empty: give at least one name")
    if len(set(names)) != len(names):
        raise ParameterError(f"{name} has duplicate names: {names}")
    if not np.all(np.isfinite(raw)) or np.any(raw < 0) or raw.sum() <= 0:
        raise ParameterError(f"{name}: shares must be non-negative and sum to > 0, got {raw.tolist()}")
    return names, raw / raw.sum()


def _channels(spec: Any) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    if spec is None:
        spec = DEFAULT_CHANNELS
    names, shares = _shares(spec, "channels")
    costs = np.zeros(len(names))
    tilts = np.zeros(len(names))
    if isinstance(spec, Mapping):
        for i, value in enumerate(spec.values()):
            if isinstance(value, Mapping):
                unknown = sorted(set(value) - {"share", "cost", "tilt"})
                if unknown:
                    raise ParameterError(
                        f"channels[{names[i]!r}] has unknown keys {unknown}: "
                        "use 'share', 'cost', 'tilt'"
                    )
                costs[i] = float(value.get("cost", 0.0))
                tilts[i] = float(value.get("tilt", 0.0))
    if not np.all(np.isfinite(costs)) or np.any(costs < 0):
        raise ParameterError(f"channels: costs must be non-negative numbers, got {costs.tolist()}")
    if not np.all(np.isfinite(tilts)):
        raise ParameterError(f"channels: tilts must be finite numbers, got {tilts.tolist()}")
    return names, shares, costs, tilts


def _draw_categorical(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    """Category codes with fixed probabilities (inverse CDF, vectorised)."""
    cum = np.cumsum(probs)
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int16)


def _draw_tilted(rng: np.random.Generator, shares: np.ndarray, tilts: np.ndarray,
                 score: np.ndarray) -> np.ndarray:
    """Channel codes with P(c | score) proportional to share_c * exp(tilt_c * score).

    ``score`` is a standard-normal score of the customer's latent quality, so the population
    distribution of the latent variable is left exactly as drawn; only who comes through
    which channel depends on it.
    """
    if not np.any(tilts):
        return _draw_categorical(rng, shares, score.size)
    # loop over the few channels, vectorised over customers
    with np.errstate(divide="ignore"):
        log_shares = np.log(shares)
    logits = [log_shares[c] + tilts[c] * score for c in range(shares.size)]
    top = np.maximum.reduce(logits)
    cum = []
    total = np.zeros(score.size)
    for lg in logits:
        total = total + np.exp(lg - top)
        cum.append(total)
    u = rng.random(score.size) * total
    codes = np.zeros(score.size, dtype=np.int16)
    for c in range(shares.size - 1):
        codes += cum[c] < u
    return codes


def _normal_score(cdf: np.ndarray) -> np.ndarray:
    return special.ndtri(np.clip(cdf, 1e-15, 1.0 - 1e-15))


def _grouped_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group (groups are consecutive runs of ``counts``)."""
    if values.size == 0:
        return values.astype(float)
    cs = np.cumsum(values)
    ends = np.cumsum(counts)
    starts = ends - counts
    before = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0.0)
    return cs - np.repeat(before, counts)


def _uniform_events(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray,
                    counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``counts[i]`` uniform times on ``[lo[i], hi[i])``: (customer index, time) arrays."""
    idx = np.repeat(np.arange(counts.size), counts)
    times = lo[idx] + rng.random(idx.size) * (hi - lo)[idx]
    return idx, times


def _order_by_day_customer(day: np.ndarray, cust: np.ndarray) -> np.ndarray:
    """Permutation sorting events by calendar day, then customer.

    Two stable passes (LSD): by customer -- the input is a few runs already sorted by customer,
    which timsort merges quickly -- then by day, a radix sort when days fit in 16 bits.
    """
    by_cust = np.argsort(cust, kind="stable")
    d = day[by_cust]
    d = d.astype(np.int16) if d.size == 0 or d.max() < 32_767 else d.astype(np.int64)
    return by_cust[np.argsort(d, kind="stable")]


def _days_to_dates(origin: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    base = np.datetime64(origin.date(), "D")
    return (base + np.floor(days).astype(np.int64)).astype("datetime64[ns]")


def _fmt_date(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d")


def _channel_truth(
    channel: np.ndarray,
    names: Sequence[str],
    shares: np.ndarray,
    costs: np.ndarray,
    tilts: np.ndarray,
    latent: Mapping[str, np.ndarray],
    outcomes: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """Per acquisition channel: configured share, cost and tilt, realised share and size, the
    mean of each latent customer trait (``mean_<name>``) and of each outcome (0 when empty)."""
    n = len(channel)
    out: dict[str, dict[str, float]] = {}
    for c, name in enumerate(names):
        sel = channel == c
        cnt = int(sel.sum())
        out[name] = {
            "share": float(shares[c]),
            "realised_share": cnt / n,
            "acquisition_cost": float(costs[c]),
            "tilt": float(tilts[c]),
            "n_customers": cnt,
            **{f"mean_{k}": float(v[sel].mean()) if cnt else float("nan") for k, v in latent.items()},
            **{k: float(v[sel].mean()) if cnt else 0.0 for k, v in (outcomes or {}).items()},
        }
    return out


# ---- the steps of simulate() -----------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    """Parsed arguments shared by every step of :func:`simulate`."""

    n: int
    rng: np.random.Generator
    subscription_mode: bool
    start_ts: pd.Timestamp
    end_ts: pd.Timestamp
    window_days: float
    acq_days: float
    region_names: list[str]
    region_shares: np.ndarray
    channel_names: list[str]
    channel_shares: np.ndarray
    channel_costs: np.ndarray
    channel_tilts: np.ndarray


@dataclass(frozen=True)
class _Process:
    """The purchase process: name, parameters in ``unit`` and in days."""

    name: str
    params: dict[str, float]
    unit: str
    params_daily: dict[str, float]


@dataclass(frozen=True)
class _Population:
    """Latent per-customer traits (index 0..n-1)."""

    lam: np.ndarray
    channel: np.ndarray
    nu: np.ndarray
    favourite: np.ndarray


@dataclass(frozen=True)
class _BasePurchases:
    """Repeat purchases of the base process (times since acquisition) and lifetimes."""

    ev_cust: np.ndarray
    ev_time: np.ndarray
    lifetime: np.ndarray
    latent_extra: dict[str, np.ndarray]
    alive_end: np.ndarray
    active_until: np.ndarray


@dataclass(frozen=True)
class _Events:
    """Purchase events: customer index and calendar time (days since start)."""

    cust: np.ndarray
    cal: np.ndarray


@dataclass(frozen=True)
class _TransactionDraws:
    """Per-transaction arrays, sorted by day then customer."""

    cust: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    category: np.ndarray
    n_tx: int
    same_day: int


def _parse_window(start: Any, end: Any, acquisition_period: Any
                  ) -> tuple[pd.Timestamp, pd.Timestamp, float, float]:
    """Start, end (inclusive), window length and acquisition period in days."""
    start_ts = _as_timestamp(start, "start")
    if end is None:
        window_days = 730.0
    elif _is_duration(end):
        window_days = float(np.floor(_as_days(end, "end")))
        if window_days < 1:
            raise ParameterError(f"end={end!r}: the observation window must be at least one day")
    else:
        end_ts = _as_timestamp(end, "end")
        if end_ts < start_ts:
            raise ParameterError(
                f"end={_fmt_date(end_ts)} is before start={_fmt_date(start_ts)}: "
                "give a later end date or a duration such as '730D'"
            )
        window_days = float((end_ts - start_ts).days + 1)
    end_ts = start_ts + pd.Timedelta(days=window_days - 1)
    acq_days = _as_days(acquisition_period, "acquisition_period")
    if acq_days > window_days:
        raise ParameterError(
            f"acquisition_period={acquisition_period!r} ({acq_days:g} days) is longer than the "
            f"observation window {_fmt_date(start_ts)}..{_fmt_date(end_ts)} ({window_days:g} days): "
            "shorten it or move `end` later"
        )
    return start_ts, end_ts, window_days, acq_days


def _parse_config(n_customers: Any, seed: Any, mode: str, start: Any, end: Any,
                  acquisition_period: Any, regions: Any, channels: Any) -> _Config:
    """Validate the arguments common to both modes; create the random generator."""
    if isinstance(n_customers, bool) or not isinstance(n_customers, int | np.integer):
        raise ParameterError(f"n_customers={n_customers!r} must be a positive integer")
    n = int(n_customers)
    if n < 1:
        raise ParameterError(f"n_customers={n_customers!r} must be a positive integer")
    rng = np.random.default_rng(seed)

    mode_key = str(mode).strip().lower()
    if mode_key not in ("transactions", "subscription", "subscriptions"):
        raise ParameterError(f"mode={mode!r}: use 'transactions' or 'subscription'")
    start_ts, end_ts, window_days, acq_days = _parse_window(start, end, acquisition_period)
    region_names, region_shares = _shares(
        DEFAULT_REGIONS if regions is None else regions, "regions")
    channel_names, channel_shares, channel_costs, channel_tilts = _channels(channels)
    return _Config(
        n=n, rng=rng, subscription_mode=mode_key.startswith("subscription"),
        start_ts=start_ts, end_ts=end_ts, window_days=window_days, acq_days=acq_days,
        region_names=region_names, region_shares=region_shares, channel_names=channel_names,
        channel_shares=channel_shares, channel_costs=channel_costs, channel_tilts=channel_tilts,
    )


def _check_subscription_arguments(loyalty: Any, winback: Any, params: Any, spend_params: Any,
                                  categories: Any) -> None:
    """Reject transaction-mode options in subscription mode."""
    if loyalty or winback:
        raise ParameterError(
            "loyalty and winback apply to mode='transactions' only; drop them for "
            "mode='subscription'"
        )
    ignored = [name for name, value in (("params", params), ("spend_params", spend_params),
                                        ("categories", categories)) if value is not None]
    if ignored:
        raise ParameterError(
            f"{', '.join(ignored)} apply to mode='transactions' only: in subscription mode "
            "pass subscription={'alpha': .., 'beta': .., 'plans': {...}}"
        )


def _parse_process(process: str, params: Mapping[str, float] | None, time_unit: str) -> _Process:
    """Process name and its parameters in ``time_unit`` and in days."""
    proc = str(process).strip().lower().replace("/", "").replace("_", "").replace("-", "")
    proc = proc.replace(" ", "")
    if proc in ("bgnbd", "betageo", "bg"):
        proc_name = "bgnbd"
        par = _positive_params(params, DEFAULT_BGNBD_PARAMS, "params")
    elif proc in ("mbgnbd", "modifiedbetageo", "mbg"):
        proc_name = "mbgnbd"
        par = _positive_params(params, DEFAULT_BGNBD_PARAMS, "params")
    elif proc in ("paretonbd", "pareto", "pnbd"):
        proc_name = "pareto_nbd"
        par = _positive_params(params, DEFAULT_PARETO_NBD_PARAMS, "params")
    else:
        raise ParameterError(f"process={process!r}: use 'bgnbd', 'mbgnbd' or 'pareto_nbd'")
    unit = normalize_unit(time_unit)
    days_per = DAYS_PER_UNIT[unit]
    if params is None:  # the defaults are daily: express them in the requested unit
        par["alpha"] = par["alpha"] / days_per
        if "beta" in par:
            par["beta"] = par["beta"] / days_per
    par_daily = dict(par)
    par_daily["alpha"] = par["alpha"] * days_per
    if proc_name == "pareto_nbd":
        par_daily["beta"] = par["beta"] * days_per
    return _Process(name=proc_name, params=par, unit=unit, params_daily=par_daily)


def _draw_population(rng: np.random.Generator, cfg: _Config, proc: _Process,
                     spend: Mapping[str, float], cat_shares: np.ndarray) -> _Population:
    """Latent traits: purchase rate, channel (tilted by the rate), spend scale, favourite."""
    r, alpha = proc.params_daily["r"], proc.params_daily["alpha"]
    lam = np.maximum(rng.gamma(r, 1.0 / alpha, cfg.n), _MIN_RATE)
    channel = _draw_tilted(
        rng, cfg.channel_shares, cfg.channel_tilts,
        _normal_score(special.gammainc(r, alpha * lam)))
    nu = rng.gamma(spend["q"], 1.0 / spend["gamma"], cfg.n)
    nu = np.maximum(nu, _MIN_RATE)
    favourite = _draw_categorical(rng, cat_shares, cfg.n)
    return _Population(lam=lam, channel=channel, nu=nu, favourite=favourite)


def _draw_purchases(rng: np.random.Generator, proc: _Process, lam: np.ndarray, acq: np.ndarray,
                    horizon: np.ndarray, dropout_shift: np.ndarray | None = None) -> _BasePurchases:
    """Repeat purchases and lifetimes of the base process (see :func:`simulate`).

    ``dropout_shift`` (static covariates, :func:`_apply_covariate_effects`) is ``gamma' z_i`` of
    the dropout process: BG/NBD ``a_i = a exp(shift)``, ``b_i = b exp(shift)``; Pareto/NBD
    ``mu_i = mu * exp(shift)``, i.e. ``beta_i = beta exp(-shift)``.
    """
    n = lam.size
    par_daily = proc.params_daily
    if proc.name in ("bgnbd", "mbgnbd"):
        if dropout_shift is None:
            p_drop = np.clip(rng.beta(par_daily["a"], par_daily["b"], n), 1e-12, 1.0)
        else:
            scale = np.exp(dropout_shift)
            p_drop = np.clip(rng.beta(par_daily["a"] * scale, par_daily["b"] * scale), 1e-12, 1.0)
        m_events = rng.poisson(lam * horizon)
        # repeat purchases until dropout (the last one included); MBG/NBD can also drop out
        # right after the first purchase, so its count starts at 0
        n_until = rng.geometric(p_drop) - (1 if proc.name == "mbgnbd" else 0)
        k = np.minimum(m_events, n_until)
        spacing = rng.standard_exponential(int(k.sum()))
        partial = _grouped_cumsum(spacing, k)
        ends = np.cumsum(k) - 1
        s_k = np.where(k > 0, partial[np.maximum(ends, 0)] if partial.size else 0.0, 0.0)
        tail = rng.gamma((m_events - k + 1).astype(float), 1.0)
        denom = s_k + tail
        ev_cust = np.repeat(np.arange(n), k)
        ev_time = horizon[ev_cust] * partial / denom[ev_cust]
        dead = m_events >= n_until
        lifetime = np.empty(n)
        lifetime[dead] = horizon[dead] * s_k[dead] / denom[dead]
        alive_idx = ~dead
        lifetime[alive_idx] = horizon[alive_idx] + rng.gamma(
            (n_until[alive_idx] - m_events[alive_idx]).astype(float), 1.0 / lam[alive_idx])
        latent_extra = {"p": p_drop}
    else:
        mu = rng.gamma(par_daily["s"], 1.0 / par_daily["beta"], n)
        if dropout_shift is not None:
            mu = mu * np.exp(dropout_shift)
        mu = np.maximum(mu, _MIN_RATE)
        lifetime = rng.exponential(1.0 / mu)
        active = np.minimum(lifetime, horizon)
        counts = rng.poisson(lam * active)
        ev_cust, ev_time = _uniform_events(rng, np.zeros(n), active, counts)
        latent_extra = {"mu": mu}
    return _BasePurchases(
        ev_cust=ev_cust, ev_time=ev_time, lifetime=lifetime, latent_extra=latent_extra,
        alive_end=lifetime > horizon,
        active_until=np.minimum(lifetime, horizon),  # since acquisition
    )


def _apply_covariate_effects(
    rng: np.random.Generator, spec: Any, cfg: _Config, pop: _Population, region: np.ndarray
) -> tuple[_Population, np.ndarray, np.ndarray, dict[str, Any]]:
    """Static covariates that shift the true rates in CLVTools' parameterisation.

    ``spec`` is ``{"purchase": {...}, "dropout": {...}, "membership_share": 0.3}``; each block
    maps ``"channel"`` and ``"region"`` to ``{level: coefficient}`` (unlisted levels 0) and
    ``"membership"`` to one coefficient (member vs not). With ``eta = gamma' z_i``:
    purchase ``lambda_i = lambda * exp(eta)``, i.e. ``lambda_i ~ Gamma(r, alpha exp(-eta))``;
    dropout as in :func:`_draw_purchases`. Channels are drawn without their ``tilt`` (the
    covariate effect replaces it, and a tilt would make the channel depend on the latent rate
    beyond the model). ``membership`` is a static flag, independent of everything else.

    Returns the population with the shifted rates and redrawn channels, the membership flags,
    the dropout shift and the truth: coefficients per block in the covariate models' term
    names (``"channel[referral]"``, ``"membership[True]"``), the reference levels and the share.
    """
    if not isinstance(spec, Mapping):
        raise ParameterError(
            "covariate_effects must be a dict like {'purchase': {'channel': {'referral': 0.3}}, "
            f"'dropout': {{'membership': -0.5}}}}; got {type(spec).__name__}"
        )
    unknown = [k for k in spec if k not in ("purchase", "dropout", "membership_share")]
    if unknown:
        raise ParameterError(
            f"covariate_effects has unknown key(s) {unknown}; use 'purchase', 'dropout', "
            "'membership_share'"
        )
    share = float(spec.get("membership_share", 0.3))
    if not 0.0 < share < 0.5:
        raise ParameterError(
            f"covariate_effects['membership_share'] must be in (0, 0.5) (members are the minority, "
            f"non-members the reference level); got {share}"
        )
    n = cfg.n
    channel = _draw_categorical(rng, cfg.channel_shares, n)
    membership = rng.random(n) < share
    levels = {"channel": list(cfg.channel_names), "region": list(cfg.region_names)}
    codes = {"channel": channel, "region": region}
    blocks: dict[str, dict[str, Any]] = {}
    for block in ("purchase", "dropout"):
        given = spec.get(block) or {}
        if not isinstance(given, Mapping):
            raise ParameterError(f"covariate_effects[{block!r}] must be a dict; got {given!r}")
        bad = [k for k in given if k not in ("channel", "region", "membership")]
        if bad:
            raise ParameterError(
                f"covariate_effects[{block!r}] has unknown covariate(s) {bad}; the simulated "
                "covariates are 'channel', 'region' and 'membership'"
            )
        blocks[block] = dict(given)
    reference: dict[str, Any] = {"membership": False}
    for col, names in levels.items():
        nonzero = {lvl for b in blocks.values() for lvl, v in dict(b.get(col) or {}).items() if v}
        for b, eff in blocks.items():
            stray = [lvl for lvl in dict(eff.get(col) or {}) if lvl not in names]
            if stray:
                raise ParameterError(
                    f"covariate_effects[{b!r}][{col!r}] names unknown level(s) {stray}; levels: {names}"
                )
        free = [lvl for lvl in names if lvl not in nonzero]
        if not free:
            raise ParameterError(
                f"covariate_effects: every {col} level has an effect; give one level the effect 0 "
                "(it is the reference level the others are compared with)"
            )
        reference[col] = free[0]
    eta: dict[str, np.ndarray] = {}
    truth: dict[str, Any] = {}
    for block, eff in blocks.items():
        e = np.zeros(n)
        coefs: dict[str, float] = {}
        for col, names in levels.items():
            per_level = {k: float(v) for k, v in dict(eff.get(col) or {}).items()}
            table = np.array([per_level.get(lvl, 0.0) for lvl in names])
            e += table[codes[col]]
            coefs.update({f"{col}[{lvl}]": per_level.get(lvl, 0.0) for lvl in names if lvl != reference[col]})
        m_eff = float(eff.get("membership", 0.0))
        e += m_eff * membership
        coefs["membership[True]"] = m_eff
        eta[block] = e
        truth[block] = coefs
    lam = np.maximum(pop.lam * np.exp(eta["purchase"]), _MIN_RATE)
    pop = _Population(lam=lam, channel=channel, nu=pop.nu, favourite=pop.favourite)
    truth["reference"] = reference
    truth["membership_share"] = share
    truth["parameterisation"] = (
        "alpha_i = alpha exp(-gamma_purchase' z_i); Pareto/NBD beta_i = beta exp(-gamma_dropout' z_i); "
        "BG/NBD a_i = a exp(gamma_dropout' z_i), b_i = b exp(gamma_dropout' z_i)"
    )
    return pop, membership, eta["dropout"], truth


def _apply_loyalty(rng: np.random.Generator, loyalty: Any, cfg: _Config, proc: _Process,
                   lam: np.ndarray, acq: np.ndarray, active_until: np.ndarray, events: _Events
                   ) -> tuple[dict[str, Any] | None, np.ndarray, np.ndarray, _Events]:
    """Self-selected loyalty programme: who joins when, and the members' lifted purchases.

    Returns the loyalty truth (None without a programme), the member flags, the join times
    (days since start, NaN for non-members) and the repeat-purchase events after the
    programme.
    """
    n = cfg.n
    join_cal = np.full(n, np.nan)
    member = np.zeros(n, dtype=bool)
    if not loyalty:
        return None, member, join_cal, events
    loyalty_cfg = dict(_DEFAULT_LOYALTY)
    if isinstance(loyalty, Mapping):
        loyalty_cfg = _with_defaults(loyalty, _DEFAULT_LOYALTY, "loyalty")
    join_rate = _number(loyalty_cfg, "join_rate", "loyalty")
    selection = _number(loyalty_cfg, "selection", "loyalty")
    effect = _number(loyalty_cfg, "effect", "loyalty")
    if not (np.isfinite(join_rate) and join_rate > 0):
        raise ParameterError(f"loyalty['join_rate']={join_rate!r} must be a positive rate per day")
    if not np.isfinite(selection):
        raise ParameterError(f"loyalty['selection']={selection!r} must be a finite number")
    if not (np.isfinite(effect) and effect > 0):
        raise ParameterError(f"loyalty['effect']={effect!r} must be a positive multiplier")
    launch_ts = cfg.start_ts if loyalty_cfg["launch"] is None else _as_timestamp(
        loyalty_cfg["launch"], "loyalty['launch']")
    launch = float((launch_ts - cfg.start_ts).days)
    if not 0 <= launch < cfg.window_days:
        raise ParameterError(
            f"loyalty['launch']={_fmt_date(launch_ts)} is outside the observation window "
            f"{_fmt_date(cfg.start_ts)}..{_fmt_date(cfg.end_ts)}")
    mean_lam = proc.params_daily["r"] / proc.params_daily["alpha"]
    with np.errstate(over="ignore", divide="ignore"):
        hazard = join_rate * np.exp(selection * np.log(lam / mean_lam))
    hazard = np.clip(hazard, 1e-300, 1e300)
    eligible_from = np.maximum(acq, launch)
    recency = loyalty_cfg["recency"]
    history = loyalty_cfg["history"]
    if history is not None and recency is not None:
        raise ParameterError("loyalty: give either 'history' (monthly joining on the purchase "
                             "history) or 'recency' (joining after purchases), not both")
    if history is not None:
        coef = _join_history_coefficients(history)
        latent = selection if isinstance(loyalty, Mapping) and "selection" in loyalty else 0.0
        join_cal = _join_times_on_history(rng, cfg, acq, launch, events, coef, latent,
                                          lam / mean_lam)
        recency = float("nan")  # joining does not need the customer to be alive either
        recent_days = float("nan")
    elif recency is None:
        join_cal = eligible_from + rng.standard_exponential(n) / hazard
    else:
        recency = _number(loyalty_cfg, "recency", "loyalty")
        if not (np.isfinite(recency) and recency >= 0):
            raise ParameterError(
                f"loyalty['recency']={recency!r} must be a non-negative hazard multiplier")
        recent_days = _as_days(loyalty_cfg["recent_days"], "loyalty['recent_days']")
        # customers may sign up at (or after) their last purchase: joining does not need
        # the customer to be alive, only the window to be open
        join_cal = _join_times_after_purchases(
            rng, hazard, eligible_from, np.full(n, cfg.window_days), acq, events, recency,
            recent_days)
    join_until = acq + active_until if recency is None else np.full(n, cfg.window_days)
    join_cal = np.where(join_cal >= launch, join_cal, np.inf)
    member = join_cal < join_until
    join_cal = np.where(member, join_cal, np.nan)
    # members: base purchases after joining are replaced by purchases at the lifted rate
    ev_cust, ev_cal = events.cust, events.cal
    keep = ~(member[ev_cust] & (ev_cal >= join_cal[ev_cust]))
    counterfactual = _Events(cust=ev_cust[~keep], cal=ev_cal[~keep])
    ev_cust, ev_cal = ev_cust[keep], ev_cal[keep]
    m_idx = np.flatnonzero(member)
    post = acq[m_idx] + active_until[m_idx] - join_cal[m_idx]
    if recency is not None:
        post = np.maximum(post, 0.0)  # joined after dropping out: no purchases
    post_counts = rng.poisson(effect * lam[m_idx] * post)
    li, lt = _uniform_events(rng, join_cal[m_idx], join_cal[m_idx] + post, post_counts)
    ev_cust = np.concatenate([ev_cust, m_idx[li]])
    ev_cal = np.concatenate([ev_cal, lt])
    truth = {
        "join_rate": join_rate,
        "selection": selection,
        "effect": effect,
        "launch": launch_ts,
        "n_members": int(member.sum()),
        "description": "members' purchase rate while alive is effect x lambda after joining",
    }
    if history is not None:
        truth["history"] = coef
        truth["selection"] = latent
        truth["description"] += (
            "; from eligibility (launch, or the month after acquisition) a non-member joins "
            "each month with probability expit(intercept + recent * purchases in the 3 "
            "months before eligibility + recency * months since the last purchase then + "
            "total * log1p(purchases then)) * (lambda / E[lambda]) ** selection, on a day "
            "drawn uniformly in the month, alive or not")
    elif recency is not None:
        truth["recency"] = recency
        truth["recent_days"] = recent_days
        truth["description"] += (
            f"; the joining hazard is multiplied by {recency:g} within {recent_days:g} days "
            "after a purchase, and customers may join after their last purchase")
    truth["_lifted"] = _Events(cust=m_idx[li], cal=lt)
    truth["_counterfactual"] = counterfactual
    placebo = loyalty_cfg["placebo"]
    if placebo is not None and placebo is not False:
        rate = 0.5 if placebo is True else _number(loyalty_cfg, "placebo", "loyalty")
        if not (np.isfinite(rate) and rate > 0):
            raise ParameterError(f"loyalty['placebo']={placebo!r} must be True or a positive "
                                 "rate multiplier")
        # own generator: the programme's and the purchases' draws stay as without it
        prng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
        alive = np.minimum(active_until, np.maximum(cfg.window_days - acq, 0.0))
        pi, pt = _uniform_events(prng, acq, acq + alive, prng.poisson(rate * lam * alive))
        truth["placebo_rate"] = rate
        truth["_placebo"] = _Events(cust=pi, cal=pt)
    return truth, member, join_cal, _Events(cust=ev_cust, cal=ev_cal)


def _with_defaults(given: Mapping[str, Any], defaults: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``defaults`` updated with ``given``; a key ``defaults`` does not have is an error naming it."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ParameterError(f"{name} has unknown keys {unknown}: use {sorted(defaults)}")
    return {**defaults, **given}


def _join_history_coefficients(history: Any) -> dict[str, float]:
    coef = dict(DEFAULT_JOIN_HISTORY)
    if isinstance(history, Mapping):
        coef = _with_defaults(history, DEFAULT_JOIN_HISTORY, "loyalty['history']")
    elif history is not True:
        raise ParameterError("loyalty['history'] must be True or a dict of log-odds "
                             f"coefficients {sorted(DEFAULT_JOIN_HISTORY)}")
    out = {k: _number(coef, k, "loyalty['history']") for k in DEFAULT_JOIN_HISTORY}
    if not all(np.isfinite(v) for v in out.values()):
        raise ParameterError(f"loyalty['history'] coefficients must be finite, got {out}")
    return out


def _join_times_on_history(rng: np.random.Generator, cfg: _Config, acq: np.ndarray,
                           launch: float, events: _Events, coef: Mapping[str, float],
                           selection: float, rel_rate: np.ndarray) -> np.ndarray:
    """Monthly joining decisions on the purchase history (days since start; inf = never).

    A customer becomes eligible in the launch month (or the month after her acquisition,
    whichever is later). From then on, at the start of each month she joins, if she has not
    yet, with probability ``expit(log-odds) * rel_rate ** selection`` (capped at 1), the
    log-odds being linear in her purchases in the last three months before eligibility, the
    months since her last purchase then (capped at 12) and the log of her purchases so far
    -- her recent activity as the programme reached her. The joining day is uniform in the
    month. The loop runs over months, vectorised over customers.
    """
    n = cfg.n
    first_month = int(np.datetime64(cfg.start_ts.date(), "M").astype(np.int64))
    month_acq = _month_index(cfg.start_ts, acq) - first_month
    n_months = int(_month_index(cfg.start_ts, np.array([cfg.window_days - 1.0]))[0]
                   - first_month + 1)
    p_cust = np.concatenate([np.arange(n), events.cust])
    p_month = _month_index(cfg.start_ts, np.concatenate([acq, events.cal])) - first_month
    counts = np.bincount(p_cust * n_months + p_month, minlength=n * n_months).reshape(
        n, n_months).astype(np.float64)
    launch_month = int(_month_index(cfg.start_ts, np.array([launch]))[0] - first_month)
    month_start = (np.datetime64(cfg.start_ts.date(), "M") + np.arange(n_months + 1)).astype(
        "datetime64[D]")
    start_day = (month_start - np.datetime64(cfg.start_ts.date(), "D")).astype(np.float64)
    join = np.full(n, np.inf)
    cum = np.cumsum(counts, axis=1)
    last_buy = np.where(counts > 0, np.arange(n_months)[None, :], -1)
    last_buy = np.maximum.accumulate(last_buy, axis=1)
    with np.errstate(divide="ignore"):
        tilt = np.exp(selection * np.log(rel_rate)) if selection else np.ones(n)
    # the history is read once, when the customer becomes eligible (the launch, or the month
    # after her acquisition): later purchases do not change her joining chances, so joining
    # is unrelated to later outcome shocks given this history
    m0 = np.maximum(max(launch_month, 1), month_acq + 1)
    ok = m0 < n_months
    rows = np.flatnonzero(ok)
    col = m0[ok] - 1
    recent = cum[rows, col] - np.where(col >= 3, cum[rows, np.maximum(col - 3, 0)], 0.0)
    since = np.minimum(col - last_buy[rows, col], 12)
    logit = (coef["intercept"] + coef["recent"] * recent + coef["recency"] * since
             + coef["total"] * np.log1p(cum[rows, col]))
    prob = np.zeros(n)
    prob[rows] = np.minimum(special.expit(logit) * tilt[rows], 1.0)
    for m in range(max(launch_month, 1), n_months):
        at_risk = np.isinf(join) & (m0 <= m)
        u = rng.random(n)
        joins = at_risk & (u < prob)
        days = start_day[m] + rng.random(n) * (start_day[m + 1] - start_day[m])
        join[joins] = np.minimum(days[joins], cfg.window_days - 1e-9)
    return join


def _join_times_after_purchases(rng: np.random.Generator, hazard: np.ndarray,
                                lo: np.ndarray, hi: np.ndarray, acq: np.ndarray,
                                events: _Events, recency: float, recent_days: float
                                ) -> np.ndarray:
    """First joining time when the hazard is ``hazard * recency`` within ``recent_days`` after
    a purchase and ``hazard`` otherwise (NaN-free; ``inf`` when the customer never joins).

    Drawn by thinning (Lewis & Shedler 1979): candidate times from a Poisson process with the
    maximal rate ``hazard * max(1, recency)`` on ``[lo, hi)``, each kept with probability
    ``h(t) / h_max``; the first kept candidate is the joining time.
    """
    n = hazard.size
    h_max = hazard * max(1.0, recency)
    length = np.maximum(hi - lo, 0.0)
    counts = rng.poisson(np.minimum(h_max * length, 1e7))
    idx, times = _uniform_events(rng, lo, np.maximum(hi, lo), counts)
    # last purchase (acquisition included) at or before each candidate time
    p_cust = np.concatenate([np.arange(n), events.cust])
    p_cal = np.concatenate([acq, events.cal])
    scale = float(max(np.max(hi, initial=0.0), np.max(p_cal, initial=0.0))) + 10.0
    keys = np.sort(p_cust * scale + p_cal)
    pos = np.searchsorted(keys, idx * scale + times, side="right") - 1
    last = keys[np.maximum(pos, 0)] - idx * scale  # same customer: acquisition precedes lo
    recent = (pos >= 0) & (last >= 0) & (times - last < recent_days)
    accept_p = np.where(recent, recency, 1.0) / max(1.0, recency)
    kept = rng.random(idx.size) < accept_p
    join = np.full(n, np.inf)
    np.minimum.at(join, idx[kept], times[kept])
    return join


def _apply_winback(rng: np.random.Generator, winback: Any, cfg: _Config, events: _Events
                   ) -> tuple[pd.DataFrame | None, dict[str, Any] | None, _Events]:
    """Randomised win-back campaign to lapsed customers and the responders' extra purchases."""
    if not winback:
        return None, None, events
    n, start_ts, end_ts = cfg.n, cfg.start_ts, cfg.end_ts
    wb = dict(_DEFAULT_WINBACK)
    if isinstance(winback, Mapping):
        wb = _with_defaults(winback, _DEFAULT_WINBACK, "winback")
    send_ts = (end_ts - pd.Timedelta(days=90) if wb["send_date"] is None
               else _as_timestamp(wb["send_date"], "winback['send_date']"))
    lapsed_days = _as_days(wb["lapsed_days"], "winback['lapsed_days']")
    response_days = _as_days(wb["response_days"], "winback['response_days']")
    share = _number(wb, "treatment_share", "winback")
    effect_wb = _number(wb, "effect", "winback")
    if not 0 < share < 1:
        raise ParameterError(
            f"winback['treatment_share']={share!r} must be strictly between 0 and 1 so "
            "both a treatment and a control group exist")
    if not 0 <= effect_wb <= 1:
        raise ParameterError(
            f"winback['effect']={effect_wb!r} is a probability of an extra purchase: "
            "use a value in [0, 1]")
    send = float((send_ts - start_ts).days)
    if send < lapsed_days or send + response_days > cfg.window_days:
        raise ParameterError(
            f"winback send_date={_fmt_date(send_ts)}: need lapsed_days={lapsed_days:g} of "
            f"history before it and response_days={response_days:g} after it inside "
            f"{_fmt_date(start_ts)}..{_fmt_date(end_ts)}")
    all_cust, all_cal = events.cust, events.cal
    day = np.floor(all_cal)
    before = day < send
    last_day = np.full(n, -np.inf)
    np.maximum.at(last_day, all_cust[before], day[before])
    last_day[np.isneginf(last_day)] = np.inf  # acquired on or after the send date
    eligible = np.flatnonzero(last_day <= send - lapsed_days)
    n_elig = eligible.size
    n_treat = round(share * n_elig)
    perm = rng.permutation(n_elig)
    treated = np.zeros(n, dtype=bool)
    treated[eligible[perm[:n_treat]]] = True
    responders = np.flatnonzero(treated)
    responders = responders[rng.random(responders.size) < effect_wb]
    resp_time = send + rng.random(responders.size) * response_days
    all_cust = np.concatenate([all_cust, responders])
    all_cal = np.concatenate([all_cal, resp_time])
    group = pd.Categorical.from_codes(np.where(treated[eligible], 0, 1).astype(np.int8),
                                      categories=["treatment", "control"])
    campaign_df = pd.DataFrame(
        {
            "customer_id": (eligible + 1).astype(np.int64),
            "group": group,
            "send_date": np.full(n_elig, np.datetime64(send_ts.date(), "D")).astype(
                "datetime64[ns]"),
        }
    )
    campaign_cfg = {
        "effect": effect_wb,
        "description": "extra purchases per treated customer in the response window "
                       "(average treatment effect)",
        "send_date": send_ts,
        "lapsed_days": lapsed_days,
        "response_days": response_days,
        "treatment_share": share,
        "n_eligible": int(n_elig),
        "n_treatment": int(n_treat),
        "n_control": int(n_elig - n_treat),
        "n_incremental_purchases": int(responders.size),
        "realised_effect": float(responders.size / n_treat) if n_treat else 0.0,
    }
    return campaign_df, campaign_cfg, _Events(cust=all_cust, cal=all_cal)


def _draw_transaction_attributes(rng: np.random.Generator, spend: Mapping[str, float],
                                 pop: _Population, cat_shares: np.ndarray, events: _Events
                                 ) -> _TransactionDraws:
    """Gamma-Gamma amounts and categories per transaction; sort by day then customer."""
    all_cust = events.cust
    n_tx = all_cust.size
    amount = rng.gamma(spend["p"], 1.0 / pop.nu[all_cust])
    amount = np.maximum(np.round(amount, 2), 0.01)
    own = rng.random(n_tx) < _FAVOURITE_CATEGORY_PROB
    category = np.where(own, pop.favourite[all_cust], _draw_categorical(rng, cat_shares, n_tx))
    tday = np.floor(events.cal)
    order = _order_by_day_customer(tday, all_cust)
    all_cust, tday, amount, category = all_cust[order], tday[order], amount[order], category[order]
    same_day = int(np.count_nonzero((all_cust[1:] == all_cust[:-1]) & (tday[1:] == tday[:-1])))
    return _TransactionDraws(cust=all_cust, day=tday, amount=amount, category=category,
                             n_tx=int(n_tx), same_day=same_day)


def _assemble_transactions(cfg: _Config, tx: _TransactionDraws, region: np.ndarray,
                           channel: np.ndarray, cat_names: list[str]) -> pd.DataFrame:
    all_cust = tx.cust
    return pd.DataFrame(
        {
            "customer_id": (all_cust + 1).astype(np.int64),
            "date": _days_to_dates(cfg.start_ts, tx.day),
            "amount": tx.amount.astype(np.float64),
            "region": pd.Categorical.from_codes(region[all_cust], categories=cfg.region_names),
            "channel": pd.Categorical.from_codes(channel[all_cust], categories=cfg.channel_names),
            "category": pd.Categorical.from_codes(tx.category, categories=cat_names),
        },
        copy=False,  # fresh arrays: skip pandas' block consolidation copy
    )


def _assemble_customers(cfg: _Config, acq: np.ndarray, region: np.ndarray, pop: _Population,
                        base: _BasePurchases, spend: Mapping[str, float], member: np.ndarray,
                        join_cal: np.ndarray, cat_names: list[str]) -> pd.DataFrame:
    n, start_ts = cfg.n, cfg.start_ts
    dropout_cal = acq + base.lifetime
    dropout_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    dropped = ~base.alive_end
    dropout_date[dropped] = _days_to_dates(start_ts, dropout_cal[dropped])
    join_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    join_date[member] = _days_to_dates(start_ts, join_cal[member])
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "first_purchase": _days_to_dates(start_ts, acq),
            "region": pd.Categorical.from_codes(region, categories=cfg.region_names),
            "channel": pd.Categorical.from_codes(pop.channel, categories=cfg.channel_names),
            "acquisition_cost": cfg.channel_costs[pop.channel].astype(np.float64),
            "lambda": pop.lam,
            **base.latent_extra,
            "nu": pop.nu,
            "mean_spend": spend["p"] / pop.nu,
            "lifetime_days": base.lifetime,
            "dropout_date": dropout_date,
            "alive_at_end": base.alive_end,
            "favourite_category": pd.Categorical.from_codes(pop.favourite, categories=cat_names),
            "member": member,
            "join_date": join_date,
        },
        copy=False,
    )


def _assemble_truth(cfg: _Config, seed: Any, proc: _Process, spend: Mapping[str, float],
                    pop: _Population, base: _BasePurchases, tx: _TransactionDraws,
                    cat_names: list[str], cat_shares: np.ndarray,
                    loyalty_cfg: dict[str, Any] | None, campaign_cfg: dict[str, Any] | None
                    ) -> dict[str, Any]:
    """The generating process, its parameters and realised per-channel values."""
    n = cfg.n
    tx_per_customer = np.bincount(tx.cust, minlength=n)
    revenue = np.bincount(tx.cust, weights=tx.amount, minlength=n)
    latent = {"lambda": pop.lam, **({"p": base.latent_extra["p"]} if "p" in base.latent_extra
                                    else {"mu": base.latent_extra["mu"]})}
    per_channel = _channel_truth(
        pop.channel, cfg.channel_names, cfg.channel_shares, cfg.channel_costs,
        cfg.channel_tilts, latent,
        {
            "transactions_per_customer": tx_per_customer,
            "revenue_per_customer": revenue,
        },
    )
    return {
        "process": proc.name,
        "mode": "transactions",
        "params": proc.params,
        "time_unit": proc.unit,
        "params_daily": proc.params_daily,
        "spend_params": spend,
        # E[Z] = p gamma / (q - 1) (FHL 2005b); undefined (infinite) for q <= 1
        "mean_transaction_value": spend["p"] * spend["gamma"] / (spend["q"] - 1.0)
        if spend["q"] > 1 else None,
        "seed": seed if isinstance(seed, int | np.integer | type(None)) else "generator",
        "n_customers": n,
        "n_transactions": tx.n_tx,
        "same_day_purchases": tx.same_day,
        "start": cfg.start_ts,
        "observation_end": cfg.end_ts,
        "window_days": cfg.window_days,
        "acquisition_days": cfg.acq_days,
        "channels": per_channel,
        "regions": dict(zip(cfg.region_names, cfg.region_shares.tolist(), strict=True)),
        "categories": dict(zip(cat_names, cat_shares.tolist(), strict=True)),
        "favourite_category_probability": _FAVOURITE_CATEGORY_PROB,
        "loyalty": loyalty_cfg,
        "campaign": campaign_cfg,
        "programme_effect": None if loyalty_cfg is None else loyalty_cfg["effect"],
        "campaign_effect": None if campaign_cfg is None else campaign_cfg["effect"],
    }


def simulate(
    n_customers: int,
    seed: int | np.random.Generator | None = 0,
    *,
    process: str = "bgnbd",
    params: Mapping[str, float] | None = None,
    time_unit: str = "D",
    start: Any = "2022-01-01",
    end: Any = None,
    acquisition_period: Any = "365D",
    spend_params: Mapping[str, float] | None = None,
    regions: Mapping[str, float] | list[str] | None = None,
    channels: Mapping[str, Any] | list[str] | None = None,
    categories: Mapping[str, float] | list[str] | None = None,
    loyalty: Mapping[str, Any] | bool | None = None,
    winback: Mapping[str, Any] | bool | None = None,
    mode: str = "transactions",
    subscription: Mapping[str, Any] | None = None,
    covariate_effects: Mapping[str, Any] | None = None,
) -> Simulation:
    """Simulate a customer base with known truth.

    Customers are acquired at uniformly distributed times over ``acquisition_period`` from
    ``start``; acquisition is their first purchase. They are then observed until ``end``.

    Purchase process (``mode="transactions"``), in continuous time measured in days:

    * ``process="bgnbd"`` -- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
      easy way", Marketing Science 24(2), assumptions i-v): while alive a customer buys at the
      times of a Poisson process with rate ``lambda ~ Gamma(shape=r, rate=alpha)``; right after
      each *repeat* purchase she drops out with probability ``p ~ Beta(a, b)``. The expected
      number of repeat purchases of a new customer in ``(0, t]`` is their eq. (7).
    * ``process="mbgnbd"`` -- MBG/NBD (Batislam, Denizel & Filiztekin 2007, IJRM 24(3)): as
      BG/NBD, but the customer may also drop out right after the first purchase (probability
      ``p``), so some customers never come back.
    * ``process="pareto_nbd"`` -- Pareto/NBD (Schmittlein, Morrison & Colombo 1987,
      Management Science 33(1)): Poisson purchasing with ``lambda ~ Gamma(r, alpha)`` during an
      exponential lifetime with rate ``mu ~ Gamma(shape=s, rate=beta)``.
    * Spend: Gamma-Gamma (Fader, Hardie & Lee 2005b, "RFM and CLV", JMR 42(4); Colombo &
      Jiang 1999): each customer has ``nu ~ Gamma(shape=q, rate=gamma)`` and every transaction
      value is ``z ~ Gamma(shape=p, rate=nu)``, independent of the purchase process; mean
      transaction value ``p * gamma / (q - 1)``. Amounts are rounded to cents (at least 0.01).

    The BG/NBD repeat purchases are drawn exactly and without simulating beyond what is
    observed: with ``M ~ Poisson(lambda T)`` events in the observation window and ``N ~
    Geometric(p)`` repeat purchases until dropout, the customer makes ``K = min(M, N)`` of
    them, at the first ``K`` order statistics of ``M`` uniforms on ``(0, T)`` (drawn from
    exponential spacings). A customer still alive at ``T`` drops out at ``T + Gamma(N - M,
    lambda)`` by memorylessness.

    Dates are whole days. The true parameters describe the continuous-time process; customer
    summaries merge purchases made in the same period (as lifetimes' summaries do), which
    loses some heavy buyers' purchases: with the defaults about 1.5% of repeat purchases share
    a day with another and about 9% share a week (``truth["same_day_purchases"]`` counts the
    former). Fits on daily summaries recover the parameters within sampling error up to a
    few ten thousand customers; fits on weekly summaries are visibly biased (alpha too high).

    Parameters
    ----------
    n_customers : int
        Number of customers, ids ``1..n_customers``.
    seed : int, numpy.random.Generator or None, default 0
        Seed for :func:`numpy.random.default_rng`; the same seed gives identical output.
    process : {"bgnbd", "mbgnbd", "pareto_nbd"}
        Purchase and dropout process (spellings like ``"BG/NBD"`` are accepted).
    params : dict, optional
        Process parameters in ``time_unit``: BG/NBD and MBG/NBD ``r, alpha, a, b`` (default
        :data:`DEFAULT_BGNBD_PARAMS`, CDNOW), Pareto/NBD ``r, alpha, s, beta`` (default
        :data:`DEFAULT_PARETO_NBD_PARAMS`, CDNOW).
    time_unit : str, default "D"
        Unit of the rate parameters ``alpha`` (and ``beta`` for Pareto/NBD): a model fitted on
        ``rfm_summary(tx, freq=time_unit)`` should recover ``params``. Internally the scale
        parameters are converted to days (``alpha_days = alpha * days_per_unit``; months are
        365.25/12 days). Without ``params`` the daily defaults are expressed in this unit in
        ``truth["params"]`` (the process is the same).
    start : date-like, default "2022-01-01"
        First day of acquisition and of the observation window.
    end : date-like or duration, optional
        Last observed day (inclusive), or the length of the observation window as a duration
        (``730``, ``"730D"``, a Timedelta). Default: 730 days (start + 729 days).
    acquisition_period : duration, default "365D"
        Customers' first purchases are spread uniformly over this period after ``start``;
        must not exceed the observation window.
    spend_params : dict, optional
        Gamma-Gamma ``p, q, gamma`` (default :data:`DEFAULT_SPEND_PARAMS`).
    regions : dict or list, optional
        Region name -> share (independent of behaviour).
    channels : dict or list, optional
        Acquisition channel name -> ``{"share": s, "cost": c, "tilt": k}``. ``cost`` is the
        acquisition cost per customer. ``tilt`` makes purchase rates channel-dependent without
        changing the population distribution of ``lambda`` (so pooled data still follow the
        process exactly): ``P(channel c | lambda) ~ share_c * exp(tilt_c * z)`` with ``z =
        Phi^-1(F_Gamma(lambda))`` the customer's normal score. Realised per-channel shares and
        mean rates are in ``truth["channels"]``. Default :data:`DEFAULT_CHANNELS`.
    categories : dict or list, optional
        Product category name -> share. Each customer has a favourite category (drawn by
        share) that each transaction belongs to with probability 0.6; otherwise the category is
        drawn by share.
    loyalty : dict or True, optional
        Loyalty programme, keys (defaults): ``join_rate`` (0.002 per day at the average
        purchase rate), ``selection`` (1.0), ``effect`` (1.3), ``launch`` (``start``). From
        ``max(acquisition, launch)`` a customer joins with hazard ``join_rate *
        (lambda / E[lambda]) ** selection`` per day -- customers who buy more join more often and
        earlier (self-selection) -- provided she is still alive and inside the window. After
        joining her purchase rate is ``effect * lambda`` until she drops out; the dropout time
        itself is unchanged (for BG/NBD it is set by the purchases she would have made without
        the programme). ``effect`` is thus the true multiplicative lift in the purchase rate of
        members while alive. Two further joining mechanisms (for validating programme-effect
        estimators; they also return ``Simulation.counterfactual`` and the true effect on the
        treated in ``truth["loyalty"]["att"]``): ``recency`` (a hazard multiplier within
        ``recent_days``, default 30, after each purchase -- joining triggered by purchases)
        and ``history`` (True or log-odds coefficients, default
        :data:`DEFAULT_JOIN_HISTORY`: from the launch, or the month after acquisition, a
        non-member joins each month with a probability that depends on her purchases in the
        three months before that, the months since her last purchase then and her purchases
        so far, times ``(lambda / E[lambda]) ** selection``, where ``selection`` defaults to 0
        in this mode, so that joining depends on the latent rate only through the observed
        history; staggered joining that the Callaway & Sant'Anna design can identify). In both, customers may join after
        their last purchase (joining does not reveal that they are alive). ``placebo``
        (None; True or a rate multiplier, True = 0.5): also draw ``Simulation.placebo``, an
        outcome the programme cannot affect with the same self-selection -- "service
        contacts" at ``placebo * lambda`` per day while the customer is alive (the same
        latent rate and dropout as her purchases, never lifted by membership), from a
        generator spawned off the seed, so the other draws do not change.
    winback : dict or True, optional
        Randomised win-back campaign, keys (defaults): ``send_date`` (``end`` - 90 days),
        ``lapsed_days`` (120), ``response_days`` (30), ``treatment_share`` (0.5), ``effect``
        (0.10). Customers acquired and without any purchase in the ``lapsed_days`` days before
        ``send_date`` (last purchase on or before ``send_date - lapsed_days``) are eligible; a
        completely randomised ``treatment_share`` of them is treated, the rest is the holdout
        control. Each treated customer -- alive or not -- makes one extra purchase, uniformly
        in ``[send_date, send_date + response_days)``, with probability ``effect``; so
        ``effect`` is the true average treatment effect on purchases per customer in the
        response window. Nothing else changes.
    mode : {"transactions", "subscription"}
        ``"subscription"`` simulates a contractual business instead of a purchase process.
    subscription : dict, optional
        Subscription mode: ``alpha``, ``beta`` (sBG churn heterogeneity per monthly period) and
        ``plans`` (name -> ``{"share", "price"}``), default :data:`DEFAULT_SUBSCRIPTION`. Each
        subscriber has churn probability ``theta ~ Beta(alpha, beta)`` per month and pays
        ``price`` at the start of each month; she stays ``L ~ Geometric(theta)`` months, so the
        survival is ``S(t) = B(alpha, beta + t) / B(alpha, beta)`` (Fader & Hardie 2007, "How to
        project customer retention", J. Interactive Marketing 21(1), eq. 3). Months are
        365.25/12 days. Channel ``tilt`` acts on the normal score of ``1 - theta``.
    covariate_effects : dict, optional
        Static covariates that shift the true rates exactly as the covariate models
        (:class:`~custvalue.models.ParetoNBDModel`, :class:`~custvalue.models.BetaGeoModel`
        with ``purchase_covariates`` / ``dropout_covariates``, CLVTools' parameterisation)
        assume: ``{"purchase": {"channel": {"referral": 0.4}, "region": {"South": -0.2},
        "membership": 0.3}, "dropout": {...}, "membership_share": 0.3}``. With ``eta_i`` the
        sum of a customer's coefficients, purchase ``alpha_i = alpha exp(-eta_i)``; dropout
        Pareto/NBD ``beta_i = beta exp(-eta_i)``, BG/NBD ``a_i, b_i = a, b exp(eta_i)``.
        Unlisted levels have coefficient 0 and the first of them is the reference level;
        ``membership`` is a new static flag column of ``customers`` (a share
        ``membership_share`` of members, default 0.3). Channels are drawn without ``tilt``.
        ``truth["covariates"]`` holds the true coefficients per block in the models' term
        names and the reference levels.

    Returns
    -------
    Simulation
        ``transactions``, ``customers`` (true latent columns: ``lambda`` per day, ``p`` or
        ``mu`` per day, ``nu`` and ``mean_spend = p_spend / nu``, ``lifetime_days`` from
        acquisition to dropout, which may lie beyond the window, ``dropout_date`` (NaT when
        after the window), ``alive_at_end``, ``favourite_category``, ``member``,
        ``join_date``; in subscription mode ``theta``, ``lifetime_periods``, ``plan``,
        ``price``), ``memberships``, ``campaign``, ``subscriptions`` and ``truth`` (process,
        params in ``time_unit``, params_daily, spend_params, mean_transaction_value, start,
        observation_end, window_days, acquisition_days, per-channel values under
        ``"channels"``, ``"loyalty"`` and ``"campaign"`` settings with realised counts, and
        the true ``"programme_effect"`` (purchase-rate multiplier) and ``"campaign_effect"``
        (extra purchases per treated customer), None when absent).

    Raises
    ------
    ParameterError
        For invalid arguments (non-positive parameters, unknown process or mode, dates out
        of order, a campaign response window beyond ``end``, ...).
    """
    cfg = _parse_config(n_customers, seed, mode, start, end, acquisition_period, regions, channels)
    rng = cfg.rng
    # ---- acquisition ----------------------------------------------------------------------
    acq = rng.random(cfg.n) * cfg.acq_days  # days since start, continuous
    horizon = cfg.window_days - acq  # T_i: time observed since acquisition (days)
    region = _draw_categorical(rng, cfg.region_shares, cfg.n)

    if cfg.subscription_mode:
        if covariate_effects is not None:
            raise ParameterError("covariate_effects apply to mode='transactions' only")
        _check_subscription_arguments(loyalty, winback, params, spend_params, categories)
        return _simulate_subscriptions(
            rng, cfg.n, seed, cfg.start_ts, cfg.end_ts, cfg.window_days, cfg.acq_days, acq,
            horizon, region, cfg.region_names, cfg.region_shares, cfg.channel_names,
            cfg.channel_shares, cfg.channel_costs, cfg.channel_tilts, subscription,
        )
    if subscription is not None:
        raise ParameterError("subscription=... needs mode='subscription'")
    if covariate_effects is not None and (loyalty or winback):
        raise ParameterError(
            "covariate_effects cannot be combined with loyalty= or winback= (their effects would "
            "change the rates beyond the static-covariate model)"
        )

    cat_names, cat_shares = _shares(
        DEFAULT_CATEGORIES if categories is None else categories, "categories")
    proc = _parse_process(process, params, time_unit)
    spend = _positive_params(spend_params, DEFAULT_SPEND_PARAMS, "spend_params")

    pop = _draw_population(rng, cfg, proc, spend, cat_shares)
    cov_truth = membership = dropout_shift = None
    if covariate_effects is not None:
        pop, membership, dropout_shift, cov_truth = _apply_covariate_effects(
            rng, covariate_effects, cfg, pop, region)
    base = _draw_purchases(rng, proc, pop.lam, acq, horizon, dropout_shift=dropout_shift)
    events = _Events(cust=base.ev_cust, cal=acq[base.ev_cust] + base.ev_time)

    loyalty_cfg, member, join_cal, events = _apply_loyalty(
        rng, loyalty, cfg, proc, pop.lam, acq, base.active_until, events)
    # all purchases, first purchase included (runs sorted by customer)
    events = _Events(cust=np.concatenate([np.arange(cfg.n), events.cust]),
                     cal=np.concatenate([acq, events.cal]))
    campaign_df, campaign_cfg, events = _apply_winback(rng, winback, cfg, events)

    tx = _draw_transaction_attributes(rng, spend, pop, cat_shares, events)
    counterfactual = None
    if loyalty_cfg is not None:
        lifted = loyalty_cfg.pop("_lifted")
        untreated = loyalty_cfg.pop("_counterfactual")
        if "recency" in loyalty_cfg or "history" in loyalty_cfg:
            loyalty_cfg["att"] = _programme_estimand(cfg, acq, join_cal, member, lifted,
                                                     untreated, tx, spend["p"] / pop.nu)
            order = np.lexsort((untreated.cal, untreated.cust))
            counterfactual = pd.DataFrame({
                "customer_id": (untreated.cust[order] + 1).astype(np.int64),
                "date": _days_to_dates(cfg.start_ts, untreated.cal[order]),
            })
    placebo_df = None
    if loyalty_cfg is not None and "_placebo" in loyalty_cfg:
        pl = loyalty_cfg.pop("_placebo")
        order = np.lexsort((pl.cal, pl.cust))
        placebo_df = pd.DataFrame({"customer_id": (pl.cust[order] + 1).astype(np.int64),
                                   "date": _days_to_dates(cfg.start_ts, pl.cal[order])})
    transactions = _assemble_transactions(cfg, tx, region, pop.channel, cat_names)
    customers = _assemble_customers(cfg, acq, region, pop, base, spend, member, join_cal,
                                    cat_names)
    memberships = None
    if loyalty_cfg is not None:
        memberships = customers.loc[member, ["customer_id", "join_date"]].reset_index(drop=True)
    truth = _assemble_truth(cfg, seed, proc, spend, pop, base, tx, cat_names, cat_shares,
                            loyalty_cfg, campaign_cfg)
    if cov_truth is not None:
        truth["covariates"] = cov_truth
        customers["membership"] = membership
    for frame in (transactions, customers):
        # an ISO string, as custvalue.summary writes it: attrs travel into Parquet metadata as JSON
        frame.attrs["observation_end"] = cfg.end_ts.isoformat()
    return Simulation(
        transactions=transactions,
        customers=customers,
        memberships=memberships,
        campaign=campaign_df,
        subscriptions=None,
        truth=truth,
        counterfactual=counterfactual,
        placebo=placebo_df,
    )


def _month_index(start_ts: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    """Calendar month (months since 1970-01) of times given in days since ``start_ts``."""
    return _days_to_dates(start_ts, days).astype("datetime64[M]").astype(np.int64)


def _programme_estimand(cfg: _Config, acq: np.ndarray, join_cal: np.ndarray,
                        member: np.ndarray, lifted: _Events, untreated: _Events,
                        tx: _TransactionDraws, mean_spend: np.ndarray) -> dict[str, Any]:
    """The members' true average effect per customer and calendar month after joining.

    The estimand is the average treatment effect on the treated over the post-joining
    customer-months, ``mean over (i, t >= g_i) of Y_it(1) - Y_it(0)``, where ``g_i`` is the
    month of joining and the cells are those a monthly panel observes: members who joined
    after the month of their first purchase (so a pre-joining month exists) and months up to
    the last complete month. ``Y(1)`` is the observed count and ``Y(0)`` the count on the
    untreated path (same draws, the purchases the programme replaced), so the effect is
    realised in the model's dropout, not read off the rate multiplier. ``ratio`` divides by
    the untreated total of the same cells; ``revenue_level`` weights each extra purchase by
    the customer's true mean spend.
    """
    end_month = int(np.datetime64(cfg.end_ts.date(), "M").astype(np.int64))
    if (cfg.end_ts + pd.Timedelta(days=1)).month == cfg.end_ts.month:
        end_month -= 1  # the last month is incomplete
    n = cfg.n
    g = np.full(n, np.iinfo(np.int64).max)
    g[member] = _month_index(cfg.start_ts, join_cal[member])
    entry = _month_index(cfg.start_ts, acq)
    treated = member & (g > entry) & (g <= end_month)

    def cell_sum(cust: np.ndarray, cal: np.ndarray, weights: np.ndarray | None = None) -> float:
        month = _month_index(cfg.start_ts, cal)
        sel = treated[cust] & (month >= g[cust]) & (month <= end_month)
        w = None if weights is None else weights[cust[sel]]
        return float(np.sum(w) if w is not None else np.count_nonzero(sel))

    n_cells = int(np.sum(np.where(treated, end_month - g + 1, 0)))
    y1 = cell_sum(tx.cust, tx.day)
    extra = cell_sum(lifted.cust, lifted.cal) - cell_sum(untreated.cust, untreated.cal)
    extra_rev = (cell_sum(lifted.cust, lifted.cal, mean_spend)
                 - cell_sum(untreated.cust, untreated.cal, mean_spend))
    y0 = y1 - extra
    return {
        "freq": "M",
        "level": extra / n_cells if n_cells else float("nan"),
        "ratio": extra / y0 if y0 > 0 else float("nan"),
        "revenue_level": extra_rev / n_cells if n_cells else float("nan"),
        "n_treated": int(treated.sum()),
        "n_cells": n_cells,
        "untreated_mean": y0 / n_cells if n_cells else float("nan"),
        "description": "members' average extra purchases per customer-month after joining "
                       "(observed minus untreated path), over members with a pre-joining month",
    }


def _simulate_subscriptions(
    rng: np.random.Generator,
    n: int,
    seed: Any,
    start_ts: pd.Timestamp,
    end_ts: pd.Timestamp,
    window_days: float,
    acq_days: float,
    acq: np.ndarray,
    horizon: np.ndarray,
    region: np.ndarray,
    region_names: list[str],
    region_shares: np.ndarray,
    channel_names: list[str],
    channel_shares: np.ndarray,
    channel_costs: np.ndarray,
    channel_tilts: np.ndarray,
    subscription: Mapping[str, Any] | None,
) -> Simulation:
    """Contractual mode of :func:`simulate`: sBG churn with monthly renewals."""
    cfg = dict(DEFAULT_SUBSCRIPTION)
    if subscription is not None:
        if not isinstance(subscription, Mapping):
            raise ParameterError("subscription must be a dict with keys alpha, beta, plans")
        cfg = _with_defaults(subscription, DEFAULT_SUBSCRIPTION, "subscription")
    sbg = _positive_params({"alpha": cfg["alpha"], "beta": cfg["beta"]},
                           {"alpha": 1.0, "beta": 1.0}, "subscription")
    plans = cfg["plans"]
    plan_names, plan_shares = _shares(plans, "subscription['plans']")
    prices = np.array(
        [float(v.get("price", np.nan)) if isinstance(v, Mapping) else np.nan
         for v in (plans.values() if isinstance(plans, Mapping) else [None] * len(plan_names))]
    )
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        raise ParameterError(
            "subscription['plans'] must map plan name -> {'share': s, 'price': positive price}, "
            f"got {plans!r}")

    month = DAYS_PER_UNIT["M"]
    theta = np.clip(rng.beta(sbg["alpha"], sbg["beta"], n), 1e-12, 1.0)
    quality = _normal_score(1.0 - special.betainc(sbg["alpha"], sbg["beta"], theta))
    channel = _draw_tilted(rng, channel_shares, channel_tilts, quality)
    plan = _draw_categorical(rng, plan_shares, n)
    periods = rng.geometric(theta)  # months paid, >= 1 (Fader & Hardie 2007, eq. 1)
    end_cal = acq + periods * month
    observed_payments = np.ceil(horizon / month).astype(np.int64)
    n_pay = np.minimum(periods, observed_payments)
    pay_cust = np.repeat(np.arange(n), n_pay)
    k = np.arange(pay_cust.size) - np.repeat(np.cumsum(n_pay) - n_pay, n_pay)
    pay_cal = acq[pay_cust] + k * month
    pay_day = np.floor(pay_cal)
    order = _order_by_day_customer(pay_day, pay_cust)
    pay_cust, pay_day = pay_cust[order], pay_day[order]

    transactions = pd.DataFrame(
        {
            "customer_id": (pay_cust + 1).astype(np.int64),
            "date": _days_to_dates(start_ts, pay_day),
            "amount": prices[plan[pay_cust]].astype(np.float64),
            "region": pd.Categorical.from_codes(region[pay_cust], categories=region_names),
            "channel": pd.Categorical.from_codes(channel[pay_cust], categories=channel_names),
            "category": pd.Categorical.from_codes(plan[pay_cust], categories=plan_names),
        }
    )
    cancelled = end_cal < window_days
    end_dates = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    end_dates[cancelled] = _days_to_dates(start_ts, end_cal[cancelled])
    starts = _days_to_dates(start_ts, acq)
    plan_cat = pd.Categorical.from_codes(plan, categories=plan_names)
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "first_purchase": starts,
            "region": pd.Categorical.from_codes(region, categories=region_names),
            "channel": pd.Categorical.from_codes(channel, categories=channel_names),
            "acquisition_cost": channel_costs[channel].astype(np.float64),
            "theta": theta,
            "lifetime_periods": periods.astype(np.int64),
            "lifetime_days": periods * month,
            "dropout_date": end_dates,
            "alive_at_end": ~cancelled,
            "plan": plan_cat,
            "price": prices[plan].astype(np.float64),
        },
        copy=False,
    )
    subscriptions = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "start": starts,
            "end": end_dates,
            "plan": plan_cat,
            "price": prices[plan].astype(np.float64),
        }
    )
    per_channel = _channel_truth(
        channel, channel_names, channel_shares, channel_costs, channel_tilts, {"theta": theta}
    )
    truth: dict[str, Any] = {
        "process": "sbg",
        "mode": "subscription",
        "params": sbg,
        "time_unit": "M",
        "period_days": month,
        "plans": {nm: {"share": float(plan_shares[i]), "price": float(prices[i])}
                  for i, nm in enumerate(plan_names)},
        "mean_churn": sbg["alpha"] / (sbg["alpha"] + sbg["beta"]),
        "seed": seed if isinstance(seed, int | np.integer | type(None)) else "generator",
        "n_customers": n,
        "n_transactions": int(pay_cust.size),
        "start": start_ts,
        "observation_end": end_ts,
        "window_days": window_days,
        "acquisition_days": acq_days,
        "channels": per_channel,
        "regions": dict(zip(region_names, region_shares.tolist(), strict=True)),
        "loyalty": None,
        "campaign": None,
        "programme_effect": None,
        "campaign_effect": None,
    }
    for frame in (transactions, customers, subscriptions):
        frame.attrs["observation_end"] = end_ts.isoformat()  # JSON-safe, as in custvalue.summary
    return Simulation(
        transactions=transactions,
        customers=customers,
        memberships=None,
        campaign=None,
        subscriptions=subscriptions,
        truth=truth,
    )


# ============================================================================ time-varying covariates
@dataclass
class DynamicCovariateSimulation:
    """Result of :func:`simulate_dynamic_covariates`.

    Attributes
    ----------
    transactions : pandas.DataFrame
        ``customer_id, date, amount``, one row per purchase (at most one per customer and day).
    covariates : pandas.DataFrame
        One row per customer and week: ``customer_id, period_start, season, member`` from the
        week of the first purchase to ``future_weeks`` weeks after the observation end (so
        that predictions have their covariates).
    memberships : pandas.DataFrame
        ``customer_id, join_date`` of the customers who join the club.
    customers : pandas.DataFrame
        True latent values: ``first_purchase, lambda, mu, death_week`` (weeks after the start,
        ``inf`` if alive at the end), ``alive_at_end``.
    truth : dict
        ``params`` (``r, alpha, s, beta`` in weeks), ``purchase_effects`` and
        ``dropout_effects`` (coefficients: rate ratios are ``exp`` of them), ``observation_end``.
    purchase_times : pandas.DataFrame
        The process before it is recorded: ``customer_id, week`` (exact time in weeks after the
        start, not rounded) of every purchase, the first one included. ``transactions`` is this
        with the times floored to days and purchases on one customer-day merged, which loses
        more purchases where the rate is high (season weeks); a fit on these exact times tests
        the estimator without that loss.
    """

    transactions: pd.DataFrame
    covariates: pd.DataFrame
    memberships: pd.DataFrame
    customers: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)
    purchase_times: pd.DataFrame = field(default_factory=pd.DataFrame)


def simulate_dynamic_covariates(
    n_customers: int,
    seed: int | np.random.Generator | None = 0,
    *,
    params: Mapping[str, float] | None = None,
    purchase_effects: Mapping[str, float] | None = None,
    dropout_effects: Mapping[str, float] | None = None,
    start: Any = "2023-01-01",
    weeks: int = 104,
    acquisition_weeks: int = 26,
    season_weeks: Sequence[int] = (20, 21, 22, 23, 45, 46, 47, 48, 49, 50, 51),
    member_share: float = 0.4,
    future_weeks: int = 26,
) -> DynamicCovariateSimulation:
    """Simulate a Pareto/NBD customer base whose rates change with weekly covariates.

    The process of Bachmann, Meierer & Näf (2021), "The Role of Time-Varying Contextual
    Factors in Latent Attrition Models for Customer Base Analysis" (Marketing Science): while
    alive, customer ``i`` buys as a Poisson process with rate
    ``lambda_i exp(g_p' z_i(t))`` and drops out with hazard ``mu_i exp(g_d' z_i(t))``,
    ``lambda ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)`` (shape, rate, in weeks). ``z`` is
    piecewise constant per calendar week from ``start``: ``season`` is 1 in the weeks of the
    year listed in ``season_weeks`` (0-based week of each 52-week year), ``member`` is 1 from the
    first week that starts on or after the customer's join date. A share ``member_share`` of
    customers join at a uniformly drawn day between their first purchase and the end (the
    choice is independent of their rates, so the effects are identified).

    Customers are acquired on uniformly drawn days of the first ``acquisition_weeks`` weeks
    (their first purchase) and observed until the last day of week ``weeks``. The lifetime is
    drawn exactly from the piecewise-constant hazard (inverting the cumulative hazard at an
    exponential draw), purchases as Poisson counts per week of the alive time at uniform times.
    Purchase times are floored to whole days and a repeat purchase on a day that already has
    one is merged into it, as the models read transactions (one purchase per customer and day,
    as CLVTools does). This is not rare for heavy buyers: at the default rates it drops about 2%
    of the repeat purchases, more in the busier season weeks, which moves the season purchase
    coefficient estimated from ``transactions`` by about -0.01 (``benchmarks/RESULTS.md``,
    "Time-varying covariates"); ``purchase_times`` holds the exact times for checks without
    that loss.

    Parameters
    ----------
    n_customers : int
        Number of customers (ids ``1..n``).
    seed : int, Generator or None
        Seed; the same seed gives identical output.
    params : dict, optional
        ``r, alpha, s, beta`` in weeks (default ``r=0.8, alpha=8, s=0.6, beta=30``).
    purchase_effects, dropout_effects : dict, optional
        Coefficients of ``season`` and ``member`` (default purchase ``season=0.5, member=0.3``,
        dropout ``season=0.0, member=-0.7``); missing names are 0.
    start : date-like
        Start of the first week.
    weeks, acquisition_weeks, future_weeks : int
        Observation window, acquisition window and weeks of covariates after the window.
    season_weeks : sequence of int
        Weeks of the year (0..51) flagged as high season.
    member_share : float
        Share of customers who join the club.

    Returns
    -------
    DynamicCovariateSimulation
    """
    n = int(n_customers)
    if n < 1:
        raise ParameterError(f"n_customers must be >= 1; got {n_customers!r}")
    weeks, acquisition_weeks, future_weeks = int(weeks), int(acquisition_weeks), int(future_weeks)
    if not 1 <= acquisition_weeks <= weeks:
        raise ParameterError("acquisition_weeks must be between 1 and weeks")
    if not 0.0 <= float(member_share) <= 1.0:
        raise ParameterError(f"member_share must be in [0, 1]; got {member_share!r}")
    par = {"r": 0.8, "alpha": 8.0, "s": 0.6, "beta": 30.0, **dict(params or {})}
    for k, v in par.items():
        if k not in ("r", "alpha", "s", "beta") or not float(v) > 0:
            raise ParameterError(f"params must be r, alpha, s, beta > 0; got {k}={v!r}")
    names = ("season", "member")
    gp = {"season": 0.5, "member": 0.3, **dict(purchase_effects or {})}
    gd = {"season": 0.0, "member": -0.7, **dict(dropout_effects or {})}
    for eff in (gp, gd):
        unknown = set(eff) - set(names)
        if unknown:
            raise ParameterError(f"effects may name only {names}; got {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    start_ts = pd.Timestamp(start).normalize()
    P = weeks
    acq_day = rng.integers(0, acquisition_weeks * 7, n)
    lam = rng.gamma(float(par["r"]), 1.0 / float(par["alpha"]), n)
    mu = rng.gamma(float(par["s"]), 1.0 / float(par["beta"]), n)
    end_day = weeks * 7 - 1  # last observed day; the window ends at its start (point in time)
    joins = rng.random(n) < float(member_share)
    span = np.maximum(end_day - acq_day, 1)
    join_day = np.where(joins, acq_day + np.floor(rng.random(n) * span), np.inf)
    k = np.arange(P + future_weeks)
    season = np.isin(k % 52, np.asarray(season_weeks)).astype(np.float64)
    member = (7.0 * k[None, :] >= join_day[:, None]).astype(np.float64)  # (n, periods)
    eta_p = gp["season"] * season[None, :] + gp["member"] * member
    eta_d = gd["season"] * season[None, :] + gd["member"] * member
    # observed part, in weeks: row k spans [k, k+1), clipped to [acquisition, end]
    t0 = acq_day / 7.0
    t_end = end_day / 7.0
    lo = np.maximum(k[None, :P], t0[:, None])
    hi = np.minimum(k[None, :P] + 1.0, t_end)
    length = np.clip(hi - lo, 0.0, None)
    c = np.exp(eta_d[:, :P])
    H_end = np.cumsum(c * length, axis=1) * mu[:, None]
    H_start = H_end - c * length * mu[:, None]
    E = rng.exponential(1.0, n)
    dies = H_end[:, -1] >= E
    row = np.where(dies, np.argmax(H_end >= E[:, None], axis=1), P - 1)
    idx = np.arange(n)
    death = np.where(
        dies, lo[idx, row] + (E - H_start[idx, row]) / (mu * c[idx, row]), np.inf
    )
    alive_len = np.clip(np.minimum(hi, death[:, None]) - lo, 0.0, None)
    counts = rng.poisson(lam[:, None] * np.exp(eta_p[:, :P]) * alive_len)
    ci, ki = np.nonzero(counts)
    reps = counts[ci, ki]
    cc = np.repeat(ci, reps)
    times = np.repeat(lo[ci, ki], reps) + rng.random(cc.size) * np.repeat(alive_len[ci, ki], reps)
    days = np.minimum(np.floor(times * 7.0 + 1e-9), end_day).astype(np.int64)
    all_c = np.concatenate([idx, cc])
    all_d = np.concatenate([acq_day, days])
    pairs = np.unique(np.stack([all_c, all_d]), axis=1)
    amount = np.round(rng.gamma(4.0, 12.5, pairs.shape[1]), 2) + 0.01
    transactions = pd.DataFrame({
        "customer_id": pairs[0] + 1,
        "date": start_ts + pd.to_timedelta(pairs[1], unit="D"),
        "amount": amount,
    })
    first_period = acq_day // 7
    n_per = P + future_weeks - first_period
    cov_c = np.repeat(idx, n_per)
    offs = np.arange(cov_c.size) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    cov_k = np.repeat(first_period, n_per) + offs
    covariates = pd.DataFrame({
        "customer_id": cov_c + 1,
        "period_start": start_ts + pd.to_timedelta(7 * cov_k, unit="D"),
        "season": season[cov_k],
        "member": member[cov_c, cov_k],
    })
    memberships = pd.DataFrame({
        "customer_id": idx[joins] + 1,
        "join_date": start_ts + pd.to_timedelta(join_day[joins], unit="D"),
    })
    customers = pd.DataFrame({
        "customer_id": idx + 1,
        "first_purchase": start_ts + pd.to_timedelta(acq_day, unit="D"),
        "lambda": lam,
        "mu": mu,
        "death_week": death,
        "alive_at_end": ~dies,
    })
    truth = {
        "process": "pareto_nbd_dynamic",
        "params": {kk: float(v) for kk, v in par.items()},
        "purchase_effects": {kk: float(gp[kk]) for kk in names},
        "dropout_effects": {kk: float(gd[kk]) for kk in names},
        "time_unit": "W",
        "start": start_ts,
        "observation_end": start_ts + pd.Timedelta(days=end_day),
        "season_weeks": list(map(int, season_weeks)),
        "member_share": float(member_share),
        "seed": seed if isinstance(seed, int | np.integer | type(None)) else "generator",
    }
    order = np.lexsort((np.r_[t0, times], np.r_[idx, cc]))
    purchase_times = pd.DataFrame({
        "customer_id": np.r_[idx, cc][order] + 1,
        "week": np.r_[t0, times][order],
    })
    return DynamicCovariateSimulation(transactions, covariates, memberships, customers, truth,
                                      purchase_times)
