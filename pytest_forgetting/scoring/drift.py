"""Label-free drift: KL(base || tuned) and the token-shift rate, on prompts alone.

* KL drift (Shenfeld et al. 2025, "RL's Razor"): per item, the mean over positions of
  ``KL(p_base(. | prefix) || p_tuned(. | prefix))``, both models teacher-forced on the same
  tokens: the prompt followed by the tuned model's greedy continuation. For a generation
  suite the positions are the response's: from the prediction of its first token to the
  prediction after its last (the prompt is context, not scored); for a text suite, every
  position of the text.
* Token shift (Lin et al. 2024, URIAL): the share of continuation positions where the tuned
  model's token is outside the base model's top-k (k = 3). The tokens shifted most often
  name the leak (e.g. "WHEREAS").
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from pytest_forgetting.models.handle import ModelHandle
from pytest_forgetting.scoring.engine import render_context
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import Suite


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
    kl_values, shift_values, records = [], [], []
    shifted_counter: Counter[str] = Counter()
    if max_new_tokens > 0:
        # the response: every prediction from the end of the prompt to after the last token
        base_lps = _continuation_logprobs(base, prompts, continuations, batch_size)
        tuned_lps = _continuation_logprobs(tuned, prompts, continuations, batch_size)
        shift_lengths = [len(c) for c in continuations]  # the predictions of the continuation's tokens
    else:
        base_lps = base.token_logprobs(prompts, batch_size=batch_size)
        tuned_lps = tuned.token_logprobs(prompts, batch_size=batch_size)
        shift_lengths = [len(p) - 1 for p in prompts]  # the predictions of the text's own tokens
    for item, output, shift_length, lp_base, lp_tuned in zip(
        suite.items, outputs, shift_lengths, base_lps, tuned_lps
    ):
        kl_per_position = (lp_base.exp() * (lp_base - lp_tuned)).sum(dim=-1).clamp_min(0.0)
        kl_values.append(float(kl_per_position.mean()))
        span_base, span_tuned = lp_base[:shift_length], lp_tuned[:shift_length]
        tuned_tokens = span_tuned.argmax(dim=-1)
        base_top = span_base.topk(min(top_k, span_base.shape[-1]), dim=-1).indices
        shifted = ~(base_top == tuned_tokens.unsqueeze(-1)).any(dim=-1)
        rate = float(shifted.float().mean()) if shifted.numel() else 0.0
        shift_values.append(rate)
        shifted_tokens = [int(t) for t in tuned_tokens[shifted]]
        names = [tokenizer.decode([t]) if tokenizer is not None else str(t) for t in shifted_tokens]
        shifted_counter.update(name.strip() or repr(name) for name in names)
        records.append({"id": item.id, "prompt": item.prompt, "output": output, "kl": kl_values[-1],
                        "shift_rate": rate, "shifted_tokens": names[:20]})
        progress.advance(1)
    return DriftScores(suite.name, kl_values, shift_values, shifted_counter.most_common(10), records,
                       top_k, time.perf_counter() - started)


def _continuation_logprobs(handle: ModelHandle, prompts: list[list[int]], continuations: list[list[int]],
                           batch_size: Optional[int]) -> Sequence[Any]:
    """Log-distributions at ``len(prompt) - 1 :`` of prompt + continuation (a backend's fast path if it has one)."""
    fast = getattr(handle, "continuation_logprobs", None)
    if fast is not None:
        return fast(prompts, continuations, batch_size=batch_size)
    whole = handle.token_logprobs([p + c for p, c in zip(prompts, continuations)], batch_size=batch_size)
    return [lp[len(p) - 1 :] for lp, p in zip(whole, prompts)]
