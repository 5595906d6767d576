"""Group-sequential boundaries: how strong the evidence must be at each look at the data.

Items are scored in chunks and the comparison is looked at after each chunk. Looking
repeatedly at a fixed-level test inflates its error rate; a group-sequential design keeps
it by *spending* the level ``alpha`` over the looks (Lan & DeMets 1983, "Discrete sequential
boundaries for clinical trials", Biometrika 70:659-663). With ``t`` the information fraction
(items seen / items in the suite), a spending function ``alpha(t)`` rises from 0 to
``alpha`` at ``t = 1``; look ``k`` may reject with probability ``alpha(t_k) - alpha(t_{k-1})``
(having not rejected before) under the null hypothesis.

The critical values ``c_k`` for the looks' standardised statistics ``Z_k`` follow from the
canonical joint distribution: ``Z_k = S(t_k) / sqrt(t_k)`` with ``S`` a standard Brownian
motion (Jennison & Turnbull 2000, "Group Sequential Methods", ch. 3 and 19). The crossing
probabilities are computed by numerical integration of ``S``'s density on the continuation
region (Armitage, McPherson & Rowe 1969), look by look, and each ``c_k`` is solved for.

Spending functions (one-sided):

* ``obrien-fleming`` (these functions' default): ``alpha(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))``, the
  Lan-DeMets O'Brien-Fleming type. It spends almost nothing early, so the last look's
  boundary stays close to the fixed-sample ``z_{1 - alpha}``.
* ``hwang-shih-decani``: ``alpha(t) = alpha (1 - e^{-gamma t}) / (1 - e^{-gamma})`` with
  ``gamma = -2`` (Hwang, Shih & DeCani 1990, "Group sequential designs using a family of type I
  error probability spending functions", Statistics in Medicine 9:1439-1445), between the
  two: ``gamma = -4`` is close to O'Brien-Fleming, ``gamma = 1`` to Pocock. It spends enough
  at the first looks to stop a clear case there, for a little power at the last look
  (the default of sequential verdicts: :data:`pytest_forgetting.comparison.sequential.DEFAULT_SPENDING`).
* ``pocock``: ``alpha(t) = alpha ln(1 + (e - 1) t)``: earlier stops, a stricter last look.

The boundaries are *non-binding* in use: stopping for the opposite conclusion (futility) at
any look only lowers the probability of a false rejection.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

from pytest_forgetting.comparison.stats._common import _check_alpha

SPENDING_FUNCTIONS = ("obrien-fleming", "hwang-shih-decani", "pocock")
#: The Hwang-Shih-DeCani function's ``gamma`` (negative: more of ``alpha`` kept for later looks).
HSD_GAMMA = -2.0
#: Boundaries are capped here: a look allowed (almost) no level cannot reject.
MAX_Z = 8.0
#: Grid points per look of the numerical integration (trapezoid rule).
_GRID = 1201
#: The integration grid reaches this many standard deviations below zero.
_LOW_SD = 8.0


def spent(t: float, alpha: float, spending: str = "obrien-fleming") -> float:
    """Cumulative level ``alpha(t)`` spent by information fraction ``t`` (0 at 0, ``alpha`` at 1)."""
    if spending not in SPENDING_FUNCTIONS:
        raise ValueError(f"spending {spending!r}; expected one of {', '.join(SPENDING_FUNCTIONS)}")
    t = min(max(float(t), 0.0), 1.0)
    if t == 0.0:
        return 0.0
    if spending == "obrien-fleming":
        return float(2.0 * stats.norm.sf(stats.norm.isf(alpha / 2.0) / math.sqrt(t)))
    if spending == "hwang-shih-decani":
        return float(alpha * math.expm1(-HSD_GAMMA * t) / math.expm1(-HSD_GAMMA))
    return float(alpha * math.log(1.0 + (math.e - 1.0) * t))


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(f) for f in fractions)
    if not values or any(not 0.0 < f <= 1.0 for f in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"information fractions {values!r}; expected increasing values in (0, 1]")
    if values[-1] != 1.0:
        raise ValueError(f"information fractions {values!r}; the last look must be at 1 (every item)")
    return values


def boundaries(fractions: Sequence[float], alpha: float, spending: str = "obrien-fleming") -> tuple[float, ...]:
    """One-sided critical values ``c_1..c_K`` for standardised statistics at ``fractions``.

    Under the null hypothesis (zero drift) the probability that ``Z_j < c_j`` for all
    ``j < k`` and ``Z_k >= c_k`` is ``alpha(t_k) - alpha(t_{k-1})``; the total over the looks
    is ``alpha``. One look at ``t = 1`` gives ``z_{1 - alpha}``.
    """
    return _boundaries(_check_fractions(fractions), _check_alpha(alpha), spending)


def nominal_levels(fractions: Sequence[float], alpha: float, spending: str = "obrien-fleming") -> tuple[float, ...]:
    """The one-sided level each look's fixed-sample test is run at: ``1 - Phi(c_k)``."""
    return tuple(float(stats.norm.sf(c)) for c in boundaries(fractions, alpha, spending))


@functools.lru_cache(maxsize=256)
def _boundaries(fractions: tuple[float, ...], alpha: float, spending: str) -> tuple[float, ...]:
    cumulative = [spent(t, alpha, spending) for t in fractions]
    increments = [cumulative[0]] + [b - a for a, b in zip(cumulative, cumulative[1:])]
    result: list[float] = []
    grid = weights = density = None  # S(t_{k-1}) on the continuation region, with trapezoid weights
    previous_t = 0.0
    for t, level in zip(fractions, increments):
        step_sd = math.sqrt(t - previous_t)
        if grid is None:
            crossing = lambda b: float(stats.norm.sf(b / step_sd))  # noqa: E731
        else:
            mass = weights * density

            def crossing(b: float, mass: np.ndarray = mass, grid: np.ndarray = grid) -> float:
                return float(np.dot(mass, stats.norm.sf((b - grid) / step_sd)))
        scale = math.sqrt(t)
        if level <= crossing(MAX_Z * scale):
            bound = MAX_Z * scale
        else:
            low = -_LOW_SD * scale
            bound = float(optimize.brentq(lambda b: crossing(b) - level, low, MAX_Z * scale, xtol=1e-10))
        result.append(min(bound / scale, MAX_Z))
        # the density of S(t) where no boundary was crossed yet: S < bound
        new_grid = np.linspace(-_LOW_SD * scale, bound, _GRID)
        if grid is None:
            new_density = stats.norm.pdf(new_grid / step_sd) / step_sd
        else:
            kernel = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / step_sd) / step_sd
            new_density = kernel @ (weights * density)
        h = new_grid[1] - new_grid[0]
        weights = np.full(_GRID, h)
        weights[0] = weights[-1] = h / 2.0
        grid, density, previous_t = new_grid, new_density, t
    return tuple(result)
