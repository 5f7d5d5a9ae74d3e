"""Tests for custvalue.plots: every plot returns its Axes, titled, with labelled axes and units."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from custvalue import plots
from custvalue.errors import DataValidationError, ParameterError
from custvalue.evaluation import holdout_scorecard, tracking


class PoissonModel:
    """Test double: Poisson purchases at rate ``lam`` per day, always alive."""

    contractual = False

    def __init__(self, lam: float = 0.05) -> None:
        self.lam = lam
        self.params_ = {"lam": lam}
        self.time_unit_ = "D"

    def expected_purchases(self, data, t):
        return pd.Series(self.lam * float(t) + 0.01 * data["frequency"].to_numpy(), index=data.index)

    def probability_alive(self, data, t=0):
        r = data["recency"].to_numpy(float)
        T = data["T"].to_numpy(float)
        return pd.Series(np.where(T > 0, 0.2 + 0.8 * r / np.where(T > 0, T, 1), 1.0), index=data.index)

    def probability_of_purchases(self, data, n, t):
        return pd.Series(stats.poisson.pmf(n, self.lam * np.asarray(t, float)), index=data.index)

    def expected_purchases_new_customer(self, t):
        return self.lam * np.asarray(t, dtype=float)


@pytest.fixture
def ch_summary() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    T = rng.uniform(10, 100, n).round()
    f = rng.poisson(0.05 * T)
    r = np.where(f > 0, np.floor(T * rng.uniform(0.3, 1.0, n)), 0.0)
    df = pd.DataFrame(
        {
            "frequency": f.astype(float),
            "recency": r,
            "T": T,
            "monetary_value": np.where(f > 0, rng.gamma(2.0, 10.0, n), 0.0),
            "frequency_holdout": rng.poisson(0.05 * 30, n).astype(float),
            "duration_holdout": 30.0,
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    df.attrs["freq"] = "D"
    return df


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(ax) -> None:
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_title()
    assert ax.get_xlabel() and ax.get_ylabel()


def test_expected_frequency_distribution_is_poisson_closed_form(ch_summary):
    model = PoissonModel(0.05)
    dist = plots.expected_frequency_distribution(model, ch_summary["T"], max_frequency=4, max_groups=1000)
    T = ch_summary["T"].to_numpy()
    for n in range(4):
        assert dist.iloc[n] == pytest.approx(stats.poisson.pmf(n, 0.05 * T).sum())
    assert dist.iloc[4] == pytest.approx(stats.poisson.sf(3, 0.05 * T).sum())
    assert dist.sum() == pytest.approx(len(T))
    # with ages grouped (91 distinct ages into 20 groups) the histogram stays close
    grouped = plots.expected_frequency_distribution(model, ch_summary["T"], max_frequency=4, max_groups=20)
    np.testing.assert_allclose(grouped, dist, rtol=0.02)
    assert grouped.sum() == pytest.approx(len(T))


def test_plot_period_transactions(ch_summary):
    ax = plots.plot_period_transactions(PoissonModel(), ch_summary, max_frequency=5)
    _labelled(ax)
    assert "day" in ax.get_xlabel()
    assert len(ax.patches) >= 12  # 6 bins x 2 sources


def test_plot_calibration_holdout_and_deciles(ch_summary):
    model = PoissonModel()
    ax = plots.plot_calibration_holdout(model, ch_summary)
    _labelled(ax)
    assert "30 days" in ax.get_title()
    card = holdout_scorecard(model, ch_summary)
    ax2 = plots.plot_decile_calibration(card)
    _labelled(ax2)
    assert len(ax2.patches) == 20


def test_plot_tracking_both_modes():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c"],
            "date": pd.to_datetime(["2021-01-01", "2021-02-01", "2021-01-05", "2021-03-01", "2021-02-10"]),
        }
    )
    tab = tracking(PoissonModel(), tx, period="W", calibration_end="2021-02-15")
    _fig, (a1, a2) = plt.subplots(1, 2)
    assert plots.plot_tracking(tab, ax=a1) is a1
    assert plots.plot_tracking(tab, cumulative=False, ax=a2) is a2
    _labelled(a1)
    _labelled(a2)
    assert "cumulative" in a1.get_title() and "per week" in a2.get_title()


@pytest.mark.parametrize("fn", [plots.plot_expected_purchases_heatmap, plots.plot_probability_alive_heatmap])
def test_heatmaps(ch_summary, fn):
    ax = fn(PoissonModel(), summary=ch_summary, n_recency=20)
    _labelled(ax)
    assert "days" in ax.get_xlabel()


def test_heatmap_needs_age():
    with pytest.raises(ParameterError, match="customer age"):
        plots.plot_frequency_recency_heatmap(PoissonModel())
    with pytest.raises(ParameterError, match="quantity"):
        plots.plot_frequency_recency_heatmap(PoissonModel(), T=10, quantity="value")


def test_plot_clv_distribution():
    clv = pd.DataFrame({"clv": np.random.default_rng(1).gamma(1.0, 50.0, 500)})
    clv.attrs.update({"horizon": 12.0, "time_unit": "M"})
    ax = plots.plot_clv_distribution(clv, currency="USD")
    _labelled(ax)
    assert "12 months" in ax.get_title() and "USD" in ax.get_xlabel()
    ax2 = plots.plot_clv_distribution(clv["clv"], log_scale=True)
    _labelled(ax2)
    with pytest.raises(DataValidationError, match="clv_lower"):
        plots.plot_clv_distribution(clv, column="clv_lower")


def test_tracking_plot_leaves_other_axes_labels_alone(ch_summary):
    tx = pd.DataFrame({"customer_id": ["a", "a"], "date": pd.to_datetime(["2021-01-01", "2021-02-01"])})
    fig, (top, bottom) = plt.subplots(2, 1)
    plots.plot_period_transactions(PoissonModel(), ch_summary, ax=top)
    plots.plot_tracking(tracking(PoissonModel(), tx), ax=bottom)
    fig.canvas.draw()
    assert top.xaxis.label.get_visible() and all(t.get_visible() for t in top.get_xticklabels())


def test_given_axes_is_used(ch_summary):
    _fig, ax = plt.subplots()
    assert plots.plot_period_transactions(PoissonModel(), ch_summary, ax=ax) is ax


def test_expected_frequency_distribution_matches_lifetimes_pareto():
    """Sum over customers of P(X(T_i) = n) for a new customer equals lifetimes' conditional
    probability with an empty history (Pareto/NBD, CDNOW weekly parameters of FHL 2005b)."""
    import warnings

    from lifetimes import ParetoNBDFitter
    from lifetimes.datasets import load_cdnow_summary

    from custvalue.models.pareto_nbd import ParetoNBDModel

    p = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    model = ParetoNBDModel.from_params(**p, time_unit="W")
    ref_model = ParetoNBDFitter()
    ref_model.params_ = pd.Series(p)
    s = load_cdnow_summary()
    s = s[s["T"].isin(np.sort(s["T"].unique())[:12])]
    dist = plots.expected_frequency_distribution(model, s["T"], max_frequency=3)
    u, c = np.unique(s["T"], return_counts=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = [sum(ci * ref_model.conditional_probability_of_n_purchases_up_to_time(n, t, 0, 0, 0)
                   for t, ci in zip(u, c, strict=True)) for n in range(3)]
    np.testing.assert_allclose(dist.iloc[:3], ref, rtol=1e-8)
    assert dist.sum() == pytest.approx(len(s))
    ax = plots.plot_period_transactions(model, s.assign(frequency=s["frequency"].astype(float)), max_frequency=3)
    _labelled(ax)
    assert "week" in ax.get_xlabel()


def _cohort_frames():
    cohorts = pd.date_range("2023-01-01", periods=14, freq="MS")
    periods = range(6)
    # retention decays geometrically: cohort k keeps 0.5 ** p of its customers in period p
    share = pd.DataFrame([[0.5**p for p in periods] for _ in cohorts], index=cohorts,
                         columns=list(periods))
    cumulative = share.cumsum(axis=1) * 40.0
    value = pd.DataFrame({"customers": np.arange(14) + 10, "mean_clv": np.linspace(10, 30, 14)},
                         index=cohorts)
    return share, cumulative, value


def test_cohort_plots_are_titled_labelled_and_show_the_data():
    share, cumulative, value = _cohort_frames()
    ax = plots.plot_cohort_retention(share, period_name="month")
    assert "Cohort retention" in ax.get_title()
    assert "months since first purchase" in ax.get_xlabel() and ax.get_ylabel()
    mesh = ax.collections[0].get_array().reshape(share.shape)
    np.testing.assert_allclose(mesh, 100 * share.to_numpy())  # percent
    assert ax.get_yticklabels()[0].get_text() == "2023-01"
    plt.close(ax.figure)

    ax = plots.plot_cohort_revenue(cumulative, period_name="month", currency="$", max_lines=7)
    assert len(ax.get_lines()) == 7  # every 2nd of 14 cohorts
    assert ax.get_title().endswith("(one cohort in 2)")
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), cumulative.iloc[2].to_numpy())
    assert "($)" in ax.get_ylabel()
    plt.close(ax.figure)

    ax = plots.plot_value_by_segment(value, horizon="next 12 months", currency="$")
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, value["mean_clv"].to_numpy())
    assert "next 12 months" in ax.get_title() and "($)" in ax.get_ylabel()
    plt.close(ax.figure)


def test_cohort_plots_reject_bad_input():
    with pytest.raises(DataValidationError, match="non-empty"):
        plots.plot_cohort_retention(pd.DataFrame())
    with pytest.raises(ParameterError, match="max_lines"):
        plots.plot_cohort_revenue(_cohort_frames()[1], max_lines=0)
    with pytest.raises(DataValidationError, match="mean_clv"):
        plots.plot_value_by_segment(pd.DataFrame({"x": [1.0]}))


def test_plot_clv_distribution_takes_the_horizon_from_a_clv_result():
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    from custvalue.models import BetaGeoModel, GammaGammaModel
    from custvalue.value import customer_lifetime_value

    s = load_cdnow_summary_data_with_monetary_value()[["frequency", "recency", "T", "monetary_value"]]
    s.attrs["freq"] = "W"
    bg = BetaGeoModel.from_params(r=0.242594, alpha=4.413643, a=0.792918, b=2.425898, time_unit="W")
    gg = GammaGammaModel.from_params(p=6.248802, q=3.744588, gamma=15.447748)
    res = customer_lifetime_value(bg, gg, s, horizon=2, time_unit="Y", discount_rate=0.1)
    ax = plots.plot_clv_distribution(res, currency="USD")
    _labelled(ax)
    assert "over 2 years" in ax.get_title()
