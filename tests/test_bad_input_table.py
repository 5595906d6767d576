"""One table of bad inputs: every row fails with ONE line that names what was wrong and the fix.

Each row is ``(id, run, expected)``: ``run(ctx)`` provokes the error and returns its message,
``expected`` are key words the message must hold (the bad value, the expected form, the fix).
Rows run in one of four ways:

* ``cli(...)``: a pytest run that stops at start-up (options, ini values, model folders): exit
  code 4, exactly one ``ERROR:`` line, no traceback and no ``pytest_forgetting/`` frame;
* ``at_load(...)``: a run whose models fail to load: the tests using them error with one line;
* ``in_test(...)``: a run whose forgetting test fails with one line (markers, suites in tests);
* ``call(...)``: a direct call that raises the plugin's :class:`ForgettingError`.

Many of these are also tested elsewhere (tests/test_bad_input.py, test_suites.py, ...).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_forgetting import load_suite
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import validate_marker_args
from pytest_forgetting.tolerance import parse_tolerance

USES_MODELS = """
def test_pair(base_model, tuned_model):
    pass

def test_plain():
    pass
"""

MC = [{"question": "2 + 2 =", "choices": ["4", "5"], "answer": 0},
      {"question": "3 + 3 =", "choices": ["6", "7"], "answer": 0}]
GEN = [{"prompt": "Q: 2 + 2?", "target": "4"}, {"prompt": "Q: 3 + 3?", "target": "6"}]


@dataclass
class Ctx:
    """What a row may use: a pytester project, a temporary folder and (lazily) the tiny models."""

    pytester: pytest.Pytester
    tmp_path: Path
    request: pytest.FixtureRequest

    @property
    def models(self) -> dict[str, Path]:
        return self.request.getfixturevalue("tiny_models")  # type: ignore[no-any-return]


def _text(result: pytest.RunResult) -> str:
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text, text
    assert "pytest_forgetting/" not in text, text  # no frame from inside the plugin
    return text


def _args(args: Any, ctx: Ctx) -> list[str]:
    return list(args(ctx) if callable(args) else args)


def cli(args: Any = (), *, ini: str = "", setup: Callable[[Ctx], None] | None = None) -> Callable[[Ctx], str]:
    """A run stopped at start-up: its one ``ERROR:`` line."""
    def run(ctx: Ctx) -> str:
        if setup:
            setup(ctx)
        if ini:
            ctx.pytester.makeini(ini)
        ctx.pytester.makepyfile(USES_MODELS)
        result = ctx.pytester.runpytest(*_args(args, ctx))
        text = _text(result)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, text
        errors = [line for line in result.stderr.lines if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("ERROR: pytest-forgetting: "), text  # one line
        return errors[0]
    return run


def at_load(args: Any, *, setup: Callable[[Ctx], None] | None = None) -> Callable[[Ctx], str]:
    """A run whose models fail to load: the test using them errors with one line, the other passes."""
    def run(ctx: Ctx) -> str:
        if setup:
            setup(ctx)
        ctx.pytester.makepyfile(USES_MODELS)
        # in a fresh process: a failed load can leave native objects that crash a later in-process run's GC
        result = ctx.pytester.runpytest_subprocess(*_args(args, ctx))
        text = _text(result)
        result.assert_outcomes(passed=1, errors=1)
        return _one_line(result, text)
    return run


def in_test(body: str, args: Any = None) -> Callable[[Ctx], str]:
    """A forgetting test (run against the tiny adapter) that fails with one line."""
    def run(ctx: Ctx) -> str:
        ctx.pytester.makepyfile(textwrap.dedent(body))
        result = ctx.pytester.runpytest(*(_args(args, ctx) if args else
                                          [f"--tuned-model={ctx.models['adapter']}", "--no-forgetting-cache"]))
        text = _text(result)
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed", 0) + outcomes.get("errors", outcomes.get("error", 0)) == 1, text
        return _one_line(result, text)
    return run


def _one_line(result: pytest.RunResult, text: str) -> str:
    lines = result.stdout.lines
    found = [i for i, line in enumerate(lines) if line.startswith("pytest-forgetting:")]
    assert len(found) == 1, text
    after = lines[found[0] + 1] if found[0] + 1 < len(lines) else ""
    assert after.strip() == "" or after[:1] in "_=-", text  # nothing continues the message
    return lines[found[0]]


def call(function: Callable[[Ctx], Any]) -> Callable[[Ctx], str]:
    """A direct call: it must raise the plugin's ForgettingError."""
    def run(ctx: Ctx) -> str:
        with pytest.raises(ForgettingError) as raised:
            function(ctx)
        return str(raised.value)
    return run


