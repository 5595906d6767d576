"""Verdicts end to end: pass/fail, failure messages, JUnit properties, report files, xdist."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair, score_suite

QUESTIONS = [f"What comes after {word}?" for word in (
    "one two three four five six seven eight nine ten hot cold big small up down left right fast slow "
    "happy sad Paris Berlin Rome Madrid Tokyo London river city country capital dog fox quick lazy "
    "report team goods seller parties"
).split()]
CHOICES = ["one", "two", "three", "four"]


@pytest.fixture(scope="module")
def self_labelled_suite(tiny_models, tmp_path_factory) -> Path:
    """A multiple-choice suite labelled with the base model's own answers: base scores 1.0."""
    rows = [{"id": f"q{i}", "question": q, "choices": CHOICES, "answer": 0} for i, q in enumerate(QUESTIONS)]
    base_spec, _ = resolve_pair(str(tiny_models["adapter"]), None, LoadOptions())
    base = load_model(base_spec, LoadOptions(), None)
    scores = score_suite(base, load_suite(rows, "multiple_choice"))
    for row, record in zip(rows, scores.records):
        row["answer"] = record["pred"]
    path = tmp_path_factory.mktemp("suites") / "knowledge.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


CHECK_FILE = """
from pytest_forgetting import capability

@capability("knowledge", tolerance=0.05)
def test_knowledge(forgetting):
    forgetting.check(forgetting.suite({suite!r}, "multiple_choice"))
"""


def _run(pytester, suite, tuned, *args):
    pytester.makepyfile(test_knowledge=CHECK_FILE.format(suite=str(suite)))
    return pytester.runpytest("--tuned-model", str(tuned), *args)


def test_zero_adapter_passes_with_delta_exactly_zero(pytester, tiny_models, self_labelled_suite) -> None:
    report = pytester.path / "out"
    result = _run(pytester, self_labelled_suite, tiny_models["zero_adapter"], "--forgetting-report", str(report))
    result.assert_outcomes(passed=1)
    data = json.loads((report / "report.json").read_text())
    (entry,) = data["results"]
    assert entry["delta"] == 0.0 and entry["forgotten"] == entry["gained"] == 0
    assert entry["base_score"] == 1.0 and entry["verdict"] == "pass"
    assert len(entry["records"]) == len(QUESTIONS)
    result.stdout.fnmatch_lines(["*= forgetting =*", "capability*verdict*", "knowledge*acc*PASS*"])


