"""Options and ini keys not covered elsewhere: custom code, device/dtype resolution, ini keys,
pickle-only adapters, models from the local Hugging Face cache, and the rootdir trap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_forgetting.errors import ForgettingError
from tests import tiny
from tests.test_bad_input import USES_MODELS, _no_plugin_traceback, _startup_error

# -- custom code (auto_map) ------------------------------------------------------------------

CUSTOM_CODE_MAP = {
    "AutoConfig": "configuration_tiny.TinyConfig",
    "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM",
}


def _custom_code_model(tiny_models, folder: Path) -> Path:
    """The tiny full checkpoint with an ``auto_map`` naming code files it does not ship."""
    shutil.copytree(tiny_models["full"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = CUSTOM_CODE_MAP
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_custom_code_refused_without_trust_remote_code(pytester: pytest.Pytester, tiny_models, tmp_path) -> None:
    custom = _custom_code_model(tiny_models, tmp_path / "custom")
    line = _startup_error(pytester, "--tuned-model", str(custom), "--base-model", str(tiny_models["base"]))
    assert line == (
        f"ERROR: pytest-forgetting: --tuned-model {custom}: config.json maps to custom model code "
        "(auto_map); pass --trust-remote-code if you trust that code"
    )


@pytest.mark.parametrize("how", ["ini", "flag"])
def test_trust_remote_code_reaches_transformers(pytester: pytest.Pytester, tiny_models, tmp_path, how) -> None:
    """Trusted, the refusal is gone and transformers goes for the custom code, which this
    folder lacks: the tests that load the model fail with one line naming the missing file
    (without trust_remote_code transformers would have loaded the built-in Llama class)."""
    custom = _custom_code_model(tiny_models, tmp_path / "custom")
    # "=" forms: with a space pytest would take the paths for test paths and skip the ini file
    args = [f"--tuned-model={custom}", f"--base-model={tiny_models['base']}"]
    if how == "ini":
        pytester.makeini("[pytest]\nforgetting_trust_remote_code = true\n")
    else:
        args.append("--trust-remote-code")
    pytester.makepyfile(USES_MODELS)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, errors=1)
    _no_plugin_traceback(result)
    text = result.stdout.str() + result.stderr.str()
    assert "auto_map" not in text and "--trust-remote-code" not in text
    lines = [line for line in result.stdout.lines if line.startswith("pytest-forgetting:")]
    assert len(lines) == 1, text
    assert lines[0].startswith(f"pytest-forgetting: --tuned-model {custom}: cannot load the model:")
    assert "configuration_tiny.py" in lines[0]


# -- --device / --dtype auto resolution (torch.cuda patched) ----------------------------------


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):
    """Pretend to have ``count`` CUDA devices, with or without bfloat16 support."""
    import torch

    def install(count: int, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)

    return install


def test_auto_without_cuda_is_cpu_float32(fake_cuda) -> None:
    import torch

    from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype

    fake_cuda(0)
    device = resolve_device("auto")
    assert device == torch.device("cpu")
    assert resolve_dtype("auto", device) is torch.float32


def test_auto_with_bf16_gpu_is_cuda_bfloat16(fake_cuda) -> None:
    import torch

    from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype

    fake_cuda(1, bf16=True)
    device = resolve_device("auto")
    assert device == torch.device("cuda")
    assert resolve_dtype("auto", device) is torch.bfloat16


def test_auto_dtype_on_gpu_without_bf16_is_float32_not_float16(fake_cuda) -> None:
    import torch

    from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype

    fake_cuda(1, bf16=False)
    device = resolve_device("auto")
    assert device.type == "cuda"
    assert resolve_dtype("auto", device) is torch.float32  # README: "else float32"
    assert resolve_dtype("fp16", device) is torch.float16 and resolve_dtype("bf16", device) is torch.bfloat16


def test_explicit_cuda_index(fake_cuda) -> None:
    import torch

    from pytest_forgetting.backends.hf.device import resolve_device

    fake_cuda(1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ForgettingError) as caught:
        resolve_device("cuda:1")
    assert str(caught.value) == "--device cuda:1: only 1 CUDA device(s) visible; use cuda:0..cuda:0"


def test_cuda_without_gpu_is_an_error(fake_cuda) -> None:
    from pytest_forgetting.backends.hf.device import resolve_device

    fake_cuda(0)
    for setting in ("cuda", "cuda:0"):
        with pytest.raises(ForgettingError, match=f"--device {setting}: no CUDA GPU is available here; use --device cpu or auto"):
            resolve_device(setting)


def test_device_checked_at_start_up(pytester: pytest.Pytester, tiny_models, fake_cuda) -> None:
    """The plugin checks a cuda device when it starts (pytester runs in this process, so the
    patched torch.cuda applies): cuda:1 of one device fails at once, cuda:0 starts."""
    fake_cuda(1)
    line = _startup_error(pytester, "--tuned-model", str(tiny_models["adapter"]), "--device", "cuda:1")
    assert line == "ERROR: pytest-forgetting: --device cuda:1: only 1 CUDA device(s) visible; use cuda:0..cuda:0"
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--tuned-model", str(tiny_models["adapter"]), "--device", "cuda:0")
    result.assert_outcomes(passed=1)


# -- ini keys forgetting_base_model and forgetting_allow_pickle_weights -----------------------

NAMES = """
def test_names(base_model, tuned_model):
    assert base_model.name == {base!r}
    assert tuned_model.name == {tuned!r}
    assert base_model.loglikelihood([("Question: 2 + 3?", " 5")]) != tuned_model.loglikelihood([("Question: 2 + 3?", " 5")])
