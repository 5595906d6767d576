"""The target domain, contract review: the fine-tune is meant to gain here.

Two views of it:

* reviews: 40 held-out contract reviews in the adapters' training format
  (``data/contract_reviews.jsonl``), scored by mean token negative log-likelihood. A
  fine-tune that learned the domain writes such text more readily: its NLL drops.
* clause reading: 120 multiple-choice questions about a quoted clause (which party bears an obligation, what
type of clause it is, the notice period, the governing law, what a contract term means),
from ``scripts/contract_data.py:contract_mc_items`` with a seed the adapters were not
trained on (``data/contract_review.jsonl``).

This is not a forgetting gate: it prints the change and fails only on a significant drop
beyond the tolerance (policy "significant": McNemar mid-p < alpha and a drop > 5 points). A
gain never fails it, and neither does a change too small for 120 items to resolve: under the
default non-inferiority policy a fine-tune that moves many items both ways (say +14/-12)
would fail as "not shown to be within 5 points" although it did not get worse on average.
"""

from pytest_forgetting import assert_no_forgetting, capability


# NLL in nats per token, lower is better: fails only if the tuned model finds held-out reviews
# more than 0.05 nats/token less likely than the base did (a gain never fails it).
@capability("contract review", tolerance=0.05)
def test_contract_reviews_learned(forgetting):
    suite = forgetting.suite("data/contract_reviews.jsonl", "text")
    result = forgetting.compare(suite, capability="contract review (reviews NLL)")
    print(
        f"contract reviews: NLL {result.base_score:.3f} -> {result.tuned_score:.3f} nats/token "
        f"({result.delta:+.3f}; lower on {result.gained} of {result.n} reviews)"
    )
    assert_no_forgetting(result)


@capability("contract review", tolerance=0.05, policy="significant")
def test_contract_review_not_worse(forgetting):
    suite = forgetting.suite("data/contract_review.jsonl", "multiple_choice")
    result = forgetting.compare(suite)
    print(
        f"contract review: {result.base_score:.3f} -> {result.tuned_score:.3f} "
        f"({result.delta:+.3f}; gained {result.gained} items, forgot {result.forgotten})"
    )
    assert_no_forgetting(result)   # fails only on a significant drop beyond the tolerance
