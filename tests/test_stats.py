"""Coverage and validation of the output-analysis intervals in queueing_llm.stats.

Coverage checks: over many seeded repetitions the interval must cover the true mean at
close to its nominal level. "Close" is a two-sided exact binomial test on the coverage
count at significance ALPHA = 0.001 (the repetitions are independent Bernoulli trials
with success probability = the true coverage). Each check is paired with a negative
control that the same test rejects, so the test can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import binomtest

from queueing_llm.errors import ModelError, ParameterError
from queueing_llm.stats import (
    DEFAULT_LEVEL,
    Interval,
    batch_means_ci,
    batch_totals,
    binomial_ci,
    mser5,
    rate_ci,
    ratio_ci,
    replications_ci,
    steady_state_ci,
    warmup_point,
)

ALPHA = 0.001


def ar1(rng: np.random.Generator, n: int, phi: float, size: int = 1) -> np.ndarray:
    """Stationary AR(1) rows with unit marginal variance and mean 0."""
    e = rng.normal(size=(size, n))
    e[:, 0] /= np.sqrt(1 - phi**2)  # start in stationarity
    return lfilter([1.0], [1.0, -phi], e, axis=1) * np.sqrt(1 - phi**2)


def coverage_consistent(hits: int, reps: int, level: float) -> bool:
    return binomtest(hits, reps, level).pvalue > ALPHA


# -- coverage ---------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.9, 0.95])
def test_replications_cover_iid_normal(level):
    rng = np.random.default_rng(11)
    reps, r = 2000, 8
    data = rng.normal(loc=3.0, scale=2.0, size=(reps, r))
    hits = sum(3.0 in replications_ci(row, level) for row in data)
    assert coverage_consistent(hits, reps, level), hits / reps


def test_replications_cover_ar1_run_means():
    # each replication's estimate is the mean of one AR(1) run: i.i.d. across replications
    rng = np.random.default_rng(12)
    reps, r, n = 1000, 10, 500
    runs = ar1(rng, n, 0.9, size=reps * r).reshape(reps, r, n) + 1.5
    hits = sum(1.5 in steady_state_ci(list(block), warmup=None) for block in runs)
    assert coverage_consistent(hits, reps, DEFAULT_LEVEL), hits / reps


def test_batch_means_cover_iid_normal():
    rng = np.random.default_rng(13)
    reps = 1000
    data = rng.normal(loc=-1.0, size=(reps, 2000))
    hits = sum(-1.0 in batch_means_ci(row) for row in data)
    assert coverage_consistent(hits, reps, DEFAULT_LEVEL), hits / reps


@pytest.mark.slow
@pytest.mark.parametrize("phi", [0.5, 0.8])
def test_batch_means_cover_ar1(phi):
    rng = np.random.default_rng(14)
    reps = 800
    data = ar1(rng, 20_000, phi, size=reps) + 7.0
    hits = sum(7.0 in batch_means_ci(row, batches=20) for row in data)
    assert coverage_consistent(hits, reps, DEFAULT_LEVEL), hits / reps


def test_batch_means_with_unit_batches_undercover_ar1():
    """Negative control: batches of length 1 ignore the autocorrelation; the binomial test
    must reject the resulting coverage (so the coverage tests above can fail)."""
    rng = np.random.default_rng(15)
    reps = 300
    data = ar1(rng, 2000, 0.8, size=reps)
    hits = sum(0.0 in batch_means_ci(row, batches=row.size) for row in data)
    assert not coverage_consistent(hits, reps, DEFAULT_LEVEL)
    assert hits / reps < 0.7


@pytest.mark.slow
def test_rate_ci_covers_drift_of_random_walk_with_correlated_steps():
    rng = np.random.default_rng(16)
    reps, drift = 600, 0.25
    steps = ar1(rng, 10_000, 0.6, size=reps) + drift
    levels = np.cumsum(steps, axis=1)
    hits = sum(drift in rate_ci(row) for row in levels)
    assert coverage_consistent(hits, reps, DEFAULT_LEVEL), hits / reps
    # replications: each run's (Q_N - Q_0)/N
    blocks = levels.reshape(reps // 6, 6, -1)
    hits = sum(drift in rate_ci(list(b)) for b in blocks)
    assert coverage_consistent(hits, len(blocks), DEFAULT_LEVEL), hits / len(blocks)


def test_ratio_ci_covers_ratio_of_means():
    rng = np.random.default_rng(17)
    reps, n = 1500, 20
    x = rng.poisson(20, size=(reps, n)) + 1.0  # E[X] = 21
    y = 3.0 * x + rng.normal(scale=4.0, size=(reps, n)) + 2.1  # E[Y] = 65.1, ratio 3.1
    hits = sum(3.1 in ratio_ci(yy, xx) for yy, xx in zip(y, x, strict=True))
    assert coverage_consistent(hits, reps, DEFAULT_LEVEL), hits / reps


def test_ratio_ci_of_batches_matches_batch_means_for_unit_denominators():
    rng = np.random.default_rng(18)
    s = rng.normal(size=4000)
    a = ratio_ci(batch_totals(s), batch_totals(np.ones_like(s)))
    b = batch_means_ci(s)
    assert a.estimate == pytest.approx(b.estimate)
    assert a.half_width == pytest.approx(b.half_width)


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.3, 0.002])
def test_binomial_ci_covers_at_least_the_nominal_level(p):
    rng = np.random.default_rng(19)
    reps, n = 4000, 300
    hits = sum(p in binomial_ci(int(k), n) for k in rng.binomial(n, p, size=reps))
    # Clopper-Pearson is conservative: coverage >= level; one-sided binomial test
    assert binomtest(hits, reps, DEFAULT_LEVEL, alternative="less").pvalue > ALPHA, hits / reps


def test_student_interval_on_rare_indicators_collapses_but_binomial_does_not():
    """Negative control for rare events: with p = 0.002 and 300 trials, no success is common;
    the Student interval on the 0/1 values is then [0, 0] and misses p."""
    rng = np.random.default_rng(20)
    reps, n, p = 1000, 300, 0.002
    draws = rng.random((reps, n)) < p
    # a row without a success gives the zero-width Student interval [0, 0], which misses p
    student = sum(p in replications_ci(row.astype(float)) for row in draws)
    assert not coverage_consistent(student, reps, DEFAULT_LEVEL)
    exact = sum(p in binomial_ci(int(row.sum()), n) for row in draws)
    assert binomtest(exact, reps, DEFAULT_LEVEL, alternative="less").pvalue > ALPHA


# -- exact values -----------------------------------------------------------------------


def test_binomial_ci_textbook_values():
    iv = binomial_ci(0, 10, 0.95)
    assert (iv.low, iv.estimate) == (0.0, 0.0) and iv.high == pytest.approx(1 - 0.025 ** (1 / 10))
    iv = binomial_ci(10, 10, 0.95)
    assert iv.high == 1.0 and iv.low == pytest.approx(0.025 ** (1 / 10))
    assert binomial_ci(5, 10).method == "binomial"
    with pytest.raises(ParameterError, match="successes"):
        binomial_ci(11, 10)
    with pytest.raises(ParameterError, match="trials"):
        binomial_ci(0, 0)


def test_replications_ci_textbook_value():
    iv = replications_ci([1.0, 2.0, 3.0, 4.0, 5.0], level=0.95)
    # mean 3, s = sqrt(2.5), t_{4, 0.975} = 2.7764451
    half = 2.7764451051977987 * np.sqrt(2.5) / np.sqrt(5)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((3.0, 3.0 - half, 3.0 + half))
    assert (iv.level, iv.method, iv.n) == (0.95, "replications", 5)
    assert 3.0 in iv and 3.0 + 1.01 * half not in iv
    assert iv.contains(3.0 + 1.01 * half, slack=0.02 * half)


def test_batch_means_drop_the_remainder_at_the_start():
    series = np.r_[1000.0, np.repeat([1.0, 3.0], 10)]  # 21 points, 2 batches of 10
    iv = batch_means_ci(series, batches=2)
    assert iv.estimate == pytest.approx(2.0) and iv.n == 2
    np.testing.assert_allclose(batch_totals(series, 2), [10.0, 30.0])


def test_steady_state_ci_records_the_warmup():
    series = np.r_[np.zeros(50) + 100.0, np.tile([0.0, 1.0], 500)]
    iv = steady_state_ci(series, warmup=50)
    assert iv.warmup == 50 and iv.estimate == pytest.approx(0.5)
    assert steady_state_ci(series, warmup=None).warmup == 0
    assert "batch-means" in str(iv)


# -- MSER-5 -----------------------------------------------------------------------------


def test_mser5_finds_a_step_transient_exactly():
    series = np.r_[np.full(50, 1.0), np.zeros(950)]
    assert mser5(series) == 50
    assert warmup_point(series) == 50


def test_mser5_removes_an_injected_initial_transient():
    rng = np.random.default_rng(100)
    reps = 300
    n = np.arange(10_000)
    transient = np.where(n < 500, 10.0 * (1 - n / 500), 0.0)  # 10 sd, gone after 500 points
    hits = 0
    for series in ar1(rng, n.size, 0.8, size=reps) + transient:
        d = mser5(series)
        # the deleted part holds the transient down to below 3 sd, and not much more
        assert 350 <= d <= 1000
        truncated = steady_state_ci(series)
        assert truncated.warmup == d
        # the bias left is small against the interval (the coverage test below is the real
        # criterion), the bias removed is not
        assert transient[d:].mean() < 0.5 * truncated.half_width < transient.mean()
        hits += 0.0 in truncated
    assert coverage_consistent(hits, reps, DEFAULT_LEVEL), hits / reps


def test_mser5_short_series_is_not_truncated():
    assert mser5([5.0, 1.0, 1.0]) == 0


def test_replications_share_a_common_mser5_warmup():
    runs = [np.r_[np.full(100, 5.0), np.zeros(900) + (-1) ** r] for r in range(4)]
    iv = steady_state_ci(runs)
    assert iv.warmup == 100 and iv.method == "replications" and iv.estimate == pytest.approx(0.0)


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5, float("nan"), "0.9"])
def test_level_outside_open_unit_interval_is_rejected(level):
    with pytest.raises(ParameterError, match="level"):
        replications_ci([1.0, 2.0, 3.0], level=level)
    with pytest.raises(ParameterError, match="level"):
        batch_means_ci(np.arange(100.0), level=level)
    with pytest.raises(ParameterError, match="level"):
        ratio_ci([1.0, 2.0], [1.0, 1.0], level=level)


@pytest.mark.parametrize("batches", [0, 1, 2.5])
def test_too_few_or_fractional_batches_are_rejected(batches):
    with pytest.raises(ParameterError, match="batches"):
        batch_means_ci(np.arange(100.0), batches=batches)


def test_series_shorter_than_the_batch_count_is_rejected():
    with pytest.raises(ParameterError, match="too short for 20 batches"):
        batch_means_ci(np.arange(10.0))


def test_other_bad_inputs_name_the_problem():
    with pytest.raises(ParameterError, match="at least 2"):
        replications_ci([1.0])
    with pytest.raises(ParameterError, match="one-dimensional"):
        batch_means_ci(np.zeros((3, 40)))
    with pytest.raises(ParameterError, match="finite"):
        replications_ci([1.0, float("inf")])
    with pytest.raises(ParameterError, match="warmup"):
        steady_state_ci(np.arange(100.0), warmup="auto")
    with pytest.raises(ParameterError, match="warmup"):
        steady_state_ci(np.arange(100.0), warmup=99)
    with pytest.raises(ParameterError, match="at least 2 runs"):
        steady_state_ci([np.arange(100.0)])
    with pytest.raises(ParameterError, match="equal length"):
        ratio_ci([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ParameterError, match="positive total"):
        ratio_ci([1.0, 2.0], [0.0, 0.0])
    assert issubclass(ParameterError, ModelError)


def test_interval_is_a_frozen_value():
    iv = Interval(1.0, 0.5, 1.5, 0.95, "replications", 10)
    assert iv.half_width == 0.5 and iv.warmup == 0
    with pytest.raises(AttributeError):
        iv.low = 0.0  # type: ignore[misc]


def test_level_is_printed_with_the_digits_it_needs():
    assert Interval(1.0, 0.5, 1.5, 0.999, "replications", 10).level_percent == "99.9%"
    assert "(95%, batch-means, n=20)" in str(Interval(1.0, 0.5, 1.5, 0.95, "batch-means", 20))
