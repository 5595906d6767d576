"""Peak RSS of a pytest session with base + adapter vs the base alone (the embedded SmolLM2).

    python benchmarks/adapter_memory.py [--adapter DIR] [--full-checkpoint]

Each case is a real ``pytest`` run in a fresh process, in a temporary project, with the
plugin's fixtures: "base alone" runs a test that scores a multiple-choice suite with
``base_model`` only; "base + adapter" runs ``forgetting.compare`` on the same suite (both
models). A conftest records ``ru_maxrss`` when the session ends. Without ``--adapter`` a
rank-8 all-linear LoRA with random weights is built in a temporary folder.
``--full-checkpoint`` adds, for contrast, a session whose tuned model is a full checkpoint
(the adapter merged into a copy of the base): two sets of weights. A byte-identical copy of
the base would not do: it has the base's fingerprint, so its scores are the base's and it never loads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CONFTEST = r"""
import json, resource

def pytest_unconfigure(config):
    with open("peak_rss.json", "w") as handle:
        json.dump({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, handle)
"""

TESTS = r"""
from pytest_forgetting import capability, load_suite, score_suite

ROWS = [{"question": f"What is {i} + {i}?", "choices": [str(2 * i), str(2 * i + 1)], "answer": 0}
        for i in range(16)]

def test_base_alone(base_model):
    assert score_suite(base_model, load_suite(ROWS, "multiple_choice")).metrics["acc"]

@capability("arithmetic")
def test_base_and_tuned(forgetting):
    assert forgetting.compare(forgetting.suite(ROWS, "multiple_choice")).n == len(ROWS)
"""


def build_adapter(base_dir: str, folder: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(
        r=8, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(str(folder))


def merged_checkpoint(base_dir: str, adapter: Path, folder: Path) -> Path:
    """The adapter merged into a copy of the base: a full fine-tune's checkpoint (other weights, same files).

    A byte-identical copy of the base would have the base's fingerprint, so the session would
    reuse the base's scores and never load it.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    shutil.copytree(base_dir, folder)
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(adapter)).merge_and_unload()
    merged.save_pretrained(str(folder))
    return folder


def session_peak_rss(project: Path, test: str, tuned: str, base_dir: str) -> float:
    """Peak RSS (MB) of one pytest session in ``project`` running ``test``."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-forgetting-cache",
               f"{project / 'test_memory.py'}::{test}", f"--tuned-model={tuned}", f"--base-model={base_dir}",
               "--device=cpu", "--dtype=float32"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pytest session failed ({test}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return float(json.loads((project / "peak_rss.json").read_text())["peak_rss_mb"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="a LoRA adapter of the embedded model (default: a random rank-8 one)")
    parser.add_argument("--full-checkpoint", action="store_true", help="also measure a full-checkpoint pair")
    args = parser.parse_args(argv)
    from pytest_forgetting.embedded import ensure_embedded_model

    base_dir = str(ensure_embedded_model())
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "conftest.py").write_text(CONFTEST)
        (project / "test_memory.py").write_text(TESTS)
        (project / "pytest.ini").write_text("[pytest]\n")
        adapter = args.adapter
        if adapter is None:
            adapter = str(Path(tmp) / "lora")
            build_adapter(base_dir, Path(adapter))
        figures = {
            "base_alone_peak_rss_mb": session_peak_rss(project, "test_base_alone", adapter, base_dir),
            "base_plus_adapter_peak_rss_mb": session_peak_rss(project, "test_base_and_tuned", adapter, base_dir),
        }
        figures["adapter_ratio"] = figures["base_plus_adapter_peak_rss_mb"] / figures["base_alone_peak_rss_mb"]
        if args.full_checkpoint:
            full = merged_checkpoint(base_dir, Path(adapter), Path(tmp) / "full-checkpoint")
            figures["base_plus_full_checkpoint_peak_rss_mb"] = session_peak_rss(
                project, "test_base_and_tuned", str(full), base_dir)
            figures["full_checkpoint_ratio"] = (figures["base_plus_full_checkpoint_peak_rss_mb"]
                                                / figures["base_alone_peak_rss_mb"])
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
