"""Encoders from timm (``tu-<timm model>``): levels, output stride, norms, weights, registry.

Three families (ResNet, ConvNeXt whose first map is at stride 4, MobileNetV3 from timm's
EfficientNet builder with its BatchNormAct2d layers) under U-Net, DeepLabV3+ and FCN-8s, on tiny
inputs; nothing is downloaded (ImageNet fetching is patched to fail).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import timm
import timm.models._builder
import torch
from safetensors.torch import save_file

from pixelseg.engine.run_dir import RunInfo, build_model_from_info
from pixelseg.errors import ConfigError, PixelsegError
from pixelseg.models import create_model, list_models, register_model, registry
from pixelseg.models.encoders import create_encoder
from pixelseg.models.encoders.timm_encoder import TimmEncoder
from pixelseg.models.registry import register_model_family

torch.set_num_threads(1)

FAMILIES = ("resnet10t", "convnext_atto", "mobilenetv3_small_050")
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "unet": {"base_width": 4},
    "deeplabv3plus": {"decoder_width": 16},
    "fcn8s": {"head_width": 16},
}
NUM_CLASSES = 3
RUNS = ((1, 70, 45), (2, 64, 64))  # one size not divisible by 32


def check_forward_backward(model: torch.nn.Module, in_channels: int) -> None:
    """Logits of the input's size and finite gradients reaching the first convolution."""
    model.train()
    for batch, height, width in RUNS:
        model.zero_grad()
        logits = model(torch.randn(batch, in_channels, height, width))
        assert logits.shape == (batch, NUM_CLASSES, height, width)
        assert torch.isfinite(logits).all()
        logits.square().mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert first_conv.in_channels == in_channels
        assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("family", FAMILIES)
def test_architectures_on_timm_encoders(arch: str, family: str) -> None:
    name = f"{arch}_tu-{family}"
    # Alternate the configurations to keep the file fast: 3 bands + BatchNorm, 4 + GroupNorm.
    in_channels, norm = ((3, "batch"), (4, "group"))[FAMILIES.index(family) % 2]
    model = create_model(
        name, num_classes=NUM_CLASSES, in_channels=in_channels, norm=norm, **ARCHITECTURES[arch]
    )
    config = cast(dict[str, Any], model.config)
    assert config["name"] == name and config["norm"] == norm
    has_batch_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert has_batch_norm == (norm == "batch")
    check_forward_backward(model, in_channels)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("output_stride", [32, 16, 8])
def test_levels_follow_the_output_stride(family: str, output_stride: int) -> None:
    encoder = create_encoder(f"tu-{family}", output_stride=output_stride, in_channels=4).eval()
    assert encoder.output_stride == output_stride
    assert encoder.strides == tuple(min(2**level, output_stride) for level in range(1, 6))
    height, width = 70, 45
    with torch.no_grad():
        features = encoder(torch.randn(1, 4, height, width))
    assert len(features) == 5
    for feature, stride, channels in zip(features, encoder.strides, encoder.out_channels):
        assert feature.shape == (1, channels, math.ceil(height / stride), math.ceil(width / stride))
    # ConvNeXt starts at stride 4: pixelseg's own stride-2 stem supplies level 0.
    assert (encoder.stem is not None) == (family == "convnext_atto")


def test_level0_without_parameters_for_decoders_that_never_read_it() -> None:
    encoder = create_encoder("tu-convnext_atto", learned_stem=False).eval()
    assert encoder.stem is None and encoder.out_channels[0] == encoder.out_channels[1]
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 70, 45))
    assert features[0].shape == (1, encoder.out_channels[0], 35, 23)
    # DeepLabV3+ and FCN never read level 0: no stem whose parameters would go unused.
    for arch in ("deeplabv3plus", "fcn8s"):
        model = create_model(f"{arch}_tu-convnext_atto", num_classes=2, **ARCHITECTURES[arch])
        assert model.encoder.stem is None
    assert create_model("unet_tu-convnext_atto", num_classes=2).encoder.stem is not None


def test_deeplab_at_output_stride_8() -> None:
    model = create_model(
        "deeplabv3plus_tu-convnext_atto", num_classes=NUM_CLASSES, output_stride=8, decoder_width=16
    )
    assert model.output_stride == 8
    check_forward_backward(model, 3)


def test_group_norm_keeps_timm_activations() -> None:
    def activations(encoder: torch.nn.Module) -> list[str]:
        norms = (torch.nn.BatchNorm2d, torch.nn.GroupNorm)
        return [
            type(m.act).__name__
            for m in encoder.modules()
            if isinstance(m, norms) and hasattr(m, "act")
        ]

    batch = create_encoder("tu-mobilenetv3_small_050", norm="batch")
    group = create_encoder("tu-mobilenetv3_small_050", norm="group")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in group.modules())
    assert "ReLU" in activations(group) and activations(group) == activations(batch)
    # ConvNeXt's LayerNorms stay.
    convnext = create_encoder("tu-convnext_atto", norm="group")
    assert any("LayerNorm" in type(m).__name__ for m in convnext.modules())


