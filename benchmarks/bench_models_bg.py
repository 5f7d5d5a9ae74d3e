"""BG/NBD and Gamma-Gamma fits on 1,000,000 simulated customers (daily units): custvalue vs lifetimes.

Both libraries fit the same simulated summary in one process, one after the other; the
log-likelihood of every solution is evaluated with one function (custvalue's, which equals
lifetimes' ``_negative_log_likelihood`` times -n, see tests/test_beta_geo.py) so the figures
compare. pymc-marketing's MAP fits run in a subprocess of a separate venv when ``--pymc`` is given.

Usage::

    .venv/bin/python benchmarks/bench_models_bg.py --pymc /tmp/pymc-venv/bin/python

Simulation (exact continuous-time BG/NBD, Fader, Hardie & Lee 2005): lambda ~ Gamma(r, alpha),
p ~ Beta(a, b) with the CDNOW weekly estimates converted to days, acquisition uniform over one
year, observation ends one year after the last acquisition, times floored to whole days. Spend:
Gamma-Gamma with p=6.25, q=3.74, gamma=15.44 (lifetimes' CDNOW fit).
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

BG_TRUE = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
GG_TRUE = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def simulate_summary(n: int, seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lam = rng.gamma(BG_TRUE["r"], 1.0 / BG_TRUE["alpha"], n)
    p = rng.beta(BG_TRUE["a"], BG_TRUE["b"], n)
    T = np.floor(730.0 - rng.uniform(0.0, 365.0, n))
    g = rng.geometric(p)  # repeat purchases allowed before dropout (dropout after the g-th)
    N = rng.poisson(lam * T)
    x = np.minimum(N, g)
    has = x > 0
    last = np.zeros(n)
    last[has] = T[has] * rng.beta(x[has], N[has] - x[has] + 1)
    nu = rng.gamma(GG_TRUE["q"], 1.0 / GG_TRUE["gamma"], n)
    # mean of x Gamma(p, nu) values is Gamma(p x, x nu)
    mval = np.where(has, rng.gamma(GG_TRUE["p"] * np.maximum(x, 1)) / (np.maximum(x, 1) * nu), 0.0)
    return pd.DataFrame(
        {"frequency": x.astype(float), "recency": np.floor(last), "T": T, "monetary_value": mval}
    )


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


PYMC_SNIPPET = r"""
import json, sys, time
import pandas as pd
from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
data = pd.read_parquet(sys.argv[1]).reset_index(drop=True)
data.insert(0, "customer_id", range(len(data)))
out = {}
t0 = time.perf_counter()
m = BetaGeoModel(data=data[["customer_id", "frequency", "recency", "T"]])
m.fit(method="map")
post = m.idata.posterior
out["bgnbd"] = {"seconds": time.perf_counter() - t0,
                "params": {k: float(post[k].values.ravel()[0]) for k in ["r", "alpha", "a", "b"]}}
rep = data[data.frequency > 0]
t0 = time.perf_counter()
g = GammaGammaModel(data=rep[["customer_id", "frequency", "monetary_value"]])
g.fit(method="map")
post = g.idata.posterior
out["gamma_gamma"] = {"seconds": time.perf_counter() - t0,
                      "params": {k: float(post[k].values.ravel()[0]) for k in ["p", "q", "v"]}}
print(json.dumps(out))
"""


def run_pymc(data: pd.DataFrame, python: str) -> dict:
    path = "/tmp/bench_bg_summary.parquet"
    data.to_parquet(path)
    out = subprocess.run(
        [python, "-c", PYMC_SNIPPET, path], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--pymc", default=None, help="python of a venv with pymc-marketing")
    parser.add_argument("--json", default=None, help="write results as JSON here")
    args = parser.parse_args()

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from custvalue.models import BetaGeoModel, GammaGammaModel

    data = simulate_summary(args.n, args.seed)
    data.attrs["freq"] = "D"
    rep = data[data["frequency"] > 0]
    res: dict = {
        "n_customers": args.n,
        "n_transactions": int(args.n + data["frequency"].sum()),
        "n_repeat_customers": len(rep),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {sys.version.split()[0]}",
        "load_average": os.getloadavg(),
    }
    print(res, flush=True)
    f, r, T = (data[c].to_numpy() for c in ("frequency", "recency", "T"))
    cols = {"frequency": f, "recency": r, "T": T}

    ours, sec, cpu = timed(lambda: BetaGeoModel().fit(data))

    def bg_ll(params: dict) -> float:
        m = BetaGeoModel.from_params(**{k: params[k] for k in ("r", "alpha", "a", "b")})
        return float(m._log_likelihood_rows(np.log(m.params_.to_numpy()), cols).sum())

    res["bgnbd_custvalue"] = {"seconds": sec, "cpu_seconds": cpu,
                              "params": ours.params_.to_dict(), "log_likelihood": ours.log_likelihood_}
    print("custvalue BG/NBD", res["bgnbd_custvalue"], flush=True)
    try:
        lt, sec, cpu = timed(lambda: BetaGeoFitter().fit(f, r, T))
        lp = lt.params_[["r", "alpha", "a", "b"]].to_dict()
        res["bgnbd_lifetimes"] = {"seconds": sec, "cpu_seconds": cpu, "params": lp,
                                  "log_likelihood": bg_ll(lp)}
    except Exception as exc:  # lifetimes raises ConvergenceError on some data
        res["bgnbd_lifetimes"] = {"error": repr(exc)[:200]}
    print("lifetimes BG/NBD", res["bgnbd_lifetimes"], flush=True)

    gg_cols = {"frequency": rep["frequency"].to_numpy(), "monetary_value": rep["monetary_value"].to_numpy()}

    def gg_ll(params: dict) -> float:
        m = GammaGammaModel.from_params(p=params["p"], q=params["q"], gamma=params["gamma"])
        return float(m._log_likelihood_rows(np.log(m.params_.to_numpy()), gg_cols).sum())

    gg, sec, cpu = timed(lambda: GammaGammaModel().fit(data))
    res["gg_custvalue"] = {"seconds": sec, "cpu_seconds": cpu, "params": gg.params_.to_dict(),
                           "log_likelihood": gg.log_likelihood_}
    print("custvalue GG", res["gg_custvalue"], flush=True)
    try:
        lg, sec, cpu = timed(
            lambda: GammaGammaFitter().fit(gg_cols["frequency"], gg_cols["monetary_value"])
        )
        lp = {"p": lg.params_["p"], "q": lg.params_["q"], "gamma": lg.params_["v"]}
        res["gg_lifetimes"] = {"seconds": sec, "cpu_seconds": cpu, "params": lp,
                               "log_likelihood": gg_ll(lp)}
    except Exception as exc:
        res["gg_lifetimes"] = {"error": repr(exc)[:200]}
    print("lifetimes GG", res["gg_lifetimes"], flush=True)

    if args.pymc:
        pm = run_pymc(data, args.pymc)
        if "bgnbd" in pm:
            pm["bgnbd"]["log_likelihood"] = bg_ll(pm["bgnbd"]["params"])
            pp = pm["gamma_gamma"]["params"]
            pm["gamma_gamma"]["log_likelihood"] = gg_ll({"p": pp["p"], "q": pp["q"], "gamma": pp["v"]})
        res["pymc_marketing"] = pm
        print("pymc-marketing", pm, flush=True)
    res["load_average_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2, default=float)


if __name__ == "__main__":
    main()
