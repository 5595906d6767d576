"""Tests for pytest_forgetting.comparison.stats (pure numerics, no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from pytest_forgetting.comparison.stats import (
    WALD_MIN_DISCORDANT,
    WALD_MIN_ITEMS,
    PairedBinary,
    benjamini_hochberg,
    holm,
    items_needed,
    minimum_detectable_drop,
    non_inferior,
    non_inferior_continuous,
    paired_binary,
    paired_bootstrap,
    significant_regression,
    tango_interval,
    tango_score,
)

Z95 = float(stats.norm.ppf(0.95))


def _pairs(n11: int, b: int, c: int, n00: int) -> tuple[list[int], list[int]]:
    """Item vectors with n11 both right, b forgotten (1->0), c gained (0->1), n00 both wrong."""
    base = [1] * n11 + [1] * b + [0] * c + [0] * n00
    tuned = [1] * n11 + [0] * b + [1] * c + [0] * n00
    return base, tuned


# ----------------------------------------------------------------------------- binary: basics


def test_hand_checked_small_case() -> None:
    # d = [0, -1, -1, 0, 1]: b = 2, c = 1, delta = (1 - 2)/5 = -0.2.
    # SE = sqrt(((b + c)/n - delta^2) / (n - 1)) = sqrt((0.6 - 0.04) / 4) = sqrt(0.14).
    # X ~ Bin(3, 1/2): exact P(X >= 2) = 4/8; mid-p = P(X > 2) + P(X = 2)/2 = 1/8 + 3/16.
    r = paired_binary([1, 1, 1, 0, 0], [1, 0, 0, 0, 1])
    assert (r.n, r.forgotten, r.gained) == (5, 2, 1)
    assert r.base_mean == pytest.approx(0.6) and r.tuned_mean == pytest.approx(0.4)
    assert r.delta == pytest.approx(-0.2)
    assert r.se == pytest.approx(math.sqrt(0.14))
    assert r.p_value_exact == pytest.approx(0.5)
    assert r.p_value == pytest.approx(5 / 16)
    assert r.interval_method == "tango"
    assert r.ci_low < r.delta < r.ci_high and r.lower_bound == r.ci_low
    assert r.worst_case_drop == -r.lower_bound
    assert r.discordance == pytest.approx(0.6)


def test_accepts_bools_and_numpy() -> None:
    a = np.array([True, True, False, False])
    t = np.array([True, False, True, True])
    r = paired_binary(a, t)
    assert (r.forgotten, r.gained) == (1, 2)
    assert r == paired_binary([1.0, 1.0, 0.0, 0.0], [1, 0, 1, 1])


@pytest.mark.parametrize("b,c", [(0, 0), (0, 5), (5, 0), (3, 9), (17, 4), (40, 40), (1, 60)])
def test_mcnemar_against_scipy(b: int, c: int) -> None:
    r = paired_binary(*_pairs(100, b, c, 50))
    m = b + c
    if m == 0:
        assert r.p_value_exact == 1.0 and r.p_value == 0.5
        return
    mid = stats.binom.sf(b, m, 0.5) + 0.5 * stats.binom.pmf(b, m, 0.5)
    assert r.p_value == pytest.approx(mid, rel=1e-12)
    exact = stats.binomtest(b, m, 0.5, alternative="greater").pvalue
    assert r.p_value_exact == pytest.approx(exact, rel=1e-12)
    assert r.p_value <= r.p_value_exact


def test_paired_se_matches_sample_variance() -> None:
    rng = np.random.default_rng(7)
    a = (rng.random(300) < 0.7).astype(int)
    t = np.where(rng.random(300) < 0.15, 1 - a, a)
    r = paired_binary(a, t)
    d = t - a
    assert r.se == pytest.approx(math.sqrt(np.var(d, ddof=1) / d.size), rel=1e-12)


def test_clustered_se_singletons_equal_paired_se() -> None:
    # C = n singletons: SE_cl = (1/n) sqrt(n/(n-1) sum (d_i - mean)^2) = paired SE.
    rng = np.random.default_rng(8)
    a = (rng.random(120) < 0.6).astype(int)
    t = np.where(rng.random(120) < 0.2, 1 - a, a)
    plain = paired_binary(a, t)
    clustered = paired_binary(a, t, clusters=[f"item{i}" for i in range(120)])
    assert clustered.se == pytest.approx(plain.se, rel=1e-12)
    assert clustered.n_clusters == 120 and clustered.design_effect == pytest.approx(1.0)
    assert clustered.ci_low == pytest.approx(plain.ci_low)


def test_clustered_se_by_hand() -> None:
    # Two clusters of 2: d = [-1, -1 | 0, 0], mean -0.5; residual sums -1 and +1.
    # SE_cl = (1/4) sqrt(2/1 * (1 + 1)) = 0.5; paired SE = sqrt((0.5 - 0.25)/3).
    r = paired_binary([1, 1, 1, 0], [0, 0, 1, 0], clusters=["p", "p", "q", "q"])
    assert r.se == pytest.approx(0.5)
    assert r.design_effect == pytest.approx(0.25 / (0.25 / 3))
    assert r.n_clusters == 2


def test_clusters_widen_small_sample_interval() -> None:
    # Whole passages flip together: the Rao-Scott scaled Tango interval must be wider.
    base, tuned, ids = [], [], []
    for k in range(6):
        flip = k < 2
        for _ in range(4):
            base.append(1)
            tuned.append(0 if flip else 1)
            ids.append(k)
    plain = paired_binary(base, tuned)
    clustered = paired_binary(base, tuned, clusters=ids)
    assert plain.interval_method == clustered.interval_method == "tango"
    assert clustered.design_effect > 1.0
    assert clustered.ci_low < plain.ci_low and clustered.ci_high > plain.ci_high
    assert clustered.mde > plain.mde


# ----------------------------------------------------------------------------- Tango interval


def _brute_force_tango(b: int, c: int, n: int, alpha: float) -> tuple[float, float]:
    """Tango interval with the restricted MLE found by numerically maximising the likelihood."""

    def restricted_pb(d: float) -> float:
        lo, hi = max(0.0, -d), (1.0 - d) / 2.0

        def negloglik(p: float) -> float:
            cells = [(b, p), (c, p + d), (n - b - c, 1.0 - 2.0 * p - d)]
            if any(k > 0 and q <= 0.0 for k, q in cells):
                return math.inf
            return -sum(k * math.log(q) for k, q in cells if k > 0)

        if hi - lo < 1e-15:
            return lo
        res = optimize.minimize_scalar(
            negloglik, bounds=(lo, hi), method="bounded", options={"xatol": 1e-14}
        )
        return float(res.x)

    def score(d: float) -> float:
        var = 2.0 * restricted_pb(d) + d * (1.0 - d)
        num = c - b - n * d
        return 0.0 if num == 0 else num / math.sqrt(n * var)

    z = float(stats.norm.ppf(1.0 - alpha))
    est = (c - b) / n
    grid = np.linspace(-1 + 1e-9, 1 - 1e-9, 801)
    values = np.array([score(d) - z for d in grid])
    lower = -1.0
    for i in range(len(grid) - 1):  # outermost sign change left of the estimate
        if grid[i + 1] <= est and values[i] > 0 >= values[i + 1]:
            lower = optimize.brentq(lambda d: score(d) - z, grid[i], grid[i + 1], xtol=1e-14)
            break
    values = np.array([score(d) + z for d in grid])
    upper = 1.0
    for i in range(len(grid) - 1, 0, -1):
        if grid[i - 1] >= est and values[i] < 0 <= values[i - 1]:
            upper = optimize.brentq(lambda d: score(d) + z, grid[i - 1], grid[i], xtol=1e-14)
            break
    return lower, upper


@pytest.mark.parametrize(
    "b,c,n,alpha",
    [
        (2, 1, 5, 0.05),
        (0, 0, 20, 0.05),
        (0, 3, 25, 0.05),
        (4, 0, 25, 0.025),
        (7, 1, 21, 0.05),
        (9, 9, 29, 0.1),
        (12, 2, 40, 0.05),
        (20, 0, 20, 0.05),
    ],
)
def test_tango_matches_brute_force(b: int, c: int, n: int, alpha: float) -> None:
    low, high = tango_interval(b, c, n, alpha)
    ref_low, ref_high = _brute_force_tango(b, c, n, alpha)
    assert low == pytest.approx(ref_low, abs=1e-6)
    assert high == pytest.approx(ref_high, abs=1e-6)
    assert -1.0 <= low <= (c - b) / n <= high <= 1.0


def test_tango_score_solves_at_bounds_and_decreases() -> None:
    low, high = tango_interval(7, 2, 30, 0.05)
    assert tango_score(7, 2, 30, low) == pytest.approx(Z95, abs=1e-8)
    assert tango_score(7, 2, 30, high) == pytest.approx(-Z95, abs=1e-8)
    grid = np.linspace(-0.99, 0.99, 199)
    scores = [tango_score(7, 2, 30, d) for d in grid]
    assert all(x > y for x, y in zip(scores[:-1], scores[1:], strict=True))


def test_tango_matches_propcis_published_values() -> None:
    # PropCIs::scoreci.mp(x, y, n) estimates (y - x)/n; values quoted by independent users:
    # scoreci.mp(25, 28, 618, conf.level=0.90) -> [-0.0148, 0.0247];
    # scoreci.mp(60, 20, 1000) (95%) -> [-0.0584, -0.0231].
    low, high = tango_interval(25, 28, 618, alpha=0.05)
    assert (round(low, 4), round(high, 4)) == (-0.0148, 0.0247)
    low, high = tango_interval(60, 20, 1000, alpha=0.025)
    assert (round(low, 4), round(high, 4)) == (-0.0584, -0.0231)


def test_identical_models_interval() -> None:
    r = paired_binary([1] * 150 + [0] * 50, [1] * 150 + [0] * 50)
    assert r.delta == 0.0 and r.forgotten == r.gained == 0
    assert r.interval_method == "tango"
    # b = c = 0 has the closed form +-z^2 / (n + z^2) = +-0.01335 for n = 200.
    expected = Z95**2 / (200 + Z95**2)
    assert r.ci_low == pytest.approx(-expected, abs=1e-9)
    assert r.ci_high == pytest.approx(expected, abs=1e-9)
    assert math.isfinite(r.mde) and 0.0 < r.mde < 0.02
    assert non_inferior(r, 0.02) and not significant_regression(r, 0.0)


def test_interval_method_switches_at_threshold() -> None:
    n, m = WALD_MIN_ITEMS, WALD_MIN_DISCORDANT
    assert paired_binary(*_pairs(n - m, m // 2 + 1, m - m // 2 - 1, 0)).interval_method == "tango"
    wald = paired_binary(*_pairs(n - m, m // 2 + 1, m - m // 2 - 1, 0), interval="auto")
    assert wald.interval_method == "wald"
    assert wald.ci_low == pytest.approx(wald.delta - Z95 * wald.se)
    assert wald.ci_high == pytest.approx(wald.delta + Z95 * wald.se)
    few_discordant = paired_binary(*_pairs(100, m // 2, m - m // 2 - 1, 0), interval="auto")
    assert few_discordant.interval_method == "tango"
    few_items = paired_binary(*_pairs(n - 1 - m, m, 0, 0), interval="auto")
    assert few_items.n == n - 1 and few_items.interval_method == "tango"
    extreme = paired_binary([1] * 10, [0] * 10)
    assert extreme.delta == -1.0 and extreme.ci_low == -1.0 and extreme.ci_high < 0


def test_alpha_changes_one_sided_level() -> None:
    base, tuned = _pairs(150, 20, 10, 20)
    r05 = paired_binary(base, tuned, interval="wald")
    r01 = paired_binary(base, tuned, alpha=0.01, interval="wald")
    assert r01.lower_bound < r05.lower_bound
    assert r05.lower_bound == pytest.approx(r05.delta - Z95 * r05.se)
    assert r01.alpha == 0.01 and r01.mde > r05.mde


# ----------------------------------------------------------------------------- decision rules


def _fake(delta: float, lower: float, p: float) -> PairedBinary:
    return PairedBinary(
        n=100,
        base_mean=0.5,
        tuned_mean=0.5 + delta,
        delta=delta,
        se=0.01,
        forgotten=5,
        gained=5,
        p_value=p,
        p_value_exact=p,
        ci_low=lower,
        ci_high=0.1,
        lower_bound=lower,
        interval_method="wald",
        mde=0.05,
        alpha=0.05,
    )


def test_decision_rules() -> None:
    assert non_inferior(_fake(-0.01, -0.03, 0.2), 0.05)
    assert not non_inferior(_fake(-0.01, -0.05, 0.2), 0.05)  # strict inequality
    assert significant_regression(_fake(-0.06, -0.09, 0.01), 0.05)
    assert not significant_regression(_fake(-0.04, -0.09, 0.01), 0.05)  # within tolerance
    assert not significant_regression(_fake(-0.06, -0.09, 0.2), 0.05)  # not significant
    assert not significant_regression(_fake(-0.06, -0.09, 0.03), 0.05, alpha=0.01)


def _simulate(n: int, q1: float, q0: float, sims: int, seed: int, interval: str = "auto") -> list[PairedBinary]:
    """Base correct w.p. 0.6; tuned flips right->wrong w.p. q1 and wrong->right w.p. q0.

    True delta = 0.4 q0 - 0.6 q1.
    """
    rng = np.random.default_rng(seed)
    base = rng.random((sims, n)) < 0.6
    u = rng.random((sims, n))
    tuned = base ^ np.where(base, u < q1, u < q0)
    return [paired_binary(base[i], tuned[i], interval=interval) for i in range(sims)]


SIMS = 2000
MC_SLACK = 3 * math.sqrt(0.05 * 0.95 / SIMS)  # three Monte Carlo standard errors at 5%


@pytest.mark.parametrize("n, interval", [(200, "auto"), (25, "auto"), (100, "tango")])
def test_non_inferiority_false_pass_at_null_boundary(n: int, interval: str) -> None:
    # True delta = 0.4*0.10 - 0.6*0.15 = -0.05 = -tolerance: passing is an error.
    results = _simulate(n, q1=0.15, q0=0.10, sims=SIMS, seed=11 + n, interval=interval)
    expected = {"wald"} if (n == 200 and interval == "auto") else {"tango"}
    assert {r.interval_method for r in results} == expected
    false_pass = np.mean([non_inferior(r, 0.05) for r in results])
    assert false_pass <= 0.05 + MC_SLACK


def test_non_inferiority_rarely_fails_identical_quality_models() -> None:
    # True delta 0 with 10% discordance (5% each way), n = 500, tolerance 0.05.
    results = _simulate(500, q1=0.05 / 0.6, q0=0.05 / 0.4, sims=SIMS, seed=2)
    false_fail = np.mean([not non_inferior(r, 0.05) for r in results])
    assert false_fail <= 0.05


def test_significant_regression_size_on_identical_quality_models() -> None:
    results = _simulate(200, q1=0.05 / 0.6, q0=0.05 / 0.4, sims=SIMS, seed=3)
    false_fail = np.mean([significant_regression(r, 0.0) for r in results])
    assert false_fail <= 0.05 + MC_SLACK


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_reproducible_and_seeded() -> None:
    rng = np.random.default_rng(4)
    a = rng.random(300)
    t = a + rng.normal(-0.02, 0.1, 300)
    first = paired_bootstrap(a, t, n_resamples=2000, seed=5)
    assert first == paired_bootstrap(list(a), list(t), n_resamples=2000, seed=5)
    assert first != paired_bootstrap(a, t, n_resamples=2000, seed=6)
    assert first.delta == pytest.approx(float(np.mean(t - a)))
    assert first.ci_low < first.delta < first.ci_high
    assert (first.lower_bound, first.upper_bound) == (first.ci_low, first.ci_high)
    # percentile interval ~ normal interval for a mean of 300 items
    se = float(np.std(t - a, ddof=1)) / math.sqrt(300)
    assert first.ci_low == pytest.approx(first.delta - Z95 * se, abs=0.25 * se)
    assert first.ci_high == pytest.approx(first.delta + Z95 * se, abs=0.25 * se)
    assert first.mde == pytest.approx((Z95 + stats.norm.ppf(0.8)) * se)


def test_bootstrap_interval_covers_true_mean() -> None:
    rng = np.random.default_rng(9)
    covered = 0
    runs = 200
    for k in range(runs):
        a = rng.random(100)
        t = a + rng.exponential(0.1, 100) - 0.1  # skewed differences, true mean 0
        r = paired_bootstrap(a, t, n_resamples=1000, seed=k)
        covered += r.ci_low <= 0.0 <= r.ci_high
    assert 0.84 <= covered / runs <= 0.95  # nominal 90% two-sided


def test_bootstrap_orientation() -> None:
    rng = np.random.default_rng(10)
    base_nll = rng.gamma(2.0, 1.0, 400)
    tuned_nll = base_nll + rng.normal(0.3, 0.5, 400)  # tuned worse: higher NLL
    r = paired_bootstrap(base_nll, tuned_nll, higher_is_better=False, n_resamples=4000)
    assert r.delta > 0 and r.observed_drop == r.delta
    assert r.worst_case_drop == r.upper_bound > r.delta
    assert r.p_value < 0.01
    assert not non_inferior_continuous(r, 0.3) and non_inferior_continuous(r, 0.5)
    # the same data read as "higher is better" is a significant improvement
    flipped = paired_bootstrap(base_nll, tuned_nll, higher_is_better=True, n_resamples=4000)
    assert flipped.p_value > 0.99
    assert flipped.worst_case_drop == -flipped.lower_bound < 0
    assert (flipped.ci_low, flipped.ci_high) == (r.ci_low, r.ci_high)


def test_bootstrap_degenerate_and_p_value_definition() -> None:
    same = paired_bootstrap([0.5, 0.2, 0.9], [0.5, 0.2, 0.9], n_resamples=99)
    assert same.delta == same.ci_low == same.ci_high == 0.0
    assert same.p_value == 1.0 and same.mde == 0.0
    one = paired_bootstrap([0.5], [0.2], n_resamples=10)
    assert one.delta == pytest.approx(-0.3) and one.mde == math.inf
    assert one.p_value == pytest.approx(1 / 11)  # no resample with delta* >= 0


def test_bootstrap_of_a_thousand_items_and_ten_thousand_resamples() -> None:
    # its speed is measured in benchmarks, not asserted here (timing does not belong in pass/fail tests)
    rng = np.random.default_rng(12)
    a, t = rng.random(1000), rng.random(1000)
    result = paired_bootstrap(a, t, n_resamples=10_000)
    assert result.n_resamples == 10_000 and result.ci_low < result.delta < result.ci_high


# ----------------------------------------------------------------------------- multiplicity


def test_holm_known_values() -> None:
    # sorted: 0.01*5, 0.02*4, 0.03*3, 0.04*2 -> 0.08 raised to 0.09, 0.05*1 -> 0.09
    assert holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    assert holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])
    assert holm([]) == [] and holm([0.3]) == [0.3]


def test_benjamini_hochberg_known_values() -> None:
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05] * 5)
    # sorted 0.005*4/1, 0.01*4/2, 0.03*4/3, 0.04*4/4
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([0.9, 0.001, 0.04]) == pytest.approx([0.9, 0.003, 0.06])
    assert benjamini_hochberg([0.8, 0.9]) == pytest.approx([0.9, 0.9])


def test_adjustments_are_monotone_and_bounded() -> None:
    p = np.random.default_rng(13).random(50) ** 3
    order = np.argsort(p)
    adjusted: np.ndarray
    for adjusted in (np.asarray(holm(p)), np.asarray(benjamini_hochberg(p))):
        assert np.all(adjusted >= p) and np.all(adjusted <= 1.0)
        assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(np.asarray(holm(p)) >= np.asarray(benjamini_hochberg(p)))


# ----------------------------------------------------------------------------- power


@pytest.mark.parametrize("psi,one,six", [(0.10, 246, 417), (0.15, 369, 626), (0.20, 493, 835)])
def test_power_table_items_needed(psi: float, one: int, six: int) -> None:
    assert items_needed(0.05, psi) == one
    assert items_needed(0.05, psi, n_tests=6) == six


@pytest.mark.parametrize("n,mde", [(100, 0.095), (200, 0.068), (300, 0.055), (500, 0.043)])
def test_power_table_minimum_detectable_drop(n: int, mde: float) -> None:
    assert round(minimum_detectable_drop(n, 0.15), 3) == mde


def test_mde_inverts_items_needed() -> None:
    for n in (50, 137, 1000):
        drop = minimum_detectable_drop(n, 0.2)
        assert items_needed(drop, 0.2) == n  # n solves the equation exactly at D = MDE
    assert minimum_detectable_drop(2, 0.2) == math.inf
    assert minimum_detectable_drop(100, 0.0) == 0.0


def test_paired_binary_mde_uses_observed_discordance() -> None:
    r = paired_binary(*_pairs(150, 20, 10, 20))
    assert r.mde == pytest.approx(minimum_detectable_drop(200, 30 / 200))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "base,tuned,kwargs,message",
    [
        ([1, 0, 1], [1, 0], {}, "base has 3 items but tuned has 2"),
        ([], [], {}, "no items"),
        ([1, 0.5], [1, 0], {}, r"base\[1\] is 0.5; expected 0/1"),
        ([1, 0], [1, 2], {}, r"tuned\[1\] is 2; expected 0/1"),
        ([1, float("nan")], [1, 0], {}, "expected finite numbers"),
        ([1, 0], [1, 0], {"alpha": 0.7}, "expected a one-sided level"),
        ([1, 0], [1, 0], {"clusters": ["a"]}, "1 cluster ids for 2 items"),
        ([1, 0], [1, 0], {"clusters": ["a", "a"]}, "at least 2 clusters"),
    ],
)
def test_paired_binary_rejects_bad_input(
    base: list[float], tuned: list[float], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_binary(base, tuned, **kwargs)  # type: ignore[arg-type]


def test_other_functions_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="base has 2 items but tuned has 1"):
        paired_bootstrap([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="no items"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap([0.1], [0.2], n_resamples=0)
    with pytest.raises(ValueError, match=r"expected numbers in \[0, 1\]"):
        holm([0.1, 1.2])
    with pytest.raises(ValueError, match="drop <= psi"):
        items_needed(0.2, 0.1)
    with pytest.raises(ValueError, match="n_tests"):
        items_needed(0.05, 0.1, n_tests=0)
    with pytest.raises(ValueError, match="power"):
        minimum_detectable_drop(100, 0.1, power=1.0)
    with pytest.raises(ValueError, match="expected 0 <= b \\+ c <= n"):
        tango_interval(3, 3, 5)
