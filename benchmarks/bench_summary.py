"""Benchmarks for custvalue.summary.rfm_summary.

(a) 1,000,000 simulated customers (~3M daily transactions): custvalue.rfm_summary against
    lifetimes.utils.summary_data_from_transaction_data, each in a fresh subprocess that loads the
    same Parquet file into pandas, then times the summary call alone and records the process'
    resident memory (psutil polling every 10 ms, plus ru_maxrss). The outputs are compared
    column by column afterwards.
(b) One Parquet file of >= 50M transactions written in chunks (never held in memory at once),
    summarised by rfm_summary straight from the file in a fresh subprocess.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_summary.py all          # (a) and (b)
    .venv/bin/python benchmarks/bench_summary.py a --customers 1000000
    .venv/bin/python benchmarks/bench_summary.py b --rows 50000000 [--reuse] [--memory-limit 2GB]
    .venv/bin/python benchmarks/bench_summary.py once custvalue|lifetimes PATH [OUT]  # one, whole

``once`` runs one contender as a whole command (read the file, summarise, exit) so that a
whole-process timer (``/usr/bin/time -v``, or any harness that alternates two commands) can
put the two side by side; it prints the summary call's own time too.

Data go to benchmarks/_work/ (git-ignored). Results are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from _bgnbd_log import bgnbd_purchase_days

WORK = Path(__file__).resolve().parent / "_work"
START = np.datetime64("2022-01-01", "D")


# ------------------------------------------------------------------------------------------
# data generation
# ------------------------------------------------------------------------------------------


def simulate_bgnbd(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """BG/NBD-like daily log: acquisition uniform over year 1, Poisson purchases at rate
    lambda ~ Gamma(r, alpha), dropout after each purchase with p ~ Beta(a, b), observed to the
    end of year 2. Vectorised over customers (no Python loop)."""
    rng = np.random.default_rng(seed)
    all_cust, days = bgnbd_purchase_days(rng, n_customers, r=0.6, alpha=60.0, a=0.8, b=2.4, days=730)
    spend_scale = rng.gamma(6.0, 1.0 / 0.15, n_customers)
    amount = np.round(rng.gamma(4.0, spend_scale[all_cust] / 4.0), 2)
    return pd.DataFrame(
        {
            "customer_id": all_cust.astype(np.int64) + 1_000_000,
            "date": (START + days.astype("timedelta64[D]")).astype("datetime64[us]"),
            "amount": amount,
        }
    )


def write_chunked(path: Path, n_rows: int, chunk: int = 5_000_000, seed: int = 1) -> Path:
    """Write n_rows transactions into one Parquet file, `chunk` rows at a time (one chunk in
    memory at a time, row groups of 1M rows). Customers (~n_rows/3.3 of them, skewed activity)
    recur across chunks."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    n_customers = int(n_rows / 3.3)
    written, k = 0, 0
    writer = None
    while written < n_rows:
        m = min(chunk, n_rows - written)
        # skewed customer activity: a mix of uniform ids and a heavy-buyer Zipf tail
        ids = np.where(
            rng.random(m) < 0.8,
            rng.integers(0, n_customers, m),
            np.minimum(rng.zipf(1.3, m), n_customers) - 1,
        )
        days = rng.integers(0, 730, m)
        table = pa.table(
            {
                "customer_id": ids.astype(np.int64),
                "date": (START + days.astype("timedelta64[D]")).astype("datetime64[us]"),
                "amount": np.round(rng.gamma(2.0, 25.0, m), 2),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path / "transactions.parquet", table.schema)
        writer.write_table(table, row_group_size=1_000_000)
        written += m
        k += 1
        del table, ids, days
    if writer is not None:
        writer.close()
    return path


# ------------------------------------------------------------------------------------------
# measurement in a fresh process
# ------------------------------------------------------------------------------------------


class PeakRSS:
    """Poll this process' RSS in a background thread; `.peak` is the max seen (bytes)."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def child(kind: str, source: str, out: str) -> None:
    """Run one contender and print a JSON line with its figures."""
    import psutil

    proc = psutil.Process()
    if kind == "parquet-glob":
        from custvalue.summary import rfm_summary

        before = proc.memory_info().rss
        with PeakRSS() as peak:
            t, c = time.perf_counter(), time.process_time()
            res = rfm_summary(source, freq="D", memory_limit=os.environ.get("BENCH_MEMORY_LIMIT"))
            wall, cpu = time.perf_counter() - t, time.process_time() - c
        n_rows = None
    else:
        tx = pd.read_parquet(source)
        n_rows = len(tx)
        if kind == "custvalue":
            from custvalue.summary import rfm_summary

            def run() -> pd.DataFrame:
                return rfm_summary(tx, freq="D")
        else:
            from lifetimes.utils import summary_data_from_transaction_data

            def run() -> pd.DataFrame:
                return summary_data_from_transaction_data(
                    tx, "customer_id", "date", monetary_value_col="amount", freq="D"
                )

        before = proc.memory_info().rss
        with PeakRSS() as peak:
            t, c = time.perf_counter(), time.process_time()
            res = run()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if out:
        res[["frequency", "recency", "T", "monetary_value"]].to_parquet(out)
    print(
        json.dumps(
            {
                "kind": kind,
                "rows": n_rows,
                "customers": len(res),
                "wall_s": wall,
                "cpu_s": cpu,  # user + system time of all threads of the process
                "rss_before_mb": before / 2**20,
                "peak_rss_mb": peak.peak / 2**20,
                "peak_increase_mb": (peak.peak - before) / 2**20,
                "ru_maxrss_mb": maxrss / 2**20,
            }
        )
    )


def run_child(kind: str, source: Path, out: Path | None, memory_limit: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "_child", kind, str(source), str(out or "")]
    env = dict(os.environ)
    if memory_limit:
        env["BENCH_MEMORY_LIMIT"] = memory_limit
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine() -> str:
    import duckdb
    import lifetimes
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"Python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"duckdb {duckdb.__version__}, lifetimes {lifetimes.__version__}"
    )


def bench_a(n_customers: int, repeat: int = 3) -> list[dict]:
    WORK.mkdir(exist_ok=True)
    path = WORK / f"tx_{n_customers}.parquet"
    t = time.perf_counter()
    tx = simulate_bgnbd(n_customers)
    tx.to_parquet(path, index=False)
    print(
        f"# (a) generated {len(tx):,} transactions of {tx.customer_id.nunique():,} customers "
        f"in {time.perf_counter() - t:.1f}s -> {path}",
        flush=True,
    )
    del tx
    runs: dict[str, list[dict]] = {"custvalue": [], "lifetimes": []}
    outs = {k: WORK / f"out_{k}.parquet" for k in runs}
    # interleaved (ABBA...) so that both see the same background load on a shared machine
    order = [("custvalue", "lifetimes"), ("lifetimes", "custvalue")]
    for i in range(repeat):
        for kind in order[i % 2]:
            runs[kind].append(run_child(kind, path, outs[kind] if i == 0 else None))
            print(json.dumps(runs[kind][-1]), flush=True)
    ours, theirs = (pd.read_parquet(outs[k]) for k in ("custvalue", "lifetimes"))
    assert ours.index.equals(theirs.index), "customer index differs"
    for col in theirs.columns:
        np.testing.assert_allclose(ours[col], theirs[col], rtol=1e-9, atol=1e-9, err_msg=col)
    print("# (a) outputs identical (rtol 1e-9) column by column", flush=True)
    return [_median(v) for v in runs.values()]


def _median(runs: list[dict]) -> dict:
    """Median of each figure over repeated runs (plus the fastest wall time)."""
    out = dict(runs[0])
    for key in ("wall_s", "cpu_s", "rss_before_mb", "peak_rss_mb", "peak_increase_mb"):
        out[key] = float(np.median([r[key] for r in runs]))
    out["wall_min_s"] = min(r["wall_s"] for r in runs)
    out["n_runs"] = len(runs)
    return out


def bench_b(n_rows: int, reuse: bool = False, memory_limit: str | None = None) -> list[dict]:
    path = WORK / "big"
    t = time.perf_counter()
    if not (reuse and any(path.glob("*.parquet")) and _rows_in(path) == n_rows):
        write_chunked(path, n_rows)
    size = sum(f.stat().st_size for f in path.glob("*.parquet"))
    print(
        f"# (b) {n_rows:,} transactions in {len(list(path.glob('*.parquet')))} files "
        f"({size / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    res = run_child("parquet-glob", path / "*.parquet", None, memory_limit)
    res["kind"] += f" (memory_limit={memory_limit or 'default: half of RAM'})"
    res["rows"] = n_rows
    res["parquet_gib"] = size / 2**30
    print(json.dumps(res), flush=True)
    return [res]


def _rows_in(path: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in path.glob("*.parquet"))


def table(results: list[dict]) -> str:
    lines = [
        "| contender | rows | customers | runs | wall time (s), median [min] | CPU time (s) "
        "| RSS before (MiB) | peak RSS (MiB) | peak increase (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows = f"{r['rows']:,}" if r.get("rows") else "-"
        lines.append(
            f"| {r['kind']} | {rows} | {r['customers']:,} | {r.get('n_runs', 1)} | "
            f"{r['wall_s']:.2f} [{r.get('wall_min_s', r['wall_s']):.2f}] | {r['cpu_s']:.2f} | "
            f"{r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['peak_increase_mb']:.0f} |"
        )
    return "\n".join(lines)


def once(kind: str, source: str, out: str = "") -> None:
    """One contender as a whole command, for a whole-process timer run beside the other:
    read the Parquet file into pandas, summarise it daily, print the summary call's own time
    (and write frequency/recency/T/monetary_value to ``out`` for the comparison)."""
    tx = pd.read_parquet(source)
    if kind == "custvalue":
        from custvalue.summary import rfm_summary

        t = time.perf_counter()
        res = rfm_summary(tx, freq="D")
    else:
        from lifetimes.utils import summary_data_from_transaction_data

        t = time.perf_counter()
        res = summary_data_from_transaction_data(
            tx, "customer_id", "date", monetary_value_col="amount", freq="D"
        )
    print(f"{kind} summary call {time.perf_counter() - t:.3f} s, {len(res):,} customers", flush=True)
    if out:
        res[["frequency", "recency", "T", "monetary_value"]].to_parquet(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(*sys.argv[2:5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "once":  # once custvalue|lifetimes PATH [OUT]
        once(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", choices=["a", "b", "all"])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="(a): runs per contender")
    parser.add_argument(
        "--reuse", action="store_true", help="(b): keep existing Parquet files of --rows rows"
    )
    parser.add_argument(
        "--memory-limit",
        action="append",
        help="(b): DuckDB memory limit such as 2GB or 'default'; repeat to run (b) once per limit",
    )
    args = parser.parse_args()
    print(f"# machine: {machine()}", flush=True)
    results = []
    if args.which in ("a", "all"):
        results += bench_a(args.customers, args.repeat)
    if args.which in ("b", "all"):
        limits = args.memory_limit or ["default"]
        for i, limit in enumerate(limits):
            results += bench_b(
                args.rows,
                reuse=args.reuse or i > 0,
                memory_limit=None if limit == "default" else limit,
            )
    print(table(results))
    a = {r["kind"]: r for r in results}
    if "custvalue" in a and "lifetimes" in a:
        ours, theirs = a["custvalue"], a["lifetimes"]
        print(
            f"\nspeed-up (median wall) {theirs['wall_s'] / ours['wall_s']:.1f}x, "
            f"(CPU time) {theirs['cpu_s'] / ours['cpu_s']:.1f}x; peak-increase ratio "
            f"{theirs['peak_increase_mb'] / max(ours['peak_increase_mb'], 1):.1f}x"
        )


if __name__ == "__main__":
    main()
