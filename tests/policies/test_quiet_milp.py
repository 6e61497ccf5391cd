import os

import numpy as np
from lobra.policies.quiet_milp import _stdout_to_devnull, milp
from scipy.optimize import Bounds, LinearConstraint
from scipy.optimize import milp as scipy_milp


def test_c_level_writes_during_a_solve_stay_off_stdout_and_stdout_comes_back(capfd):
    print("before", flush=True)
    with _stdout_to_devnull():
        os.write(1, b"HighsMipSolverData::noise\n")  # what HiGHS's printf does
    print("after", flush=True)
    out, _ = capfd.readouterr()
    assert out == "before\nafter\n"


def test_quiet_milp_solves_as_scipy_does():
    # max x + 2y s.t. x + y <= 3.5, x, y integer in [0, 2]
    args = (np.array([-1.0, -2.0]),)
    kwargs = {
        "integrality": np.ones(2),
        "bounds": Bounds(0, 2),
        "constraints": LinearConstraint(np.array([[1.0, 1.0]]), -np.inf, 3.5),
        "options": {"time_limit": 5.0, "disp": False},
    }
    ours, theirs = milp(*args, **kwargs), scipy_milp(*args, **kwargs)
    assert ours.success and list(ours.x) == list(theirs.x) == [1.0, 2.0]
