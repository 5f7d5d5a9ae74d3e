"""Static covariates in the lifetime models (issue 14): coverage over seeds and 1M-customer fits.

Subcommands::

    # coverage of the 95% Wald intervals of every coefficient over many simulated data sets
    .venv/bin/python benchmarks/bench_covariates.py coverage --process pareto_nbd --seeds 200 --n 1000
    # a 1,000,000-customer summary with channel, region and membership (written once)
    .venv/bin/python benchmarks/bench_covariates.py prepare --n 1000000 --out /tmp/cov1m.parquet
    # one fit of that file (to time as a whole command: with vs without covariates)
    .venv/bin/python benchmarks/bench_covariates.py fit --data /tmp/cov1m.parquet --model pareto --covariates 3
    # CLVTools' apparel data, Gender and Channel on both processes, beside pymc-marketing's MAP
    .venv/bin/python benchmarks/bench_covariates.py apparel --pymc /tmp/pymc-venv/bin/python
    # all fits in one process, optionally with pymc-marketing's MAP fit from a separate venv
    .venv/bin/python benchmarks/bench_covariates.py scale --data /tmp/cov1m.parquet --pymc /tmp/pymc-venv/bin/python

Data: :func:`custvalue.datasets.simulate` with ``covariate_effects`` (the models' own
parameterisation, CLVTools': purchase ``alpha_i = alpha exp(-g'z)``; dropout Pareto/NBD
``beta_i = beta exp(-g'z)``, BG/NBD ``a_i, b_i = a, b exp(g'z)``), summarised daily with
:func:`custvalue.summary.rfm_summary`. The true coefficients are ``truth["covariates"]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd

from custvalue.datasets import simulate
from custvalue.models import BetaGeoModel, ParetoNBDModel
from custvalue.summary import rfm_summary

COLUMNS = ["channel", "region", "membership"]
EFFECTS = {
    "purchase": {"channel": {"referral": 0.4, "social": -0.3}, "region": {"South": 0.2},
                 "membership": 0.3},
    "dropout": {"channel": {"referral": -0.5}, "region": {"West": 0.3}, "membership": -0.6},
}
PROCESS = {"pareto": "pareto_nbd", "bgnbd": "bgnbd"}
MODELS = {"pareto": ParetoNBDModel, "bgnbd": BetaGeoModel}


def simulated_summary(n: int, seed: int, process: str) -> tuple[pd.DataFrame, dict]:
    """Daily RFM summary with the covariate columns, and the simulation's covariate truth."""
    sim = simulate(n, seed=seed, process=process, covariate_effects=EFFECTS)
    rfm = rfm_summary(sim.transactions, freq="D")
    data = rfm.join(sim.customers.set_index("customer_id")[["membership"]])
    data.attrs = dict(rfm.attrs)
    return data, sim.truth["covariates"]


