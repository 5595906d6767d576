"""Where local models' weights go: one device, sharded over devices by a device map, one GPU per worker.

Three scales, three settings (the README has a recipe for each):

* one device: ``--device auto|cpu|cuda:N`` (the default);
* a model larger than one GPU: ``--device-map auto`` (accelerate places the layers over every
  visible GPU, then the CPU, then disk) with ``--max-memory 0=70GiB,1=70GiB,cpu=200GiB`` per
  device; inputs enter on the device of the input embeddings and results come back there, so
  scores are those of the unsplit model;
* several GPUs and a model that fits one: pytest-xdist with one worker per GPU
  (``-n 4 --dist loadgroup``); ``--device auto`` pins worker ``gwN`` to ``cuda:(N mod GPUs)``,
  and each worker loads the base and the tuned model on that one GPU, so a test's base and
  tuned always run on the same worker and device.

This module parses and decides; it imports no torch (the plugin module reads it).
"""

from __future__ import annotations

import re
from typing import Mapping, Optional

from pytest_forgetting.errors import ForgettingError

#: ``--device-map`` strategies (accelerate's).
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_DEVICE_KEY = re.compile(r"^(\d+|cpu|disk|mps|cuda:\d+)$")
_WORKER = re.compile(r"^gw(\d+)$")


def parse_device_map(value: str) -> str:
    """One of :data:`DEVICE_MAPS`."""
    value = value.strip()
    if value not in DEVICE_MAPS:
        raise ForgettingError(f"--device-map {value!r}: expected one of {', '.join(DEVICE_MAPS)} (accelerate's "
                              "placement strategies)")
    return value


def parse_max_memory(value: str) -> dict[str, str]:
    """``0=20GiB,1=20GiB,cpu=64GiB`` as accelerate's ``max_memory`` (GPU indexes, ``cpu``, ``disk``)."""
    limits: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in value.split(","))):
        device, sep, size = (text.strip() for text in part.partition("="))
        if not sep or not _DEVICE_KEY.match(device) or not _SIZE.match(size):
            raise ForgettingError(f"--max-memory {value!r}: {part!r} is not DEVICE=SIZE; expected e.g. "
                                  "0=20GiB,1=20GiB,cpu=64GiB (GPU index, cpu or disk = a size in B, KB, MB, GB, GiB...)")
        key = device.removeprefix("cuda:")
        if key in limits:
            raise ForgettingError(f"--max-memory {value!r}: device {device} is given twice; give each device one "
                                  "limit, e.g. 0=20GiB,1=20GiB,cpu=64GiB")
        limits[key] = size.replace(" ", "")
    if not limits:
        raise ForgettingError(f"--max-memory {value!r}: no limits given; expected e.g. 0=20GiB,1=20GiB,cpu=64GiB")
    return limits


def accelerate_limits(limits: Mapping[str, str]) -> dict[object, str]:
    """``max_memory`` keyed as accelerate wants it (GPU indexes as integers)."""
    return {int(key) if key.isdigit() else key: size for key, size in limits.items()}


def check_placement(device: str, device_map: Optional[str], max_memory: Optional[Mapping[str, str]]) -> None:
    """Fail with one line on settings that contradict each other."""
    if max_memory and not device_map:
        raise ForgettingError("--max-memory limits what --device-map places on each device; add --device-map auto "
                              "(or leave --max-memory out)")
    if device_map and device != "auto":
        raise ForgettingError(f"--device {device} with --device-map {device_map}: the device map places the model "
                              "itself; leave --device at auto, or drop --device-map to use one device")


def worker_device(device: str, worker: Optional[str], gpus: int) -> str:
    """The device of a pytest-xdist worker: ``auto`` pins worker ``gwN`` to ``cuda:(N mod gpus)``
    when several GPUs are visible; any other setting, or no worker, is kept as given."""
    if device != "auto" or not worker or gpus < 2:
        return device
    match = _WORKER.match(worker)
    return f"cuda:{int(match.group(1)) % gpus}" if match else device
