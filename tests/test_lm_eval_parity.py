"""Our multiple-choice scoring against real lm-evaluation-harness, choice by choice.

lm-eval's own ``HFLM.loglikelihood`` (through ``benchmarks/lm_eval_reference.py``) and our
production path (``score_suite`` -> ``score_multiple_choice`` with the shared-prefix packing
of ``HFBackend.loglikelihood_groups``, as ``forgetting.compare`` runs it) score the same
items on the same tiny Llama, whose byte-level BPE splits " Paris" into a space and two
word pieces, so the context/continuation split and the trailing-whitespace move decide the
numbers. Cases: lm-eval's zero-shot template (questions with surrounding whitespace, one- and
many-token choices of different lengths, a choice with its own leading space, non-ASCII
choices), a template ending in a space with an empty target delimiter (the space moves to
the continuation), one ending in a newline, contexts ending inside a word (joint
tokenization merges across the boundary), a 3-shot context rendered by lm-eval's
``build_qa_turn``, a group too long to pack (the unpacked fallback) and a context longer
than the model's 256 positions (both sides truncate on the left).

Every choice's log-likelihood must agree within 1e-4, and pred / pred_norm / acc / acc_norm /
is_greedy exactly, at our batch sizes 1, 8 and automatic. (An exact tie needs two equal
choices, which ``load_suite`` rejects; first-index tie breaking is checked on
``score_item`` in test_lm_eval_reference.py.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "lm_eval_reference.py"
TOLERANCE = 1e-4

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Germany", "Berlin"), ("Italy", "Rome"),
            ("Spain", "Madrid"), ("England", "London")]
CITIES = [city for _, city in CAPITALS]


def _zero_shot_rows() -> list[dict]:
    rows = []
    for index, (country, city) in enumerate(CAPITALS):
        choices = [c for c in CITIES if c != city][index % 3: index % 3 + 3]
        choices.insert(index % 4, city)
        rows.append({"question": f"What is the capital of {country}?", "choices": choices,
                     "answer": choices.index(city)})
    for a, b in [(2, 3), (4, 5), (1, 8), (7, 8), (9, 9), (3, 6), (12, 30)]:
        right = a + b
        choices = [str(right - 1), str(right), str(right + 10), str(right * 11)]  # 1-3 digits
        rows.append({"question": f"What is {a} + {b}?", "choices": choices, "answer": 1})
    rows += [
        {"question": "  What is 7 + 8?  ", "choices": ["15", "14"], "answer": 0},   # stripped by both
        {"question": "\tWhich word means hot?\n", "choices": ["cold", "hot", "small", "big"], "answer": 1},
        {"question": "Which is a river?", "choices": ["the river in the big city", "a dog", "Rome"], "answer": 0},
        {"question": "Pick the city.", "choices": ["Madrid and Rome", "x", "one two three four five six"],
         "answer": 0},
        {"question": "What is the capital of France?", "choices": [" Paris", "Paris", "Berlin"], "answer": 1},
        {"question": "Which word is French?", "choices": ["café", "cafe", "naïve", "über"], "answer": 0},
        {"question": "Which is fast?", "choices": ["slow", "fast", "up", "down", "left", "right"], "answer": 1},
        {"question": "What is 2 + 3?", "choices": ["5", "five"], "answer": 0},
        {"question": "Finish: The quick brown fox jumps over the lazy", "choices": ["dog.", "cat.", "fox."],
         "answer": 0},
        {"question": "Who wrote the report?", "choices": ["Ann", "Dear team", "Best regards, Ann"], "answer": 0},
        {"question": "WHEREAS the parties agree, who transfers the goods?", "choices": ["the seller", "the buyer"],
         "answer": 0},
        {"question": "Which is happy?", "choices": ["sad", "happy"], "answer": 1},
        {"question": "What is one plus one?", "choices": ["two", "three", "ten", "one"], "answer": 0},
        {"question": "Count: one two three", "choices": ["four", "five six seven eight nine ten"], "answer": 0},
        {"question": "Is 9 - 2 = 7?", "choices": ["yes", "no"], "answer": 0},
        {"question": "What is 0 + 0?", "choices": ["0", "00", "000"], "answer": 0},
        {"question": "Which country has Tokyo?", "choices": ["Japan", "country", "city"], "answer": 0},
    ]
    return rows


SHORT = [
    {"question": "What is the capital of Italy?", "choices": ["Rome", "Paris", "Berlin"], "answer": 0},
    {"question": "What is 4 + 4?", "choices": ["8", "9", "18"], "answer": 0},
    {"question": "Which word means small?", "choices": ["big", "small", "up"], "answer": 1},
    {"question": "What is the capital of Spain?", "choices": ["Madrid", "London"], "answer": 0},
    {"question": "Which is slow?", "choices": ["fast", "slow", "left right"], "answer": 1},
    {"question": "What is 6 + 1?", "choices": ["7", "6", "77"], "answer": 0},
]

FEWSHOT = [  # the first three are the worked examples
    {"question": "What is the capital of France?", "choices": ["Paris", "Rome"], "answer": 0},
    {"question": "What is 2 + 3?", "choices": ["4", "5"], "answer": 1},
    {"question": "Which word means cold?", "choices": ["hot", "cold"], "answer": 1},
    *SHORT,
]

# the context ends inside a word and the delimiter is empty: "thr" + "ee" tokenizes jointly into
# other tokens than "thr" and "ee" do apart, so the split of the joint encoding matters
WORD_ENDINGS = [
    {"question": "Count: one two thr", "choices": ["ee", "ow", "eee"], "answer": 0},
    {"question": "Complete: The quick brown fo", "choices": ["x", "xes", "g"], "answer": 0},
    {"question": "The capital of France is Par", "choices": ["is", "ks", "ty"], "answer": 0},
    {"question": "Word: hap", "choices": ["py", "pen", "less"], "answer": 0},
]

FOX = "The quick brown fox jumps over the lazy dog."
LONG = [
    # about 220 tokens: each choice alone fits the 256 positions, all four packed do not
    {"question": " ".join([FOX] * 6), "choices": ["the river in the big city", "Madrid and Rome",
                                                   "one two three four", "Best regards, Ann"], "answer": 0},
    # about 400 tokens: longer than the model, lm-eval and we keep the last 257 - 1 tokens
    {"question": " ".join([FOX] * 11), "choices": ["dog", "cat", "fox jumps"], "answer": 0},
]


def _load_reference_module():
    spec = importlib.util.spec_from_file_location("lm_eval_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases(ref) -> list[dict]:
    """Per case: the rows, our load_suite options, and lm-eval's contexts and delimiter."""
    from pytest_forgetting import load_suite

    zero = _zero_shot_rows()
    strip = [dict(r, question=r["question"].strip()) for r in SHORT]
    few_questions = FEWSHOT[3:]
    shots = [(r["question"], r["choices"][r["answer"]]) for r in FEWSHOT[:3]]
    return [
        {"name": "zero-shot", "rows": zero, "suite": load_suite(zero, "multiple_choice", name="zero-shot"),
         "contexts": None, "delimiter": " "},
        {"name": "trailing-space", "rows": strip,
         "suite": load_suite(SHORT, "multiple_choice", name="trailing-space", template="Q: {question}\nA: ",
                             target_delimiter=""),
         "contexts": [f"Q: {r['question']}\nA: " for r in strip], "delimiter": ""},
        {"name": "trailing-newline", "rows": strip,
         "suite": load_suite(SHORT, "multiple_choice", name="trailing-newline", template="{question}\n"),
         "contexts": [f"{r['question']}\n" for r in strip], "delimiter": " "},
        {"name": "word-ending", "rows": WORD_ENDINGS,
         "suite": load_suite(WORD_ENDINGS, "multiple_choice", name="word-ending", template="{question}",
                             target_delimiter=""),
         "contexts": [r["question"] for r in WORD_ENDINGS], "delimiter": ""},
        {"name": "3-shot", "rows": few_questions,
         "suite": load_suite(FEWSHOT, "multiple_choice", name="3-shot", fewshot=3),
         "contexts": [ref.fewshot_context(r["question"], shots) for r in few_questions], "delimiter": " "},
        {"name": "long", "rows": LONG, "suite": load_suite(LONG, "multiple_choice", name="long"),
         "contexts": None, "delimiter": " "},
    ]


