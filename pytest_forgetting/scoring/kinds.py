"""Scoring a suite with one model: multiple choice, generation and perplexity.

Every function returns a :class:`SuiteScores` whose per-item metric lists align with
``suite.items``. Base and tuned are always scored through the same code with the same
settings, so their scores are paired.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.backends.contract import ModelHandle
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import Item, Suite

#: Requests handed to a model at once; progress is reported between chunks.
CHUNK = 256


@dataclass
class SuiteScores:
    """One model's per-item scores on one suite.

    Attributes:
        metrics: metric name -> per-item values (aligned with the suite's items).
        higher_is_better: metric name -> direction.
        records: per-item details (log-likelihoods, outputs, predictions).
        seconds: wall time spent scoring.
    """

    suite: str
    kind: str
    model: str
    metrics: dict[str, list[float]]
    higher_is_better: dict[str, bool]
    records: list[dict[str, Any]]
    seconds: float = 0.0
    primary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def render_context(handle: ModelHandle, suite: Suite, item: Item) -> str:
    """The prompt text for ``item``: few-shot examples, the item, the chat template if on."""
    context = suite.context(item)
    if suite.settings.chat_template:
        from pytest_forgetting.backends.hf.backend import chat_prompt

        tokenizer = getattr(handle, "tokenizer", None)
        if tokenizer is None:
            raise ForgettingError(f"{handle.name}: this backend has no tokenizer to apply a chat template")
        context = chat_prompt(tokenizer, context, suite.settings.system_prompt)
    return context


def _chunked(run: Callable[[list[Any]], list[Any]], requests: list[Any], progress: Progress,
             per_item: int = 1) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(requests), CHUNK):
        chunk = requests[start : start + CHUNK]
        results.extend(run(chunk))
        progress.advance(len(chunk) // per_item if per_item > 1 else len(chunk))
    return results


def score_multiple_choice(handle: ModelHandle, suite: Suite, *, batch_size: Optional[int] = None,
                          shared_prefix: bool = True) -> SuiteScores:
    """lm-eval multiple choice: ``acc`` and ``acc_norm`` from each choice's log-likelihood.

    With ``shared_prefix`` (and a backend offering ``loglikelihood_grouped``) each question's
    context is computed once for all its choices; the numbers are the same.
    """
    started = time.perf_counter()
    delimiter = suite.settings.target_delimiter
    groups = [(render_context(handle, suite, item), [f"{delimiter}{choice}" for choice in item.choices])
              for item in suite.items]
    grouped = getattr(handle, "loglikelihood_grouped", None) if shared_prefix else None
    if grouped is not None:
        progress = Progress(f"{suite.name} ({handle.role})", len(groups))
        nested = _chunked(lambda chunk: grouped(chunk, batch_size=batch_size), groups, progress)
        results = [scored for group in nested for scored in group]
    else:
        requests = [(context, continuation) for context, continuations in groups for continuation in continuations]
        progress = Progress(f"{suite.name} ({handle.role})", len(requests))
        results = _chunked(lambda chunk: handle.loglikelihood(chunk, batch_size=batch_size), requests, progress)
    acc, acc_norm, records = [], [], []
    position = 0
    for item in suite.items:
        scored = results[position : position + len(item.choices)]
        position += len(item.choices)
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
    return SuiteScores(suite.name, suite.kind, handle.name, {"acc": acc, "acc_norm": acc_norm},
                       {"acc": True, "acc_norm": True}, records, time.perf_counter() - started, "acc")


def _first_argmax(values: Sequence[float]) -> int:
    """Index of the largest value; ties go to the first (as lm-eval's ``np.argmax``)."""
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best


def score_generation(handle: ModelHandle, suite: Suite, *, registry: Any = None,
                     batch_size: Optional[int] = None) -> SuiteScores:
    """Greedy generation, then the suite's scorer on every output."""
    from pytest_forgetting.scoring.registry import build_registry
    from pytest_forgetting.scoring.scorers import forbidden_hits, resolve_scorer

    started = time.perf_counter()
    settings = suite.settings
    scorer = resolve_scorer(settings.scorer, registry or build_registry())
    options = dict(settings.scorer_options)
    prompts = [render_context(handle, suite, item) for item in suite.items]
    progress = Progress(f"{suite.name} ({handle.role})", len(prompts))
    outputs = _chunked(
        lambda chunk: handle.generate(chunk, max_new_tokens=settings.max_new_tokens, stop=settings.stop,
                                      batch_size=batch_size),
        prompts, progress,
    )
    scores, records = [], []
    for item, output in zip(suite.items, outputs):
        try:
            value = float(scorer(output, list(item.targets), **options))
        except TypeError as exc:
            raise ForgettingError(f"suite {suite.name}: scorer {settings.scorer!r} rejected its options ({exc})") from None
        scores.append(value)
        record = {"id": item.id, "prompt": item.prompt, "targets": list(item.targets), "output": output,
                  "score": value, "answer": output}
        if "phrases" in options:
            record["hits"] = forbidden_hits(output, options["phrases"], ignore_case=options.get("ignore_case", False))
        records.append(record)
    name = settings.scorer if isinstance(settings.scorer, str) else getattr(settings.scorer, "__name__", "score")
    return SuiteScores(suite.name, suite.kind, handle.name, {name: scores}, {name: True}, records,
                       time.perf_counter() - started, name)


def rolling_windows(tokens: Sequence[int], prefix: int, max_length: int) -> list[tuple[list[int], int]]:
    """Windows covering every token once: (input ids, number of predicted tokens at its end).

    The first window is preceded by ``prefix`` (BOS or EOS) so the first token is scored
    too, as lm-eval's ``loglikelihood_rolling`` does; each window predicts up to
    ``max_length`` tokens with as much preceding context as fits.
    """
    windows = []
    sequence = [prefix, *tokens]
    start = 1
    while start < len(sequence):
        end = min(start + max_length, len(sequence))
        context_start = max(0, end - max_length - 1)
        windows.append((sequence[context_start:end], end - start))
        start = end
    return windows


def score_perplexity(handle: ModelHandle, suite: Suite, *, batch_size: Optional[int] = None) -> SuiteScores:
    """Mean token negative log-likelihood per item (lower is better), rolling windows."""
    started = time.perf_counter()
    encode = getattr(handle, "encode")
    max_length = int(getattr(handle, "max_length", 2048))
    prefix = int(getattr(handle, "prefix_token_id"))
    windows, owners = [], []
    for index, item in enumerate(suite.items):
        tokens = encode(render_context(handle, suite, item))
        if tokens and tokens[0] == prefix:  # a BOS the tokenizer added: the windows add it once
            tokens = tokens[1:]
        for window in rolling_windows(tokens, prefix, max_length):
            windows.append(window)
            owners.append(index)
    totals = [0.0] * len(suite.items)
    counts = [0] * len(suite.items)
    progress = Progress(f"{suite.name} ({handle.role})", len(windows))

    def run(chunk: list[tuple[list[int], int]]) -> list[float]:
        sums = []
        for (ids, predicted), logprobs in zip(chunk, handle.token_logprobs([ids[:-1] for ids, _ in chunk],
                                                                           batch_size=batch_size)):
            targets = ids[len(ids) - predicted :]
            rows = logprobs[len(ids) - 1 - predicted :]
            sums.append(float(sum(float(rows[i, t]) for i, t in enumerate(targets))))
        return sums

    for (_, predicted), owner, total in zip(windows, owners, _chunked(run, windows, progress)):
        totals[owner] -= total
        counts[owner] += predicted
    nll = [t / c for t, c in zip(totals, counts)]
    records = [{"id": item.id, "prompt": item.prompt[:200], "nll": value, "tokens": count}
               for item, value, count in zip(suite.items, nll, counts)]
    token_nll = sum(totals) / max(1, sum(counts))
    return SuiteScores(suite.name, suite.kind, handle.name, {"nll": nll}, {"nll": False}, records,
                       time.perf_counter() - started, "nll", {"perplexity": math.exp(token_nll)})


def score_suite(handle: ModelHandle, suite: Suite, *, registry: Any = None,
                batch_size: Optional[int] = None) -> SuiteScores:
    """Score ``suite`` with ``handle`` by the suite's kind.

    An automatic batch size halved after an out-of-memory error stays halved for the rest
    of the suite (its chunks are separate batched calls).
    """
    from pytest_forgetting.backends.hf.batching import keep_reduced_batch_size

    with keep_reduced_batch_size():
        if suite.kind == "multiple_choice":
            return score_multiple_choice(handle, suite, batch_size=batch_size)
        if suite.kind == "generation":
            return score_generation(handle, suite, registry=registry, batch_size=batch_size)
        return score_perplexity(handle, suite, batch_size=batch_size)
