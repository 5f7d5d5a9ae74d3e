"""Programme and campaign effects: did the club, the win-back campaign or the promotion pay off?

:func:`estimate` takes transactions and a treatment table and returns a
:class:`ProgramEffect`: the average effect on the treated customers per period (``att``,
level and ratio, 95% intervals), the naive member vs non-member gap beside it (``naive``),
every estimator that was run (``estimators``), the event study and its pre-trend test, and
falsification, balance and economics tables. The design decides the estimator:

* randomised (a holdout control group): ITT with CUPED, HC1 intervals, sample-ratio check,
  power and minimum detectable effect, the effect of responding (assignment as instrument);
* staggered opt-in: Callaway & Sant'Anna (2021) group-time effects against not-yet-treated
  customers, doubly robust in pre-period behaviour (Sant'Anna & Zhao 2020), with the
  two-stage imputation estimator beside it and TWFE as a labelled benchmark;
* matched cohort (everyone joined in one period): doubly robust DiD against never-treated
  customers with balance and overlap diagnostics.

:func:`retention` estimates the programme's effect on cancellation (subscriptions) with a Cox
model in which membership is a time-varying covariate (start-stop rows), never membership at
baseline, with customer-clustered robust errors (Lin & Wei 1989). :func:`clv_effect` projects
the effect beyond the observation window (the programme's effect on CLV,
``ProgramEffect.clv``). Falsification: placebo joining dates, the pre-trend test and a
placebo outcome (``placebo_events=``).

:func:`dynamic_effect` gives a model-based second view: membership as a time-varying covariate
of the Pareto/NBD (Bachmann, Meierer & Näf 2021), with separate multiplicative effects on the
purchase rate and on dropout.
"""

from __future__ import annotations

from .core import DESIGNS, estimate
from .did import callaway_santanna, dr_did
from .model_based import DynamicEffect, dynamic_effect, membership_covariates
from .panel import OUTCOMES, Panel, build_panel
from .result import ProgramEffect
from .retention import retention
from .value import clv_effect

__all__ = ["DESIGNS", "OUTCOMES", "DynamicEffect", "Panel", "ProgramEffect", "build_panel",
           "callaway_santanna", "clv_effect", "dr_did", "dynamic_effect", "estimate",
           "membership_covariates", "retention"]
