"""Multiple choice by the answer a model writes: ``letter_acc``, for models without prompt log-probabilities.

OpenAI's hosted chat models and llama.cpp's server return no log-probabilities of a given
prompt, so lm-eval's multiple choice (the most likely choice) cannot be computed for them.
Instead the choices are listed as ``A. ...``, ``B. ...`` after the question and the model
writes its answer greedily; the answer is the letter it writes first (``B``, ``(B)``,
``B.``), else the choice whose text its answer starts with. This is a different measurement
from ``acc`` (it also measures following the format), so it is a separately named metric,
never substituted silently: the session switches a suite to it only when a model of the
comparison cannot score log-likelihoods, says so in one line, and scores base and tuned the
same way. A suite can ask for it explicitly with ``answer_by="letter"``.
"""

from __future__ import annotations

import re
import string
import time
from dataclasses import replace
from typing import Any, Optional, Sequence

from pytest_forgetting.backends.contract import Backend
from pytest_forgetting.scoring.metrics import Metric
from pytest_forgetting.scoring.progress import Progress
from pytest_forgetting.scoring.suites import Item, Suite

LETTER_ACC = Metric("letter_acc", binary=True, unit="share of items",
                    description="accuracy when the model writes its answer after the listed choices: the letter "
                                "(A, B, ...) it writes first, else the choice its answer starts with")
#: Tokens the model may write for its answer (a letter, or a short choice).
ANSWER_TOKENS = 8
#: For chat suites, what the user message asks before the question.
CHAT_INSTRUCTION = "Answer with the letter of the correct choice."
_LETTER = re.compile(r"^\W*([A-Z])(?:$|[\W_])")


def by_letter(suite: Suite) -> Suite:
    """``suite`` scored by written answers (``letter_acc``); a different suite, cached separately."""
    return replace(suite, settings=replace(suite.settings, answer_by="letter"))


def letter_prompt(suite: Suite, item: Item) -> str:
    """The item's question with its choices listed as ``A. ...`` lines, ending in the template's answer cue."""
    listed = "\n".join(f"{string.ascii_uppercase[i]}. {choice}" for i, choice in enumerate(item.choices))
    prompt = item.prompt
    cue = "Answer:"
    body = prompt[: -len(cue)].rstrip("\n") if prompt.endswith(cue) else prompt
    return f"{body}\n{listed}\n{cue}"


def parse_answer(output: str, choices: Sequence[str]) -> Optional[int]:
    """The choice an answer names: its first letter (within the choices), else the longest choice it starts with."""
    lines = [line.strip() for line in output.strip().splitlines()]
    text = lines[0] if lines else ""  # the first line written (a model may start with a line break)
    match = _LETTER.match(text)
    if match and string.ascii_uppercase.index(match.group(1)) < len(choices):
        return string.ascii_uppercase.index(match.group(1))
    lowered = text.lower()
    starting = [i for i, choice in enumerate(choices) if choice.strip() and lowered.startswith(choice.strip().lower())]
    return max(starting, key=lambda i: len(choices[i])) if starting else None


def score_by_letter(backend: Backend, suite: Suite, *, batch_size: Optional[int] = None, label: str = "") -> Any:
    """Greedy written answers to the listed choices, scored as ``letter_acc``."""
    from pytest_forgetting.scoring.kinds import SuiteScores, _chunked

    started = time.perf_counter()
    progress = Progress(f"{suite.name} ({label or backend.name})", len(suite.items))
    prompts = [letter_prompt(suite, item) for item in suite.items]
    if suite.settings.chat_template:
        system = [{"role": "system", "content": suite.settings.system_prompt}] if suite.settings.system_prompt else []
        conversations = [[*system, {"role": "user", "content": f"{CHAT_INSTRUCTION}\n\n{p}"}] for p in prompts]
        outputs = _chunked(lambda chunk: backend.generate_chat(chunk, max_new_tokens=ANSWER_TOKENS,
                                                               batch_size=batch_size), conversations, progress)
    else:
        shots = [f"{prompt}{suite.settings.target_delimiter}{answer}" for prompt, answer in suite.settings.fewshot]
        texts = [suite.settings.fewshot_separator.join([*shots, p]) for p in prompts]
        outputs = _chunked(lambda chunk: backend.generate(chunk, max_new_tokens=ANSWER_TOKENS,
                                                          batch_size=batch_size), texts, progress)
    values, records = [], []
    for item, output in zip(suite.items, outputs):
        pred = parse_answer(output, item.choices)
        values.append(float(pred == item.answer))
        records.append({"id": item.id, "prompt": item.prompt, "choices": list(item.choices), "gold": item.answer,
                        "output": output, "pred": pred,
                        "answer": item.choices[pred] if pred is not None else output})
    return SuiteScores(suite.name, suite.kind, backend.name, {"letter_acc": values}, {"letter_acc": LETTER_ACC},
                       records, time.perf_counter() - started, "letter_acc")