def suite_file(name: str, content: str, kind: str = "multiple_choice", **options: Any) -> Callable[[Ctx], str]:
    """A suite file with ``content``, loaded as ``kind``."""
    def load(ctx: Ctx) -> Any:
        path = ctx.tmp_path / name
        path.write_text(content, encoding="utf-8")
        return load_suite(path, kind, **options)
    return call(load)


def rows(kind: str, *rows_: dict, **options: Any) -> Callable[[Ctx], str]:
    return call(lambda ctx: load_suite(list(rows_), kind, **options))


def lines(*objects: Any) -> str:
    return "\n".join(json.dumps(o) for o in objects) + "\n"


# -- model folders and adapters: set-ups -------------------------------------------------------


def _folder(name: str, files: dict[str, Any]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        folder = ctx.pytester.path / name
        folder.mkdir()
        for file, content in files.items():
            (folder / file).write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def _copy(what: str, name: str, edit: Callable[[Path], None]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        folder = ctx.pytester.path / name
        shutil.copytree(ctx.models[what], folder)
        edit(folder)
    return setup


def _edit_json(file: str, change: Callable[[dict], Any]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = json.loads((folder / file).read_text())
        change(data)
        (folder / file).write_text(json.dumps(data))
    return edit


def _write(file: str, content: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / file).write_bytes(content)


def _aliens(ctx: Ctx) -> None:
    """A base and a fine-tune of an architecture transformers does not know."""
    alien = _edit_json("config.json", lambda c: c.update(model_type="alien", architectures=["AlienForCausalLM"]))
    _copy("base", "alien-base", alien)(ctx)
    _copy("full", "alien", alien)(ctx)


def _shaped_adapter(ctx: Ctx) -> None:
    """An adapter trained on a wider Llama, built in a fresh process (after many in-process pytest runs,
    building models here has crashed torch's garbage collection)."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from tests import tiny; "
            "wide = tiny.build_llama(Path(sys.argv[1]), seed=2, hidden=48, tokenizer_from=Path(sys.argv[2])); "
            "tiny.build_lora(Path(sys.argv[3]), wide)")
    subprocess.run([sys.executable, "-c", code, str(ctx.tmp_path / "wide"), str(ctx.models["base"]),
                    str(ctx.pytester.path / "wide-adapter")], check=True, cwd=Path(__file__).parent.parent,
                   capture_output=True)


def _with_base(*args: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: [*args, f"--base-model={ctx.models['base']}"]


def _adapter(*args: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: [f"--tuned-model={ctx.models['adapter']}", *args]


def _baseline(content: str) -> Callable[[Ctx], Any]:
    def read(ctx: Ctx) -> Any:
        from pytest_forgetting.storage.baseline import Baseline

        suite = load_suite(MC, "multiple_choice", name="sums")
        baseline = Baseline(ctx.tmp_path / "baseline")
        path = baseline.file_for(suite)
        path.parent.mkdir(parents=True)
        path.write_text(content)
        return baseline.entries(suite, ("f" * 64, "float32", "cpu"), "base")
    return read


def _scorer_options(scorer: str, **options: Any) -> Callable[[Ctx], Any]:
    def check(ctx: Ctx) -> None:
        from pytest_forgetting.scoring.kinds import check_scorer_accepts
        from pytest_forgetting.scoring.registry import build_registry

        check_scorer_accepts(load_suite(GEN, "generation", scorer=scorer, **options), build_registry())
    return check


def _resolve(scorer: str) -> Callable[[Ctx], Any]:
    def resolve(ctx: Ctx) -> Any:
        from pytest_forgetting.scoring.registry import build_registry
        from pytest_forgetting.scoring.scorers import resolve_scorer

        return resolve_scorer(scorer, build_registry())
    return resolve


def _marker(*args: Any, **kwargs: Any) -> Callable[[Ctx], str]:
    return call(lambda ctx: validate_marker_args(args, kwargs, where="test_x.py::test_x"))


MARKED = """
from pytest_forgetting import capability

@capability("sums", {arguments})
def test_sums(forgetting):
    forgetting.compare(forgetting.suite({rows!r}, "multiple_choice"))
"""

GENERATES = """
def test_generates(forgetting):
    forgetting.suite({rows!r}, "generation", {arguments})
"""


# fmt: off
TABLE: list[tuple[str, Callable[[Ctx], str], tuple[str, ...]]] = [
    # -- command-line options and ini values ---------------------------------------------------
    ("cli-dtype", cli(["--dtype", "float8"]), ("--dtype float8", "expected one of auto, float32")),
    ("cli-device", cli(["--device", "gpu0"]), ("--device gpu0", "expected auto, cpu, mps, cuda or cuda:N")),
    ("cli-device-non-ascii-index", cli(["--device", "cuda:٣"]), ("cuda:٣", "cuda:N")),  # fixed: was accepted
    ("cli-batch-size-zero", cli(["--forgetting-batch-size", "0"]), ("batch size '0'", "'auto' or a positive integer")),
    ("cli-batch-size-superscript", cli(["--forgetting-batch-size", "²"]), ("'²'", "positive integer")),  # fixed: ValueError
    ("cli-tolerance-word", cli(["--forgetting-tolerance", "two"]), ("'two'", "0.02", "'5%'")),
    ("cli-tolerance-double-percent", cli(["--forgetting-tolerance=5 %%"]), ("'5 %%'", "'5%'")),
    ("cli-tolerance-negative", cli(["--forgetting-tolerance=-1"]), ("'-1'", ">= 0")),
    ("cli-tolerance-underscore", cli(["--forgetting-tolerance=1_0"]), ("'1_0'", "0.02")),  # fixed: read as 10
    ("cli-tolerance-vacuous", cli(["--forgetting-tolerance=2.0"]), ("'2.0'", "200 accuracy points", "0.02", "'2.0%'")),  # fixed
    ("cli-alpha", cli(["--forgetting-alpha", "0.7"]), ("alpha '0.7'", "between 0 and 0.5")),
    ("cli-policy", cli(["--forgetting-policy", "strict"]), ("'strict'", "non-inferiority, significant")),
    ("cli-sequential", cli(["--forgetting-sequential", "sometimes"]), ("sometimes", "on", "off")),
    ("cli-sequential-spending", cli(["--forgetting-sequential-spending", "obf"]),
     ("'obf'", "obrien-fleming, hwang-shih-decani or pocock")),
    ("ini-sequential-spending", cli(ini="[pytest]\nforgetting_sequential_spending = linear\n"),
     ("ini forgetting_sequential_spending", "'linear'", "obrien-fleming")),
    ("cli-concurrency-zero", cli(["--forgetting-request-concurrency", "0"]), ("'0'", "integer >= 1")),
    ("cli-retries-double-minus", cli(["--forgetting-request-retries=--5"]), ("'--5'", "integer >= 0")),  # fixed: ValueError
    ("cli-timeout-underscore", cli(["--forgetting-request-timeout=1_0"]), ("'1_0'", "positive number of seconds")),  # fixed
    ("cli-device-map", cli(["--device-map", "autoo"]), ("'autoo'", "auto, balanced, balanced_low_0, sequential")),
    ("cli-max-memory-syntax", cli(["--max-memory", "0:70GiB"]), ("'0:70GiB'", "DEVICE=SIZE", "0=20GiB")),
    ("cli-max-memory-without-device-map", cli(_adapter("--max-memory", "0=1GiB")), ("--max-memory", "--device-map")),
    ("cli-update-baseline-without-folder", cli(_adapter("--forgetting-update-baseline")),
     ("--forgetting-update-baseline needs --forgetting-baseline DIR",)),
    ("ini-dtype", cli(ini="[pytest]\nforgetting_dtype = half-ish\n"), ("ini forgetting_dtype", "'half-ish'", "expected one of")),
    ("ini-tolerance", cli(ini="[pytest]\nforgetting_tolerance = abc\n"), ("ini forgetting_tolerance", "'abc'", "'5%'")),
    ("ini-batch-size", cli(ini="[pytest]\nforgetting_batch_size = -3\n"), ("ini forgetting_batch_size", "'-3'", "positive integer")),
    ("ini-alpha", cli(ini="[pytest]\nforgetting_alpha = 2\n"), ("ini forgetting_alpha", "'2'", "between 0 and 0.5")),
    ("ini-base-model-missing", cli(_adapter(), ini="[pytest]\nforgetting_base_model = no-such-base\n"),
     ("ini forgetting_base_model no-such-base", "no such folder", "give the path")),
    # -- model folders -------------------------------------------------------------------------
    ("model-missing", cli(["--tuned-model=does/not-exist"]), ("--tuned-model does/not-exist", "no such folder")),
    ("model-is-a-file", cli(["--tuned-model=weights.safetensors"], setup=lambda ctx: (ctx.pytester.path / "weights.safetensors").write_bytes(b"x")),
     ("is a file", "expected a model folder")),
    ("model-empty-folder", cli(["--tuned-model=empty"], setup=_folder("empty", {})), ("neither a model checkpoint", "holds: nothing")),
    ("model-config-only", cli(["--tuned-model=cfg"], setup=_folder("cfg", {"config.json": "{}"})),
     ("checkpoint folder has no weights", "model.safetensors")),
    ("model-config-broken-json", cli(["--tuned-model=broken"], setup=_folder("broken", {"config.json": "{oops", "model.safetensors": b"x"})),
     ("broken: cannot read config.json", "Expecting property name")),
    ("model-config-not-object", cli(["--tuned-model=listy"], setup=_folder("listy", {"config.json": "[1]", "model.safetensors": b"x"})),
     ("config.json is not a JSON object",)),
    ("model-glob-matches-nothing", cli(["--tuned-model=out/checkpoint-*"], setup=lambda ctx: (ctx.pytester.path / "out").mkdir()),
     ("matches no folder", "out/checkpoint-*")),
    ("model-wrong-architecture", cli(_with_base("--tuned-model=gpt2ish"),
                                     setup=_copy("full", "gpt2ish", _edit_json("config.json", lambda c: c.update(model_type="gpt2")))),
     ("is a gpt2 checkpoint", "llama", "--base-model")),
    ("model-unknown-architecture", at_load(["--tuned-model=alien", "--base-model=alien-base"], setup=_aliens),
     ("alien", "cannot load the model", "alien")),
    ("model-bad-safetensors", at_load(_with_base("--tuned-model=garbled"), setup=_copy("full", "garbled", _write("model.safetensors", b"not safetensors at all"))),
     ("garbled: cannot load the model", "header too large")),
    ("model-full-checkpoint-without-base", cli(lambda ctx: [f"--tuned-model={ctx.models['full']}"]),
     ("full checkpoint", "names no base", "--base-model")),
    # -- adapters ------------------------------------------------------------------------------
    ("adapter-config-broken-json", cli(["--tuned-model=adapter"], setup=_copy("adapter", "adapter", _write("adapter_config.json", b"{not json"))),
     ("adapter: cannot read adapter_config.json", "Expecting property name")),
    ("adapter-names-no-base", cli(["--tuned-model=adapter"], setup=_copy("adapter", "adapter", _edit_json("adapter_config.json", lambda c: c.pop("base_model_name_or_path")))),
     ("adapter_config.json names no base model", "--base-model")),
    ("adapter-base-not-offline", cli(["--tuned-model=adapter"], setup=_copy("adapter", "adapter", _edit_json("adapter_config.json", lambda c: c.update(base_model_name_or_path="nobody/not-cached")))),
     ("'nobody/not-cached' cannot be found offline", "--base-model")),
    ("adapter-without-weights", cli(["--tuned-model=adapter"], setup=_copy("adapter", "adapter", lambda f: (f / "adapter_model.safetensors").unlink())),
     ("adapter folder has no weights", "adapter_model.safetensors")),
    ("adapter-as-base", cli(lambda ctx: [f"--tuned-model={ctx.models['full']}", f"--base-model={ctx.models['adapter']}"]),
     ("is a PEFT adapter", "the base must be a full checkpoint")),
    ("adapter-base-mismatch", at_load(_with_base("--tuned-model=wide-adapter"), setup=_shaped_adapter),
     ("the adapter does not fit the base", "size mismatch", "--base-model")),
    # -- suites: multiple_choice rows --------------------------------------------------------------
    ("mc-missing-question", rows("multiple_choice", {"choices": ["a", "b"], "answer": 0}), ("row 1", "missing field 'question'", "the row has: answer, choices")),
    ("mc-null-question", rows("multiple_choice", {"question": None, "choices": ["a", "b"], "answer": 0}), ("row 1", "'question' is null")),  # fixed
    ("mc-missing-choices", rows("multiple_choice", {"question": "q", "answer": 0}), ("'choices' must be a list of at least two strings", "None")),
    ("mc-one-choice", rows("multiple_choice", {"question": "q", "choices": ["a"], "answer": 0}), ("at least two strings", "['a']")),
    ("mc-choice-not-string", rows("multiple_choice", {"question": "q", "choices": ["a", 2], "answer": 0}), ("at least two strings", "['a', 2]")),
    ("mc-empty-choice", rows("multiple_choice", {"question": "q", "choices": ["a", " "], "answer": 0}), ("choice 1 is empty", "non-empty text")),
    ("mc-answer-out-of-range", rows("multiple_choice", {"question": "q", "choices": ["a", "b"], "answer": 2}), ("answer index 2 is out of range", "2 choices")),
    ("mc-answer-not-a-choice", rows("multiple_choice", {"question": "q", "choices": ["a", "b"], "answer": "c"}), ("answer 'c' is not one of the choices", "['a', 'b']")),
    ("mc-answer-float", rows("multiple_choice", {"question": "q", "choices": ["a", "b"], "answer": 1.0}), ("'answer' must be a choice index or the choice text", "1.0")),
    ("mc-answer-superscript-digit", rows("multiple_choice", {"question": "q", "choices": ["a", "b"], "answer": "²"}), ("answer '²'", "not one of the choices")),  # fixed: ValueError
    # -- suites: generation and text rows --------------------------------------------------------
    ("gen-prompt-not-string", rows("generation", {"prompt": 3, "target": "t"}), ("'prompt' must be a string", "got 3")),
    ("gen-missing-prompt", rows("generation", {"target": "t"}), ("missing field 'prompt'", "the row has: target")),
    ("gen-target-number", rows("generation", {"prompt": "p", "target": 4}), ("'target' must be a string or a list of strings", "got 4")),
    ("gen-target-empty", rows("generation", {"prompt": "p", "target": ""}), ("holds an empty string", "leave 'target' out")),
    ("gen-target-list-with-number", rows("generation", {"prompt": "p", "target": ["a", 1]}), ("a list of strings", "['a', 1]")),
    ("text-missing", rows("text", {"body": "x"}), ("row 1", "non-empty 'text' (or 'prompt') string")),
    ("text-empty", rows("text", {"text": "  "}), ("row 1", "non-empty 'text'")),
    ("text-number", rows("text", {"text": 5}), ("row 1", "'text' (or 'prompt') string")),
    ("row-not-an-object", rows("generation", ["p", "t"]), ("row 1", "expected an object with fields, got list")),
    ("id-a-list", rows("generation", {"prompt": "p", "target": "t", "id": [1]}), ("'id' must be a string or a number", "[1]")),  # fixed: str([1])
    ("unknown-kind", call(lambda ctx: load_suite(GEN, "generaton")), ("unknown suite kind 'generaton'", "multiple_choice, generation, text")),
    # -- suites: files ---------------------------------------------------------------------------
    ("file-empty", suite_file("empty.jsonl", "\n\n"), ("empty.jsonl", "the suite has no items")),
    ("file-bad-json-line", suite_file("bad.jsonl", lines(MC[0]) + "{not json\n"), ("bad.jsonl, line 2", "not valid JSON")),
    ("file-bad-json-list", suite_file("bad.json", "[{\"question\": 1,]"), ("bad.json", "not valid JSON")),
    ("file-duplicate-ids", suite_file("dups.jsonl", lines({**MC[0], "id": "q1"}, {**MC[1], "id": "q1"})), ("item id 'q1' appears more than once", "unique")),
    ("file-unsupported-type", suite_file("rows.txt", "hi"), ("unsupported suite file type '.txt'", ".jsonl")),
    ("file-missing", call(lambda ctx: load_suite(ctx.tmp_path / "nope.jsonl", "multiple_choice")), ("nope.jsonl", "no such suite file")),
    ("file-csv-extra-cells", suite_file("rows.csv", "prompt,target\na,b,c\n", "generation"), ("rows.csv, row 1", "more cells than the header")),
    # -- suite options ---------------------------------------------------------------------------
    ("option-unknown-with-suggestion", call(lambda ctx: load_suite(MC, "multiple_choice", max_new_token=16)), ("'max_new_token'", "did you mean 'max_new_tokens'?")),
    ("option-max-new-tokens-zero", call(lambda ctx: load_suite(GEN, "generation", max_new_tokens=0)), ("max_new_tokens=0", "positive integer")),  # fixed
    ("option-limit-negative", call(lambda ctx: load_suite(GEN, "generation", limit=-1)), ("limit=-1", "leave limit out")),  # fixed: dropped the last item
    ("option-limit-string", call(lambda ctx: load_suite(GEN, "generation", limit="3")), ("limit='3'", "number of items")),  # fixed: TypeError
    ("option-fewshot-bool", call(lambda ctx: load_suite(GEN, "generation", fewshot=True)), ("fewshot=True", "list of example row dicts")),  # fixed: read as 1
    ("option-chat-template-string", call(lambda ctx: load_suite(GEN, "generation", chat_template="yes")), ("chat_template='yes'", "True or False")),  # fixed
    ("option-fewshot-too-many", call(lambda ctx: load_suite(GEN, "generation", fewshot=5)), ("fewshot=5", "between 0 and 1")),
    ("option-answer-by", call(lambda ctx: load_suite(MC, "multiple_choice", answer_by="letters")), ("answer_by='letters'", "'loglikelihood' or 'letter'")),
    # -- scorers and their options -------------------------------------------------------------
    ("scorer-unknown", call(_resolve("exact_mach")), ("unknown scorer 'exact_mach'", "Did you mean 'exact_match'?", "Available:")),
    ("scorer-unknown-in-test", in_test(GENERATES.format(rows=GEN, arguments="scorer='contain'")), ("unknown scorer 'contain'", "Did you mean 'contains'?")),  # fixed: failed only after generating
    ("scorer-not-a-scorer", call(lambda ctx: load_suite(GEN, "generation", scorer=3)), ("scorer=3", "scorer name such as 'exact_match'")),  # fixed
    ("scorer-on-multiple-choice", call(lambda ctx: load_suite(MC, "multiple_choice", scorer="exact_match")), ("multiple_choice suite has no scorer", "'generation' suite")),  # fixed: ignored
    ("scorer-option-unknown", call(_scorer_options("exact_match", ignore_cas=True)), ("'ignore_cas'", "did you mean 'ignore_cas' -> 'ignore_case'?", "it takes: ignore_case")),  # fixed: no suggestion, after generating
    ("scorer-option-unknown-in-test", in_test(GENERATES.format(rows=GEN, arguments="scorer='numeric', tolerence=0.1")), ("'tolerence' -> 'tolerance'", "it takes: tolerance, pick")),  # fixed
    ("scorer-numeric-pick", call(lambda ctx: load_suite(GEN, "generation", scorer="numeric", pick="middle")), ("pick='middle'", "'first' or 'last'")),  # fixed: silently 'last'
    ("scorer-flag-not-bool", call(lambda ctx: load_suite(GEN, "generation", ignore_case="no")), ("ignore_case must be True or False", "'no'")),  # fixed: 'no' is truthy
    ("scorer-regex-empty-pattern", call(lambda ctx: load_suite(GEN, "generation", scorer="regex", pattern="")), ("pattern=''", "would match every output")),
    ("scorer-phrases-a-string", call(lambda ctx: load_suite(GEN, "generation", scorer="no_forbidden", phrases="WHEREAS")), ("phrases must be a list of strings", "phrases=['WHEREAS', 'HEREBY']")),
    ("scorer-evaluate-undeclared", call(_resolve("evaluate:mystery")), ("'evaluate:mystery'", "not declared", "Scorer('evaluate:mystery'")),
    ("stop-list-with-empty-string", call(lambda ctx: load_suite(GEN, "generation", stop=["\n", ""])), ("stop=['\\n', '']", "list of non-empty strings")),
    ("stop-a-number", call(lambda ctx: load_suite(GEN, "generation", stop=5)), ("stop=5", "a stop string or a list")),  # fixed: TypeError
    # -- templates -------------------------------------------------------------------------------
    ("template-stray-brace", call(lambda ctx: load_suite(GEN, "generation", template="Q: {prompt")), ("not a valid format string", "{{ or }}")),
    ("template-stray-closing-brace", call(lambda ctx: load_suite(GEN, "generation", template="Q: {prompt}}")), ("not a valid format string", "{{ or }}")),
    ("template-positional", call(lambda ctx: load_suite(GEN, "generation", template="Q: {0}")), ("positional field {0}", "e.g. {question}")),
    ("template-empty-field", call(lambda ctx: load_suite(GEN, "generation", template="Q: {}")), ("positional field {}", "name the row's field")),
    ("template-missing-field", call(lambda ctx: load_suite(GEN, "generation", template="Q: {question}")), ("missing field 'question'", "the row has: prompt, target")),
    ("template-json-braces", call(lambda ctx: load_suite(GEN, "generation", template='JSON {"a": 1}: {prompt}')), ("missing field", "double them")),
    ("template-not-a-string", call(lambda ctx: load_suite(GEN, "generation", template=5)), ("template 5", "{field} placeholders")),
    # -- markers and tolerances ----------------------------------------------------------------
    ("marker-misspelled-keyword", _marker("math", tolerence=0.1), ("'tolerence'", "expected only: tolerance, policy", "did you mean 'tolerance'?")),  # fixed: suggestion
    ("marker-tolerance-double-percent", _marker("math", tolerance="5 %%"), ("'5 %%'", "'5%'")),
    ("marker-tolerance-negative", _marker("math", tolerance="-1"), ("'-1'", ">= 0")),
    ("marker-tolerance-word", _marker("math", tolerance="abc"), ("'abc'", "0.02", "'5%'")),
    ("marker-tolerance-bool", _marker("math", tolerance=True), ("True", "not a number")),
    ("marker-tolerance-huge-int", _marker("math", tolerance=10 ** 400), ("finite number",)),  # fixed: OverflowError
    ("marker-tolerance-whole-range", in_test(MARKED.format(rows=MC, arguments="tolerance=2.0")), ("tolerance 2 on acc", "never fail", "tolerance=0.02", "'2%'")),  # fixed: silently passed
    ("marker-policy", _marker("math", policy="strict"), ("unknown policy 'strict'", "non-inferiority, significant")),
    ("marker-alpha-too-large", _marker("math", alpha=0.7), ("alpha 0.7", "between 0 and 0.5")),
    ("marker-alpha-string", _marker("math", alpha="0.05"), ("alpha must be a number", "'0.05'")),
    ("marker-target-not-bool", _marker("math", target="yes"), ("target must be True or False", "'yes'")),
    ("marker-no-name", _marker(tolerance=0.1), ("exactly one capability name", "capability('math')")),
    ("marker-empty-metric", _marker("math", metric=""), ("metric must be a metric name", "acc_norm")),  # fixed: accepted
    ("marker-name-with-newline", _marker("ma\nth"), ("'ma\\nth'", "one-line name")),  # fixed: accepted
    ("marker-in-a-run", in_test("""
        import pytest

        @pytest.mark.capability("math", tolerance="5 %%")
        def test_math():
            pass
        """, args=["-p", "no:cacheprovider"]), ("::test_math: could not parse tolerance", "'5 %%'", "'5%'")),
    ("tolerance-direct-percent-only", call(lambda ctx: parse_tolerance("%")), ("'%'", "'5%'")),
    # -- baselines -------------------------------------------------------------------------------
    ("baseline-malformed-json", call(_baseline('{"entries": {"q1": ')), ("corrupt or incomplete", "--forgetting-update-baseline")),
    ("baseline-wrong-checksum", call(_baseline('{"checksum": "0", "entries": {"1": {}}}')), ("corrupt or incomplete", "re-record")),
    ("baseline-not-an-object", call(_baseline("[1]")), ("corrupt or incomplete", "--forgetting-update-baseline")),
]
# fmt: on

#: Rows whose defect this table exposed and the plugin now fixes (marked "fixed" above).
FIXED = {
    "cli-device-non-ascii-index", "cli-batch-size-superscript", "cli-tolerance-underscore", "cli-tolerance-vacuous",
    "cli-retries-double-minus", "cli-timeout-underscore", "mc-null-question", "mc-answer-superscript-digit",
    "id-a-list", "option-max-new-tokens-zero", "option-limit-negative", "option-limit-string", "option-fewshot-bool",
    "option-chat-template-string", "scorer-unknown-in-test", "scorer-not-a-scorer", "scorer-on-multiple-choice",
    "scorer-option-unknown", "scorer-option-unknown-in-test", "scorer-numeric-pick", "scorer-flag-not-bool",
    "stop-a-number", "marker-misspelled-keyword", "marker-tolerance-huge-int", "marker-tolerance-whole-range",
    "marker-empty-metric", "marker-name-with-newline",
}


def test_the_table_is_large_and_its_ids_unique() -> None:
    ids = [row[0] for row in TABLE]
    assert len(ids) == len(set(ids)) and len(ids) >= 55, len(ids)
    assert FIXED <= set(ids)


@pytest.mark.parametrize("run, expected", [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_bad_input_fails_in_one_clear_line(run, expected, tiny_models, pytester: pytest.Pytester, tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    # tiny_models (session-scoped) is set up before pytester snapshots sys.modules: torch imported after the
    # snapshot would be dropped from sys.modules at teardown, and a second import of torch crashes the process
    message = run(Ctx(pytester, tmp_path, request))
    assert "\n" not in message and message.strip(), repr(message)
    missing = [word for word in expected if word not in message]
    assert not missing, f"{missing} not in {message!r}"
