"""custvalue: customer value from transaction logs.

Load and validate transactions, summarise customers, fit probabilistic lifetime and retention
models, value customers with intervals, and produce shareable reports.

>>> import custvalue as cv
>>> tx, quality = cv.load_transactions("orders.csv", amount_col="Quantity * UnitPrice")
>>> rfm = cv.rfm_summary(tx, freq="W")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> submodule; resolved on first access so `import custvalue` stays fast.
_LAZY: dict[str, str] = {
    "load_transactions": "data",
    "DataQuality": "data",
    "rfm_summary": "summary",
    "calibration_holdout": "summary",
    "cohort_table": "summary",
    "load_cdnow": "datasets",
    "load_donations": "datasets",
    "simulate": "datasets",
    "subscriptions": "summary",
    "BetaGeoModel": "models",
    "ModifiedBetaGeoModel": "models",
    "ParetoNBDModel": "models",
    "DynamicParetoNBDModel": "models",
    "GammaGammaModel": "models",
    "BetaGeoBetaBinomModel": "models",
    "ShiftedBetaGeoModel": "models",
    "load_model": "models",
    "recommend": "models",
    "customer_lifetime_value": "value",
    "CLVResult": "value",
    "clv_interval_delta": "value",
    "clv_interval_sampling": "value",
    "heuristic_ltv": "value",
    "holdout_scorecard": "evaluation",
    "compare_models": "evaluation",
    "tracking": "evaluation",
    "kaplan_meier": "survival",
    "cox_ph": "survival",
    "KaplanMeier": "survival",
    "CoxPH": "survival",
    "rfm_segments": "segments",
    "value_tiers": "segments",
    "select": "segments",
    "export_list": "segments",
}
_SUBMODULES = (
    "data",
    "summary",
    "datasets",
    "models",
    "value",
    "evaluation",
    "survival",
    "segments",
    "programs",
    "plots",
    "reports",
    "value_report",
    "errors",
)

__all__ = [*_LAZY, *_SUBMODULES, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'custvalue' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
