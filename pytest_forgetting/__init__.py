"""pytest-forgetting: catch catastrophic forgetting before a fine-tuned model ships.

Public API (heavy parts are imported on first use, so ``import pytest_forgetting`` is cheap)::

    from pytest_forgetting import capability, load_suite, compare, assert_no_forgetting
    from pytest_forgetting import lm_eval_task               # any lm-evaluation-harness task
    from pytest_forgetting import EvaluationSession          # the engine, without pytest
    from pytest_forgetting import Backend, Capabilities     # the backend contract
    from pytest_forgetting import Scorer, Metric            # declared scorers and metrics
"""

from __future__ import annotations

import importlib
from typing import Any

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.tolerance import Tolerance, parse_tolerance

__version__ = "0.1.0"

_LAZY = {
    "capability": "pytest_forgetting.markers",  # the marker needs pytest; the engine does not
    "EvaluationSession": "pytest_forgetting.engine.session",
    "ModelSlot": "pytest_forgetting.engine.models",
    "Backend": "pytest_forgetting.backends.contract",
    "Capabilities": "pytest_forgetting.backends.contract",
    "Identity": "pytest_forgetting.backends.contract",
    "Loglikelihood": "pytest_forgetting.backends.contract",
    "TopLogprobs": "pytest_forgetting.backends.contract",
    "Unsupported": "pytest_forgetting.backends.contract",
    "Scorer": "pytest_forgetting.scoring.scorers",
    "Metric": "pytest_forgetting.scoring.metrics",
    "load_suite": "pytest_forgetting.scoring.suites",
    "lm_eval_task": "pytest_forgetting.harness.tasks",
    "Suite": "pytest_forgetting.scoring.suites",
    "score_suite": "pytest_forgetting.scoring.kinds",
    "score_drift": "pytest_forgetting.scoring.drift",
    "compare": "pytest_forgetting.comparison.run",
    "compare_drift": "pytest_forgetting.comparison.run",
    "ComparisonResult": "pytest_forgetting.comparison.result",
    "assert_no_forgetting": "pytest_forgetting.comparison.assertions",
    "assert_no_drift": "pytest_forgetting.comparison.assertions",
    "load_model": "pytest_forgetting.backends.hf.loading",
    "resolve_pair": "pytest_forgetting.backends.spec",
    "resolve_models": "pytest_forgetting.backends.spec",
    "LoadOptions": "pytest_forgetting.backends.spec",
    "ModelSpec": "pytest_forgetting.backends.spec",
}

__all__ = ["ForgettingError", "Tolerance", "parse_tolerance", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_forgetting' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
