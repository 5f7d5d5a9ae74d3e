"""Tests for custvalue.programs (programme and campaign effects).

Reference values:

* mpdta (the minimum-wage county panel shipped with R's ``did`` and with ``moderndid``):
  the group-time ATTs and the overall ATT -0.0400 published in the ``did`` package README /
  "Getting started" vignette (Callaway & Sant'Anna 2021, unconditional, never-treated
  controls), and moderndid 0.2.0's own doubly robust, not-yet-treated estimates with the
  covariate ``lpop`` (an independent implementation of the same estimator).
* Simulations with known truth (``custvalue.datasets.simulate``): the realised effect of a
  randomised win-back campaign, and the true ATT of a self-selected club computed from each
  member's untreated path. Tolerances are 4 standard errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custvalue import programs
from custvalue.datasets import simulate
from custvalue.errors import DataValidationError, ParameterError
from custvalue.programs.did import NEVER, callaway_santanna
from custvalue.programs.panel import build_panel

moderndid = pytest.importorskip("moderndid")


@pytest.fixture(scope="module")
def mpdta():
    d = moderndid.load_mpdta().to_pandas()
    wide = d.pivot(index="countyreal", columns="year", values="lemp")
    first = d.groupby("countyreal")["first.treat"].first().reindex(wide.index).to_numpy()
    lpop = d.groupby("countyreal")["lpop"].first().reindex(wide.index).to_numpy()
    years = list(wide.columns)
    group = np.where(first == 0, NEVER, np.searchsorted(years, first))
    return d, wide.to_numpy(), group, lpop


def test_callaway_santanna_reproduces_the_published_mpdta_estimates(mpdta):
    _, y, group, _ = mpdta
    r = callaway_santanna(y, np.zeros(len(y), dtype=int), group, None,
                          control="nevertreated", max_pre=None)
    # did README (Callaway & Sant'Anna 2021): ATT(g, t) for g = 2004, 2006, 2007, t = 2004..2007
    published = [-0.0105, -0.0704, -0.1373, -0.1008, 0.0065, -0.0028, -0.0046, -0.0412,
                 0.0305, -0.0027, -0.0311, -0.0261]
    np.testing.assert_allclose(r.att_gt["estimate"].to_numpy(), published, atol=5e-5)
    assert r.overall[0] == pytest.approx(-0.0400, abs=5e-5)


def test_doubly_robust_not_yet_treated_matches_moderndid(mpdta):
    _, y, group, lpop = mpdta
    x = np.column_stack([np.ones(len(y)), lpop])
    ours = callaway_santanna(y, np.zeros(len(y), dtype=int), group, lambda base: x,
                             control="notyettreated", max_pre=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = moderndid.att_gt(data=moderndid.load_mpdta(), yname="lemp", tname="year",
                               idname="countyreal", gname="first.treat", xformla="~ lpop",
                               est_method="dr", control_group="notyettreated", boot=False)
        simple = moderndid.aggte(ref, type="simple", boot=False)
        dynamic = moderndid.aggte(ref, type="dynamic", boot=False)
    # (a 1e-8 ridge on the logit slopes, our guard against separation, is the only difference)
    np.testing.assert_allclose(ours.att_gt["estimate"], ref.att_gt, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.att_gt["std_error"], ref.se_gt, rtol=1e-4)
    assert ours.overall[0] == pytest.approx(simple.overall_att, rel=1e-6)
    assert ours.overall[1] == pytest.approx(simple.overall_se, rel=1e-4)
    np.testing.assert_allclose(ours.event_study["estimate"], dynamic.att_by_event, rtol=1e-6)
    np.testing.assert_allclose(ours.event_study["std_error"], dynamic.se_by_event, rtol=1e-4)


def test_panel_counts_match_a_groupby():
    sim = simulate(300, seed=2)
    tx = sim.transactions
    panel = build_panel(tx, freq="M")
    month = tx["date"].dt.to_period("M")
    ref = tx.groupby(["customer_id", month]).agg(n=("amount", "size"), rev=("amount", "sum"))
    rows = panel.customers.get_indexer(ref.index.get_level_values(0))
    cols = (ref.index.get_level_values(1) - panel.periods[0]).map(lambda o: o.n).to_numpy()
    inside = cols < len(panel.periods)
    assert np.array_equal(panel.outcomes["purchases"][rows[inside], cols[inside]],
                          ref["n"].to_numpy()[inside])
    np.testing.assert_allclose(panel.outcomes["revenue"][rows[inside], cols[inside]],
                               ref["rev"].to_numpy()[inside])
    assert np.nansum(panel.outcomes["purchases"]) == ref["n"].to_numpy()[inside].sum()
    first = tx.groupby("customer_id")["date"].min().dt.to_period("M")
    entry = (first - panel.periods[0]).map(lambda o: o.n).to_numpy()
    assert np.array_equal(panel.entry, entry)
    assert np.isnan(panel.outcomes["active"][0, : entry[0]]).all()


@pytest.fixture(scope="module")
def campaign_sim():
    return simulate(4000, seed=11, winback={"effect": 0.2})


def test_randomised_campaign_recovers_the_realised_effect(campaign_sim):
    sim = campaign_sim
    before = sim.campaign.copy()
    r = programs.estimate(sim.transactions, sim.campaign, date_col="send_date",
                          group_col="group", margin=0.3, cost_per_contact=0.5)
    pd.testing.assert_frame_equal(sim.campaign, before)  # the caller's data is untouched
    assert r.design == "randomised" and "randomised" in r.design_reason
    truth = sim.truth["campaign"]["realised_effect"] / 3  # Oct, Nov, Dec 2023
    a = r.att.loc["level"]
    assert abs(a["estimate"] - truth) < 4 * a["std_error"]
    assert a["lower"] < truth < a["upper"]
    assert list(r.att.index) == ["level", "ratio"]
    assert list(r.att.columns) == ["estimate", "std_error", "lower", "upper"]
    assert r.naive.shape == (2, 4)
    e = r.experiment
    assert e["srm_p"] > 0.001
    assert e["mde"] == pytest.approx(2.8016 * a["std_error"], rel=1e-3)
    assert e["late"] == pytest.approx(a["estimate"])  # everyone assigned was contacted
    econ = r.economics
    assert econ.loc["programme cost", "estimate"] == pytest.approx(
        0.5 * sim.truth["campaign"]["n_treatment"])
    assert {"ITT with CUPED (HC1)", "effect of responding (Wald/2SLS)"} <= set(r.estimators.index)


def test_sample_ratio_mismatch_is_flagged(campaign_sim):
    sim = campaign_sim
    c = sim.campaign
    keep = (c["group"] == "treatment") | (np.arange(len(c)) % 3 == 0)
    r = programs.estimate(sim.transactions, c[keep], date_col="send_date", group_col="group")
    assert r.experiment["srm_p"] < 1e-6
    assert any("sample-ratio mismatch" in w for w in r.warnings)


@pytest.fixture(scope="module")
def club_sim():
    # acquired over six months, club launched two months later: active heavy buyers join
    return simulate(2500, seed=5, acquisition_period="180D",
                    loyalty={"history": True, "effect": 1.5, "launch": "2022-09-01",
                             "placebo": True})


@pytest.fixture(scope="module")
def club_effect(club_sim):
    return programs.estimate(club_sim.transactions, club_sim.memberships,
                             date_col="join_date", secondary=False, margin=0.3,
                             cost_per_member=2.0, placebo_events=club_sim.placebo)


def test_staggered_club_recovers_the_true_effect_not_the_naive_gap(club_sim, club_effect):
    r = club_effect
    truth = club_sim.truth["loyalty"]["att"]["level"]
    a = r.att.loc["level"]
    assert r.design == "staggered"
    assert abs(a["estimate"] - truth) < 4 * a["std_error"]
    naive = r.naive.loc["level", "estimate"]
    assert abs(naive - truth) > abs(a["estimate"] - truth)  # self-selection inflates it
    assert "naive" in r.estimators.loc["naive member vs non-member gap", "role"]
    es = r.event_study
    assert {-1, 0, 1} <= set(es.index)
    assert (es["lower"] <= es["estimate"]).all() and (es["estimate"] <= es["upper"]).all()
    assert 0 <= r.pretrend_p <= 1
    assert r.cohorts["n_customers"].sum() >= r.n_treated
    assert "placebo joining 3 periods earlier" in r.falsification.index
    assert {"incremental revenue", "ROI (net margin / cost)"} <= set(r.economics.index)
    assert r.economics.loc["programme cost", "estimate"] > 0
    seg = r.segments
    assert seg is not None and seg["n_treated"].sum() <= r.n_treated
    assert (seg["lower"] <= seg["upper"]).all()


def test_placebo_outcome_shares_the_selection_but_shows_no_effect(club_sim, club_effect):
    """Known truth: the simulation's "service contacts" follow each customer's latent rate and
    dropout (so members have more of them) but membership never changes them. The estimator
    finds no effect on them although the naive gap is large; fed the real purchases as
    "placebo" events it reproduces the main estimate, so the check can fail."""
    from custvalue.programs.core import _naive
    from custvalue.programs.panel import build_panel

    # the placebo stream has its own generator: the rest of the simulation is unchanged
    plain = simulate(2500, seed=5, acquisition_period="180D",
                     loyalty={"history": True, "effect": 1.5, "launch": "2022-09-01"})
    pd.testing.assert_frame_equal(plain.transactions, club_sim.transactions)
    pd.testing.assert_frame_equal(plain.memberships, club_sim.memberships)
    assert plain.placebo is None and len(club_sim.placebo) > 1000
    row = club_effect.falsification.loc["placebo outcome (events the programme cannot affect)"]
    assert abs(row["estimate"]) < 4 * row["std_error"]
    assert row["role"] == "placebo outcome"
    p = build_panel(club_sim.transactions)
    counts = programs.core._event_counts(club_sim.placebo, p, "customer_id", "date", [])
    g = programs.core._groups_from_dates(
        club_sim.memberships.rename(columns={"join_date": "date"}), p, [])
    (gap, gap_se), _ = _naive(counts, g, p.entry)
    assert gap > 4 * gap_se  # members do have more contacts: the selection is there
    real = programs.estimate(club_sim.transactions, club_sim.memberships, date_col="join_date",
                             secondary=False, heterogeneity=False,
                             placebo_events=club_sim.transactions)
    again = real.falsification.loc["placebo outcome (events the programme cannot affect)"]
    assert again["estimate"] == pytest.approx(real.att.loc["level", "estimate"], rel=1e-9)
    with pytest.raises(DataValidationError, match="placebo events lack"):
        programs.estimate(club_sim.transactions, club_sim.memberships, date_col="join_date",
                          placebo_events=club_sim.placebo.rename(columns={"date": "when"}))


def test_effect_on_clv_beyond_the_window_covers_the_realised_truth(club_sim, club_effect):
    """Known truth: after the window a member alive for another ``d`` days (of the 12 months)
    buys ``(effect - 1) * lambda * d`` extra on average (the programme lifts her rate while
    alive, dropout unchanged). The projection applies the estimated ratio to her BG/NBD
    expectation; its interval must cover the realised sum over the members."""
    clv = club_effect.clv
    assert clv is not None and clv.attrs["horizon"] == 12
    assert list(clv.columns) == ["estimate", "std_error", "lower", "upper"]
    c = club_sim.customers.set_index("customer_id")
    m = c.loc[c["member"]]
    end = club_sim.truth["observation_end"]
    since = (m["first_purchase"] - end).dt.total_seconds() / 86400  # days, negative
    left = (since + m["lifetime_days"]).clip(0, 12 * 365.25 / 12)  # alive days ahead
    members = programs.estimate(club_sim.transactions, club_sim.memberships,
                                date_col="join_date", secondary=False, heterogeneity=False,
                                margin=0.3).n_treated
    assert clv.attrs["members"] == members
    row = clv.loc["incremental purchases"]
    rows = m.index.isin(_clv_members(club_sim))
    truth = float((0.5 * m["lambda"] * left)[rows].sum())
    assert row["lower"] < truth < row["upper"]
    money = clv.loc["incremental margin"]
    value = clv.attrs["value_per_purchase"]
    assert money["estimate"] == pytest.approx(row["estimate"] * value * 0.3)
    assert clv.loc["incremental margin per member", "estimate"] == pytest.approx(
        money["estimate"] / members)
    assert "effect on CLV" in str(club_effect)
    with pytest.raises(ParameterError, match="clv_horizon"):
        programs.estimate(club_sim.transactions, club_sim.memberships, date_col="join_date",
                          margin=0.3, clv_horizon=-1)


def _clv_members(sim):
    """Members with a month before joining (those the effect is estimated on)."""
    p = build_panel(sim.transactions)
    g = programs.core._groups_from_dates(sim.memberships.rename(columns={"join_date": "date"}),
                                         p, [])
    return p.customers[(g < NEVER) & (g > p.entry)]


def test_program_effect_prints_and_renders(club_effect):
    r = club_effect
    text = str(r)
    assert "naive" in text and "staggered" in text
    page = r._repr_html_()
    assert "<table" in page and "not an effect" in page
    assert "ProgramEffect(" in repr(r)


def test_matched_design_when_everyone_joins_on_one_date():
    sim = simulate(2000, seed=8)
    first = sim.transactions.groupby("customer_id")["date"].min()
    # customers acquired before July 2022 with an above-median first amount are "enrolled"
    amount = sim.transactions.groupby("customer_id")["amount"].first()
    chosen = first.index[(first < "2022-07-01") & (amount > amount.median())]
    table = pd.DataFrame({"customer_id": chosen, "date": pd.Timestamp("2022-09-15")})
    r = programs.estimate(sim.transactions, table, secondary=False)
    assert r.design == "matched"
    assert r.balance is not None and {"smd", "smd_weighted"} <= set(r.balance.columns)
    assert 0 <= r.overlap["share_controls_trimmed"] <= 1
    # nothing happened to these customers: the estimate covers zero
    a = r.att.loc["level"]
    assert abs(a["estimate"]) < 4 * a["std_error"]


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def test_customers_treated_twice_are_an_error(club_sim):
    m = club_sim.memberships
    twice = pd.concat([m, m.head(3)], ignore_index=True)
    with pytest.raises(DataValidationError, match="more than once"):
        programs.estimate(club_sim.transactions, twice, date_col="join_date")


def test_unknown_customers_are_a_warning_or_an_error(club_sim):
    m = club_sim.memberships
    ghosts = pd.DataFrame({"customer_id": [10**9, 10**9 + 1],
                           "join_date": pd.Timestamp("2023-01-10")})
    r = programs.estimate(club_sim.transactions, pd.concat([m, ghosts], ignore_index=True),
                          date_col="join_date", secondary=False, max_pre=2)
    assert any("no transactions" in w for w in r.warnings)
    with pytest.raises(DataValidationError, match="none of the 2 customers"):
        programs.estimate(club_sim.transactions, ghosts, date_col="join_date")


def test_no_pre_period_and_no_comparison_are_errors(club_sim):
    tx = club_sim.transactions
    early = pd.DataFrame({"customer_id": [1, 2, 3], "date": pd.Timestamp("2019-01-01")})
    with pytest.raises(DataValidationError, match="pre-period"):
        programs.estimate(tx, early)
    everyone = pd.DataFrame({"customer_id": tx["customer_id"].unique(),
                             "date": pd.Timestamp("2023-03-01")})
    with pytest.raises(DataValidationError, match="never-treated"):
        programs.estimate(tx, everyone)


def test_dates_outside_the_data_and_missing_pre_periods_are_warnings(club_sim):
    """Joining before the data start or in the customer's first period leaves no pre-period;
    joining after the last complete period is not yet treated: each is said in a warning
    (the report prints them) and the rest is analysed."""
    tx, m = club_sim.transactions, club_sim.memberships.copy()
    first = tx.groupby("customer_id")["date"].min()
    m.loc[m.index[:4], "join_date"] = pd.Timestamp("2019-05-01")  # before the data
    m.loc[m.index[4:7], "join_date"] = pd.Timestamp("2031-01-01")  # after the data
    ids = m["customer_id"].iloc[7:9]
    m.loc[m.index[7:9], "join_date"] = first.loc[ids].to_numpy()  # in their first month
    r = programs.estimate(tx, m, date_col="join_date", secondary=False, heterogeneity=False)
    text = " | ".join(r.warnings)
    assert "4 customer(s) joined before the data start" in text
    assert "3 customer(s) joined after the last complete period" in text
    assert "joined in (or before) their first observed period" in text
    assert np.isfinite(r.att.loc["level", "estimate"])
    assert r.n_treated <= len(m) - 9


def test_no_untreated_or_not_yet_treated_customers(club_sim):
    """Everyone joins: with two joining dates the later cohort is the comparison for the
    earlier one until it joins (cells after that are dropped, with a warning); with one
    date there is no comparison at all, an error for the staggered design."""
    tx = club_sim.transactions
    ids = np.sort(tx["customer_id"].unique())
    two = pd.DataFrame({"customer_id": ids,
                        "date": np.where(ids % 2 == 0, pd.Timestamp("2023-02-10"),
                                         pd.Timestamp("2023-06-10"))})
    r = programs.estimate(tx, two, secondary=False, heterogeneity=False, max_pre=1)
    assert r.design == "staggered" and r.n_control == 0
    assert any("had no comparison customers" in w for w in r.warnings)
    one = two.assign(date=pd.Timestamp("2023-02-10"))
    with pytest.raises(DataValidationError, match="no untreated or not-yet-treated"):
        programs.estimate(tx, one, design="staggered")


def test_arguments_are_checked(club_sim):
    tx, m = club_sim.transactions, club_sim.memberships
    with pytest.raises(ParameterError, match="unpack"):
        programs.estimate((tx, None), m, date_col="join_date")
    with pytest.raises(ParameterError, match="outcome"):
        programs.estimate(tx, m, date_col="join_date", outcome="visits")
    with pytest.raises(DataValidationError, match="join_date"):
        programs.estimate(tx, m.rename(columns={"join_date": "joined"}), date_col="join_date")
    with pytest.raises(DataValidationError, match="treatment group and a control group"):
        programs.estimate(tx, m.assign(arm="a"), date_col="join_date", group_col="arm")


def test_treatment_table_from_a_csv_file(tmp_path, campaign_sim):
    path = tmp_path / "campaign.csv"
    campaign_sim.campaign.to_csv(path, index=False)
    a = programs.estimate(campaign_sim.transactions, path, date_col="send_date",
                          group_col="group")
    b = programs.estimate(campaign_sim.transactions, campaign_sim.campaign,
                          date_col="send_date", group_col="group")
    pd.testing.assert_frame_equal(a.att, b.att)


@pytest.mark.slow
def test_imputation_estimator_matches_pyfixest_did2s():
    import pyfixest as pf

    from custvalue.programs.core import _groups_from_dates
    from custvalue.programs.did import imputation_did, long_panel

    sim = simulate(600, seed=5, acquisition_period="180D",
                   loyalty={"history": True, "effect": 1.5, "launch": "2022-09-01"})
    p = build_panel(sim.transactions)
    g = _groups_from_dates(sim.memberships.rename(columns={"join_date": "date"}), p, [])
    keep = ~((g < NEVER) & (g <= p.entry))
    frame = long_panel(np.nan_to_num(p.outcomes["purchases"]), p.entry, g, keep)
    ours = imputation_did(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.did2s(frame, yname="y", first_stage="~ 0 | unit + time",
                       second_stage="~ treat", treatment="treat", cluster="unit")
    assert ours[0] == pytest.approx(float(fit.coef()["treat"]), abs=1e-4)
    # BJS's conservative variance vs Gardner's GMM variance: same order, not identical
    assert ours[1] == pytest.approx(float(fit.se()["treat"]), rel=0.15)


def test_twfe_and_imputation_on_wide_arrays_match_pyfixest_and_the_long_panel():
    """The TWFE benchmark (Frisch-Waugh-Lovell on the customer x period arrays, exact fixed
    effects) equals pyfixest's feols with CRV1 errors (its demeaning run to 1e-13), and the
    wide imputation estimator equals the one on the long panel."""
    import pyfixest as pf

    from custvalue.programs import did
    from custvalue.programs.core import _groups_from_dates

    sim = simulate(500, seed=9, acquisition_period="180D",
                   loyalty={"history": True, "effect": 1.5, "launch": "2022-09-01"})
    p = build_panel(sim.transactions)
    g = _groups_from_dates(sim.memberships.rename(columns={"join_date": "date"}), p, [])
    keep = ~((g < NEVER) & (g <= p.entry))
    y = p.outcomes["purchases"]
    frame = did.long_panel(np.nan_to_num(y), p.entry, g, keep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols("y ~ treat | unit + time", data=frame, vcov={"CRV1": "unit"},
                       fixef_tol=1e-13)
    ours = did.twfe(frame)
    assert ours[0] == pytest.approx(float(fit.coef()["treat"]), rel=1e-9)
    assert ours[1] == pytest.approx(float(fit.se()["treat"]), rel=1e-9)
    np.testing.assert_allclose(did.twfe_wide(y, p.entry, g, keep), ours, rtol=1e-12)
    np.testing.assert_allclose(did.imputation_wide(y, p.entry, g, keep),
                               did.imputation_did(frame), rtol=1e-12)


def test_retention_uses_membership_as_a_time_varying_covariate():
    """Known truth: churn hazard 0.05 per month, multiplied by 0.6 from joining on; joining
    times independent of churn. Membership at baseline ("ever joined") shows the immortal-time
    bias the time-varying layout avoids."""
    from custvalue.survival import cox_ph

    rng = np.random.default_rng(1)
    n, hr, h0, month = 6000, 0.6, 0.05, 365.25 / 12
    start = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 200, n), "D")
    join_m = rng.exponential(8.0, n)
    first = rng.exponential(1 / h0, n)
    dur = np.where(first < join_m, first, join_m + rng.exponential(1 / (h0 * hr), n))
    end = start + pd.to_timedelta(dur * month, "D")
    obs = pd.Timestamp("2024-01-01")
    subs = pd.DataFrame({"customer_id": np.arange(n), "start": start,
                         "end": end.where(end <= obs)})
    joined = start + pd.to_timedelta(join_m * month, "D")
    member = (join_m < dur) & (joined < obs)
    table = pd.DataFrame({"customer_id": np.arange(n)[member], "date": joined[member]})
    fit = programs.retention(subs, table, observation_end=obs)
    row = fit.table.loc["member"]
    assert abs(row["coef"] - np.log(hr)) < 4 * row["std_error"]
    assert "clustered on customer_id" in fit.covariance_type
    naive = cox_ph(subs.assign(duration=(subs["end"].fillna(obs) - subs["start"]).dt.days / month,
                               event=subs["end"].notna(),
                               ever=subs["customer_id"].isin(table["customer_id"]).astype(float)),
                   ["ever"], duration_col="duration", event_col="event")
    assert naive.table.loc["ever", "hazard_ratio"] < 0.5 * hr  # immortal-time bias
    with pytest.raises(DataValidationError, match="more than once"):
        programs.retention(subs, pd.concat([table, table.head(2)]))


def test_effect_of_responding_uses_the_assignment_as_instrument(campaign_sim):
    """Half of the treatment group is reached (one-sided non-compliance, independent of the
    outcome): the Wald estimate is the ITT divided by the take-up share (Imbens & Angrist
    1994)."""
    sim = campaign_sim
    c = sim.campaign.copy()
    rng = np.random.default_rng(0)
    c["reached"] = (c["group"] == "treatment") & (rng.random(len(c)) < 0.5)
    r = programs.estimate(sim.transactions, c, date_col="send_date", group_col="group",
                          response_col="reached")
    e = r.experiment
    assert e["take_up_control"] == 0
    assert e["take_up_treatment"] == pytest.approx(c.loc[c["group"] == "treatment",
                                                         "reached"].mean())
    itt = r.estimators.loc["ITT, difference in means (HC1)", "estimate"]
    assert e["late"] == pytest.approx(r.att.loc["level", "estimate"] / e["take_up_treatment"])
    assert e["late"] > itt > 0
    with pytest.raises(DataValidationError, match="0/1"):
        programs.estimate(sim.transactions, c.assign(reached="maybe"), date_col="send_date",
                          group_col="group", response_col="reached")
