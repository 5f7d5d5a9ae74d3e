"""The covariate encoding (custvalue.models._covariates): design matrices and their errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from custvalue.errors import DataValidationError, ParameterError
from custvalue.models._covariates import CovariateEncoding, design_matrix, fit_encoding


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "channel": ["online", "offline", "online", "referral", "online"],
            "age": [31.0, 45.0, 22.0, 60.0, 38.0],
            "member": [True, False, False, False, True],
            "region": pd.Categorical(["N", "S", "S", "N", "S"], categories=["S", "N", "E"]),
            "const": [1.0] * 5,
        },
        index=pd.Index([10, 11, 12, 13, 14], name="customer_id"),
    )


def test_numeric_as_is_and_dummies_against_most_frequent_level(table):
    z, enc = design_matrix(table, ["age", "channel"])
    assert enc.terms == ("age", "channel[offline]", "channel[referral]")
    assert enc.reference == {"channel": "online"}
    np.testing.assert_array_equal(z[:, 0], table["age"].to_numpy())
    np.testing.assert_array_equal(z[:, 1], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(z[:, 2], [0, 0, 0, 1, 0])


def test_given_reference_bool_and_category_order(table):
    z, enc = design_matrix(table, ["channel", "member", "region"], reference={"channel": "offline"})
    assert enc.reference["channel"] == "offline"
    assert enc.terms[:2] == ("channel[online]", "channel[referral]")
    assert enc.reference["member"] is False  # 3 of 5 are False
    np.testing.assert_array_equal(z[:, 2], [1, 0, 0, 0, 1])
    # category column: most frequent level S is the reference; the unused level E gives no term
    assert enc.reference["region"] == "S"
    assert enc.terms[3:] == ("region[N]",)


def test_constant_column_gives_no_term(table):
    z, enc = design_matrix(table, ["const"])
    assert z.shape == (5, 0)
    assert enc.constant == ("const",)
    z2, enc2 = design_matrix(table.assign(one="x"), ["one", "age"])
    assert z2.shape == (5, 1)
    assert enc2.terms == ("age",) and enc2.constant == ("one",)


def test_transform_new_rows_and_dict_prospect(table):
    enc = fit_encoding(table, ["channel", "age"])
    z = enc.transform({"channel": "referral", "age": 40})
    np.testing.assert_array_equal(z, [[0.0, 1.0, 40.0]])
    np.testing.assert_array_equal(enc.transform(table.iloc[[1]]), [[1.0, 0.0, 45.0]])


def test_errors_name_column_and_rows(table):
    with pytest.raises(DataValidationError, match=r"'nope'.*not found"):
        fit_encoding(table, ["nope"])
    bad = table.copy()
    bad.loc[12, "age"] = np.nan
    with pytest.raises(DataValidationError, match=r"'age' has 1 of 5 rows missing.*12"):
        fit_encoding(bad, ["age"])
    bad.loc[12, "age"] = np.inf
    with pytest.raises(DataValidationError, match=r"'age'.*non-finite.*12"):
        fit_encoding(bad, ["age"])
    bad2 = table.astype({"channel": object})
    bad2.loc[13, "channel"] = None
    with pytest.raises(DataValidationError, match=r"'channel' has 1 of 5 rows missing.*13"):
        fit_encoding(bad2, ["channel"])
    enc = fit_encoding(table, ["channel"])
    with pytest.raises(DataValidationError, match=r"'channel' has level\(s\) 'tv'.*never saw.*99"):
        enc.transform(pd.DataFrame({"channel": ["online", "tv"]}, index=[98, 99]))
    with pytest.raises(ParameterError, match="list of column names"):
        fit_encoding(table, "age")
    with pytest.raises(ParameterError, match="more than once"):
        fit_encoding(table, ["age", "age"])
    with pytest.raises(ParameterError, match="does not occur"):
        fit_encoding(table, ["channel"], reference={"channel": "tv"})


def test_caller_data_unchanged_and_json_round_trip(table):
    before = table.copy()
    z, enc = design_matrix(table, ["channel", "member", "age", "region"])
    pd.testing.assert_frame_equal(table, before)
    again = CovariateEncoding.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert again.terms == enc.terms
    np.testing.assert_array_equal(again.transform(table), z)
    assert list(enc.describe().index) == list(enc.terms)
