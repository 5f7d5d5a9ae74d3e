"""custvalue._special against high-precision mpmath references on extreme arguments.

The references are independent closed forms evaluated with 60 significant digits: the
Pareto/NBD death-time integral through the Gauss hypergeometric function (Fader & Hardie 2005
note, eq. 19-20: ``int_y^inf (a+t)^-p (b+t)^-q dt = (a+y)^-m / m * 2F1(m, q; m+1; (a-b)/(a+y))``
for ``a >= b``, ``m = p + q - 1``, and the mirrored form for ``a < b``) and Tricomi's ``U``.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from custvalue._special import (
    digamma_difference,
    gauss_legendre,
    log_gamma_ratio,
    log_power_product_integral,
    log_tricomi_u_ss,
)

mp.mp.dps = 60


def _log_tail(y: float, a: float, p: float, b: float, q: float) -> mp.mpf:
    """log int_y^inf (a+t)^-p (b+t)^-q dt via 2F1 in mpmath (FH 2005 eq. 19-20)."""
    a, b, y = mp.mpf(a), mp.mpf(b), mp.mpf(y)
    m = mp.mpf(p) + mp.mpf(q) - 1
    if a >= b:
        return mp.log((a + y) ** (-m) / m * mp.hyp2f1(m, q, m + 1, (a - b) / (a + y)))
    return mp.log((b + y) ** (-m) / m * mp.hyp2f1(m, p, m + 1, (b - a) / (b + y)))


def _log_between(lo: float, hi: float, a: float, p: float, b: float, q: float) -> float:
    g_lo = mp.exp(_log_tail(lo, a, p, b, q))
    g_hi = mp.exp(_log_tail(hi, a, p, b, q))
    return float(mp.log(g_lo - g_hi))


def _extreme_grid(seed: int, n: int) -> list[dict[str, float]]:
    """Pareto/NBD-like arguments: p = r + x, q = s + 1, wide scales, heavy buyers, a == b."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        r, s = 10 ** rng.uniform(-2, 1), 10 ** rng.uniform(-2, 1)
        alpha, beta = 10 ** rng.uniform(-2, 4), 10 ** rng.uniform(-2, 4)
        T = 10 ** rng.uniform(-1, np.log10(3650.0))  # up to ten years in days
        x = int(10 ** rng.uniform(0, 3.5)) if rng.uniform() < 0.8 else 0
        tx = T * rng.uniform() if x > 0 else 0.0
        u = rng.uniform()
        if u < 0.1:
            beta = alpha * (1 + 1e-9)  # alpha ~ beta: z -> 0 in one form, 2F1 cases switch
        elif u < 0.2:
            tx = T * (1 - 1e-6)  # last purchase just before the end
        cases.append(dict(r=r, s=s, alpha=alpha, beta=beta, T=T, x=x, tx=tx))
    # hand-picked corners: frequency in the thousands, ten years, tiny/huge scale ratios
    cases += [
        dict(r=0.55, alpha=74.0, s=0.61, beta=82.0, x=5000, tx=3649.0, T=3650.0),
        dict(r=0.55, alpha=74.0, s=0.61, beta=82.0, x=3000, tx=10.0, T=3650.0),
        dict(r=0.1, alpha=0.01, s=0.1, beta=100.0, x=0, tx=0.0, T=4000.0),
        dict(r=2.0, alpha=1e4, s=0.05, beta=0.02, x=1, tx=1.0, T=3650.0),
        dict(r=0.04, alpha=1418.0, s=0.044, beta=0.058, x=0, tx=0.0, T=18.5),
        dict(r=0.5, alpha=50.0, s=0.5, beta=50.0, x=200, tx=700.0, T=730.0),
    ]
    return cases


@pytest.mark.parametrize("seed", [1, 2])
def test_finite_integral_matches_mpmath_on_extreme_grid(seed: int) -> None:
    worst = 0.0
    for c in _extreme_grid(seed, 60):
        want = _log_between(c["tx"], c["T"], c["alpha"], c["r"] + c["x"], c["beta"], c["s"] + 1)
        got = float(
            log_power_product_integral(c["tx"], c["T"], c["alpha"], c["r"] + c["x"],
                                       c["beta"], c["s"] + 1)
        )
        assert np.isfinite(got), c
        worst = max(worst, abs(got - want) / max(1.0, abs(want)))
    assert worst < 1e-11


@pytest.mark.parametrize("seed", [3, 4])
def test_infinite_integral_matches_mpmath_on_extreme_grid(seed: int) -> None:
    grid = _extreme_grid(seed, 60)
    lo = np.array([c["tx"] for c in grid])
    a = np.array([c["alpha"] for c in grid])
    b = np.array([c["beta"] for c in grid])
    p = np.array([c["r"] + c["x"] for c in grid])
    q = np.array([c["s"] + 1 for c in grid])
    got = log_power_product_integral(lo, np.inf, a, p, b, q)  # vectorised call
    want = np.array([float(_log_tail(*args)) for args in zip(lo, a, p, b, q, strict=True)])
    assert np.all(np.isfinite(got))
    rel = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert rel.max() < 1e-11


