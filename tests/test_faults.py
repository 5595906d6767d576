"""Faults on real tiny models: signals a pytest subprocess sends itself (after N items, or between a temporary
file and ``os.replace``), corrupt bytes on disk, concurrent writers, a full disk (a 256 KiB tmpfs where it
mounts, ``/dev/full``, and always ``OSError(ENOSPC)`` injected at the write call)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_forgetting.storage.cache import ResultCache, read_entries

ROWS = {name: [{"id": f"{name}{i}", "question": f"{name} {i}: what is {i} + {i}?",
                "choices": [str(2 * i), str(2 * i + 1), "many"], "answer": 0} for i in range(12)]
        for name in ("sums", "more")}
TESTS = """
from pytest_forgetting import capability

@capability("sums", tolerance=1.0)
def test_sums(forgetting):
    forgetting.check(forgetting.suite("sums.jsonl", "multiple_choice"))

@capability("more", tolerance=1.0)
def test_more(forgetting):
    forgetting.check(forgetting.suite("more.jsonl", "multiple_choice"))
"""
#: Active only in a subprocess with FORGETTING_FAULT set: "score:SIG:N" signals after N items scored,
#: "replace:SIG:K:PART" at the K-th os.replace of a temporary file into a path containing PART.
FAULT_CONFTEST = """
import os, signal, threading, time
from pathlib import Path
FAULT = os.environ.get("FORGETTING_FAULT")
def _fire(sig):
    Path("fault-fired").write_text(FAULT)
    if sig == signal.SIGINT:  # Ctrl-C's own handling, even where this run inherited SIGINT ignored (a
        signal.signal(signal.SIGINT, signal.default_int_handler)  # job started with & outside job control)
    signal.pthread_kill(threading.get_ident(), sig)  # to this very thread, so that its sleep is cut short
    for _ in range(600):  # short sleeps: the handler runs between them wherever the signal landed
        time.sleep(0.05)  # SIGTERM ends the process here; SIGINT raises KeyboardInterrupt here
    raise SystemExit("the signal was not delivered")
if FAULT:
    point, name, count, *part = FAULT.split(":")
    sig, count, seen = getattr(signal, name), int(count), [0]
    if point == "score":
        from pytest_forgetting.scoring import progress
        _advance = progress.Progress.advance
        def advance(self, done):
            _advance(self, done)
            seen[0] += done
            if seen[0] >= count:
                _fire(sig)
        progress.Progress.advance = advance
    else:
        _replace = os.replace
        def replace(source, target, *args, **kwargs):
            if str(source).endswith(".tmp") and part[0] in str(target):
                seen[0] += 1
                if seen[0] == count:
                    _fire(sig)
            return _replace(source, target, *args, **kwargs)
        os.replace = replace
