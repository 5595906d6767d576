"""General writing (emails, notes, short summaries): no legal register, little drift.

The example adapters were fine-tuned on contract reviews; the aggressive one answers
"Write a short email ..." with "WHEREAS ... the parties HEREBY agree". Two checks on the
same 40 prompts (``data/writing.jsonl``), answered in the chat template:

* style leak: the ``no_forbidden`` scorer gives 1 to an output that contains none of the
  legal markers below (case-sensitive), 0 otherwise. The base writes none of them.
* KL drift: label-free, KL(base || tuned) per token of the tuned model's answer (both
  models reading the prompt and that answer), averaged per prompt; it fails when the upper
  bound of the mean exceeds ``max_kl``.
"""

from pytest_forgetting import assert_no_drift, capability

LEGAL_MARKERS = ["WHEREAS", "HEREBY", "NOW, THEREFORE", "hereinafter", "indemnif", "the Parties"]

# Threshold for the KL drift check, in nats per token (see the data README for the numbers):
# a zero LoRA drifts 0 exactly and the careful adapter (low rank, low learning rate,
# rehearsal) 0.008 and the aggressive adapter 6.16 (measured; see data/README.md).
MAX_KL = 0.5


def writing_suite(forgetting):
    return forgetting.suite(
        "data/writing.jsonl", "generation",
        chat_template=True,
        scorer="no_forbidden", phrases=LEGAL_MARKERS,
        max_new_tokens=32,       # a greeting and a sentence: where the register shows
    )


# 40 prompts: a 10-point tolerance (4 leaking outputs more than the base) is what 40 items
# can resolve; the base leaks in none, so a style-leaking fine-tune fails by a wide margin.
@capability("writing", tolerance=0.10)
def test_no_legal_style_in_everyday_writing(forgetting):
    forgetting.check(writing_suite(forgetting))


@capability("writing")
def test_writing_drift(forgetting):
    result = forgetting.drift(writing_suite(forgetting), max_kl=MAX_KL, capability="writing (KL drift)")
    assert_no_drift(result)
