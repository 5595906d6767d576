"""Property tests: suite loaders, the tolerance parser and capability markers never crash on odd input.

Each either accepts its input (giving a valid value) or raises the plugin's one-line
:class:`ForgettingError`; any other exception is a defect. Deterministic (``derandomize``) and fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pytest_forgetting import load_suite
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import MARKER_KWARGS, CapabilitySpec, validate_marker_args
from pytest_forgetting.scoring.suites import KINDS, Suite
from pytest_forgetting.tolerance import Tolerance, parse_tolerance

FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

FIELDS = ("question", "choices", "answer", "prompt", "target", "text", "id", "cluster")
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True), st.text(max_size=8),
                    st.just(""), st.sampled_from(["0", "1", "²", " 1 ", "a", "b", '["a", "b"]', "{x}"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                      max_leaves=6)
row = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), values, max_size=6)
rows = st.lists(st.one_of(row, values), min_size=0, max_size=5)


def _one_line(error: ForgettingError) -> None:
    message = str(error)
    assert message.strip() and "\n" not in message, repr(message)


def _valid(suite: Suite, kind: str) -> None:
    assert isinstance(suite, Suite) and suite.kind == kind and len(suite) > 0
    assert len({item.id for item in suite.items}) == len(suite.items)
    for item in suite.items:
        assert isinstance(item.prompt, str)
        if kind == "multiple_choice":
            assert len(item.choices) >= 2 and all(isinstance(c, str) and c.strip() for c in item.choices)
            assert isinstance(item.answer, int) and 0 <= item.answer < len(item.choices)
        if kind == "generation":
            assert all(isinstance(t, str) and t.strip() for t in item.targets)
        if kind == "text":
            assert item.prompt.strip()


def _load(source, kind: str, **options) -> None:
    try:
        suite = load_suite(source, kind, **options)
    except ForgettingError as error:
        _one_line(error)
    else:
        _valid(suite, kind)


@FAST
@given(kind=st.sampled_from(KINDS), data=rows)
def test_rows_in_memory_load_or_fail_in_one_line(kind: str, data: list) -> None:
    _load(data, kind)


@FAST
@given(kind=st.sampled_from(KINDS), data=rows, junk=st.lists(st.text(max_size=12), max_size=2))
def test_jsonl_files_load_or_fail_in_one_line(tmp_path_factory: pytest.TempPathFactory, kind: str, data: list,
                                              junk: list) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz", numbered=True)) / "suite.jsonl"
    lines = [json.dumps(r) if not isinstance(r, float) or math.isfinite(r) else "NaN" for r in data] + junk
    path.write_text("\n".join(lines), encoding="utf-8")
    _load(path, kind)


options = st.fixed_dictionaries({}, optional={
    "template": st.one_of(st.none(), st.text(max_size=10), st.sampled_from(["{prompt}", "{0}", "{", "}", "{question!r}",
                                                                           "{prompt.x}", "{prompt[0]}"])),
    "limit": values, "max_new_tokens": values, "fewshot": values, "stop": values, "chat_template": values,
    "scorer": st.one_of(values, st.sampled_from(["exact_match", "regex", "numeric", "no_forbidden", "contains"])),
    "pattern": values, "phrases": values, "pick": values, "tolerance": values, "ignore_case": values,
})


@FAST
@given(kind=st.sampled_from(KINDS), data=rows, chosen=options)
def test_load_options_are_accepted_or_refused_in_one_line(kind: str, data: list, chosen: dict) -> None:
    _load(data or [{"prompt": "p", "target": "t", "question": "q", "choices": ["a", "b"], "answer": 0, "text": "x"}],
          kind, **chosen)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(raw=st.one_of(
    st.text(max_size=12),
    st.from_regex(r"\A[ +-]?[0-9_.eE]{0,6} ?%{0,2} ?\Z"),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=2),
))
def test_tolerance_parses_to_a_valid_value_or_fails_in_one_line(raw) -> None:
    try:
        tolerance = parse_tolerance(raw)
    except ForgettingError as error:
        _one_line(error)
    else:
        assert isinstance(tolerance, Tolerance) and 0 <= tolerance.value < math.inf
        assert not math.copysign(1, tolerance.value) < 0  # no "-0"
        shown = parse_tolerance(str(tolerance))  # what reports show reads back (to the 6 digits shown)
        assert shown.relative == tolerance.relative and math.isclose(shown.value, tolerance.value, rel_tol=1e-5)


keywords = st.dictionaries(st.one_of(st.sampled_from(MARKER_KWARGS), st.text(max_size=8)), values, max_size=3)
arguments = st.lists(st.one_of(st.text(max_size=8), values), max_size=2)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(args=arguments, kwargs=keywords)
def test_marker_arguments_validate_or_fail_in_one_line(args: list, kwargs: dict) -> None:
    try:
        spec = validate_marker_args(tuple(args), kwargs, where="test_fuzz.py::test_x")
    except ForgettingError as error:
        _one_line(error)
    else:
        assert isinstance(spec, CapabilitySpec) and spec.name and "\n" not in spec.name
        assert isinstance(spec.target, bool) and (spec.metric is None or spec.metric.strip())
