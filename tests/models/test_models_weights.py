"""Pretrained encoder weights: local files and a clear error when ImageNet weights cannot load."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from pixelseg.errors import PixelsegError
from pixelseg.models import create_model
from pixelseg.models.encoders import create_encoder

torch.set_num_threads(1)


@pytest.fixture
def resnet18_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision ResNet-18 state dict saved as safetensors (classifier included)."""
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in torchvision.models.resnet18().state_dict().items()}
    path = tmp_path / "resnet18.safetensors"
    save_file(state, str(path))
    return path, state


def test_local_safetensors_round_trip(resnet18_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = resnet18_file
    encoder = create_encoder("resnet18", weights=str(path))
    for key, tensor in encoder.state_dict().items():
        torch.testing.assert_close(tensor, state[key], msg=key)
    model = create_model("unet_resnet18", num_classes=2, weights=str(path))
    torch.testing.assert_close(model.encoder.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert "weights" not in model.config  # the checkpoint, not the file, restores a trained model


def test_local_pth_file_and_band_adaptation(
    tmp_path: Path, resnet18_file: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    _, state = resnet18_file
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    encoder = create_encoder("resnet18", weights=path, in_channels=4, norm="group")
    rgb = state["conv1.weight"]
    expected = rgb.mean(dim=1, keepdim=True).repeat(1, 4, 1, 1) * 3 / 4
    torch.testing.assert_close(encoder.conv1.weight, expected)
    # A grey image gives the same first-layer response with 4 bands as with RGB.
    grey = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(
        encoder.conv1(grey.repeat(1, 4, 1, 1)),
        torch.nn.functional.conv2d(grey.repeat(1, 3, 1, 1), rgb, stride=2, padding=3),
    )
    # GroupNorm keeps the pretrained affine parameters.
    torch.testing.assert_close(encoder.bn1.weight, state["bn1.weight"])


def test_wrong_local_file_is_a_clear_error(
    resnet18_file: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    path, _ = resnet18_file
    with pytest.raises(PixelsegError, match="not resnet50 weights"):
        create_encoder("resnet50", weights=path)
    with pytest.raises(PixelsegError, match="not found"):
        create_encoder("resnet18", weights=tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(PixelsegError, match="cannot read weights"):
        create_encoder("resnet18", weights=garbage)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_imagenet_download_failure_is_a_pixelseg_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    calls: list[str] = []

    def offline(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(PixelsegError, match=r"cannot download ImageNet weights.*weights=None"):
        create_model(f"deeplabv3plus_{name}", num_classes=2, weights="imagenet")
    assert len(calls) == 1 and calls[0].startswith("https://download.pytorch.org/")
