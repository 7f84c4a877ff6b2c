"""Inputs of pixelseg predict: the tree mirrored under --out, colliding outputs refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pixelseg.errors import DataError, PixelsegError
from pixelseg.inference.inputs import collect_inputs, output_folders


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folders_keep_their_subfolders_and_files_their_common_parent(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    a, b = _touch(scenes / "a" / "t.tif"), _touch(scenes / "b" / "t.tif")
    top = _touch(scenes / "x.png")
    _touch(scenes / "notes.txt")
    assert output_folders([scenes]) == [(a, Path("a")), (b, Path("b")), (top, Path("."))]
    assert output_folders([a, b]) == [(a, Path("a")), (b, Path("b"))]  # named directly
    assert output_folders([a]) == [(a, Path("."))]
    assert collect_inputs([scenes]) == [a, b, top]


def test_outputs_that_would_collide_are_refused_naming_both(tmp_path: Path) -> None:
    png, tif = _touch(tmp_path / "in" / "t.png"), _touch(tmp_path / "in" / "t.tif")
    with pytest.raises(
        DataError, match=re.escape(f"{tif}: its outputs would overwrite those of {png}")
    ):
        output_folders([tmp_path / "in"])


def test_missing_input_or_no_images(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="input not found"):
        output_folders([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PixelsegError, match="no input images"):
        output_folders([tmp_path / "empty"])
