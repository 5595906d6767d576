"""Speed benchmark: lm-eval vs our multiple-choice scorer (cold and warm), and the example
suites' cold vs warm (base cached) pytest run.

Runs one after another on this machine, same model (the embedded SmolLM2-135M-Instruct),
items, dtype (float32) and batch size:

    python benchmarks/speed.py [--items 300 | --items-file FILE.jsonl] [--batch-size 64]
                               [--ours-batch-size N] [--example-suites]

``--items`` builds short general-knowledge questions (``mc_items``: most choices are one
token); ``--items-file`` reads ``{"question", "choices", "answer"}`` rows, e.g.
``example_suites/data/contract_review.jsonl`` (multi-token choices). ``--batch-size`` is
lm-eval's (64 is its fastest on a 2-core CPU); ours batches automatically unless
``--ours-batch-size`` is given.

Prints items/s, the ratios, peak RSS, the tokens each side runs through the model (lm-eval
already runs one forward pass for requests sharing context + continuation[:-1], so one-token
choices cost it no more than us), and our achieved FLOP/s (2 x parameters x tokens / seconds)
as a fraction of this machine's measured float32 matmul throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mc_items import mc_items  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def matmul_flops(size: int = 1024, repeats: int = 20) -> float:
    """Measured float32 matrix-multiply FLOP/s (best of ``repeats``)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def ours(model_dir: str, items: list[dict], batch_size: int, cache_dir: Path) -> dict:
    """Our scorer through the result cache: returns wall time, hits and tokens processed."""
    from pytest_forgetting import load_suite
    from pytest_forgetting.cache import ResultCache
    from pytest_forgetting.models.loading import load_model
    from pytest_forgetting.models.spec import LoadOptions, inspect_folder
    from pytest_forgetting.scoring.cached import score_cached
    from pytest_forgetting.scoring.engine import score_multiple_choice

    handle = load_model(inspect_folder(Path(model_dir), model_dir, "base", "--model"),
                        LoadOptions(device="cpu", dtype="float32", batch_size=batch_size), None)
    suite = load_suite(items, "multiple_choice")
    tokens, lm_eval_inputs = 0, set()
    for item in suite.items:
        pairs = [handle.encode_pair(item.prompt, " " + c) for c in item.choices]
        tokens += len(pairs[0][0]) + sum(len(cont) - 1 for _, cont in pairs)
        # lm-eval: one forward pass per distinct (context + continuation)[:-1]
        lm_eval_inputs.update(tuple((ctx + cont)[:-1]) for ctx, cont in pairs)
    stats: dict[str, int] = {}
    started = time.perf_counter()
    score_cached(handle, suite, lambda h, s, **kw: score_multiple_choice(h, s, **kw),
                 cache=ResultCache(cache_dir), stats=stats, batch_size=batch_size)
    wall = time.perf_counter() - started
    params = sum(p.numel() for p in handle.shared.model.parameters())
    return {"wall_s": wall, "items_per_s": len(items) / wall, "cache": stats, "tokens": tokens,
            "lm_eval_tokens": sum(len(i) for i in lm_eval_inputs),
            "parameters": params, "flops_per_s": 2 * params * tokens / wall}


def next_push_adapter(folder: Path) -> Path:
    """A copy of the careful adapter with changed weights: what the next push to an adapter repo brings."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(ROOT / "example_suites/adapters/careful", folder)
    weights = load_file(str(folder / "adapter_model.safetensors"))
    save_file({name: t * 1.05 if "lora_B" in name else t for name, t in weights.items()},
              str(folder / "adapter_model.safetensors"))
    return folder


def example_suites(cache_dir: Path) -> dict:
    """Wall time of ``pytest example_suites`` in the three situations of an adapter repo.

    cold: nothing cached (careful adapter). pre-merge: a changed adapter (careful with its
    LoRA B weights x1.05), base results from the cache; only the tuned model is scored, plus
    the drift check's base forward pass. cached: that adapter again, everything cached.
    """
    adapter = next_push_adapter(cache_dir.parent / (cache_dir.name + "-next-push"))
    runs = {"cold": ROOT / "example_suites/adapters/careful", "pre_merge": adapter, "cached": adapter}
    times: dict = {}
    try:
        for label, tuned in runs.items():
            command = [sys.executable, "-m", "pytest", "example_suites", "-q", "-p", "no:randomly",
                       "-p", "no:xdist", f"--tuned-model={tuned}", "--base-model=embedded",
                       f"--forgetting-cache-dir={cache_dir}"]
            started = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            times[label] = time.perf_counter() - started
            cache_line = [line for line in done.stdout.splitlines() if line.startswith("forgetting cache:")]
            times[label + "_cache"] = cache_line[0] if cache_line else None
            times[label + "_exit"] = done.returncode
    finally:
        shutil.rmtree(adapter, ignore_errors=True)
    times["pre_merge_over_cold"] = times["pre_merge"] / times["cold"]
    times["cached_over_cold"] = times["cached"] / times["cold"]
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--items-file", help="multiple-choice rows (question, choices, answer) instead of --items")
    parser.add_argument("--batch-size", type=int, default=64, help="lm-eval's batch size")
    parser.add_argument("--ours-batch-size", type=int, default=None, help="ours (default: automatic)")
    parser.add_argument("--example-suites", action="store_true", help="also time the example suites: cold, pre-merge (new adapter, base cached), all cached")
    parser.add_argument("--skip-lm-eval", action="store_true")
    args = parser.parse_args(argv)
    from pytest_forgetting.embedded import ensure_embedded_model

    model_dir = str(ensure_embedded_model())
    if args.items_file:
        items = [json.loads(line) for line in Path(args.items_file).read_text().splitlines() if line.strip()]
        items = [{"question": r["question"], "choices": r["choices"], "answer": r["answer"]} for r in items]
    else:
        items = mc_items(args.items)
    report: dict = {"items": len(items), "items_source": args.items_file or "mc_items", "batch_size": args.batch_size,
                    "ours_batch_size": args.ours_batch_size or "auto", "dtype": "float32", "device": "cpu",
                    "threads": __import__("torch").get_num_threads()}
    if not args.skip_lm_eval:
        from lm_eval_reference import run_lm_eval

        reference = run_lm_eval(model_dir, items, batch_size=args.batch_size)
        report["lm_eval"] = {"wall_s": reference["wall_s"], "items_per_s": reference["items_per_s"],
                             "version": reference["lm_eval_version"]}
    cache_dir = Path(tempfile.mkdtemp(prefix="forgetting-bench-"))
    try:
        report["ours_cold"] = ours(model_dir, items, args.ours_batch_size, cache_dir)
        report["ours_warm"] = ours(model_dir, items, args.ours_batch_size, cache_dir)
        if args.example_suites:
            shutil.rmtree(cache_dir)
            report["example_suites"] = example_suites(cache_dir)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    report["matmul_flops_per_s"] = matmul_flops()
    report["ours_cold"]["fraction_of_matmul_peak"] = report["ours_cold"]["flops_per_s"] / report["matmul_flops_per_s"]
    if "lm_eval" in report:
        report["cold_speedup_vs_lm_eval"] = report["ours_cold"]["items_per_s"] / report["lm_eval"]["items_per_s"]
    report["warm_over_cold"] = report["ours_warm"]["wall_s"] / report["ours_cold"]["wall_s"]
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
