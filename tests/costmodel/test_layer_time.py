import numpy as np
import pandas as pd
import pytest
from lobra.costmodel import CostModelError, LayerTimeFit, fit_profile
from lobra.costmodel.layer_time import holdout_split
from lobra.costmodel.profile import load_profile

COEFFS = (1e-6, 2e-7, 3e-3, 1e-3, 0.05, 0.5)


def test_prediction_hand_computed():
    fit = LayerTimeFit({1: COEFFS})
    # b=2, s=100: (2e-6 + 2e-7) 1e4 + (6e-3 + 1e-3) 100 + (0.1 + 0.5) = 0.022 + 0.7 + 0.6
    assert fit.predict_ms(1, 2, 100) == pytest.approx(1.322)
    assert np.allclose(fit.predict_ms(1, [1, 2], [100, 100]), [fit.predict_ms(1, 1, 100), 1.322])
    with pytest.raises(CostModelError, match="no tp=2"):
        fit.predict_ms(2, 1, 100)


def test_packed_equal_lengths_reduce_to_padded_and_shorter_is_cheaper():
    fit = LayerTimeFit({1: COEFFS})
    assert fit.predict_packed_ms(1, [512] * 4) == pytest.approx(fit.predict_ms(1, 4, 512))
    assert fit.predict_packed_ms(1, [512, 100, 60, 20]) < fit.predict_ms(1, 4, 512)
    # per-sequence terms for 3 sequences plus per-micro-batch terms at the longest one
    lens = [300, 200, 100]
    c1, c2, c3, c4, c5, c6 = COEFFS
    by_hand = c1 * (9e4 + 4e4 + 1e4) + c3 * 600 + c5 * 3 + c2 * 9e4 + c4 * 300 + c6
    assert fit.predict_packed_ms(1, lens) == pytest.approx(by_hand)


def test_fit_recovers_known_coefficients():
    grid = [(s, b) for s in (128, 256, 512, 1024, 2048, 4096) for b in (1, 2, 4, 8)]
    truth = {1: COEFFS, 2: tuple(c / 2 for c in COEFFS)}
    rows = [
        {"tp": tp, "seq_len": s, "mbs": b, "time": LayerTimeFit(truth).predict_ms(tp, b, s)}
        for tp in truth
        for s, b in grid
    ]
    fit = fit_profile(pd.DataFrame(rows))
    for tp in truth:
        assert np.allclose(fit.coeffs[tp], truth[tp], rtol=1e-4, atol=1e-12)
        assert fit.mape_pct[tp] < 1e-3


def test_fit_keeps_coefficients_non_negative(a100_profile):
    fit = fit_profile(a100_profile)
    assert all(c >= 0 for cs in fit.coeffs.values() for c in cs)
    assert fit.tps == [1, 2, 4, 8]


def test_heldout_error_on_the_a100_profile(a100_profile):
    """Every third distinct seq_len per tp held out: the issue's bar is 4% MAPE."""
    train, test = holdout_split(a100_profile)
    assert len(train) + len(test) == len(a100_profile)
    assert (
        set(train["seq_len"].unique())
        & set(test[test["tp"] == 1]["seq_len"].unique()) - set(train[train["tp"] == 1]["seq_len"])
        == set()
    )
    fit = fit_profile(train)
    errors = np.concatenate(
        [
            np.abs(fit.predict_ms(tp, r["mbs"], r["seq_len"]) - r["time"]) / r["time"]
            for tp, r in test.groupby("tp")
        ]
    )
    assert errors.mean() <= 0.04


def test_holdout_split_takes_positions_1_4_7(a100_profile):
    _, test = holdout_split(a100_profile)
    lengths = sorted(a100_profile[a100_profile["tp"] == 4]["seq_len"].unique())
    assert sorted(test[test["tp"] == 4]["seq_len"].unique()) == lengths[1::3]


def test_fit_json_round_trip(tmp_path, a100_profile):
    fit = fit_profile(a100_profile, source="a100")
    fit.to_json(tmp_path / "fit.json")
    back = LayerTimeFit.from_json(tmp_path / "fit.json")
    assert back.coeffs == fit.coeffs and back.source == "a100"
    (tmp_path / "bad.json").write_text('{"coeffs": {"1": [1, 2]}}')
    with pytest.raises(CostModelError, match="6 finite coefficients"):
        LayerTimeFit.from_json(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text("not json")
    with pytest.raises(CostModelError, match="malformed"):
        LayerTimeFit.from_json(tmp_path / "bad2.json")


@pytest.mark.parametrize(
    "body,match",
    [
        ("tp,seq_len,time\n1,128,3.0\n", "lacks column"),
        ("tp,seq_len,mbs,time\n", "no rows"),
        ("tp,seq_len,mbs,time\n1,-128,1,3.0\n", "'seq_len' row 2"),
        ("tp,seq_len,mbs,time\n1,128,1,0\n", "'time' row 2"),
        ("tp,seq_len,mbs,time\n1,128,1,3.0\n1,abc,1,3.0\n", "'seq_len' row 3"),
        ("tp,seq_len,mbs,time\n1,128.5,1,3.0\n", "integers"),
        ("", "not a readable CSV"),
    ],
)
def test_malformed_profiles(tmp_path, body, match):
    path = tmp_path / "p.csv"
    path.write_text(body)
    with pytest.raises(CostModelError, match=match):
        load_profile(path)


def test_missing_profile(tmp_path):
    with pytest.raises(CostModelError, match="does not exist"):
        load_profile(tmp_path / "none.csv")
