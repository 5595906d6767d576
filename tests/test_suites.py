"""Suites: every supported source, the schemas, one-line errors for bad rows, fingerprints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.suites import DEFAULT_MC_TEMPLATE, load_suite

MC_ROWS = [
    {"id": "q1", "question": "What is the capital of France?", "choices": ["Paris", "Rome"], "answer": 0},
    {"id": "q2", "question": "What is 2 + 3?", "choices": ["4", "5", "6"], "answer": "5"},
    {"id": "q3", "question": "Opposite of hot?", "choices": ["cold", "warm"], "answer": 0, "cluster": "opp"},
]


def _write_jsonl(path: Path, rows: list, *, raw_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(row) for row in rows] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _error(source, kind: str = "multiple_choice", **kwargs) -> str:
    with pytest.raises(ForgettingError) as info:
        load_suite(source, kind, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message  # one line
    return message


# -- sources ----------------------------------------------------------------------------------
def test_list_of_dicts() -> None:
    suite = load_suite(MC_ROWS, "multiple_choice")
    assert suite.kind == "multiple_choice" and len(suite) == 3
    first, second, third = suite.items
    assert first.id == "q1" and first.prompt == "Question: What is the capital of France?\nAnswer:"
    assert first.choices == ("Paris", "Rome") and first.answer == 0
    assert second.answer == 1  # "5" is the text of choice 1, not an index
    assert third.cluster == "opp" and first.cluster is None
    assert suite.settings.template == DEFAULT_MC_TEMPLATE and suite.settings.target_delimiter == " "
    assert suite.settings.scorer is None


def test_jsonl_file_matches_list(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "facts.jsonl", MC_ROWS)
    suite = load_suite(path, "multiple_choice")
    assert suite.name == "facts" and suite.source == str(path)
    assert suite.items == load_suite(MC_ROWS, "multiple_choice").items


def test_jsonl_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text("\n" + json.dumps(MC_ROWS[0]) + "\n\n  \n" + json.dumps(MC_ROWS[1]) + "\n")
    assert [item.id for item in load_suite(path, "multiple_choice").items] == ["q1", "q2"]


def test_json_list_file(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(MC_ROWS))
    assert load_suite(path, "multiple_choice").items == load_suite(MC_ROWS, "multiple_choice").items


def test_parquet_file(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "facts.parquet"
    rows = [{key: row.get(key) for key in ("id", "question", "choices", "answer")} for row in MC_ROWS]
    for row in rows:
        row["answer"] = row["choices"].index(row["answer"]) if isinstance(row["answer"], str) else row["answer"]
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    suite = load_suite(path, "multiple_choice")
    assert suite.name == "facts"
    assert [(i.id, i.choices, i.answer) for i in suite.items] == [
        ("q1", ("Paris", "Rome"), 0), ("q2", ("4", "5", "6"), 1), ("q3", ("cold", "warm"), 0)
    ]


def test_csv_generation_cells_stay_text(tmp_path: Path) -> None:
    """CSV is text: numbers, leading zeros and 'None' are kept exactly as written."""
    path = tmp_path / "math.csv"
    path.write_text(
        "id,prompt,target,cluster\n"
        "1,What is 6*7?,42,\n"
        "2,Say the word,None,a\n"
        ",Agent number?,007,b\n"
        "4,\"Quote, with comma\",\"3.50\",\n",
        encoding="utf-8",
    )
    suite = load_suite(path, "generation")
    assert [(i.id, i.prompt, i.targets, i.cluster) for i in suite.items] == [
        ("1", "What is 6*7?", ("42",), None),
        ("2", "Say the word", ("None",), "a"),
        ("3", "Agent number?", ("007",), "b"),  # empty id cell: the row number
        ("4", "Quote, with comma", ("3.50",), None),
    ]
    assert suite.settings.scorer == "exact_match"


def test_csv_multiple_choice_with_json_encoded_choices(tmp_path: Path) -> None:
    path = tmp_path / "mc.csv"
    path.write_text(
        "question,choices,answer\n"
        "Capital of France?,\"[\"\"Paris\"\", \"\"Rome\"\"]\",0\n"
        "Two plus three?,\"[\"\"4\"\", \"\"5\"\"]\",5\n"  # answer text wins over an index
        "Pick one,\"[\"\"a\"\", \"\"b\"\", \"\"c\"\"]\",2\n",
        encoding="utf-8",
    )
    suite = load_suite(path, "multiple_choice")
    assert [(i.choices, i.answer) for i in suite.items] == [
        (("Paris", "Rome"), 0), (("4", "5"), 1), (("a", "b", "c"), 2)
    ]


def test_csv_text_suite_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "texts.csv"
    path.write_bytes("text\nThe quick brown fox.\n\"Dear team, hello.\"\n".encode("utf-8-sig"))
    suite = load_suite(path, "text")
    assert [i.prompt for i in suite.items] == ["The quick brown fox.", "Dear team, hello."]


def test_csv_row_with_extra_cells(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("prompt,target\nhi,there\nok,fine,extra\n")
    message = _error(path, "generation")
    assert str(path) in message and "row 2" in message and "more cells" in message


def test_csv_choices_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("question,choices,answer\nq,Paris or Rome,0\n")
    message = _error(path)
    assert str(path) in message and "row 1" in message and "'choices' must be a list" in message


# -- text and generation schemas --------------------------------------------------------------
def test_text_suite_reads_text_or_prompt() -> None:
    suite = load_suite([{"text": "alpha beta"}, {"prompt": "gamma"}], "text")
    assert [i.prompt for i in suite.items] == ["alpha beta", "gamma"]
    assert suite.settings.template == "{text}"


def test_text_suite_with_custom_template() -> None:
    suite = load_suite([{"title": "Memo", "body": "Hello all."}], "text", template="{title}: {body}")
    assert suite.items[0].prompt == "Memo: Hello all."


def test_generation_targets_forms() -> None:
    suite = load_suite(
        [{"prompt": "a", "target": "x"}, {"prompt": "b", "target": ["y", "z"]}, {"prompt": "c"}],
        "generation", scorer="contains", ignore_case=False, max_new_tokens=5, stop=["\n"],
    )
    assert [i.targets for i in suite.items] == [("x",), ("y", "z"), ()]
    assert suite.settings.scorer == "contains"
    assert suite.settings.scorer_options == (("ignore_case", False),)
    assert suite.settings.max_new_tokens == 5 and suite.settings.stop == ("\n",)


def test_template_placeholders() -> None:
    rows = [{"topic": "geo", "question": "Capital of Italy?", "choices": ["Rome", "Oslo"], "answer": "Rome"}]
    suite = load_suite(rows, "multiple_choice", template="[{topic}] Q: {question}\nA:")
    assert suite.items[0].prompt == "[geo] Q: Capital of Italy?\nA:"
    gen = load_suite([{"prompt": "Translate", "word": "cat", "target": "chat"}], "generation",
                     template="{prompt} '{word}':")
    assert gen.items[0].prompt == "Translate 'cat':"


def test_limit() -> None:
    assert [i.id for i in load_suite(MC_ROWS, "multiple_choice", limit=2).items] == ["q1", "q2"]


# -- few-shot -----------------------------------------------------------------------------------
def test_fewshot_first_rows_are_examples_not_items() -> None:
    suite = load_suite(MC_ROWS, "multiple_choice", fewshot=2)
    assert [i.id for i in suite.items] == ["q3"]
    assert suite.settings.fewshot == (
        ("Question: What is the capital of France?\nAnswer:", "Paris"),
        ("Question: What is 2 + 3?\nAnswer:", "5"),
    )
    assert suite.context(suite.items[0]) == (
        "Question: What is the capital of France?\nAnswer: Paris\n\n"
        "Question: What is 2 + 3?\nAnswer: 5\n\n"
        "Question: Opposite of hot?\nAnswer:"
    )


def test_fewshot_generation_uses_first_target_and_delimiter() -> None:
    rows = [{"prompt": "1+1=", "target": ["2", "two"]}, {"prompt": "2+2=", "target": "4"}]
    suite = load_suite(rows, "generation", fewshot=1, target_delimiter="")
    assert suite.context(suite.items[0]) == "1+1=2\n\n2+2="


def test_fewshot_given_as_rows() -> None:
    suite = load_suite(MC_ROWS[2:], "multiple_choice", fewshot=MC_ROWS[:1])
    assert len(suite) == 1
    assert suite.settings.fewshot == (("Question: What is the capital of France?\nAnswer:", "Paris"),)


def test_fewshot_row_numbers_in_errors_count_from_the_file(tmp_path: Path) -> None:
    bad = {"question": "q", "choices": ["a", "b"], "answer": 9}
    path = _write_jsonl(tmp_path / "s.jsonl", MC_ROWS[:2] + [bad])
    message = _error(path, fewshot=2)
    assert "row 3" in message and "out of range" in message


@pytest.mark.parametrize("fewshot", [-1, 3])
def test_fewshot_out_of_range(fewshot: int) -> None:
    assert "fewshot=" in _error(MC_ROWS, fewshot=fewshot)


# -- malformed input: one line naming the file, the row and the problem -----------------------
def test_bad_json_line_names_the_line(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "s.jsonl", MC_ROWS[:2], raw_lines=('{"question": "oops", ',))
    message = _error(path)
    assert str(path) in message and "line 3" in message and "not valid JSON" in message


def test_bad_json_list_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('[{"question": "q",]')
    message = _error(path)
    assert str(path) in message and "not valid JSON" in message


@pytest.mark.parametrize(
    ("row", "kind", "problem"),
    [
        ({"choices": ["a", "b"], "answer": 0}, "multiple_choice", "missing field 'question'"),
        ({"question": "q", "answer": 0}, "multiple_choice", "'choices' must be a list"),
        ({"question": "q", "choices": "a|b", "answer": 0}, "multiple_choice", "'choices' must be a list"),
        ({"question": "q", "choices": ["only"], "answer": 0}, "multiple_choice", "at least two"),
        ({"question": "q", "choices": ["a", 3], "answer": 0}, "multiple_choice", "'choices' must be a list"),
        ({"question": "q", "choices": ["a", ""], "answer": 0}, "multiple_choice", "choice 1 is empty ('')"),
        ({"question": "q", "choices": [" \t", "b"], "answer": 1}, "multiple_choice", "choice 0 is empty (' \\t')"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, "multiple_choice", "out of range"),
        ({"question": "q", "choices": ["a", "b"], "answer": -1}, "multiple_choice", "out of range"),
        ({"question": "q", "choices": ["a", "b"], "answer": "c"}, "multiple_choice", "not one of the choices"),
        ({"question": "q", "choices": ["a", "b"]}, "multiple_choice", "'answer' must be"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "multiple_choice", "'answer' must be"),
        ({"target": "x"}, "generation", "missing field 'prompt'"),
        ({"prompt": 5, "target": "x"}, "generation", "'prompt' must be a string"),
        ({"prompt": "p", "target": 42}, "generation", "'target' must be a string"),
        ({"prompt": "p", "target": ["a", 1]}, "generation", "'target' must be a string"),
        ({"prompt": "p", "target": ""}, "generation", "'target' '' holds an empty string"),
        ({"prompt": "p", "target": "  "}, "generation", "'target' '  ' holds an empty string"),
        ({"prompt": "p", "target": ["Paris", ""]}, "generation", "'target' ['Paris', ''] holds an empty string"),
        ({"text": ""}, "text", "non-empty 'text'"),
        ({"text": " \n\t"}, "text", "non-empty 'text'"),
        ({"body": "x"}, "text", "non-empty 'text'"),
    ],
)
def test_malformed_row(tmp_path: Path, row: dict, kind: str, problem: str) -> None:
    good = {"multiple_choice": MC_ROWS[0], "generation": {"prompt": "p", "target": "t"},
            "text": {"text": "fine"}}[kind]
    path = _write_jsonl(tmp_path / "suite.jsonl", [good, row])
    message = _error(path, kind)
    assert str(path) in message and "row 2" in message and problem in message, message


def test_empty_choice_is_rejected_at_load_not_at_scoring(tmp_path: Path) -> None:
    """An empty choice once loaded fine and then crashed acc_norm (division by its length)."""
    path = _write_jsonl(tmp_path / "facts.jsonl", [MC_ROWS[0], MC_ROWS[1], {**MC_ROWS[2], "choices": ["cold", ""]}])
    message = _error(path)
    assert message == (
        f"{path}, row 3: choice 1 is empty (''); every choice must be non-empty text, got ['cold', '']"
    )


def test_empty_target_error_counts_rows_from_the_file_with_fewshot(tmp_path: Path) -> None:
    rows = [{"prompt": "1+1=", "target": "2"}, {"prompt": "2+2=", "target": "4"}, {"prompt": "3+3=", "target": [""]}]
    path = _write_jsonl(tmp_path / "math.jsonl", rows)
    message = _error(path, "generation", fewshot=1)
    assert message.startswith(f"{path}, row 3: 'target' [''] holds an empty string")
    assert "leave 'target' out for scorers that need none" in message


def test_empty_csv_target_cell_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "math.csv"
    path.write_text("prompt,target\nWhat is 6*7?,42\nSay nothing,\n", encoding="utf-8")
    message = _error(path, "generation")
    assert message.startswith(f"{path}, row 2: 'target' '' holds an empty string")


def test_row_that_is_not_an_object(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "s.jsonl", [MC_ROWS[0], ["a", "b"]])
    message = _error(path)
    assert "row 2" in message and "expected an object" in message


def test_unknown_kind() -> None:
    message = _error(MC_ROWS, "multiple-choice")
    assert "unknown suite kind 'multiple-choice'" in message and "multiple_choice" in message


def test_duplicate_ids(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "s.jsonl", [MC_ROWS[0], MC_ROWS[1], {**MC_ROWS[2], "id": "q1"}])
    message = _error(path)
    assert str(path) in message and "'q1'" in message and "more than once" in message


def test_empty_suite(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    message = _error(path)
    assert str(path) in message and "no items" in message
    assert "no items" in _error(MC_ROWS, limit=0)


def test_missing_file_and_unsupported_type(tmp_path: Path) -> None:
    assert "no such suite file" in _error(str(tmp_path / "nope.jsonl"))
    other = tmp_path / "suite.txt"
    other.write_text("hello")
    message = _error(other)
    assert "unsupported suite file type '.txt'" in message


def test_unknown_dataset_name_offline() -> None:
    message = _error("no-such-user/no-such-dataset-xyz", "text")
    assert message.startswith("no-such-user/no-such-dataset-xyz: cannot load the suite")


# -- folders and dataset names ----------------------------------------------------------------
GEN_ROWS = [{"id": "g1", "prompt": "1+1=", "target": "2"}, {"id": "g2", "prompt": "2+2=", "target": ["4", "four"]}]


def _quiet_save(dataset, folder: Path) -> Path:
    import datasets

    datasets.disable_progress_bars()
    try:
        dataset.save_to_disk(str(folder))
    finally:
        datasets.enable_progress_bars()
    return folder


def test_folder_saved_by_dataset_save_to_disk(tmp_path: Path) -> None:
    import datasets

    folder = _quiet_save(datasets.Dataset.from_list(MC_ROWS[:1] + [dict(MC_ROWS[1], answer=1)]), tmp_path / "facts")
    suite = load_suite(folder, "multiple_choice")
    assert suite.name == "facts" and suite.source == str(folder)
    assert [(i.id, i.choices, i.answer) for i in suite.items] == [
        ("q1", ("Paris", "Rome"), 0), ("q2", ("4", "5", "6"), 1)
    ]
    message = _error(folder, split="test")
    assert message == f"{folder}: split='test' given, but this saved dataset has no splits; leave split out"


def test_folder_saved_by_datasetdict_save_to_disk_picks_a_split(tmp_path: Path) -> None:
    import datasets

    rows = [dict(row, answer=0) for row in MC_ROWS]
    three = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(rows[:1]),
        "test": datasets.Dataset.from_list(rows[1:]),
        "validation": datasets.Dataset.from_list(rows[:2]),
    })
    folder = _quiet_save(three, tmp_path / "facts")
    default = load_suite(folder, "multiple_choice")  # 'test' when there is one
    assert [i.id for i in default.items] == ["q2", "q3"] and default.source == f"{folder} (split 'test')"
    assert [i.id for i in load_suite(folder, "multiple_choice", split="validation").items] == ["q1", "q2"]
    message = _error(folder, split="dev")
    assert message == f"{folder}: no split 'dev'; available: train, test, validation"

    no_test = _quiet_save(datasets.DatasetDict({"validation": three["validation"], "train": three["train"]}),
                          tmp_path / "no-test")
    assert [i.id for i in load_suite(no_test, "multiple_choice").items] == ["q1"]  # then 'train'
    only = _quiet_save(datasets.DatasetDict({"validation": three["validation"]}), tmp_path / "only")
    assert [i.id for i in load_suite(only, "multiple_choice").items] == ["q1", "q2"]  # then the only one
    two = _quiet_save(datasets.DatasetDict({"validation": three["validation"], "dev": three["train"]}),
                      tmp_path / "two")
    assert _error(two) == f"{two}: several splits (validation, dev); choose one with split=..."


def test_saved_folder_rows_are_validated_with_row_numbers(tmp_path: Path) -> None:
    import datasets

    rows = [{"prompt": "a", "target": "x"}, {"prompt": "b", "target": ""}]
    folder = _quiet_save(datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}), tmp_path / "gen")
    message = _error(folder, "generation")
    assert message.startswith(f"{folder} (split 'test'), row 2: 'target' '' holds an empty string")


def test_folder_of_data_files_split_by_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "math"
    folder.mkdir()
    _write_jsonl(folder / "train.jsonl", [{"id": "t1", "prompt": "9+9=", "target": "18"}])
    _write_jsonl(folder / "test.jsonl", GEN_ROWS)
    (folder / "README.md").write_text("# math\n")
    suite = load_suite(folder, "generation")
    assert suite.name == "math" and suite.source == str(folder / "test.jsonl")
    assert [(i.id, i.targets) for i in suite.items] == [("g1", ("2",)), ("g2", ("4", "four"))]
    assert [i.id for i in load_suite(folder, "generation", split="train").items] == ["t1"]
    message = _error(folder, "generation", split="validation")
    assert message == f"{folder}: no split 'validation'; available: train, test"
    # a broken line still names the file and line
    (folder / "test.jsonl").write_text(json.dumps(GEN_ROWS[0]) + "\n{oops\n")
    message = _error(folder, "generation")
    assert message.startswith(f"{folder / 'test.jsonl'}, line 2: not valid JSON")


def test_folder_with_one_csv_reads_it_as_text_like_a_csv_file(tmp_path: Path) -> None:
    folder = tmp_path / "mc"
    folder.mkdir()
    (folder / "questions.csv").write_text(
        "question,choices,answer\nPick the digit one,\"[\"\"3\"\", \"\"2\"\", \"\"1\"\"]\",1\n", encoding="utf-8"
    )
    (suite_item,) = load_suite(folder, "multiple_choice").items  # no split names: the one 'train' split
    # the cell "1" is choice text (index 2), as for a single CSV file; datasets would make it the int 1
    assert suite_item.choices == ("3", "2", "1") and suite_item.answer == 2
    assert load_suite(folder / "questions.csv", "multiple_choice").items == (suite_item,)


def test_folder_of_parquet_shards_in_a_data_folder(tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "hub-layout"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list(GEN_ROWS[:1]).to_parquet(str(folder / "data" / "test-00000-of-00002.parquet"))
    datasets.Dataset.from_list(GEN_ROWS[1:]).to_parquet(str(folder / "data" / "test-00001-of-00002.parquet"))
    datasets.Dataset.from_list([{"id": "t", "prompt": "p", "target": "t"}]).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet"))
    suite = load_suite(folder, "generation")
    assert [(i.id, i.targets) for i in suite.items] == [("g1", ("2",)), ("g2", ("4", "four"))]
    assert suite.source == f"{folder} (split 'test', 2 files)"


def test_folder_without_suite_data(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    message = _error(folder)
    assert message.startswith(f"{folder}: no suite data in this folder; expected .jsonl/.json/.csv/.parquet files")
    (tmp_path / "empty").mkdir()
    assert "no suite data in this folder" in _error(tmp_path / "empty")


NAME_SCRIPT = """
import json
from pytest_forgetting.scoring.suites import load_suite

