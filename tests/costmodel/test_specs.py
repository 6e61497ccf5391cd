import json

import pytest
from lobra.costmodel import CostModelError, load_gpu_spec, load_model_spec
from lobra.costmodel.specs import GPUS, MODEL_CONFIGS

REQUIRED_MODELS = [
    "llama2-7b",
    "llama2-13b",
    "llama2-70b",
    "llama3-8b",
    "llama3-70b",
    "qwen2.5-7b",
    "qwen2.5-32b",
    "qwen2.5-72b",
    "paper-32b",
    "tiny",
]


@pytest.mark.parametrize("name", REQUIRED_MODELS)
def test_every_required_model_builds_its_transformers_config(name):
    spec = load_model_spec(name)
    hf = spec.to_hf_config()
    assert hf.hidden_size == spec.hidden_size
    assert hf.num_hidden_layers == spec.num_layers
    assert hf.num_key_value_heads == spec.num_kv_heads
    assert type(hf).__name__ == {"llama": "LlamaConfig", "qwen2": "Qwen2Config"}[spec.arch]


@pytest.mark.parametrize(
    "name,billions",
    [
        ("llama2-7b", 6.74),
        ("llama2-13b", 13.0),
        ("llama2-70b", 69.0),
        ("llama3-8b", 8.03),
        ("qwen2.5-72b", 72.7),
        ("paper-32b", 32.5),
    ],
)
def test_parameter_counts_match_published_sizes(name, billions):
    assert load_model_spec(name).num_params / 1e9 == pytest.approx(billions, rel=0.02)


def test_tiny_param_count_equals_the_real_hf_model():
    import torch  # noqa: F401
    from transformers import LlamaForCausalLM

    spec = load_model_spec("tiny")
    model = LlamaForCausalLM(spec.to_hf_config())
    assert spec.num_params == sum(p.numel() for p in model.parameters())


def test_lora_params_hand_computed():
    spec = load_model_spec("llama2-7b")
    # rank 16 on q and down: 16*(4096+4096) + 16*(11008+4096)
    assert spec.lora_params_per_layer(16, ("q_proj", "down_proj")) == 16 * 8192 + 16 * 15104
    with pytest.raises(CostModelError, match="unknown LoRA target"):
        spec.lora_params_per_layer(16, ("wq",))


def test_model_from_local_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(MODEL_CONFIGS["llama2-7b"]))
    spec = load_model_spec(str(tmp_path))
    assert spec.num_params == load_model_spec("llama2-7b").num_params
    assert load_model_spec(str(tmp_path / "config.json")).hidden_size == 4096


@pytest.mark.parametrize(
    "config,match",
    [
        ({"hidden_size": 64}, "lacks"),
        ({**MODEL_CONFIGS["tiny"], "hidden_size": -1}, "positive integer"),
        ({**MODEL_CONFIGS["tiny"], "model_type": "gpt2"}, "not supported"),
        ({**MODEL_CONFIGS["tiny"], "num_attention_heads": 3}, "not divisible"),
    ],
)
def test_bad_model_configs(tmp_path, config, match):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(CostModelError, match=match):
        load_model_spec(str(path))


def test_unknown_model_and_gpu():
    with pytest.raises(CostModelError, match="unknown model 'gpt-5'"):
        load_model_spec("gpt-5")
    with pytest.raises(CostModelError, match="unknown GPU 'tpu'"):
        load_gpu_spec("tpu")
    with pytest.raises(CostModelError, match="does not exist"):
        load_model_spec("/nonexistent/config.json")


def test_gpu_specs_from_datasheets():
    assert set(GPUS) >= {"a100-40gb", "a100-80gb", "a800-80gb", "h100-80gb", "h200-141gb", "cpu"}
    a100, h100 = GPUS["a100-40gb"], GPUS["h100-80gb"]
    assert (a100.peak_tflops, a100.hbm_gbps, a100.nvlink_gbps) == (312.0, 1555.0, 300.0)
    assert h100.peak_tflops > a100.peak_tflops
    assert GPUS["a800-80gb"].nvlink_gbps < GPUS["a100-80gb"].nvlink_gbps
    assert a100.memory_bytes == 40 * 2**30


def test_gpu_spec_json_ignores_extra_records(tmp_path):
    path = tmp_path / "cpu_spec.json"
    path.write_text(
        json.dumps(
            {
                "name": "cpu",
                "peak_tflops": 0.2,
                "memory_gib": 24,
                "hbm_gbps": 12.0,
                "nvlink_gbps": 2.0,
                "network_gbps": 2.0,
                "gpus_per_node": 2,
                "measured": {},
            }
        )
    )
    assert load_gpu_spec(str(path)).peak_tflops == 0.2
    path.write_text(json.dumps({"name": "cpu"}))
    with pytest.raises(CostModelError, match="malformed"):
        load_gpu_spec(str(path))
