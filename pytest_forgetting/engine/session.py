"""The evaluation session: one base, any number of candidates, and everything their comparison needs.

:class:`EvaluationSession` owns the base model and the candidates (each loaded lazily, at
most once; adapters share their base's weights), the result cache and the committed
baseline, the scorer registry, a memo of scores keyed by model identity and suite
fingerprint, and the results. It needs no pytest: a script, a notebook or a training loop
uses it directly, and the pytest plugin is a thin adapter over it::

    from pytest_forgetting import EvaluationSession, load_suite

    session = EvaluationSession(candidates=["out/checkpoint-500", "out/checkpoint-1000"])
    suite = load_suite("tests/forgetting/data/capitals.jsonl", "multiple_choice")
    for candidate in session.candidates:
        result = session.compare(candidate, suite, tolerance=0.05)
        print(candidate.label, result.verdict, result.delta)
    session.results  # every comparison, in order

The base is scored once per suite for all candidates; a candidate identical to another
(same fingerprint) reuses its scores.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from pytest_forgetting.backends.contract import Backend, Identity, check_same_vocabulary
from pytest_forgetting.backends.served.address import is_served
from pytest_forgetting.backends.spec import LoadOptions, ModelSpec, resolve_models
from pytest_forgetting.comparison.decision import resolve_decision
from pytest_forgetting.comparison.result import ComparisonResult
from pytest_forgetting.comparison.sequential import SequentialSettings
from pytest_forgetting.engine import scoring
from pytest_forgetting.engine.models import Loader, ModelSlot, candidate_labels, default_loader
from pytest_forgetting.engine.stored import StoredResults
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.suites import Suite
from pytest_forgetting.storage.baseline import Baseline
from pytest_forgetting.storage.cache import ResultCache
from pytest_forgetting.tolerance import ToleranceLike


@dataclass
class MeasuredDrift:
    """Per-item drift records measured so far (by item index), and how KL was measured."""

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    approximation: Optional[str] = None


ModelSource = Union[str, "os.PathLike[str]", ModelSpec, Backend]


class EvaluationSession:
    """The base, its candidates, stored results, the scorer registry, the score memo and the results.

    Args:
        base: the base model: a path or model id, a :class:`ModelSpec`, or a :class:`Backend`;
            None when every candidate is an adapter whose config names it.
        candidates: the tuned models, as a list (labels from their folder names) or a mapping
            label -> source; each a path, model id, :class:`ModelSpec` or :class:`Backend`.
            None: none yet, each added later with :meth:`add_candidate` (a training loop's
            live model at each evaluation).
        options: how local models are loaded (device, dtype, batch size, safety switches).
        cache: a :class:`ResultCache` or its folder (None: no cache).
        baseline: a :class:`Baseline` or its folder, with ``update_baseline`` to rewrite it.
        registry: a :class:`~pytest_forgetting.scoring.registry.ScorerRegistry`, or a function
            building one on first use (default: the built-in scorers).
        loader: loads a spec into a backend (default: transformers/peft).
        loader_names: names of custom loaders, mixed into local models' fingerprints.
        tolerance, alpha, policy: session defaults for decisions (a marker or call overrides).
        family_size: capabilities decided together under the ``significant`` policy.
        batch_size: a fixed batch size for every scoring call (None: the backend's own).
        sequential: sequential verdicts (True, or :class:`SequentialSettings`): score items
            in a seeded random order, in chunks, and stop once a capability is decided.
    """

    def __init__(
        self,
        base: Optional[ModelSource] = None,
        candidates: Union[Sequence[ModelSource], Mapping[str, ModelSource], None] = (),
        *,
        options: Optional[LoadOptions] = None,
        cache: Union[ResultCache, str, "os.PathLike[str]", None] = None,
        baseline: Union[Baseline, str, "os.PathLike[str]", None] = None,
        update_baseline: bool = False,
        registry: Any = None,
        loader: Optional[Loader] = None,
        loader_names: Sequence[str] = (),
        tolerance: Optional[ToleranceLike] = None,
        alpha: Optional[float] = None,
        policy: Optional[str] = None,
        family_size: int = 1,
        batch_size: Optional[int] = None,
        sequential: Union[bool, SequentialSettings] = False,
    ) -> None:
        self.options = options or LoadOptions()
        self._loader = loader or default_loader
        self._loader_names = tuple(loader_names)
        defaults = resolve_decision(tolerance=tolerance, alpha=alpha, policy=policy)  # validated once
        self.tolerance, self.alpha, self.policy = defaults.tolerance, defaults.alpha, defaults.policy
        self.family_size = max(1, family_size)
        self.batch_size = batch_size
        self.sequential = sequential if isinstance(sequential, SequentialSettings) \
            else SequentialSettings(enabled=bool(sequential))
        self._registry = registry
        self.stored = StoredResults(
            cache if isinstance(cache, ResultCache) or cache is None else ResultCache(Path(cache)),
            baseline if isinstance(baseline, Baseline) or baseline is None
            else Baseline(Path(baseline), update=update_baseline),
        )
        self.base, self.candidates = self._slots(base, candidates)
        self.results: list[ComparisonResult] = []
        #: Suites each model actually ran on (scored at least one item), by label.
        self.runs: Counter[str] = Counter()
        #: (label, suite fingerprint) of every suite a model ran on.
        self.ran: set[tuple[str, str]] = set()
        self._memo: dict[tuple[Identity, str], Any] = {}
        self._rows: dict[tuple[Identity, str], dict[int, tuple[dict[str, float], dict[str, Any]]]] = {}
        self._drift_rows: dict[tuple[Any, ...], MeasuredDrift] = {}
        self._base_vocabulary: Optional[Mapping[str, int]] = None
        self._noticed: set[tuple[str, str]] = set()

    # -- models ---------------------------------------------------------------------------------
    def _slots(self, base: Optional[ModelSource], candidates: Union[Sequence[ModelSource], Mapping[str, ModelSource],
                                                                    None]) -> tuple[ModelSlot, list[ModelSlot]]:
        if candidates is None:
            if not isinstance(base, (Backend, ModelSpec)):
                raise ForgettingError("EvaluationSession: candidates=None (added later) needs the base as a Backend "
                                      "or ModelSpec")
            return self._slot("base", "base", base), []
        named = dict(candidates) if isinstance(candidates, Mapping) else None
        if named is not None and "base" in named:
            raise ForgettingError("EvaluationSession: 'base' names the base model; label the candidate otherwise")
        sources = list(named.values()) if named is not None else list(candidates)
        if not sources:
            raise ForgettingError("EvaluationSession: no candidates; give at least one tuned model to compare")
        paths = [s for s in sources if isinstance(s, (str, os.PathLike))]
        if paths and len(paths) != len(sources):
            raise ForgettingError("EvaluationSession: give every candidate as a path, or every candidate as a "
                                  "spec or backend, not a mix")
        if paths:
            if not (base is None or isinstance(base, (str, os.PathLike))):
                raise ForgettingError("EvaluationSession: candidates given as paths need the base as a path "
                                      "(or None, for adapters naming their base)")
            base_spec, specs = resolve_models([os.fspath(p) for p in paths],
                                              None if base is None else os.fspath(base), self.options)
            sources, base = list(specs), base_spec
        if base is None:
            raise ForgettingError("EvaluationSession: no base model; pass base=PATH (or a Backend)")
        labels = list(named) if named is not None else candidate_labels([self._name_of(s) for s in sources])
        return self._slot("base", "base", base), [self._slot(label, "candidate", s) for label, s in zip(labels, sources)]

    @staticmethod
    def _name_of(source: ModelSource) -> str:
        """How a candidate's label is found: its path or id, a served model's name (and revision)."""
        from pytest_forgetting.backends.served.address import is_served, parse_address

        name = source.source if isinstance(source, ModelSpec) else source.name if isinstance(source, Backend) \
            else os.fspath(source)
        if is_served(name):
            address = parse_address(name)
            return address.model + (f"@{address.revision}" if address.revision else "")
        return name

    def _slot(self, label: str, role: str, source: ModelSource) -> ModelSlot:
        if isinstance(source, Backend):
            return ModelSlot(label, role, backend=source)
        if not isinstance(source, ModelSpec):
            raise ForgettingError(f"EvaluationSession: {label}: expected a path, a ModelSpec or a Backend, "
                                  f"got {type(source).__name__}")
        return ModelSlot(label, role, spec=source, load=lambda: self._load(source, role),
                         loader_names=self._loader_names, options=self.options)

    def _load(self, spec: ModelSpec, role: str) -> Backend:
        """Load ``spec`` through the loader; a candidate adapter joins the base's weights."""
        shares_base = role == "candidate" and spec.kind == "adapter"
        base = self.base.backend() if shares_base or (role == "candidate" and self.base.loaded) else None
        backend = self._loader(spec, self.options, base)
        if self.options.device_map and isinstance(backend, Backend) and not backend.shards_by_device_map:
            raise ForgettingError(
                f"{spec.source}: --device-map {self.options.device_map} shards local transformers models, but "
                f"this model's backend ({type(backend).__name__}) places it itself (a served model: its server, "
                "e.g. vLLM --tensor-parallel-size); leave --device-map out for it")
        if role == "candidate" and isinstance(backend, Backend) and backend.capabilities.tokenizer:
            vocabulary = self._vocabulary_of_base()
            if vocabulary is not None:
                check_same_vocabulary(vocabulary, backend.vocabulary(), spec.source)
        return backend

    def _vocabulary_of_base(self) -> Optional[Mapping[str, int]]:
        """The base's vocabulary; only its tokenizer is read when the base itself is not loaded."""
        if self._base_vocabulary is None:
            if self.base.loaded:
                backend = self.base.backend()
                self._base_vocabulary = backend.vocabulary() if backend.capabilities.tokenizer else None
            elif self.base.spec is not None and self.base.spec.kind != "external":
                from pytest_forgetting.backends.hf.loading import load_tokenizer

                self._base_vocabulary = load_tokenizer(self.base.spec).get_vocab()  # type: ignore[attr-defined]
            elif self.base.spec is not None and is_served(self.base.spec.source):  # a few requests to its server
                backend = self.base.backend()
                self._base_vocabulary = backend.vocabulary() if backend.capabilities.tokenizer else None
        return self._base_vocabulary

    def add_candidate(self, label: str, backend: Backend) -> ModelSlot:
        """Add a candidate this session compares from now on (e.g. the live model at a training step)."""
        if label == "base" or any(slot.label == label for slot in self.candidates):
            raise ForgettingError(f"EvaluationSession: a candidate is already labelled {label!r}; give another label")
        slot = self._slot(label, "candidate", backend)
        self.candidates.append(slot)
        return slot

    def candidate(self, which: Union[str, ModelSlot, None] = None) -> ModelSlot:
        """A candidate by label (or the slot itself); with one candidate, None means it."""
        if isinstance(which, ModelSlot):
            return which
        if which is None and len(self.candidates) == 1:
            return self.candidates[0]
        for slot in self.candidates:
            if slot.label == which:
                return slot
        raise ForgettingError(f"no candidate {which!r}; this session compares: "
                              f"{', '.join(slot.label for slot in self.candidates)}")

    def label_of(self, slot: ModelSlot) -> str:
        """How progress lines name a model: ``base``, ``tuned`` (one candidate) or the candidate's label."""
        if slot.role == "base":
            return "base"
        return "tuned" if len(self.candidates) == 1 else slot.label

    @property
    def registry(self) -> Any:
        """The scorer registry (built on first use)."""
        from pytest_forgetting.scoring.registry import ScorerRegistry, build_registry

        if not isinstance(self._registry, ScorerRegistry):
            self._registry = build_registry() if self._registry is None else self._registry()
        return self._registry

    # -- scoring and comparing ------------------------------------------------------------------
    def scores(self, model: Union[str, ModelSlot], suite: Suite) -> Any:
        """``model``'s :class:`~pytest_forgetting.scoring.kinds.SuiteScores` on ``suite``.

        Once per session per (model identity, suite), through the baseline and the cache: when
        they hold every item, the model is not loaded.
        """
        slot = self.slot_of(model)
        key = (slot.identity(), suite.fingerprint)
        if key not in self._memo:
            rows = self.item_rows(slot, suite)
            if rows:  # part of the suite was scored look by look: score the rest
                self._memo[key] = scoring.score_items(self, slot, suite, range(len(suite)))
            else:
                scores = self._memo[key] = scoring.score_stored(self, slot, suite)
                if self.sequential.enabled:  # later looks read them per item
                    rows.update({index: ({name: values[index] for name, values in scores.metrics.items()}, record)
                                 for index, record in enumerate(scores.records)})
        return self._memo[key]

    def slot_of(self, model: Union[str, ModelSlot]) -> ModelSlot:
        """The base (``"base"`` or its slot) or a candidate (by label or slot)."""
        return self.base if model == "base" or model is self.base else self.candidate(model)

    def item_rows(self, slot: ModelSlot, suite: Suite) -> dict[int, tuple[dict[str, float], dict[str, Any]]]:
        """The per-item (metrics, record) of ``slot`` on ``suite`` scored so far this session, by item index."""
        return self._rows.setdefault((slot.identity(), suite.fingerprint), {})

    def drift_rows(self, slot: ModelSlot, suite: Suite, *options: Any) -> "MeasuredDrift":
        """The per-item drift records of ``slot`` against the base on ``suite`` measured so far, by item index."""
        return self._drift_rows.setdefault((self.base.identity(), slot.identity(), suite.fingerprint, *options),
                                           MeasuredDrift())

    def compare(self, candidate: Union[str, ModelSlot, None], suite: Suite, *, capability: Optional[str] = None,
                metric: Optional[str] = None, tolerance: Optional[ToleranceLike] = None,
                policy: Optional[str] = None, alpha: Optional[float] = None, test: str = "",
                record: bool = True) -> ComparisonResult:
        """Score the base and ``candidate`` on ``suite`` (each once per session) and decide.

        Args:
            capability: the name in reports (default: the suite's).
            metric: the deciding metric (default: the suite's primary one, e.g. ``acc``).
            tolerance, policy, alpha: override the session's defaults; the tolerance is in the
                metric's unit, and defaults to the metric's own.
            test: the test or check this result belongs to (a pytest node id).
            record: keep the result in :attr:`results`.
        """
        from pytest_forgetting.comparison.run import compare_scores

        slot = self.candidate(candidate)
        suite, notice = self._answerable(slot, suite)
        policy = policy or self.policy
        decision = resolve_decision(tolerance=tolerance, policy=policy,
                                    alpha=alpha if alpha is not None else self.alpha,
                                    family_size=self.family_size if policy == "significant" else 1,
                                    session_tolerance=self.tolerance)
        if self.sequential.enabled:
            from pytest_forgetting.engine.looks import compare_in_looks

            result = compare_in_looks(self, slot, suite, decision, capability=capability, metric=metric, test=test)
        else:
            base, tuned = self.scores(self.base, suite), self.scores(slot, suite)
            result = compare_scores(base, tuned, suite, decision, capability=capability, metric=metric,
                                    candidate=slot.label, test=test)
        if notice:
            result.extra["notice"] = notice
        if record:
            self.results.append(result)
        return result

    def _answerable(self, slot: ModelSlot, suite: Suite) -> tuple[Suite, Optional[str]]:
        """``suite`` as base and ``slot`` can both answer it: multiple choice by written answers when one
        of them has no log-likelihoods (a served model without prompt log-probs), with a notice."""
        if suite.kind != "multiple_choice" or suite.settings.answer_by != "loglikelihood":
            return suite, None
        lacking = [s for s in (self.base, slot) if not self._scores_loglikelihood(s)]
        if not lacking:
            return suite, None
        from pytest_forgetting.scoring.letters import by_letter
        from pytest_forgetting.scoring.progress import notify

        notice = (f"{suite.name}: {lacking[0].name} returns no prompt log-probabilities, so base and "
                  f"{slot.label} answer by writing the choice's letter: metric letter_acc, not acc")
        if (suite.fingerprint, slot.label) not in self._noticed:
            self._noticed.add((suite.fingerprint, slot.label))
            notify(notice)
        return by_letter(suite), notice

    @staticmethod
    def _scores_loglikelihood(slot: ModelSlot) -> bool:
        """Whether a model scores log-likelihoods (a local folder always does; a served one says so when loaded)."""
        if slot.spec is not None and slot.spec.kind != "external":
            return True
        return slot.backend().capabilities.loglikelihood

    def drift(self, candidate: Union[str, ModelSlot, None], suite: Suite, *,
              max_kl: Optional[ToleranceLike] = None, metric: str = "kl", capability: Optional[str] = None,
              alpha: Optional[float] = None, top_k: int = 3, max_new_tokens: Optional[int] = None,
              test: str = "", record: bool = True) -> ComparisonResult:
        """Label-free KL drift (or token-shift rate) of ``candidate`` against the base on ``suite``.

        Passes while the upper bound of the mean per-item drift is below ``max_kl`` (default:
        the metric's own bound). For a generation suite at its own ``max_new_tokens``, the
        candidate's answers are those of scoring the suite (this session's, or the cache's).
        A backend offering only top-k log-probabilities gets the declared approximation.
        """
        from pytest_forgetting.comparison.run import compare_drift_scores, drift_decision

        slot = self.candidate(candidate)
        if suite.kind == "lm_eval":
            raise ForgettingError(f"suite {suite.name}: KL drift is measured on text or generation suites, not on "
                                  "an lm-eval task; load its prompts as a suite with load_suite(..., 'text')")
        decision = drift_decision(max_kl, metric, alpha if alpha is not None else self.alpha)
        if self.sequential.enabled:
            from pytest_forgetting.engine.looks import drift_in_looks

            result = drift_in_looks(self, slot, suite, decision, metric=metric, capability=capability, top_k=top_k,
                                    max_new_tokens=max_new_tokens, test=test)
            if record:
                self.results.append(result)
            return result
        outputs = None
        if suite.kind == "generation" and max_new_tokens in (None, suite.settings.max_new_tokens):
            outputs = [record["output"] for record in self.scores(slot, suite).records]
        drift = scoring.drift_stored(self, slot, suite, metric=metric, top_k=top_k,
                                     max_new_tokens=max_new_tokens, outputs=outputs)
        result = compare_drift_scores(drift, suite, decision, metric=metric, capability=capability,
                                      base_model=self.base.name, tuned_model=slot.name, candidate=slot.label,
                                      test=test)
        if record:
            self.results.append(result)
        return result

    def add_results(self, results: Sequence[Union[ComparisonResult, dict[str, Any]]]) -> None:
        """Keep results produced elsewhere (e.g. sent by pytest-xdist workers as dicts)."""
        for result in results:
            self.results.append(result if isinstance(result, ComparisonResult) else ComparisonResult.from_dict(result))

    def results_of(self, candidate: Union[str, ModelSlot]) -> list[ComparisonResult]:
        """The results of one candidate, in order."""
        label = candidate.label if isinstance(candidate, ModelSlot) else candidate
        return [result for result in self.results if result.candidate == label]

