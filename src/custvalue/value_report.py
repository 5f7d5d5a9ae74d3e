"""Deprecated location of the value report's analysis: use :mod:`custvalue.reports.value`.

Kept as a thin re-export so ``from custvalue import value_report`` keeps working.
"""

from __future__ import annotations

from .reports.value import (
    CANDIDATE_MODELS,
    LOST_THRESHOLD,
    SEGMENT_COLUMNS,
    ValueReport,
    analyse,
    value_by,
)

__all__ = [
    "CANDIDATE_MODELS",
    "LOST_THRESHOLD",
    "SEGMENT_COLUMNS",
    "ValueReport",
    "analyse",
    "value_by",
]
