"""Statistics defects found by trying the tool as a new user would; each test failed before its fix."""

from __future__ import annotations

import json
import math

import pytest

from pytest_forgetting.comparison.assertions import failure_message
from pytest_forgetting.comparison.stats import paired_se
from pytest_forgetting.comparison.verdict import MIN_BOOTSTRAP_ITEMS, blank_result, decide, resolve_decision
from pytest_forgetting.scoring.metrics import ACC, NLL

ROWS = [{"id": f"q{i}", "question": f"What comes after {w}?", "choices": ["one", "two", "three", "four"],
         "answer": 0} for i, w in enumerate("one two three four five six seven eight nine ten hot cold".split())]


def _nll(base, tuned, **decision):
    return decide(base, tuned, resolve_decision(**{"tolerance": 0.05, **decision}), metric=NLL,
                  template=blank_result(capability="reviews", suite="s", metric="nll"))


# -- an alpha outside (0, 0.5) ---------------------------------------------------------------------------
ONE_CHECK = """
from pytest_forgetting import capability

@capability("counting"{marker})
def test_counting(forgetting):
    forgetting.compare(forgetting.suite({rows!r}, "multiple_choice"))
"""


def test_alpha_above_one_half_fails_at_start_up_in_one_line(pytester, tiny_models) -> None:
    pytester.makepyfile(test_one=ONE_CHECK.format(marker="", rows=ROWS))
    result = pytester.runpytest(f"--tuned-model={tiny_models['zero_adapter']}", "--forgetting-alpha", "0.6")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if line.strip()]
    assert line.startswith("ERROR: pytest-forgetting: --forgetting-alpha 0.6:")
    assert "expected a one-sided significance level between 0 and 0.5" in line
    pytester.makeini("[pytest]\nforgetting_alpha = 0.5\n")
    ini = pytester.runpytest(f"--tuned-model={tiny_models['zero_adapter']}")
    assert ini.ret == pytest.ExitCode.USAGE_ERROR and "Traceback" not in ini.stderr.str()
    ini.stderr.fnmatch_lines(["ERROR: pytest-forgetting: ini forgetting_alpha: alpha '0.5': expected *"])


def test_marker_alpha_above_one_half_fails_only_its_test(pytester, tiny_models) -> None:
    pytester.makepyfile(test_one=ONE_CHECK.format(marker=", alpha=0.6", rows=ROWS))
    result = pytester.runpytest(f"--tuned-model={tiny_models['zero_adapter']}")
    result.assert_outcomes(errors=1)  # at set-up, as any marker typo
    result.stdout.fnmatch_lines(["pytest-forgetting: test_one.py::test_counting: alpha 0.6: expected a one-sided significance level between 0 and 0.5*"])
    assert "Traceback" not in result.stdout.str() and "ValueError" not in result.stdout.str()


# -- the level an interval was computed at ---------------------------------------------------------------
def test_significant_policy_labels_the_level_it_used() -> None:
    base, tuned = [1.0] * 100, [0.0] * 30 + [1.0] * 70
    result = decide(base, tuned, resolve_decision(tolerance=0.05, policy="significant", family_size=4),
                    metric=ACC, template=blank_result(capability="knowledge", suite="s", metric="acc"))
    assert result.test_alpha == 0.0125 and result.level == "98.75%"
    assert "98.75% lower bound" in result.summary_line() and "95%" not in result.summary_line()
    assert "(ci_low decides, 98.75% one-sided)" in failure_message(result)
    alone = decide(base, tuned, resolve_decision(tolerance=0.05, policy="significant"), metric=ACC,
                   template=blank_result(capability="knowledge", suite="s", metric="acc"))
    assert alone.level == "95%" and alone.ci_low > result.ci_low  # the wider interval belongs to the lower alpha


# -- a paired bootstrap on too few items -----------------------------------------------------------------
@pytest.mark.parametrize("base, tuned", [([3.0], [3.01]), ([3.0, 2.0], [3.01, 2.01])])
def test_too_few_items_for_a_bootstrap_do_not_pass_a_drop(base, tuned) -> None:
    result = _nll(base, tuned)
    assert result.verdict == "fail" and result.ci_low == -math.inf and result.ci_high == math.inf
    assert f"too few for a paired bootstrap (it needs {MIN_BOOTSTRAP_ITEMS}); add items" in result.statistic
    assert result.underpowered
    significant = _nll(base, tuned, policy="significant")
    assert significant.verdict == "pass" and significant.underpowered  # nothing can be shown significant
    assert _nll(base, [b - 0.5 for b in base]).verdict == "pass"  # nothing got worse: passes at any n


