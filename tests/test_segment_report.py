"""The segment report: declared parameters, checks before any kernel starts, the analysis, the
lists written next to the HTML, and the page in a real browser (helpers of test_browser)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import test_browser
from custvalue import reports
from custvalue import segments as sg
from custvalue.datasets import DEFAULT_CHANNELS
from custvalue.errors import ParameterError
from custvalue.reports import segment as sr
from test_browser import assert_page_is_sound, open_page

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
browser = test_browser.browser  # the module-scoped headless Chromium fixture
COSTS = ", ".join(f"{name}={cfg['cost']:g}" for name, cfg in DEFAULT_CHANNELS.items())
FILTERS = 'north: region in ["North"] and clv > 50; book_buyers: category has "books"'


def test_filters_parameter_parses_names_and_checks_syntax() -> None:
    got = sr.parse_filters('vip: clv > 500 and region in ["a;b", "c"]; lapsed: p_alive < 0.2')
    assert got == {"vip": 'clv > 500 and region in ["a;b", "c"]', "lapsed": "p_alive < 0.2"}
    assert sr.parse_filters(["a: n_orders >= 5"]) == {"a": "n_orders >= 5"}
    assert sr.parse_filters("") == {}
    for bad, pattern in [
        ("no colon here", "name: filter"),
        ("winback: n_orders > 1", "cannot name a list"),
        ("../x: n_orders > 1", "cannot name a list"),
        ("a: n_orders > 1; a: n_orders > 2", "used twice"),
        ("a: n_orders >>= 1", "filter 'a'"),
    ]:
        with pytest.raises(ParameterError, match=pattern):
            sr.parse_filters(bad)


def test_costs_parameter() -> None:
    assert sr.parse_costs("organic=0, paid=25.5") == {"organic": 0.0, "paid": 25.5}
    assert sr.parse_costs("acquisition_cost") == "acquisition_cost"
    assert sr.parse_costs("") is None
    with pytest.raises(ParameterError, match="channel=cost"):
        sr.parse_costs("organic=free")


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"filters": "x: n_orders >"}, "filter 'x'"),
        ({"milestones": "5,ten"}, "whole numbers"),
        ({"model": "prophet"}, "must be one of"),
        ({"calibration_end": "2023-06-01", "observation_end": "2023-01-01"}, "must be before"),
        ({"rules": "/nonexistent/rules.csv"}, "not a CSV file"),
        ({"costs": "organic=free"}, "channel=cost"),
    ],
)
def test_impossible_parameters_fail_before_any_kernel(params: dict, pattern: str) -> None:
    with pytest.raises(ParameterError, match=pattern):
        reports.validate_params("segment", params)


def test_notebook_parameters_match_the_declaration_and_it_is_output_free() -> None:
    nb = nbformat.read(REPO / "notebooks" / "segment_report.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names: dict[str, object] = {}
    exec(tagged[0].source, {}, names)  # the parameters cell is plain assignments
    spec = reports.get_report("segment")
    assert set(names) == set(spec.param_names) | {"output_dir"}
    for p in spec.params:
        assert names[p.name] == p.default, p.name
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
            assert "def fit" not in cell.source and ".fit(" not in cell.source  # no modelling


@pytest.fixture(scope="module")
def analysed() -> sr.SegmentReport:
    tx, _ = reports.load_report_data("simulated", seed=42)
    return sr.analyse(tx, costs=COSTS, n_draws=20, filters=FILTERS, seed=1)


@pytest.mark.slow
def test_analysis_is_the_segments_layer(analysed: sr.SegmentReport) -> None:
    r = analysed
    c = r.customers
    assert r.rfm.table["customers"].sum() == len(c) == r.n_customers
    assert {"segment", "value_tier", "tier_probability", "p_alive", "clv"} <= set(c.columns)
    # the lists are exactly what the segments functions give on the valid customers
    pd.testing.assert_index_equal(r.winback.ids, sg.winback_candidates(c).ids)
    pd.testing.assert_index_equal(r.club.ids, sg.club_candidates(c).ids)
    north = c[(c["region"] == "North") & (c["clv"] > 50) & (c["total_spend"] > 0)]
    assert sorted(r.filters["north"].ids) == sorted(north.index)
    books = c["category"].str.split(";").map(lambda cats: "books" in cats)
    assert r.filters["book_buyers"].size == int((books & (c["total_spend"] > 0)).sum())
    # channel economics with the simulation's acquisition costs; organic costs nothing
    t = r.channels.table
    assert t.loc["organic", "cac"] == 0 and pd.isna(t.loc["organic", "ltv_cac"])
    assert t["best_for_budget"].sum() <= 1
    # migration: every customer once
    assert r.migration.table.to_numpy().sum() == len(c)
    assert set(r.metrics()["lists"]) == {"winback.csv", "club.csv", "milestones.csv",
                                        "invalid_members.csv", "north.csv", "book_buyers.csv"}


@pytest.fixture(scope="module")
def segment_run(tmp_path_factory: pytest.TempPathFactory) -> reports.RunResult:
    out = tmp_path_factory.mktemp("segment-report")
    return reports.run(
        "segment", data="simulated",
        params={"n_draws": 20, "costs": COSTS, "filters": FILTERS},
        out=out, log=lambda line: None,
    )


@pytest.mark.slow
def test_report_writes_every_list_with_customer_id_first(segment_run: reports.RunResult) -> None:
    for name in ("winback.csv", "club.csv", "milestones.csv", "invalid_members.csv", "north.csv",
                 "book_buyers.csv"):
        path = segment_run.run_dir / name
        assert path.is_file(), name
        assert path.read_text().split(",", 1)[0] == "customer_id", name
    winback = pd.read_csv(segment_run.run_dir / "winback.csv")
    assert len(winback) > 0 and (winback["p_alive"] <= 0.3).all()
    page = segment_run.html.read_text()
    for heading in ("RFM segments", "Value tiers", "Migration", "Lists", "Channel economics"):
        assert heading in page
    assert "segment_report.analyse" not in page and "import " not in page  # no code shown


@pytest.mark.slow
def test_segment_report_renders_cleanly(segment_run: reports.RunResult, browser: str) -> None:
    keep = ARTIFACTS / "segment-report.html"
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(segment_run.html, keep)
    checks = open_page(browser, segment_run.html, ARTIFACTS / "segment-report.png")
    assert_page_is_sound(checks, expect_images=True, expect_toc=True)
    assert checks["header"] and checks["footer"]
    assert len(checks["images"]) >= 5
    assert all(img["alt"] and "No description" not in img["alt"] for img in checks["images"])
    toc = " | ".join(t["text"] for t in checks["toc"])
    for section in ("Summary", "RFM segments", "Value tiers", "Migration", "Lists",
                    "Channel economics"):
        assert section in toc, toc

