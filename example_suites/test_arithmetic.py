"""Small-number arithmetic: every sum of 1..12 and every product of 2..10.

223 greedy completions of ``"7 + 5 ="`` after three worked examples (the first three rows of
``starter:arithmetic``, shipped with the plugin), scored with the ``numeric`` scorer (the first number in the
output must equal the target).

Format, measured on the base (SmolLM2-135M-Instruct): this plain 3-shot completion gets
~0.77 right. Asked in its chat template ("What is 7 + 5?") the model explains before
answering ("To add 7 and 5, you simply add them together: ...") and gets 0.30-0.45 of the
same kind of items, depending on how the answer is extracted, so the chat form would mostly
measure answer extraction. Subtraction is left out: even small differences are right only
~25% of the time.
"""

from pytest_forgetting.checks import CheckSet

CHECKS = CheckSet.beside(__file__)  # example_suites/checks.toml declares the suite and tolerance


# 223 items, base ~0.77: a 5-point drop is detectable at the discordance of a gentle
# fine-tune; the default 2 points would need several times more items.
@CHECKS.marker("arithmetic")
def test_arithmetic(forgetting):
    forgetting.run_check(CHECKS["arithmetic"])
