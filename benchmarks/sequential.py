"""Sequential verdicts: wall time and items scored on the example suites, and time to verdict against lm-eval.

    python benchmarks/sequential.py [--adapters careful,aggressive] [--lm-eval] [--large N] [--skip-example-suites]
        [--spending obrien-fleming,hwang-shih-decani] [--bfloat16] [--out FILE]

Everything runs one after another in fresh processes, on the embedded SmolLM2-135M-Instruct,
float32 on CPU, no result cache (``--no-forgetting-cache``):

* per adapter, ``pytest example_suites``:

  - **cold, off**: base and tuned scored on every item (today's run); it also writes a
    baseline of the base's results (``--forgetting-update-baseline``);
  - **cold, on**: ``--forgetting-sequential=on``, base and tuned scored look by look;
  - **pre-merge, on**: the base read from that baseline (what an adapter repo's CI does),
    sequential verdicts on;
  - the two runs with sequential verdicts once per spending function ``--spending`` names;
  - with ``--bfloat16``, all of them again with ``--dtype=bfloat16`` (the pre-merge run reading
    a baseline recorded in bfloat16 by that cold run), their ratios still to float32's cold run;

  and prints the wall times, the ratios to the cold run (targets: cold on <= 0.5x,
  pre-merge on <= 0.3x), every capability's verdict in each run (which must agree), the
  items each capability was decided on, and the information floor of the cold run and of
  the pre-merge run (:func:`information_floor`: their times if every capability had stopped
  at the fewest items any level-alpha test needs).
* ``--large N``: the three targets on one large suite, where looks pay: N held-out
  clause-reading questions from the adapters' contract generator (``scripts/contract_data.py``,
  a seed no example suite or training run uses), checked as a plain capability (tolerance
  0.05, non-inferiority). Per adapter: cold off (writing a baseline), cold on, pre-merge on,
  and two lm-eval runs on the same items, each in its own process.
* ``--lm-eval``: time to verdict on the example suites' multiple-choice capabilities
  (knowledge, language, contract review; 708 items): two lm-evaluation-harness runs, as a
  user would compare base and tuned (each its own process: import, load, score at batch size
  64, its fastest on this CPU; the tuned one loads the adapter with ``peft=``), against one
  pytest run of those three tests with sequential verdicts (cold) and without.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ROOT / "example_suites/adapters"
MC_TESTS = ["example_suites/test_knowledge.py", "example_suites/test_language.py",
            "example_suites/test_contract_domain.py::test_contract_review_not_worse"]
ENV = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

LM_EVAL_RUN = """
import json, sys, time
sys.path.insert(0, {benchmarks!r})
started = time.perf_counter()
from lm_eval_reference import build_requests, load_hflm, read_items
lm, total = load_hflm({model!r}, batch_size=64, **{kwargs!r}), 0
for path, plain in {suites!r}:
    items = read_items(path)
    contexts = [item["question"] for item in items] if plain else None
    requests = build_requests(items, contexts=contexts)
    assert len(lm.loglikelihood(requests, disable_tqdm=True)) == len(requests)
    total += len(items)
