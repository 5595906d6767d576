"""An lm-evaluation-harness task or group as a suite: loaded once per session, documents sampled with a seed.

:func:`lm_eval_task` builds lm-eval's ``Task`` objects through a ``TaskManager`` kept per
``include_path`` for the whole session (indexing lm-eval's own ~13,900 YAML files takes
about 10 s; a task found in the user's folders is loaded without that index). It refuses,
in one line, what the engine cannot score faithfully: tasks that sample (``do_sample``,
``repeats > 1``), tasks that run generated code, multimodal tasks, and data that is not
available offline. The result is a :class:`~pytest_forgetting.scoring.suites.Suite` of kind
``"lm_eval"`` with one item per document (``"<task>/<doc_id>"``); the task's identity (its
configuration, lm-eval's version and the documents) is part of the suite's fingerprint, so
the result cache and baselines work as for any suite.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.suites import Item, Suite, SuiteSettings

#: lm-eval's own default few-shot seed (``lm_eval.defaults.DEFAULT_OTHER_SEED``).
DEFAULT_FEWSHOT_SEED = 1234

_MANAGERS: dict[tuple[tuple[str, ...], bool], Any] = {}
_LOADED: dict[str, "LoadedTask"] = {}


@dataclass(frozen=True)
class HarnessSettings(SuiteSettings):
    """How an lm-eval task is run (part of the suite's identity, so of its cache key).

    Attributes:
        task: the task or group name as given.
        leaves: the leaf tasks whose documents the suite pools.
        output_types: the leaves' lm-eval output types (``multiple_choice``, ``generate_until``...).
        num_fewshot: the few-shot override (None: the task's own).
        fewshot_seed: the seed of lm-eval's few-shot sampler.
        fewshot_as_multiturn: few-shot examples as chat turns (with ``chat_template``).
        system_instruction: lm-eval's ``system_instruction``.
        metrics: ``(key, metric, filter, higher_is_better, aggregation)`` per declared result,
            ``key`` as lm-eval writes it (``"acc,none"``, ``"exact_match,strict-match"``).
        primary: the key that decides unless a check names another.
        identity: a hash of the leaves' configurations, lm-eval's version and the documents.
    """

    task: str = ""
    leaves: tuple[str, ...] = ()
    output_types: tuple[str, ...] = ()
    num_fewshot: Optional[int] = None
    fewshot_seed: int = DEFAULT_FEWSHOT_SEED
    fewshot_as_multiturn: bool = False
    system_instruction: Optional[str] = None
    metrics: tuple[tuple[str, str, str, bool, str], ...] = ()
    primary: str = ""
    identity: str = ""


@dataclass
class LoadedTask:
    """lm-eval's loaded objects behind one suite (kept for the session, keyed by its identity)."""

    manager: Any
    tasks: dict[str, Any]
    groups: dict[str, Any]
    lm_eval_version: str


def lm_eval_task(
    name: str,
    *,
    samples: Union[int, Mapping[str, Sequence[int]], None] = None,
    seed: int = 0,
    num_fewshot: Optional[int] = None,
    fewshot_seed: int = DEFAULT_FEWSHOT_SEED,
    include_path: Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], None] = None,
    metric: Optional[str] = None,
    filter: Optional[str] = None,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: Optional[bool] = None,
    system_instruction: Optional[str] = None,
    suite_name: Optional[str] = None,
) -> Suite:
    """A suite of one lm-eval task or group, for ``check``/``compare`` like any suite.

    Args:
        name: a task or group lm-eval knows (``arc_easy``, ``mmlu``) or one in ``include_path``.
        samples: how many documents to score, drawn with ``seed`` from the task's documents
            (a group's leaf tasks pooled); or ``{task: [doc_id, ...]}``; None: every document.
        num_fewshot, fewshot_seed: few-shot examples (default: the task's own number, lm-eval's seed).
        include_path: folders (or YAML files' folders) with your own task YAML files.
        metric, filter: which of the task's results decides (default: its first metric under
            its first filter); ``check_all`` checks every ``(metric, filter)``.
        apply_chat_template, fewshot_as_multiturn, system_instruction: as lm-eval's options
            (``fewshot_as_multiturn`` defaults to ``apply_chat_template``).
        suite_name: the display name (default: ``name``).
    """
    from pytest_forgetting.harness.metrics import declared_keys, pick_primary

    paths = _paths(include_path)
    loaded = load_task(name, paths)
    for leaf, task in loaded.tasks.items():
        _refuse_unsupported(name, leaf, task)
    chosen = _chosen_documents(name, loaded.tasks, samples, seed)
    items = []
    for leaf, doc_ids in chosen.items():
        task = loaded.tasks[leaf]
        docs = task.eval_docs
        for doc_id in doc_ids:
            doc = docs[doc_id]
            items.append(Item(id=f"{leaf}/{doc_id}", prompt=_text(task.doc_to_text(doc)),
                              targets=(_expected(task, doc),)))
    keys = declared_keys(name, loaded.tasks)
    primary = pick_primary(name, keys, metric, filter)
    multiturn = apply_chat_template if fewshot_as_multiturn is None else bool(fewshot_as_multiturn)
    identity = _identity(loaded, chosen)
    settings = HarnessSettings(
        template="", chat_template=bool(apply_chat_template), task=name, leaves=tuple(chosen),
        output_types=tuple(sorted({loaded.tasks[leaf].OUTPUT_TYPE for leaf in chosen})), num_fewshot=num_fewshot,
        fewshot_seed=int(fewshot_seed), fewshot_as_multiturn=multiturn, system_instruction=system_instruction,
        metrics=keys, primary=primary, identity=identity,
    )
    _LOADED[identity] = loaded
    return Suite(name=suite_name or name, kind="lm_eval", items=tuple(items), settings=settings,
                 source=f"lm-eval task {name}")


