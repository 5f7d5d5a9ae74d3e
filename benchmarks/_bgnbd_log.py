"""The BG/NBD transaction log the summary and scale benchmarks generate (one copy for both)."""

from __future__ import annotations

import numpy as np


def bgnbd_purchase_days(
    rng: np.random.Generator, n_customers: int, *, r: float, alpha: float, a: float, b: float,
    days: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Customer index and day of every transaction of a BG/NBD population, vectorised.

    Acquisition is uniform over the first 365 days (the first purchase), repeat purchases follow
    a Poisson process at rate lambda ~ Gamma(r, alpha) per day, and after each repeat purchase
    the customer drops out with probability p ~ Beta(a, b) (Fader, Hardie & Lee 2005, sec. 2),
    observed until ``days``. First purchases come first, then the repeats sorted by customer and
    time; the draws are made in a fixed order so a seed gives the same log.
    """
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    p = rng.beta(a, b, n_customers)
    t0 = rng.integers(0, 365, n_customers)
    horizon = days - t0
    # repeat purchases a Poisson process would make before the horizon ...
    n_rep = rng.poisson(lam * horizon)
    # ... of which the customer survives the first K: K ~ Geometric(p) - 1 purchases
    alive_for = rng.geometric(np.clip(p, 1e-6, 1.0)) - 1
    cust = np.repeat(np.arange(n_customers), n_rep)
    times = rng.uniform(0, np.repeat(horizon, n_rep))
    order = np.lexsort((times, cust))
    cust, times = cust[order], times[order]
    starts = np.repeat(np.cumsum(n_rep) - n_rep, n_rep)
    keep = (np.arange(cust.size) - starts) < alive_for[cust]
    cust, times = cust[keep], times[keep]
    all_cust = np.concatenate([np.arange(n_customers), cust])
    day = np.concatenate([t0, t0[cust] + np.floor(times).astype(np.int64)])
    return all_cust, day
