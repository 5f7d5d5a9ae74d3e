"""Typed protocols through which the value layer talks to models.

:mod:`custvalue.value` needs three roles — a transaction model, a spend model and a contractual
(subscription) model — and a few optional capabilities (P(alive), discounted residual
transactions, parameter sampling, a covariance for the delta method). Each is a
:func:`typing.runtime_checkable` :class:`typing.Protocol`, so any object with the right methods
works (the package's models, a user's own model, test doubles), and dispatch is an
``isinstance`` check instead of ``hasattr`` probes scattered through the code. The role
protocols describe methods only, so an unfitted model still has its role; whether it has
parameters (:class:`FittedModel`, ``params_`` not None) is checked separately.

A contractual model is recognised by its explicit class attribute ``contractual = True``
(``custvalue.models.base.BaseModel.contractual``) plus the :class:`ContractualModel` methods.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pandas as pd

__all__ = [
    "AliveModel",
    "ContractualModel",
    "CovarianceModel",
    "FittedModel",
    "PurchaseProbabilityModel",
    "ResidualTransactionsModel",
    "SampleableModel",
    "SpendModel",
    "TransactionModel",
    "is_contractual",
    "model_time_unit",
]


@runtime_checkable
class FittedModel(Protocol):
    """Anything with estimated parameters (``None`` until fitted)."""

    params_: Any


@runtime_checkable
class TransactionModel(Protocol):
    """Non-contractual purchase model (BG/NBD, MBG/NBD, Pareto/NBD, BG/BB).

    ``expected_purchases(data, t)`` is the conditional expectation :math:`E[X(t) \\mid x, t_x, T]`
    (Fader, Hardie & Lee 2005a, eq. 10) for every row of ``data``, ``t`` in the model's time unit
    ``time_unit_`` (read with :func:`model_time_unit`).
    """

    def expected_purchases(self, data: pd.DataFrame, t: float) -> Any: ...


@runtime_checkable
class AliveModel(Protocol):
    """Model with :math:`P(\\text{alive at } T + t \\mid \\text{history})`."""

    def probability_alive(self, data: pd.DataFrame, t: float = ...) -> Any: ...


@runtime_checkable
class ResidualTransactionsModel(Protocol):
    """Model with discounted expected residual transactions (DERT; Fader, Hardie & Lee 2005b,
    eq. 2), ``discount_rate`` continuous per model time unit."""

    def expected_residual_transactions(self, data: pd.DataFrame, discount_rate: float) -> Any: ...


@runtime_checkable
class PurchaseProbabilityModel(Protocol):
    """Model with the probability of *n* purchases in the next *t* time units,
    :math:`P(X(t) = n \\mid x, t_x, T)` (e.g. BG/NBD, Fader, Hardie & Lee 2005a)."""

    def probability_of_purchases(self, data: pd.DataFrame, n: int, t: float) -> Any: ...


@runtime_checkable
class SpendModel(Protocol):
    """Model of spend per purchase (Gamma-Gamma: Fader, Hardie & Lee 2005b, eq. 5)."""

    def expected_spend(self, data: pd.DataFrame) -> Any: ...


@runtime_checkable
class ContractualModel(Protocol):
    """Contractual (subscription) model such as the shifted-beta-geometric (Fader & Hardie 2007).

    ``probability_alive(data, t)`` is :math:`S(T + t) / S(T)`, the probability of renewing ``t``
    more times; ``expected_residual_lifetime(data, discount_rate)`` is DERL (Fader & Hardie 2010,
    eq. 6) with a discrete rate per model period.
    """

    contractual: bool

    def probability_alive(self, data: pd.DataFrame, t: float = ...) -> Any: ...

    def expected_residual_lifetime(self, data: pd.DataFrame, discount_rate: float) -> Any: ...


@runtime_checkable
class SampleableModel(Protocol):
    """Model that draws parameter sets from its estimated sampling distribution and rebuilds
    itself with one of them (the parameter-sampling interval)."""

    def sample_params(self, n: int, seed: Any = ...) -> Any: ...

    def with_params(self, params: Any) -> Any: ...


@runtime_checkable
class CovarianceModel(Protocol):
    """Model with a parameter covariance and ``with_params`` (the delta-method interval)."""

    covariance_: Any
    params_: Any

    def with_params(self, params: Any) -> Any: ...


def is_contractual(model: Any) -> bool:
    """True when the model declares itself contractual (explicit ``contractual = True``)."""
    return getattr(model, "contractual", False) is True


def model_time_unit(model: Any) -> str | None:
    """The model's time unit as given by the model (``time_unit_`` once fitted, else the
    constructor's ``time_unit``), or None when it declares none."""
    unit = getattr(model, "time_unit_", None)
    if unit is None:
        unit = getattr(model, "time_unit", None)
    return unit
