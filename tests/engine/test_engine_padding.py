"""The class argmax of probability maps equals torch's, ties to the first class."""

from __future__ import annotations

import pytest
import torch

from pixelseg.engine.padding import class_argmax


@pytest.mark.parametrize(("shape", "dim"), [((3, 50, 60), 0), ((2, 5, 40, 40), 1), ((11, 7, 9), 0)])
def test_class_argmax_equals_torch_argmax(shape: tuple[int, ...], dim: int) -> None:
    torch.manual_seed(0)
    maps = torch.randn(*shape)
    maps.select(-1, 0).zero_()  # exact ties in one column: the first class wins, as in torch
    got = class_argmax(maps, dim)
    assert got.dtype == torch.int64
    assert torch.equal(got, maps.argmax(dim))
    layout = maps.contiguous(memory_format=torch.channels_last) if maps.dim() == 4 else maps
    assert torch.equal(class_argmax(layout, dim), maps.argmax(dim))


def test_equal_maps_give_the_first_class_and_no_classes_is_refused() -> None:
    assert int(class_argmax(torch.zeros(4, 5, 5)).max()) == 0
    with pytest.raises(ValueError, match="no class channels"):
        class_argmax(torch.zeros(0, 3, 3))
