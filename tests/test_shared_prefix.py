"""Shared prefixes give the same numbers as computing everything per item.

Multiple choice packs each question's choices behind its context; the prefix a call's
prompts share (few-shot examples) runs once per model and is kept for later calls (the
suite's next chunks, generation, drift), per adapter.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair
from pytest_forgetting.backends.hf.prefix_cache import MIN_SHARED_PREFIX
from pytest_forgetting.scoring.kinds import score_multiple_choice

ROWS = [{"question": f"What comes after {w}? " * (1 + i % 3), "choices": ["one", "two three", " four", "five six seven"],
         "answer": i % 4} for i, w in enumerate("hot cold big small up down left right fast slow".split())]


@pytest.fixture(scope="module")
def pair(tiny_models):
    options = LoadOptions(device="cpu", dtype="float32")
    base_spec, tuned_spec = resolve_pair(str(tiny_models["adapter"]), None, options)
    base = load_model(base_spec, options, None)
    return base, load_model(tuned_spec, options, base)


#: Log-likelihoods summed in other orders agree to float32 accumulation: 1e-5, or 2e-6 of their size
#: (at -26.6 that is 5.3e-5), always inside the 1e-4 parity promise.
FLOAT32 = {"rel": 2e-6, "abs": 1e-5}


@pytest.mark.parametrize("role", [0, 1])
def test_grouped_equals_per_choice(pair, role: int) -> None:
    handle = pair[role]
    suite = load_suite(ROWS, "multiple_choice")
    grouped = score_multiple_choice(handle, suite, shared_prefix=True, batch_size=4)
    single = score_multiple_choice(handle, suite, shared_prefix=False, batch_size=1)
    for a, b in zip(grouped.records, single.records):
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], **FLOAT32)
        assert a["is_greedy"] == b["is_greedy"]
    assert grouped.metrics == single.metrics


def test_too_long_groups_fall_back(pair) -> None:
    base = pair[0]
    long_context = "hot cold " * 200  # beyond the tiny model's 256 positions
    grouped = base.loglikelihood_groups([(long_context, [" up", " down"])])
    single = base.loglikelihood([(long_context, " up"), (long_context, " down")])
    assert [r.logprob for r in grouped[0]] == pytest.approx([r.logprob for r in single], **FLOAT32)


def test_output_head_runs_only_where_a_score_is_read(pair, monkeypatch) -> None:
    """logits_to_keep: the head sees the positions a log-likelihood reads, with the same numbers."""
    from pytest_forgetting.backends.hf import backend as hf

    tuned = pair[1]
    head = tuned.shared.model.get_base_model().get_output_embeddings()
    seen: list[int] = []
    hook = head.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[0] * args[0].shape[1]))
    suite = load_suite(ROWS, "multiple_choice")
    try:
        grouped = score_multiple_choice(tuned, suite, shared_prefix=True, batch_size=len(ROWS))
        single = score_multiple_choice(tuned, suite, shared_prefix=False, batch_size=len(ROWS) * 4)
        kept = list(seen)
        seen.clear()
        monkeypatch.setattr(hf, "_takes_logits_to_keep", lambda model: False)  # every position
        full = score_multiple_choice(tuned, suite, shared_prefix=True, batch_size=len(ROWS))
    finally:
        hook.remove()
    every_position = sum(seen)
    assert kept[0] < every_position  # the grouped pass skipped the question's earlier positions
    for a, b, c in zip(grouped.records, full.records, single.records):
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], **FLOAT32)
        assert c["loglikelihoods"] == pytest.approx(b["loglikelihoods"], **FLOAT32)


def test_output_head_reads_a_contiguous_input_in_generation_and_drift(pair, monkeypatch) -> None:
    """The greedy loop's first pass and drift's teacher-forced pass hand the head position indices:
    a contiguous copy of the rows' last positions (a sliced view is many times slower on a CPU),
    with the same outputs and distributions as the slice."""
    from pytest_forgetting.backends.hf import kv

    tuned = pair[1]
    head = tuned.shared.model.get_base_model().get_output_embeddings()
    layouts: list[tuple[int, bool]] = []
    hook = head.register_forward_hook(lambda module, args, output: layouts.append((args[0].shape[0],
                                                                                  args[0].is_contiguous())))
    prompts = ["hot cold big small " * 3 + w for w in ("up", "down left", "right fast slow")]
    prompt_ids = [tuned.encode(p) for p in prompts]
    continuations = [tuned.encode(" one two"), tuned.encode(" three"), tuned.encode(" four five six")]
    try:
        outputs = tuned.generate(prompts, max_new_tokens=4, batch_size=3)
        distributions = tuned.continuation_distributions(prompt_ids, continuations, batch_size=3)
        gathered = list(layouts)
        monkeypatch.setattr(kv, "last_positions", lambda keep, width, device: keep)  # transformers slices
        sliced_outputs = tuned.generate(prompts, max_new_tokens=4, batch_size=3)
        sliced_distributions = tuned.continuation_distributions(prompt_ids, continuations, batch_size=3)
    finally:
        hook.remove()
    assert any(rows == 3 for rows, _ in gathered) and all(contiguous for _, contiguous in gathered)
    assert not all(contiguous for _, contiguous in layouts[len(gathered):])  # the slice is a strided view
    assert outputs == sliced_outputs
    for a, b in zip(distributions, sliced_distributions):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# -- the prefix shared by a call's prompts, kept across calls (backends/hf/prefix_cache.py) -----------------
SHOTS = [{"question": "What is 2 + 3?", "choices": ["5", "six"], "answer": 0},
         {"question": "Opposite of hot?", "choices": ["cold", "big"], "answer": 0},
         {"question": "The quick brown", "choices": ["fox", "dog"], "answer": 0}]
QUESTIONS = [{"question": q, "choices": c, "answer": 0} for q, c in [
    ("What is the capital of France?", ["Paris", "Rome", "Berlin"]),
    ("What is 4 + 4?", ["8", "nine", "18"]),
    ("Which word means small?", ["small", "big", "up down"]),
    ("Dear team,", ["please find the report", "WHEREAS", "Best"]),
    ("Count: one two thr", ["ee", "ow", "eee"]),           # joint tokenization across the boundary
    ("Which is slow?", ["slow", "fast", "left right"]),
]]
FLOAT32_EPS = float(torch.finfo(torch.float32).eps)
FEWSHOT_MC = load_suite([*SHOTS, *QUESTIONS], "multiple_choice", fewshot=3)
PREFIX_TEXT = "one two three\nhot cold big\nDear team, please\n"
GEN_PROMPTS = [PREFIX_TEXT + tail for tail in ("The quick brown fox", "WHEREAS", "one two three four five",
                                               "Question: What is the capital of France?\nAnswer:", "hot")]


class ForwardTokens:
    """Counts the positions every forward pass of the transformers model runs (rows x width)."""

    def __init__(self, handle) -> None:
        from pytest_forgetting.backends.hf.kv import inner

        self.shapes: list[tuple[int, int]] = []
        self.hook = inner(handle.shared.model).register_forward_pre_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs) -> None:
        self.shapes.append(tuple(kwargs["input_ids"].shape))

    @property
    def tokens(self) -> int:
        return sum(rows * width for rows, width in self.shapes)

    def __enter__(self) -> "ForwardTokens":
        return self

    def __exit__(self, *exc) -> None:
        self.hook.remove()


@pytest.fixture
def fresh(pair):
    """The pair with empty prefix caches (the module's other tests leave theirs filled)."""
    from pytest_forgetting.backends.hf.prefix_cache import PrefixCache

    for handle in pair:
        handle.prefix_cache = PrefixCache()
    yield pair
    for handle in pair:
        handle.prefix_cache = PrefixCache()


def _lls(handle, suite, **kwargs) -> list[list[float]]:
    return [r["loglikelihoods"] for r in score_multiple_choice(handle, suite, **kwargs).records]


def _close(a: list[list[float]], b: list[list[float]], tolerance: float = 1e-5) -> bool:
    """Every log-likelihood within ``tolerance``, or two float32 rounding steps of its size if larger.

    The tiny random models' log-likelihoods reach -120, where float32 steps by 7.6e-6: two
    sums of the same numbers taken in other matrix shapes may differ by two such steps.
    """
    assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b))
    return all(abs(u - v) <= max(tolerance, 2 * FLOAT32_EPS * abs(v)) for x, y in zip(a, b) for u, v in zip(x, y))


