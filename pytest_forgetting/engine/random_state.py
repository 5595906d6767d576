"""Scoring leaves the caller's random number generators as it found them (training, lm-eval runs)."""

from __future__ import annotations

import contextlib
import random
from typing import Iterator


@contextlib.contextmanager
def random_states_kept() -> Iterator[None]:
    """Restore the Python, NumPy, torch and (with a GPU) CUDA random states on exit."""
    import numpy as np
    import torch

    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
