"""Shared model test base: every registered semantic model, forward and backward.

Each model is built twice (3 bands with BatchNorm, 4 bands with GroupNorm) and run at batch 1
on a size not divisible by 32 and at batch 2 on 64x64; the logits must have the input's size and
every parameter must get a finite gradient. ResNet-50 models run one configuration only.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from pixelseg.models import create_model, list_models

torch.set_num_threads(1)

SEMANTIC_PREFIXES = ("fcn", "unet", "deeplabv3plus")
SEMANTIC_MODELS = [name for name in list_models() if name.startswith(SEMANTIC_PREFIXES)]
NUM_CLASSES = 3
# (batch, height, width): one size not divisible by 32 (nor by 2**depth of the plain U-Net).
RUNS = ((1, 70, 45), (2, 64, 64))


def small_options(name: str) -> dict[str, Any]:
    """The smallest options that still exercise each architecture's full path."""
    if name == "unet":
        return {"base_width": 8, "depth": 3}
    if name.startswith("unet_"):
        return {"base_width": 4}
    if name.startswith("fcn"):
        return {"head_width": 32}
    return {"decoder_width": 32}


def check_forward_backward(model: torch.nn.Module, in_channels: int) -> None:
    """Assert output size = input size and finite gradients for every run in :data:`RUNS`."""
    model.train()
    for batch, height, width in RUNS:
        model.zero_grad()
        images = torch.randn(batch, in_channels, height, width)
        logits = model(images)
        assert logits.shape == (batch, NUM_CLASSES, height, width)
        assert torch.isfinite(logits).all()
        logits.square().mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        # The first convolution must learn from the input.
        first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert first_conv.in_channels == in_channels
        assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_all_architectures_are_registered() -> None:
    expected = {"unet"} | {
        f"{arch}_{encoder}"
        for arch in ("fcn32s", "fcn16s", "fcn8s", "unet", "deeplabv3plus")
        for encoder in ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large")
    }
    assert expected <= set(SEMANTIC_MODELS)


# ResNet-50 models run only the 4-band GroupNorm configuration (time budget).
CONFIGURATIONS = [
    (name, in_channels, norm)
    for name in SEMANTIC_MODELS
    for in_channels, norm in ((3, "batch"), (4, "group"))
    if not ("resnet50" in name and norm == "batch")
]


@pytest.mark.parametrize(("name", "in_channels", "norm"), CONFIGURATIONS)
def test_model_forward_backward(name: str, in_channels: int, norm: str) -> None:
    model = create_model(
        name, num_classes=NUM_CLASSES, in_channels=in_channels, norm=norm, **small_options(name)
    )
    norms = {type(m) for m in model.modules()}
    wanted, unwanted = (
        (torch.nn.BatchNorm2d, torch.nn.GroupNorm)
        if norm == "batch"
        else (torch.nn.GroupNorm, torch.nn.BatchNorm2d)
    )
    assert wanted in norms and unwanted not in norms
    assert model.required_divisor == 1
    assert model.output_stride in (8, 16, 32)
    assert model.config["name"] == name
    assert model.config["in_channels"] == in_channels
    assert model.config["norm"] == norm
    check_forward_backward(model, in_channels)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("fcn16s_resnet18", {"output_stride": 16}),
        ("fcn8s_resnet18", {"output_stride": 8, "upsampling": "bilinear"}),
        ("fcn8s_mobilenet_v3_large", {"output_stride": 16}),
        ("unet_resnet18", {"output_stride": 8, "upsampling": "transposed"}),
        ("unet", {"upsampling": "bilinear", "depth": 2}),
        ("deeplabv3plus_resnet18", {"output_stride": 8, "atrous_rates": [2, 4]}),
        ("deeplabv3plus_mobilenet_v3_large", {"output_stride": 32}),
    ],
)
def test_model_variants(name: str, options: dict[str, Any]) -> None:
    options = {**small_options(name), **options}
    model = create_model(name, num_classes=NUM_CLASSES, in_channels=3, **options)
    assert model.output_stride == options.get("output_stride", model.output_stride)
    check_forward_backward(model, 3)


def test_model_eval_is_deterministic_and_rebuildable() -> None:
    model = create_model("deeplabv3plus_resnet18", num_classes=NUM_CLASSES, decoder_width=16)
    rebuilt = create_model(**{k: v for k, v in model.config.items()})
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    images = torch.randn(1, 3, 40, 33)
    with torch.no_grad():
        torch.testing.assert_close(model(images), rebuilt(images))
