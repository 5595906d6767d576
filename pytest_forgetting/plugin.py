"""pytest-forgetting's pytest wiring: options, markers, fixtures, hooks and reports.

A thin adapter over :class:`~pytest_forgetting.engine.session.EvaluationSession`: the
session lives under one stash key, the fixtures are views of it, and the reports read its
results. Importing this module must stay cheap (no torch, no transformers): pytest imports
it in every run of every repo that has the plugin installed. Heavy work is imported lazily
inside fixtures and hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import pytest

from pytest_forgetting import rootdir_trap, settings
from pytest_forgetting.errors import ForgettingDetected, ForgettingError
from pytest_forgetting.markers import MARKER_HELP, MARKER_NAME, capability_of
from pytest_forgetting.report.junit import WORKER_KEY, JunitWriteGuard, write_failed

if TYPE_CHECKING:
    from pytest_forgetting.backends.contract import Backend
    from pytest_forgetting.backends.spec import LoadOptions, ModelSpec
    from pytest_forgetting.comparison.sequential import SequentialSettings
    from pytest_forgetting.engine.models import ModelSlot
    from pytest_forgetting.engine.session import EvaluationSession
    from pytest_forgetting.fixture import Forgetting

#: The fixture a test is parametrized over when a run checks several candidates.
CANDIDATE = "forgetting_candidate"
_DEFAULT_LOADER = "pytest_forgetting.plugin.pytest_forgetting_load_model"


@dataclass
class PluginState:
    """Everything the plugin keeps for a pytest session (the one stash key).

    Attributes:
        session: the evaluation session, or None without ``--tuned-model``.
        report_files: the report files written at the end (for the terminal summary).
    """

    session: Optional["EvaluationSession"] = None
    report_files: list[Path] = field(default_factory=list)


STATE = pytest.StashKey[PluginState]()


def session_of(config: pytest.Config) -> Optional["EvaluationSession"]:
    """The run's evaluation session (None without ``--tuned-model``), e.g. for a conftest hook."""
    return config.stash[STATE].session


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_forgetting import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    rootdir_trap.warn_if_ini_skipped(config)
    state = config.stash[STATE] = PluginState()
    if config.pluginmanager.hasplugin("xdist") and not _is_worker(config):
        config.pluginmanager.register(_XdistController(state), "forgetting-xdist-controller")
    settings.validate(config)
    values, relative_to = settings.get(config, "forgetting_tuned_model")
    if not values:
        return
    try:
        state.session = _new_session(config, values, relative_to)
    except ForgettingError as exc:
        raise pytest.UsageError(f"pytest-forgetting: {settings.name_the_source(config, str(exc))}") from None
    config.pluginmanager.register(JunitWriteGuard(), "forgetting-junit-write-guard")  # a full disk: one line


def _new_session(config: pytest.Config, values: list[str], relative_to: Path) -> "EvaluationSession":
    """The evaluation session of this run: models resolved (not loaded), stored results configured."""
    from pytest_forgetting.backends.spec import LoadOptions, expand_candidates, resolve_models
    from pytest_forgetting.engine.session import EvaluationSession
    from pytest_forgetting.scoring.registry import build_registry

    options = LoadOptions(
        device=settings.get(config, "forgetting_device") or "auto",
        dtype=settings.get(config, "forgetting_dtype") or "auto",
        batch_size=settings.get(config, "forgetting_batch_size"),
        trust_remote_code=bool(settings.get(config, "forgetting_trust_remote_code")),
        allow_pickle=bool(settings.get(config, "forgetting_allow_pickle")),
        device_map=settings.get(config, "forgetting_device_map"),
        max_memory=settings.get(config, "forgetting_max_memory"),
        **{name: value for name, value in (
            ("request_concurrency", settings.get(config, "forgetting_request_concurrency")),
            ("request_timeout", settings.get(config, "forgetting_request_timeout")),
            ("request_retries", settings.get(config, "forgetting_request_retries"))) if value is not None},
    )
    from pytest_forgetting.backends.placement import check_placement

    check_placement(options.device, options.device_map, options.max_memory)
    if options.device.startswith("cuda"):
        from pytest_forgetting.backends.hf.device import resolve_device

        resolve_device(options.device)

    def claims(source: str, role: str) -> bool:
        return bool(config.hook.pytest_forgetting_claim_model(config=config, source=source, role=role))

    sources = expand_candidates(values, relative_to, claims)
    base_spec, specs = resolve_models(sources, settings.get(config, "forgetting_base_model"), options, claims)
    update = bool(settings.get(config, "forgetting_update_baseline"))
    baseline = settings.get(config, "forgetting_baseline")
    if update and not baseline:
        raise ForgettingError("--forgetting-update-baseline needs --forgetting-baseline DIR (the folder to "
                              "write; commit it to the adapter's repository)")
    defaults = settings.decision_defaults(config)
    return EvaluationSession(
        base_spec, specs, options=options, cache=_cache(config), baseline=baseline, update_baseline=update,
        registry=lambda: build_registry(config.hook), loader=lambda spec, opts, base: _load(config, spec, opts, base),
        loader_names=_custom_loaders(config), tolerance=defaults.tolerance, alpha=defaults.alpha,
        policy=defaults.policy, sequential=_sequential(config),
    )


