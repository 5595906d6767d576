"""Batching that never changes results: length-sorted batches, automatic size, OOM back-off."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

#: Tokens per batch that automatic batching aims for (per device type).
TOKEN_BUDGET = {"cpu": 8192, "cuda": 65536}
MAX_AUTO_BATCH = 64


def auto_batch_size(device: torch.device, longest: int) -> int:
    """A batch size that keeps ``batch x longest`` tokens within the device's budget."""
    budget = TOKEN_BUDGET.get(device.type, TOKEN_BUDGET["cpu"])
    return max(1, min(MAX_AUTO_BATCH, budget // max(1, longest)))


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first (stable order)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures that a smaller batch may avoid."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def map_batched(
    items: Sequence[T],
    lengths: Sequence[int],
    run_batch: Callable[[list[T]], list[R]],
    *,
    batch_size: int | None,
    device: torch.device,
) -> list[R]:
    """Apply ``run_batch`` to length-sorted batches and return results in input order.

    With ``batch_size=None`` the size is chosen per batch from the token budget and halved
    whenever a batch runs out of memory (down to 1, where the error is re-raised).
    """
    results: list[R | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: (-lengths[i], i))
    position = 0
    fixed = batch_size is not None
    while position < len(order):
        size = batch_size if fixed else auto_batch_size(device, lengths[order[position]])
        assert size is not None
        while True:
            chunk = order[position : position + size]
            try:
                outputs = run_batch([items[i] for i in chunk])
                break
            except Exception as exc:  # noqa: BLE001 - re-raised unless it is an OOM
                if fixed or size == 1 or not is_out_of_memory(exc):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                size = max(1, len(chunk) // 2)  # not size // 2: a short last chunk would rerun as is
        for index, output in zip(chunk, outputs):
            results[index] = output
        position += len(chunk)
    return results  # type: ignore[return-value]
