"""Tolerances: how much drop a capability may show before a test fails.

A tolerance is absolute (``0.02`` = two accuracy points) or relative to the base score
(``"5%"`` = five per cent of the base score). Parsing is strict so that a typo fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from pytest_forgetting.errors import ForgettingError

ToleranceLike = Union[float, int, str, "Tolerance"]


@dataclass(frozen=True)
class Tolerance:
    """An allowed drop, absolute or relative to the base score."""

    value: float
    relative: bool = False

    def absolute(self, base_score: float) -> float:
        """The allowed drop in score units for a capability whose base scored ``base_score``."""
        return self.value * abs(base_score) if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


def parse_tolerance(raw: ToleranceLike) -> Tolerance:
    """Parse ``0.02``, ``"0.02"`` or ``"5%"`` into a :class:`Tolerance`.

    Raises :class:`ForgettingError` with a one-line explanation for anything else.
    """
    if isinstance(raw, Tolerance):
        return raw
    if isinstance(raw, bool):
        raise ForgettingError(
            f"tolerance {raw!r} is not a number; expected e.g. 0.02 (absolute) or '5%' (relative)"
        )
    try:
        if isinstance(raw, str):
            text = raw.strip()
            if text.endswith("%"):
                tolerance = Tolerance(float(text[:-1]) / 100.0, relative=True)
            else:
                tolerance = Tolerance(float(text))
        elif isinstance(raw, (int, float)):
            tolerance = Tolerance(float(raw))
        else:
            raise ValueError
    except ValueError:
        raise ForgettingError(
            f"could not parse tolerance {raw!r}; expected a number such as 0.02 (absolute drop) "
            "or a percentage such as '5%' (relative to the base score)"
        ) from None
    if not 0.0 <= tolerance.value < float("inf"):
        raise ForgettingError(
            f"tolerance {raw!r} must be a finite number >= 0, e.g. 0.02 or '5%'"
        )
    return tolerance
