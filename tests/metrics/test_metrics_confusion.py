"""ConfusionMatrix against torchmetrics and hand-made edge cases."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torchmetrics.classification import MulticlassF1Score, MulticlassJaccardIndex

from pixelseg.metrics import ConfusionMatrix

IGNORE = 255


def _random_batch(seed: int, num_classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, (3, 16, 20), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = IGNORE
    logits = torch.randn(3, num_classes, 16, 20, generator=g)
    return logits, target


def test_per_class_iou_and_dice_match_torchmetrics() -> None:
    cm = ConfusionMatrix(4, ignore_index=IGNORE, class_names=["a", "b", "c", "d"])
    jaccard = MulticlassJaccardIndex(num_classes=4, average=None, ignore_index=IGNORE)
    f1 = MulticlassF1Score(
        num_classes=4, average=None, ignore_index=IGNORE, multidim_average="global"
    )
    for seed in range(3):
        logits, target = _random_batch(seed)
        cm.update(logits, target)
        jaccard.update(logits.argmax(1), target)
        f1.update(logits.argmax(1), target)
    result = cm.compute()
    expected_iou = jaccard.compute()
    expected_f1 = f1.compute()
    ours_iou = torch.tensor(list(result["per_class_iou"].values()), dtype=torch.float32)
    ours_dice = torch.tensor(list(result["per_class_dice"].values()), dtype=torch.float32)
    torch.testing.assert_close(ours_iou, expected_iou, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours_dice, expected_f1, atol=1e-6, rtol=0)
    assert result["miou"] == pytest.approx(float(expected_iou.mean()), abs=1e-6)
    assert result["miou_definition"] == "dataset"
    assert result["absent_classes"] == []


def test_accuracies_fwiou_and_baseline_by_hand() -> None:
    # Truth: 6 pixels of class 0, 2 of class 1; prediction gets 5 of 0 right and 1 of 1 right.
    target = torch.tensor([[[0, 0, 0, 0, 0, 0, 1, 1]]])
    preds = torch.tensor([[[0, 0, 0, 0, 0, 1, 1, 0]]])
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(preds, target)
    result = cm.compute()
    iou0, iou1 = 5 / 7, 1 / 3
    assert result["per_class_iou"] == pytest.approx({"0": iou0, "1": iou1})
    assert result["pixel_accuracy"] == pytest.approx(6 / 8)
    assert result["mean_class_accuracy"] == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert result["fwiou"] == pytest.approx(6 / 8 * iou0 + 2 / 8 * iou1)
    assert result["majority_baseline_accuracy"] == pytest.approx(6 / 8)
    assert result["num_pixels"] == 8


def test_absent_class_is_named_and_left_out_of_mean() -> None:
    target = torch.tensor([[[0, 0, 1, 1]]])
    preds = torch.tensor([[[0, 0, 1, 0]]])
    cm = ConfusionMatrix(3, ignore_index=IGNORE, class_names=["bg", "road", "sky"])
    cm.update(preds, target)
    result = cm.compute()
    assert result["absent_classes"] == ["sky"]
    assert math.isnan(result["per_class_iou"]["sky"])
    assert math.isnan(result["per_class_dice"]["sky"])
    assert result["miou"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_class_only_in_prediction_counts_as_zero() -> None:
    target = torch.tensor([[[0, 0, 0, 0]]])
    preds = torch.tensor([[[0, 0, 0, 1]]])
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(preds, target)
    result = cm.compute()
    assert result["absent_classes"] == []
    assert result["per_class_iou"]["1"] == 0.0
    assert result["miou"] == pytest.approx((3 / 4 + 0) / 2)
    # Mean class accuracy only averages classes present in the truth.
    assert result["mean_class_accuracy"] == pytest.approx(3 / 4)


def test_ignore_and_invalid_pixels_never_count() -> None:
    target = torch.tensor([[[0, 1, IGNORE, 1]]])
    preds = torch.tensor([[[0, 1, 1, 0]]])
    valid = torch.tensor([[[True, True, True, False]]])
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(preds, target, valid=valid)
    result = cm.compute()
    assert result["num_pixels"] == 2
    assert result["miou"] == 1.0
    assert result["pixel_accuracy"] == 1.0


def test_all_ignore_image_changes_nothing() -> None:
    target = torch.tensor([[[0, 1], [1, 1]]])
    preds = torch.tensor([[[0, 1], [0, 1]]])
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(preds, target)
    before = cm.compute()
    cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), IGNORE))
    after = cm.compute()
    assert after["confusion_matrix"] == before["confusion_matrix"]
    assert after["miou_per_image"] == before["miou_per_image"]

    empty = ConfusionMatrix(2, ignore_index=IGNORE)
    empty.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), IGNORE))
    result = empty.compute()
    assert result["num_pixels"] == 0
    assert math.isnan(result["miou"]) and math.isnan(result["pixel_accuracy"])
    assert result["absent_classes"] == ["0", "1"]


def test_one_pixel_object() -> None:
    target = torch.zeros(1, 5, 5, dtype=torch.long)
    target[0, 2, 2] = 1
    preds = target.clone()
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(preds, target)
    assert cm.compute()["per_class_iou"]["1"] == 1.0
    missed = ConfusionMatrix(2, ignore_index=IGNORE)
    missed.update(torch.zeros_like(target), target)
    result = missed.compute()
    assert result["per_class_iou"]["1"] == 0.0
    assert result["pixel_accuracy"] == pytest.approx(24 / 25)
    assert result["majority_baseline_accuracy"] == pytest.approx(24 / 25)


def test_per_image_miou_differs_from_dataset_miou() -> None:
    # Image 1: class 1 perfect; image 2: class 1 missed entirely.
    target = torch.tensor([[[0, 1, 1, 1]], [[0, 0, 0, 1]]])
    preds = torch.tensor([[[0, 1, 1, 1]], [[0, 0, 0, 0]]])
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(preds, target)
    result = cm.compute()
    image2 = (3 / 4 + 0.0) / 2
    assert result["miou_per_image"] == pytest.approx((1.0 + image2) / 2)
    assert result["miou"] == pytest.approx((4 / 5 + 3 / 4) / 2)


def test_merge_equals_one_accumulator_over_all_data() -> None:
    whole = ConfusionMatrix(4, ignore_index=IGNORE)
    parts = [ConfusionMatrix(4, ignore_index=IGNORE) for _ in range(2)]
    for seed in range(4):
        logits, target = _random_batch(seed)
        whole.update(logits, target)
        parts[seed % 2].update(logits, target)
    parts[0].merge(parts[1])
    parts[0].sync()  # no process group: a no-op
    assert parts[0].compute() == whole.compute()
    whole.reset()
    assert whole.compute()["num_pixels"] == 0


def test_bad_inputs_raise() -> None:
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([[[0, 1]]]), torch.tensor([[[0, 7]]]))
    with pytest.raises(ValueError):
        cm.update(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError):
        ConfusionMatrix(2, class_names=["only-one"])


def test_binary_logits_threshold_at_zero() -> None:
    logits = torch.tensor([[[[-1.0, 2.0, 0.5, -3.0]]]])
    target = torch.tensor([[[0, 1, 0, 0]]])
    cm = ConfusionMatrix(2, ignore_index=IGNORE)
    cm.update(logits, target)
    assert cm.compute()["confusion_matrix"] == [[2, 1], [0, 1]]


def test_sync_under_a_process_group(tmp_path: Path) -> None:
    # A one-process gloo group exercises the all_reduce path; the counts must not change.
    logits, target = _random_batch(0)
    cm = ConfusionMatrix(4, ignore_index=IGNORE)
    cm.update(logits, target)
    before = cm.compute()
    dist.init_process_group(
        "gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1
    )
    try:
        cm.sync()
    finally:
        dist.destroy_process_group()
    assert cm.compute() == before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_counts_equal_cpu_counts() -> None:
    logits, target = _random_batch(0)
    cpu = ConfusionMatrix(4, ignore_index=IGNORE)
    gpu = ConfusionMatrix(4, ignore_index=IGNORE, device="cuda")
    cpu.update(logits, target)
    gpu.update(logits.cuda(), target.cuda(), valid=torch.ones_like(target, dtype=torch.bool))
    assert gpu.matrix.device.type == "cuda"
    assert torch.equal(gpu.matrix.cpu(), cpu.matrix)
    on_gpu, on_cpu = gpu.compute(), cpu.compute()
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "fwiou", "miou_per_image"):
        assert on_gpu[key] == pytest.approx(on_cpu[key], rel=1e-9, nan_ok=True), key
    assert on_gpu["per_class_iou"] == pytest.approx(on_cpu["per_class_iou"], nan_ok=True)
    assert on_gpu["absent_classes"] == on_cpu["absent_classes"]
