import numpy as np
import pytest
from lobra.policies.highs import solve_lp
from scipy.optimize import linprog


def split_programme(rng, configs: int, lengths: int, bubbles: bool):
    """A random instance of the dispatch relaxation's shape: minimise z, every config's load <= z, every length's
    sequences split across the configs that hold it."""
    n = configs * lengths + 1
    a_ub, a_eq = np.zeros((configs, n)), np.zeros((lengths, n))
    for g in range(lengths):
        for j in range(configs):
            if rng.random() < 0.8 or j == 0:  # some configs cannot hold some lengths
                a_ub[j, g * configs + j] = rng.choice(
                    [rng.random(), 1.0, 0.5]
                )  # ties make degenerate vertices
                a_eq[g, g * configs + j] = 1.0
    a_ub[:, -1] = -1.0
    c = np.zeros(n)
    c[-1] = 1.0
    b_ub = -rng.random(configs) if bubbles else np.zeros(configs)
    return c, a_ub, b_ub, a_eq, rng.integers(1, 100, lengths).astype(float)


@pytest.mark.parametrize("seed", range(4))
def test_the_same_vertex_as_linprog(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        c, a_ub, b_ub, a_eq, b_eq = split_programme(
            rng, int(rng.integers(1, 7)), int(rng.integers(1, 30)), seed % 2
        )
        expected = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        x = solve_lp(c, a_ub, b_ub, a_eq, b_eq)
        assert expected.status == 0
        np.testing.assert_array_equal(x, expected.x)  # bit for bit, not approximately
        assert np.all(x >= 0) and np.allclose(a_eq @ x, b_eq)


def test_an_infeasible_programme_has_no_answer():
    # x0 + x1 = 4 with x0 + x1 <= 3
    c = np.array([1.0, 1.0])
    assert (
        solve_lp(c, np.array([[1.0, 1.0]]), np.array([3.0]), np.array([[1.0, 1.0]]), np.array([4.0])) is None
    )
    assert linprog(c, A_ub=[[1, 1]], b_ub=[3], A_eq=[[1, 1]], b_eq=[4], method="highs").status == 2


def test_without_scipys_binding_linprog_answers(monkeypatch):
    from lobra.policies import highs

    c, a_ub, b_ub, a_eq, b_eq = split_programme(np.random.default_rng(9), 3, 12, True)
    direct = solve_lp(c, a_ub, b_ub, a_eq, b_eq)
    monkeypatch.setattr(highs, "_h", None)
    np.testing.assert_array_equal(solve_lp(c, a_ub, b_ub, a_eq, b_eq), direct)
    assert (
        solve_lp(np.ones(2), np.array([[1.0, 1.0]]), np.array([3.0]), np.array([[1.0, 1.0]]), np.array([4.0]))
        is None
    )
