"""Padding in log-likelihood batches: a suite scored whole and in a sequential verdict's chunks, with and without the bound.

    HF_HUB_OFFLINE=1 python benchmarks/chunk_padding.py [--chunk 20] [--suites contract_review,knowledge] [--out FILE]

Multiple choice is scored one packed question per row, rows padded to the batch's longest,
and a padded position costs as much as a real one. Scored whole, a suite's questions are
sorted by length before batching, so a batch's rows are about equally long. A sequential
verdict scores a seeded random chunk at a time (20 items for the contract questions): each
chunk is sorted on its own, and one automatic batch of it spans the suite's whole spread of
lengths. ``MAX_PADDING`` in :mod:`pytest_forgetting.backends.hf.batching` ends an automatic
batch at the first row shorter than ``1 - MAX_PADDING`` of the batch's longest.

In one process, on the embedded SmolLM2-135M-Instruct (float32, CPU, automatic batch size),
each suite is scored four ways, interleaved, ``--repeats`` times (the fastest kept): whole and in chunks (the seeded order a
sequential verdict uses), each with the bound off (``MAX_PADDING = None``, the behaviour
before it) and on. It prints wall times and forward tokens (rows x width, padding included),
their ratios, and how far the results are apart (largest |delta log-likelihood|, predictions
that differ). Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from shared_prefix import ForwardCounter, load_backends  # noqa: E402

#: (file, load_suite options): the example suites' multiple-choice settings.
SUITES: dict[str, tuple[Path, dict[str, Any]]] = {
    "contract_review": (ROOT / "example_suites" / "data" / "contract_review.jsonl", {}),
    "knowledge": (ROOT / "pytest_forgetting" / "starter" / "data" / "knowledge.jsonl", {}),
    "language": (ROOT / "pytest_forgetting" / "starter" / "data" / "language.jsonl", {"template": "{question}"}),
}


def score(backend: Any, suite: Any, order: Optional[tuple[int, ...]], chunk: int) -> tuple[dict, float, int]:
    """(records by item id, wall seconds, forward tokens): whole (``order`` None) or chunk by chunk."""
    from pytest_forgetting import score_suite

    counter = ForwardCounter(backend.shared.model)
    records: dict = {}
    started = time.perf_counter()
    try:
        if order is None:
            parts = [suite]
        else:
            parts = [dataclasses.replace(suite, items=tuple(suite.items[i] for i in order[s : s + chunk]))
                     for s in range(0, len(order), chunk)]
        for part in parts:
            records.update({r["id"]: r for r in score_suite(backend, part).records})
    finally:
        counter.remove()
    return records, time.perf_counter() - started, counter.tokens


def bench_suite(backend: Any, name: str, chunk: int, repeats: int) -> dict[str, Any]:
    from pytest_forgetting import load_suite
    from pytest_forgetting.backends.hf import batching
    from pytest_forgetting.comparison.sequential import SequentialSettings, plan_looks

    path, options = SUITES[name]
    suite = load_suite(path, "multiple_choice", **options)
    settings = SequentialSettings(enabled=True, min_look=chunk, max_looks=max(2, len(suite) // chunk))
    order = plan_looks(len(suite), suite.fingerprint, settings).order
    bound, runs = batching.MAX_PADDING, {}
    try:
        for _ in range(repeats):  # interleaved; the fastest of each kept
            for how, chunked in (("whole", None), ("chunks", order)):
                for label, value in (("unbounded", None), ("bounded", bound)):
                    batching.MAX_PADDING = value
                    records, seconds, tokens = score(backend, suite, chunked, chunk)
                    run = runs.setdefault(f"{how}, {label}", {"records": records, "wall_s": math.inf, "tokens": tokens})
                    run["wall_s"] = round(min(run["wall_s"], seconds), 2)
    finally:
        batching.MAX_PADDING = bound
    reference = runs["whole, unbounded"]["records"]
    for run in runs.values():
        records = run.pop("records")
        run["max_abs_delta_loglikelihood"] = max(abs(a - b) for key, r in records.items()
                                                 for a, b in zip(r["loglikelihoods"], reference[key]["loglikelihoods"]))
        run["predictions_differing"] = sum(r["pred"] != reference[key]["pred"] for key, r in records.items())
    return {"suite": name, "items": len(suite), "chunk": chunk, "max_padding": bound, "runs": runs}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=20, help="items per chunk (a look's new items; default 20)")
    parser.add_argument("--suites", default="contract_review,knowledge", help="comma-separated, of " + ", ".join(SUITES))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way, interleaved; the fastest kept (3)")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    from pytest_forgetting import load_suite, score_suite

    (backend,) = load_backends(False)
    score_suite(backend, load_suite(SUITES["knowledge"][0], "multiple_choice", limit=4))  # first-call costs out
    rows = [bench_suite(backend, name, args.chunk, args.repeats) for name in args.suites.split(",")]
    for row in rows:
        runs = row["runs"]
        print(f"\n{row['suite']} ({row['items']} items, chunks of {row['chunk']}, MAX_PADDING {row['max_padding']})")
        for label, run in runs.items():
            print(f"  {label:<18} {run['wall_s']:7.1f} s  {run['tokens']:9d} tokens   max |d loglik| "
                  f"{run['max_abs_delta_loglikelihood']:.1e}, {run['predictions_differing']} predictions differ")
        for how in ("whole", "chunks"):
            b, u = runs[f"{how}, bounded"], runs[f"{how}, unbounded"]
            print(f"  {how}: bounded / unbounded  wall {b['wall_s'] / u['wall_s']:.3f}x, tokens {b['tokens'] / u['tokens']:.3f}x")
        print(f"  chunks / whole, unbounded: wall {runs['chunks, unbounded']['wall_s'] / runs['whole, unbounded']['wall_s']:.3f}x;"
              f" bounded: {runs['chunks, bounded']['wall_s'] / runs['whole, bounded']['wall_s']:.3f}x")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
