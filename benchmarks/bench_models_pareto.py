"""Pareto/NBD fit on 1,000,000 simulated customers (daily units): custvalue vs lifetimes.

Both fits run on the same simulated summary in one process, one after the other, and the
log-likelihood of each solution is evaluated with *one* function (custvalue's, which agrees with
lifetimes' ``_conditional_log_likelihood`` where that one is finite) so the figures compare.

Usage::

    .venv/bin/python benchmarks/bench_models_pareto.py               # both fits (~10+ minutes)
    .venv/bin/python benchmarks/bench_models_pareto.py --which ours  # custvalue only
    .venv/bin/python benchmarks/bench_models_pareto.py --pymc /tmp/pymc-venv/bin/python

The simulation draws the Pareto/NBD process directly (Schmittlein, Morrison & Colombo 1987):
lambda ~ Gamma(r, 1/alpha), mu ~ Gamma(s, 1/beta), acquisition uniform over one year, observation
ends one year after the last acquisition, purchases Poisson(lambda) while alive, times in days
rounded down to whole days as a daily transaction log would give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import pandas as pd

TRUE = {"r": 0.55, "alpha": 74.0, "s": 0.61, "beta": 82.0}  # CDNOW weekly fit, in days


def simulate_summary(n: int, seed: int = 2024) -> pd.DataFrame:
    """Return a daily frequency/recency/T summary drawn from the Pareto/NBD process."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], n)
    mu = rng.gamma(TRUE["s"], 1.0 / TRUE["beta"], n)
    birth = rng.uniform(0.0, 365.0, n)
    T = np.floor(730.0 - birth)
    death = rng.exponential(1.0 / mu)
    active = np.minimum(death, T)
    x = rng.poisson(lam * active)
    # the last of x uniform purchase times on [0, active]: active * U^(1/x)
    with np.errstate(divide="ignore"):
        last = np.where(x > 0, active * rng.uniform(size=n) ** (1.0 / np.maximum(x, 1)), 0.0)
    tx = np.floor(last)
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})


def run_ours(data: pd.DataFrame) -> dict:
    from custvalue.models.pareto_nbd import ParetoNBDModel

    t0, c0 = time.perf_counter(), time.process_time()
    model = ParetoNBDModel().fit(data)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "params": model.params_.to_dict(),
            "reported_log_likelihood": model.log_likelihood_}


def run_lifetimes(data: pd.DataFrame) -> dict:
    from lifetimes import ParetoNBDFitter

    x, tx, T = (data[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    t0, c0 = time.perf_counter(), time.process_time()
    fitter = ParetoNBDFitter().fit(x, tx, T)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "params": fitter.params_.to_dict()}


PYMC_SNIPPET = r"""
import json, sys, time
import pandas as pd
from pymc_marketing.clv import ParetoNBDModel
data = pd.read_parquet(sys.argv[1])
data = data.reset_index(drop=True)
data.insert(0, "customer_id", range(len(data)))
t0, c0 = time.perf_counter(), time.process_time()
model = ParetoNBDModel(data=data)
model.fit(method="map")
sec, cpu = time.perf_counter() - t0, time.process_time() - c0
post = model.idata.posterior
print(json.dumps({"seconds": sec, "cpu_seconds": cpu, "params": {k: float(post[k].values.ravel()[0]) for k in ["r", "alpha", "s", "beta"]}}))
"""


def run_pymc(data: pd.DataFrame, python: str) -> dict:
    path = "/tmp/bench_pareto_summary.parquet"
    data.to_parquet(path)
    out = subprocess.run([python, "-c", PYMC_SNIPPET, path], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--which", choices=["both", "ours", "lifetimes"], default="both")
    parser.add_argument("--pymc", default=None, help="python of a venv with pymc-marketing")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    data = simulate_summary(args.n, args.seed)
    n_unique = len(data.drop_duplicates())
    print(f"{args.n} customers, {int(data['frequency'].sum())} repeat purchases, "
          f"{n_unique} distinct (frequency, recency, T) rows", flush=True)
    results: dict = {"n_customers": args.n, "n_unique_rows": n_unique, "seed": args.seed,
                     "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "truth": TRUE}
    if args.which in ("both", "ours"):
        results["custvalue"] = run_ours(data)
        print("custvalue", results["custvalue"], flush=True)
    if args.which in ("both", "lifetimes"):
        results["lifetimes"] = run_lifetimes(data)
        print("lifetimes", results["lifetimes"], flush=True)
    if args.pymc:
        results["pymc_marketing"] = run_pymc(data, args.pymc)
        print("pymc-marketing", results["pymc_marketing"], flush=True)

    try:  # one log-likelihood function for every solution
        from custvalue.models.pareto_nbd import pareto_nbd_log_likelihood

        x, tx, T = (data[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        for key in ("custvalue", "lifetimes", "pymc_marketing"):
            p = results.get(key, {}).get("params")
            if p:
                ll = pareto_nbd_log_likelihood(p["r"], p["alpha"], p["s"], p["beta"], x, tx, T).sum()
                results[key]["log_likelihood"] = float(ll)
    except ImportError:
        pass
    if "custvalue" in results and "lifetimes" in results:
        for key in ("seconds", "cpu_seconds"):
            results[f"speedup_{key}"] = results["lifetimes"][key] / results["custvalue"][key]
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
