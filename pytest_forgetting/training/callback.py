"""``ForgettingCallback``: forgetting checks while a transformers ``Trainer`` (or TRL's ``SFTTrainer``) trains.

::

    from pytest_forgetting.training import ForgettingCallback

    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.add_callback(ForgettingCallback(trainer, "tests/forgetting/checks.toml", every=50, samples=100,
                                            stop_on_forgetting=True, report_dir="out/forgetting"))
    trainer.train()

At ``on_train_begin`` the base is scored once on every check (through the result cache: a base
already scored costs nothing). Then every ``every`` steps (or, with ``every=None``, at each of
the Trainer's own evaluations) the live model is scored on the same items, compared with the
base item by item, and logged through the Trainer's ``log`` (so the console, TensorBoard, W&B
and MLflow receive it): ``forgetting/<capability>/delta``, ``.../bound`` (the decision's
confidence bound), ``.../held`` (1 kept, 0 not), ``.../forgotten`` and ``.../gained``; a target
capability logs ``.../gain``. With ``stop_on_forgetting`` a general capability that fails
non-inferiority sets ``control.should_training_stop``, the reason in the log. At the end the
callback writes the plugin's reports and ``forgetting_curve.png`` (delta per capability against
step, with the tolerance band) to ``report_dir``.

Under distributed training the main process scores while the others wait at a barrier, and the
decision to stop reaches every process.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from transformers import TrainerCallback

from pytest_forgetting.checks import Check, CheckSet
from pytest_forgetting.errors import ForgettingError

logger = logging.getLogger("pytest_forgetting.training")


class ForgettingCallback(TrainerCallback):
    """Forgetting checks at evaluation time (see the module docstring).

    Args:
        trainer: the Trainer whose ``log`` receives the metrics (add the callback to it).
        checks: a :class:`~pytest_forgetting.checks.CheckSet`, a list of checks, or a checks file.
        only: names (or capabilities) of the checks to run; None: all.
        every: score every N optimizer steps; None: at each of the Trainer's evaluations.
        samples: items per check, drawn with ``seed`` (the same ones every time); None: all.
        stop_on_forgetting: stop training when a general capability fails.
        report_dir: where to write the reports and the forgetting curve at the end.
        cache: a result cache folder (the base's results are kept there and reused).
        base_model: the checkpoint folder the base was loaded from: the base then has the
            plugin's identity for it, so the plugin's cache and a committed ``baseline`` serve it.
        baseline: a baseline folder the plugin recorded (``--forgetting-update-baseline``) for
            ``base_model``; the base's results are read from it instead of scored.
        tolerance, alpha, policy: session defaults for checks that set none.
        tokenizer: the tokenizer, when the Trainer has none (``processing_class``).
    """

    def __init__(self, trainer: Any, checks: Union[CheckSet, Sequence[Check], str, "os.PathLike[str]"], *,
                 only: Optional[Sequence[str]] = None, every: Optional[int] = None, samples: Optional[int] = None,
                 seed: int = 0, stop_on_forgetting: bool = False,
                 report_dir: Union[str, "os.PathLike[str]", None] = None,
                 cache: Union[str, "os.PathLike[str]", None] = None,
                 base_model: Union[str, "os.PathLike[str]", None] = None,
                 baseline: Union[str, "os.PathLike[str]", None] = None, tolerance: Any = None,
                 alpha: Optional[float] = None, policy: Optional[str] = None, tokenizer: Any = None) -> None:
        if every is not None and every < 1:
            raise ForgettingError(f"ForgettingCallback: every={every}; expected a number of steps >= 1, or None "
                                  "(at each of the Trainer's evaluations)")
        self.trainer = trainer
        self.checks = CheckSet.coerce(checks).select(only)
        self.every, self.samples, self.seed = every, samples, seed
        self.stop_on_forgetting = stop_on_forgetting
        self.report_dir = Path(report_dir) if report_dir is not None else None
        if baseline is not None and base_model is None:
            raise ForgettingError("ForgettingCallback: a baseline is recorded for a base model folder; give "
                                  "base_model= (the folder the base was loaded from) with baseline=")
        self._cache, self._defaults, self._tokenizer = cache, (tolerance, alpha, policy), tokenizer
        self._base_model, self._baseline = base_model, baseline
        self.session: Any = None
        self.live: Any = None
        self.suites: dict[str, Any] = {}
        #: One entry per evaluation: ``{"step": N, "results": [ComparisonResult, ...], "seconds": s}``.
        self.history: list[dict[str, Any]] = []
        #: Why training was stopped (None: it was not).
        self.stopped: Optional[str] = None
        #: The run's settings and what to try, once a general capability failed.
        self.hint: Optional[str] = None
        self._scored_steps: set[int] = set()

    # -- the Trainer's events ---------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Load the checks' suites and score the base on all of them (before the first step)."""
        tokenizer = self._tokenizer or kwargs.get("processing_class") or kwargs.get("tokenizer")
        self._on_main(state, lambda: self._begin(args, model, tokenizer))

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Every ``every`` steps: score the live model."""
        if self.every is not None and state.global_step % self.every == 0:
            self._evaluate(args, state, control)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """With ``every=None``: score the live model at each of the Trainer's evaluations."""
        if self.every is None:
            self._evaluate(args, state, control)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Write the reports and the forgetting curve."""
        if state.is_world_process_zero and self.report_dir is not None and self.history:
            self.write_reports(self.report_dir)

    # -- scoring ----------------------------------------------------------------------------
    def _begin(self, args: Any, model: Any, tokenizer: Any) -> None:
        from pytest_forgetting.engine.session import EvaluationSession
        from pytest_forgetting.engine.stored import StoredResults
        from pytest_forgetting.storage.baseline import Baseline
        from pytest_forgetting.storage.cache import ResultCache
        from pytest_forgetting.training.live import LiveModel, training_state_kept

        if model is None:
            raise ForgettingError("ForgettingCallback: the Trainer passed no model to the callback")
        self.live = LiveModel(model, tokenizer, name=Path(args.output_dir).name or "model")
        if not self.live.peft and any(check.measure == "drift" for check in self.checks):
            drift = ", ".join(check.name for check in self.checks if check.measure == "drift")
            raise ForgettingError(f"ForgettingCallback: drift checks ({drift}) compare with the base at every "
                                  "evaluation, and a full fine-tune overwrites the base's weights; train a PEFT "
                                  "adapter, or leave the drift checks out (only=[...])")
        tolerance, alpha, policy = self._defaults
        self.session = EvaluationSession(self.live.base(self._base_model), None, tolerance=tolerance, alpha=alpha,
                                         policy=policy)
        self.session.stored = StoredResults(ResultCache(Path(self._cache)) if self._cache is not None else None,
                                            Baseline(Path(self._baseline)) if self._baseline is not None else None,
                                            base_only=True)
        self.suites = {check.name: check.load(self.checks.root, samples=self.samples, seed=self.seed)
                       for check in self.checks}
        started = time.perf_counter()
        with training_state_kept(model):
            for check in self.checks:  # refused here, before training, if the model cannot serve a suite
                self._check_servable(check)
                if check.measure == "compare":
                    self.session.scores(self.session.base, self.suites[check.name])
        #: Seconds spent scoring the base (0 when it all came from the cache).
        self.base_seconds = time.perf_counter() - started

    def _check_servable(self, check: Check) -> None:
        from pytest_forgetting.engine.requirements import check_scorable
        from pytest_forgetting.scoring.kinds import render_text

        suite = self.suites[check.name]
        backend = self.session.base.backend()
        check_scorable(backend.name, backend.capabilities, suite)
        if suite.settings.chat_template:
            try:
                render_text(backend, suite, suite.items[0])
            except Exception as exc:  # noqa: BLE001 - becomes one line
                raise ForgettingError(f"ForgettingCallback: check {check.name!r} uses the chat template, which this "
                                      f"model's tokenizer cannot apply ({str(exc).splitlines()[0][:200]}); set "
                                      "chat_template = false for it, or give the tokenizer a chat template") from None

    def _evaluate(self, args: Any, state: Any, control: Any) -> None:
        if state.global_step in self._scored_steps:
            return
        self._scored_steps.add(state.global_step)
        reason = self._on_main(state, lambda: self._score_step(state.global_step))
        if reason and self.stop_on_forgetting:
            self.stopped = reason
            control.should_training_stop = True

    def _score_step(self, step: int) -> Optional[str]:
        """Score the live model at ``step``, log it, and say why to stop (None: every general capability held)."""
        from pytest_forgetting.training.live import training_state_kept

        if self.session is None:
            raise ForgettingError("ForgettingCallback: scored before on_train_begin; add the callback to the "
                                  "Trainer before train() (trainer.add_callback(callback))")
        slot = self.session.add_candidate(f"step-{step}", self.live.at_step(step))
        started = time.perf_counter()
        with training_state_kept(self.live.model):
            results = [check.run(self.session, slot, self.suites[check.name], test=f"step {step}")
                       for check in self.checks]
        self.history.append({"step": step, "results": results, "seconds": time.perf_counter() - started})
        control = getattr(self.trainer, "control", None)
        pending = getattr(control, "should_log", False)
        self.trainer.log(training_logs([check.name for check in self.checks], results))
        if control is not None:  # logging resets the flag: the Trainer's own loss log of this step still happens
            control.should_log = pending
        failed = [r for r in results if not r.extra.get("target") and not r.passed]
        if not failed:
            return None
        reason = (f"step {step}: forgetting in {', '.join(r.capability for r in failed)} ("
                  + "; ".join(f"{r.capability} delta {r.delta:+.3f}, bound {_bound(r):+.3f}, tolerance "
                              f"{r.tolerance_abs:.3f}" for r in failed) + ")")
        self.hint = self._hint()
        for result in failed:
            result.extra["hints"] = self.hint
        logger.warning("pytest-forgetting: %s%s; %s", reason, "; stopping training" if self.stop_on_forgetting else "",
                       self.hint)
        return reason

    def _hint(self) -> str:
        """The run's settings and what to try (:mod:`pytest_forgetting.training.hints`)."""
        from pytest_forgetting.training.hints import RunSettings, hint_text

        trainer = self.trainer
        settings = RunSettings.from_trainer(trainer.args, self.live.model, trainer.state)
        held = self.last_step_held()
        return hint_text(settings, last_held=f"step {held}" if held is not None else None)

    def _on_main(self, state: Any, work: Any) -> Any:
        """Run ``work`` on the main process while the others wait; every process gets its answer."""
        import torch.distributed as dist

        distributed = dist.is_available() and dist.is_initialized()
        answer = work() if state.is_world_process_zero else None
        if distributed:
            shared = [answer]
            dist.broadcast_object_list(shared, src=0)
            answer = shared[0]
        return answer

    # -- reports ----------------------------------------------------------------------------
    @property
    def results(self) -> list[Any]:
        """Every evaluation's results, in order."""
        return [result for entry in self.history for result in entry["results"]]

    def last_step_held(self) -> Optional[int]:
        """The last evaluated step at which every general capability still held (None: none did)."""
        held = [entry["step"] for entry in self.history
                if all(r.passed for r in entry["results"] if not r.extra.get("target"))]
        return held[-1] if held else None

    def write_reports(self, folder: Union[str, "os.PathLike[str]"]) -> list[Path]:
        """The plugin's reports (report.json, report.md, plot.png) and forgetting_curve.png in ``folder``."""
        from pytest_forgetting.report.files import write_reports
        from pytest_forgetting.training.curve import plot_forgetting_curve

        folder = Path(folder)
        written = write_reports(self.results, folder, models={
            "base": self.session.base.name, "candidates": [slot.label for slot in self.session.candidates],
            "training": {"stopped": self.stopped, "last_step_held": self.last_step_held(), "hints": self.hint}})
        curve = plot_forgetting_curve(self.history, folder / "forgetting_curve.png")
        return written + ([curve] if curve is not None else [])


def _bound(result: Any) -> float:
    """The decision's confidence bound on the delta (lower for higher-is-better metrics)."""
    return result.ci_low if result.higher_is_better else result.ci_high


def training_logs(names: Sequence[str], results: Sequence[Any]) -> dict[str, float]:
    """The numbers one evaluation logs, keyed ``forgetting/<check name>/<quantity>`` (the name is the
    capability, with ``/drift`` for a drift check)."""
    logs: dict[str, float] = {}
    for name, result in zip(names, results):
        key = f"forgetting/{name}"
        logs[f"{key}/delta"] = float(result.delta)
        logs[f"{key}/bound"] = float(_bound(result))
        logs[f"{key}/held"] = 1.0 if result.passed else 0.0
        logs[f"{key}/forgotten"] = float(result.forgotten)
        logs[f"{key}/gained"] = float(result.gained)
        if result.extra.get("target"):
            oriented = result.delta if result.higher_is_better else -result.delta
            logs[f"{key}/gain"] = float(oriented)
    return logs