def loaded_of(suite: Suite) -> LoadedTask:
    """The lm-eval objects behind an ``lm_eval`` suite (loaded by :func:`lm_eval_task` in this process)."""
    settings = suite.settings
    loaded = _LOADED.get(getattr(settings, "identity", ""))
    if loaded is None:
        raise ForgettingError(f"suite {suite.name}: its lm-eval task was not loaded in this process; build it with "
                              "lm_eval_task(...) here (suites of lm-eval tasks do not travel between processes)")
    return loaded


def task_manager(paths: tuple[str, ...], defaults: bool) -> Any:
    """lm-eval's ``TaskManager`` for these folders, built once per process."""
    key = (paths, defaults)
    if key not in _MANAGERS:
        from lm_eval.tasks import TaskManager

        _MANAGERS[key] = TaskManager(include_path=list(paths) or None, include_defaults=defaults)
    return _MANAGERS[key]


def load_task(name: str, paths: tuple[str, ...]) -> LoadedTask:
    """lm-eval's Task objects for ``name``; the user's folders alone when the task is theirs."""
    try:
        import lm_eval
    except ImportError:
        raise ForgettingError("lm_eval_task needs lm-evaluation-harness; install the extra: "
                              "pip install 'pytest-forgetting[lm-eval]'") from None
    attempts = [False, True] if paths else [True]
    for defaults in attempts:
        manager = task_manager(paths, defaults)
        if name not in manager.all_tasks:
            continue
        try:
            built = _load(manager, name)
        except KeyError:
            if not defaults:
                continue  # the user's task names one of lm-eval's: index lm-eval's too
            raise
        return LoadedTask(manager, built["tasks"], built["groups"], lm_eval.__version__)
    known = task_manager(paths, True).all_tasks
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    where = f" or in {', '.join(paths)}" if paths else "; pass include_path= for your own YAML tasks"
    raise ForgettingError(f"lm-eval has no task or group {name!r} (lm-eval {lm_eval.__version__}{where}){hint}")


def _load(manager: Any, name: str) -> dict[str, Any]:
    try:
        return manager.load([name])  # type: ignore[no-any-return]
    except KeyError:
        raise
    except Exception as exc:  # the data set cannot be read: say which, and how to provide it
        dataset = _dataset_of(manager, name)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForgettingError(
            f"lm-eval task {name!r}: its data{dataset} could not be loaded ({type(exc).__name__}: {first[:200]}); "
            "run once with network so the datasets cache holds it, or give a YAML task that includes this one and "
            "sets 'dataset_path: json' with 'dataset_kwargs: {data_files: {test: FILE.jsonl}}', then pass "
            "include_path= (relative data_files are read from the current directory)"
        ) from None


def _dataset_of(manager: Any, name: str) -> str:
    config: dict[str, Any] = {}
    entry = manager.task_index.get(name)
    if entry is not None and entry.yaml_path is not None:
        try:
            from lm_eval.tasks._yaml_loader import load_yaml

            config = load_yaml(entry.yaml_path, resolve_func=False, recursive=True)
        except Exception:  # the name alone still helps
            pass
    path = config.get("dataset_path")
    if not path:
        return ""
    subset = f" ({config['dataset_name']})" if config.get("dataset_name") else ""
    return f" (dataset {path}{subset})"