@pytest.mark.parametrize("family", ["pvt_v2_b0", "ghostnet_050"])
def test_unsupported_output_stride_is_a_config_error(family: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{family}'.*'output_stride' = 16"):
        create_model(f"deeplabv3plus_tu-{family}", num_classes=2)  # DeepLab's default is 16
    model = create_model(f"unet_tu-{family}", num_classes=2, base_width=4)  # 32 works
    assert model.output_stride == 32


def test_unknown_and_pyramid_less_models() -> None:
    with pytest.raises(ConfigError, match="unknown timm model 'not_a_timm_model'"):
        create_model("unet_tu-not_a_timm_model", num_classes=2)
    with pytest.raises(ConfigError, match="strides 4, 8, 16 and 32"):
        create_encoder("tu-vit_tiny_patch16_224")
    with pytest.raises(ConfigError, match="output_stride"):
        create_encoder("tu-resnet10t", output_stride=4)


def test_missing_timm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # makes ``import timm`` raise ImportError
    with pytest.raises(PixelsegError, match="pip install timm"):
        create_encoder("tu-resnet10t")


def test_imagenet_fetch_failure_is_a_pixelseg_error(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def offline(*args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        calls.append(args[0] if args else kwargs)
        raise OSError("network is unreachable")

    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_hf", offline)
    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_url", offline)
    with pytest.raises(PixelsegError, match=r"cannot fetch ImageNet weights.*weights=None") as info:
        create_model("unet_tu-resnet10t", num_classes=2, weights="imagenet")
    assert "\n" not in str(info.value) and "local .safetensors/.pth file" in str(info.value)
    assert len(calls) == 1


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_file_from_an_encoder_loads_into_an_identical_one(
    tmp_path: Path, suffix: str
) -> None:
    torch.manual_seed(0)
    options: dict[str, Any] = {"in_channels": 4, "norm": "group", "output_stride": 16}
    source = create_encoder("tu-convnext_atto", **options).eval()
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    path = tmp_path / f"encoder{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    loaded = create_encoder("tu-convnext_atto", weights=path, **options).eval()
    images = torch.randn(1, 4, 40, 33)
    with torch.no_grad():
        for a, b in zip(source(images), loaded(images)):
            torch.testing.assert_close(a, b)
    with pytest.raises(PixelsegError, match="key"):
        create_encoder("tu-convnext_atto", weights=path)  # BatchNorm stem: other keys


def test_local_timm_checkpoint_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = timm.create_model("resnet10t")  # the timm model with its classifier, as on the hub
    state = {k: v.contiguous() for k, v in full.state_dict().items()}
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    encoder = create_encoder("tu-resnet10t", weights=str(path))
    assert isinstance(encoder, TimmEncoder)
    for key, tensor in encoder.model.state_dict().items():
        torch.testing.assert_close(tensor, state[key], msg=key)
    with pytest.raises(PixelsegError, match="not weights of timm model 'convnext_atto'"):
        create_encoder("tu-convnext_atto", weights=str(path))


def test_config_rebuilds_the_model() -> None:
    model = create_model(
        "deeplabv3plus_tu-convnext_atto", num_classes=NUM_CLASSES, in_channels=4, decoder_width=16
    )
    config = cast(dict[str, Any], model.config)
    assert config["name"] == "deeplabv3plus_tu-convnext_atto"
    assert "weights" not in config
    info = RunInfo(
        task="semantic",
        class_names=["a", "b", "c"],
        palette=[[0, 0, 0]] * 3,
        ignore_index=255,
        normalizer={},
        model=json.loads(json.dumps(config)),  # as run.json stores it
        in_channels=4,
    )
    rebuilt = build_model_from_info(info)
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    images = torch.randn(1, 4, 40, 33)
    with torch.no_grad():
        torch.testing.assert_close(model(images), rebuilt(images))


def test_registry_lists_and_guards_the_families(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not any("<" in name for name in list_models())  # every plain name is buildable
    patterns = {name for name in list_models(families=True) if "<" in name}
    expected = {"unet", "deeplabv3plus", "fcn8s", "fcn16s", "fcn32s"}
    assert patterns == {f"{arch}_tu-<timm model>" for arch in expected}
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    with pytest.raises(ValueError, match="unet_tu-"):
        register_model("unet_tu-resnet18")(lambda **kwargs: torch.nn.Identity())
    with pytest.raises(ValueError, match="unet_tu-"):
        register_model_family("unet_tu-")(lambda rest: lambda **kwargs: torch.nn.Identity())
    with pytest.raises(ValueError, match="unet_resnet18"):
        register_model_family("unet_res")(lambda rest: lambda **kwargs: torch.nn.Identity())
    with pytest.raises(ConfigError, match=r"unknown model 'unet_tu-'.*unet_tu-<timm model>"):
        create_model("unet_tu-", num_classes=2)
    with pytest.raises(ConfigError, match="'atrous_rate'"):
        create_model("deeplabv3plus_tu-resnet10t", num_classes=2, atrous_rate=(6, 12))
