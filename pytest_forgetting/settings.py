"""Command-line options and their ini equivalents, parsed and validated (no torch here).

Every option has an ini key so an adapter repo can set defaults in ``pyproject.toml``
under ``[tool.pytest.ini_options]``; the command line wins over the ini file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from pytest_forgetting.backends.placement import parse_device_map, parse_max_memory
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.tolerance import Tolerance, parse_tolerance

DTYPE_CHOICES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def parse_device(value: str) -> str:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``."""
    value = value.strip()
    if not _DEVICE_PATTERN.match(value):
        raise ForgettingError(f"device {value!r}: expected auto, cpu, mps, cuda or cuda:N")
    return value


def parse_dtype(value: str) -> str:
    """One of :data:`DTYPE_CHOICES`."""
    value = value.strip()
    if value not in DTYPE_CHOICES:
        raise ForgettingError(f"dtype {value!r}: expected one of {', '.join(DTYPE_CHOICES)}")
    return value


def parse_batch_size(value: str) -> Optional[int]:
    """``auto`` (None) or a positive integer."""
    value = str(value).strip()
    if value == "auto":
        return None
    if value.isdigit() and value.isascii() and int(value) > 0:
        return int(value)
    raise ForgettingError(f"batch size {value!r}: expected 'auto' or a positive integer")


def parse_alpha(value: str) -> float:
    """A one-sided significance level in (0, 0.5) (see :func:`pytest_forgetting.comparison.decision.parse_alpha`)."""
    from pytest_forgetting.comparison.decision import parse_alpha as parse

    return parse(value)


def parse_policy(value: str) -> str:
    """``non-inferiority`` or ``significant``."""
    from pytest_forgetting.comparison.decision import parse_policy as parse

    return parse(value)


def parse_count(value: str, *, least: int, what: str) -> int:
    """An integer of at least ``least``."""
    text = str(value).strip()
    if re.fullmatch(r"-?[0-9]+", text) and int(text) >= least:
        return int(text)
    raise ForgettingError(f"{what} {value!r}: expected an integer >= {least}")


