"""Target capabilities and the checkpoint sweep: the recommendation, the last-held checkpoint, Holm, reports."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_forgetting import capability
from pytest_forgetting.comparison.assertions import assert_no_forgetting
from pytest_forgetting.comparison.verdict import blank_result
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import validate_marker_args
from pytest_forgetting.report.files import markdown
from pytest_forgetting.report.holm import apply_holm
from pytest_forgetting.report.sweep import pareto_front, plot_sweep, sweep_of
from pytest_forgetting.report.tables import verdict_text
from tests import tiny

ORDER = ["checkpoint-1", "checkpoint-2", "checkpoint-3"]


def result(candidate: str, name: str, delta: float, *, target: bool = False, tolerance: float = 0.05,
           **fields: Any):
    """A decided accuracy result: passes while the drop stays within the tolerance."""
    defaults = {"verdict": "pass" if delta >= -tolerance else "fail", "ci_low": delta - 0.03,
                "ci_high": delta + 0.03, "policy": "non-inferiority"}
    return blank_result(candidate=candidate, capability=name, metric="acc", base_score=0.5, tuned_score=0.5 + delta,
                        delta=delta, tolerance_abs=tolerance, n=100, extra={"target": True} if target else {},
                        **{**defaults, **fields})


def sweep_case() -> list:
    """Early: keeps, small gain. Middle: keeps, largest gain among keepers. Last: biggest gain, forgets."""
    return [
        result("checkpoint-1", "knowledge", -0.01), result("checkpoint-1", "contracts", 0.05, target=True),
        result("checkpoint-2", "knowledge", -0.02), result("checkpoint-2", "contracts", 0.15, target=True),
        result("checkpoint-3", "knowledge", -0.20), result("checkpoint-3", "contracts", 0.30, target=True),
    ]


def test_recommends_the_largest_target_gain_among_those_that_keep_everything() -> None:
    results = sweep_case()
    sweep = sweep_of(results[::-1], ORDER)  # the session's order wins over the results' order
    assert [row.candidate for row in sweep.rows] == ORDER
    assert sweep.targets == ["contracts"] and sweep.columns == ["contracts", "knowledge"]
    assert sweep.recommended == "checkpoint-2" and not sweep.none_passed
    assert sweep.last_held == "checkpoint-2"
    last = sweep.rows[2]
    assert not last.held and last.worst_loss == pytest.approx(0.20) and last.target_gain == pytest.approx(0.30)
    assert last.cells["knowledge"].text == "forgot" and last.cells["contracts"].text == "gained"
    lines = sweep.lines()
    assert lines[0].split() == ["candidate", "contracts", "(target)", "knowledge", "worst", "general", "loss",
                                "target", "gain"]
    assert "recommended: checkpoint-2: keeps every general capability, with the largest target gain (+0.150) " \
           "of the 2 of 3 candidates that do" in lines
    assert "last checkpoint at which every general capability still held: checkpoint-2" in lines
    text = markdown(results, order=ORDER)
    assert "### Checkpoint sweep" in text and "**Recommended:** checkpoint-2" in text
    assert "2 of 3 capabilities kept; 1 forgot." in text  # the targets are not counted as kept
    data = json.loads(json.dumps(sweep.to_dict(), allow_nan=False))
    assert data["recommended"] == "checkpoint-2" and data["candidates"][2]["cells"]["knowledge"]["held"] is False


def test_with_no_candidate_keeping_everything_the_least_bad_is_named_as_such() -> None:
    results = [result("checkpoint-1", "knowledge", -0.30), result("checkpoint-1", "math", -0.10),
               result("checkpoint-2", "knowledge", -0.12), result("checkpoint-2", "math", 0.02),
               result("checkpoint-3", "knowledge", -0.40), result("checkpoint-3", "math", -0.06)]
    sweep = sweep_of(results, ORDER)
    assert sweep.none_passed and sweep.recommended == "checkpoint-2"
    assert sweep.recommendation.startswith("no candidate kept every general capability; the least bad is "
                                           "checkpoint-2 (worst general loss 0.120)")
    assert sweep.last_held is None
    assert "still held: none: checkpoint-1, the first, already lost a general capability" in sweep.lines()[-1]


def test_last_held_is_the_one_before_the_first_loss_and_holm_counts() -> None:
    # checkpoint-2 passes its own test but Holm's correction fails it; checkpoint-3 holds again (noise)
    results = [result("checkpoint-1", "knowledge", 0.0), result("checkpoint-2", "knowledge", -0.04,
                                                                 holm_verdict="fail"),
               result("checkpoint-3", "knowledge", -0.01)]
    sweep = sweep_of(results, ORDER)
    assert [row.held for row in sweep.rows] == [True, False, True]
    assert sweep.last_held == "checkpoint-1"
    # no target capability: the last candidate in checkpoint order that keeps everything
    assert sweep.recommended == "checkpoint-3" and "no target capability" in sweep.recommendation
    assert sweep_of(results[:1], ORDER) is None  # one candidate: no sweep


def test_target_results_stay_out_of_holm_and_fail_no_test() -> None:
    def significant(name: str, p_value: float, **kw: Any):
        return result("a", name, -0.2, p_value=p_value, policy="significant", verdict="pass", **kw)

    general, target = significant("knowledge", 0.03), significant("contracts", 0.5, target=True)
    assert apply_holm([general, target]) == [general]  # with the target in the family, p would be 0.06
    assert general.holm_p == pytest.approx(0.03) and target.holm_p is None and not target.failed_by_holm
    dropped = result("a", "contracts", -0.2, target=True)
    assert dropped.verdict == "fail" and assert_no_forgetting(dropped) is dropped  # reported, not raised
    assert verdict_text(dropped) == "TARGET: DROPPED" and not dropped.kept
    assert verdict_text(result("a", "contracts", 0.1, target=True)) == "TARGET: GAINED"
    assert result("a", "contracts", 0.1, target=True).kept is False  # a target is never "kept"


def test_the_target_keyword_of_the_marker() -> None:
    marker = capability("contracts", target=True).mark
    assert marker.kwargs == {"target": True}
    assert validate_marker_args(marker.args, dict(marker.kwargs), where="t").target is True
    assert validate_marker_args(("math",), {}, where="t").target is False
    with pytest.raises(ForgettingError, match="t: target must be True or False.*got 'yes'"):
        validate_marker_args(("contracts",), {"target": "yes"}, where="t")


def test_a_target_alone_gets_a_notice_not_a_verdict(tmp_path: Path) -> None:
    results = [result(c, "contracts", gain, target=True) for c, gain in zip(ORDER, (0.1, 0.3, -0.1))]
    sweep = sweep_of(results, ORDER)
    (notice,) = sweep.notices
    assert notice.startswith("target capability contracts has no general capability beside it")
    assert sweep.recommended is None and "cannot judge forgetting" in sweep.recommendation
    assert "checkpoint-2's (+0.300)" in sweep.recommendation
    assert "No general capability was checked" in markdown(results, order=ORDER)
    assert plot_sweep(sweep, tmp_path / "alone.png").stat().st_size > 0


def test_pareto_front_and_plot(tmp_path: Path) -> None:
    points = [("a", 0.0, 0.05), ("b", 0.02, 0.15), ("c", 0.2, 0.3), ("d", 0.1, 0.1)]
    assert [p[0] for p in pareto_front(points)] == ["a", "b", "c"]  # d: b loses less and gains more
    assert plot_sweep(sweep_of(sweep_case(), ORDER), tmp_path / "sweep.png").stat().st_size > 0
    assert math.isclose(sweep_of(sweep_case(), ORDER).rows[0].target_gain, 0.05)


# -- end to end: three tiny LoRA checkpoints, one target and one general capability ------------------------

QUESTIONS = [f"What comes after {word}?" for word in (
    "one two three four five six seven eight nine ten hot cold big small up down left right fast slow "
    "happy sad Paris Berlin Rome Madrid Tokyo London river city"
).split()]

CONFTEST = """
import json
from pytest_forgetting.plugin import session_of

