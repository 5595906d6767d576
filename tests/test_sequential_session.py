"""Sequential verdicts in the session and the plugin: what is scored, what the reports say.

The engine tests use a backend that knows a chosen set of answers (so the verdict is known
in advance) and counts the items it scores; the plugin tests run the tiny real models.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_forgetting import Backend, Capabilities, EvaluationSession, Identity, Loglikelihood, load_suite
from pytest_forgetting.comparison.assertions import assert_no_forgetting
from pytest_forgetting.comparison.sequential import SequentialSettings
from pytest_forgetting.errors import ForgettingDetected, ForgettingError

ROWS = [{"id": f"q{i}", "question": f"question {i}", "choices": ["right", "wrong"], "answer": 0} for i in range(200)]


class Knows(Backend):
    """Answers the questions whose number is in ``known`` correctly, the others wrongly; counts items."""

    capabilities = Capabilities(loglikelihood=True)

    def __init__(self, name: str, known: set[int]) -> None:
        self.name, self.known, self.scored = name, known, 0

    def identity(self) -> Identity:
        return Identity(f"knows:{self.name}", "none", "remote")

    def loglikelihood(self, requests, *, batch_size=None):
        out = []
        for context, continuation in requests:
            right = int(context.split()[-2]) in self.known  # "Question: question 17\nAnswer:"
            favourite = " right" if right else " wrong"
            out.append(Loglikelihood(-0.1 if continuation == favourite else -3.0, continuation == favourite, 1))
        self.scored += len(requests) // 2 if requests else 0
        return out


@pytest.fixture()
def suite():
    return load_suite(ROWS, "multiple_choice", name="yes-no")


def _session(base: Backend, *candidates: Backend, sequential: bool = True) -> EvaluationSession:
    return EvaluationSession(base, {c.name: c for c in candidates}, sequential=sequential)


def test_a_clear_keep_stops_early_and_says_so(suite) -> None:
    base, tuned = Knows("base", set(range(150))), Knows("tuned", set(range(150)))
    session = _session(base, tuned)
    result = session.compare("tuned", suite, tolerance=0.05)
    assert result.passed and result.decided_early
    assert result.n < 200 and result.suite_size == 200 and 1 <= result.look < result.looks
    assert base.scored == tuned.scored == result.n  # only the items looked at were scored
    assert result.items_text == f"{result.n} of 200"
    assert result.sequential_text.startswith(f"decided after {result.n} of 200 items (look {result.look} of")
    data = result.to_dict()
    assert (data["suite_size"], data["look"], data["looks"]) == (200, result.look, result.looks)


def test_a_clear_drop_fails_early_and_lists_only_items_seen(suite) -> None:
    base, tuned = Knows("base", set(range(150))), Knows("tuned", set(range(40)))
    session = _session(base, tuned)
    result = session.compare("tuned", suite, tolerance=0.05)
    assert result.verdict == "fail" and result.decided_early
    seen = {record["id"] for record in result.records}
    assert len(seen) == result.n and {item["id"] for item in result.forgotten_items} <= seen
    with pytest.raises(ForgettingDetected) as info:
        assert_no_forgetting(result)
    assert f"decided after {result.n} of 200 items" in str(info.value)
    assert f"n={result.n} of 200" in str(info.value)


def test_an_undecided_capability_runs_to_the_end_and_is_decided_on_every_item(suite) -> None:
    # 16 forgotten and 6 gained of 200: delta -0.05, at the tolerance: not clear early
    known = set(range(150))
    tuned_known = (known - set(range(16))) | set(range(150, 156))
    session = _session(Knows("base", known), Knows("tuned", tuned_known))
    result = session.compare("tuned", suite, tolerance=0.05)
    assert result.n == result.suite_size == 200 and result.look == result.looks
    off = _session(Knows("base", known), Knows("tuned", tuned_known), sequential=False).compare("tuned", suite, tolerance=0.05)
    assert (result.forgotten, result.gained, result.delta) == (off.forgotten, off.gained, off.delta)
    assert result.test_alpha < off.test_alpha == 0.05  # the last look runs at the level left to it
    assert "last look" in result.statistic


def test_off_gives_the_fixed_sample_result(suite) -> None:
    base, tuned = Knows("base", set(range(150))), Knows("tuned", set(range(150)))
    result = _session(base, tuned, sequential=False).compare("tuned", suite, tolerance=0.05)
    assert result.n == 200 and result.looks == 0 and result.suite_size == 0 and result.sequential_text == ""
    assert base.scored == tuned.scored == 200


def test_a_second_candidate_scores_only_the_base_items_it_still_needs(suite) -> None:
    base = Knows("base", set(range(150)))
    quick, slow = Knows("quick", set(range(150))), Knows("slow", (set(range(150)) - set(range(8))) | {190, 191})
    session = _session(base, quick, slow)
    first = session.compare("quick", suite, tolerance=0.05)
    second = session.compare("slow", suite, tolerance=0.05)
    assert second.n > first.n
    assert base.scored == second.n  # the first candidate's base items were reused, none scored twice
    assert session.runs == {"base": 1, "quick": 1, "slow": 1}  # a suite scored in chunks counts once


def test_a_sequential_result_cannot_be_re_decided(suite) -> None:
    session = _session(Knows("base", set(range(150))), Knows("tuned", set(range(150))))
    result = session.compare("tuned", suite, tolerance=0.05)
    with pytest.raises(ForgettingError, match="cannot be re-decided") as info:
        assert_no_forgetting(result, tolerance=0.2)
    assert "\n" not in str(info.value)


def test_settings_are_the_session_s(suite) -> None:
    session = EvaluationSession(Knows("base", set()), [Knows("tuned", set())],
                                sequential=SequentialSettings(enabled=True, max_looks=2, min_look=50))
    result = session.compare(None, suite, tolerance=0.05)
    assert result.looks == 2


CHECKS = """
from pytest_forgetting import capability

