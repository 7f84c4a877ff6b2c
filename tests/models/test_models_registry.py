"""The model registry: names, duplicate refusal, unknown names and options, saved config."""

from __future__ import annotations

import pytest
import torch

from pixelseg.errors import PixelsegError
from pixelseg.models import create_model, list_models, register_model, registry


def test_list_models_is_sorted_and_complete() -> None:
    names = list_models()
    assert names == sorted(names)
    assert {"unet", "unet_resnet18", "fcn8s_resnet18", "deeplabv3plus_resnet50"} <= set(names)


def test_duplicate_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unet_resnet18"):

        @register_model("unet_resnet18")
        def again(*, num_classes: int) -> torch.nn.Module:
            return torch.nn.Identity()


def test_register_and_create_custom_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))

    @register_model("test_identity")
    def identity(
        *, num_classes: int, in_channels: int = 3, weights: str | None = None, scale: int = 1
    ) -> torch.nn.Module:
        return torch.nn.Conv2d(in_channels, num_classes, 1)

    model = create_model("test_identity", num_classes=2, in_channels=5, scale=3)
    assert isinstance(model, torch.nn.Conv2d) and model.in_channels == 5
    assert model.config == {"name": "test_identity", "num_classes": 2, "in_channels": 5, "scale": 3}
    assert "test_identity" in list_models()


def test_unknown_name_lists_known_models() -> None:
    with pytest.raises(PixelsegError, match=r"unknown model 'unet_resnet99'.*unet_resnet18"):
        create_model("unet_resnet99", num_classes=2)


def test_unknown_option_names_it_and_accepted_ones() -> None:
    with pytest.raises(PixelsegError, match=r"'atrous_rate'.*atrous_rates"):
        create_model("deeplabv3plus_resnet18", num_classes=2, atrous_rate=(6, 12))


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("unet_resnet18", {"norm": "instance"}, "norm"),
        ("fcn8s_resnet18", {"upsampling": "nearest"}, "upsampling"),
        ("deeplabv3plus_resnet18", {"output_stride": 12}, "output_stride"),
        ("unet", {"weights": "imagenet"}, "weights"),
        ("unet", {"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_option_values(name: str, options: dict[str, object], match: str) -> None:
    kwargs = {"num_classes": 2, **options}
    with pytest.raises(PixelsegError, match=match):
        create_model(name, **kwargs)  # type: ignore[arg-type]


def test_config_holds_every_option() -> None:
    model = create_model("unet", num_classes=3, in_channels=1, base_width=4, depth=2)
    assert model.config == {
        "name": "unet",
        "num_classes": 3,
        "in_channels": 1,
        "depth": 2,
        "base_width": 4,
        "upsampling": "transposed",
        "norm": "batch",
        "dropout": 0.0,
    }
    assert model.output_stride == 4 and model.required_divisor == 1
