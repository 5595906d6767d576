"""Multiple choice by written answers (letter_acc): the prompt, the parsing, the suite option."""

from __future__ import annotations

import pytest

from pytest_forgetting import ForgettingError, load_suite
from pytest_forgetting.scoring.letters import by_letter, letter_prompt, parse_answer

CHOICES = ["Paris", "Rome", "Paris Hilton"]


@pytest.mark.parametrize("output, expected", [
    (" B", 1), ("B.", 1), ("(C) Paris Hilton", 2), ("\nA\n", 0), ("a", None), ("D", None),
    (" Paris Hilton is", 2), ("Paris.", 0), ("rome", 1), ("", None), ("I think", None),
])
def test_the_answer_is_the_first_letter_else_the_longest_choice_it_starts_with(output, expected):
    assert parse_answer(output, CHOICES) == expected


def test_choices_are_listed_before_the_answer_cue():
    suite = load_suite([{"question": "Capital of France?", "choices": CHOICES, "answer": 0}], "multiple_choice")
    assert letter_prompt(suite, suite.items[0]) == \
        "Question: Capital of France?\nA. Paris\nB. Rome\nC. Paris Hilton\nAnswer:"
    lettered = by_letter(suite)
    assert lettered.settings.answer_by == "letter" and lettered.fingerprint != suite.fingerprint


def test_answer_by_is_checked():
    rows = [{"question": "q", "choices": ["a", "b"], "answer": 0}]
    assert load_suite(rows, "multiple_choice", answer_by="letter").settings.answer_by == "letter"
    for kind, rows_, value in (("multiple_choice", rows, "letters"), ("generation", [{"prompt": "p"}], "letter")):
        with pytest.raises(ForgettingError, match=r"answer_by=.*expected 'loglikelihood' or 'letter'"):
            load_suite(rows_, kind, answer_by=value)
