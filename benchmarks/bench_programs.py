"""Monte Carlo validation of custvalue.programs against simulations with known truth.

For each seed, ``custvalue.datasets.simulate`` draws a customer base (BG/NBD, CDNOW
parameters) with

* a randomised win-back campaign (``winback``; truth: the realised extra purchases per
  treated customer, divided by the post-send months), estimated by ITT with CUPED;
* a self-selected, staggered loyalty programme (``loyalty={"history": True}``: from the
  launch each month a customer joins with a probability that rises with her recent activity
  and her purchases so far, hence with her latent rate; truth:
  ``truth["loyalty"]["att"]["level"]``, computed from each member's untreated path),
  estimated by Callaway & Sant'Anna with doubly robust adjustment, with the naive gap beside;
* a stress test where joining is triggered by purchases (``recency``): the timing of joining
  then depends on transitory purchase shocks and no difference-in-differences design is
  unbiased; the pre-trend test should flag it.

Reported per scenario: mean truth, bias, RMSE, coverage of the 95% interval, rejection rate
of "no effect" at 5% (the false-positive rate when the true effect is zero) and the naive
gap's bias.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 python benchmarks/bench_programs.py \
        --seeds 200 --customers 4000 --obs-seeds 200 --obs-customers 2000
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from custvalue import programs
from custvalue.datasets import simulate


def _randomised(seed: int, n: int, effect: float) -> dict[str, float]:
    sim = simulate(n, seed=seed, winback={"effect": effect})
    r = programs.estimate(sim.transactions, sim.campaign, date_col="send_date",
                          group_col="group")
    periods = 3  # send date end - 90 days: October, November, December 2023
    truth = sim.truth["campaign"]["realised_effect"] / periods
    a = r.att.loc["level"]
    return {"truth": truth, "estimate": a["estimate"], "se": a["std_error"],
            "lower": a["lower"], "upper": a["upper"], "naive": r.naive.loc["level", "estimate"]}


def _staggered(seed: int, n: int, effect: float, mechanism: str = "history"
               ) -> dict[str, float]:
    # customers acquired over six months, the club launched two months later: everyone has
    # a history when the programme reaches her, and the active, heavy buyers join first
    loyalty = {"effect": effect, "launch": "2022-09-01"}
    if mechanism == "history":
        loyalty["history"] = True
    else:  # joining triggered by purchases: a stress test the design cannot pass
        loyalty.update({"recency": 5.0, "selection": 1.0, "join_rate": 0.001})
    sim = simulate(n, seed=seed, acquisition_period="180D", loyalty=loyalty)
    # heterogeneity off: the segments are not part of the validation and the main estimate
    # does not depend on them
    r = programs.estimate(sim.transactions, sim.memberships, date_col="join_date",
                          secondary=False, placebo_shift=3, heterogeneity=False)
    a = r.att.loc["level"]
    return {"truth": sim.truth["loyalty"]["att"]["level"], "estimate": a["estimate"],
            "se": a["std_error"], "lower": a["lower"], "upper": a["upper"],
            "naive": r.naive.loc["level", "estimate"], "pretrend_p": r.pretrend_p}


def _triggered(seed: int, n: int, effect: float) -> dict[str, float]:
    return _staggered(seed, n, effect, mechanism="recency")


def scale(n: int) -> None:
    """One full ``estimate`` (all estimators, economics, heterogeneity) on ``n`` customers."""
    t0 = time.perf_counter()
    sim = simulate(n, seed=1, acquisition_period="180D",
                   loyalty={"history": True, "effect": 1.3, "launch": "2022-09-01"})
    t1 = time.perf_counter()
    r = programs.estimate(sim.transactions, sim.memberships, date_col="join_date", margin=0.3,
                          cost_per_member=2.0)
    t2 = time.perf_counter()
    a = r.att.loc["level"]
    print(f"n={n:,} members={len(sim.memberships):,} simulate={t1 - t0:.1f}s "
          f"estimate={t2 - t1:.1f}s att={a['estimate']:.4f} [{a['lower']:.4f}, "
          f"{a['upper']:.4f}] truth={sim.truth['loyalty']['att']['level']:.4f}")
    print(r.estimators[["estimate", "std_error"]].round(4).to_string())


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    f = pd.DataFrame(rows)
    err = f["estimate"] - f["truth"]
    cover = (f["lower"] <= f["truth"]) & (f["truth"] <= f["upper"])
    reject = (f["lower"] > 0) | (f["upper"] < 0)
    out = {
        "seeds": len(f),
        "mean_truth": f["truth"].mean(),
        "bias": err.mean(),
        "bias_mcse": err.std(ddof=1) / np.sqrt(len(f)),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "mean_se": f["se"].mean(),
        "sd_estimate": f["estimate"].std(ddof=1),
        "coverage": cover.mean(),
        "reject_zero": reject.mean(),
        "naive_bias": (f["naive"] - f["truth"]).mean(),
    }
    if "pretrend_p" in f:
        out["pretrend_reject"] = float((f["pretrend_p"] < 0.05).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--customers", type=int, default=4000)
    ap.add_argument("--obs-seeds", type=int, default=200)
    ap.add_argument("--obs-customers", type=int, default=2000)
    ap.add_argument("--stress-seeds", type=int, default=10)
    ap.add_argument("--scale", type=int, default=0,
                    help="instead of the Monte Carlo: time one estimate on this many customers")
    ap.add_argument("--only", default="", help="run the scenarios whose name contains this")
    ap.add_argument("--deadline", type=float, default=float("inf"),
                    help="stop a scenario after this many seconds")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.scale:
        scale(args.scale)
        return
    scenarios = [
        ("randomised win-back, effect 0.10", _randomised, args.seeds, args.customers, 0.10),
        ("randomised win-back, no effect", _randomised, args.seeds, args.customers, 0.0),
        ("staggered club joining on history, rate x1.3", _staggered, args.obs_seeds,
         args.obs_customers, 1.3),
        ("staggered club joining on history, no effect", _staggered, args.obs_seeds,
         args.obs_customers, 1.0),
        ("stress: club joining triggered by purchases, rate x1.3", _triggered,
         args.stress_seeds, args.obs_customers, 1.3),
    ]
    if args.only:
        scenarios = [s for s in scenarios if args.only in s[0]]
    for name, fn, seeds, n, eff in scenarios:
        t0 = time.perf_counter()
        rows = []
        for seed in range(seeds):
            rows.append(fn(1000 + seed, n, eff))
            if time.perf_counter() - t0 > args.deadline:
                break
        s = summarise(rows)
        took = time.perf_counter() - t0
        print(f"{name} (n={n:,}): " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items())
            + f", seconds={took:.0f}", flush=True)


if __name__ == "__main__":
    main()