def truth_series(truth: dict) -> pd.Series:
    return pd.Series({f"{b}:{k}": v for b in ("purchase", "dropout") for k, v in truth[b].items()})


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def cmd_coverage(args: argparse.Namespace) -> dict:
    process = PROCESS[args.process] if args.process in PROCESS else args.process
    klass = ParetoNBDModel if process == "pareto_nbd" else BetaGeoModel
    rows = []
    t_start = time.perf_counter()
    for k in range(args.seeds):
        seed = args.first_seed + k
        data, truth = simulated_summary(args.n, seed, process)
        true = truth_series(truth)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model = klass(purchase_covariates=COLUMNS, dropout_covariates=COLUMNS,
                              covariate_reference=truth["reference"]).fit(data)
            except Exception as exc:  # a failed fit is counted, not hidden
                rows.append({"seed": seed, "failed": repr(exc)})
                continue
        ci = model.conf_int(0.95)
        for name, value in true.items():
            rows.append({
                "seed": seed, "name": name, "true": float(value),
                "estimate": float(model.params_[name]),
                "std_error": float(model.standard_errors_[name]),
                "lower": float(ci.loc[name, "lower"]), "upper": float(ci.loc[name, "upper"]),
                "converged": bool(model.diagnostics_["converged"]),
                "boundary_warning": any("boundary" in str(w.message) for w in caught),
            })
        if (k + 1) % 20 == 0:
            print(f"{k + 1} seeds, {time.perf_counter() - t_start:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    failed = int(frame["failed"].notna().sum()) if "failed" in frame else 0
    ok = frame.dropna(subset=["name"]) if "name" in frame else frame
    ok = ok.assign(inside=(ok["lower"] <= ok["true"]) & (ok["true"] <= ok["upper"]))
    table = ok.groupby("name", sort=False).agg(
        true=("true", "first"), mean_estimate=("estimate", "mean"),
        sd_estimate=("estimate", "std"), mean_se=("std_error", "mean"),
        coverage=("inside", "mean"), fits=("inside", "size"),
    )
    out = {
        "process": process, "n_customers": args.n, "seeds": args.seeds, "failed_fits": failed,
        "boundary_fits": int(ok.groupby("seed")["boundary_warning"].any().sum()),
        "seconds": time.perf_counter() - t_start,
        "coverage": table.reset_index().to_dict(orient="records"),
        "overall_coverage": float(ok["inside"].mean()),
    }
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"overall coverage {out['overall_coverage']:.4f} over {len(ok)} intervals; "
          f"{failed} failed fits; {out['boundary_fits']} fits with a boundary warning")
    return out


def cmd_prepare(args: argparse.Namespace) -> dict:
    (data, truth), wall, _cpu = timed(lambda: simulated_summary(args.n, args.seed, PROCESS[args.model]))
    out = data[["frequency", "recency", "T", *COLUMNS]].copy()
    for c in ("channel", "region"):
        out[c] = out[c].astype(str)
    out.to_parquet(args.out)
    meta = {"truth": truth, "seed": args.seed, "process": PROCESS[args.model], "n": len(out),
            "simulate_and_summarise_seconds": wall}
    with open(args.out + ".json", "w") as fh:
        json.dump(meta, fh, indent=2)
    print(json.dumps({k: v for k, v in meta.items() if k != "truth"}))
    return meta


def load(path: str) -> tuple[pd.DataFrame, dict]:
    data = pd.read_parquet(path)
    data.attrs["freq"] = "D"
    with open(path + ".json") as fh:
        meta = json.load(fh)
    return data, meta


def fit_one(data: pd.DataFrame, meta: dict, model: str, n_cov: int) -> tuple[object, float, float]:
    cols = COLUMNS[:n_cov]
    klass = MODELS[model]
    kwargs = {}
    if cols:
        kwargs = {"purchase_covariates": cols, "dropout_covariates": cols,
                  "covariate_reference": {c: meta["truth"]["reference"][c] for c in cols}}
    return timed(lambda: klass(**kwargs).fit(data))


def cmd_fit(args: argparse.Namespace) -> dict:
    data, meta = load(args.data)
    model, wall, cpu = fit_one(data, meta, args.model, args.covariates)
    out = {"model": args.model, "covariates": args.covariates, "wall": wall, "cpu": cpu,
           "log_likelihood": model.log_likelihood_, "unique_rows": model.n_unique_rows_,
           "params": model.params_.to_dict()}
    print(json.dumps(out))
    return out


