"""The scoring engine on tiny real models, checked against references computed here directly.

References use plain ``AutoModelForCausalLM`` (and ``PeftModel`` for the adapter) forward
passes, one unpadded sequence at a time, so they share no code with the handle's batching,
padding, adapter switching or windowing.
"""

from __future__ import annotations

import io
import random
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.backends.hf.batching import is_out_of_memory, keep_reduced_batch_size, map_batched
from pytest_forgetting.backends.contract import Backend, Capabilities, Identity, Loglikelihood
from pytest_forgetting.backends.hf.backend import HFBackend
from pytest_forgetting.backends.hf.text import cut_at_stop
from pytest_forgetting.backends.hf.loading import load_model
from pytest_forgetting.backends.spec import LoadOptions, resolve_pair
from pytest_forgetting.scoring import progress as progress_module
from pytest_forgetting.backends.windows import rolling_windows
from pytest_forgetting.scoring.kinds import (
    render_text,
    score_generation,
    score_multiple_choice,
    score_perplexity,
    score_suite,
)
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import load_suite

OPTIONS = LoadOptions(device="cpu", dtype="float32")  # float32 on CPU, like the references
TOL = 1e-5
REL = 1e-6  # a sum near -100 is only resolved to ~8e-6 in float32, so allow 1 ppm as well


def close(expected):
    """Equal within 1e-5, or 1 ppm for sums large enough that float32 cannot resolve 1e-5."""
    return pytest.approx(expected, abs=TOL, rel=REL)

PROMPTS = [
    "Question: What is the capital of France?\nAnswer:",
    "hot cold big",
    "The quick brown fox",
    "Dear team, please find",
    "WHEREAS the parties agree,",
    "one two three four five six seven",
]
LONG_TEXT = " ".join([
    "The quick brown fox jumps over the lazy dog.",
    "Dear team, please find the report attached. Best regards, Ann",
    "WHEREAS the parties agree, the seller HEREBY transfers the goods.",
    "Berlin Madrid Rome Paris London Tokyo capital country city river",
] * 6)

MC_ROWS = [
    {"id": "fr", "question": "What is the capital of France?", "choices": ["Paris", "Rome", "Berlin"], "answer": 0},
    {"id": "math", "question": "What is 2 + 3?", "choices": ["4", "5", "six", "seven"], "answer": "5"},
    {"id": "opp", "question": "Opposite of hot?", "choices": ["cold", "big small up", "fast"], "answer": 0},
    {"id": "fox", "question": "The quick brown", "choices": ["fox jumps", "dog", "river city"], "answer": 0},
    {"id": "pol", "question": "Dear team,", "choices": ["please find the report", "WHEREAS", "Best"], "answer": 2},
]


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pair(tiny_models):
    """(base, tuned) handles for the random LoRA adapter, sharing one model in memory."""
    base_spec, tuned_spec = resolve_pair(str(tiny_models["adapter"]), None, OPTIONS)
    base = load_model(base_spec, OPTIONS, None)
    return base, load_model(tuned_spec, OPTIONS, base)


@pytest.fixture(scope="module")
def full_tuned(tiny_models):
    """The tuned handle of a full-checkpoint pair."""
    base_spec, tuned_spec = resolve_pair(str(tiny_models["full"]), str(tiny_models["base"]), OPTIONS)
    return load_model(tuned_spec, OPTIONS, load_model(base_spec, OPTIONS, None))


@pytest.fixture(scope="module")
def handles(pair, full_tuned):
    return {"base": pair[0], "tuned": pair[1], "full": full_tuned}


@pytest.fixture(scope="module")
def reference(tiny_models):
    """Independent models and tokenizer: plain transformers and peft, no plugin code."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def plain(path):
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()

    tuned = PeftModel.from_pretrained(plain(tiny_models["base"]), str(tiny_models["adapter"])).eval()
    return SimpleNamespace(
        tokenizer=AutoTokenizer.from_pretrained(str(tiny_models["base"])),
        models={"base": plain(tiny_models["base"]), "tuned": tuned, "full": plain(tiny_models["full"])},
    )


@pytest.fixture()
def fresh_base(tiny_models):
    """A base handle of its own, for tests that change its tokenizer."""
    base_spec, _ = resolve_pair(str(tiny_models["adapter"]), None, OPTIONS)
    return load_model(base_spec, OPTIONS, None)


# -- reference computations (lm-eval's algorithm written out) --------------------------------------
def ref_encode(ref, text: str) -> list[int]:
    return list(ref.tokenizer(text, add_special_tokens=False)["input_ids"])


def ref_logprobs(model, ids) -> torch.Tensor:
    """``[len(ids), vocab]`` float32 next-token log-probabilities for one unpadded sequence."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([list(ids)])).logits[0]
    return F.log_softmax(logits.float(), dim=-1)


def ref_pair(ref, context: str, continuation: str) -> tuple[list[int], list[int]]:
    if context == "":
        return [ref.tokenizer.bos_token_id], ref_encode(ref, continuation)
    stripped = context.rstrip()
    continuation = context[len(stripped):] + continuation
    context_ids = ref_encode(ref, stripped)
    return context_ids, ref_encode(ref, stripped + continuation)[len(context_ids):]


def ref_loglikelihood(ref, role: str, context: str, continuation: str, max_length: int = 256):
    context_ids, continuation_ids = ref_pair(ref, context, continuation)
    whole = (context_ids + continuation_ids)[-(max_length + 1):]
    logprobs = ref_logprobs(ref.models[role], whole[:-1])[-len(continuation_ids):]
    target = torch.tensor(continuation_ids).unsqueeze(-1)
    picked = logprobs.gather(-1, target).squeeze(-1)
    return float(picked.sum()), bool((logprobs.argmax(-1) == target.squeeze(-1)).all())


