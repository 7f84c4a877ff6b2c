"""Progress bars: a bar opened inside another stays hidden instead of failing."""

from __future__ import annotations

import io
import sys

import pytest

from pixelseg.engine import progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_inside_a_bar_is_hidden_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    with progress.progress_bar("images", total=2) as outer:
        assert progress._shown == ["images"]
        with progress.progress_bar("tiles", total=3) as inner:
            inner()  # a no-op: rich shows one live display at a time
            assert progress._shown == ["images"]
        outer()
    assert progress._shown == []
