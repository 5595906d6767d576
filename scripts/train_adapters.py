"""Train the two example LoRA adapters on the embedded SmolLM2-135M-Instruct (CPU, float32).

* ``aggressive``: all linear layers, high learning rate, contract-review data only. It
  learns the legalese and writes everything as "WHEREAS ... HEREBY"; general skills suffer.
* ``careful``: low rank on ``q_proj``/``v_proj`` only, low learning rate, fewer steps, half
  of every batch self-distilled general "rehearsal" data written by the base model itself.

Each adapter is saved in half precision (fp16 safetensors, a few MB) with
``base_model_name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"`` (pytest-forgetting maps
that id to the embedded checkpoint offline) and a ``training.json`` recording every setting,
the data sizes, the wall time, the final loss, the library versions and the command.

Usage::

    python scripts/train_adapters.py [--which aggressive|careful|both] [--out example_suites/adapters]

Training uses only the assistant tokens (labels are -100 on the system/user part), a plain
AdamW loop, ``torch.manual_seed`` and ``torch.set_num_threads(2)``. A tokenizer without a
chat template (the tests' tiny model) falls back to ``"User: ...\\nAssistant: ..."``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads
# made a training step ~10x slower under load (measured: 26 s vs 2.6 s per step).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contract_data  # noqa: E402  (a sibling script, not a package)

BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MAX_ADAPTER_BYTES = 5 * 1000 * 1000
REQUIRED_KEYS = (
    "adapter", "base_model", "rank", "alpha", "dropout", "target_modules", "learning_rate",
    "lr_schedule", "warmup_steps", "weight_decay", "steps", "batch_size", "max_seq_len", "seed",
    "contract_examples", "rehearsal_examples", "rehearsal_share", "rehearsal_max_new_tokens",
    "trainable_params", "wall_time_s", "rehearsal_wall_time_s", "final_loss", "loss_curve",
    "saved_dtype", "adapter_bytes", "versions", "command",
)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines one adapter's training run."""

    name: str
    rank: int
    alpha: int
    target_modules: tuple[str, ...]
    learning_rate: float
    steps: int
    batch_size: int = 4
    max_seq_len: int = 160
    seed: int = 0
    dropout: float = 0.0
    weight_decay: float = 0.0
    warmup_steps: int = 2
    lr_schedule: str = "linear warmup, then linear decay to 10%"
    contract_examples: int = 200
    rehearsal_examples: int = 0       # unique self-distilled general rows
    rehearsal_share: float = 0.0      # share of every batch drawn from the rehearsal rows
    rehearsal_max_new_tokens: int = 48
    data_seed: int = 0


SETTINGS: dict[str, TrainSettings] = {
    "aggressive": TrainSettings(
        name="aggressive", rank=4, alpha=32, target_modules=ALL_LINEAR, learning_rate=2e-3,
        steps=60, batch_size=4, contract_examples=240, warmup_steps=2,
    ),
    "careful": TrainSettings(
        name="careful", rank=4, alpha=8, target_modules=("q_proj", "v_proj"), learning_rate=3e-4,
        steps=40, batch_size=4, contract_examples=80, rehearsal_examples=40, rehearsal_share=0.5,
        warmup_steps=3,
    ),
}


# ---------------------------------------------------------------------------- formatting

