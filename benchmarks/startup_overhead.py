"""Start-up overhead of the plugin: a pytest start-up that loads plugins, with it vs without.

    python benchmarks/startup_overhead.py [--runs 15] [--compare-tree DIR]

Each run is ``python -m pytest --collect-only -q -p no:cacheprovider`` in an empty temporary
folder (no tests: exit code 5, "no tests collected", is expected). Unlike ``pytest --version``,
which pytest 9 answers before loading any plugin, this loads every installed plugin, parses the
options and ini keys, runs ``pytest_configure`` and a collection. "Without" disables the
installed entry point with ``-p no:forgetting`` (the same as not having the plugin installed).
Runs are interleaved so background load hits both alike; the medians are printed, and the
median of the per-run differences. ``plugin_import_ms`` is the median time of importing the
plugin once pytest is imported (``-X importtime``, one process per sample): on a machine whose
pytest start-ups vary by tens of milliseconds it is the steadier figure. ``--compare-tree DIR`` times a
third configuration in the same loop: the plugin of another checkout (e.g. the last release, a
``git worktree``), put first on ``PYTHONPATH``.

It also checks, in a pytest run with the plugin active, that after start-up (at
``pytest_sessionfinish``) none of torch, transformers, peft, datasets has been imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "peft", "datasets")
PLUGIN = "forgetting"  # the pytest11 entry-point name in pyproject.toml
NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED

CHECK_CONFTEST = f"""
import json, sys

def pytest_sessionfinish(session, exitstatus):
    pm = session.config.pluginmanager
    record = {{
        "plugin_active": pm.has_plugin({PLUGIN!r}) and pm.get_plugin({PLUGIN!r}) is not None,
        "heavy_modules_loaded": sorted(m for m in {HEAVY!r} if m in sys.modules),
    }}
    with open("modules.json", "w") as f:
        json.dump(record, f)
"""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(name, None)
    return env


def _pytest(folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra]


def _empty_project(folder: Path) -> Path:
    """An empty ``pytest.ini`` makes the folder the rootdir (no ini file above it is read)."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    return folder


def timed(command: list[str], folder: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode not in (0, NO_TESTS):
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stdout}")
    return elapsed


def import_cost_us(env: dict[str, str]) -> int:
    """Microseconds ``import pytest_forgetting.plugin`` takes once pytest is imported (``-X importtime``).

    Steadier than whole pytest start-ups on a noisy machine: one process, only the plugin's own
    modules counted.
    """
    code = "import pytest, _pytest.config; import pytest_forgetting.plugin"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=env, cwd=tempfile.gettempdir())
    line = [row for row in done.stderr.splitlines() if row.rstrip().endswith("| pytest_forgetting.plugin")][-1]
    return int(line.split("|")[1])


def heavy_module_check(env: dict[str, str]) -> dict[str, object]:
    """Run pytest with the plugin in a folder whose conftest records ``sys.modules`` at the end."""
    with tempfile.TemporaryDirectory(prefix="forgetting-startup-check-") as name:
        folder = _empty_project(Path(name))
        (folder / "conftest.py").write_text(CHECK_CONFTEST)
        timed(_pytest(folder), folder, env)
        return json.loads((folder / "modules.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare-tree", metavar="DIR",
                        help="also time the plugin of another checkout (e.g. the last release, via PYTHONPATH), "
                             "interleaved with the others")
    args = parser.parse_args(argv)
    env = _environment()
    other_env = {**env, "PYTHONPATH": str(Path(args.compare_tree).resolve())} if args.compare_tree else None
    with tempfile.TemporaryDirectory(prefix="forgetting-startup-") as name:
        folder = _empty_project(Path(name))
        with_plugin = _pytest(folder)
        without = _pytest(folder, "-p", f"no:{PLUGIN}")
        timed(with_plugin, folder, env), timed(without, folder, env)  # warm the file cache
        if other_env:
            timed(with_plugin, folder, other_env)
        samples: dict[str, list[float]] = {"with": [], "without": [], "other": []}
        for _ in range(args.runs):  # interleaved so background load hits both alike
            samples["with"].append(timed(with_plugin, folder, env))
            samples["without"].append(timed(without, folder, env))
            if other_env:
                samples["other"].append(timed(with_plugin, folder, other_env))
        imports: dict[str, list[int]] = {"this": [], "other": []}
        for _ in range(args.runs):
            imports["this"].append(import_cost_us(env))
            if other_env:
                imports["other"].append(import_cost_us(other_env))
    check = heavy_module_check(env)
    median_with = statistics.median(samples["with"])
    median_without = statistics.median(samples["without"])
    paired = statistics.median(w - o for w, o in zip(samples["with"], samples["without"]))
    result = {
        "command": "python -m pytest --collect-only -q (empty folder) [-p no:forgetting]",
        "runs": args.runs,
        "median_with_ms": round(1000 * median_with, 1),
        "median_without_ms": round(1000 * median_without, 1),
        "added_ms": round(1000 * (median_with - median_without), 1),
        "added_ms_paired_median": round(1000 * paired, 1),
        "plugin_import_ms": round(statistics.median(imports["this"]) / 1000, 2),
        "plugin_active_in_check": check["plugin_active"],
        "heavy_modules_loaded_after_startup": check["heavy_modules_loaded"],
    }
    if other_env:
        other_paired = statistics.median(w - o for w, o in zip(samples["other"], samples["without"]))
        result.update({"compare_tree": args.compare_tree,
                       "compare_tree_median_with_ms": round(1000 * statistics.median(samples["other"]), 1),
                       "compare_tree_added_ms_paired_median": round(1000 * other_paired, 1),
                       "compare_tree_plugin_import_ms": round(statistics.median(imports["other"]) / 1000, 2)})
    print(json.dumps(result, indent=2))
    if not check["plugin_active"]:
        print("check FAILED: the plugin was not active in the check run", file=sys.stderr)
        return 1
    if check["heavy_modules_loaded"]:
        print(f"check FAILED: start-up imported {', '.join(check['heavy_modules_loaded'])}", file=sys.stderr)
        return 1
    print(f"check passed: none of {', '.join(HEAVY)} imported after start-up with the plugin active")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
