"""Result cache and committed baselines: warm runs, invalidation, corruption, mismatch errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_forgetting.storage.cache import ResultCache, read_entries, write_entries
from tests import tiny

ROWS = [{"id": f"r{i}", "question": f"What is {i} + {i}?", "choices": [str(2 * i), str(2 * i + 1), "many"],
         "answer": 0} for i in range(12)]

COUNTING_CONFTEST = """
import json, transformers
calls = {"from_pretrained": 0}
_original = transformers.AutoModelForCausalLM.from_pretrained.__func__

def _counting(cls, *args, **kwargs):
    calls["from_pretrained"] += 1
    return _original(cls, *args, **kwargs)

def pytest_configure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_counting)

def pytest_unconfigure(config):
    transformers.AutoModelForCausalLM.from_pretrained = classmethod(_original)
    with open("counts.json", "w") as f:
        json.dump(calls, f)
"""

TEST_FILE = """
import json
from pytest_forgetting import capability

@capability("sums", tolerance=1.0)
def test_sums(forgetting):
    result = forgetting.compare(forgetting.suite("rows.jsonl", "multiple_choice"))
    with open("result.json", "w") as f:
        json.dump({"base": result.base_values, "tuned": result.tuned_values,
                   "records": [r["base_answer"] for r in result.records]}, f)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nforgetting_cache_dir = results-cache\n")  # per-test cache
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(test_sums=TEST_FILE)
    (pytester.path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    return pytester


def _joined(args: tuple[str, ...]) -> list[str]:
    """``--opt value`` as ``--opt=value``: a bare path argument would move pytest's rootdir."""
    out: list[str] = []
    for arg in args:
        if out and out[-1].startswith("--") and "=" not in out[-1] and not arg.startswith("-") \
                and out[-1] in ("--tuned-model", "--base-model", "--forgetting-baseline"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict, dict]:
    result = pytester.runpytest(*_joined(args))
    result.assert_outcomes(passed=1)
    counts = json.loads((pytester.path / "counts.json").read_text())
    return result, counts, json.loads((pytester.path / "result.json").read_text())


def test_warm_run_scores_nothing_and_loads_no_model(project, tiny_models) -> None:
    args = ("--tuned-model", str(tiny_models["full"]), "--base-model", str(tiny_models["base"]))
    cold, cold_counts, cold_result = _run(project, *args)
    cold.stdout.fnmatch_lines(["forgetting cache: 0 item results reused, 24 scored"])
    assert cold_counts["from_pretrained"] == 2
    warm, warm_counts, warm_result = _run(project, *args)
    warm.stdout.fnmatch_lines(["forgetting cache: 24 item results reused, 0 scored"])
    assert warm_counts["from_pretrained"] == 0
    assert warm_result == cold_result


def test_changed_weights_are_scored_again(project, tiny_models, tmp_path: Path) -> None:
    tuned = tmp_path / "tuned"
    shutil.copytree(tiny_models["full"], tuned)
    args = ("--tuned-model", str(tuned), "--base-model", str(tiny_models["base"]))
    _run(project, *args)
    replacement = tiny.build_llama(tmp_path / "other", seed=11, tokenizer_from=tiny_models["base"])
    shutil.copy(replacement / "model.safetensors", tuned / "model.safetensors")
    result, _, _ = _run(project, *args)
    result.stdout.fnmatch_lines(["forgetting cache: 12 item results reused, 12 scored"])


def test_corrupt_cache_entries_are_recomputed(project, tiny_models) -> None:
    args = ("--tuned-model", str(tiny_models["full"]), "--base-model", str(tiny_models["base"]))
    _, _, first = _run(project, *args)
    files = list((project.path / "results-cache").rglob("*.json"))
    assert len(files) == 2
    files[0].write_text(files[0].read_text()[:-40])  # truncated
    data = json.loads(files[1].read_text())
    key = next(iter(data["entries"]))
    data["entries"][key]["metrics"]["acc"] = 1 - data["entries"][key]["metrics"]["acc"]  # tampered
    files[1].write_text(json.dumps(data))
    result, _, again = _run(project, *args)
    result.stdout.fnmatch_lines(["forgetting cache: 0 item results reused, 24 scored"])
    assert again == first


def test_no_cache_and_clear_cache(project, tiny_models) -> None:
    args = ("--tuned-model", str(tiny_models["full"]), "--base-model", str(tiny_models["base"]))
    _run(project, *args, "--no-forgetting-cache")
    assert not (project.path / "results-cache").exists()
    _run(project, *args)
    result, _, _ = _run(project, *args, "--forgetting-clear-cache")
    result.stdout.fnmatch_lines(["forgetting cache: 0 item results reused, 24 scored"])


def test_baseline_skips_the_base_model(project, tiny_models) -> None:
    baseline = project.path / "baseline"
    args = ("--tuned-model", str(tiny_models["full"]), "--base-model", str(tiny_models["base"]),
            "--no-forgetting-cache", "--forgetting-baseline", str(baseline))
    _, counts, first = _run(project, *args, "--forgetting-update-baseline")
    assert counts["from_pretrained"] == 2 and len(list(baseline.glob("*.json"))) == 1
    _, counts, second = _run(project, *args)
    assert counts["from_pretrained"] == 1  # only the tuned model
    assert second == first


def test_baseline_for_another_base_fails_clearly(project, tiny_models, tmp_path: Path) -> None:
    baseline = project.path / "baseline"
    _run(project, "--tuned-model", str(tiny_models["full"]), "--base-model", str(tiny_models["base"]),
         "--forgetting-baseline", str(baseline), "--forgetting-update-baseline")
    other_base = tiny.build_llama(tmp_path / "other-base", seed=5, tokenizer_from=tiny_models["base"])
    result = project.runpytest(*_joined(("--tuned-model", str(tiny_models["full"]), "--base-model",
                                         str(other_base), "--forgetting-baseline", str(baseline))))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pytest-forgetting: baseline *.json was recorded for another base model*"
                                 "--forgetting-update-baseline*"])
    assert "Traceback" not in result.stdout.str()