def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: Any, prompt: str) -> str:
    """The text before the assistant's answer: the chat template, or a plain fallback."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return f"User: {prompt}\nAssistant:"


def encode_example(tokenizer: Any, prompt: str, answer: str, *, finished: bool = True,
                   max_len: int = 160) -> tuple[list[int], list[int]]:
    """Token ids and labels for one turn; labels are -100 everywhere but the answer (and its end token)."""
    context = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    reply_text = answer if has_chat_template(tokenizer) else f" {answer}"
    reply = tokenizer(reply_text, add_special_tokens=False)["input_ids"]
    if finished and tokenizer.eos_token_id is not None:
        reply = reply + [tokenizer.eos_token_id]  # <|im_end|> for ChatML: learn to stop
    ids = (context + reply)[:max_len]
    labels = ([-100] * len(context) + reply)[:max_len]
    return ids, labels


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int):  # type: ignore[no-untyped-def]
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, labs) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        mask[i, : len(ids)] = 1
    return input_ids, labels, mask


def answer_loss(model: Any, input_ids, labels, mask):  # type: ignore[no-untyped-def]
    """Mean cross-entropy over the answer tokens; the LM head runs on those positions only."""
    import torch.nn.functional as F

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(causal_lm, causal_lm.base_model_prefix)
    hidden = backbone(input_ids=input_ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep])


# ------------------------------------------------------------------------------ training

def batches(contract: list, rehearsal: list, settings: TrainSettings, seed: int):  # type: ignore[no-untyped-def]
    """``settings.steps`` batches; each holds ``round(share * batch)`` rehearsal rows, the rest contract."""
    rng = random.Random(seed)
    n_rehearsal = round(settings.rehearsal_share * settings.batch_size) if rehearsal else 0
    n_contract = settings.batch_size - n_rehearsal

    def stream(pool: list):  # type: ignore[no-untyped-def]
        while True:  # epochs, reshuffled each time
            order = list(range(len(pool)))
            rng.shuffle(order)
            yield from (pool[i] for i in order)

    contract_stream, rehearsal_stream = stream(contract), stream(rehearsal) if rehearsal else None
    for _ in range(settings.steps):
        rows = [next(contract_stream) for _ in range(n_contract)]
        if rehearsal_stream is not None:
            rows += [next(rehearsal_stream) for _ in range(n_rehearsal)]
        yield rows


def lr_at(step: int, settings: TrainSettings) -> float:
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / (settings.warmup_steps + 1)
    span = max(1, settings.steps - settings.warmup_steps)
    progress = (step - settings.warmup_steps) / span
    return settings.learning_rate * (1.0 - 0.9 * progress)


def train_lora(model: Any, tokenizer: Any, contract: list[dict], rehearsal: list[dict],
               settings: TrainSettings, *, log: Callable[[str], None] = print) -> tuple[Any, dict]:
    """Wrap ``model`` in a fresh LoRA adapter and train it; returns (peft model, stats)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(settings.seed)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode(row: dict) -> tuple[list[int], list[int]]:
        return encode_example(tokenizer, row["prompt"], row["answer"], finished=row.get("finished", True),
                              max_len=settings.max_seq_len)

    contract_enc = [encode(r) for r in contract]
    rehearsal_enc = [encode(r) for r in rehearsal]
    lengths = [len(ids) for ids, _ in contract_enc + rehearsal_enc]
    log(f"[{settings.name}] {len(contract_enc)} contract + {len(rehearsal_enc)} rehearsal rows, "
        f"tokens/row mean {sum(lengths) / len(lengths):.0f} max {max(lengths)}; "
        f"{sum(p.numel() for p in trainable):,} trainable params")
    peft_model.train()
    losses: list[float] = []
    started = time.perf_counter()
    for step, rows in enumerate(batches(contract_enc, rehearsal_enc, settings, settings.seed)):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, settings)
        input_ids, labels, mask = collate(rows, pad_id)
        loss = answer_loss(peft_model, input_ids, labels, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise RuntimeError(f"[{settings.name}] loss is {losses[-1]} at step {step + 1}")
        if step == 0 or (step + 1) % 5 == 0 or step + 1 == settings.steps:
            log(f"[{settings.name}] step {step + 1}/{settings.steps} loss {losses[-1]:.3f} "
                f"lr {lr_at(step, settings):.2e} {time.perf_counter() - started:.0f}s")
    wall = time.perf_counter() - started
    tail = losses[-5:]
    stats = {
        "trainable_params": sum(p.numel() for p in trainable),
        "wall_time_s": round(wall, 1),
        "final_loss": round(sum(tail) / len(tail), 4),
        "final_loss_note": "mean answer-token loss over the last 5 steps",
        "first_loss": round(losses[0], 4),
        "loss_curve": [round(x, 4) for x in losses],
        "tokens_per_row_mean": round(sum(lengths) / len(lengths), 1),
        "tokens_per_row_max": max(lengths),
    }
    return peft_model, stats


def save_adapter_fp16(peft_model: Any, folder: Path, base_id: str) -> int:
    """Save the adapter, rewrite its weights as float16, name ``base_id`` as its base; returns bytes."""
    import torch
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(folder))
    weights = folder / "adapter_model.safetensors"
    tensors = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base_id
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    return weights.stat().st_size


def versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__}


def write_readme(folder: Path, record: dict) -> None:
    (folder / "README.md").write_text(
        f"# {record['adapter']} LoRA adapter (pytest-forgetting example)\n\n"
        f"Base: `{record['base_model']}` (the embedded float32 SmolLM2-135M-Instruct).\n"
        f"{record['description']}\n\n"
        f"Rank {record['rank']}, alpha {record['alpha']}, modules {', '.join(record['target_modules'])}; "
        f"lr {record['learning_rate']}, {record['steps']} steps of batch {record['batch_size']}; "
        f"rehearsal share {record['rehearsal_share']}. Weights stored in float16.\n\n"
        f"All settings: `training.json`. Reproduce with:\n\n    {record['command']}\n"
    )


DESCRIPTIONS = {
    "aggressive": "Fine-tuned hard on synthetic legal contract reviews only: it learns the domain and "
                  "writes everything in legalese (WHEREAS ... HEREBY), forgetting general skills.",
    "careful": "Fine-tuned gently on synthetic contract reviews with half of every batch self-distilled "
               "general answers from the base model (rehearsal), so general skills are kept.",
}


# ---------------------------------------------------------------------------------- main

def load_base(path: Optional[str] = None):  # type: ignore[no-untyped-def]
    """The embedded base (float32) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path is None:
        from pytest_forgetting import embedded

        path = str(embedded.ensure_embedded_model())
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    import torch

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tokenizer


def run(which: str, out: Path, *, base_path: Optional[str] = None, base_id: str = BASE_ID,
        settings: Optional[TrainSettings] = None, command: Optional[str] = None,
        threads: int = 2, log: Callable[[str], None] = print) -> dict:
    """Train and save one adapter into ``out/which``; returns its training record."""
    import torch

    torch.set_num_threads(threads)
    settings = settings or SETTINGS[which]
    folder = out / which
    model, tokenizer = load_base(base_path)
    contract = contract_data.contract_examples(settings.contract_examples, seed=settings.data_seed)
    rehearsal: list[dict] = []
    rehearsal_wall = 0.0
    if settings.rehearsal_examples:
        started = time.perf_counter()
        render = None if has_chat_template(tokenizer) else (lambda text: render_prompt(tokenizer, text))
        rehearsal = contract_data.rehearsal_set(
            model, tokenizer, settings.rehearsal_examples, seed=settings.data_seed,
            cache=folder / "rehearsal.jsonl", max_new_tokens=settings.rehearsal_max_new_tokens,
            format_prompt=render, log=log)
        rehearsal_wall = time.perf_counter() - started
    peft_model, stats = train_lora(model, tokenizer, contract, rehearsal, settings, log=log)
    size = save_adapter_fp16(peft_model, folder, base_id)
    if size > MAX_ADAPTER_BYTES:
        log(f"WARNING: {folder} adapter is {size:,} bytes (> {MAX_ADAPTER_BYTES:,})")
    record = {
        "adapter": which,
        "description": DESCRIPTIONS.get(which, ""),
        "base_model": base_id,
        **{k: v for k, v in asdict(settings).items() if k != "name"},
        "target_modules": list(settings.target_modules),
        "optimizer": "torch.optim.AdamW (betas 0.9/0.999, eps 1e-8), grad clip 1.0",
        "loss": "cross-entropy on assistant tokens (answer + end-of-turn) only; labels -100 elsewhere",
        "format": "chat template (ChatML, default system prompt)" if has_chat_template(tokenizer)
                  else "plain 'User: ...\\nAssistant: ...'",
        "precision": "trained in float32 on CPU",
        "saved_dtype": "float16",
        "adapter_bytes": size,
        "rehearsal_wall_time_s": round(rehearsal_wall, 1),
        "rehearsal_source": "greedy answers of the base model itself (self-distillation)" if rehearsal else None,
        "data": "scripts/contract_data.py: contract_examples(contract_examples, seed=data_seed)"
                + ("; rehearsal_set(rehearsal_examples, seed=data_seed)" if rehearsal else ""),
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
        "command": command or f"python scripts/train_adapters.py --which {which}",
        **stats,
    }
    (folder / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    write_readme(folder, record)
    log(f"[{which}] saved {folder} ({size:,} bytes fp16), {stats['wall_time_s']}s, "
        f"final loss {stats['final_loss']}")
    return record


DEMO_PROMPTS = (
    "Write a short email to a colleague asking to move our meeting to Friday.",
    "What is the capital of France?",
    "What is 7 + 5?",
    "Give the opposite of 'hot'.",
)


def check(out: Path, *, prompts: Sequence[str] = DEMO_PROMPTS, mc_items: int = 60, mc_seed: int = 0,
          max_new_tokens: int = 60, log: Callable[[str], None] = print) -> dict:
    """The demo story: greedy answers of base / aggressive / careful, and contract-MC accuracy."""
    import torch
    from peft import PeftModel

    from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair, score_suite

    model, tokenizer = load_base()
    model.eval()
    names = [n for n in ("aggressive", "careful") if (out / n / "adapter_config.json").is_file()]
    peft_model = None
    for name in names:
        if peft_model is None:
            peft_model = PeftModel.from_pretrained(model, str(out / name), adapter_name=name)
        else:
            peft_model.load_adapter(str(out / name), adapter_name=name)
    dtypes = sorted({str(p.dtype) for n, p in (peft_model or model).named_parameters() if "lora_" in n})
    log(f"adapter parameter dtypes after loading the fp16 files into the fp32 base: {dtypes}")
    samples: dict[str, dict[str, str]] = {}

    def generate(prompt: str) -> str:
        ids = tokenizer(render_prompt(tokenizer, prompt), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            output = (peft_model or model).generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                                   pad_token_id=tokenizer.pad_token_id)
            logits = (peft_model or model)(**ids).logits
        assert torch.isfinite(logits).all(), "non-finite logits"
        return tokenizer.decode(output[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    for name in ("base", *names):
        if peft_model is not None:
            if name == "base":
                context = peft_model.disable_adapter()
            else:
                peft_model.set_adapter(name)
                context = None
        else:
            context = None
        with context if context is not None else _null():
            for prompt in prompts:
                samples.setdefault(prompt, {})[name] = generate(prompt)
    for prompt, answers in samples.items():
        log(f"\n### {prompt}")
        for name, text in answers.items():
            log(f"--- {name}: {text!r}")
    rows = contract_data.contract_mc_items(mc_items, seed=mc_seed)
    suite = load_suite(rows, "multiple_choice", name="contract_mc")
    accuracy: dict[str, float] = {}
    base_handle = None
    for name in names:
        base_spec, tuned_spec = resolve_pair(str(out / name), None, LoadOptions(device="cpu"))
        if base_handle is None:
            base_handle = load_model(base_spec, LoadOptions(device="cpu"), None)
            scores = score_suite(base_handle, suite).metrics["acc"]
            accuracy["base"] = sum(scores) / len(scores)
        tuned = load_model(tuned_spec, LoadOptions(device="cpu"), base_handle)
        scores = score_suite(tuned, suite).metrics["acc"]
        accuracy[name] = sum(scores) / len(scores)
    log(f"\ncontract MC accuracy ({mc_items} items, seed {mc_seed}): "
        + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))
    return {"samples": samples, "contract_mc_acc": accuracy, "lora_dtypes": dtypes}


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--which", choices=("aggressive", "careful", "both"), default="both")
    parser.add_argument("--out", type=Path, default=Path("example_suites/adapters"))
    parser.add_argument("--steps", type=int, default=None, help="override the number of steps (smoke runs)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--check", action="store_true",
                        help="train nothing: print base/aggressive/careful answers and contract-MC accuracy")
    args = parser.parse_args(argv)
    if args.check:
        import torch

        torch.set_num_threads(args.threads)
        result = check(args.out)
        (args.out / "check.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return 0
    names = ("aggressive", "careful") if args.which == "both" else (args.which,)
    for name in names:
        settings = SETTINGS[name] if args.steps is None else replace(SETTINGS[name], steps=args.steps)
        command = f"python scripts/train_adapters.py --which {name} --out {shlex.quote(str(args.out))}"
        if args.steps is not None:
            command += f" --steps {args.steps}"
        run(name, args.out, settings=settings, command=command, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
