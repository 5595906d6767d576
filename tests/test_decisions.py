"""Decisions end to end: the function form, policies, tolerance resolution, Holm across the
session (exit code, JUnit, xdist), re-decided results in the reports, and the non-inferiority
rule's false-failure rate on models of identical quality."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair
from pytest_forgetting.comparison.verdict import ComparisonResult, blank_result, decide, resolve_decision
from pytest_forgetting.scoring.metrics import ACC, NLL

CHOICES = ["one", "two", "three", "four"]
ROWS = [{"id": f"q{i}", "question": f"What comes after {w}?", "choices": CHOICES, "answer": i % 4}
        for i, w in enumerate("one two three four five six seven eight nine ten hot cold big small up down".split())]


def _template(**fields) -> ComparisonResult:
    return blank_result(**{"capability": "c", "suite": "s", "metric": "acc", **fields})


def test_function_form_is_importable_and_compares_two_handles(tiny_models) -> None:
    from pytest_forgetting import compare

    assert callable(compare) and compare.__module__ == "pytest_forgetting.comparison.run"
    options = LoadOptions()
    base_spec, tuned_spec = resolve_pair(str(tiny_models["adapter"]), None, options)
    base = load_model(base_spec, options, None)
    tuned = load_model(tuned_spec, options, base)
    suite = load_suite(ROWS, "multiple_choice", name="counting")
    same = compare(base, base, suite, capability="counting")
    assert same.delta == 0.0 and same.verdict == "pass" and same.n == len(ROWS)
    assert same.capability == "counting" and same.policy == "non-inferiority" and same.tolerance_abs == 0.02
    other = compare(base, tuned, suite, tolerance=0.0, policy="significant")
    assert other.policy == "significant" and other.tolerance_abs == 0.0
    assert other.forgotten + other.gained > 0  # the random adapter changes answers
    assert len(other.records) == len(ROWS) and {"base_answer", "tuned_answer", "expected"} <= set(other.records[0])


def test_relative_tolerance_is_a_share_of_the_base_score() -> None:
    base = [1.0] * 60 + [0.0] * 40  # base score 0.6
    result = decide(base, list(base), resolve_decision(tolerance="5%"), metric=ACC, template=_template())
    assert result.base_score == pytest.approx(0.6)
    assert result.tolerance == "5%" and result.tolerance_abs == pytest.approx(0.03)


def _identical_quality_failure_rate(n: int, runs: int, seed: int = 1234) -> float:
    """Share of ``runs`` suites of ``n`` items on which non-inferiority (tolerance 0.05) fails
    two models of equal accuracy that disagree on 10% of items, 5% each way."""
    rng = random.Random(seed)
    failures = 0
    for _ in range(runs):
        base, tuned = [], []
        for _ in range(n):  # (base, tuned) per item: 5% forgotten, 5% gained, 63% both right
            u = rng.random()
            pair = (1.0, 0.0) if u < 0.05 else (0.0, 1.0) if u < 0.10 else (1.0, 1.0) if u < 0.73 else (0.0, 0.0)
            base.append(pair[0])
            tuned.append(pair[1])
        result = decide(base, tuned, resolve_decision(tolerance=0.05), metric=ACC, template=_template())
        failures += result.verdict == "fail"
    return failures / runs


def test_non_inferiority_false_failure_rate_on_identical_quality_models() -> None:
    """Non-inferiority fails equal-quality models only when the lower bound dips below the
    tolerance by chance: at most alpha of the time when the suite has 1 - alpha power at the
    tolerance (1,000 items here), and 1 - power of the time in general (about 20% for a suite
    whose reported 80%-power MDE equals the tolerance: 246 items). Through ``decide``, i.e.
    the Tango interval the plugin uses."""
    from pytest_forgetting.comparison.stats import minimum_detectable_drop

    alpha, runs = 0.05, 400
    assert minimum_detectable_drop(1000, 0.10, alpha, power=1 - alpha) < 0.05
    assert _identical_quality_failure_rate(1000, runs) <= alpha + 3 * (alpha * (1 - alpha) / runs) ** 0.5
    assert minimum_detectable_drop(246, 0.10, alpha) == pytest.approx(0.05, abs=0.001)
    assert 0.12 < _identical_quality_failure_rate(246, runs, seed=99) < 0.28


RECORDING_CONFTEST = """
import pytest
from pytest_forgetting.comparison.verdict import blank_result, decide
from pytest_forgetting.scoring.metrics import ACC

