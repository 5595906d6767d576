"""Reliability (issue 15): identical runs give identical reports, and a run on local models opens no connection."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

CHECKS = """
from pytest_forgetting import capability


@capability("knowledge", tolerance=0.2)
def test_knowledge(forgetting):
    forgetting.check(forgetting.suite("mc.jsonl", "multiple_choice"))


@capability("writing", tolerance=0.5)
def test_writing(forgetting):
    forgetting.check(forgetting.suite("gen.jsonl", "generation", max_new_tokens=4))
"""


def _project(pytester: pytest.Pytester) -> None:
    rows = [{"question": f"Q{i}: 2 + {i} =", "choices": [str(2 + i), str(3 + i)], "answer": 0} for i in range(12)]
    (pytester.path / "mc.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (pytester.path / "gen.jsonl").write_text("\n".join(json.dumps({"prompt": f"Say {i}", "target": str(i)})
                                                         for i in range(10)))
    pytester.makepyfile(test_checks=CHECKS)


def _run(pytester: pytest.Pytester, tiny_models, name: str) -> tuple[str, str]:
    result = pytester.runpytest("--base-model", str(tiny_models["base"]), "--tuned-model", str(tiny_models["adapter"]),
                                f"--forgetting-report={name}", f"--junitxml={name}.xml", "--no-forgetting-cache",
                                "-p", "no:randomly")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    report = (pytester.path / name / "report.json").read_text()
    junit = (pytester.path / f"{name}.xml").read_text()
    return report, junit


def _without_clocks(report: str, junit: str) -> tuple[str, str]:
    data = json.loads(report)
    data.pop("created")
    for result in data["results"]:
        for side in ("base", "tuned"):
            result.get("extra", {}).get(side, {}).pop("seconds", None)
    junit = re.sub(r'(timestamp|time|hostname)="[^"]*"', r'\1=""', junit)
    return json.dumps(data, sort_keys=True), junit


def test_two_identical_runs_give_identical_reports(pytester, tiny_models):
    _project(pytester)
    first, second = _run(pytester, tiny_models, "one"), _run(pytester, tiny_models, "two")
    assert _without_clocks(*first) == _without_clocks(*second)
    assert json.loads(first[0])["results"] and "<property name=\"delta\"" in first[1]


def test_a_run_on_local_models_opens_no_connection(pytester, tiny_models, monkeypatch):
    attempts: list[object] = []

    def refuse(self, address, *args, **kwargs):  # noqa: ANN001
        attempts.append(address)
        raise OSError(f"pytest-forgetting test: no network ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _project(pytester)
    report, _ = _run(pytester, tiny_models, "offline")
    assert len(json.loads(report)["results"]) == 2
    assert attempts == []
    assert Path(pytester.path / "offline" / "report.md").is_file()
