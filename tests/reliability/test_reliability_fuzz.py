"""Fuzzing (hypothesis): whatever bytes a user's tools produce, only clean errors come out.

Each target takes generated input and must either succeed or raise pixelseg's own error type
naming the file — never another exception, never a hang (a 2 s deadline per example), never a
read outside the data root, and (the image targets, in a subprocess with the heap capped at
2 GiB) no allocation a header asks for. ``make test`` runs about 100 examples per target (the
``default`` profile); ``make fuzz`` runs the ``fuzz`` profile (``HYPOTHESIS_PROFILE=fuzz``, 2000
each).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixelseg.config import config_from_dict, load_config
from pixelseg.data.instance.coco import CocoIndex
from pixelseg.data.io import read_image
from pixelseg.errors import ConfigError, DataError

# Pillow's format plugins load on first use: load them now, not inside a timed example.
Image.init()

# make test: the same 100 examples every run (derandomized), so a green run stays green in CI.
settings.register_profile(
    "default",
    max_examples=100,
    deadline=2000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz", max_examples=2000, deadline=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

MAGIC = {
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0",
    ".tif": b"II*\x00",
    ".gif": b"GIF89a",
    ".bmp": b"BM",
}


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="pixelseg-fuzz-"))


@given(
    suffix=st.sampled_from(sorted(MAGIC)),
    with_magic=st.booleans(),
    body=st.binary(max_size=2048),
)
def test_random_bytes_as_an_image_are_a_clean_error(
    suffix: str, with_magic: bool, body: bytes
) -> None:
    path = _scratch() / f"image{suffix}"
    path.write_bytes((MAGIC[suffix] if with_magic else b"") + body)
    try:
        image = read_image(path)
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        assert image.ndim == 3


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@given(
    width=st.integers(1, 2**31 - 1),
    height=st.integers(1, 2**31 - 1),
    depth=st.sampled_from([1, 8, 16]),
    colour=st.sampled_from([0, 2, 6]),
)
def test_an_absurd_png_header_is_refused_before_decoding(
    width: int, height: int, depth: int, colour: int
) -> None:
    path = _scratch() / "huge.png"
    if depth == 1:
        colour = 0  # the one colour type a 1-bit PNG may have
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    path.write_bytes(MAGIC[".png"] + body + _png_chunk(b"IEND", b""))
    try:
        image = read_image(path)
    except DataError as exc:
        assert str(path) in str(exc)
    else:  # a small image whose 64 zero bytes Pillow accepted: decoded within the limit
        assert image.ndim == 3 and image.shape[0] * image.shape[1] <= 2**30


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
NAMES = st.sampled_from(["a.png", "../outside.png", "/etc/passwd", "sub/b.png", "", "a\0.png"])


@st.composite
def coco_like(draw: Any) -> Any:
    """Mostly-valid COCO files whose values are drawn from anything JSON can hold."""
    images = [
        {"id": draw(JSON | st.integers(0, 3)), "file_name": draw(NAMES | JSON),
         "height": draw(JSON | st.integers(0, 64)), "width": draw(JSON | st.integers(0, 64))}
        for _ in range(draw(st.integers(0, 3)))
    ]  # fmt: skip
    annotations = [
        {"id": draw(JSON), "image_id": draw(JSON | st.integers(0, 3)),
         "category_id": draw(JSON | st.integers(0, 2)), "segmentation": draw(JSON),
         "iscrowd": draw(JSON | st.integers(0, 1)), "bbox": draw(JSON)}
        for _ in range(draw(st.integers(0, 3)))
    ]  # fmt: skip
    categories = [{"id": draw(JSON | st.integers(0, 2)), "name": draw(JSON | st.just("cell"))}]
    raw = {"images": images, "annotations": annotations, "categories": categories}
    return draw(st.just(raw) | JSON)


@given(raw=coco_like())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_random_coco_json_is_a_clean_error(raw: Any) -> None:
    root = _scratch()
    (root / "a.png").write_bytes(b"")
    path = root / "annotations.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    try:
        index = CocoIndex.read(path, root)
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        for image in index.images:  # nothing outside the data root is ever listed
            assert Path(image.file).resolve().is_relative_to(root.resolve())


SECTIONS = {
    "data": ["root", "format", "images", "masks", "classes", "max_pixels", "normalize", "nodata"],
    "model": ["name", "options"],
    "loss": ["name", "class_weighting"],
    "train": ["epochs", "batch_size", "crop_size", "lr", "precision", "max_time", "patience"],
}


@st.composite
def config_like(draw: Any) -> Any:
    """Config dicts with known and unknown keys holding any JSON value."""
    raw: dict[str, Any] = {}
    for section, keys in SECTIONS.items():
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from([*keys, "nonsense"]), max_size=4))
            raw[section] = {key: draw(JSON) for key in chosen}
    if draw(st.booleans()):
        raw["task"] = draw(JSON | st.sampled_from(["semantic", "watershed", "instance"]))
    return raw


@given(raw=config_like())
def test_random_configs_are_a_clean_error(raw: dict[str, Any]) -> None:
    try:
        config = config_from_dict(raw, source="fuzz.toml")
    except ConfigError as exc:  # the message names the file or the key
        assert "fuzz.toml" in str(exc) or any(k in str(exc) for k in [*SECTIONS, "task"])
    else:
        assert config.task in ("semantic", "watershed", "instance")


@given(
    text=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    suffix=st.sampled_from([".toml", ".yaml"]),
)
def test_random_config_files_are_a_clean_error(text: bytes, suffix: str) -> None:
    path = _scratch() / f"config{suffix}"
    path.write_bytes(text)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
    except DataError as exc:  # parsed, but its data root is not there
        assert "data root" in str(exc)


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd", "sub/../../x.png"])
def test_a_coco_file_name_outside_the_root_is_refused(tmp_path: Path, name: str) -> None:
    raw = {
        "images": [{"id": 1, "file_name": name, "height": 4, "width": 4}],
        "annotations": [],
        "categories": [{"id": 1, "name": "cell"}],
    }
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DataError, match="outside"):
        CocoIndex.read(path, tmp_path / "root")


# The image targets again, in a subprocess whose heap is capped (RLIMIT_DATA): an image whose
# header lies about its size must be refused, not allocated.
MEMORY_LIMITED = """
import resource, sys
limit = 2 * 1024**3
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
sys.path.insert(0, sys.argv[1])
import test_reliability_fuzz as targets
targets.test_random_bytes_as_an_image_are_a_clean_error()
targets.test_an_absurd_png_header_is_refused_before_decoding()
print("held")
"""


@pytest.mark.slow
def test_the_image_targets_hold_with_the_heap_capped_at_2_gib() -> None:
    import subprocess
    import sys

    folder = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED, folder],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "held" in done.stdout, done.stderr[-3000:]
