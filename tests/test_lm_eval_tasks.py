"""lm-eval tasks as paired checks: real lm-eval 0.4, user YAML tasks over local JSONL, tiny real models.

Our engine's answers through lm-eval's own prompts, filters and metrics are checked document
by document against lm-eval's own ``--model hf`` run on the same model and documents.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

lm_eval = pytest.importorskip("lm_eval")

from pytest_forgetting import EvaluationSession, ForgettingError, lm_eval_task  # noqa: E402
from pytest_forgetting.harness import tasks as harness_tasks  # noqa: E402
from pytest_forgetting.harness.tasks import loaded_of  # noqa: E402

pytestmark = pytest.mark.xdist_group("lm_eval_tasks")

MC = """task: {name}
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

GENERATION = """task: my_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
    train: {data}
output_type: generate_until
training_split: train
test_split: test
doc_to_text: "Q: {{{{q}}}}\\nA:"
doc_to_target: "{{{{a}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: 6
  do_sample: false
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "#### (\\\\-?[0-9]+)"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

ROLLING = """task: my_text
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: loglikelihood_rolling
test_split: test
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""

ARC_LOCAL = """include: {arc}
task: arc_local
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    train: {data}
    test: {data}
training_split: train
validation_split: null
test_split: test
"""

PAIRS = """task: my_pairs
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Is {{{{a}}}} bigger than {{{{b}}}}?\nAnswer:"
doc_to_target: answer
doc_to_choice: ["no", "yes"]
metric_list:
  - metric: f1
    aggregation: f1
    higher_is_better: true
  - metric: mcc
    aggregation: matthews_corrcoef
    higher_is_better: true
"""

GROUP = """group: my_group
task:
  - my_mc
  - my_mc_two
aggregate_metric_list:
  - metric: acc
    weight_by_size: true
"""


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """User YAML tasks over local JSONL files (and one that includes lm-eval's own arc_easy.yaml)."""
    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    mc = [{"question": f"What is {a} plus {b}?", "choices": [str(a + b), str(a + b + 1), str(a * b + 7)],
           "answer": (a + b) % 3} for a in range(8) for b in range(5)]
    (folder / "my_mc.yaml").write_text(MC.format(name="my_mc", data=_jsonl(folder / "mc.jsonl", mc)))
    two = [{"question": f"Which word rhymes with {w}?", "choices": [w + "s", "tree", "blue"], "answer": i % 3}
           for i, w in enumerate(["cat", "dog", "sun", "moon", "car", "bee", "sky", "sea", "hat", "pen"])]
    (folder / "my_mc_two.yaml").write_text(MC.format(name="my_mc_two", data=_jsonl(folder / "mc2.jsonl", two)))
    (folder / "my_group.yaml").write_text(GROUP)
    pairs = [{"a": a, "b": b, "answer": int(a > b)} for a in range(6) for b in range(5)]
    (folder / "my_pairs.yaml").write_text(PAIRS.format(data=_jsonl(folder / "pairs.jsonl", pairs)))
    gen = [{"q": f"{a}+{b}", "a": f"#### {a + b}"} for a in range(6) for b in range(5)]
    (folder / "my_gen.yaml").write_text(GENERATION.format(data=_jsonl(folder / "gen.jsonl", gen)))
    texts = [{"text": " ".join(random.Random(i).choice(["the", "cat", "sat", "on", "a", "mat", "and", "slept"])
                               for _ in range(8 + i % 7))} for i in range(24)]
    (folder / "my_text.yaml").write_text(ROLLING.format(data=_jsonl(folder / "text.jsonl", texts)))
    arc_rows = [{"id": f"q{i}", "question": f"Which number comes after {i}?",
                 "choices": {"text": [str(i + 1), str(i + 2), str(i - 1), "none"], "label": ["A", "B", "C", "D"]},
                 "answerKey": "ABCD"[i % 4]} for i in range(30)]
    arc = Path(lm_eval.__file__).parent / "tasks" / "arc" / "arc_easy.yaml"
    (folder / "arc_local.yaml").write_text(ARC_LOCAL.format(arc=arc, data=_jsonl(folder / "arc.jsonl", arc_rows)))
    sampling = GENERATION.replace("task: my_gen", "task: my_sampling").replace("do_sample: false",
                                                                                "do_sample: true\n  temperature: 0.7")
    (folder / "my_sampling.yaml").write_text(sampling.format(data=folder / "gen.jsonl"))
    (folder / "my_missing.yaml").write_text("task: my_missing\ndataset_path: nobody/not_in_any_cache\n"
                                            "output_type: multiple_choice\ntest_split: test\ndoc_to_text: x\n"
                                            "doc_to_target: 0\ndoc_to_choice: ['a', 'b']\n")
    return folder


