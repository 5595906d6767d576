"""Sequential verdicts: the boundaries, and the error rates of the whole procedure by simulation.

Seeded simulations of the procedure the session runs (:func:`decide_sequentially`: Tango
intervals at the looks, today's test at the last one). At the null boundary (true drop =
tolerance) the sequential false-pass rate must stay within alpha; for equal models the
false-fail rate must stay near the fixed-sample design's; and items must be saved where
the answer is clear. Margins are about three binomial standard errors of the estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pytest_forgetting.comparison.decision import resolve_decision
from pytest_forgetting.comparison.sequential import (
    SequentialSettings,
    decide_sequentially,
    parse_sequential,
    plan_looks,
)
from pytest_forgetting.comparison.stats.sequential import boundaries, nominal_levels, spent
from pytest_forgetting.comparison.verdict import blank_result, decide
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import ACC, KL, Metric

ON = SequentialSettings(enabled=True)  # the default spending: Hwang-Shih-DeCani
OBF = SequentialSettings(enabled=True, spending="obrien-fleming")
TEMPLATE = blank_result(capability="sim", suite="sim", metric="acc")


def test_boundaries_match_published_values() -> None:
    # gsDesign (sfLDOF / sfLDPocock), one-sided alpha 0.025, five equally spaced looks
    fractions = [0.2, 0.4, 0.6, 0.8, 1.0]
    assert boundaries(fractions, 0.025) == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    assert boundaries(fractions, 0.025, "pocock") == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=2e-3)
    # Hwang-Shih-DeCani, gamma -2: the first look's bound is the fixed-sample one at the level spent by then
    hsd = boundaries(fractions, 0.025, "hwang-shih-decani")
    first = 0.025 * math.expm1(0.4) / math.expm1(2.0)
    assert hsd[0] == pytest.approx(float(scipy_stats.norm.isf(first)), abs=1e-6)
    obf, pocock = boundaries(fractions, 0.025), boundaries(fractions, 0.025, "pocock")
    assert pocock[0] < hsd[0] < obf[0] and obf[-1] < hsd[-1] < pocock[-1]  # between the two, early and last
    assert boundaries([1.0], 0.05) == pytest.approx([1.6449], abs=1e-4)  # one look: the fixed-sample test
    assert spent(0.0, 0.05) == 0.0 and spent(1.0, 0.05) == pytest.approx(0.05)
    assert nominal_levels(fractions, 0.05)[-1] < 0.05  # the last look pays for the earlier ones


@pytest.mark.parametrize("spending", ["obrien-fleming", "hwang-shih-decani", "pocock"])
def test_boundaries_keep_alpha_over_all_looks(spending) -> None:
    """Brownian motion with zero drift crosses some look's boundary with probability alpha."""
    rng = np.random.default_rng(11)
    fractions = np.array([k / 8 for k in range(1, 9)])
    c = np.array(boundaries(fractions, 0.05, spending))
    steps = np.diff(np.concatenate([[0.0], fractions]))
    paths = np.cumsum(rng.standard_normal((40_000, fractions.size)) * np.sqrt(steps), axis=1)
    crossed = (paths / np.sqrt(fractions) >= c).any(axis=1).mean()
    assert abs(crossed - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 40_000)


@pytest.mark.parametrize("bad", [[0.5, 0.4, 1.0], [0.5], [0.0, 1.0]])
def test_bad_look_fractions_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="information fractions"):
        boundaries(bad, 0.05)


def test_plans_are_seeded_and_cover_the_suite() -> None:
    plan = plan_looks(314, "abc", ON)
    assert plan.sizes == (40, 80, 120, 160, 200, 240, 280, 314)
    assert sorted(plan.order) == list(range(314)) and plan.order != tuple(range(314))
    assert plan_looks(314, "abc", ON) == plan and plan_looks(314, "abd", ON).order != plan.order
    assert plan_looks(60, "abc", ON, "generation").sizes == (30, 60)  # generation: bigger chunks,
    assert plan_looks(40, "abc", ON, "generation").sizes == (40,)  # none shorter than the first
    assert plan_looks(223, "abc", ON, "generation").sizes == (56, 112, 168, 223)
    assert plan_looks(30, "abc", ON).sizes == (20, 30)
    assert plan_looks(20, "abc", ON).sizes == (20,)  # too small for two looks: the fixed design
    off = plan_looks(314, "abc", SequentialSettings())
    assert off.sizes == (314,) and off.order == tuple(range(314))