PYMC_SNIPPET = r"""
import json, sys, time
import numpy as np
import pandas as pd
from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel
data = pd.read_parquet(sys.argv[1]).reset_index()
ref = json.loads(sys.argv[2])
which = sys.argv[3].split(",")
data = data.rename(columns={data.columns[0]: "customer_id"})
cov = []
for col in ("channel", "region"):
    for lvl in sorted(data[col].unique()):
        if lvl != ref[col]:
            name = f"{col}_{lvl}"
            data[name] = (data[col] == lvl).astype(float)
            cov.append(name)
data["membership_True"] = data["membership"].astype(float)
cov.append("membership_True")
frame = data[["customer_id", "frequency", "recency", "T", *cov]]
out = {"covariate_columns": cov}
for model_name in which:
    klass = {"pareto": ParetoNBDModel, "bgnbd": BetaGeoModel}[model_name]
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        m = klass(data=frame, model_config={"purchase_covariate_cols": cov, "dropout_covariate_cols": cov})
        m.fit(method="map")
        post = m.idata.posterior
        params = {k: np.asarray(post[k].values).ravel().tolist() for k in post.data_vars
                  if "customer_id" not in post[k].dims}
        coords = {d: [str(v) for v in post.coords[d].values] for d in post.coords
                  if d.endswith("covariate")}
        params["_coords"] = coords
        out[model_name] = {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                           "params": params}
    except Exception as exc:
        out[model_name] = {"error": repr(exc), "seconds": time.perf_counter() - t0}
    print(json.dumps({model_name: out[model_name]}), file=sys.stderr, flush=True)
print(json.dumps(out))
"""


def run_pymc(path: str, python: str, reference: dict, which: str) -> dict:
    proc = subprocess.run(
        [python, "-c", PYMC_SNIPPET, path, json.dumps(reference), which],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""},
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-3000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cmd_scale(args: argparse.Namespace) -> dict:
    data, meta = load(args.data)
    res: dict = {"machine": platform.platform(), "python": sys.version.split()[0], "n": len(data),
                 "load_before": os.getloadavg()}
    for model in args.models.split(","):
        for n_cov in (0, 3):
            m, wall, cpu = fit_one(data, meta, model, n_cov)
            row = {"wall": wall, "cpu": cpu, "log_likelihood": m.log_likelihood_,
                   "unique_rows": m.n_unique_rows_, "params": m.params_.to_dict(),
                   "converged": m.diagnostics_["converged"]}
            if n_cov:
                se = m.standard_errors_
                row["std_errors"] = se.to_dict()
                row["lr_test"] = m.likelihood_ratio_test()
            res[f"{model}_{n_cov}cov"] = row
            print(model, n_cov, "covariates:", {k: row[k] for k in ("wall", "cpu", "log_likelihood",
                                                                    "unique_rows", "converged")},
                  flush=True)
    res["truth"] = meta["truth"]
    if args.pymc:
        ref = {c: meta["truth"]["reference"][c] for c in ("channel", "region")}
        res["pymc_marketing"] = run_pymc(args.data, args.pymc, ref, args.pymc_models or args.models)
        print("pymc-marketing", json.dumps(res["pymc_marketing"])[:2000], flush=True)
    res["load_after"] = os.getloadavg()
    return res


PYMC_APPAREL = r"""
import json, sys, time
import numpy as np
import pandas as pd
from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel
data = pd.read_parquet(sys.argv[1])
cov = ["Gender", "Channel"]
out = {}
for name, klass in (("pareto", ParetoNBDModel), ("bgnbd", BetaGeoModel)):
    t0 = time.perf_counter()
    m = klass(data=data, model_config={"purchase_covariate_cols": cov, "dropout_covariate_cols": cov})
    m.fit(method="map")
    post = m.idata.posterior
    out[name] = {"seconds": time.perf_counter() - t0,
                 "params": {k: np.asarray(post[k].values).ravel().tolist() for k in post.data_vars
                            if "customer_id" not in post[k].dims}}
print(json.dumps(out))
"""


def apparel_summary(path: str) -> pd.DataFrame:
    """CLVTools' apparel data, weekly, 104-week calibration (its vignette's estimation.split)."""
    tx = pd.read_csv(os.path.join(path, "apparelTrans.csv"), parse_dates=["Date"])
    cov = pd.read_csv(os.path.join(path, "apparelStaticCov.csv")).set_index("Id")
    end = tx["Date"].min() + pd.Timedelta(weeks=104) - pd.Timedelta(days=1)
    rfm = rfm_summary(tx, freq="W", observation_end=end, customer_col="Id", date_col="Date",
                      amount_col="Price")
    data = rfm.join(cov)
    data.attrs = dict(rfm.attrs)
    return data