"""


def test_ini_base_model_is_used_relative_to_the_ini_file(pytester: pytest.Pytester, tiny_models) -> None:
    shutil.copytree(tiny_models["base"], pytester.path / "models" / "base")
    pytester.makeini("[pytest]\nforgetting_base_model = models/base\n")
    pytester.makepyfile(NAMES.format(base=str(pytester.path / "models" / "base"), tuned=str(tiny_models["full"])))
    pytester.runpytest(f"--tuned-model={tiny_models['full']}").assert_outcomes(passed=1)


def test_command_line_base_model_wins_over_ini(pytester: pytest.Pytester, tiny_models) -> None:
    pytester.makeini("[pytest]\nforgetting_base_model = no-such-base\n")
    line = _startup_error(pytester, f"--tuned-model={tiny_models['full']}")
    assert "pytest-forgetting: ini forgetting_base_model no-such-base: no such folder" in line  # the ini value is read ...
    pytester.makepyfile(NAMES.format(base=str(tiny_models["base"]), tuned=str(tiny_models["full"])))
    result = pytester.runpytest(f"--tuned-model={tiny_models['full']}", f"--base-model={tiny_models['base']}")
    result.assert_outcomes(passed=1)  # ... and the command line replaces it


def test_ini_allow_pickle_weights(pytester: pytest.Pytester, tiny_models, tmp_path) -> None:
    pickled = tiny.build_llama(tmp_path / "pickled", seed=3, tokenizer_from=tiny_models["base"], safetensors=False)
    args = (f"--tuned-model={pickled}", f"--base-model={tiny_models['base']}")
    line = _startup_error(pytester, *args)
    assert "only pickle weights" in line
    pytester.makeini("[pytest]\nforgetting_allow_pickle_weights = true\n")
    pytester.makepyfile(NAMES.format(base=str(tiny_models["base"]), tuned=str(pickled)))
    pytester.runpytest(*args).assert_outcomes(passed=1)


# -- a pickle-only adapter ---------------------------------------------------------------------

ADAPTER_LOGITS = """
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

IDS = torch.tensor([[5, 17, 42, 99, 7, 3]])