def _refuse_unsupported(name: str, leaf: str, task: Any) -> None:
    config = task.config
    kwargs = dict(getattr(config, "generation_kwargs", None) or {})
    where = f"lm-eval task {name!r}" + (f" (its task {leaf!r})" if leaf != name else "")
    if (getattr(config, "repeats", 1) or 1) > 1 or kwargs.get("do_sample") or float(kwargs.get("temperature") or 0) > 0:
        raise ForgettingError(
            f"{where} samples (repeats={getattr(config, 'repeats', 1)}, do_sample={kwargs.get('do_sample')}, "
            f"temperature={kwargs.get('temperature')}); forgetting checks decode greedily, so base and tuned would "
            "not be compared on the same outputs; use a greedy variant of the task (repeats: 1, do_sample: false)"
        )
    if getattr(task, "UNSAFE_CODE", False) or getattr(config, "unsafe_code", False):
        raise ForgettingError(f"{where} runs generated code; pytest-forgetting does not run such tasks")
    if getattr(task, "MULTIMODAL", False):
        raise ForgettingError(f"{where} needs images; pytest-forgetting scores text models only")


def _chosen_documents(name: str, tasks: Mapping[str, Any], samples: Any, seed: int) -> dict[str, list[int]]:
    """Leaf task -> sorted document ids (lm-eval pairs a ``samples`` list with documents by position)."""
    sizes = {leaf: len(task.eval_docs) for leaf, task in tasks.items()}
    if samples is None:
        chosen = {leaf: list(range(size)) for leaf, size in sizes.items()}
    elif isinstance(samples, Mapping):
        chosen = {}
        for leaf, ids in samples.items():
            if leaf not in sizes:
                raise ForgettingError(f"lm-eval task {name!r}: samples names {leaf!r}, which is not one of its tasks "
                                      f"({', '.join(sizes)})")
            bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < sizes[leaf]]
            if bad:
                raise ForgettingError(f"lm-eval task {name!r}: samples for {leaf!r} holds {bad[0]!r}; expected "
                                      f"document ids from 0 to {sizes[leaf] - 1}")
            chosen[leaf] = sorted(set(ids))
    elif isinstance(samples, int) and not isinstance(samples, bool) and samples > 0:
        pool = [(leaf, i) for leaf, size in sizes.items() for i in range(size)]
        picked = pool if samples >= len(pool) else random.Random(seed).sample(pool, samples)
        chosen = {leaf: sorted(i for lf, i in picked if lf == leaf) for leaf in sizes}
    else:
        raise ForgettingError(f"lm-eval task {name!r}: samples={samples!r}; expected a number of documents (> 0), "
                              "{task: [doc_id, ...]}, or None for every document")
    chosen = {leaf: ids for leaf, ids in chosen.items() if ids}
    if not chosen:
        raise ForgettingError(f"lm-eval task {name!r}: no documents to score (its tasks have {sum(sizes.values())})")
    return chosen


def _identity(loaded: LoadedTask, chosen: Mapping[str, Sequence[int]]) -> str:
    digest = hashlib.sha256(loaded.lm_eval_version.encode())
    for leaf, ids in chosen.items():
        task = loaded.tasks[leaf]
        digest.update(json.dumps({"task": leaf, "config": _config_of(task)}, sort_keys=True, default=_named).encode())
        docs = task.eval_docs
        for doc_id in ids:
            digest.update(json.dumps(docs[doc_id], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _config_of(task: Any) -> dict[str, Any]:
    config = dict(task.dump_config())
    config.get("metadata", {}).pop("config_source", None)  # where the YAML lives is not what it does
    return config


def _named(value: Any) -> str:
    """A function in a task's configuration, by name and source (so editing its utils.py re-scores)."""
    if callable(value):
        try:
            source = hashlib.sha256(inspect.getsource(value).encode()).hexdigest()[:16]
        except (OSError, TypeError):
            source = ""
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}:{source}"
    return str(value)


def _expected(task: Any, doc: Any) -> str:
    """The document's target as a reader sees it: a multiple-choice answer's text, not its index."""
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(choices):
            return _text(choices[target])
    return _text(target)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _paths(include_path: Any) -> tuple[str, ...]:
    if include_path is None:
        return ()
    given = [include_path] if isinstance(include_path, (str, os.PathLike)) else list(include_path)
    paths = []
    for path in given:
        resolved = Path(path).expanduser().resolve()
        if not resolved.exists():
            raise ForgettingError(f"include_path {os.fspath(path)!r} does not exist; give the folder holding your "
                                  "task YAML files")
        paths.append(str(resolved))
    return tuple(paths)
