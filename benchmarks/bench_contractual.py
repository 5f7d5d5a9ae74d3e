"""Benchmark: discrete-time and contractual models (issue 4).

* sBG on 1,000,000 subscribers: ``subscriptions()`` on the records, then
  ``ShiftedBetaGeoModel.fit`` (compression into unique (T, churned) rows + ML fit).
* BG/BB on 1,000,000 donors: ``BetaGeoBetaBinomModel.fit`` on individual rows (compression +
  fit); peer: lifetimes' ``BetaGeoBetaBinomFitter`` on the same data already compressed.
* Cox PH on 200,000 customers with start-stop rows (a price change mid-spell): ``start_stop``
  + ``cox_ph`` (numpy Breslow engine); peer: statsmodels ``PHReg`` (the engine used below
  20,000 rows) on a 20,000-customer subsample.

Run from the repository root::

    .venv/bin/python benchmarks/bench_contractual.py

and paste the printed table into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import pandas as pd


def _timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_sbg(n: int, rng: np.random.Generator) -> list[tuple[str, float, str]]:
    from custvalue._subscriptions import subscriptions
    from custvalue.models import ShiftedBetaGeoModel

    alpha, beta = 0.668, 3.806
    month = 365.25 / 12
    start0 = np.datetime64("2020-01-01", "D")
    acq = rng.integers(0, 3 * 365, n)
    life = rng.geometric(rng.beta(alpha, beta, n))
    end_day = acq + np.floor(life * month).astype(np.int64)
    window = 4 * 365
    ended = end_day <= window
    records = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "start": (start0 + acq).astype("datetime64[ns]"),
            "end": np.where(ended, start0 + end_day, np.datetime64("NaT")).astype("datetime64[ns]"),
        }
    )
    obs = pd.Timestamp(start0 + window)
    t_sum, table = _timed(lambda: subscriptions(records, period="M", observation_end=obs))
    t_fit, model = _timed(lambda: ShiftedBetaGeoModel().fit(table), repeat=3)
    rows = [
        ("sBG: subscriptions() on records", t_sum, f"{n:,} records -> {len(table):,} customers"),
        (
            "sBG: fit (compression + ML)",
            t_fit,
            f"{model.n_unique_rows_} unique rows; alpha={model.params_['alpha']:.4f} "
            f"beta={model.params_['beta']:.4f} (truth {alpha}, {beta})",
        ),
    ]
    # peer: the same likelihood on uncompressed rows (what compression saves)
    from scipy.optimize import minimize

    from custvalue.models.shifted_beta_geo import sbg_log_likelihood

    T, ch = table["T"].to_numpy(float), table["churned"].to_numpy()

    def naive():
        return minimize(lambda lp: -sbg_log_likelihood(*np.exp(lp), T, ch).sum(), np.zeros(2), method="Nelder-Mead")

    t_naive, res = _timed(naive)
    rows.append(("peer: same likelihood, no compression (Nelder-Mead)", t_naive, f"{res.nfev} evaluations over {n:,} rows"))
    return rows


def bench_bgbb(n: int, rng: np.random.Generator, n_opp: int) -> list[tuple[str, float, str]]:
    from custvalue.models import BetaGeoBetaBinomModel

    a, b, g, d = 1.204, 0.750, 0.657, 2.783
    p = rng.beta(a, b, n)
    death = rng.geometric(rng.beta(g, d, n))
    k = np.arange(1, n_opp + 1)[None, :]
    buy = (k < death[:, None]) & (rng.random((n, n_opp)) < p[:, None])
    freq = buy.sum(axis=1)
    rec = np.where(freq > 0, n_opp - np.argmax(buy[:, ::-1], axis=1), 0)
    data = pd.DataFrame({"frequency": freq, "recency": rec, "T": n_opp})
    t_fit, model = _timed(lambda: BetaGeoBetaBinomModel().fit(data), repeat=3)
    rows = [
        (
            "BG/BB: fit (compression + ML)",
            t_fit,
            f"{n:,} donors, {n_opp} opportunities, {model.n_unique_rows_} unique rows; "
            + ", ".join(f"{k_}={v:.4f}" for k_, v in model.params_.items()),
        )
    ]
    comp = data.groupby(["frequency", "recency", "T"]).size().rename("weight").reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoBetaBinomFitter

        t_lt, lt = _timed(
            lambda: BetaGeoBetaBinomFitter().fit(comp["frequency"], comp["recency"], comp["T"], weights=comp["weight"])
        )
    rows.append(
        (
            "peer: lifetimes BetaGeoBetaBinomFitter (pre-compressed)",
            t_lt,
            ", ".join(f"{k_}={v:.4f}" for k_, v in lt.params_.items()),
        )
    )
    return rows


def bench_cox(n: int, n_peer: int, rng: np.random.Generator) -> list[tuple[str, float, str]]:
    from custvalue import survival as sv

    plan = rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1])
    change = rng.uniform(0, 24, n)  # tenure (months) of a 20% price rise
    base = 0.05 * np.exp(np.where(plan == "pro", -0.3, 0.0) + np.where(plan == "team", -0.6, 0.0))
    hr_rise = np.exp(0.4)
    first = rng.exponential(1 / base)
    after = change + rng.exponential(1 / (base * hr_rise))
    dur = np.where(first < change, first, after)
    horizon = 36.0
    spells = pd.DataFrame(
        {"customer_id": np.arange(n), "duration": np.minimum(dur, horizon), "event": dur < horizon,
         "plan": plan, "price_rise": 0.0}
    )
    changes = pd.DataFrame({"customer_id": np.arange(n), "time": change, "price_rise": 1.0})
    t_ss, rows_ss = _timed(lambda: sv.start_stop(spells, changes))
    kw = dict(duration_col="stop", entry_col="start", event_col="event", id_col="customer_id")
    t_cox, res = _timed(lambda: sv.cox_ph(rows_ss, ["plan", "price_rise"], engine="numpy", **kw))
    out = [
        ("Cox: start_stop() rows", t_ss, f"{n:,} customers -> {len(rows_ss):,} start-stop rows"),
        (
            "Cox: cox_ph (numpy Breslow engine)",
            t_cox,
            f"{res.n_events:,} events; HR(price_rise)={res.table.loc['price_rise', 'hazard_ratio']:.3f} "
            f"(truth {hr_rise:.3f})",
        ),
    ]
    sub_ids = rng.choice(n, n_peer, replace=False)
    sub = rows_ss[rows_ss["customer_id"].isin(sub_ids)]
    t_np, r_np = _timed(lambda: sv.cox_ph(sub, ["plan", "price_rise"], engine="numpy", **kw))
    t_sm, r_sm = _timed(lambda: sv.cox_ph(sub, ["plan", "price_rise"], engine="statsmodels", **kw))
    diff = float(np.max(np.abs(r_np.table["coef"] - r_sm.table["coef"])))
    out.append((f"Cox on {n_peer:,} customers: numpy engine", t_np, f"{len(sub):,} rows"))
    out.append((f"peer: statsmodels PHReg on {n_peer:,} customers", t_sm, f"max |coef difference| = {diff:.1e}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subscribers", type=int, default=1_000_000)
    ap.add_argument("--donors", type=int, default=1_000_000)
    ap.add_argument("--opportunities", type=int, default=10)
    ap.add_argument("--cox", type=int, default=200_000)
    ap.add_argument("--cox-peer", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    rows += bench_sbg(args.subscribers, rng)
    rows += bench_bgbb(args.donors, rng, args.opportunities)
    rows += bench_cox(args.cox, args.cox_peer, rng)
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        load = float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, load average at end {load:.1f}")
    print()
    print("| step | seconds | notes |")
    print("|---|---:|---|")
    for name, sec, note in rows:
        print(f"| {name} | {sec:.3f} | {note} |")


if __name__ == "__main__":
    main()