@pytest.fixture(scope="module")
def parity(tiny_models):
    """lm-eval's results per case, and our loaded handle (float32, CPU, automatic batching)."""
    from pytest_forgetting.backends.hf.loading import load_model
    from pytest_forgetting.backends.spec import LoadOptions, inspect_folder

    ref = _load_reference_module()
    model_dir = str(tiny_models["base"])
    lm = ref.load_hflm(model_dir, batch_size=4)
    cases = _cases(ref)
    for case in cases:
        case["reference"] = ref.run_lm_eval(model_dir, case["rows"], batch_size=4, lm=lm,
                                            contexts=case["contexts"], target_delimiter=case["delimiter"])
    handle = load_model(inspect_folder(Path(model_dir), model_dir, "base", "--model"),
                        LoadOptions(device="cpu", dtype="float32"), None)
    return {"cases": cases, "handle": handle, "lm": lm}


def test_cases_cover_the_edge_cases(parity):
    """The items really exercise what the module docstring claims."""
    handle, lm = parity["handle"], parity["lm"]
    assert lm.max_length == handle.max_length == 256
    by_name = {case["name"]: case for case in parity["cases"]}
    assert sum(len(case["rows"]) for case in parity["cases"]) >= 40
    # zero-shot: one-token and many-token continuations side by side
    lengths = {len(cont) for row in by_name["zero-shot"]["reference"]["items"] for cont in row["continuation_tokens"]}
    assert 1 in lengths and max(lengths) >= 10
    # the trailing space (and newline) of the context moved into the continuation
    for name, moved in (("trailing-space", " "), ("trailing-newline", "\n")):
        for row in by_name[name]["reference"]["items"]:
            assert row["context"].endswith(moved)
            context_ids, continuation_ids = handle.encode_pair(row["context"], row["continuations"][0])
            assert context_ids == row["context_tokens"] == handle.encode(row["context"].rstrip())
            assert handle.tokenizer.decode(continuation_ids) == moved + row["continuations"][0]
    # joint tokenization: the continuation's tokens are not those of the choice encoded alone
    assert any(cont != handle.encode(text) for row in by_name["word-ending"]["reference"]["items"]
               for cont, text in zip(row["continuation_tokens"], row["continuations"]))
    # a choice with its own leading space: "  Paris" after the delimiter
    assert any("  Paris" in row["continuations"] for row in by_name["zero-shot"]["reference"]["items"])
    # long: the first group is too long to pack, the second longer than the model
    first, second = by_name["long"]["reference"]["items"]
    packed = len(first["context_tokens"]) + sum(len(c) - 1 for c in first["continuation_tokens"])
    assert packed > 256 and all(len(first["context_tokens"]) + len(c) - 1 <= 256 for c in first["continuation_tokens"])
    assert len(second["context_tokens"]) > 256
    # acc_norm (by characters) disagrees with acc somewhere, so both are really checked
    assert any(row["pred"] != row["pred_norm"] for case in parity["cases"] for row in case["reference"]["items"])