def ref_rolling_nll(ref, role: str, text: str, max_seq_len: int) -> float:
    """lm-eval's get_rolling_token_windows + make_disjoint_window, scored window by window."""
    tokens = ref_encode(ref, text)
    windows = []
    first = min(max_seq_len, len(tokens))
    windows.append(([ref.tokenizer.bos_token_id] + tokens[: first - 1], tokens[:first]))
    predicted = first
    while predicted < len(tokens):
        window_pred_len = min(len(tokens) - predicted, max_seq_len)
        end = predicted + window_pred_len
        windows.append((tokens[end - max_seq_len - 1 : end - 1], tokens[end - window_pred_len : end]))
        predicted += window_pred_len
    total = 0.0
    for context, targets in windows:
        context = context[: len(context) - (len(targets) - 1)]
        inputs = (context + targets)[:-1]
        assert len(inputs) <= max_seq_len
        logprobs = ref_logprobs(ref.models[role], inputs)[-len(targets):]
        total += float(logprobs.gather(-1, torch.tensor(targets).unsqueeze(-1)).sum())
    return -total / len(tokens)


def ref_greedy(ref, role: str, prompt: str, max_new_tokens: int) -> str:
    ids, new = ref_encode(ref, prompt), []
    for _ in range(max_new_tokens):
        token = int(ref_logprobs(ref.models[role], ids)[-1].argmax())
        new.append(token)
        ids.append(token)
        if token == ref.tokenizer.eos_token_id:
            break
    return ref.tokenizer.decode(new, skip_special_tokens=True)


# -- lm-eval encoding -------------------------------------------------------------------------------
def test_encode_pair_moves_trailing_whitespace_to_the_continuation(pair, reference) -> None:
    base = pair[0]
    context_ids, continuation_ids = base.encode_pair("Question: x\nAnswer: ", "Paris")
    assert context_ids == ref_encode(reference, "Question: x\nAnswer:")
    assert context_ids + continuation_ids == ref_encode(reference, "Question: x\nAnswer: Paris")
    assert continuation_ids[0] == ref_encode(reference, " ")[0]
    # several whitespace characters move together
    context_ids, continuation_ids = base.encode_pair("Answer:\n \n", "Rome")
    assert context_ids == ref_encode(reference, "Answer:")
    assert context_ids + continuation_ids == ref_encode(reference, "Answer:\n \nRome")


def test_encode_pair_splits_the_joint_tokenization_at_the_context_length(pair, reference) -> None:
    context, continuation = "The quick bro", "wn fox"
    context_ids, continuation_ids = pair[0].encode_pair(context, continuation)
    joint = ref_encode(reference, context + continuation)
    assert context_ids == ref_encode(reference, context)
    assert continuation_ids == joint[len(context_ids):]
    # the joint split is not the continuation encoded alone (BPE merged across the boundary)
    assert continuation_ids != ref_encode(reference, continuation)


def test_empty_context_uses_the_prefix_token(pair, reference) -> None:
    base = pair[0]
    bos = reference.tokenizer.bos_token_id
    assert base.prefix_token_id == bos
    assert base.encode_pair("", "hot cold") == ([bos], ref_encode(reference, "hot cold"))
    [result] = base.loglikelihood([("", "hot cold")])
    expected, _ = ref_loglikelihood(reference, "base", "", "hot cold")
    assert result.logprob == close(expected)
    assert result.n_tokens == len(ref_encode(reference, "hot cold"))


def bos_adding(tokenizer):
    """A copy of ``tokenizer`` that puts BOS first by default, as Llama tokenizers do."""
    import copy

    from tokenizers import processors

    tokenizer = copy.deepcopy(tokenizer)
    bos = tokenizer.bos_token
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tokenizer.bos_token_id)]
    )
    return tokenizer


def test_bos_adding_tokenizer_scores_no_extra_bos(fresh_base, reference, monkeypatch) -> None:
    """A tokenizer that adds BOS: it starts contexts, but is never scored or doubled."""
    bos = reference.tokenizer.bos_token_id
    fresh_base.tokenizer = bos_adding(fresh_base.tokenizer)
    plain = ref_encode(reference, "hot cold")
    assert fresh_base.encode("hot cold") == [bos] + plain
    # empty context: the prefix token is the context, the continuation holds no BOS
    assert fresh_base.encode_pair("", "hot cold") == ([bos], plain)
    [result] = fresh_base.loglikelihood([("", "hot cold")])
    assert result.logprob == close(ref_loglikelihood(reference, "base", "", "hot cold")[0])
    assert result.n_tokens == len(plain)
    # a context starts with BOS; the continuation is the joint split as before
    context_ids, continuation_ids = fresh_base.encode_pair("Answer:", " Paris")
    assert context_ids == [bos] + ref_encode(reference, "Answer:")
    assert continuation_ids == ref_encode(reference, "Answer: Paris")[len(context_ids) - 1:]
    # perplexity: one BOS as the first window's prefix, every text token scored once
    monkeypatch.setattr(fresh_base, "max_length", 16)
    text = LONG_TEXT[:120]
    scores = score_perplexity(fresh_base, load_suite([{"text": text}], "text"))
    assert scores.records[0]["tokens"] == len(ref_encode(reference, text))
    assert scores.metrics["nll"] == [close(ref_rolling_nll(reference, "base", text, 16))]


