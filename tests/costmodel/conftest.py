import pytest
from lobra.costmodel.profile import load_profile, shipped_path


@pytest.fixture(scope="session")
def a100_profile():
    return load_profile(shipped_path("llama2_7b_a100_40gb_layer_time.csv"))