def test_at_the_minimum_the_bootstrap_decides() -> None:
    base = [3.0 + 0.1 * i for i in range(MIN_BOOTSTRAP_ITEMS)]
    result = _nll(base, [b + 0.01 * (i % 3) for i, b in enumerate(base)])
    assert result.statistic.startswith("paired bootstrap") and result.verdict == "pass"


# -- drift takes the marker's and the command line's alpha -----------------------------------------------
DRIFT_CHECKS = """
from pytest_forgetting import capability

PROMPTS = [{{"prompt": f"Write note number {{i}} to a colleague."}} for i in range(12)]

@capability("writing"{marker})
def test_drift(forgetting):
    forgetting.drift(forgetting.suite(PROMPTS, "generation", scorer="no_forbidden", phrases=["WHEREAS"],
                                      max_new_tokens=4), max_kl=100.0)
"""


@pytest.mark.parametrize("marker, flag, expected", [(", alpha=0.01", None, 0.01), ("", "0.2", 0.2), ("", None, 0.05)])
def test_drift_uses_the_marker_and_command_line_alpha(pytester, tiny_models, marker, flag, expected) -> None:
    pytester.makepyfile(test_drift=DRIFT_CHECKS.format(marker=marker))
    report = pytester.path / "report"
    args = [f"--tuned-model={tiny_models['adapter']}", f"--forgetting-report={report}", "--no-forgetting-cache"]
    pytester.runpytest(*args, *([f"--forgetting-alpha={flag}"] if flag else [])).assert_outcomes(passed=1)
    (row,) = json.loads((report / "report.json").read_text())["results"]
    assert row["alpha"] == row["test_alpha"] == expected


# -- clusters for continuous metrics ---------------------------------------------------------------------
def test_clusters_widen_a_continuous_interval() -> None:
    clusters = [str(i // 5) for i in range(40)]  # 8 passages of 5 items that moved together
    base = [4.0] * 40
    tuned = [4.0 + (0.1 if int(c) % 2 else -0.08) + 0.001 * i for i, c in enumerate(clusters)]
    plain = _nll(base, tuned)
    template = blank_result(capability="reviews", suite="s", metric="nll", clusters=clusters)
    clustered = decide(base, tuned, resolve_decision(tolerance=0.05), metric=NLL, template=template)
    assert "8 clusters" in clustered.statistic and "clusters" not in plain.statistic
    assert clustered.se == pytest.approx(paired_se(base, tuned, clusters=clusters)) and clustered.se > 2 * plain.se
    assert clustered.ci_high - clustered.ci_low > 2 * (plain.ci_high - plain.ci_low)


def test_clusters_reach_a_text_suite(tiny_models) -> None:
    from pytest_forgetting import EvaluationSession, load_suite

    rows = [{"text": f"Note {i}: the quick brown fox jumps over the lazy dog.", "cluster": f"c{i % 4}"}
            for i in range(12)]
    result = EvaluationSession(candidates=[str(tiny_models["adapter"])]).compare(None, load_suite(rows, "text"))
    assert "4 clusters" in result.statistic


# -- report.json is strict JSON -----------------------------------------------------------------------------
def _reject(constant: str) -> None:
    raise ValueError(f"report.json holds {constant}, which is not JSON")


def test_report_json_is_strict_json(pytester, tiny_models) -> None:
    pytester.makepyfile(test_one="""
from pytest_forgetting import capability

@capability("one item")
def test_one_item(forgetting):
    forgetting.compare(forgetting.suite([{"question": "q", "choices": ["a", "b"], "answer": 0}], "multiple_choice"))

@capability("few texts")
def test_few_texts(forgetting):
    forgetting.compare(forgetting.suite([{"text": "a short note"}, {"text": "another note"}], "text"))
""")
    report = pytester.path / "report"
    pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", f"--forgetting-report={report}")
    data = json.loads((report / "report.json").read_text(), parse_constant=_reject)
    rows = {r["capability"]: r for r in data["results"]}
    assert rows["one item"]["se"] is None  # NaN for one item, written as null
    assert rows["few texts"]["ci_low"] is None and rows["few texts"]["ci_high"] is None


# -- NLL: the decision's item mean and the report's token-weighted perplexity, told apart --------------------
def test_nll_and_perplexity_are_labelled(pytester, tiny_models) -> None:
    texts = [{"text": ("word " * (1 + 3 * i)).strip()} for i in range(12)]
    pytester.makepyfile(test_nll=f"""
from pytest_forgetting import capability

@capability("text", tolerance=0.0)
def test_nll(forgetting):
    forgetting.check(forgetting.suite({texts!r}, "text"))
""")
    report = pytester.path / "report"
    result = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", f"--forgetting-report={report}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  perplexity * (token-weighted over all items; the decision uses nll, the mean "
                                 "over items)"])
    assert "the perplexity in report.json is token-weighted over all items" in (report / "report.md").read_text()