def counts(n, forgotten, gained):
    base = [1.0] * forgotten + [0.0] * gained + [1.0] * (n - forgotten - gained)
    tuned = [0.0] * forgotten + [1.0] * gained + [1.0] * (n - forgotten - gained)
    return base, tuned

@pytest.fixture
def record_counts(forgetting):
    def record(n, forgotten, gained, **decision):
        template = blank_result(capability=forgetting.capability.name, suite="s", metric="acc")
        result = decide(*counts(n, forgotten, gained), forgetting.decision(**decision), metric=ACC,
                        template=template)
        return forgetting.record(result)
    return record
"""

# a: many items, a small drop (inside tolerance) that is very significant;
# b: a 6-point drop with McNemar mid-p 0.033: above alpha/2 (Bonferroni passes), below alpha for Holm.
HOLM_TESTS = """
from pytest_forgetting import capability

@capability("a", policy="significant", tolerance=0.05)
def test_a(record_counts):
    result = record_counts(2000, 30, 5)
    assert result.passed and result.p_value < 1e-4

@capability("b", policy="significant", tolerance=0.05)
def test_b(record_counts):
    result = record_counts(100, 8, 2)
    assert 0.025 < result.p_value < 0.05
    assert result.passed, "passes at alpha/2"
"""


def _holm_case(xml_path: Path) -> ET.Element:
    cases = {c.get("name"): c for c in ET.parse(xml_path).getroot().iter("testcase")}
    assert {"test_a", "test_b", "holm[b]"} <= set(cases)
    assert cases["test_a"].find("failure") is None and cases["test_b"].find("failure") is None
    return cases["holm[b]"]


def test_holm_fails_a_capability_the_per_test_check_passed(pytester, tiny_models) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_holm=HOLM_TESTS)
    xml_path = pytester.path / "junit.xml"
    result = pytester.runpytest("--tuned-model", str(tiny_models["zero_adapter"]), f"--junitxml={xml_path}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["b *acc*FAIL (Holm)*", "Holm correction across capabilities fails: b*"])
    case = _holm_case(xml_path)
    assert case.find("failure").get("message").startswith("FAIL b (Holm): acc")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["verdict"] == "fail" and properties["policy"] == "significant"
    assert float(properties["p_holm"]) == pytest.approx(float(properties["p_value"]))


def test_holm_family_is_the_selected_tests(pytester, tiny_models) -> None:
    """With -k selecting test_b alone, the family has one member: b fails its own check."""
    pytester.makeconftest(RECORDING_CONFTEST.replace('assert result.passed, "passes at alpha/2"', ""))
    pytester.makepyfile(test_holm=HOLM_TESTS.replace('    assert result.passed, "passes at alpha/2"\n',
                                                     '    assert result.family_size == 1 and not result.passed\n'))
    result = pytester.runpytest("--tuned-model", str(tiny_models["zero_adapter"]), "-k", "test_b")
    result.assert_outcomes(passed=1, deselected=1)
    assert "Holm correction" not in result.stdout.str()


def test_holm_and_junit_properties_under_xdist(pytester, tiny_models) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_holm=HOLM_TESTS)
    xml_path = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-n", "2", "--tuned-model", str(tiny_models["zero_adapter"]),
                                           f"--junitxml={xml_path}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    case = _holm_case(xml_path)
    assert case.find("failure").get("message").startswith("FAIL b (Holm)")
    cases = {c.get("name"): c for c in ET.parse(xml_path).getroot().iter("testcase")}
    worker_props = {p.get("name"): p.get("value") for p in cases["test_a"].iter("property")}
    assert worker_props["capability"] == "a" and worker_props["verdict"] == "pass" and worker_props["n"] == "2000"


POLICY_TESTS = """
from pytest_forgetting import capability

@capability("session_default")
def test_default(record_counts):
    record_counts(200, 4, 4)

