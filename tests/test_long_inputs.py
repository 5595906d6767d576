"""Inputs longer than the model's context in generation and drift, against direct references.

The tiny GPT-2 has absolute positions (256): before truncation and windowing, a longer input
crashed there with ``IndexError``. The tiny Llama (RoPE) gets a lowered ``max_length``.
References are plain transformers/peft forward passes on hand-truncated or hand-windowed ids,
one unpadded sequence at a time, so they share no code with the handles' batching, shared
prefix, truncation or windows.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.backends.hf import greedy
from pytest_forgetting.backends.hf.loading import load_model
from pytest_forgetting.backends.spec import LoadOptions, resolve_pair
from pytest_forgetting.backends.windows import text_windows
from pytest_forgetting.scoring.drift import score_drift
from pytest_forgetting.scoring.suites import load_suite
from tests import tiny

OPTIONS = LoadOptions(device="cpu", dtype="float32")
ATOL, RTOL = 1e-6, 1e-5
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Dear team, please find the report attached. Best regards, Ann",
    "WHEREAS the parties agree, the seller HEREBY transfers the goods.",
    "Berlin Madrid Rome Paris London Tokyo capital country city river",
    "one two three four five six seven eight nine ten",
]
LONG_TEXT = " ".join(SENTENCES * 8)
SHORT = ["hot cold big small", "The quick brown fox jumps over the lazy dog."]


def _load(adapter, base_folder):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_spec, tuned_spec = resolve_pair(str(adapter), None, OPTIONS)
    base = load_model(base_spec, OPTIONS, None)
    tuned = load_model(tuned_spec, OPTIONS, base)

    def plain():
        return AutoModelForCausalLM.from_pretrained(str(base_folder), dtype=torch.float32).eval()

    return SimpleNamespace(
        handles={"base": base, "tuned": tuned},
        models={"base": plain(), "tuned": PeftModel.from_pretrained(plain(), str(adapter)).eval()},
        tokenizer=AutoTokenizer.from_pretrained(str(base_folder)),
    )


@pytest.fixture(scope="module")
def gpt2(tiny_models, tmp_path_factory):
    """GPT-2 (absolute positions, n_positions 256) with a random LoRA adapter, and references."""
    root = tmp_path_factory.mktemp("gpt2-long")
    folder = tiny.build_gpt2(root / "gpt2", tiny_models["base"])
    adapter = tiny.build_lora(root / "gpt2-adapter", folder, target_modules=("c_attn", "c_proj"))
    return _load(adapter, folder)


@pytest.fixture(scope="module")
def llama(tiny_models):
    """The tiny Llama (RoPE) with its random adapter, and references."""
    return _load(tiny_models["adapter"], tiny_models["base"])


@pytest.fixture()
def llama_short(llama, monkeypatch):
    """The Llama handles with a context lowered to 32 tokens."""
    for handle in llama.handles.values():
        monkeypatch.setattr(handle, "max_length", 32)
    return llama


def _encode(ref, text):
    return list(ref.tokenizer(text, add_special_tokens=False)["input_ids"])


def _logprobs(model, ids):
    with torch.no_grad():
        return F.log_softmax(model(input_ids=torch.tensor([list(ids)])).logits[0].float(), dim=-1)


def _greedy(ref, role, ids, max_new_tokens):
    """Plain argmax decoding, one full forward per step (no cache, no padding)."""
    ids, out, eos = list(ids), [], ref.tokenizer.eos_token_id
    for _ in range(max_new_tokens):
        token = int(_logprobs(ref.models[role], ids)[-1].argmax())
        if token == eos:
            break
        out.append(token)
        ids.append(token)
    return ref.tokenizer.decode(out, skip_special_tokens=True)


def _stats(lp_base, lp_tuned, top_k=3):
    kl = (lp_base.exp() * (lp_base - lp_tuned)).sum(-1).clamp_min(0.0)
    tuned_tokens = lp_tuned.argmax(-1)
    shifted = ~(lp_base.topk(top_k, dim=-1).indices == tuned_tokens[:, None]).any(-1)
    return kl, shifted


def _reference_text_drift(ref, ids, max_length):
    """Mean KL over every position of ``ids``, read chunk by chunk with the most context that fits."""
    kl, shifted, covered = [], [], []
    for start in range(0, len(ids), max_length):
        end = min(start + max_length, len(ids))
        window = ids[max(0, end - max_length) : end]
        lp_base = _logprobs(ref.models["base"], window)[-(end - start) :]
        lp_tuned = _logprobs(ref.models["tuned"], window)[-(end - start) :]
        k, s = _stats(lp_base, lp_tuned)
        kl.append(k)
        shifted.append(s)
        covered.extend(range(start, end))
    assert covered == list(range(len(ids)))  # each position exactly once
    kl, shifted = torch.cat(kl), torch.cat(shifted)[: len(ids) - 1]
    return float(kl.mean()), float(shifted.float().mean())


def _reference_generation_drift(ref, prompt_ids, output):
    continuation = _encode(ref, output)
    sequence = prompt_ids + continuation
    first = len(prompt_ids) - 1
    lp_base, lp_tuned = (_logprobs(ref.models[r], sequence)[first:] for r in ("base", "tuned"))
    kl, shifted = _stats(lp_base, lp_tuned)
    return float(kl.mean()), float(shifted[: len(continuation)].float().mean())


def _close(got, expected):
    return torch.allclose(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                          rtol=RTOL, atol=ATOL)


# -- generation --------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["base", "tuned"])
@pytest.mark.parametrize("loop", [True, False], ids=["greedy-loop", "transformers-generate"])
def test_generation_on_a_prompt_longer_than_the_context_uses_its_last_tokens(gpt2, role, loop, monkeypatch) -> None:
    if not loop:  # the model.generate fallback truncates the same way
        monkeypatch.setattr("pytest_forgetting.backends.hf.generation.supports_greedy_loop", lambda model: False)
    handle, new = gpt2.handles[role], 6
    ids = _encode(gpt2, LONG_TEXT)
    assert handle.max_length == 256 and len(ids) > 1000
    long_text = LONG_TEXT[: len(LONG_TEXT) // 2]
    outputs = handle.generate([LONG_TEXT, SHORT[0], long_text, ids], max_new_tokens=new, batch_size=4)
    expected = [_greedy(gpt2, role, _encode(gpt2, text)[-(256 - new) :], new)
                for text in (LONG_TEXT, SHORT[0], long_text, LONG_TEXT)]
    assert outputs == expected
    assert any(outputs)
    # the same as generating from the hand-truncated prompts
    assert outputs == handle.generate([_encode(gpt2, t)[-(256 - new) :] for t in (LONG_TEXT, SHORT[0], long_text)]
                                      + [ids[-(256 - new) :]], max_new_tokens=new, batch_size=4)


def test_generation_on_rope_model_truncates_to_a_lowered_max_length(llama_short) -> None:
    ref, new = llama_short, 5
    prompts = [LONG_TEXT[:300], SHORT[0], LONG_TEXT[:120]]
    outputs = ref.handles["tuned"].generate(prompts, max_new_tokens=new)
    assert outputs == [_greedy(ref, "tuned", _encode(ref, p)[-(32 - new) :], new) for p in prompts]
    assert outputs[0] != _greedy(ref, "tuned", _encode(ref, prompts[0]), new)  # truncation changed the answer


def test_shared_prefix_is_computed_on_the_truncated_prompts(llama_short, monkeypatch) -> None:
    """Prompts sharing a long start and an equal length keep a shared prefix after truncation."""
    ref, new = llama_short, 4
    handle = ref.handles["base"]
    common = _encode(ref, LONG_TEXT)[:40]
    tails = [_encode(ref, tail)[:2] for tail in (" hot cold", " big small", " fast slow")]
    assert all(len(tail) == 2 for tail in tails) and len(set(map(tuple, tails))) == 3
    prompts = [common + tail for tail in tails]
    seen = []
    original = greedy.longest_common_prefix

    def spying(sequences):
        seen.append([list(s) for s in sequences])
        return original(sequences)

    monkeypatch.setattr(greedy, "longest_common_prefix", spying)
    outputs = handle.generate(prompts, max_new_tokens=new, batch_size=3)
    budget = 32 - new
    assert seen and seen[0] == [p[-budget:] for p in prompts]
    assert original(seen[0]) >= greedy.MIN_SHARED_PREFIX  # the prefix pass did run, on truncated ids
    assert outputs == [_greedy(ref, "base", p[-budget:], new) for p in prompts]


def test_greedy_continuations_truncates_when_given_max_length(llama) -> None:
    handle = llama.handles["base"]
    ids = _encode(llama, LONG_TEXT)[:100]
    options = dict(max_new_tokens=3, eos_token_ids=[], pad_token_id=0, device=handle.device)
    truncated = greedy.greedy_continuations(handle.shared.model, [ids], max_length=20, **options)
    assert truncated == greedy.greedy_continuations(handle.shared.model, [ids[-17:]], **options)


@pytest.mark.parametrize("new", [256, 300])
def test_max_new_tokens_filling_the_context_fails_in_one_line(gpt2, new) -> None:
    with pytest.raises(ForgettingError, match=f"max_new_tokens={new} leaves no room .* 256-token context") as info:
        gpt2.handles["tuned"].generate(["hot"], max_new_tokens=new)
    assert "\n" not in str(info.value)
    suite = load_suite([{"prompt": "hot"}], "generation", max_new_tokens=new)
    with pytest.raises(ForgettingError, match="leaves no room"):
        score_drift(gpt2.handles["base"], gpt2.handles["tuned"], suite, outputs=["x"])


# -- text drift ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_length", [1, 2, 3, 5, 8])
def test_text_windows_cover_every_position_once_with_the_most_context(max_length) -> None:
    for n in range(1, 30):
        ids = list(range(100, 100 + n))
        position = 0
        windows = text_windows(ids, max_length)
        for inputs, rows in windows:
            assert 1 <= rows <= len(inputs) <= max_length
            end = position + rows  # this window reads positions position..end-1
            assert inputs == ids[max(0, end - max_length) : end]
            position = end
        assert position == n
        if n <= max_length:
            assert windows == [(ids, n)]


def test_text_drift_on_a_long_text_equals_the_window_by_window_reference(gpt2, monkeypatch) -> None:
    base, tuned = gpt2.handles["base"], gpt2.handles["tuned"]
    ids = _encode(gpt2, LONG_TEXT)
    assert len(ids) > 4 * 256
    fed = []
    original = type(base).token_distributions

    def spying(self, sequences, **kwargs):
        fed.extend(len(s) for s in sequences)
        return original(self, sequences, **kwargs)

    monkeypatch.setattr(type(base), "token_distributions", spying)
    drift = score_drift(base, tuned, load_suite([{"text": LONG_TEXT}], "text"), batch_size=2)
    assert fed and max(fed) == 256  # nothing past the model's positions
    expected_kl, expected_rate = _reference_text_drift(gpt2, ids, 256)
    assert expected_kl > 0
    assert _close(drift.kl, [expected_kl])
    assert drift.shift_rate == pytest.approx([expected_rate], abs=1e-9)


def test_text_drift_with_a_lowered_max_length_mixed_lengths(llama_short) -> None:
    ref = llama_short
    texts = [LONG_TEXT[:400], SHORT[0], LONG_TEXT[:100], SHORT[1]]
    drift = score_drift(ref.handles["base"], ref.handles["tuned"], load_suite([{"text": t} for t in texts], "text"))
    expected = [_reference_text_drift(ref, _encode(ref, t), 32) for t in texts]
    assert len(_encode(ref, texts[0])) > 3 * 32
    assert _close(drift.kl, [kl for kl, _ in expected])
    assert drift.shift_rate == pytest.approx([rate for _, rate in expected], abs=1e-9)
    # windowing matters: the full-context (no-window) value of the long text differs
    full_kl, _ = _reference_text_drift(ref, _encode(ref, texts[0]), 10_000)
    assert abs(drift.kl[0] - full_kl) > 1e-3


def test_short_texts_are_one_full_pass_as_before(llama) -> None:
    """A text that fits is scored in one forward pass over all its positions (unchanged behaviour)."""
    base, tuned = llama.handles["base"], llama.handles["tuned"]
    assert base.max_length == 256
    drift = score_drift(base, tuned, load_suite([{"text": t} for t in SHORT + [LONG_TEXT[:200]]], "text"))
    expected = [_reference_text_drift(llama, _encode(llama, t), 10_000) for t in SHORT + [LONG_TEXT[:200]]]
    assert _close(drift.kl, [kl for kl, _ in expected])
    assert drift.shift_rate == pytest.approx([rate for _, rate in expected], abs=1e-9)
    ids = _encode(llama, SHORT[1])
    assert text_windows(ids, 256) == [(ids, len(ids))]


# -- generation drift ---------------------------------------------------------------------------------
def test_generation_drift_on_a_long_prompt_equals_the_reference_on_the_truncated_prompt(gpt2) -> None:
    base, tuned, new = gpt2.handles["base"], gpt2.handles["tuned"], 6
    prompts = [LONG_TEXT, SHORT[0]]
    suite = load_suite([{"prompt": p} for p in prompts], "generation", max_new_tokens=new)
    drift = score_drift(base, tuned, suite)
    truncated = [_encode(gpt2, p)[-(256 - new) :] for p in prompts]
    outputs = [record["output"] for record in drift.records]
    assert outputs == [_greedy(gpt2, "tuned", ids, new) for ids in truncated]
    assert all(outputs)
    # the KL prompt is truncated as generation's, or further when the re-encoded answer has more
    # than max_new_tokens tokens (decode/encode need not round-trip), so prompt + answer fit
    kl_prompts = [_encode(gpt2, p)[-(256 - max(new, len(_encode(gpt2, out)))) :] for p, out in zip(prompts, outputs)]
    assert all(len(ids) + len(_encode(gpt2, out)) <= 256 for ids, out in zip(kl_prompts, outputs))
    expected = [_reference_generation_drift(gpt2, ids, out) for ids, out in zip(kl_prompts, outputs)]
    assert all(kl > 0 for kl, _ in expected)
    assert _close(drift.kl, [kl for kl, _ in expected])
    assert drift.shift_rate == pytest.approx([rate for _, rate in expected], abs=1e-9)
    # given outputs (the suite's scoring) give the same numbers
    reused = score_drift(base, tuned, suite, outputs=outputs)
    assert reused.kl == drift.kl and reused.shift_rate == drift.shift_rate


def test_generation_drift_keeps_room_for_a_long_given_answer(llama_short) -> None:
    """An answer longer than max_new_tokens (given outputs) still fits: the prompt keeps fewer tokens."""
    ref, new = llama_short, 4
    suite = load_suite([{"prompt": LONG_TEXT[:200]}], "generation", max_new_tokens=new)
    output = " hot cold big small up down left right"
    answer = _encode(ref, output)
    assert len(answer) > new
    drift = score_drift(ref.handles["base"], ref.handles["tuned"], suite, outputs=[output])
    prompt_ids = _encode(ref, LONG_TEXT[:200])[-(32 - len(answer)) :]
    kl, rate = _reference_generation_drift(ref, prompt_ids, output)
    assert _close(drift.kl, [kl]) and drift.shift_rate == pytest.approx([rate], abs=1e-9)


def test_context_length_is_resolved_as_lm_eval_resolves_it() -> None:
    from types import SimpleNamespace

    from pytest_forgetting.backends.hf.backend import context_length

    unset = SimpleNamespace(model_max_length=int(1e30))
    cases = [
        (SimpleNamespace(max_position_embeddings=512), None),
        (SimpleNamespace(n_positions=128, max_position_embeddings=512), None),  # n_positions first
        (SimpleNamespace(n_ctx=64), None),
        (SimpleNamespace(text_config=SimpleNamespace(max_position_embeddings=4096), max_position_embeddings=1200), None),
        (SimpleNamespace(), SimpleNamespace(model_max_length=300)),
        (SimpleNamespace(), unset),
        (None, None),
    ]
    expected = [512, 128, 64, 4096, 300, 2048, 2048]
    assert [context_length(config, tokenizer) for config, tokenizer in cases] == expected
    resolve_max_length = pytest.importorskip("lm_eval.models.utils").resolve_max_length
    assert [resolve_max_length(config, tokenizer, default=2048) for config, tokenizer in cases] == expected
