"""Epochs of draws with replacement: deterministic, resumable, augmentation seeded per draw."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from pixelseg.engine.data_order import (
    MIN_STEPS_PER_EPOCH,
    Draw,
    EpochSampler,
    SeededDataset,
    epoch_draws,
    resolve_samples_per_epoch,
)


def test_auto_epoch_is_a_pass_and_at_least_250_steps() -> None:
    assert resolve_samples_per_epoch(0, num_samples=15, batch_size=4) == 4 * MIN_STEPS_PER_EPOCH
    assert resolve_samples_per_epoch(0, num_samples=5000, batch_size=4) == 5000
    assert resolve_samples_per_epoch(123, num_samples=5000, batch_size=4) == 123


def test_draws_are_a_pure_function_of_seed_and_epoch_with_replacement() -> None:
    first = epoch_draws(5, 40, 4, seed=1, epoch=3)
    assert first == epoch_draws(5, 40, 4, seed=1, epoch=3)
    assert first != epoch_draws(5, 40, 4, seed=1, epoch=4)
    assert len(first) == 10 and all(len(batch) == 4 for batch in first)
    samples = [draw.sample for batch in first for draw in batch]
    assert len(set(samples)) <= 5 < len(samples)  # with replacement: images come back
    assert [draw.slot for batch in first for draw in batch] == list(range(40))
    assert len(epoch_draws(5, 42, 4, seed=1, epoch=0)) == 10  # the incomplete batch is dropped


def test_sampler_resumes_from_the_position() -> None:
    sampler = EpochSampler(7, 24, 4, seed=0)
    sampler.epoch, sampler.position = 2, 4
    assert list(sampler) == epoch_draws(7, 24, 4, seed=0, epoch=2)[4:]
    assert len(sampler) == 2 and sampler.steps_per_epoch == 6


class RandomItem(Dataset):
    """Each item: a number from torch's global RNG (what a random crop would draw)."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> float:
        return float(torch.rand(()))


def test_two_draws_of_one_image_get_different_augmentation_and_repeat_exactly() -> None:
    data = SeededDataset(RandomItem(), seed=5)
    a, b = data[Draw(1, 0, 0)], data[Draw(1, 0, 1)]
    assert a != b
    assert data[Draw(1, 0, 0)] == a and data[Draw(2, 0, 0)] == a  # seeded by the slot
    assert data[Draw(1, 1, 0)] != a


class Sized(Dataset):
    """Items whose ``image`` has the given sizes."""

    def __init__(self, sizes: list[tuple[int, int]]) -> None:
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, index: int) -> object:
        return type("Item", (), {"image": torch.zeros(3, *self.sizes[index])})()


def test_validation_batches_hold_one_image_size_in_order() -> None:
    from pixelseg.engine.data_order import same_size_batches

    data = Sized([(8, 8), (16, 8), (8, 8), (8, 8), (16, 8), (8, 8)])
    assert same_size_batches(data, 6, 2) == [[0, 2], [1, 4], [3, 5]]
    assert same_size_batches(data, 4, 1) == [[0], [1], [2], [3]]
    assert same_size_batches(data, 4, 8) == [[0, 2, 3], [1]]
