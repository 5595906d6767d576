"""Start-up overhead of the plugin: a pytest start-up that loads plugins, with it vs without.

    python benchmarks/startup_overhead.py [--runs 15]

Each run is ``python -m pytest --collect-only -q -p no:cacheprovider`` in an empty temporary
folder (no tests: exit code 5, "no tests collected", is expected). Unlike ``pytest --version``,
which pytest 9 answers before loading any plugin, this loads every installed plugin, parses the
options and ini keys, runs ``pytest_configure`` and a collection. "Without" disables the
installed entry point with ``-p no:forgetting`` (the same as not having the plugin installed).
Runs are interleaved so background load hits both alike; the medians are printed.

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
    args = parser.parse_args(argv)
    env = _environment()
    with tempfile.TemporaryDirectory(prefix="forgetting-startup-") as name:
        folder = _empty_project(Path(name))
        with_plugin = _pytest(folder)
        without = _pytest(folder, "-p", f"no:{PLUGIN}")
        timed(with_plugin, folder, env), timed(without, folder, env)  # warm the file cache
        samples: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(args.runs):  # interleaved so background load hits both alike
            samples["with"].append(timed(with_plugin, folder, env))
            samples["without"].append(timed(without, folder, env))
    check = heavy_module_check(env)
    median_with = statistics.median(samples["with"])
    median_without = statistics.median(samples["without"])
    result = {
        "command": "python -m pytest --collect-only -q (empty folder) [-p no:forgetting]",
        "runs": args.runs,
        "median_with_ms": round(1000 * median_with, 1),
        "median_without_ms": round(1000 * median_without, 1),
        "added_ms": round(1000 * (median_with - median_without), 1),
        "plugin_active_in_check": check["plugin_active"],
        "heavy_modules_loaded_after_startup": check["heavy_modules_loaded"],
    }
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
