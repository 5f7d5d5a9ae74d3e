"""Scale benchmark: N simulated transactions as Parquet -> summary -> BG/NBD + Gamma-Gamma fit ->
12-month CLV for every customer -> Parquet, with lifetimes and Spark beside it (issue 13).

Steps (each in a fresh child process; the parent samples the resident memory of the child's
whole process tree -- Python plus, for Spark, the JVM -- every 50 ms with psutil):

``generate``  N transactions of a BG/NBD population (Fader, Hardie & Lee 2005) with Gamma-Gamma
              spend, about 5 per customer (100M rows ~ 20M customers), over two years; written
              in chunks of customers (vectorised, never all in memory), as plain Parquet files or
              hive-partitioned by month (``--partition month``).
``summary``   custvalue.scoring.summary_to_parquet: DuckDB streams the files, aggregates under
              ``--memory-limit`` (spilling to disk) and writes the weekly RFM summary to Parquet.
``fit``       sufficient_statistics (GROUP BY frequency, recency, T; and frequency,
              monetary_value) in DuckDB, then BetaGeoModel / GammaGammaModel fitted on them with
              weights.
``score``     score_to_parquet: P(alive), expected purchases, 12-month CLV (10 % a year) for every
              customer, in chunks of 1M customers, written to Parquet.
``lifetimes`` the same with lifetimes 0.11 (pandas in memory): read the Parquet into pandas,
              summary_data_from_transaction_data, BetaGeoFitter, GammaGammaFitter,
              customer_lifetime_value; under an address-space cap (``--lifetimes-memory``, GiB)
              and a time cap (``--lifetimes-timeout``, s). The stage it reached is reported.
``spark``     custvalue.spark.rfm_summary in Spark local mode (local[2]) on the same files,
              written to Parquet, beside the DuckDB summary.

Usage (repository root)::

    .venv/bin/python benchmarks/bench_scale.py --rows 2000000                  # all steps
    .venv/bin/python benchmarks/bench_scale.py --rows 100000000 --partition month \\
        --steps generate,summary,fit,score,lifetimes,spark --lifetimes-timeout 3600

Data go to ``benchmarks/_work/scale_<rows>/`` (git-ignored; 100M rows take about 1.3 GB).
Results are printed as a Markdown table and written to ``benchmarks/_work/scale_<rows>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _bgnbd_log import bgnbd_purchase_days

WORK = Path(__file__).resolve().parent / "_work"
START = np.datetime64("2022-01-01", "D")
DAYS = 730  # two years observed
PARAMS = {"r": 0.6, "alpha": 30.0, "a": 0.8, "b": 2.4}  # daily rate ~ 0.02 -> ~5 rows/customer


# ------------------------------------------------------------------------------------------
# data generation (vectorised over customers, chunk by chunk)
# ------------------------------------------------------------------------------------------


def simulate_chunk(n_customers: int, first_id: int, seed: int) -> dict[str, np.ndarray]:
    """One chunk of a BG/NBD population: acquisition uniform over year 1, Poisson purchases at
    rate lambda ~ Gamma(r, alpha), dropout after each repeat purchase with p ~ Beta(a, b), Gamma
    spend per transaction around a customer mean nu ~ Gamma(q, gamma); rows sorted by customer."""
    rng = np.random.default_rng(seed)
    all_cust, days = bgnbd_purchase_days(rng, n_customers, **PARAMS, days=DAYS)
    order = np.lexsort((days, all_cust))
    all_cust, days = all_cust[order], days[order]
    mean_spend = rng.gamma(6.0, 25.0 / 6.0, n_customers) + 5.0
    amount = np.round(rng.gamma(4.0, mean_spend[all_cust] / 4.0), 2) + 0.01
    return {
        "customer_id": all_cust.astype(np.int64) + first_id,
        "date": (START + days.astype("timedelta64[D]")).astype("datetime64[us]"),
        "amount": amount,
    }


def generate(n_rows: int, out: Path, partition: str, chunk_customers: int = 1_000_000) -> dict:
    """Write about ``n_rows`` transactions to ``out`` in chunks; returns rows and customers."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    rows = customers = 0
    i = 0
    while rows < n_rows:
        chunk = simulate_chunk(chunk_customers, customers, seed=1000 + i)
        left = n_rows - rows
        if chunk["customer_id"].size > left:  # stop at a customer boundary
            last = chunk["customer_id"][left - 1]
            cut = int(np.searchsorted(chunk["customer_id"], last, side="right"))
            chunk = {k: v[:cut] for k, v in chunk.items()}
        n = int(chunk["customer_id"].size)
        table = pa.table(chunk)
        if partition == "month":
            month = (chunk["date"].astype("datetime64[M]")).astype(str)
            table = table.append_column("month", pa.array(month))
            ds.write_dataset(
                table,
                out,
                format="parquet",
                partitioning=ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive"),
                basename_template=f"part-{i:05d}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
            )
        else:
            pq.write_table(table, out / f"part-{i:05d}.parquet", compression="zstd")
        rows += n
        customers += int(np.unique(chunk["customer_id"]).size)
        i += 1
        del chunk, table
    return {"rows": rows, "customers": customers, "chunks": i}


