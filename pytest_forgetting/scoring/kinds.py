"""Scoring a suite with one backend, by the suite's kind: multiple choice, generation, perplexity.

Every function returns a :class:`SuiteScores` whose per-item metric lists align with
``suite.items`` and whose metrics carry their declarations. Base and candidates are always
scored through the same code with the same settings, so their scores are paired. The
functions call only methods of the backend contract; which capabilities a suite needs is
checked before (:mod:`pytest_forgetting.engine.requirements`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

from pytest_forgetting.backends.contract import Backend, Messages
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import ACC, ACC_NORM, NLL, Metric
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import Item, Suite

#: Requests handed to a model at once; progress is reported between chunks.
CHUNK = 256


@dataclass
class SuiteScores:
    """One model's per-item scores on one suite.

    Attributes:
        metrics: metric name -> per-item values (aligned with the suite's items).
        declared: metric name -> its declaration (direction, binary or continuous, unit).
        records: per-item details (log-likelihoods, outputs, predictions).
        seconds: wall time spent scoring.
        primary: the metric that decides unless a test names another.
    """

    suite: str
    kind: str
    model: str
    metrics: dict[str, list[float]]
    declared: dict[str, Metric]
    records: list[dict[str, Any]]
    seconds: float = 0.0
    primary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def higher_is_better(self) -> dict[str, bool]:
        """Metric name -> its declared direction."""
        return {name: metric.higher_is_better for name, metric in self.declared.items()}


def messages(suite: Suite, item: Item) -> Messages:
    """The chat conversation of ``item``: the suite's system prompt, then the item's context."""
    system = [{"role": "system", "content": suite.settings.system_prompt}] if suite.settings.system_prompt else []
    return [*system, {"role": "user", "content": suite.context(item)}]


def render_text(backend: Backend, suite: Suite, item: Item) -> str:
    """The prompt text for ``item``: few-shot examples, the item, the chat template if on."""
    if suite.settings.chat_template:
        return backend.chat_text(messages(suite, item))
    return suite.context(item)


def render_prompt(backend: Backend, suite: Suite, item: Item) -> Union[str, Messages]:
    """What a generation suite hands the backend: text, or chat messages for a chat suite."""
    return messages(suite, item) if suite.settings.chat_template else suite.context(item)


def _chunked(run: Callable[[list[Any]], list[Any]], requests: list[Any], progress: Progress) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(requests), CHUNK):
        chunk = requests[start : start + CHUNK]
        results.extend(run(chunk))
        progress.advance(len(chunk))
    return results


def score_multiple_choice(backend: Backend, suite: Suite, *, batch_size: Optional[int] = None,
                          shared_prefix: bool = True, label: str = "") -> SuiteScores:
    """lm-eval multiple choice: ``acc`` and ``acc_norm`` from each choice's log-likelihood.

    With ``shared_prefix`` the backend scores each question's choices as one group
    (the transformers backend computes the context once); the numbers are the same.
    """
    started = time.perf_counter()
    delimiter = suite.settings.target_delimiter
    groups = [(render_text(backend, suite, item), [f"{delimiter}{choice}" for choice in item.choices])
              for item in suite.items]
    progress = Progress(f"{suite.name} ({label or backend.name})", len(groups))
    if shared_prefix:
        nested = _chunked(lambda chunk: backend.loglikelihood_groups(chunk, batch_size=batch_size), groups, progress)
    else:
        def flat(chunk: list[tuple[str, list[str]]]) -> list[Any]:
            scored = iter(backend.loglikelihood([(c, x) for c, xs in chunk for x in xs], batch_size=batch_size))
            return [[next(scored) for _ in xs] for _, xs in chunk]

        nested = _chunked(flat, groups, progress)
    acc, acc_norm, records = [], [], []
    for item, scored in zip(suite.items, nested):
        lls = [r.logprob for r in scored]
        pred = _first_argmax(lls)
        pred_norm = _first_argmax([ll / len(choice) for ll, choice in zip(lls, item.choices)])
        acc.append(float(pred == item.answer))
        acc_norm.append(float(pred_norm == item.answer))
        records.append({
            "id": item.id, "prompt": item.prompt, "choices": list(item.choices), "gold": item.answer,
            "loglikelihoods": lls, "is_greedy": [r.is_greedy for r in scored],
            "pred": pred, "pred_norm": pred_norm, "answer": item.choices[pred],
        })
    return SuiteScores(suite.name, suite.kind, backend.name, {"acc": acc, "acc_norm": acc_norm},
                       {"acc": ACC, "acc_norm": ACC_NORM}, records, time.perf_counter() - started, "acc")


def _first_argmax(values: Sequence[float]) -> int:
    """Index of the largest value; ties go to the first (as lm-eval's ``np.argmax``)."""
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best


def score_generation(backend: Backend, suite: Suite, *, registry: Any = None, batch_size: Optional[int] = None,
                     label: str = "") -> SuiteScores:
    """Greedy generation, then the suite's declared scorer on every output (its values checked)."""
    from pytest_forgetting.scoring.registry import build_registry
    from pytest_forgetting.scoring.scorers import forbidden_hits, resolve_scorer

    started = time.perf_counter()
    settings = suite.settings
    registry = registry or build_registry()
    scorer = resolve_scorer(settings.scorer, registry)
    declared, name = declared_metrics(suite, registry)
    metric = declared[name]
    options = dict(settings.scorer_options)
    progress = Progress(f"{suite.name} ({label or backend.name})", len(suite.items))
    _check_accepts(scorer, name, options, suite.name)  # before generating: a typo costs no model time
    generate = backend.generate_chat if settings.chat_template else backend.generate
    prompts = [render_prompt(backend, suite, item) for item in suite.items]
    outputs = _chunked(
        lambda chunk: generate(chunk, max_new_tokens=settings.max_new_tokens, stop=settings.stop,
                               batch_size=batch_size),
        prompts, progress,
    )
    scores, records = [], []
    for item, output in zip(suite.items, outputs):
        try:
            raw = scorer(output, list(item.targets), **options)
        except Exception as exc:  # noqa: BLE001 - the scorer's own failure, named with its item
            raise ForgettingError(f"suite {suite.name}, item {item.id!r}: scorer {name!r} raised "
                                  f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        value = metric.checked(raw, suite=suite.name, item=item.id, source=f"scorer {name!r}")
        scores.append(value)
        record = {"id": item.id, "prompt": item.prompt, "targets": list(item.targets), "output": output,
                  "score": value, "answer": output}
        if "phrases" in options:
            record["hits"] = forbidden_hits(output, options["phrases"], ignore_case=options.get("ignore_case", False))
        records.append(record)
    return SuiteScores(suite.name, suite.kind, backend.name, {name: scores}, declared, records,
                       time.perf_counter() - started, name)


def check_scorer_accepts(suite: Suite, registry: Any) -> None:
    """A generation suite's scorer must exist and take its options: one line naming the closest option otherwise.

    Checked when a test builds the suite (``forgetting.suite``) and again before generating.
    """
    from pytest_forgetting.scoring.scorers import resolve_scorer

    if suite.kind != "generation":
        return
    _, name = declared_metrics(suite, registry)
    _check_accepts(resolve_scorer(suite.settings.scorer, registry), name, dict(suite.settings.scorer_options),
                   suite.name)


def _check_accepts(scorer: Any, name: str, options: dict[str, Any], suite: str) -> None:
    """The scorer must take ``(output, targets, **options)``: refuse options it has no parameter for."""
    import difflib
    import inspect

    function = getattr(scorer, "fn", scorer)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # no signature to read (a builtin): the call will tell
        return
    try:
        signature.bind("", [], **options)
    except TypeError as exc:
        from pytest_forgetting.scoring.suites import LOAD_OPTIONS

        parameters = [p for p in list(signature.parameters)[2:]
                      if signature.parameters[p].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                              inspect.Parameter.VAR_KEYWORD)]
        hints = [f"{option!r} -> {close[0]!r}" for option in options if option not in signature.parameters
                 for close in [difflib.get_close_matches(option, [*parameters, *LOAD_OPTIONS], n=1)] if close]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise ForgettingError(f"suite {suite}: scorer {name!r} rejected its options ({exc}){hint}; it takes: "
                              f"{', '.join(parameters) or 'no options'}; given: "
                              f"{', '.join(sorted(options)) or 'none'}") from None


def score_perplexity(backend: Backend, suite: Suite, *, batch_size: Optional[int] = None,
                     label: str = "") -> SuiteScores:
    """Mean token negative log-likelihood per item (lower is better), lm-eval's rolling windows."""
    started = time.perf_counter()
    texts = [render_text(backend, suite, item) for item in suite.items]
    progress = Progress(f"{suite.name} ({label or backend.name})", len(texts))
    scored = _chunked(lambda chunk: backend.loglikelihood_rolling(chunk, batch_size=batch_size), texts, progress)
    nll = [-r.logprob / r.n_tokens for r in scored]
    records = [{"id": item.id, "prompt": item.prompt[:200], "nll": value, "tokens": r.n_tokens}
               for item, value, r in zip(suite.items, nll, scored)]
    return SuiteScores(suite.name, suite.kind, backend.name, {"nll": nll}, {"nll": NLL}, records,
                       time.perf_counter() - started, "nll", {"perplexity": token_weighted_perplexity(records)})


def token_weighted_perplexity(records: Sequence[dict[str, Any]]) -> float:
    """``exp`` of the NLL over all the suite's tokens together (longer texts weigh more)."""
    tokens = sum(r["tokens"] for r in records)
    return math.exp(sum(r["nll"] * r["tokens"] for r in records) / max(1, tokens))


def score_suite(backend: Backend, suite: Suite, *, registry: Any = None, batch_size: Optional[int] = None,
                label: str = "") -> SuiteScores:
    """Score ``suite`` with ``backend`` by the suite's kind.

    An automatic batch size halved after an out-of-memory error stays halved for the rest
    of the suite (its chunks are separate batched calls).
    """
    from pytest_forgetting.backends.hf.batching import keep_reduced_batch_size

    with keep_reduced_batch_size():
        if suite.kind == "lm_eval":
            from pytest_forgetting.harness.run import score_harness

            return score_harness(backend, suite, batch_size=batch_size, label=label)
        if suite.kind == "multiple_choice" and suite.settings.answer_by == "letter":
            from pytest_forgetting.scoring.letters import score_by_letter

            return score_by_letter(backend, suite, batch_size=batch_size, label=label)  # type: ignore[no-any-return]
        if suite.kind == "multiple_choice":
            return score_multiple_choice(backend, suite, batch_size=batch_size, label=label)
        if suite.kind == "generation":
            return score_generation(backend, suite, registry=registry, batch_size=batch_size, label=label)
        return score_perplexity(backend, suite, batch_size=batch_size, label=label)


def declared_metrics(suite: Suite, registry: Any) -> tuple[dict[str, Metric], str]:
    """The metrics scoring ``suite`` produces, with the primary one (without scoring)."""
    if suite.kind == "multiple_choice" and suite.settings.answer_by == "letter":
        from pytest_forgetting.scoring.letters import LETTER_ACC

        return {"letter_acc": LETTER_ACC}, "letter_acc"
    if suite.kind == "multiple_choice":
        return {"acc": ACC, "acc_norm": ACC_NORM}, "acc"
    if suite.kind == "text":
        return {"nll": NLL}, "nll"
    if suite.kind == "lm_eval":
        from pytest_forgetting.harness.metrics import declared_metrics as harness_metrics
        from pytest_forgetting.harness.tasks import loaded_of

        return harness_metrics(suite.settings, loaded_of(suite).tasks), suite.settings.primary  # type: ignore[attr-defined]
    from pytest_forgetting.scoring.scorers import resolve_scorer

    scorer = resolve_scorer(suite.settings.scorer, registry)
    name = suite.settings.scorer if isinstance(suite.settings.scorer, str) else scorer.name
    return {name: scorer.renamed(name).metric}, name
