"""Label-free drift: KL(base || tuned) and the token-shift rate, on prompts alone.

* KL drift (Shenfeld et al. 2025, "RL's Razor"): per item, the mean over positions of
  ``KL(p_base(. | prefix) || p_tuned(. | prefix))``, both models teacher-forced on the same
  tokens: the prompt followed by the tuned model's greedy continuation. For a generation
  suite the positions are the response's: from the prediction of its first token to the
  prediction after its last (the prompt is context, not scored); for a text suite, every
  position of the text.
* Inputs longer than the model's context (``max_length``): a text is scored in the rolling
  windows perplexity uses (each position once, with as much preceding context as fits); a
  generation prompt keeps its last ``max_length - max_new_tokens`` tokens, as in generation,
  so prompt and answer fit. Shorter inputs are one window, scored as before.
* Token shift (Lin et al. 2024, URIAL): the share of continuation positions where the tuned
  model's token is outside the base model's top-k (k = 3). The tokens shifted most often
  name the leak (e.g. "WHEREAS").
* Backends that return only the top-k log-probabilities per position (served models) get a
  declared approximation (:func:`top_k_kl`): both distributions coarse-grained onto the
  union of their top-k tokens plus one bucket for the remaining mass. The result names it.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from pytest_forgetting.backends.contract import Backend, TopLogprobs
from pytest_forgetting.backends.windows import text_windows
from pytest_forgetting.scoring.kinds import render_prompt, render_text
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import Suite

#: Most often shifted tokens listed per suite.
TOP_SHIFTED = 10
#: Probability given to a bucket a model leaves empty, so that a log stays finite.
_FLOOR = 1e-10


@dataclass
class DriftScores:
    """Per-item drift of the tuned model away from the base.

    Attributes:
        kl: per-item mean token KL(base || tuned), in nats.
        shift_rate: per-item share of shifted tokens (0..1).
        top_shifted: the most often shifted tokens with their counts.
        approximation: None for exact KL, else how it was approximated (``"top-20 log-probs"``).
    """

    suite: str
    kl: list[float]
    shift_rate: list[float]
    top_shifted: list[tuple[str, int]]
    records: list[dict[str, Any]]
    top_k: int = 3
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    approximation: Optional[str] = None


def score_drift(
    base: Backend,
    tuned: Backend,
    suite: Suite,
    *,
    top_k: int = 3,
    max_new_tokens: Optional[int] = None,
    batch_size: Optional[int] = None,
    outputs: Optional[Sequence[str]] = None,
    approximate_k: Optional[int] = None,
) -> DriftScores:
    """KL drift and token shift of ``tuned`` against ``base`` on ``suite``'s prompts.

    ``max_new_tokens`` (default: the suite's setting for generation suites, 0 for text
    suites) is how much the tuned model writes after each prompt; with 0, drift is
    measured on the prompt/text tokens alone. ``outputs``, when given, are the tuned
    model's greedy outputs on these prompts with these settings (e.g. from scoring the same
    generation suite): they are used instead of generating again. ``approximate_k``: use
    both models' top-``k`` log-probabilities instead of full distributions.
    """
    started = time.perf_counter()
    if max_new_tokens is None:
        max_new_tokens = suite.settings.max_new_tokens if suite.kind == "generation" else 0
    prompts = [base.encode(render_text(base, suite, item)) for item in suite.items]
    if outputs is not None and len(outputs) != len(prompts):
        raise ValueError(f"{len(outputs)} outputs for {len(prompts)} prompts")
    if max_new_tokens > 0:
        if outputs is None:
            generate = tuned.generate_chat if suite.settings.chat_template else tuned.generate
            outputs = generate([render_prompt(tuned, suite, item) for item in suite.items],
                               max_new_tokens=max_new_tokens, stop=suite.settings.stop, batch_size=batch_size)
        # a continuation follows its prompt: none of what a tokenizer puts before any text (BOS)
        added = base.encode("")
        continuations = [ids[len(added):] if added and ids[: len(added)] == added else ids
                         for ids in map(base.encode, outputs)]
    else:
        outputs = [""] * len(prompts)
        continuations = [[] for _ in prompts]
    progress = Progress(f"{suite.name} (drift)", len(prompts))
    max_length = min(base.max_length, tuned.max_length)
    k = approximate_k
    if max_new_tokens > 0:
        # the response: every prediction from the end of the prompt to after the last token
        prompts, continuations = _fit_answers(prompts, continuations, max_length, max_new_tokens)
        if k is None:
            base_lps: Sequence[Any] = base.continuation_distributions(prompts, continuations, batch_size=batch_size)
            tuned_lps: Sequence[Any] = tuned.continuation_distributions(prompts, continuations, batch_size=batch_size)
        else:
            base_lps = base.continuation_top_logprobs(prompts, continuations, k, batch_size=batch_size)
            tuned_lps = tuned.continuation_top_logprobs(prompts, continuations, k, batch_size=batch_size)
        windows = [[(len(c) + 1, len(c) + 1)] for c in continuations]  # one span per item, all its rows
        shift_lengths = [len(c) for c in continuations]  # the predictions of the continuation's tokens
    else:
        # every position of the text, in rolling windows (one window when the text fits)
        windows, inputs = [], []
        for ids in prompts:
            spans = text_windows(ids, max_length)
            windows.append([(len(window), rows) for window, rows in spans])
            inputs.extend(window for window, _ in spans)
        if k is None:
            base_lps = base.token_distributions(inputs, batch_size=batch_size)
            tuned_lps = tuned.token_distributions(inputs, batch_size=batch_size)
        else:
            base_lps = base.token_top_logprobs(inputs, k, batch_size=batch_size)
            tuned_lps = tuned.token_top_logprobs(inputs, k, batch_size=batch_size)
        shift_lengths = [len(p) - 1 for p in prompts]  # the predictions of the text's own tokens
    stats = _position_stats if k is None else _top_k_position_stats
    kl_values, shift_values, records = [], [], []
    shifted_counter: Counter[str] = Counter()
    base_iter, tuned_iter = iter(base_lps), iter(tuned_lps)
    for item, output, shift_length, spans in zip(suite.items, outputs, shift_lengths, windows):
        pieces = [stats(next(base_iter), next(tuned_iter), length, rows, top_k) for length, rows in spans]
        kl_per_position, tuned_tokens, shifted = (_cat([piece[i] for piece in pieces]) for i in range(3))
        kl_values.append(float(kl_per_position.mean()))
        tuned_tokens, shifted = tuned_tokens[:shift_length], shifted[:shift_length]
        rate = float(shifted.float().mean()) if shifted.numel() else 0.0
        shift_values.append(rate)
        names = [tuned.decode([int(t)]) for t in tuned_tokens[shifted]]
        counts = Counter(name.strip() or repr(name) for name in names)
        shifted_counter.update(counts)
        records.append({"id": item.id, "prompt": item.prompt, "output": output, "kl": kl_values[-1],
                        "shift_rate": rate, "shifted_tokens": names[:20], "shifted_counts": dict(counts)})
        progress.advance(1)
    return DriftScores(suite.name, kl_values, shift_values, most_shifted(shifted_counter), records,
                       top_k, time.perf_counter() - started,
                       approximation=None if k is None else approximation_label(k))


def approximation_label(k: int) -> str:
    """How KL is approximated from top-``k`` log-probabilities (named in results)."""
    return f"top-{k} log-probs, coarse-grained KL"


def most_shifted(counter: "Counter[str]") -> list[tuple[str, int]]:
    """The :data:`TOP_SHIFTED` most often shifted tokens, ties in token order (deterministic)."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP_SHIFTED]


