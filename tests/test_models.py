"""Model sessions through the plugin, run the way users run it (pytester + tiny models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

COUNTING_CONFTEST = """
import json, os
import pytest
import transformers

calls = {"from_pretrained": 0, "hook": 0}
_original = transformers.AutoModelForCausalLM.from_pretrained.__func__

def _counting(cls, *args, **kwargs):
    calls["from_pretrained"] += 1
    return _original(cls, *args, **kwargs)

@pytest.hookimpl(wrapper=True)
def pytest_forgetting_load_model(config, spec, options, base):
    calls["hook"] += 1
    return (yield)

def pytest_configure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_counting)

def pytest_unconfigure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_original)
    with open("counts.json", "w") as f:
        json.dump(calls, f)
"""

USES_BOTH = """
import torch

def test_one(base_model, tuned_model):
    assert base_model.adapter is None and base_model.name != tuned_model.name

def test_two(tuned_model):
    assert tuned_model.loglikelihood([("Question: 2 + 3?", " 5")])[0].logprob < 0

def test_three(forgetting):
    assert forgetting.base is not forgetting.tuned
"""


def _counts(pytester: pytest.Pytester) -> dict[str, int]:
    return json.loads((pytester.path / "counts.json").read_text())


def test_adapter_session_loads_base_weights_once(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(USES_BOTH)
    result = pytester.runpytest("--tuned-model", str(tiny_models["adapter"]))
    result.assert_outcomes(passed=3)
    assert _counts(pytester) == {"from_pretrained": 1, "hook": 2}


def test_full_checkpoint_session_loads_each_model_once(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(USES_BOTH)
    result = pytester.runpytest(
        "--tuned-model", str(tiny_models["full"]), "--base-model", str(tiny_models["base"])
    )
    result.assert_outcomes(passed=3)
    assert _counts(pytester) == {"from_pretrained": 2, "hook": 2}


def test_nothing_loads_when_no_test_asks(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("--tuned-model", str(tiny_models["adapter"]))
    result.assert_outcomes(passed=1)
    assert _counts(pytester) == {"from_pretrained": 0, "hook": 0}


def test_fixtures_skip_without_tuned_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_needs(base_model):\n    pass\n\ndef test_f(forgetting):\n    forgetting.tuned\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no tuned model given; pass --tuned-model PATH*"])


EXACT_LOGITS = """
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

BASE, TUNED, KIND = {base!r}, {tuned!r}, {kind!r}
IDS = torch.tensor([[5, 17, 42, 99, 7, 3], [8, 8, 120, 4, 250, 1]])

def reference_tuned():
    if KIND == "adapter":
        return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), TUNED).eval()
    return AutoModelForCausalLM.from_pretrained(TUNED).eval()

def test_base_logits_are_the_base_alone(base_model, tuned_model):
    alone = AutoModelForCausalLM.from_pretrained(BASE).eval()
    with torch.no_grad():
        expected = alone(IDS).logits
    assert torch.equal(base_model.logits(IDS), expected)

def test_tuned_logits_are_the_tuned_alone(base_model, tuned_model):
    with torch.no_grad():
        expected = reference_tuned()(IDS).logits
    assert torch.equal(tuned_model.logits(IDS), expected)
    assert not torch.allclose(tuned_model.logits(IDS), base_model.logits(IDS))

def test_base_still_exact_after_tuned_ran(base_model, tuned_model):
    tuned_model.logits(IDS)
    with torch.no_grad():
        expected = AutoModelForCausalLM.from_pretrained(BASE).eval()(IDS).logits
    assert torch.equal(base_model.logits(IDS), expected)
"""


@pytest.mark.parametrize("kind", ["adapter", "full"])
def test_logits_match_models_loaded_alone(pytester: pytest.Pytester, tiny_models, kind: str) -> None:
    tuned = tiny_models[kind]
    pytester.makepyfile(EXACT_LOGITS.format(base=str(tiny_models["base"]), tuned=str(tuned), kind=kind))
    args = ["--tuned-model", str(tuned)]
    if kind == "full":
        args += ["--base-model", str(tiny_models["base"])]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)


def test_adapter_shares_one_copy_of_base_weights(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makepyfile(
        """
        def test_shared(base_model, tuned_model):
            assert base_model.shared is tuned_model.shared
            base_params = {p.data_ptr() for p in base_model.shared.model.parameters()}
            assert len(base_params) == len(list(tuned_model.shared.model.parameters()))
        """
    )
    pytester.runpytest("--tuned-model", str(tiny_models["adapter"])).assert_outcomes(passed=1)


def test_ini_values_and_command_line_precedence(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makeini(
        f"""
        [pytest]
        forgetting_tuned_model = {tiny_models['adapter']}
        forgetting_dtype = bfloat16
        forgetting_batch_size = 3
        forgetting_device = cpu
        """
    )
    pytester.makepyfile(
        """
        import sys, torch
        def test_settings(tuned_model, request):
            expected = request.config.getoption("forgetting_dtype") or "bfloat16"
            assert tuned_model.dtype == {"bfloat16": torch.bfloat16, "float32": torch.float32}[expected]
            assert tuned_model.batch_size == 3
            assert str(tuned_model.device) == "cpu"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest("--dtype", "float32").assert_outcomes(passed=1)


def test_ini_relative_path_is_relative_to_the_ini_file(pytester: pytest.Pytester, tiny_models) -> None:
    import shutil

    shutil.copytree(tiny_models["zero_adapter"], pytester.path / "my-adapter")
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nforgetting_tuned_model = "my-adapter"\n'
    )
    pytester.makepyfile("def test_loaded(tuned_model):\n    assert tuned_model.name.endswith('my-adapter')\n")
    pytester.runpytest().assert_outcomes(passed=1)