print(json.dumps({{"items": total, "seconds": time.perf_counter() - started}}))
"""


def pytest_run(adapter: Path, workdir: Path, label: str, *extra: str, tests: tuple[str, ...] = ("example_suites",)) -> dict:
    """One pytest process; its wall time, per-capability verdicts and items (from report.json)."""
    report = workdir / label
    command = [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:randomly", "-p", "no:xdist",
               f"--tuned-model={adapter}", "--base-model=embedded", "--no-forgetting-cache",
               f"--forgetting-report={report}", f"--junitxml={report}.xml", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - started
    if not (report / "report.json").exists():
        raise SystemExit(f"the {label} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    results = json.loads((report / "report.json").read_text())["results"]
    capabilities = {r["capability"]: {"verdict": r["verdict"], "n": r["n"], "of": r.get("suite_size") or r["n"],
                                      "binary": r["binary"], "tolerance_abs": r["tolerance_abs"],
                                      "alpha": r["test_alpha"], "test": r["test"].split("::")[-1]}
                    for r in results}
    tests = {case.get("name"): float(case.get("time", 0)) for case in ET.parse(f"{report}.xml").iter("testcase")}
    return {"seconds": round(seconds, 1), "exit": done.returncode, "capabilities": capabilities, "tests": tests}


def sequential_runs(adapter: Path, workdir: Path, label: str, baseline: Path, spendings: list[str],
                    tests: tuple[str, ...] = ("example_suites",), extra: tuple[str, ...] = (),
                    suffix: str = "") -> dict:
    """Per spending function, a cold run and a pre-merge run (the base from ``baseline``), sequential verdicts on.

    ``extra``: more pytest options for both (``--dtype=bfloat16``); ``suffix`` ends their labels.
    """
    runs = {}
    for spending in spendings:
        flags = ("--forgetting-sequential=on", f"--forgetting-sequential-spending={spending}", *extra)
        name = f"{label}-{spending}{suffix.replace(', ', '-')}"
        runs[f"cold, on, {spending}{suffix}"] = pytest_run(adapter, workdir, f"{name}-cold-on", *flags, tests=tests)
        runs[f"pre-merge, on, {spending}{suffix}"] = pytest_run(adapter, workdir, f"{name}-premerge-on", *flags,
                                                                f"--forgetting-baseline={baseline}", tests=tests)
    return runs


def example_suites(adapter_name: str, workdir: Path, spendings: list[str], bfloat16: bool = False) -> dict:
    adapter, baseline = ADAPTERS / adapter_name, workdir / f"{adapter_name}-baseline"
    cold_off = pytest_run(adapter, workdir, f"{adapter_name}-cold-off", "--forgetting-sequential=off",
                          f"--forgetting-baseline={baseline}", "--forgetting-update-baseline")
    runs = {"cold, off": cold_off, **sequential_runs(adapter, workdir, adapter_name, baseline, spendings)}
    if bfloat16:  # the same in bfloat16, its baseline recorded in bfloat16 (a baseline keeps its dtype)
        bf16 = ("--dtype=bfloat16",)
        baseline = workdir / f"{adapter_name}-baseline-bfloat16"
        runs["cold, off, bfloat16"] = pytest_run(adapter, workdir, f"{adapter_name}-cold-off-bfloat16", *bf16,
                                                 "--forgetting-sequential=off", f"--forgetting-baseline={baseline}",
                                                 "--forgetting-update-baseline")
        runs.update(sequential_runs(adapter, workdir, adapter_name, baseline, spendings, extra=bf16,
                                    suffix=", bfloat16"))
    same = all(run["capabilities"][c]["verdict"] == v["verdict"] for run in runs.values()
               for c, v in cold_off["capabilities"].items())
    print(f"\n== {adapter_name}: verdicts {'identical in every run' if same else 'DIFFER'}")
    for label, run in runs.items():
        print(f"  {label:<44} {run['seconds']:7.1f} s  {run['seconds'] / cold_off['seconds']:.2f}x of cold, off")
    on_runs = [label for label in runs if label != "cold, off"]
    print(f"  items decided on: {', '.join(f'({i + 1}) {label}' for i, label in enumerate(on_runs))}")
    print(f"  {'capability':<31}{'verdict':<8}" + "".join(f"{f'({i + 1})':>12}" for i in range(len(on_runs))))
    for capability, off in sorted(cold_off["capabilities"].items()):
        cells = "".join(f"{runs[label]['capabilities'][capability]['n']:>12}" for label in on_runs)
        print(f"  {capability:<31}{off['verdict']:<8}{cells}  of {off['of']}")
    print(f"  {'test (seconds)':<46}{'cold, off':>10}" + "".join(f"{f'({i + 1})':>8}" for i in range(len(on_runs))))
    for test, off_s in cold_off["tests"].items():
        cells = "".join(f"{runs[label]['tests'].get(test, 0):>8.1f}" for label in on_runs)
        print(f"  {test:<46}{off_s:>10.1f}{cells}")
    for spending in spendings:
        on = runs[f"cold, on, {spending}"]["capabilities"].values()
        seen, total = sum(c["n"] for c in on), sum(c["of"] for c in on)
        print(f"  items decided on (cold, on, {spending}): {seen} of {total} ({seen / total:.2f})")
    floor = information_floor(cold_off)
    print(f"  information floor (fewest items any level-alpha test needs for each verdict, time scaled by items):"
          f" {floor['seconds']:.1f} s, {floor['seconds'] / cold_off['seconds']:.2f}x of cold, off")
    for spending in spendings:
        premerge = information_floor(runs[f"pre-merge, on, {spending}"])
        floor[f"pre-merge, {spending}"] = premerge
        print(f"  information floor before a merge (the pre-merge run, {spending}, scaled the same way):"
              f" {premerge['seconds']:.1f} s, {premerge['seconds'] / cold_off['seconds']:.2f}x of cold, off")
    for capability, n in sorted(floor["items"].items()):
        print(f"    {capability:<31}{n:>5} of {cold_off['capabilities'][capability]['of']}")
    return {"runs": runs, "same_verdicts": same, "floor": floor}


def fewest_items(verdict: str, binary: bool, tolerance: float, alpha: float, size: int) -> int:
    """The fewest items with which any level-``alpha`` test can show ``verdict``, at best.

    Paired 0/1 scores differ by -1, 0 or 1 per item. A pass shows the drop is within the
    tolerance. On data where every item agrees (what a careful adapter gives: 0 to 3 of
    300 items differ), a null model at the boundary (a share ``tolerance`` of items
    forgotten, none gained) produces those data with probability ``(1 - tolerance)^n``, so
    no level-``alpha`` test passes on them before that falls to ``alpha``. A fail, on the
    data most in its favour (every item forgotten), needs ``((1 + tolerance) / 2)^n <= alpha``
    (the null model forgetting that share and gaining the rest). A metric without a finite
    range (NLL, KL) has no finite-sample pass at all (a few extreme items can hide in the
    rest of the suite), so it needs every item to pass.
    """
    if not binary:
        return size if verdict == "pass" else min(size, 2)
    chance = (1.0 - tolerance) if verdict == "pass" else (1.0 + tolerance) / 2.0
    return min(size, math.ceil(math.log(alpha) / math.log(chance)))


def information_floor(run: dict) -> dict:
    """``run``'s wall time if every capability stopped at :func:`fewest_items` (its test's time scaled).

    Each test's time is scaled by the floor's items over the items the run scored (all of
    them in a run without sequential verdicts). Of the cold run without sequential verdicts,
    a lower bound on any sequential procedure's time with these suites and verdicts; of the
    pre-merge run, the same for a run with the base read from a baseline (the drift test
    still runs the base). No chunking cost is counted. A ``significant`` pass is counted as a
    shown non-inferiority (without that, it needs no items at all: that policy passes unless
    a drop is shown).
    """
    items, saved = {}, 0.0
    for capability, c in run["capabilities"].items():
        n = fewest_items(c["verdict"], c["binary"], c["tolerance_abs"], c["alpha"], c["of"])
        items[capability] = n
        saved += run["tests"].get(c["test"], 0.0) * max(0.0, 1.0 - n / c["n"])
    return {"seconds": round(run["seconds"] - saved, 1), "items": items}


def lm_eval_comparison(adapter_name: str, workdir: Path, spending: str) -> dict:
    suites = [(str(ROOT / "pytest_forgetting/starter/data/knowledge.jsonl"), False),
              (str(ROOT / "pytest_forgetting/starter/data/language.jsonl"), True),
              (str(ROOT / "example_suites/data/contract_review.jsonl"), False)]
    timings = lm_eval_runs(ADAPTERS / adapter_name, suites)
    on = pytest_run(ADAPTERS / adapter_name, workdir, f"{adapter_name}-mc-on", "--forgetting-sequential=on",
                    f"--forgetting-sequential-spending={spending}", tests=tuple(MC_TESTS))
    off = pytest_run(ADAPTERS / adapter_name, workdir, f"{adapter_name}-mc-off", "--forgetting-sequential=off",
                     tests=tuple(MC_TESTS))
    timings[f"ours, on, {spending}"], timings["ours, off"] = on["seconds"], off["seconds"]
    print(f"\n== time to verdict, {adapter_name}, multiple choice (708 items per model)")
    for label, seconds in timings.items():
        print(f"  {label:<22}{seconds:7.1f} s")
    print(f"  lm-eval (two runs) / ours on: {timings['lm-eval, both'] / on['seconds']:.2f}x; "
          f"/ ours off: {timings['lm-eval, both'] / off['seconds']:.2f}x")
    return {"timings": timings, "ours_on": on, "ours_off": off}


LARGE_TEST = """
from pytest_forgetting import capability