def test_the_switch_reads_on_and_off_and_nothing_else() -> None:
    assert parse_sequential("on") is True and parse_sequential("OFF") is False
    with pytest.raises(ForgettingError, match="expected on or off") as info:
        parse_sequential("sometimes")
    assert "\n" not in str(info.value)


def _binary_pairs(rng: np.random.Generator, n: int, forgotten: float, gained: float) -> tuple[list, list]:
    """Paired 0/1 correctness: P(1 -> 0) = forgotten, P(0 -> 1) = gained, the rest agree (75% right)."""
    u = rng.random(n)
    agree = (rng.random(n) < 0.75).astype(float)
    base, tuned = agree.copy(), agree.copy()
    base[u < forgotten], tuned[u < forgotten] = 1.0, 0.0
    gain = (u >= forgotten) & (u < forgotten + gained)
    base[gain], tuned[gain] = 0.0, 1.0
    return base.tolist(), tuned.tolist()


def _simulate(draw, metric: Metric, tolerance: float, reps: int, n: int, seed: int,
              settings: SequentialSettings = ON) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    decision = resolve_decision(tolerance=tolerance)
    sequential_pass = fixed_pass = items = 0
    for rep in range(reps):
        base, tuned = draw(rng, n)
        plan = plan_looks(n, f"rep{rep}", settings)
        result = decide_sequentially(base, tuned, decision, metric=metric, template=TEMPLATE, plan=plan)
        sequential_pass += result.passed
        fixed_pass += decide(base, tuned, decision, metric=metric, template=TEMPLATE).passed
        items += result.n
    return {"sequential": sequential_pass / reps, "fixed": fixed_pass / reps, "items": items / (reps * n)}


def _margin(rate: float, reps: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / reps)


#: The spending functions whose power the tests below hold to the fixed design's (Pocock's is lower).
KEEP_POWER = [ON, OBF]


@pytest.mark.parametrize("settings", KEEP_POWER, ids=lambda s: s.spending)
def test_binary_false_pass_stays_within_alpha_at_the_null_boundary(settings) -> None:
    # true delta = gained - forgotten = -0.05 = -tolerance: every pass is a false pass
    reps = 500
    rates = _simulate(lambda rng, n: _binary_pairs(rng, n, 0.10, 0.05), ACC, 0.05, reps, 300, seed=1,
                      settings=settings)
    assert rates["sequential"] <= 0.05 + _margin(0.05, reps)
    assert rates["sequential"] <= rates["fixed"] + _margin(0.05, reps)


@pytest.mark.parametrize("settings", KEEP_POWER, ids=lambda s: s.spending)
def test_binary_equal_models_fail_about_as_often_as_the_fixed_design(settings) -> None:
    # delta 0 with 10% discordance: MDE at n=300 is about 4.8 points < tolerance 5 (power > 80%)
    reps = 400
    rates = _simulate(lambda rng, n: _binary_pairs(rng, n, 0.05, 0.05), ACC, 0.05, reps, 300, seed=2,
                      settings=settings)
    false_fail, fixed_false_fail = 1 - rates["sequential"], 1 - rates["fixed"]
    assert false_fail <= 0.2 + _margin(0.2, reps)  # what the MDE promises at 80% power
    assert false_fail <= fixed_false_fail + 0.05  # the spending costs a little power, not more
    assert rates["items"] < 0.9  # and scores fewer items


def test_earlier_spending_stops_a_clear_pass_on_a_large_suite_sooner() -> None:
    # a careful adapter on 960 items (1% of items forgotten, 1% gained): O'Brien-Fleming spends
    # almost nothing at the first looks; Hwang-Shih-DeCani (gamma -2) stops at about two thirds the items
    draw = lambda rng, n: _binary_pairs(rng, n, 0.01, 0.01)  # noqa: E731
    obf = _simulate(draw, ACC, 0.05, 40, 960, seed=6, settings=OBF)
    hsd = _simulate(draw, ACC, 0.05, 40, 960, seed=6)
    assert obf["sequential"] == hsd["sequential"] == 1.0
    assert hsd["items"] < 0.8 * obf["items"]