@pytest.mark.parametrize("role", [0, 1])
def test_fewshot_prefix_runs_once_with_the_same_loglikelihoods(fresh, role: int) -> None:
    """(1) The 3-shot block runs once at batch 1; every choice scores as without sharing, at any batch size."""
    handle = fresh[role]
    store = handle.prefix_cache
    context_ids = [handle.encode(FEWSHOT_MC.context(item)) for item in FEWSHOT_MC.items]
    common = min(len(ids) for ids in context_ids)
    common = next((i for i in range(common) if len({ids[i] for ids in context_ids}) > 1), common)
    assert common >= 40  # the worked examples, on the final token ids
    with ForwardTokens(handle) as spy:
        shared = _lls(handle, FEWSHOT_MC, batch_size=len(QUESTIONS))
    assert spy.shapes[0] == (1, common) and spy.shapes[1][0] == len(QUESTIONS)
    assert store.stats.misses == 1 and store.stats.computed_tokens == common
    handle.prefix_cache = None
    with ForwardTokens(handle) as spy:
        packed = _lls(handle, FEWSHOT_MC, batch_size=len(QUESTIONS))
    assert len(spy.shapes) == 1 and spy.shapes[0][1] > common  # no prefix pass: whole contexts
    single = _lls(handle, FEWSHOT_MC, shared_prefix=False, batch_size=1)
    handle.prefix_cache = store
    for batch_size in (1, 2, None):
        assert _close(_lls(handle, FEWSHOT_MC, batch_size=batch_size), shared)
    assert _close(shared, packed) and _close(shared, single)