def drift_from_records(suite: Suite, records: Sequence[dict[str, Any]], top_k: int,
                       approximation: Optional[str] = None) -> DriftScores:
    """A suite's :class:`DriftScores` rebuilt from its per-item records (e.g. from the cache)."""
    counter: Counter[str] = Counter()
    for record in records:
        counter.update(record.get("shifted_counts", {}))
    return DriftScores(suite.name, [r["kl"] for r in records], [r["shift_rate"] for r in records],
                       most_shifted(counter), list(records), top_k, approximation=approximation)


def _fit_answers(prompts: list[list[int]], continuations: list[list[int]], max_length: int,
                 max_new_tokens: int) -> tuple[list[list[int]], list[list[int]]]:
    """Left-truncate each prompt as generation does so that prompt + answer fit ``max_length``.

    The prompt keeps its last ``max_length - max_new_tokens`` tokens (fewer if the re-encoded
    answer is longer than ``max_new_tokens``); an answer that alone fills the context keeps its
    first ``max_length - 1`` tokens.
    """
    from pytest_forgetting.backends.hf.greedy import prompt_budget

    prompt_budget(max_length, max_new_tokens)  # max_new_tokens >= max_length fails as generation does
    fitted_prompts, fitted_continuations = [], []
    for prompt, continuation in zip(prompts, continuations):
        continuation = continuation[: max_length - 1]
        keep = max_length - max(max_new_tokens, len(continuation))
        fitted_prompts.append(prompt[-keep:])
        fitted_continuations.append(continuation)
    return fitted_prompts, fitted_continuations


