"""lm-evaluation-harness tasks as paired forgetting checks (the optional ``lm-eval`` extra).

* :mod:`~pytest_forgetting.harness.tasks`: :func:`lm_eval_task` loads a task or group once
  per session and makes it a suite of kind ``"lm_eval"`` (one item per document);
* :mod:`~pytest_forgetting.harness.metrics`: the task's per-document metrics as declared
  metrics (direction from ``higher_is_better``, corpus aggregations kept for the bootstrap);
* :mod:`~pytest_forgetting.harness.model`: an ``lm_eval.api.model.LM`` over any backend;
* :mod:`~pytest_forgetting.harness.run`: one model's scores on some of the task's documents,
  through ``lm_eval.simple_evaluate`` with the safe settings.
"""
