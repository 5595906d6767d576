"""Declared metrics: the statistic, the direction and the default tolerance come from the declaration."""

from __future__ import annotations

import math

import pytest

from pytest_forgetting import Backend, Capabilities, EvaluationSession, Identity, Scorer, load_suite
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.registry import build_registry
from pytest_forgetting.scoring.scorers import resolve_scorer

N = 30


class Scripted(Backend):
    """Generates fixed outputs: ``outputs[i]`` for prompt ``p{i}``."""

    capabilities = Capabilities(generate_text=True)

    def __init__(self, name: str, outputs: list[str]) -> None:
        self.name, self.outputs = name, outputs

    def identity(self) -> Identity:
        return Identity(f"scripted:{self.name}:{hash(tuple(self.outputs))}", "none", "cpu")

    def generate(self, prompts, *, max_new_tokens=64, stop=(), batch_size=None):
        return [self.outputs[int(p[1:])] for p in prompts]


def word_errors(output: str, targets, **options) -> float:
    """Words of the target missing from the output, per target word (an error rate: lower is better)."""
    words = targets[0].split()
    return sum(w not in output.split() for w in words) / len(words)


def _session(base_outputs: list[str], tuned_outputs: list[str]) -> EvaluationSession:
    return EvaluationSession(Scripted("base", base_outputs), {"tuned": Scripted("tuned", tuned_outputs)})


def _rows(target: str = "a b c d") -> list[dict]:
    return [{"id": f"i{i}", "prompt": f"p{i}", "target": target} for i in range(N)]


ERRORS = Scorer(word_errors, name="errors", higher_is_better=False, unit="word error rate", high=math.inf,
                tolerance=0.05)


def test_a_lower_is_better_scorer_decides_in_its_direction() -> None:
    suite = load_suite(_rows(), "generation", scorer=ERRORS)
    worse = _session(["a b c d"] * N, ["a b"] * N).compare("tuned", suite)  # 2 of 4 words missed
    assert (worse.base_score, worse.tuned_score, worse.delta) == (0.0, 0.5, 0.5)
    assert worse.verdict == "fail" and worse.forgotten == N and worse.gained == 0 and not worse.higher_is_better
    better = _session(["a b"] * N, ["a b c d"] * N).compare("tuned", suite)
    assert better.verdict == "pass" and better.gained == N and better.forgotten == 0
    assert worse.summary_line().startswith("FAIL generation: errors (lower is better) 0.000 -> 0.500")
    assert "tolerance 0.050 word error rate" in worse.summary_line()


def test_evaluate_wer_is_declared_lower_is_better() -> None:
    scorer = resolve_scorer("evaluate:wer", build_registry())  # declared without loading evaluate
    assert not scorer.metric.higher_is_better and not scorer.metric.binary and scorer.metric.high == math.inf
    for name in ("cer", "ter"):
        assert not resolve_scorer(f"evaluate:{name}", build_registry()).metric.higher_is_better
    assert resolve_scorer("evaluate:sacrebleu", build_registry()).metric.high == 100.0


def test_the_statistic_follows_the_declaration_not_the_values() -> None:
    base, tuned = ["yes"] * 20 + ["no"] * 10, ["yes"] * 18 + ["no"] * 12
    rows = [{"id": f"i{i}", "prompt": f"p{i}", "target": "yes"} for i in range(N)]
    overlap = Scorer(lambda output, targets, **kw: float(output == targets[0]), name="overlap")  # continuous
    as_continuous = _session(base, tuned).compare("tuned", load_suite(rows, "generation", scorer=overlap))
    assert as_continuous.statistic.startswith("paired bootstrap") and not as_continuous.binary
    as_binary = _session(base, tuned).compare("tuned", load_suite(rows, "generation", scorer="exact_match"))
    assert as_binary.statistic.startswith("paired proportions") and as_binary.binary
    assert as_continuous.delta == as_binary.delta  # the same values, decided by what was declared


