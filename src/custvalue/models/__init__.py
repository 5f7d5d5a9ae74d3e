"""Probabilistic customer models: buy-till-you-die transaction models and spend models.

Every model subclasses :class:`custvalue.models.base.BaseModel` (fitting, standard errors,
``summary()``, ``from_params``, ``sample_params``, JSON ``save``/``load``).
"""

from __future__ import annotations

from .base import BaseModel, BoundaryFitWarning, ModelSummary, load_model

__all__ = ["BaseModel", "BoundaryFitWarning", "ModelSummary", "load_model"]