def test_prefix_token_falls_back_to_eos() -> None:
    no_bos = SimpleNamespace(tokenizer=SimpleNamespace(bos_token_id=None, eos_token_id=7))
    with_bos = SimpleNamespace(tokenizer=SimpleNamespace(bos_token_id=3, eos_token_id=7))
    assert HFBackend.prefix_token_id.fget(no_bos) == 7
    assert HFBackend.prefix_token_id.fget(with_bos) == 3


# -- multiple choice against the reference ------------------------------------------------------------
@pytest.mark.parametrize("role", ["base", "tuned", "full"])
def test_multiple_choice_loglikelihoods_match_reference(handles, reference, role: str) -> None:
    suite = load_suite(MC_ROWS, "multiple_choice")
    scores = score_multiple_choice(handles[role], suite)
    assert scores.primary == "acc" and scores.higher_is_better == {"acc": True, "acc_norm": True}
    for item, record, acc, acc_norm in zip(
        suite.items, scores.records, scores.metrics["acc"], scores.metrics["acc_norm"]
    ):
        expected = [ref_loglikelihood(reference, role, item.prompt, " " + c) for c in item.choices]
        assert record["loglikelihoods"] == close([ll for ll, _ in expected])
        assert record["is_greedy"] == [greedy for _, greedy in expected]
        lls = [ll for ll, _ in expected]
        pred = lls.index(max(lls))
        norms = [ll / len(c) for ll, c in zip(lls, item.choices)]
        pred_norm = norms.index(max(norms))
        assert (record["pred"], record["pred_norm"]) == (pred, pred_norm)
        assert (acc, acc_norm) == (float(pred == item.answer), float(pred_norm == item.answer))
        assert record["answer"] == item.choices[pred] and record["gold"] == item.answer


def test_base_role_runs_with_the_adapter_off(pair, reference) -> None:
    """Base and tuned share one model: the base handle must equal the plain base model."""
    base, tuned = pair
    request = [(PROMPTS[0], " Paris")]
    base_ll = base.loglikelihood(request)[0].logprob
    tuned_ll = tuned.loglikelihood(request)[0].logprob
    assert base_ll == close(ref_loglikelihood(reference, "base", *request[0])[0])
    assert tuned_ll == close(ref_loglikelihood(reference, "tuned", *request[0])[0])
    assert abs(base_ll - tuned_ll) > 1e-3
    # interleaving roles does not leave the adapter switched off (or on)
    assert base.loglikelihood(request)[0].logprob == close(base_ll)
    assert tuned.loglikelihood(request)[0].logprob == close(tuned_ll)


def test_is_greedy(pair, reference) -> None:
    base = pair[0]
    context = reference.tokenizer(PROMPTS[2], add_special_tokens=False)["input_ids"]
    greedy, ids = [], list(context)
    for _ in range(3):
        token = int(ref_logprobs(reference.models["base"], ids)[-1].argmax())
        greedy.append(token)
        ids.append(token)
    second_best = int(ref_logprobs(reference.models["base"], context + greedy[:1])[-1].topk(2).indices[1])
    results = base.loglikelihood_tokens([(context, greedy), (context, [greedy[0], second_best])])
    assert [r.is_greedy for r in results] == [True, False]
    assert [r.n_tokens for r in results] == [3, 2]


def test_context_longer_than_max_length_is_left_truncated(pair, reference, monkeypatch) -> None:
    base = pair[0]
    monkeypatch.setattr(base, "max_length", 8)
    [result] = base.loglikelihood([(LONG_TEXT[:200], " Paris")])
    expected, _ = ref_loglikelihood(reference, "base", LONG_TEXT[:200], " Paris", max_length=8)
    assert result.logprob == close(expected)


class ScriptedLoglikelihoods(Backend):
    """A backend returning chosen log-likelihoods per continuation (for acc/acc_norm rules)."""

    name = "scripted"
    capabilities = Capabilities(loglikelihood=True)

    def identity(self) -> Identity:
        return Identity("scripted", "none", "cpu")

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values
        self.requests: list = []

    def loglikelihood(self, requests, *, batch_size=None):
        self.requests.extend(requests)
        return [Loglikelihood(self.values[continuation], False, 1) for _, continuation in requests]


def test_acc_norm_divides_by_choice_characters_without_the_delimiter() -> None:
    # without the delimiter: -2.5/1 < -6/3 -> choice 1; counting the space would pick choice 0
    suite = load_suite([{"question": "q", "choices": ["a", "ccc"], "answer": 1}], "multiple_choice")
    handle = ScriptedLoglikelihoods({" a": -2.5, " ccc": -6.0})
    scores = score_multiple_choice(handle, suite)
    assert scores.records[0]["pred"] == 0 and scores.records[0]["pred_norm"] == 1
    assert scores.metrics == {"acc": [0.0], "acc_norm": [1.0]}
    assert handle.requests == [("Question: q\nAnswer:", " a"), ("Question: q\nAnswer:", " ccc")]


def test_ties_go_to_the_first_choice() -> None:
    suite = load_suite(
        [{"question": "q", "choices": ["ab", "cd", "ef"], "answer": 1},
         {"question": "r", "choices": ["ab", "cd", "ef"], "answer": 0}],
        "multiple_choice",
    )
    scores = score_multiple_choice(ScriptedLoglikelihoods({" ab": -5.0, " cd": -1.0, " ef": -1.0}), suite)
    assert [r["pred"] for r in scores.records] == [1, 1]
    assert [r["pred_norm"] for r in scores.records] == [1, 1]
    assert scores.metrics["acc"] == [1.0, 0.0]