def test_empty_interval_is_minus_infinity_and_moments_finite() -> None:
    val, mom = log_power_product_integral(5.0, 5.0, 2.0, 3.0, 4.0, 1.5, moments=True)
    assert val == -np.inf
    assert np.isclose(mom.log_a, np.log(7.0)) and np.isclose(mom.inv_b, 1 / 9.0)


@pytest.mark.parametrize(
    "lo, hi, a, p, b, q",
    [
        (0.0, 38.86, 10.58, 0.553, 11.67, 1.606),  # CDNOW-like, zero repeaters
        (30.43, 38.86, 10.58, 2.553, 11.67, 1.606),
        (100.0, np.inf, 74.0, 300.55, 82.0, 1.61),  # heavy buyer, series tail only
        (0.3, np.inf, 0.05, 1.05, 2451.0, 8.9),  # scales 5e4 apart: quadrature + series
        (12.0, 700.0, 3000.0, 40.0, 0.5, 1.2),
    ],
)
def test_moments_are_derivatives_of_the_log_integral(lo, hi, a, p, b, q) -> None:
    """d log I/dp = -E[log(a+t)], d log I/da = -p E[1/(a+t)] (and for q, b), by mpmath.diff."""
    _, mom = log_power_product_integral(lo, hi, a, p, b, q, moments=True)

    def log_i(aa, pp, bb, qq):
        if np.isinf(hi):
            return _log_tail(lo, aa, pp, bb, qq)
        return mp.log(
            mp.exp(_log_tail(lo, aa, pp, bb, qq)) - mp.exp(_log_tail(hi, aa, pp, bb, qq))
        )

    d_p = float(mp.diff(lambda v: log_i(a, v, b, q), mp.mpf(p)))
    d_q = float(mp.diff(lambda v: log_i(a, p, b, v), mp.mpf(q)))
    d_a = float(mp.diff(lambda v: log_i(v, p, b, q), mp.mpf(a)))
    d_b = float(mp.diff(lambda v: log_i(a, p, v, q), mp.mpf(b)))
    np.testing.assert_allclose(-float(mom.log_a), d_p, rtol=1e-9)
    np.testing.assert_allclose(-float(mom.log_b), d_q, rtol=1e-9)
    np.testing.assert_allclose(-p * float(mom.inv_a), d_a, rtol=1e-9)
    np.testing.assert_allclose(-q * float(mom.inv_b), d_b, rtol=1e-9)


def test_broadcasting_and_shape() -> None:
    out = log_power_product_integral(np.zeros((2, 3)), 10.0, 1.0, 2.0, 3.0, 1.5)
    assert out.shape == (2, 3)
    assert np.allclose(out, out[0, 0])


@pytest.mark.parametrize("s", [0.01, 0.3, 0.99, 1.0, 1.0001, 1.5, 3.0, 20.0, 100.0])
def test_tricomi_u_matches_mpmath(s: float) -> None:
    z = np.array([1e-12, 1e-6, 1e-3, 0.3, 1.0, 7.0, 50.0, 1e3, 1e6])
    got = log_tricomi_u_ss(s, z)
    want = np.array([float(mp.log(mp.hyperu(s, s, zz))) for zz in z])
    assert np.all(np.isfinite(got))  # scipy's hyperu alone returns NaN for s = 20, small z
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_gauss_legendre_is_exact_for_polynomials() -> None:
    nodes, weights = gauss_legendre(12)
    for k in range(24):
        assert np.isclose(weights @ nodes**k, 1.0 / (k + 1), rtol=1e-13)
    with pytest.raises(ValueError):
        nodes[0] = 0.0  # cached arrays are read-only


@pytest.mark.parametrize("z", [1e-3, 0.5, 3.0, 99.0, 100.0, 999.0, 1e3, 1.5e3, 1e5, 1e7, 3e7, 1e9, 1e13, 1e200])
@pytest.mark.parametrize("x", [0.0, 0.3, 2.9739, 50.0, 1e4, 1e8])
def test_log_gamma_ratio_and_digamma_difference_against_mpmath(z, x):
    mp.mp.dps = 260  # z + x must be exact at z = 1e200
    try:
        zm = mp.mpf(z)
        ref = mp.loggamma(zm + x) - mp.loggamma(zm)
        dref = mp.digamma(zm + x) - mp.digamma(zm)
    finally:
        mp.mp.dps = 60
    got = float(log_gamma_ratio(z, x))
    assert abs(got - float(ref)) <= 1e-13 * max(1.0, abs(float(ref)))
    dgot = float(digamma_difference(z, x))
    if x == 0:
        assert dgot == 0.0
    else:
        assert abs(dgot - float(dref)) <= 1e-12 * abs(float(dref))
