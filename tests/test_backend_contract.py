"""The backend contract: declared capabilities are checked before scoring; top-k drift is a declared approximation."""

from __future__ import annotations

import pytest

from pytest_forgetting import Backend, Capabilities, EvaluationSession, Identity, LoadOptions, Unsupported
from pytest_forgetting import load_model, load_suite, resolve_pair
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.drift import top_k_kl

PROMPTS = ["Write a note to a colleague.", "Describe the weather today.", "Say hello to a friend.",
           "Thank the team for the report.", "Ask a friend to lunch.", "Tell the seller the goods arrived.",
           "Say the meeting moved.", "Wish a colleague a good weekend.", "Describe a city river.",
           "Say the capital is Paris.", "Count from one to three.", "Greet the parties."]


class Restricted(Backend):
    """The transformers backend behind a narrower declaration (what a served model might offer)."""

    def __init__(self, inner: Backend, capabilities: Capabilities) -> None:
        self.inner, self.capabilities, self.name = inner, capabilities, f"restricted:{inner.name}"

    def identity(self) -> Identity:
        inner = self.inner.identity()
        return Identity(f"{inner.fingerprint}|{self.capabilities}", inner.dtype, inner.device)

    def loglikelihood(self, requests, *, batch_size=None):
        return self.inner.loglikelihood(requests, batch_size=batch_size)

    def generate(self, prompts, **kwargs):
        return self.inner.generate(prompts, **kwargs)

    def token_top_logprobs(self, sequences, k, *, batch_size=None):
        assert k <= self.capabilities.top_logprobs
        return self.inner.token_top_logprobs(sequences, k, batch_size=batch_size)

    def continuation_top_logprobs(self, prompts, continuations, k, *, batch_size=None):
        assert k <= self.capabilities.top_logprobs
        return self.inner.continuation_top_logprobs(prompts, continuations, k, batch_size=batch_size)

    @property
    def max_length(self):
        return self.inner.max_length

    @property
    def prefix_token_id(self):
        return self.inner.prefix_token_id

    def encode(self, text):
        return self.inner.encode(text)

    def decode(self, ids):
        return self.inner.decode(ids)

    def vocabulary(self):
        return self.inner.vocabulary()


NO_DISTRIBUTIONS = Capabilities(loglikelihood=True, generate_text=True, tokenizer=True)


@pytest.fixture(scope="module")
def backends(tiny_models):
    options = LoadOptions()
    base_spec, tuned_spec = resolve_pair(str(tiny_models["adapter"]), None, options)
    base = load_model(base_spec, options, None)
    return base, load_model(tuned_spec, options, base)


def _session(backends, capabilities: Capabilities) -> EvaluationSession:
    base, tuned = backends
    return EvaluationSession(Restricted(base, capabilities), {"served": Restricted(tuned, capabilities)})


def _writing():
    return load_suite([{"prompt": p} for p in PROMPTS], "generation", name="writing", scorer="no_forbidden",
                      phrases=["WHEREAS"], max_new_tokens=6)


def test_drift_without_distributions_or_top_k_is_refused_in_one_line(backends) -> None:
    session = _session(backends, NO_DISTRIBUTIONS)
    with pytest.raises(ForgettingError) as info:
        session.drift("served", _writing(), max_kl=1.0)
    message = str(info.value)
    assert message.startswith("model restricted:") and "(base)" in message
    assert "suite 'writing' (generation, kl drift) needs next-token distributions or top-k log-probs" in message
    assert "it declares: loglikelihood, generate_text, tokenizer" in message and "\n" not in message


