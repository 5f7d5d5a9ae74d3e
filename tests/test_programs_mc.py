"""Small Monte Carlo checks of custvalue.programs against simulations with known truth.

The full study (200 seeds for the randomised campaign, fewer for the club) is
``benchmarks/bench_programs.py`` with figures in ``benchmarks/RESULTS.md``. Here 30 seeds
(randomised) and 8 seeds (club): bias within 4 Monte Carlo standard errors, coverage and
false-positive rates within binomial bounds that a correct 95% interval fails with
probability below 2%.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_programs import _randomised, _staggered, summarise

pytestmark = pytest.mark.slow


def test_randomised_itt_is_unbiased_and_covers_with_and_without_an_effect():
    for effect in (0.1, 0.0):
        s = summarise([_randomised(2000 + k, 3000, effect) for k in range(30)])
        assert abs(s["bias"]) < 4 * s["bias_mcse"] + 1e-12
        assert s["coverage"] >= 25 / 30  # P(<= 24 of 30 | 0.95) < 1%
        if effect == 0.0:
            assert s["reject_zero"] <= 5 / 30  # P(>= 6 of 30 | 0.05) < 1%


def test_staggered_club_estimate_is_close_to_the_truth_and_the_naive_gap_is_not():
    s = summarise([_staggered(3000 + k, 1500, 1.3) for k in range(8)])
    assert abs(s["bias"]) < 4 * s["bias_mcse"] + 0.01
    assert s["coverage"] >= 6 / 8
    assert s["naive_bias"] > 4 * s["bias_mcse"] + abs(s["bias"])
    assert np.isfinite(s["rmse"])