@capability("marker_wins", policy="non-inferiority", tolerance=0.0)
def test_marker(record_counts):
    record_counts(200, 4, 4)
"""


def test_policy_and_tolerance_from_the_command_line_and_the_marker(pytester, tiny_models) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_policy=POLICY_TESTS)
    report = pytester.path / "out"
    result = pytester.runpytest("--tuned-model", str(tiny_models["zero_adapter"]), "--forgetting-policy",
                                "significant", "--forgetting-tolerance", "10%", "--forgetting-report", str(report))
    result.assert_outcomes(passed=2)
    rows = {r["capability"]: r for r in json.loads((report / "report.json").read_text())["results"]}
    assert rows["session_default"]["policy"] == "significant" and rows["session_default"]["tolerance"] == "10%"
    assert rows["session_default"]["tolerance_abs"] == pytest.approx(0.1 * rows["session_default"]["base_score"])
    assert rows["marker_wins"]["policy"] == "non-inferiority" and rows["marker_wins"]["tolerance_abs"] == 0.0


def test_reports_show_the_tolerance_the_helper_decided_with(pytester, tiny_models) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_override="""
from pytest_forgetting import assert_no_forgetting, capability

@capability("k", tolerance=0.0)
def test_override(record_counts):
    result = record_counts(100, 10, 0)
    assert result.verdict == "fail"
    assert_no_forgetting(result, tolerance=0.5)
""")
    xml_path, report = pytester.path / "junit.xml", pytester.path / "out"
    result = pytester.runpytest("--tuned-model", str(tiny_models["zero_adapter"]), f"--junitxml={xml_path}",
                                "--forgetting-report", str(report))
    result.assert_outcomes(passed=1)
    (row,) = json.loads((report / "report.json").read_text())["results"]
    assert row["verdict"] == "pass" and row["tolerance_abs"] == 0.5
    properties = {p.get("name"): p.get("value") for p in ET.parse(xml_path).getroot().iter("property")}
    assert properties["verdict"] == "pass" and properties["tolerance"] == "0.5"
    result.stdout.fnmatch_lines(["k *acc*PASS*"])


def test_underpowered_suite_is_flagged_in_every_report(pytester, tiny_models) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_small="""
from pytest_forgetting import capability

@capability("small", tolerance=0.05)
def test_small(record_counts):
    result = record_counts(40, 6, 6)
    assert result.verdict == "fail" and result.underpowered and result.mde > 0.05
""")
    report = pytester.path / "out"
    result = pytester.runpytest("--tuned-model", str(tiny_models["zero_adapter"]), "--forgetting-report", str(report))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["small *FAIL (underpowered)"])
    assert "Underpowered (add items to detect the tolerance): small." in (report / "report.md").read_text()


def test_results_carry_the_paired_standard_error() -> None:
    base = [1.0] * 6 + [0.0] * 2 + [1.0] * 32  # 6 forgotten, 2 gained, n = 40
    tuned = [0.0] * 6 + [1.0] * 2 + [1.0] * 32
    result = decide(base, tuned, resolve_decision(), metric=ACC, template=_template())
    delta = (2 - 6) / 40
    assert result.se == pytest.approx((((6 + 2) / 40 - delta**2) / 39) ** 0.5)  # RESEARCH.md section 2
    nll = decide([4.0, 3.0, 5.0], [3.0, 3.5, 4.0], resolve_decision(), metric=NLL, template=_template(metric="nll"))
    assert nll.se == pytest.approx(0.5) and nll.to_dict()["se"] == nll.se  # sd of (-1, 0.5, -1) / sqrt(3)


def test_reports_without_matplotlib_skip_only_the_plot(pytester, tiny_models, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_one="""
from pytest_forgetting import capability

@capability("k")
def test_one(record_counts):
    record_counts(50, 0, 0)
""")
    report = pytester.path / "out"
    result = pytester.runpytest("--tuned-model", str(tiny_models["zero_adapter"]), "--forgetting-report", str(report))
    result.assert_outcomes(passed=1)
    assert sorted(p.name for p in report.iterdir()) == ["report.json", "report.md"]
    result.stdout.fnmatch_lines(["reports written to * (report.json, report.md)",
                                 "no plot.png: install the plot extra*"])
