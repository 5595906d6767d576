"""The GitHub Actions templates are valid workflows (schema) with no security findings but pinning."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TEMPLATES = sorted((Path(__file__).resolve().parents[1] / "ci_templates").glob("*.yml"))


def test_templates_exist() -> None:
    assert {t.name for t in TEMPLATES} == {"forgetting-gpu.yml", "adapter-pre-merge.yml"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_matches_the_workflow_schema(template: Path) -> None:
    if shutil.which("check-jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (test extra)")
    result = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(template)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_passes_zizmor(template: Path) -> None:
    if shutil.which("zizmor") is None:
        pytest.skip("zizmor is not installed (test extra)")
    result = subprocess.run(["zizmor", "--offline", "--format", "plain", str(template)], capture_output=True, text=True)
    findings = [line for line in result.stdout.splitlines() if line.startswith(("error[", "warning["))]
    # Action versions are tags in a template; users pin them to commit SHAs in their repository.
    assert all(line.startswith("error[unpinned-uses]") for line in findings), findings


def test_pre_merge_runs_on_adapter_changes_and_uses_baseline() -> None:
    text = (Path(__file__).resolve().parents[1] / "ci_templates" / "adapter-pre-merge.yml").read_text()
    assert '"adapter/**"' in text and "--forgetting-baseline=" in text and "actions/cache" in text
    gpu = (Path(__file__).resolve().parents[1] / "ci_templates" / "forgetting-gpu.yml").read_text()
    assert "runs-on: [self-hosted, gpu]" in gpu and "--junitxml=" in gpu and "upload-artifact" in gpu