def test_random_adapter_fails_with_an_actionable_message(pytester, tiny_models, self_labelled_suite) -> None:
    xml_path = pytester.path / "junit.xml"
    report = pytester.path / "out"
    result = _run(pytester, self_labelled_suite, tiny_models["adapter"], f"--junitxml={xml_path}",
                  "--forgetting-report", str(report))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "FAIL knowledge: acc 1.000 -> *",
        "*forgotten=*",
        "First forgotten items*",
        "  - ?q*? Question: What comes after*",
        "      expected: *",
        "      base: *",
        "      tuned: *",
        "To act: *tolerance*",
    ])
    assert "Traceback" not in result.stdout.str()
    testcase = ET.parse(xml_path).getroot().find(".//testcase")
    properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
    assert properties["capability"] == "knowledge" and properties["verdict"] == "fail"
    assert properties["base"] == "1" and float(properties["delta"]) < -0.05
    assert {"ci_low", "ci_high", "p_value", "n", "forgotten", "gained", "tolerance", "policy", "metric"} <= set(properties)
    assert testcase.find("failure").get("message").startswith("FAIL knowledge: acc 1.000 ->")
    markdown = (report / "report.md").read_text()
    assert "| knowledge | acc |" in markdown and ":x: FAIL" in markdown and "forgotten items" in markdown
    assert (report / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_tolerance_from_helper_beats_marker(pytester, tiny_models, self_labelled_suite) -> None:
    pytester.makepyfile(test_tol=f"""
from pytest_forgetting import capability, assert_no_forgetting

@capability("knowledge", tolerance=0.0)
def test_generous(forgetting):
    result = forgetting.compare(forgetting.suite({str(self_labelled_suite)!r}, "multiple_choice"))
    assert result.verdict == "fail" and result.tolerance_abs == 0.0
    assert_no_forgetting(result, tolerance=1.0)
""")
    pytester.runpytest("--tuned-model", str(tiny_models["adapter"])).assert_outcomes(passed=1)


def test_github_step_summary_is_appended(pytester, tiny_models, self_labelled_suite, monkeypatch) -> None:
    summary = pytester.path / "summary.md"
    summary.write_text("existing\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _run(pytester, self_labelled_suite, tiny_models["zero_adapter"]).assert_outcomes(passed=1)
    text = summary.read_text()
    assert text.startswith("existing\n") and "## Forgetting check" in text and "knowledge" in text


def test_xdist_workers_results_are_merged(pytester, tiny_models, self_labelled_suite) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_many=f"""
import pytest
from pytest_forgetting import capability

@pytest.mark.parametrize("name", ["a", "b", "c", "d"])
def test_cap(forgetting, name):
    result = forgetting.compare(forgetting.suite({str(self_labelled_suite)!r}, "multiple_choice"),
                                capability=name, tolerance=1.0)
    assert result.passed
""")
    report = pytester.path / "out"
    result = pytester.runpytest_subprocess("-n", "2", "--tuned-model", str(tiny_models["zero_adapter"]),
                                           "--forgetting-report", str(report))
    result.assert_outcomes(passed=4)
    data = json.loads((report / "report.json").read_text())
    assert sorted(r["capability"] for r in data["results"]) == ["a", "b", "c", "d"]
    result.stdout.fnmatch_lines(["*= forgetting =*"])


def _decided(base, tuned, *, higher_is_better=True, binary=None, tolerance=0.05, policy="non-inferiority"):
    import math

    from pytest_forgetting.comparison.verdict import blank_result, decide, resolve_decision
    from pytest_forgetting.scoring.metrics import Metric

    binary = higher_is_better if binary is None else binary
    metric = Metric("m", higher_is_better=higher_is_better, binary=binary, unit="share of items",
                    high=1.0 if binary else math.inf)
    template = blank_result(capability="c", suite="s", metric="m", base_model="b", tuned_model="t")
    return decide(base, tuned, resolve_decision(tolerance=tolerance, policy=policy), metric=metric, template=template)


def test_underpowered_means_the_interval_straddles_the_tolerance() -> None:
    # 40 items, 6 right->wrong and 6 wrong->right: too few to tell a 5-point drop from none
    base = [1.0] * 6 + [0.0] * 6 + [1.0] * 28
    tuned = [0.0] * 6 + [1.0] * 6 + [1.0] * 28
    unclear = _decided(base, tuned, policy="significant")
    assert unclear.verdict == "pass" and unclear.mde > 0.05
    assert unclear.ci_low < -0.05 < unclear.ci_high and unclear.underpowered
    # a clear drop (interval wholly below -tolerance): conclusive, not underpowered
    drop = _decided([1.0] * 40, [0.0] * 20 + [1.0] * 20)
    assert drop.verdict == "fail" and drop.mde > 0.05 and drop.ci_high < -0.05 and not drop.underpowered


def test_a_large_uneven_gain_is_conclusive() -> None:
    """NLL (lower is better) falls on every item by varying amounts: a wide interval, far from the tolerance."""
    base = [4.0] * 40
    tuned = [4.0 - (0.5 + 3.0 * (i % 5)) for i in range(40)]
    result = _decided(base, tuned, higher_is_better=False)
    assert result.verdict == "pass" and result.mde > 0.05 and result.ci_high < 0.05
    assert not result.underpowered
