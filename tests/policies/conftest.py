import pytest
from lobra.costmodel import CostModel, MemoryOptions


@pytest.fixture(scope="session")
def cost7b():
    """Llama-2-7B on A100-40GB from the shipped profile, 6 adapters (the paper's 7B setting)."""
    return CostModel.build("llama2-7b", "a100-40gb", memory=MemoryOptions(num_tasks=6))
