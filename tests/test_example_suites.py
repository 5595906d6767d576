"""End to end: the example suites on the real embedded SmolLM2 with the shipped adapters.

A few minutes on 2 CPU cores: runs pytest on example_suites/ in subprocesses sharing one
result cache, so the base model is scored once (careful run: cold; the others reuse the base's
results). The tests share an xdist group, so ``-n 2 --dist loadgroup`` keeps them on one worker
(each run records its worker; the aggressive run asserts it reused the base's results), and the
cache folder is one per test session, beside the workers' own temporary folders, so even runs
on two workers would share it.

Each run is bounded by CPU time, not wall-clock time: the work a run does is the same on a busy
machine, only slower. Measured on this 2-core machine with six other processes running, the cold
careful run took 30 min 44 s of wall time (12x a quiet run) but 944 CPU seconds (about 3x: torch's
threads spin while they wait for a core). The bound (``RUN_CPU_S``, 3x that) fails a run that does
far more work than it should, never one that waits for a core; a generous wall-clock bound
(``RUN_WALL_S``) only catches a hang.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("example-suites")]
RUN_CPU_S = 3000  # CPU seconds (all threads) one run may use; see the module docstring
RUN_WALL_S = 3600


@pytest.fixture(scope="module")
def embedded_base() -> Path:
    pytest.importorskip("gguf")
    from pytest_forgetting.embedded import ensure_embedded_model
    from pytest_forgetting.errors import ForgettingError

    try:
        return ensure_embedded_model()
    except ForgettingError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One cache folder per test session: under xdist, beside the workers' own temporary folders."""
    session_root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session_root = session_root.parent
    folder = session_root / "example-suites-cache"
    folder.mkdir(exist_ok=True)
    return folder


def _bounded() -> None:  # in the child, before it runs: a CPU-time bound (SIGXCPU past the soft limit)
    resource.setrlimit(resource.RLIMIT_CPU, (RUN_CPU_S, RUN_CPU_S + 60))


def _run(tuned: Path, report: Path, cache: Path, *extra: str) -> tuple[int, dict, str]:
    command = [sys.executable, "-m", "pytest", "example_suites", "-q", "-p", "no:randomly", "-p", "no:xdist",
               f"--tuned-model={tuned}", f"--forgetting-report={report}", f"--forgetting-cache-dir={cache}", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=RUN_WALL_S,
                          preexec_fn=_bounded)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert done.returncode != -signal.SIGXCPU, (f"{tuned.name}: the run used more than {RUN_CPU_S} CPU seconds "
                                                f"(about 3x a quiet cold run); something scores far more than it should")
    with open(cache / "runs.log", "a") as log:  # which worker ran what, and its CPU time
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {tuned.name} {' '.join(extra)} cpu={cpu:.0f}s\n")
    results = json.loads((report / "report.json").read_text())["results"]
    return done.returncode, {r["capability"]: r for r in results}, done.stdout


def _runs(cache: Path) -> list[str]:
    return (cache / "runs.log").read_text().splitlines() if (cache / "runs.log").exists() else []


def test_careful_adapter_keeps_general_skills(embedded_base, shared_cache, tmp_path) -> None:
    code, results, output = _run(ROOT / "example_suites/adapters/careful", tmp_path, shared_cache)
    assert code == 0, output[-3000:]
    assert {r["verdict"] for r in results.values()} == {"pass"}
    assert {"knowledge", "arithmetic", "language", "instructions", "writing", "writing (KL drift)",
            "contract review", "contract review (reviews NLL)"} <= set(results)
    _learned_the_domain(results)


def _learned_the_domain(results: dict) -> None:
    """Held-out contract reviews became more likely on (nearly) every item."""
    reviews = results["contract review (reviews NLL)"]
    assert reviews["delta"] < -0.05 and reviews["gained"] >= 0.9 * reviews["n"], reviews


def test_aggressive_adapter_is_caught(embedded_base, shared_cache, tmp_path) -> None:
    code, results, output = _run(ROOT / "example_suites/adapters/aggressive", tmp_path, shared_cache)
    assert code == 1, output[-3000:]
    verdicts = {name: r["verdict"] for name, r in results.items()}
    # forgot: facts, sums, format instructions, everyday writing (legal register, drift)
    for name in ("knowledge", "arithmetic", "instructions", "writing", "writing (KL drift)"):
        assert verdicts[name] == "fail", verdicts
        assert results[name]["forgotten_items"], f"{name}: the forgotten items are listed"
    assert verdicts["language"] == "pass" and verdicts["contract review"] == "pass", verdicts
    _learned_the_domain(results)
    assert "FAIL writing" in output and "WHEREAS" in output and "First forgotten items" in output
    runs = _runs(shared_cache)
    if any(" careful " in run for run in runs[:-1]):  # the careful run came first, on this worker
        assert {run.split()[0] for run in runs} == {os.environ.get("PYTEST_XDIST_WORKER", "main")}, runs
        reused = int(re.search(r"forgetting cache: (\d+) item results reused", output).group(1))
        assert reused >= 1071, output[-2000:]  # every base result of the 7 suites came from the shared cache


def test_zero_adapter_passes_with_delta_zero(embedded_base, shared_cache, tmp_path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    adapter = tmp_path / "zero-adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(embedded_base)),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))  # B = 0: identical to base
    model.save_pretrained(str(adapter))
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    code, results, output = _run(adapter, tmp_path / "report", shared_cache,
                                 "--capability", "knowledge", "--capability", "writing")
    assert code == 0, output[-3000:]
    assert set(results) == {"knowledge", "writing", "writing (KL drift)"}
    for name in ("knowledge", "writing"):
        assert results[name]["delta"] == 0.0 and results[name]["forgotten"] == 0 == results[name]["gained"]
    assert results["writing (KL drift)"]["tuned_score"] == 0.0


def test_sequential_verdicts_agree_and_stop_early_on_the_aggressive_adapter(embedded_base, shared_cache,
                                                                           tmp_path) -> None:
    # the items come from the shared cache (the runs above scored them); the looks still decide
    code, results, output = _run(ROOT / "example_suites/adapters/aggressive", tmp_path, shared_cache,
                                 "--forgetting-sequential=on")
    assert code == 1, output[-3000:]
    verdicts = {name: r["verdict"] for name, r in results.items()}
    assert {n for n, v in verdicts.items() if v == "fail"} == {"knowledge", "arithmetic", "instructions",
                                                                "writing", "writing (KL drift)"}, verdicts
    early = {name for name, r in results.items() if r["n"] < r["suite_size"]}
    assert {"knowledge", "instructions"} <= early, results
    assert "decided after" in output and "sequential verdicts:" in output
