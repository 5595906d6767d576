"""Hints from a run's own settings when a general capability fails: what it used, and what to try.

The settings are read from what a run leaves beside its weights, never by unpickling anything:
``adapter_config.json`` (LoRA rank, alpha, dropout, target modules), ``trainer_state.json`` (steps
done and planned, epochs, the learning rates logged, so the peak and the warmup), a
``training.json`` beside the adapter (this project's record: learning rate, steps, warmup,
rehearsal share), or the Trainer's arguments when the callback knows them.
``training_args.bin`` is a pickle and is never read.

What the literature ties to forgetting, and so what the hints suggest (each hint cites this
run's number; none claims to be the cause):

* training length: forgetting grows with the steps (tokens) trained, and LoRA forgets less than
  full fine-tuning but does forget; higher ranks stay less close to the base (Biderman et al.
  2024, "LoRA Learns Less and Forgets Less");
* the learning rate: larger steps move the weights further from the base per step;
* the adapter's reach: this project's own example adapters differ in it: the careful one
  (rank 4 on q_proj, v_proj, learning rate 3e-4, half rehearsal) keeps general skills, the
  aggressive one (every linear layer, 2e-3, no rehearsal) loses them;
* rehearsal: mixing general data (replay, or self-distilled answers of the base) into training
  reduces forgetting (the careful example adapter does this).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

#: Where a setting was read from, in the order they are consulted.
SOURCES = ("adapter_config.json", "training.json", "trainer_state.json")
#: Target modules of an attention-only adapter (more than these reaches further).
ATTENTION = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "query", "key", "value", "qkv_proj"})
CITATION = "Biderman et al. 2024"


@dataclass
class RunSettings:
    """What is known of how a model was trained (None: not known)."""

    learning_rate: Optional[float] = None
    steps: Optional[int] = None
    planned_steps: Optional[int] = None
    epochs: Optional[float] = None
    warmup_steps: Optional[int] = None
    rank: Optional[int] = None
    alpha: Optional[float] = None
    target_modules: Optional[list[str]] = None
    rehearsal_share: Optional[float] = None
    adapter: Optional[bool] = None
    sources: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Any) -> Optional["RunSettings"]:
        """The settings found in ``folder`` (and a checkpoint's run folder above it); None if none."""
        folder = Path(folder) if folder is not None else None
        if folder is None or not folder.is_dir():
            return None
        settings = cls()
        adapter = _json(folder / "adapter_config.json")
        if adapter:
            settings.adapter = True
            settings.rank = _number(adapter.get("r"), int)
            settings.alpha = _number(adapter.get("lora_alpha"), float)
            modules = adapter.get("target_modules")
            settings.target_modules = sorted(modules) if isinstance(modules, list) else \
                ([modules] if isinstance(modules, str) else None)
            settings.sources.append(str(folder / "adapter_config.json"))
        elif (folder / "config.json").is_file():
            settings.adapter = False
        record = _json(folder / "training.json")
        if record:
            settings.learning_rate = _number(record.get("learning_rate"), float)
            settings.steps = _number(record.get("steps"), int)
            settings.warmup_steps = _number(record.get("warmup_steps"), int)
            settings.epochs = _number(record.get("epochs"), float)
            settings.rehearsal_share = _number(record.get("rehearsal_share"), float)
            settings.sources.append(str(folder / "training.json"))
        state = _json(folder / "trainer_state.json") or _json(folder.parent / "trainer_state.json")
        if state:
            settings._from_trainer_state(state)
            settings.sources.append("trainer_state.json")
        return settings if settings.sources or settings.adapter is not None else None

    def _from_trainer_state(self, state: dict[str, Any]) -> None:
        rates = [(entry.get("step"), entry["learning_rate"]) for entry in state.get("log_history", [])
                 if isinstance(entry.get("learning_rate"), (int, float))]
        if rates and self.learning_rate is None:
            peak = max(rate for _, rate in rates)
            self.learning_rate = peak
            first_peak = next(step for step, rate in rates if rate == peak)
            if self.warmup_steps is None and isinstance(first_peak, int) and first_peak > rates[0][0]:
                self.warmup_steps = first_peak
        self.steps = self.steps if self.steps is not None else _number(state.get("global_step"), int)
        self.planned_steps = _number(state.get("max_steps"), int)
        self.epochs = self.epochs if self.epochs is not None else _number(state.get("epoch"), float)

    @classmethod
    def from_trainer(cls, args: Any, model: Any, state: Any = None) -> "RunSettings":
        """What a running Trainer says of itself: its arguments and the model's PEFT config."""
        by_steps = getattr(args, "max_steps", -1) > 0  # max_steps overrides num_train_epochs
        settings = cls(learning_rate=float(args.learning_rate), warmup_steps=int(getattr(args, "warmup_steps", 0) or 0),
                       planned_steps=int(args.max_steps) if by_steps else None,
                       epochs=None if by_steps else float(args.num_train_epochs), sources=["the Trainer's arguments"])
        if state is not None:
            settings.steps = int(state.global_step)
            if state.epoch:
                settings.epochs = round(float(state.epoch), 3)
        config = getattr(model, "peft_config", None)
        if config:
            first = next(iter(config.values()))
            settings.adapter = True
            settings.rank = _number(getattr(first, "r", None), int)
            settings.alpha = _number(getattr(first, "lora_alpha", None), float)
            modules = getattr(first, "target_modules", None)
            settings.target_modules = sorted(modules) if modules and not isinstance(modules, str) else \
                ([modules] if modules else None)
        else:
            settings.adapter = False
        return settings

    def described(self) -> str:
        """The known settings in one line (``learning rate 0.002, 60 steps, LoRA rank 4 ...``)."""
        parts = []
        if self.learning_rate is not None:
            parts.append(f"learning rate {self.learning_rate:g}")
        if self.steps is not None:
            parts.append(f"{self.steps} steps" + (f" of {self.planned_steps}" if self.planned_steps else ""))
        if self.epochs is not None:
            parts.append(f"{self.epochs:g} epochs")
        if self.warmup_steps:
            parts.append(f"warmup {self.warmup_steps} steps")
        if self.adapter and self.rank is not None:
            parts.append(f"LoRA rank {self.rank}" + (f", alpha {self.alpha:g}" if self.alpha is not None else ""))
        if self.target_modules:
            parts.append(f"target modules {', '.join(self.target_modules)}")
        if self.adapter is False:
            parts.append("full fine-tune")
        if self.rehearsal_share is not None:
            parts.append(f"rehearsal share {self.rehearsal_share:g}")
        return ", ".join(parts)


def hints(settings: Optional[RunSettings], *, last_held: Optional[str] = None) -> list[str]:
    """What to try, each citing this run's number (empty when nothing is known)."""
    tips: list[str] = []
    if last_held:
        tips.append(f"every general capability still held at {last_held}: stop there, or train fewer steps")
    if settings is None:
        return tips
    if settings.learning_rate is not None:
        tips.append(f"a lower learning rate than {settings.learning_rate:g} (e.g. {settings.learning_rate / 4:g}): "
                    "smaller steps stay closer to the base")
    if settings.steps is not None and not last_held:
        tips.append(f"fewer steps than {settings.steps} (forgetting grows with training length, {CITATION}); "
                    "a checkpoint sweep shows where it starts")
    if settings.target_modules and set(settings.target_modules) - ATTENTION:
        reach = sorted(set(settings.target_modules) - ATTENTION)
        tips.append(f"fewer target modules: this adapter also adapts {', '.join(reach)} (the example suites' "
                    "careful adapter adapts only q_proj, v_proj and keeps general skills)")
    if settings.adapter and settings.rank is not None and settings.rank > 8:
        tips.append(f"a lower LoRA rank than {settings.rank} (lower ranks stay closer to the base, {CITATION})")
    if settings.adapter is False:
        tips.append(f"a LoRA adapter instead of a full fine-tune (LoRA forgets less, {CITATION})")
    if settings.rehearsal_share in (None, 0.0):
        share = "no rehearsal data" if settings.rehearsal_share == 0.0 else "no rehearsal data known"
        tips.append(f"rehearsal: {share}; mix general examples (replay, or the base's own answers) into training")
    return tips


def hint_text(settings: Optional[RunSettings], *, last_held: Optional[str] = None) -> str:
    """``Run settings: ...; try: ...`` in one line, or an empty string when nothing is known."""
    tips = hints(settings, last_held=last_held)
    described = settings.described() if settings is not None else ""
    if not tips and not described:
        return ""
    head = f"run settings: {described}" if described else "run settings: not recorded beside the model"
    return head + ("; try: " + "; ".join(tips) if tips else "")


def _json(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return kind(value)
