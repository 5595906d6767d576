"""Scorers for generated text: each maps (output, targets, **options) to a score in [0, 1].

Built-ins: ``exact_match``, ``contains`` (any of the targets appears), ``regex``,
``numeric`` (the answer number, with a tolerance), ``no_forbidden`` (style leak: 1 when none
of the marker phrases appears), and any ``evaluate`` metric as ``"evaluate:NAME"`` or
``"evaluate:/path/to/module.py"``. A plain Python callable works too.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Sequence

from pytest_forgetting.errors import ForgettingError

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str, *, ignore_case: bool = True, ignore_punctuation: bool = True) -> str:
    """Collapse whitespace, optionally drop case and punctuation."""
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCTUATION)
    return " ".join(text.split())


def exact_match(output: str, targets: Sequence[str], *, ignore_case: bool = True,
                ignore_punctuation: bool = True, first_line: bool = False) -> float:
    """1.0 if the normalised output equals any normalised target."""
    if first_line:
        output = (output.strip().splitlines() or [""])[0]
    got = normalize(output, ignore_case=ignore_case, ignore_punctuation=ignore_punctuation)
    return float(any(got == normalize(t, ignore_case=ignore_case, ignore_punctuation=ignore_punctuation)
                     for t in targets))


def contains(output: str, targets: Sequence[str], *, ignore_case: bool = True) -> float:
    """1.0 if any target appears in the output (any-of)."""
    haystack = normalize(output, ignore_case=ignore_case, ignore_punctuation=False)
    return float(any(normalize(t, ignore_case=ignore_case, ignore_punctuation=False) in haystack
                     for t in targets))


def regex(output: str, targets: Sequence[str], *, pattern: Optional[str] = None,
          ignore_case: bool = False) -> float:
    """1.0 if ``pattern`` (or any target, read as a pattern) matches somewhere in the output."""
    flags = re.IGNORECASE if ignore_case else 0
    if pattern == "":
        raise ForgettingError(
            "scorer 'regex': pattern='' would match every output; give a non-empty regular expression"
        )
    patterns = [pattern] if pattern is not None else list(targets)
    return float(any(re.search(p, output, flags) for p in patterns))


def extract_number(text: str, *, pick: str = "first") -> Optional[float]:
    """The first (or last) number written in ``text``, with thousands separators removed."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    raw = found[0] if pick == "first" else found[-1]
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def numeric(output: str, targets: Sequence[str], *, tolerance: float = 1e-6, pick: str = "first") -> float:
    """1.0 if the number in the output is within ``tolerance`` of a target number."""
    got = extract_number(output, pick=pick)
    if got is None:
        return 0.0
    wanted = [extract_number(t) for t in targets]
    return float(any(w is not None and abs(got - w) <= tolerance for w in wanted))


def no_forbidden(output: str, targets: Sequence[str], *, phrases: Sequence[str] = (),
                 ignore_case: bool = False) -> float:
    """1.0 when none of ``phrases`` (e.g. "WHEREAS", "HEREBY") appears: style-leak guard."""
    text = output.lower() if ignore_case else output
    return float(not any((p.lower() if ignore_case else p) in text for p in phrases))


def forbidden_hits(output: str, phrases: Sequence[str], *, ignore_case: bool = False) -> list[str]:
    """Which marker phrases appear in ``output`` (for reports)."""
    text = output.lower() if ignore_case else output
    return [p for p in phrases if (p.lower() if ignore_case else p) in text]


@lru_cache(maxsize=16)
def _load_metric(path_or_name: str) -> Any:
    try:
        import evaluate
    except ImportError:  # pragma: no cover - a declared dependency
        raise ForgettingError("evaluate metrics need the 'evaluate' package: pip install evaluate") from None
    try:
        return evaluate.load(path_or_name)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ForgettingError(
            f"cannot load evaluate metric {path_or_name!r} ({first[:200]}); offline, give the path "
            "of a local metric module, e.g. scorer='evaluate:./metrics/my_metric.py'"
        ) from None


def evaluate_scorer(metric: str) -> Callable[..., float]:
    """A scorer computing ``evaluate`` metric ``metric`` on one output at a time.

    Options: ``key`` picks the result entry (default: the metric's only or first entry);
    ``references``: ``"all"`` passes every target (default), ``"first"`` only the first.
    """

    def score(output: str, targets: Sequence[str], *, key: Optional[str] = None,
              references: str = "all", **kwargs: Any) -> float:
        module = _load_metric(metric)
        refs: Any = list(targets) if references == "all" else targets[0]
        result = module.compute(predictions=[output], references=[refs], **kwargs)
        value = result[key] if key is not None else next(iter(result.values()))
        return float(value)

    score.__name__ = f"evaluate:{metric}"
    return score


def validate_scorer_options(scorer: Any, options: Mapping[str, Any]) -> None:
    """Reject built-in scorer options that would make every score vacuous, in one line.

    Checked when a suite is loaded, before any model runs: ``regex``'s ``pattern`` must be a
    non-empty string that compiles (``""`` matches every output); ``no_forbidden``'s
    ``phrases`` must be a list of non-empty strings (``""`` is in every output, and a bare
    string would be read letter by letter). Other scorers and options are left to the scorer.
    """
    if scorer == "regex" and "pattern" in options and options["pattern"] is not None:
        pattern = options["pattern"]
        if not isinstance(pattern, str):
            raise ForgettingError(f"scorer 'regex': pattern must be a string (a regular expression), got {pattern!r}")
        if not pattern:
            raise ForgettingError(
                f"scorer 'regex': pattern={pattern!r} would match every output; give a non-empty regular "
                "expression, or leave pattern out to read each item's targets as patterns"
            )
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ForgettingError(
                f"scorer 'regex': pattern={pattern!r} is not a valid regular expression ({exc})"
            ) from None
    if scorer == "no_forbidden" and "phrases" in options:
        phrases = options["phrases"]
        if isinstance(phrases, str) or not isinstance(phrases, (list, tuple)) or not all(
            isinstance(p, str) for p in phrases
        ):
            raise ForgettingError(
                f"scorer 'no_forbidden': phrases must be a list of strings, got {phrases!r}; "
                "e.g. phrases=['WHEREAS', 'HEREBY']"
            )
        if any(not p.strip() for p in phrases):
            raise ForgettingError(
                f"scorer 'no_forbidden': phrases={list(phrases)!r} holds an empty phrase, which is found in "
                "every output; remove it"
            )


def register_builtin_scorers(registry: Any) -> None:
    """Add the built-in scorers to ``registry``."""
    for scorer in (exact_match, contains, regex, numeric, no_forbidden):
        registry.add(scorer.__name__, scorer)


def resolve_scorer(scorer: Any, registry: Any) -> Callable[..., float]:
    """A callable scorer from a name, an ``evaluate:`` spec, or a callable."""
    if callable(scorer):
        return scorer  # type: ignore[no-any-return]
    if isinstance(scorer, str) and scorer.startswith("evaluate:"):
        return evaluate_scorer(scorer.split(":", 1)[1])
    try:
        return registry.get(scorer)  # type: ignore[no-any-return]
    except KeyError as exc:
        raise ForgettingError(str(exc.args[0])) from None