def test_top_k_only_gets_the_declared_approximation(backends) -> None:
    base, tuned = backends
    exact = EvaluationSession(base, {"local": tuned}).drift("local", _writing(), max_kl=100.0)
    approx = _session(backends, Capabilities(loglikelihood=True, generate_text=True, top_logprobs=5, tokenizer=True))
    result = approx.drift("served", _writing(), max_kl=100.0)
    assert "approximation" not in exact.extra and "approximated" not in exact.statistic
    assert result.extra["approximation"] == "top-5 log-probs, coarse-grained KL"
    assert result.statistic.endswith("KL approximated from top-5 log-probs, coarse-grained KL")
    assert [r["tuned_answer"] for r in result.records] == [r["tuned_answer"] for r in exact.records]
    # the tiny random models spread their mass thinly: 5 tokens hold little of it, so the
    # coarse-grained KL is well below the exact one, and closer with more tokens
    wider = _session(backends, Capabilities(loglikelihood=True, generate_text=True, top_logprobs=20, tokenizer=True))
    top20 = wider.drift("served", _writing(), max_kl=100.0)
    assert 0 < result.tuned_score < top20.tuned_score < exact.tuned_score
    # with the whole vocabulary in the lists, the approximation is the exact KL
    vocabulary = len(base.vocabulary())
    full = _session(backends, Capabilities(loglikelihood=True, generate_text=True, top_logprobs=vocabulary,
                                           tokenizer=True))
    import pytest_forgetting.engine.requirements as requirements

    original, requirements.MAX_TOP_LOGPROBS = requirements.MAX_TOP_LOGPROBS, vocabulary
    try:
        complete = full.drift("served", _writing(), max_kl=100.0)
    finally:
        requirements.MAX_TOP_LOGPROBS = original
    assert complete.tuned_values == pytest.approx(exact.tuned_values, rel=1e-4, abs=1e-6)


def test_text_drift_from_top_k(backends) -> None:
    text = load_suite([{"text": p + " And then some more words."} for p in PROMPTS], "text", name="notes")
    result = _session(backends, Capabilities(loglikelihood=True, top_logprobs=20, tokenizer=True)).drift(
        "served", text, max_kl=100.0)
    assert result.n == len(PROMPTS) and result.tuned_score > 0 and "top-20" in result.statistic


def test_shift_rate_needs_the_top_3(backends) -> None:
    session = _session(backends, Capabilities(loglikelihood=True, generate_text=True, top_logprobs=2, tokenizer=True))
    with pytest.raises(ForgettingError, match=r"needs next-token distributions or top-3 log-probs \(for the shift rate\)"):
        session.drift("served", _writing(), metric="shift_rate", max_kl=1.0)


def test_a_suite_the_backend_cannot_serve_is_refused_before_scoring(backends) -> None:
    session = _session(backends, Capabilities(loglikelihood=True, generate_text=True))
    chat = load_suite([{"prompt": p} for p in PROMPTS], "generation", name="emails", chat_template=True,
                      scorer="no_forbidden", phrases=["WHEREAS"])
    with pytest.raises(ForgettingError) as info:
        session.compare("served", chat)
    assert "suite 'emails' (generation, chat template) needs generate_chat, which its backend does not declare" \
        in str(info.value)
    assert session.runs == {}
    counting = load_suite([{"question": "q", "choices": ["a", "b"], "answer": 0}], "multiple_choice", name="counting")
    chat_only = _session(backends, Capabilities(generate_chat=True))
    with pytest.raises(ForgettingError, match=r"suite 'counting' \(multiple_choice\) needs generate_text"):
        chat_only.compare("served", counting)  # no log-likelihoods: written answers, which need text generation
    assert chat_only.runs == {}


def test_multiple_choice_without_loglikelihoods_is_answered_by_letter(backends) -> None:
    counting = load_suite([{"question": f"Is {n} even?", "choices": ["yes", "no"], "answer": n % 2} for n in range(12)],
                          "multiple_choice", name="counting")
    result = _session(backends, Capabilities(generate_text=True)).compare("served", counting)
    assert result.metric == "letter_acc" and result.n == 12
    assert "answer by writing the choice's letter: metric letter_acc, not acc" in result.extra["notice"]
    local = _session(backends, Capabilities(loglikelihood=True, generate_text=True)).compare("served", counting)
    assert local.metric == "acc" and "notice" not in local.extra


def test_undeclared_methods_raise_unsupported(backends) -> None:
    backend = Restricted(backends[0], Capabilities(generate_text=True))
    with pytest.raises(Unsupported, match="does not declare 'generate_chat'"):
        backend.generate_chat([[{"role": "user", "content": "hi"}]])
    assert str(Capabilities(loglikelihood=True, top_logprobs=20)) == "loglikelihood, top_logprobs=20"


