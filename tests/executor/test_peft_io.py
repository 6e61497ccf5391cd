"""Saved adapters are peft's format: PeftModel.from_pretrained loads each and reproduces the executor's logits."""

from __future__ import annotations

import json

import pytest
import torch
from lobra.costmodel import load_model_spec
from lobra.executor.model import AdapterSpec, Stage, build_base_model, inject_lora
from lobra.executor.peft_io import load_adapter_tensors, set_adapter
from lobra.traces import load_workload

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
SPEC = load_model_spec("tiny")
CPU = torch.device("cpu")


def test_saved_adapters_load_in_peft_and_reproduce_executor_logits(joint_run, ex):
    from peft import PeftModel

    workload = load_workload(ex.tasks)
    adapters = [AdapterSpec.of(t) for t in workload]
    # The executor's model, with the trained adapters; one mixed-task batch, one row group per task.
    model = build_base_model(SPEC, None, 0, torch.float64, CPU)
    batch = inject_lora(model, adapters, seed=0)
    for a in adapters:
        set_adapter(model, a.name, load_adapter_tensors(joint_run / "adapters" / a.name))
    stage = Stage(model)
    x = torch.randint(0, SPEC.vocab_size, (6, 21), generator=torch.Generator().manual_seed(7))
    segments = [(a.name, 2 * i, 2 * i + 2) for i, a in enumerate(adapters)]
    batch.set(segments)
    with torch.no_grad():
        ours = stage(x)
    worst = 0.0
    for a, (_, start, stop) in zip(adapters, segments, strict=True):
        folder = joint_run / "adapters" / a.name
        config = json.loads((folder / "adapter_config.json").read_text())
        assert config["peft_type"] == "LORA" and config["r"] == a.rank and config["lora_alpha"] == a.alpha
        assert sorted(config["target_modules"]) == sorted(a.targets)
        base = build_base_model(SPEC, None, 0, torch.float64, CPU)
        peft_model = PeftModel.from_pretrained(base, str(folder))
        with torch.no_grad():
            theirs = peft_model(input_ids=x[start:stop]).logits
        diff = (ours[start:stop] - theirs).abs().max().item()
        worst = max(worst, diff)
        assert diff <= 1e-9
    print(f"executor vs PeftModel.from_pretrained logits: max abs diff {worst:.3g}")


def test_adapters_changed_the_model(joint_run, ex):
    """The comparison above is meaningful: with the trained adapters the logits differ from the base model's."""
    workload = load_workload(ex.tasks)
    adapters = [AdapterSpec.of(t) for t in workload]
    model = build_base_model(SPEC, None, 0, torch.float64, CPU)
    batch = inject_lora(model, adapters, seed=0)
    stage = Stage(model)
    x = torch.randint(0, SPEC.vocab_size, (1, 16), generator=torch.Generator().manual_seed(3))
    batch.set([(adapters[0].name, 0, 1)])
    with torch.no_grad():
        before = stage(x)
        set_adapter(model, adapters[0].name, load_adapter_tensors(joint_run / "adapters" / adapters[0].name))
        after = stage(x)
    assert (after - before).abs().max().item() > 1e-4