def parse_seconds(value: str) -> float:
    """A positive number of seconds."""
    text = str(value).strip()
    try:  # ASCII digits only: float() would also take '1_0' and other scripts' digits
        seconds = float(text) if re.fullmatch(r"[+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text) else -1.0
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ForgettingError(f"request timeout {value!r}: expected a positive number of seconds, e.g. 120")
    return seconds


def parse_session_tolerance(value: str) -> Tolerance:
    """``--forgetting-tolerance``: an absolute one is a share metric's allowed drop, so at most 1 (100 points)."""
    tolerance = parse_tolerance(value)
    if not tolerance.relative and tolerance.value > 1:
        raise ForgettingError(
            f"tolerance {value!r} allows a drop of {tolerance.value * 100:g} accuracy points, so no check could fail; "
            f"an absolute default applies to share metrics (0..1): write e.g. 0.02 for 2 points, or '{value}%' "
            "for a drop relative to the base score"
        )
    return tolerance


def parse_sequential(value: str) -> bool:
    """``on`` or ``off`` (see :func:`pytest_forgetting.comparison.sequential.parse_sequential`)."""
    from pytest_forgetting.comparison.sequential import parse_sequential as parse

    return parse(value)


def parse_spending(value: str) -> str:
    """A spending function's name (see :func:`pytest_forgetting.comparison.sequential.parse_spending`)."""
    from pytest_forgetting.comparison.sequential import parse_spending as parse

    return parse(value)


@dataclass(frozen=True)
class _Option:
    flag: str
    dest: str
    ini: str
    help: str
    parse: Optional[Callable[[str], Any]] = None
    kind: str = "value"  # value | bool | list | path | paths


OPTIONS = (
    _Option("--tuned-model", "forgetting_tuned_model", "forgetting_tuned_model",
            "a fine-tuned model to check: a checkpoint folder, a PEFT adapter folder, a model id "
            "already in the local Hugging Face cache, a folder of checkpoints or a glob "
            "('out/checkpoint-*'); repeat it to check several candidates in one run", kind="paths"),
    _Option("--base-model", "forgetting_base_model", "forgetting_base_model",
            "the base model (optional for an adapter whose adapter_config.json names a base "
            "that is available locally)", kind="path"),
    _Option("--device", "forgetting_device", "forgetting_device",
            "auto (cuda if available, else cpu), cpu, cuda, cuda:N or mps [auto]", parse_device),
    _Option("--device-map", "forgetting_device_map", "forgetting_device_map",
            "shard a model larger than one device over every visible GPU, then CPU, then disk: auto, "
            "balanced, balanced_low_0 or sequential (accelerate; local transformers models only) [off]",
            parse_device_map),
    _Option("--max-memory", "forgetting_max_memory", "forgetting_max_memory",
            "with --device-map: the most each device may hold, e.g. 0=70GiB,1=70GiB,cpu=200GiB",
            parse_max_memory),
    _Option("--dtype", "forgetting_dtype", "forgetting_dtype",
            "auto (bfloat16 on a GPU that supports it, else float32), float32, bfloat16, "
            "float16 [auto]", parse_dtype),
    _Option("--forgetting-batch-size", "forgetting_batch_size", "forgetting_batch_size",
            "auto or a positive integer [auto]", parse_batch_size),
    _Option("--trust-remote-code", "forgetting_trust_remote_code", "forgetting_trust_remote_code",
            "allow models whose config maps to custom code (off by default)", kind="bool"),
    _Option("--allow-pickle-weights", "forgetting_allow_pickle", "forgetting_allow_pickle_weights",
            "allow pickle (*.bin) weights, which can run code when loaded (off by default)",
            kind="bool"),
    _Option("--capability", "forgetting_capabilities", "forgetting_capabilities",
            "run only tests marked with this capability (repeatable)", kind="list"),
    _Option("--forgetting-tolerance", "forgetting_tolerance", "forgetting_tolerance",
            "default allowed drop of share metrics (accuracy: 0.02 = 2 points) or, relative ('5%%'), "
            "of every metric; other metrics use their own (NLL 0.05 nats/token) [0.02]", parse_session_tolerance),
    _Option("--forgetting-alpha", "forgetting_alpha", "forgetting_alpha",
            "one-sided significance level of verdicts, between 0 and 0.5 [0.05]", parse_alpha),
    _Option("--forgetting-policy", "forgetting_policy", "forgetting_policy",
            "non-inferiority (pass only when the drop is shown to be within tolerance) or "
            "significant (fail only on a significant drop beyond tolerance) [non-inferiority]",
            parse_policy),
    _Option("--forgetting-sequential", "forgetting_sequential", "forgetting_sequential",
            "on: score items in a seeded random order, in chunks, and stop a capability once it is decided "
            "at the promised error rates (group-sequential, alpha spent over the looks); off: every item [off]",
            parse_sequential),
    _Option("--forgetting-sequential-spending", "forgetting_sequential_spending", "forgetting_sequential_spending",
            "how sequential verdicts spend alpha over the looks: hwang-shih-decani (gamma -2: stops a clear "
            "case early for a little power), obrien-fleming (stops later, keeps a little more power) or pocock "
            "(soonest, a much stricter last look) [hwang-shih-decani]", parse_spending),
    _Option("--forgetting-request-concurrency", "forgetting_request_concurrency", "forgetting_request_concurrency",
            "requests in flight at once to a served model (openai:... or openai+http://...) [4]",
            lambda v: parse_count(v, least=1, what="request concurrency")),
    _Option("--forgetting-request-timeout", "forgetting_request_timeout", "forgetting_request_timeout",
            "seconds one request to a served model may take [120]", parse_seconds),
    _Option("--forgetting-request-retries", "forgetting_request_retries", "forgetting_request_retries",
            "retries of a request to a served model that failed with 429, 5xx, a timeout or a lost "
            "connection (exponential backoff with jitter, honouring Retry-After) [5]",
            lambda v: parse_count(v, least=0, what="request retries")),
    _Option("--forgetting-report", "forgetting_report", "forgetting_report",
            "folder for report.json, report.md and plot.png", kind="path"),
    _Option("--forgetting-cache-dir", "forgetting_cache_dir", "forgetting_cache_dir",
            "per-item result cache [.pytest_cache/d/forgetting]", kind="path"),
    _Option("--no-forgetting-cache", "forgetting_no_cache", "forgetting_no_cache",
            "score everything afresh; read and write no cached results", kind="bool"),
    _Option("--forgetting-clear-cache", "forgetting_clear_cache", "forgetting_clear_cache",
            "delete the result cache before the session", kind="bool"),
    _Option("--forgetting-baseline", "forgetting_baseline", "forgetting_baseline",
            "folder of committed base-model results; base scoring is skipped when they match",
            kind="path"),
    _Option("--forgetting-update-baseline", "forgetting_update_baseline", "forgetting_update_baseline",
            "score the base model and (re)write the baseline folder", kind="bool"),
)
_BY_DEST = {option.dest: option for option in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    """Register every option in the ``forgetting`` group, plus its ini key."""
    group = parser.getgroup("forgetting", "catastrophic forgetting checks (pytest-forgetting)")
    for option in OPTIONS:
        if option.kind == "bool":
            group.addoption(option.flag, action="store_true", default=None, dest=option.dest,
                            help=option.help)
            parser.addini(option.ini, option.help, type="bool", default=False)
        elif option.kind in ("list", "paths"):
            group.addoption(option.flag, action="append", default=None, dest=option.dest,
                            metavar="PATH" if option.kind == "paths" else "NAME", help=option.help)
            parser.addini(option.ini, option.help, type="args", default=[])
        else:
            # parsed in get(), so a bad value fails with one line (argparse adds a usage line)
            group.addoption(option.flag, default=None, dest=option.dest, metavar="VALUE", help=option.help)
            parser.addini(option.ini, option.help, default=None)


def get(config: pytest.Config, dest: str) -> Any:
    """The value of an option: command line, else ini (parsed), else None/False/[]."""
    option = _BY_DEST[dest]
    value = config.getoption(dest)
    if option.kind == "paths":
        return _paths(config, option, value)
    if value is not None:
        if option.kind == "path":
            return _relative_to(value, Path(config.invocation_params.dir))
        if option.parse is None or not isinstance(value, str):
            return value
        try:
            return option.parse(value)
        except ForgettingError as exc:
            raise pytest.UsageError(f"pytest-forgetting: {option.flag} {value}: {exc}") from None
    ini_value = config.getini(option.ini)
    if option.kind in ("bool", "list"):
        return ini_value
    if ini_value in (None, ""):
        return None
    if option.kind == "path":
        base = config.inipath.parent if config.inipath else config.rootpath
        return _relative_to(str(ini_value), base)
    assert option.parse is not None
    try:
        return option.parse(str(ini_value))
    except ForgettingError as exc:
        raise pytest.UsageError(f"pytest-forgetting: ini {option.ini}: {exc}") from None


def _paths(config: pytest.Config, option: _Option, value: Optional[list[str]]) -> tuple[list[str], Path]:
    """A repeatable path option's values and the folder they are relative to (command line, else ini)."""
    if value:
        return list(value), Path(config.invocation_params.dir)
    base = config.inipath.parent if config.inipath else config.rootpath
    return list(config.getini(option.ini) or []), base


def name_the_source(config: pytest.Config, message: str) -> str:
    """``message`` about a model path, with its leading flag named as the ini key when the
    value came from the ini file (``--base-model X: ...`` -> ``ini forgetting_base_model X: ...``)."""
    for option in OPTIONS:
        if option.kind in ("path", "paths") and message.startswith(option.flag + " ") and not config.getoption(option.dest):
            return f"ini {option.ini} " + message[len(option.flag) + 1:]
    return message


def validate(config: pytest.Config) -> None:
    """Parse every ini value now, so a typo fails at start-up even if unused yet."""
    for option in OPTIONS:
        if option.parse is not None:
            get(config, option.dest)


def _relative_to(value: str, base: Path) -> str:
    """A relative path that exists under ``base`` becomes absolute; ids stay as they are."""
    candidate = Path(value).expanduser()
    if not candidate.is_absolute() and (base / candidate).exists():
        return str(base / candidate)
    return value


@dataclass(frozen=True)
class Defaults:
    """Session-wide decision defaults (markers and assertion arguments override them).

    ``tolerance`` None: each metric's own default (0.02 for share metrics such as accuracy).
    """

    tolerance: Optional[Tolerance]
    alpha: float
    policy: str


def decision_defaults(config: pytest.Config) -> Defaults:
    """The session's default tolerance, alpha and policy."""
    from pytest_forgetting.comparison.decision import DEFAULT_ALPHA, DEFAULT_POLICY

    alpha = get(config, "forgetting_alpha")
    return Defaults(
        tolerance=get(config, "forgetting_tolerance"),
        alpha=DEFAULT_ALPHA if alpha is None else alpha,
        policy=get(config, "forgetting_policy") or DEFAULT_POLICY,
    )
