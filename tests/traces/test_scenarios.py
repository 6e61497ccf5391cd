"""Scenarios: the registry, GPU-count overrides, resolve_scenario's rules, and fast loading."""

import time

import pytest
from lobra.costmodel.specs import GPUS, MODEL_CONFIGS
from lobra.traces import SCENARIOS, Scenario, TraceError, load_scenario, register_scenario, resolve_scenario
from lobra.traces.scenario import ScenarioDef, _scenario_workload
from lobra.traces.synthetic import cached_fits

EXPECTED = {
    "paper-7b": ("llama2-7b", "a100-40gb", 16, 6),
    "paper-70b": ("llama2-70b", "a800-80gb", 64, 12),
    "paper-70b-4task": ("llama2-70b", "a800-80gb", 64, 4),
    "real-7b": ("llama2-7b", "a100-40gb", 16, 6),
    "online-7b": ("llama2-7b", "a100-40gb", 16, 4),
    "tiny-cpu": ("tiny", "cpu", 4, 3),
    "scale-1k": ("llama3-70b", "h100-80gb", 1024, 64),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registered_scenarios(name):
    sc = load_scenario(name)
    assert (sc.model, sc.gpu, sc.num_gpus, len(sc.workload)) == EXPECTED[name]
    assert sc.model in MODEL_CONFIGS and sc.gpu in GPUS
    assert all(t.max_len <= 16384 for t in sc.workload)


def test_registry_refuses_duplicates_and_unknown_names():
    assert set(SCENARIOS) == set(EXPECTED)
    with pytest.raises(TraceError, match="already registered"):
        register_scenario(ScenarioDef("paper-7b", "x", "paper-7b.yaml", "llama2-7b", "a100-40gb", 16))
    with pytest.raises(TraceError, match="unknown scenario 'nope'; choose from paper-7b"):
        load_scenario("nope")


def test_scale_1k_draws_its_tenants_from_the_papers_tasks():
    """64 tenants, each one of paper-70b's 12 tasks (its moments and batch size) under a name of its own."""
    paper = {t.name: t for t in load_scenario("paper-70b").workload}
    scale = load_scenario("scale-1k").workload
    assert len(set(scale.names)) == 64
    for t in scale:
        base = paper[t.name.rsplit("-", 1)[0]]
        assert t.global_batch_size == base.global_batch_size and t.max_len == base.max_len
        moments = ("mean", "skewness", "kurtosis", "cap")
        assert [getattr(t.spec.trace, m) for m in moments] == [getattr(base.spec.trace, m) for m in moments]
        assert t.spec.trace.samples == 20000
    assert len({t.name.rsplit("-", 1)[0] for t in scale}) >= 10  # a draw, not one task repeated


def test_real_and_tiny_scenarios_span_lengths():
    real = load_scenario("real-7b").workload
    means = [t.stats.mean for t in real]
    assert min(means) < 200 and max(means) > 5000  # short to very long
    assert real.task("leval").num_overflow > 0 and max(t.stats.max for t in real) == 16384
    tiny = load_scenario("tiny-cpu").workload
    assert all(t.max_len <= 1024 and t.global_batch_size <= 16 for t in tiny)


def test_gpu_count_override_and_range():
    assert load_scenario("paper-70b-4task", num_gpus=128).num_gpus == 128
    assert load_scenario("paper-70b-4task", 16).num_gpus == 16
    for bad in (8, 512):
        with pytest.raises(TraceError, match="16..256 GPUs"):
            load_scenario("paper-70b-4task", bad)
    assert resolve_scenario("paper-7b", num_gpus=32).num_gpus == 32


def test_resolve_with_tasks_file(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("tasks:\n  - {name: a, trace: gsm8k_train, global_batch_size: 4, max_len: 256}\n")
    sc = resolve_scenario(tasks=path, model="llama2-13b", gpu="h100-80gb", num_gpus=8)
    assert isinstance(sc, Scenario) and sc.name == "mix" and sc.num_gpus == 8 and sc.workload.names == ["a"]
    cfg = tmp_path / "config.json"
    cfg.write_text("{}")
    assert resolve_scenario(tasks=path, model=str(cfg), gpu="cpu", num_gpus=2).model == str(cfg)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "give a scenario name"),
        ({"scenario": "paper-7b", "tasks": "x.yaml"}, "not both"),
        ({"scenario": "paper-7b", "model": "llama2-13b"}, "fixes the model"),
        ({"tasks": "x.yaml", "model": "llama2-7b"}, r"missing: gpu, num_gpus"),
        ({"tasks": "x.yaml", "model": "gpt-5", "gpu": "a100-40gb", "num_gpus": 4}, "unknown model 'gpt-5'"),
        ({"tasks": "x.yaml", "model": "llama2-7b", "gpu": "tpu", "num_gpus": 4}, "unknown GPU 'tpu'"),
        (
            {"tasks": "x.yaml", "model": "llama2-7b", "gpu": "cpu", "num_gpus": 0},
            "num_gpus must be a positive",
        ),
        ({"tasks": "missing.yaml", "model": "llama2-7b", "gpu": "cpu", "num_gpus": 1}, "does not exist"),
    ],
)
def test_resolve_errors(kwargs, match):
    with pytest.raises(TraceError, match=match):
        resolve_scenario(**kwargs)


def test_loading_paper_70b_is_fast():
    assert len(cached_fits()) == 12
    _scenario_workload.cache_clear()
    start = time.perf_counter()
    sc = load_scenario("paper-70b")
    elapsed = time.perf_counter() - start
    assert sc.workload.sequences_per_step == 1696
    assert elapsed < 1.5, elapsed  # the bar is 1 s; ~0.2 s here with the shipped fits, margin for a busy VM
