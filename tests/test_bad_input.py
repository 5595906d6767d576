"""Every bad input gets one clear line and no traceback from inside the plugin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import tiny

USES_MODELS = """
def test_pair(base_model, tuned_model):
    pass

def test_plain():
    pass
"""


def _no_plugin_traceback(result: pytest.RunResult) -> None:
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text
    assert "pytest_forgetting/" not in text, text


def _startup_error(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(USES_MODELS)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    _no_plugin_traceback(result)
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    return errors[0]


def test_missing_path(pytester: pytest.Pytester) -> None:
    line = _startup_error(pytester, "--tuned-model", "does/not-exist-here")
    assert "no such folder" in line and "--tuned-model does/not-exist-here" in line


def test_folder_that_is_neither_checkpoint_nor_adapter(pytester: pytest.Pytester) -> None:
    (pytester.path / "junk").mkdir()
    (pytester.path / "junk" / "notes.txt").write_text("hi")
    line = _startup_error(pytester, "--tuned-model", "junk")
    assert "neither a model checkpoint (config.json) nor a PEFT adapter" in line and "notes.txt" in line


def test_adapter_whose_base_cannot_be_found_offline(pytester: pytest.Pytester, tiny_models) -> None:
    adapter = pytester.path / "adapter"
    shutil.copytree(tiny_models["adapter"], adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "nobody/not-a-cached-model"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    line = _startup_error(pytester, "--tuned-model", str(adapter))
    assert "'nobody/not-a-cached-model' cannot be found offline" in line and "--base-model" in line


def test_full_checkpoint_needs_base(pytester: pytest.Pytester, tiny_models) -> None:
    line = _startup_error(pytester, "--tuned-model", str(tiny_models["full"]))
    assert "full checkpoint" in line and "--base-model" in line


def test_device_cuda_without_gpu(pytester: pytest.Pytester, tiny_models) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    line = _startup_error(pytester, "--tuned-model", str(tiny_models["adapter"]), "--device", "cuda")
    assert "no CUDA GPU is available" in line


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--dtype", "float8", "expected one of auto, float32"),
        ("--device", "gpu0", "expected auto, cpu, mps, cuda or cuda:N"),
        ("--forgetting-batch-size", "0", "expected 'auto' or a positive integer"),
        ("--forgetting-tolerance", "two", "could not parse tolerance"),
    ],
)
def test_bad_option_values(pytester: pytest.Pytester, flag: str, value: str, expected: str) -> None:
    pytester.makepyfile(USES_MODELS)
    result = pytester.runpytest(flag, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _no_plugin_traceback(result)
    assert [line for line in result.stderr.lines if line.strip()] == [result.stderr.lines[0]]  # one line
    result.stderr.fnmatch_lines([f"ERROR: pytest-forgetting: {flag} {value}: *{expected}*"])


def test_bad_ini_value(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nforgetting_dtype = half-ish\n")
    pytester.makepyfile(USES_MODELS)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-forgetting: ini forgetting_dtype: dtype 'half-ish': expected one of*"])


def test_pickle_weights_refused_unless_allowed(pytester: pytest.Pytester, tiny_models, tmp_path: Path) -> None:
    pickled = tiny.build_llama(tmp_path / "pickled", seed=3, tokenizer_from=tiny_models["base"], safetensors=False)
    line = _startup_error(pytester, "--tuned-model", str(pickled), "--base-model", str(tiny_models["base"]))
    assert "only pickle weights" in line and "--allow-pickle-weights" in line
    result = pytester.runpytest(
        "--tuned-model", str(pickled), "--base-model", str(tiny_models["base"]), "--allow-pickle-weights"
    )
    result.assert_outcomes(passed=2)


def _load_error(pytester: pytest.Pytester, *args: str) -> str:
    """Errors only visible when loading: the tests that need models error, the rest pass."""
    pytester.makepyfile(USES_MODELS)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, errors=1)
    _no_plugin_traceback(result)
    lines = [line for line in result.stdout.lines if line.startswith("pytest-forgetting:")]
    assert len(lines) == 1, result.stdout.str()
    return lines[0]


def test_adapter_trained_on_another_shape(pytester: pytest.Pytester, tiny_models, tmp_path: Path) -> None:
    wide = tiny.build_llama(tmp_path / "wide", seed=2, hidden=48, tokenizer_from=tiny_models["base"])
    adapter = tiny.build_lora(tmp_path / "wide-adapter", wide)
    line = _load_error(pytester, "--tuned-model", str(adapter), "--base-model", str(tiny_models["base"]))
    assert "the adapter does not fit the base" in line and "size mismatch" in line


def test_adapter_trained_on_another_architecture(pytester: pytest.Pytester, tiny_models, tmp_path: Path) -> None:
    gpt2 = tiny.build_gpt2(tmp_path / "gpt2", tiny_models["base"])
    adapter = tiny.build_lora(tmp_path / "gpt2-adapter", gpt2, target_modules=("c_attn",))
    line = _load_error(pytester, "--tuned-model", str(adapter), "--base-model", str(tiny_models["base"]))
    assert "the adapter does not fit the base" in line and "--base-model" in line


def test_vocabularies_that_differ(pytester: pytest.Pytester, tiny_models, tmp_path: Path) -> None:
    other_tokenizer = tmp_path / "other-tok"
    other_tokenizer.mkdir()
    tiny.build_tokenizer(other_tokenizer, vocab_size=320, extra_corpus=("zebra xylophone quartz",))
    other = tiny.build_llama(tmp_path / "other", seed=4, tokenizer_from=other_tokenizer)
    line = _load_error(pytester, "--tuned-model", str(other), "--base-model", str(tiny_models["base"]))
    assert "tokenizer differs from the base's" in line and "same vocabulary" in line


def test_a_checkpoints_glob_matching_nothing(pytester: pytest.Pytester) -> None:
    (pytester.path / "out").mkdir()
    line = _startup_error(pytester, "--tuned-model", "out/checkpoint-*")
    assert "--tuned-model out/checkpoint-*: matches no folder" in line


def test_a_checkpoint_folder_without_weights(pytester: pytest.Pytester, tiny_models) -> None:
    shutil.copytree(tiny_models["adapter"], pytester.path / "out" / "checkpoint-1")
    (pytester.path / "out" / "checkpoint-2").mkdir()
    (pytester.path / "out" / "checkpoint-2" / "optimizer.pt").write_bytes(b"not weights")
    line = _startup_error(pytester, "--base-model", str(tiny_models["base"]), "--tuned-model", "out/checkpoint-*")
    assert "checkpoint-2" in line and "optimizer.pt" in line and "neither a model checkpoint" in line


def test_checkpoints_of_different_architectures_in_one_sweep(pytester: pytest.Pytester, tiny_models) -> None:
    shutil.copytree(tiny_models["full"], pytester.path / "out" / "checkpoint-1")
    tiny.build_gpt2(pytester.path / "out" / "checkpoint-2", tokenizer_from=tiny_models["base"])
    line = _startup_error(pytester, "--base-model", str(tiny_models["base"]), "--tuned-model", "out/checkpoint-*")
    assert "checkpoint-2" in line and "gpt2" in line and "llama" in line
