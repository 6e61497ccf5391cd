"""Build a length trace from a local dataset file and a local tokenizer (`lobra traces build`).

Counting follows traces/data/SOURCES.md: the prompt and the response are encoded separately, without special
tokens; prompt_tokens = len(prompt) + 1 (BOS), response_tokens = len(response) + 1 (EOS). Templates:

- alpaca: fields instruction, output and optional input, rendered with the Alpaca prompt (with or without
  input).
- chat: field messages, a list of {role, content}; the last assistant message is the response, the messages
  before it are the prompt, rendered HH-RLHF style ("\\n\\nHuman: ...\\n\\nAssistant: ..." ending in
  "\\n\\nAssistant:"); messages after the last assistant message are not trained on and are left out.
- raw: field text, all of it prompt; the response is empty, so response_tokens = 1 (the EOS alone).

datasets and transformers are imported here only, when a trace is built.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from lobra.traces.errors import TraceError

TEMPLATES = ("alpaca", "chat", "raw")
ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_PROMPT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
CHAT_ROLES = {"system": "System", "user": "Human", "human": "Human", "assistant": "Assistant"}
_LOADERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_FIELDS = {"alpaca": ("instruction", "output"), "chat": ("messages",), "raw": ("text",)}


def _text(value, row: int, key: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TraceError(f"{where}: row {row}: field {key!r} must be text, got {type(value).__name__}")
    return value


def render(template: str, record: dict, row: int = 0, where: str = "input") -> tuple[str, str]:
    """(prompt text, response text) of one record."""
    if template == "alpaca":
        instruction = _text(record.get("instruction"), row, "instruction", where)
        extra = _text(record.get("input"), row, "input", where)
        output = _text(record.get("output"), row, "output", where)
        prompt = (
            ALPACA_PROMPT_INPUT.format(instruction=instruction, input=extra)
            if extra
            else ALPACA_PROMPT.format(instruction=instruction)
        )
        return prompt, output
    if template == "chat":
        messages = record.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise TraceError(
                f"{where}: row {row}: field 'messages' must be a list of {{role, content}} mappings"
            )
        roles = [str(m.get("role", "")).lower() for m in messages]
        if "assistant" not in roles:
            raise TraceError(f"{where}: row {row}: no assistant message (the last one is the response)")
        last = len(roles) - 1 - roles[::-1].index("assistant")
        turns = [
            f"\n\n{CHAT_ROLES.get(r, r.title() or 'Unknown')}: "
            + _text(m.get("content"), row, "content", where)
            for r, m in zip(roles[:last], messages[:last], strict=True)
        ]
        return "".join(turns) + "\n\nAssistant:", _text(messages[last].get("content"), row, "content", where)
    if template == "raw":
        return _text(record.get("text"), row, "text", where), ""
    raise TraceError(f"unknown template {template!r}; choose from {', '.join(TEMPLATES)}")


def read_records(path: str | Path) -> list[dict]:
    """Records of a local .jsonl/.json/.parquet/.csv file, read with the datasets library."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"input file {str(path)!r} does not exist or is not a file")
    kind = _LOADERS.get(path.suffix.lower())
    if kind is None:
        raise TraceError(
            f"input file {str(path)!r}: unsupported format {path.suffix!r} (use {', '.join(_LOADERS)})"
        )
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    # A throwaway cache: building a trace must not fill the user's HF cache with Arrow copies of their data.
    with tempfile.TemporaryDirectory(prefix="lobra-trace-") as cache:
        try:
            ds = datasets.load_dataset(kind, data_files=str(path), split="train", cache_dir=cache)
        except Exception as err:  # datasets raises many types (ArrowInvalid, DatasetGenerationError, ...)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TraceError(f"input file {str(path)!r} cannot be read as {kind}: {first}") from None
        return ds.to_list()


def load_tokenizer(directory: str | Path):
    path = Path(directory)
    if not path.is_dir():
        raise TraceError(f"tokenizer directory {str(path)!r} does not exist")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TraceError(f"cannot load a tokenizer from {str(path)!r}: {first}") from None


def _count(tokenizer, texts: list[str], batch: int = 1024) -> list[int]:
    counts: list[int] = []
    for i in range(0, len(texts), batch):
        ids = tokenizer(texts[i : i + batch], add_special_tokens=False)["input_ids"]
        counts.extend(len(x) for x in ids)
    return counts


def build_trace_table(input_path: str | Path, tokenizer_dir: str | Path, template: str) -> pd.DataFrame:
    """sample_id, prompt_tokens, response_tokens, total_tokens for every record of the input file."""
    if template not in TEMPLATES:
        raise TraceError(f"unknown template {template!r}; choose from {', '.join(TEMPLATES)}")
    where = Path(input_path).name
    records = read_records(input_path)
    if not records:
        raise TraceError(f"input file {str(input_path)!r} has no records")
    missing = [k for k in _FIELDS[template] if k not in records[0]]
    if missing:
        raise TraceError(
            f"{where}: template {template!r} needs field {missing[0]!r}, the records have "
            f"{', '.join(records[0]) or 'no fields'}"
        )
    tokenizer = load_tokenizer(tokenizer_dir)
    pairs = [render(template, r, i, where) for i, r in enumerate(records)]
    prompt = [n + 1 for n in _count(tokenizer, [p for p, _ in pairs])]  # + BOS
    response = [n + 1 for n in _count(tokenizer, [r for _, r in pairs])]  # + EOS
    width = len(str(len(records) - 1))
    ids = [str(r["id"]) if r.get("id") is not None else f"{i:0{width}d}" for i, r in enumerate(records)]
    return pd.DataFrame(
        {
            "sample_id": ids,
            "prompt_tokens": prompt,
            "response_tokens": response,
            "total_tokens": [p + r for p, r in zip(prompt, response, strict=True)],
        }
    )
