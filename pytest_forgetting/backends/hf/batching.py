"""Batching that never changes results: length-sorted batches, automatic size, OOM back-off."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional, Sequence, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

#: Tokens per batch that automatic batching aims for (per device type).
TOKEN_BUDGET = {"cpu": 8192, "cuda": 65536}
MAX_AUTO_BATCH = 64
#: Where a caller asks for it (log-likelihood scoring), an automatic batch ends at the first
#: row shorter than ``1 - MAX_PADDING`` of the batch's longest: padded positions cost as much
#: as real ones. Scored whole, a suite sorted by length rarely reaches the bound; scored in a
#: sequential verdict's seeded chunks, one chunk spans the suite's whole spread of lengths
#: (measured by ``benchmarks/chunk_padding.py``). Generation keeps its batches whole: a
#: decoding step costs about as much for few rows as for many.
MAX_PADDING: Optional[float] = 0.25


def auto_batch_size(device: torch.device, longest: int) -> int:
    """A batch size that keeps ``batch x longest`` tokens within the device's budget."""
    budget = TOKEN_BUDGET.get(device.type, TOKEN_BUDGET["cpu"])
    return max(1, min(MAX_AUTO_BATCH, budget // max(1, longest)))


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first (stable order)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


#: Messages of allocation failures that torch raises as a plain RuntimeError: CUDA's caching
#: allocator ("CUDA out of memory", "CUDA error: out of memory"), MPS ("MPS backend out of
#: memory") and the CPU allocator ("DefaultCPUAllocator: can't allocate memory: you tried to
#: allocate N bytes. Error code 12 (Cannot allocate memory)").
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")
_OOM_TYPES = tuple(
    t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
    if isinstance(t, type)
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures that a smaller batch may avoid."""
    if isinstance(exc, (MemoryError, *_OOM_TYPES)):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    message = str(exc).lower()
    return any(text in message for text in _OOM_MESSAGES)


def _rows_within_padding(lengths: Sequence[int], order: Sequence[int], position: int, size: int,
                         padding: float) -> int:
    """How many of the (longest-first) rows from ``position`` on, at most ``size``, are within ``padding`` of the first."""
    shortest = (1.0 - padding) * lengths[order[position]]
    end, last = position + 1, min(len(order), position + size)
    while end < last and lengths[order[end]] >= shortest:
        end += 1
    return end - position


class _BackOff:
    """The largest automatic batch size known to fit, once a batch ran out of memory."""

    def __init__(self) -> None:
        self.cap: Optional[int] = None

    def limit(self, size: int) -> int:
        return size if self.cap is None else min(size, self.cap)

    def reduce(self, size: int) -> None:
        self.cap = size if self.cap is None else min(self.cap, size)


_scope: ContextVar[Optional[_BackOff]] = ContextVar("pytest_forgetting_batch_back_off", default=None)


@contextmanager
def keep_reduced_batch_size() -> Iterator[None]:
    """Within this block, a size reduced after an out-of-memory error is kept across calls.

    ``map_batched`` keeps a reduced size for the rest of its own call in any case; a caller
    that splits one scoring run into several ``map_batched`` calls (chunks for progress)
    wraps the run in this block so a later chunk does not run out of memory again first.
    """
    token = _scope.set(_BackOff())
    try:
        yield
    finally:
        _scope.reset(token)


def map_batched(
    items: Sequence[T],
    lengths: Sequence[int],
    run_batch: Callable[[list[T]], list[R]],
    *,
    batch_size: int | None,
    device: torch.device,
    bound_padding: bool = False,
) -> list[R]:
    """Apply ``run_batch`` to length-sorted batches and return results in input order.

    With ``batch_size=None`` the size is chosen per batch from the token budget and halved
    whenever a batch runs out of memory (down to 1, where the error is re-raised). The
    halved size is kept for the batches after it (for the rest of the call, or of an
    enclosing :func:`keep_reduced_batch_size` block), so one out-of-memory error is not
    met again on every following batch. With ``bound_padding`` an automatic batch also ends
    at the first row shorter than ``1 - MAX_PADDING`` of its longest (a fixed size is kept).
    """
    results: list[R | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: (-lengths[i], i))
    position = 0
    fixed = batch_size is not None
    back_off = _scope.get() or _BackOff()
    while position < len(order):
        size = batch_size if fixed else back_off.limit(auto_batch_size(device, lengths[order[position]]))
        assert size is not None
        if bound_padding and not fixed and MAX_PADDING is not None:
            size = _rows_within_padding(lengths, order, position, size, MAX_PADDING)
        while True:
            chunk = order[position : position + size]
            try:
                outputs = run_batch([items[i] for i in chunk])
                break
            except Exception as exc:  # noqa: BLE001 - re-raised unless it is an OOM
                if fixed or size == 1 or not is_out_of_memory(exc):
                    raise
            # out of memory; out here the error and the tensors its traceback held are released
            if device.type == "cuda":
                torch.cuda.empty_cache()
            size = max(1, len(chunk) // 2)  # not size // 2: a short last chunk would rerun as is
            back_off.reduce(size)
        for index, output in zip(chunk, outputs):
            results[index] = output
        position += len(chunk)
    return results  # type: ignore[return-value]
