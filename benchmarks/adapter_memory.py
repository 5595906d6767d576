"""Peak RSS of a session with base + adapter vs the base alone (the embedded SmolLM2).

    python benchmarks/adapter_memory.py [--adapter DIR]

Each case runs in a fresh subprocess: load through the plugin's loader, score a few
multiple-choice items with every model, report ``ru_maxrss``. Without ``--adapter`` a
rank-8 all-linear LoRA with random weights is built in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASE = r"""
import json, resource, sys
from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair, score_suite
from pytest_forgetting.models.spec import inspect_folder
from pathlib import Path
base_dir, adapter = sys.argv[1], sys.argv[2]
options = LoadOptions(device="cpu", dtype="float32")
rows = [{"question": f"What is {i} + {i}?", "choices": [str(2 * i), str(2 * i + 1)], "answer": 0} for i in range(16)]
suite = load_suite(rows, "multiple_choice")
if adapter == "-":
    base = load_model(inspect_folder(Path(base_dir), base_dir, "base", "--base-model"), options, None)
    score_suite(base, suite)
else:
    base_spec, tuned_spec = resolve_pair(adapter, base_dir, options)
    base = load_model(base_spec, options, None)
    tuned = load_model(tuned_spec, options, base)
    score_suite(base, suite); score_suite(tuned, suite)
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_adapter(base_dir: str, folder: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(
        r=8, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(str(folder))


def run(base_dir: str, adapter: str) -> float:
    out = subprocess.run([sys.executable, "-c", CASE, base_dir, adapter], check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter")
    args = parser.parse_args(argv)
    from pytest_forgetting.embedded import ensure_embedded_model

    base_dir = str(ensure_embedded_model())
    with tempfile.TemporaryDirectory() as tmp:
        adapter = args.adapter
        if adapter is None:
            adapter = str(Path(tmp) / "lora")
            build_adapter(base_dir, Path(adapter))
        alone, paired = run(base_dir, "-"), run(base_dir, adapter)
    print(json.dumps({"base_alone_peak_rss_mb": alone, "base_plus_adapter_peak_rss_mb": paired,
                      "ratio": paired / alone}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
