"""Model specs, kept as transformers config dicts (built with LlamaConfig(**d) / Qwen2Config(**d)).

Never fetched from a hub: the shapes are copied from the models' published config.json files.
`load_model_spec` also accepts a path to a local config.json (or a directory holding one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lobra.costmodel.errors import CostModelError

_LLAMA2 = {"model_type": "llama", "vocab_size": 32000, "rms_norm_eps": 1e-5, "max_position_embeddings": 4096}
_LLAMA3 = {
    "model_type": "llama",
    "vocab_size": 128256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "max_position_embeddings": 8192,
}
_QWEN25 = {
    "model_type": "qwen2",
    "vocab_size": 152064,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "max_position_embeddings": 32768,
}


def _cfg(
    base: dict, hidden: int, ffn: int, layers: int, heads: int, kv_heads: int, **extra
) -> dict[str, Any]:
    return {
        **base,
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        **extra,
    }


MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "llama2-7b": _cfg(_LLAMA2, 4096, 11008, 32, 32, 32),
    "llama2-13b": _cfg(_LLAMA2, 5120, 13824, 40, 40, 40),
    "llama2-70b": _cfg(_LLAMA2, 8192, 28672, 80, 64, 8),
    "llama3-8b": _cfg(_LLAMA3, 4096, 14336, 32, 32, 8),
    "llama3-70b": _cfg(_LLAMA3, 8192, 28672, 80, 64, 8),
    "qwen2.5-7b": _cfg(_QWEN25, 3584, 18944, 28, 28, 4),
    "qwen2.5-32b": _cfg(_QWEN25, 5120, 27648, 64, 40, 8),
    "qwen2.5-72b": _cfg(_QWEN25, 8192, 29568, 80, 64, 8),
    # The paper's 32B model (LobRA, Sec. 6): Llama architecture, 60 layers, hidden 6656, FFN 17920, 64 heads.
    "paper-32b": _cfg(_LLAMA2, 6656, 17920, 60, 64, 64),
    # The test model: small enough to train on a CPU in milliseconds, 4 heads so that tp in {1, 2, 4} divides them.
    "tiny": _cfg(
        {"model_type": "llama", "vocab_size": 256, "rms_norm_eps": 1e-5, "max_position_embeddings": 4096},
        64,
        128,
        2,
        4,
        4,
    ),
}

_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
# Read by the cost model or the executor where a config has them: checked like the required ones.
_OPTIONAL = ("num_key_value_heads", "max_position_embeddings")


@dataclass(frozen=True)
class ModelSpec:
    """The shapes the cost model needs, derived from a transformers config dict."""

    name: str
    config: dict[str, Any] = field(repr=False)

    def __post_init__(self) -> None:
        missing = [k for k in _REQUIRED if k not in self.config]
        if missing:
            raise CostModelError(f"model {self.name!r}: config lacks {', '.join(missing)}")
        for key in _REQUIRED + tuple(k for k in _OPTIONAL if self.config.get(k) is not None):
            value = self.config[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CostModelError(f"model {self.name!r}: {key} must be a positive integer, got {value!r}")
        if self.arch not in ("llama", "qwen2"):
            raise CostModelError(
                f"model {self.name!r}: model_type {self.arch!r} is not supported (llama, qwen2)"
            )
        if self.hidden_size % self.num_heads:
            raise CostModelError(
                f"model {self.name!r}: hidden_size {self.hidden_size} not divisible by heads"
            )
        if self.num_heads % self.num_kv_heads:
            raise CostModelError(f"model {self.name!r}: {self.num_heads} heads not divisible by kv heads")

    arch = property(lambda self: self.config.get("model_type", "llama"))
    hidden_size = property(lambda self: self.config["hidden_size"])
    ffn_size = property(lambda self: self.config["intermediate_size"])
    num_layers = property(lambda self: self.config["num_hidden_layers"])
    num_heads = property(lambda self: self.config["num_attention_heads"])
    num_kv_heads = property(lambda self: self.config.get("num_key_value_heads") or self.num_heads)
    vocab_size = property(lambda self: self.config["vocab_size"])

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of every linear layer of one decoder layer, by its HF module name."""
        h, f, kv = self.hidden_size, self.ffn_size, self.kv_dim
        return {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            "gate_proj": (h, f),
            "up_proj": (h, f),
            "down_proj": (f, h),
        }

    @property
    def params_per_layer(self) -> int:
        # Linear weights plus two RMSNorm vectors; Qwen2's q/k/v biases are negligible and left out.
        return sum(i * o for i, o in self.linear_shapes.values()) + 2 * self.hidden_size

    @property
    def embedding_params(self) -> int:
        """Input embedding plus LM head (untied in every model listed here)."""
        tied = self.config.get("tie_word_embeddings", False)
        return self.vocab_size * self.hidden_size * (1 if tied else 2)

    @property
    def num_params(self) -> int:
        return self.num_layers * self.params_per_layer + self.embedding_params + self.hidden_size

    def lora_params_per_layer(self, rank: int, targets: tuple[str, ...]) -> int:
        """LoRA A (in x r) and B (r x out) for each targeted linear of one layer."""
        shapes = self.linear_shapes
        unknown = [t for t in targets if t not in shapes]
        if unknown:
            raise CostModelError(f"unknown LoRA target(s) {unknown}; choose from {sorted(shapes)}")
        return sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)

    def to_hf_config(self):
        """The transformers config object (imported lazily: the cost model itself needs no torch)."""
        from transformers import LlamaConfig, Qwen2Config

        cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}[self.arch]
        return cls(**{k: v for k, v in self.config.items() if k != "model_type"})


def load_model_spec(name_or_path: str) -> ModelSpec:
    """A built-in model by name, or a local config.json (file or directory)."""
    if name_or_path in MODEL_CONFIGS:
        return ModelSpec(name_or_path, dict(MODEL_CONFIGS[name_or_path]))
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise CostModelError(f"model config {str(path)!r} does not exist")
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise CostModelError(f"model config {str(path)!r} is not valid JSON: {err}") from None
        if not isinstance(config, dict):
            raise CostModelError(f"model config {str(path)!r} must hold a JSON object")
        name = path.parent.name or str(path)
        try:
            return ModelSpec(name, config)
        except CostModelError as err:  # name the file the user wrote, not the folder's name
            detail = str(err).removeprefix(f"model {name!r}: ")
            raise CostModelError(f"model config {str(path)!r}: {detail}") from None
    raise CostModelError(
        f"unknown model {name_or_path!r}; choose from {', '.join(MODEL_CONFIGS)} or a config.json path"
    )
