"""The ``capability`` marker: which capability a test guards, and how strictly.

Usable as ``@pytest.mark.capability("math", tolerance=0.02)`` or, with the same
arguments, as ``@capability("math", tolerance=0.02)`` after
``from pytest_forgetting import capability``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pytest

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.tolerance import Tolerance, parse_tolerance

MARKER_NAME = "capability"
MARKER_KWARGS = ("tolerance", "policy", "alpha", "metric", "target")
MARKER_HELP = (
    "capability(name, *, tolerance=None, policy=None, alpha=None, metric=None, target=False): the capability "
    "this forgetting test guards; tolerance in the metric's unit (0.02 = 2 accuracy points) or '5%' (relative to base); "
    "target=True: the domain being trained (a drop is reported, not failed, and is left out of Holm's family)"
)


@dataclass(frozen=True)
class CapabilitySpec:
    """A validated ``capability`` marker."""

    name: str
    tolerance: Optional[Tolerance] = None
    policy: Optional[str] = None
    alpha: Optional[float] = None
    metric: Optional[str] = None
    #: The domain being trained: a gain is expected; a drop is reported but fails no test.
    target: bool = False


def capability(
    name: str,
    *,
    tolerance: float | str | None = None,
    policy: str | None = None,
    alpha: float | None = None,
    metric: str | None = None,
    target: bool = False,
    **unknown: Any,
) -> pytest.MarkDecorator:
    """Mark a test as guarding capability ``name``.

    The same as ``@pytest.mark.capability(name, ...)``: the arguments are validated when
    the test is set up, so a typo (an unknown keyword, a bad policy) fails only that test,
    with one line naming the allowed keywords, instead of breaking collection.

    Args:
        name: the capability, e.g. ``"math"``; ``--capability math`` selects by it.
        tolerance: allowed drop in the deciding metric's unit, absolute (``0.02``: two
            accuracy points; ``0.05`` nats/token for NLL) or relative (``"5%"``); overrides the
            session default (``--forgetting-tolerance``) and the metric's own.
        policy: ``"non-inferiority"`` (default) or ``"significant"``.
        alpha: one-sided significance level of the decision, in (0, 0.5) (default 0.05).
        metric: which of the suite's metrics decides (e.g. ``"acc_norm"``).
        target: the capability is the domain being trained, where a gain is expected. Its
            results carry ``extra["target"] = True``; a drop is reported (``TARGET: DROPPED``)
            but fails no test, never counts as kept, and stays out of Holm's family. A sweep
            of checkpoints recommends by it (:mod:`pytest_forgetting.report.sweep`).
    """
    kwargs = {
        key: value
        for key, value in (
            ("tolerance", tolerance),
            ("policy", policy),
            ("alpha", alpha),
            ("metric", metric),
        )
        if value is not None
    }
    if target is not False:
        kwargs["target"] = target  # a non-bool is reported by validate_marker_args
    kwargs.update(unknown)  # reported by validate_marker_args at set-up, like the marker form
    return getattr(pytest.mark, MARKER_NAME)(name, **kwargs)


def validate_marker_args(args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> CapabilitySpec:
    """Check a capability marker's arguments; raise a one-line :class:`ForgettingError`."""
    from pytest_forgetting.comparison.decision import POLICIES, parse_alpha

    unknown = sorted(set(kwargs) - set(MARKER_KWARGS))
    if unknown:
        raise ForgettingError(
            f"{where}: unknown keyword argument(s) {', '.join(_shown(name) for name in unknown)} for "
            f"capability(); expected only: {', '.join(MARKER_KWARGS)}{_did_you_mean(unknown)}"
        )
    if len(args) != 1 or not isinstance(args[0], str) or not args[0].strip():
        raise ForgettingError(
            f"{where}: capability() takes exactly one capability name as a non-empty string, "
            f"e.g. capability('math'); got positional arguments {_shown(args)}"
        )
    if not args[0].strip().isprintable():
        raise ForgettingError(
            f"{where}: capability name {args[0]!r} holds a line break or control character; give a one-line "
            "name, e.g. capability('math')"
        )
    policy = kwargs.get("policy")
    if policy is not None and policy not in POLICIES:
        raise ForgettingError(
            f"{where}: unknown policy {_shown(policy)}; expected one of: {', '.join(POLICIES)}"
        )
    alpha = kwargs.get("alpha")
    if alpha is not None:
        if not isinstance(alpha, (int, float)):
            raise ForgettingError(f"{where}: alpha must be a number, e.g. 0.05; got {_shown(alpha)}")
        try:
            alpha = parse_alpha(alpha)
        except ForgettingError as exc:
            raise ForgettingError(f"{where}: {exc}") from None
    metric = kwargs.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric.strip()):
        raise ForgettingError(f"{where}: metric must be a metric name string such as 'acc_norm', got "
                              f"{_shown(metric)}; leave it out for the suite's primary metric")
    target = kwargs.get("target", False)
    if not isinstance(target, bool):
        raise ForgettingError(f"{where}: target must be True or False, e.g. capability('contracts', "
                              f"target=True); got {_shown(target)}")
    raw_tolerance = kwargs.get("tolerance")
    try:
        tolerance = None if raw_tolerance is None else parse_tolerance(raw_tolerance)
    except ForgettingError as exc:
        raise ForgettingError(f"{where}: {exc}") from None
    return CapabilitySpec(
        name=args[0].strip(),
        tolerance=tolerance,
        policy=policy,
        alpha=None if alpha is None else float(alpha),
        metric=metric,
        target=target,
    )


def _did_you_mean(unknown: list[str]) -> str:
    """`` (did you mean 'tolerance'?)`` for misspelled keywords, else ``""``."""
    import difflib

    close = [match for name in unknown for match in difflib.get_close_matches(str(name), MARKER_KWARGS, n=1)]
    return f" (did you mean {', '.join(map(repr, dict.fromkeys(close)))}?)" if close else ""


def _shown(value: Any) -> str:
    """``value`` for a one-line message: its repr, cut short."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails (or is too large) is named by its type
        text = f"<{type(value).__name__}>"
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= 80 else text[:77] + "..."


def capability_of(item: pytest.Item) -> Optional[CapabilitySpec]:
    """The validated capability marker closest to ``item``, or None if it has none."""
    marker = item.get_closest_marker(MARKER_NAME)
    if marker is None:
        return None
    return validate_marker_args(marker.args, dict(marker.kwargs), where=item.nodeid)
