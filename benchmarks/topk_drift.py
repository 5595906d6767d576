"""How close KL drift from top-k log-probabilities comes to the exact KL, on the embedded model.

    python benchmarks/topk_drift.py [--adapter example_suites/adapters/aggressive] [--k 5,20]

A served model (an OpenAI-compatible API) returns at most the top 20 log-probabilities per
position, so drift for it is the declared approximation of
:func:`pytest_forgetting.scoring.drift.top_k_kl`. This scores the example writing suite's
drift (40 chat prompts, 32 new tokens) exactly and from the top-k lists of the same models
(the transformers backend behind a declaration offering only ``top_logprobs=k``), and prints
the mean KL of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pytest_forgetting import Backend, Capabilities, EvaluationSession, Identity, load_suite

ROOT = Path(__file__).resolve().parent.parent


class TopKOnly(Backend):
    """The transformers backend declaring only what a served model offers: top-k log-probs, no distributions."""

    def __init__(self, inner: Backend, k: int) -> None:
        self.inner, self.name = inner, inner.name
        self.capabilities = Capabilities(generate_chat=True, top_logprobs=k, tokenizer=True)

    def identity(self) -> Identity:
        inner = self.inner.identity()
        return Identity(f"{inner.fingerprint}|top{self.capabilities.top_logprobs}", inner.dtype, inner.device)

    def generate_chat(self, conversations, **kwargs):  # type: ignore[no-untyped-def]
        return self.inner.generate_chat(conversations, **kwargs)

    def continuation_top_logprobs(self, prompts, continuations, k, *, batch_size=None):  # type: ignore[no-untyped-def]
        return self.inner.continuation_top_logprobs(prompts, continuations, k, batch_size=batch_size)

    @property
    def max_length(self) -> int:
        return self.inner.max_length

    @property
    def prefix_token_id(self) -> int:
        return self.inner.prefix_token_id

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def decode(self, ids):  # type: ignore[no-untyped-def]
        return self.inner.decode(ids)

    def chat_text(self, messages):  # type: ignore[no-untyped-def]
        return self.inner.chat_text(messages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default=str(ROOT / "example_suites/adapters/aggressive"))
    parser.add_argument("--k", default="5,20", help="comma-separated k values (at most 20, as servers allow)")
    args = parser.parse_args(argv)
    import sys

    sys.path.insert(0, str(ROOT / "example_suites"))
    from test_writing import LEGAL_MARKERS  # the suite exactly as example_suites/test_writing.py builds it

    suite = load_suite(ROOT / "pytest_forgetting/starter/data/writing.jsonl", "generation", chat_template=True,
                       scorer="no_forbidden", phrases=LEGAL_MARKERS, max_new_tokens=32)
    exact_session = EvaluationSession(candidates=[args.adapter])
    base, tuned = exact_session.base.backend(), exact_session.candidates[0].backend()
    exact = exact_session.drift(None, suite, max_kl=100.0)
    outputs = [record["tuned_answer"] for record in exact.records]
    rows = {"exact": {"mean_kl": exact.tuned_score}}
    for k in (int(value) for value in args.k.split(",")):
        session = EvaluationSession(TopKOnly(base, k), {"served": TopKOnly(tuned, k)})
        approx = session.drift("served", suite, max_kl=100.0)
        assert [r["tuned_answer"] for r in approx.records] == outputs, "the same answers are measured"
        rows[f"top-{k}"] = {"mean_kl": approx.tuned_score, "ratio_to_exact": approx.tuned_score / exact.tuned_score,
                            "statistic": approx.statistic}
    print(json.dumps({"adapter": args.adapter, "items": len(suite), **rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
