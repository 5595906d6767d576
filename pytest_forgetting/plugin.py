"""pytest-forgetting's pytest wiring: options, markers, fixtures and hooks.

Importing this module must stay cheap (no torch, no transformers): pytest imports it in
every run of every repo that has the plugin installed. Heavy work is imported lazily
inside fixtures and hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional

import pytest

from pytest_forgetting import settings
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import MARKER_HELP, MARKER_NAME, capability_of

if TYPE_CHECKING:
    from pytest_forgetting.context import Forgetting
    from pytest_forgetting.models.handle import ModelHandle
    from pytest_forgetting.models.session import ModelPair
    from pytest_forgetting.models.spec import LoadOptions, ModelSpec

MODEL_PAIR = pytest.StashKey[Optional["ModelPair"]]()
SETUP_ERROR = pytest.StashKey[Optional[str]]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_forgetting import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[MODEL_PAIR] = None
    settings.validate(config)
    tuned = settings.get(config, "forgetting_tuned_model")
    if tuned is None:
        return
    from pytest_forgetting.models.session import ModelPair
    from pytest_forgetting.models.spec import LoadOptions, resolve_pair

    options = LoadOptions(
        device=settings.get(config, "forgetting_device") or "auto",
        dtype=settings.get(config, "forgetting_dtype") or "auto",
        batch_size=settings.get(config, "forgetting_batch_size"),
        trust_remote_code=bool(settings.get(config, "forgetting_trust_remote_code")),
        allow_pickle=bool(settings.get(config, "forgetting_allow_pickle")),
    )
    try:
        if options.device.startswith("cuda"):
            from pytest_forgetting.models.device import resolve_device

            resolve_device(options.device)
        base_spec, tuned_spec = resolve_pair(tuned, settings.get(config, "forgetting_base_model"), options)
    except ForgettingError as exc:
        raise pytest.UsageError(f"pytest-forgetting: {exc}") from None
    config.stash[MODEL_PAIR] = ModelPair(config.hook, config, base_spec, tuned_spec, options)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(settings.get(config, "forgetting_capabilities") or [])
    if not wanted:
        return
    selected, deselected = [], []
    for item in items:
        marker = item.get_closest_marker(MARKER_NAME)
        name = marker.args[0] if marker is not None and marker.args else None
        (selected if name in wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_runtest_setup(item: pytest.Item) -> None:
    try:
        capability_of(item)
        return
    except ForgettingError as exc:
        problem = str(exc)
    pytest.fail(f"pytest-forgetting: {problem}", pytrace=False)


@pytest.hookimpl(trylast=True)
def pytest_forgetting_load_model(
    config: pytest.Config, spec: "ModelSpec", options: "LoadOptions", base: "Optional[ModelHandle]"
) -> "ModelHandle":
    from pytest_forgetting.models.loading import load_model

    return load_model(spec, options, base)


def _model_pair(request: pytest.FixtureRequest) -> "ModelPair":
    pair = request.config.stash.get(MODEL_PAIR, None)
    if pair is None:
        pytest.skip(
            "pytest-forgetting: no tuned model given; pass --tuned-model PATH (or set "
            "forgetting_tuned_model in the ini file) to run forgetting checks"
        )
    return pair


def _loaded(request: pytest.FixtureRequest, role: str) -> "ModelHandle":
    pair = _model_pair(request)
    try:
        return pair.base if role == "base" else pair.tuned
    except ForgettingError as exc:
        problem = str(exc)
    pytest.fail(f"pytest-forgetting: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def base_model(request: pytest.FixtureRequest) -> "ModelHandle":
    """The base model, loaded once per session on first use.

    Skips when no ``--tuned-model`` is given. With a PEFT adapter, it shares the tuned
    model's weights and runs with the adapter disabled.
    """
    return _loaded(request, "base")


@pytest.fixture(scope="session")
def tuned_model(request: pytest.FixtureRequest) -> "ModelHandle":
    """The tuned model (checkpoint or adapter), loaded once per session on first use."""
    return _loaded(request, "tuned")


@pytest.fixture
def forgetting(request: pytest.FixtureRequest) -> Iterator["Forgetting"]:
    """The pair of models and the comparison helpers for the current test.

    ``forgetting.base`` and ``forgetting.tuned`` give the handles (loaded on first use,
    once per session); ``forgetting.compare(suite)`` scores both and returns a verdict
    that ``forgetting.check(suite)`` also asserts.
    """
    from pytest_forgetting.context import Forgetting

    context = Forgetting(
        pair=lambda: _model_pair(request),
        loaded=lambda role: _loaded(request, role),
        node=request.node,
        config=request.config,
    )
    yield context