default = load_suite("acme/facts", "generation")
train = load_suite("acme/facts", "generation", split="train")
print(json.dumps({"name": default.name, "source": default.source,
                  "test": [i.id for i in default.items], "train": [i.id for i in train.items]}))
"""


def test_dataset_name_loads_offline_from_the_datasets_cache(tmp_path: Path) -> None:
    """A hub dataset loaded once online is reloaded offline from the datasets cache by name.

    The cache is written here by ``datasets``' own JSON builder in the layout a hub download
    leaves (``acme___facts/default/0.0.0/<commit>/facts-test.arrow``); offline, ``datasets``
    reads that cache, not the hub cache's snapshot files.
    """
    import subprocess
    import sys

    from datasets.packaged_modules.json.json import Json

    test_file = _write_jsonl(tmp_path / "test.jsonl", [{"id": "g1", "prompt": "1+1=", "target": "two"},
                                                       {"id": "g2", "prompt": "2+2=", "target": "four"}])
    train_file = _write_jsonl(tmp_path / "train.jsonl", [{"id": "t1", "prompt": "9+9=", "target": "eighteen"}])
    cache = tmp_path / "datasets-cache"
    builder = Json(cache_dir=str(cache), dataset_name="facts", config_id="default", hash="0" * 40,
                   data_files={"test": [str(test_file)], "train": [str(train_file)]})
    builder.download_and_prepare()
    (cache / "facts").rename(cache / "acme___facts")  # a hub dataset's folder: namespace___name

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_DATASETS_CACHE": str(cache),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", NAME_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"name": "facts", "source": "acme/facts", "test": ["g1", "g2"], "train": ["t1"]}


# -- fingerprint ------------------------------------------------------------------------------
def test_fingerprint_depends_on_items_and_settings_only(tmp_path: Path) -> None:
    base = load_suite(MC_ROWS, "multiple_choice")
    path = _write_jsonl(tmp_path / "other-name.jsonl", MC_ROWS)
    # same content from another source and under another name: same fingerprint
    assert load_suite(path, "multiple_choice").fingerprint == base.fingerprint
    assert load_suite(MC_ROWS, "multiple_choice", name="renamed").fingerprint == base.fingerprint
    assert load_suite(list(MC_ROWS), "multiple_choice").fingerprint == base.fingerprint
    assert len(base.fingerprint) == 64

    changed_item = [dict(MC_ROWS[0], question="What is the capital of Spain?"), *MC_ROWS[1:]]
    changed_answer = [dict(MC_ROWS[0], answer=1), *MC_ROWS[1:]]
    changed_cluster = [dict(MC_ROWS[0], cluster="c"), *MC_ROWS[1:]]
    variants = [
        load_suite(changed_item, "multiple_choice"),
        load_suite(changed_answer, "multiple_choice"),
        load_suite(changed_cluster, "multiple_choice"),
        load_suite(MC_ROWS, "multiple_choice", template="Q: {question}\nA:"),
        load_suite(MC_ROWS, "multiple_choice", target_delimiter=""),
        load_suite(MC_ROWS, "multiple_choice", fewshot=1),
        load_suite(MC_ROWS, "multiple_choice", limit=2),
        load_suite(MC_ROWS, "multiple_choice", chat_template=True),
        load_suite(MC_ROWS, "multiple_choice", chat_template=True, system_prompt="Be brief."),
    ]
    prints = [suite.fingerprint for suite in variants]
    assert base.fingerprint not in prints
    assert len(set(prints)) == len(prints)


def test_generation_fingerprint_tracks_generation_settings() -> None:
    rows = [{"prompt": "p", "target": "t"}]
    plain = load_suite(rows, "generation").fingerprint
    assert load_suite(rows, "generation").fingerprint == plain
    others = {
        load_suite(rows, "generation", max_new_tokens=8).fingerprint,
        load_suite(rows, "generation", stop=["\n"]).fingerprint,
        load_suite(rows, "generation", scorer="contains").fingerprint,
        load_suite(rows, "generation", ignore_case=False).fingerprint,
        load_suite([{"prompt": "p", "target": "u"}], "generation").fingerprint,
    }
    assert plain not in others and len(others) == 5
