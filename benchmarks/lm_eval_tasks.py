"""lm-eval tasks through pytest-forgetting vs lm-eval's own runs, on the embedded SmolLM2 and the shipped adapters.

Two user YAML tasks over the example suites' data (written to a temporary folder):

* ``knowledge_mc``: multiple choice over ``pytest_forgetting/starter/data/knowledge.jsonl`` (314 documents,
  ``acc`` and ``acc_norm``);
* ``arithmetic_gen``: greedy generation over ``pytest_forgetting/starter/data/arithmetic.jsonl`` (223
  documents, 3-shot from its first three rows, ``exact_match`` under a first-number regex filter).

For the base and each adapter it reports, per task, how many documents' metric values differ
between our run (``lm_eval_task`` + ``EvaluationSession``) and lm-eval's own ``--model hf``
run (``peft=`` for the adapters) on the same documents, how many prompts differ
(``prompt_hash``), the largest log-likelihood difference, and the wall times: one
``EvaluationSession`` comparing every adapter (the base scored once) against lm-eval's runs of
the base and of each adapter, as a user would run it to compare them.

    python benchmarks/lm_eval_tasks.py [--adapters careful,aggressive] [--batch-size 16] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "pytest_forgetting" / "starter" / "data"  # the shipped starter suites
ADAPTERS = ROOT / "example_suites" / "adapters"

MC = """task: knowledge_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: answer
doc_to_choice: "{{{{choices}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""

GENERATION = """task: arithmetic_gen
dataset_path: json
dataset_kwargs:
  data_files:
    train: {shots}
    test: {data}
output_type: generate_until
training_split: train
test_split: test
fewshot_config:
  sampler: first_n
num_fewshot: 3
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{target}}}}"
target_delimiter: " "
fewshot_delimiter: "\\n\\n"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 5
  do_sample: false
filter_list:
  - name: first-number
    filter:
      - function: regex
        regex_pattern: "(-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def write_tasks(folder: Path) -> None:
    """The two YAML tasks and their data files in ``folder``."""
    rows = [json.loads(line) for line in (DATA / "arithmetic.jsonl").read_text().splitlines() if line.strip()]
    shots, items = rows[:3], rows[3:]
    (folder / "shots.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shots))
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    (folder / "knowledge_mc.yaml").write_text(MC.format(data=DATA / "knowledge.jsonl"))
    (folder / "arithmetic_gen.yaml").write_text(GENERATION.format(shots=folder / "shots.jsonl",
                                                                  data=folder / "items.jsonl"))


def lm_eval_run(base_dir: str, adapter: str | None, tasks: list[str], manager: Any, batch_size: int) -> tuple[dict, float]:
    """lm-eval's own run of one model: ((task, doc_id) -> {filter: sample}, seconds)."""
    import lm_eval

    args = {"pretrained": base_dir, "dtype": "float32", "device": "cpu", **({"peft": adapter} if adapter else {})}
    started = time.perf_counter()
    out = lm_eval.simple_evaluate(model="hf", model_args=args, tasks=tasks, task_manager=manager,
                                  batch_size=batch_size, bootstrap_iters=0, log_samples=True)
    seconds = time.perf_counter() - started
    logged: dict[Any, dict[str, Any]] = {}
    for task, examples in out["samples"].items():
        for example in examples:
            logged.setdefault((task, example["doc_id"]), {})[example["filter"]] = example
    return logged, seconds


def agreement(scores: Any, logged: dict, suite: Any) -> dict[str, Any]:
    """Documents whose metric values (or prompts) differ between our scores and lm-eval's samples."""
    differ, prompts, worst_ll = 0, 0, 0.0
    for index, record in enumerate(scores.records):
        per_filter = logged[(record["task"], record["doc_id"])]
        row_differs = False
        for key in scores.metrics:
            metric, filt = key.split(",", 1)
            if scores.metrics[key][index] != float(per_filter[filt][metric]):
                row_differs = True
        differ += row_differs
        theirs = next(iter(per_filter.values()))
        prompts += theirs["prompt_hash"] != record["prompt_hash"]
        for ll, (their_ll, _) in zip(record.get("loglikelihoods", []), theirs["filtered_resps"]):
            worst_ll = max(worst_ll, abs(ll - their_ll))
    return {"documents": len(scores.records), "metric_differs": differ, "prompt_differs": prompts,
            "max_abs_loglikelihood_diff": worst_ll}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapters", default="careful,aggressive")
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval's batch size (ours: automatic)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from pytest_forgetting import EvaluationSession, lm_eval_task
    from pytest_forgetting.embedded import ensure_embedded_model
    from pytest_forgetting.harness.tasks import loaded_of

    base_dir = str(ensure_embedded_model())
    names = [name for name in args.adapters.split(",") if name]
    report: dict[str, Any] = {"lm_eval_batch_size": args.batch_size, "tasks": {}, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_tasks(folder)
        started = time.perf_counter()
        suites = [lm_eval_task(name, include_path=folder) for name in ("knowledge_mc", "arithmetic_gen")]
        session = EvaluationSession(base_dir, {name: str(ADAPTERS / name) for name in names})
        verdicts = {}
        for candidate in session.candidates:
            for suite in suites:
                result = session.compare(candidate, suite, tolerance=0.05)
                verdicts[f"{candidate.label}/{suite.name}"] = {"verdict": result.verdict, "delta": result.delta,
                                                              "base": result.base_score, "tuned": result.tuned_score}
        ours_seconds = time.perf_counter() - started
        manager = loaded_of(suites[0]).manager
        lm_eval_seconds = 0.0
        for label, adapter in [("base", None), *((name, str(ADAPTERS / name)) for name in names)]:
            logged, seconds = lm_eval_run(base_dir, adapter, [s.name for s in suites], manager, args.batch_size)
            lm_eval_seconds += seconds
            slot = session.base if label == "base" else session.candidate(label)
            report["models"][label] = {"lm_eval_seconds": seconds,
                                       **{s.name: agreement(session.scores(slot, s), logged, s) for s in suites}}
            print(label, json.dumps(report["models"][label]), flush=True)
    report.update(verdicts=verdicts, ours_seconds=ours_seconds, lm_eval_seconds=lm_eval_seconds,
                  lm_eval_over_ours=lm_eval_seconds / ours_seconds)
    report["tasks"] = {s.name: len(s) for s in suites}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