def lm_eval_hf(model: Path, suite: Any, adapter: Path | None = None) -> dict[int, dict[str, Any]]:
    """lm-eval's own run (``--model hf``) on the suite's documents: doc id -> logged sample (first filter)."""
    loaded = loaded_of(suite)
    samples: dict[str, list[int]] = {}
    for item in suite.items:
        task, _, doc = item.id.rpartition("/")
        samples.setdefault(task, []).append(int(doc))
    args = {"pretrained": str(model), "dtype": "float32", "device": "cpu",
            **({"peft": str(adapter)} if adapter else {})}
    out = lm_eval.simple_evaluate(model="hf", model_args=args, tasks=list(samples), task_manager=loaded.manager,
                                  samples={t: sorted(ids) for t, ids in samples.items()},
                                  num_fewshot=suite.settings.num_fewshot, bootstrap_iters=0, log_samples=True,
                                  fewshot_random_seed=suite.settings.fewshot_seed)
    logged: dict[Any, dict[str, Any]] = {}
    for task, examples in out["samples"].items():
        for example in examples:
            logged.setdefault((task, example["doc_id"]), {})[example["filter"]] = example
    return logged


def session(tiny_models: dict[str, Path], **options: Any) -> EvaluationSession:
    return EvaluationSession(str(tiny_models["base"]), [str(tiny_models["adapter"])], **options)


def test_included_arc_easy_prompts_and_accuracy_equal_lm_evals_own_run(task_dir, tiny_models):
    suite = lm_eval_task("arc_local", include_path=task_dir, samples=16, num_fewshot=2)
    ours = session(tiny_models).scores("base", suite)
    reference = lm_eval_hf(tiny_models["base"], suite)
    assert len(ours.records) == 16
    for record, acc, acc_norm in zip(ours.records, ours.metrics["acc,none"], ours.metrics["acc_norm,none"]):
        theirs = reference[("arc_local", record["doc_id"])]["none"]
        assert record["context"] == theirs["arguments"][0][0]  # byte-identical prompt, few-shot examples included
        assert record["prompt_hash"] == theirs["prompt_hash"] and record["doc_hash"] == theirs["doc_hash"]
        assert (acc, acc_norm) == (theirs["acc"], theirs["acc_norm"])
        for ll, (their_ll, _) in zip(record["loglikelihoods"], theirs["filtered_resps"]):
            assert abs(ll - their_ll) < 1e-4


def test_generation_task_gives_one_metric_per_filter_equal_to_lm_eval(task_dir, tiny_models):
    suite = lm_eval_task("my_gen", include_path=task_dir, num_fewshot=1)
    assert [key for key, *_ in suite.settings.metrics] == ["exact_match,strict-match", "exact_match,flexible-extract"]
    ours = session(tiny_models).scores("base", suite)
    reference = lm_eval_hf(tiny_models["base"], suite)
    for index, record in enumerate(ours.records):
        theirs = reference[("my_gen", record["doc_id"])]
        assert record["output"] == theirs["strict-match"]["resps"][0][0]  # identical greedy text
        for filt in ("strict-match", "flexible-extract"):
            assert ours.metrics[f"exact_match,{filt}"][index] == theirs[filt]["exact_match"]
    chosen = lm_eval_task("my_gen", include_path=task_dir, metric="exact_match", filter="flexible-extract")
    assert chosen.settings.primary == "exact_match,flexible-extract"


def test_rolling_task_is_a_corpus_metric_decided_over_documents(task_dir, tiny_models):
    suite = lm_eval_task("my_text", include_path=task_dir)
    run = session(tiny_models)
    base = run.scores("base", suite)
    reference = lm_eval_hf(tiny_models["base"], suite)
    for record in base.records:
        their_ll, their_words = reference[("my_text", record["doc_id"])]["none"]["word_perplexity"]
        ours_ll, our_words = record["raw"]["word_perplexity,none"]
        assert our_words == their_words and abs(ours_ll - their_ll) < 1e-3
    result = run.compare(None, suite, metric="word_perplexity,none")
    aggregate = base.declared["word_perplexity,none"].aggregate
    assert result.base_score == pytest.approx(aggregate([r["raw"]["word_perplexity,none"] for r in base.records]))
    assert result.statistic.startswith("paired corpus bootstrap of weighted_perplexity")
    assert result.unit == "perplexity" and not result.higher_is_better and result.ci_low <= result.delta <= result.ci_high
    same = EvaluationSession(str(tiny_models["base"]), [str(tiny_models["zero_adapter"])]).compare(None, suite)
    assert same.verdict == "pass" and same.delta == 0.0


