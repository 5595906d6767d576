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


def test_function_form_with_misspelled_kwarg_fails_only_that_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_forgetting import capability

        @capability("math", tolerence=0.1)
        def test_function_typo():
            pass

        @pytest.mark.capability("math", tolerence=0.1)
        def test_marker_typo():
            pass

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=2)  # collection went on: the session was not aborted
    text = result.stdout.str()
    assert "Traceback" not in text and "TypeError" not in text and "error during collection" not in text
    expected = ("unknown keyword argument(s) 'tolerence' for capability(); "
                "expected only: tolerance, policy, alpha, metric")
    # both spellings give the same one-line message, naming their own test
    lines = [line for line in result.stdout.lines if line.startswith("pytest-forgetting:") and expected in line]
    assert len(lines) == 2, text
    function_line = next(line for line in lines if "::test_function_typo:" in line)
    marker_line = next(line for line in lines if "::test_marker_typo:" in line)
    assert function_line.replace("test_function_typo", "X") == marker_line.replace("test_marker_typo", "X")


def test_function_form_defers_validation_like_the_marker() -> None:
    mark = capability("math", policy="strict", tolerance="5%")
    assert mark.mark == pytest.mark.capability("math", policy="strict", tolerance="5%").mark
    assert capability("math").mark.kwargs == {}  # unset keywords are not recorded
    with pytest.raises(ForgettingError, match="unknown policy 'strict'"):
        validate_marker_args(mark.args, dict(mark.kwargs), where="t")


def test_function_form_bad_policy_fails_only_that_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_forgetting import capability

        @capability("math", policy="strict")
        def test_bad_policy():
            pass

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_bad_policy*unknown policy 'strict'; expected one of: non-inferiority, significant*"])
    assert "Traceback" not in result.stdout.str()


def test_validated_spec() -> None:
    spec = validate_marker_args(("math",), {"tolerance": "5%", "alpha": 0.1}, where="t")
    assert spec.name == "math" and spec.tolerance == Tolerance(0.05, relative=True) and spec.alpha == 0.1
    with pytest.raises(ForgettingError, match="exactly one capability name"):
        validate_marker_args((), {}, where="t")
    with pytest.raises(ForgettingError, match="alpha 2: expected a one-sided significance level between 0 and 0.5"):
        validate_marker_args(("x",), {"alpha": 2}, where="t")