# ------------------------------------------------------------------------------------------
# steps run in child processes
# ------------------------------------------------------------------------------------------


def _source(work: Path) -> str:
    tx = work / "tx"
    return str(tx) if any(tx.glob("month=*")) else str(tx / "*.parquet")


def step_summary(work: Path, opts: dict) -> dict:
    from custvalue.scoring import summary_to_parquet

    info = summary_to_parquet(
        _source(work),
        work / "summary.parquet",
        freq="W",
        attributes=(),
        memory_limit=opts["memory_limit"],
    )
    return {"customers": info["n_customers"], "transactions": info["n_transactions"]}


def step_fit(work: Path, opts: dict) -> dict:
    from custvalue.models import BetaGeoModel, GammaGammaModel
    from custvalue.scoring import sufficient_statistics

    path = str(work / "summary.parquet")
    t = time.perf_counter()
    stats = sufficient_statistics(path, memory_limit=opts["memory_limit"])
    spend = sufficient_statistics(path, spend=True, memory_limit=opts["memory_limit"])
    t_stats = time.perf_counter() - t
    t = time.perf_counter()
    bg = BetaGeoModel().fit(stats)
    t_bg = time.perf_counter() - t
    t = time.perf_counter()
    gg = GammaGammaModel().fit(spend)
    t_gg = time.perf_counter() - t
    with open(work / "models.pkl", "wb") as fh:
        pickle.dump((bg, gg), fh)
    return {
        "distinct_rows": len(stats),
        "distinct_spend_rows": len(spend),
        "stats_s": round(t_stats, 2),
        "bg_fit_s": round(t_bg, 2),
        "gg_fit_s": round(t_gg, 2),
        "bg": {k: round(float(v), 4) for k, v in bg.params_.items()},
        "gg": {k: round(float(v), 4) for k, v in gg.params_.items()},
    }


def step_score(work: Path, opts: dict) -> dict:
    from custvalue.scoring import score_to_parquet

    with open(work / "models.pkl", "rb") as fh:
        bg, gg = pickle.load(fh)
    res = score_to_parquet(
        str(work / "summary.parquet"),
        work / "clv.parquet",
        bg,
        gg,
        horizon=12,
        time_unit="M",
        discount_rate=0.1,
        chunk_rows=1_000_000,
    )
    return {"customers": res.n_customers, "chunks": res.n_chunks, "total_clv": round(res.totals["clv"], 2)}


def step_lifetimes(work: Path, opts: dict) -> dict:
    """lifetimes end to end; writes its progress so the parent can say where it stopped."""
    import resource
    import warnings

    warnings.filterwarnings("ignore")
    cap = float(opts["lifetimes_memory"]) * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (int(cap), int(cap)))
    progress = work / "lifetimes_progress.json"
    done: dict[str, float] = {}

    def mark(stage: str, t0: float) -> None:
        done[stage] = round(time.perf_counter() - t0, 2)
        progress.write_text(json.dumps(done))

    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    t = time.perf_counter()
    tx = pd.read_parquet(_source(work).removesuffix("/*.parquet"), columns=["customer_id", "date", "amount"])
    mark("read", t)
    t = time.perf_counter()
    s = summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="amount", freq="W"
    )
    mark("summary", t)
    del tx
    t = time.perf_counter()
    bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    mark("bg_fit", t)
    t = time.perf_counter()
    rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    mark("gg_fit", t)
    t = time.perf_counter()
    clv = ggf.customer_lifetime_value(
        bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"], time=12, freq="W",
        discount_rate=0.1 / 12,
    )
    mark("clv", t)
    t = time.perf_counter()
    clv.to_frame().to_parquet(work / "clv_lifetimes.parquet")
    mark("write", t)
    return {"stages": done}


def step_spark(work: Path, opts: dict) -> dict:
    import shutil

    from custvalue import spark as cs

    spark = cs.local_session(2, shuffle_partitions=int(opts["spark_partitions"]),
                             driver_memory=opts["spark_memory"])
    out = work / "summary_spark.parquet"
    shutil.rmtree(out, ignore_errors=True)
    src = _source(work)
    sdf = spark.read.parquet(src if "*" not in src else str(Path(src).parent))
    t = time.perf_counter()
    rfm = cs.rfm_summary(sdf.select("customer_id", "date", "amount"), freq="W")
    rfm.write.parquet(str(out))
    wall = time.perf_counter() - t
    # the statistics the driver collects, from the summary just written (``rfm`` itself is a
    # lazy query: collecting from it would run the whole summary again)
    t = time.perf_counter()
    written = spark.read.parquet(str(out))
    stats = cs.sufficient_statistics(written)
    spend = cs.sufficient_statistics(written, spend=True)
    t_stats = time.perf_counter() - t
    spark.stop()
    # the Spark summary against the DuckDB one (summary step): same customers and statistics
    import duckdb

    check = (
        "SELECT count(*), sum(frequency), sum(recency), sum(T), sum(n_orders), "
        "round(sum(total_spend), 2) FROM read_parquet({})"
    )
    con = duckdb.connect()
    theirs = con.execute(check.format(repr(str(out / "*.parquet")))).fetchall()[0]
    ours = (
        con.execute(check.format(repr(str(work / "summary.parquet")))).fetchall()[0]
        if (work / "summary.parquet").exists()
        else None
    )
    con.close()
    return {
        "summary_write_s": round(wall, 2),
        "stats_collect_s": round(t_stats, 2),
        "distinct_rows_collected": len(stats),
        "distinct_spend_rows_collected": len(spend),
        "collected_mib": round(
            (stats.memory_usage(index=False).sum() + spend.memory_usage(index=False).sum()) / 2**20, 1
        ),
        "equals_duckdb_summary": None if ours is None else ours == theirs,
    }