def test_f1_and_mcc_pairs_are_corpus_metrics_recomputed_from_the_documents(task_dir, tiny_models):
    from sklearn.metrics import f1_score, matthews_corrcoef

    suite = lm_eval_task("my_pairs", include_path=task_dir)
    assert suite.settings.primary == "f1,none"
    run = session(tiny_models)
    base, tuned = run.scores("base", suite), run.scores(run.candidates[0], suite)
    for key, function in (("f1,none", f1_score), ("mcc,none", matthews_corrcoef)):
        result = run.compare(None, suite, metric=key)
        pairs = {name: [r["raw"][key] for r in scores.records] for name, scores in (("base", base), ("tuned", tuned))}
        expected = {name: function([g for g, _ in p], [q for _, q in p]) for name, p in pairs.items()}
        assert result.base_score == pytest.approx(expected["base"]) and result.tuned_score == pytest.approx(expected["tuned"])
        assert result.extra["corpus_aggregation"] in ("f1_score", "matthews_corrcoef")
        with pytest.raises(ForgettingError, match="corpus metric .* cannot|corpus metric"):
            from pytest_forgetting.comparison.assertions import assert_no_forgetting

            assert_no_forgetting(result, tolerance=0.5)


def test_a_model_that_forgets_some_documents_lists_exactly_those(task_dir, tiny_models):
    suite = lm_eval_task("my_mc", include_path=task_dir)
    result = session(tiny_models).compare(None, suite)
    base = lm_eval_hf(tiny_models["base"], suite)
    tuned = lm_eval_hf(tiny_models["base"], suite, adapter=tiny_models["adapter"])
    forgotten = {f"my_mc/{doc}" for (_, doc), e in base.items() if e["none"]["acc"] > tuned[("my_mc", doc)]["none"]["acc"]}
    assert forgotten and {item["id"] for item in result.forgotten_items} == forgotten
    assert result.forgotten == len(forgotten) and result.n == len(suite) == 40


def test_group_pools_leaf_tasks_and_reports_each(task_dir, tiny_models):
    suite = lm_eval_task("my_group", include_path=task_dir)
    assert set(suite.settings.leaves) == {"my_mc", "my_mc_two"} and len(suite) == 50
    result = session(tiny_models).compare(None, suite)
    subtasks = result.extra["subtasks"]
    assert {task: entry["n"] for task, entry in subtasks.items()} == {"my_mc": 40, "my_mc_two": 10}
    assert result.to_dict()["extra"]["subtasks"] == subtasks
    sampled = lm_eval_task("my_group", include_path=task_dir, samples=20, seed=3)
    assert len(sampled) == 20 and sampled.fingerprint != suite.fingerprint


def test_samples_are_seeded_sorted_and_match_their_documents(task_dir):
    one = lm_eval_task("my_mc", include_path=task_dir, samples=10, seed=1)
    again = lm_eval_task("my_mc", include_path=task_dir, samples=10, seed=1)
    other = lm_eval_task("my_mc", include_path=task_dir, samples=10, seed=2)
    assert [i.id for i in one.items] == [i.id for i in again.items] != [i.id for i in other.items]
    doc_ids = [int(i.id.split("/")[1]) for i in one.items]
    assert doc_ids == sorted(doc_ids) and doc_ids != list(range(10))  # not lm-eval's "first N" limit
    docs = loaded_of(one).tasks["my_mc"].eval_docs
    for item, doc_id in zip(one.items, doc_ids):
        assert item.prompt == f"Question: {docs[doc_id]['question']}\nAnswer:"
    explicit = lm_eval_task("my_mc", include_path=task_dir, samples={"my_mc": [9, 2, 5]})
    assert [i.id for i in explicit.items] == ["my_mc/2", "my_mc/5", "my_mc/9"]


