"""Shared instance report pieces: 16-bit label PNGs, contour overlays, metric tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from pixelseg.metrics.instance import InstanceEvaluator
from pixelseg.report.instance_figures import save_contour_overlay, save_label_png16
from pixelseg.report.instance_report import instance_markdown, print_instance_report


def test_label_png16_round_trip_keeps_ids_above_255(tmp_path: Path) -> None:
    labels = np.zeros((20, 30), dtype=np.int32)
    labels[2:6, 3:9] = 300
    labels[10:15, 10:20] = 65535
    labels[16:18, 1:3] = 7
    path = save_label_png16(tmp_path / "a" / "labels.png", labels)
    with Image.open(path) as picture:
        assert picture.mode.startswith("I;16") or picture.mode == "I"
        back = np.asarray(picture)
    assert back.shape == labels.shape
    np.testing.assert_array_equal(back.astype(np.int64), labels)
    assert not list(path.parent.glob("*.tmp")), "temporary file left behind"


def test_label_png16_refuses_ids_that_do_not_fit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="65535"):
        save_label_png16(tmp_path / "x.png", np.full((4, 4), 70000))
    assert not (tmp_path / "x.png").exists()


def test_contour_overlay_outlines_both_touching_objects(tmp_path: Path) -> None:
    labels = np.zeros((24, 24), dtype=np.int32)
    labels[4:20, 4:12] = 1
    labels[4:20, 12:20] = 2  # touches object 1 along column 11 | 12
    image = np.full((24, 24, 1), 1000, dtype=np.uint16)  # 16-bit, one band
    path = save_contour_overlay(tmp_path / "overlay.png", image, labels, colour=(255, 0, 0))
    rgb = np.asarray(Image.open(path).convert("RGB"))
    red = (rgb == (255, 0, 0)).all(axis=2)
    assert red[10, 11] and red[10, 12], "the shared border of the touching objects is drawn"
    assert red[4, 8] and red[19, 15], "outer edges are drawn"
    assert not red[10, 8] and not red[10, 16], "interiors are left alone"
    assert not red[0, 0], "background is left alone"


def _evaluated(num_objects_side: int) -> dict:
    """A split of one image with a grid of 2x2 objects, two of them merged in the prediction."""
    size = 5 * num_objects_side
    truth = np.zeros((size, size), dtype=np.int32)
    for k in range(num_objects_side**2):
        row, col = divmod(k, num_objects_side)
        truth[5 * row : 5 * row + 2, 5 * col : 5 * col + 2] = k + 1
    pred = truth.copy()
    # One prediction covers the first two objects and the gap between them: a merge.
    pred[0:2, 0:7] = 1
    evaluator = InstanceEvaluator()
    evaluator.update(pred, truth, image_id="img")
    return evaluator.compute()


def test_report_names_pooled_and_per_image_ap_and_raised_max_dets() -> None:
    result = _evaluated(num_objects_side=12)  # 144 objects: more than COCO's 100
    console = Console(record=True, width=200)
    print_instance_report(result, title="run: test split", console=console)
    text = console.export_text()
    assert "pooled over the split" in text and "mean of per-image scores" in text
    assert "maxDets raised from COCO's 100 to 144" in text
    assert "merges 1" in text and "splits 0" in text
    # 142 of 143 predictions match one of 144 true objects: AP50 = 142 / (142 + 1 + 2).
    ap50 = f"{100 * 142 / 145:.2f}"
    assert ap50 in text
    markdown = instance_markdown(result, title="run: test split")
    assert markdown.startswith("# run: test split")
    assert "| pooled over the split" in markdown and ap50 in markdown
    assert "maxDets raised" in markdown and "| COCO mask | AP | AP50 |" in markdown


def test_report_keeps_coco_default_note_and_handles_missing_coco() -> None:
    result = _evaluated(num_objects_side=3)
    console = Console(record=True, width=200)
    print_instance_report(result, title="small", console=console)
    assert "maxDets 100 (COCO's default)" in console.export_text()
    del result["coco"]
    console = Console(record=True, width=200)
    print_instance_report(result, title="no coco", console=console)
    text = console.export_text()
    assert "COCO" not in text and "count MAE" in text


def test_merge_split_panels_tint_the_merging_prediction_and_the_split_truth(
    tmp_path: Path,
) -> None:
    from pixelseg.report.instance_figures import (
        MERGE_FILL,
        SPLIT_FILL,
        merge_split_panels,
        save_merge_split_examples,
    )

    image = np.full((40, 60), 100, dtype=np.uint8)
    truth = np.zeros((40, 60), dtype=np.int32)
    truth[5:15, 5:15], truth[5:15, 16:26] = 1, 2  # two objects one prediction covers
    truth[25:35, 30:50] = 3  # one object two predictions cut
    prediction = np.zeros_like(truth)
    prediction[5:15, 5:26] = 1
    prediction[25:35, 30:40], prediction[25:35, 40:50] = 2, 3
    left, right = merge_split_panels(image, truth, prediction)
    tint = (0.5 * 100 + 0.5 * np.asarray(MERGE_FILL)).astype(np.uint8)
    assert (right[10, 10] == tint).all() and (right[30, 35] == 100).all()
    tint = (0.5 * 100 + 0.5 * np.asarray(SPLIT_FILL)).astype(np.uint8)
    assert (left[30, 35] == tint).all() and (left[10, 10] == 100).all()
    path = save_merge_split_examples(tmp_path / "m.png", [("x", image, truth, prediction)])
    assert path is not None and path.stat().st_size > 0
    assert save_merge_split_examples(tmp_path / "none.png", []) is None
