"""General knowledge: capitals, continents, languages, currencies, science and geography.

314 four-way multiple-choice questions scored by log-likelihood (lm-eval style: the
choice the model finds most likely is its answer). Data: ``starter:knowledge``, shipped with the plugin.

Format: lm-eval's zero-shot ``Question: ...\\nAnswer:``. Measured on the base
(SmolLM2-135M-Instruct): 0.787 this way, 0.796 with its chat template, 0.831 with the
chat template and a short system prompt. The chat forms cost 1.8-2.5x the compute per
item for at most 4 points, so the plain form is used.
"""

from pytest_forgetting.checks import CheckSet

CHECKS = CheckSet.beside(__file__)  # example_suites/checks.toml declares the suite and tolerance


# 314 items: with the discordance a gentle fine-tune shows (5-15% of items flip), the
# smallest drop this suite can detect is about 3-5 points, so a 5-point tolerance is
# decisive; 2 points (the plugin's default) would need ~1,000 items.
@CHECKS.marker("knowledge")
def test_knowledge(forgetting):
    forgetting.run_check(CHECKS["knowledge"])
