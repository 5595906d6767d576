"""Requests that survive real servers: bounded concurrency, timeouts, retries with backoff, jitter and Retry-After.

Every call to a served model goes through :meth:`RequestRunner.call`. A request that fails
with 429, a 5xx status, a timeout or a lost connection is retried up to ``retries`` times,
waiting ``min(max_wait, backoff * 2**attempt)`` seconds scaled by a random factor in
[0.5, 1] (full jitter would sometimes retry at once), or what the server's ``Retry-After``
asks, whichever is longer (capped at ``max_wait``). Any other status (400, 401, 404) is not
retried. A request that finally fails raises a one-line :class:`ForgettingError` naming the
model, the endpoint and the last status, so the test errors: never a pass, never a skip.
Counts of requests, retries and failures are kept for reports and benchmarks.
"""

from __future__ import annotations

import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, TypeVar

from pytest_forgetting.errors import ForgettingError

T = TypeVar("T")
R = TypeVar("R")

#: HTTP statuses worth retrying: too many requests, and the server's own failures.
RETRIED_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RequestPolicy:
    """How requests to a served model are sent.

    Attributes:
        concurrency: requests in flight at once.
        timeout: seconds one request may take.
        retries: retries after the first attempt.
        backoff: the first retry's base wait in seconds (doubled each retry).
        max_wait: the longest wait between attempts, in seconds.
    """

    concurrency: int = 4
    timeout: float = 120.0
    retries: int = 5
    backoff: float = 0.5
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.max_wait < 0:
            raise ForgettingError(f"request settings {self}: expected concurrency >= 1, timeout > 0, retries >= 0 "
                                  "and non-negative waits")


@dataclass
class RequestStats:
    """What was sent: requests (attempts included), retries and requests that finally failed."""

    requests: int = 0
    retries: int = 0
    failures: int = 0


class RequestRunner:
    """Sends requests for one model with a :class:`RequestPolicy`, counting them in :attr:`stats`."""

    def __init__(self, model: str, policy: RequestPolicy, *, sleep: Callable[[float], None] = time.sleep,
                 seed: int = 0, secret: str = "") -> None:
        self.model = model
        self._secret = secret
        self.policy = policy
        self.stats = RequestStats()
        self._sleep = sleep
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def call(self, endpoint: str, send: Callable[[], R]) -> R:
        """``send()`` with retries; ``endpoint`` (e.g. ``/v1/completions``) names it in errors."""
        attempt = 0
        while True:
            with self._lock:
                self.stats.requests += 1
            try:
                return send()
            except ForgettingError:
                raise  # already says what is wrong
            except Exception as exc:  # classified below; anything unknown is not retried
                status, retry_after, retried = classify(exc)
                if not retried or attempt >= self.policy.retries:
                    with self._lock:
                        self.stats.failures += 1
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    what = f"status {status}" if status else type(exc).__name__
                    detail = redact(_first_line(exc), self._secret)
                    raise ForgettingError(
                        f"model {self.model}: {endpoint} failed{tries} ({what}{': ' + detail if detail else ''}); "
                        + ("the server kept failing: check that it is up and not overloaded, or raise "
                           "--forgetting-request-retries / --forgetting-request-timeout" if retried else
                           "the request was refused: check the model name and the server's options")
                    ) from None
                wait = min(self.policy.max_wait, self.policy.backoff * 2 ** attempt)
                with self._lock:
                    wait *= 0.5 + 0.5 * self._random.random()
                    self.stats.retries += 1
                if retry_after is not None:
                    wait = max(wait, min(self.policy.max_wait, retry_after))
                self._sleep(wait)
                attempt += 1

    def map(self, endpoint: str, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``function`` (one request to ``endpoint``) on every item, retried as :meth:`call` retries."""
        return self.parallel(lambda item: self.call(endpoint, lambda: function(item)), items)

    def parallel(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``function`` on every item with at most ``concurrency`` in flight, results in order."""
        if len(items) <= 1 or self.policy.concurrency == 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.policy.concurrency) as pool:
            return list(pool.map(function, items))


def classify(exc: BaseException) -> tuple[Optional[int], Optional[float], bool]:
    """(HTTP status or None, the server's Retry-After in seconds or None, whether to retry)."""
    try:
        import openai
    except ImportError:  # pragma: no cover - the backend needs openai anyway
        return None, None, False
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return None, None, True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return status, retry_after(exc.response.headers if exc.response is not None else {}), status in RETRIED_STATUSES
    return None, None, False


def retry_after(headers: Any) -> Optional[float]:
    """Seconds a ``Retry-After`` (or ``retry-after-ms``) header asks to wait; None without one."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except (TypeError, ValueError):
            continue  # an HTTP date: fall back to our own backoff
    return None


#: What an API key looks like in a server's error text (OpenAI's keys start with ``sk-``).
KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")


def redact(text: str, secret: str = "") -> str:
    """``text`` without the API key: neither the key given nor anything shaped like one."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[key]")
    return KEY_PATTERN.sub("[key]", text)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return text.splitlines()[0][:200] if text else ""
