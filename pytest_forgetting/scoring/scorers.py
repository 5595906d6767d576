"""Scorers for generated text: each maps (output, targets, **options) to one item's score.

Every scorer is a :class:`Scorer`: the function and its declared
:class:`~pytest_forgetting.scoring.metrics.Metric` (direction, binary or continuous, range,
unit). Built-ins: ``exact_match``, ``contains`` (any of the targets appears), ``regex``,
``numeric`` (the answer number, with a tolerance), all binary accuracy; ``no_forbidden``
(style leak: 1 when none of the marker phrases appears), a binary share of outputs; and any
``evaluate`` metric as ``"evaluate:NAME"`` or ``"evaluate:/path/to/module.py"``: the common
ones (``wer``, ``cer``, ``bleu``, ``rouge``...) are declared here, any other must be declared
with :class:`Scorer`. A plain Python callable is declared higher-is-better, continuous, in
[0, 1], a share of outputs; wrap it in :class:`Scorer` to say otherwise.
"""

from __future__ import annotations

import re
import string
import math
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import Metric
from pytest_forgetting.tolerance import ToleranceLike, parse_tolerance

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


class Scorer:
    """A scoring function with its declared metric.

    Args:
        fn: ``fn(output, targets, **options) -> float``, or ``"evaluate:NAME"``.
        name: the metric's name in reports (default: the function's name, or the spec).
        higher_is_better: the direction of "better" (an error rate: False).
        binary: every score is 0 or 1 (paired proportions decide); else continuous (bootstrap).
        unit: what the score measures, e.g. ``"share of outputs"`` or ``"word error rate"``.
        low, high: the range of one item's score (``math.inf`` for unbounded).
        tolerance: the default allowed drop, in ``unit`` (default 0.02).
    """

    def __init__(self, fn: Union[Callable[..., Any], str], *, name: Optional[str] = None,
                 higher_is_better: bool = True, binary: bool = False, unit: str = "share of outputs",
                 low: float = 0.0, high: float = 1.0, tolerance: Optional[ToleranceLike] = None,
                 description: str = "") -> None:
        if isinstance(fn, str):
            if not fn.startswith("evaluate:"):
                raise ForgettingError(f"Scorer({fn!r}): a scorer is a function or 'evaluate:NAME'")
            name = name or fn
            fn = evaluate_scorer(fn.split(":", 1)[1], declared=True)
        if not callable(fn):
            raise ForgettingError(f"scorer {name or fn!r} must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.metric = Metric(name or getattr(fn, "__name__", "score"), higher_is_better=higher_is_better,
                             binary=binary, unit=unit, low=low, high=high,
                             default_tolerance=parse_tolerance(0.02 if tolerance is None else tolerance),
                             description=description)

    @property
    def name(self) -> str:
        """The metric's name."""
        return self.metric.name

    def renamed(self, name: str) -> "Scorer":
        """The same scorer reported under ``name`` (a registry's short name)."""
        from dataclasses import replace

        copy = object.__new__(Scorer)
        copy.fn, copy.metric = self.fn, replace(self.metric, name=name)
        return copy

    def __call__(self, output: str, targets: Sequence[str], **options: Any) -> Any:
        return self.fn(output, targets, **options)

    def key(self) -> str:
        """What identifies this scorer in the result cache: the function and the declaration."""
        fn = self.fn
        where = getattr(fn, "__pytest_forgetting_key__", None) or \
            f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        return f"{where}|{self.metric!r}"

    def __repr__(self) -> str:
        return f"Scorer({self.key()})"


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


#: Declarations of common ``evaluate`` metrics (per-item value of one prediction).
EVALUATE_METRICS: dict[str, dict[str, Any]] = {
    "wer": dict(higher_is_better=False, unit="word error rate", high=math.inf),
    "cer": dict(higher_is_better=False, unit="character error rate", high=math.inf),
    "ter": dict(higher_is_better=False, unit="TER points", high=math.inf),
    "bleu": dict(unit="BLEU (0..1)"),
    "google_bleu": dict(unit="BLEU (0..1)"),
    "sacrebleu": dict(unit="BLEU points", high=100.0, tolerance=2.0),
    "chrf": dict(unit="chrF points", high=100.0, tolerance=2.0),
    "rouge": dict(unit="ROUGE F-measure"),
    "meteor": dict(unit="METEOR (0..1)"),
    "exact_match": dict(binary=True, unit="share of items"),
    "accuracy": dict(binary=True, unit="share of items"),
}


