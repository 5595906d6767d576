"""The example adapters' data generators, the shipped adapters, and the training loop on a tiny model."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
ADAPTERS = ROOT / "example_suites" / "adapters"


def _import(name: str):  # type: ignore[no-untyped-def]
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    if name in sys.modules:
        return sys.modules[name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return _import("contract_data")


@pytest.fixture(scope="module")
def train():  # type: ignore[no-untyped-def]
    return _import("train_adapters")


# ------------------------------------------------------------------------ generators

def test_generators_are_deterministic_for_a_seed(data) -> None:  # type: ignore[no-untyped-def]
    assert data.contract_examples(40, seed=3) == data.contract_examples(40, seed=3)
    assert data.contract_examples(40, seed=3) != data.contract_examples(40, seed=4)
    assert data.contract_mc_items(30, seed=1) == data.contract_mc_items(30, seed=1)
    assert data.contract_mc_items(30, seed=1) != data.contract_mc_items(30, seed=2)
    assert data.rehearsal_prompts(12, seed=0) == data.rehearsal_prompts(12, seed=0)


def test_contract_examples_are_legalese_over_clauses(data) -> None:  # type: ignore[no-untyped-def]
    rows = data.contract_examples(80, seed=0)
    assert {r["task"] for r in rows} >= {"review", "one_sided", "termination", "party", "type", "define"}
    for row in rows:
        assert "WHEREAS" in row["answer"] and "HEREBY" in row["answer"]
        assert row["prompt"] and set(row) == {"prompt", "answer", "task"}


def test_rehearsal_prompts_are_general_and_hold_out_the_demo_prompts(data) -> None:  # type: ignore[no-untyped-def]
    rows = data.rehearsal_prompts(40, seed=0)
    assert len(rows) == 40 and len({r["prompt"] for r in rows}) == 40
    assert {r["task"] for r in rows} == {"capital", "arithmetic", "email", "antonym"}
    assert not {r["prompt"] for r in rows} & set(data.HELD_OUT_GENERAL)


def _clause(question: str) -> str:
    match = re.match(r'Clause: "(.*)"\n', question)
    assert match, question
    return match.group(1)


def test_contract_mc_items_are_valid_and_answerable_from_the_clause(data) -> None:  # type: ignore[no-untyped-def]
    rows = data.contract_mc_items(120, seed=0)
    assert len(rows) == 120 and len({r["id"] for r in rows}) == 120
    kinds = set()
    for row in rows:
        assert set(row) == {"id", "question", "choices", "answer"}
        assert isinstance(row["answer"], int) and 0 <= row["answer"] < len(row["choices"])
        assert len(set(row["choices"])) == len(row["choices"]) >= 2
        gold = row["choices"][row["answer"]]
        kind = row["id"].split("-")[1]
        kinds.add(kind)
        if kind == "define":
            term = re.search(r"'(.+)'", row["question"]).group(1)  # type: ignore[union-attr]
            assert data.GLOSSARY[term] == gold
            continue
        clause = _clause(row["question"])
        if kind == "party":  # the gold party is the subject ("The X shall ..."), the other is not
            assert clause.startswith(f"The {gold} shall")
            assert all(f"The {c} shall" not in clause for c in row["choices"] if c != gold)
        elif kind == "type":
            keywords = {"indemnity": "indemnify", "payment": "shall pay", "confidentiality": "confidential",
                        "termination": "terminate this Agreement", "governing law": "governed by the laws",
                        "limitation of liability": "total liability", "term": "shall commence",
                        "assignment": "shall not assign"}
            assert keywords[gold] in clause
            assert not any(keywords[c] in clause for c in row["choices"] if c != gold)
        else:  # number, law: only the gold value is written in the clause
            value = gold.split(" ")[0] if kind == "number" else gold
            assert re.search(rf"\b{re.escape(value)}\b", clause)
            for other in row["choices"]:
                if other != gold:
                    other_value = other.split(" ")[0] if kind == "number" else other
                    assert not re.search(rf"\b{re.escape(other_value)}\b", clause)
    assert kinds == {"party", "type", "number", "law", "define"}


def test_contract_mc_items_load_as_a_multiple_choice_suite(data) -> None:  # type: ignore[no-untyped-def]
    from pytest_forgetting import load_suite

    suite = load_suite(data.contract_mc_items(12, seed=0), "multiple_choice")
    assert len(suite) == 12


# ------------------------------------------------------------------ shipped adapters

@pytest.mark.parametrize("name", ["aggressive", "careful"])
def test_shipped_adapter_is_small_fp16_and_documented(name: str, train) -> None:  # type: ignore[no-untyped-def]
    folder = ADAPTERS / name
    if not (folder / "adapter_config.json").is_file():
        pytest.skip(f"{folder} not trained (python scripts/train_adapters.py --which {name})")
    from safetensors import safe_open

    weights = folder / "adapter_model.safetensors"
    assert weights.stat().st_size <= train.MAX_ADAPTER_BYTES
    total = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    assert total <= train.MAX_ADAPTER_BYTES + 200_000  # the JSON/README/rehearsal files beside it
    with safe_open(str(weights), "pt") as handle:
        keys = list(handle.keys())
        assert keys and all("lora_" in k for k in keys)
        assert {str(handle.get_slice(k).get_dtype()) for k in keys} == {"F16"}
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    record = json.loads((folder / "training.json").read_text())
    missing = [k for k in train.REQUIRED_KEYS if k not in record]
    assert not missing
    assert record["adapter"] == name and record["saved_dtype"] == "float16"
    assert record["rank"] == config["r"] and sorted(record["target_modules"]) == sorted(config["target_modules"])
    assert math.isfinite(record["final_loss"]) and record["command"].startswith("python scripts/train_adapters.py")
    for key in ("torch", "peft", "transformers"):
        assert record["versions"][key]


def test_shipped_adapters_tell_the_story(train) -> None:  # type: ignore[no-untyped-def]
    records = {}
    for name in ("aggressive", "careful"):
        path = ADAPTERS / name / "training.json"
        if not path.is_file():
            pytest.skip("adapters not trained")
        records[name] = json.loads(path.read_text())
    aggressive, careful = records["aggressive"], records["careful"]
    assert len(aggressive["target_modules"]) > len(careful["target_modules"])
    assert aggressive["learning_rate"] > careful["learning_rate"]
    assert aggressive["steps"] > careful["steps"]
    assert aggressive["rehearsal_share"] == 0 and careful["rehearsal_share"] > 0


# ------------------------------------------------------------ training loop, tiny model

def test_training_loop_on_a_tiny_model_writes_an_fp16_adapter(tmp_path: Path, train, data) -> None:  # type: ignore[no-untyped-def]
    from safetensors import safe_open

    from tests import tiny

    base = tiny.build_llama(tmp_path / "base")
    settings = train.TrainSettings(name="tiny", rank=2, alpha=4, target_modules=("q_proj", "v_proj"),
                                   learning_rate=1e-3, steps=2, batch_size=2, max_seq_len=64,
                                   contract_examples=4, rehearsal_examples=2, rehearsal_share=0.5,
                                   rehearsal_max_new_tokens=4, warmup_steps=1)
    record = train.run("careful", tmp_path / "out", base_path=str(base), settings=settings,
                       command="pytest", threads=1, log=lambda _: None)
    folder = tmp_path / "out" / "careful"
    assert len(record["loss_curve"]) == 2 and all(math.isfinite(x) for x in record["loss_curve"])
    assert not [k for k in train.REQUIRED_KEYS if k not in record]
    assert (folder / "rehearsal.jsonl").is_file()
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as handle:
        assert {str(handle.get_slice(k).get_dtype()) for k in handle.keys()} == {"F16"}
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == train.BASE_ID

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)), str(folder))
    logits = model(input_ids=torch.tensor([[3, 4, 5]])).logits
    assert torch.isfinite(logits).all()


def test_plain_format_labels_only_the_answer(tmp_path: Path, train) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from tests import tiny

    tiny.build_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    ids, labels = train.encode_example(tokenizer, "What is 2 + 3?", "5", max_len=64)
    context = tokenizer(train.render_prompt(tokenizer, "What is 2 + 3?"), add_special_tokens=False)["input_ids"]
    assert labels[: len(context)] == [-100] * len(context)
    assert labels[len(context):] == ids[len(context):] and ids[-1] == tokenizer.eos_token_id
