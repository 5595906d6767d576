"""Instruction following: requests with a format constraint that can be checked mechanically.

60 chat prompts, 10 for each of six constraints (``starter:instructions``, shipped with the plugin): start with
"Yes"/"No", answer with digits, a bulleted list, a JSON object, a numbered list of steps, a
reply beginning "Dear". Each row's ``target`` is the regular expression a compliant answer
matches; the built-in ``regex`` scorer reads targets as patterns, so the check for each item
lives with the item (and a changed pattern is a changed item for the result cache).

Only constraints the base model follows are used: SmolLM2-135M-Instruct ignores "one word
only", "capital letters only" and "wrap your answer in quotes" (0 of 12 each), and a
capability the base never had cannot be forgotten.
"""

from pytest_forgetting.checks import CheckSet

CHECKS = CheckSet.beside(__file__)  # example_suites/checks.toml declares the suite and tolerance


# 60 items is what a quick example run can afford for generation: the smallest detectable
# drop is about 10 points, so the tolerance is 10 points (5 would be underpowered).
@CHECKS.marker("instructions")
def test_instruction_following(forgetting):
    forgetting.run_check(CHECKS["instructions"])
