"""Forgetting during training, for real: TRL's SFTTrainer on the embedded SmolLM2, the callback, then a sweep.

    python scripts/training_demo.py [--out out/training-demo] [--every 1] [--samples 40] [--no-sweep]

1. Trains the aggressive recipe of ``scripts/train_adapters.py`` (LoRA rank 4, alpha 32, every
   linear layer, learning rate 2e-3 with 2 warmup steps then linear decay, batch 4, at most 60
   steps, contract reviews only, loss on the answers only) with ``SFTTrainer``, saving a
   checkpoint every ``--every`` steps, and :class:`~pytest_forgetting.training.ForgettingCallback`
   scoring the example checks (``example_suites/checks.toml``, ``--samples`` seeded items each)
   every ``--every`` steps with ``stop_on_forgetting``. The callback writes its reports and the
   forgetting curve to ``OUT/callback``.
2. Sweeps the saved checkpoints with the plugin on the full example suites:
   ``pytest example_suites --tuned-model "OUT/run/checkpoint-*" --forgetting-report OUT/sweep``,
   whose sweep report recommends a checkpoint.

Prints the stop step, the reason, the hints, and the sweep's recommendation, and writes
``OUT/summary.json``. About 10-20 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import contract_data  # noqa: E402  (a sibling script)

#: The aggressive recipe (scripts/train_adapters.py, TRAIN_SETTINGS["aggressive"]).
RECIPE = {"rank": 4, "alpha": 32, "learning_rate": 2e-3, "warmup_steps": 2, "steps": 60, "batch_size": 4,
          "max_length": 160, "examples": 240, "seed": 0,
          "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def train(out: Path, every: int, samples: int) -> dict:
    """Train with the callback; the run's outcome."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from pytest_forgetting.embedded import ensure_embedded_model
    from pytest_forgetting.training import ForgettingCallback

    torch.set_num_threads(2)
    path = str(ensure_embedded_model())
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(RECIPE["seed"])
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=RECIPE["rank"], lora_alpha=RECIPE["alpha"], lora_dropout=0.0,
                                             target_modules=RECIPE["target_modules"], task_type="CAUSAL_LM"))
    rows = contract_data.contract_examples(RECIPE["examples"], seed=RECIPE["seed"])
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                               "completion": [{"role": "assistant", "content": r["answer"]}]} for r in rows])
    args = SFTConfig(output_dir=str(out / "run"), learning_rate=RECIPE["learning_rate"], max_steps=RECIPE["steps"],
                     warmup_steps=RECIPE["warmup_steps"], lr_scheduler_type="linear",
                     per_device_train_batch_size=RECIPE["batch_size"], max_length=RECIPE["max_length"],
                     save_strategy="steps", save_steps=every, logging_steps=every, report_to=[], use_cpu=True,
                     seed=RECIPE["seed"], disable_tqdm=True, dataloader_num_workers=0, packing=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    callback = ForgettingCallback(trainer, ROOT / "example_suites" / "checks.toml", every=every, samples=samples,
                                  stop_on_forgetting=True, report_dir=out / "callback")
    trainer.add_callback(callback)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    curve = [{"step": entry["step"], "check_seconds": round(entry["seconds"], 1),
              **{r.capability: round(r.delta, 4) for r in entry["results"]}} for entry in callback.history]
    steps = [entry["train_runtime"] for entry in trainer.state.log_history if "train_runtime" in entry]
    checking = callback.base_seconds + sum(entry["seconds"] for entry in callback.history)
    return {"recipe": RECIPE, "every": every, "samples": samples, "stopped_at": trainer.state.global_step,
            "stopped": callback.stopped, "hints": callback.hint, "last_step_held": callback.last_step_held(),
            "train_and_check_seconds": round(seconds, 1), "base_check_seconds": round(callback.base_seconds, 1),
            "training_seconds_per_step": round((seconds - checking) / max(1, trainer.state.global_step), 2),
            "check_seconds_per_evaluation": round(sum(e["seconds"] for e in callback.history)
                                                  / max(1, len(callback.history)), 1),
            "curve": curve, "trainer_runtime": steps}


def sweep(out: Path) -> dict:
    """The plugin over every saved checkpoint; the sweep report's JSON."""
    report = out / "sweep"
    command = [sys.executable, "-m", "pytest", "example_suites", "-q", "-p", "no:randomly", "-p", "no:xdist",
               f"--tuned-model={out / 'run'}/checkpoint-*", f"--forgetting-report={report}",
               f"--forgetting-cache-dir={out / 'cache'}"]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(finished.stdout[-6000:])
    data = json.loads((report / "report.json").read_text()) if (report / "report.json").is_file() else {}
    return {"exit_code": finished.returncode, "seconds": round(seconds, 1), "sweep": data.get("sweep")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "training-demo")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--no-sweep", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"training": train(args.out, args.every, args.samples)}
    print(json.dumps(summary["training"], indent=2))
    if not args.no_sweep:
        summary["sweep"] = sweep(args.out)
        print(json.dumps(summary["sweep"], indent=2, default=str))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