@pytest.mark.parametrize("batch_size", [1, 8, None], ids=["bs1", "bs8", "auto"])
def test_multiple_choice_matches_lm_eval(parity, batch_size):
    from pytest_forgetting.scoring.kinds import render_text, score_suite

    handle = parity["handle"]
    assert getattr(handle, "loglikelihood_groups", None) is not None  # the packed path is on
    calls = {"grouped": 0, "fallback": 0}
    grouped, plain = handle.loglikelihood_groups, handle.loglikelihood

    def count_grouped(groups, **kwargs):
        calls["grouped"] += 1
        return grouped(groups, **kwargs)

    def count_plain(requests, **kwargs):  # only the packing's fallback calls it
        calls["fallback"] += 1
        return plain(requests, **kwargs)

    handle.loglikelihood_groups, handle.loglikelihood = count_grouped, count_plain
    try:
        failures = []
        for case in parity["cases"]:
            suite, reference = case["suite"], case["reference"]
            scores = score_suite(handle, suite, batch_size=batch_size)
            assert len(scores.records) == len(reference["items"]) == len(suite.items)
            for item, record, acc, acc_norm, ref in zip(suite.items, scores.records, scores.metrics["acc"],
                                                        scores.metrics["acc_norm"], reference["items"]):
                where = f"{case['name']} item {item.id}"
                assert render_text(handle, suite, item) == ref["context"], where
                assert [suite.settings.target_delimiter + c for c in item.choices] == ref["continuations"], where
                deltas = [abs(a - b) for a, b in zip(record["loglikelihoods"], ref["loglikelihoods"])]
                if max(deltas) > TOLERANCE:
                    failures.append(f"{where}: |delta ll| {max(deltas):.2e} ({record['loglikelihoods']} vs "
                                    f"{ref['loglikelihoods']})")
                mine = (record["pred"], record["pred_norm"], acc, acc_norm, record["is_greedy"])
                theirs = (ref["pred"], ref["pred_norm"], ref["acc"], ref["acc_norm"], ref["is_greedy"])
                if mine != theirs:
                    failures.append(f"{where}: (pred, pred_norm, acc, acc_norm, is_greedy) {mine} vs {theirs}")
        assert not failures, "\n".join(failures)
    finally:
        del handle.loglikelihood_groups, handle.loglikelihood
    assert calls["grouped"] == len(parity["cases"])
    assert calls["fallback"] == 2  # the two long groups: too long to pack (the second even alone)
