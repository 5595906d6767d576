"""The example suites' knowledge (multiple choice) and arithmetic (generation) checks through vLLM vs locally.

Starts vLLM's OpenAI server (CPU build, bfloat16, in its own environment) on the embedded
SmolLM2 with the shipped adapters served beside it (``--lora-modules``), then compares each
adapter against the base through the server and through the local transformers backend
(float32), and prints per suite: verdicts and deltas side by side, wall time, items/s, and the
largest |delta log-likelihood| between the two backends over every choice of every item. Then
KL drift on the writing suite's first ``--drift-limit`` prompts (32 new tokens): the declared
top-20 approximation through vLLM against the exact KL locally, per adapter.

    python benchmarks/served.py --vllm-python /path/to/vllm-env/bin/python [--limit N] [--drift-limit 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "pytest_forgetting" / "starter" / "data"  # the shipped starter suites
ADAPTERS = ROOT / "example_suites" / "adapters"


def suites(limit: int | None) -> list[Any]:
    """The knowledge and arithmetic suites as the example tests load them."""
    from pytest_forgetting import load_suite

    return [
        load_suite(DATA / "knowledge.jsonl", "multiple_choice", limit=limit),
        load_suite(DATA / "arithmetic.jsonl", "generation", fewshot=3, scorer="numeric", max_new_tokens=5,
                   stop=["\n"], limit=limit),
    ]


def run(session: Any, chosen: list[Any]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    verdicts = {}
    for candidate in session.candidates:
        for suite in chosen:
            result = session.compare(candidate, suite, tolerance=0.05)
            verdicts[f"{candidate.label}/{suite.name}"] = {"verdict": result.verdict, "delta": round(result.delta, 4),
                                                          "base": result.base_score, "tuned": result.tuned_score}
    return verdicts, time.perf_counter() - started


def drift(session: Any, limit: int) -> tuple[dict[str, Any], float]:
    """Mean KL drift and verdict of each candidate on the writing suite's first ``limit`` prompts."""
    from pytest_forgetting import load_suite

    suite = load_suite(DATA / "writing.jsonl", "generation", chat_template=True, scorer="no_forbidden",
                       phrases=["WHEREAS", "HEREBY"], max_new_tokens=32, limit=limit)
    started = time.perf_counter()
    measured = {}
    for candidate in session.candidates:
        result = session.drift(candidate, suite, max_kl=0.5)
        measured[candidate.label] = {"verdict": result.verdict, "mean_kl": round(result.tuned_score, 4),
                                     "approximation": result.extra.get("approximation")}
    return measured, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vllm-python", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--drift-limit", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from pytest_forgetting import EvaluationSession
    from pytest_forgetting.embedded import ensure_embedded_model
    from tests.servers import start_vllm_server

    model = ensure_embedded_model()
    names = ["careful", "aggressive"]
    started = time.perf_counter()
    server = start_vllm_server(args.vllm_python, model, {n: ADAPTERS / n for n in names}, Path("/tmp/vllm-bench.log"))
    startup = time.perf_counter() - started
    chosen = suites(args.limit)
    try:
        served = EvaluationSession(server.source, {n: f"openai+{server.url}#{n}" for n in names})
        served_verdicts, served_seconds = run(served, chosen)
        local = EvaluationSession(str(model), {n: str(ADAPTERS / n) for n in names}, )
        local_verdicts, local_seconds = run(local, chosen)
        worst = 0.0
        for slot_served, slot_local in zip([served.base, *served.candidates], [local.base, *local.candidates]):
            a, b = served.scores(slot_served, chosen[0]), local.scores(slot_local, chosen[0])
            for ra, rb in zip(a.records, b.records):
                worst = max(worst, *(abs(x - y) for x, y in zip(ra["loglikelihoods"], rb["loglikelihoods"])))
        acc_agree = sum(x == y for x, y in zip(served.scores(served.base, chosen[0]).metrics["acc"],
                                               local.scores(local.base, chosen[0]).metrics["acc"]))
        stats = served.base.backend().runner.stats
        served_drift, served_drift_seconds = drift(served, args.drift_limit)
        local_drift, local_drift_seconds = drift(local, args.drift_limit)
    finally:
        server.stop()
    items = sum(len(s) for s in chosen) * 3  # base and two candidates
    report = {"vllm_startup_seconds": startup, "served_seconds": served_seconds, "local_seconds": local_seconds,
              "served_items_per_second": items / served_seconds, "local_items_per_second": items / local_seconds,
              "max_abs_loglikelihood_diff": worst, "base_acc_agreement": f"{acc_agree}/{len(chosen[0])}",
              "base_requests": {"requests": stats.requests, "retries": stats.retries, "failures": stats.failures},
              "served": served_verdicts, "local": local_verdicts,
              "drift": {"served": served_drift, "local": local_drift, "served_seconds": served_drift_seconds,
                        "local_seconds": local_drift_seconds}}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