def test_pickled_adapter_is_the_adapter(base_model, tuned_model):
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({base!r}), {safe!r}).eval()
    with torch.no_grad():
        expected = reference(IDS).logits
    assert torch.equal(tuned_model.logits(IDS), expected)
    assert not torch.allclose(tuned_model.logits(IDS), base_model.logits(IDS))
"""


def _pickle_only_adapter(tiny_models, folder: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    shutil.copytree(tiny_models["adapter"], folder)
    weights = folder / "adapter_model.safetensors"
    torch.save(load_file(str(weights)), folder / "adapter_model.bin")
    weights.unlink()
    return folder


def test_pickle_only_adapter_refused_unless_allowed(pytester: pytest.Pytester, tiny_models, tmp_path) -> None:
    adapter = _pickle_only_adapter(tiny_models, tmp_path / "pickled-adapter")
    line = _startup_error(pytester, f"--tuned-model={adapter}")
    assert line == (
        f"ERROR: pytest-forgetting: --tuned-model {adapter}: has only pickle weights (*.bin), which can "
        "run arbitrary code when loaded; convert them to safetensors, or pass --allow-pickle-weights if "
        "you trust the files"
    )
    pytester.makepyfile(ADAPTER_LOGITS.format(base=str(tiny_models["base"]), safe=str(tiny_models["adapter"])))
    pytester.runpytest(f"--tuned-model={adapter}", "--allow-pickle-weights").assert_outcomes(passed=1)


# -- model ids from the local Hugging Face cache ----------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"

FROM_CACHE = """
from pathlib import Path

def test_from_cache(forgetting, base_model, tuned_model):
    spec = (forgetting.session.base if "{role}" == "base" else forgetting.slot).spec
    assert spec.source == {model_id!r}
    assert Path(spec.path).resolve() == Path({snapshot!r}).resolve()
    assert {role}_model.name == {model_id!r}
    request = [("Question: 2 + 3?", " 5")]
    assert base_model.loglikelihood(request) != tuned_model.loglikelihood(request)
"""


def _hub_cache(root: Path, model_id: str, model: Path) -> Path:
    """A hub cache holding ``model`` as ``model_id``: models--org--name/{refs/main, snapshots/<hash>}."""
    repo = root / f"models--{model_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(model, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def test_tuned_model_id_from_hf_cache(pytester: pytest.Pytester, tiny_models, tmp_path, monkeypatch) -> None:
    """A real run in a fresh process, with HF_HUB_CACHE pointing at the cache."""
    snapshot = _hub_cache(tmp_path / "hub", "org/tiny-full", tiny_models["full"])
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makepyfile(FROM_CACHE.format(role="tuned", model_id="org/tiny-full", snapshot=str(snapshot)))
    result = pytester.runpytest_subprocess("--tuned-model", "org/tiny-full", f"--base-model={tiny_models['base']}")
    result.assert_outcomes(passed=1)


def test_adapter_base_named_by_model_id_from_hf_cache(pytester: pytest.Pytester, tiny_models, tmp_path, monkeypatch) -> None:
    """The adapter's config names its base by hub id; no --base-model is needed."""
    import huggingface_hub.constants

    snapshot = _hub_cache(tmp_path / "hub", "org/tiny-base", tiny_models["base"])
    adapter = tiny.build_lora(tmp_path / "adapter", tiny_models["base"], record_base_as="org/tiny-base")
    # huggingface_hub reads HF_HUB_CACHE when imported; this process imported it already
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    pytester.makepyfile(FROM_CACHE.format(role="base", model_id="org/tiny-base", snapshot=str(snapshot)))
    pytester.runpytest(f"--tuned-model={adapter}").assert_outcomes(passed=1)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    line = _startup_error(pytester, f"--tuned-model={adapter}")
    assert "the adapter's base 'org/tiny-base' cannot be found offline" in line


# -- the rootdir trap: `--tuned-model PATH` (space) outside the project ------------------------

