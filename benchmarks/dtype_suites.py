"""float32 against bfloat16 on the example suites, test by test: where bfloat16 pays on this CPU.

    python benchmarks/dtype_suites.py [--adapter careful] [--rounds 1] [--sequential off] [--out FILE]

Runs ``pytest example_suites`` cold (base and tuned scored, no result cache) on the embedded
SmolLM2-135M-Instruct with ``--dtype float32`` and with ``--dtype bfloat16``, each in its own
process, one after the other (``--rounds N`` alternates them N times; each test's time is
the fastest of its rounds). Prints each test's time under both dtypes and their ratio, each
capability's verdict under both (which should agree), and the wall times. bfloat16 on a CPU
is opt-in (``--dtype bfloat16``); it pays where the CPU has ``avx512_bf16`` or AMX, and this
shows for which kinds of suite. Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DTYPES = ("float32", "bfloat16")


def cpu_flags() -> list[str]:
    """This CPU's bfloat16 features (``avx512_bf16``, ``amx_bf16``), from /proc/cpuinfo."""
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return sorted(words & {"avx512_bf16", "amx_bf16", "amx_tile"})


def run(adapter: str, dtype: str, sequential: str, workdir: Path, label: str) -> dict:
    """One cold pytest run of the example suites (:func:`sequential.pytest_run`); its wall time, test times and verdicts."""
    from sequential import pytest_run

    done = pytest_run(ROOT / "example_suites/adapters" / adapter, workdir, label, f"--dtype={dtype}",
                      f"--forgetting-sequential={sequential}")
    return {"seconds": done["seconds"], "tests": done["tests"],
            "verdicts": {c: v["verdict"] for c, v in done["capabilities"].items()},
            "items": {c: v["n"] for c, v in done["capabilities"].items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="careful", help="careful or aggressive [careful]")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two dtypes this many times [1]")
    parser.add_argument("--sequential", default="off", choices=("off", "on"), help="sequential verdicts [off]")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    from pytest_forgetting.embedded import ensure_embedded_model

    ensure_embedded_model()
    print(f"CPU bfloat16 features: {', '.join(cpu_flags()) or 'none'}")
    runs: dict[str, list[dict]] = {dtype: [] for dtype in DTYPES}
    with tempfile.TemporaryDirectory(prefix="forgetting-dtype-") as folder:
        for round_ in range(args.rounds):
            for dtype in DTYPES:
                runs[dtype].append(run(args.adapter, dtype, args.sequential, Path(folder), f"{dtype}-{round_}"))
    fastest = {dtype: {test: min(r["tests"][test] for r in rs) for test in rs[0]["tests"]} for dtype, rs in runs.items()}
    wall = {dtype: min(r["seconds"] for r in rs) for dtype, rs in runs.items()}
    print(f"\n{args.adapter}, cold, sequential verdicts {args.sequential}, fastest of {args.rounds} round(s)")
    print(f"  {'test (seconds)':<46}{'float32':>9}{'bfloat16':>10}{'ratio':>8}")
    for test, seconds in fastest["float32"].items():
        other = fastest["bfloat16"].get(test, float("nan"))
        print(f"  {test:<46}{seconds:>9.1f}{other:>10.1f}{other / seconds:>7.2f}x")
    print(f"  {'wall time':<46}{wall['float32']:>9.1f}{wall['bfloat16']:>10.1f}{wall['bfloat16'] / wall['float32']:>7.2f}x")
    verdicts = {dtype: rs[0]["verdicts"] for dtype, rs in runs.items()}
    same = all(r["verdicts"] == verdicts["float32"] for rs in runs.values() for r in rs)
    print(f"  verdicts {'identical under both dtypes' if same else 'DIFFER'}:")
    for capability, verdict in sorted(verdicts["float32"].items()):
        print(f"    {capability:<31}{verdict:<6}{verdicts['bfloat16'].get(capability, '-'):<6}")
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "fastest": fastest, "wall": wall, "same_verdicts": same}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
