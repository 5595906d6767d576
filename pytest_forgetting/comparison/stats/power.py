"""Power and sample size for a paired accuracy drop (McNemar-type, normal approximation)."""

from __future__ import annotations

import math

from scipy import stats


def _z_levels(alpha: float, power: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}; expected a one-sided level in (0, 1)")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power={power!r}; expected a probability in (0, 1), e.g. 0.8")
    return float(stats.norm.ppf(1.0 - alpha)), float(stats.norm.ppf(power))


def items_needed(
    drop: float, psi: float, alpha: float = 0.05, power: float = 0.8, n_tests: int = 1
) -> int:
    """Items needed to detect a paired accuracy drop with a one-sided McNemar-type test.

    ``n = ceil([z_a sqrt(psi) + z_b sqrt(psi - D^2)]^2 / D^2)`` with ``D = drop``, ``psi`` the
    discordance P(b or c), ``z_a = z_{1 - alpha/n_tests}`` (Holm's worst case, i.e.
    Bonferroni, over ``n_tests`` capabilities) and ``z_b = z_power`` (RESEARCH.md section 2).
    """
    if int(n_tests) != n_tests or n_tests < 1:
        raise ValueError(f"n_tests={n_tests!r}; expected an int >= 1")
    if not 0.0 < drop <= psi <= 1.0:
        raise ValueError(
            f"drop={drop!r}, psi={psi!r}; expected 0 < drop <= psi <= 1 (a drop needs at "
            "least that much discordance)"
        )
    z_a, z_b = _z_levels(alpha / n_tests, power)
    n = (z_a * math.sqrt(psi) + z_b * math.sqrt(psi - drop**2)) ** 2 / drop**2
    return max(1, math.ceil(n - 1e-9))


def minimum_detectable_drop(n: float, psi: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest paired drop D detectable with ``n`` items at discordance ``psi``.

    Solves ``n D^2 = [z_a sqrt(psi) + z_b sqrt(psi - D^2)]^2`` in closed form:
    ``D = sqrt(psi) (z_a sqrt(n) + z_b sqrt(n - z_a^2 + z_b^2)) / (n + z_b^2)``. Returns
    ``inf`` when ``n < z_a^2`` (no drop is detectable) and 0 for ``psi = 0``. A result above
    ``psi`` means no drop compatible with that discordance is detectable.
    """
    if not n > 0:
        raise ValueError(f"n={n!r}; expected a positive number of items")
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"psi={psi!r}; expected a discordance in [0, 1]")
    z_a, z_b = _z_levels(alpha, power)
    if n < z_a**2:
        return math.inf
    return (
        math.sqrt(psi) * (z_a * math.sqrt(n) + z_b * math.sqrt(n - z_a**2 + z_b**2)) / (n + z_b**2)
    )
