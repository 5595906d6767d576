"""The session header (``pytest_report_header``) and what every report says about the models used.

The header names the base and each candidate as resolved (source, folder, kind, fingerprint
prefix), any model id that stood for other weights than its name suggests (the embedded
SmolLM2 in place of the hub's), and the device, dtype, batch size, cache and baseline settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from pytest_forgetting.engine.models import ModelSlot
    from pytest_forgetting.engine.session import EvaluationSession


def describe_slot(slot: "ModelSlot") -> str:
    """``source -> folder (kind, fingerprint 1a2b3c4d5e6f)`` for a local model, ``source (served)`` otherwise."""
    spec = slot.spec
    if spec is None:
        return f"{slot.name} (a backend handed in)"
    if spec.kind == "external":
        return f"{spec.source} (served, loaded by its plugin)"
    from pytest_forgetting.backends.fingerprint import spec_fingerprint

    where = "" if str(spec.path) == spec.source else f" -> {spec.path}"
    return f"{spec.source}{where} ({spec.kind}, fingerprint {spec_fingerprint(spec)[:12]})"


def substitutions(evaluation: "EvaluationSession") -> dict[str, str]:
    """Model ids that stood for other weights, by role or candidate label (see ``ModelSpec.substitution``).

    An adapter's base is the session's base, so the base's line covers it.
    """
    slots = [("base", evaluation.base), *((slot.label, slot) for slot in evaluation.candidates)]
    found = {label: getattr(slot.spec, "substitution", None) for label, slot in slots}
    return {label: text for label, text in found.items() if text}


def header_lines(evaluation: Optional["EvaluationSession"], settings: dict[str, Any]) -> list[str]:
    """The lines ``pytest_report_header`` shows."""
    if evaluation is None:
        return ["forgetting: no tuned model given (--tuned-model PATH); forgetting tests are skipped"]
    lines = [f"forgetting: base {describe_slot(evaluation.base)}"]
    for slot in evaluation.candidates:
        lines.append(f"forgetting: tuned {slot.label}: {describe_slot(slot)}")
    for who, text in substitutions(evaluation).items():
        lines.append(f"forgetting: note: {who}: {text}")
    options = evaluation.options
    lines.append(f"forgetting: device {options.device}"
                 + (f" (device map {options.device_map})" if options.device_map else "")
                 + f", dtype {options.dtype}, batch size {options.batch_size or 'auto'}; "
                 + f"cache {settings.get('cache') or 'off'}; baseline {settings.get('baseline') or 'none'}")
    return lines
