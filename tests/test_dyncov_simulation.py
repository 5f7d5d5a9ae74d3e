"""The time-varying covariate simulator against its own truth (issue 14, the season coefficient).

References are closed forms with known rates: with the dropout switched off and (almost) one
purchase rate ``lambda`` for everyone, the simulated purchases in each week are Poisson with
mean ``lambda exp(g_season season_k + g_member member_k) x exposure``; and recording them as
calendar days (one purchase per customer-day, as the models and CLVTools read transactions)
keeps, of a fully observed day with daily rate ``rho``, ``E[1{N >= 1}] / E[N] = (1 - e^-rho) /
rho`` of the purchases, which is less in the busier season weeks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custvalue.datasets import simulate_dynamic_covariates

LAM = 1.0  # purchases per week (r / alpha); high, so the day-recording loss is large and sharp
GP = {"season": 0.5, "member": 0.0}


@pytest.fixture(scope="module")
def sim():
    # r = 1e4 makes lambda ~ Gamma(r, r / LAM) constant to 1%; beta = 1e12 switches dropout off
    return simulate_dynamic_covariates(
        4000, seed=5, weeks=78, params={"r": 1e4, "alpha": 1e4 / LAM, "s": 1.0, "beta": 1e12},
        purchase_effects=GP, dropout_effects={"season": 0.0, "member": 0.0}, member_share=0.0,
    )


def _season_of_week(sim, week):
    return np.isin(np.floor(week).astype(np.int64) % 52, sim.truth["season_weeks"])


def test_exact_purchase_times_are_poisson_with_the_true_rates(sim):
    assert np.isinf(sim.customers["death_week"]).all()
    start = sim.truth["start"]
    acq = (sim.customers["first_purchase"] - start).dt.days.to_numpy() / 7.0
    lam = sim.customers["lambda"].to_numpy()
    t_end = (sim.truth["observation_end"] - start).days / 7.0
    k = np.arange(78)
    season = np.isin(k % 52, sim.truth["season_weeks"])
    expo = np.clip(np.minimum(k[None, :] + 1.0, t_end) - np.maximum(k[None, :], acq[:, None]), 0, None)
    expected = lam[:, None] * np.exp(GP["season"] * season[None, :]) * expo
    pt = sim.purchase_times
    first = pt.groupby("customer_id")["week"].transform("min")
    rep = pt[pt["week"] > first]
    in_season = _season_of_week(sim, rep["week"].to_numpy())
    for flag in (False, True):
        e = float(expected[:, season == flag].sum())
        o = float(np.sum(in_season == flag))
        assert abs(o - e) < 4.0 * np.sqrt(e), (flag, o, e)
    # the season rate ratio from the exact times is the true exp(0.5)
    e_s, e_o = expected[:, season].sum(), expected[:, ~season].sum()
    ratio = (in_season.sum() / e_s) / ((~in_season).sum() / e_o)
    assert np.log(ratio) == pytest.approx(0.0, abs=4.0 * np.sqrt(1 / in_season.sum() + 1 / (~in_season).sum()))


def test_transactions_are_the_exact_times_recorded_as_days(sim):
    start = sim.truth["start"]
    pt = sim.purchase_times
    end_day = (sim.truth["observation_end"] - start).days
    days = np.minimum(np.floor(pt["week"].to_numpy() * 7.0 + 1e-9), end_day).astype(np.int64)
    recorded = pd.DataFrame({"customer_id": pt["customer_id"].to_numpy(),
                             "date": start + pd.to_timedelta(days, unit="D")}).drop_duplicates()
    got = sim.transactions[["customer_id", "date"]]
    pd.testing.assert_frame_equal(recorded.reset_index(drop=True), got.reset_index(drop=True))


def test_recording_as_days_loses_more_season_purchases_as_the_closed_form_says(sim):
    """The mismatch behind the low season estimate: at the default rates it moves the season
    coefficient of the recorded data by about -0.01 (benchmarks/RESULTS.md); here, at a rate ten
    times higher, by log(keep_season / keep_off) = -0.045."""
    start = sim.truth["start"]
    acq_day = (sim.customers.set_index("customer_id")["first_purchase"] - start).dt.days
    pt = sim.purchase_times
    day_exact = np.floor(pt["week"].to_numpy() * 7.0 + 1e-9).astype(np.int64)
    # the first purchase's day merges any repeat purchase on it: leave that day out of both
    later = day_exact > acq_day.reindex(pt["customer_id"]).to_numpy()
    exact_season = _season_of_week(sim, pt["week"].to_numpy()[later])
    tx = sim.transactions
    tday = (tx["date"] - start).dt.days.to_numpy()
    tlater = tday > acq_day.reindex(tx["customer_id"]).to_numpy()
    rec_season = _season_of_week(sim, tday[tlater] / 7.0)
    lam = float(sim.customers["lambda"].mean())
    for flag, mult in ((False, 1.0), (True, np.exp(GP["season"]))):
        rho = lam * mult / 7.0
        keep = -np.expm1(-rho) / rho
        n_exact = np.sum(exact_season == flag)
        n_rec = np.sum(rec_season == flag)
        # binomial noise of the kept share: s.e. 0.0006 (off season), 0.001 (season)
        assert n_rec / n_exact == pytest.approx(keep, abs=0.003), (flag, n_rec / n_exact, keep)
    shift = np.log((np.sum(rec_season) / np.sum(exact_season))
                   / (np.sum(~rec_season) / np.sum(~exact_season)))
    rho_o = lam / 7.0
    rho_s = rho_o * np.exp(GP["season"])
    closed = np.log((-np.expm1(-rho_s) / rho_s) / (-np.expm1(-rho_o) / rho_o))
    assert closed == pytest.approx(-0.0449, abs=1e-4)
    assert shift == pytest.approx(closed, abs=0.004)


def test_effects_of_an_unidentified_coefficient_do_not_overflow():
    """A boundary fit can leave a coefficient with a standard error in the hundreds (seen on a
    300-customer simulation: dropout:member -8.9, s.e. 940); its interval is then [0, inf), not
    an OverflowError from exp(g + 1.96 s.e.)."""
    import warnings

    from custvalue.models import DynamicParetoNBDModel

    small = simulate_dynamic_covariates(200, seed=3, weeks=40, acquisition_weeks=10)
    model = DynamicParetoNBDModel(["season"], ["member"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(small.transactions, small.covariates, observation_end=small.truth["observation_end"])
    model.standard_errors_ = model.standard_errors_.copy()
    model.standard_errors_["dropout:member"] = 940.0
    eff = model._effects(0.95)
    row = eff.loc[("dropout", "member")]
    assert row["lower"] == 0.0 and np.isinf(row["upper"])
    assert np.isfinite(eff.loc[("purchase", "season"), "upper"])
