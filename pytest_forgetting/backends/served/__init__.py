"""Served and hosted models through the OpenAI-compatible API (the optional ``openai`` extra).

* :mod:`~pytest_forgetting.backends.served.address`: the model spec syntax
  (``openai:MODEL``, ``openai+http://HOST:PORT/v1#MODEL``) and where the API key comes from;
* :mod:`~pytest_forgetting.backends.served.requests`: bounded concurrency, timeouts and
  retries with exponential backoff, jitter and ``Retry-After``;
* :mod:`~pytest_forgetting.backends.served.backend`: the backend, its capabilities probed
  once per session, its identity (model id, what the server reports, a revision you give).
"""