def test_duplicate_choices_tie_on_the_real_model(pair) -> None:
    suite = load_suite([{"question": "Capital?", "choices": ["Paris", "Paris"], "answer": 1}], "multiple_choice")
    record = score_multiple_choice(pair[1], suite).records[0]
    assert record["loglikelihoods"][0] == record["loglikelihoods"][1]
    assert record["pred"] == 0 and record["pred_norm"] == 0


def test_answer_given_as_choice_text_scores_like_the_index(pair) -> None:
    by_index = load_suite([{"question": "Capital?", "choices": ["Rome", "Paris"], "answer": 1}], "multiple_choice")
    by_text = load_suite([{"question": "Capital?", "choices": ["Rome", "Paris"], "answer": "Paris"}], "multiple_choice")
    assert by_text.items[0].answer == 1
    assert score_multiple_choice(pair[0], by_text).metrics == score_multiple_choice(pair[0], by_index).metrics


def test_fewshot_context_reaches_the_model(pair) -> None:
    suite = load_suite(MC_ROWS, "multiple_choice", fewshot=2)
    handle = ScriptedLoglikelihoods({" " + c: -1.0 for row in MC_ROWS for c in row["choices"]})
    score_multiple_choice(handle, suite)
    first_context = handle.requests[0][0]
    assert first_context.startswith("Question: What is the capital of France?\nAnswer: Paris\n\n")
    assert first_context.endswith("Question: Opposite of hot?\nAnswer:")
    real = score_multiple_choice(pair[0], suite).records[0]["loglikelihoods"]
    plain = score_multiple_choice(pair[0], load_suite(MC_ROWS[2:], "multiple_choice")).records[0]["loglikelihoods"]
    assert real != pytest.approx(plain, abs=1e-3)  # the examples change what the model sees


# -- batch-size independence ---------------------------------------------------------------------------
REQUESTS = [(p, " " + c) for p in PROMPTS[1:5] for c in ["Paris", "big small", "the report attached"]]


def test_loglikelihood_independent_of_batch_size(pair) -> None:
    handle = pair[1]
    one = [r.logprob for r in handle.loglikelihood(REQUESTS, batch_size=1)]
    for batch_size in (8, None):
        other = handle.loglikelihood(REQUESTS, batch_size=batch_size)
        assert [r.logprob for r in other] == close(one)
    shuffled = list(range(len(REQUESTS)))
    random.Random(0).shuffle(shuffled)
    again = handle.loglikelihood([REQUESTS[i] for i in shuffled], batch_size=8)
    assert [r.logprob for r in again] == close([one[i] for i in shuffled])


def test_token_logprobs_independent_of_batch_size(pair, reference) -> None:
    base = pair[0]
    sequences = [ref_encode(reference, p * 3) for p in PROMPTS]
    one = list(base.token_distributions(sequences, batch_size=1))
    assert [t.shape for t in one] == [(len(s), len(reference.tokenizer)) for s in sequences]
    assert all(t.dtype == torch.float32 for t in one)
    for batch_size in (8, None):
        other = list(base.token_distributions(sequences, batch_size=batch_size))
        assert max(float((a - b).abs().max()) for a, b in zip(one, other)) <= TOL
    direct = ref_logprobs(reference.models["base"], sequences[3])
    assert float((one[3] - direct).abs().max()) <= TOL


def test_perplexity_independent_of_batch_size(pair, monkeypatch) -> None:
    base = pair[0]
    monkeypatch.setattr(base, "max_length", 24)
    suite = load_suite([{"text": LONG_TEXT[: 40 * (i + 1)]} for i in range(6)], "text")
    one = score_perplexity(base, suite, batch_size=1).metrics["nll"]
    for batch_size in (8, None):
        assert score_perplexity(base, suite, batch_size=batch_size).metrics["nll"] == close(one)


def test_multiple_choice_scores_independent_of_batch_size(pair) -> None:
    suite = load_suite(MC_ROWS, "multiple_choice")
    one = score_multiple_choice(pair[1], suite, batch_size=1)
    eight = score_multiple_choice(pair[1], suite, batch_size=8)
    assert [r["loglikelihoods"] for r in eight.records] == [
        close(r["loglikelihoods"]) for r in one.records
    ]
    assert eight.metrics == one.metrics


# -- map_batched --------------------------------------------------------------------------------------
class FlakyRunner:
    """run_batch stand-in that 'runs out of memory' above a batch size."""

    def __init__(self, fits: int, message: str = "CUDA out of memory. Tried to allocate 2.00 GiB") -> None:
        self.fits = fits
        self.message = message
        self.sizes: list[int] = []

    def __call__(self, batch):
        self.sizes.append(len(batch))
        if len(batch) > self.fits:
            raise RuntimeError(self.message)
        return [item * 10 for item in batch]


def test_map_batched_returns_results_in_input_order() -> None:
    items = list(range(10))
    lengths = [3, 9, 1, 9, 4, 4, 7, 2, 8, 5]
    seen = []

    def run(batch):
        seen.append(batch)
        return [item * 10 for item in batch]

    assert map_batched(items, lengths, run, batch_size=3, device=torch.device("cpu")) == [i * 10 for i in items]
    assert [len(b) for b in seen] == [3, 3, 3, 1]
    assert seen[0] == [1, 3, 8]  # longest first, ties in input order