def test_clear_answers_stop_early() -> None:
    kept = _simulate(lambda rng, n: _binary_pairs(rng, n, 0.01, 0.01), ACC, 0.05, 100, 300, seed=3)
    forgot = _simulate(lambda rng, n: _binary_pairs(rng, n, 0.20, 0.0), ACC, 0.05, 100, 300, seed=4)
    assert kept["sequential"] == 1.0 and kept["items"] < 0.7
    assert forgot["sequential"] == 0.0 and forgot["items"] < 0.4


@pytest.mark.parametrize("tolerance", [0.05, 0.10])
def test_no_early_pass_before_any_valid_test_could_pass(tolerance) -> None:
    # With every item agreeing, a null model at the boundary (a share `tolerance` forgotten)
    # gives those data with probability (1 - tolerance)^n: no level-alpha test passes before
    # that is below alpha (59 items at 0.05, 29 at 0.10). Looks every 5 items must respect it,
    # and still stop early (benchmarks/sequential.py reports this floor for the example suites).
    floor = math.ceil(math.log(0.05) / math.log(1 - tolerance))
    fine = SequentialSettings(enabled=True, min_look=5, max_looks=80)
    decision = resolve_decision(tolerance=tolerance)
    agree = [1.0, 0.0] * 200
    result = decide_sequentially(agree, agree, decision, metric=ACC, template=TEMPLATE,
                                 plan=plan_looks(len(agree), "floor", fine))
    assert result.passed and floor <= result.n < len(agree)
    forgot = decide_sequentially([1.0] * 400, [0.0] * 400, decision, metric=ACC, template=TEMPLATE,
                                 plan=plan_looks(400, "floor", fine))
    assert not forgot.passed and math.log(0.05) / math.log((1 + tolerance) / 2) <= forgot.n < 400


def test_continuous_bounded_metric_keeps_alpha_at_the_null_boundary() -> None:
    """A ROUGE-like score in [0, 1] (paired bootstrap at the last look, normal bounds before)."""
    rouge = Metric("rouge", higher_is_better=True, binary=False, unit="", low=0.0, high=1.0)

    def draw(rng: np.random.Generator, n: int) -> tuple[list, list]:
        base = rng.beta(6, 6, n)  # clipping below is rare, so the true drop is the 0.05 subtracted
        return base.tolist(), np.clip(base - 0.05 + rng.normal(0, 0.1, n), 0, 1).tolist()

    reps = 300
    rates = _simulate(draw, rouge, 0.05, reps, 200, seed=5)
    assert rates["sequential"] <= 0.05 + _margin(0.05, reps)
    assert rates["items"] < 1.0  # the false passes it avoids are not bought by never stopping


def test_skewed_drift_keeps_alpha_at_the_null_boundary() -> None:
    """KL drift is skewed (a few items drift a lot): lognormal per-item KL with mean = the bound."""
    bound, sigma = 0.5, 1.0
    mu = math.log(bound) - sigma**2 / 2  # E[KL] = bound exactly

    def draw(rng: np.random.Generator, n: int) -> tuple[list, list]:
        return [0.0] * n, rng.lognormal(mu, sigma, n).tolist()

    reps = 300
    rates = _simulate(draw, KL, bound, reps, 120, seed=6)
    # an unbounded metric stops early only to fail, and its last look is stricter: never more
    # false passes than the fixed-sample bootstrap on the same draws (which itself passes too
    # often on data this skewed: the percentile bootstrap's upper bound is too low)
    assert rates["sequential"] <= rates["fixed"]

    far_above = _simulate(lambda rng, n: ([0.0] * n, rng.lognormal(mu + 1.5, sigma, n).tolist()), KL, bound,
                          50, 120, seed=7)
    assert far_above["sequential"] == 0.0 and far_above["items"] < 0.6  # clear drift stops early


def test_a_wrong_number_of_scores_is_refused() -> None:
    plan = plan_looks(40, "x", ON)
    with pytest.raises(ForgettingError, match="the plan covers 40 items"):
        decide_sequentially([1.0] * 39, [1.0] * 39, resolve_decision(), metric=ACC, template=TEMPLATE, plan=plan)
