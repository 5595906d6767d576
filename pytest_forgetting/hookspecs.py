"""Hooks other packages implement to extend pytest-forgetting without forking it.

Implement them in a ``conftest.py`` or in a plugin module registered under the
``pytest11`` entry point. pytest-forgetting implements its own defaults through the same
hooks (marked ``trylast``), so yours run first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import pluggy

if TYPE_CHECKING:
    import pytest

    from pytest_forgetting.backends.contract import ModelHandle
    from pytest_forgetting.backends.spec import LoadOptions, ModelSpec
    from pytest_forgetting.scoring.registry import ScorerRegistry

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_forgetting_load_model(
    config: "pytest.Config", spec: "ModelSpec", options: "LoadOptions", base: "Optional[ModelHandle]"
) -> "Optional[ModelHandle]":
    """Load the model described by ``spec`` and return a handle, or None to pass.

    The first non-None result wins. ``base`` is the already-loaded base handle when
    ``spec`` is an adapter (share its weights), else None. The default implementation
    loads transformers checkpoints and PEFT adapters.

    Example, serving a model from an inference server (``conftest.py``)::

        def pytest_forgetting_load_model(config, spec, options, base):
            if spec.source.startswith("http://"):
                return MyServerHandle(spec.source, role=spec.role)
            return None  # everything else: the default loader

    The handle must implement :class:`pytest_forgetting.backends.contract.ModelHandle`.
    """


@hookspec
def pytest_forgetting_register_scorers(registry: "ScorerRegistry") -> None:
    """Add scorers that generation suites can name in their ``scorer`` setting.

    Called once, when the first suite needs a scorer. A scorer takes the model's output
    and the item's targets and returns a score in [0, 1].

    Example (``conftest.py``)::

        def pytest_forgetting_register_scorers(registry):
            registry.add("shouts", lambda output, targets, **kw: float(output.isupper()))

    Suites then use ``load_suite("emails.jsonl", kind="generation", scorer="shouts")``.
    An ``evaluate`` metric can be given a short name the same way::

        from pytest_forgetting.scoring.scorers import evaluate_scorer

        def pytest_forgetting_register_scorers(registry):
            registry.add("overlap", evaluate_scorer("./metrics/word_overlap.py"))
    """


@hookspec
def pytest_forgetting_result(config: "pytest.Config", nodeid: str, result: Any) -> None:
    """Called with every comparison result a test produced (e.g. to send it elsewhere).

    Called when the test ends (on the xdist worker that ran it), with each result as finally
    decided: a result re-decided by ``assert_no_forgetting(result, tolerance=...)`` arrives
    with that tolerance and verdict.

    Example::

        def pytest_forgetting_result(config, nodeid, result):
            print(nodeid, result.capability, result.delta)
    """