def test_a_later_call_reuses_the_kept_prefix(fresh) -> None:
    """(2) Chunks of one suite: the prefix runs for the first only; the rest run fewer tokens, same scores."""
    tuned = fresh[1]
    store = tuned.prefix_cache
    with ForwardTokens(tuned) as spy:
        whole = _lls(tuned, FEWSHOT_MC, batch_size=3)
    first_tokens = spy.tokens
    with ForwardTokens(tuned) as spy:
        again = _lls(tuned, FEWSHOT_MC, batch_size=3)
    assert again == whole  # the kept tensors themselves: not even float noise
    prefix = store.stats.computed_tokens
    assert spy.tokens == first_tokens - prefix and all(rows > 1 for rows, _ in spy.shapes)
    assert store.stats.hits >= 2 and store.stats.misses == 1
    chunks = []
    with ForwardTokens(tuned) as spy:
        for start in range(0, len(FEWSHOT_MC.items), 2):
            chunk = dataclasses.replace(FEWSHOT_MC, items=FEWSHOT_MC.items[start : start + 2])
            chunks += _lls(tuned, chunk, batch_size=2)
    assert _close(chunks, whole)
    assert store.stats.misses == 1 and store.stats.computed_tokens - prefix < 3 * MIN_SHARED_PREFIX
    assert all(width < prefix for _, width in spy.shapes)  # no chunk ran the examples again


def test_base_and_adapter_prefixes_never_mix(fresh) -> None:
    """(3) One store for both: the adapter's scores after the base ran the prefix equal its scores computed fresh."""
    from pytest_forgetting.backends.hf.prefix_cache import PrefixCache

    base, tuned = fresh
    tuned.prefix_cache = PrefixCache()
    tuned_fresh = _lls(tuned, FEWSHOT_MC)
    base_fresh = _lls(base, FEWSHOT_MC)
    store = PrefixCache()
    base.prefix_cache = tuned.prefix_cache = store
    assert _close(_lls(base, FEWSHOT_MC), base_fresh)
    with ForwardTokens(tuned) as spy:
        after_base = _lls(tuned, FEWSHOT_MC)
    assert spy.shapes[0][0] == 1  # the adapter ran the prefix itself
    assert _close(after_base, tuned_fresh) and not _close(after_base, base_fresh, 1e-3)
    assert {scope[0] for scope, _ in store._entries} == {None, tuned.adapter}
    assert _close(_lls(base, FEWSHOT_MC), base_fresh)  # and the base still reads its own


