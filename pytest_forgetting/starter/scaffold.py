"""``pytest-forgetting init``: start forgetting checks in a repository.

Writes, relative to the repository's root (the working directory unless ``--root``):

* ``tests/forgetting/checks.toml``: a copy of the starter checks (general capabilities on the
  suites shipped with the plugin, ``starter:NAME``), yours to edit: tolerances, your own data,
  your trained domain as a target check;
* ``tests/forgetting/test_forgetting.py``: one test per declared check, so a check added to
  the file is a test at once;
* ``pytest.ini`` with the adapter's path and the cache folder, only where the repository has no
  pytest configuration yet (otherwise it prints the lines to add);
* ``.github/workflows/forgetting-pre-merge.yml``: the pre-merge workflow, with the adapter's path
  and an install step for the plugin as this environment installed it;
* ``.gitignore``: the cache and report folders, appended where missing.

It is idempotent and never overwrites a file: an existing one is left as it is and named in the
output ("skipped"). ``--dry-run`` prints what it would write and writes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Optional, Sequence

from pytest_forgetting import starter
from pytest_forgetting.errors import ForgettingError

CHECKS_DIR = Path("tests") / "forgetting"
WORKFLOW = Path(".github") / "workflows" / "forgetting-pre-merge.yml"
CACHE_DIR = ".forgetting-cache"
REPORT_DIR = "forgetting-report"
IGNORED = (f"{CACHE_DIR}/", f"{REPORT_DIR}/")
#: Where to add the settings, by the file that already configures pytest.
SECTIONS = {"pyproject.toml": "[tool.pytest.ini_options]", "setup.cfg": "[tool:pytest]"}
#: The install step of the shipped workflow, replaced by how this environment installed the plugin.
INSTALL_LINE = 'python -m pip install "pytest-forgetting[plot] @ git+https://github.com/OWNER/pytest-forgetting"'

TEST_FILE = '''"""Forgetting checks: one test per check declared in checks.toml (written by pytest-forgetting init).

