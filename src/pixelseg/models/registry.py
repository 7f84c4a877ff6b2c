"""A tiny model registry in torchvision's style: register_model, create_model, list_models.

Architectures register factory functions by name (``<arch>_<encoder>``, e.g. ``unet_resnet34``).
The factories take keyword-only options; :func:`create_model` checks the name and the options
before building, so a typo in a config gives one clear line instead of a ``TypeError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from pixelseg.errors import ConfigError

__all__ = ["create_model", "list_models", "register_model"]

ModelFactory = Callable[..., nn.Module]
FactoryT = TypeVar("FactoryT", bound=ModelFactory)

_MODELS: dict[str, ModelFactory] = {}
# Every factory takes these; they are not "options".
_STANDARD_ARGUMENTS = ("num_classes", "in_channels", "weights")


def register_model(name: str) -> Callable[[FactoryT], FactoryT]:
    """Decorator registering a model factory under ``name``.

    The factory must take keyword-only ``num_classes``, ``in_channels`` and ``weights`` plus its
    own options, all with defaults except ``num_classes``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorator(factory: FactoryT) -> FactoryT:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return decorator


def _ensure_registered() -> None:
    # Imported here, not at module level: the architecture modules import this one to register.
    import pixelseg.models  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_registered()
    return sorted(_MODELS)


def model_options(name: str) -> dict[str, Any]:
    """The options a registered model accepts, with their defaults.

    Raises:
        ConfigError: ``name`` is not registered (the message lists the known names).
    """
    _ensure_registered()
    if name not in _MODELS:
        known = ", ".join(sorted(_MODELS))
        raise ConfigError(f"unknown model {name!r}; known models: {known}")
    parameters = inspect.signature(_MODELS[name]).parameters.values()
    return {
        parameter.name: parameter.default
        for parameter in parameters
        if parameter.name not in _STANDARD_ARGUMENTS and parameter.kind != parameter.VAR_KEYWORD
    }


def _takes_any_option(name: str) -> bool:
    """True when the factory has ``**options`` and so validates its options itself."""
    parameters = inspect.signature(_MODELS[name]).parameters.values()
    return any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters)


def create_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    weights: str | Path | None = None,
    **options: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: Registered name, e.g. ``"unet_resnet18"`` (see :func:`list_models`).
        num_classes: Classes ``K`` of the output logits.
        in_channels: Input bands ``C``.
        weights: Pretrained encoder weights: ``None``, ``"imagenet"`` or a local
            ``.safetensors``/``.pth`` file (see :func:`~pixelseg.models.encoders.create_encoder`).
        **options: Architecture options, e.g. ``norm``, ``output_stride``, ``upsampling``,
            ``base_width``, ``depth``, ``atrous_rates``, ``dropout``.

    Returns:
        A module mapping ``(N, C, H, W)`` images to ``(N, K, H, W)`` logits, with attributes
        ``output_stride``, ``required_divisor`` and ``config`` (name, num_classes, in_channels
        and every option with its value, enough to rebuild it).

    Raises:
        ConfigError: Unknown name, unknown option or invalid option value.
    """
    accepted = model_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown and not _takes_any_option(name):
        raise ConfigError(
            f"model {name!r} got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(sorted(accepted))}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ConfigError(f"in_channels must be a positive integer, got {in_channels!r}")
    model = _MODELS[name](
        num_classes=num_classes, in_channels=in_channels, weights=weights, **options
    )
    # A factory taking ``**options`` (Mask R-CNN) records the options it resolved, defaults
    # included, as ``model.config["options"]``; they are flattened here like everyone else's.
    built = getattr(model, "config", None)
    recorded = built.get("options", {}) if isinstance(built, dict) else {}
    config = {
        "name": name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        **accepted,
        **options,
        **recorded,
    }
    # setattr: nn.Module's typed __setattr__ only admits tensors and modules.
    setattr(model, "config", config)  # noqa: B010
    return model
