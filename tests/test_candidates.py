"""Several candidates in one run: test ids per candidate, the base scored once, reports naming each."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair, score_suite
from tests import tiny

QUESTIONS = [f"What comes after {word}?" for word in (
    "one two three four five six seven eight nine ten hot cold big small up down left right fast slow "
    "happy sad Paris Berlin Rome Madrid Tokyo London river city"
).split()]

COUNTING_CONFTEST = """
import json
import transformers
from pytest_forgetting.plugin import session_of

_original = transformers.AutoModelForCausalLM.from_pretrained.__func__
loads = []

def _counting(cls, *args, **kwargs):
    loads.append(str(args[0]))
    return _original(cls, *args, **kwargs)

def pytest_configure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_counting)

def pytest_unconfigure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_original)
    session = session_of(config)
    with open("counts.json", "w") as f:
        json.dump({"runs": dict(session.runs), "from_pretrained": len(loads),
                   "labels": [slot.label for slot in session.candidates]}, f)
"""

CHECKS = """
from pytest_forgetting import capability

@capability("knowledge", tolerance=0.05)
def test_knowledge(forgetting):
    forgetting.check(forgetting.suite({suite!r}, "multiple_choice"))

@capability("knowledge (short)", tolerance=0.05)
def test_short(forgetting):
    forgetting.check(forgetting.suite({suite!r}, "multiple_choice", limit=12))
"""


@pytest.fixture(scope="module")
def self_labelled(tiny_models, tmp_path_factory) -> Path:
    """A suite labelled with the base's own answers (base accuracy 1.0)."""
    rows = [{"id": f"q{i}", "question": q, "choices": ["one", "two", "three", "four"], "answer": 0}
            for i, q in enumerate(QUESTIONS)]
    base_spec, _ = resolve_pair(str(tiny_models["adapter"]), None, LoadOptions())
    scores = score_suite(load_model(base_spec, LoadOptions(), None), load_suite(rows, "multiple_choice"))
    for row, record in zip(rows, scores.records):
        row["answer"] = record["pred"]
    path = tmp_path_factory.mktemp("candidates") / "knowledge.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.fixture(scope="module")
def second_random(tiny_models, tmp_path_factory) -> Path:
    return tiny.build_lora(tmp_path_factory.mktemp("second") / "second", tiny_models["base"], seed=9)


def _run(pytester, suite, *candidates, extra=()):
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(test_checks=CHECKS.format(suite=str(suite)))
    xml_path, report = pytester.path / "junit.xml", pytester.path / "report"
    args = [f"--tuned-model={c}" for c in candidates]
    result = pytester.runpytest(*args, "--no-forgetting-cache", f"--junitxml={xml_path}",
                                f"--forgetting-report={report}", *extra)
    counts = json.loads((pytester.path / "counts.json").read_text())
    return result, counts, ET.parse(xml_path).getroot(), json.loads((report / "report.json").read_text())


def _outcomes(xml_root: ET.Element) -> dict[str, str]:
    return {case.get("name"): "failed" if case.find("failure") is not None else "passed"
            for case in xml_root.iter("testcase")}


def test_two_candidates_each_get_their_own_test_ids_and_verdicts(pytester, tiny_models, self_labelled) -> None:
    result, counts, xml_root, report = _run(pytester, self_labelled, tiny_models["zero_adapter"],
                                            tiny_models["adapter"])
    result.assert_outcomes(passed=2, failed=2)
    assert _outcomes(xml_root) == {"test_knowledge[zero-adapter]": "passed", "test_short[zero-adapter]": "passed",
                                   "test_knowledge[adapter]": "failed", "test_short[adapter]": "failed"}
    assert counts["runs"] == {"base": 2, "zero-adapter": 2, "adapter": 2}  # each suite once per model
    assert counts["from_pretrained"] == 1  # both adapters share the base's weights
    result.stdout.fnmatch_lines(["candidate*capability*metric*verdict",
                                 "zero-adapter*knowledge*acc*PASS*", "adapter*knowledge*acc*FAIL"])
    rows = {(r["candidate"], r["capability"]): r for r in report["results"]}
    assert rows[("zero-adapter", "knowledge")]["delta"] == 0.0 and rows[("adapter", "knowledge")]["verdict"] == "fail"
    assert set(report["models"]["candidates"]) == {"zero-adapter", "adapter"} and "tuned" not in report["models"]
    for case in xml_root.iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties["candidate"] == case.get("name").split("[")[1].rstrip("]")
    assert "| candidate | capability |" in (pytester.path / "report" / "report.md").read_text()


def test_three_candidates_score_the_base_once(pytester, tiny_models, self_labelled, second_random) -> None:
    result, counts, xml_root, _ = _run(pytester, self_labelled, tiny_models["adapter"], tiny_models["zero_adapter"],
                                       second_random)
    assert counts["labels"] == ["adapter", "zero-adapter", "second"]
    assert counts["runs"] == {"base": 2, "adapter": 2, "zero-adapter": 2, "second": 2}
    assert counts["from_pretrained"] == 1
    outcomes = _outcomes(xml_root)
    assert {name for name, outcome in outcomes.items() if outcome == "passed"} == {
        "test_knowledge[zero-adapter]", "test_short[zero-adapter]"}  # the others forget, each on its own ids
    assert len(outcomes) == 6


