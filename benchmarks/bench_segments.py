"""Benchmarks for custvalue.segments.

(a) Known truth: on ``custvalue.datasets.simulate`` (BG/NBD customers with Gamma-Gamma spend),
    the precision of the model-based win-back list (share truly inactive at the observation
    end) and club list (share truly active and in the true top 20 % by true expected value over
    the next year) beside same-size lists picked by RFM rules alone: win-back = the high past
    spenders (top 20 % by spend, the same threshold) with the lowest R score / longest since the
    last order; club = "champions" and "loyal" customers ranked by past spend. Also the time of
    ``value_tiers`` with models.
(b) 1,000,000 customers (a customer table built directly with numpy: RFM columns, region,
    channel, categories, member flag, birthday, p_alive, clv): the time of each segment
    function, and of each ``select`` filter beside the same filter written for
    ``DataFrame.query`` (results compared; the birthday filter has no ``query`` form and is put
    beside plain pandas code).

Usage (from the repository root)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segments.py all
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segments.py a --customers 20000 --seeds 3
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segments.py b --customers 1000000

Results are printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

import custvalue as cv
from custvalue import segments as sg


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------
# (a) precision against the simulation's truth
# ------------------------------------------------------------------------------------------
def true_value(truth: pd.DataFrame, days: float) -> np.ndarray:
    """Expected spend in the next ``days`` days given the true latent state: an alive BG/NBD
    customer with rate lambda and dropout probability p makes (1 - exp(-lambda p t)) / p
    purchases in expectation (Fader, Hardie & Lee 2005)."""
    lam, p = truth["lambda"].to_numpy(), truth["p"].to_numpy()
    alive = truth["alive_at_end"].to_numpy(bool)
    return alive * (1 - np.exp(-lam * p * days)) / p * truth["mean_spend"].to_numpy()


def precision_run(n: int, seed: int) -> dict[str, float]:
    sim = cv.simulate(n, seed=seed)
    rfm = cv.rfm_summary(sim.transactions, freq="D")
    bg = cv.BetaGeoModel().fit(rfm)
    gg = cv.GammaGammaModel().fit(rfm[(rfm.frequency > 0) & (rfm.monetary_value > 0)])
    clv = cv.customer_lifetime_value(
        bg,
        gg,
        rfm,
        horizon=12,
        time_unit="M",
        discount_rate=0.0,
        interval=0.9,
        n_draws=30,
        seed=seed,
    )
    clv = getattr(clv, "frame", clv)
    scores = rfm.join(
        clv[["expected_purchases", "expected_spend", "clv", "clv_lower", "clv_upper"]]
    )
    scores["p_alive"] = bg.probability_alive(rfm)
    truth = sim.customers.set_index("customer_id").reindex(scores.index)
    gone = ~truth["alive_at_end"].to_numpy(bool)
    tv = true_value(truth, 365.25)
    true_club = ~gone & (tv >= np.quantile(tv, 0.8))
    segs = sg.rfm_segments(scores).customers

    winback = sg.winback_candidates(scores)
    high = segs[segs["total_spend"] >= scores["total_spend"].quantile(0.8)]
    rfm_winback = high.sort_values(
        ["r_score", "days_since_last_order"], ascending=[True, False], kind="stable"
    ).head(winback.size)
    club = sg.club_candidates(scores)
    rfm_club = (
        segs[segs["segment"].isin(["champions", "loyal"])]
        .sort_values("total_spend", ascending=False, kind="stable")
        .head(club.size)
    )
    _tiers, t_tiers = _timed(sg.value_tiers, scores, bg, gg, n_draws=100, seed=seed)

    def prec(ids: pd.Index, mask: np.ndarray) -> float:
        return float(mask[scores.index.get_indexer(ids)].mean())

    return {
        "seed": seed,
        "winback_n": winback.size,
        "winback_model": prec(winback.ids, gone),
        "winback_rfm": prec(rfm_winback.index, gone),
        "club_n": club.size,
        "club_model": prec(club.ids, true_club),
        "club_rfm": prec(rfm_club.index, true_club),
        "value_tiers_s": t_tiers,
    }


def bench_a(n: int, seeds: int) -> None:
    rows = [precision_run(n, s) for s in range(seeds)]
    df = pd.DataFrame(rows)
    print(f"\n(a) precision on simulate({n:,}, seed=s), BG/NBD + Gamma-Gamma, daily summary\n")
    print(
        "| seed | win-back n | model | RFM rules | club n | model | RFM rules | value_tiers s (100 draws) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['winback_n']:,} | {r['winback_model']:.3f} | "
            f"{r['winback_rfm']:.3f} | {r['club_n']:,} | {r['club_model']:.3f} | "
            f"{r['club_rfm']:.3f} | {r['value_tiers_s']:.1f} |"
        )
    for what in ("winback", "club"):
        d = df[f"{what}_model"] - df[f"{what}_rfm"]
        print(
            f"\n{what}: model {df[f'{what}_model'].mean():.3f} vs RFM {df[f'{what}_rfm'].mean():.3f}; "
            f"difference {d.mean():+.3f} (sd {d.std(ddof=1):.3f} over {len(d)} seeds)"
        )


# ------------------------------------------------------------------------------------------
# (b) one million customers
# ------------------------------------------------------------------------------------------
def million(n: int, seed: int = 0) -> pd.DataFrame:
    """A customer table of n rows built column by column (no Python loop over customers)."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2024-12-31")
    n_orders = 1 + rng.negative_binomial(0.6, 0.15, n)
    first = end - pd.to_timedelta(rng.integers(30, 1100, n), unit="D")
    span = (end - first).days.to_numpy()
    last = first + pd.to_timedelta((rng.random(n) * span * (n_orders > 1)).astype(int), unit="D")
    spend = np.round(n_orders * rng.gamma(3.0, 30.0, n), 2)
    cats = np.array(["shoes", "bags", "books", "toys", "home", "music"])
    picks = rng.random((n, len(cats))) < 0.25
    picks[np.arange(n), rng.integers(0, len(cats), n)] = True
    # ';'-joined categories via codes: 63 possible subsets, joined once each
    codes = picks @ (1 << np.arange(len(cats)))
    names = np.array(
        [";".join(cats[[(c >> k) & 1 == 1 for k in range(len(cats))]]) for c in range(64)]
    )
    joined = names[codes]
    regions = np.array(["Jiangsu", "Zhejiang", "Shanghai", "Beijing", "Guangdong", "Sichuan"])
    frame = pd.DataFrame(
        {
            "frequency": (n_orders - 1).astype(float),
            "recency": 0.0,
            "T": span.astype(float),
            "monetary_value": spend / n_orders,
            "first_purchase": first,
            "last_purchase": last,
            "n_orders": n_orders,
            "total_spend": spend,
            "region": pd.Categorical(regions[rng.integers(0, len(regions), n)]),
            "channel": pd.Categorical(rng.choice(["organic", "paid", "social", "referral"], n)),
            "category": joined,
            "member": rng.random(n) < 0.4,
            "birthday": pd.Timestamp("1960-01-01")
            + pd.to_timedelta(rng.integers(0, 16000, n), unit="D"),
            "p_alive": rng.beta(2.0, 1.5, n),
            "clv": np.round(rng.gamma(0.8, 120.0, n), 2),
        },
        index=pd.RangeIndex(1, n + 1, name="customer_id"),
    )
    frame.attrs["observation_end"] = end.isoformat()
    return frame


