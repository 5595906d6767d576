"""JUnit XML properties of a comparison result (pytest's ``user_properties`` on the test case), and write
failures of the run's files (reports, the JUnit XML) shown as one error line instead of a traceback."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult

#: Result fields recorded on every test case, with their property names.
JUNIT_KEYS = (
    "capability", "metric", "base_score", "tuned_score", "delta", "ci_low", "ci_high", "p_value", "n",
    "forgotten", "gained", "tolerance", "policy", "verdict",
)
_NAMES = {"base_score": "base", "tuned_score": "tuned"}
#: Where pytest-xdist workers put their results for the controller.
WORKER_KEY = "pytest_forgetting_results"


def junit_properties(result: "ComparisonResult", *, with_candidate: bool = False) -> list[tuple[str, str]]:
    """The (name, value) pairs put on a test case; the candidate first when a run compares several."""
    properties = [("candidate", result.candidate)] if with_candidate else []
    for key in JUNIT_KEYS:
        value = getattr(result, key)
        properties.append((_NAMES.get(key, key), f"{value:.6g}" if isinstance(value, float) else str(value)))
    if result.looks:  # sequential verdicts: how many items decided it
        properties += [("suite_size", str(result.suite_size)), ("look", f"{result.look} of {result.looks}"),
                       ("decided", result.sequential_text)]
    if result.is_target:  # the domain being trained: a drop is reported, not failed
        properties.append(("target", "true"))
    return properties


def write_failed(session: pytest.Session, message: str) -> None:
    """Show a file the run could not write as one error line (no traceback); the run's exit status is then 3.

    Test failures keep their exit status (1): the line says what else went wrong.
    """
    reporter = session.config.pluginmanager.getplugin("terminalreporter")
    line = f"ERROR: pytest-forgetting: {message}"
    if reporter is not None:
        reporter.line("")  # end the progress line
        reporter.write_line(line, red=True, bold=True)
    else:
        sys.stderr.write(line + "\n")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


class JunitWriteGuard:
    """Turns an OSError of pytest's own JUnit XML writer (a full disk) into one error line.

    Innermost of the ``pytest_sessionfinish`` wrappers, so the terminal summary still follows.
    Any other error passes through untouched.
    """

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[Any]:
        try:
            return (yield)
        except OSError as exc:
            xml = getattr(session.config.option, "xmlpath", None)
            if not xml or not _raised_in_junitxml(exc):
                raise
            from pytest_forgetting.storage.cache import write_failure

            target = Path(os.path.abspath(xml))
            write_failed(session, write_failure(f"the JUnit XML ({target.name})", target.parent, exc,
                                                "point --junitxml at another folder"))
            return None


def _raised_in_junitxml(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename.endswith(os.path.join("_pytest", "junitxml.py")):
            return True
        traceback = traceback.tb_next
    return False