def test_simple_evaluate_gets_the_safe_settings_and_the_callers_random_state_survives(task_dir, tiny_models,
                                                                                          monkeypatch, tmp_path):
    calls: list[dict[str, Any]] = []
    real = lm_eval.simple_evaluate

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(lm_eval, "simple_evaluate", spy)
    monkeypatch.chdir(tmp_path)  # a request cache would be written below the working directory
    suite = lm_eval_task("my_mc", include_path=task_dir, samples={"my_mc": [7, 3, 30]}, num_fewshot=1, fewshot_seed=5)
    run = session(tiny_models)
    run.base.backend(), run.candidates[0].backend()  # loading a model draws from torch's generator itself
    random.seed(11)
    expected = [random.random() for _ in range(3)]
    random.seed(11)
    import numpy as np
    import torch

    np.random.seed(4)
    numpy_expected = np.random.rand()
    np.random.seed(4)
    torch.manual_seed(9)
    torch_expected = torch.rand(1)
    torch.manual_seed(9)
    run.compare(None, suite)
    assert [random.random() for _ in range(3)] == expected
    assert np.random.rand() == numpy_expected and torch.equal(torch.rand(1), torch_expected)
    assert len(calls) == 2
    for kwargs in calls:
        assert kwargs["use_cache"] is None and kwargs["cache_requests"] is False and kwargs["bootstrap_iters"] == 0
        assert kwargs["samples"] == {"my_mc": [3, 7, 30]} and kwargs.get("limit") is None
        assert kwargs["fewshot_random_seed"] == 5 and kwargs["num_fewshot"] == 1
        assert kwargs["apply_chat_template"] is False and kwargs["fewshot_as_multiturn"] is False
    assert not list(tmp_path.iterdir())


def test_fewshot_seed_and_task_config_are_part_of_the_identity(task_dir, tiny_models, tmp_path):
    suite = lm_eval_task("my_mc", include_path=task_dir, samples=8, num_fewshot=2)
    reseeded = lm_eval_task("my_mc", include_path=task_dir, samples=8, num_fewshot=2, fewshot_seed=99)
    assert reseeded.fingerprint != suite.fingerprint
    run = session(tiny_models)
    contexts = [r["context"] for r in run.scores("base", suite).records]
    assert contexts != [r["context"] for r in run.scores("base", reseeded).records]
    (tmp_path / "my_mc.yaml").write_text((task_dir / "my_mc.yaml").read_text().replace('"Question: ', '"Q: '))
    changed = lm_eval_task("my_mc", include_path=tmp_path, samples=8, num_fewshot=2)
    assert changed.fingerprint != suite.fingerprint and changed.items[0].prompt.startswith("Q: ")
    assert lm_eval.__version__ and suite.settings.identity


def test_result_cache_serves_an_lm_eval_suite_without_loading_models(task_dir, tiny_models, tmp_path):
    suite = lm_eval_task("my_mc", include_path=task_dir, samples=12)
    first = session(tiny_models, cache=tmp_path / "cache")
    result = first.compare(None, suite)
    second = session(tiny_models, cache=tmp_path / "cache")
    again = second.compare(None, suite)
    assert not second.base.loaded and not second.candidates[0].loaded
    assert (again.delta, again.verdict, again.n) == (result.delta, result.verdict, result.n)


def test_base_and_tuned_shown_different_prompts_is_refused(task_dir, tiny_models):
    from pytest_forgetting.comparison.run import check_same_inputs

    suite = lm_eval_task("my_mc", include_path=task_dir, samples=5)
    records = session(tiny_models).scores("base", suite).records
    tampered = [dict(records[0], prompt_hash="0" * 64), *records[1:]]
    with pytest.raises(ForgettingError, match=r"built differently for base and tuned \(prompt_hash"):
        check_same_inputs(suite, records, tampered)


def test_task_manager_is_built_once_and_the_users_folder_alone_when_it_can(task_dir):
    lm_eval_task("my_mc", include_path=task_dir, samples=3)
    managers = dict(harness_tasks._MANAGERS)
    lm_eval_task("my_gen", include_path=task_dir, samples=3)
    assert harness_tasks._MANAGERS == managers
    assert ((str(task_dir.resolve()),), False) in managers  # lm-eval's 13,900 YAML files not indexed for it


def test_sequential_verdicts_work_on_an_lm_eval_suite(task_dir, tiny_models):
    suite = lm_eval_task("my_mc", include_path=task_dir)
    fixed = session(tiny_models).compare(None, suite, tolerance=0.5)
    looked = session(tiny_models, sequential=True).compare(None, suite, tolerance=0.5)
    assert fixed.verdict == looked.verdict == "pass" and looked.n <= fixed.n == 40