@pytest.mark.parametrize("value, problem", [
    (math.nan, "returned nan; expected a number in [0, 1]"),
    (None, "returned None; expected a number in [0, 1]"),
    (1.5, "returned 1.5, outside [0, 1]"),
    (-0.1, "returned -0.1, outside [0, 1]"),
    ("0.5", "returned '0.5'; expected a number"),
])
def test_a_scorer_value_outside_its_declaration_fails_with_the_item(value, problem) -> None:
    def scorer(output, targets, **kw):
        return value if output == "bad" else 1.0

    suite = load_suite(_rows(), "generation", name="emails", scorer=scorer)
    outputs = ["fine"] * 7 + ["bad"] + ["fine"] * (N - 8)
    with pytest.raises(ForgettingError) as info:
        _session(outputs, outputs).compare("tuned", suite)
    message = str(info.value)
    assert message.startswith("suite emails, item 'i7': scorer 'scorer' ") and problem in message
    assert "\n" not in message


def test_a_binary_scorer_returning_a_fraction_fails() -> None:
    half = Scorer(lambda output, targets, **kw: 0.5, name="half", binary=True, unit="share of items")
    with pytest.raises(ForgettingError, match=r"item 'i0': scorer 'half' returned 0.5, but half is declared binary"):
        _session(["x"] * N, ["x"] * N).compare("tuned", load_suite(_rows(), "generation", scorer=half))


def test_bad_declarations_fail_in_one_line() -> None:
    with pytest.raises(ForgettingError, match=r"range \[1.0, 0.0\] is empty"):
        Scorer(word_errors, low=1.0, high=0.0)
    with pytest.raises(ForgettingError, match="a binary metric scores 0 or 1"):
        Scorer(word_errors, binary=True, high=5.0)
    with pytest.raises(ForgettingError, match="could not parse tolerance"):
        Scorer(word_errors, tolerance="lots")


def test_registered_scorers_carry_their_declaration() -> None:
    registry = build_registry()
    registry.add("errors", word_errors, higher_is_better=False, unit="word error rate", high=math.inf)
    registry.add("also_errors", ERRORS)
    assert not registry.get("errors").metric.higher_is_better and registry.get("also_errors").name == "also_errors"
    assert registry.get("exact_match").metric.binary and registry.get("no_forbidden").metric.unit == "share of outputs"


# -- default tolerances per metric, and --forgetting-tolerance -----------------------------------------------
TOLERANCES = """
from pytest_forgetting import capability

@capability("reviews")
def test_nll(forgetting):
    texts = [{{"text": w + " the quick brown fox jumps over the lazy dog"}} for w in "abcdefghijkl"]
    forgetting.compare(forgetting.suite(texts, "text", name="reviews"))

@capability("counting")
def test_acc(forgetting):
    rows = [{{"question": f"What comes after {{w}}?", "choices": ["one", "two"], "answer": 0}} for w in "abcdefghijkl"]
    forgetting.compare(forgetting.suite(rows, "multiple_choice", name="counting"))
"""


@pytest.mark.parametrize("flag, acc, nll", [
    (None, 0.02, 0.05),          # each metric's own default
    ("0.1", 0.1, 0.05),          # an absolute session default is in accuracy points: NLL keeps its own
    ("10%", None, None),         # a relative one applies to every metric
])
def test_default_tolerance_is_per_metric(pytester, tiny_models, flag, acc, nll) -> None:
    import json

    pytester.makepyfile(test_tolerances=TOLERANCES.format())
    report = pytester.path / "report"
    args = [f"--tuned-model={tiny_models['zero_adapter']}", f"--forgetting-report={report}"]
    pytester.runpytest(*args, *([f"--forgetting-tolerance={flag}"] if flag else [])).assert_outcomes(passed=2)
    rows = {r["metric"]: r for r in json.loads((report / "report.json").read_text())["results"]}
    if flag == "10%":
        assert rows["nll"]["tolerance"] == rows["acc"]["tolerance"] == "10%"
        assert rows["nll"]["tolerance_abs"] == pytest.approx(0.1 * rows["nll"]["base_score"])
    else:
        assert (rows["acc"]["tolerance_abs"], rows["nll"]["tolerance_abs"]) == (acc, nll)
    assert rows["nll"]["unit"] == "nats/token" and rows["acc"]["unit"] == "share of items"
