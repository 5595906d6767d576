"""Language: antonyms and grammatical minimal pairs (multiple choice, log-likelihood).

``starter:language`` (shipped with the plugin) holds both kinds under one template (``{question}``):

* ``antonym-*`` (114): ``The opposite of "hot" is`` followed by one of four quoted words;
  one distractor is a near-synonym ("warm"), so the most associated word is not enough.
* ``grammar-*`` (160): a grammatical and an ungrammatical sentence that differ in one place
  (agreement, irregular past, participles, plurals, pronoun case, comparatives). The
  question is empty, so each sentence is scored on its own (its total log-likelihood, as
  in BLiMP) and the grammatical one should be the more likely.
"""

from pytest_forgetting.checks import CheckSet

CHECKS = CheckSet.beside(__file__)  # example_suites/checks.toml declares the suite and tolerance


# 274 items together (antonyms alone, 114, could not resolve a 5-point drop).
@CHECKS.marker("language")
def test_language(forgetting):
    forgetting.run_check(CHECKS["language"])
