"""The programme-effect report: analyse(), its parameters, and a full run on simulated data
with a known effect (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from custvalue.datasets import simulate
from custvalue.errors import ParameterError
from custvalue.reports import program as program_report
from custvalue.reports.spec import get_report

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def club():
    return simulate(1500, seed=4, acquisition_period="180D",
                    loyalty={"history": True, "effect": 1.3, "launch": "2022-09-01"})


def test_analyse_collects_the_effect_and_the_raw_means(club):
    r = program_report.analyse(club.transactions, club.memberships, date_col="join_date",
                               secondary=False, true_effect=0.05, margin=0.3)
    m = r.metrics()
    assert m["design"] == "staggered" and m["true_effect"] == 0.05
    assert m["att_level_lower"] <= m["att_level"] <= m["att_level_upper"]
    assert "incremental_revenue" in m and "roi" not in m  # no cost given, no ROI
    raw = r.raw
    assert {-1, 0, 1} <= set(raw.index)
    # independent check of one raw mean: members' purchases in their joining month
    tx, mem = club.transactions, club.memberships
    month = tx["date"].dt.to_period("M")
    joined = mem.set_index("customer_id")["join_date"].dt.to_period("M")
    sel = tx["customer_id"].isin(joined.index)
    same = (month[sel].to_numpy() == joined.reindex(tx.loc[sel, "customer_id"]).to_numpy())
    first = tx.groupby("customer_id")["date"].min().dt.to_period("M")
    observed = joined[first.reindex(joined.index) <= joined]
    assert raw.loc[0, "n_customers"] == len(observed)
    assert raw.loc[0, "treated_mean"] == pytest.approx(same.sum() / len(observed))


def test_model_based_view_beside_the_did_estimates(club):
    """The Pareto/NBD with membership as a time-varying covariate runs on a seeded sample of
    customers beside the DiD estimates; the simulated club lifts the purchase rate by 1.3 and
    leaves dropout alone, and the metrics carry both ratios."""
    r = program_report.analyse(club.transactions, club.memberships, date_col="join_date",
                               secondary=False, heterogeneity=False, model_based_sample=1000)
    mb = r.model_based
    assert mb is not None and list(mb.table.index) == ["purchase rate", "dropout rate"]
    assert mb.n_customers == 1000 and "random sample of 1,500" in r.model_based_note
    rate = mb.table.loc["purchase rate"]
    assert rate["lower"] < rate["ratio"] < rate["upper"] and rate["ratio"] > 1
    m = r.metrics()
    assert m["model_based_purchase_rate_ratio"] == pytest.approx(rate["ratio"])
    off = program_report.analyse(club.transactions, club.memberships, date_col="join_date",
                                 secondary=False, heterogeneity=False)
    assert off.model_based is None and "not run" in off.model_based_note


def test_event_study_plot_is_titled_and_labelled(club):
    r = program_report.analyse(club.transactions, club.memberships, date_col="join_date",
                               secondary=False, heterogeneity=False)
    ax = program_report.plot_event_study(r.effect.event_study, true_effect=0.04)
    assert ax.get_title() and "months" in ax.get_xlabel() and "per customer" in ax.get_ylabel()
    shown = ax.containers[0].lines[0].get_ydata()  # the errorbar's points
    np.testing.assert_allclose(np.asarray(shown, dtype=float), r.effect.event_study["estimate"])


def test_parameters_and_checks():
    spec = get_report("program")
    by_name = {p.name: p for p in spec.params}
    assert by_name["design"].choices == ("auto", "randomised", "staggered", "matched")
    assert by_name["outcome"].choices == ("purchases", "revenue", "active")
    with pytest.raises(ParameterError, match="treatments"):
        program_report.check_params({"treatments": None})
    with pytest.raises(ParameterError, match="group_col"):
        program_report.check_params({"treatments": "x.csv", "response_col": "r"})


def test_notebook_parameters_match_the_declaration():
    """The notebook's parameters cell holds every declared parameter with its default, and
    papermill parses all of them (a comment it cannot parse would hide one)."""
    import nbformat
    import papermill

    path = Path(__file__).resolve().parents[1] / "notebooks" / "program_report.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    names: dict = {}
    exec(cell[0].source, {}, names)  # plain assignments
    spec = get_report("program")
    assert set(names) == set(spec.param_names) | {"output_dir"}
    for p in spec.params:
        assert names[p.name] == p.default, p.name
    found = papermill.inspect_notebook(str(path))
    assert set(found) == set(spec.param_names) | {"output_dir"}


@pytest.mark.slow
def test_demo_report_states_the_true_effect_beside_the_estimate(tmp_path):
    result = program_report.demo(out=tmp_path, n_customers=1500)
    page = result.html.read_text()
    metrics = json.loads(result.metrics.read_text())["metrics"]
    assert metrics["true_effect"] is not None and metrics["design"] == "staggered"
    for heading in ("What was estimated", "Timing and cohort sizes", "Raw means around joining",
                    "The estimators side by side", "A model-based view beside the estimators",
                    "Effect by time since joining",
                    "Falsification", "Return on investment", "Threats to validity"):
        assert heading in page
    assert "true effect is" in page and "not an effect" in page
    assert "program_report.analyse(" not in page  # no code shown
    assert "placebo outcome" in page and "Beyond the observed window" in page
    assert metrics["clv_horizon"] == 12 and "clv_incremental_margin_per_member" in metrics
    assert metrics["model_based_purchase_rate_ratio"] > 0
    assert set(metrics["placebo_p_values"]) >= {
        "placebo outcome (events the programme cannot affect)"}