"""
MODEL_ARGS = ("--forgetting-batch-size=2", "-p", "no:randomly", "-p", "no:cacheprovider")


@pytest.fixture
def project(pytester: pytest.Pytester, tiny_models: dict[str, Path]) -> pytest.Pytester:
    pytester.makeini("[pytest]\nforgetting_cache_dir = results-cache\n")
    pytester.makeconftest(FAULT_CONFTEST)
    pytester.makepyfile(test_checks=TESTS)
    for name, rows in ROWS.items():
        (pytester.path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pytester.models = [f"--tuned-model={tiny_models['adapter']}", f"--base-model={tiny_models['base']}"]  # type: ignore[attr-defined]
    return pytester


def _run(project: pytest.Pytester, *args: str, outcomes: dict[str, int] = {"passed": 2}) -> pytest.RunResult:
    result = project.runpytest(*project.models, *MODEL_ARGS, *args)  # type: ignore[attr-defined]
    result.assert_outcomes(**outcomes)
    return result


def _subprocess(project: pytest.Pytester, fault: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A pytest run in its own process that injects ``fault`` into itself; returns once it has ended."""
    (marker := project.path / "fault-fired").unlink(missing_ok=True)
    env = {**os.environ, "FORGETTING_FAULT": fault, "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "pytest", *project.models, *MODEL_ARGS, *args]  # type: ignore[attr-defined]
    done = subprocess.run(command, cwd=project.path, env=env, capture_output=True, text=True, timeout=300)
    assert marker.read_text() == fault, done.stdout + done.stderr  # the fault was injected
    return done


def _report(folder: Path) -> str:
    """report.json without its clocks (what two runs of the same models must agree on)."""
    data = json.loads((folder / "report.json").read_text())
    data.pop("created")
    for result in data["results"]:
        for side in ("base", "tuned"):
            result.get("extra", {}).get(side, {}).pop("seconds", None)
    return json.dumps(data, sort_keys=True)


def _stats(result: pytest.RunResult) -> tuple[int, int]:
    found = re.search(r"forgetting cache: (\d+) item results reused, (\d+) scored", result.stdout.str())
    return (int(found.group(1)), int(found.group(2))) if found else (-1, -1)


def _consistent(folder: Path) -> int:
    """Every result file in ``folder`` verifies (temporaries and locks are never read): its entry count."""
    files = sorted(folder.rglob("*.json")) if folder.exists() else []
    assert all(read_entries(path) for path in files), "a file does not verify"
    return sum(len(read_entries(path)) for path in files)


def _temporaries(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*.tmp")]


_REFERENCE: dict[str, str] = {}


@pytest.fixture
def reference(project: pytest.Pytester) -> str:
    """report.json of an uninterrupted cold run (its own cache folder, removed after; once per session)."""
    if "report" not in _REFERENCE:
        _run(project, "--forgetting-report=reference", "--forgetting-cache-dir=reference-cache")
        shutil.rmtree(project.path / "reference-cache")
        _REFERENCE["report"] = _report(project.path / "reference")
    return _REFERENCE["report"]


SIGNALS = [pytest.param(signal.SIGINT, id="KeyboardInterrupt"), pytest.param(signal.SIGTERM, id="SIGTERM")]


def _ended_by(done: subprocess.CompletedProcess[str], sig: signal.Signals) -> None:
    if sig == signal.SIGINT:  # pytest's own handling: interrupted, no traceback from the plugin
        assert done.returncode == pytest.ExitCode.INTERRUPTED, done.stdout + done.stderr
        assert "KeyboardInterrupt" in done.stdout and "pytest_forgetting/" not in done.stderr
    else:
        assert done.returncode == -signal.SIGTERM, done.stdout + done.stderr


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("point", ["scoring", "cache-write"])
def test_interrupted_run_leaves_a_consistent_cache_and_the_next_run_matches(project, reference, sig, point) -> None:
    cache = project.path / "results-cache"
    # scoring: after 14 of 48 items (the base's "sums" done and stored, the tuned model's under way);
    # cache-write: the second cache file (the tuned model's "sums"), between its temporary file and os.replace
    fault = f"score:{sig.name}:14" if point == "scoring" else f"replace:{sig.name}:2:results-cache"
    _ended_by(_subprocess(project, fault), sig)
    assert (complete := _consistent(cache)) == 12  # the base's "sums": every entry stored before the fault
    assert sig != signal.SIGINT or not _temporaries(cache)  # an interrupted write removes its temporary file
    result = _run(project, "--forgetting-report=after")
    assert _stats(result) == (complete, 48 - complete)  # reuses exactly the complete entries
    assert _report(project.path / "after") == reference
    assert _consistent(cache) == 48 and not _temporaries(cache)  # a killed writer's file is cleaned up


@pytest.mark.parametrize("sig", SIGNALS)
def test_interrupted_baseline_write_leaves_a_consistent_baseline(project, reference, sig) -> None:
    baseline = project.path / "baseline"
    update = ("--no-forgetting-cache", f"--forgetting-baseline={baseline.name}")
    _run(project, "--no-forgetting-cache", "--forgetting-baseline=whole", "--forgetting-update-baseline")
    _ended_by(_subprocess(project, f"replace:{sig.name}:2:baseline/", *update, "--forgetting-update-baseline"), sig)
    files = sorted(baseline.glob("*.json"))
    assert [p.name.split("-")[0] for p in files] == ["sums"] and _consistent(baseline) == 12
    # a run that reads it: the complete file is used, the missing one means scoring the base
    _run(project, *update, "--forgetting-report=partial")
    assert _report(project.path / "partial") == reference
    _run(project, *update, "--forgetting-update-baseline")
    assert not _temporaries(baseline) and _consistent(baseline) == 24
    for path in sorted((project.path / "whole").glob("*.json")):  # same as recorded without a fault
        assert read_entries(baseline / path.name) == read_entries(path)
    _run(project, *update, "--forgetting-report=after")
    assert _report(project.path / "after") == reference


def _flip(text: str) -> str:
    data = bytearray(text.encode())
    for position in range(len(data) // 3, len(data) // 3 + 8):
        data[position] ^= 0xFF  # also makes the bytes invalid UTF-8
    return data.decode("latin-1")


def _resigned(text: str, change: Any) -> str:
    """``change`` applied to the entries, with a checksum that matches again (a deliberate edit)."""
    from pytest_forgetting.storage.cache import digest

    data = json.loads(text)
    data["entries"] = change(data["entries"])
    data["checksum"] = digest(data["entries"])
    return json.dumps(data)


def _tampered(text: str) -> str:
    data = json.loads(text)  # one metric changed: valid JSON, the old checksum
    next(iter(data["entries"].values()))["metrics"]["acc"] = 0.5
    return json.dumps(data)


WHOLE_FILE = {  # each makes the whole file unreadable: all 24 of its entries are scored again
    "bytes-flipped": _flip,
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "wrong-checksum": _tampered,
    "not-an-object": lambda text: "[1, 2, 3]",
    "entries-a-list": lambda text: _resigned(text, lambda e: list(e.values())),
}


def _bad_entries(text: str) -> str:
    """Three entries of the wrong shape, under a matching checksum: a string, a string metric, no record."""
    def change(entries: dict[str, Any]) -> dict[str, Any]:
        keys = list(entries)
        return {**entries, keys[0]: "oops", keys[1]: {**entries[keys[1]], "metrics": {"acc": "1"}},
                keys[2]: {"metrics": entries[keys[2]]["metrics"]}}
    return _resigned(text, change)


def _metrics(entries: dict[str, Any]) -> dict[str, Any]:
    return {key: entry["metrics"] for key, entry in entries.items()}  # log-likelihoods: float noise by batch


def test_corrupt_cache_files_are_detected_and_recomputed(project, reference) -> None:
    cache = project.path / "results-cache"
    _run(project)
    files = sorted(cache.rglob("*.json"))
    assert len(files) == 2  # one run key per model: both suites have the same settings
    pristine = {path: path.read_text() for path in files}
    names = list(WHOLE_FILE)
    rounds = [((names[i], WHOLE_FILE[names[i]]), (names[i + 1], WHOLE_FILE[names[i + 1]]), 48)
              for i in range(0, len(names), 2)] + [(("bad-entries", _bad_entries), ("intact", lambda t: t), 3)]
    for (first, corrupt_first), (second, corrupt_second), lost in rounds:
        files[0].write_text(corrupt_first(pristine[files[0]]), encoding="latin-1")
        files[1].write_text(corrupt_second(pristine[files[1]]), encoding="latin-1")
        result = _run(project, f"--forgetting-report={first}")
        assert _stats(result) == (48 - lost, lost), (first, second)
        assert _report(project.path / first) == reference, (first, second)
        for path in files:  # rewritten whole, verifying
            assert _metrics(read_entries(path)) == _metrics(json.loads(pristine[path])["entries"]), (first, second)


def _writer(folder: str, writer: int, barrier: Any, rounds: int) -> None:
    cache = ResultCache(Path(folder))
    barrier.wait()
    for round_ in range(rounds):
        cache.store("k" * 64, {f"w{writer}-{round_}-{i}": {"record": {"writer": writer}, "metrics": {"acc": 1.0}}
                               for i in range(3)} | {"shared": {"record": {}, "metrics": {"acc": 0.0}}})


def _reader(folder: str, barrier: Any, rounds: int, failures: Any) -> None:
    cache, seen = ResultCache(Path(folder)), 0
    barrier.wait()
    for _ in range(rounds):
        now = len(cache.load("k" * 64))
        if now < seen:  # an entry vanished, or a half-written file was read as empty
            failures.value += 1
        seen = max(seen, now)
        time.sleep(0.001)


def test_four_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, failures, rounds = context.Barrier(5), context.Value("i", 0), 40
    processes = [context.Process(target=_writer, args=(str(tmp_path), n, barrier, rounds)) for n in range(4)]
    processes.append(context.Process(target=_reader, args=(str(tmp_path), barrier, 400, failures)))
    for process in processes:
        process.start()
    assert [process.join(120) or process.exitcode for process in processes] == [0] * 5
    expected = {f"w{n}-{r}-{i}" for n in range(4) for r in range(rounds) for i in range(3)} | {"shared"}
    assert set(ResultCache(tmp_path).load("k" * 64)) == expected and failures.value == 0 and not _temporaries(tmp_path)


XDIST_TESTS = "\n".join(f"""
@capability("part{n}", tolerance=1.0)
def test_part{n}(forgetting):
    forgetting.compare(forgetting.suite(ROWS[{n}::4], "multiple_choice"))
""" for n in range(4))


def test_four_xdist_workers_share_one_run_key(project) -> None:
    pytest.importorskip("xdist")
    rows = ROWS["sums"] + ROWS["more"]
    project.makepyfile(test_checks=f"from pytest_forgetting import capability\nROWS = {rows!r}\n{XDIST_TESTS}")
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "4", *project.models, *MODEL_ARGS],  # type: ignore[attr-defined]
                          cwd=project.path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted((project.path / "results-cache").rglob("*.json"))  # the four parts share a run key per model
    assert len(files) == 2 and [len(read_entries(p)) for p in files] == [24, 24]
    assert _stats(_run(project, outcomes={"passed": 4})) == (48, 0)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real full file system: a 256 KiB tmpfs filled up (skipped where mounting is refused)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or mounted.returncode}); "
                    "the injected ENOSPC tests cover the same paths")
    try:
        with open(folder / "filler", "wb", buffering=0) as handle, pytest.raises(OSError, match="No space left"):
            while True:
                handle.write(b"\0" * 4096)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def inject_enospc(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``inject_enospc(module)``: every file ``module`` opens for writing fails with ENOSPC."""
    import builtins

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # names no file, as a failed write does
        return builtins.open(file, mode, *args, **kwargs)
    return lambda module: monkeypatch.setattr(module, "open", full_open, raising=False)


def _one_line(result: pytest.RunResult, pattern: str) -> None:
    out = result.stdout.str() + result.stderr.str()
    lines = [line for line in out.splitlines() if "could not write" in line]
    assert len(lines) == 1 and re.fullmatch(pattern, lines[0].strip()), out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out


FULL = r"to \S+: No space left on device \(errno 28\); free space there or "
LINES = {
    "report": rf"ERROR: pytest-forgetting: could not write the report \(report\.json\) {FULL}point "
              r"--forgetting-report at another folder",
    "junit": rf"ERROR: pytest-forgetting: could not write the JUnit XML \(junit\.xml\) {FULL}point --junitxml at "
             r"another folder",
    "cache": rf"\[forgetting\] warning: could not write the result cache {FULL}point --forgetting-cache-dir "
             r"elsewhere \(or --no-forgetting-cache\); this run goes on without caching",
    "baseline": rf"pytest-forgetting: could not write the baseline (sums|more)-\w+\.json {FULL}point "
                r"--forgetting-baseline at a writable folder",
}


def _check_full(project: pytest.Pytester, target: Path, what: str) -> None:
    """One run writing ``what`` into ``target`` (on a full disk): one line, the run's outcome as decided."""
    if what == "report":
        result = _run(project, "--no-forgetting-cache", f"--forgetting-report={target / 'report'}")
        _one_line(result, LINES["report"])
        assert result.ret == pytest.ExitCode.INTERNAL_ERROR and not _temporaries(target)
    elif what == "junit":
        result = _run(project, "--no-forgetting-cache", f"--junitxml={target / 'junit.xml'}")
        _one_line(result, LINES["junit"])
        result.stdout.fnmatch_lines(["*forgetting*", "*2 passed*"])  # the summary still follows
        assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    elif what == "cache":  # decided: an unwritable cache never fails the run
        result = _run(project, f"--forgetting-cache-dir={target / 'cache'}", "--forgetting-report=report")
        _one_line(result, LINES["cache"])
        assert result.ret == pytest.ExitCode.OK and not _temporaries(target)
    else:  # a baseline you asked to record fails the tests that record it
        result = _run(project, "--no-forgetting-cache", f"--forgetting-baseline={target / 'baseline'}",
                      "--forgetting-update-baseline", outcomes={"failed": 2})
        out = [line for line in result.stdout.str().splitlines()
               if "could not write" in line and not line.startswith("FAILED")]  # one line per test that records
        assert out and all(re.fullmatch(LINES["baseline"], line.strip()) for line in out), result.stdout.str()
        assert "Traceback" not in result.stdout.str() and not _temporaries(target)


@pytest.mark.parametrize("what", ["report", "junit", "cache", "baseline"])
def test_a_full_tmpfs(project, full_disk, what) -> None:
    _check_full(project, full_disk, what)


@pytest.mark.parametrize("what", ["report", "junit", "cache", "baseline"])
def test_an_injected_enospc(project, inject_enospc, tmp_path, what) -> None:
    import importlib  # through sys.modules: the module the run under test will import

    inject_enospc(importlib.import_module({"report": "pytest_forgetting.report.files", "junit": "_pytest.junitxml",
                                           "cache": "pytest_forgetting.storage.cache"}.get(what, "pytest_forgetting.storage.cache")))
    _check_full(project, tmp_path / "elsewhere", what)


def test_github_summary_on_dev_full(project, monkeypatch) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/dev/full")
    result = _run(project, "--no-forgetting-cache")
    _one_line(result, r"ERROR: pytest-forgetting: could not write the GitHub step summary \(full\) to /dev: No "
                      r"space left on device \(errno 28\); free space there or unset GITHUB_STEP_SUMMARY")
