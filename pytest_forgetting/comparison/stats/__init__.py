"""Paired statistics for comparing a tuned model with its base on the same items.

Pure numerics (numpy and scipy only). Conventions used throughout:

* ``delta = mean(tuned - base)``. For accuracy-like metrics a negative delta is a drop.
* Intervals are two-sided ``1 - 2*alpha`` intervals, so ``ci_low`` is also the one-sided
  ``1 - alpha`` lower bound (and ``ci_high`` the upper one): the bound a release gate with
  one-sided level ``alpha`` compares against its tolerance.
* ``worst_case_drop`` is the one-sided ``1 - alpha`` bound of the drop in the "worse"
  direction, positive meaning worse. A capability is non-inferior with tolerance ``t`` iff
  ``worst_case_drop < t``.

Sources: paired and clustered standard errors from Miller (2024), "Adding Error Bars to
Evals"; one-sided McNemar mid-p from Fagerland, Lydersen & Laake (2013), "The McNemar test
for binary matched-pairs data: mid-p and asymptotic are better than exact conditional", BMC
Med. Res. Methodol. 13:91; the score interval for a difference of paired proportions from
Tango (1998), Stat. Med. 17:891-908; the paired bootstrap from Koehn (2004), "Statistical
significance tests for machine translation evaluation", EMNLP; Holm (1979), Scand. J.
Statist. 6:65-70; Benjamini & Hochberg (1995), J. R. Statist. Soc. B 57:289-300.

Modules: :mod:`._common` (thresholds, input validation), :mod:`.binary` (0/1 correctness:
McNemar, Tango and Wald intervals, clustered SEs), :mod:`.continuous` (paired and cluster
bootstrap), :mod:`.multiplicity` (Holm, Benjamini-Hochberg) and :mod:`.power` (items
needed, minimum detectable drop). Every name is re-exported here, so
``from pytest_forgetting.comparison.stats import paired_binary`` keeps working.
"""

from __future__ import annotations

from pytest_forgetting.comparison.stats._common import (
    _BOOTSTRAP_CHUNK_ELEMENTS,
    MDE_POWER,
    WALD_MIN_DISCORDANT,
    WALD_MIN_ITEMS,
    _as_vector,
    _check_alpha,
    _paired_vectors,
)
from pytest_forgetting.comparison.stats.binary import (
    PairedBinary,
    _cluster_index,
    _clustered_se,
    _tango_restricted_pb,
    non_inferior,
    paired_binary,
    paired_se,
    significant_regression,
    tango_interval,
    tango_score,
)
from pytest_forgetting.comparison.stats.continuous import (
    PairedContinuous,
    non_inferior_continuous,
    paired_bootstrap,
)
from pytest_forgetting.comparison.stats.multiplicity import (
    _check_p_values,
    benjamini_hochberg,
    holm,
)
from pytest_forgetting.comparison.stats.power import (
    _z_levels,
    items_needed,
    minimum_detectable_drop,
)

# Private names (``_check_alpha``, ``_tango_restricted_pb``, ``_BOOTSTRAP_CHUNK_ELEMENTS``, ...)
# are imported above too, so ``stats._name`` still resolves as it did on the single module;
# ``__all__`` lists only the public ones, which ``import *`` took before.
__all__ = [
    "MDE_POWER",
    "WALD_MIN_DISCORDANT",
    "WALD_MIN_ITEMS",
    "PairedBinary",
    "PairedContinuous",
    "benjamini_hochberg",
    "holm",
    "items_needed",
    "minimum_detectable_drop",
    "non_inferior",
    "non_inferior_continuous",
    "paired_binary",
    "paired_bootstrap",
    "paired_se",
    "significant_regression",
    "tango_interval",
    "tango_score",
]