def _position_stats(lp_base: Any, lp_tuned: Any, length: int, rows: int, top_k: int) -> tuple[Any, Any, Any]:
    """Per read position: KL(base || tuned), the tuned argmax, whether it is outside base's top-k.

    ``lp_*`` are ``[length, vocab]`` log-distributions (``length`` = the window's input
    length); the last ``rows`` of them are read.
    """
    lp_base, lp_tuned = lp_base[length - rows :], lp_tuned[length - rows :]
    kl_per_position = (lp_base.exp() * (lp_base - lp_tuned)).sum(dim=-1).clamp_min(0.0)
    tuned_tokens = lp_tuned.argmax(dim=-1)
    base_top = lp_base.topk(min(top_k, lp_base.shape[-1]), dim=-1).indices
    shifted = ~(base_top == tuned_tokens.unsqueeze(-1)).any(dim=-1)
    return kl_per_position, tuned_tokens, shifted


def _cat(pieces: list[Any]) -> Any:
    """``torch.cat`` of per-window pieces (the one piece itself when a single window)."""
    if len(pieces) == 1:
        return pieces[0]
    import torch

    return torch.cat(pieces)


def _top_k_position_stats(base: TopLogprobs, tuned: TopLogprobs, length: int, rows: int,
                          top_k: int) -> tuple[Any, Any, Any]:
    """:func:`_position_stats` from top-k lists: approximate KL, the tuned argmax, outside base's top-``top_k``."""
    import torch

    b_ids, b_lp = base.ids[length - rows :], base.logprobs[length - rows :]
    t_ids, t_lp = tuned.ids[length - rows :], tuned.logprobs[length - rows :]
    kl = torch.tensor([top_k_kl(b_ids[p].tolist(), b_lp[p].tolist(), t_ids[p].tolist(), t_lp[p].tolist())
                       for p in range(b_ids.shape[0])], dtype=torch.float64)
    tuned_tokens = t_ids[:, 0]
    shifted = ~(b_ids[:, :top_k] == tuned_tokens.unsqueeze(-1)).any(dim=-1)
    return kl, tuned_tokens, shifted


def top_k_kl(base_ids: Sequence[int], base_logprobs: Sequence[float],
             tuned_ids: Sequence[int], tuned_logprobs: Sequence[float]) -> float:
    """KL(base || tuned) at one position, from each model's top-k log-probabilities.

    Both distributions are coarse-grained onto the union U of the two top-k lists plus one
    bucket for everything else. A token of U missing from a model's list gets an equal share
    of that model's remaining mass, at most its k-th probability; the bucket holds what is
    left. With complete lists (k = vocabulary) this is the exact KL; otherwise it estimates it,
    and when the filled-in shares are right it is a lower bound (coarse-graining never
    increases KL).
    """
    union = list(dict.fromkeys([*base_ids, *tuned_ids]))
    p, p_rest = _coarse(dict(zip(base_ids, map(math.exp, base_logprobs))), union)
    q, q_rest = _coarse(dict(zip(tuned_ids, map(math.exp, tuned_logprobs))), union)
    total = sum(p[u] * (math.log(p[u]) - math.log(max(q[u], _FLOOR))) for u in union if p[u] > 0)
    if p_rest > 0:
        total += p_rest * (math.log(p_rest) - math.log(max(q_rest, _FLOOR)))
    return max(0.0, total)


def _coarse(known: dict[int, float], union: Sequence[int]) -> tuple[dict[int, float], float]:
    missing = [u for u in union if u not in known]
    tail = max(0.0, 1.0 - sum(known.values()))
    share = min(min(known.values()), tail / len(missing)) if missing and known else 0.0
    filled = {u: known.get(u, share) for u in union}
    return filled, max(0.0, 1.0 - sum(filled.values()))