def test_bounded_padding_ends_an_automatic_batch_at_a_much_shorter_row() -> None:
    items = list(range(8))
    lengths = [30, 100, 74, 90, 50, 80, 40, 60]
    seen = []

    def run(batch):
        seen.append([lengths[i] for i in batch])
        return [item * 10 for item in batch]

    cpu = torch.device("cpu")
    assert map_batched(items, lengths, run, batch_size=None, device=cpu, bound_padding=True) == [i * 10 for i in items]
    # each batch's rows at least 75% as long as its longest (MAX_PADDING 0.25): 74 < 75, 50 < 55.5, 30 < 37.5
    assert seen == [[100, 90, 80], [74, 60], [50, 40], [30]]
    seen.clear()
    map_batched(items, lengths, run, batch_size=None, device=cpu)  # not asked: one automatic batch
    assert seen == [sorted(lengths, reverse=True)]
    seen.clear()
    map_batched(items, lengths, run, batch_size=3, device=cpu, bound_padding=True)  # a fixed size is kept
    assert [len(b) for b in seen] == [3, 3, 2]


def test_bounded_padding_leaves_multiple_choice_scores_as_they_were(pair, monkeypatch) -> None:
    from pytest_forgetting.backends.hf import batching
    from pytest_forgetting.backends.hf.kv import inner

    suite = load_suite(MC_ROWS, "multiple_choice")
    passes: list[int] = []
    hook = inner(pair[1].shared.model).register_forward_pre_hook(lambda *_: passes.append(1))
    try:
        bounded = score_multiple_choice(pair[1], suite)
        bounded_passes = len(passes)
        monkeypatch.setattr(batching, "MAX_PADDING", None)
        unbounded = score_multiple_choice(pair[1], suite)
    finally:
        hook.remove()
    assert bounded_passes > len(passes) - bounded_passes  # the bound split the batch
    assert [r["loglikelihoods"] for r in bounded.records] == [close(r["loglikelihoods"]) for r in unbounded.records]
    assert bounded.metrics == unbounded.metrics


def test_out_of_memory_halves_an_automatic_batch() -> None:
    runner = FlakyRunner(fits=3)
    items = list(range(20))
    results = map_batched(items, [10] * 20, runner, batch_size=None, device=torch.device("cpu"))
    assert results == [i * 10 for i in items]
    # auto size 64 holds all 20, then the failing batch is halved: 10, 5, 2
    assert runner.sizes[:4] == [20, 10, 5, 2]
    assert sum(size for size in runner.sizes if size <= 3) == 20  # every item ran exactly once


def test_out_of_memory_is_raised_with_a_fixed_batch_size() -> None:
    runner = FlakyRunner(fits=3)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        map_batched(list(range(20)), [10] * 20, runner, batch_size=8, device=torch.device("cpu"))
    assert runner.sizes == [8]


def test_out_of_memory_at_batch_size_one_and_other_errors_are_raised() -> None:
    runner = FlakyRunner(fits=0)
    with pytest.raises(RuntimeError, match="out of memory"):
        map_batched([1, 2, 3], [5, 5, 5], runner, batch_size=None, device=torch.device("cpu"))
    assert runner.sizes == [3, 1]  # 3 items (auto 64) -> halved to 1 -> raised
    other = FlakyRunner(fits=0, message="shape mismatch")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        map_batched([1, 2, 3], [5, 5, 5], other, batch_size=None, device=torch.device("cpu"))
    assert other.sizes == [3]


CPU_OOM = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried "
           "to allocate 1125899906842624 bytes. Error code 12 (Cannot allocate memory)")


def _real_cpu_allocation_failure() -> RuntimeError:
    """What torch's CPU allocator raises for a request no machine can meet (1 PiB)."""
    try:
        torch.empty(1 << 50, dtype=torch.uint8)
    except RuntimeError as exc:
        return exc
    pytest.skip("this machine allocated 1 PiB")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RuntimeError(CPU_OOM), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("CUDA error: out of memory"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 1.00 GB, other allocations: 0 bytes)"), True),
        (torch.OutOfMemoryError("Tried to allocate 20.00 MiB"), True),  # no 'out of memory' in the text
        (torch.cuda.OutOfMemoryError("Tried to allocate 20.00 MiB"), True),
        (MemoryError(), True),
        (RuntimeError("shape mismatch"), False),
        (ValueError("out of memory"), False),  # not an allocator error type
        (OSError(12, "Cannot allocate memory"), False),  # e.g. a failed fork: no batch size helps
    ],
)
def test_is_out_of_memory(exc: BaseException, expected: bool) -> None:
    assert is_out_of_memory(exc) is expected


def test_a_real_cpu_allocation_failure_is_out_of_memory() -> None:
    error = _real_cpu_allocation_failure()
    assert "can't allocate memory" in str(error) and type(error) is RuntimeError
    assert is_out_of_memory(error)


def test_cpu_allocator_failure_halves_an_automatic_batch() -> None:
    runner = FlakyRunner(fits=4, message=CPU_OOM)
    results = map_batched(list(range(8)), [10] * 8, runner, batch_size=None, device=torch.device("cpu"))
    assert results == [i * 10 for i in range(8)]
    assert runner.sizes == [8, 4, 4]  # before: the CPU error was re-raised at once


