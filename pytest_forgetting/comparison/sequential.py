"""Sequential verdicts: score a suite's items in a seeded random order, in chunks, and stop once decided.

After each chunk (a *look*) the capability is decided if the evidence already meets the
promised error rates; otherwise the next chunk is scored. The design is group-sequential
(:mod:`pytest_forgetting.comparison.stats.sequential`): the suite's size is known, looks fall
at fixed item counts, and the level ``alpha`` is spent over the looks by a Lan-DeMets spending
function (by default Hwang-Shih-DeCani with gamma -2; O'Brien-Fleming-type or Pocock on
request), so over all looks together

* a tuned model that dropped by the tolerance or more passes with probability at most
  ``alpha`` (the same guarantee as the fixed-sample non-inferiority test), and
* a tuned model within the tolerance is failed *early* with probability at most ``alpha``.

At an interim look ``k`` with nominal level ``a_k = 1 - Phi(c_k)``:

* **pass** when the one-sided ``1 - a_k`` lower bound of the change (in the better
  direction) is above ``-tolerance``: non-inferiority already shown;
* **fail** when the one-sided ``1 - a_k`` upper bound is below ``-tolerance``: a drop beyond
  the tolerance already shown.

Binary metrics use the Tango score interval (its score statistic is asymptotically the
canonical group-sequential statistic); continuous metrics use the normal interval
``mean +- c_k SE`` with the paired (or clustered) SE, and one without a finite declared
range (NLL, KL) stops early only to fail (see :class:`LookBounds`). A capability not decided early runs to
the last look and is decided by today's fixed-sample rule on every item (Tango and McNemar,
or the paired bootstrap), at the level the spending function leaves for that look (with the
default spending and 8 looks about 0.034 for alpha 0.05, what keeps the total within alpha).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import Metric

if TYPE_CHECKING:
    from pytest_forgetting.comparison.decision import Decision
    from pytest_forgetting.comparison.result import ComparisonResult

#: The fewest items an interim look is taken at (normal approximations need some).
MIN_LOOK_ITEMS = 20
#: At most this many looks per suite (more looks: finer stopping, a stricter last look).
MAX_LOOKS = 8
#: Generation decodes token by token, and a decoding step costs nearly the same for 20 rows
#: as for 60 on a CPU (measured: instructions in 3 chunks of 20 took 1.47x one batch of 60),
#: so generation suites are looked at less often, in bigger chunks, none shorter than the first.
GENERATION_MIN_LOOK_ITEMS = 30
GENERATION_MAX_LOOKS = 4
#: Where scoring order comes from unless a seed is given.
DEFAULT_SEED = 0
#: How alpha is spent unless asked otherwise: it stops a clear case at the second of 8 looks where
#: O'Brien-Fleming waits for the third or later (a suite of 960: 240 items against 360), for about
#: a point of power at the MDE (simulated, 300 items: 18.8% false fails for equal models against
#: 17.6%, the fixed design 16.2%; ``benchmarks/sequential_simulation.py``).
DEFAULT_SPENDING = "hwang-shih-decani"


@dataclass(frozen=True)
class SequentialSettings:
    """Whether verdicts are sequential, and the design's knobs.

    Attributes:
        enabled: score in chunks and stop once decided (False: every item, today's test).
        seed: the scoring order's seed (mixed with the suite's fingerprint).
        spending: the alpha-spending function (``obrien-fleming``, ``hwang-shih-decani`` or ``pocock``).
        min_look, max_looks: the fewest items of an interim look (and of each chunk) and the
            most looks per suite; ``generation_*`` the same for generation suites.
    """

    enabled: bool = False
    seed: int = DEFAULT_SEED
    spending: str = DEFAULT_SPENDING
    min_look: int = MIN_LOOK_ITEMS
    max_looks: int = MAX_LOOKS
    generation_min_look: int = GENERATION_MIN_LOOK_ITEMS
    generation_max_looks: int = GENERATION_MAX_LOOKS


def parse_sequential(value: object) -> bool:
    """``on``/``off`` (also true/false, yes/no, 1/0) for ``--forgetting-sequential``; one line otherwise."""
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ForgettingError(f"sequential verdicts {value!r}: expected on or off")


def parse_spending(value: object) -> str:
    """An alpha-spending function's name for ``--forgetting-sequential-spending``; one line otherwise."""
    from pytest_forgetting.comparison.stats.sequential import SPENDING_FUNCTIONS

    text = str(value).strip().lower()
    if text not in SPENDING_FUNCTIONS:
        raise ForgettingError(f"sequential spending {value!r}: expected {', '.join(SPENDING_FUNCTIONS[:-1])} "
                              f"or {SPENDING_FUNCTIONS[-1]}")
    return text


