"""Generation scorers: built-ins, user callables, evaluate metrics, the registry and its hook."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring import scorers
from pytest_forgetting.scoring.kinds import score_generation
from pytest_forgetting.scoring.registry import ScorerRegistry, build_registry
from pytest_forgetting.scoring.scorers import (
    Scorer,
    contains,
    exact_match,
    extract_number,
    forbidden_hits,
    no_forbidden,
    normalize,
    numeric,
    regex,
    resolve_scorer,
)
from pytest_forgetting.scoring.suites import load_suite


class ScriptedHandle:
    """A model stand-in whose outputs are fixed per prompt (scorers are what is under test)."""

    name = "scripted"
    role = "tuned"

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.calls: list[dict] = []

    def generate(self, prompts, *, max_new_tokens=64, stop=(), batch_size=None):
        self.calls.append({"prompts": list(prompts), "max_new_tokens": max_new_tokens, "stop": stop})
        return [self.outputs[p] for p in prompts]


# -- built-ins ----------------------------------------------------------------------------------
def test_normalize() -> None:
    assert normalize("  Hello,\n  World!  ") == "hello world"
    assert normalize("Hello, World!", ignore_case=False) == "Hello World"
    assert normalize("Hello, World!", ignore_punctuation=False) == "hello, world!"


@pytest.mark.parametrize(
    ("output", "targets", "options", "expected"),
    [
        ("Paris", ["Paris"], {}, 1.0),
        ("  paris. ", ["Paris"], {}, 1.0),  # case, punctuation, whitespace ignored by default
        ("The answer is Paris", ["Paris"], {}, 0.0),  # exact, not contains
        ("paris", ["Paris"], {"ignore_case": False}, 0.0),
        ("Paris.", ["Paris"], {"ignore_punctuation": False}, 0.0),
        ("Paris", ["Rome", "Paris"], {}, 1.0),  # any of the targets
        ("Paris\nand more text", ["Paris"], {}, 0.0),
        ("Paris\nand more text", ["Paris"], {"first_line": True}, 1.0),
        ("\n  Paris\nmore", ["paris"], {"first_line": True}, 1.0),
        ("anything", [], {}, 0.0),
    ],
)
def test_exact_match(output: str, targets: list, options: dict, expected: float) -> None:
    assert exact_match(output, targets, **options) == expected


@pytest.mark.parametrize(
    ("output", "targets", "options", "expected"),
    [
        ("The capital is PARIS.", ["Paris"], {}, 1.0),
        ("The capital is PARIS.", ["Paris"], {"ignore_case": False}, 0.0),
        ("It is Rome", ["Paris", "Rome"], {}, 1.0),  # any-of
        ("It is Oslo", ["Paris", "Rome"], {}, 0.0),
        ("new   york city", ["New York"], {}, 1.0),  # whitespace collapsed on both sides
        ("anything", [], {}, 0.0),
    ],
)
def test_contains(output: str, targets: list, options: dict, expected: float) -> None:
    assert contains(output, targets, **options) == expected


def test_regex() -> None:
    assert regex("Order #1234 shipped", [], pattern=r"#\d{4}\b") == 1.0
    assert regex("Order #12 shipped", [], pattern=r"#\d{4}\b") == 0.0
    assert regex("ANSWER: b", [r"answer: [a-d]"]) == 0.0  # case-sensitive by default
    assert regex("ANSWER: b", [r"answer: [a-d]"], ignore_case=True) == 1.0
    assert regex("x = 3", [r"y", r"x = \d"]) == 1.0  # targets read as patterns, any-of
    assert regex("x", [], pattern=None) == 0.0


@pytest.mark.parametrize(
    ("text", "pick", "expected"),
    [
        ("The total is 1,234.5 dollars", "first", 1234.5),
        ("between -3 and 7", "first", -3.0),
        ("between -3 and 7", "last", 7.0),
        ("3 apples plus 4 apples make 7.", "last", 7.0),
        ("value .5", "first", 0.5),
        ("no digits here", "first", None),
        ("1,000,000 people", "first", 1_000_000.0),
    ],
)
def test_extract_number(text: str, pick: str, expected) -> None:
    assert extract_number(text, pick=pick) == expected


def test_numeric() -> None:
    assert numeric("The answer is 42.", ["42"]) == 1.0
    assert numeric("The answer is 42.", ["41"]) == 0.0
    assert numeric("42.004", ["42"], tolerance=0.01) == 1.0
    assert numeric("42.02", ["42"], tolerance=0.01) == 0.0
    assert numeric("It costs 1,250 dollars", ["1250"]) == 1.0
    assert numeric("It costs 1250", ["$1,250.00"]) == 1.0  # separators in the target too
    work = "Step 1: 3 + 4 = 7. Step 2: 7 * 2 = 14. Answer: 14"
    assert numeric(work, ["14"]) == 0.0  # first number is 1
    assert numeric(work, ["14"], pick="last") == 1.0
    assert numeric("no number", ["3"]) == 0.0
    assert numeric("5", ["five", "5"]) == 1.0  # an unparsable target is skipped
    assert numeric("5", []) == 0.0


def test_no_forbidden_and_hits() -> None:
    phrases = ["WHEREAS", "HEREBY"]
    legal = "WHEREAS the parties agree, the seller HEREBY transfers the goods."
    assert no_forbidden(legal, [], phrases=phrases) == 0.0
    assert no_forbidden("Hi team, the report is attached.", [], phrases=phrases) == 1.0
    assert no_forbidden("whereas we agree", [], phrases=phrases) == 1.0  # case-sensitive by default
    assert no_forbidden("whereas we agree", [], phrases=phrases, ignore_case=True) == 0.0
    assert no_forbidden("anything", []) == 1.0
    assert forbidden_hits(legal, phrases) == ["WHEREAS", "HEREBY"]
    assert forbidden_hits("we hereby agree", phrases) == []
    assert forbidden_hits("we hereby agree", phrases, ignore_case=True) == ["HEREBY"]


# -- registry and resolution --------------------------------------------------------------------
def test_builtin_registry() -> None:
    registry = build_registry()
    assert registry.names() == ["contains", "exact_match", "no_forbidden", "numeric", "regex"]
    scorer = resolve_scorer("numeric", registry)
    assert scorer.fn is numeric and scorer.metric.binary and scorer.metric.higher_is_better


def test_unknown_scorer_suggests_a_close_name() -> None:
    with pytest.raises(ForgettingError) as info:
        resolve_scorer("exact_mach", build_registry())
    message = str(info.value)
    assert "unknown scorer 'exact_mach'" in message and "Did you mean 'exact_match'?" in message
    assert "Available: contains, exact_match" in message and "\n" not in message
    with pytest.raises(ForgettingError) as info:
        resolve_scorer("zzzzzz", build_registry())
    assert "Did you mean" not in str(info.value)


def test_registry_rejects_non_callables_and_later_registration_wins() -> None:
    registry = ScorerRegistry()
    with pytest.raises(TypeError, match="must be callable"):
        registry.add("bad", "not a function")  # type: ignore[arg-type]
    registry.add("s", lambda output, targets: 0.0)
    registry.add("s", lambda output, targets: 1.0)
    assert registry.get("s")("", []) == 1.0 and "s" in registry and "t" not in registry


def test_build_registry_calls_the_hook_with_the_registry() -> None:
    seen = []

    def register(*, registry):  # pluggy calls hooks with keyword arguments
        seen.append(registry)
        registry.add("shouts", lambda output, targets, **kw: float(output.isupper()))
        registry.add("exact_match", lambda output, targets, **kw: 0.5)  # a plugin may override

    registry = build_registry(SimpleNamespace(pytest_forgetting_register_scorers=register))
    assert seen == [registry]
    assert registry.get("shouts")("LOUD", []) == 1.0
    assert registry.get("exact_match")("x", ["x"]) == 0.5
    assert "numeric" in registry


def test_user_callable_scorer_in_a_suite() -> None:
    def starts_with_target(output, targets, *, min_len=1):
        return float(len(output) >= min_len and any(output.startswith(t) for t in targets))

    suite = load_suite(
        [{"prompt": "A", "target": "yes"}, {"prompt": "B", "target": "no"}],
        "generation", scorer=starts_with_target, min_len=3, max_new_tokens=7, stop=["\n"],
    )
    handle = ScriptedHandle({"A": "yes indeed", "B": "maybe"})
    scores = score_generation(handle, suite)
    assert scores.metrics == {"starts_with_target": [1.0, 0.0]}
    assert scores.primary == "starts_with_target" and scores.higher_is_better == {"starts_with_target": True}
    assert handle.calls[0]["max_new_tokens"] == 7 and tuple(handle.calls[0]["stop"]) == ("\n",)
    assert [r["output"] for r in scores.records] == ["yes indeed", "maybe"]


def test_builtin_scorer_options_reach_the_scorer_and_bad_options_fail_in_one_line() -> None:
    rows = [{"prompt": "A", "target": "Paris"}]
    handle = ScriptedHandle({"A": "paris"})
    assert score_generation(handle, load_suite(rows, "generation")).metrics["exact_match"] == [1.0]
    strict = load_suite(rows, "generation", ignore_case=False)
    assert score_generation(handle, strict).metrics["exact_match"] == [0.0]
    bogus = load_suite(rows, "generation", tolerance=3)
    with pytest.raises(ForgettingError, match="scorer 'exact_match' rejected its options"):
        score_generation(handle, bogus)


def test_forbidden_phrases_suite_records_hits() -> None:
    rows = [{"prompt": "email 1"}, {"prompt": "email 2"}]
    suite = load_suite(rows, "generation", scorer="no_forbidden", phrases=["WHEREAS", "HEREBY"])
    handle = ScriptedHandle({"email 1": "Hi, WHEREAS we met", "email 2": "Hi, see you soon"})
    scores = score_generation(handle, suite)
    assert scores.metrics["no_forbidden"] == [0.0, 1.0]
    assert [r["hits"] for r in scores.records] == [["WHEREAS"], []]


# -- options that would make every score vacuous fail when the suite loads -----------------------
def _load_error(rows, **options) -> str:
    with pytest.raises(ForgettingError) as info:
        load_suite(rows, "generation", **options)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_regex_empty_pattern_is_rejected_at_load(tmp_path: Path) -> None:
    path = tmp_path / "format.jsonl"
    path.write_text('{"prompt": "Answer yes or no"}\n')
    message = _load_error(path, scorer="regex", pattern="")
    assert message.startswith(f"{path}: scorer 'regex': pattern='' would match every output")
    assert "leave pattern out to read each item's targets as patterns" in message
    # before the check, this suite scored 1.0 on any output
    with pytest.raises(ForgettingError, match="pattern='' would match every output"):
        regex("anything at all", [], pattern="")


def test_regex_pattern_must_be_a_valid_regular_expression() -> None:
    rows = [{"prompt": "A"}]
    assert "pattern='(' is not a valid regular expression (missing )" in _load_error(rows, scorer="regex", pattern="(")
    assert "pattern must be a string (a regular expression), got 5" in _load_error(rows, scorer="regex", pattern=5)
    suite = load_suite(rows, "generation", scorer="regex", pattern=r"^\W*(Yes|No)\b")
    assert score_generation(ScriptedHandle({"A": "Yes."}), suite).metrics["regex"] == [1.0]


def test_regex_targets_read_as_patterns_must_compile(tmp_path: Path) -> None:
    path = tmp_path / "format.jsonl"
    path.write_text('{"prompt": "A", "target": "^Yes"}\n{"prompt": "B", "target": ["^No", "[a-"]}\n')
    message = _load_error(path, scorer="regex")
    assert message.startswith(f"{path}, row 2: target '[a-' is not a valid regular expression")
    assert "reads each target as a pattern" in message
    # with an explicit pattern the targets are not patterns, and other scorers take any text
    assert len(load_suite(path, "generation", scorer="regex", pattern="^No")) == 2
    assert len(load_suite(path, "generation", scorer="contains")) == 2


@pytest.mark.parametrize(
    ("phrases", "problem"),
    [
        (["WHEREAS", ""], "holds an empty phrase, which is found in every output"),
        (["WHEREAS", "  "], "holds an empty phrase, which is found in every output"),
        ("WHEREAS", "phrases must be a list of strings, got 'WHEREAS'"),
        (["WHEREAS", 3], "phrases must be a list of strings"),
    ],
)
def test_no_forbidden_phrases_are_checked_at_load(phrases, problem: str) -> None:
    message = _load_error([{"prompt": "email"}], scorer="no_forbidden", phrases=phrases)
    assert message.startswith("<rows>: scorer 'no_forbidden': ") and problem in message


def test_unknown_scorer_in_a_suite() -> None:
    suite = load_suite([{"prompt": "A", "target": "x"}], "generation", scorer="contain")
    with pytest.raises(ForgettingError, match="Did you mean 'contains'"):
        score_generation(ScriptedHandle({"A": "x"}), suite)


# -- evaluate metrics from a local module ---------------------------------------------------------
METRIC_MODULE = '''
import datasets
import evaluate


class OverlapMetric(evaluate.Metric):
    """Share of reference words the prediction contains; the reference count too."""

    def _info(self):
        return evaluate.MetricInfo(
            description="word overlap",
            citation="",
            inputs_description="predictions and references",
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions, references):
        prediction = set(predictions[0].split())
        refs = references[0] if isinstance(references[0], list) else [references[0]]
        best = max(len(prediction & set(r.split())) / len(r.split()) for r in refs)
        return {"overlap": best, "n_references": float(len(refs))}
'''


@pytest.fixture(scope="module")
def metric_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("metrics") / "word_overlap.py"
    path.write_text(textwrap.dedent(METRIC_MODULE))
    return path


def test_evaluate_loads_a_local_metric_offline(metric_path: Path) -> None:
    import evaluate

    metric = evaluate.load(str(metric_path))
    assert metric.compute(predictions=["a b"], references=[["a b c d"]])["overlap"] == 0.5


def test_evaluate_scorer_from_local_module(metric_path: Path) -> None:
    with pytest.raises(ForgettingError, match="its direction and range are not declared; declare them"):
        resolve_scorer(f"evaluate:{metric_path}", build_registry())  # an unknown metric says nothing of itself
    scorer = resolve_scorer(Scorer(f"evaluate:{metric_path}", unit="word overlap", high=10.0), build_registry())
    assert scorer.name == f"evaluate:{metric_path}" and not scorer.metric.binary
    # default: every target is a reference, the first result entry is the score
    assert scorer("the cat sat", ["the cat sat down", "a dog"]) == 0.75
    assert scorer("the cat sat", ["the cat sat down", "a dog"], key="n_references") == 2.0
    assert scorer("a dog", ["the cat sat down", "a dog"], references="first") == 0.0


def test_evaluate_scorer_in_a_suite(metric_path: Path) -> None:
    suite = load_suite(
        [{"prompt": "A", "target": ["red green blue yellow"]}, {"prompt": "B", "target": "one two"}],
        "generation", scorer=Scorer(f"evaluate:{metric_path}", unit="word overlap"),
    )
    scores = score_generation(ScriptedHandle({"A": "red blue", "B": "zero"}), suite)
    assert scores.metrics[f"evaluate:{metric_path}"] == [0.5, 0.0]


def test_evaluate_unknown_metric_offline_is_one_line() -> None:
    scorer = Scorer("evaluate:no_such_metric_for_pytest_forgetting", higher_is_better=False)
    with pytest.raises(ForgettingError) as info:
        scorer("x", ["x"])
    message = str(info.value)
    assert "cannot load evaluate metric 'no_such_metric_for_pytest_forgetting'" in message
    assert "local metric module" in message and "\n" not in message
    scorers._load_metric.cache_clear()


# -- the registration hook, end to end in a pytest run --------------------------------------------
def test_conftest_hook_registers_a_scorer_a_suite_can_name(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_forgetting_register_scorers(registry):
            registry.add("shouts", lambda output, targets, **kw: float(output.isupper()))
        """
    )
    pytester.makepyfile(
        """
        from pytest_forgetting.scoring.kinds import score_generation
        from pytest_forgetting.scoring.registry import build_registry
        from pytest_forgetting.scoring.suites import load_suite


        class Loud:
            name, role = "loud", "tuned"

            def generate(self, prompts, **kwargs):
                return [p.upper() if "shout" in p else p for p in prompts]


        def test_named_scorer(request):
            registry = build_registry(request.config.hook)
            assert "shouts" in registry and "exact_match" in registry
            suite = load_suite([{"prompt": "shout it"}, {"prompt": "whisper it"}], "generation",
                               scorer="shouts")
            scores = score_generation(Loud(), suite, registry=registry)
            assert scores.metrics == {"shouts": [1.0, 0.0]}


        def test_without_the_hook_the_name_is_unknown():
            import pytest
            from pytest_forgetting.errors import ForgettingError

            suite = load_suite([{"prompt": "shout it"}], "generation", scorer="shouts")
            with pytest.raises(ForgettingError, match="unknown scorer 'shouts'"):
                score_generation(Loud(), suite)
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=2)


def test_hook_registers_an_evaluate_metric_under_a_short_name(pytester: pytest.Pytester, tiny_models,
                                                                metric_path: Path) -> None:
    """Through the forgetting fixture: a conftest names a local evaluate metric 'overlap'."""
    pytester.makeconftest(f"""
from pytest_forgetting.scoring.scorers import evaluate_scorer

def pytest_forgetting_register_scorers(registry):
    registry.add("overlap", evaluate_scorer({str(metric_path)!r}, unit="word overlap"))
""")
    pytester.makepyfile("""
from pytest_forgetting import capability

@capability("echo", tolerance=1.0)
def test_overlap(forgetting):
    rows = [{"prompt": "Say: red green", "target": "red green"}, {"prompt": "Say: one two", "target": "one two"}]
    result = forgetting.compare(forgetting.suite(rows, "generation", scorer="overlap", max_new_tokens=4))
    assert result.metric == "overlap" and result.n == 2 and result.delta == 0.0
    assert all(0.0 <= r["base"] <= 1.0 for r in result.records)
""")
    pytester.runpytest(f"--tuned-model={tiny_models['zero_adapter']}", "--no-forgetting-cache").assert_outcomes(passed=1)
