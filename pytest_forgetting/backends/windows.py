"""Token windows that cover a sequence longer than a model's context, each position once."""

from __future__ import annotations

from typing import Sequence


def rolling_windows(tokens: Sequence[int], prefix: int, max_length: int) -> list[tuple[list[int], int]]:
    """Windows covering every token once: (input ids, number of predicted tokens at its end).

    The first window is preceded by ``prefix`` (BOS or EOS) so the first token is scored
    too, as lm-eval's ``loglikelihood_rolling`` does; each window predicts up to
    ``max_length`` tokens with as much preceding context as fits.
    """
    windows = []
    sequence = [prefix, *tokens]
    start = 1
    while start < len(sequence):
        end = min(start + max_length, len(sequence))
        context_start = max(0, end - max_length - 1)
        windows.append((sequence[context_start:end], end - start))
        start = end
    return windows


def text_windows(ids: Sequence[int], max_length: int) -> list[tuple[list[int], int]]:
    """Model inputs covering every position of ``ids`` once: (input ids, rows read at its end).

    Position ``i``'s distribution (the prediction after ``ids[: i + 1]``) is read from the one
    window holding it, with as much preceding context as fits in ``max_length``: the rolling
    windows of :func:`rolling_windows` over ``ids`` plus a placeholder target for the position
    after the last token (never fed to the model). A text of at most ``max_length`` tokens is
    one window: itself, every row read.
    """
    if not ids:
        return []
    ids = list(ids)
    return [(window[:-1], rows) for window, rows in rolling_windows(ids[1:] + [ids[0]], ids[0], max_length)]