@pytest.mark.parametrize("role", [0, 1])
def test_greedy_outputs_identical_with_and_without_the_cache(fresh, role: int) -> None:
    """(4) Generation and drift: the kept prefix decodes the same tokens and the same distributions."""
    handle = fresh[role]
    store = handle.prefix_cache
    first = handle.generate(GEN_PROMPTS, max_new_tokens=6, batch_size=len(GEN_PROMPTS))
    with ForwardTokens(handle) as spy:
        cached = handle.generate(GEN_PROMPTS, max_new_tokens=6, batch_size=2)
    assert cached == first and store.stats.hits + store.stats.extended >= 2
    assert spy.shapes[0][0] > 1  # no prefix pass: it came from the cache
    handle.prefix_cache = None
    assert handle.generate(GEN_PROMPTS, max_new_tokens=6, batch_size=len(GEN_PROMPTS)) == first
    assert handle.generate(GEN_PROMPTS, max_new_tokens=6, batch_size=1) == first
    prompts = [handle.encode(p) for p in GEN_PROMPTS]
    answers = [handle.encode(a) for a in first]
    fresh_lps = handle.continuation_distributions(prompts, answers, batch_size=3)
    handle.prefix_cache = store
    for got, want in zip(handle.continuation_distributions(prompts, answers, batch_size=3), fresh_lps):
        assert torch.allclose(got, want, atol=1e-5)


def _croppable_caches() -> bool:
    from transformers.cache_utils import DynamicCache

    return hasattr(DynamicCache, "is_croppable")


# transformers < 5.17 has no Cache.is_croppable: a kept prefix is never cut there, only recomputed (same scores)
@pytest.mark.skipif(not _croppable_caches(), reason="transformers < 5.17 cannot tell a croppable cache")
def test_kept_prefixes_are_extended_cut_and_evicted(pair) -> None:
    """The store's policy: a longer prefix extends a kept one, a shorter one is cut from it, LRU bounds hold."""
    from pytest_forgetting.backends.hf.kv import cache_argument, cache_bytes, inner
    from pytest_forgetting.backends.hf.prefix_cache import PrefixCache, prefix_states

    base = pair[0]
    model, device = base.shared.model, base.device
    ids = base.encode("one two three four five six seven eight nine ten hot cold big small up down")
    assert len(ids) >= 24
    store = PrefixCache()
    with base.shared.running_as(None), torch.inference_mode():
        def logits_after(n: int, cache) -> torch.Tensor:  # the next tokens read against a prefix cache
            rest = ids[n:]
            return inner(model)(input_ids=torch.tensor([rest]), position_ids=torch.arange(n, len(ids))[None],
                                attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                                use_cache=True, **{cache_argument(model): cache}).logits

        full = inner(model)(input_ids=torch.tensor([ids])).logits
        n, kept = store.states(model, ids[:12], scope="s", device=device)
        assert (n, store.stats.misses) == (12, 1)
        n, longer = store.states(model, ids[:20], scope="s", device=device)  # extends the kept 12
        assert (n, store.stats.extended, store.stats.computed_tokens) == (20, 1, 20)
        n, cut = store.states(model, ids[:8], scope="s", device=device)       # cut from a kept one
        assert (n, store.stats.hits, store.stats.computed_tokens) == (8, 1, 20)
        assert store.states(model, ids[:8], scope="other", device=device)[0] == 8  # another scope: its own
        assert store.stats.misses == 2
        for length in (8, 12, 20):
            assert torch.allclose(logits_after(*prefix_states(model, ids[:length], 1, device=device, store=store,
                                                              scope="s")), full[:, length:], atol=1e-5)
        assert store.states(model, ids[:21], scope="s", device=device)[0] == 20  # 1 more: not worth a pass
        assert store.states(model, ids[:3], scope="s", device=device) == (0, None)
        assert prefix_states(model, ids[:3], 2, device=device)[0] == 0
        assert len(store) == 4 and store.nbytes == sum(cache_bytes(c) for c, _ in store._entries.values())
        store.states(model, ids[4:16], scope="s", device=device)  # a fifth prefix: the least recently used leaves
        assert len(store) == 4 and ("other", tuple(ids[:8])) not in store._entries
        small = PrefixCache(max_bytes=cache_bytes(kept) * 2 - 1)
        small.states(model, ids[:12], scope="s", device=device)
        small.states(model, ids[4:16], scope="s", device=device)
        assert len(small) == 1 and small.nbytes <= small.max_bytes
        assert len(PrefixCache(max_bytes=1).states(model, ids[:12], scope="s", device=device)) == 2
