"""The programme's effect on customer lifetime value beyond the observation window.

The difference-in-differences estimates measure the effect inside the observed periods. Its
value after them is a projection, made here with the package's BG/NBD model (Fader, Hardie &
Lee 2005, "Counting your customers the easy way", Marketing Science 24(2)) and stated with its
assumptions:

1. the programme keeps multiplying a member's purchase rate by ``1 + r`` while she is alive,
   ``r`` being the estimated effect on the ratio scale (``ProgramEffect.att.loc["ratio"]``,
   the effect relative to the members' counterfactual purchases);
2. it does not change when members drop out (the BTYD dropout process is taken as fitted;
   a retention effect, where cancellations are observed, comes on top, see
   :func:`custvalue.programs.retention`);
3. a purchase is worth the members' observed mean amount per purchase times the margin;
4. the members' expected purchases over the horizon, ``E[Y_i(H) | x_i, t_x, T]`` (FHL 2005
   eq. 10), are their path with the programme (their histories after joining carry the
   lift), so the path without it is ``E[Y_i(H)] / (1 + r)`` and the incremental purchases
   ``sum_i E[Y_i(H)] * r / (1 + r)``. Members' histories are partly from before joining, so
   the fitted expectation understates the path with the programme: the projection is
   conservative.

The interval propagates the uncertainty of ``r`` only (delta method:
``d/dr [S r / (1 + r)] = S / (1 + r)^2``), conditional on the BG/NBD fit, which for
millions of customers is far more precise than ``r``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["clv_effect"]

_Z = float(stats.norm.ppf(0.975))
_DAYS = {"M": 365.25 / 12, "W": 7.0, "Q": 365.25 / 4}


def clv_effect(transactions: pd.DataFrame, members: pd.Index, ratio: tuple[float, float], *,
               horizon: int, freq: str = "M", margin: float = 1.0,
               observation_end: Any = None, fit_sample: int = 200_000, seed: int = 0
               ) -> pd.DataFrame:
    """Incremental purchases, revenue and margin per member over ``horizon`` periods after
    the observation window, with 95% intervals (assumptions in the module docstring).

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions (``customer_id, date, amount``).
    members : pandas.Index
        Ids of the treated customers the effect was estimated on.
    ratio : (estimate, std_error)
        The programme's effect on purchases relative to the counterfactual.
    horizon : int
        Periods after the observation end.
    freq : {"M", "W", "Q"}
        Period of ``horizon``.
    margin : float
        Margin as a share of revenue.
    observation_end : date-like, optional
        End of the observed window (default ``transactions.attrs["observation_end"]`` or the
        last transaction).
    fit_sample : int
        The BG/NBD parameters are population quantities: above this many customers they are
        fitted on a random sample of this size (seeded), then applied to every member.

    Returns
    -------
    pandas.DataFrame
        Rows ``incremental purchases``, ``incremental revenue``, ``incremental margin`` (all
        members) and ``incremental margin per member``; columns ``estimate, std_error,
        lower, upper``; ``attrs`` hold the horizon, the members' expected purchases and the
        model's parameters.
    """
    from ..models.beta_geo import BetaGeoModel
    from ..summary import rfm_summary

    end = observation_end if observation_end is not None else transactions.attrs.get(
        "observation_end", transactions["date"].max())
    rfm = rfm_summary(transactions, freq="D", observation_end=end)
    fit_on = rfm
    if len(rfm) > fit_sample:
        pick = np.random.default_rng(seed).choice(len(rfm), fit_sample, replace=False)
        fit_on = rfm.iloc[np.sort(pick)]
    model = BetaGeoModel().fit(fit_on)
    mem = rfm.loc[rfm.index.intersection(members)]
    expected = model.expected_purchases(mem, t=horizon * _DAYS[freq])
    s = float(expected.sum())
    r, se_r = ratio
    amounts = transactions.loc[transactions["customer_id"].isin(mem.index), "amount"]
    value = float(amounts.mean()) if len(amounts) else 0.0
    inc = s * r / (1 + r)
    inc_se = s * se_r / (1 + r) ** 2
    n = max(len(mem), 1)
    rows = {
        "incremental purchases": (inc, inc_se),
        "incremental revenue": (inc * value, inc_se * value),
        "incremental margin": (inc * value * margin, inc_se * value * margin),
        "incremental margin per member": (inc * value * margin / n, inc_se * value * margin / n),
    }
    out = pd.DataFrame({k: {"estimate": v[0], "std_error": v[1], "lower": v[0] - _Z * v[1],
                            "upper": v[0] + _Z * v[1]} for k, v in rows.items()}).T
    out = out.astype(np.float64)
    out.index.name = f"beyond the window: next {horizon} {freq}-periods"
    out.attrs = {"horizon": horizon, "freq": freq, "members": len(mem),
                 "expected_purchases_members": s, "value_per_purchase": value,
                 "params": dict(model.params_)}
    return out