@pytest.mark.parametrize("call, message", [
    (lambda d: lm_eval_task("my_sampling", include_path=d), r"samples \(repeats=1, do_sample=True, temperature=0.7\)"),
    (lambda d: lm_eval_task("my_missing", include_path=d),
     r"its data \(dataset nobody/not_in_any_cache\) could not be loaded .*dataset_path: json"),
    (lambda d: lm_eval_task("my_mcc", include_path=d), r"no task or group 'my_mcc' .*did you mean my_mc"),
    (lambda d: lm_eval_task("my_mc", include_path=d, samples=0), r"samples=0; expected a number of documents"),
    (lambda d: lm_eval_task("my_mc", include_path=d, samples={"my_mc": [40]}), r"holds 40; expected document ids"),
    (lambda d: lm_eval_task("my_mc", include_path=d, samples={"other": [1]}), r"samples names 'other'"),
    (lambda d: lm_eval_task("my_gen", include_path=d, metric="acc"), r"no result for metric='acc'.*exact_match,strict"),
    (lambda d: lm_eval_task("my_mc", include_path=d / "nope"), r"include_path .* does not exist"),
])
def test_bad_lm_eval_inputs_fail_in_one_line(task_dir, call, message):
    with pytest.raises(ForgettingError, match=message) as caught:
        call(task_dir)
    assert "\n" not in str(caught.value)


def test_drift_on_an_lm_eval_suite_is_refused(task_dir, tiny_models):
    suite = lm_eval_task("my_mc", include_path=task_dir, samples=3)
    with pytest.raises(ForgettingError, match="KL drift is measured on text or generation suites"):
        session(tiny_models).drift(None, suite)


PLUGIN_CHECKS = """
from pytest_forgetting import capability, lm_eval_task

TASKS = {task_dir!r}


@capability("arithmetic", tolerance=0.6)
def test_every_filter(forgetting):
    results = forgetting.check_all(lm_eval_task("my_gen", include_path=TASKS, samples=8))
    assert [r.metric for r in results] == ["exact_match,strict-match", "exact_match,flexible-extract"]


@capability("knowledge", tolerance=0.0)
def test_knowledge(forgetting):
    forgetting.check(lm_eval_task("my_mc", include_path=TASKS))
"""


def test_lm_eval_checks_run_in_pytest_and_a_failure_names_the_documents(task_dir, tiny_models, pytester):
    pytester.makepyfile(test_checks=PLUGIN_CHECKS.format(task_dir=str(task_dir)))
    report = pytester.path / "report"
    result = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", "--no-forgetting-cache",
                                f"--forgetting-report={report}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*knowledge*acc,none*", "*my_mc/*"])
    rows = json.loads((report / "report.json").read_text())["results"]
    assert sorted(r["metric"] for r in rows) == ["acc,none", "exact_match,flexible-extract", "exact_match,strict-match"]
    knowledge = next(r for r in rows if r["metric"] == "acc,none")
    assert knowledge["extra"]["subtasks"]["my_mc"]["n"] == 40


CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_chat_template_and_multiturn_fewshot_prompts_equal_lm_evals(task_dir, tiny_models, tmp_path):
    import shutil

    chat_model = tmp_path / "chat-base"
    shutil.copytree(tiny_models["base"], chat_model)
    config_path = chat_model / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(config))
    (chat_model / "chat_template.jinja").unlink(missing_ok=True)
    suite = lm_eval_task("my_mc", include_path=task_dir, samples=6, num_fewshot=2, apply_chat_template=True,
                         system_instruction="Answer briefly.")
    assert suite.settings.fewshot_as_multiturn is True
    run = EvaluationSession(str(chat_model), [str(tiny_models["adapter"])])
    ours = run.scores("base", suite)
    loaded = loaded_of(suite)
    out = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": str(chat_model), "dtype": "float32", "device": "cpu"},
        tasks=["my_mc"], task_manager=loaded.manager, samples={"my_mc": [int(i.id.split("/")[1]) for i in suite.items]},
        num_fewshot=2, bootstrap_iters=0, log_samples=True, apply_chat_template=True, fewshot_as_multiturn=True,
        system_instruction="Answer briefly.", fewshot_random_seed=suite.settings.fewshot_seed)
    theirs = {e["doc_id"]: e for e in out["samples"]["my_mc"]}
    for record, acc in zip(ours.records, ours.metrics["acc,none"]):
        reference = theirs[record["doc_id"]]
        assert record["context"] == reference["arguments"][0][0] and record["context"].startswith("<|system|>")
        assert record["context"].count("<|user|>") == 3 and acc == reference["acc"]
