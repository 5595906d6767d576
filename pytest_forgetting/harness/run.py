"""One model's scores on (some of) an lm-eval task's documents, through ``lm_eval.simple_evaluate``.

Each call runs ``simple_evaluate`` on the suite's *same* Task objects with the settings that
keep base and tuned comparable and the caller unharmed:

* no request cache (``use_cache=None``, ``cache_requests=False``): lm-eval's is not keyed by
  model, so a tuned run could read the base's answers;
* ``samples``: the items' document ids per task, *sorted* (lm-eval pairs a samples list with
  documents by position), never ``limit`` (the first N in dataset order);
* ``fewshot_random_seed``, ``apply_chat_template`` and ``fewshot_as_multiturn`` passed
  explicitly (their defaults changed in lm-eval 0.4.10); ``bootstrap_iters=0`` (the verdict
  computes its own statistics);
* the Python, NumPy and torch random states lm-eval reseeds are restored afterwards.

Every logged sample keeps ``doc_hash`` and ``prompt_hash``; the comparison checks that base
and tuned saw the same documents and prompts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Iterator, Optional

from pytest_forgetting.backends.contract import Backend
from pytest_forgetting.engine.random_state import random_states_kept
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.harness.metrics import declared_metrics, item_value
from pytest_forgetting.harness.tasks import loaded_of
from pytest_forgetting.scoring.kinds import SuiteScores
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import Suite


def document_of(item_id: str) -> tuple[str, int]:
    """``"<task>/<doc_id>"`` -> (task, doc_id)."""
    task, _, doc_id = item_id.rpartition("/")
    return task, int(doc_id)


def score_harness(backend: Backend, suite: Suite, *, batch_size: Optional[int] = None, label: str = "") -> SuiteScores:
    """``backend``'s per-document results on ``suite``'s items (lm-eval's metrics, filters and prompts)."""
    from lm_eval import simple_evaluate

    from pytest_forgetting.harness.model import BackendLM

    started = time.perf_counter()
    settings = suite.settings
    loaded = loaded_of(suite)
    wanted: dict[str, list[int]] = {}
    for item in suite.items:
        task, doc_id = document_of(item.id)
        wanted.setdefault(task, []).append(doc_id)
    samples = {task: sorted(ids) for task, ids in wanted.items()}
    progress = Progress(f"{suite.name} ({label or backend.name})", len(suite.items))
    lm = BackendLM(backend, batch_size=batch_size, advance=progress.advance)
    with _quiet_lm_eval(), _without_environment_report(), random_states_kept():
        output = simple_evaluate(
            model=lm, tasks=[loaded.tasks[task] for task in samples], task_manager=loaded.manager,
            num_fewshot=settings.num_fewshot, samples=samples, use_cache=None, cache_requests=False,
            bootstrap_iters=0, log_samples=True, apply_chat_template=settings.chat_template,
            fewshot_as_multiturn=settings.fewshot_as_multiturn, system_instruction=settings.system_instruction,
            fewshot_random_seed=settings.fewshot_seed, confirm_run_unsafe_code=False,
        )
    declared = declared_metrics(settings, loaded.tasks)
    logged = _by_document(output["samples"])
    metrics: dict[str, list[float]] = {key: [] for key in declared}
    records = []
    for item in suite.items:
        task, doc_id = document_of(item.id)
        per_filter = logged.get((task, doc_id))
        if per_filter is None:
            raise ForgettingError(f"suite {suite.name}: lm-eval returned no result for document {doc_id} of "
                                  f"{task!r}; the task's documents changed while it ran")
        record = _record(item, task, doc_id, per_filter, loaded.tasks[task], settings.primary)
        raw: dict[str, Any] = {}
        for key, metric in declared.items():
            name, filt = key.split(",", 1)
            sample = per_filter.get(filt)
            if sample is None or name not in sample:
                raise ForgettingError(f"suite {suite.name}: document {doc_id} of {task!r} has no {name!r} under "
                                      f"filter {filt!r}")
            value, raw_value = item_value(sample[name], metric)
            metrics[key].append(metric.checked(value, suite=suite.name, item=item.id, source="lm-eval"))
            if raw_value is not None:
                raw[key] = raw_value
        if raw:
            record["raw"] = raw
        records.append(record)
    return SuiteScores(suite.name, suite.kind, backend.name, metrics, declared, records,
                       time.perf_counter() - started, settings.primary)


def _by_document(samples: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    logged: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for task, examples in samples.items():
        for example in examples:
            logged.setdefault((task, int(example["doc_id"])), {})[example["filter"]] = example
    return logged


def _record(item: Any, task: str, doc_id: int, per_filter: dict[str, dict[str, Any]], task_obj: Any,
            primary: str) -> dict[str, Any]:
    """What the report shows of one document: its prompt, target, answers and input hashes."""
    chosen = per_filter.get(primary.split(",", 1)[1]) or next(iter(per_filter.values()))
    arguments = chosen["arguments"]
    answer: Any
    filtered = chosen["filtered_resps"]
    if task_obj.OUTPUT_TYPE == "multiple_choice":
        choices = task_obj.doc_to_choice(chosen["doc"])
        lls = [float(r[0]) for r in filtered]
        best = max(range(len(lls)), key=lambda i: (lls[i], -i))
        answer = choices[best] if best < len(choices) else best
    elif task_obj.OUTPUT_TYPE == "generate_until":
        answer = filtered[0] if filtered else ""
    else:
        answer = [float(r) if isinstance(r, (int, float)) else r for r in filtered]
    output = chosen["resps"][0][0] if chosen["resps"] and chosen["resps"][0] else None
    extra = {"loglikelihoods": lls} if task_obj.OUTPUT_TYPE == "multiple_choice" else {}
    return {**extra,
        "id": item.id, "task": task, "doc_id": doc_id, "prompt": item.prompt, "targets": list(item.targets),
        "answer": answer if isinstance(answer, (str, int, float, list)) else str(answer),
        "output": output if isinstance(output, str) else None,
        "context": arguments[0][0] if arguments and arguments[0] else "",
        "doc_hash": chosen["doc_hash"], "prompt_hash": chosen["prompt_hash"], "target_hash": chosen["target_hash"],
    }


#: What ``simple_evaluate`` adds to its results about the machine (torch's collect_env: about 3 s
#: per call, run once per model and look) and the git commit; the verdict reads neither.
ENVIRONMENT_REPORTERS = ("add_env_info", "get_git_commit_hash")


@contextlib.contextmanager
def _without_environment_report() -> Iterator[None]:
    """``simple_evaluate`` without its environment report (it stays lm-eval's where the name is missing)."""
    import lm_eval.evaluator as evaluator

    saved = {name: getattr(evaluator, name) for name in ENVIRONMENT_REPORTERS if hasattr(evaluator, name)}
    for name in saved:
        setattr(evaluator, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(evaluator, name, function)


@contextlib.contextmanager
def _quiet_lm_eval() -> Iterator[None]:
    """lm-eval logs every setting at INFO and WARNING; our progress lines say what runs."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
