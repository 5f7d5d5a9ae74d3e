"""Probabilistic customer models: buy-till-you-die transaction models and spend models.

Every model subclasses :class:`custvalue.models.base.BaseModel` (fitting, standard errors,
``summary()``, ``from_params``, ``sample_params``, JSON ``save``/``load``).
"""

from __future__ import annotations

from .base import BaseModel, BoundaryFitWarning, ModelSummary, check_data_unit, load_model
from .beta_geo import BetaGeoModel, ModifiedBetaGeoModel
from .bg_bb import BetaGeoBetaBinomModel
from .gamma_gamma import GammaGammaModel
from .pareto_nbd import ParetoNBDModel as ParetoNBDModel
from .pareto_nbd_dynamic import DynamicParetoNBDModel
from .recommend import Recommendation, recommend
from .shifted_beta_geo import ShiftedBetaGeoModel

__all__ = [
    "BaseModel",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "BoundaryFitWarning",
    "DynamicParetoNBDModel",
    "GammaGammaModel",
    "ModelSummary",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "Recommendation",
    "ShiftedBetaGeoModel",
    "check_data_unit",
    "load_model",
    "recommend",
]
