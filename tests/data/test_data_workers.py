"""``train.num_workers = "auto"`` and the DataLoader options that go with the workers."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

import pixelseg.data.workers as workers_module
from pixelseg.data.workers import loader_options, resolve_num_workers


@pytest.mark.parametrize(
    ("cores", "cuda", "expected"),
    [(1, False, 0), (2, False, 0), (4, False, 0), (8, False, 1), (2, True, 1), (16, True, 4)],
)
def test_auto_follows_the_cores_and_the_device(
    monkeypatch: pytest.MonkeyPatch, cores: int, cuda: bool, expected: int
) -> None:
    monkeypatch.setattr(workers_module, "usable_cores", lambda: cores)
    assert resolve_num_workers("auto", cuda=cuda) == expected


def test_numbers_are_kept_and_other_strings_refused() -> None:
    assert resolve_num_workers(3) == 3 and resolve_num_workers(0) == 0
    assert resolve_num_workers(-1) == 0
    assert resolve_num_workers("auto") >= 0
    with pytest.raises(ValueError, match="auto"):
        resolve_num_workers("many")


def test_loader_options_build_a_working_loader() -> None:
    assert loader_options(0) == {"num_workers": 0}
    options = loader_options(1)
    assert options["persistent_workers"] and options["prefetch_factor"] == 2
    loader = DataLoader(list(range(6)), batch_size=2, **options)
    assert [batch.tolist() for batch in loader] == [[0, 1], [2, 3], [4, 5]]
    assert torch.equal(next(iter(loader)), torch.tensor([0, 1]))  # persistent: iterated again