@capability("contract review (large)", tolerance=0.05)
def test_large_suite(forgetting):
    forgetting.check(forgetting.suite({path!r}, "multiple_choice"))
"""
#: The large suite's seed: held out from the example suites' (7) and the training data's purpose tag.
LARGE_SEED = 101


def lm_eval_runs(adapter: Path, suites: list) -> dict:
    """Two lm-eval runs (base, then tuned with ``peft=``), each its own process; their wall times."""
    from pytest_forgetting.embedded import ensure_embedded_model

    model, timings, started = str(ensure_embedded_model()), {}, time.perf_counter()
    for label, kwargs in (("lm-eval base", {}), ("lm-eval tuned", {"peft": str(adapter)})):
        script = LM_EVAL_RUN.format(benchmarks=str(ROOT / "benchmarks"), suites=suites, model=model, kwargs=kwargs)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=ENV)
        if done.returncode:
            raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
        timings[label] = round(time.perf_counter() - t0, 1)
    timings["lm-eval, both"] = round(time.perf_counter() - started, 1)
    return timings


def large_suite(adapter_name: str, workdir: Path, size: int, spendings: list[str]) -> dict:
    """The three targets on one suite of ``size`` items (see the module docstring)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from contract_data import contract_mc_items
    finally:
        sys.path.pop(0)
    data = workdir / f"contract_large_{size}.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps(row) + "\n" for row in contract_mc_items(size, seed=LARGE_SEED)))
    test = workdir / "large" / "test_large_suite.py"
    test.parent.mkdir(exist_ok=True)
    test.write_text(LARGE_TEST.format(path=str(data)))
    adapter, baseline = ADAPTERS / adapter_name, workdir / f"{adapter_name}-large-baseline"
    tests = (str(test), f"--rootdir={test.parent}")
    off = pytest_run(adapter, workdir, f"{adapter_name}-large-off", "--forgetting-sequential=off",
                     f"--forgetting-baseline={baseline}", "--forgetting-update-baseline", tests=tests)
    runs = {"cold, off": off, **sequential_runs(adapter, workdir, f"{adapter_name}-large", baseline, spendings, tests)}
    lm_eval = lm_eval_runs(adapter, [(str(data), False)])
    (capability, c_off), = off["capabilities"].items()
    same = all(run["capabilities"][capability]["verdict"] == c_off["verdict"] for run in runs.values())
    print(f"\n== {adapter_name}: one suite of {size} items ({capability}); verdict {c_off['verdict']}"
          f"{' in every run' if same else ', runs DIFFER'}")
    print(f"  {'cold, off':<36} {off['seconds']:7.1f} s  {size} items per model")
    for label, run in runs.items():
        if label == "cold, off":
            continue
        target = "0.5x" if label.startswith("cold") else "0.3x"
        print(f"  {label:<36} {run['seconds']:7.1f} s  {run['seconds'] / off['seconds']:.2f}x of cold, off "
              f"(target <= {target}); decided after {run['capabilities'][capability]['n']} of {size}")
    both = lm_eval["lm-eval, both"]
    print(f"  {'lm-eval, both':<36} {both:7.1f} s  (base {lm_eval['lm-eval base']} s, tuned {lm_eval['lm-eval tuned']} s):"
          f" {both / off['seconds']:.2f}x of ours off")
    for spending in spendings:
        print(f"    {both / runs[f'cold, on, {spending}']['seconds']:.2f}x of ours cold, on, {spending} (target >= 4x)")
    return {"runs": runs, "lm-eval": lm_eval, "same_verdicts": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", default="careful,aggressive")
    parser.add_argument("--lm-eval", action="store_true", help="also time two lm-eval runs against ours")
    parser.add_argument("--skip-example-suites", action="store_true")
    parser.add_argument("--large", type=int, metavar="N", help="also measure the targets on one suite of N items")
    parser.add_argument("--spending", default="hwang-shih-decani",
                        help="comma-separated spending functions to run sequential verdicts with [hwang-shih-decani]")
    parser.add_argument("--bfloat16", action="store_true",
                        help="example suites: the runs again in bfloat16 (--dtype=bfloat16), against float32's cold run")
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    args = parser.parse_args(argv)
    spendings = args.spending.split(",")
    from pytest_forgetting.embedded import ensure_embedded_model

    ensure_embedded_model()
    workdir = Path(tempfile.mkdtemp(prefix="forgetting-sequential-"))
    figures: dict = {}
    try:
        for name in args.adapters.split(","):
            if not args.skip_example_suites:
                figures[name] = example_suites(name, workdir, spendings, args.bfloat16)
            if args.lm_eval:
                figures[f"{name} lm-eval"] = lm_eval_comparison(name, workdir, spendings[0])
            if args.large:
                figures[f"{name} large"] = large_suite(name, workdir, args.large, spendings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    return 0 if all(f.get("same_verdicts", True) for f in figures.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
