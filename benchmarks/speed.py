"""Speed benchmark: lm-eval vs our multiple-choice scorer (cold and warm), and the example
suites' cold vs warm (base cached) pytest run; with ``--generation``, greedy generation.

Runs one after another on this machine, same model (the embedded SmolLM2-135M-Instruct),
items, dtype (float32) and batch size:

    python benchmarks/speed.py [--items 300 | --items-file FILE.jsonl] [--batch-size 64]
                               [--ours-batch-size N] [--example-suites]
    python benchmarks/speed.py --generation [arithmetic|instructions|writing] [--items N]
                               [--batch-size 32 | --batch-size 8,16,32,64] [--ours-batch-size N]

``--items`` builds short general-knowledge questions (``mc_items``: most choices are one
token); ``--items-file`` reads ``{"question", "choices", "answer"}`` rows, e.g.
``example_suites/data/contract_review.jsonl`` (multi-token choices). ``--batch-size`` is
lm-eval's (64 is its fastest on a 2-core CPU); ours batches automatically unless
``--ours-batch-size`` is given.

Prints items/s, the ratios, peak RSS, the tokens each side runs through the model (lm-eval
already runs one forward pass for requests sharing context + continuation[:-1], so one-token
choices cost it no more than us), and our achieved FLOP/s (2 x parameters x tokens / seconds)
as a fraction of this machine's measured float32 matmul throughput.

``--generation SUITE`` (default ``arithmetic``) times greedy generation on an example suite
with the settings its test in ``example_suites/`` uses (arithmetic: 3-shot, max_new_tokens 5,
stop "\\n"; instructions and writing: chat template, max_new_tokens 32). Ours runs through
``score_suite`` (what ``forgetting.compare`` runs: batched greedy decoding, automatic batch
size unless ``--ours-batch-size``); lm-eval runs ``HFLM.generate_until`` on the very prompt
strings ours renders (few-shot and chat template already applied), with ``until`` = the
suite's stop strings (lm-eval adds the EOS text), ``max_gen_toks`` = max_new_tokens,
``do_sample=False``. ``--batch-size`` is lm-eval's, one size or a comma-separated list (each
is timed; the ratio is against the fastest). ``--items N`` scores the suite's first N items
(default: all). Both sides first generate for two prompts untimed (warm-up). Prints items/s
and generated tokens/s of both, the ratio, and how many outputs are identical (greedy decoding
agrees unless two tokens' logits are within float noise of each other; the first two
mismatches are shown).
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
from dataclasses import replace
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
    from pytest_forgetting.storage.cache import ResultCache
    from pytest_forgetting.backends.hf.loading import load_model
    from pytest_forgetting.backends.spec import LoadOptions, inspect_folder
    from pytest_forgetting.engine.stored import score_cached
    from pytest_forgetting.scoring.kinds import score_multiple_choice

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
    from candidates import scaled_adapter  # benchmarks/candidates.py

    return scaled_adapter(folder, 1.05)


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


#: Generation suites of example_suites/ with the settings their tests give ``forgetting.suite``.
GENERATION_SUITES: dict[str, dict] = {
    # example_suites/test_arithmetic.py
    "arithmetic": {"fewshot": 3, "scorer": "numeric", "max_new_tokens": 5, "stop": ["\n"]},
    # example_suites/test_instructions.py
    "instructions": {"chat_template": True, "scorer": "regex", "max_new_tokens": 32},
    # example_suites/test_writing.py (LEGAL_MARKERS)
    "writing": {"chat_template": True, "scorer": "no_forbidden", "max_new_tokens": 32,
                "phrases": ["WHEREAS", "HEREBY", "NOW, THEREFORE", "hereinafter", "indemnif", "the Parties"]},
}
#: lm-eval's generation batch size when --batch-size is not given: the fastest of 8/16/32/64 on
#: all 223 arithmetic items on a 2-core CPU (11.2 / 14.8 / 17.2 / 16.6 items/s; one noisy run);
#: pass --batch-size 8,16,32,64 to re-check on another machine or suite.
GENERATION_LM_EVAL_BATCH_SIZE = 32


def generation(model_dir: str, suite_name: str, limit: int | None, lm_eval_batch_sizes: list[int],
               ours_batch_size: int | None, skip_lm_eval: bool) -> dict:
    """Greedy generation: ours (``score_suite``) vs lm-eval's ``generate_until``, same prompts."""
    from pytest_forgetting import load_suite
    from pytest_forgetting.backends.hf.loading import load_model
    from pytest_forgetting.backends.spec import LoadOptions, inspect_folder
    from pytest_forgetting.scoring.kinds import render_text, score_suite

    suite = load_suite(ROOT / "pytest_forgetting" / "starter" / "data" / f"{suite_name}.jsonl", "generation",
                       limit=limit, **GENERATION_SUITES[suite_name])
    settings = suite.settings
    handle = load_model(inspect_folder(Path(model_dir), model_dir, "base", "--model"),
                        LoadOptions(device="cpu", dtype="float32", batch_size=ours_batch_size), None)
    prompts = [render_text(handle, suite, item) for item in suite.items]
    tokenizer = handle.tokenizer

    def tokens_of(outputs: list[str]) -> int:
        return sum(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)

    report: dict = {"suite": suite_name, "items": len(suite), "max_new_tokens": settings.max_new_tokens,
                    "stop": list(settings.stop), "chat_template": settings.chat_template,
                    "fewshot": len(settings.fewshot), "dtype": "float32", "device": "cpu",
                    "threads": __import__("torch").get_num_threads(),
                    "prompt_tokens_mean": sum(len(handle.encode(p)) for p in prompts) / len(prompts)}

    warmup = replace(suite, items=suite.items[:2])
    score_suite(handle, warmup, batch_size=ours_batch_size)
    started = time.perf_counter()
    scores = score_suite(handle, suite, batch_size=ours_batch_size)
    wall = time.perf_counter() - started
    ours_outputs = [record["output"] for record in scores.records]
    report["ours"] = {"batch_size": ours_batch_size or "auto", "wall_s": wall, "items_per_s": len(suite) / wall,
                      "output_tokens": tokens_of(ours_outputs),
                      "score": sum(scores.metrics[scores.primary]) / len(suite), "metric": scores.primary}
    report["ours"]["output_tokens_per_s"] = report["ours"]["output_tokens"] / wall
    if skip_lm_eval:
        return report

    from lm_eval_reference import load_hflm, run_lm_eval_generate
    from pytest_forgetting.scoring.registry import build_registry
    from pytest_forgetting.scoring.scorers import resolve_scorer

    lm = load_hflm(model_dir, batch_size=lm_eval_batch_sizes[0])
    run_lm_eval_generate(model_dir, prompts[:2], until=settings.stop, max_gen_toks=settings.max_new_tokens,
                         batch_size=lm_eval_batch_sizes[0], lm=lm)  # warm-up
    runs = {}
    for size in lm_eval_batch_sizes:
        runs[size] = run_lm_eval_generate(model_dir, prompts, until=settings.stop,
                                          max_gen_toks=settings.max_new_tokens, batch_size=size, lm=lm)
    best = max(runs, key=lambda size: runs[size]["items_per_s"])
    reference = runs[best]["outputs"]
    scorer = resolve_scorer(settings.scorer, build_registry())
    options = dict(settings.scorer_options)
    lm_eval_score = sum(float(scorer(o, list(item.targets), **options)) for o, item in zip(reference, suite.items))
    report["lm_eval"] = {
        "version": __import__("lm_eval").__version__,
        "by_batch_size": {size: {"wall_s": r["wall_s"], "items_per_s": r["items_per_s"]} for size, r in runs.items()},
        "batch_size": best, "wall_s": runs[best]["wall_s"], "items_per_s": runs[best]["items_per_s"],
        "output_tokens": tokens_of(reference), "score": lm_eval_score / len(suite),
        "outputs_same_across_batch_sizes": all(r["outputs"] == reference for r in runs.values()),
    }
    report["lm_eval"]["output_tokens_per_s"] = report["lm_eval"]["output_tokens"] / runs[best]["wall_s"]
    report["speedup_vs_lm_eval"] = report["ours"]["items_per_s"] / report["lm_eval"]["items_per_s"]
    mismatches = [(item, prompt, mine, theirs) for item, prompt, mine, theirs
                  in zip(suite.items, prompts, ours_outputs, reference) if mine != theirs]
    report["identical_outputs"] = len(suite) - len(mismatches)
    report["identical_share"] = report["identical_outputs"] / len(suite)
    report["mismatches"] = len(mismatches)
    report["first_mismatches"] = [{"id": item.id, "prompt_end": prompt[-80:], "ours": mine, "lm_eval": theirs}
                                  for item, prompt, mine, theirs in mismatches[:2]]
    return report


