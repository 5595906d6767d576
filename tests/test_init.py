"""``pytest-forgetting init``: scaffolds a repository's forgetting checks, idempotent, never overwriting."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_forgetting.checks import CheckSet
from pytest_forgetting.starter import scaffold

WRITTEN = {"tests/forgetting/checks.toml", "tests/forgetting/test_forgetting.py", "pytest.ini",
           ".github/workflows/forgetting-pre-merge.yml", ".gitignore"}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _init(root: Path, *args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([sys.executable, "-m", "pytest_forgetting", "init", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120)


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "adapters" / "legal").mkdir(parents=True)
    (root / "adapters" / "legal" / "adapter_config.json").write_text("{}")
    (root / "README.md").write_text("my adapter\n")
    return root


def test_init_writes_the_starter_checks_once_and_never_overwrites(tmp_path):
    root = _repo(tmp_path)
    dry = _init(root, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _files(root).keys() == {"README.md", "adapters/legal/adapter_config.json"}  # nothing written
    assert all(f"would write {name}" in dry.stdout for name in WRITTEN - {".gitignore"}), dry.stdout

    first = _init(root)
    assert first.returncode == 0, first.stderr
    assert WRITTEN <= set(_files(root)), first.stdout
    assert "next: pytest tests/forgetting --tuned-model=adapters/legal" in first.stdout  # the one adapter found
    assert (root / "pytest.ini").read_text().splitlines()[2:] == ["forgetting_tuned_model = adapters/legal",
                                                                  "forgetting_cache_dir = .forgetting-cache"]
    workflow = (root / ".github/workflows/forgetting-pre-merge.yml").read_text()
    assert '"adapters/legal/**"' in workflow and "--tuned-model=adapters/legal" in workflow
    assert (root / ".gitignore").read_text() == ".forgetting-cache/\nforgetting-report/\n"
    checks = CheckSet.from_file(root / "tests/forgetting/checks.toml")
    assert [c.name for c in checks] == [c.name for c in CheckSet.starter()]

    # the user edits a file; a second run changes nothing and names every file it left alone
    edited = (root / "tests/forgetting/checks.toml").read_text().replace("tolerance = 0.05", "tolerance = 0.03", 1)
    (root / "tests/forgetting/checks.toml").write_text(edited)
    before = _files(root)
    again = _init(root)
    assert again.returncode == 0 and _files(root) == before, again.stdout
    assert "wrote" not in again.stdout and "appended" not in again.stdout
    for name in WRITTEN - {".gitignore", "pytest.ini"}:
        assert f"skipped {name} (exists; left as it is)" in again.stdout
    assert "skipped pytest settings (pytest.ini already configures pytest)" in again.stdout
    assert "skipped .gitignore (already ignores" in again.stdout


def test_init_leaves_an_existing_pytest_configuration_and_gitignore_lines_alone(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n')
    (root / ".gitignore").write_text("*.pyc\n.forgetting-cache")  # one entry present, no final newline
    done = _init(root, "--adapter", "out/adapter", "--base-model", "org/base")
    assert done.returncode == 0, done.stderr
    assert not (root / "pytest.ini").exists()
    assert ("skipped pytest settings (pyproject.toml already configures pytest); add under "
            "[tool.pytest.ini_options]: forgetting_tuned_model = out/adapter; forgetting_cache_dir = "
            ".forgetting-cache; forgetting_base_model = org/base") in done.stdout
    assert (root / "pyproject.toml").read_text().endswith('addopts = "-q"\n')
    assert (root / ".gitignore").read_text() == "*.pyc\n.forgetting-cache\nforgetting-report/\n"
    workflow = (root / ".github/workflows/forgetting-pre-merge.yml").read_text()
    assert "--tuned-model=out/adapter \\\n            --base-model=org/base" in workflow


def test_the_scaffolded_checks_run_against_a_tuned_model(pytester, tiny_models):
    assert scaffold.run(["--root", str(pytester.path), "--adapter", "adapter"]) == 0
    shutil.copytree(tiny_models["adapter"], pytester.path / "adapter")
    collected = pytester.runpytest("tests/forgetting", "--collect-only", "-q", "-p", "no:cacheprovider")
    names = {c.name for c in CheckSet.starter()}
    assert {f"tests/forgetting/test_forgetting.py::test_forgetting[{n}]" for n in names} <= set(
        collected.stdout.lines), collected.stdout.str()
    # the ini written by init names the adapter; the base comes from its config (a local folder)
    result = pytester.runpytest("tests/forgetting", "-p", "no:cacheprovider", f"--base-model={tiny_models['base']}",
                                "--capability", "knowledge", "-rA")
    text = result.stdout.str()
    assert result.parseoutcomes().get("passed", 0) + result.parseoutcomes().get("failed", 0) == 1, text
    assert re.search(r"^knowledge\s+acc\s+314\s", text, re.M), text  # the starter suite, both models scored
    assert "forgetting cache: 0 item results reused, 628 scored" in text
    assert (pytester.path / ".forgetting-cache").is_dir()  # the cache folder from the ini


def test_a_requirement_ci_can_install(monkeypatch):
    class Distribution:
        version = "0.1.0"

        def __init__(self, direct):
            self.direct = direct

        def read_text(self, name):
            return self.direct

    cases = {None: "pytest-forgetting[plot]==0.1.0",
             json.dumps({"url": "https://github.com/acme/pytest-forgetting",
                         "vcs_info": {"vcs": "git", "commit_id": "abc123"}}):
                 "pytest-forgetting[plot] @ git+https://github.com/acme/pytest-forgetting@abc123",
             json.dumps({"url": "file:///home/me/pytest-forgetting", "dir_info": {"editable": True}}): None,
             json.dumps({"url": "file:///tmp/pytest_forgetting-0.1.0-py3-none-any.whl", "archive_info": {}}): None}
    for direct, expected in cases.items():
        monkeypatch.setattr(scaffold.metadata, "distribution", lambda name, d=direct: Distribution(d))
        assert scaffold.install_requirement() == expected


def test_init_errors_are_one_line_and_write_nothing(tmp_path):
    missing = _init(tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "is not a folder; run it in your repository or give --root PATH" in missing.stderr
    unknown = subprocess.run([sys.executable, "-m", "pytest_forgetting", "initialise"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown command 'initialise'; expected init" in unknown.stderr
    quoted = _init(tmp_path, "--adapter", 'my"adapter')
    assert quoted.returncode == 2 and quoted.stderr.count("\n") == 1, quoted.stderr
    assert "--adapter 'my\"adapter' cannot go into the workflow file" in quoted.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("pytest-forgetting") is None, reason="the console script is not installed")
def test_the_console_script_runs_init(tmp_path):
    done = subprocess.run(["pytest-forgetting", "init", "--root", str(tmp_path), "--dry-run"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "would write tests/forgetting/checks.toml" in done.stdout, done.stderr


@pytest.mark.slow
def test_a_wheel_carries_the_starter_data_the_command_and_the_plugin(tmp_path, tiny_models):
    """Built as a wheel and installed into a fresh environment (its other dependencies from this one)."""
    root = Path(__file__).resolve().parents[1]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(root), "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("pytest_forgetting-*.whl")
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    repo = tmp_path / "repo"
    repo.mkdir()
    done = subprocess.run([str(env_dir / "bin" / "pytest-forgetting"), "init", "--adapter", "adapter"], cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "wrote tests/forgetting/checks.toml" in done.stdout, done.stderr
    assert "edit the Install step" in done.stdout  # installed from a file: CI cannot reach it, and it says so
    where = subprocess.run([str(python), "-c", "import pytest_forgetting.starter as s; print(s.suite_path('knowledge'))"],
                           cwd=repo, capture_output=True, text=True, timeout=120)
    assert str(env_dir) in where.stdout and Path(where.stdout.strip()).stat().st_size > 40_000, where.stderr
    shutil.copytree(tiny_models["adapter"], repo / "adapter")  # the ini written by init names it
    collected = subprocess.run([str(python), "-m", "pytest", "tests/forgetting", "--collect-only", "-q"], cwd=repo,
                               capture_output=True, text=True, timeout=300)
    assert "5 tests collected" in collected.stdout, collected.stdout + collected.stderr


def test_an_empty_pytest_toml_counts_as_pytest_settings(tmp_path):
    (tmp_path / "pytest.toml").write_text("")  # pytest reads it even when empty
    done = _init(tmp_path, "--adapter", "adapter")
    assert done.returncode == 0 and not (tmp_path / "pytest.ini").exists(), done.stdout
    assert "skipped pytest settings (pytest.toml already configures pytest); add under [pytest]" in done.stdout


def test_without_one_adapter_folder_it_says_what_it_assumed(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
    done = _init(tmp_path, "--dry-run")
    assert ("note: 2 folders hold adapter_config.json (a, b); the checks test 'adapter': pass --adapter PATH"
            in done.stdout), done.stdout