def cmd_apparel(args: argparse.Namespace) -> dict:
    data = apparel_summary(args.path)
    cols = ["Gender", "Channel"]
    res: dict = {"n": len(data)}
    for name, klass in MODELS.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m, wall, _cpu = timed(lambda k=klass: k(purchase_covariates=cols, dropout_covariates=cols).fit(data))
        res[name] = {"wall": wall, "log_likelihood": m.log_likelihood_, "params": m.params_.to_dict(),
                     "std_errors": m.standard_errors_.to_dict(),
                     "warnings": [str(w.message)[:200] for w in caught],
                     "lr_test": m.likelihood_ratio_test()}
        print(name, json.dumps(res[name], default=str)[:1500], flush=True)
    if args.pymc:
        path = "/tmp/apparel_summary.parquet"
        frame = data[["frequency", "recency", "T", *cols]].reset_index()
        frame = frame.rename(columns={frame.columns[0]: "customer_id"})
        frame.to_parquet(path)
        proc = subprocess.run([args.pymc, "-c", PYMC_APPAREL, path], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": ""})
        if proc.returncode != 0:
            res["pymc_marketing"] = {"error": proc.stderr[-3000:]}
        else:
            res["pymc_marketing"] = json.loads(proc.stdout.strip().splitlines()[-1])
            # pymc-marketing's Pareto/NBD MAP under our likelihood (same parameterisation)
            pp = res["pymc_marketing"]["pareto"]["params"]
            ours = ParetoNBDModel(purchase_covariates=cols, dropout_covariates=cols).fit(data)
            vec = {"r": pp["r"][0], "alpha": pp["alpha_scale"][0], "s": pp["s"][0],
                   "beta": pp["beta_scale"][0],
                   "purchase:Gender": pp["purchase_coefficient"][0],
                   "purchase:Channel": pp["purchase_coefficient"][1],
                   "dropout:Gender": pp["dropout_coefficient"][0],
                   "dropout:Channel": pp["dropout_coefficient"][1]}
            at = ours.with_params(vec)
            arrays = {c: data[c].to_numpy(float) for c in ("frequency", "recency", "T")}
            arrays.update(at._extra_fit_arrays(data, data.index))
            phi = np.concatenate([np.log(list(vec.values())[:4]), list(vec.values())[4:]])
            ll = float(at._log_likelihood_rows(phi, at._prepare_data(arrays)).sum())
            res["pymc_marketing"]["pareto"]["log_likelihood_ours"] = ll
        print("pymc-marketing", json.dumps(res["pymc_marketing"])[:3000], flush=True)
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("coverage")
    p.add_argument("--process", default="pareto_nbd")
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--first-seed", type=int, default=1000)
    p.add_argument("--json", default=None)
    p = sub.add_parser("prepare")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--model", default="pareto", choices=sorted(MODELS))
    p.add_argument("--out", required=True)
    p.add_argument("--json", default=None)
    p = sub.add_parser("fit")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="pareto", choices=sorted(MODELS))
    p.add_argument("--covariates", type=int, default=3, choices=[0, 1, 2, 3])
    p.add_argument("--json", default=None)
    p = sub.add_parser("apparel")
    p.add_argument("--path", default="/work/shared/reference/clvtools-apparel")
    p.add_argument("--pymc", default=None, help="python of a venv with pymc-marketing")
    p.add_argument("--json", default=None)
    p = sub.add_parser("scale")
    p.add_argument("--data", required=True)
    p.add_argument("--models", default="bgnbd,pareto")
    p.add_argument("--pymc", default=None, help="python of a venv with pymc-marketing")
    p.add_argument("--pymc-models", default=None)
    p.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    commands = {"coverage": cmd_coverage, "prepare": cmd_prepare, "fit": cmd_fit,
                "scale": cmd_scale, "apparel": cmd_apparel}
    out = commands[args.cmd](args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
