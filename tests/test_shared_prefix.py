"""Shared-prefix multiple choice gives the same numbers as scoring every choice on its own."""

from __future__ import annotations

import pytest

from pytest_forgetting import LoadOptions, load_model, load_suite, resolve_pair
from pytest_forgetting.scoring.kinds import score_multiple_choice

ROWS = [{"question": f"What comes after {w}? " * (1 + i % 3), "choices": ["one", "two three", " four", "five six seven"],
         "answer": i % 4} for i, w in enumerate("hot cold big small up down left right fast slow".split())]


@pytest.fixture(scope="module")
def pair(tiny_models):
    options = LoadOptions(device="cpu", dtype="float32")
    base_spec, tuned_spec = resolve_pair(str(tiny_models["adapter"]), None, options)
    base = load_model(base_spec, options, None)
    return base, load_model(tuned_spec, options, base)


@pytest.mark.parametrize("role", [0, 1])
def test_grouped_equals_per_choice(pair, role: int) -> None:
    handle = pair[role]
    suite = load_suite(ROWS, "multiple_choice")
    grouped = score_multiple_choice(handle, suite, shared_prefix=True, batch_size=4)
    single = score_multiple_choice(handle, suite, shared_prefix=False, batch_size=1)
    for a, b in zip(grouped.records, single.records):
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=1e-5)
        assert a["is_greedy"] == b["is_greedy"]
    assert grouped.metrics == single.metrics


def test_too_long_groups_fall_back(pair) -> None:
    base = pair[0]
    long_context = "hot cold " * 200  # beyond the tiny model's 256 positions
    grouped = base.loglikelihood_groups([(long_context, [" up", " down"])])
    single = base.loglikelihood([(long_context, " up"), (long_context, " down")])
    assert [r.logprob for r in grouped[0]] == pytest.approx([r.logprob for r in single], abs=1e-5)


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
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=1e-5)
        assert c["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=1e-5)