STEPS = {
    "summary": step_summary,
    "fit": step_fit,
    "score": step_score,
    "lifetimes": step_lifetimes,
    "spark": step_spark,
}


def child_main(step: str, work: str, opts_json: str) -> None:
    work_p = Path(work)
    t = time.perf_counter()
    info = STEPS[step](work_p, json.loads(opts_json))
    info["inner_wall_s"] = round(time.perf_counter() - t, 2)
    print("RESULT " + json.dumps(info), flush=True)


# ------------------------------------------------------------------------------------------
# parent: run a step, sample the process tree's memory
# ------------------------------------------------------------------------------------------


def run_step(step: str, work: Path, opts: dict, timeout: float | None = None) -> dict:
    import psutil

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, __file__, "--child", step, str(work), json.dumps(opts)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    root = psutil.Process(proc.pid)
    peak = 0
    status = "ok"
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            rss = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if timeout is not None and time.perf_counter() - t0 > timeout:
            for p in [*root.children(recursive=True), root]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            status = f"killed after {timeout:.0f} s (time cap)"
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    info: dict = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            info = json.loads(line[7:])
    if proc.returncode != 0 and status == "ok":
        last = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or ["?"]
        status = f"failed (exit {proc.returncode}): {last[0][:160]}"
    return {"step": step, "status": status, "wall_s": round(wall, 2),
            "peak_rss_mib": round(peak / 2**20), **info}


def machine() -> str:
    import psutil

    return (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--partition", choices=["none", "month"], default="none")
    ap.add_argument("--steps", default="generate,summary,fit,score,lifetimes,spark")
    ap.add_argument("--memory-limit", default="4GB", help="DuckDB memory limit")
    ap.add_argument("--lifetimes-memory", type=float, default=16.0, help="GiB address-space cap")
    ap.add_argument("--lifetimes-timeout", type=float, default=1800.0, help="seconds")
    ap.add_argument("--spark-memory", default="4g")
    ap.add_argument("--spark-partitions", type=int, default=8)
    ap.add_argument("--reuse", action="store_true", help="keep existing generated data")
    args = ap.parse_args()
    work = WORK / f"scale_{args.rows}"
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    opts = {
        "memory_limit": args.memory_limit,
        "lifetimes_memory": args.lifetimes_memory,
        "spark_memory": args.spark_memory,
        "spark_partitions": args.spark_partitions,
    }
    results = []
    header = f"bench_scale --rows {args.rows:,} --partition {args.partition}; {machine()}"
    print(header, flush=True)
    if "generate" in steps and not (args.reuse and (work / "tx").exists()):
        import shutil

        shutil.rmtree(work / "tx", ignore_errors=True)
        t = time.perf_counter()
        gen = generate(args.rows, work / "tx", args.partition)
        results.append({"step": "generate", "status": "ok",
                        "wall_s": round(time.perf_counter() - t, 2), "peak_rss_mib": None, **gen})
        print(json.dumps(results[-1]), flush=True)
    for step in steps:
        if step == "generate":
            continue
        timeout = args.lifetimes_timeout if step == "lifetimes" else None
        res = run_step(step, work, opts, timeout)
        if step == "lifetimes":
            prog = work / "lifetimes_progress.json"
            reached = json.loads(prog.read_text()) if prog.exists() else {}
            res["stages_done"] = reached
            prog.unlink(missing_ok=True)
        results.append(res)
        print(json.dumps(res), flush=True)
    lines = [f"# {header}", "", "| step | status | wall s | peak RSS MiB (process tree) | details |",
             "|---|---|---:|---:|---|"]
    for r in results:
        details = {k: v for k, v in r.items() if k not in ("step", "status", "wall_s", "peak_rss_mib")}
        lines.append(f"| {r['step']} | {r['status']} | {r['wall_s']} | {r['peak_rss_mib']} | "
                     f"{json.dumps(details)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (WORK / f"scale_{args.rows}.md").write_text(text)


if __name__ == "__main__":
    main()
