"""lm-evaluation-harness as a parity reference: zero-shot MMLU-style multiple choice.

Runs lm-eval's own ``HFLM`` (lm_eval/models/huggingface.py) directly on ``Instance`` objects
(request_type "loglikelihood"), without a registered task or YAML, so no data set is
downloaded. Items are ``{"question": str, "choices": [str, ...], "answer": int}``.

Findings from the lm-eval source (checked against lm-eval 0.4.13, transformers 5.23):

Requests (lm_eval/api/task.py, ``ConfigurableTask.construct_requests``, OUTPUT_TYPE
"multiple_choice"): one ``Instance(request_type="loglikelihood", arguments=(ctx,
f"{target_delimiter}{choice}"), idx=i)`` per choice; ``target_delimiter`` defaults to " ".
The MMLU-style "continuation" template (lm_eval/tasks/mmlu/continuation/
_continuation_template_yaml) has ``doc_to_text: "Question: {{question.strip()}}\\nAnswer:"``
and ``doc_to_choice: "{{choices}}"``; at zero shot ``ConfigurableTask.fewshot_context`` gives
description + doc_to_text (that task's per-subject description "The following are questions
(with answers) about X.\\n\\n" is left out here unless ``description=`` is passed). The stock
``mmlu`` task (lm_eval/tasks/mmlu/default/_default_template_yaml) instead lists the choices
as "A. ..." in the prompt and scores the letters; that is not what is built here.

Scores (lm_eval/api/task.py, ``ConfigurableTask.process_results``, branch
``OUTPUT_TYPE == "multiple_choice"``):
  pred      = np.argmax(lls)                                      -> acc
  pred_norm = np.argmax(lls / completion_len)                     -> acc_norm
  pred_byte = np.argmax(lls / byte_length)                        -> acc_bytes
  completion_len = np.array([float(len(i)) for i in choices])     # characters
  byte_length    = np.array([float(len(i.encode("utf-8"))) for i in choices])
where ``choices = self.doc_to_choice(doc)`` are the raw choice strings: the length is in
Python characters (code points) of the choice WITHOUT the target delimiter, although the
loglikelihood itself covers " " + choice. np.argmax takes the first index on ties.

Tokenization for causal models (lm_eval/models/huggingface.py and lm_eval/api/model.py):
- ``HFLM.__init__``: ``add_bos_token`` defaults to None; ``prefix_token_id`` defaults to None.
  ``HFLM._create_tokenizer`` passes ``add_bos_token`` to ``AutoTokenizer.from_pretrained``
  only when it is not None.
- ``HFLM.tok_encode(string, add_special_tokens=None)``: the kwargs come from
  ``lm_eval.models.utils._add_special_kwargs(add_special_tokens, self.add_bos_token)``,
  which is ``{}`` when both are None, so ``tokenizer.encode(string)`` runs with the
  TOKENIZER'S DEFAULT (transformers: add_special_tokens=True, i.e. whatever the tokenizer's
  post-processor adds, e.g. BOS for Llama-2/Gemma tokenizers, nothing for GPT-2/SmolLM2).
  It passes add_special_tokens=False only if the string already starts with
  ``tokenizer.decode(prefix_token_id)`` (``lm_eval.models.utils.has_bos_prefix``).
- ``TemplateLM._encode_pair`` (lm_eval/api/model.py): trailing whitespace of the context
  moves to the continuation; for causal models
  ``whole = tok_encode(context + continuation)``, ``context_enc = tok_encode(context)``,
  ``continuation_enc = whole[len(context_enc):]`` (so a tokenizer-added BOS sits in the
  context, and the split is by the context's own token count, not by a separate encoding
  of the continuation).
- ``TemplateLM.loglikelihood``: for an EMPTY context, ``context_enc = [prefix_token_id]`` and
  the continuation is encoded with add_special_tokens=False (unless the continuation's first
  token already equals prefix_token_id). ``HFLM.prefix_token_id`` = custom prefix_token_id,
  else ``tokenizer.bos_token_id``, else ``tokenizer.eos_token_id``. Not used by this script
  (contexts are never empty) but recorded in the output.
- ``HFLM._loglikelihood_tokens``: model input = (context_enc + continuation_enc)
  [-(max_length + 1):][:-1]; batches are right-padded with token id 0 by
  ``lm_eval.models.utils_hf.pad_and_concat`` and the model is called WITHOUT an attention
  mask (``HFLM._model_call``: ``self.model(inps).logits``); log_softmax over the vocabulary
  (in ``softmax_dtype`` if given, else the logits' dtype); ll = sum of the continuation
  tokens' log-probs; is_greedy = every continuation token is the per-position argmax.
  Requests are sorted longest-first (``Collator``) and, with ``logits_cache=True`` (default),
  requests that share context + continuation[:-1] (e.g. one-token choices) reuse one
  forward pass. Results come back in the original order.

Also here: ``fewshot_context`` (a few-shot prompt rendered by lm-eval's ``build_qa_turn``),
``contexts=`` / ``target_delimiter=`` on ``build_requests`` / ``run_lm_eval`` (given prompt
text instead of the zero-shot template; tests/test_lm_eval_parity.py) and
``run_lm_eval_generate`` (greedy ``HFLM.generate_until`` on given prompts; benchmarks/speed.py
``--generation``).

CLI:
    python benchmarks/lm_eval_reference.py --model DIR --items FILE.jsonl \\
        [--batch-size N] [--dtype float32] [--device cpu] [--out out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

TARGET_DELIMITER = " "


def build_context(question: str, *, description: str = "", strip_question: bool = True) -> str:
    """The zero-shot MMLU-continuation prompt: ``Question: {question}\\nAnswer:``.

    lm-eval's template applies ``question.strip()``; ``strip_question=False`` keeps the
    question verbatim.
    """
    text = question.strip() if strip_question else question
    return f"{description}Question: {text}\nAnswer:"


def _check_item(index: int, item: dict) -> None:
    if not isinstance(item.get("question"), str):
        raise ValueError(f"item {index}: 'question' must be a string")
    choices = item.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
        raise ValueError(f"item {index}: 'choices' must be a non-empty list of strings")
    answer = item.get("answer")
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
        raise ValueError(f"item {index}: 'answer' must be an int index into choices")


def fewshot_context(question: str, shots: Sequence[tuple[str, str]], *, description: str = "",
                    strip_question: bool = True, target_delimiter: str = TARGET_DELIMITER,
                    fewshot_delimiter: str = "\n\n") -> str:
    """The few-shot MMLU-continuation prompt, rendered by lm-eval's own code.

    ``shots`` are ``(question, answer text)`` pairs. Each turn is built by
    ``ConfigurableTask.build_qa_turn`` (lm_eval/api/task.py; it uses nothing of the task
    object) and rendered with ``Message.to_text`` as ``ConfigurableTask.fewshot_context``
    does without a chat template: ``q1{target_delimiter}a1{fewshot_delimiter}...q``.
    """
    from lm_eval.api.task import ConfigurableTask

    messages = []
    for shot_question, answer in shots:
        messages += ConfigurableTask.build_qa_turn(
            None, q=build_context(shot_question, strip_question=strip_question), a=answer,
            tgt_delim=target_delimiter, few_delim=fewshot_delimiter)
    messages += ConfigurableTask.build_qa_turn(
        None, q=build_context(question, strip_question=strip_question), tgt_delim=target_delimiter,
        few_delim="")
    return description + "".join(m.to_text() for m in messages)


def build_requests(items: list[dict], *, description: str = "", strip_question: bool = True,
                   target_delimiter: str = TARGET_DELIMITER,
                   contexts: Optional[Sequence[str]] = None) -> list[Any]:
    """One loglikelihood ``Instance`` per (item, choice), as multiple_choice builds them.

    ``contexts`` (one per item) replaces the zero-shot template with given prompt text,
    used verbatim (e.g. a few-shot context, or a template ending in whitespace).
    """
    from lm_eval.api.instance import Instance

    if contexts is not None and len(contexts) != len(items):
        raise ValueError(f"{len(contexts)} contexts for {len(items)} items")
    requests = []
    for index, item in enumerate(items):
        _check_item(index, item)
        if contexts is not None:
            context = contexts[index]
        else:
            context = build_context(item["question"], description=description,
                                    strip_question=strip_question)
        for choice_index, choice in enumerate(item["choices"]):
            requests.append(Instance(
                request_type="loglikelihood",
                doc=item,
                arguments=(context, f"{target_delimiter}{choice}"),
                idx=choice_index,
                metadata=("lm_eval_reference", index, 1),
            ))
    return requests


def score_item(lls: list[float], choices: list[str], answer: int) -> dict:
    """acc / acc_norm / acc_bytes exactly as ConfigurableTask.process_results computes them."""
    import numpy as np

    completion_len = np.array([float(len(c)) for c in choices])
    byte_length = np.array([float(len(c.encode("utf-8"))) for c in choices])
    pred = int(np.argmax(lls))
    pred_norm = int(np.argmax(lls / completion_len))
    pred_byte = int(np.argmax(lls / byte_length))
    return {
        "pred": pred,
        "pred_norm": pred_norm,
        "pred_bytes": pred_byte,
        "acc": 1.0 if pred == answer else 0.0,
        "acc_norm": 1.0 if pred_norm == answer else 0.0,
        "acc_bytes": 1.0 if pred_byte == answer else 0.0,
    }


def tokenization_facts(lm: Any) -> dict:
    """What this HFLM instance does when it tokenizes (see the comment block above)."""
    from lm_eval.models.utils import _add_special_kwargs

    tokenizer = lm.tokenizer
    probe = lm.tok_encode("Question: probe\nAnswer:")
    bos = tokenizer.bos_token_id
    return {
        "backend": lm.backend,
        "add_bos_token": lm.add_bos_token,
        "tok_encode_kwargs": _add_special_kwargs(None, lm.add_bos_token),
        "tok_encode_adds_bos": bool(bos is not None and probe and probe[0] == bos),
        "prefix_token_id": lm.prefix_token_id,
        "bos_token_id": bos,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "max_length": lm.max_length,
        "logits_cache": lm.logits_cache,
    }


def load_hflm(model_dir: str, *, batch_size: int = 1, dtype: str = "float32",
              device: str = "cpu", **hflm_kwargs: Any) -> Any:
    """lm-eval's HFLM on a local folder."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(model_dir), dtype=dtype, batch_size=batch_size, device=device,
                **hflm_kwargs)