@dataclass(frozen=True)
class LookPlan:
    """The order items are scored in and how many have been seen at each look.

    Attributes:
        order: item indices (into the suite) in scoring order, a seeded permutation.
        sizes: items seen at each look, increasing, the last one every item.
        spending: the alpha-spending function the looks' levels follow.
    """

    order: tuple[int, ...]
    sizes: tuple[int, ...]
    spending: str = DEFAULT_SPENDING

    @property
    def fractions(self) -> tuple[float, ...]:
        """Information fractions of the looks (items seen / suite size)."""
        return tuple(size / self.sizes[-1] for size in self.sizes)

    def levels(self, alpha: float) -> tuple[float, ...]:
        """The one-sided nominal level of each look's test."""
        from pytest_forgetting.comparison.stats.sequential import nominal_levels

        return nominal_levels(self.fractions, alpha, self.spending)


def plan_looks(size: int, fingerprint: str, settings: SequentialSettings, kind: str = "multiple_choice") -> LookPlan:
    """The look plan of a suite of ``size`` items: chunks of ``max(min_look, ceil(size / max_looks))``.

    A suite too small for two looks gets one (the fixed-sample design, items in their order).
    """
    generation = kind == "generation"
    min_look = settings.generation_min_look if generation else settings.min_look
    max_looks = settings.generation_max_looks if generation else settings.max_looks
    chunk = max(min_look, math.ceil(size / max_looks))
    # generation: the last chunk is a full one too (a short chunk costs as many decoding steps)
    tail = min_look if generation else 1
    sizes = [chunk * k for k in range(1, size // chunk + 1) if chunk * k <= size - tail] + [size]
    if len(sizes) == 1 or not settings.enabled:
        return LookPlan(tuple(range(size)), (size,), settings.spending)
    return LookPlan(seeded_order(size, f"{settings.seed}:{fingerprint}"), tuple(sizes), settings.spending)


def seeded_order(size: int, key: str) -> tuple[int, ...]:
    """A permutation of ``range(size)`` determined by ``key`` (the same on every machine)."""
    import numpy as np

    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return tuple(int(i) for i in np.random.default_rng(seed).permutation(size))


@dataclass(frozen=True)
class LookBounds:
    """One look's one-sided bounds of the change in the better direction, and how they were had.

    ``may_pass`` is False for a metric without a finite declared range (NLL, KL): a few
    extreme items can sit anywhere in the rest of the suite, and a normal upper bound of a
    right-skewed mean is too low (simulated: lognormal drift at the bound passed 18% of the
    time with early passes, against 12% for the fixed-sample bootstrap), so such a metric
    stops early only to fail.
    """

    lower: float
    upper: float
    method: str
    may_pass: bool = True


def look_bounds(base: Sequence[float], tuned: Sequence[float], metric: Metric, level: float,
                clusters: Optional[Sequence[str]] = None) -> LookBounds:
    """One-sided ``1 - level`` bounds of ``mean(gain)``, gain = tuned - base in the better direction."""
    from scipy import stats as scipy_stats

    from pytest_forgetting.comparison import stats

    sign = 1.0 if metric.higher_is_better else -1.0
    if metric.binary:
        flip = (lambda v: v) if metric.higher_is_better else (lambda v: 1.0 - v)
        result = stats.paired_binary([flip(v) for v in base], [flip(v) for v in tuned], alpha=level,
                                     clusters=clusters)
        return LookBounds(result.ci_low, result.ci_high, f"{result.interval_method} interval")
    gains = [sign * (t - b) for b, t in zip(base, tuned)]
    mean = sum(gains) / len(gains)
    se = stats.paired_se([0.0] * len(gains), gains, clusters=clusters)
    if not math.isfinite(se):
        return LookBounds(-math.inf, math.inf, "normal interval")
    half = float(scipy_stats.norm.isf(level)) * se
    bounded = math.isfinite(metric.low) and math.isfinite(metric.high)
    method = "normal interval, paired SE" + ("" if bounded else "; an unbounded metric stops early only to fail")
    return LookBounds(mean - half, mean + half, method, may_pass=bounded)


def early_verdict(bounds: LookBounds, tolerance_abs: float) -> Optional[str]:
    """``pass``, ``fail`` or None (not decided yet) at an interim look."""
    if bounds.may_pass and bounds.lower > -tolerance_abs:
        return "pass"
    if bounds.upper < -tolerance_abs:
        return "fail"
    return None


def decided_text(n: int, suite_size: int, look: int, looks: int) -> str:
    """``decided after 96 of 314 items (look 3 of 8)``, or ``all 314 items (look 8 of 8)``."""
    if n < suite_size:
        return f"decided after {n} of {suite_size} items (look {look} of {looks})"
    return f"all {suite_size} items (look {looks} of {looks})"


#: Scores of one look (the items seen so far, in scoring order) -> (base values, tuned values, metric, clusters).
LookValues = Callable[[tuple[int, ...]], tuple[list[float], list[float], Metric, Optional[list[str]]]]
#: The result on a look's items at a one-sided level.
LookResult = Callable[[tuple[int, ...], float], "ComparisonResult"]


def run_looks(plan: LookPlan, decision: "Decision", tolerance_of: Callable[[float], float],
              values: LookValues, result_at: LookResult) -> "ComparisonResult":
    """Go through the plan's looks until one decides; the result of the deciding look.

    ``values(indices)`` gives a look's paired values, ``result_at(indices, level)``
    the full result on the items seen; ``tolerance_of(base_mean)`` is the allowed drop in the
    metric's unit. The result's ``n`` is the items seen; ``suite_size``, ``look``, ``looks``
    say where the verdict came.
    """
    levels = plan.levels(decision.test_alpha)
    looks, suite_size = len(plan.sizes), plan.sizes[-1]
    for look, (size, level) in enumerate(zip(plan.sizes, levels), start=1):
        indices = plan.order[:size]
        if look == looks:
            result = result_at(indices, level)
            spent = f"; last look {look} of {looks}, level {level:.4g}" if looks > 1 else ""
            return replace(result, statistic=result.statistic + spent, suite_size=suite_size, look=look, looks=looks)
        base_values, tuned_values, metric, clusters = values(indices)
        bounds = look_bounds(base_values, tuned_values, metric, level, clusters)
        base_mean = sum(base_values) / len(base_values)
        verdict = early_verdict(bounds, tolerance_of(base_mean))
        if verdict is not None:
            result = result_at(indices, level)
            return _early(result, verdict, bounds, metric, look, looks, level, suite_size, plan.spending)
    raise AssertionError("unreachable: the last look always decides")


def _early(result: "ComparisonResult", verdict: str, bounds: LookBounds, metric: Metric, look: int, looks: int,
           level: float, suite_size: int, spending: str) -> "ComparisonResult":
    """The result of a look that decided: its verdict and the bounds it was decided on."""
    low, high = (bounds.lower, bounds.upper) if metric.higher_is_better else (-bounds.upper, -bounds.lower)
    return replace(
        result, verdict=verdict, underpowered=False, ci_low=float(low), ci_high=float(high),
        statistic=f"sequential ({spending} spending): look {look} of {looks} at one-sided level {level:.4g}, "
                  f"{bounds.method}",
        suite_size=suite_size, look=look, looks=looks,
    )


def decide_sequentially(base_values: Sequence[float], tuned_values: Sequence[float], decision: "Decision", *,
                        metric: Metric, template: "ComparisonResult", plan: LookPlan,
                        clusters: Optional[Sequence[str]] = None) -> "ComparisonResult":
    """The sequential verdict on scores already at hand (every item's), as if scored in ``plan``'s order.

    What the session does look by look, for a script holding both models' per-item values
    (and what the simulations in the test suite run).
    """
    from pytest_forgetting.comparison.verdict import decide
    from pytest_forgetting.scoring.metrics import default_tolerance

    if len(base_values) != plan.sizes[-1] or len(tuned_values) != plan.sizes[-1]:
        raise ForgettingError(f"{template.capability}: the plan covers {plan.sizes[-1]} items, the scores "
                              f"{len(base_values)} and {len(tuned_values)}; give every item's score")
    tolerance = decision.tolerance or default_tolerance(metric, decision.session_tolerance)

    def pick(indices: tuple[int, ...], values: Sequence[float]) -> list[float]:
        return [values[i] for i in indices]

    def looked(indices: tuple[int, ...]) -> tuple[list[float], list[float], Metric, Optional[list[str]]]:
        return (pick(indices, base_values), pick(indices, tuned_values), metric,
                [str(clusters[i]) for i in indices] if clusters is not None else None)

    def result_at(indices: tuple[int, ...], level: float) -> "ComparisonResult":
        part = replace(template, records=[template.records[i] for i in indices] if template.records else [],
                       clusters=[str(clusters[i]) for i in indices] if clusters is not None else None)
        return decide(pick(indices, base_values), pick(indices, tuned_values), decision, metric=metric,
                      template=part, level=level)

    return run_looks(plan, decision, tolerance.absolute, looked, result_at)