Run: pytest tests/forgetting --tuned-model=PATH (an adapter or checkpoint folder). Add a check to
checks.toml and it is a test here.
"""

import pytest

from pytest_forgetting.checks import CheckSet

CHECKS = CheckSet.beside(__file__)


@pytest.mark.parametrize("check", [pytest.param(check, marks=CHECKS.marker(check.name), id=check.name)
                                   for check in CHECKS])
def test_forgetting(forgetting, check):
    forgetting.run_check(check)
'''

CHECKS_HEADER = '''# Forgetting checks of this repository (written by pytest-forgetting init; edit freely).
# Each [[checks]] table is one test in test_forgetting.py. "starter:NAME" is a suite shipped
# with pytest-forgetting; your own data files are relative to this file. Add the domain you
# train on as a target check (a drop there is reported, never counted as forgetting):
#
#   [[checks]]
#   capability = "my domain"
#   suite = "data/my_domain.jsonl"         # {"id": ..., "text": ...} rows: NLL per token
#   kind = "text"
#   target = true
#
# Keys of a check: pytest-forgetting's README, "Checks declared once".

'''


@dataclass
class Plan:
    """What ``init`` writes (``writes``: path -> text), appends, skips and says."""

    root: Path
    writes: dict[Path, str] = field(default_factory=dict)
    appends: dict[Path, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def write(self, relative: Path, text: str) -> None:
        """Write ``text`` to ``relative`` unless a file is there (then it is skipped)."""
        if (self.root / relative).exists():
            self.skipped.append(f"{relative} (exists; left as it is)")
        else:
            self.writes[relative] = text

    def apply(self) -> None:
        """Write the planned files (new files only) and append the planned lines."""
        for relative, text in self.writes.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as handle:  # never overwrite, even if one appeared since
                handle.write(text)
        for relative, text in self.appends.items():
            with open(self.root / relative, "a", encoding="utf-8") as handle:
                handle.write(text)

    def lines(self, dry_run: bool) -> list[str]:
        """The report printed to the user."""
        verb, add = ("would write", "would append to") if dry_run else ("wrote", "appended to")
        out = [f"{verb} {relative}" for relative in self.writes]
        out += [f"{add} {relative}: {', '.join(text.split())}" for relative, text in self.appends.items()]
        out += [f"skipped {what}" for what in self.skipped]
        return out + self.notes


def plan(root: Path, adapter: Optional[str] = None, base_model: Optional[str] = None) -> Plan:
    """What ``init`` would do in repository ``root`` (nothing is written)."""
    root = Path(root)
    if not root.is_dir():
        raise ForgettingError(f"init: {root} is not a folder; run it in your repository or give --root PATH")
    result = Plan(root)
    if not adapter:
        found = _find_adapters(root)
        adapter = found[0] if len(found) == 1 else "adapter"
        if len(found) != 1:
            result.notes.append(f"note: {len(found) or 'no'} folders hold adapter_config.json"
                                f"{' (' + ', '.join(found) + ')' if found else ''}; the checks test 'adapter': "
                                "pass --adapter PATH, or edit pytest.ini and the workflow file")
    adapter = _checked("--adapter", adapter)
    base_model = _checked("--base-model", base_model) if base_model else None
    result.write(CHECKS_DIR / "checks.toml", CHECKS_HEADER + _starter_checks_body())
    result.write(CHECKS_DIR / "test_forgetting.py", TEST_FILE)
    _plan_ini(result, adapter, base_model)
    result.write(WORKFLOW, _workflow(adapter, base_model, result))
    _plan_gitignore(result)
    result.notes += [
        f"next: pytest {CHECKS_DIR.as_posix()} --tuned-model={shlex.quote(adapter)}",
        f"then record the base's results once and commit them: pytest {CHECKS_DIR.as_posix()} "
        "--forgetting-baseline=forgetting-baseline --forgetting-update-baseline",
    ]
    return result


def run(argv: Optional[Sequence[str]] = None) -> int:
    """The ``init`` command line (see the module docstring); returns the exit code."""
    import argparse

    parser = argparse.ArgumentParser(prog="pytest-forgetting init", description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", help="the adapter or checkpoint folder the checks test "
                                          "(default: the one folder with adapter_config.json, else 'adapter')")
    parser.add_argument("--base-model", help="the base model (default: the one the adapter's config names)")
    parser.add_argument("--root", default=".", help="the repository's root (default: the working directory)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be written; write nothing")
    args = parser.parse_args(argv)
    try:
        result = plan(Path(args.root), args.adapter, args.base_model)
        if not args.dry_run:
            result.apply()
    except (ForgettingError, OSError) as exc:
        print(f"pytest-forgetting init: {exc}", file=sys.stderr)
        return 2
    print("\n".join(result.lines(args.dry_run)))
    return 0


def _starter_checks_body() -> str:
    text = starter.checks_file().read_text(encoding="utf-8")
    return text[text.index("[[checks]]"):]  # its own header speaks of the plugin's folder


def _find_adapters(root: Path) -> list[str]:
    """The folders under ``root`` (three levels deep) holding ``adapter_config.json``."""
    found = []
    for folder, children, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        children[:] = [c for c in children if not c.startswith(".") and c not in ("node_modules", "venv")]
        if depth >= 3:
            children[:] = []
        if "adapter_config.json" in files:
            found.append(Path(folder).relative_to(root).as_posix() or ".")
    return sorted(found)


def _plan_ini(result: Plan, adapter: str, base_model: Optional[str]) -> None:
    keys = [f"forgetting_tuned_model = {shlex.quote(adapter)}", f"forgetting_cache_dir = {CACHE_DIR}"]
    keys += [f"forgetting_base_model = {shlex.quote(base_model)}"] if base_model else []
    from pytest_forgetting.rootdir_trap import INI_NAMES, has_pytest_section

    for name in INI_NAMES:  # pytest's own order; the first that configures pytest is the one it reads
        path = result.root / name
        if path.is_file() and has_pytest_section(path):
            result.skipped.append(f"pytest settings ({name} already configures pytest); add under "
                                  f"{SECTIONS.get(name, '[pytest]')}: " + "; ".join(keys))
            return
    result.write(Path("pytest.ini"), "[pytest]\n# forgetting checks (pytest-forgetting init)\n" + "\n".join(keys) + "\n")


def _workflow(adapter: str, base_model: Optional[str], result: Plan) -> str:
    text = (starter.FOLDER / "ci" / "adapter-pre-merge.yml").read_text(encoding="utf-8")
    tuned = f"--tuned-model={shlex.quote(adapter)}"
    text = text.replace('"adapter/**"', f'"{adapter.rstrip("/")}/**"').replace("--tuned-model=adapter", tuned)
    if base_model:
        text = text.replace(tuned, f"{tuned} \\\n            --base-model={shlex.quote(base_model)}")
    requirement = install_requirement()
    if requirement is None:
        result.notes.append(f"edit the Install step of {WORKFLOW}: this environment installed pytest-forgetting "
                            "from a local folder or file, which a CI runner cannot reach; give a git URL or a wheel")
    else:
        text = text.replace(INSTALL_LINE, f'python -m pip install "{requirement}"')
    return text


def _checked(option: str, value: str) -> str:
    """A path or model id that can go into the workflow's YAML and shell lines as it is (quoted)."""
    if not value or any(bad in value for bad in ('"', "\n", "\r", "${{", "\\")):
        raise ForgettingError(f"init: {option} {value!r} cannot go into the workflow file; give a path or model "
                              "id without quotes, backslashes, line breaks or ${{")
    return value


def install_requirement() -> Optional[str]:
    """How CI can install the plugin as this environment did: a pinned git URL or release; None: a local path."""
    try:
        distribution = metadata.distribution("pytest-forgetting")
    except metadata.PackageNotFoundError:
        return None
    direct = distribution.read_text("direct_url.json")
    if not direct:
        return f"pytest-forgetting[plot]=={distribution.version}"
    info = json.loads(direct)
    vcs = info.get("vcs_info")
    if vcs and info.get("url", "").startswith(("https://", "ssh://", "git@")):
        return f"pytest-forgetting[plot] @ {vcs.get('vcs', 'git')}+{info['url']}@{vcs.get('commit_id', 'main')}"
    return None


def _plan_gitignore(result: Plan) -> None:
    path = result.root / ".gitignore"
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    present = text.splitlines()
    missing = [entry for entry in IGNORED if entry not in present and entry.rstrip("/") not in present]
    if not missing:
        result.skipped.append(".gitignore (already ignores the cache and report folders)")
        return
    if not path.exists():
        result.writes[Path(".gitignore")] = "\n".join(missing) + "\n"
        return
    lead = "" if not text or text.endswith("\n") else "\n"
    result.appends[Path(".gitignore")] = lead + "\n".join(missing) + "\n"
