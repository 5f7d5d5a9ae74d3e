"""Benchmarks of the Pareto/NBD with time-varying covariates (issue 14).

Three parts, each selectable:

* ``coverage``: simulate (``custvalue.datasets.simulate_dynamic_covariates``: a season flag and
  club membership from a join date shifting the purchase rate and dropout) over many seeds, fit
  ``DynamicParetoNBDModel(["season", "member"], ["season", "member"])`` and report how often
  the 95% Wald intervals cover the true coefficients, the mean estimate, the mean standard error
  and the spread of the estimates;
* ``timing``: fit time on a large simulated base (default 100,000 customers x 52 weeks);
* ``apparel``: the CLVTools apparel data (``shared/reference/clvtools-apparel``) with
  ``High.Season`` on both processes and ``Gender``, ``Channel`` as constant covariates.

Run from the repository root::

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_dyncov.py \\
        coverage --seeds 40 --customers 800 --weeks 78
    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_dyncov.py \\
        timing --customers 100000 --weeks 52
    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dyncov.py apparel
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

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


def coverage(seeds: int, customers: int, weeks: int) -> None:
    names = [f"purchase:{k}" for k in TRUTH_P] + [f"dropout:{k}" for k in TRUTH_D]
    truth = np.array([*TRUTH_P.values(), *TRUTH_D.values()])
    est, se, cov = [], [], []
    t0 = time.perf_counter()
    for seed in range(seeds):
        sim = simulate_dynamic_covariates(customers, seed=1000 + seed, weeks=weeks,
                                          purchase_effects=TRUTH_P, dropout_effects=TRUTH_D)
        model = DynamicParetoNBDModel(["season", "member"], ["season", "member"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(sim.transactions, sim.covariates, observation_end=sim.truth["observation_end"])
        e = model.params_[names].to_numpy()
        s = model.standard_errors_[names].to_numpy()
        est.append(e)
        se.append(s)
        cov.append(np.abs(e - truth) <= 1.96 * s)
    est, se, cov = np.array(est), np.array(se), np.array(cov)
    secs = time.perf_counter() - t0
    print(f"coverage: {seeds} seeds x {customers} customers x {weeks} weeks, "
          f"{secs:.0f} s ({secs / seeds:.1f} s per fit), load average {_load()}")
    table = pd.DataFrame({
        "truth": truth,
        "mean estimate": est.mean(axis=0),
        "sd of estimates": est.std(axis=0, ddof=1),
        "mean std. error": se.mean(axis=0),
        "95% coverage": cov.mean(axis=0),
    }, index=names)
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"all coefficients: {cov.mean():.3f} of {cov.size} intervals cover the truth")


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
    parser.add_argument("part", choices=["coverage", "timing", "apparel"])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--weeks", type=int, default=None)
    args = parser.parse_args()
    if args.part == "coverage":
        coverage(args.seeds, args.customers or 800, args.weeks or 78)
    elif args.part == "timing":
        timing(args.customers or 100_000, args.weeks or 52)
    else:
        apparel()


if __name__ == "__main__":
    main()
