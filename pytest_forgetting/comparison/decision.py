"""How a comparison is decided: tolerance, policy and significance level, each validated once.

Light on purpose (no numpy): the command-line options, the ``capability`` marker and the
Python API all validate through these functions, so one value has one range and one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.tolerance import Tolerance, ToleranceLike, parse_tolerance

POLICIES = ("non-inferiority", "significant")
DEFAULT_ALPHA = 0.05
DEFAULT_POLICY = "non-inferiority"
#: One-sided levels above this make the interval ``1 - 2 alpha`` empty or inverted.
MAX_ALPHA = 0.5


def parse_alpha(value: Any) -> float:
    """A one-sided significance level in (0, 0.5), e.g. 0.05; one line otherwise."""
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        alpha = float("nan")
    if isinstance(value, bool) or not 0 < alpha < MAX_ALPHA:
        raise ForgettingError(
            f"alpha {value!r}: expected a one-sided significance level between 0 and {MAX_ALPHA:g} "
            "(exclusive), e.g. 0.05"
        )
    return alpha


def parse_policy(value: Any) -> str:
    """``non-inferiority`` or ``significant``; one line otherwise."""
    if value not in POLICIES:
        raise ForgettingError(f"policy {value!r}: expected one of {', '.join(POLICIES)}")
    return str(value)


@dataclass(frozen=True)
class Decision:
    """How a comparison is decided.

    Attributes:
        tolerance: the allowed drop, in the metric's unit; None: the metric's default.
        policy: ``non-inferiority`` (pass only when the drop is shown to be within tolerance)
            or ``significant`` (fail only on a significant drop beyond tolerance).
        alpha: the one-sided significance level.
        family_size: capabilities decided together under ``significant`` (each at alpha / m).
        session_tolerance: the session's default (``--forgetting-tolerance``), used when
            ``tolerance`` is None for share metrics, or for any metric when relative.
    """

    tolerance: Optional[Tolerance] = None
    policy: str = DEFAULT_POLICY
    alpha: float = DEFAULT_ALPHA
    family_size: int = 1
    session_tolerance: Optional[Tolerance] = None

    @property
    def test_alpha(self) -> float:
        """The level the interval and MDE are computed at: alpha / m under ``significant``."""
        return self.alpha / self.family_size if self.policy == "significant" else self.alpha


def resolve_decision(
    *,
    tolerance: Optional[ToleranceLike] = None,
    policy: Optional[str] = None,
    alpha: Optional[float] = None,
    family_size: int = 1,
    session_tolerance: Optional[ToleranceLike] = None,
) -> Decision:
    """A validated :class:`Decision` from optional parts (defaults fill the rest)."""
    return Decision(
        tolerance=None if tolerance is None else parse_tolerance(tolerance),
        policy=DEFAULT_POLICY if policy is None else parse_policy(policy),
        alpha=DEFAULT_ALPHA if alpha is None else parse_alpha(alpha),
        family_size=max(1, int(family_size)),
        session_tolerance=None if session_tolerance is None else parse_tolerance(session_tolerance),
    )


def format_level(alpha: float) -> str:
    """The one-sided confidence ``1 - alpha`` as a percentage: ``95%``, ``98.75%``."""
    return f"{(1 - alpha) * 100:.4g}%"