def test_update_baseline_needs_a_folder(project, tiny_models) -> None:
    result = project.runpytest("--tuned-model", str(tiny_models["adapter"]), "--forgetting-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *--forgetting-update-baseline needs --forgetting-baseline DIR*"])


def _store_many(folder: str, start: int) -> None:
    cache = ResultCache(Path(folder))
    for i in range(start, start + 20):
        cache.store("k" * 64, {f"item{i}": {"v": i}})


def test_concurrent_writers_merge_and_never_corrupt(tmp_path: Path) -> None:
    import multiprocessing

    processes = [multiprocessing.Process(target=_store_many, args=(str(tmp_path), 100 * n)) for n in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    entries = ResultCache(tmp_path).load("k" * 64)
    assert len(entries) == 60


def test_checksummed_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_entries(path, {"a": 1})
    assert read_entries(path) == {"a": 1}
    path.write_text("{not json")
    assert read_entries(path) == {}


DRIFT_TEST_FILE = """
import json
from pytest_forgetting import capability

PROMPTS = ["Write a note to a colleague.", "Describe the weather today.", "Say hello to a friend."]

@capability("writing")
def test_drift(forgetting):
    suite = forgetting.suite([{"prompt": p} for p in PROMPTS], "generation", scorer="no_forbidden",
                             phrases=["WHEREAS"], max_new_tokens=6)
    text = forgetting.suite([{"text": p + " And then some more words."} for p in PROMPTS], "text")
    generation, plain = forgetting.drift(suite, max_kl=100.0), forgetting.drift(text, max_kl=100.0)
    with open("drift.json", "w") as f:
        json.dump({"generation": generation.tuned_values, "text": plain.tuned_values,
                   "top": generation.extra["top_shifted"], "outputs": [r["tuned_answer"] for r in generation.records]}, f)
"""


def test_drift_is_cached_per_model_pair(pytester: pytest.Pytester, tiny_models, tmp_path) -> None:
    pytester.makeini("[pytest]\nforgetting_cache_dir = results-cache\n")
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(test_drift=DRIFT_TEST_FILE)

    def run(tuned: Path) -> tuple[pytest.RunResult, int, dict]:
        result = pytester.runpytest(f"--tuned-model={tuned}")
        result.assert_outcomes(passed=1)
        counts = json.loads((pytester.path / "counts.json").read_text())
        return result, counts["from_pretrained"], json.loads((pytester.path / "drift.json").read_text())

    # 3 outputs scored (the suite's tuned generation feeds the drift) + 3 generation drift + 3 text drift
    cold, cold_loads, cold_drift = run(tiny_models["adapter"])
    cold.stdout.fnmatch_lines(["forgetting cache: 0 item results reused, 9 scored"])
    assert cold_loads == 1 and min(cold_drift["generation"] + cold_drift["text"]) > 0
    warm, warm_loads, warm_drift = run(tiny_models["adapter"])
    warm.stdout.fnmatch_lines(["forgetting cache: 9 item results reused, 0 scored"])
    assert warm_loads == 0 and warm_drift == cold_drift  # same numbers, no model loaded
    changed = tiny.build_lora(tmp_path / "changed-adapter", tiny_models["base"], seed=5)
    other, other_loads, other_drift = run(changed)
    other.stdout.fnmatch_lines(["forgetting cache: 0 item results reused, 9 scored"])
    assert other_loads == 1 and other_drift["generation"] != cold_drift["generation"]


def _modules() -> tuple:
    """The device and cache modules a run imports (through sys.modules: pytester drops modules a run imported)."""
    import importlib

    return (importlib.import_module("pytest_forgetting.backends.hf.device"),
            importlib.import_module("pytest_forgetting.storage.cache"))


def test_run_key_holds_library_versions_and_device_name(monkeypatch) -> None:
    from pytest_forgetting.scoring.suites import load_suite

    device, cache = _modules()

    suite = load_suite(ROWS, "multiple_choice", name="sums")
    same = cache.run_key("f" * 64, "torch.float32", "cpu", suite)
    assert same == cache.run_key("f" * 64, "torch.float32", "cpu", suite)
    environment = cache.scoring_environment("cpu")
    assert set(environment["libraries"]) == {"torch", "transformers", "peft", "tokenizers"}
    assert environment["device_name"] == device.device_name("cpu") != ""
    for library in cache.SCORING_LIBRARIES:
        changed = {**cache.library_versions(), library: "0.0.0-other"}
        with monkeypatch.context() as patch:
            patch.setattr(cache, "library_versions", lambda changed=changed: changed)
            assert cache.run_key("f" * 64, "torch.float32", "cpu", suite) != same, library
    with monkeypatch.context() as patch:
        patch.setattr(device, "device_name", lambda device_type: "Another CPU")
        assert cache.run_key("f" * 64, "torch.float32", "cpu", suite) != same
    # a served model: the server's libraries are not known here; nothing local enters its key
    monkeypatch.setattr(device, "device_name", lambda device_type: pytest.fail("asked a device name for remote"))
    assert cache.scoring_environment("remote") == {}
    served = cache.run_key("s" * 64, "served", "remote", suite)
    monkeypatch.setattr(cache, "library_versions", lambda: {"torch": "other"})
    assert cache.run_key("s" * 64, "served", "remote", suite) == served


CHANGES = {
    **{library: ("library_versions", library) for library in ("torch", "transformers", "peft", "tokenizers")},
    "device name": ("device_name", None),
}


def test_another_environment_rescores_but_the_baseline_still_loads(project, tiny_models, monkeypatch) -> None:
    device, cache = _modules()

    baseline = project.path / "baseline"
    args = ("--tuned-model", str(tiny_models["full"]), "--base-model", str(tiny_models["base"]),
            "--forgetting-baseline", str(baseline))
    _, _, first = _run(project, *args, "--forgetting-update-baseline")
    recorded = json.loads(next(baseline.glob("*.json")).read_text())
    assert recorded["environment"] == cache.scoring_environment("cpu")
    warm, _, _ = _run(project, *args, "--forgetting-report=same")
    warm.stdout.fnmatch_lines(["forgetting cache: 24 item results reused, 0 scored"])
    assert "notices" not in json.loads((project.path / "same" / "report.json").read_text())
    versions = cache.library_versions()
    for name, (what, library) in CHANGES.items():
        with monkeypatch.context() as patch:
            if what == "library_versions":
                patch.setattr(cache, "library_versions", lambda: {**versions, library: "0.0.0-other"})
            else:
                patch.setattr(device, "device_name", lambda device_type: "Another CPU")
            result, counts, again = _run(project, *args, f"--forgetting-report={name}")
        # the base comes from the baseline (12 reused); the tuned model is scored cold under the new key
        result.stdout.fnmatch_lines([f"*notice: baseline *.json was recorded with*{'0.0.0-other' if library else 'Another CPU'}*",
                                     "forgetting cache: 12 item results reused, 12 scored"])
        assert counts["from_pretrained"] == 1 and again == first
        notices = json.loads((project.path / name / "report.json").read_text())["notices"]
        assert len(notices) == 1 and "--forgetting-update-baseline" in notices[0], name
        assert "Notice:" in (project.path / name / "report.md").read_text()
