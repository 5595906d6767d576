"""Suites: the items a capability is measured on, their schemas and validation.

Schemas (one row per item; ``id`` is optional everywhere, ``cluster`` optionally groups
items that share a passage or template, for clustered standard errors):

* ``multiple_choice``: ``{"question": str, "choices": [str, ...], "answer": int | str}``;
  the answer is the gold choice's index or its text. ``choices`` may also be a JSON-encoded
  list (``'["Paris", "Rome"]'``), which is how a CSV cell holds it.
* ``generation``: ``{"prompt": str, "target": str | [str, ...]}``; ``target`` may be
  omitted for scorers that need none (e.g. forbidden phrases).
* ``text`` (perplexity and drift): ``{"text": str}`` or ``{"prompt": str}``.

Every choice and every target must hold some non-blank text: an empty choice breaks
``acc_norm`` (it divides by the choice's length) and an empty target is found in every output.

An empty ``id`` or ``cluster`` cell counts as absent. Where rows come from (files, folders,
dataset names): :mod:`pytest_forgetting.scoring.sources`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence, Union

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.sources import read_rows

Kind = Literal["multiple_choice", "generation", "text", "lm_eval"]
#: The kinds :func:`load_suite` reads; ``lm_eval`` suites come from :func:`pytest_forgetting.lm_eval_task`.
KINDS: tuple[str, ...] = ("multiple_choice", "generation", "text")
DEFAULT_MC_TEMPLATE = "Question: {question}\nAnswer:"
DEFAULT_DELIMITER = " "


@dataclass(frozen=True)
class Item:
    """One validated row of a suite."""

    id: str
    prompt: str
    choices: tuple[str, ...] = ()
    answer: Optional[int] = None
    targets: tuple[str, ...] = ()
    cluster: Optional[str] = None


@dataclass(frozen=True)
class SuiteSettings:
    """How items become model inputs and scores (part of the suite's identity)."""

    template: str = DEFAULT_MC_TEMPLATE
    target_delimiter: str = DEFAULT_DELIMITER
    fewshot: tuple[tuple[str, str], ...] = ()
    fewshot_separator: str = "\n\n"
    chat_template: bool = False
    system_prompt: Optional[str] = None
    scorer: Optional[str] = None
    scorer_options: tuple[tuple[str, Any], ...] = ()
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    answer_by: str = "loglikelihood"


#: How a multiple-choice suite is answered: the most likely choice (lm-eval's ``acc``), or the
#: answer the model writes after the listed choices (``letter_acc``, :mod:`~pytest_forgetting.scoring.letters`).
ANSWER_BY = ("loglikelihood", "letter")


@dataclass(frozen=True)
class Suite:
    """A named, validated list of items of one kind with its settings."""

    name: str
    kind: Kind
    items: tuple[Item, ...]
    settings: SuiteSettings = field(default_factory=SuiteSettings)
    source: str = ""

    def __len__(self) -> int:
        return len(self.items)

    @property
    def fingerprint(self) -> str:
        """Content hash of the items and settings (not of where they were read from)."""
        payload = json.dumps(
            {"kind": self.kind, "items": [asdict(i) for i in self.items], "settings": asdict(self.settings)},
            sort_keys=True, default=repr,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def context(self, item: Item) -> str:
        """The text the model sees before the answer: few-shot examples, then the item."""
        shots = [f"{prompt}{self.settings.target_delimiter}{answer}" for prompt, answer in self.settings.fewshot]
        return self.settings.fewshot_separator.join([*shots, item.prompt])


def load_suite(
    source: Union[str, Path, Sequence[Mapping[str, Any]]],
    kind: str,
    *,
    name: Optional[str] = None,
    template: Optional[str] = None,
    target_delimiter: str = DEFAULT_DELIMITER,
    fewshot: Union[int, Sequence[Mapping[str, Any]]] = 0,
    chat_template: bool = False,
    system_prompt: Optional[str] = None,
    scorer: Optional[str] = None,
    max_new_tokens: int = 64,
    stop: Sequence[str] = (),
    limit: Optional[int] = None,
    split: Optional[str] = None,
    answer_by: str = "loglikelihood",
    **scorer_options: Any,
) -> Suite:
    """Load and validate a suite.

    Args:
        source: a local ``.jsonl``/``.json``/``.csv``/``.parquet`` file, a folder of such
            files (split by file name as ``datasets`` does), a folder written by
            ``Dataset.save_to_disk``/``DatasetDict.save_to_disk``, a dataset name available
            offline (``datasets.load_dataset``), or a list of row dicts.
        kind: ``"multiple_choice"``, ``"generation"`` or ``"text"``.
        name: display name (default: the file's stem).
        template: prompt template with ``{field}`` placeholders; the default for multiple
            choice is lm-eval's zero-shot ``"Question: {question}\\nAnswer:"``, for the other
            kinds ``"{prompt}"`` / ``"{text}"``.
        target_delimiter: put between the context and each choice (lm-eval: ``" "``).
        fewshot: the first N rows serve as worked examples (and are not scored), or a list
            of example rows.
        chat_template: wrap each prompt in the tokenizer's chat template (instruct models).
        system_prompt: optional system message when ``chat_template`` is on.
        scorer: for generation suites, the scorer's name (see :mod:`scorers`), default
            ``"exact_match"``; ``**scorer_options`` are passed to it.
        max_new_tokens, stop: generation settings.
        limit: score only the first N items.
        split: the split of a folder or dataset name with several; default ``"test"`` if
            there is one, else ``"train"``, else the only split.
        answer_by: for multiple choice, ``"loglikelihood"`` (``acc``, ``acc_norm``; a model
            without log-likelihoods switches the comparison to written answers, saying so) or
            ``"letter"`` (``letter_acc``: the model writes the letter of its answer).
    """
    if kind not in KINDS:
        raise ForgettingError(f"unknown suite kind {kind!r}; expected one of: {', '.join(KINDS)}")
    if scorer_options and kind != "generation":
        raise ForgettingError(f"load_suite({kind!r}): unknown option{'s' if len(scorer_options) > 1 else ''} "
                              f"{_suggest(scorer_options)}; scorer options belong to generation suites, and "
                              f"load_suite takes: {', '.join(LOAD_OPTIONS)}")
    if isinstance(stop, str):
        stop = (stop,)  # one stop string, not its characters
    elif stop is None:
        stop = ()
    elif not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop):
        raise ForgettingError(f"stop={stop!r}: expected a stop string or a list of non-empty strings")
    _check_load_options(kind, name=name, target_delimiter=target_delimiter, fewshot=fewshot,
                        chat_template=chat_template, system_prompt=system_prompt, scorer=scorer,
                        max_new_tokens=max_new_tokens, limit=limit, split=split)
    if answer_by not in ANSWER_BY or (answer_by != "loglikelihood" and kind != "multiple_choice"):
        raise ForgettingError(f"answer_by={answer_by!r}: expected 'loglikelihood' or 'letter', and 'letter' only for "
                              "multiple-choice suites")
    rows, where = read_rows(source, split)
    label = name or (Path(str(source)).stem if not isinstance(source, (list, tuple)) else kind)
    if kind == "multiple_choice" and template is None:
        template = DEFAULT_MC_TEMPLATE
    template = template or ("{text}" if kind == "text" else "{prompt}")
    check_template(template)
    shots: list[Mapping[str, Any]] = []
    if isinstance(fewshot, int):
        if fewshot < 0 or (fewshot > 0 and fewshot >= len(rows)):  # an empty file: 'no items'
            raise ForgettingError(f"{where}: fewshot={fewshot} must be between 0 and {len(rows) - 1} (rows available)")
        shots, rows = rows[:fewshot], rows[fewshot:]
        first_row = fewshot
    else:
        shots, first_row = list(fewshot), 0
    items = [
        _validate(row, kind, template, where, first_row + index + 1)
        for index, row in enumerate(rows)
    ]
    if kind == "generation":
        _check_scorer_options(scorer, scorer_options, items, where, first_row)
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ForgettingError(f"{where}: the suite has no items")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ForgettingError(f"{where}: item id {duplicate!r} appears more than once; ids must be unique")
    fewshot_pairs = tuple(
        (shot.prompt, shot.choices[shot.answer] if shot.choices else (shot.targets or ("",))[0])  # type: ignore[index]
        for shot in (_validate(row, kind, template, where, index + 1) for index, row in enumerate(shots))
    )
    settings = SuiteSettings(
        template=template,
        target_delimiter=target_delimiter,
        fewshot=fewshot_pairs,
        chat_template=chat_template,
        system_prompt=system_prompt,
        scorer=scorer if scorer is not None else ("exact_match" if kind == "generation" else None),
        scorer_options=tuple(sorted(scorer_options.items())),
        max_new_tokens=max_new_tokens,
        stop=tuple(stop),
        answer_by=answer_by,
    )
    return Suite(name=label, kind=kind, items=tuple(items), settings=settings, source=where)  # type: ignore[arg-type]


#: What :func:`load_suite` takes besides the source and kind (scorer options aside).
LOAD_OPTIONS = ("name", "template", "target_delimiter", "fewshot", "chat_template", "system_prompt", "scorer",
                "max_new_tokens", "stop", "limit", "split", "answer_by")


def _is_count(value: Any) -> bool:
    """An int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_load_options(kind: str, **given: Any) -> None:
    """The types and ranges of :func:`load_suite`'s own options, each failing in one line."""
    from pytest_forgetting.scoring.scorers import Scorer

    for option in ("name", "system_prompt", "split"):
        if given[option] is not None and not isinstance(given[option], str):
            raise ForgettingError(f"{option}={given[option]!r}: expected a string (or leave {option} out)")
    if not isinstance(given["target_delimiter"], str):
        raise ForgettingError(f"target_delimiter={given['target_delimiter']!r}: expected a string, e.g. ' ' "
                              "(put between the context and each answer)")
    if not isinstance(given["chat_template"], bool):
        raise ForgettingError(f"chat_template={given['chat_template']!r}: expected True or False")
    if not _is_count(given["max_new_tokens"]) or given["max_new_tokens"] < 1:
        raise ForgettingError(f"max_new_tokens={given['max_new_tokens']!r}: expected a positive integer, e.g. 64")
    if given["limit"] is not None and (not _is_count(given["limit"]) or given["limit"] < 0):  # 0: "no items"
        raise ForgettingError(f"limit={given['limit']!r}: expected a positive number of items, or leave limit out "
                              "to score them all")
    fewshot = given["fewshot"]
    if not (_is_count(fewshot) or (isinstance(fewshot, (list, tuple)))):
        raise ForgettingError(f"fewshot={fewshot!r}: expected a number of first rows to use as examples, or a "
                              "list of example row dicts")
    scorer = given["scorer"]
    if scorer is not None:
        if kind != "generation":
            raise ForgettingError(f"scorer={scorer!r}: a {kind} suite has no scorer (scorers score generated "
                                  "text); use a 'generation' suite, or leave scorer out")
        if not isinstance(scorer, (str, Scorer)) and not callable(scorer):
            raise ForgettingError(f"scorer={scorer!r}: expected a scorer name such as 'exact_match', "
                                  "'evaluate:NAME', a Scorer or a function f(output, targets, **options)")
        if isinstance(scorer, str) and not scorer.strip():
            raise ForgettingError("scorer='': expected a scorer name such as 'exact_match', or leave scorer out")


def _suggest(options: Mapping[str, Any]) -> str:
    """The unknown option names, each with the closest known one when there is one."""
    import difflib

    named = []
    for name in options:
        close = difflib.get_close_matches(name, LOAD_OPTIONS, n=1)
        named.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ", ".join(named)


def check_template(template: str) -> None:
    """A template must be a format string of named fields; fail in one line otherwise."""
    import string

    if not isinstance(template, str):
        raise ForgettingError(f"template {template!r}: expected a string with {{field}} placeholders")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ForgettingError(f"template {template!r} is not a valid format string ({exc}); write a literal brace "
                              "as {{ or }}") from None
    for name in fields:
        if name == "" or name.isdigit():
            raise ForgettingError(f"template {template!r} has a positional field {{{name}}}; name the row's field, "
                                  "e.g. {question}, and write a literal brace as {{ or }}")


def _template_fields(template: str) -> list[str]:
    """The row fields a (checked) template reads: ``{question}`` and ``{row.attr}`` give ``question``, ``row``."""
    import string

    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return [re.split(r"[.\[]", name, maxsplit=1)[0] for name in names]


def _validate(row: Any, kind: str, template: str, where: str, number: int) -> Item:
    """Check one row against its schema; errors name the file, row number and problem."""
    at = f"{where}, row {number}"
    if not isinstance(row, Mapping):
        raise ForgettingError(f"{at}: expected an object with fields, got {type(row).__name__}")
    if kind == "multiple_choice" and isinstance(row.get("question"), str):
        row = {**row, "question": row["question"].strip()}  # as lm-eval's templates do
    for used in _template_fields(template) if not (kind == "text" and template == "{text}") else ():
        if used in row and row[used] is None:
            raise ForgettingError(f"{at}: field {used!r} is null, but the template {template!r} uses it; give it "
                                  "text, or drop the row")
    for key in ("id", "cluster"):
        if isinstance(row.get(key), (list, tuple, dict, set, bool)):
            raise ForgettingError(f"{at}: {key!r} must be a string or a number, got {row[key]!r}")
    try:
        # a text suite with the default template reads 'text' or 'prompt' below
        prompt = "" if kind == "text" and template == "{text}" else template.format(**row)
    except KeyError as missing:
        literal = any(c in str(missing.args[0]) for c in "\"': ,\n")
        raise ForgettingError(
            f"{at}: missing field {missing} used by the template {template!r}; the row has: "
            f"{', '.join(sorted(row)) or 'no fields'}"
            + ("; if the braces are meant literally (JSON), double them: {{ and }}" if literal else "")
        ) from None
    except (ValueError, IndexError, AttributeError) as exc:
        raise ForgettingError(f"{at}: the template {template!r} cannot be filled from this row ({exc}); write a "
                              "literal brace as {{ or }}") from None
    item_id = str(row["id"]) if row.get("id") not in (None, "") else str(number)
    cluster = None if row.get("cluster") in (None, "") else str(row["cluster"])
    if kind == "multiple_choice":
        choices = row.get("choices")
        if isinstance(choices, str) and choices.lstrip().startswith("["):  # a CSV cell
            try:
                choices = json.loads(choices)
            except ValueError:
                pass
        if not isinstance(choices, (list, tuple)) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise ForgettingError(f"{at}: 'choices' must be a list of at least two strings, got {choices!r}")
        for index, choice in enumerate(choices):
            if not choice.strip():
                raise ForgettingError(
                    f"{at}: choice {index} is empty ({choice!r}); every choice must be non-empty text, "
                    f"got {list(choices)!r}"
                )
        answer = row.get("answer")
        if isinstance(answer, str) and answer in choices:  # the text wins over a digit string
            answer = list(choices).index(answer)
        elif isinstance(answer, str) and not (answer.strip().isdecimal() and answer.strip().isascii()):
            raise ForgettingError(f"{at}: answer {answer!r} is not one of the choices {list(choices)!r}")
        elif isinstance(answer, str) or (isinstance(answer, int) and not isinstance(answer, bool)):
            answer = int(answer)
            if not 0 <= answer < len(choices):
                raise ForgettingError(f"{at}: answer index {answer} is out of range for {len(choices)} choices")
        else:
            raise ForgettingError(f"{at}: 'answer' must be a choice index or the choice text, got {answer!r}")
        return Item(id=item_id, prompt=prompt, choices=tuple(choices), answer=answer, cluster=cluster)
    if kind == "generation":
        if not isinstance(row.get("prompt"), str) and template == "{prompt}":
            raise ForgettingError(f"{at}: 'prompt' must be a string, got {row.get('prompt')!r}")
        target = row.get("target", ())
        if target is None or isinstance(target, (str, list, tuple)):
            targets = (target,) if isinstance(target, str) else tuple(target or ())
        else:
            targets = (target,)  # rejected just below, with the value shown
        if not all(isinstance(t, str) for t in targets):
            raise ForgettingError(f"{at}: 'target' must be a string or a list of strings, got {target!r}")
        if any(not t.strip() for t in targets):
            raise ForgettingError(
                f"{at}: 'target' {target!r} holds an empty string, which 'contains' and 'regex' find in every "
                "output; give non-empty text, or leave 'target' out for scorers that need none"
            )
        return Item(id=item_id, prompt=prompt, targets=targets, cluster=cluster)
    text = row.get("text", row.get("prompt")) if template == "{text}" else prompt
    if not isinstance(text, str) or not text.strip():
        raise ForgettingError(f"{at}: expected a non-empty 'text' (or 'prompt') string")
    return Item(id=item_id, prompt=prompt if template != "{text}" else text, cluster=cluster)


def _check_scorer_options(scorer: Any, options: Mapping[str, Any], items: Sequence[Item], where: str,
                          first_row: int) -> None:
    """Built-in scorers' options, and targets the ``regex`` scorer reads as patterns, before scoring."""
    from pytest_forgetting.scoring.scorers import validate_scorer_options

    name = "exact_match" if scorer is None else scorer
    try:
        validate_scorer_options(name, options)
    except ForgettingError as exc:
        raise ForgettingError(f"{where}: {exc}") from None
    if name == "regex" and options.get("pattern") is None:
        for index, item in enumerate(items):
            for target in item.targets:
                try:
                    re.compile(target)
                except re.error as exc:
                    raise ForgettingError(
                        f"{where}, row {first_row + index + 1}: target {target!r} is not a valid regular expression "
                        f"({exc}); the 'regex' scorer reads each target as a pattern"
                    ) from None


def iter_rows(suite: Suite) -> Iterable[dict[str, Any]]:
    """The suite's items as plain dicts (for reports)."""
    for item in suite.items:
        yield asdict(item)
