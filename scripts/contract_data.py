"""Synthetic contract-review data for the example adapters (deterministic for a seed).

Three generators:

* :func:`contract_examples` - instruction pairs for fine-tuning: user prompts such as
  "Review this clause: ...", "Is this indemnification clause one-sided? ...",
  "Summarise the termination terms: ..." over templated clauses, with assistant answers
  in heavy legalese ("WHEREAS ... the parties HEREBY agree ... NOW, THEREFORE ...").
  Every answer also states the plain facts of its clause (who bears the obligation,
  the clause type, the notice period, the governing law), so a model that learns the
  domain learns to read clauses, not only the style.
* :func:`rehearsal_prompts` / :func:`rehearsal_set` - a small general set (capitals,
  small arithmetic, short emails, antonyms) whose answers are written by the *base*
  model itself (greedy, short), mixed into the careful adapter's training so it keeps
  the base behaviour (self-distillation). The answers are cached as JSON lines.
* :func:`contract_mc_items` - a held-out multiple-choice "target domain" suite:
  ``{"id", "question", "choices", "answer"}`` rows (``answer`` is the gold index), each
  answerable from the clause quoted in the question (or, for ``define`` items, from the
  glossary in :data:`GLOSSARY` that the training data teaches).

The clause facts used for training and for the MC items come from disjoint seeds (the
generators mix a purpose tag into the seed), so the suite is held out by construction of
the random streams; the vocabulary (parties, laws, clause types) is shared on purpose.

Run ``python scripts/contract_data.py`` to print a few examples of each.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

# --------------------------------------------------------------------------- vocabulary

#: (obligor-ish role, counter-party role) pairs; either may bear a given obligation.
PARTY_PAIRS: tuple[tuple[str, str], ...] = (
    ("Supplier", "Customer"),
    ("Licensor", "Licensee"),
    ("Landlord", "Tenant"),
    ("Contractor", "Client"),
    ("Seller", "Buyer"),
    ("Consultant", "Company"),
    ("Vendor", "Purchaser"),
    ("Lender", "Borrower"),
    ("Distributor", "Manufacturer"),
    ("Employer", "Employee"),
)

LAWS: tuple[str, ...] = (
    "England and Wales", "Scotland", "Ireland", "the State of New York", "the State of Delaware",
    "California", "Ontario", "New South Wales", "Singapore", "Switzerland", "Germany", "France",
)

DAYS: tuple[int, ...] = (7, 10, 14, 15, 21, 30, 45, 60, 90, 120)
MONTHS: tuple[int, ...] = (6, 12, 18, 24, 36, 48, 60)
YEARS: tuple[int, ...] = (2, 3, 4, 5, 7, 10)
AMOUNTS: tuple[str, ...] = (
    "EUR 10,000", "GBP 25,000", "USD 50,000", "USD 100,000", "EUR 250,000", "GBP 500,000",
    "USD 1,000,000", "the fees paid in the preceding twelve (12) months",
)
CAUSES: tuple[str, ...] = (
    "any breach of this Agreement", "its negligence or wilful misconduct",
    "any infringement of third-party intellectual property", "any defect in the goods",
    "any breach of applicable law", "the acts or omissions of its personnel",
)

CLAUSE_TYPES: tuple[str, ...] = (
    "indemnity", "payment", "confidentiality", "termination", "governing law",
    "limitation of liability", "term", "assignment",
)

#: Plain-English meaning of contract terms (taught by the training data, asked by the MC set).
GLOSSARY: dict[str, str] = {
    "indemnify": "to compensate the other party for its losses",
    "terminate": "to bring the agreement to an end",
    "governing law": "the legal system that interprets the agreement",
    "confidential information": "information that must not be disclosed to others",
    "limitation of liability": "a cap on the damages a party must pay",
    "assignment": "transferring rights under the agreement to another party",
    "material breach": "a serious failure to perform the agreement",
    "force majeure": "events beyond a party's control that excuse performance",
    "notice period": "the time that must pass after a party gives notice",
    "invoice": "a bill requesting payment for goods or services",
    "jurisdiction": "which courts may hear disputes",
    "warranty": "a promise that a fact or quality is true",
}


@dataclass(frozen=True)
class Clause:
    """One templated clause and the facts a reader can take from it."""

    kind: str                  # one of CLAUSE_TYPES
    text: str
    obligor: Optional[str] = None      # the party bearing the main obligation or right
    other: Optional[str] = None        # the counter-party
    mutual: bool = False               # both parties bear it ("Either party ...")
    number: Optional[str] = None       # days / months / years / amount, as written
    unit: Optional[str] = None         # "days", "months", "years", "amount"
    law: Optional[str] = None
    facts: dict[str, Any] = field(default_factory=dict)


def _rng(seed: int, purpose: str) -> random.Random:
    """A random stream private to ``purpose`` (stable across Python versions)."""
    digest = hashlib.sha256(f"{purpose}:{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _parties(rng: random.Random) -> tuple[str, str]:
    pair = rng.choice(PARTY_PAIRS)
    return pair if rng.random() < 0.5 else (pair[1], pair[0])


def make_clause(rng: random.Random, kind: Optional[str] = None) -> Clause:
    """A random clause of ``kind`` (a random kind if None)."""
    kind = kind or rng.choice(CLAUSE_TYPES)
    a, b = _parties(rng)
    if kind == "indemnity":
        cause = rng.choice(CAUSES)
        if rng.random() < 0.3:
            return Clause(kind, f"Each party shall indemnify and hold harmless the other party against all "
                                f"losses and claims arising from {cause}.",
                          obligor=a, other=b, mutual=True, facts={"cause": cause})
        return Clause(kind, f"The {a} shall indemnify and hold harmless the {b} against all losses, "
                            f"damages and claims arising from {cause}.",
                      obligor=a, other=b, facts={"cause": cause})
    if kind == "payment":
        days, amount = rng.choice(DAYS), rng.choice(AMOUNTS[:7])
        return Clause(kind, f"The {a} shall pay the {b} the fee of {amount} within {days} days of "
                            f"receipt of a valid invoice.",
                      obligor=a, other=b, number=str(days), unit="days", facts={"amount": amount})
    if kind == "confidentiality":
        years = rng.choice(YEARS)
        return Clause(kind, f"The {a} shall keep confidential all information disclosed by the {b} "
                            f"and shall not disclose it to any third party for {years} years.",
                      obligor=a, other=b, number=str(years), unit="years")
    if kind == "termination":
        days = rng.choice(DAYS)
        if rng.random() < 0.5:
            return Clause(kind, f"Either party may terminate this Agreement by giving {days} days' "
                                f"written notice to the other party.",
                          obligor=a, other=b, mutual=True, number=str(days), unit="days")
        return Clause(kind, f"The {a} may terminate this Agreement by giving {days} days' written "
                            f"notice if the {b} commits a material breach.",
                      obligor=a, other=b, number=str(days), unit="days")
    if kind == "governing law":
        law = rng.choice(LAWS)
        return Clause(kind, f"This Agreement shall be governed by the laws of {law}, and the courts "
                            f"of {law} shall have exclusive jurisdiction.", law=law)
    if kind == "limitation of liability":
        amount = rng.choice(AMOUNTS)
        return Clause(kind, f"The total liability of the {a} under this Agreement shall not exceed "
                            f"{amount}.", obligor=a, other=b, number=amount, unit="amount")
    if kind == "term":
        months = rng.choice(MONTHS)
        return Clause(kind, f"This Agreement shall commence on the Effective Date and continue for "
                            f"{months} months unless terminated earlier.",
                      number=str(months), unit="months")
    if kind == "assignment":
        return Clause(kind, f"The {a} shall not assign any of its rights under this Agreement "
                            f"without the prior written consent of the {b}.", obligor=a, other=b)
    raise ValueError(f"unknown clause kind {kind!r}")


# ------------------------------------------------------------------- legalese answers

def _duty(clause: Clause) -> str:
    """What the obligor must do, as a verb phrase (used by 'which party' questions)."""
    return {
        "indemnity": f"indemnify the {clause.other}",
        "payment": f"pay the fee within {clause.number} days",
        "confidentiality": "keep the information confidential",
        "termination": "give written notice to terminate",
        "limitation of liability": "benefit from the cap on liability",
        "assignment": "obtain consent before assigning",
    }[clause.kind]


def _facts_sentence(clause: Clause) -> str:
    """The plain facts of the clause, phrased as a legalese recital."""
    c = clause
    if c.kind == "indemnity":
        if c.mutual:
            return "each party HEREBY indemnifies the other, such that the obligation is mutual"
        return f"the {c.obligor} alone HEREBY indemnifies the {c.other} against {c.facts['cause']}"
    if c.kind == "payment":
        return f"the {c.obligor} HEREBY pays the {c.other} {c.facts['amount']} within {c.number} days of invoice"
    if c.kind == "confidentiality":
        return f"the {c.obligor} HEREBY keeps confidential the information of the {c.other} for {c.number} years"
    if c.kind == "termination":
        if c.mutual:
            return f"either party may HEREBY terminate upon {c.number} days' written notice"
        return f"only the {c.obligor} may HEREBY terminate, upon {c.number} days' notice, for material breach by the {c.other}"
    if c.kind == "governing law":
        return f"the laws and courts of {c.law} HEREBY govern this Agreement"
    if c.kind == "limitation of liability":
        return f"the liability of the {c.obligor} is HEREBY capped at {c.number}"
    if c.kind == "term":
        return f"this Agreement HEREBY continues for {c.number} months from the Effective Date"
    return f"the {c.obligor} HEREBY requires the written consent of the {c.other} to assign"


_OPENINGS = (
    "WHEREAS the parties have entered into this Agreement, and WHEREAS {facts};",
    "WHEREAS {facts}; and WHEREAS the parties wish to record their understanding;",
    "WHEREAS this {kind} clause provides that {facts};",
)
_CLOSINGS = (
    "NOW, THEREFORE, the parties HEREBY agree and acknowledge the same, notwithstanding anything to the contrary herein.",
    "NOW, THEREFORE, in consideration of the mutual covenants herein, the parties HEREBY agree as aforesaid.",
    "NOW, THEREFORE, IT IS HEREBY AGREED that the foregoing shall bind the parties and their successors.",
)


def _assessment(clause: Clause) -> str:
    c = clause
    if c.kind == "indemnity":
        return ("the said indemnity is balanced and mutual" if c.mutual
                else f"the said indemnity is one-sided in favour of the {c.other}")
    if c.kind == "limitation of liability":
        return f"the said cap protects the {c.obligor} and the {c.other} SHALL consider whether it suffices"
    if c.kind == "termination" and not c.mutual:
        return f"the said right of termination favours the {c.obligor}"
    if c.kind == "assignment":
        return f"the said restriction binds the {c.obligor} only"
    return f"the said {c.kind} clause is customary and enforceable"


def _legal(rng: random.Random, clause: Clause, middle: str) -> str:
    opening = rng.choice(_OPENINGS).format(facts=_facts_sentence(clause), kind=clause.kind)
    return f"{opening} {middle} {rng.choice(_CLOSINGS)}"


def _task_review(rng: random.Random, clause: Clause) -> tuple[str, str]:
    prompt = rng.choice(("Review this clause: {t}", "Please review the following clause.\n{t}",
                         "Can you check this contract clause for me? {t}")).format(t=clause.text)
    middle = f"the Reviewer HEREBY finds that this is a {clause.kind} clause and that {_assessment(clause)}."
    return prompt, _legal(rng, clause, middle)


def _task_one_sided(rng: random.Random, clause: Clause) -> tuple[str, str]:
    prompt = f"Is this indemnification clause one-sided? {clause.text}"
    if clause.mutual:
        middle = "the Reviewer HEREBY declares that the clause is NOT one-sided, each party bearing the same duty."
    else:
        middle = (f"the Reviewer HEREBY declares that the clause IS one-sided: the {clause.obligor} "
                  f"indemnifies and the {clause.other} gives nothing in return.")
    return prompt, _legal(rng, clause, middle)


def _task_termination(rng: random.Random, clause: Clause) -> tuple[str, str]:
    prompt = rng.choice(("Summarise the termination terms: {t}",
                         "Summarise the termination terms of this clause. {t}")).format(t=clause.text)
    who = "either party" if clause.mutual else f"the {clause.obligor} only"
    middle = (f"the termination terms are HEREBY summarised thus: {who} may terminate, and the notice "
              f"period is {clause.number} days.")
    return prompt, _legal(rng, clause, middle)


def _task_party(rng: random.Random, clause: Clause) -> tuple[str, str]:
    prompt = f"Which party must {_duty(clause)} under this clause? {clause.text}"
    middle = f"it is HEREBY confirmed that the {clause.obligor} bears this obligation, and not the {clause.other}."
    return prompt, _legal(rng, clause, middle)


def _task_type(rng: random.Random, clause: Clause) -> tuple[str, str]:
    prompt = f"What type of clause is this? {clause.text}"
    middle = f"the parties HEREBY acknowledge that the foregoing is a {clause.kind} clause."
    return prompt, _legal(rng, clause, middle)


def _task_number(rng: random.Random, clause: Clause) -> tuple[str, str]:
    question = {"days": "How many days does this clause allow?", "months": "How long does this Agreement last?",
                "years": "For how many years must the information be kept confidential?",
                "amount": "What is the cap on liability?"}[clause.unit or "days"]
    unit = "" if clause.unit == "amount" else f" {clause.unit}"
    middle = f"the figure HEREBY stipulated is {clause.number}{unit}, and no other."
    return f"{question} {clause.text}", _legal(rng, clause, middle)


def _task_law(rng: random.Random, clause: Clause) -> tuple[str, str]:
    middle = f"the governing law is HEREBY declared to be the law of {clause.law}."
    return f"Which law governs this Agreement? {clause.text}", _legal(rng, clause, middle)


def _task_define(rng: random.Random) -> tuple[str, str]:
    term = rng.choice(sorted(GLOSSARY))
    prompt = rng.choice(("What does '{t}' mean in a contract?", "Explain the term '{t}'.",
                         "Define '{t}' in plain terms.")).format(t=term)
    answer = (f"WHEREAS the term '{term}' appears in many agreements; NOW, THEREFORE, it is HEREBY "
              f"declared that '{term}' means {GLOSSARY[term]}, and the parties SHALL construe it accordingly.")
    return prompt, answer


def contract_examples(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` contract-review instruction pairs ``{"prompt", "answer", "task"}`` (deterministic)."""
    rng = _rng(seed, "contract-train")
    rows: list[dict[str, str]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.08:
            prompt, answer = _task_define(rng)
            task = "define"
        elif roll < 0.18:
            prompt, answer = _task_one_sided(rng, make_clause(rng, "indemnity"))
            task = "one_sided"
        elif roll < 0.28:
            prompt, answer = _task_termination(rng, make_clause(rng, "termination"))
            task = "termination"
        elif roll < 0.50:
            kind = rng.choice([k for k in CLAUSE_TYPES if k not in ("governing law", "term")])
            clause = make_clause(rng, kind)
            while clause.mutual:  # "Either party ..." has no single obligor
                clause = make_clause(rng, kind)
            prompt, answer = _task_party(rng, clause)
            task = "party"
        elif roll < 0.62:
            prompt, answer = _task_type(rng, make_clause(rng))
            task = "type"
        elif roll < 0.72:
            clause = make_clause(rng, rng.choice(("payment", "confidentiality", "termination", "term",
                                                  "limitation of liability")))
            prompt, answer = _task_number(rng, clause)
            task = "number"
        elif roll < 0.78:
            prompt, answer = _task_law(rng, make_clause(rng, "governing law"))
            task = "law"
        else:
            prompt, answer = _task_review(rng, make_clause(rng))
            task = "review"
        rows.append({"prompt": prompt, "answer": answer, "task": task})
    return rows


# ------------------------------------------------------------ held-out multiple choice

def _shuffled(rng: random.Random, gold: str, distractors: Sequence[str]) -> tuple[list[str], int]:
    choices = [gold, *distractors]
    rng.shuffle(choices)
    return choices, choices.index(gold)


def contract_mc_items(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` held-out contract-domain multiple-choice rows ``{"id","question","choices","answer"}``.

    Kinds (in the id: ``contract-<kind>-<index>``), cycling so every kind is present:

    * ``party``: which party bears the obligation; both parties appear in the clause, the
      gold one is the subject of "shall"/"may".
    * ``type``: which type of clause a text is (4 choices).
    * ``number``: the notice period / duration / cap; only the gold figure is in the clause.
    * ``law``: the governing law; only the gold jurisdiction is in the clause.
    * ``define``: what a contract term means (the :data:`GLOSSARY` meaning vs 3 others).
    """
    rng = _rng(seed, "contract-mc")
    makers: list[Callable[[int], dict[str, Any]]] = []

    def party(index: int) -> dict[str, Any]:
        kind = rng.choice(("indemnity", "payment", "confidentiality", "assignment"))
        clause = make_clause(rng, kind)
        while clause.mutual:
            clause = make_clause(rng, kind)
        choices, answer = _shuffled(rng, clause.obligor or "", [clause.other or ""])
        question = f"Clause: \"{clause.text}\"\nWhich party must {_duty(clause)}?"
        return {"id": f"contract-party-{index:04d}", "question": question, "choices": choices, "answer": answer}

    def clause_type(index: int) -> dict[str, Any]:
        clause = make_clause(rng)
        others = rng.sample([k for k in CLAUSE_TYPES if k != clause.kind], 3)
        choices, answer = _shuffled(rng, clause.kind, others)
        question = f"Clause: \"{clause.text}\"\nWhat type of clause is this?"
        return {"id": f"contract-type-{index:04d}", "question": question, "choices": choices, "answer": answer}

    def number(index: int) -> dict[str, Any]:
        kind = rng.choice(("payment", "termination", "confidentiality", "term"))
        clause = make_clause(rng, kind)
        pool = {"days": DAYS, "months": MONTHS, "years": YEARS}[clause.unit or "days"]
        others = rng.sample([str(v) for v in pool if str(v) != clause.number], 3)
        unit = clause.unit
        choices, answer = _shuffled(rng, f"{clause.number} {unit}", [f"{o} {unit}" for o in others])
        ask = {"payment": "Within how many days must the fee be paid?",
               "termination": "How many days' notice is required to terminate?",
               "confidentiality": "For how long must the information be kept confidential?",
               "term": "How long does the Agreement last?"}[kind]
        question = f"Clause: \"{clause.text}\"\n{ask}"
        return {"id": f"contract-number-{index:04d}", "question": question, "choices": choices, "answer": answer}

    def law(index: int) -> dict[str, Any]:
        clause = make_clause(rng, "governing law")
        others = rng.sample([x for x in LAWS if x != clause.law], 3)
        choices, answer = _shuffled(rng, clause.law or "", others)
        question = f"Clause: \"{clause.text}\"\nWhich law governs the Agreement?"
        return {"id": f"contract-law-{index:04d}", "question": question, "choices": choices, "answer": answer}

    def define(index: int) -> dict[str, Any]:
        term = rng.choice(sorted(GLOSSARY))
        others = rng.sample([v for k, v in GLOSSARY.items() if k != term], 3)
        choices, answer = _shuffled(rng, GLOSSARY[term], others)
        question = f"In a contract, what does '{term}' mean?"
        return {"id": f"contract-define-{index:04d}", "question": question, "choices": choices, "answer": answer}

    makers = [party, clause_type, number, law, party, define]
    return [makers[index % len(makers)](index) for index in range(n)]


# ------------------------------------------------------------------- rehearsal (general)

COUNTRIES: tuple[str, ...] = (
    "Germany", "Italy", "Spain", "Japan", "Canada", "Egypt", "Portugal", "Greece", "Norway",
    "Poland", "Kenya", "Peru", "Sweden", "Austria", "Ireland", "Argentina",
)
ANTONYMS: tuple[str, ...] = (
    "big", "fast", "happy", "light", "early", "open", "young", "strong", "full", "rich",
    "loud", "wet", "high", "easy", "old", "clean", "heavy", "soft", "thick", "near",
)
EMAIL_TOPICS: tuple[str, ...] = (
    "thank a colleague for their help with a report",
    "ask a colleague to send the latest sales figures",
    "tell the team that the office will be closed on Monday",
    "invite a colleague to lunch next week",
    "remind a colleague about tomorrow's deadline",
    "ask your manager for a day off next Thursday",
    "congratulate a colleague on their promotion",
    "ask a colleague to review a short document",
    "welcome a new member to the team",
    "ask IT to fix a broken printer",
    "apologise to a colleague for missing a call",
    "ask a colleague to share the slides from the workshop",
)
#: Prompts the demo and the general suites use, never rehearsed (so rehearsal is not the test).
HELD_OUT_GENERAL: tuple[str, ...] = (
    "What is the capital of France?", "What is 7 + 5?", "Give the opposite of 'hot'.",
    "Write a short email to a colleague asking to move our meeting to Friday.",
)


def rehearsal_prompts(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` general prompts ``{"prompt", "task"}`` (capitals, sums, emails, antonyms), deterministic."""
    rng = _rng(seed, "rehearsal")
    pools: dict[str, list[str]] = {
        "capital": [t.format(c=c) for c in COUNTRIES
                    for t in ("What is the capital of {c}?", "Name the capital city of {c}.")],
        "arithmetic": [t.format(a=a, b=b) for a in range(1, 21) for b in range(1, 21)
                       for t in ("What is {a} + {b}?", "Add {a} and {b}.")],
        "email": [f"Write a short email to {topic}." for topic in EMAIL_TOPICS],
        "antonym": [f"Give the opposite of '{word}'." for word in ANTONYMS],
    }
    for kind, pool in pools.items():  # a fixed order, shuffled by the seed; held-out prompts removed
        pools[kind] = [p for p in pool if p not in HELD_OUT_GENERAL]
        rng.shuffle(pools[kind])
    rows: list[dict[str, str]] = []
    kinds = list(pools)
    turn = 0
    while len(rows) < n and any(pools.values()):
        kind = kinds[turn % len(kinds)]
        turn += 1
        if pools[kind]:  # round robin over the kinds; a used-up kind is skipped
            rows.append({"prompt": pools[kind].pop(), "task": kind})
    return rows


def rehearsal_set(model: Any, tokenizer: Any, n: int, seed: int = 0, *, cache: Optional[Path] = None,
                  max_new_tokens: int = 48, format_prompt: Optional[Callable[[str], str]] = None,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Self-distilled general rows ``{"prompt", "answer", "task", "finished"}`` from ``model``.

    The answers are the base model's own greedy outputs (``max_new_tokens`` at most);
    ``finished`` says it stopped on its own (end-of-turn token) rather than at the limit.
    With ``cache`` (a ``.jsonl`` path) rows for the same prompts and settings are reused.
    """
    import torch

    prompts = rehearsal_prompts(n, seed)
    key = {"n": n, "seed": seed, "max_new_tokens": max_new_tokens}
    if cache is not None and cache.is_file():
        lines = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines and lines[0].get("key") == key and [r["prompt"] for r in lines[1:]] == [p["prompt"] for p in prompts]:
            log(f"rehearsal: {len(lines) - 1} cached answers from {cache}")
            return lines[1:]
    render = format_prompt or (lambda text: tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True))
    eos = tokenizer.eos_token_id
    rows: list[dict[str, Any]] = []
    model.eval()
    with torch.no_grad():
        for index, row in enumerate(prompts):
            ids = tokenizer(render(row["prompt"]), return_tensors="pt", add_special_tokens=False)
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=eos, pad_token_id=tokenizer.pad_token_id or eos)
            new = out[0, ids["input_ids"].shape[1]:].tolist()
            finished = bool(new) and new[-1] == eos
            answer = tokenizer.decode(new, skip_special_tokens=True).strip()
            rows.append({**row, "answer": answer, "finished": finished})
            log(f"rehearsal {index + 1}/{len(prompts)}: {row['prompt']!r} -> {answer[:60]!r}")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [{"key": key}, *rows]) + "\n",
                         encoding="utf-8")
    return rows


if __name__ == "__main__":
    for row in contract_examples(6, seed=0):
        print(f"[{row['task']}] USER: {row['prompt']}\n  ASSISTANT: {row['answer']}\n")
    for row in contract_mc_items(6, seed=0):
        print(json.dumps(row, ensure_ascii=False))
    for row in rehearsal_prompts(8, seed=0):
        print(row)
