"""Where a served model is: the spec syntax of ``--base-model``/``--tuned-model`` for OpenAI-compatible APIs.

Two forms:

* ``openai:MODEL`` (a hosted model, e.g. ``openai:ft:gpt-4o-mini:org::abc123``): OpenAI's API at
  ``https://api.openai.com/v1``; the key is read from ``OPENAI_API_KEY`` and is required;
* ``openai+http://HOST:PORT/v1#MODEL`` (or ``openai+https://``): any compatible server (vLLM,
  llama.cpp, SGLang) and the model name it serves; the key, if the server wants one, comes
  from ``OPENAI_API_KEY``.

Either may end in ``@REVISION``: a label you choose (a date, a deployment id) that becomes
part of the model's identity, so the result cache re-scores when you change it (a hosted
name can serve other weights tomorrow). The key is read from the environment only; it is
never printed, never in a report, a cache key or an error message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from pytest_forgetting.errors import ForgettingError

PREFIX_HOSTED = "openai:"
PREFIX_SERVER = "openai+"
HOSTED_URL = "https://api.openai.com/v1"
KEY_VARIABLE = "OPENAI_API_KEY"


@dataclass(frozen=True)
class ServedAddress:
    """A served model: the API's base URL, the model name, an optional revision, and its key's variable.

    Attributes:
        source: what the user gave.
        base_url: the API root, ending in ``/v1`` as the server shows it.
        model: the model name the server serves.
        revision: a user-given revision label (part of the identity), or None.
        hosted: True for OpenAI's own API (the key is required).
        key_variable: the environment variable holding the key.
    """

    source: str
    base_url: str
    model: str
    revision: Optional[str] = None
    hosted: bool = False
    key_variable: str = KEY_VARIABLE

    def api_key(self) -> str:
        """The key from the environment; a hosted API without one fails naming the variable."""
        key = os.environ.get(self.key_variable)
        if key:
            return key
        if self.hosted:
            raise ForgettingError(f"{self.source}: the hosted OpenAI API needs a key; set the environment variable "
                                  f"{self.key_variable}")
        return "unused"  # a local server without authentication; the client wants some string

    def __str__(self) -> str:
        return self.source


def is_served(source: str) -> bool:
    """Whether ``source`` is in one of the served-model forms."""
    return source.startswith(PREFIX_HOSTED) or source.startswith(PREFIX_SERVER)


def parse_address(source: str) -> ServedAddress:
    """``source`` as a :class:`ServedAddress`, or a one-line error showing the expected forms."""
    expected = ("expected openai:MODEL (hosted, key in OPENAI_API_KEY) or openai+http://HOST:PORT/v1#MODEL "
                "(a server), either optionally ending in @REVISION")
    if source.startswith(PREFIX_HOSTED):
        model, revision = _split_revision(source[len(PREFIX_HOSTED):])
        if not model:
            raise ForgettingError(f"{source!r}: no model name after 'openai:'; {expected}")
        return ServedAddress(source, HOSTED_URL, model, revision, hosted=True)
    if not source.startswith(PREFIX_SERVER):
        raise ForgettingError(f"{source!r} is not a served model; {expected}")
    url, _, named = source[len(PREFIX_SERVER):].partition("#")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ForgettingError(f"{source!r}: {url!r} is not an http(s) URL; {expected}")
    model, revision = _split_revision(named)
    if not model:
        raise ForgettingError(f"{source!r}: no model name after '#'; {expected}")
    return ServedAddress(source, url.rstrip("/"), model, revision)


def _split_revision(text: str) -> tuple[str, Optional[str]]:
    model, at, revision = text.rpartition("@")
    if not at:
        return text, None
    if not revision:
        raise ForgettingError(f"{text!r}: '@' needs a revision after it (e.g. @2026-12-01), or leave it out")
    return model, revision
