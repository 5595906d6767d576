"""The target domain, contract review: the fine-tune is meant to gain here.

Two views of it:

* reviews: 40 held-out contract reviews in the adapters' training format
  (``data/contract_reviews.jsonl``), scored by mean token negative log-likelihood. A
  fine-tune that learned the domain writes such text more readily: its NLL drops.
* clause reading: 120 multiple-choice questions about a quoted clause (which party bears an obligation, what
type of clause it is, the notice period, the governing law, what a contract term means),
from ``scripts/contract_data.py:contract_mc_items`` with a seed the adapters were not
trained on (``data/contract_review.jsonl``).

This is not a forgetting gate: both checks are declared ``target = true`` in
``checks.toml``, so they print and report the change, a drop shows as ``TARGET: DROPPED``, and
neither fails the run; the checkpoint sweep recommends by their gain. The clause-reading
verdict uses the policy "significant" (McNemar mid-p < alpha and a drop > 5 points): under
non-inferiority a fine-tune that moves many items both ways (say +14/-12) would read as "not
shown to be within 5 points" although it did not get worse on average.
"""

from pytest_forgetting.checks import CheckSet

CHECKS = CheckSet.beside(__file__)  # both declared there with target = true


# NLL in nats per token, lower is better. A target: the gain is what the fine-tune is for, and
# a drop is reported (TARGET: DROPPED) but never fails the run.
@CHECKS.marker("contract review (reviews NLL)")
def test_contract_reviews_learned(forgetting):
    result = forgetting.run_check(CHECKS["contract review (reviews NLL)"])
    print(
        f"contract reviews: NLL {result.base_score:.3f} -> {result.tuned_score:.3f} nats/token "
        f"({result.delta:+.3f}; lower on {result.gained} of {result.n} reviews)"
    )


@CHECKS.marker("contract review")
def test_contract_review_not_worse(forgetting):
    result = forgetting.run_check(CHECKS["contract review"])
    print(
        f"contract review: {result.base_score:.3f} -> {result.tuned_score:.3f} "
        f"({result.delta:+.3f}; gained {result.gained} items, forgot {result.forgotten})"
    )
