"""The encoder contract and the surgery every torchvision backbone needs to honour it.

An :class:`Encoder` returns five feature maps, one per level, at strides ``(2, 4, 8, 16, 32)``
for output stride 32; a smaller output stride keeps the deepest levels at that stride by dilating
their convolutions instead of striding (as DeepLab does). The helpers here do that surgery, swap
BatchNorm for GroupNorm, adapt the first convolution to any number of input bands and load
pretrained weights, so each backbone module only says where its stages begin and end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixelseg.errors import ConfigError, PixelsegError

OUTPUT_STRIDES = (8, 16, 32)
NORMS = ("batch", "group")


class Encoder(nn.Module):
    """Backbone returning multi-scale features.

    Attributes:
        out_channels: Channels of each of the five feature levels.
        strides: Stride of each level relative to the input, e.g. ``(2, 4, 8, 16, 16)`` at
            output stride 16.
        output_stride: Stride of the deepest level (8, 16 or 32).
    """

    out_channels: tuple[int, ...]
    strides: tuple[int, ...]
    output_stride: int

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        """Compute the feature pyramid.

        Args:
            x: Images, shape ``(N, C_in, H, W)``.

        Returns:
            Five maps; level ``i`` has shape ``(N, out_channels[i], ceil(H / strides[i]),
            ceil(W / strides[i]))``.
        """
        raise NotImplementedError


def level_strides(output_stride: int) -> tuple[int, ...]:
    """The five level strides for an output stride, e.g. 16 -> ``(2, 4, 8, 16, 16)``."""
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    return tuple(min(2**level, output_stride) for level in range(1, 6))


def check_choice(option: str, value: object, choices: tuple[object, ...]) -> None:
    """Raise :class:`ConfigError` naming ``option`` if ``value`` is not one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ConfigError(f"model option {option!r} must be one of {allowed}, got {value!r}")


def group_count(channels: int, max_groups: int = 32) -> int:
    """Largest number of groups ``<= max_groups`` that divides ``channels``."""
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


def dilate_stage(stage: nn.Module, dilation: int) -> None:
    """Turn a strided stage into a dilated one of stride 1, in place.

    Every strided convolution gets stride 1 and every spatial convolution (3x3 and the
    depthwise 5x5 alike) gets ``dilation`` with matching "same" padding, so the receptive
    field grows as if the stage had kept its stride. torchvision only offers this for
    Bottleneck ResNets; doing it here works for BasicBlock and MobileNet blocks too.
    """
    for module in stage.modules():
        if isinstance(module, nn.Conv2d):
            module.stride = (1, 1)
            kh, kw = module.kernel_size
            if kh > 1 or kw > 1:
                module.dilation = (dilation, dilation)
                module.padding = ((kh // 2) * dilation, (kw // 2) * dilation)


def apply_output_stride(stages: list[nn.Module], output_stride: int) -> None:
    """Dilate the stride-16 and stride-32 stages (the last two) to reach ``output_stride``."""
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    if output_stride == 8:
        dilate_stage(stages[-2], 2)
        dilate_stage(stages[-1], 4)
    elif output_stride == 16:
        dilate_stage(stages[-1], 2)


def convert_to_group_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by GroupNorm (in place; returns the module).

    The affine weight and bias carry over, so pretrained scales are kept while batch statistics
    (unreliable at the small batches pixelseg trains with) are dropped.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            channels = child.num_features
            group_norm = nn.GroupNorm(group_count(channels), channels, eps=child.eps)
            if child.affine:
                with torch.no_grad():
                    group_norm.weight.copy_(child.weight)
                    group_norm.bias.copy_(child.bias)
            setattr(module, name, group_norm)
        else:
            convert_to_group_norm(child)
    return module


def adapt_first_conv(conv: nn.Conv2d, in_channels: int, *, pretrained: bool) -> nn.Conv2d:
    """A copy of the first convolution that takes ``in_channels`` bands.

    With pretrained weights the RGB kernel is averaged over its channels, repeated for each band
    and scaled by ``3 / in_channels`` so the response to a grey image keeps its magnitude.
    Without them the new convolution keeps PyTorch's default initialisation.
    """
    if in_channels == conv.in_channels:
        return conv
    new_conv = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    if pretrained:
        with torch.no_grad():
            mean_kernel = conv.weight.mean(dim=1, keepdim=True)
            new_conv.weight.copy_(mean_kernel.repeat(1, in_channels, 1, 1) * 3 / in_channels)
            if conv.bias is not None and new_conv.bias is not None:
                new_conv.bias.copy_(conv.bias)
    return new_conv


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a local ``.safetensors`` file, or of a ``.pth``/``.pt`` file (no pickled code)."""
    if not path.is_file():
        raise PixelsegError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any reader failure is a bad file for the user
        raise PixelsegError(f"{path}: cannot read weights ({error})") from error
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise PixelsegError(f"{path}: weights file does not hold a state dict")
    return dict(loaded)


def fetch_imagenet_state_dict(weights_enum: object, encoder: str) -> dict[str, Tensor]:
    """Download (or read from the torch hub cache) torchvision's ImageNet weights.

    Raises:
        PixelsegError: The weights cannot be downloaded (no network, bad hash, ...).
    """
    try:
        return weights_enum.get_state_dict(progress=False, check_hash=True)  # type: ignore[attr-defined,no-any-return]
    except Exception as error:  # network and cache failures come in many types
        raise PixelsegError(
            f"cannot download ImageNet weights {weights_enum} for encoder {encoder!r} ({error}); "
            "train from scratch with weights=None or pass a local .safetensors/.pth file"
        ) from error


def load_backbone_weights(
    backbone: nn.Module,
    weights: str | Path,
    *,
    encoder: str,
    imagenet: Callable[[], dict[str, Tensor]],
) -> None:
    """Load ``"imagenet"`` or a local file into a torchvision backbone before any surgery.

    A local file holds the torchvision model's state dict (classifier keys are ignored); every
    key the encoder uses must be present with the right shape.
    """
    if str(weights) == "imagenet":
        state = imagenet()
        source = "ImageNet weights"
    else:
        path = Path(weights)
        state = read_state_dict(path)
        source = str(path)
    expected = backbone.state_dict()
    missing = [key for key in expected if key not in state]
    if missing:
        raise PixelsegError(
            f"{source}: not {encoder} weights, {len(missing)} key(s) missing (e.g. {missing[0]!r})"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise PixelsegError(
                f"{source}: {key!r} has shape {tuple(state[key].shape)}, "
                f"{encoder} expects {tuple(tensor.shape)}"
            )
    backbone.load_state_dict({key: state[key] for key in expected})


def pad_to_multiple(x: Tensor, divisor: int) -> Tensor:
    """``x`` replicate-padded bottom/right to a multiple of ``divisor`` (a ``torch.fx`` leaf)."""
    pad_h, pad_w = -x.shape[-2] % divisor, -x.shape[-1] % divisor
    if pad_h or pad_w:
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x
