"""The rootdir trap: ``--tuned-model PATH`` (with a space) can make pytest skip the project's ini file.

pytest picks its rootdir and ini file before any plugin's options are registered, so the
path after a space counts as a test path. This module notices and warns.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Optional

import pytest

from pytest_forgetting.settings import OPTIONS

#: pytest's ini file names, in the order it tries them in each folder.
INI_NAMES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml",
              "tox.ini", "setup.cfg")


def warn_if_ini_skipped(config: pytest.Config) -> Optional[str]:
    """Warn when a path option written with a space made pytest skip the project's ini file.

    pytest picks its rootdir and ini file before any plugin's options are registered, so in
    ``pytest --tuned-model /models/x`` the path counts as a test path: the rootdir becomes a
    folder above both, and ``[tool.pytest.ini_options]`` is silently not read (or another
    folder's ini file is). When the raw arguments hold such a space form and the ini file that
    pytest finds without those values is not the one it used, issue a
    :class:`pytest.PytestConfigWarning` and return its message (else None).
    """
    if hasattr(config, "workerinput") or getattr(config.option, "inifilename", None):
        return None  # xdist workers inherit the controller's choice; -c names the ini file
    spaced = _spaced_path_options(_raw_args(config))
    if not spaced:
        return None
    invocation_dir = Path(config.invocation_params.dir)
    expected = _find_ini(_common_ancestor(invocation_dir, getattr(config.option, "file_or_dir", None) or []))
    if expected is None or (config.inipath is not None and _same_file(config.inipath, expected)):
        return None
    flag, value = spaced[0]
    used = f"read {config.inipath}" if config.inipath is not None else "read no ini file"
    message = (
        f"pytest-forgetting: {expected} was not used (pytest {used}, rootdir {config.rootpath}): "
        f"pytest chooses its ini file before it knows this plugin's options, so it took the path "
        f"after '{flag} ' for a test path. Write {flag}={value} (with '='), or pass -c {expected}"
    )
    config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
    _repeat_if_session_never_starts(config, message)
    return message


class _SessionStarted:
    """Notes whether the session started (and so whether the warnings summary will be shown)."""

    started = False

    def pytest_sessionstart(self) -> None:
        self.started = True


def _repeat_if_session_never_starts(config: pytest.Config, message: str) -> None:
    """A start-up error (say, a base model set only in the skipped ini file) ends the run
    before the warnings summary; then print the warning to stderr, before pytest's ERROR line."""
    import sys

    notice = _SessionStarted()
    config.pluginmanager.register(notice, "forgetting-ini-skipped-notice")

    def repeat() -> None:
        if not notice.started:
            sys.stderr.write(f"WARNING: {message}\n")

    config.add_cleanup(repeat)


def _raw_args(config: pytest.Config) -> list[str]:
    """The arguments pytest saw when it chose its ini file: PYTEST_ADDOPTS, then the command line."""
    try:
        env = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    except ValueError:
        env = []
    return [*env, *map(str, config.invocation_params.args)]


def _spaced_path_options(args: list[str]) -> list[tuple[str, str]]:
    """``(flag, value)`` for each path option followed by its value as a separate argument."""
    flags = {option.flag for option in OPTIONS if option.kind in ("path", "paths")}
    found = []
    for index, arg in enumerate(args[:-1]):
        if arg == "--":
            break
        if arg in flags and not args[index + 1].startswith("-"):
            found.append((arg, args[index + 1]))
    return found


def _common_ancestor(invocation_dir: Path, paths: list[str]) -> Path:
    """Where pytest starts looking for the ini file given these test paths (``=`` form)."""
    existing = []
    for raw in paths:
        path = invocation_dir / str(raw).split("::")[0]
        if path.exists():
            existing.append(path.resolve())
    if not existing:
        return invocation_dir.resolve()
    ancestor = Path(os.path.commonpath(existing))
    return ancestor.parent if ancestor.is_file() else ancestor


def _find_ini(start: Path) -> Optional[Path]:
    """The first file with a pytest section in ``start`` or its parents, pytest's order."""
    for folder in (start, *start.parents):
        for name in INI_NAMES:
            candidate = folder / name
            if candidate.is_file() and has_pytest_section(candidate):
                return candidate
    return None


def has_pytest_section(path: Path) -> bool:
    if path.name in ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"):
        return True  # pytest uses these even when empty
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10: pytest itself depends on tomli
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            tool = data.get("tool", {})
            return isinstance(tool, dict) and "pytest" in tool
        import iniconfig

        sections = iniconfig.IniConfig(str(path)).sections
        return ("pytest" if path.name == "tox.ini" else "tool:pytest") in sections
    except Exception:  # noqa: BLE001 - an unreadable file is pytest's to report
        return False


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
