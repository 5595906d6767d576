"""The ``forgetting`` fixture's object: the model pair plus this test's capability settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union

import pytest

from pytest_forgetting import settings
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import CapabilitySpec, capability_of

if TYPE_CHECKING:
    from pytest_forgetting.comparison.verdict import ComparisonResult, Decision
    from pytest_forgetting.backends.contract import ModelHandle
    from pytest_forgetting.engine.models import ModelPair
    from pytest_forgetting.scoring.kinds import SuiteScores
    from pytest_forgetting.scoring.registry import ScorerRegistry
    from pytest_forgetting.scoring.suites import Suite

#: Capabilities decided together under the "significant" policy (set at collection).
FAMILY_SIZE = pytest.StashKey[int]()
REGISTRY = pytest.StashKey[Any]()
SCORE_MEMO = pytest.StashKey[dict]()
CACHE = pytest.StashKey[Any]()
BASELINE = pytest.StashKey[Any]()
CACHE_STATS = pytest.StashKey[dict]()


class Forgetting:
    """What a forgetting test works with.

    Attributes:
        capability: the test's validated ``capability`` marker, or None.
        defaults: the session's default tolerance, alpha and policy.
    """

    def __init__(
        self,
        *,
        pair: Callable[[], "ModelPair"],
        loaded: Callable[[str], "ModelHandle"],
        node: pytest.Item,
        config: pytest.Config,
    ) -> None:
        self._pair = pair
        self._loaded = loaded
        self.node = node
        self.config = config
        self.capability: Optional[CapabilitySpec] = capability_of(node)
        self.defaults = settings.decision_defaults(config)
        self._results: list["ComparisonResult"] = []

    @property
    def base(self) -> "ModelHandle":
        """The base model handle (loaded once per session, on first use)."""
        return self._loaded("base")

    @property
    def tuned(self) -> "ModelHandle":
        """The tuned model handle (loaded once per session, on first use)."""
        return self._loaded("tuned")

    @property
    def pair(self) -> "ModelPair":
        """The session's :class:`ModelPair` (specs and load options)."""
        return self._pair()

    def suite(self, source: Union[str, Path, Sequence[Mapping[str, Any]]], kind: str, **options: Any) -> "Suite":
        """:func:`load_suite`, with a relative path resolved against the test file's folder."""
        from pytest_forgetting.scoring.suites import load_suite

        if isinstance(source, (str, Path)) and not Path(source).is_absolute():
            candidate = Path(str(self.node.path)).parent / source
            if candidate.exists():
                source = candidate
        return self._checked(load_suite, source, kind, **options)

    def _checked(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``function``; a user-fixable error fails the test with its one line."""
        __tracebackhide__ = True
        try:
            return function(*args, **kwargs)
        except ForgettingError as exc:
            problem = str(exc)
        pytest.fail(f"pytest-forgetting: {problem}", pytrace=False)

    def decision(self, tolerance: Any = None, policy: Optional[str] = None, alpha: Optional[float] = None) -> "Decision":
        """The decision for this test: argument > ``capability`` marker > session default."""
        from pytest_forgetting.comparison.verdict import resolve_decision

        marker = self.capability
        policy = policy or (marker.policy if marker else None) or self.defaults.policy
        return self._checked(
            resolve_decision,
            tolerance=tolerance if tolerance is not None else (marker.tolerance if marker and marker.tolerance else self.defaults.tolerance),
            policy=policy,
            alpha=alpha if alpha is not None else (marker.alpha if marker and marker.alpha else self.defaults.alpha),
            family_size=self.config.stash.get(FAMILY_SIZE, 1) if policy == "significant" else 1,
        )

    def compare(
        self,
        suite: "Suite",
        *,
        metric: Optional[str] = None,
        tolerance: Any = None,
        policy: Optional[str] = None,
        alpha: Optional[float] = None,
        capability: Optional[str] = None,
    ) -> "ComparisonResult":
        """Score base and tuned on ``suite`` (each once per session) and compare them.

        The result is recorded for the reports and JUnit properties; it does not fail
        the test by itself (use :meth:`check` or ``assert_no_forgetting``).
        """
        from pytest_forgetting.comparison.run import compare
        from pytest_forgetting.engine.models import LazyHandle

        marker = self.capability
        pair = self.pair
        result = self._checked(
            compare, LazyHandle(pair, "base"), LazyHandle(pair, "tuned"), suite,
            capability=capability or (marker.name if marker else None),
            metric=metric or (marker.metric if marker else None),
            decision=self.decision(tolerance, policy, alpha),
            registry=self.registry, score=self._score,
        )
        return self.record(result)

    def check(self, suite: "Suite", **options: Any) -> "ComparisonResult":
        """:meth:`compare`, then fail the test with an actionable message unless it passes."""
        __tracebackhide__ = True
        from pytest_forgetting.comparison.assertions import assert_no_forgetting

        return assert_no_forgetting(self.compare(suite, **options))

    def drift(self, suite: "Suite", *, max_kl: float = 0.1, metric: str = "kl",
              capability: Optional[str] = None, max_new_tokens: Optional[int] = None) -> "ComparisonResult":
        """Label-free KL drift (or token-shift rate) of tuned against base on ``suite``'s prompts.

        For a generation suite at its own ``max_new_tokens``, the tuned model's outputs are
        those of scoring the suite (this session's, or the result cache's): a test that
        checks a suite and its drift generates once.
        """
        from pytest_forgetting.comparison.run import compare_drift
        from pytest_forgetting.engine.models import LazyHandle

        marker = self.capability
        outputs = None
        if suite.kind == "generation" and max_new_tokens in (None, suite.settings.max_new_tokens):
            scored = self._checked(self._score, LazyHandle(self.pair, "tuned"), suite, registry=self.registry)
            outputs = [record["output"] for record in scored.records]

        def score(base: Any, tuned: Any, part: "Suite", **options: Any) -> Any:
            from pytest_forgetting.engine.stored import drift_cached

            return drift_cached(base, tuned, part, cache=self.config.stash.get(CACHE, None),
                                stats=self.config.stash.setdefault(CACHE_STATS, {}), **options)

        result = self._checked(
            compare_drift, LazyHandle(self.pair, "base"), LazyHandle(self.pair, "tuned"), suite, max_kl=max_kl,
            metric=metric, capability=capability or (marker.name if marker else None),
            max_new_tokens=max_new_tokens, outputs=outputs, score=score,
        )
        return self.record(result)

    def record(self, result: "ComparisonResult") -> "ComparisonResult":
        """Keep ``result`` for this test's JUnit properties and the session's reports.

        They are written when the test ends, so a result re-decided later in the test (e.g.
        ``assert_no_forgetting(result, tolerance=...)``) is reported as decided.
        """
        result._recorder = self  # type: ignore[attr-defined]
        self._results.append(result)
        return result

    def replace(self, old: "ComparisonResult", new: "ComparisonResult") -> None:
        """Report ``new`` (a re-decided result) in place of the recorded ``old``."""
        for index, kept in enumerate(self._results):
            if kept is old:
                self._results[index] = new
                new._recorder = self  # type: ignore[attr-defined]
                return

    def publish(self) -> None:
        """Write this test's results to its JUnit properties, the reports and the result hook."""
        from pytest_forgetting.report.junit import STORE, junit_properties

        results, self._results = self._results, []
        for result in results:
            self.node.user_properties.extend(junit_properties(result))
            self.config.stash[STORE].add(self.node.nodeid, result)
            self.config.hook.pytest_forgetting_result(config=self.config, nodeid=self.node.nodeid, result=result)

    @property
    def registry(self) -> "ScorerRegistry":
        """The session's scorer registry (built-ins plus hook-registered scorers)."""
        from pytest_forgetting.scoring.registry import build_registry

        registry = self.config.stash.get(REGISTRY, None)
        if registry is None:
            registry = build_registry(self.config.hook)
            self.config.stash[REGISTRY] = registry
        return registry

    def _score(self, handle: Any, suite: "Suite", **kwargs: Any) -> "SuiteScores":
        """Score once per session per (model, suite), through the cache and the baseline.

        ``handle`` may be a :class:`LazyHandle`: when the baseline or the cache holds every
        item, the model is never loaded.
        """
        from pytest_forgetting.engine.stored import score_cached
        from pytest_forgetting.scoring.kinds import score_suite

        memo = self.config.stash.setdefault(SCORE_MEMO, {})
        key = (handle.role, suite.fingerprint)
        if key not in memo:
            def score(lazy: Any, part: "Suite", **options: Any) -> "SuiteScores":
                real = lazy.load() if hasattr(type(lazy), "load") else lazy
                return score_suite(real, part, **options)

            memo[key] = score_cached(
                handle, suite, score,
                cache=self.config.stash.get(CACHE, None),
                baseline=self.config.stash.get(BASELINE, None) if handle.role == "base" else None,
                stats=self.config.stash.setdefault(CACHE_STATS, {}),
                **kwargs,
            )
        return memo[key]
