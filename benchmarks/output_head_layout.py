"""Generation and drift with the output head's input gathered contiguous, against the sliced view, in one run.

    HF_HUB_OFFLINE=1 python benchmarks/output_head_layout.py [--dtypes float32,bfloat16] [--limit N] [--out FILE]

The greedy loop's first pass and the drift check's teacher-forced pass ask the model for the
logits of each row's last positions only. Given ``logits_to_keep`` as an int, transformers
slices the hidden states (``[:, -k:, :]``), a view whose rows are not contiguous, and the
output head's matrix product on it is slow on a CPU; given position indices
(:func:`pytest_forgetting.backends.hf.kv.last_positions`, what the backend passes now) it
gathers a contiguous copy first. *Before* puts the int back (``kv.last_positions`` patched to
return it); *after* is the code as it is.

On the embedded SmolLM2-135M-Instruct on CPU with the careful adapter, per dtype, scores the
example suites' generation checks as their tests do (arithmetic: 3-shot, max_new_tokens 5,
stop "\\n"; instructions and writing: chat template, max_new_tokens 32) with the base and the
adapter, and the writing drift check (the adapter's answers, then both models' distributions
over them), each before then after, one after the other. Prints each wall time, the ratio
after / before, and whether the outputs (generation) and the per-item KL (drift) agree. Also
times the head alone on one sliced and one contiguous input of 64 rows. Not a test: nothing
here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "pytest_forgetting" / "starter" / "data"
CAREFUL = ROOT / "example_suites" / "adapters" / "careful"

#: name -> (file, load_suite options): the settings of the example suites' generation checks.
SUITES: dict[str, tuple[str, dict[str, Any]]] = {
    "arithmetic": ("arithmetic.jsonl", {"fewshot": 3, "scorer": "numeric", "max_new_tokens": 5, "stop": ["\n"]}),
    "instructions": ("instructions.jsonl", {"chat_template": True, "scorer": "regex", "max_new_tokens": 32}),
    "writing": ("writing.jsonl", {"chat_template": True, "max_new_tokens": 32}),
}


def load_pair(dtype: str) -> tuple[Any, Any]:
    """The embedded model and the careful adapter on it, in ``dtype`` on the CPU."""
    from pytest_forgetting.backends.spec import LoadOptions, resolve_models
    from pytest_forgetting.engine.models import default_loader

    options = LoadOptions(device="cpu", dtype=dtype)
    base_spec, tuned_specs = resolve_models([str(CAREFUL)], "embedded", options)
    base = default_loader(base_spec, options, None)
    return base, default_loader(tuned_specs[0], options, base)


def timed(run: Callable[[], Any], sliced: bool) -> tuple[Any, float]:
    """``run()``'s result and wall time, with the head's input sliced (before) or gathered (after)."""
    from pytest_forgetting.backends.hf import kv

    gathered = kv.last_positions
    if sliced:
        kv.last_positions = lambda keep, width, device: keep  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        result = run()
        return result, time.perf_counter() - started
    finally:
        kv.last_positions = gathered  # type: ignore[assignment]


def head_alone(model: Any, dtype: Any) -> dict[str, float]:
    """Milliseconds of the output head on 64 rows' last position: a sliced view against a contiguous copy."""
    import torch

    from pytest_forgetting.backends.hf.kv import inner

    head = inner(model).get_output_embeddings()
    hidden = torch.randn(64, 8, head.in_features, dtype=dtype)
    timings = {}
    with torch.inference_mode():
        for label, rows in (("sliced", hidden[:, -1:, :]), ("contiguous", hidden[:, -1:, :].contiguous())):
            head(rows)
            started = time.perf_counter()
            head(rows)
            timings[label] = round((time.perf_counter() - started) * 1000, 1)
    return timings


def bench_dtype(dtype: str, limit: Optional[int]) -> list[dict[str, Any]]:
    """Every suite and model, and the drift check, before then after, in ``dtype``."""
    from pytest_forgetting import load_suite, score_suite
    from pytest_forgetting.scoring.drift import score_drift

    base, tuned = load_pair(dtype)
    warm = load_suite(DATA / "arithmetic.jsonl", "generation", limit=2, **SUITES["arithmetic"][1])
    for backend in (base, tuned):  # first-call costs out of the timings
        score_suite(backend, warm)
    rows = [{"dtype": dtype, "check": "output head alone (ms)", **head_alone(base.shared.model, base.dtype)}]
    for name, (file, options) in SUITES.items():
        suite = load_suite(DATA / file, "generation", limit=limit, **options)
        for backend in (base, tuned):
            before, before_s = timed(lambda: score_suite(backend, suite), sliced=True)
            after, after_s = timed(lambda: score_suite(backend, suite), sliced=False)
            same = sum(x["output"] == y["output"] for x, y in zip(before.records, after.records))
            rows.append({"dtype": dtype, "check": f"{name} ({'base' if backend is base else 'careful'})", "items": len(suite.items),
                         "before_s": round(before_s, 2), "after_s": round(after_s, 2),
                         "ratio": round(after_s / before_s, 3), "same": f"{same}/{len(suite.items)} outputs"})
    suite = load_suite(DATA / "writing.jsonl", "generation", limit=limit, **SUITES["writing"][1])
    before, before_s = timed(lambda: score_drift(base, tuned, suite), sliced=True)
    after, after_s = timed(lambda: score_drift(base, tuned, suite), sliced=False)
    delta = max(abs(a - b) for a, b in zip(before.kl, after.kl))
    rows.append({"dtype": dtype, "check": "writing drift (both)", "items": len(suite.items),
                 "before_s": round(before_s, 2), "after_s": round(after_s, 2), "ratio": round(after_s / before_s, 3),
                 "same": f"max |delta KL| {delta:.1e}"})
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated [float32,bfloat16]")
    parser.add_argument("--limit", type=int, help="each suite's first N items (default: all)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    import torch

    from pytest_forgetting.embedded import ensure_embedded_model

    ensure_embedded_model()
    rows = [row for dtype in args.dtypes.split(",") for row in bench_dtype(dtype, args.limit)]
    print(f"threads {torch.get_num_threads()}")
    for row in rows:
        if "sliced" in row:
            print(f"{row['dtype']:>9} {row['check']:<26} sliced {row['sliced']:8.1f}   contiguous {row['contiguous']:6.1f}")
            continue
        print(f"{row['dtype']:>9} {row['check']:<26} {row['items']:4d} items: {row['before_s']:7.2f} s -> "
              f"{row['after_s']:6.2f} s ({row['ratio']:.2f}x); {row['same']}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
