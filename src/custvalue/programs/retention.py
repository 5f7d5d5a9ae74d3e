"""Retention effect of a programme where cancellations are observed (subscriptions).

Membership enters a Cox proportional hazards model (Cox 1972) as a time-varying covariate in
the counting-process layout of Andersen & Gill (1982): each subscriber's spell is split at her
joining date into a non-member and a member interval, so a customer counts as a member only
from the day she joined. Membership measured at baseline ("ever joined") would credit the
programme with the survival that made the customer live long enough to join (immortal-time
bias, Suissa 2008, Am. J. Epidemiology 167(4)); this layout cannot do that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataValidationError
from ..survival import CoxResult, cox_ph, start_stop

__all__ = ["retention"]

_MONTH_DAYS = 365.25 / 12


def retention(
    subscriptions: pd.DataFrame,
    treatments: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    start_col: str = "start",
    end_col: str = "end",
    date_col: str = "date",
    observation_end: Any = None,
) -> CoxResult:
    """Hazard ratio of cancellation for members vs non-members, membership time-varying.

    Parameters
    ----------
    subscriptions : DataFrame
        One row per subscriber: ``customer_col``, ``start_col`` and ``end_col`` (NaT while
        active), e.g. ``Simulation.subscriptions`` or :func:`custvalue.summary.subscriptions`.
    treatments : DataFrame
        One row per member: ``customer_col`` and ``date_col`` (joining date).
    observation_end : date-like, optional
        Censoring date (default: ``subscriptions.attrs["observation_end"]`` or the last
        start/end date).

    Returns
    -------
    CoxResult
        Covariate ``member``; tenure in months. The standard errors are clustered by
        customer (robust sandwich of Lin & Wei 1989, ``cluster_col`` of
        :func:`custvalue.survival.cox_ph`): a member's two rows (before and after joining)
        are one customer, not two independent observations.
    """
    for frame, cols, what in ((subscriptions, (customer_col, start_col, end_col), "subscriptions"),
                              (treatments, (customer_col, date_col), "treatment table")):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataValidationError(f"{what} lacks column(s) {missing}; it has "
                                      f"{list(frame.columns)}")
    if subscriptions[customer_col].duplicated().any():
        raise DataValidationError("subscriptions: one row per subscriber is needed; "
                                  f"{int(subscriptions[customer_col].duplicated().sum())} "
                                  "customers appear more than once")
    if treatments[customer_col].duplicated().any():
        raise DataValidationError("treatment table: customers appear more than once "
                                  "(treated twice?): keep the first joining date")
    start = pd.to_datetime(subscriptions[start_col])
    end = pd.to_datetime(subscriptions[end_col])
    obs_end = pd.Timestamp(observation_end if observation_end is not None else
                           subscriptions.attrs.get("observation_end",
                                                   max(start.max(), end.max())))
    event = end.notna() & (end <= obs_end)
    stop = end.where(event, obs_end)
    duration = (stop - start).dt.days.to_numpy() / _MONTH_DAYS
    spells = pd.DataFrame({"customer_id": subscriptions[customer_col].to_numpy(),
                           "duration": np.maximum(duration, 1e-6), "event": event.to_numpy(),
                           "member": 0.0})
    joined = treatments.set_index(customer_col)[date_col]
    known = joined.index.isin(spells["customer_id"])
    if not known.all():
        raise DataValidationError(
            f"{int((~known).sum())} member(s) are not in the subscriptions "
            f"(e.g. {joined.index[~known][:3].tolist()})")
    starts = pd.Series(start.to_numpy(), index=spells["customer_id"])
    tenure = (pd.to_datetime(joined) - starts.reindex(joined.index).to_numpy()).dt.days
    changes = pd.DataFrame({"customer_id": joined.index,
                            "time": np.maximum(tenure.to_numpy() / _MONTH_DAYS, 0.0),
                            "member": 1.0})
    rows = start_stop(spells, changes, covariates=["member"])
    return cox_ph(rows, ["member"], duration_col="stop", event_col="event", entry_col="start",
                  id_col="customer_id", cluster_col="customer_id")
