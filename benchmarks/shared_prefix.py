"""Tokens and wall time with a suite's shared prefix kept across chunks, against without.

    HF_HUB_OFFLINE=1 python benchmarks/shared_prefix.py [--limit N] [--chunk 40] [--with-adapter] [--out FILE]

On the embedded SmolLM2-135M-Instruct, float32 on CPU, scores three example suites the way
the sequential engine does, in chunks of ``--chunk`` items
(``score_suite(backend, replace(suite, items=suite.items[i:i + chunk]))``):

* ``arithmetic``: generation, 3-shot, scorer numeric, max_new_tokens 5, stop "\\n";
* ``instructions``: generation, chat template, scorer regex, max_new_tokens 32;
* ``knowledge``: multiple choice, 3-shot.

Each suite runs twice in one process, one after the other: *before*, with the backend's
``prefix_cache`` set to None (generation computes each batch's shared prefix afresh, multiple
choice packs each question without a prefix pass: the behaviour before the cache), then
*after*, with an empty :class:`~pytest_forgetting.backends.hf.prefix_cache.PrefixCache`
(the prefix of the chunks' prompts runs once and is reused by every later chunk and batch).
Automatic batch size. Tokens are the positions the model's forward computed (rows x width,
padding included), counted by a hook on the transformers model. Prints per suite tokens and
wall time before/after and their ratios, the cache's counters, and whether the results agree
(greedy outputs identical; the largest |delta log-likelihood| of multiple choice). With
``--with-adapter`` the careful adapter is scored too (its own prefixes, same store rules).
Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "pytest_forgetting" / "starter" / "data"  # the shipped starter suites
CAREFUL = ROOT / "example_suites" / "adapters" / "careful"

#: (file, kind, load_suite options): the settings of the example suites' tests.
SUITES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "arithmetic": ("arithmetic.jsonl", "generation",
                   {"fewshot": 3, "scorer": "numeric", "max_new_tokens": 5, "stop": ["\n"]}),
    "instructions": ("instructions.jsonl", "generation",
                     {"chat_template": True, "scorer": "regex", "max_new_tokens": 32}),
    "knowledge": ("knowledge.jsonl", "multiple_choice", {"fewshot": 3}),
}


class ForwardCounter:
    """Positions (rows x width) run through a transformers model's forward, counted by a pre-hook."""

    def __init__(self, model: Any) -> None:
        from pytest_forgetting.backends.hf.kv import inner

        self.tokens = 0
        self.passes = 0
        self._hook = inner(model).register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += int(ids.numel())
        self.passes += 1

    def remove(self) -> None:
        """Stop counting."""
        self._hook.remove()


def load_backends(with_adapter: bool) -> list[Any]:
    """The embedded model as the base, and the careful adapter on it when asked."""
    from pytest_forgetting.backends.spec import LoadOptions, resolve_models
    from pytest_forgetting.embedded import ensure_embedded_model
    from pytest_forgetting.engine.models import default_loader

    ensure_embedded_model()
    options = LoadOptions(device="cpu", dtype="float32")
    base_spec, tuned_specs = resolve_models([str(CAREFUL)], "embedded", options)
    base = default_loader(base_spec, options, None)
    return [base, default_loader(tuned_specs[0], options, base)] if with_adapter else [base]


def score_in_chunks(backend: Any, suite: Any, chunk: int) -> tuple[list[Any], float, int, int]:
    """(records, wall seconds, forward tokens, forward passes) of ``suite`` scored chunk by chunk."""
    from pytest_forgetting import score_suite

    counter = ForwardCounter(backend.shared.model)
    records: list[Any] = []
    started = time.perf_counter()
    try:
        for start in range(0, len(suite.items), chunk):
            part = dataclasses.replace(suite, items=suite.items[start : start + chunk])
            records += score_suite(backend, part).records
    finally:
        counter.remove()
    return records, time.perf_counter() - started, counter.tokens, counter.passes


def agreement(kind: str, before: list[Any], after: list[Any]) -> dict[str, Any]:
    """How far the two runs' results are apart."""
    if kind == "multiple_choice":
        delta = max(abs(a - b) for x, y in zip(before, after)
                    for a, b in zip(x["loglikelihoods"], y["loglikelihoods"]))
        same_pred = sum(x["pred"] == y["pred"] and x["pred_norm"] == y["pred_norm"] for x, y in zip(before, after))
        return {"max_abs_delta_loglikelihood": delta, "same_predictions": same_pred}
    return {"identical_outputs": sum(x["output"] == y["output"] for x, y in zip(before, after))}


def bench_suite(backend: Any, name: str, limit: Optional[int], chunk: int) -> dict[str, Any]:
    """Before (no prefix cache) then after (an empty one) on one suite and one model."""
    from pytest_forgetting import load_suite
    from pytest_forgetting.backends.hf.prefix_cache import PrefixCache

    file, kind, options = SUITES[name]
    suite = load_suite(DATA / file, kind, limit=limit, **options)
    backend.prefix_cache = None
    before, before_s, before_tokens, before_passes = score_in_chunks(backend, suite, chunk)
    store = backend.prefix_cache = PrefixCache()
    after, after_s, after_tokens, after_passes = score_in_chunks(backend, suite, chunk)
    return {
        "suite": name, "kind": kind, "model": backend.adapter or "base", "items": len(suite.items),
        "chunks": -(-len(suite.items) // chunk),
        "before": {"tokens": before_tokens, "passes": before_passes, "wall_s": round(before_s, 2)},
        "after": {"tokens": after_tokens, "passes": after_passes, "wall_s": round(after_s, 2)},
        "tokens_ratio_after_over_before": round(after_tokens / before_tokens, 3),
        "wall_ratio_after_over_before": round(after_s / before_s, 3),
        "prefix_cache": dataclasses.asdict(store.stats) | {"kept": len(store), "kept_bytes": store.nbytes},
        **agreement(kind, before, after),
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="score each suite's first N items (default: all)")
    parser.add_argument("--chunk", type=int, default=40, help="items per score_suite call (default 40)")
    parser.add_argument("--suites", default=",".join(SUITES), help="comma-separated, of " + ", ".join(SUITES))
    parser.add_argument("--with-adapter", action="store_true", help="also score the careful adapter")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    import torch

    backends = load_backends(args.with_adapter)
    from pytest_forgetting import load_suite, score_suite

    warm = load_suite(DATA / "arithmetic.jsonl", "generation", limit=2, **SUITES["arithmetic"][2])
    for backend in backends:  # first-call costs out of the timings
        score_suite(backend, warm)
    rows = [bench_suite(backend, name, args.limit, args.chunk)
            for name in args.suites.split(",") for backend in backends]
    report = {"dtype": "float32", "device": "cpu", "threads": torch.get_num_threads(), "chunk": args.chunk,
              "suites": rows}
    print(json.dumps(report, indent=1))
    for row in rows:
        before, after = row["before"], row["after"]
        print(f"{row['suite']:>12} {row['model']:>8} {row['items']:4d} items: tokens {before['tokens']:8d} -> "
              f"{after['tokens']:8d} ({row['tokens_ratio_after_over_before']:.3f}x), wall {before['wall_s']:6.1f} s "
              f"-> {after['wall_s']:6.1f} s ({row['wall_ratio_after_over_before']:.3f}x)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
