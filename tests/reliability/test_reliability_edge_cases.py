"""Data as people have it: odd file names, images without objects, one-pixel objects.

The whole pipeline (check, train, predict) runs on each; none of it may crash or lose a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pixelseg.cli import main
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.data.synthetic import write_synthetic_semantic

TINY = [
    "--set", 'model.name="unet"', "--set", "model.options={depth=2, base_width=4}",
    "--set", "train.epochs=1", "--set", "train.batch_size=2", "--set", "train.crop_size=32",
]  # fmt: skip
ODD_STEMS = ["zellé 01", "Ölfeld_ü", "日本 画像", "a b  c", "x-ray (1)", "crème", "ß", "Ω 7"]


def test_file_names_with_spaces_and_non_ascii_run_end_to_end(tmp_path: Path) -> None:
    config = write_synthetic_semantic(tmp_path / "data", n_images=8, size=48, seed=2)
    images = sorted((tmp_path / "data").rglob("images/*.png"))
    assert len(images) == len(ODD_STEMS)
    for image, stem in zip(images, ODD_STEMS):
        mask = next(image.parent.parent.glob(f"masks/{image.stem}.*"))
        image.rename(image.with_name(stem + image.suffix))
        mask.rename(mask.with_name(stem + mask.suffix))
    # The split by name: the first six train, the rest validate.
    listed = ", ".join(f'"{stem}"' for stem in ODD_STEMS[:6])
    text = config.read_text(encoding="utf-8")
    text = text.replace('method = "range"\ntrain = ["0-5"]', f'method = "list"\ntrain = [{listed}]')
    config.write_text(text, encoding="utf-8")
    assert main(["check", str(config), *TINY]) == 0
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), *TINY]) == 0
    out = tmp_path / "pred"
    folder = images[0].parent
    assert main(["predict", str(run), str(folder), "--out", str(out)]) == 0
    written = {p.name for p in out.glob("*_label.png")}
    assert written == {f"{stem}_label.png" for stem in ODD_STEMS}


def test_images_without_objects_and_one_pixel_objects_run_end_to_end(tmp_path: Path) -> None:
    config = write_synthetic_instances(tmp_path / "data", n_images=6, size=64)
    labels = sorted((tmp_path / "data").rglob("labels/*.png"))
    empty = np.zeros((64, 64), np.uint16)
    Image.fromarray(empty).save(labels[0])  # an image with no object at all
    dots = np.zeros((64, 64), np.uint16)
    for k, (y, x) in enumerate([(5, 5), (20, 40), (50, 10)], start=1):
        dots[y, x] = k  # objects of a single pixel
    Image.fromarray(dots).save(labels[1])
    watershed = [*TINY, "--set", 'task="watershed"']
    assert main(["check", str(config), *watershed]) == 0
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), *watershed]) == 0
    image = sorted((tmp_path / "data").rglob("images/*.png"))[0]
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(image), "--out", str(out)]) == 0
    predicted = np.asarray(Image.open(out / f"{image.stem}_instances.png"))
    assert predicted.shape == (64, 64)
    assert (out / "predictions_coco.json").is_file()