SHOWS_INI = """
def test_ini(request):
    print("BATCH SIZE FROM INI:", request.config.getini("forgetting_batch_size"))
"""

INI_FILES = {
    "pytest.ini": "[pytest]\nforgetting_batch_size = 3\n",
    "pyproject.toml": '[tool.pytest.ini_options]\nforgetting_batch_size = "3"\n',
    "tox.ini": "[pytest]\nforgetting_batch_size = 3\n",
    "setup.cfg": "[tool:pytest]\nforgetting_batch_size = 3\n",
}

SKIPPED_MESSAGE = "pytest-forgetting: {ini} was not used (pytest read no ini file, rootdir *)*"


def _project(pytester: pytest.Pytester, ini_name: str) -> Path:
    ini = pytester.path / ini_name
    ini.write_text(INI_FILES[ini_name])
    pytester.makepyfile(SHOWS_INI)
    return ini


@pytest.mark.parametrize("ini_name", sorted(INI_FILES))
def test_space_form_outside_the_project_warns_that_the_ini_was_skipped(
    pytester: pytest.Pytester, tiny_models, monkeypatch, ini_name: str
) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    ini = _project(pytester, ini_name)
    adapter = tiny_models["adapter"]  # outside pytester.path: pytest takes it for a test path
    result = pytester.runpytest("-s", "--tuned-model", str(adapter))
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*BATCH SIZE FROM INI: None"])  # the trap: the ini was not read
    result.stdout.fnmatch_lines([
        "*PytestConfigWarning: " + SKIPPED_MESSAGE.format(ini=ini)
        + f"took the path after '--tuned-model ' for a test path. Write --tuned-model={adapter} "
        f"(with '='), or pass -c {ini}",
    ])


def test_space_form_warning_survives_a_start_up_error(pytester: pytest.Pytester, tiny_models, monkeypatch) -> None:
    """The base is set only in the skipped ini: the run stops at start-up, before the warnings
    summary, so the warning comes on stderr just before the error."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    ini = pytester.makeini(f"[pytest]\nforgetting_base_model = {tiny_models['base']}\n")
    pytester.makepyfile(SHOWS_INI)
    result = pytester.runpytest("--tuned-model", str(tiny_models["full"]))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "WARNING: " + SKIPPED_MESSAGE.format(ini=ini),
        "ERROR: pytest-forgetting: --tuned-model *: is a full checkpoint, which names no base*",
    ])


@pytest.mark.parametrize("form", ["equals", "config-file", "test-path-in-project", "model-inside-project"])
def test_no_warning_when_the_ini_is_used(pytester: pytest.Pytester, tiny_models, monkeypatch, form: str) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    ini = _project(pytester, "pyproject.toml")
    adapter = str(tiny_models["adapter"])
    args = {
        "equals": [f"--tuned-model={adapter}"],
        "config-file": ["-c", str(ini), "--tuned-model", adapter],
        "test-path-in-project": [".", "--tuned-model", adapter],
        "model-inside-project": ["--tuned-model", "adapter"],
    }[form]
    if form == "model-inside-project":
        shutil.copytree(adapter, pytester.path / "adapter")
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*BATCH SIZE FROM INI: 3"])
    assert "was not used" not in result.stdout.str() + result.stderr.str()


def test_the_session_header_names_the_models_as_resolved(pytester, tiny_models) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--base-model", str(tiny_models["base"]), "--tuned-model", str(tiny_models["adapter"]),
                                "--forgetting-batch-size", "4", "--no-forgetting-cache")
    header = [line for line in result.stdout.lines if line.startswith("forgetting:")]
    assert header[0].startswith(f"forgetting: base {tiny_models['base']} (checkpoint, fingerprint ")
    assert header[1].startswith(f"forgetting: tuned adapter: {tiny_models['adapter']} (adapter, fingerprint ")
    assert header[2] == "forgetting: device auto, dtype auto, batch size 4; cache off; baseline none"
