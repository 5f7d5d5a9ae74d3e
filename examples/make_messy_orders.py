"""Write ``examples/messy_orders.csv``: a small, deliberately messy export made from CDNOW.

The file imitates a real shop export (the layout of the UCI "Online Retail" data): one line per
order line with ``InvoiceNo``, ``CustomerID``, ``InvoiceDate`` as day-first text with a time,
``Quantity`` and ``UnitPrice`` instead of an amount, ``Country``, and the usual problems:
cancellations (invoice numbers starting with ``C``, negative quantities), exact duplicate
lines, lines without a customer id, impossible dates and a ``2099`` placeholder date.

The purchases are the first 600 customers of lifetimes' CDNOW sample (Fader, Hardie & Lee
2005), so the models have real buying behaviour to fit. Run from the repository root::

    PYTHONPATH=src python examples/make_messy_orders.py

The output is deterministic (fixed seed); the committed CSV is what this script writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import custvalue as cv

OUT = Path(__file__).resolve().parent / "messy_orders.csv"


def messy_orders(n_customers: int = 600, seed: int = 15) -> pd.DataFrame:
    """The messy export as a DataFrame (see the module docstring for what is wrong with it)."""
    rng = np.random.default_rng(seed)
    raw = cv.load_cdnow("sample")
    raw = raw[raw["customer_id"] <= n_customers].reset_index(drop=True)
    quantity = raw["quantity"].clip(lower=1).to_numpy()
    lines = pd.DataFrame(
        {
            "InvoiceNo": [f"{536000 + i}" for i in range(len(raw))],
            "CustomerID": raw["customer_id"].astype(float) + 12000,
            "InvoiceDate": (
                raw["date"] + pd.to_timedelta(rng.integers(8 * 60, 20 * 60, len(raw)), "min")
            ).dt.strftime("%d/%m/%Y %H:%M"),
            "Quantity": quantity,
            "UnitPrice": np.round(raw["amount"].to_numpy() / quantity, 2),
            "Country": rng.choice(
                ["United Kingdom", "Germany", "France"], len(raw), p=[0.7, 0.2, 0.1]
            ),
        }
    )
    # cancellations: a C-prefixed invoice with the negative quantity, some days later
    ret = lines.sample(frac=0.04, random_state=seed).copy()
    ret["InvoiceNo"] = "C" + ret["InvoiceNo"]
    ret["Quantity"] = -ret["Quantity"]
    when = pd.to_datetime(ret["InvoiceDate"], format="%d/%m/%Y %H:%M")
    ret["InvoiceDate"] = (when + pd.Timedelta(days=3)).dt.strftime("%d/%m/%Y %H:%M")
    dups = lines.sample(12, random_state=seed + 1)  # the same line exported twice
    no_id = lines.sample(9, random_state=seed + 2).assign(CustomerID=np.nan)
    bad_dates = lines.sample(4, random_state=seed + 3).assign(InvoiceDate="31/02/1997 10:00")
    placeholder = lines.sample(3, random_state=seed + 4).assign(InvoiceDate="31/12/2099 00:00")
    out = pd.concat([lines, ret, dups, no_id, bad_dates, placeholder], ignore_index=True)
    order = np.argsort(pd.to_datetime(out["InvoiceDate"], format="%d/%m/%Y %H:%M",
                                      errors="coerce").fillna(pd.Timestamp("2100-01-01")),
                       kind="stable")
    return out.iloc[order].reset_index(drop=True)


if __name__ == "__main__":
    frame = messy_orders()
    frame.to_csv(OUT, index=False)
    print(f"wrote {len(frame):,} lines to {OUT}")
