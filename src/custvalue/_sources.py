"""Where transactions come from: the one place that names and opens data sources.

Both :mod:`custvalue.data` and :mod:`custvalue.summary` open sources through this module, and the
command line and the reports resolve bundled data set names through :func:`resolve_dataset`, so
a name that works in one place works in every other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = [
    "DATASET_NAMES",
    "BundledDataset",
    "bundled_dataset",
    "is_dataset_name",
    "resolve_dataset",
]


@dataclasses.dataclass(frozen=True)
class BundledDataset:
    """A data set shipped with the package (or its dependencies), usable wherever a path is."""

    name: str
    description: str
    loader: Callable[[int], pd.DataFrame]
    #: Columns besides customer_id/date/amount/order_id that are customer attributes.
    attributes: tuple[str, ...] = ()
    #: The order id column, where the data set has one.
    order_col: str | None = None


def _cdnow(kind: str) -> Callable[[int], pd.DataFrame]:
    def load(seed: int = 0) -> pd.DataFrame:
        from .datasets import load_cdnow

        return load_cdnow(kind)

    return load


def _simulated(seed: int = 0) -> pd.DataFrame:
    from .datasets import simulate

    return simulate(2000, seed=seed).transactions


_DATASETS: dict[str, BundledDataset] = {
    d.name: d
    for d in (
        BundledDataset(
            "cdnow-sample",
            "CDNOW sample: 6,919 transactions of 2,357 customers (Fader, Hardie & Lee 2005)",
            _cdnow("sample"),
        ),
        BundledDataset(
            "cdnow-master",
            "CDNOW master: 69,659 transactions of 23,570 customers (Fader, Hardie & Lee 2005)",
            _cdnow("master"),
        ),
        BundledDataset(
            "simulated",
            "2,000 simulated customers with regions, channels and categories (datasets.simulate)",
            _simulated,
            attributes=("region", "channel", "category"),
        ),
    )
}

#: Built-in data sources accepted wherever a transactions path is (CLI ``--data``, reports).
DATASET_NAMES: tuple[str, ...] = tuple(_DATASETS)

#: Spellings accepted for the canonical names (``cdnow_master``, ``CDNOW``...).
_ALIASES: dict[str, str] = {
    "cdnow": "cdnow-master",
    "cdnow_master": "cdnow-master",
    "cdnow_sample": "cdnow-sample",
}


def _canonical(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in _DATASETS else None


def is_dataset_name(name: Any) -> bool:
    """Whether ``name`` names a bundled data set (case and ``-``/``_`` spelling ignored)."""
    return _canonical(name) is not None


def bundled_dataset(name: str) -> BundledDataset:
    """The :class:`BundledDataset` called ``name``; ``KeyError`` listing the names otherwise."""
    key = _canonical(name)
    if key is None:
        raise KeyError(f"{name!r} is not a bundled data set; use one of {', '.join(DATASET_NAMES)}")
    return _DATASETS[key]


def resolve_dataset(name: str, *, seed: int = 0) -> pd.DataFrame:
    """Load the bundled data set ``name`` as a transactions frame.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES` (or an accepted alias such as ``cdnow``).
    seed : int
        Random seed, used by ``simulated`` only.
    """
    return bundled_dataset(name).loader(seed)
