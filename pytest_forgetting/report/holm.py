"""Holm's correction across a session's "significant" results, and the failures only it finds."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_forgetting.report.junit import junit_values


def apply_holm(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holm's step-down correction across the session's results decided under "significant".

    Adds ``p_holm`` (the Holm-adjusted p-value) and ``holm_verdict`` to each of them: "fail"
    when the adjusted p is below alpha and the drop exceeds the tolerance. The family has
    as many hypotheses as the larger of these results and the tests' per-test Bonferroni
    family (``family_size``), so Holm is never less strict than the per-test decision.
    Returns the results that only Holm fails (their per-test verdict passed).
    """
    from pytest_forgetting.comparison.stats import holm

    family = [r for r in results if r.get("policy") == "significant"]
    if not family:
        return []
    size = max(len(family), *(int(r.get("family_size", 1)) for r in family))
    p_values = [r["p_value"] for r in family] + [1.0] * (size - len(family))
    for result, adjusted in zip(family, holm(p_values)):
        result["p_holm"] = adjusted
        drop = -result["delta"] if result["higher_is_better"] else result["delta"]
        result["holm_verdict"] = "fail" if adjusted < result["alpha"] and drop > result["tolerance_abs"] else "pass"
    return [r for r in family if r["holm_verdict"] == "fail" and r["verdict"] == "pass"]


def report_holm_failure(config: pytest.Config, result: dict[str, Any]) -> None:
    """A failed test case for a capability only Holm's correction fails (JUnit, terminal)."""
    nodeid = f"forgetting::holm[{result['capability']}]"
    drop = abs(result["delta"])
    message = (
        f"FAIL {result['capability']} (Holm): {result['metric']} {result['base_score']:.3f} -> "
        f"{result['tuned_score']:.3f} (delta {result['delta']:+.3f}); Holm-adjusted p "
        f"{result['p_holm']:.4g} < alpha {result['alpha']:g} across the session's capabilities and the "
        f"drop {drop:.3f} exceeds the tolerance {result['tolerance_abs']:.3f} (test {result['nodeid']} "
        "passed its own Bonferroni-corrected check)"
    )
    properties = [*junit_values({**result, "verdict": "fail"}), ("p_holm", f"{result['p_holm']:.6g}")]
    location = ("forgetting", None, f"holm[{result['capability']}]")
    # every report listener (junitxml, ...) but the terminal's progress line, which has ended;
    # the terminal counts the failure and lists it under FAILURES
    terminal = config.pluginmanager.getplugin("terminalreporter")
    log_report = config.pluginmanager.subset_hook_caller(
        "pytest_runtest_logreport", remove_plugins=[terminal] if terminal is not None else [])
    for when, outcome, longrepr in (("call", "failed", message), ("teardown", "passed", None)):
        report = pytest.TestReport(nodeid=nodeid, location=location, keywords={}, outcome=outcome,
                                   longrepr=longrepr, when=when, user_properties=properties)
        log_report(report=report)
        if terminal is not None and outcome == "failed":
            terminal.stats.setdefault("failed", []).append(report)
