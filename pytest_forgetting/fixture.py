"""The ``forgetting`` fixture's object: this test's view of the evaluation session.

It knows the candidate this test runs for, the test's ``capability`` marker, and the test
file's folder; everything else (models, stored results, scores, verdicts) is the
session's. A user-fixable error fails the test with its one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union

import pytest

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import CapabilitySpec, capability_of

if TYPE_CHECKING:
    from pytest_forgetting.backends.contract import Backend
    from pytest_forgetting.checks import Check
    from pytest_forgetting.comparison.decision import Decision
    from pytest_forgetting.comparison.result import ComparisonResult
    from pytest_forgetting.engine.models import ModelSlot
    from pytest_forgetting.engine.session import EvaluationSession
    from pytest_forgetting.scoring.suites import Suite


def checked(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``function``; a :class:`ForgettingError` fails the current test with its one line."""
    __tracebackhide__ = True
    try:
        return function(*args, **kwargs)
    except ForgettingError as exc:
        problem = str(exc)
    pytest.fail(f"pytest-forgetting: {problem}", pytrace=False)


class Forgetting:
    """What a forgetting test works with.

    Attributes:
        session: the run's :class:`~pytest_forgetting.engine.session.EvaluationSession`.
        slot: the candidate this test runs for (a test runs once per candidate).
        candidate: its label (``"careful"``, ``"checkpoint-500"``).
        capability: the test's validated ``capability`` marker, or None.
    """

    def __init__(self, session: "EvaluationSession", slot: "ModelSlot", node: pytest.Item,
                 config: pytest.Config) -> None:
        self.session = session
        self.slot = slot
        self.candidate = slot.label
        self.node = node
        self.config = config
        self.capability: Optional[CapabilitySpec] = capability_of(node)
        self._results: list["ComparisonResult"] = []

    @property
    def base(self) -> "Backend":
        """The base model's backend (loaded once per session, on first use)."""
        return checked(self.session.base.backend)

    @property
    def tuned(self) -> "Backend":
        """This test's candidate's backend (loaded once per session, on first use)."""
        return checked(self.slot.backend)

    def suite(self, source: Union[str, Path, Sequence[Mapping[str, Any]]], kind: str, **options: Any) -> "Suite":
        """:func:`load_suite`, with a relative path resolved against the test file's folder."""
        from pytest_forgetting.scoring.suites import load_suite

        if isinstance(source, (str, Path)) and not Path(source).is_absolute():
            candidate = Path(str(self.node.path)).parent / source
            if candidate.exists():
                source = candidate
        suite = checked(load_suite, source, kind, **options)
        if suite.kind == "generation":  # an unknown scorer or option fails now, not after generating
            from pytest_forgetting.scoring.kinds import check_scorer_accepts

            checked(check_scorer_accepts, suite, self.session.registry)
        return suite  # type: ignore[no-any-return]

    def _marker(self, name: str, given: Any) -> Any:
        """An argument given here, else the ``capability`` marker's, else None (the session's default)."""
        if given is not None:
            return given
        return getattr(self.capability, name) if self.capability is not None else None

    def decision(self, tolerance: Any = None, policy: Optional[str] = None,
                 alpha: Optional[float] = None) -> "Decision":
        """The decision this test's comparisons use: argument > ``capability`` marker > session default.

        A tolerance left None is the deciding metric's own default (or ``--forgetting-tolerance``).
        """
        from pytest_forgetting.comparison.decision import resolve_decision

        policy = self._marker("policy", policy) or self.session.policy
        alpha = self._marker("alpha", alpha)
        return checked(resolve_decision, tolerance=self._marker("tolerance", tolerance), policy=policy,
                       alpha=self.session.alpha if alpha is None else alpha,
                       family_size=self.session.family_size if policy == "significant" else 1,
                       session_tolerance=self.session.tolerance)

    def record(self, result: "ComparisonResult") -> "ComparisonResult":
        """Report a result computed elsewhere with this test's (JUnit properties, the reports, the hook)."""
        result.candidate = result.candidate or self.candidate
        result.test = result.test or self.node.nodeid
        self._mark_target(result)
        self.session.results.append(result)
        self._results.append(result)
        return result

    def compare(self, suite: "Suite", *, metric: Optional[str] = None, tolerance: Any = None,
                policy: Optional[str] = None, alpha: Optional[float] = None,
                capability: Optional[str] = None) -> "ComparisonResult":
        """Score the base and this test's candidate on ``suite`` (each once per session) and compare them.

        The result is recorded for the reports and JUnit properties; it does not fail the
        test by itself (use :meth:`check` or ``assert_no_forgetting``).
        """
        checked(self._check_tolerance, suite, self._marker("metric", metric), self._marker("tolerance", tolerance))
        result = checked(
            self.session.compare, self.slot, suite,
            capability=self._marker("name", capability), metric=self._marker("metric", metric),
            tolerance=self._marker("tolerance", tolerance), policy=self._marker("policy", policy),
            alpha=self._marker("alpha", alpha), test=self.node.nodeid,
        )
        self._results.append(self._mark_target(result))
        return result

    def _check_tolerance(self, suite: "Suite", metric: Optional[str], tolerance: Any) -> None:
        """Refuse a tolerance that lets the deciding metric drop over its whole range: no check could fail."""
        if tolerance is None:
            return
        from pytest_forgetting.scoring.kinds import declared_metrics
        from pytest_forgetting.tolerance import parse_tolerance

        allowed = parse_tolerance(tolerance)
        declared, primary = declared_metrics(suite, self.session.registry)
        deciding = declared.get(metric or primary)
        if deciding is None:  # an unknown metric: the comparison names the declared ones
            return
        span = deciding.high - deciding.low
        if allowed.relative:
            vacuous = allowed.value > 1 and deciding.higher_is_better and deciding.low >= 0
        else:  # 1.0 on accuracy (a check that never fails) may be meant; 2.0 is a unit mistake
            vacuous = allowed.value > span
        if not vacuous:
            return
        hint = (f"for {allowed.value:g} points write tolerance={allowed.value / 100:g}, or '{allowed.value:g}%' for a drop "
                "relative to the base score" if deciding.is_share and not allowed.relative else
                "give a smaller tolerance")
        raise ForgettingError(
            f"tolerance {allowed} on {deciding.name} ({deciding.unit}, from {deciding.low:g} to {deciding.high:g}) "
            f"allows a drop over the metric's whole range, so this check could never fail; {hint}"
        )

    def _mark_target(self, result: "ComparisonResult") -> "ComparisonResult":
        """Mark ``result`` as a target's (``extra["target"] = True``) when the marker says ``target=True``.

        A target's drop is reported but fails no test (``assert_no_forgetting`` lets it pass) and
        stays out of Holm's family; the checkpoint sweep recommends by its gain.
        """
        if self.capability is not None and self.capability.target:
            result.extra["target"] = True
        elif not result.passed and self.slot.spec is not None and self.slot.spec.path is not None:
            from pytest_forgetting.training.hints import RunSettings, hint_text

            hints = hint_text(RunSettings.read(self.slot.spec.path))
            if hints:
                result.extra["hints"] = hints
        return result

    def check(self, suite: "Suite", **options: Any) -> "ComparisonResult":
        """:meth:`compare`, then fail the test with an actionable message unless it passes."""
        __tracebackhide__ = True
        from pytest_forgetting.comparison.assertions import assert_no_forgetting

        return assert_no_forgetting(self.compare(suite, **options))

    def check_all(self, suite: "Suite", **options: Any) -> list["ComparisonResult"]:
        """:meth:`compare` on every metric the suite declares, then fail with each one that does not pass.

        An lm-eval task gets one check per ``(metric, filter)`` (gsm8k: ``exact_match`` under
        ``strict-match`` and under ``flexible-extract``); each is its own row in the reports.
        """
        __tracebackhide__ = True
        from pytest_forgetting.comparison.assertions import failure_message
        from pytest_forgetting.scoring.kinds import declared_metrics

        if "metric" in options:
            pytest.fail("pytest-forgetting: check_all compares every metric the suite declares; use "
                        "check(suite, metric=...) for one", pytrace=False)
        declared, _ = checked(declared_metrics, suite, self.session.registry)
        results = [self.compare(suite, metric=name, **options) for name in declared]
        failing = [failure_message(result) for result in results
                   if not result.passed and not result.is_target]
        if failing:
            from pytest_forgetting.errors import ForgettingDetected

            raise ForgettingDetected("\n\n".join(failing))
        return results

    def drift(self, suite: "Suite", *, max_kl: Optional[float] = None, metric: str = "kl",
              capability: Optional[str] = None, max_new_tokens: Optional[int] = None,
              alpha: Optional[float] = None) -> "ComparisonResult":
        """Label-free KL drift (or token-shift rate) of this test's candidate against the base.

        ``max_kl`` is the bound on the mean per-token drift (default: the metric's, 0.1 nats
        for KL); ``alpha`` defaults to the marker's, then the session's. For a generation
        suite at its own ``max_new_tokens``, the candidate's outputs are those of scoring the
        suite (this session's, or the result cache's): a test that checks a suite and its
        drift generates once.
        """
        result = checked(
            self.session.drift, self.slot, suite, max_kl=max_kl, metric=metric,
            capability=self._marker("name", capability), alpha=self._marker("alpha", alpha),
            max_new_tokens=max_new_tokens, test=self.node.nodeid,
        )
        self._results.append(self._mark_target(result))
        return result

    def run_check(self, check: "Check", *, samples: Optional[int] = None, seed: int = 0) -> "ComparisonResult":
        """A declared check (:mod:`pytest_forgetting.checks`): its suite, measured and decided as declared, and
        the test failed unless it holds (a target's drop is reported, never a failure)."""
        __tracebackhide__ = True
        from pytest_forgetting.comparison.assertions import assert_no_drift, assert_no_forgetting

        suite = checked(check.load, samples=samples, seed=seed)
        if check.measure == "drift":
            return assert_no_drift(self.drift(suite, max_kl=check.max_kl, capability=check.capability,
                                              alpha=check.alpha))
        result = self.compare(suite, metric=check.metric, tolerance=check.tolerance, policy=check.policy,
                              alpha=check.alpha, capability=check.capability)
        if check.target:
            result.extra["target"] = True
            result.extra.pop("hints", None)
        return assert_no_forgetting(result)

    def publish(self, *, with_candidate: bool) -> None:
        """Write this test's results (as finally decided) to its JUnit properties and the result hook."""
        from pytest_forgetting.report.junit import junit_properties

        from pytest_forgetting.report.header import substitutions

        results, self._results = self._results, []
        substituted = substitutions(self.session) if results else {}
        for result in results:
            self.node.user_properties.extend(junit_properties(result, with_candidate=with_candidate))
            self.node.user_properties.extend((f"substitution ({who})", text) for who, text in substituted.items())
            self.config.hook.pytest_forgetting_result(config=self.config, nodeid=self.node.nodeid, result=result)
