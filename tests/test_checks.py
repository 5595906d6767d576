"""Checks declared as data: the checks file, seeded samples, and declared checks run from pytest tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_forgetting import load_suite
from pytest_forgetting.checks import Check, CheckSet, sample
from pytest_forgetting.errors import ForgettingError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_suites"
STARTER = ROOT / "pytest_forgetting" / "starter" / "data"


def test_the_example_checks_build_the_suites_the_example_tests_always_built():
    checks = CheckSet.from_file(EXAMPLES / "checks.toml")
    assert [c.name for c in checks.targets()] == ["contract review (reviews NLL)", "contract review"]
    assert "writing/drift" in [c.name for c in checks.general()]
    built = checks["arithmetic"].load()  # relative to the checks file, wherever the working directory is
    by_hand = load_suite(STARTER / "arithmetic.jsonl", "generation", fewshot=3, scorer="numeric",
                         max_new_tokens=5, stop=["\n"])
    assert built.fingerprint == by_hand.fingerprint  # the same items and settings: caches and baselines hold


def test_samples_are_seeded_the_same_every_time_and_kept_in_file_order():
    suite = load_suite(STARTER / "knowledge.jsonl", "multiple_choice")
    first, again, other = sample(suite, 20, seed=0), sample(suite, 20, seed=0), sample(suite, 20, seed=1)
    assert [i.id for i in first.items] == [i.id for i in again.items] and len(first) == 20
    assert [i.id for i in first.items] != [i.id for i in other.items]
    order = [i.id for i in suite.items]
    assert [order.index(i.id) for i in first.items] == sorted(order.index(i.id) for i in first.items)
    assert sample(suite, 10_000) is suite


@pytest.mark.parametrize("text, expected", [
    ("[[checks]]\ncapability = 'a'\nsuite = 'x.jsonl'\n", "missing kind"),
    ("[[checks]]\ncapability = 'a'\nsuite = 'x.jsonl'\nkind = 'text'\ntolerence = 0.1\n", "unknown keys tolerence"),
    ("[[checks]\n", "not valid TOML"),
    ("title = 'no checks'\n", "unknown top-level keys title"),
    ("include = []\n", "expected [[checks]] tables"),
    ("include = [3]\n", "expected a list of checks files"),
    ("include = ['checks.toml']\n", "includes itself"),
    ("include = ['missing.toml']\n", "missing.toml does not exist"),
    ("[[checks]]\ncapability = 'a'\nsuite = 'starter:knowlege'\nkind = 'multiple_choice'\n",
     "did you mean starter:knowledge?"),
    ("[[checks]]\ncapability = 'a'\nsuite = 'starter:knowledge'\nkind = 'lm_eval'\n", "not an lm-eval task"),
    ("[[checks]]\ncapability = 'a'\nsuite = 'x.jsonl'\nkind = 'text'\n" * 2, "two checks are named 'a'"),
    ("[[checks]]\ncapability = 'a'\nsuite = 'x.jsonl'\nkind = 'multiple_choice'\nmeasure = 'drift'\n",
     "use measure = \"compare\" here"),
])
def test_a_bad_checks_file_fails_in_one_line(tmp_path, text, expected):
    path = tmp_path / "checks.toml"
    path.write_text(text)
    with pytest.raises(ForgettingError) as refused:
        CheckSet.from_file(path)
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_starter_checks_are_included_and_replaced_by_name(tmp_path):
    (tmp_path / "data.jsonl").write_text('{"id": "a", "text": "Contracts bind the parties."}\n')
    (tmp_path / "checks.toml").write_text(
        'include = ["starter"]\n\n[[checks]]\ncapability = "arithmetic"\nsuite = "starter:arithmetic"\n'
        'kind = "generation"\ntolerance = 0.02\noptions = { fewshot = 3, scorer = "numeric", max_new_tokens = 5 }\n\n'
        '[[checks]]\ncapability = "contracts"\nsuite = "data.jsonl"\nkind = "text"\ntarget = true\n')
    checks = CheckSet.from_file(tmp_path / "checks.toml")
    starter = CheckSet.starter()
    assert [c.name for c in checks] == [c.name for c in starter] + ["contracts"]  # replaced in place
    assert checks["arithmetic"].tolerance == 0.02 and starter["arithmetic"].tolerance == 0.05
    assert checks["knowledge"].load().fingerprint == load_suite(STARTER / "knowledge.jsonl", "multiple_choice").fingerprint
    assert len(checks["contracts"].load()) == 1  # relative to the including file
    assert {c.name for c in starter.general()} == {"knowledge", "language", "arithmetic", "instructions",
                                                   "writing/drift"}
    for check in starter:  # every starter check builds its suite from the shipped data
        assert len(check.load()) >= 40, check.name


def test_selecting_checks_by_name_or_capability():
    checks = CheckSet.from_file(EXAMPLES / "checks.toml")
    assert [c.name for c in checks.select(["writing"])] == ["writing"]
    assert len(checks.select(["knowledge", "writing/drift"])) == 2
    with pytest.raises(ForgettingError, match="no check named 'knowlege'; declared: knowledge"):
        checks.select(["knowlege"])
    with pytest.raises(ForgettingError, match="samples=0: expected a positive number"):
        Check("k", "starter:knowledge", "multiple_choice").load(samples=0)


TESTS = '''
from pytest_forgetting.checks import CheckSet

CHECKS = CheckSet.beside(__file__)


@CHECKS.marker("general")
def test_general(forgetting):
    forgetting.run_check(CHECKS["general"])


@CHECKS.marker("domain")
def test_domain(forgetting):
    result = forgetting.run_check(CHECKS["domain"])
    assert result.is_target
'''


def test_declared_checks_in_pytest_a_target_drop_never_fails(pytester, tiny_models):
    data = pytester.path / "data"
    data.mkdir()
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    rows = [{"question": f"Q{i}: {words[i % 6]} or {words[(i + 2) % 6]}?", "choices": words[i % 3: i % 3 + 3],
             "answer": 0} for i in range(30)]
    (data / "mc.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    # every answer is the base's own choice: the base scores 1.0, and any item the adapter changes is forgotten
    from pytest_forgetting import EvaluationSession

    session = EvaluationSession(str(tiny_models["base"]), [str(tiny_models["adapter"])])
    records = session.scores("base", load_suite(data / "mc.jsonl", "multiple_choice")).records
    for row, record in zip(rows, records):
        row["answer"] = max(range(3), key=lambda k: record["loglikelihoods"][k])
    (data / "mc.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (pytester.path / "checks.toml").write_text(
        "[[checks]]\ncapability = 'general'\nsuite = 'data/mc.jsonl'\nkind = 'multiple_choice'\ntolerance = 0.01\n\n"
        "[[checks]]\ncapability = 'domain'\nsuite = 'data/mc.jsonl'\nkind = 'multiple_choice'\ntolerance = 0.01\n"
        "target = true\n")
    adapter = pytester.path / "adapter"
    shutil.copytree(tiny_models["adapter"], adapter)
    (adapter / "training.json").write_text(json.dumps({"learning_rate": 0.002, "steps": 60, "rehearsal_share": 0}))
    pytester.makepyfile(test_declared=TESTS)
    result = pytester.runpytest("--base-model", str(tiny_models["base"]), "--tuned-model", str(adapter),
                                "-p", "no:cacheprovider", "--capability", "general", "--capability", "domain")
    outcomes = result.parseoutcomes()
    text = result.stdout.str()
    # the random adapter changes answers: under a 1-point tolerance the general check cannot pass,
    # while the same drop on the target is reported and passes
    assert outcomes.get("failed") == 1 and outcomes.get("passed") == 1, text
    assert "test_general" in text.split("short test summary")[-1]
    assert "Hints from the run's own settings (run settings: learning rate 0.002, 60 steps" in text
    assert "rehearsal: no rehearsal data" in text
