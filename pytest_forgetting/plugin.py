"""pytest-forgetting's pytest wiring: options, markers, fixtures and hooks.

Importing this module must stay cheap (no torch, no transformers): pytest imports it in
every run of every repo that has the plugin installed. Heavy work is imported lazily
inside fixtures and hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional

import pytest

from pytest_forgetting import rootdir_trap, settings
from pytest_forgetting.errors import ForgettingDetected, ForgettingError
from pytest_forgetting.markers import MARKER_HELP, MARKER_NAME, capability_of
from pytest_forgetting.report.junit import STORE, WORKER_KEY, ResultStore

if TYPE_CHECKING:
    from pytest_forgetting.fixture import Forgetting
    from pytest_forgetting.backends.contract import ModelHandle
    from pytest_forgetting.engine.models import ModelPair
    from pytest_forgetting.backends.spec import LoadOptions, ModelSpec

MODEL_PAIR = pytest.StashKey[Optional["ModelPair"]]()
REPORT_FILES = pytest.StashKey[list]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_forgetting import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    rootdir_trap.warn_if_ini_skipped(config)
    config.stash[MODEL_PAIR] = None
    config.stash[STORE] = ResultStore()
    if config.pluginmanager.hasplugin("xdist") and not _is_worker(config):
        config.pluginmanager.register(_XdistController(config), "forgetting-xdist-controller")
    settings.validate(config)
    tuned = settings.get(config, "forgetting_tuned_model")
    if tuned is None:
        return
    from pytest_forgetting.engine.models import ModelPair
    from pytest_forgetting.backends.spec import LoadOptions, resolve_pair

    options = LoadOptions(
        device=settings.get(config, "forgetting_device") or "auto",
        dtype=settings.get(config, "forgetting_dtype") or "auto",
        batch_size=settings.get(config, "forgetting_batch_size"),
        trust_remote_code=bool(settings.get(config, "forgetting_trust_remote_code")),
        allow_pickle=bool(settings.get(config, "forgetting_allow_pickle")),
    )
    try:
        if options.device.startswith("cuda"):
            from pytest_forgetting.backends.hf.device import resolve_device

            resolve_device(options.device)
        base_spec, tuned_spec = resolve_pair(tuned, settings.get(config, "forgetting_base_model"), options)
    except ForgettingError as exc:
        raise pytest.UsageError(f"pytest-forgetting: {settings.name_the_source(config, str(exc))}") from None
    config.stash[MODEL_PAIR] = ModelPair(config.hook, config, base_spec, tuned_spec, options)
    _configure_storage(config)


def _configure_storage(config: pytest.Config) -> None:
    """The result cache and the committed baseline for this session (no I/O but clearing)."""
    from pathlib import Path

    from pytest_forgetting.storage.baseline import Baseline
    from pytest_forgetting.storage.cache import ResultCache, default_folder
    from pytest_forgetting.fixture import BASELINE, CACHE

    folder = settings.get(config, "forgetting_cache_dir")
    cache = ResultCache(Path(folder) if folder else default_folder(config))
    if settings.get(config, "forgetting_clear_cache") and not _is_worker(config):
        cache.clear()
    config.stash[CACHE] = None if settings.get(config, "forgetting_no_cache") else cache
    baseline_folder = settings.get(config, "forgetting_baseline")
    update = bool(settings.get(config, "forgetting_update_baseline"))
    if update and not baseline_folder:
        raise pytest.UsageError(
            "pytest-forgetting: --forgetting-update-baseline needs --forgetting-baseline DIR "
            "(the folder to write; commit it to the adapter's repository)"
        )
    config.stash[BASELINE] = Baseline(Path(baseline_folder), update=update) if baseline_folder else None


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
    from pytest_forgetting.fixture import FAMILY_SIZE

    # Under "significant", each selected test marked with a capability is one hypothesis of
    # the session's family (Bonferroni per test; Holm across them at the end).
    default_policy = settings.decision_defaults(config).policy
    family = 0
    for item in items:
        marker = item.get_closest_marker(MARKER_NAME)
        if marker is not None and marker.args:
            if marker.kwargs.get("policy", default_policy) == "significant":
                family += 1
    config.stash[FAMILY_SIZE] = max(1, family)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class _XdistController:
    """Merges the results xdist workers publish in ``workeroutput``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        results = getattr(node, "workeroutput", {}).get(WORKER_KEY, [])
        self.config.stash[STORE].extend(results)


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
    results = config.stash[STORE].results
    if _is_worker(config):
        config.workeroutput[WORKER_KEY] = results  # type: ignore[attr-defined]
        return
    if not results:
        return
    from pytest_forgetting.report.files import append_github_summary, write_reports
    from pytest_forgetting.report.holm import apply_holm, report_holm_failure

    holm_failures = apply_holm(results)
    folder = settings.get(config, "forgetting_report")
    if folder:
        from pathlib import Path

        pair = config.stash.get(MODEL_PAIR, None)
        models = {"base": pair.base_spec.source, "tuned": pair.tuned_spec.source} if pair else {}
        config.stash[REPORT_FILES] = write_reports(results, Path(folder), models=models)
    append_github_summary(results)
    for result in holm_failures:
        report_holm_failure(config, result)
    if holm_failures:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash[STORE].results
    if not results or _is_worker(config):
        return
    from pytest_forgetting.report.tables import text_table

    terminalreporter.section("forgetting")
    for line in text_table(results):
        terminalreporter.write_line(line)
    holm_failures = [r["capability"] for r in results if r.get("holm_verdict") == "fail" and r["verdict"] == "pass"]
    if holm_failures:
        terminalreporter.write_line(
            f"Holm correction across capabilities fails: {', '.join(holm_failures)} "
            "(reported as failed test cases forgetting::holm[...])"
        )
    from pytest_forgetting.fixture import CACHE_STATS

    cache_stats = config.stash.get(CACHE_STATS, None)
    if cache_stats:
        terminalreporter.write_line(
            f"forgetting cache: {cache_stats.get('hits', 0)} item results reused, "
            f"{cache_stats.get('scored', 0)} scored"
        )
    written = config.stash.get(REPORT_FILES, [])
    if written:
        names = ", ".join(path.name for path in written)
        terminalreporter.write_line(f"reports written to {written[0].parent} ({names})")
        if not any(path.suffix == ".png" for path in written):
            terminalreporter.write_line("no plot.png: install the plot extra (pip install 'pytest-forgetting[plot]')")


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
def pytest_forgetting_load_model(
    config: pytest.Config, spec: "ModelSpec", options: "LoadOptions", base: "Optional[ModelHandle]"
) -> "ModelHandle":
    from pytest_forgetting.backends.hf.loading import load_model

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
    from pytest_forgetting.fixture import Forgetting

    context = Forgetting(
        pair=lambda: _model_pair(request),
        loaded=lambda role: _loaded(request, role),
        node=request.node,
        config=request.config,
    )
    yield context
    context.publish()
