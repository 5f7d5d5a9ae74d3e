"""Which model fits my data? A small decision helper used by notebooks and reports.

The choice follows the classification of customer-base settings in Fader & Hardie (2009),
"Probability Models for Customer-Base Analysis", *Journal of Interactive Marketing* 23(1),
61-69, Figure 1: is the relationship **contractual** (customers tell you when they leave:
cancellations, subscription end dates) or **non-contractual** (they silently stop buying), and
can transactions happen at **any time** (continuous) or only at **discrete occasions** (yearly
fund drives, weekly events, billing periods)?

=================  ===========================================  =========================================
                   continuous time                               discrete time
=================  ===========================================  =========================================
non-contractual    Pareto/NBD, BG/NBD, MBG/NBD (+ Gamma-Gamma)   BG/BB (+ Gamma-Gamma)
contractual        Kaplan-Meier, log-rank, Cox PH (survival)     shifted-beta-geometric (sBG), DERL value
=================  ===========================================  =========================================
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError

__all__ = ["ModelChoice", "Recommendation", "recommend"]

_DISCRETE_MAX_OCCASIONS = 60  # at most this many distinct purchase occasions -> discrete time


@dataclass(frozen=True)
class ModelChoice:
    """One suggested (or ruled-out) model with the reason."""

    name: str
    model: str
    role: str
    reason: str


@dataclass
class Recommendation:
    """Result of :func:`recommend`.

    Attributes
    ----------
    contractual : bool
        Customers' departures are observed (cancellations / end dates).
    discrete : bool
        Transactions (or renewals) happen at discrete occasions.
    models : list of ModelChoice
        Models that apply, best first, with the reason.
    not_suitable : list of ModelChoice
        Models that do not apply here, with the reason.
    evidence : list of str
        What the decision was based on (arguments given, columns and values inspected).
    """

    contractual: bool
    discrete: bool
    models: list[ModelChoice]
    not_suitable: list[ModelChoice] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)

    @property
    def setting(self) -> str:
        return (
            f"{'contractual' if self.contractual else 'non-contractual'}, "
            f"{'discrete' if self.discrete else 'continuous'}-time"
        )

    @property
    def primary(self) -> ModelChoice:
        """The first suggestion."""
        return self.models[0]

    @property
    def text(self) -> str:
        """A few sentences for a report."""
        lines = [f"Setting: {self.setting}."]
        lines += [f"Based on: {e}." for e in self.evidence]
        lines.append("Models that apply:")
        lines += [f"  - {m.name} ({m.model}): {m.reason}" for m in self.models]
        if self.not_suitable:
            lines.append("Not suitable here:")
            lines += [f"  - {m.name}: {m.reason}" for m in self.not_suitable]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """Suggested and ruled-out models as a table (``suitable``, ``role``, ``model``, ``reason``)."""
        rows = [(m.name, True, m.role, m.model, m.reason) for m in self.models]
        rows += [(m.name, False, m.role, m.model, m.reason) for m in self.not_suitable]
        return pd.DataFrame(rows, columns=["name", "suitable", "role", "model", "reason"]).set_index("name")

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        ev = "".join(f"<li>{html.escape(e)}</li>" for e in self.evidence)
        ok = "".join(
            f"<li><b>{html.escape(m.name)}</b> (<code>{html.escape(m.model)}</code>): "
            f"{html.escape(m.reason)}</li>"
            for m in self.models
        )
        no = "".join(
            f"<li>{html.escape(m.name)}: {html.escape(m.reason)}</li>" for m in self.not_suitable
        )
        return (
            f"<div><p><b>Setting:</b> {html.escape(self.setting)}</p>"
            f"<p>Based on:</p><ul>{ev}</ul><p>Models that apply:</p><ol>{ok}</ol>"
            + (f"<p>Not suitable here:</p><ul>{no}</ul>" if no else "")
            + "</div>"
        )


# ---------------------------------------------------------------------------------------------
# inspection
# ---------------------------------------------------------------------------------------------
def _is_whole(values: pd.Series) -> bool:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size) and bool(np.all(v == np.round(v)))


def _inspect(data: pd.DataFrame) -> dict[str, Any]:
    cols = set(data.columns)
    found: dict[str, Any] = {"evidence": []}
    ev = found["evidence"]
    # contractual: renewal tables and subscription records
    if "churned" in cols:
        found["contractual"] = True
        ev.append("a 'churned' column (observed cancellations)")
        if "T" in cols and _is_whole(data["T"]):
            found["discrete"] = True
            ev.append("whole-number 'T' renewal periods")
        elif "duration" in cols and not _is_whole(data["duration"]):
            found["discrete"] = False
            ev.append("fractional 'duration' values (tenure measured in continuous time)")
        return found
    if {"start", "end"} <= cols:
        found["contractual"] = True
        ev.append("'start' and 'end' date columns (subscription records; an end date is a cancellation)")
        found["records"] = True
        return found
    # non-contractual summaries
    if {"frequency", "recency", "T"} <= cols:
        found["contractual"] = False
        ev.append("frequency / recency / T columns (repeat-purchase summary, no cancellations)")
        freq = data.attrs.get("freq")
        whole = all(_is_whole(data[c]) for c in ("frequency", "recency", "T"))
        max_T = float(pd.to_numeric(data["T"], errors="coerce").max())
        if freq is not None:
            found["discrete"] = False
            ev.append(f"summary built in calendar time (attrs['freq'] = {freq!r})")
        elif whole and max_T <= _DISCRETE_MAX_OCCASIONS and (data["frequency"] <= data["T"]).all():
            found["discrete"] = True
            ev.append(
                f"whole-number counts with at most {max_T:g} opportunities and frequency <= T "
                "(one transaction per occasion)"
            )
        else:
            found["discrete"] = False
            ev.append("recency / T are calendar ages, not counts of occasions")
        if "monetary_value" in cols:
            found["spend"] = True
            rep = data.loc[pd.to_numeric(data["frequency"], errors="coerce") > 0]
            if len(rep) > 10:
                r = float(np.corrcoef(rep["frequency"].astype(float), rep["monetary_value"].astype(float))[0, 1])
                found["spend_corr"] = r
        return found
    # transaction log
    if {"customer_id", "date"} <= cols:
        found["contractual"] = False
        dates = pd.to_datetime(data["date"])
        n_occ = int(dates.dt.normalize().nunique())
        per = data.assign(_d=dates.dt.normalize()).groupby(["customer_id", "_d"]).size()
        if n_occ <= _DISCRETE_MAX_OCCASIONS and int(per.max()) == 1:
            found["discrete"] = True
            ev.append(
                f"transactions fall on only {n_occ} distinct dates, at most one per customer and "
                "date (discrete transaction opportunities)"
            )
        else:
            found["discrete"] = False
            ev.append(f"transactions on {n_occ} distinct dates (customers can buy at any time)")
        ev.append("a transaction log without cancellations (non-contractual)")
        if "amount" in cols:
            found["spend"] = True
        return found
    return found


_WORDS_CONTRACT = ("subscription", "contract", "membership", "renewal", "cancel", "churn", "policy")
_WORDS_DISCRETE = ("discrete", "yearly", "annual", "event", "drive", "occasion", "billing", "monthly", "weekly")
_WORDS_CONTINUOUS = ("continuous", "any time", "anytime", "retail", "e-commerce", "ecommerce", "store", "shop")


def _from_text(text: str) -> dict[str, Any]:
    low = text.lower()
    found: dict[str, Any] = {"evidence": [f"the description {text!r}"]}
    if any(w in low for w in ("non-contract", "noncontract")):
        found["contractual"] = False
    elif any(w in low for w in _WORDS_CONTRACT):
        found["contractual"] = True
    elif any(w in low for w in (*_WORDS_CONTINUOUS, "donation", "donor", "purchase", "order")):
        # shoppers and donors leave silently
        found["contractual"] = False
    if any(w in low for w in _WORDS_CONTINUOUS):
        found["discrete"] = False
    elif any(w in low for w in _WORDS_DISCRETE):
        found["discrete"] = True
    if any(w in low for w in ("spend", "amount", "revenue", "value", "order value")):
        found["spend"] = True
    return found


# ---------------------------------------------------------------------------------------------
# the decision
# ---------------------------------------------------------------------------------------------
def recommend(
    data_description: Any = None,
    *,
    contractual: bool | None = None,
    discrete: bool | None = None,
    spend: bool | None = None,
    covariates: bool | None = None,
) -> Recommendation:
    """Say which custvalue models apply to a data set, and why.

    Parameters
    ----------
    data_description : DataFrame, dict or str, optional
        What to decide on. A DataFrame is inspected: a renewal table (``T``, ``churned``),
        subscription records (``start``, ``end``), a repeat-purchase summary (``frequency``,
        ``recency``, ``T``) or a transaction log (``customer_id``, ``date``). A dict may hold
        the keys ``contractual``, ``discrete``, ``spend``, ``covariates``. A string is read for
        key words ("subscription", "yearly donations", "retail"...).
    contractual, discrete, spend, covariates : bool, optional
        Override or supply the facts directly: departures observed? transactions only at
        discrete occasions? monetary values to model? customer attributes to relate to churn?

    Returns
    -------
    Recommendation
        ``models`` (best first, each with a reason), ``not_suitable`` and a ``text`` summary
        that reports can print.

    Raises
    ------
    ParameterError
        When neither the description nor the arguments say whether the setting is
        contractual.

    Examples
    --------
    >>> recommend(contractual=True, discrete=True).primary.name
    'shifted-beta-geometric (sBG)'
    """
    facts: dict[str, Any] = {"evidence": []}
    if isinstance(data_description, pd.DataFrame):
        facts = _inspect(data_description)
    elif isinstance(data_description, Mapping):
        unknown = set(data_description) - {"contractual", "discrete", "spend", "covariates"}
        if unknown:
            raise ParameterError(
                f"unknown keys {sorted(unknown)} in the description; use contractual, discrete, "
                "spend, covariates"
            )
        facts.update({k: bool(v) for k, v in data_description.items()})
        facts["evidence"] = [f"the description {dict(data_description)}"]
    elif isinstance(data_description, str):
        facts = _from_text(data_description)
    elif data_description is not None:
        raise ParameterError(
            "data_description must be a DataFrame, a dict or a string; got "
            f"{type(data_description).__name__}"
        )
    for key, val in (("contractual", contractual), ("discrete", discrete), ("spend", spend),
                     ("covariates", covariates)):
        if val is not None:
            facts[key] = bool(val)
            facts["evidence"].append(f"{key}={bool(val)} given")
    if "contractual" not in facts:
        raise ParameterError(
            "cannot tell whether the setting is contractual: pass contractual=True (customers "
            "cancel explicitly: subscriptions, memberships, contracts) or contractual=False "
            "(customers silently stop buying), or a DataFrame to inspect"
        )
    is_contract = bool(facts["contractual"])
    records = bool(facts.get("records", False))
    if "discrete" not in facts:
        # subscription records are billed per period: sBG after binning, survival otherwise
        facts["discrete"] = is_contract
        facts["evidence"].append(
            "discrete/continuous not stated: assumed "
            + ("discrete billing periods" if is_contract else "purchases at any time")
        )
    is_discrete = bool(facts["discrete"])
    has_spend = bool(facts.get("spend", False))
    has_cov = bool(facts.get("covariates", False))

    ok: list[ModelChoice] = []
    no: list[ModelChoice] = []
    sbg = ModelChoice(
        "shifted-beta-geometric (sBG)",
        "custvalue.models.ShiftedBetaGeoModel",
        "retention",
        "customers renew or cancel once per period and differ in their cancellation probability; "
        "projects retention (rates rise as the least loyal leave) and values each active "
        "customer by the discounted expected residual lifetime (Fader & Hardie 2007, 2010)",
    )
    km = ModelChoice(
        "Kaplan-Meier retention curves + log-rank test",
        "custvalue.survival.kaplan_meier / logrank_test",
        "survival",
        "non-parametric retention by segment with confidence bands, exact cancellation dates, "
        "no distributional assumption; the log-rank test says whether segments differ",
    )
    cox = ModelChoice(
        "Cox proportional hazards",
        "custvalue.survival.cox_ph",
        "survival",
        "relates cancellation to customer attributes (plan, channel, price), including ones "
        "that change over time (start-stop rows from custvalue.survival.start_stop)",
    )
    bgbb = ModelChoice(
        "BG/BB",
        "custvalue.models.BetaGeoBetaBinomModel",
        "transactions",
        "one transaction opportunity per occasion (e.g. yearly drive): the beta-geometric/"
        "beta-Bernoulli model (Fader, Hardie & Shang 2010) gives P(alive), expected "
        "transactions and DERT",
    )
    pnbd = ModelChoice(
        "Pareto/NBD",
        "custvalue.models.ParetoNBDModel",
        "transactions",
        "purchases at any time and unobserved dropout at any time (Schmittlein, Morrison & "
        "Colombo 1987); the reference model for non-contractual continuous settings",
    )
    bgnbd = ModelChoice(
        "BG/NBD",
        "custvalue.models.BetaGeoModel",
        "transactions",
        "like Pareto/NBD but dropout only right after a purchase (Fader, Hardie & Lee 2005); "
        "fast, usually fits as well - compare the two on a holdout period",
    )
    mbg = ModelChoice(
        "MBG/NBD",
        "custvalue.models.ModifiedBetaGeoModel",
        "transactions",
        "BG/NBD variant that lets customers drop out after the first purchase too (Batislam et "
        "al. 2007); better when many customers never return",
    )
    gg = ModelChoice(
        "Gamma-Gamma spend",
        "custvalue.models.GammaGammaModel",
        "spend",
        "average order value per customer (Fader, Hardie & Lee 2005b), combined with the "
        "transaction model for CLV",
    )
    if is_contract:
        if is_discrete:
            ok.append(sbg)
            ok.append(km)
            if has_cov:
                ok.append(cox)
            if records:
                facts["evidence"].append(
                    "subscription records: build the renewal table with custvalue.summary.subscriptions"
                )
        else:
            ok.append(km)
            ok.append(cox)
            ok.append(
                ModelChoice(
                    sbg.name,
                    sbg.model,
                    sbg.role,
                    "after grouping tenure into billing periods (custvalue.summary.subscriptions), "
                    "for projection and residual value: " + sbg.reason,
                )
            )
        for m in (pnbd, bgnbd, mbg, bgbb):
            no.append(
                ModelChoice(
                    m.name, m.model, m.role,
                    "infers unobserved dropout from purchase gaps; here cancellations are observed, "
                    "so a contractual model uses the data directly",
                )
            )
    else:
        if is_discrete:
            ok.append(bgbb)
            no.append(
                ModelChoice(
                    "Pareto/NBD, BG/NBD, MBG/NBD", "custvalue.models", "transactions",
                    "assume purchases can happen at any time; with a handful of fixed occasions "
                    "the discrete-time BG/BB is the matching model (continuous models are only "
                    "an approximation when occasions are many)",
                )
            )
        else:
            ok.extend([pnbd, bgnbd, mbg])
            no.append(
                ModelChoice(
                    bgbb.name, bgbb.model, bgbb.role,
                    "needs discrete transaction opportunities; purchases here can happen at any time",
                )
            )
        for m in (sbg, km, cox):
            no.append(
                ModelChoice(
                    m.name, m.model, m.role,
                    "needs observed cancellations; in a non-contractual setting the end of a "
                    "relationship is never seen",
                )
            )
        if has_spend:
            corr = facts.get("spend_corr")
            reason = gg.reason
            if corr is not None and abs(corr) > 0.3:
                reason += (
                    f"; caution: frequency and average spend are correlated (r = {corr:.2f}), "
                    "which violates the Gamma-Gamma independence assumption"
                )
            elif corr is not None:
                reason += f"; frequency and average spend are nearly independent (r = {corr:.2f}), as it assumes"
            ok.append(ModelChoice(gg.name, gg.model, gg.role, reason))
    return Recommendation(
        contractual=is_contract,
        discrete=is_discrete,
        models=ok,
        not_suitable=no,
        evidence=list(facts["evidence"]),
    )
