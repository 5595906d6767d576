"""Cost of checking several candidates in one run: 3 candidates against 1, on the example suites.

    python benchmarks/candidates.py [--keep]

Runs ``pytest example_suites`` twice, cold (an empty result cache each time), in fresh
processes on the embedded SmolLM2-135M-Instruct, float32 on CPU:

* 1 candidate: the careful adapter;
* 3 candidates: the careful adapter and two variations of it (its LoRA B weights x1.05 and
  x0.95, as the next pushes to an adapter repo or neighbouring checkpoints would be), given as
  three ``--tuned-model`` options.

The base is scored once per suite in both runs (counted by a conftest through the session's
``runs``), so 3 candidates ideally cost 1 base + 3 tuned scorings against 1 + 1: a ratio of
2.0 for suites where base and tuned cost the same. Prints the wall times, the ratio, each
model's suite runs, and every candidate's verdicts (which must equal the single run's for the
careful adapter).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAREFUL = ROOT / "example_suites/adapters/careful"

CONFTEST = """
import json
from pytest_forgetting.plugin import session_of

def pytest_unconfigure(config):
    session = session_of(config)
    if session is not None:
        with open({path!r}, "w") as f:
            json.dump(dict(session.runs), f)
"""


def scaled_adapter(folder: Path, factor: float, source: Path = CAREFUL) -> Path:
    """A copy of ``source`` with its LoRA B weights times ``factor`` (a slightly different adapter)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, folder)
    weights = load_file(str(folder / "adapter_model.safetensors"))
    save_file({name: t * factor if "lora_B" in name else t for name, t in weights.items()},
              str(folder / "adapter_model.safetensors"))
    return folder


def run(candidates: list[Path], workdir: Path, label: str) -> dict:
    """One cold pytest session over the example suites; its wall time, runs and verdicts."""
    runs_file, xml_file = workdir / f"{label}-runs.json", workdir / f"{label}.xml"
    plugin = workdir / f"{label}_runs_plugin.py"
    plugin.write_text(CONFTEST.format(path=str(runs_file)))
    command = [sys.executable, "-m", "pytest", "example_suites", "-q", "-p", "no:randomly", "-p", "no:xdist",
               "-p", plugin.stem, *[f"--tuned-model={c}" for c in candidates], "--base-model=embedded",
               f"--forgetting-cache-dir={workdir / (label + '-cache')}", f"--junitxml={xml_file}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(workdir), "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - started
    if not runs_file.exists():
        raise SystemExit(f"the {label} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    verdicts = {}
    for case in ET.parse(xml_file).getroot().iter("testcase"):
        verdicts[case.get("name")] = "failed" if case.find("failure") is not None else "passed"
    return {"seconds": seconds, "runs": json.loads(runs_file.read_text()), "verdicts": verdicts,
            "exit": done.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (adapters, caches)")
    args = parser.parse_args(argv)
    from pytest_forgetting.embedded import ensure_embedded_model

    ensure_embedded_model()
    workdir = Path(tempfile.mkdtemp(prefix="forgetting-candidates-"))
    try:
        up = scaled_adapter(workdir / "careful-x1.05", 1.05)
        down = scaled_adapter(workdir / "careful-x0.95", 0.95)
        one = run([CAREFUL], workdir, "one")
        three = run([CAREFUL, up, down], workdir, "three")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    same = all(three["verdicts"].get(f"{name}[careful]") == verdict for name, verdict in one["verdicts"].items())
    print(json.dumps({"one": one, "three": three}, indent=1))
    print(f"1 candidate: {one['seconds']:.1f} s; 3 candidates: {three['seconds']:.1f} s; "
          f"ratio {three['seconds'] / one['seconds']:.2f}x (ideal for equal base/tuned cost: 2.0x)")
    print(f"suite runs: base {one['runs'].get('base')} vs {three['runs'].get('base')} (once per suite either way); "
          f"careful's verdicts {'identical' if same else 'DIFFER'} in both runs")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