FILTERS: list[tuple[str, str | None]] = [
    (
        'region in ["Jiangsu", "Zhejiang", "Shanghai"] and total_spend >= 500',
        'region in ["Jiangsu", "Zhejiang", "Shanghai"] and total_spend >= 500',
    ),
    ("n_orders >= 5", "n_orders >= 5"),
    ("p_alive >= 0.5 and clv > 100", "p_alive >= 0.5 and clv > 100"),
    ('category has "shoes"', 'category.str.contains("(?:^|;)shoes(?:;|$)", regex=True)'),
    (
        'member and first_purchase between "2024-01-01" and "2024-06-30"',
        'member and first_purchase >= "2024-01-01" and first_purchase < "2024-07-01"',
    ),
    ("birthday within 7 days", None),
    (
        '(n_orders >= 10 or clv > 500) and not region in ["Beijing"] and p_alive > 0.3',
        '(n_orders >= 10 or clv > 500) and not region in ["Beijing"] and p_alive > 0.3',
    ),
]


def _birthday_pandas(frame: pd.DataFrame, today: pd.Timestamp, days: int) -> np.ndarray:
    """Plain pandas: next anniversary (Feb 29 -> Feb 28) within ``days`` days of ``today``."""
    b = frame["birthday"]
    out = np.zeros(len(frame), dtype=bool)
    for year in (today.year, today.year + 1):
        leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
        day = b.dt.day.where(~((b.dt.month == 2) & (b.dt.day == 29)) | leap, 28)
        ann = pd.to_datetime(pd.DataFrame({"year": year, "month": b.dt.month, "day": day}))
        delta = (ann - today).dt.days.to_numpy()
        out |= (delta >= 0) & (delta <= days)
    return out


