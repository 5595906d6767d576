"""Fixtures shared by the plugin's own tests: tiny models built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import tiny

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"  # lm-eval tasks read local files only


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny models and adapters, built once per session."""
    root = tmp_path_factory.mktemp("tiny-models")
    base = tiny.build_llama(root / "base", seed=0)
    return {
        "base": base,
        "full": tiny.build_llama(root / "full", seed=7, tokenizer_from=base),
        "adapter": tiny.build_lora(root / "adapter", base),
        "zero_adapter": tiny.build_lora(root / "zero-adapter", base, zero=True),
    }
