import os

import pytest
from lobra.policies.pool import run_jobs


def scaled(factor, offset, job):
    return factor * job + offset, os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_jobs_get_the_shared_arguments_in_order(workers):
    out = list(run_jobs(scaled, list(range(12)), (3, 1), workers))
    assert [v for v, _ in out] == [3 * j + 1 for j in range(12)]
    pids = {p for _, p in out}
    assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() not in pids)


def failing(job):
    if job == 2:
        raise ValueError(f"job {job} failed")
    return job


def test_a_failing_job_raises_its_error():
    with pytest.raises(ValueError, match="job 2 failed"):
        list(run_jobs(failing, [0, 1, 2, 3], (), 2))
