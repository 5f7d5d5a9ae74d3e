"""Randomised designs: intention-to-treat with CUPED, sample-ratio check, power, IV.

* CUPED (Deng, Xu, Kohavi & Walker 2013, "Improving the sensitivity of online controlled
  experiments by utilizing pre-experiment data", WSDM): ``Y_adj = Y - theta (X - mean X)`` with
  ``theta = cov(Y, X) / var(X)``; the ITT is the difference of adjusted means, here computed as
  the regression ``Y ~ Z + (X - mean X)`` (Lin 2013's fully interacted version is not needed
  with a pooled theta) with HC1 robust standard errors (MacKinnon & White 1985).
* Sample-ratio mismatch: Pearson chi-squared test of the group sizes against the planned
  share (Fabijan et al. 2019, "Diagnosing sample ratio mismatch", KDD).
* Minimum detectable effect at 80% power and 5% two-sided size: ``(z_0.975 + z_0.8) * SE``.
* Effect of actually responding: Wald / 2SLS with the assignment as instrument, ``ITT /
  (P(take-up | Z=1) - P(take-up | Z=0))`` (Imbens & Angrist 1994), influence-function SE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["ExperimentResult", "itt_cuped"]

_Z = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class ExperimentResult:
    """ITT and its companions (per customer and period)."""

    itt: float
    itt_se: float
    ratio: float
    ratio_se: float
    unadjusted: float
    unadjusted_se: float
    control_mean: float
    theta: float
    variance_reduction: float
    n_treatment: int
    n_control: int
    srm_p: float
    planned_share: float
    mde: float
    power_at_estimate: float
    take_up_treatment: float
    take_up_control: float
    late: float
    late_se: float


def _ols_hc1(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and HC1 covariance."""
    n, k = design.shape
    xtx_inv = np.linalg.pinv(design.T @ design)
    beta = xtx_inv @ design.T @ y
    e = y - design @ beta
    meat = (design * (e ** 2)[:, None]).T @ design
    cov = xtx_inv @ meat @ xtx_inv * n / max(n - k, 1)
    return beta, cov


def itt_cuped(y: np.ndarray, z: np.ndarray, x: np.ndarray | None, take_up: np.ndarray,
              planned_share: float = 0.5) -> ExperimentResult:
    """Intention-to-treat effect with CUPED adjustment, SRM check, power and the IV effect.

    Parameters
    ----------
    y : array
        Outcome per customer (mean per period after the treatment date).
    z : array of 0/1
        Assignment (1 = treatment group).
    x : array, optional
        Pre-period covariate (mean per period before the treatment date).
    take_up : array of 0/1
        Whether the customer actually received / responded to the treatment.
    planned_share : float
        Planned treatment share for the sample-ratio check.
    """
    z = z.astype(np.float64)
    n = y.size
    n1 = int(z.sum())
    n0 = n - n1
    ones = np.ones(n)
    b_u, c_u = _ols_hc1(np.column_stack([ones, z]), y)
    if x is not None and np.ptp(x) > 0:
        xc = x - x.mean()
        b, c = _ols_hc1(np.column_stack([ones, z, xc]), y)
        theta = float(b[2])
    else:
        b, c, theta = b_u, c_u, 0.0
    itt, se = float(b[1]), float(np.sqrt(c[1, 1]))
    control_mean = float(y[z == 0].mean())
    # ratio: ITT / control mean (delta method, control mean's own variance included)
    var_c = float(y[z == 0].var(ddof=1) / max(n0, 1))
    ratio = itt / control_mean if control_mean > 0 else float("nan")
    ratio_se = (float(np.sqrt(se ** 2 / control_mean ** 2 + itt ** 2 * var_c / control_mean ** 4))
                if control_mean > 0 else float("nan"))
    expected = np.array([planned_share * n, (1 - planned_share) * n])
    srm_p = float(stats.chisquare([n1, n0], expected).pvalue)
    z80 = float(stats.norm.ppf(0.8))
    mde = (_Z + z80) * se
    power = float(stats.norm.sf(_Z - abs(itt) / se) + stats.norm.cdf(-_Z - abs(itt) / se)) \
        if se > 0 else float("nan")
    t1 = float(take_up[z == 1].mean()) if n1 else float("nan")
    t0 = float(take_up[z == 0].mean()) if n0 else float("nan")
    comp = t1 - t0
    if comp > 0:
        late = itt / comp
        # influence functions of the two differences (unadjusted Wald estimator)
        e1 = np.where(z == 1, (y - y[z == 1].mean()) / n1, -(y - y[z == 0].mean()) / n0)
        d1 = np.where(z == 1, (take_up - t1) / n1, -(take_up - t0) / n0)
        wald = float(b_u[1]) / comp
        late_se = float(np.sqrt(np.sum(((e1 - wald * d1) / comp) ** 2)))
        late_se *= se / float(np.sqrt(c_u[1, 1])) if c_u[1, 1] > 0 else 1.0  # CUPED gain
    else:
        late, late_se = float("nan"), float("nan")
    return ExperimentResult(
        itt=itt, itt_se=se, ratio=ratio, ratio_se=ratio_se,
        unadjusted=float(b_u[1]), unadjusted_se=float(np.sqrt(c_u[1, 1])),
        control_mean=control_mean, theta=theta,
        variance_reduction=float(1 - c[1, 1] / c_u[1, 1]) if c_u[1, 1] > 0 else 0.0,
        n_treatment=n1, n_control=n0, srm_p=srm_p, planned_share=planned_share, mde=float(mde),
        power_at_estimate=power, take_up_treatment=t1, take_up_control=t0,
        late=float(late), late_se=late_se,
    )
