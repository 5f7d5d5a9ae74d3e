"""12-month CLV for 1,000,000 simulated customers (daily units): custvalue vs lifetimes.

Both computations run in one process on the same summary with the *same* parameters (custvalue's
BG/NBD and Gamma-Gamma fits, copied into lifetimes' fitters), one after the other, so only the CLV
step is timed:

* custvalue: ``customer_lifetime_value(bgnbd, gg, summary, horizon=12, time_unit="M",
  discount_rate=d_year)`` — 12 monthly periods of 365.25/12 days, yearly rate.
* lifetimes: ``GammaGammaFitter.customer_lifetime_value(bgf, frequency, recency, T,
  monetary_value, time=12, discount_rate=d_month, freq="D")`` — 12 periods of 30 days, monthly
  rate. ``d_month = (1 + d_year) ** (1 / 12) - 1`` so both discount a month equally; the values
  still differ slightly because lifetimes' months are 30 days (reported below).

Usage::

    .venv/bin/python benchmarks/bench_clv.py                 # 1,000,000 customers
    .venv/bin/python benchmarks/bench_clv.py --n 100000      # quicker
    .venv/bin/python benchmarks/bench_clv.py --interval      # also time 90 % intervals

The summary is drawn directly from the BG/NBD process (Fader, Hardie & Lee 2005a): lambda ~
Gamma(r, 1/alpha), p ~ Beta(a, b), acquisition uniform over one year, observation ends one year
after the last acquisition, K = min(Poisson(lambda T), Geometric(p)) repeat purchases, the last at
the K-th order statistic of the Poisson event times, times floored to whole days; the mean repeat
spend follows the Gamma-Gamma model (Fader, Hardie & Lee 2005b).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
import pandas as pd

TRUE_BG = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}  # CDNOW, weeks -> days
TRUE_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # CDNOW sample (Fader & Hardie 2013)


def simulate_summary(n: int, seed: int = 2026) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE_BG["r"], 1.0 / TRUE_BG["alpha"], n)
    p = rng.beta(TRUE_BG["a"], TRUE_BG["b"], n)
    T = np.floor(730.0 - rng.uniform(0.0, 365.0, n))
    m = rng.poisson(lam * T)
    k = np.minimum(m, rng.geometric(p))
    # K-th of M uniform event times on (0, T): T * Beta(K, M - K + 1)
    last = np.where(k > 0, T * rng.beta(np.maximum(k, 1), np.maximum(m - k + 1, 1)), 0.0)
    nu = rng.gamma(TRUE_GG["q"], 1.0 / TRUE_GG["gamma"], n)
    mean_spend = np.where(k > 0, rng.gamma(TRUE_GG["p"] * np.maximum(k, 1), 1.0) / (np.maximum(k, 1) * nu), 0.0)
    df = pd.DataFrame(
        {"frequency": k.astype(float), "recency": np.floor(last), "T": T, "monetary_value": mean_spend},
        index=pd.RangeIndex(1, n + 1, name="customer_id"),
    )
    df.attrs["freq"] = "D"
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--discount", type=float, default=0.10, help="yearly discount rate")
    ap.add_argument("--interval", action="store_true",
                    help="also time 90%% intervals (delta method, and 100 parameter draws)")
    ap.add_argument("--skip-lifetimes", action="store_true")
    args = ap.parse_args()

    from custvalue.models import BetaGeoModel, GammaGammaModel
    from custvalue.value import customer_lifetime_value, total_value

    out: dict = {"n_customers": args.n, "machine": f"{platform.processor() or platform.machine()}, "
                 f"{os.cpu_count()} cores, python {platform.python_version()}"}
    t0 = time.perf_counter()
    data = simulate_summary(args.n)
    out["simulate_s"] = time.perf_counter() - t0
    out["unique_frt_rows"] = int(data[["frequency", "recency", "T"]].drop_duplicates().shape[0])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        bg = BetaGeoModel().fit(data[["frequency", "recency", "T"]].assign())
        out["fit_bgnbd_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        gg = GammaGammaModel().fit(data[["frequency", "monetary_value"]].loc[data["frequency"] > 0])
        out["fit_gg_s"] = time.perf_counter() - t0
    out["params_bgnbd"] = {k: float(v) for k, v in bg.params_.items()}
    out["params_gg"] = {k: float(v) for k, v in gg.params_.items()}

    t0 = time.perf_counter()
    ours = customer_lifetime_value(bg, gg, data, horizon=12, time_unit="M", discount_rate=args.discount)
    out["custvalue_clv_s"] = time.perf_counter() - t0
    out["custvalue_total"] = ours.total  # a CLVResult: the total travels with the values
    out["custvalue_finite"] = bool(np.isfinite(ours["clv"]).all())

    if args.interval:
        t0 = time.perf_counter()
        iv = customer_lifetime_value(bg, gg, data, horizon=12, time_unit="M", discount_rate=args.discount,
                                     interval=0.9, interval_method="delta")
        out["custvalue_clv_interval_delta_s"] = time.perf_counter() - t0
        out["custvalue_total_interval_delta"] = total_value(iv).to_dict()
        t0 = time.perf_counter()
        iv = customer_lifetime_value(bg, gg, data, horizon=12, time_unit="M", discount_rate=args.discount,
                                     interval=0.9, n_draws=100, seed=1)
        out["custvalue_clv_interval_sample_100draws_s"] = time.perf_counter() - t0
        out["custvalue_total_interval_sample"] = total_value(iv).to_dict()

    if not args.skip_lifetimes:
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        bgf = BetaGeoFitter()
        bgf.params_ = pd.Series({k: float(bg.params_[k]) for k in ("r", "alpha", "a", "b")})
        bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # set by fit()
        ggf = GammaGammaFitter()
        ggf.params_ = pd.Series({"p": float(gg.params_["p"]), "q": float(gg.params_["q"]),
                                 "v": float(gg.params_["gamma"])})
        d_month = (1.0 + args.discount) ** (1.0 / 12.0) - 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            theirs = ggf.customer_lifetime_value(
                bgf, data["frequency"], data["recency"], data["T"], data["monetary_value"],
                time=12, discount_rate=d_month, freq="D",
            )
            out["lifetimes_clv_s"] = time.perf_counter() - t0
        theirs = np.asarray(theirs, dtype=float)
        fin = np.isfinite(theirs)
        out["lifetimes_total"] = float(theirs[fin].sum())
        out["lifetimes_nonfinite"] = int((~fin).sum())
        rel = np.abs(ours["clv"].to_numpy()[fin] - theirs[fin]) / np.maximum(np.abs(theirs[fin]), 1e-9)
        out["median_rel_diff_30_vs_30.4375_day_months"] = float(np.median(rel))
        out["speedup"] = out["lifetimes_clv_s"] / out["custvalue_clv_s"]

    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