def _ready_hflm(lm: Any, model_dir: Any, *, batch_size: Any, dtype: Any, device: Any,
                hflm_kwargs: Any) -> tuple[Any, float]:
    """``lm`` set to ``batch_size``, or a freshly loaded HFLM; with the seconds loading took."""
    if lm is not None:
        lm.batch_size_per_gpu = int(batch_size)
        return lm, 0.0
    start = time.perf_counter()
    lm = load_hflm(model_dir, batch_size=batch_size, dtype=dtype, device=device, **(hflm_kwargs or {}))
    return lm, time.perf_counter() - start


def run_lm_eval(model_dir: str, items: list[dict], *, batch_size: int = 1,
                dtype: str = "float32", device: str = "cpu", description: str = "",
                strip_question: bool = True, lm: Optional[Any] = None,
                hflm_kwargs: Optional[dict] = None, contexts: Optional[Sequence[str]] = None,
                target_delimiter: str = TARGET_DELIMITER) -> dict:
    """Score ``items`` with lm-eval's HFLM; per-item lls, is_greedy, acc, acc_norm, timing.

    ``lm`` reuses an already loaded HFLM (its batch size is set to ``batch_size``).
    ``contexts`` and ``target_delimiter``: see :func:`build_requests`.
    """
    import lm_eval
    import torch
    import transformers

    items = list(items)
    requests = build_requests(items, description=description, strip_question=strip_question,
                              target_delimiter=target_delimiter, contexts=contexts)

    lm, load_s = _ready_hflm(lm, model_dir, batch_size=batch_size, dtype=dtype, device=device,
                             hflm_kwargs=hflm_kwargs)

    start = time.perf_counter()
    responses = lm.loglikelihood(requests, disable_tqdm=True)
    wall_s = time.perf_counter() - start
    if len(responses) != len(requests):
        raise RuntimeError(f"lm-eval returned {len(responses)} results for {len(requests)} requests")

    per_item = []
    cursor = 0
    for index, item in enumerate(items):
        n = len(item["choices"])
        chunk = responses[cursor:cursor + n]
        reqs = requests[cursor:cursor + n]
        cursor += n
        lls = [float(ll) for ll, _ in chunk]
        greedy = [bool(g) for _, g in chunk]
        context = reqs[0].args[0]
        encodings = [lm._encode_pair(*r.args) for r in reqs]  # same split as the scored one
        per_item.append({
            "index": index,
            "answer": item["answer"],
            "context": context,
            "continuations": [r.args[1] for r in reqs],
            "loglikelihoods": lls,
            "is_greedy": greedy,
            "context_tokens": encodings[0][0],
            "continuation_tokens": [cont for _, cont in encodings],
            **score_item(lls, item["choices"], item["answer"]),
        })

    n_items = len(items)

    def mean(key: str) -> Optional[float]:
        return sum(r[key] for r in per_item) / n_items if n_items else None

    return {
        "lm_eval_version": getattr(lm_eval, "__version__", "unknown"),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "model_dir": str(model_dir),
        "dtype": dtype,
        "device": str(lm.device),
        "batch_size": lm.batch_size,
        "template": {
            "context": ("given per item" if contexts is not None
                        else "{description}Question: {question.strip()}\\nAnswer:"),
            "continuation": f"{target_delimiter!r} + choice",
            "description": description,
            "strip_question": strip_question,
            "acc_norm_length": "len(choice) in characters, without the target delimiter",
        },
        "tokenization": tokenization_facts(lm),
        "n_items": n_items,
        "n_requests": len(requests),
        "acc": mean("acc"),
        "acc_norm": mean("acc_norm"),
        "acc_bytes": mean("acc_bytes"),
        "load_s": load_s,
        "wall_s": wall_s,
        "items_per_s": n_items / wall_s if wall_s > 0 else None,
        "requests_per_s": len(requests) / wall_s if wall_s > 0 else None,
        "items": per_item,
    }


