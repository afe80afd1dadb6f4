"""Tokenization and length-bucketed batching shared by training and scoring.

Why: customers' text views vary a lot in length; padding every batch to ``max_length`` wastes most
of the encoder's compute on pad tokens. Grouping similar lengths and padding each batch only to its
own longest row (dynamic padding) is the single biggest CPU speed-up.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

logger = logging.getLogger(__name__)

TOKENIZE_CHUNK = 2048


def tokenize_texts(tokenizer, texts: Sequence[str], max_length: int, chunk: int = TOKENIZE_CHUNK) -> list[np.ndarray]:
    """Token ids per text (truncated, unpadded), tokenized in chunks with the fast (Rust) tokenizer."""
    out: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        part = ["" if t is None else str(t) for t in texts[start : start + chunk]]
        enc = tokenizer(
            part,
            truncation=True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        out.extend(np.asarray(ids, dtype=np.int64) for ids in enc["input_ids"])
    return out


def pad_batch(sequences: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) padded to the longest sequence of this batch only."""
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Deterministic inference batches: rows sorted by length (longest first), then chunked."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Training batches of similar length in a random order, optionally sharded across DDP ranks.

    Each epoch: shuffle rows, cut them into mega-batches of ``batch_size * mega_batch_mult`` rows, sort
    each mega-batch by length and chunk it into batches, then shuffle the batch order. Rows stay
    randomised across epochs while padding stays small. With ``num_replicas > 1`` the batch list is
    padded (by repeating batches) to a multiple of the world size and rank ``r`` takes every
    ``num_replicas``-th batch, so every rank runs the same number of steps (no DDP hang).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        mega_batch_mult: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.mega = max(1, mega_batch_mult) * batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            return [b.tolist() for b in sorted_batches(self.lengths, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        perm = rng.permutation(n)
        batches: list[list[int]] = []
        for start in range(0, n, self.mega):
            mega = perm[start : start + self.mega]
            mega = mega[np.argsort(-self.lengths[mega], kind="stable")]
            batches.extend(mega[i : i + self.batch_size].tolist() for i in range(0, len(mega), self.batch_size))
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        if self.num_replicas > 1:
            total = math.ceil(len(batches) / self.num_replicas) * self.num_replicas
            batches = batches + batches[: total - len(batches)]
            batches = batches[self.rank :: self.num_replicas]
        return iter(batches)

    def __len__(self) -> int:
        n = len(self.lengths)
        if self.shuffle:  # mega-batch boundaries can add a few partial batches
            n_batches = sum(math.ceil(min(self.mega, n - s) / self.batch_size) for s in range(0, n, self.mega))
        else:
            n_batches = math.ceil(n / self.batch_size)
        return math.ceil(n_batches / self.num_replicas)


def format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class RowProgress:
    """Logs ``label: done/total rows (rows/s, ETA)`` at most every ``every_s`` seconds of a long pass.

    Why: computing frozen-encoder vectors or scoring a validation split of 60k rows on CPU runs for
    tens of minutes; without a line now and then it looks hung.
    """

    def __init__(self, label: str, total: int, every_s: float = 10.0):
        self.label, self.total, self.every_s = label, int(total), float(every_s)
        self.done = 0
        self.started = self.last = time.perf_counter()

    def step(self, rows: int) -> None:
        self.done += int(rows)
        now = time.perf_counter()
        if now - self.last < self.every_s or self.done >= self.total:
            return
        self.last = now
        rate = self.done / max(now - self.started, 1e-9)
        logger.info(
            "%s: %d/%d rows (%.1f rows/s, ETA %s)",
            self.label,
            self.done,
            self.total,
            rate,
            format_eta((self.total - self.done) / max(rate, 1e-9)),
        )
