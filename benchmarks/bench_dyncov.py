"""Benchmarks of the Pareto/NBD with time-varying covariates (issue 14).

Three parts, each selectable:

* ``coverage``: simulate (``custvalue.datasets.simulate_dynamic_covariates``: a season flag and
  club membership from a join date shifting the purchase rate and dropout) over many seeds, fit
  ``DynamicParetoNBDModel(["season", "member"], ["season", "member"])`` and report how often
  the 95% Wald intervals cover the true coefficients, the mean estimate, the mean standard error
  and the spread of the estimates;
* ``recording``: no fit; how many simulated repeat purchases survive recording as days (one
  per customer-day), in season weeks and out of them (default 200,000 customers x 78 weeks);
* ``timing``: fit time on a large simulated base (default 100,000 customers x 52 weeks);
* ``information``: no fit; at the true parameters, on the exact purchase times, the spread over
  seeds of the total score against the observed information (central differences of the
  analytic gradient) and the per-customer outer product of scores: the three agree when the
  likelihood, its Hessian and the simulator agree, and their ratio shows how far a run of seeds
  is from its expectation (default 400 seeds x 3,200 customers);
* ``apparel``: the CLVTools apparel data (``shared/reference/clvtools-apparel``) with
  ``High.Season`` on both processes and ``Gender``, ``Channel`` as constant covariates.

Run from the repository root::

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_dyncov.py \\
        coverage --seeds 60 --customers 800 --weeks 78 --exact-times
    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dyncov.py recording
    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_dyncov.py \\
        timing --customers 100000 --weeks 52
    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_dyncov.py \\
        information --seeds 400 --first-seed 5000 --customers 3200 --weeks 78
    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dyncov.py apparel
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custvalue.datasets import simulate_dynamic_covariates
from custvalue.models import DynamicParetoNBDModel
from custvalue.models import pareto_nbd_dynamic as _dyn

TRUTH_P = {"season": 0.5, "member": 0.3}
TRUTH_D = {"season": 0.0, "member": -0.7}
REF = Path(__file__).resolve().parents[1] / "shared" / "reference" / "clvtools-apparel"
if not REF.exists():
    REF = Path("/work/shared/reference/clvtools-apparel")


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def exact_time_walks(sim: Any) -> Any:
    """The likelihood layout of ``sim`` from its exact purchase times (``sim.purchase_times``).

    The same customers, periods and covariates as ``model.prepare(sim.transactions, ...)``, but
    purchases at their simulated times instead of floored to days and merged per customer-day,
    so the data follow the model exactly (no purchase is lost in busy weeks).
    """
    start = sim.truth["start"]
    t_end = (sim.truth["observation_end"] - start).days / 7.0
    pt = sim.purchase_times
    cust = pt["customer_id"].to_numpy() - 1
    week = pt["week"].to_numpy()
    n = int(cust.max()) + 1
    first = np.full(n, np.inf)
    np.minimum.at(first, cust, week)
    repeat = week > first[cust]
    last = first.copy()
    np.maximum.at(last, cust, week)
    cov = sim.covariates.sort_values(["customer_id", "period_start"])
    cc = cov["customer_id"].to_numpy() - 1
    k = (cov["period_start"] - start).dt.days.to_numpy() / 7.0
    z = cov[["season", "member"]].to_numpy(dtype=np.float64)
    return _dyn._build_walks(cc, k - first[cc], k + 1.0 - first[cc], z, z.copy(),
                             last - first, t_end - first, cust[repeat],
                             week[repeat] - first[cust[repeat]])


def _fit_walks(w: Any, like: DynamicParetoNBDModel) -> DynamicParetoNBDModel:
    """Fit ``DynamicParetoNBDModel(["season", "member"], ["season", "member"])`` to a layout, as
    ``fit`` does after ``prepare`` (plain Pareto/NBD start, L-BFGS-B, Newton, Hessian); the
    covariate encoding is taken from the fitted model ``like`` (same covariate table)."""
    from custvalue.models import ParetoNBDModel

    model = DynamicParetoNBDModel(["season", "member"], ["season", "member"])
    model._prepared = dataclasses.replace(like._prepared, walks=w, distinct=None, walk_of=None)
    summary = pd.DataFrame({"frequency": w.x, "recency": w.tx, "T": w.T})
    static = ParetoNBDModel().fit(summary)
    model.static_log_likelihood_ = float(static.log_likelihood_)
    phi0 = np.r_[np.log(static.params_.to_numpy()), np.zeros(4)]
    # exact times: every customer's walk is distinct, so no compression (weights 1)
    model._fit_phi(phi0, w, np.ones(w.n), np.arange(w.n), [])
    return model


def _coverage_table(est: np.ndarray, se: np.ndarray, truth: np.ndarray, names: list[str]) -> str:
    cov = np.abs(est - truth) <= 1.96 * se
    m = cov.shape[0]
    c = cov.mean(axis=0)
    # 95% Monte Carlo (Wilson) interval of each coverage
    z = 1.96
    mid = (c + z * z / (2 * m)) / (1 + z * z / m)
    half = z * np.sqrt(c * (1 - c) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    table = pd.DataFrame({
        "truth": truth,
        "mean estimate": est.mean(axis=0),
        "MC s.e. of mean": est.std(axis=0, ddof=1) / np.sqrt(m),
        "sd of estimates": est.std(axis=0, ddof=1),
        "mean std. error": se.mean(axis=0),
        "95% coverage": c,
        "MC interval": [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(mid - half, mid + half, strict=True)],
    }, index=names)
    return (table.to_string(float_format=lambda v: f"{v:.3f}")
            + f"\nall coefficients: {cov.mean():.3f} of {cov.size} intervals cover the truth")


def coverage(seeds: int, customers: int, weeks: int, exact_times: bool = False,
             first_seed: int = 1000, out: str | None = None) -> None:
    """Coverage of the 95% intervals over seeds ``first_seed ..``; with ``exact_times`` each seed
    is also fitted on its exact purchase times (:func:`exact_time_walks`), and the paired
    difference recorded - exact isolates what recording purchases as days costs. ``out``: a CSV
    of every seed's estimates and standard errors (runs in parts can be pooled)."""
    names = [f"purchase:{k}" for k in TRUTH_P] + [f"dropout:{k}" for k in TRUTH_D]
    truth = np.array([*TRUTH_P.values(), *TRUTH_D.values()])
    est, se, est_x, se_x = [], [], [], []
    t0 = time.perf_counter()
    for seed in range(first_seed, first_seed + seeds):
        sim = simulate_dynamic_covariates(customers, seed=seed, weeks=weeks,
                                          purchase_effects=TRUTH_P, dropout_effects=TRUTH_D)
        model = DynamicParetoNBDModel(["season", "member"], ["season", "member"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(sim.transactions, sim.covariates, observation_end=sim.truth["observation_end"])
            est.append(model.params_[names].to_numpy())
            se.append(model.standard_errors_[names].to_numpy())
            if exact_times:
                mx = _fit_walks(exact_time_walks(sim), model)
                est_x.append(mx.params_[names].to_numpy())
                se_x.append(mx.standard_errors_[names].to_numpy())
    est, se = np.array(est), np.array(se)
    secs = time.perf_counter() - t0
    if out:
        frames = [("recorded", est, se)] + ([("exact", np.array(est_x), np.array(se_x))] if exact_times else [])
        rows = [
            {"seed": first_seed + i, "customers": customers, "weeks": weeks, "data": kind,
             **{f"{nm} est": e[i, j] for j, nm in enumerate(names)},
             **{f"{nm} se": s_[i, j] for j, nm in enumerate(names)}}
            for kind, e, s_ in frames for i in range(seeds)
        ]
        pd.DataFrame(rows).to_csv(out, index=False)
    fits = seeds * (2 if exact_times else 1)
    print(f"coverage: {seeds} seeds ({first_seed}..{first_seed + seeds - 1}) x {customers} customers "
          f"x {weeks} weeks, {secs:.0f} s ({secs / fits:.1f} s per fit), load average {_load()}")
    print("recorded transactions (days, one purchase per customer-day):")
    print(_coverage_table(est, se, truth, names))
    if exact_times:
        est_x, se_x = np.array(est_x), np.array(se_x)
        print("exact purchase times (the data follow the model):")
        print(_coverage_table(est_x, se_x, truth, names))
        d = est - est_x
        print("paired difference recorded - exact: mean "
              + ", ".join(f"{nm} {v:+.4f} (MC s.e. {s:.4f})" for nm, v, s in
                          zip(names, d.mean(axis=0), d.std(axis=0, ddof=1) / np.sqrt(seeds),
                              strict=True)))


def information(seeds: int, customers: int, weeks: int, first_seed: int = 5000) -> None:
    """Information equality at the truth over seeds, without fitting (exact purchase times).

    Per seed: the total score ``S`` (analytic gradient on the optimiser's scale), the observed
    information ``I`` (central differences of the analytic gradient, all coordinates) and the
    sum of squared per-customer scores (OPG). Customers are independent, so under the model
    ``Var(S) = E[OPG] = E[I]``, and the spread of the one-step estimator ``truth + I^-1 S`` is the
    first-order spread of the MLE: ``sd / mean se`` near 1 says the Wald standard error is the
    sampling SD; a run of seeds whose score variance is low gives a low spread of the MLE too.
    """
    names = [f"purchase:{k}" for k in TRUTH_P] + [f"dropout:{k}" for k in TRUTH_D]
    theta = np.array([0.8, 8.0, 0.6, 30.0, *TRUTH_P.values(), *TRUTH_D.values()])
    phi0 = theta.copy()
    phi0[:4] = np.log(theta[:4])
    k = phi0.size
    t0 = time.perf_counter()
    score, opg, info_d, step, se = [], [], [], [], []
    for seed in range(first_seed, first_seed + seeds):
        sim = simulate_dynamic_covariates(customers, seed=seed, weeks=weeks,
                                          purchase_effects=TRUTH_P, dropout_effects=TRUTH_D)
        w = exact_time_walks(sim)

        def grad(phi: np.ndarray, w: Any = w) -> np.ndarray:
            th = phi.copy()
            th[:4] = np.exp(phi[:4])
            g = _dyn._evaluate(th, w, True).grad
            g[:, :4] *= th[:4]
            return g

        g0 = grad(phi0)
        hess = np.empty((k, k))
        for j in range(k):
            e = np.zeros(k)
            e[j] = 1e-4
            hess[:, j] = (grad(phi0 + e).sum(axis=0) - grad(phi0 - e).sum(axis=0)) / 2e-4
        info = -(hess + hess.T) / 2.0
        s_tot = g0.sum(axis=0)
        score.append(s_tot)
        opg.append(np.einsum("ij,ij->j", g0, g0))
        info_d.append(np.diag(info))
        step.append(np.linalg.solve(info, s_tot))
        with np.errstate(invalid="ignore"):
            se.append(np.sqrt(np.diag(np.linalg.inv(info))))
    score, opg, info_d = np.array(score), np.array(opg), np.array(info_d)
    step, se = np.array(step), np.array(se)
    secs = time.perf_counter() - t0
    print(f"information: {seeds} seeds ({first_seed}..{first_seed + seeds - 1}) x {customers} "
          f"customers x {weeks} weeks, at the truth, exact purchase times, {secs:.0f} s, "
          f"load average {_load()}")
    rows = {}
    for j, nm in enumerate(names, start=4):
        v = score[:, j].var(ddof=1)
        ok = np.isfinite(se[:, j])
        rows[nm] = {
            "Var(S)": v, "mean OPG": opg[:, j].mean(), "mean info": info_d[:, j].mean(),
            "Var(S)/info": v / info_d[:, j].mean(),
            "+- (MC)": v / info_d[:, j].mean() * np.sqrt(2.0 / (seeds - 1)),
            "sd one-step": step[ok, j].std(ddof=1), "mean se": se[ok, j].mean(),
        }
    print(pd.DataFrame(rows).T.to_string(float_format=lambda x: f"{x:.4g}"))


def recording(customers: int, weeks: int) -> None:
    """Share of the simulated repeat purchases that survive recording as days, season vs not.

    No fit: the exact times (``sim.purchase_times``) against ``sim.transactions`` (floored to
    days, one purchase per customer-day), so the loss is measured on the data themselves.
    """
    t0 = time.perf_counter()
    sim = simulate_dynamic_covariates(customers, seed=7, weeks=weeks,
                                      purchase_effects=TRUTH_P, dropout_effects=TRUTH_D)
    start = sim.truth["start"]
    season_weeks = np.asarray(sim.truth["season_weeks"])
    pt = sim.purchase_times
    wk = pt["week"].to_numpy()
    first = pt.groupby("customer_id")["week"].transform("min").to_numpy()
    ex_season = np.isin(np.floor(wk[wk > first]).astype(np.int64) % 52, season_weeks)
    tx = sim.transactions
    day = (tx["date"] - start).dt.days.to_numpy()
    fday = tx.groupby("customer_id")["date"].transform("min")
    rep = (tx["date"] > fday).to_numpy()
    rec_season = np.isin((day[rep] // 7) % 52, season_weeks)
    keep_s = rec_season.sum() / ex_season.sum()
    keep_o = (~rec_season).sum() / (~ex_season).sum()
    print(f"recording: {customers:,} customers x {weeks} weeks (seed 7), "
          f"{time.perf_counter() - t0:.0f} s, load average {_load()}")
    print(f"  repeat purchases: exact {ex_season.size:,}, recorded {rec_season.size:,} "
          f"({rec_season.size / ex_season.size:.4f} kept)")
    print(f"  kept in season weeks {keep_s:.4f} ({ex_season.sum():,} exact), off season {keep_o:.4f} "
          f"({(~ex_season).sum():,} exact)")
    n_s, n_o = ex_season.sum(), (~ex_season).sum()
    se = np.sqrt((1 - keep_s) / (keep_s * n_s) + (1 - keep_o) / (keep_o * n_o))
    print(f"  season log rate ratio of the recorded data minus that of the exact times: "
          f"{np.log(keep_s / keep_o):+.4f} (binomial s.e. {se:.4f})")


def timing(customers: int, weeks: int) -> None:
    t0 = time.perf_counter()
    sim = simulate_dynamic_covariates(customers, seed=1, weeks=weeks,
                                      purchase_effects=TRUTH_P, dropout_effects=TRUTH_D)
    t_sim = time.perf_counter() - t0
    model = DynamicParetoNBDModel(["season", "member"], ["season", "member"])
    calls = {"n": 0}
    orig = _dyn._evaluate

    def counted(*args, **kwargs):
        calls["n"] += 1
        return orig(*args, **kwargs)

    _dyn._evaluate = counted
    try:
        t0 = time.perf_counter()
        prep = model.prepare(sim.transactions, sim.covariates,
                             observation_end=sim.truth["observation_end"])
        t_prep = time.perf_counter() - t0
        calls["n"] = 0
        t0 = time.perf_counter()
        model.fit(sim.transactions, sim.covariates, observation_end=sim.truth["observation_end"])
        t_fit = time.perf_counter() - t0
    finally:
        _dyn._evaluate = orig
    w = prep.walks
    print(f"timing: {customers:,} customers x {weeks} weeks: {len(sim.transactions):,} transactions, "
          f"{len(sim.covariates):,} covariate rows, {w.cust.size:,} periods in the window, "
          f"{w.aux.size:,} after the last purchase; load average {_load()}")
    print(f"  simulate {t_sim:.1f} s, validate + layout {t_prep:.1f} s, fit {t_fit:.1f} s "
          f"({calls['n']} likelihood evaluations, subset warm start + full-data Newton); "
          f"{model.n_distinct_:,} distinct walks of {model.n_customers_:,} customers; "
          f"process CPU {time.process_time():.1f} s")
    print(model.summary().table.to_string(float_format=lambda v: f"{v:.4g}"))


def apparel() -> None:
    tx = pd.read_csv(REF / "apparelTrans.csv")
    cov = pd.read_csv(REF / "apparelDynCov.csv.gz")
    kw = dict(customer_col="Id", date_col="Date", covariate_customer_col="Id",
              covariate_date_col="Cov.Date")
    for label, end in (("full window 2005-01-02 .. 2010-12-20", None),
                       ("estimation window to 2006-12-31 (CLVTools' 104-week split)", "2006-12-31")):
        for dropout in (["High.Season", "Gender", "Channel"], ["Gender", "Channel"]):
            model = DynamicParetoNBDModel(["High.Season", "Gender", "Channel"], dropout)
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(tx, cov, observation_end=end, **kw)
            secs = time.perf_counter() - t0
            print(f"apparel, {label}, dropout covariates {dropout}: fit {secs:.1f} s, "
                  f"load average {_load()}")
            print(model.summary().table.to_string(float_format=lambda v: f"{v:.4g}"))
            lr = model.lr_test_
            print(f"  LL {model.log_likelihood_:.3f}, no covariates {model.static_log_likelihood_:.3f}, "
                  f"LR {lr['statistic']:.2f} on {lr['df']} df (p={lr['p_value']:.3g}); "
                  f"converged {model.diagnostics_['converged']}, boundary "
                  f"{model.diagnostics_['boundary']}, warnings {len(caught)}")
            for s in model.effects_["sentence"]:
                print("  " + s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["coverage", "information", "recording", "timing", "apparel"])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--weeks", type=int, default=None)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--exact-times", action="store_true",
                        help="coverage: also fit each seed on its exact purchase times")
    parser.add_argument("--out", default=None, help="coverage: CSV of the per-seed estimates")
    args = parser.parse_args()
    if args.part == "coverage":
        coverage(args.seeds, args.customers or 800, args.weeks or 78, args.exact_times,
                 args.first_seed, args.out)
    elif args.part == "information":
        information(args.seeds, args.customers or 3200, args.weeks or 78, args.first_seed)
    elif args.part == "recording":
        recording(args.customers or 200_000, args.weeks or 78)
    elif args.part == "timing":
        timing(args.customers or 100_000, args.weeks or 52)
    else:
        apparel()


if __name__ == "__main__":
    main()
