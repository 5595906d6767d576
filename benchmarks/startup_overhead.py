"""Import overhead of the plugin: ``pytest --version`` with the plugin vs without.

    python benchmarks/startup_overhead.py [--runs 15]

"Without" disables the installed entry point with ``-p no:forgetting`` (the same as not
having the plugin installed). Also checks that importing the plugin loads no torch,
transformers, peft or datasets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    with_plugin = [sys.executable, "-m", "pytest", "--version"]
    without = [*with_plugin, "-p", "no:forgetting"]
    timed(with_plugin), timed(without)  # warm the file cache
    samples: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.runs):  # interleaved so background load hits both alike
        samples["with"].append(timed(with_plugin))
        samples["without"].append(timed(without))
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys, pytest_forgetting.plugin; print(' '.join(m for m in "
         "('torch', 'transformers', 'peft', 'datasets', 'scipy', 'numpy') if m in sys.modules))"],
        check=True, capture_output=True, text=True).stdout.strip()
    result = {
        "runs": args.runs,
        "median_with_s": statistics.median(samples["with"]),
        "median_without_s": statistics.median(samples["without"]),
        "added_ms": 1000 * (statistics.median(samples["with"]) - statistics.median(samples["without"])),
        "heavy_modules_imported_by_plugin": heavy.split(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
