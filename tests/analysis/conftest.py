"""Small inputs for the sweep, figures and report tests: a 2-task workload on Llama-2-7B, 2-4 GPUs, 2 steps."""

import pytest

from lobra.cli import main

TASKS = """\
description: two small synthetic tasks, short and long, for the analysis tests
tasks:
  - name: short
    trace:
      synthetic: {mean: 300, skewness: 3.0, kurtosis: 12.7, cap: 4096, samples: 2000, seed: 1}
    global_batch_size: 16
    max_len: 4096
    steps: 50
  - name: long
    trace:
      synthetic: {mean: 1500, skewness: 0.9, kurtosis: 0.6, cap: 4096, samples: 2000, seed: 2}
    global_batch_size: 8
    max_len: 4096
    steps: 50
"""

# Column names as `lobra validate` writes them (lobra.calibration.validate); step 0 is a warm-up step.
PAIRS = """\
plan,ranks,step,warmup,real_step_s,sim_step_s
"<1,1>x1",1,0,True,1.50,1.00
"<1,1>x1",1,1,False,1.00,0.90
"<1,1>x1",1,2,False,1.10,1.00
"<1,1>x2",2,0,True,0.90,0.50
"<1,1>x2",2,1,False,0.60,0.66
"<1,1>x2",2,2,False,0.50,0.55
"""

SMALL = "--model llama2-7b --gpu a100-40gb --num-gpus 4 --gpus 2,4 --num-tasks 1,2,3 --buckets 4,8 --steps 2"


@pytest.fixture(scope="session")
def tasks_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tasks") / "tasks2.yaml"
    path.write_text(TASKS)
    return path


@pytest.fixture(scope="session")
def validation_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validate")
    (folder / "pairs.csv").write_text(PAIRS)
    return folder


@pytest.fixture(scope="session")
def small_figures(tmp_path_factory, tasks_file, validation_dir):
    """`lobra figures` once on the small workload (with a validation folder), for the figure and report tests."""
    out = tmp_path_factory.mktemp("figures")
    argv = ["figures", "--tasks", str(tasks_file), *SMALL.split(), "--workers", "2"]
    argv += ["--out", str(out), "--validation", str(validation_dir)]
    assert main(argv) == 0
    return out
