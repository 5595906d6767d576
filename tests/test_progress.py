"""Progress lines reach the terminal through the plugin while test output stays captured."""

from __future__ import annotations

import json

import pytest

FACTS = [
    {"id": f"q{i}", "question": question, "choices": ["Paris", "Rome", "Berlin"], "answer": 0}
    for i, question in enumerate(["Capital of France?", "Capital of Italy?", "Capital of Germany?",
                                  "Largest city of France?", "Seat of the French government?"])
]
SUMS = [{"id": f"s{i}", "prompt": f"{i} + 1 =", "target": str(i + 1)} for i in range(3)]

CHECKS = """
from pytest_forgetting import capability


@capability("knowledge")
def test_knowledge(forgetting):
    print("OWN-OUTPUT-knowledge")
    forgetting.check(forgetting.suite("facts.jsonl", "multiple_choice"))


@capability("arithmetic")
def test_arithmetic(forgetting):
    print("OWN-OUTPUT-arithmetic")
    forgetting.check(forgetting.suite("sums.jsonl", "generation", scorer="numeric", max_new_tokens=4))
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for name, rows in (("facts.jsonl", FACTS), ("sums.jsonl", SUMS)):
        (pytester.path / name).write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    pytester.makepyfile(test_checks=CHECKS)
    return pytester


def _progress_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("[forgetting] ")]


def test_progress_reaches_the_terminal_while_test_output_stays_captured(project, tiny_models) -> None:
    # the zero-initialised adapter: tuned == base, so both checks pass
    result = project.runpytest(f"--tuned-model={tiny_models['zero_adapter']}", "--no-forgetting-cache", "-v")
    result.assert_outcomes(passed=2)
    lines = _progress_lines(result)
    # one "done/total" line per capability and model, each suite scored to its end
    for label, total in (("facts (base)", 5), ("facts (tuned)", 5), ("sums (base)", 3), ("sums (tuned)", 3)):
        assert any(line.startswith(f"[forgetting] {label}: {total}/{total} items (") and line.endswith("/s)")
                   for line in lines), (label, lines)
    text = result.stdout.str()
    assert "OWN-OUTPUT" not in text  # a passing test's print() stays captured
    # each capability's lines appear while its test runs (verbose mode prints the test ids)
    at = {line: index for index, line in enumerate(result.outlines)}
    knowledge = next(i for i, line in enumerate(result.outlines) if line.startswith("test_checks.py::test_knowledge"))
    arithmetic = next(i for i, line in enumerate(result.outlines) if line.startswith("test_checks.py::test_arithmetic"))
    summary = next(i for i, line in enumerate(result.outlines) if "= forgetting =" in line)
    assert all(knowledge < at[line] < arithmetic for line in lines if " facts (" in line)
    assert all(arithmetic < at[line] < summary for line in lines if " sums (" in line)


def test_a_failing_test_shows_its_own_output_and_progress_stays_out_of_it(project, tiny_models) -> None:
    project.makepyfile(test_checks=CHECKS.replace(
        'print("OWN-OUTPUT-arithmetic")', 'print("OWN-OUTPUT-arithmetic"); assert False, "boom"'))
    result = project.runpytest(f"--tuned-model={tiny_models['zero_adapter']}", "--no-forgetting-cache")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "OWN-OUTPUT-arithmetic" in text and "OWN-OUTPUT-knowledge" not in text
    captured = text.split("Captured stdout call", 1)[1].split("short test summary", 1)[0]
    assert "[forgetting] " not in captured  # progress went to the terminal, not into the capture
    assert any(line.startswith("[forgetting] facts (tuned): 5/5 items") for line in _progress_lines(result))