def _sequential(config: pytest.Config) -> "SequentialSettings":
    """Sequential verdicts as the command line and ini ask (off unless ``--forgetting-sequential=on``)."""
    from pytest_forgetting.comparison.sequential import DEFAULT_SPENDING, SequentialSettings

    spending = settings.get(config, "forgetting_sequential_spending") or DEFAULT_SPENDING
    return SequentialSettings(enabled=bool(settings.get(config, "forgetting_sequential")), spending=spending)


def _cache(config: pytest.Config) -> Any:
    """The result cache for this session (cleared first with ``--forgetting-clear-cache``), or None."""
    from pytest_forgetting.storage.cache import ResultCache, default_folder

    folder = settings.get(config, "forgetting_cache_dir")
    cache = ResultCache(Path(folder) if folder else default_folder(config))
    if settings.get(config, "forgetting_clear_cache") and not _is_worker(config):
        cache.clear()
    return None if settings.get(config, "forgetting_no_cache") else cache


def _load(config: pytest.Config, spec: "ModelSpec", options: "LoadOptions", base: "Optional[Backend]") -> "Backend":
    backend = config.hook.pytest_forgetting_load_model(config=config, spec=spec, options=options, base=base)
    if backend is None:
        raise ForgettingError(f"{spec.source}: no pytest_forgetting_load_model implementation loaded it")
    return backend  # type: ignore[no-any-return]


