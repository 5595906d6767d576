"""The served model's own tokenizer, asked through the server (vLLM's ``/tokenize`` and ``/detokenize``).

Token-level scoring (log-likelihood splits, KL drift) must use exactly the tokens the server
computes on, so nothing is tokenized locally: every text goes to the server's tokenizer for the
model being scored (for a LoRA adapter, the adapter's name). OpenAI's hosted API and
llama.cpp's OpenAI routes have no such endpoints; those models declare no token access.

Paired scoring needs base and tuned to share a tokenizer. A server does not list its
vocabulary, so :meth:`ServerTokenizer.vocabulary_sample` is the tokens of
:data:`PROBE_TEXT` as the server splits them (their strings and ids): two different
tokenizers practically never split that text identically, and a local base's full vocabulary
must hold every one of them with the same id
(:func:`pytest_forgetting.backends.contract.check_same_vocabulary`).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any, Mapping, Optional, Sequence

from pytest_forgetting.backends.contract import VocabularySample

#: A text whose split tells tokenizers apart: words, numbers, code, accents, CJK and emoji.
PROBE_TEXT = ("The quick brown fox jumps over 13 lazy dogs; WHEREAS the parties HEREBY agree.\n"
              "def f(x):\n    return x**2 + 0.5  # naïve café, Übermaß, 東京, ßπ∑ 🙂\n"
              "https://example.org/a?b=c&d=1234567890")


def server_root(base_url: str) -> str:
    """The server's root URL (vLLM serves ``/tokenize`` beside ``/v1``)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class ServerTokenizer:
    """Tokenizes and detokenizes with one served model's tokenizer, through its server.

    Args:
        backend: the :class:`~pytest_forgetting.backends.served.backend.ServedBackend` (its
            address, request policy and runner).
    """

    #: Texts (and token ids) whose answers are remembered (a multiple-choice context is
    #: tokenized once for all its choices; drift decodes each shifted token once).
    MEMO_SIZE = 4096

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        #: The server's context length (``max_model_len``), known after the first request.
        self.max_model_len: Optional[int] = None
        self._texts: dict[tuple[str, bool], list[int]] = {}
        self._pieces: dict[int, str] = {}
        self._lock = threading.Lock()

    def _post(self, path: str, payload: dict[str, Any], *, retried: bool = True) -> Any:
        address = self.backend.address
        body = json.dumps({"model": address.model, **payload}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {address.api_key()}"}

        def send() -> Any:
            request = urllib.request.Request(f"{server_root(address.base_url)}{path}", data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=self.backend.policy.timeout) as response:
                return json.loads(response.read())

        answer = self.backend.runner.call(path, send) if retried else send()
        if self.max_model_len is None and isinstance(answer, dict) and answer.get("max_model_len"):
            self.max_model_len = int(answer["max_model_len"])
        return answer

    def tokenize(self, text: str, *, special_tokens: bool = True, retried: bool = True) -> list[int]:
        """Token ids of ``text`` (``special_tokens``: what the tokenizer adds, e.g. BOS, as by default).

        Answers are remembered; ``retried=False`` (the capability probe) sends the request
        once, outside the request counts.
        """
        key = (text, special_tokens)
        with self._lock:
            known = self._texts.get(key)
        if known is None:
            answer = self._post("/tokenize", {"prompt": text, "add_special_tokens": special_tokens}, retried=retried)
            known = [int(t) for t in answer["tokens"]]
            with self._lock:
                if len(self._texts) >= self.MEMO_SIZE:
                    self._texts.clear()
                self._texts[key] = known
        return list(known)

    def tokenize_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Token ids of ``messages`` under the served chat template, ready for the assistant's reply."""
        answer = self._post("/tokenize", {"messages": [dict(m) for m in messages], "add_generation_prompt": True})
        return [int(t) for t in answer["tokens"]]

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` as the server decodes them (special tokens shown)."""
        if len(ids) == 1:
            with self._lock:
                piece = self._pieces.get(int(ids[0]))
            if piece is not None:
                return piece
        text = str(self._post("/detokenize", {"tokens": [int(t) for t in ids]})["prompt"])
        if len(ids) == 1:
            with self._lock:
                self._pieces[int(ids[0])] = text
        return text

    def vocabulary_sample(self) -> VocabularySample:
        """The tokens of :data:`PROBE_TEXT` as this tokenizer splits it: token string -> id."""
        answer = self._post("/tokenize", {"prompt": PROBE_TEXT, "add_special_tokens": False,
                                          "return_token_strs": True})
        strings = answer.get("token_strs") or []
        if len(strings) != len(answer["tokens"]):
            return VocabularySample()  # the server does not name its tokens: nothing to compare
        return VocabularySample(zip(strings, map(int, answer["tokens"])))
