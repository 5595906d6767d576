"""Served models through a REAL vLLM OpenAI server (CPU build, bfloat16) with the shipped adapters beside the base.

vLLM runs in its own environment (``.ci/run`` installs it and sets ``FORGETTING_VLLM_PYTHON``);
without it these tests are skipped. The server is started here on 127.0.0.1 and stopped by
its process id.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("openai")

from pytest_forgetting import EvaluationSession, load_suite  # noqa: E402
from pytest_forgetting.errors import ForgettingError  # noqa: E402
from tests.servers import start_vllm_server  # noqa: E402

pytestmark = pytest.mark.xdist_group("served_vllm")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "pytest_forgetting" / "starter" / "data"  # the shipped starter suites
ADAPTERS = ROOT / "example_suites" / "adapters"
#: Largest |log-likelihood| difference allowed between vLLM (bfloat16) and the local backend
#: (float32) on the same checkpoint: measured 0.70 over every choice of 314 items, base and both
#: adapters (benchmarks/served.py); acc agreed on 312/314 of the base's items.
LOGLIKELIHOOD_TOLERANCE = 1.0


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    python = os.environ.get("FORGETTING_VLLM_PYTHON")
    if not python:
        pytest.skip("vLLM is not installed here; .ci/run installs it and sets FORGETTING_VLLM_PYTHON")
    from pytest_forgetting.embedded import ensure_embedded_model

    model = ensure_embedded_model()
    server = start_vllm_server(python, model, {name: ADAPTERS / name for name in ("careful", "aggressive")},
                               tmp_path_factory.mktemp("vllm") / "vllm.log")
    try:
        yield server, model
    finally:
        server.stop()


def test_multiple_choice_through_vllm_agrees_with_the_local_backend(vllm):
    server, model = vllm
    suite = load_suite(DATA / "knowledge.jsonl", "multiple_choice", limit=40)
    served = EvaluationSession(server.source, {"careful": f"openai+{server.url}#careful"})
    local = EvaluationSession(str(model), {"careful": str(ADAPTERS / "careful")})
    assert served.base.backend().capabilities.loglikelihood
    for served_slot, local_slot in ((served.base, local.base), (served.candidates[0], local.candidates[0])):
        ours, theirs = served.scores(served_slot, suite), local.scores(local_slot, suite)
        for a, b in zip(ours.records, theirs.records):
            assert max(abs(x - y) for x, y in zip(a["loglikelihoods"], b["loglikelihoods"])) < LOGLIKELIHOOD_TOLERANCE
        agree = sum(x == y for x, y in zip(ours.metrics["acc"], theirs.metrics["acc"]))
        assert agree >= 36
    result = served.compare("careful", suite, tolerance=0.2)
    assert result.metric == "acc" and "notice" not in result.extra


def test_vllm_catches_the_aggressive_adapter_and_passes_the_careful_one(vllm):
    server, _ = vllm
    # 100 of the 223 items keep CI short; locally (float32) careful's lower bound is -0.044 and
    # aggressive's -0.287 there, both far from the tolerance of 0.1 (all 223 items, tolerance
    # 0.05: the same verdicts through vLLM as locally, benchmarks/served.py).
    suite = load_suite(DATA / "arithmetic.jsonl", "generation", fewshot=3, scorer="numeric", max_new_tokens=5,
                       stop=["\n"], limit=100)
    session = EvaluationSession(server.source, {name: f"openai+{server.url}#{name}" for name in ("careful", "aggressive")})
    careful = session.compare("careful", suite, tolerance=0.1)
    aggressive = session.compare("aggressive", suite, tolerance=0.1)
    assert careful.verdict == "pass" and aggressive.verdict == "fail"
    assert aggressive.delta < -0.05 and session.runs["base"] == 1


def test_kl_drift_through_vllm_is_the_declared_top_20_approximation(vllm):
    server, model = vllm
    suite = load_suite(DATA / "writing.jsonl", "generation", chat_template=True, scorer="no_forbidden",
                       phrases=["WHEREAS", "HEREBY"], max_new_tokens=16, limit=10)
    session = EvaluationSession(server.source, {name: f"openai+{server.url}#{name}" for name in ("careful", "aggressive")})
    assert session.base.backend().capabilities.top_logprobs == 20
    careful = session.drift("careful", suite, max_kl=0.5)
    aggressive = session.drift("aggressive", suite, max_kl=0.5)
    assert careful.verdict == "pass" and aggressive.verdict == "fail"
    assert careful.extra["approximation"] == "top-20 log-probs, coarse-grained KL"
    # the local backend's exact KL on the same checkpoint and answers (float32 vs vLLM's bfloat16)
    local = EvaluationSession(str(model), {"aggressive": str(ADAPTERS / "aggressive")})
    exact = local.drift("aggressive", suite, max_kl=0.5)
    assert exact.verdict == "fail" and 0.5 * exact.tuned_score < aggressive.tuned_score <= 1.1 * exact.tuned_score
    assert careful.tuned_score < 0.05


def test_a_tuned_model_served_with_another_tokenizer_is_refused_in_one_line(vllm, tmp_path):
    from tests.tiny import build_llama

    server, _ = vllm
    base = build_llama(tmp_path / "tiny")  # a tokenizer of its own, not SmolLM2's
    session = EvaluationSession(str(base), {"careful": f"openai+{server.url}#careful"})
    with pytest.raises(ForgettingError) as refused:
        session.candidates[0].backend()
    message = str(refused.value)
    assert "\n" not in message and "splits text differently" in message and "probe tokens differ" in message