def test_top_k_kl_on_complete_and_partial_lists() -> None:
    import math

    p, q = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
    exact = sum(a * math.log(a / b) for a, b in zip(p, q))
    ids = [0, 1, 2]
    assert top_k_kl(ids, [math.log(x) for x in p], ids, [math.log(x) for x in q]) == pytest.approx(exact)
    assert top_k_kl([0, 1], [math.log(0.5), math.log(0.3)], [0, 1], [math.log(0.5), math.log(0.3)]) == 0.0
    # the tuned model's favourite is missing from the base's list: it gets the base's remaining share
    partial = top_k_kl([0, 1], [math.log(0.5), math.log(0.3)], [2, 1], [math.log(0.5), math.log(0.3)])
    assert 0 < partial <= exact + 1e-12


CLAIMING_CONFTEST = """
from pytest_forgetting import Backend, Capabilities, Identity, Loglikelihood

class Canned(Backend):
    capabilities = Capabilities(loglikelihood=True)

    def __init__(self, source):
        self.name, self.source = source, source

    def identity(self):
        return Identity(self.source, "canned", "remote")

    def loglikelihood(self, requests, *, batch_size=None):
        favourite = " yes" if self.source.endswith("#base") else " no"
        return [Loglikelihood(-0.1 if c == favourite else -5.0, c == favourite, 1) for _, c in requests]

def pytest_forgetting_claim_model(config, source, role):
    return source.startswith("fake://") or None

def pytest_forgetting_load_model(config, spec, options, base):
    if spec.kind == "external":
        return Canned(spec.source) if "broken" not in spec.source else object()
    return None
"""

SERVED_TEST = """
from pytest_forgetting import capability

@capability("yes-no")
def test_served(forgetting):
    rows = [{"question": f"q{i}", "choices": ["yes", "no"], "answer": 0} for i in range(20)]
    result = forgetting.compare(forgetting.suite(rows, "multiple_choice"))
    assert (result.base_score, result.tuned_score, result.n) == (1.0, 0.0, 20)
    assert result.base_model == "fake://server/v1#base" and result.tuned_model == "fake://server/v1#tuned"
"""


def test_a_plugin_claims_a_model_that_is_not_a_folder(pytester) -> None:
    pytester.makeconftest(CLAIMING_CONFTEST)
    pytester.makepyfile(test_served=SERVED_TEST)
    result = pytester.runpytest("--tuned-model=fake://server/v1#tuned", "--base-model=fake://server/v1#base")
    result.assert_outcomes(passed=1)
    broken = pytester.runpytest("--tuned-model=fake://broken#tuned", "--base-model=fake://server/v1#base")
    broken.assert_outcomes(failed=1)
    broken.stdout.fnmatch_lines(["*pytest-forgetting: fake://broken#tuned: the model loader returned "
                                 "builtins.object, not a pytest_forgetting.Backend; subclass Backend and "
                                 "declare its capabilities"])
    unclaimed = pytester.runpytest("--tuned-model=other://server#tuned", "--base-model=fake://server/v1#base")
    assert unclaimed.ret == pytest.ExitCode.USAGE_ERROR
    unclaimed.stderr.fnmatch_lines(["ERROR: pytest-forgetting: --tuned-model other://server#tuned: no such folder*"])


def test_a_vocabulary_sample_is_compared_on_the_tokens_it_holds() -> None:
    from pytest_forgetting.backends.contract import VocabularySample, check_same_vocabulary

    full = {"the": 1, "Ġfox": 2, "Ġjumps": 3, "!": 4}
    check_same_vocabulary(full, VocabularySample({"the": 1, "Ġfox": 2}), "tuned")  # consistent with the full one
    check_same_vocabulary(VocabularySample({"the": 1}), VocabularySample({"the": 1}), "tuned")
    for base, tuned in ((full, VocabularySample({"the": 1, "Ġfox": 9})),
                        (VocabularySample({"the": 1, "Ġfox": 2}), VocabularySample({"the": 1, "Ġf": 5, "ox": 6}))):
        with pytest.raises(ForgettingError) as refused:
            check_same_vocabulary(base, tuned, "tuned")
        assert "splits text differently" in str(refused.value) and "\n" not in str(refused.value)