def _custom_loaders(config: pytest.Config) -> list[str]:
    """``module.function`` of every ``pytest_forgetting_load_model`` besides the default one."""
    impls = config.hook.pytest_forgetting_load_model.get_hookimpls()
    names = [f"{impl.function.__module__}.{impl.function.__qualname__}" for impl in impls]
    return sorted(name for name in names if name != _DEFAULT_LOADER)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With several candidates, every test using the models runs once per candidate."""
    session = metafunc.config.stash[STATE].session
    if session is not None and len(session.candidates) > 1 and CANDIDATE in metafunc.fixturenames:
        labels = [slot.label for slot in session.candidates]
        metafunc.parametrize(CANDIDATE, labels, ids=labels, indirect=True, scope="session")


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: the family is what runs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(settings.get(config, "forgetting_capabilities") or [])
    if wanted:
        selected, deselected = [], []
        for item in items:
            marker = item.get_closest_marker(MARKER_NAME)
            name = marker.args[0] if marker is not None and marker.args else None
            (selected if name in wanted else deselected).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected
    session = config.stash[STATE].session
    if session is None:
        return
    # Under "significant", each selected test marked with a (non-target) capability is one
    # hypothesis of a candidate's family (Bonferroni per test; Holm across them at the end).
    first = session.candidates[0].label
    family = 0
    for item in items:
        marker = item.get_closest_marker(MARKER_NAME)
        callspec = getattr(item, "callspec", None)
        if marker is None or not marker.args or (callspec and callspec.params.get(CANDIDATE, first) != first):
            continue
        if marker.kwargs.get("target") is True:
            continue
        if marker.kwargs.get("policy", session.policy) == "significant":
            family += 1
    session.family_size = max(1, family)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class _XdistController:
    """Merges the results xdist workers publish in ``workeroutput``."""

    def __init__(self, state: PluginState) -> None:
        self.state = state

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        results = getattr(node, "workeroutput", {}).get(WORKER_KEY, [])
        if results and self.state.session is not None:
            self.state.session.add_results(results)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None or _is_worker(config):
        return
    from pytest_forgetting.scoring import progress

    def show(line: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    progress.set_sink(show)


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    from pytest_forgetting.scoring import progress

    progress.set_sink(None)
    state = config.stash[STATE]
    evaluation = state.session
    if evaluation is None:
        return
    if _is_worker(config):
        config.workeroutput[WORKER_KEY] = [r.to_dict() for r in evaluation.results]  # type: ignore[attr-defined]
        return
    results = evaluation.results
    if not results:
        return
    from pytest_forgetting.report.files import append_github_summary, write_reports
    from pytest_forgetting.report.holm import apply_holm, report_holm_failure

    holm_failures = apply_holm(results)
    folder = settings.get(config, "forgetting_report")
    order = [slot.label for slot in evaluation.candidates]
    try:  # a full disk, a read-only folder: one error line, and the run fails
        if folder:
            state.report_files = write_reports(results, Path(folder), models=_models(evaluation), order=order)
        append_github_summary(results, order=order)
    except ForgettingError as exc:
        write_failed(session, str(exc))
    several = len(evaluation.candidates) > 1
    for result in holm_failures:
        report_holm_failure(config, result, with_candidate=several)
    if holm_failures:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _models(evaluation: "EvaluationSession") -> dict[str, Any]:
    """The models a report names: base and tuned, every candidate when there are several, and any model
    id that stood for other weights than its name says (the embedded SmolLM2 for the hub's)."""
    from pytest_forgetting.report.header import substitutions

    models: dict[str, Any] = {"base": evaluation.base.name}
    if len(evaluation.candidates) == 1:
        models["tuned"] = evaluation.candidates[0].name
    else:
        models["candidates"] = {slot.label: slot.name for slot in evaluation.candidates}
    found = substitutions(evaluation)
    if found:
        models["substitutions"] = found
    return models


def pytest_report_header(config: pytest.Config) -> "Optional[list[str]]":
    """The models as resolved, any substitution, and the device, dtype, batch size, cache and baseline."""
    state = config.stash.get(STATE, None)
    if state is None or _is_worker(config):
        return None
    from pytest_forgetting.report.header import header_lines

    cache = None if settings.get(config, "forgetting_no_cache") else (
        settings.get(config, "forgetting_cache_dir") or "pytest's cache (.pytest_cache/d/forgetting)")
    try:
        return header_lines(state.session, {"cache": cache, "baseline": settings.get(config, "forgetting_baseline")})
    except OSError as exc:  # a model folder that vanished: the session's own errors say it better
        return [f"forgetting: models not described ({exc})"]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[STATE]
    evaluation = state.session
    if evaluation is None or not evaluation.results or _is_worker(config):
        return
    from pytest_forgetting.report.terminal import write_summary

    write_summary(terminalreporter, evaluation, state.report_files)


def pytest_runtest_setup(item: pytest.Item) -> None:
    try:
        capability_of(item)
        return
    except ForgettingError as exc:
        problem = str(exc)
    pytest.fail(f"pytest-forgetting: {problem}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, ForgettingDetected):
        report.longrepr = str(call.excinfo.value)  # the verdict first, no traceback
    return report


@pytest.hookimpl(trylast=True)
def pytest_forgetting_claim_model(config: pytest.Config, source: str, role: str) -> "Optional[bool]":
    from pytest_forgetting.backends.served.address import is_served

    return True if is_served(source) else None


@pytest.hookimpl(trylast=True)
def pytest_forgetting_load_model(
    config: pytest.Config, spec: "ModelSpec", options: "LoadOptions", base: "Optional[Backend]"
) -> "Backend":
    from pytest_forgetting.engine.models import default_loader

    return default_loader(spec, options, base)


def _session(request: pytest.FixtureRequest) -> "EvaluationSession":
    session = request.config.stash[STATE].session
    if session is None:
        pytest.skip(
            "pytest-forgetting: no tuned model given; pass --tuned-model PATH (or set "
            "forgetting_tuned_model in the ini file) to run forgetting checks"
        )
    return session


@pytest.fixture(scope="session")
def forgetting_candidate(request: pytest.FixtureRequest) -> "ModelSlot":
    """The candidate a test runs for: the only one, or this parametrization's (several ``--tuned-model``)."""
    return _session(request).candidate(getattr(request, "param", None))


@pytest.fixture(scope="session")
def base_model(request: pytest.FixtureRequest) -> "Backend":
    """The base model's backend, loaded once per session on first use.

    Skips when no ``--tuned-model`` is given. With a PEFT adapter, it shares the tuned
    model's weights and runs with the adapter disabled.
    """
    from pytest_forgetting.fixture import checked

    return checked(_session(request).base.backend)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def tuned_model(forgetting_candidate: "ModelSlot") -> "Backend":
    """The tuned model's backend (checkpoint or adapter), loaded once per session on first use."""
    from pytest_forgetting.fixture import checked

    return checked(forgetting_candidate.backend)  # type: ignore[no-any-return]


@pytest.fixture
def forgetting(request: pytest.FixtureRequest, forgetting_candidate: "ModelSlot") -> Iterator["Forgetting"]:
    """This test's view of the session: the models, its marker settings, and the comparison helpers.

    ``forgetting.base`` and ``forgetting.tuned`` give the backends (loaded on first use,
    once per session); ``forgetting.compare(suite)`` scores both and returns a verdict
    that ``forgetting.check(suite)`` also asserts. With several ``--tuned-model``, the test
    runs once per candidate.
    """
    from pytest_forgetting.fixture import Forgetting

    session = _session(request)
    view = Forgetting(session, forgetting_candidate, request.node, request.config)
    yield view
    view.publish(with_candidate=len(session.candidates) > 1)
