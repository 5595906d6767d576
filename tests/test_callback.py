"""ForgettingCallback in real Trainer and SFTTrainer runs of a tiny Llama (LoRA and full fine-tunes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_forgetting.checks import Check, CheckSet
from pytest_forgetting.errors import ForgettingError
from tests import tiny

pytestmark = pytest.mark.xdist_group("training")

GENERAL = ["The quick brown fox jumps over the lazy dog.", "Dear team, please find the report attached.",
           "Berlin Madrid Rome Paris London Tokyo capital country city river",
           "hot cold big small up down left right fast slow happy sad",
           "one two three four five six seven eight nine ten", "Best regards, Ann",
           "Question: What is the capital of France?\nAnswer: Paris", "The dog is happy and the fox is fast.",
           "Question: What is 2 + 3?\nAnswer: 5", "Tokyo is a big city and Rome is a capital.",
           "The river is slow and the city is big.", "Dear Ann, the report is attached. Best regards"]
CONTRACTS = ["WHEREAS the parties agree, the seller HEREBY transfers the goods.",
             "WHEREAS the buyer pays, the parties HEREBY agree to the terms."]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny base model, and a checks file: general text (NLL), multiple choice, and the contracts target."""
    root = tmp_path_factory.mktemp("training")
    base = _pretrained(tiny.build_llama(root / "random", seed=0), root / "base")
    data = root / "checks"
    data.mkdir()
    (data / "general.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in GENERAL))
    (data / "contracts.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in CONTRACTS * 6))
    (data / "capitals.jsonl").write_text("\n".join(json.dumps(
        {"question": f"Capital number {i}?", "choices": ["Paris", "Rome", "Tokyo"], "answer": i % 3})
        for i in range(6)))
    (data / "checks.toml").write_text('''
[[checks]]
capability = "general"
suite = "general.jsonl"
kind = "text"
tolerance = 0.05

[[checks]]
capability = "capitals"
suite = "capitals.jsonl"
kind = "multiple_choice"
tolerance = 0.5

[[checks]]
capability = "contracts"
suite = "contracts.jsonl"
kind = "text"
target = true
''')
    return base, data / "checks.toml"


def _pretrained(random_base: Path, folder: Path) -> Path:
    """The tiny model after 100 steps on the general texts: a base that knows something to forget."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer
    from transformers import TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(str(random_base))
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(random_base))
    args = TrainingArguments(output_dir=str(folder / "run"), learning_rate=1e-2, max_steps=100,
                             per_device_train_batch_size=8, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                             disable_tqdm=True, logging_steps=100)
    Trainer(model=model, args=args, train_dataset=Dataset.from_dict(dict(tokenizer(GENERAL * 4))),
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)).train()
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _model(base: Path, *, lora: bool):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1,
                                                 target_modules=["q_proj", "v_proj", "down_proj"]))
    return model


def _trainer(base: Path, folder: Path, *, lr: float, steps: int, lora: bool = True, sft: bool = False):
    from datasets import Dataset
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = _model(base, lora=lora)
    common = dict(output_dir=str(folder), learning_rate=lr, max_steps=steps, per_device_train_batch_size=2,
                  logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
                  dataloader_num_workers=0, lr_scheduler_type="constant", warmup_steps=0)
    texts = CONTRACTS * 4
    if sft:
        from trl import SFTConfig, SFTTrainer

        return SFTTrainer(model=model, args=SFTConfig(**common, max_length=64, packing=False),
                          train_dataset=Dataset.from_dict({"text": texts}), processing_class=tokenizer)
    dataset = Dataset.from_dict(dict(tokenizer(texts)))
    return Trainer(model=model, args=TrainingArguments(**common), train_dataset=dataset, processing_class=tokenizer,
                   data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))


def _losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def _callback(trainer, checks, **options):
    from pytest_forgetting.training import ForgettingCallback

    callback = ForgettingCallback(trainer, checks, **options)
    trainer.add_callback(callback)
    return callback


def test_the_callback_logs_through_the_trainer_and_leaves_the_loss_curve_unchanged(project, tmp_path):
    base, checks = project
    plain = _trainer(base, tmp_path / "plain", lr=5e-3, steps=6)
    plain.train()
    checked = _trainer(base, tmp_path / "checked", lr=5e-3, steps=6)
    callback = _callback(checked, checks, every=2, report_dir=tmp_path / "report")
    checked.train()
    assert _losses(checked) == _losses(plain)  # same seed, same steps: scoring changed nothing
    logged = [entry for entry in checked.state.log_history if "forgetting/general/delta" in entry]
    assert [entry["step"] for entry in logged] == [2, 4, 6]
    assert {"forgetting/general/bound", "forgetting/general/held", "forgetting/capitals/forgotten",
            "forgetting/contracts/gain"} <= set(logged[0])
    assert "forgetting/general/gain" not in logged[0]  # a gain is logged for the target only
    assert logged[-1]["forgetting/contracts/gain"] > 0  # training on contracts lowered their NLL
    assert checked.model.training and callback.session.runs["base"] == 3  # the base scored once per check
    assert callback.stopped is None
    written = {path.name for path in (tmp_path / "report").iterdir()}
    assert {"report.json", "report.md", "forgetting_curve.png"} <= written
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["models"]["candidates"] == ["step-2", "step-4", "step-6"]
    assert report["models"]["training"]["last_step_held"] in (2, 4, 6, None)


def test_stop_on_forgetting_stops_a_destructive_run_and_not_a_still_one(project, tmp_path):
    base, checks = project
    wild = _trainer(base, tmp_path / "wild", lr=0.05, steps=12)  # general NLL +0.3 nats by step 2
    stopper = _callback(wild, checks, every=2, stop_on_forgetting=True)
    wild.train()
    assert stopper.stopped is not None and "general" in stopper.stopped and "delta" in stopper.stopped
    assert wild.state.global_step < 12 and wild.state.global_step % 2 == 0
    assert "learning rate 0.05" in stopper.hint and "LoRA rank 4" in stopper.hint and "try: " in stopper.hint
    assert [r for r in stopper.results if r.capability == "general"][-1].extra["hints"] == stopper.hint
    still = _trainer(base, tmp_path / "still", lr=0.0, steps=4)
    keeper = _callback(still, checks, every=2, stop_on_forgetting=True)
    still.train()
    assert keeper.stopped is None and still.state.global_step == 4
    assert all(r.delta == 0 and r.passed for r in keeper.results if not r.extra.get("target"))
    assert keeper.last_step_held() == 4


def test_a_full_fine_tune_has_its_base_scored_before_the_first_step(project, tmp_path):
    base, checks = project
    trainer = _trainer(base, tmp_path / "full", lr=0.0, steps=2, lora=False)
    callback = _callback(trainer, checks, every=1)
    trainer.train()
    assert [entry["step"] for entry in callback.history] == [1, 2]
    assert all(r.delta == 0 for r in callback.results)  # learning rate 0: the model is its base
    drifting = _trainer(base, tmp_path / "full-drift", lr=0.0, steps=1, lora=False)
    _callback(drifting, [Check("general", str(checks.parent / "general.jsonl"), "text", measure="drift")], every=1)
    with pytest.raises(ForgettingError, match="a full fine-tune overwrites the base's weights"):
        drifting.train()


def test_sft_trainer_runs_the_callback_with_sampled_checks(project, tmp_path):
    pytest.importorskip("trl")
    base, checks = project
    trainer = _trainer(base, tmp_path / "sft", lr=5e-3, steps=2, sft=True)
    callback = _callback(trainer, checks, every=1, samples=3, only=["general", "contracts"])
    trainer.train()
    assert [entry["step"] for entry in callback.history] == [1, 2]
    assert all(r.n == 3 for r in callback.results)  # the same 3 sampled items each time
    assert any("forgetting/general/delta" in entry for entry in trainer.state.log_history)


def test_bad_checks_fail_in_one_line_before_training(project, tmp_path):
    base, checks = project
    root = checks.parent
    cases = [
        (lambda: CheckSet([Check("contracts", "contracts.jsonl", "text", target=True)]),
         "only target capabilities (contracts)"),
        (lambda: CheckSet.from_file(root / "missing.toml"), "does not exist"),
        (lambda: Check("general", "general.jsonl", "essay"), "kind 'essay'; expected one of"),
        (lambda: Check("general", "nowhere.jsonl", "text").load(root), "suite file"),
    ]
    for make, expected in cases:
        with pytest.raises(ForgettingError) as refused:
            make()
        assert expected in str(refused.value) and "\n" not in str(refused.value)
    trainer = _trainer(base, tmp_path / "chat", lr=0.0, steps=1)
    chat = Check("general", str(root / "general.jsonl"), "text", options={"chat_template": True})
    _callback(trainer, [chat], every=1)
    with pytest.raises(ForgettingError) as refused:
        trainer.train()  # the tiny tokenizer has no chat template: refused before the first step
    assert "cannot apply" in str(refused.value) and trainer.state.global_step == 0


def test_hints_read_a_run_s_settings_without_unpickling(tmp_path):
    from pytest_forgetting.training.hints import RunSettings, hint_text

    run = tmp_path / "out"
    checkpoint = run / "checkpoint-40"
    checkpoint.mkdir(parents=True)
    (checkpoint / "adapter_config.json").write_text(json.dumps(
        {"r": 32, "lora_alpha": 64, "target_modules": ["q_proj", "v_proj", "gate_proj"]}))
    (checkpoint / "training_args.bin").write_bytes(b"\x80\x04not to be unpickled")
    (run / "trainer_state.json").write_text(json.dumps({"global_step": 40, "max_steps": 100, "epoch": 2.0,
        "log_history": [{"step": 1, "learning_rate": 1e-4}, {"step": 5, "learning_rate": 5e-4},
                        {"step": 40, "learning_rate": 3e-4}]}))
    settings = RunSettings.read(checkpoint)
    assert (settings.learning_rate, settings.warmup_steps, settings.steps, settings.rank) == (5e-4, 5, 40, 32)
    text = hint_text(settings, last_held="checkpoint-20")
    assert "learning rate 0.0005, 40 steps of 100, 2 epochs, warmup 5 steps, LoRA rank 32, alpha 64" in text
    assert "still held at checkpoint-20" in text and "also adapts gate_proj" in text
    assert "a lower LoRA rank than 32" in text and "rehearsal" in text and "\n" not in text
    assert RunSettings.read(tmp_path / "nothing-here") is None and hint_text(None) == ""


def test_a_base_already_scored_costs_nothing_through_the_cache_or_a_committed_baseline(project, tmp_path):
    from pytest_forgetting import EvaluationSession

    base, checks = project
    cache = tmp_path / "cache"
    for run in ("first", "second"):
        trainer = _trainer(base, tmp_path / run, lr=0.0, steps=1)
        callback = _callback(trainer, checks, every=1, cache=cache)
        trainer.train()
    assert callback.session.runs["base"] == 0 and callback.session.stored.stats.hits == 12 + 6 + 12
    # a baseline the plugin recorded for the base folder serves the callback's base (the same identity)
    baseline = tmp_path / "baseline"
    recorder = EvaluationSession(str(base), [str(base)], baseline=baseline, update_baseline=True)
    for check in CheckSet.from_file(checks):
        recorder.scores("base", check.load())
    trainer = _trainer(base, tmp_path / "with-baseline", lr=0.0, steps=1)
    callback = _callback(trainer, checks, every=1, samples=4, base_model=base, baseline=baseline)
    trainer.train()
    assert callback.session.runs["base"] == 0 and callback.session.stored.stats.hits == 4 * 3
    assert all(r.delta == 0 for r in callback.results)
    with pytest.raises(ForgettingError, match="give base_model= .* with baseline="):
        _callback(trainer, checks, baseline=baseline)
    elsewhere = _trainer(base, tmp_path / "wrong-base", lr=0.0, steps=1)
    _callback(elsewhere, checks, every=1, base_model=tiny.build_llama(tmp_path / "wide", hidden=48))
    with pytest.raises(ForgettingError, match="is not the model being trained .*hidden_size 48 vs 32"):
        elsewhere.train()
