"""Deterministic sampling and augmentation, so a resumed run sees exactly the same batches.

An epoch is ``samples_per_epoch`` draws of training images *with replacement* (nnU-Net's way:
random crops of random images, so an epoch means the same amount of work on 15 images or on
15,000), grouped into batches. Each draw is a :class:`Draw` ``(index, epoch, slot)``: the image,
and where the draw sits in the run. The draws of an epoch are a pure function of
``(seed, epoch)``, and each draw's augmentation is seeded by ``(seed, epoch, slot)`` — not by the
image, so two draws of one image in an epoch get different crops, and not by anything a worker
process keeps, so persistent DataLoader workers stay exact across epochs and resumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset, Sampler

#: nnU-Net's epoch: 250 iterations.
MIN_STEPS_PER_EPOCH = 250


class Draw(NamedTuple):
    """One sampled training item: dataset index ``sample``, its ``epoch``, ``slot`` in it."""

    sample: int
    epoch: int
    slot: int


def resolve_samples_per_epoch(setting: int, *, num_samples: int, batch_size: int) -> int:
    """``train.samples_per_epoch``: the setting, or (0 = auto) at least one pass over the
    split and at least :data:`MIN_STEPS_PER_EPOCH` batches."""
    if setting > 0:
        return setting
    return max(num_samples, MIN_STEPS_PER_EPOCH * batch_size)


def epoch_draws(
    num_samples: int, samples_per_epoch: int, batch_size: int, *, seed: int, epoch: int
) -> list[list[Draw]]:
    """The batches of draws of one epoch, a pure function of ``(seed, epoch)``.

    Images are drawn uniformly with replacement; the last incomplete batch is dropped
    (BatchNorm dislikes a batch of one) unless the epoch is smaller than one batch.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    indices = torch.randint(num_samples, (samples_per_epoch,), generator=generator).tolist()
    draws = [Draw(index, epoch, slot) for slot, index in enumerate(indices)]
    if samples_per_epoch < batch_size:
        return [draws]
    usable = samples_per_epoch - samples_per_epoch % batch_size
    return [draws[i : i + batch_size] for i in range(0, usable, batch_size)]


def epoch_batches(num_samples: int, batch_size: int, *, seed: int, epoch: int) -> list[list[int]]:
    """One shuffled pass over ``num_samples`` in batches (without replacement), a pure function
    of ``(seed, epoch)``; the last incomplete batch is dropped unless it is the only one."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(num_samples, generator=generator).tolist()
    if num_samples < batch_size:
        return [order]
    return [order[i : i + batch_size] for i in range(0, num_samples - batch_size + 1, batch_size)]


class EpochSampler(Sampler[list[Draw]]):
    """Batches of the current epoch from its current position, for one long-lived DataLoader.

    The training loop sets :attr:`epoch` and :attr:`position` (optimizer steps of the epoch
    done) before iterating the loader; the sampler runs in the main process, so persistent
    workers see every change. A step's global batch is ``batch_size x world x accumulate``
    draws of :func:`epoch_draws`: the step's ``k``-th micro-batch is its ``k``-th slice of
    ``batch_size x world``, of which rank ``r`` takes the ``r``-th ``batch_size`` — so the
    draws, their augmentation and their order are the same on any number of processes with the
    same global batch, and a resumed run continues them.

    Args:
        num_samples: images in the training split.
        samples_per_epoch: draws per epoch.
        batch_size: draws per micro-batch of one process.
        seed: the run's seed.
        rank: this process's rank.
        world: the number of processes.
        accumulate: micro-batches per optimizer step.
    """

    def __init__(
        self,
        num_samples: int,
        samples_per_epoch: int,
        batch_size: int,
        *,
        seed: int,
        rank: int = 0,
        world: int = 1,
        accumulate: int = 1,
    ) -> None:
        self.num_samples = num_samples
        self.samples_per_epoch = samples_per_epoch
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world, self.accumulate = rank, world, accumulate
        self.epoch = 0
        self.position = 0

    @property
    def global_batch(self) -> int:
        """Draws per optimizer step over every process."""
        return self.batch_size * self.world * self.accumulate

    def batches(self) -> list[list[Draw]]:
        """This process's remaining micro-batches of the current epoch."""
        every = epoch_draws(
            self.num_samples,
            self.samples_per_epoch,
            self.global_batch,
            seed=self.seed,
            epoch=self.epoch,
        )
        if self.global_batch == self.batch_size:
            return every[self.position :]
        width, mine = self.batch_size * self.world, self.rank * self.batch_size
        return [
            step[k * width : (k + 1) * width][mine : mine + self.batch_size]
            for step in every[self.position :]
            for k in range(self.accumulate)
        ]

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in a whole epoch."""
        if self.samples_per_epoch < self.global_batch:
            return 1
        return self.samples_per_epoch // self.global_batch

    def __iter__(self) -> Iterator[list[Draw]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.position) * self.accumulate


def same_size_batches(dataset: Any, count: int, batch_size: int) -> list[list[int]]:
    """The first ``count`` indices of ``dataset`` in order, batched so that a batch only holds
    images of one size (padding a batch to its largest image wastes compute on every other).

    With ``batch_size`` 1 no image is read; otherwise each is read once for its size.
    """
    if batch_size <= 1:
        return [[index] for index in range(count)]
    batches: list[list[int]] = []
    open_batch: dict[tuple[int, ...], list[int]] = {}
    for index in range(count):
        size = tuple(dataset[index].image.shape[-2:])
        batch = open_batch.setdefault(size, [])
        batch.append(index)
        if len(batch) == batch_size:
            batches.append(open_batch.pop(size))
    batches += [batch for batch in open_batch.values() if batch]
    return sorted(batches, key=lambda batch: batch[0])


class SeededDataset(Dataset):
    """Wraps a dataset so each draw's random augmentation depends only on (seed, epoch, slot).

    Items are :class:`Draw` tuples (or plain indices, seeded by ``(seed, self.epoch, index)``).

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

    def __getitem__(self, item: Draw | int) -> Any:
        if isinstance(item, tuple):
            index, epoch, slot = item
        else:
            index, epoch, slot = item, self.epoch, item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + epoch) * 100_003 + slot)
            return self.dataset[index]
