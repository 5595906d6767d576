"""Label-free drift (KL and token shift) on tiny real models, against a direct reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pytest_forgetting.backends.hf.loading import load_model
from pytest_forgetting.backends.spec import LoadOptions, resolve_pair
from pytest_forgetting.scoring.drift import score_drift
from pytest_forgetting.scoring.suites import load_suite

OPTIONS = LoadOptions(device="cpu", dtype="float32")
TEXTS = [
    "Dear team, please find the report attached. Best regards, Ann",
    "The quick brown fox jumps over the lazy dog.",
    "Question: What is the capital of France?\nAnswer: Paris",
    "hot cold big small",
]


def _pair(adapter):
    """(base, tuned) for one adapter, on a base handle of its own (one adapter per base)."""
    base_spec, tuned_spec = resolve_pair(str(adapter), None, OPTIONS)
    base = load_model(base_spec, OPTIONS, None)
    return base, load_model(tuned_spec, OPTIONS, base)


@pytest.fixture(scope="module")
def random_pair(tiny_models):
    return _pair(tiny_models["adapter"])


@pytest.fixture(scope="module")
def zero_pair(tiny_models):
    return _pair(tiny_models["zero_adapter"])


@pytest.fixture(scope="module")
def reference(tiny_models):
    """The base model and the adapter applied to a separate copy: no shared weights, no plugin code."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def plain():
        return AutoModelForCausalLM.from_pretrained(str(tiny_models["base"]), dtype=torch.float32).eval()

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_models["base"]))
    return tokenizer, plain(), PeftModel.from_pretrained(plain(), str(tiny_models["adapter"])).eval()


def _logprobs(model, ids):
    with torch.no_grad():
        return F.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)


def _reference_drift(reference, sequence, first, last, top_k=3, kl_from=0):
    """Mean KL(base || tuned) over positions kl_from..end; shift rate over positions first..last-1."""
    _, base_model, tuned_model = reference
    base, tuned = _logprobs(base_model, sequence), _logprobs(tuned_model, sequence)
    kl = float((base.exp() * (base - tuned)).sum(-1)[kl_from:].mean())
    tuned_tokens = tuned[first:last].argmax(-1)
    in_top = (base[first:last].topk(top_k, dim=-1).indices == tuned_tokens[:, None]).any(-1)
    return kl, float((~in_top).float().mean())


def test_zero_adapter_has_no_drift(zero_pair) -> None:
    base, tuned = zero_pair
    text_suite = load_suite([{"text": t} for t in TEXTS], "text")
    drift = score_drift(base, tuned, text_suite)
    assert drift.kl == [0.0] * len(TEXTS)
    assert drift.shift_rate == [0.0] * len(TEXTS)
    assert drift.top_shifted == []
    gen_suite = load_suite([{"prompt": t} for t in TEXTS[:2]], "generation", max_new_tokens=6)
    drift = score_drift(base, tuned, gen_suite)
    assert drift.kl == [0.0, 0.0] and drift.shift_rate == [0.0, 0.0]
    assert all(record["output"] for record in drift.records)  # it did generate


def test_random_adapter_text_drift_matches_reference(random_pair, reference) -> None:
    base, tuned = random_pair
    tokenizer = reference[0]
    suite = load_suite([{"text": t} for t in TEXTS], "text")
    drift = score_drift(base, tuned, suite)
    assert drift.suite == suite.name and drift.top_k == 3
    assert all(value > 0 for value in drift.kl)
    for text, kl, rate, record in zip(TEXTS, drift.kl, drift.shift_rate, drift.records):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        expected_kl, expected_rate = _reference_drift(reference, ids, 0, len(ids) - 1)
        assert kl == pytest.approx(expected_kl, rel=1e-4, abs=1e-6)
        assert rate == pytest.approx(expected_rate, abs=1e-9)
        assert record["kl"] == kl and record["shift_rate"] == rate and record["output"] == ""
    assert any(rate > 0 for rate in drift.shift_rate)
    assert drift.top_shifted and all(count > 0 for _, count in drift.top_shifted)
    counts = [count for _, count in drift.top_shifted]
    assert counts == sorted(counts, reverse=True) and len(counts) <= 10
    positions = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) - 1 for t in TEXTS]
    n_shifted = round(sum(rate * n for rate, n in zip(drift.shift_rate, positions)))
    assert sum(counts) <= n_shifted
    for record, rate, n in zip(drift.records, drift.shift_rate, positions):
        assert len(record["shifted_tokens"]) == min(20, round(rate * n))


def test_random_adapter_generation_drift_matches_reference(random_pair, reference) -> None:
    base, tuned = random_pair
    tokenizer = reference[0]
    prompts = TEXTS[:3]
    suite = load_suite([{"prompt": p} for p in prompts], "generation", max_new_tokens=5)
    drift = score_drift(base, tuned, suite)
    outputs = tuned.generate(prompts, max_new_tokens=5)
    assert [record["output"] for record in drift.records] == outputs
    for prompt, output, kl, rate in zip(prompts, outputs, drift.kl, drift.shift_rate):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        continuation = tokenizer(output, add_special_tokens=False)["input_ids"]
        sequence = prompt_ids + continuation
        expected_kl, expected_rate = _reference_drift(
            reference, sequence, len(prompt_ids) - 1, len(sequence) - 1, kl_from=len(prompt_ids) - 1
        )
        assert kl == pytest.approx(expected_kl, rel=1e-4, abs=1e-6) and kl > 0
        assert rate == pytest.approx(expected_rate, abs=1e-9)
    assert drift.top_shifted


