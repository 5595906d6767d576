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

    from pytest_forgetting.backends.contract import Backend
    from pytest_forgetting.backends.spec import LoadOptions, ModelSpec
    from pytest_forgetting.scoring.registry import ScorerRegistry

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_forgetting_claim_model(config: "pytest.Config", source: str, role: str) -> "Optional[bool]":
    """Return True for a ``--tuned-model``/``--base-model`` value your plugin serves itself.

    A claimed source (a server URL, a hosted model id) is not looked for on disk; its spec
    has ``kind == "external"`` and ``path`` None, and your ``pytest_forgetting_load_model``
    loads it. ``role`` is ``"base"`` or ``"tuned"``. The first non-None answer wins.

    Example (``conftest.py``)::

        def pytest_forgetting_claim_model(config, source, role):
            return source.startswith("http://") or None
    """


@hookspec(firstresult=True)
def pytest_forgetting_load_model(
    config: "pytest.Config", spec: "ModelSpec", options: "LoadOptions", base: "Optional[Backend]"
) -> "Optional[Backend]":
    """Load the model described by ``spec`` and return a backend, or None to pass.

    The first non-None result wins. ``base`` is the already-loaded base backend when
    ``spec`` is an adapter (share its weights), else None. The default implementation
    loads transformers checkpoints and PEFT adapters.

    Example, serving models from an inference server (``conftest.py``)::

        def pytest_forgetting_claim_model(config, source, role):
            return source.startswith("http://") or None

        def pytest_forgetting_load_model(config, spec, options, base):
            if spec.kind == "external":
                return MyServerBackend(spec.source)
            return None  # everything else: the default loader

    The result must be a :class:`pytest_forgetting.Backend` that declares its
    :class:`~pytest_forgetting.Capabilities` and an ``identity()`` the result cache keys on.
    """


@hookspec
def pytest_forgetting_register_scorers(registry: "ScorerRegistry") -> None:
    """Add scorers that generation suites can name in their ``scorer`` setting.

    Called once, when the first suite needs a scorer. A scorer takes the model's output
    and the item's targets and returns one item's score; it declares its metric (direction,
    binary or continuous, range, unit) when it is added.

    Example (``conftest.py``)::

        def pytest_forgetting_register_scorers(registry):
            registry.add("shouts", lambda output, targets, **kw: float(output.isupper()), binary=True)
            registry.add("errors", count_errors, higher_is_better=False, unit="errors per output",
                         high=math.inf, tolerance=0.5)

    Suites then use ``load_suite("emails.jsonl", kind="generation", scorer="shouts")``.
    An ``evaluate`` metric can be given a short name the same way::

        from pytest_forgetting.scoring.scorers import evaluate_scorer

        def pytest_forgetting_register_scorers(registry):
            registry.add("overlap", evaluate_scorer("./metrics/word_overlap.py", unit="word overlap"))
    """


@hookspec
def pytest_forgetting_result(config: "pytest.Config", nodeid: str, result: Any) -> None:
    """Called with every comparison result a test produced (e.g. to send it elsewhere).

    Called when the test ends (on the xdist worker that ran it), with each result (a
    :class:`~pytest_forgetting.ComparisonResult`) as finally decided: a result re-decided by
    ``assert_no_forgetting(result, tolerance=...)`` arrives with that tolerance and verdict.

    Example::

        def pytest_forgetting_result(config, nodeid, result):
            print(nodeid, result.candidate, result.capability, result.delta)
    """
