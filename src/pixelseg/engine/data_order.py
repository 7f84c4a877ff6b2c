"""Deterministic data order and augmentation, so a resumed run sees exactly the same batches."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset


def epoch_batches(num_samples: int, batch_size: int, *, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled index batches of one epoch, a pure function of ``(seed, epoch)``.

    The last incomplete batch is dropped (BatchNorm dislikes a batch of one), unless the dataset
    is smaller than one batch.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(num_samples, generator=generator).tolist()
    if num_samples < batch_size:
        return [order]
    return [order[i : i + batch_size] for i in range(0, num_samples - batch_size + 1, batch_size)]


class SeededDataset(Dataset):
    """Wraps a dataset so each item's random augmentation depends only on (seed, epoch, index).

    Args:
        dataset: the dataset whose ``__getitem__`` draws from torch's global RNG.
        seed: the run's seed.
    """

    def __init__(self, dataset: Dataset, *, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 100_003 + index)
            return self.dataset[index]