def test_reduced_batch_size_is_kept_for_the_later_batches() -> None:
    """One out-of-memory error, not one per batch: the halved size stays for the rest of the call."""
    runner = FlakyRunner(fits=8)
    items = list(range(40))
    lengths = [300 - i for i in range(40)]  # auto size 8192 // 300 = 27 at first, 30+ later
    results = map_batched(items, lengths, runner, batch_size=None, device=torch.device("cpu"))
    assert results == [i * 10 for i in items]
    # 27 fails, 13 fails, 6 runs; then batches of 6 (before: 27 -> 13 -> 6 again for each batch)
    assert runner.sizes == [27, 13, 6, 6, 6, 6, 6, 6, 4]
    assert sum(1 for size in runner.sizes if size > runner.fits) == 2


def test_reduced_batch_size_is_kept_across_calls_in_a_scope() -> None:
    def twice() -> list[int]:
        runner = FlakyRunner(fits=5)
        for _ in range(2):  # a scoring run split into chunks: one map_batched call per chunk
            map_batched(list(range(12)), [10] * 12, runner, batch_size=None, device=torch.device("cpu"))
        return runner.sizes

    assert twice() == [12, 6, 3, 3, 3, 3, 12, 6, 3, 3, 3, 3]  # each call meets the error again
    with keep_reduced_batch_size():
        assert twice() == [12, 6, 3, 3, 3, 3, 3, 3, 3, 3]
    assert twice()[:2] == [12, 6]  # the scope ended: a fresh call starts at the automatic size


def test_real_cpu_allocation_failure_in_a_batch_is_backed_off() -> None:
    sizes: list[int] = []

    def run(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            torch.empty(1 << 50, dtype=torch.uint8)  # what a too-large batch meets on a small machine
        return batch

    _real_cpu_allocation_failure()
    assert map_batched(list(range(5)), [10] * 5, run, batch_size=None, device=torch.device("cpu")) == list(range(5))
    assert sizes == [5, 2, 2, 1]


# -- generation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["base", "tuned"])
def test_generation_is_greedy_and_respects_max_new_tokens(pair, reference, role: str) -> None:
    handle = pair[0] if role == "base" else pair[1]
    prompts = PROMPTS[:3]
    for max_new_tokens in (1, 5):
        outputs = handle.generate(prompts, max_new_tokens=max_new_tokens, batch_size=1)
        assert outputs == [ref_greedy(reference, role, p, max_new_tokens) for p in prompts]


FEWSHOT = "one two three\nhot cold big\nDear team, please\n"  # a prefix every prompt shares
SHARED_PREFIX_PROMPTS = [FEWSHOT + tail for tail in ("The quick brown fox", "WHEREAS", "one two three four five",
                                                     "Question: What is the capital of France?\nAnswer:")]


class ForwardSpy:
    """Records the input shape of every forward pass of the (PEFT-wrapped) transformers model."""

    def __init__(self, handle) -> None:
        from pytest_forgetting.backends.hf.greedy import _inner

        self.shapes: list[tuple[int, int]] = []
        self.hook = _inner(handle.shared.model).register_forward_pre_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs) -> None:
        self.shapes.append(tuple(kwargs["input_ids"].shape))

    def __enter__(self) -> "ForwardSpy":
        return self

    def __exit__(self, *exc) -> None:
        self.hook.remove()


@pytest.mark.parametrize("role", ["base", "tuned"])
def test_greedy_loop_with_shared_prefix_matches_greedy_alone(pair, reference, role: str) -> None:
    """A batch whose prompts share a prefix decodes exactly as each prompt alone, step by step."""
    handle = pair[0] if role == "base" else pair[1]
    prompts = SHARED_PREFIX_PROMPTS
    with ForwardSpy(handle) as spy:
        outputs = handle.generate(prompts, max_new_tokens=6, batch_size=len(prompts))
    assert outputs == [ref_greedy(reference, role, p, 6) for p in prompts]
    shared = len(ref_encode(reference, FEWSHOT))  # the few-shot block tokenizes alone (it ends in a newline)
    encoded = [ref_encode(reference, p) for p in prompts]
    assert min(len(e) for e in encoded) > shared and all(e[:shared] == encoded[0][:shared] for e in encoded)
    own = max(len(e) for e in encoded) - shared
    assert spy.shapes[0] == (1, shared)                    # the shared prefix, once
    assert spy.shapes[1] == (len(prompts), own)            # each row's own tokens, left-padded
    assert all(width == 1 for _, width in spy.shapes[2:])  # then one token per step
    assert len(spy.shapes) <= 2 + 5


def test_greedy_loop_rows_leave_the_batch_when_done(pair, reference) -> None:
    from pytest_forgetting.backends.hf.greedy import greedy_continuations

    base = pair[0]
    prompts = [ref_encode(reference, p) for p in PROMPTS]  # no shared prefix: one prompt pass
    options = dict(max_new_tokens=5, eos_token_ids=[], pad_token_id=0, device=torch.device("cpu"))
    with base.shared.running_as(None), ForwardSpy(base) as spy:
        free = greedy_continuations(base.shared.model, prompts, **options)
        free_rows = [rows for rows, _ in spy.shapes]
        spy.shapes.clear()
        # one row ends after 2 tokens, another after 3: rows whose beginnings no other row shares
        def unique_start(length: int, other_than: int = -1) -> int:
            starts = [tuple(c[:length]) for c in free]
            return next(i for i, start in enumerate(starts) if starts.count(start) == 1 and i != other_than)

        early = unique_start(2)
        late = unique_start(3, other_than=early)
        stop_at = {tuple(free[early][:2]), tuple(free[late][:3])}
        cut = greedy_continuations(base.shared.model, prompts, finished=lambda ids: tuple(ids) in stop_at,
                                   **options)
        cut_rows = [rows for rows, _ in spy.shapes]
    assert [len(c) for c in free] == [5] * len(prompts)  # max_new_tokens bounds every row
    assert free_rows == [len(prompts)] * 5               # the prompt pass, then 4 steps of all rows
    assert cut[early] == free[early][:2] and cut[late] == free[late][:3]
    assert all(cut[i] == free[i] for i in range(len(prompts)) if i not in (early, late))  # others undisturbed
    assert cut_rows == [6, 6, 5, 4, 4]                   # finished rows leave the batch


