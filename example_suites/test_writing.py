"""General writing (emails, notes, short summaries): no legal register, little drift.

The example adapters were fine-tuned on contract reviews; the aggressive one answers
"Write a short email ..." with "WHEREAS ... the parties HEREBY agree". Two checks on the
same 40 prompts (``starter:writing``, shipped with the plugin), answered in the chat template:

* style leak: the ``no_forbidden`` scorer gives 1 to an output that contains none of the
  legal markers below (case-sensitive), 0 otherwise. The base writes none of them.
* KL drift: label-free, KL(base || tuned) per token of the tuned model's answer (both
  models reading the prompt and that answer), averaged per prompt; it fails when the upper
  bound of the mean exceeds ``max_kl``.
"""

from pytest_forgetting import capability
from pytest_forgetting.checks import CheckSet

# example_suites/checks.toml declares both checks: the writing suite (40 chat prompts, 32 new
# tokens: a greeting and a sentence, where the register shows) with the no_forbidden scorer on
# the legal markers WHEREAS, HEREBY, NOW, THEREFORE, hereinafter, indemnif, the Parties.
CHECKS = CheckSet.beside(__file__)


# 40 prompts: a 10-point tolerance (4 leaking outputs more than the base) is what 40 items
# can resolve; the base leaks in none, so a style-leaking fine-tune fails by a wide margin.
@CHECKS.marker("writing")
def test_no_legal_style_in_everyday_writing(forgetting):
    forgetting.run_check(CHECKS["writing"])


# max_kl 0.5 nats per token (see the data README for the numbers): a zero LoRA drifts 0 exactly,
# the careful adapter (low rank, low learning rate, rehearsal) 0.008 and the aggressive one 6.16.
@capability("writing")
def test_writing_drift(forgetting):
    forgetting.run_check(CHECKS["writing/drift"])
