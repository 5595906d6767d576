"""Safe defaults, proven by payloads: a model folder's custom code and pickle weights never run.

Each folder carries code that leaves a marker file when it runs. By default the plugin refuses
both in one line and the marker never appears; the custom code's marker appears once the user
opts in with ``--trust-remote-code``, so the marker can tell. Pickle weights stay inert even
with ``--allow-pickle-weights``: transformers unpickles weights only (``weights_only``). An API
key is never written anywhere: ``tests/test_served.py``.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from pytest_forgetting.backends.spec import LoadOptions
from tests.test_bad_input import USES_MODELS, _no_plugin_traceback, _startup_error

CODE = '''import pathlib
pathlib.Path({marker!r}).write_text("custom code ran")
from transformers import LlamaConfig, LlamaForCausalLM


class TinyConfig(LlamaConfig):
    model_type = "tiny-custom"


class TinyForCausalLM(LlamaForCausalLM):
    config_class = TinyConfig
'''


class Payload:
    """Unpickling this writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "pickle payload ran"))


def test_the_defaults_are_off() -> None:
    options = LoadOptions()
    assert options.trust_remote_code is False and options.allow_pickle is False


def test_custom_code_never_runs_unless_trusted(pytester: pytest.Pytester, tiny_models, tmp_path: Path) -> None:
    marker = tmp_path / "custom-code-ran"
    custom = tmp_path / "custom"
    shutil.copytree(tiny_models["full"], custom)
    config = json.loads((custom / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_tiny.TinyConfig", "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"}
    (custom / "config.json").write_text(json.dumps(config))
    (custom / "modeling_tiny.py").write_text(CODE.format(marker=str(marker)))

    line = _startup_error(pytester, f"--tuned-model={custom}", f"--base-model={tiny_models['base']}")
    assert "maps to custom model code (auto_map); pass --trust-remote-code if you trust that code" in line
    pytester.makepyfile(USES_MODELS)
    pytester.runpytest(f"--tuned-model={custom}", f"--base-model={tiny_models['base']}")
    assert not marker.exists()

    # opted in, transformers imports the folder's code: the marker is how these tests would see it run
    pytester.runpytest(f"--tuned-model={custom}", f"--base-model={tiny_models['base']}", "--trust-remote-code")
    assert marker.read_text() == "custom code ran"


def test_pickle_weights_never_unpickle_code(pytester: pytest.Pytester, tiny_models, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))  # unpickled plainly, the payload runs: the marker can tell
    assert probe.read_text() == "pickle payload ran"
    marker = tmp_path / "pickle-ran"
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_models["full"] / name).exists():
            shutil.copy(tiny_models["full"] / name, pickled / name)
    with open(pickled / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"model.embed_tokens.weight": Payload(marker)}, handle)

    line = _startup_error(pytester, f"--tuned-model={pickled}", f"--base-model={tiny_models['base']}")
    assert "only pickle weights" in line and "--allow-pickle-weights" in line
    assert not marker.exists()

    pytester.makepyfile(USES_MODELS)
    result = pytester.runpytest(f"--tuned-model={pickled}", f"--base-model={tiny_models['base']}",
                                "--allow-pickle-weights")
    result.assert_outcomes(passed=1, errors=1)  # allowed, the file is still unpickled as weights only
    _no_plugin_traceback(result)
    assert not marker.exists()
    lines = [line for line in result.stdout.lines if line.startswith("pytest-forgetting:")]
    assert len(lines) == 1 and "cannot load the model" in lines[0], result.stdout.str()
