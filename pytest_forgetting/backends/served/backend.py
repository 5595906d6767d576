"""A model behind an OpenAI-compatible API (OpenAI's hosted models, vLLM, llama.cpp's server) as a backend.

On creation the backend checks once that the server serves the model (else one line
listing the names it serves) and probes what it offers: text completion
(``/v1/completions``) and chat (``/v1/chat/completions``). Every request uses the same
settings for base and tuned: ``temperature=0``, ``seed=0``, the suite's ``max_tokens`` and
stop strings (the first four go to the server, which allows four; all are applied to the
text afterwards). Multiple choice on a server without prompt log-probabilities is scored by
the answer the model writes, as the separately named metric ``letter_acc``
(:mod:`pytest_forgetting.scoring.letters`).

Identity (what the result cache keys on): the server's URL, the model name, what the server
reports about it (vLLM's ``root``/``parent``, llama.cpp's ``meta``, ``owned_by``, the
``system_fingerprint`` of its answers) and your ``@REVISION``. A hosted model can change
behind the same name without any of these changing: give a new ``@REVISION`` (or clear the
cache with ``--forgetting-clear-cache``) to re-score it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence

from pytest_forgetting.backends.contract import (
    Backend,
    Capabilities,
    Identity,
    Loglikelihood,
    Messages,
    TopLogprobs,
    VocabularySample,
)
from pytest_forgetting.backends.hf.text import cut_at_stop
from pytest_forgetting.backends.served.address import ServedAddress, parse_address
from pytest_forgetting.backends.served.loglikelihood import PromptScorer, probe_echo
from pytest_forgetting.backends.served.requests import (
    RequestPolicy,
    RequestRunner,
    classify,
    redact,
)
from pytest_forgetting.backends.served.tokens import ServerTokenizer
from pytest_forgetting.errors import ForgettingError

#: What a server's model listing may say about the weights behind a name (kept in the identity).
DESCRIBING_FIELDS = ("root", "parent", "meta", "owned_by")
#: Stop strings an OpenAI-compatible server accepts per request.
MAX_SERVER_STOPS = 4
#: Statuses meaning "this server does not offer that endpoint".
ABSENT_STATUSES = frozenset({400, 404, 405, 501})


class EndpointAbsent(ForgettingError):
    """A probe found that the server does not offer an endpoint (not an error of the session)."""


class ServedBackend(Backend):
    """A served model (see the module docstring). Build it with :func:`load_served`."""

    def __init__(self, address: ServedAddress, *, policy: Optional[RequestPolicy] = None, client: Any = None) -> None:
        self.address = address
        self.name = address.source
        self.policy = policy or RequestPolicy()
        key = address.api_key()
        self.runner = RequestRunner(address.source, self.policy, secret=key)
        if client is None:
            try:
                import openai
            except ImportError:
                raise ForgettingError(f"{address.source}: served models need the openai client; install the extra: "
                                      "pip install 'pytest-forgetting[openai]'") from None
            client = openai.OpenAI(base_url=address.base_url, api_key=key, timeout=self.policy.timeout, max_retries=0)
        self.client = client
        self.listing = self._listed_model()
        self.system_fingerprint: Optional[str] = None
        self.tokens = ServerTokenizer(self)
        self._prompts = PromptScorer(self)
        text = self._offers("/v1/completions", self._probe_completion)
        echoed = probe_echo(self) if text else 0
        self.capabilities = Capabilities(loglikelihood=echoed > 0, generate_text=text,
                                         generate_chat=self._offers("/v1/chat/completions", self._probe_chat),
                                         top_logprobs=echoed if echoed > 1 else 0, tokenizer=echoed > 0)
        if not (self.capabilities.generate_text or self.capabilities.generate_chat):
            raise ForgettingError(f"{address.source}: the server answers neither /v1/completions nor "
                                  "/v1/chat/completions for this model; check that it is an OpenAI-compatible server")

    # -- probing --------------------------------------------------------------------------
    def _listed_model(self) -> dict[str, Any]:
        models = self.runner.call("/v1/models", lambda: self.client.models.list())
        listed = {entry.id: entry for entry in getattr(models, "data", [])}
        if self.address.model not in listed:
            served = ", ".join(sorted(listed)) or "none"
            raise ForgettingError(f"{self.address.source}: the server at {self.address.base_url} does not serve a model "
                                  f"named {self.address.model!r}; it serves: {served}")
        entry = listed[self.address.model]
        dumped = entry.model_dump() if hasattr(entry, "model_dump") else dict(entry)
        return {name: dumped[name] for name in DESCRIBING_FIELDS if dumped.get(name) is not None}

    def _offers(self, endpoint: str, probe: Any) -> bool:
        try:
            response = self.runner.call(endpoint, probe)
        except EndpointAbsent:
            return False
        fingerprint = getattr(response, "system_fingerprint", None)
        if fingerprint:
            self.system_fingerprint = fingerprint
        return True

    def _absent_or_raise(self, call: Any) -> Any:
        try:
            return call()
        except Exception as exc:
            status, _, _ = classify(exc)
            if status in ABSENT_STATUSES:
                raise EndpointAbsent(f"{self.name}: endpoint absent (status {status})") from None
            raise

    def _probe_completion(self) -> Any:
        return self._absent_or_raise(lambda: self.client.completions.create(
            model=self.address.model, prompt="Hello", max_tokens=1, temperature=0, seed=0))

    def _probe_chat(self) -> Any:
        return self._absent_or_raise(lambda: self.client.chat.completions.create(
            model=self.address.model, messages=[{"role": "user", "content": "Hello"}], max_tokens=1, temperature=0,
            seed=0))

    # -- identity -------------------------------------------------------------------------
    def identity(self) -> Identity:
        """URL, model, what the server reports about it and the revision (never the key)."""
        payload = {"url": self.address.base_url, "model": self.address.model, "listing": self.listing,
                   "system_fingerprint": self.system_fingerprint, "revision": self.address.revision}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        return Identity(digest, "served", "remote")

    # -- log-likelihood -------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[tuple[str, str]], *, batch_size: int | None = None
                      ) -> list[Loglikelihood]:
        """lm-eval's split, tokenized by the server, scored from echoed prompt log-probabilities."""
        if not self.capabilities.loglikelihood:
            raise self._unsupported("loglikelihood")
        return self.runner.parallel(lambda pair: self._prompts.score(*self._prompts.split(*pair)), list(requests))

    def loglikelihood_rolling(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[Loglikelihood]:
        """Not offered: a whole text's first token is scored after BOS, whose id a server does not report."""
        raise ForgettingError(f"{self.name}: perplexity (text suites) is not offered for served models; score "
                              "text suites with local models")

    # -- top-k log-probabilities and tokens (vLLM) -----------------------------------------
    def token_top_logprobs(self, sequences: Sequence[Sequence[int]], k: int, *, batch_size: int | None = None
                           ) -> list[TopLogprobs]:
        """Per sequence, the top-``k`` at each position, from echoed prompt log-probabilities."""
        if k > self.capabilities.top_logprobs:
            raise self._unsupported(f"top_logprobs={k}")
        return self.runner.parallel(lambda ids: self._prompts.top_logprobs(ids, k), [list(s) for s in sequences])

    def _tokens(self) -> ServerTokenizer:
        if not self.capabilities.tokenizer:
            raise self._unsupported("tokenizer")
        return self.tokens

    @property
    def max_length(self) -> int:
        """The server's context length, less the one token an echo request writes."""
        tokens = self._tokens()
        if tokens.max_model_len is None:
            tokens.tokenize("")
        return int(tokens.max_model_len or 0) - 1

    @property
    def prefix_token_id(self) -> int:
        """The BOS token the server's tokenizer puts first (a server reports no EOS id)."""
        added = self._tokens().tokenize("")
        if not added:
            raise ForgettingError(f"{self.name}: the served tokenizer adds no BOS token and the server reports no "
                                  "EOS id; give every item some context")
        return added[0]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` by the served tokenizer, as the local backend's :meth:`encode`: with the
        special tokens it adds (BOS), except when the text already starts with them (a chat prompt)."""
        tokens = self._tokens()
        added = tokens.tokenize("")
        if added and text.startswith(tokens.detokenize(added)):
            return tokens.tokenize(text, special_tokens=False)
        return tokens.tokenize(text)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` as the server decodes them."""
        return self._tokens().detokenize(ids)

    def chat_text(self, messages: Messages) -> str:
        """``messages`` under the served chat template (rendered by the server, decoded to text)."""
        tokens = self._tokens()
        return tokens.detokenize(tokens.tokenize_chat(messages))

    def vocabulary(self) -> VocabularySample:
        """The tokens of a probe text as the served tokenizer splits it (a server lists no vocabulary)."""
        return self._tokens().vocabulary_sample()

    # -- generation -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 64, stop: Sequence[str] = (),
                 batch_size: int | None = None) -> list[str]:
        """Greedy completions of text prompts through ``/v1/completions``."""
        if not self.capabilities.generate_text:
            raise self._unsupported("generate_text")

        def one(prompt: str) -> str:
            response = self.client.completions.create(model=self.address.model, prompt=prompt,
                                                      max_tokens=max_new_tokens, temperature=0, seed=0,
                                                      stop=list(stop[:MAX_SERVER_STOPS]) or None)
            return cut_at_stop(response.choices[0].text or "", stop)

        return self.runner.map("/v1/completions", one, list(prompts))

    def generate_chat(self, conversations: Sequence[Messages], *, max_new_tokens: int = 64,
                      stop: Sequence[str] = (), batch_size: int | None = None) -> list[str]:
        """Greedy assistant replies through ``/v1/chat/completions``."""
        if not self.capabilities.generate_chat:
            raise self._unsupported("generate_chat")

        def one(messages: Messages) -> str:
            response = self.client.chat.completions.create(model=self.address.model, messages=list(messages),
                                                           max_tokens=max_new_tokens, temperature=0, seed=0,
                                                           stop=list(stop[:MAX_SERVER_STOPS]) or None)
            return cut_at_stop(response.choices[0].message.content or "", stop)

        return self.runner.map("/v1/chat/completions", one, list(conversations))

    def __repr__(self) -> str:
        return f"<ServedBackend {self.address.model!r} at {redact(self.address.base_url)}>"


def load_served(source: str, policy: Optional[RequestPolicy] = None) -> ServedBackend:
    """The backend for a served-model source (``openai:...`` or ``openai+http...#MODEL``)."""
    return ServedBackend(parse_address(source), policy=policy)