def _batch_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive batch size or a comma-separated list")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=None,
                        help="multiple choice: mc_items count (default 300); generation: the suite's first N (default all)")
    parser.add_argument("--items-file", help="multiple-choice rows (question, choices, answer) instead of --items")
    parser.add_argument("--batch-size", type=_batch_sizes, default=None,
                        help=f"lm-eval's batch size (multiple choice: default 64; generation: default "
                             f"{GENERATION_LM_EVAL_BATCH_SIZE}, or a list such as 8,16,32,64, each timed)")
    parser.add_argument("--ours-batch-size", type=int, default=None, help="ours (default: automatic)")
    parser.add_argument("--example-suites", action="store_true", help="also time the example suites: cold, pre-merge (new adapter, base cached), all cached")
    parser.add_argument("--generation", nargs="?", const="arithmetic", choices=sorted(GENERATION_SUITES),
                        help="time greedy generation on this example suite instead (default: arithmetic)")
    parser.add_argument("--skip-lm-eval", action="store_true")
    args = parser.parse_args(argv)
    if args.generation and (args.items_file or args.example_suites):
        parser.error("--generation times an example suite; --items-file and --example-suites are for multiple choice")
    if not args.generation and args.batch_size is not None and len(args.batch_size) > 1:
        parser.error("multiple choice takes one --batch-size")
    from pytest_forgetting.embedded import ensure_embedded_model

    model_dir = str(ensure_embedded_model())
    if args.generation:
        report = generation(model_dir, args.generation, args.items, args.batch_size or [GENERATION_LM_EVAL_BATCH_SIZE],
                            args.ours_batch_size, args.skip_lm_eval)
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(report, indent=2))
        return 0
    args.batch_size = args.batch_size[0] if args.batch_size else 64
    if args.items is None:
        args.items = 300
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
