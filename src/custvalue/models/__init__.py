"""Probabilistic customer models: buy-till-you-die transaction models and spend models.

Every model subclasses :class:`custvalue.models.base.BaseModel` (fitting, standard errors,
``summary()``, ``from_params``, ``sample_params``, JSON ``save``/``load``).
"""

from __future__ import annotations

from .base import BaseModel, BoundaryFitWarning, ModelSummary, load_model
from .bg_bb import BetaGeoBetaBinomModel
from .recommend import Recommendation, recommend
from .shifted_beta_geo import ShiftedBetaGeoModel

__all__ = [
    "BaseModel",
    "BetaGeoBetaBinomModel",
    "BoundaryFitWarning",
    "ModelSummary",
    "Recommendation",
    "ShiftedBetaGeoModel",
    "load_model",
    "recommend",
]
