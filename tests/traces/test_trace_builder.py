"""`lobra traces build` with a tokenizer trained here on fixture text (never a downloaded one)."""

import json

import pandas as pd
import pytest
from lobra.traces import load_trace
from lobra.traces.builder import ALPACA_PROMPT, ALPACA_PROMPT_INPUT, render

from lobra.cli import main

CORPUS = [
    "Below is an instruction that describes a task. Write a response that completes the request.",
    "paired with an input that provides further context. ### Instruction: ### Input: ### Response:",
    "write a python function that adds two numbers and returns the sum",
    "the quick brown fox jumps over the lazy dog. Human: hello there! Assistant: hi, how can I help?",
    "System: you are a helpful assistant. summarize the meeting in one sentence.",
]
ALPACA = [
    {"instruction": "write a python function", "input": "", "output": "def add(a, b): return a + b"},
    {
        "instruction": "summarize",
        "input": "the quick brown fox jumps over the lazy dog",
        "output": "a fox jumps",
    },
    {"instruction": "say hello", "output": "hello there!"},
]
CHAT = [
    {
        "messages": [
            {"role": "system", "content": "you are a helpful assistant."},
            {"role": "user", "content": "hello there!"},
            {"role": "assistant", "content": "hi, how can I help?"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "adds two numbers"},
            {"role": "assistant", "content": "the sum"},
            {"role": "user", "content": "and returns?"},
            {"role": "assistant", "content": "the sum, returned"},
            {"role": "user", "content": "thanks"},
        ]
    },
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        CORPUS * 4, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"])
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    path = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(path)
    return path, fast


def _n(fast, text: str) -> int:
    return len(fast.encode(text, add_special_tokens=False))


def _build(tmp_path, tokenizer_dir, records, template, suffix=".jsonl", capsys=None):
    src = tmp_path / f"data{suffix}"
    df = pd.DataFrame(records)
    if suffix == ".jsonl":
        src.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif suffix == ".json":
        src.write_text(json.dumps(records))
    elif suffix == ".csv":
        df.to_csv(src, index=False)
    else:
        df.to_parquet(src)
    out = tmp_path / "out" / "trace.csv"
    rc = main(
        [
            "traces",
            "build",
            "--input",
            str(src),
            "--tokenizer",
            str(tokenizer_dir[0]),
            "--template",
            template,
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return pd.read_csv(out), out


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_alpaca_counts_match_the_tokenizer(tmp_path, tokenizer_dir, suffix):
    table, out = _build(tmp_path, tokenizer_dir, ALPACA, "alpaca", suffix)
    fast = tokenizer_dir[1]
    assert list(table.columns) == ["sample_id", "prompt_tokens", "response_tokens", "total_tokens"]
    prompts = [
        ALPACA_PROMPT.format(instruction="write a python function"),
        ALPACA_PROMPT_INPUT.format(
            instruction="summarize", input="the quick brown fox jumps over the lazy dog"
        ),
        ALPACA_PROMPT.format(instruction="say hello"),
    ]
    assert table["prompt_tokens"].tolist() == [_n(fast, p) + 1 for p in prompts]  # + BOS
    assert table["response_tokens"].tolist() == [_n(fast, r["output"]) + 1 for r in ALPACA]  # + EOS
    assert (table["total_tokens"] == table["prompt_tokens"] + table["response_tokens"]).all()
    assert load_trace(out).stats.count == 3  # the output is a valid trace


def test_chat_template(tmp_path, tokenizer_dir):
    table, _ = _build(tmp_path, tokenizer_dir, CHAT, "chat")
    fast = tokenizer_dir[1]
    p0 = "\n\nSystem: you are a helpful assistant.\n\nHuman: hello there!\n\nAssistant:"
    assert render("chat", CHAT[0]) == (p0, "hi, how can I help?")
    # The last assistant message is the response; the trailing user message is left out.
    p1 = "\n\nHuman: adds two numbers\n\nAssistant: the sum\n\nHuman: and returns?\n\nAssistant:"
    assert render("chat", CHAT[1]) == (p1, "the sum, returned")
    assert table["prompt_tokens"].tolist() == [_n(fast, p0) + 1, _n(fast, p1) + 1]
    assert table["response_tokens"].tolist() == [
        _n(fast, "hi, how can I help?") + 1,
        _n(fast, "the sum, returned") + 1,
    ]


def test_raw_template(tmp_path, tokenizer_dir):
    records = [{"text": c} for c in CORPUS[:3]]
    table, _ = _build(tmp_path, tokenizer_dir, records, "raw")
    assert table["prompt_tokens"].tolist() == [_n(tokenizer_dir[1], c) + 1 for c in CORPUS[:3]]
    assert table["response_tokens"].tolist() == [1, 1, 1]  # empty response: the EOS alone


@pytest.mark.parametrize(
    "records, template, suffix, fragment",
    [
        (ALPACA, "alpaca", ".txt", "unsupported format '.txt'"),
        ([{"instruction": "x"}], "alpaca", ".jsonl", "template 'alpaca' needs field 'output'"),
        (
            [{"messages": [{"role": "user", "content": "hi"}]}],
            "chat",
            ".jsonl",
            "row 0: no assistant message",
        ),
        ([{"text": 5}], "raw", ".jsonl", "row 0: field 'text' must be text"),
    ],
)
def test_builder_errors(tmp_path, tokenizer_dir, records, template, suffix, fragment, capsys):
    src = tmp_path / f"data{suffix}"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "trace.csv"
    rc = main(
        [
            "traces",
            "build",
            "--input",
            str(src),
            "--tokenizer",
            str(tokenizer_dir[0]),
            "--template",
            template,
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("lobra: error: ") and fragment in err, err
    assert not out.exists()  # nothing half-written


def test_missing_tokenizer_dir(tmp_path, capsys):
    src = tmp_path / "d.jsonl"
    src.write_text(json.dumps(ALPACA[0]) + "\n")
    rc = main(
        [
            "traces",
            "build",
            "--input",
            str(src),
            "--tokenizer",
            str(tmp_path / "nope"),
            "--template",
            "alpaca",
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert rc == 2 and "tokenizer directory" in capsys.readouterr().err
