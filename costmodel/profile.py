"""Profile CSVs: tidy tables keyed by configuration columns (`tp,seq_len,mbs,time`, time in ms per layer).

A profile describes one model: its file name may say which, as the shipped ones do (`<model>_<gpu>_layer_time.csv`
with the model's name in snake case), and a profile named after another known model is refused rather than fitted
as if it were this one (check_profile_model).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
from lobra.costmodel.errors import CostModelError

PROFILE_COLUMNS = ("tp", "seq_len", "mbs", "time")
# Kept where a profile has it: ms of forward+backward of everything outside the decoder layers (embedding, final
# norm, LM head, loss) for the row's micro-batch.
PRE_POST_COLUMN = "pre_post_time"

# Shipped profiles by (model, gpu): used by default wherever a pair has one.
SHIPPED_PROFILES: dict[tuple[str, str], str] = {
    ("llama2-7b", "a100-40gb"): "llama2_7b_a100_40gb_layer_time.csv",
    ("tiny", "cpu"): "tiny_cpu_layer_time.csv",
}
SHIPPED_MAX_TOKENS: dict[tuple[str, str], str] = {
    ("llama2-7b", "a100-40gb"): "llama2_7b_a100_40gb_max_tokens.csv",
}


def shipped_path(filename: str) -> Path:
    return Path(str(resources.files("lobra.costmodel") / "profiles" / filename))


def shipped_profile(model: str, gpu: str) -> Path | None:
    """The shipped layer-time profile for (model, gpu), if there is one on disk."""
    filename = SHIPPED_PROFILES.get((model, gpu))
    if filename is None:
        return None
    path = shipped_path(filename)
    return path if path.is_file() else None


def load_profile(path: str | Path, columns: tuple[str, ...] = PROFILE_COLUMNS) -> pd.DataFrame:
    """Read and validate a profile CSV: the columns present, numeric, lengths and times positive; a
    pre_post_time column is kept (and validated) where there is one."""
    path = Path(path)
    if not path.is_file():
        raise CostModelError(f"profile {str(path)!r} does not exist")
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CostModelError(
            f"profile {str(path)!r} is not a readable CSV: {str(err).splitlines()[0]}"
        ) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CostModelError(
            f"profile {str(path)!r} lacks column(s) {', '.join(missing)} (needs {', '.join(columns)})"
        )
    if df.empty:
        raise CostModelError(f"profile {str(path)!r} has no rows")
    if columns == PROFILE_COLUMNS and PRE_POST_COLUMN in df.columns:
        columns = (*columns, PRE_POST_COLUMN)
    df = df[list(columns)].copy()
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce")
        # pre_post_time may be 0: the layer times include it (costmodel/outer_time.py)
        bad = values.isna() | ((values < 0) if col == PRE_POST_COLUMN else (values <= 0))
        if bad.any():
            row = int(bad.idxmax())
            kind = "numbers >= 0" if col == PRE_POST_COLUMN else "positive numbers"
            raise CostModelError(
                f"profile {str(path)!r}: column {col!r} row {row + 2} has {df[col].iloc[row]!r}; values must be {kind}"
            )
        df[col] = values
    for col in columns:
        if col not in ("time", PRE_POST_COLUMN):
            if (df[col] != df[col].round()).any():
                raise CostModelError(f"profile {str(path)!r}: column {col!r} must hold integers")
            df[col] = df[col].astype(int)
    return df


def check_profile_model(path: str | Path, model: str) -> None:
    """Raise if the profile's file name says it measured another known model than `model`."""
    from lobra.costmodel.specs.models import MODEL_CONFIGS

    name = Path(path).name.lower()
    named = [m for m in MODEL_CONFIGS if name.startswith(m.replace("-", "_").replace(".", "_") + "_")]
    if named and model not in named:
        other = max(named, key=len)
        raise CostModelError(
            f"profile {Path(path).name!r} measured {other}, not {model}: a layer profile fits only its own model; "
            f"calibrate the analytical model on it (lobra costmodel fit --analytical --model {other} --gpu GPU "
            f"--profile {Path(path).name} --out cal.json) and give cal.json as the profile of {model}"
        )
