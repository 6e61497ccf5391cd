"""OuterTimeFit: the measured time of what runs outside the decoder layers, from a profile's pre_post_time column.

The embedding, the final norm, the LM head and the loss work per token (the head's GEMM and the logits grow with
the tokens; nothing in them is quadratic in the sequence), plus a fixed cost per micro-batch:

    t_outer(T) = a T + c      [ms per micro-batch of T tokens, forward+backward]

fitted per tp degree with both coefficients non-negative, on relative error like the layer fit. A column of zeros
says the profile's layer times already include it: they are a whole model's time divided by its layers, as the
executor's calibration measures them (`included`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.profile import PRE_POST_COLUMN
from scipy.optimize import lsq_linear


@dataclass(frozen=True)
class OuterTimeFit:
    coeffs: dict[int, tuple[float, float]]  # tp -> (a ms per token, c ms per micro-batch)
    included: bool = False  # the layer times include it: 0 at every tp

    @classmethod
    def of_included(cls) -> OuterTimeFit:
        return cls({}, included=True)

    @classmethod
    def of_profile(cls, df: pd.DataFrame) -> OuterTimeFit | None:
        """The fit of a profile's pre_post_time column; None when it has none."""
        if PRE_POST_COLUMN not in df.columns:
            return None
        if (df[PRE_POST_COLUMN] == 0).all():
            return cls.of_included()
        coeffs = {}
        for tp, rows in df.groupby("tp"):
            tokens = (rows["mbs"] * rows["seq_len"]).to_numpy(dtype=float)
            t = rows[PRE_POST_COLUMN].to_numpy(dtype=float)
            a = np.stack([tokens, np.ones_like(tokens)], axis=1) / t[:, None]
            if len(t) < 2:
                raise CostModelError(
                    f"pre_post_time needs at least 2 rows per tp to fit, got {len(t)} at tp={tp}"
                )
            scale = np.abs(a).max(axis=0)
            fit = lsq_linear(a / scale, np.ones_like(t), bounds=(0.0, np.inf), method="bvls")
            coeffs[int(tp)] = tuple(float(x) for x in fit.x / scale)
        return cls(coeffs)

    def predict_ms(self, tp: int, tokens: float) -> float | None:
        """None for a tp degree the profile did not measure."""
        if self.included:
            return 0.0
        c = self.coeffs.get(tp)
        return None if c is None else c[0] * tokens + c[1]
