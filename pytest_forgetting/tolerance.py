"""Tolerances: how much drop a capability may show before a test fails.

A tolerance is absolute (``0.02`` = two accuracy points) or relative to the base score
(``"5%"`` = five per cent of the base score). Parsing is strict so that a typo fails loudly.
"""

from __future__ import annotations

import numbers
import re
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
            relative = text.endswith("%")
            number = text[:-1].rstrip() if relative else text
            if not _NUMBER.fullmatch(number):  # float() would take '1_0', 'infinity', non-ASCII digits
                raise ValueError
            tolerance = Tolerance(float(number) / (100.0 if relative else 1.0), relative=relative)
        elif isinstance(raw, numbers.Real):  # also numpy's numbers
            tolerance = Tolerance(float(raw))
        else:
            raise ValueError
    except OverflowError:
        raise ForgettingError(
            f"tolerance {_shown(raw)} must be a finite number >= 0, e.g. 0.02 or '5%'"
        ) from None
    except ValueError:
        raise ForgettingError(
            f"could not parse tolerance {_shown(raw)}; expected a number such as 0.02 (absolute drop) "
            "or a percentage such as '5%' (relative to the base score)"
        ) from None
    if not 0.0 <= tolerance.value < float("inf"):
        raise ForgettingError(
            f"tolerance {_shown(raw)} must be a finite number >= 0 (the allowed drop), e.g. 0.02 or '5%'"
        )
    return Tolerance(tolerance.value + 0.0, tolerance.relative)  # -0.0 reads as 0


#: A plain decimal number, as written in a test or an ini file (ASCII digits, optional exponent).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|nan)", re.IGNORECASE)


def _shown(raw: object) -> str:
    """``raw`` for a one-line message: its repr, cut short (a huge int's repr would fill the screen)."""
    try:
        text = repr(raw)
    except ValueError:  # an int too large for repr
        text = f"<{type(raw).__name__} with {raw.bit_length()} bits>" if isinstance(raw, int) else type(raw).__name__
    return text if len(text) <= 80 else text[:77] + "..."