def build_generation_requests(prompts: Sequence[str], *, until: Sequence[str],
                              max_gen_toks: int) -> list[Any]:
    """One ``generate_until`` ``Instance`` per prompt (text used verbatim), greedy.

    ``gen_kwargs`` as a task's ``generation_kwargs`` give them: ``until`` (lm-eval adds the
    tokenizer's EOS text), ``max_gen_toks`` and ``do_sample=False`` (temperature 0).
    """
    from lm_eval.api.instance import Instance

    return [
        Instance(
            request_type="generate_until",
            doc={"prompt": prompt},
            arguments=(prompt, {"until": list(until), "max_gen_toks": int(max_gen_toks),
                                "do_sample": False}),
            idx=0,
            metadata=("lm_eval_reference", index, 1),
        )
        for index, prompt in enumerate(prompts)
    ]


def run_lm_eval_generate(model_dir: str, prompts: Sequence[str], *, until: Sequence[str] = (),
                         max_gen_toks: int = 64, batch_size: int = 1, dtype: str = "float32",
                         device: str = "cpu", lm: Optional[Any] = None,
                         hflm_kwargs: Optional[dict] = None) -> dict:
    """Greedy generations of ``prompts`` by lm-eval's ``HFLM.generate_until``, with timing.

    HFLM sorts the prompts longest first, left-pads each batch, runs transformers'
    ``model.generate`` (the model's generation config applies) until every row of the batch
    has met a stop string or EOS or ``max_gen_toks``, decodes without special tokens and
    cuts each output at its first stop string. ``lm`` reuses an already loaded HFLM (its
    batch size is set to ``batch_size``).
    """
    prompts = list(prompts)
    requests = build_generation_requests(prompts, until=until, max_gen_toks=max_gen_toks)
    lm, load_s = _ready_hflm(lm, model_dir, batch_size=batch_size, dtype=dtype, device=device,
                             hflm_kwargs=hflm_kwargs)
    start = time.perf_counter()
    outputs = lm.generate_until(requests, disable_tqdm=True)
    wall_s = time.perf_counter() - start
    if len(outputs) != len(prompts):
        raise RuntimeError(f"lm-eval returned {len(outputs)} outputs for {len(prompts)} prompts")
    return {
        "batch_size": lm.batch_size,
        "until": list(until),
        "max_gen_toks": int(max_gen_toks),
        "n_items": len(prompts),
        "load_s": load_s,
        "wall_s": wall_s,
        "items_per_s": len(prompts) / wall_s if wall_s > 0 else None,
        "outputs": [str(o) for o in outputs],
    }


def read_items(path: Path) -> list[dict]:
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not JSON: {exc}") from None
    return items


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="local Hugging Face model folder")
    parser.add_argument("--items", required=True, type=Path, help="JSONL of MMLU-style items")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--description", default="", help="text put before 'Question:'")
    parser.add_argument("--out", type=Path, help="write the full result JSON here")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    result = run_lm_eval(args.model, read_items(args.items), batch_size=args.batch_size,
                         dtype=args.dtype, device=args.device, description=args.description)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "items"}
    json.dump(summary if args.out else result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