def bench_b(n: int) -> None:
    frame, t_build = _timed(million, n)
    print(f"\n(b) {n:,} customers (table built in {t_build:.1f} s)\n")
    print("| step | seconds | result |")
    print("|---|---:|---|")
    for name, fn in [
        ("rfm_scores", lambda: sg.rfm_scores(frame)),
        ("rfm_segments", lambda: sg.rfm_segments(frame)),
        ("value_tiers (no models)", lambda: sg.value_tiers(frame)),
        ("alive_value_grid", lambda: sg.alive_value_grid(frame)),
        ("winback_candidates", lambda: sg.winback_candidates(frame)),
        ("club_candidates", lambda: sg.club_candidates(frame)),
        ("order_milestones", lambda: sg.order_milestones(frame)),
        ("invalid_members", lambda: sg.invalid_members(frame)),
        (
            "channel_economics",
            lambda: sg.channel_economics(
                frame[["clv"]],
                frame,
                costs={"organic": 5, "paid": 40, "social": 25, "referral": 15},
            ),
        ),
    ]:
        res, t = _timed(fn)
        print(f"| {name} | {t:.2f} | {res.size:,} customers, {len(res.table)} table rows |")
    today = pd.Timestamp("2025-06-15")
    print("\n| filter | select s | DataFrame.query s | customers | same rows |")
    print("|---|---:|---:|---:|---|")
    for where, query in FILTERS:
        mask, t_ours = _timed(sg._filter.evaluate, where, frame, today=today)
        _, t_select = _timed(sg.select, frame, where, today=today, include_invalid=True)
        if query is None:
            ref, t_ref = _timed(_birthday_pandas, frame, today, 7)
            label = f"{t_ref:.3f} (pandas code)"
        else:
            picked, t_ref = _timed(frame.query, query, engine="python")
            ref = frame.index.isin(picked.index)
            label = f"{t_ref:.3f}"
        same = bool(np.array_equal(mask, ref))
        print(
            f"| `{where}` | {t_select:.3f} (mask {t_ours:.3f}) | {label} | {int(mask.sum()):,} | {same} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["a", "b", "all"])
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}, "
        f"pandas {pd.__version__}, numpy {np.__version__}"
    )
    if args.part in ("a", "all"):
        bench_a(args.customers or 20_000, args.seeds)
    if args.part in ("b", "all"):
        bench_b(args.customers or 1_000_000)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
