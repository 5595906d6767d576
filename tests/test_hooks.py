"""The plugin's hooks, implemented in a conftest.py the way users extend it."""

from __future__ import annotations

import json

import pytest

FAKE_LOADER_CONFTEST = """
import json
import transformers
from pytest_forgetting.backends.contract import Backend, Capabilities, Identity, Loglikelihood

calls = {"from_pretrained": 0, "loaded": []}
_original = transformers.AutoModelForCausalLM.from_pretrained.__func__

def _counting(cls, *args, **kwargs):
    calls["from_pretrained"] += 1
    return _original(cls, *args, **kwargs)


class FakeHandle(Backend):
    '''A backend serving canned scores: the base prefers " yes", the tuned model " no".'''

    capabilities = Capabilities(loglikelihood=True, generate_text=True)

    def __init__(self, spec, base):
        self.name = "fake:" + spec.role
        self.role = spec.role
        self.spec = spec
        self.given_base = base

    def identity(self):
        return Identity("fake-" + self.role, "canned", "remote")

    def loglikelihood(self, requests, *, batch_size=None):
        favourite = " yes" if self.role == "base" else " no"
        return [Loglikelihood(-0.1 if continuation == favourite else -5.0, continuation == favourite, 1)
                for _, continuation in requests]

    def generate(self, prompts, *, max_new_tokens=64, stop=(), batch_size=None):
        return ["" for _ in prompts]


def pytest_forgetting_load_model(config, spec, options, base):
    calls["loaded"].append(spec.role)
    return FakeHandle(spec, base)

def pytest_configure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_counting)

def pytest_unconfigure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_original)
    with open("calls.json", "w") as f:
        json.dump(calls, f)
"""

USES_FAKE = """
from pytest_forgetting import Backend, capability

def test_handles_come_from_the_conftest(base_model, tuned_model):
    assert type(base_model).__name__ == type(tuned_model).__name__ == "FakeHandle"
    assert (base_model.name, tuned_model.name) == ("fake:base", "fake:tuned")
    assert isinstance(tuned_model, Backend)
    assert tuned_model.given_base is base_model  # an adapter is handed its loaded base
    assert tuned_model.spec.kind == "adapter" and base_model.spec.kind == "checkpoint"

@capability("yes-no")
def test_compare_scores_with_the_fake(forgetting):
    rows = [{"question": f"q{i}", "choices": ["yes", "no"], "answer": 0} for i in range(20)]
    result = forgetting.compare(forgetting.suite(rows, "multiple_choice"))
    assert (result.base_score, result.tuned_score, result.forgotten, result.n) == (1.0, 0.0, 20, 20)
"""


def test_load_model_hook_replaces_the_default_loader(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makeconftest(FAKE_LOADER_CONFTEST)
    pytester.makepyfile(USES_FAKE)
    result = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", "--no-forgetting-cache")
    result.assert_outcomes(passed=2)
    calls = json.loads((pytester.path / "calls.json").read_text())
    assert calls == {"from_pretrained": 0, "loaded": ["base", "tuned"]}  # each once, never transformers


RESULT_CONFTEST = """
import json

def pytest_forgetting_result(config, nodeid, result):
    with open("results.jsonl", "a") as f:
        f.write(json.dumps({"nodeid": nodeid, "capability": result.capability, "n": result.n,
                            "verdict": result.verdict}) + "\\n")
"""

COMPARES = """
import pytest
from pytest_forgetting import capability

ROWS = [{"question": q, "choices": ["Paris", "Rome", "Berlin"], "answer": 0}
        for q in ("What is the capital of France?", "Capital of France?", "France's capital?",
                  "Which city is the capital of France?", "Name the capital of France.")]

@capability("capitals")
def test_two_comparisons(forgetting):
    forgetting.compare(forgetting.suite(ROWS, "multiple_choice"))
    forgetting.compare(forgetting.suite(ROWS[:3], "multiple_choice"), capability="capitals (short)")

@capability("strict")
def test_failing_check(forgetting):
    forgetting.check(forgetting.suite(ROWS[:4], "multiple_choice"), tolerance=0.0, policy="significant")
    pytest.fail("forced failure after the comparison")

def test_no_comparison(forgetting):
    pass
"""


def test_result_hook_called_once_per_comparison(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makeconftest(RESULT_CONFTEST)
    pytester.makepyfile(COMPARES)
    result = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", "--no-forgetting-cache")
    result.assert_outcomes(passed=2, failed=1)
    lines = (pytester.path / "results.jsonl").read_text().splitlines()
    calls = sorted((json.loads(line) for line in lines), key=lambda call: (call["nodeid"], -call["n"]))
    module = "test_result_hook_called_once_per_comparison.py"
    assert [(call["nodeid"], call["capability"], call["n"]) for call in calls] == [
        (f"{module}::test_failing_check", "strict", 4),
        (f"{module}::test_two_comparisons", "capitals", 5),
        (f"{module}::test_two_comparisons", "capitals (short)", 3),
    ]
    assert all(call["verdict"] in ("pass", "fail") for call in calls)


def test_results_cached_with_the_default_loader_are_not_reused_by_a_custom_one(
    pytester: pytest.Pytester, tiny_models
) -> None:
    cache = pytester.path / "shared-cache"
    pytester.makepyfile(USES_FAKE.split("@capability")[0] + "\n@capability" + USES_FAKE.split("@capability")[1]
                        .replace("assert (result.base_score", "print('scores', result.base_score, result.tuned_score)\n    assert (result.base_score"))
    first = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", f"--forgetting-cache-dir={cache}",
                               "-k", "compare")
    first.assert_outcomes(failed=1)  # the real models do not score 1.0 -> 0.0
    assert "0 item results reused, 40 scored" in first.stdout.str()
    pytester.makeconftest(FAKE_LOADER_CONFTEST)
    second = pytester.runpytest(f"--tuned-model={tiny_models['adapter']}", f"--forgetting-cache-dir={cache}",
                                "-k", "compare")
    second.assert_outcomes(passed=1)
    assert "0 item results reused, 40 scored" in second.stdout.str()
    assert json.loads((pytester.path / "calls.json").read_text())["loaded"] == ["base", "tuned"]
