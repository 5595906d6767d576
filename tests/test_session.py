"""The evaluation session without pytest: a script drives it and gets the results the plugin reports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_forgetting import EvaluationSession, load_suite
from pytest_forgetting.errors import ForgettingError

ROWS = [{"id": f"q{i}", "question": f"What comes after {w}?", "choices": ["one", "two", "three", "four"],
         "answer": i % 4} for i, w in enumerate(
    "one two three four five six seven eight nine ten hot cold big small up down left right".split())]

SCRIPT = """
import json, sys
from pytest_forgetting import EvaluationSession, load_suite

session = EvaluationSession(candidates=[{adapter!r}])
suite = load_suite({suite!r}, "multiple_choice")
result = session.compare(None, suite, capability="knowledge", tolerance=0.05)
again = session.compare(session.candidates[0], suite, capability="knowledge", tolerance=0.05)
print(json.dumps({{
    "result": result.to_dict(), "runs": dict(session.runs), "n_results": len(session.results),
    "same_numbers": again.to_dict() == result.to_dict(),
    "pytest_imported": sorted(m for m in sys.modules if m == "pytest" or m.startswith("_pytest")),
}}))
"""

CHECK_FILE = """
from pytest_forgetting import capability

@capability("knowledge", tolerance=0.05)
def test_knowledge(forgetting):
    forgetting.compare(forgetting.suite({suite!r}, "multiple_choice"))
"""


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("session-suite") / "knowledge.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in ROWS))
    return path


def test_a_script_gets_the_result_the_plugin_reports(pytester: pytest.Pytester, tiny_models, suite_file) -> None:
    script = SCRIPT.format(adapter=str(tiny_models["adapter"]), suite=str(suite_file))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["pytest_imported"] == []  # the engine runs without pytest
    assert out["runs"] == {"base": 1, "adapter": 1}  # scored once each, the second compare from the memo
    assert out["n_results"] == 2 and out["same_numbers"]
    scripted = out["result"]

    pytester.makepyfile(test_knowledge=CHECK_FILE.format(suite=str(suite_file)))
    report = pytester.path / "report"
    pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", f"--forgetting-report={report}",
                       "--no-forgetting-cache").assert_outcomes(passed=1)
    (reported,) = json.loads((report / "report.json").read_text())["results"]
    assert reported["test"] == "test_knowledge.py::test_knowledge" and scripted["test"] == ""
    reported["test"] = ""
    assert reported == scripted  # the same result, field for field


def test_memo_keys_on_the_model_identity_and_the_suite(tiny_models, tmp_path) -> None:
    session = EvaluationSession(candidates={"same": str(tiny_models["zero_adapter"]),
                                            "other": str(tiny_models["adapter"])})
    suite = load_suite(ROWS, "multiple_choice", name="counting")
    same, other = session.compare("same", suite), session.compare("other", suite)
    assert session.runs == {"base": 1, "same": 1, "other": 1}
    assert same.delta == 0.0 and same.candidate == "same" and other.candidate == "other"
    assert other.forgotten + other.gained > 0  # the random adapter's own scores, not the first candidate's
    shorter = load_suite(ROWS[:12], "multiple_choice", name="counting")
    session.compare("same", shorter)
    assert session.runs["base"] == 2  # another suite is scored anew
    assert [r.candidate for r in session.results_of("same")] == ["same", "same"]


def test_a_warm_cache_loads_no_model(tiny_models, tmp_path) -> None:
    suite = load_suite(ROWS, "multiple_choice", name="counting")
    cold = EvaluationSession(candidates=[str(tiny_models["adapter"])], cache=tmp_path / "cache")
    first = cold.compare(None, suite)
    assert cold.stored.stats.scored == 2 * len(ROWS)
    warm = EvaluationSession(candidates=[str(tiny_models["adapter"])], cache=tmp_path / "cache")
    second = warm.compare(None, suite)
    assert not warm.base.loaded and not warm.candidates[0].loaded and warm.runs == {}
    assert warm.stored.stats.hits == 2 * len(ROWS) and second.to_dict() == first.to_dict()


def test_backends_handed_in_directly(tiny_models) -> None:
    """A training loop holds its models already: the session takes backends."""
    from pytest_forgetting import LoadOptions, load_model, resolve_pair

    base_spec, tuned_spec = resolve_pair(str(tiny_models["adapter"]), None, LoadOptions())
    base = load_model(base_spec, LoadOptions(), None)
    tuned = load_model(tuned_spec, LoadOptions(), base)
    session = EvaluationSession(base, {"live": tuned})
    result = session.compare("live", load_suite(ROWS, "multiple_choice"))
    assert result.candidate == "live" and result.tuned_model == tuned.name and result.n == len(ROWS)
    assert session.candidate("live").loaded and session.candidates[0].loads == 0  # handed in, not loaded


def test_bad_session_input_is_one_line(tiny_models) -> None:
    with pytest.raises(ForgettingError, match="no candidates; give at least one tuned model"):
        EvaluationSession(str(tiny_models["base"]), [])
    with pytest.raises(ForgettingError, match="is a full checkpoint, which names no base"):
        EvaluationSession(None, [str(tiny_models["full"])])
    with pytest.raises(ForgettingError, match="'base' names the base model; label the candidate otherwise"):
        EvaluationSession(str(tiny_models["base"]), {"base": str(tiny_models["adapter"])})
    session = EvaluationSession(candidates=[str(tiny_models["adapter"])])
    with pytest.raises(ForgettingError, match="no candidate 'nope'; this session compares: adapter"):
        session.candidate("nope")
    with pytest.raises(ForgettingError) as info:
        session.compare(None, load_suite(ROWS, "multiple_choice"), alpha=0.7)
    assert "alpha 0.7: expected a one-sided significance level between 0 and 0.5" in str(info.value)
    assert "\n" not in str(info.value) and session.runs == {}  # refused before anything was scored


def test_the_core_imports_without_pytest() -> None:
    code = textwrap.dedent("""
        import sys
        import pytest_forgetting, pytest_forgetting.engine.session, pytest_forgetting.engine.scoring
        import pytest_forgetting.comparison.run, pytest_forgetting.report.files
        print(sorted(m for m in sys.modules if m == "pytest" or m.startswith("_pytest")))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
