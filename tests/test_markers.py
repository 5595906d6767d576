"""The capability marker: registration, both spellings, validation and selection."""

from __future__ import annotations

import pytest

from pytest_forgetting import Tolerance, capability
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import validate_marker_args

SELECTABLE = """
import pytest
from pytest_forgetting import capability

@capability("math", tolerance=0.02)
def test_math():
    pass

@pytest.mark.capability("language", tolerance="5%")
def test_language():
    pass

def test_unmarked():
    pass
"""


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.capability(name, *, tolerance=None*"])


def test_strict_markers_accept_capability(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SELECTABLE)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=3)


def test_select_with_capability_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SELECTABLE)
    result = pytester.runpytest("--capability", "math", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*test_math PASSED*"])
    result = pytester.runpytest("--capability", "math", "--capability", "language")
    result.assert_outcomes(passed=2, deselected=1)


def test_select_with_ini_capabilities(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nforgetting_capabilities = language\n")
    pytester.makepyfile(SELECTABLE)
    pytester.runpytest().assert_outcomes(passed=1, deselected=2)


def test_select_with_m_capability(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SELECTABLE)
    pytester.runpytest("-m", "capability").assert_outcomes(passed=2, deselected=1)


def test_unknown_marker_kwarg_fails_only_that_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.capability("math", tolerence=0.02)
        def test_typo():
            pass

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*unknown keyword argument(s) 'tolerence' for capability(); expected only: tolerance, policy, alpha, metric*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_function_form_fails_at_decoration() -> None:
    with pytest.raises(ForgettingError, match="unknown policy 'strict'"):
        capability("math", policy="strict")
    with pytest.raises(TypeError):
        capability("math", tolerence=0.1)  # type: ignore[call-arg]


def test_validated_spec() -> None:
    spec = validate_marker_args(("math",), {"tolerance": "5%", "alpha": 0.1}, where="t")
    assert spec.name == "math" and spec.tolerance == Tolerance(0.05, relative=True) and spec.alpha == 0.1
    with pytest.raises(ForgettingError, match="exactly one capability name"):
        validate_marker_args((), {}, where="t")
    with pytest.raises(ForgettingError, match="alpha must be a number between 0 and 1"):
        validate_marker_args(("x",), {"alpha": 2}, where="t")
