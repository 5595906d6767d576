"""Suite inputs a new user gets wrong: each is one clear line, or does what was meant (issue 15's defects)."""

from __future__ import annotations

import pytest

from pytest_forgetting import EvaluationSession, load_suite
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.registry import build_registry

MC = [{"question": "2 + 2 =", "choices": ["4", "5"], "answer": 0}, {"question": "3 + 3 =", "choices": ["6", "7"], "answer": 0}]
GEN = [{"prompt": "Q: 2 + 2?", "target": "4"}, {"prompt": "Q: 3 + 3?", "target": "6"}]


def rows_generator():
    yield from MC


@pytest.mark.parametrize("make, expected", [
    (lambda: load_suite(MC, "multiple_choice", max_new_token=16),
     "unknown option 'max_new_token' (did you mean 'max_new_tokens'?)"),
    (lambda: load_suite([{"text": "hello"}], "text", limt=3), "'limt' (did you mean 'limit'?)"),
    (lambda: load_suite(GEN, "generation", template="Q: {prompt}}"), "is not a valid format string"),
    (lambda: load_suite(GEN, "generation", template="Q: {0}"), "has a positional field {0}"),
    (lambda: load_suite(GEN, "generation", template="Answer as JSON {\"answer\": 1}: {prompt}"),
     "if the braces are meant literally (JSON), double them"),
    (lambda: load_suite(rows_generator(), "multiple_choice"), "source was a generator; expected a file"),
    (lambda: load_suite(GEN, "generation", stop=["\n", ""]), "expected a stop string or a list of non-empty"),
])
def test_bad_suite_inputs_fail_in_one_line(make, expected):
    with pytest.raises(ForgettingError) as refused:
        make()
    assert expected in str(refused.value) and "\n" not in str(refused.value), str(refused.value)


def test_a_stop_string_is_one_stop_string_not_its_characters():
    suite = load_suite(GEN, "generation", stop="Question:")
    assert suite.settings.stop == ("Question:",)


def test_a_datasets_dataset_is_a_source():
    from datasets import Dataset, DatasetDict

    suite = load_suite(Dataset.from_list(MC), "multiple_choice")
    assert [item.choices for item in suite.items] == [("4", "5"), ("6", "7")]
    both = DatasetDict({"train": Dataset.from_list(MC[:1]), "test": Dataset.from_list(MC)})
    assert len(load_suite(both, "multiple_choice")) == 2 and len(load_suite(both, "multiple_choice", split="train")) == 1


def test_a_scorer_that_fails_is_named_with_its_item_and_not_said_to_reject_its_options(tiny_models):
    def broken(output, targets):
        return len(None)  # a bug in the scorer: TypeError

    def strict(output, targets, *, key):
        return 1.0

    registry = build_registry()
    registry.add("broken", broken)
    registry.add("strict", strict)
    session = EvaluationSession(str(tiny_models["base"]), [str(tiny_models["adapter"])], registry=lambda: registry)
    with pytest.raises(ForgettingError) as failed:
        session.scores("base", load_suite(GEN, "generation", scorer="broken", max_new_tokens=2))
    assert "item '1': scorer 'broken' raised TypeError" in str(failed.value)
    assert "rejected its options" not in str(failed.value)
    with pytest.raises(ForgettingError, match=r"scorer 'strict' rejected its options .*missing a required"):
        session.scores("base", load_suite(GEN, "generation", scorer="strict", max_new_tokens=2))