def evaluate_scorer(metric: str, *, declared: bool = False, **declaration: Any) -> Any:
    """A scorer computing ``evaluate`` metric ``metric`` on one output at a time.

    The common metrics (:data:`EVALUATE_METRICS`) carry their declaration; any other needs
    one (``higher_is_better=``, ``binary=``, ``unit=``, ``low=``, ``high=``), given here or by
    wrapping the spec in :class:`Scorer`. Options: ``key`` picks the result entry (default:
    the metric's only or first entry); ``references``: ``"all"`` passes every target
    (default), ``"first"`` only the first.
    """

    def score(output: str, targets: Sequence[str], *, key: Optional[str] = None,
              references: str = "all", **kwargs: Any) -> float:
        module = _load_metric(metric)
        refs: Any = list(targets) if references == "all" else targets[0]
        result = module.compute(predictions=[output], references=[refs], **kwargs)
        value = result[key] if key is not None else next(iter(result.values()))
        return float(value)

    score.__name__ = f"evaluate:{metric}"
    score.__pytest_forgetting_key__ = f"evaluate:{metric}"  # type: ignore[attr-defined]
    if declared:
        return score
    known = EVALUATE_METRICS.get(metric)
    if not declaration and known is None:
        raise ForgettingError(
            f"scorer 'evaluate:{metric}': its direction and range are not declared; declare them, e.g. "
            f"Scorer('evaluate:{metric}', higher_is_better=False, binary=False, unit='error rate', high=math.inf)"
        )
    return Scorer(score, name=f"evaluate:{metric}", **{**(known or {}), **declaration})


def validate_scorer_options(scorer: Any, options: Mapping[str, Any]) -> None:
    """Reject built-in scorer options that would make every score vacuous, in one line.

    Checked when a suite is loaded, before any model runs: ``regex``'s ``pattern`` must be a
    non-empty string that compiles (``""`` matches every output); ``no_forbidden``'s
    ``phrases`` must be a list of non-empty strings (``""`` is in every output, and a bare
    string would be read letter by letter); ``numeric``'s ``pick`` and ``tolerance`` and the
    built-ins' on/off flags must be of their kind. Other scorers and options are left to the
    scorer; an option no parameter takes is refused before generating
    (:func:`pytest_forgetting.scoring.kinds.check_scorer_accepts`).
    """
    if isinstance(scorer, str) and scorer in _BUILTIN_OPTIONS:
        _check_builtin_values(scorer, options)
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


BUILTIN_SCORERS = (
    Scorer(exact_match, binary=True, unit="share of items",
           description="share of outputs equal to a target (normalised)"),
    Scorer(contains, binary=True, unit="share of items", description="share of outputs containing a target"),
    Scorer(regex, binary=True, unit="share of items", description="share of outputs matching the pattern"),
    Scorer(numeric, binary=True, unit="share of items", description="share of outputs whose number is the target's"),
    Scorer(no_forbidden, binary=True, unit="share of outputs",
           description="share of outputs free of every marker phrase"),
)


def _options_of(function: Callable[..., Any]) -> tuple[str, ...]:
    import inspect

    return tuple(name for name, parameter in inspect.signature(function).parameters.items()
                 if parameter.kind is inspect.Parameter.KEYWORD_ONLY)


#: The options each built-in scorer takes (its keyword-only parameters).
_BUILTIN_OPTIONS: dict[str, tuple[str, ...]] = {
    scorer.name: _options_of(scorer.fn) for scorer in BUILTIN_SCORERS
}
_FLAGS = ("ignore_case", "ignore_punctuation", "first_line")


def _check_builtin_values(scorer: str, options: Mapping[str, Any]) -> None:
    """The values of a built-in scorer's options: flags True/False, ``numeric``'s ``pick`` and ``tolerance``."""
    for flag in _FLAGS:
        if flag in options and not isinstance(options[flag], bool):
            raise ForgettingError(f"scorer {scorer!r}: {flag} must be True or False, got {options[flag]!r}")
    if scorer == "numeric":
        pick = options.get("pick", "first")
        if pick not in ("first", "last"):
            raise ForgettingError(f"scorer 'numeric': pick={pick!r}; expected 'first' or 'last' (which number of "
                                  "the output is the answer)")
        tolerance = options.get("tolerance", 0.0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
            raise ForgettingError(f"scorer 'numeric': tolerance={tolerance!r}; expected a number >= 0, the largest "
                                  "difference from the target that still counts as right, e.g. 0.01")


def register_builtin_scorers(registry: Any) -> None:
    """Add the built-in scorers to ``registry``."""
    for scorer in BUILTIN_SCORERS:
        registry.add(scorer.name, scorer)


def resolve_scorer(scorer: Any, registry: Any) -> Scorer:
    """A declared :class:`Scorer` from a :class:`Scorer`, a registered name, an ``evaluate:`` spec, or a callable."""
    if isinstance(scorer, Scorer):
        return scorer
    if callable(scorer):
        return Scorer(scorer)
    if isinstance(scorer, str) and scorer.startswith("evaluate:"):
        return evaluate_scorer(scorer.split(":", 1)[1])  # type: ignore[no-any-return]
    try:
        return registry.get(scorer)  # type: ignore[no-any-return]
    except KeyError as exc:
        raise ForgettingError(str(exc.args[0])) from None
