"""Where weights go: a model sharded by a device map scores exactly as unsplit; one GPU per xdist worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_forgetting import Backend, Capabilities, EvaluationSession, Identity, load_suite
from pytest_forgetting.backends.placement import (
    check_placement,
    parse_device_map,
    parse_max_memory,
    worker_device,
)
from pytest_forgetting.backends.spec import LoadOptions, ModelSpec
from pytest_forgetting.errors import ForgettingError
from tests import tiny


@pytest.fixture(scope="module")
def four_layers(tmp_path_factory):
    """A 4-layer tiny Llama (about 0.8 MB in float32), an adapter, and a small MC and generation suite."""
    root = tmp_path_factory.mktemp("placement")
    base = tiny.build_llama(root / "base", hidden=64, layers=4)
    adapter = tiny.build_lora(root / "lora", base)
    (root / "mc.jsonl").write_text("\n".join(json.dumps(
        {"question": f"Q{i}: 2 + {i} =", "choices": [str(2 + i), str(3 + i), "none"], "answer": 0}) for i in range(8)))
    (root / "gen.jsonl").write_text("\n".join(json.dumps({"prompt": f"Say {i} and", "target": str(i)})
                                              for i in range(6)))
    suites = (load_suite(root / "mc.jsonl", "multiple_choice"),
              load_suite(root / "gen.jsonl", "generation", max_new_tokens=8))
    return base, adapter, suites


def _everything(options: LoadOptions, base: Path, adapter: Path, suites) -> tuple[list, object]:
    session = EvaluationSession(str(base), {"lora": str(adapter)}, options=options)
    records = [session.scores(slot, suite).records for slot in (session.base, session.candidates[0]) for suite in suites]
    records.append(session.drift("lora", suites[1], max_kl=1.0).records)
    return records, session.base.backend()


def test_a_model_split_by_a_memory_limit_scores_exactly_as_the_unsplit_model(four_layers):
    base, adapter, suites = four_layers
    whole, one = _everything(LoadOptions(device="cpu"), base, adapter, suites)
    split, sharded = _everything(LoadOptions(device_map="auto", max_memory={"cpu": "500KB"}), base, adapter, suites)
    placed = set(sharded.shared.model.base_model.model.hf_device_map.values())
    assert placed == {"cpu", "disk"}  # the limit split it: some layers in memory, the rest offloaded
    assert not hasattr(one.shared.model, "hf_device_map")
    assert str(sharded.shared.device) == "cpu"
    assert split == whole  # log-likelihoods, generations and drift of base and adapter, exactly
    assert whole[0] != whole[2]  # the adapter changes the scores: the comparison is not vacuous


def test_xdist_workers_are_pinned_one_gpu_each_and_explicit_devices_are_kept():
    assert [worker_device("auto", f"gw{n}", 4) for n in range(6)] == \
        ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert worker_device("auto", "gw3", 1) == "auto"  # one GPU (or none): nothing to spread
    assert worker_device("auto", None, 4) == "auto"  # not under xdist
    assert worker_device("cuda:2", "gw0", 4) == "cuda:2"  # the user chose
    assert worker_device("cpu", "gw1", 4) == "cpu"


def test_loading_under_a_worker_asks_for_its_pinned_gpu(four_layers, monkeypatch):
    import torch

    base, _, _ = four_layers
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ForgettingError, match=r"--device cuda:1: no CUDA GPU is available here"):
        EvaluationSession(str(base), {"self": str(base)}).base.backend()


class PlacesItself(Backend):
    """A plugin's backend that places its model itself (as a served model does)."""

    name = "served-like"
    capabilities = Capabilities(generate_text=True)

    def identity(self) -> Identity:
        return Identity("served-like", "served", "remote")


@pytest.mark.parametrize("make, expected", [
    (lambda: parse_device_map("everywhere"), "--device-map 'everywhere': expected one of auto, balanced"),
    (lambda: parse_max_memory("0:20GiB"), "'0:20GiB' is not DEVICE=SIZE; expected e.g. 0=20GiB"),
    (lambda: parse_max_memory("gpu0=20GiB"), "'gpu0=20GiB' is not DEVICE=SIZE"),
    (lambda: parse_max_memory("0=lots"), "'0=lots' is not DEVICE=SIZE"),
    (lambda: parse_max_memory("0=70GiB,cuda:0=1GiB"), "device cuda:0 is given twice; give each device one limit"),
    (lambda: check_placement("auto", None, {"0": "20GiB"}), "--max-memory limits what --device-map places"),
    (lambda: check_placement("cuda:0", "auto", None), "--device cuda:0 with --device-map auto"),
])
def test_bad_placement_settings_fail_in_one_line(make, expected):
    with pytest.raises(ForgettingError) as refused:
        make()
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_a_device_map_for_a_backend_that_cannot_shard_is_refused():
    def remote(role: str) -> ModelSpec:
        return ModelSpec(role=role, source="remote-model", path=None, kind="external")

    session = EvaluationSession(remote("base"), {"remote": remote("tuned")}, options=LoadOptions(device_map="auto"),
                                loader=lambda spec, options, shared: PlacesItself())
    with pytest.raises(ForgettingError) as refused:
        session.base.backend()
    message = str(refused.value)
    assert "--device-map auto shards local transformers models" in message and "PlacesItself" in message
    assert "\n" not in message
    assert parse_max_memory(" 0=20GiB, 1 = 20 GiB ,cpu=64GB") == {"0": "20GiB", "1": "20GiB", "cpu": "64GB"}


def test_placement_options_on_the_command_line(pytester, four_layers):
    base, adapter, _ = four_layers
    pytester.makepyfile("def test_pair(base_model, tuned_model):\n    assert base_model.shared.device.type == 'cpu'\n")
    result = pytester.runpytest("--base-model", str(base), "--tuned-model", str(adapter), "--device-map", "auto",
                                "--max-memory", "cpu=500KB", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--tuned-model", str(adapter), "--max-memory", "0=1GiB")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and "add --device-map auto" in errors[0]