def pytest_unconfigure(config):
    session = session_of(config)
    with open("runs.json", "w") as f:
        json.dump(dict(session.runs), f)
"""

SUITE_TESTS = """
from pytest_forgetting import capability

@capability("knowledge", tolerance=0.05)
def test_knowledge(forgetting):
    forgetting.check(forgetting.suite({general!r}, "multiple_choice"))

@capability("contracts", tolerance=0.05, target=True)
def test_contracts(forgetting):
    forgetting.check(forgetting.suite({target!r}, "multiple_choice"))

@capability("style", tolerance=0.05, target=True)
def test_style(forgetting):
    forgetting.check(forgetting.suite({dropping!r}, "multiple_choice"))
"""


@pytest.fixture(scope="module")
def sweep_folder(tiny_models, tmp_path_factory) -> tuple[Path, list[Path]]:
    """``ckpts/checkpoint-1..3`` (the first changes nothing) and three suites: a general one labelled by
    the base, a target labelled by checkpoint-3 (the last checkpoint gains where training aims), and a
    target labelled by the base (where the adapters drop: reported, failing no test)."""
    from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair, score_suite

    root = tmp_path_factory.mktemp("sweep")
    folder = root / "ckpts"
    shutil.copytree(tiny_models["zero_adapter"], folder / "checkpoint-1")
    shutil.copytree(tiny_models["adapter"], folder / "checkpoint-2")
    tiny.build_lora(folder / "checkpoint-3", tiny_models["base"], seed=9)
    base_spec, last_spec = resolve_pair(str(folder / "checkpoint-3"), None, LoadOptions())
    base = load_model(base_spec, LoadOptions(), None)
    paths = []
    for name, choices, model in (("knowledge", ["one", "two", "three", "four"], base),
                                 ("contracts", ["two", "three", "four", "one"], None),
                                 ("style", ["three", "one", "four", "two"], base)):
        rows = [{"id": f"q{i}", "question": q, "choices": choices, "answer": 0} for i, q in enumerate(QUESTIONS)]
        model = model or load_model(last_spec, LoadOptions(), base)
        for row, record in zip(rows, score_suite(model, load_suite(rows, "multiple_choice")).records):
            row["answer"] = record["pred"]
        paths.append(root / f"{name}.jsonl")
        paths[-1].write_text("\n".join(json.dumps(r) for r in rows))
    return folder, paths


def test_a_sweep_of_three_checkpoints_end_to_end(pytester, sweep_folder, monkeypatch) -> None:
    folder, (general, target, dropping) = sweep_folder
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_checks=SUITE_TESTS.format(general=str(general), target=str(target),
                                                       dropping=str(dropping)))
    report = pytester.path / "report"
    result = pytester.runpytest("--tuned-model", f"{folder}/checkpoint-*", "--forgetting-report", str(report),
                                "--no-forgetting-cache", "-p", "no:randomly")
    # a target never fails a test, even where it dropped; the general capability fails where it was forgotten
    result.assert_outcomes(passed=7, failed=2)
    assert json.loads((pytester.path / "runs.json").read_text()) == {
        "base": 3, "checkpoint-1": 3, "checkpoint-2": 3, "checkpoint-3": 3}  # the base scored once per suite
    result.stdout.fnmatch_lines(["checkpoint-2*style*TARGET: DROPPED", "*- checkpoint sweep -*",
                                 "candidate*knowledge*contracts (target)*style (target)*",
                                 "checkpoint-1 *held*", "checkpoint-3 *forgot*gained*dropped*",
                                 "recommended: checkpoint-1: *",
                                 "last checkpoint at which every general capability still held: checkpoint-1"])
    data = json.loads((report / "report.json").read_text())
    sweep = data["sweep"]
    assert sweep["recommended"] in data["models"]["candidates"] and sweep["recommended"] == "checkpoint-1"
    assert [row["candidate"] for row in sweep["candidates"]] == ORDER
    assert sweep["targets"] == ["contracts", "style"] and not sweep["notices"]
    assert sweep["candidates"][2]["cells"]["contracts"]["delta"] > 0  # the last gains on its own labels, but forgot
    assert all(r["extra"].get("target") is True for r in data["results"] if r["capability"] != "knowledge")
    assert "### Checkpoint sweep" in (report / "report.md").read_text()
    assert "**Recommended:** checkpoint-1" in summary.read_text()
    assert (report / "sweep.png").stat().st_size > 0 and (report / "plot.png").exists()
