"""Encoders from timm: any timm model that offers ``features_only``, named ``tu-<timm name>``.

pixelseg takes the deepest of timm's feature maps (``feature_info``: channels, ``reduction``) at
each stride 2, 4, 8, 16, 32. Models whose first map is at stride 4 (ConvNeXt, PVT, most
transformers) get level 0 from a learned stem of pixelseg's own (one 3x3 stride-2 conv, norm,
ReLU; :data:`STEM_CHANNELS` channels) or, with ``learned_stem=False`` for decoders that never
read level 0 (DeepLabV3+, FCN), from the stride-4 map upsampled bilinearly, without parameters.
Output stride 8/16 uses timm's ``output_stride`` (dilation) where the model has it. Inputs are
replicate-padded to a multiple of 32 and each map cropped to ``ceil(size / stride)``, so any
size works even for models that round sizes down (patch-embedding stems).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixelseg.errors import ConfigError, PixelsegError
from pixelseg.models.encoders.base import (
    NORMS,
    OUTPUT_STRIDES,
    Encoder,
    check_choice,
    convert_to_group_norm,
    group_count,
    level_strides,
    load_backbone_weights,
    pad_to_multiple,
    read_state_dict,
)

TIMM_PREFIX = "tu-"
STEM_CHANNELS = 32
PAD_DIVISOR = 32
_LEVELS = (2, 4, 8, 16, 32)


def import_timm() -> ModuleType:
    """The ``timm`` module, or a :class:`PixelsegError` saying how to install it."""
    try:
        import timm
    except ImportError as error:
        raise PixelsegError(
            "encoders named 'tu-<timm model>' need timm: pip install timm"
        ) from error
    return timm


def pick_levels(reductions: list[int], output_stride: int, name: str) -> list[int | None]:
    """Index of the timm feature map serving each of the five levels (``None``: no stride 2).

    Args:
        reductions: ``feature_info`` strides of all timm maps, shallow to deep (dilated maps
            all report ``output_stride``).
        output_stride: The stride the model was built for.
        name: The timm model, for error messages.

    Raises:
        ConfigError: The model ignored ``output_stride`` or lacks a map at stride 4 to 32.
    """
    if output_stride < 32 and max(reductions) > output_stride:
        raise ConfigError(
            f"timm model {name!r} does not support model option 'output_stride' = "
            f"{output_stride} (its features reach stride {max(reductions)}); use output_stride=32"
        )
    nominal: list[int] = []
    for reduction in reductions:  # dilated maps: the first is at output_stride, then doubling
        deeper = reduction == output_stride and nominal and nominal[-1] >= output_stride
        nominal.append(nominal[-1] * 2 if deeper else reduction)
    levels = [max((i for i, n in enumerate(nominal) if n == s), default=None) for s in _LEVELS]
    if any(level is None for level in levels[1:]):
        raise ConfigError(
            f"timm model {name!r} has feature maps at strides {sorted(set(reductions))}; "
            "pixelseg encoders need maps at strides 4, 8, 16 and 32 (a pyramid)"
        )
    return levels


def convert_timm_to_group_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm in a timm model by GroupNorm, in place; returns the module.

    timm's ``BatchNormAct2d`` (activation inside) becomes ``GroupNormAct`` with the same
    activation and drop layers, plain ``BatchNorm2d`` goes through
    :func:`~pixelseg.models.encoders.base.convert_to_group_norm`; affine weights carry over and
    LayerNorms stay.
    """
    from timm.layers import BatchNormAct2d, GroupNormAct

    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, BatchNormAct2d):
                channels = child.num_features
                groups = group_count(channels)
                norm = GroupNormAct(channels, groups, eps=child.eps, affine=child.affine)
                norm.act, norm.drop = child.act, child.drop
                if child.affine:
                    with torch.no_grad():
                        norm.weight.copy_(child.weight)
                        norm.bias.copy_(child.bias)
                setattr(parent, name, norm)
    return convert_to_group_norm(module)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class TimmEncoder(Encoder):
    """A timm ``features_only`` model as a five-level pixelseg :class:`Encoder`.

    Submodules: ``model`` (timm's feature extractor) and ``stem`` (learned stride-2 stem or None).

    Args:
        name: timm model name, optionally with a pretrained tag (``"convnext_atto.d2_in1k"``).
        in_channels: Input bands (timm's ``in_chans``; pretrained RGB kernels are adapted by timm).
        output_stride: 8, 16 or 32; below 32 needs a model with timm's ``output_stride``.
        norm: ``"batch"`` or ``"group"`` (BatchNorms become GroupNorms; LayerNorms stay).
        weights: ``None`` (random), ``"imagenet"`` (timm's default weights from the Hugging Face
            hub or its cache) or a local ``.safetensors``/``.pth`` file: a TimmEncoder's own
            state dict (keys ``model.*``/``stem.*``, same options) or the timm model's (e.g. the
            hub's ``model.safetensors``; classifier keys are dropped).
        learned_stem: Level 0 of a model without a stride-2 map: a learned stem (True) or the
            stride-4 map upsampled (False, no parameters).

    Raises:
        ConfigError: Unknown model, no ``features_only``, no pyramid, unsupported output stride.
        PixelsegError: timm missing, or the weights cannot be fetched or do not fit.
    """

    def __init__(
        self,
        name: str,
        *,
        in_channels: int = 3,
        output_stride: int = 32,
        norm: str = "batch",
        weights: str | Path | None = None,
        learned_stem: bool = True,
    ) -> None:
        super().__init__()
        check_choice("output_stride", output_stride, OUTPUT_STRIDES)
        check_choice("norm", norm, NORMS)
        if not import_timm().is_model(name):
            raise ConfigError(
                f"unknown timm model {name!r} (encoder '{TIMM_PREFIX}{name}'); "
                "timm.list_models() lists the known names"
            )
        self.timm_name, self.in_channels = name, in_channels
        overlay: dict[str, Any] | None = None  # a timm model's state dict, loaded by timm
        own_format = False
        if weights is not None and str(weights) != "imagenet":
            state = read_state_dict(Path(weights))
            own_format = any(key.startswith(("model.", "stem.")) for key in state)
            overlay = None if own_format else {"state_dict": state}
        pretrained = str(weights) == "imagenet" or overlay is not None
        kwargs: dict[str, Any] = {"features_only": True, "in_chans": in_channels}
        if output_stride != 32:  # models without the argument reject it, even at 32
            kwargs["output_stride"] = output_stride
        model = self._build(kwargs, pretrained, overlay, weights)
        info: Any = model.feature_info
        levels = pick_levels([tap["reduction"] for tap in info.info], output_stride, name)
        wanted = [level for level in levels if level is not None]
        if not set(wanted) <= set(info.out_indices):
            kwargs["out_indices"] = tuple(wanted)
            model = self._build(kwargs, pretrained, overlay, weights)
            info = model.feature_info
        self.positions = [list(info.out_indices).index(level) for level in wanted]
        channels = [int(info.info[level]["num_chs"]) for level in wanted]
        self.stem: nn.Module | None = None
        self.upsample_level0 = levels[0] is None and not learned_stem
        if self.upsample_level0:
            channels.insert(0, channels[0])
        elif levels[0] is None:
            stem_norm: nn.Module = (
                nn.BatchNorm2d(STEM_CHANNELS)
                if norm == "batch"
                else nn.GroupNorm(group_count(STEM_CHANNELS), STEM_CHANNELS)
            )
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, STEM_CHANNELS, 3, stride=2, padding=1, bias=False),
                stem_norm,
                nn.ReLU(inplace=True),
            )
            channels.insert(0, STEM_CHANNELS)
        self.model = model
        if norm == "group":
            convert_timm_to_group_norm(self.model)
        if own_format and weights is not None:  # same checks as for torchvision backbones
            load_backbone_weights(self, weights, encoder=TIMM_PREFIX + name, imagenet=dict)
        self.out_channels = tuple(channels)
        self.strides = level_strides(output_stride)
        self.output_stride = output_stride

    def _build(
        self,
        kwargs: dict[str, Any],
        pretrained: bool,
        overlay: dict[str, Any] | None,
        weights: str | Path | None,
    ) -> nn.Module:
        """timm's feature model; failures become pixelseg errors naming their cause."""
        extra = {"pretrained_cfg_overlay": overlay} if overlay is not None else {}
        try:
            model: nn.Module = import_timm().create_model(
                self.timm_name, pretrained=pretrained, **kwargs, **extra
            )
            return model
        except Exception as error:  # timm raises TypeError, AssertionError, RuntimeError, ...
            if pretrained:  # the weights or the configuration? Building without weights tells.
                self._build(kwargs, False, None, None)
                raise self._weights_error(error, weights) from error
            if "output_stride" in kwargs:
                try:
                    self._build(
                        {k: v for k, v in kwargs.items() if k != "output_stride"}, False, None, None
                    )
                except ConfigError:  # then output_stride is not the cause
                    pass
                else:
                    raise ConfigError(
                        f"timm model {self.timm_name!r} does not support model option "
                        f"'output_stride' = {kwargs['output_stride']} ({_one_line(error)}); "
                        "use output_stride=32"
                    ) from error
            raise ConfigError(
                f"timm model {self.timm_name!r} cannot be built with features_only=True "
                f"and in_chans={self.in_channels} ({_one_line(error)})"
            ) from error

    def _weights_error(self, error: Exception, weights: str | Path | None) -> PixelsegError:
        if str(weights) != "imagenet":
            return PixelsegError(
                f"{weights}: not weights of timm model {self.timm_name!r} ({_one_line(error)})"
            )
        pretrained_cfg = import_timm().models.get_pretrained_cfg(self.timm_name)
        hub = getattr(pretrained_cfg, "hf_hub_id", None)
        where = f" (e.g. model.safetensors from https://huggingface.co/{hub})" if hub else ""
        return PixelsegError(
            f"cannot fetch ImageNet weights for encoder '{TIMM_PREFIX}{self.timm_name}' "
            f"({_one_line(error)}); train from scratch with weights=None or pass a local "
            f".safetensors/.pth file{where}"
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """Features at the five levels; see :meth:`Encoder.forward`."""
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, PAD_DIVISOR)
        maps = self.model(x)
        features = [maps[position] for position in self.positions]
        if self.stem is not None:
            features.insert(0, self.stem(x))
        elif self.upsample_level0:
            size = (x.shape[-2] // 2, x.shape[-1] // 2)  # x is padded to a multiple of 32
            level0 = F.interpolate(features[0], size=size, mode="bilinear", align_corners=False)
            features.insert(0, level0)
        return [
            feature[..., : math.ceil(height / stride), : math.ceil(width / stride)]
            for feature, stride in zip(features, self.strides)
        ]