def test_drift_is_independent_of_batch_size(random_pair) -> None:
    base, tuned = random_pair
    suite = load_suite([{"text": t} for t in TEXTS], "text")
    one = score_drift(base, tuned, suite, batch_size=1)
    four = score_drift(base, tuned, suite, batch_size=4)
    assert four.kl == pytest.approx(one.kl, rel=1e-4, abs=1e-6)
    assert four.shift_rate == one.shift_rate


def test_generation_drift_with_a_bos_adding_tokenizer(tiny_models, reference) -> None:
    """The prompt starts with the BOS the tokenizer adds; the continuation carries none."""
    import copy

    from tokenizers import processors

    base, tuned = _pair(tiny_models["adapter"])
    tokenizer = copy.deepcopy(base.tokenizer)
    bos, bos_id = tokenizer.bos_token, tokenizer.bos_token_id
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, bos_id)]
    )
    base.tokenizer = tuned.tokenizer = tokenizer
    prompts = TEXTS[:2]
    suite = load_suite([{"prompt": p} for p in prompts], "generation", max_new_tokens=4)
    drift = score_drift(base, tuned, suite)
    plain = reference[0]
    for prompt, record, kl, rate in zip(prompts, drift.records, drift.kl, drift.shift_rate):
        prompt_ids = [bos_id] + plain(prompt, add_special_tokens=False)["input_ids"]
        sequence = prompt_ids + plain(record["output"], add_special_tokens=False)["input_ids"]
        expected_kl, expected_rate = _reference_drift(reference, sequence, len(prompt_ids) - 1, len(sequence) - 1,
                                                      kl_from=len(prompt_ids) - 1)
        assert kl == pytest.approx(expected_kl, rel=1e-4, abs=1e-6)
        assert rate == pytest.approx(expected_rate, abs=1e-9)


def test_given_outputs_are_used_instead_of_generating(random_pair) -> None:
    base, tuned = random_pair
    suite = load_suite([{"prompt": p} for p in TEXTS[:3]], "generation", max_new_tokens=5)
    generated = score_drift(base, tuned, suite)

    class NoGeneration:
        """The tuned handle, minus generate: drift must take the outputs it is given."""

        def __getattr__(self, name):
            if name == "generate":
                raise AssertionError("generated although outputs were given")
            return getattr(tuned, name)

    reused = score_drift(base, NoGeneration(), suite, outputs=[r["output"] for r in generated.records])
    assert reused.kl == generated.kl and reused.shift_rate == generated.shift_rate
    with pytest.raises(ValueError, match="2 outputs for 3 prompts"):
        score_drift(base, tuned, suite, outputs=["a", "b"])


DRIFT_FILE = """
from pytest_forgetting import capability
from pytest_forgetting.backends.hf.backend import HFBackend

GENERATED = []
original = HFBackend.generate


def counting(self, prompts, **kwargs):
    GENERATED.append(("base" if self.adapter is None else "tuned", len(prompts)))
    return original(self, prompts, **kwargs)


HFBackend.generate = counting
ROWS = [{{"prompt": p, "target": "x"}} for p in {prompts!r}]


@capability("writing", tolerance=1.0)
def test_writing(forgetting):
    suite = forgetting.suite(ROWS, "generation", max_new_tokens=4)
    forgetting.check(suite)
    drift = forgetting.drift(suite, max_kl=50.0)
    # 3 items are too few for a bootstrap bound: a drift that is not exactly 0 cannot be shown small
    assert drift.verdict == "fail" and "3 items are too few for a paired bootstrap" in drift.statistic
    assert GENERATED == [("base", 3), ("tuned", 3)]  # the drift reused the tuned outputs
    assert [r["tuned_answer"] for r in drift.records] == [
        r["tuned_answer"] for r in forgetting.compare(suite).records]
    assert drift.extra["mean_kl"] > 0
"""


def test_plugin_drift_reuses_the_suites_tuned_outputs(pytester, tiny_models) -> None:
    pytester.makepyfile(test_drift_reuse=DRIFT_FILE.format(prompts=TEXTS[:3]))
    result = pytester.runpytest("--tuned-model", str(tiny_models["adapter"]), "--no-forgetting-cache")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("role", [0, 1])
def test_continuation_logprobs_equal_the_full_pass(random_pair, role) -> None:
    """The response's log-distributions, computed with the shared prefix once and the head on the response only."""
    from pytest_forgetting.backends.hf.greedy import MIN_SHARED_PREFIX

    handle = random_pair[role]
    shared = handle.encode("one two three four five six seven eight\n")
    prompts = [shared + handle.encode(t) for t in ("hot cold", "The quick brown fox", "Dear")]
    continuations = [handle.encode(" big small up"), [], handle.encode(" team, please find")]
    assert len(shared) >= MIN_SHARED_PREFIX
    fast = handle.continuation_distributions(prompts, continuations, batch_size=3)
    full = list(handle.token_distributions([p + c for p, c in zip(prompts, continuations)], batch_size=1))
    for got, whole, prompt, continuation in zip(fast, full, prompts, continuations):
        assert got.shape == (len(continuation) + 1, whole.shape[-1])
        assert torch.allclose(got, whole[len(prompt) - 1 :], atol=1e-5)