def test_eos_ends_a_row_and_is_left_out(pair, reference) -> None:
    from pytest_forgetting.backends.hf.greedy import greedy_continuations

    base = pair[0]
    prompts = [ref_encode(reference, p) for p in PROMPTS]
    with base.shared.running_as(None):
        free = greedy_continuations(base.shared.model, prompts, max_new_tokens=4, eos_token_ids=[],
                                    pad_token_id=0, device=torch.device("cpu"))
        eos = free[1][1]  # pretend the second token of prompt 1 is EOS
        ended = greedy_continuations(base.shared.model, prompts, max_new_tokens=4, eos_token_ids=[eos],
                                     pad_token_id=0, device=torch.device("cpu"))
    assert ended[1] == free[1][: free[1].index(eos)]
    for want, got in zip(free, ended):
        assert got == (want[: want.index(eos)] if eos in want else want)


def test_generation_falls_back_to_transformers_generate(pair, reference, monkeypatch) -> None:
    """A model the greedy loop cannot drive is decoded by model.generate, with the same result."""
    from pytest_forgetting.backends.hf import generation

    tuned = pair[1]
    monkeypatch.setattr(generation, "supports_greedy_loop", lambda model: False)
    calls = []
    original = tuned.shared.model.generate

    def spy(*args, **kwargs):
        output = original(*args, **kwargs)
        calls.append((kwargs["input_ids"].shape[1], output.shape[1]))
        return output

    monkeypatch.setattr(tuned.shared.model, "generate", spy)
    prompts = SHARED_PREFIX_PROMPTS[:3]
    assert tuned.generate(prompts, max_new_tokens=5, batch_size=3) == [ref_greedy(reference, "tuned", p, 5)
                                                                       for p in prompts]
    assert calls and all(0 < total - prompt <= 5 for prompt, total in calls)


def test_longest_common_prefix() -> None:
    from pytest_forgetting.backends.hf.greedy import longest_common_prefix, supports_greedy_loop

    assert longest_common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert longest_common_prefix([[5, 6], [5, 6]]) == 2
    assert longest_common_prefix([[1], [2]]) == 0
    assert not supports_greedy_loop(torch.nn.Linear(2, 2))  # no cache, no positions: generate() instead


def test_generation_deterministic_and_independent_of_batch_size(pair) -> None:
    tuned = pair[1]
    first = tuned.generate(PROMPTS, max_new_tokens=6, batch_size=1)
    assert tuned.generate(PROMPTS, max_new_tokens=6, batch_size=1) == first
    assert tuned.generate(PROMPTS, max_new_tokens=6, batch_size=4) == first  # left padding
    assert len(set(first)) > 1


def test_generation_takes_token_ids(pair, reference) -> None:
    ids = ref_encode(reference, PROMPTS[1])
    assert pair[0].generate([ids], max_new_tokens=4) == pair[0].generate([PROMPTS[1]], max_new_tokens=4)


def test_stop_strings_cut_the_output(pair) -> None:
    base = pair[0]
    full = base.generate(PROMPTS, max_new_tokens=12)
    cases = []
    for prompt, text in zip(PROMPTS, full):
        for index in range(1, len(text)):
            if text[index].isascii() and text[index].isalnum():
                cases.append((prompt, text, text[index]))
                break
    assert len(cases) >= 2, full
    prompts = [prompt for prompt, _, _ in cases]
    stops = ["\x00never\x00"] + [stop for _, _, stop in cases]
    cut = base.generate(prompts, max_new_tokens=12, stop=stops)
    assert cut == [cut_at_stop(text, stops) for _, text, _ in cases]
    assert all(len(c) < len(text) for c, (_, text, _) in zip(cut, cases))
    assert not any(stop in c for c in cut for stop in stops)


def test_cut_at_stop() -> None:
    assert cut_at_stop("abc\nQuestion: more", ["Question:", "\n"]) == "abc"
    assert cut_at_stop("abc", ["x", ""]) == "abc"
    assert cut_at_stop("abc", []) == "abc"
    assert cut_at_stop("xabc", ["x"]) == ""


def test_generation_suite_scores_outputs(pair) -> None:
    tuned = pair[1]
    prompts = PROMPTS[:3]
    outputs = tuned.generate(prompts, max_new_tokens=5)
    rows = [{"prompt": p, "target": [o, "something else"]} for p, o in zip(prompts, outputs)]
    rows[2]["target"] = "definitely not it"
    suite = load_suite(rows, "generation", max_new_tokens=5, ignore_punctuation=False)
    scores = score_suite(tuned, suite)
    assert [r["output"] for r in scores.records] == outputs
    assert scores.metrics["exact_match"] == [1.0, 1.0, 0.0]


