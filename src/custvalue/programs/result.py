"""The :class:`ProgramEffect` result: text and HTML views of a programme-effect analysis."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ProgramEffect", "effect_frame"]

_Z = float(stats.norm.ppf(0.975))


def effect_frame(level: tuple[float, float], ratio: tuple[float, float]) -> pd.DataFrame:
    """``att``-shaped frame: index ``["level", "ratio"]``, columns ``estimate, std_error,
    lower, upper`` (95% normal interval)."""
    rows = []
    for est, se in (level, ratio):
        rows.append({"estimate": est, "std_error": se, "lower": est - _Z * se,
                     "upper": est + _Z * se})
    out = pd.DataFrame(rows, index=pd.Index(["level", "ratio"], name="scale"))
    return out.astype(np.float64)


def _f4(v: float) -> str:
    return f"{v:.4g}"


def _f6(v: float) -> str:
    return f"{v:.6g}"


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float | np.floating):
        return "nan" if not np.isfinite(x) else f"{x:.{digits}g}"
    return str(x)


@dataclass(frozen=True, repr=False)
class ProgramEffect:
    """Estimated effect of a programme or campaign.

    Attributes
    ----------
    design : {"randomised", "staggered", "matched"}
    design_reason : str
        Why this design (and estimator) was chosen.
    outcome, freq : str
        Outcome per customer and period, period length.
    att : pandas.DataFrame
        Index ``["level", "ratio"]``: ``level`` is the average effect per treated customer
        per period after joining, ``ratio`` the same relative to the treated customers'
        counterfactual mean; columns ``estimate, std_error, lower, upper`` (95%).
    naive : pandas.DataFrame
        Same shape: the naive member vs non-member gap (NOT an effect: self-selection).
    estimators : pandas.DataFrame
        Every estimator that was run (level scale), side by side, with a ``role`` column
        ("main", "check", "benchmark", "naive").
    event_study : pandas.DataFrame or None
        Effects by period relative to joining (``event_time``), with intervals.
    pretrend_p : float
        p-value of the joint test that all pre-joining effects are zero (NaN if none).
    att_gt : pandas.DataFrame or None
        Group-time effects.
    cohorts : pandas.DataFrame
        Treated customers by joining period.
    balance : pandas.DataFrame or None
        Standardised mean differences of the pre-period covariates (matched design).
    overlap : dict
        Propensity-score overlap diagnostics (matched design).
    falsification : pandas.DataFrame
        Placebo analyses (estimate, std_error, p_value).
    economics : pandas.DataFrame or None
        Incremental revenue and margin, cost and ROI with intervals.
    experiment : dict
        Randomised design: sample-ratio check, power, MDE, CUPED gain, effect of responding.
    segments : pandas.DataFrame or None
        Heterogeneity: the effect by segment of pre-programme activity.
    clv : pandas.DataFrame or None
        The programme's effect on customer lifetime value beyond the observation window:
        incremental purchases, revenue and margin over ``clv.attrs["horizon"]`` periods
        (:func:`custvalue.programs.value.clv_effect`, assumptions stated there), with
        intervals.
    n_treated, n_control : int
    warnings : list of str
        Problems found in the input that the analysis worked around.
    """

    design: str
    design_reason: str
    outcome: str
    freq: str
    att: pd.DataFrame
    naive: pd.DataFrame
    estimators: pd.DataFrame
    event_study: pd.DataFrame | None
    pretrend_p: float
    n_treated: int
    n_control: int
    att_gt: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None
    balance: pd.DataFrame | None = None
    overlap: dict[str, float] = field(default_factory=dict)
    falsification: pd.DataFrame | None = None
    economics: pd.DataFrame | None = None
    experiment: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    segments: pd.DataFrame | None = None
    clv: pd.DataFrame | None = None

    def summary(self) -> str:
        """Plain-text summary."""
        a = self.att
        lines = [
            f"Programme effect ({self.design} design) on {self.outcome} per customer and "
            f"period ({self.freq})",
            f"  why this design: {self.design_reason}",
            f"  treated customers: {self.n_treated:,}   comparison customers: {self.n_control:,}",
            "",
            "  ATT        estimate   std.err     95% interval",
        ]
        for name, frame in (("effect", a), ("naive gap", self.naive)):
            for scale in ("level", "ratio"):
                r = frame.loc[scale]
                lines.append(f"  {name + ' ' + scale:<18}{_fmt(r['estimate']):>10}"
                             f"{_fmt(r['std_error']):>10}   [{_fmt(r['lower'])}, "
                             f"{_fmt(r['upper'])}]")
        lines.append("  (the naive gap compares members with non-members: it includes "
                     "self-selection and is not an effect)")
        if np.isfinite(self.pretrend_p):
            lines.append(f"  pre-trend test p = {self.pretrend_p:.3g}")
        lines.append("")
        lines.append("  estimators:")
        for name, r in self.estimators.iterrows():
            lines.append(f"    {name:<34}{_fmt(r['estimate']):>10}{_fmt(r['std_error']):>10}"
                         f"   {r['role']}")
        if self.economics is not None:
            lines.append("")
            lines.append("  economics:")
            for name, r in self.economics.iterrows():
                lines.append(f"    {name:<34}{_fmt(r['estimate'], 6):>12}   "
                             f"[{_fmt(r['lower'], 6)}, {_fmt(r['upper'], 6)}]")
        if self.clv is not None:
            lines.append("")
            lines.append(f"  effect on CLV, {self.clv.index.name} (projection, BG/NBD):")
            for name, r in self.clv.iterrows():
                lines.append(f"    {name:<34}{_fmt(r['estimate'], 6):>12}   "
                             f"[{_fmt(r['lower'], 6)}, {_fmt(r['upper'], 6)}]")
        if self.warnings:
            lines.append("")
            lines.append("  warnings:")
            lines.extend(f"    - {w}" for w in self.warnings)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        r = self.att.loc["level"]
        return (f"ProgramEffect(design={self.design!r}, outcome={self.outcome!r}, "
                f"att={r['estimate']:.4g} [{r['lower']:.4g}, {r['upper']:.4g}], "
                f"n_treated={self.n_treated})")

    def _repr_html_(self) -> str:
        parts = [
            f"<div class='custvalue-program-effect'><h4>Programme effect: {html.escape(self.design)}"
            f" design, {html.escape(self.outcome)} per customer and period</h4>",
            f"<p>{html.escape(self.design_reason)}</p>",
            f"<p>{self.n_treated:,} treated customers, {self.n_control:,} comparison "
            "customers.</p>",
            "<h5>Effect on the treated</h5>", self.att.to_html(float_format=_f4),
            "<h5>Naive member vs non-member gap (not an effect: self-selection)</h5>",
            self.naive.to_html(float_format=_f4),
            "<h5>Estimators side by side</h5>", self.estimators.to_html(float_format=_f4),
        ]
        if np.isfinite(self.pretrend_p):
            parts.append(f"<p>Pre-trend test: p = {self.pretrend_p:.3g}.</p>")
        if self.segments is not None:
            parts += ["<h5>Effect by pre-programme activity</h5>",
                      self.segments.to_html(float_format=_f4)]
        if self.economics is not None:
            parts += ["<h5>Economics</h5>", self.economics.to_html(float_format=_f6)]
        if self.clv is not None:
            parts += [f"<h5>Effect on CLV, {html.escape(str(self.clv.index.name))} "
                      "(projection)</h5>", self.clv.to_html(float_format=_f6)]
        if self.warnings:
            parts.append("<h5>Warnings</h5><ul>"
                         + "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
                         + "</ul>")
        parts.append("</div>")
        return "".join(parts)
