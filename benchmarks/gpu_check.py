"""The example suites on a GPU in bfloat16 (transformers backend): items/s, peak CUDA memory, verdicts.

Meant for a machine with a GPU (a self-hosted runner, or a session lent one). Runs
``pytest example_suites`` for each shipped adapter in a fresh process with ``--device cuda
--dtype bfloat16`` and no result cache, and prints per adapter the wall time, items/s, the
peak CUDA memory the session allocated and every capability's verdict, as JSON.
``--device cpu --dtype float32`` runs the same on a CPU (to try the script).

    python benchmarks/gpu_check.py [--device cuda] [--dtype bfloat16] [--adapters careful,aggressive] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ROOT / "example_suites" / "adapters"

CONFTEST = """
import json, os
from pytest_forgetting.plugin import session_of

def pytest_unconfigure(config):
    session = session_of(config)
    if session is None:
        return
    peak = None
    try:
        import torch
        if torch.cuda.is_available():
            peak = torch.cuda.max_memory_allocated() / 2**20
    except ImportError:
        pass
    items = sum(result.suite_size or result.n for result in session.results) * 2
    with open(os.environ["GPU_CHECK_OUT"], "w") as out:
        json.dump({"peak_cuda_mib": peak, "items_scored": items,
                   "verdicts": {r.capability: {"verdict": r.verdict, "delta": round(r.delta, 4)}
                                for r in session.results}}, out)
"""


def run(adapter: str, device: str, dtype: str, workdir: Path) -> dict:
    """One pytest run of the example suites against ``adapter``; its figures."""
    out = workdir / f"{adapter}.json"
    (workdir / "gpu_check_plugin.py").write_text(CONFTEST)
    command = [sys.executable, "-m", "pytest", "example_suites", "-q", "-p", "no:randomly", "-p", "no:xdist",
               "-p", "gpu_check_plugin", f"--tuned-model={ADAPTERS / adapter}", "--base-model=embedded",
               f"--device={device}", f"--dtype={dtype}", "--no-forgetting-cache"]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                               env={**os.environ, "GPU_CHECK_OUT": str(out), "HF_HUB_OFFLINE": "1",
                                    "PYTHONPATH": str(workdir)})
    seconds = time.perf_counter() - started
    if not out.exists():
        raise SystemExit(f"pytest wrote no figures (exit {completed.returncode}):\n{completed.stdout[-3000:]}"
                         f"\n{completed.stderr[-3000:]}")
    figures = json.loads(out.read_text())
    figures.update(seconds=round(seconds, 1), items_per_second=round(figures["items_scored"] / seconds, 1),
                   pytest_exit=completed.returncode)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--adapters", default="careful,aggressive")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: no CUDA device here; run it on a machine with a GPU (or pass --device cpu)")
    report = {"device": args.device, "dtype": args.dtype, "adapters": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for adapter in [a for a in args.adapters.split(",") if a]:
            report["adapters"][adapter] = run(adapter, args.device, args.dtype, Path(tmp))
            print(adapter, json.dumps(report["adapters"][adapter]), flush=True)
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
