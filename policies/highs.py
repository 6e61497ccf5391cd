"""Linear programmes handed to HiGHS directly, as scipy's `linprog(method="highs")` hands them over, without its
per-call parsing of inputs and checking of options: on the small programmes dispatch solves every step, that
overhead took longer than HiGHS's own solve.

The same library (scipy's own build of HiGHS), the same options and the same model in the same layout give the
same vertex, bit for bit (tests/policies/test_highs.py compares the two). Where scipy's binding is not importable
(its module is private and may move), `linprog` itself is called.
"""

from __future__ import annotations

import numpy as np

try:
    from scipy.optimize._highspy import _core as _h
except ImportError:  # pragma: no cover - a scipy without the binding: its public solver
    _h = None


def solve_lp(
    c: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, a_eq: np.ndarray, b_eq: np.ndarray
) -> np.ndarray | None:
    """argmin c.x subject to a_ub x <= b_ub, a_eq x = b_eq, x >= 0 (dense matrices); None unless HiGHS proves an
    optimum (infeasible, unbounded, or stopped)."""
    if _h is None:
        from scipy.optimize import linprog

        result = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        return result.x if result.status == 0 else None
    a = np.vstack((a_ub, a_eq))
    cols, rows = a.T.nonzero()  # column-major, rows ascending within a column: scipy's CSC layout
    num_rows, num_cols = a.shape
    lp = _h.HighsLp()
    lp.num_col_ = lp.a_matrix_.num_col_ = num_cols
    lp.num_row_ = lp.a_matrix_.num_row_ = num_rows
    lp.a_matrix_.format_ = _h.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate(([0], np.cumsum(np.bincount(cols, minlength=num_cols))))
    lp.a_matrix_.index_ = rows
    lp.a_matrix_.value_ = a.T[cols, rows]
    lp.col_cost_ = np.asarray(c, dtype=float)
    lp.col_lower_ = np.zeros(num_cols)
    lp.col_upper_ = np.full(num_cols, _h.kHighsInf)
    b_eq = np.asarray(b_eq, dtype=float)
    lp.row_lower_ = np.concatenate((np.full(len(b_ub), -_h.kHighsInf), b_eq))
    lp.row_upper_ = np.concatenate((np.asarray(b_ub, dtype=float), b_eq))
    highs = _h._Highs()
    highs.passOptions(_options())
    highs.passModel(lp)
    highs.run()
    if highs.getModelStatus() != _h.HighsModelStatus.kOptimal:
        return None
    return np.array(highs.getSolution().col_value)


def _options():
    """linprog(method="highs")'s settings: presolve on, dual simplex, silent."""
    options = _h.HighsOptions()
    options.presolve = "on"
    options.highs_debug_level = _h.HighsDebugLevel.kHighsDebugLevelNone
    options.log_to_console = options.output_flag = False
    options.simplex_strategy = _h.simplex_constants.SimplexStrategy.kSimplexStrategyDual
    return options