ROWS = [{{"id": f"q{{i}}", "question": f"What comes after {{w}}?", "choices": ["one", "two", "three", "four"],
         "answer": i % 4}} for i, w in enumerate(("one two three four five six seven eight nine ten " * 6).split())]

@capability("knowledge", tolerance={tolerance})
def test_knowledge(forgetting):
    forgetting.check(forgetting.suite(ROWS, "multiple_choice"))
"""


@pytest.mark.parametrize("tolerance", [1.0])
@pytest.mark.parametrize("spending", [None, "obrien-fleming"])
def test_the_plugin_reports_where_it_decided(pytester, tiny_models, tolerance, spending) -> None:
    # a tolerance of 1.0 (the whole range) is decided at the first look on real models
    pytester.makepyfile(CHECKS.format(tolerance=tolerance))
    if spending:  # the spending function from the ini file
        pytester.makeini(f"[pytest]\nforgetting_sequential_spending = {spending}\n")
    result = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", "--forgetting-sequential=on",
                                "--junitxml=junit.xml", "--forgetting-report=out", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*knowledge*acc*20 of 60*PASS*", "*sequential verdicts: 1 of 1 decided early*"])
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert props["n"] == "20" and props["suite_size"] == "60" and props["decided"].startswith("decided after 20 of 60")
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["results"][0]["suite_size"] == 60 and report["results"][0]["n"] == 20
    assert f"({spending or 'hwang-shih-decani'} spending)" in report["results"][0]["statistic"]
    assert "decided early" in (pytester.path / "out" / "report.md").read_text()


def test_a_bad_switch_value_fails_at_start_up_in_one_line(pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--forgetting-sequential=maybe")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--forgetting-sequential maybe: sequential verdicts 'maybe': expected on or off*"])


def test_drift_looks_reuse_the_candidate_s_answers_on_real_models(tiny_models) -> None:
    rows = [{"id": f"p{i}", "prompt": f"Tell me about {w} number {i}", "target": "x"}
            for i, w in enumerate(("cats dogs rivers cities trains " * 12).split())]
    suite = load_suite(rows, "generation", scorer="exact_match", max_new_tokens=4, name="writing")
    session = EvaluationSession(candidates={"drifted": str(tiny_models["adapter"]),
                                            "same": str(tiny_models["zero_adapter"])}, sequential=True)
    drifted = session.drift("drifted", suite, max_kl=1e-6)
    assert drifted.verdict == "fail" and drifted.decided_early and drifted.suite_size == 60
    assert len(session.item_rows(session.candidate("drifted"), suite)) == drifted.n  # answers generated once
    same = session.drift("same", suite, max_kl=0.1)  # zero adapter: KL 0, but KL may pass only at the end
    assert same.passed and same.n == 60 and same.look == same.looks
    full = EvaluationSession(candidates={"drifted": str(tiny_models["adapter"])}).drift("drifted", suite, max_kl=1e-6)
    by_id = {r["id"]: r["tuned"] for r in full.records}
    assert all(abs(r["tuned"] - by_id[r["id"]]) < 1e-5 for r in drifted.records)  # same per-item drift