def test_one_candidate_keeps_the_single_model_output(pytester, tiny_models, self_labelled) -> None:
    result, counts, xml_root, report = _run(pytester, self_labelled, tiny_models["zero_adapter"])
    result.assert_outcomes(passed=2)
    assert set(_outcomes(xml_root)) == {"test_knowledge", "test_short"}  # no candidate in the ids
    result.stdout.fnmatch_lines(["capability*metric*n*base*tuned*verdict"])
    assert "candidate" not in result.stdout.str().split("= forgetting =")[1].splitlines()[1]
    assert set(report["models"]) == {"base", "tuned"}
    properties = {p.get("name") for p in xml_root.iter("property")}
    assert "candidate" not in properties


def _checkpoints(root: Path, tiny_models) -> Path:
    out = root / "out"
    for step, adapter in ((10, "adapter"), (5, "zero_adapter")):
        shutil.copytree(tiny_models[adapter], out / f"checkpoint-{step}")
    (out / "logs").mkdir()  # not a model: left out
    return out


@pytest.mark.parametrize("form", ["glob", "folder"])
def test_a_folder_or_glob_of_checkpoints(pytester, tiny_models, self_labelled, form) -> None:
    out = _checkpoints(pytester.path, tiny_models)
    spec = "out/checkpoint-*" if form == "glob" else "out"
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(test_checks=CHECKS.format(suite=str(self_labelled)))
    result = pytester.runpytest(f"--tuned-model={spec}", "--no-forgetting-cache", "-v")
    result.assert_outcomes(passed=2, failed=2)
    assert json.loads((pytester.path / "counts.json").read_text())["labels"] == ["checkpoint-5", "checkpoint-10"]
    result.stdout.fnmatch_lines(["*test_knowledge?checkpoint-5? PASSED*", "*test_knowledge?checkpoint-10? FAILED*"])
    assert out.exists()


def test_candidates_from_the_ini_file(pytester, tiny_models, self_labelled) -> None:
    _checkpoints(pytester.path, tiny_models)
    pytester.makeini("[pytest]\nforgetting_tuned_model = out/checkpoint-5 out/checkpoint-10\n")
    pytester.makepyfile(test_checks=CHECKS.format(suite=str(self_labelled)))
    result = pytester.runpytest("--no-forgetting-cache", "-v")
    result.stdout.fnmatch_lines(["*test_knowledge?checkpoint-5? PASSED*", "*test_knowledge?checkpoint-10? FAILED*"])


def test_bad_candidate_lists_fail_at_start_up_in_one_line(pytester, tiny_models, tmp_path) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    for args, expected in (
        (["--tuned-model=out/checkpoint-*"], "--tuned-model out/checkpoint-*: matches no folder"),
        ([f"--tuned-model={tiny_models['adapter']}", f"--tuned-model={tiny_models['adapter']}"], "given twice"),
        ([f"--tuned-model={tiny_models['adapter']}", f"--tuned-model={tiny_models['full']}"],
         "is a full checkpoint, which names no base"),
    ):
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        (line,) = [line for line in result.stderr.lines if line.startswith("ERROR: pytest-forgetting:")]
        assert expected in line, line


def test_adapters_naming_different_bases_need_one_base(pytester, tiny_models, tmp_path) -> None:
    other_base = tiny.build_llama(tmp_path / "other-base", seed=3, tokenizer_from=tiny_models["base"])
    other = tiny.build_lora(tmp_path / "other", other_base)
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", f"--tuned-model={other}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-forgetting: --tuned-model: the candidates name different base "
                                 "models (*); pass --base-model PATH*"])


def test_holm_runs_per_candidate() -> None:
    from pytest_forgetting.comparison.verdict import blank_result
    from pytest_forgetting.report.holm import apply_holm

    def result(candidate: str, capability: str, p_value: float):
        return blank_result(candidate=candidate, capability=capability, policy="significant", p_value=p_value,
                            verdict="pass", delta=-0.2, tolerance_abs=0.05, alpha=0.05, family_size=2)

    results = [result("a", "x", 0.02), result("a", "y", 0.5), result("b", "x", 0.04), result("b", "y", 0.03)]
    failures = apply_holm(results)
    assert [r.holm_p for r in results] == pytest.approx([0.04, 0.5, 0.06, 0.06])  # m = 2 per candidate, not 4
    assert [(r.candidate, r.capability) for r in failures] == [("a", "x")]


def test_candidates_under_xdist(pytester, tiny_models, self_labelled) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_checks=CHECKS.format(suite=str(self_labelled)))
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess("-n", "2", f"--tuned-model={tiny_models['zero_adapter']}",
                                           f"--tuned-model={tiny_models['adapter']}", "--no-forgetting-cache",
                                           f"--forgetting-report={report}")
    result.assert_outcomes(passed=2, failed=2)
    rows = json.loads((report / "report.json").read_text())["results"]
    assert sorted((r["candidate"], r["capability"], r["verdict"]) for r in rows) == [
        ("adapter", "knowledge", "fail"), ("adapter", "knowledge (short)", "fail"),
        ("zero-adapter", "knowledge", "pass"), ("zero-adapter", "knowledge (short)", "pass")]
    result.stdout.fnmatch_lines(["candidate*capability*verdict"])
