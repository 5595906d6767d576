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
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from pytest_forgetting.backends.contract import ModelHandle
from pytest_forgetting.scoring.kinds import render_context, rolling_windows
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import Suite


#: Most often shifted tokens listed per suite.
TOP_SHIFTED = 10


@dataclass
class DriftScores:
    """Per-item drift of the tuned model away from the base.

    Attributes:
        kl: per-item mean token KL(base || tuned), in nats.
        shift_rate: per-item share of shifted tokens (0..1).
        top_shifted: the most often shifted tokens with their counts.
    """

    suite: str
    kl: list[float]
    shift_rate: list[float]
    top_shifted: list[tuple[str, int]]
    records: list[dict[str, Any]]
    top_k: int = 3
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def score_drift(
    base: ModelHandle,
    tuned: ModelHandle,
    suite: Suite,
    *,
    top_k: int = 3,
    max_new_tokens: Optional[int] = None,
    batch_size: Optional[int] = None,
    outputs: Optional[Sequence[str]] = None,
) -> DriftScores:
    """KL drift and token shift of ``tuned`` against ``base`` on ``suite``'s prompts.

    ``max_new_tokens`` (default: the suite's setting for generation suites, 0 for text
    suites) is how much the tuned model writes after each prompt; with 0, drift is
    measured on the prompt/text tokens alone. ``outputs``, when given, are the tuned
    model's greedy outputs on these prompts with these settings (e.g. from scoring the same
    generation suite): they are used instead of generating again.
    """
    started = time.perf_counter()
    if max_new_tokens is None:
        max_new_tokens = suite.settings.max_new_tokens if suite.kind == "generation" else 0
    encode = getattr(base, "encode")
    prompts = [encode(render_context(base, suite, item)) for item in suite.items]
    if outputs is not None and len(outputs) != len(prompts):
        raise ValueError(f"{len(outputs)} outputs for {len(prompts)} prompts")
    if max_new_tokens > 0:
        if outputs is None:
            outputs = tuned.generate(prompts, max_new_tokens=max_new_tokens, stop=suite.settings.stop,
                                     batch_size=batch_size)
        prefix = getattr(base, "prefix_token_id", None)
        # a continuation follows its prompt: no BOS that a BOS-adding tokenizer puts first
        continuations = [ids[1:] if ids and ids[0] == prefix else ids for ids in map(encode, outputs)]
    else:
        outputs = [""] * len(prompts)
        continuations = [[] for _ in prompts]
    progress = Progress(f"{suite.name} (drift)", len(prompts))
    tokenizer = getattr(tuned, "tokenizer", None)
    max_length = min(int(getattr(handle, "max_length", 2048)) for handle in (base, tuned))
    kl_values, shift_values, records = [], [], []
    shifted_counter: Counter[str] = Counter()
    if max_new_tokens > 0:
        # the response: every prediction from the end of the prompt to after the last token
        prompts, continuations = _fit_answers(prompts, continuations, max_length, max_new_tokens)
        base_lps = _continuation_logprobs(base, prompts, continuations, batch_size)
        tuned_lps = _continuation_logprobs(tuned, prompts, continuations, batch_size)
        windows = [[(len(c) + 1, len(c) + 1)] for c in continuations]  # one span per item, all its rows
        shift_lengths = [len(c) for c in continuations]  # the predictions of the continuation's tokens
    else:
        # every position of the text, in rolling windows (one window when the text fits)
        windows, inputs = [], []
        for ids in prompts:
            spans = text_windows(ids, max_length)
            windows.append([(len(window), rows) for window, rows in spans])
            inputs.extend(window for window, _ in spans)
        base_lps = base.token_logprobs(inputs, batch_size=batch_size)
        tuned_lps = tuned.token_logprobs(inputs, batch_size=batch_size)
        shift_lengths = [len(p) - 1 for p in prompts]  # the predictions of the text's own tokens
    base_iter, tuned_iter = iter(base_lps), iter(tuned_lps)
    for item, output, shift_length, spans in zip(suite.items, outputs, shift_lengths, windows):
        pieces = [_position_stats(next(base_iter), next(tuned_iter), length, rows, top_k)
                  for length, rows in spans]
        kl_per_position, tuned_tokens, shifted = (_cat([piece[i] for piece in pieces]) for i in range(3))
        kl_values.append(float(kl_per_position.mean()))
        tuned_tokens, shifted = tuned_tokens[:shift_length], shifted[:shift_length]
        rate = float(shifted.float().mean()) if shifted.numel() else 0.0
        shift_values.append(rate)
        shifted_tokens = [int(t) for t in tuned_tokens[shifted]]
        names = [tokenizer.decode([t]) if tokenizer is not None else str(t) for t in shifted_tokens]
        counts = Counter(name.strip() or repr(name) for name in names)
        shifted_counter.update(counts)
        records.append({"id": item.id, "prompt": item.prompt, "output": output, "kl": kl_values[-1],
                        "shift_rate": rate, "shifted_tokens": names[:20], "shifted_counts": dict(counts)})
        progress.advance(1)
    return DriftScores(suite.name, kl_values, shift_values, most_shifted(shifted_counter), records,
                       top_k, time.perf_counter() - started)


def most_shifted(counter: "Counter[str]") -> list[tuple[str, int]]:
    """The :data:`TOP_SHIFTED` most often shifted tokens, ties in token order (deterministic)."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP_SHIFTED]


def drift_from_records(suite: Suite, records: Sequence[dict[str, Any]], top_k: int) -> DriftScores:
    """A suite's :class:`DriftScores` rebuilt from its per-item records (e.g. from the cache)."""
    counter: Counter[str] = Counter()
    for record in records:
        counter.update(record.get("shifted_counts", {}))
    return DriftScores(suite.name, [r["kl"] for r in records], [r["shift_rate"] for r in records],
                       most_shifted(counter), list(records), top_k)


def text_windows(ids: Sequence[int], max_length: int) -> list[tuple[list[int], int]]:
    """Model inputs covering every position of ``ids`` once: (input ids, rows read at its end).

    Position ``i``'s distribution (the prediction after ``ids[: i + 1]``) is read from the one
    window holding it, with as much preceding context as fits in ``max_length``: the rolling
    windows of :func:`~pytest_forgetting.scoring.kinds.rolling_windows` over ``ids`` plus a
    placeholder target for the position after the last token (never fed to the model). A
    text of at most ``max_length`` tokens is one window: itself, every row read.
    """
    if not ids:
        return []
    ids = list(ids)
    return [(window[:-1], rows) for window, rows in rolling_windows(ids[1:] + [ids[0]], ids[0], max_length)]


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


def _continuation_logprobs(handle: ModelHandle, prompts: list[list[int]], continuations: list[list[int]],
                           batch_size: Optional[int]) -> Sequence[Any]:
    """Log-distributions at ``len(prompt) - 1 :`` of prompt + continuation (a backend's fast path if it has one)."""
    fast = getattr(handle, "continuation_logprobs", None)
    if fast is not None:
        return fast(prompts, continuations, batch_size=batch_size)
    whole = handle.token_logprobs([p + c for p, c in zip(prompts, continuations)], batch_size=batch_size)
    return [lp[len(p) - 1 :] for lp, p in zip(whole, prompts)]
