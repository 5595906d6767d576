"""benchmarks/lm_eval_reference.py: lm-eval's HFLM on a tiny Llama, checked for structure and parity."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from tests import tiny  # noqa: E402

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "lm_eval_reference.py"

ITEMS = [
    {"question": "What is the capital of France?", "choices": ["Paris", "Berlin", "Rome", "Madrid"], "answer": 0},
    {"question": "What is 2 + 3?", "choices": ["4", "5", "6"], "answer": 1},
    {"question": "  What is 7 + 8?  ", "choices": ["15", "14"], "answer": 0},
    {"question": "Which word means hot?", "choices": ["cold", "hot", "small", "big"], "answer": 1},
    {"question": "What is the capital of Japan?", "choices": ["Tokyo", "London"], "answer": 0},
]


@pytest.fixture(scope="module")
def ref():
    spec = importlib.util.spec_from_file_location("lm_eval_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build_llama(tmp_path_factory.mktemp("lm-eval-ref") / "base", seed=0)


def _argmax_first(values):
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    return best


def test_run_lm_eval_structure_and_scores(ref, model_dir):
    out = ref.run_lm_eval(str(model_dir), ITEMS, batch_size=2)

    assert isinstance(out["lm_eval_version"], str) and out["lm_eval_version"]
    assert out["n_items"] == 5 and out["n_requests"] == sum(len(i["choices"]) for i in ITEMS)
    assert out["wall_s"] > 0 and out["items_per_s"] == pytest.approx(5 / out["wall_s"])
    tok = out["tokenization"]
    assert tok["backend"] == "causal" and tok["add_bos_token"] is None
    assert tok["tok_encode_kwargs"] == {}  # tokenizer default add_special_tokens
    assert tok["prefix_token_id"] == tok["bos_token_id"]

    assert len(out["items"]) == 5
    for item, row in zip(ITEMS, out["items"]):
        n = len(item["choices"])
        assert row["context"] == f"Question: {item['question'].strip()}\nAnswer:"
        assert row["continuations"] == [" " + c for c in item["choices"]]
        assert len(row["loglikelihoods"]) == n and len(row["is_greedy"]) == n
        assert all(isinstance(ll, float) and math.isfinite(ll) and ll <= 0 for ll in row["loglikelihoods"])
        assert all(isinstance(g, bool) for g in row["is_greedy"])
        lls = row["loglikelihoods"]
        assert row["pred"] == _argmax_first(lls)
        assert row["acc"] == (1.0 if row["pred"] == item["answer"] else 0.0)
        normed = [ll / len(c) for ll, c in zip(lls, item["choices"])]
        assert row["pred_norm"] == _argmax_first(normed)
        assert row["acc_norm"] == (1.0 if row["pred_norm"] == item["answer"] else 0.0)
    assert out["acc"] == pytest.approx(sum(r["acc"] for r in out["items"]) / 5)
    assert out["acc_norm"] == pytest.approx(sum(r["acc_norm"] for r in out["items"]) / 5)


def test_loglikelihoods_match_plain_transformers(ref, model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = ref.run_lm_eval(str(model_dir), ITEMS[:2], batch_size=1)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    for row in out["items"]:
        context_ids = tokenizer(row["context"])["input_ids"]
        assert context_ids == row["context_tokens"]
        for cont, ll in zip(row["continuations"], row["loglikelihoods"]):
            whole = tokenizer(row["context"] + cont)["input_ids"]
            with torch.no_grad():
                logprobs = torch.log_softmax(model(torch.tensor([whole[:-1]])).logits[0], -1)
            cont_ids = torch.tensor(whole[len(context_ids):])
            expected = float(logprobs[len(context_ids) - 1:].gather(1, cont_ids[:, None]).sum())
            assert ll == pytest.approx(expected, abs=1e-4)


def test_score_item_ties_and_norm_length(ref):
    # first index wins a tie
    assert ref.score_item([-1.0, -1.0], ["a", "b"], 1)["pred"] == 0
    # acc_norm divides by len(choice) without the " " delimiter: -2/1 < -3/2
    scored = ref.score_item([-2.0, -3.0], ["a", "bb"], 1)
    assert scored["pred"] == 0 and scored["pred_norm"] == 1
    assert scored["acc"] == 0.0 and scored["acc_norm"] == 1.0


def test_bad_item_is_rejected(ref):
    with pytest.raises(ValueError, match="answer"):
        ref.build_requests([{"question": "q", "choices": ["a"], "answer": 3}])