def test_chat_template_without_one_is_a_one_line_error(pair) -> None:
    suite = load_suite([{"prompt": "hi", "target": "x"}], "generation", chat_template=True)
    for score in (score_generation, score_suite):
        with pytest.raises(ForgettingError) as info:
            score(pair[0], suite)
        assert "chat_template=True but the tokenizer has no chat template" in str(info.value)
        assert "\n" not in str(info.value)
    mc = load_suite(MC_ROWS, "multiple_choice", chat_template=True)
    with pytest.raises(ForgettingError, match="no chat template"):
        score_multiple_choice(pair[0], mc)


CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_chat_template_wraps_the_prompt(fresh_base) -> None:
    fresh_base.tokenizer.chat_template = CHAT_TEMPLATE
    suite = load_suite([{"prompt": "hot cold", "target": "x"}], "generation", chat_template=True,
                       system_prompt="Be brief.", max_new_tokens=4)
    rendered = render_text(fresh_base, suite, suite.items[0])
    assert rendered == "<|system|>Be brief.<|end|><|user|>hot cold<|end|><|assistant|>"
    no_system = load_suite([{"prompt": "hot cold"}], "generation", chat_template=True)
    assert render_text(fresh_base, no_system, no_system.items[0]) == "<|user|>hot cold<|end|><|assistant|>"
    scores = score_generation(fresh_base, suite)
    assert scores.records[0]["output"] == fresh_base.generate([rendered], max_new_tokens=4)[0]
    plain = load_suite([{"prompt": "hot cold", "target": "x"}], "generation", max_new_tokens=4)
    assert render_text(fresh_base, plain, plain.items[0]) == "hot cold"


# -- perplexity ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_length", [1, 2, 3, 5, 8])
def test_rolling_windows_cover_every_token_once(max_length: int) -> None:
    for n_tokens in range(1, 30):
        tokens = list(range(100, 100 + n_tokens))
        sequence = [-1, *tokens]
        windows = rolling_windows(tokens, -1, max_length)
        scored, end = [], 1
        for ids, predicted in windows:
            assert 1 <= predicted <= max_length
            assert len(ids) - 1 <= max_length  # the model input is ids[:-1]
            end += predicted
            assert ids == sequence[end - len(ids) : end]  # a contiguous slice ending at its targets
            assert len(ids) == min(max_length + 1, end)  # as much context as fits
            scored.extend(ids[len(ids) - predicted :])
        assert scored == tokens
    assert rolling_windows([], -1, 4) == []


def test_perplexity_short_text_is_one_forward_pass(pair, reference) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    scores = score_perplexity(pair[0], load_suite([{"text": text}], "text"))
    tokens = ref_encode(reference, text)
    logprobs = ref_logprobs(reference.models["base"], [reference.tokenizer.bos_token_id] + tokens[:-1])
    expected = -float(logprobs.gather(-1, torch.tensor(tokens).unsqueeze(-1)).mean())
    assert scores.metrics["nll"] == [close(expected)]
    assert scores.records[0]["tokens"] == len(tokens)
    assert scores.primary == "nll" and scores.higher_is_better == {"nll": False}


def test_perplexity_beyond_the_model_context_matches_window_by_window_reference(pair, reference) -> None:
    handle, role = pair[1], "tuned"
    text = LONG_TEXT[:800]
    n_tokens = len(ref_encode(reference, text))
    assert handle.max_length == 256 and n_tokens > 2 * 256
    scores = score_perplexity(handle, load_suite([{"text": text}], "text"))
    assert scores.records[0]["tokens"] == n_tokens
    assert scores.metrics["nll"][0] == close(ref_rolling_nll(reference, role, text, 256))


def test_perplexity_with_a_lowered_max_length(pair, reference, monkeypatch) -> None:
    base = pair[0]
    monkeypatch.setattr(base, "max_length", 16)
    texts = [LONG_TEXT[:150], LONG_TEXT[:37], "hot"]
    scores = score_perplexity(base, load_suite([{"text": t} for t in texts], "text"))
    expected = [ref_rolling_nll(reference, "base", t, 16) for t in texts]
    assert scores.metrics["nll"] == close(expected)
    counts = [r["tokens"] for r in scores.records]
    assert counts == [len(ref_encode(reference, t)) for t in texts]
    pooled = sum(n * c for n, c in zip(expected, counts)) / sum(counts)
    assert scores.extra["perplexity"] == pytest.approx(torch.tensor(pooled).exp().item(), rel=1e-5)
    # windowing matters: the full-context score differs
    monkeypatch.setattr(base, "max_length", 256)
    assert score_perplexity(base, load_suite([{"text": texts[0]}], "text")).metrics["nll"][0] != pytest.approx(
        expected[0], abs=1e-3)


# -- progress ---------------------------------------------------------------------------------------------
def test_progress_writes_done_over_total_lines() -> None:
    stream = io.StringIO()
    progress = Progress("facts (base)", 5, stream=stream)
    progress.advance(2)  # first update prints
    progress.advance(2)  # within 2 s of the last line: quiet
    progress.advance(1)  # done: always prints
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[forgetting] facts (base): 2/5 items (")
    assert lines[1].startswith("[forgetting] facts (base): 5/5 items (") and lines[1].endswith("/s)")


def test_scoring_reports_progress_through_the_sink(pair) -> None:
    lines: list[str] = []
    progress_module.set_sink(lines.append)
    try:
        score_multiple_choice(pair[0], load_suite(MC_ROWS, "multiple_choice", name="facts"), label="base")
    finally:
        progress_module.set_sink(None)
    n_items = len(MC_ROWS)  # shared-prefix scoring counts questions, not choices
    assert lines and lines[-1].startswith(f"[forgetting] facts (base): {n_items}/{n_items} items")
