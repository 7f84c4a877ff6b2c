"""A tiny model registry in torchvision's style: register_model, create_model, list_models.

Architectures register factory functions by name (``<arch>_<encoder>``, e.g. ``unet_resnet34``),
and open-ended families by prefix (``unet_tu-`` + any timm model name): a family's resolver turns
the rest of the name into a factory. The factories take keyword-only options; :func:`create_model`
checks the name and the options before building, so a typo in a config gives one clear line
instead of a ``TypeError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from pixelseg.errors import ConfigError

__all__ = ["create_model", "list_models", "register_model", "register_model_family"]

ModelFactory = Callable[..., nn.Module]
FactoryT = TypeVar("FactoryT", bound=ModelFactory)
FamilyResolver = Callable[[str], ModelFactory]
ResolverT = TypeVar("ResolverT", bound=FamilyResolver)

_MODELS: dict[str, ModelFactory] = {}
# prefix -> (placeholder shown by list_models, resolver from the rest of the name to a factory)
_FAMILIES: dict[str, tuple[str, FamilyResolver]] = {}
# Every factory takes these; they are not "options".
_STANDARD_ARGUMENTS = ("num_classes", "in_channels", "weights")


def register_model(name: str) -> Callable[[FactoryT], FactoryT]:
    """Decorator registering a model factory under ``name``.

    The factory must take keyword-only ``num_classes``, ``in_channels`` and ``weights`` plus its
    own options, all with defaults except ``num_classes``.

    Raises:
        ValueError: ``name`` is already registered or belongs to a registered family.
    """

    def decorator(factory: FactoryT) -> FactoryT:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        family = next((prefix for prefix in _FAMILIES if name.startswith(prefix)), None)
        if family is not None:
            raise ValueError(f"model name {name!r} belongs to the registered family {family!r}")
        _MODELS[name] = factory
        return factory

    return decorator


def register_model_family(
    prefix: str, *, placeholder: str = "<name>"
) -> Callable[[ResolverT], ResolverT]:
    """Decorator registering a family of models named ``prefix`` + anything.

    The decorated resolver receives the rest of the name (``"resnet18"`` for
    ``"unet_tu-resnet18"`` with prefix ``"unet_tu-"``) and returns a factory of the same form
    :func:`register_model` takes; it should not build anything itself. :func:`list_models` with
    ``families=True`` shows the family as ``prefix + placeholder``.

    Args:
        prefix: Name prefix shared by the family, e.g. ``"unet_tu-"``.
        placeholder: What stands for the rest of the name in listings, e.g. ``"<timm model>"``.

    Raises:
        ValueError: ``prefix`` overlaps a registered family or a registered model name.
    """

    def decorator(resolver: ResolverT) -> ResolverT:
        for other in _FAMILIES:
            if other.startswith(prefix) or prefix.startswith(other):
                raise ValueError(f"model family {prefix!r} overlaps the registered {other!r}")
        clash = next((name for name in _MODELS if name.startswith(prefix)), None)
        if clash is not None:
            raise ValueError(f"model family {prefix!r} covers the registered model {clash!r}")
        _FAMILIES[prefix] = (placeholder, resolver)
        return resolver

    return decorator


def _ensure_registered() -> None:
    # Imported here, not at module level: the architecture modules import this one to register.
    import pixelseg.models  # noqa: F401


def list_models(*, families: bool = False) -> list[str]:
    """Names of all registered models, sorted.

    Args:
        families: Also list each model family as its pattern, e.g. ``"unet_tu-<timm model>"``
            (a pattern, not a name :func:`create_model` accepts as is).
    """
    _ensure_registered()
    names = list(_MODELS)
    if families:
        names += [prefix + placeholder for prefix, (placeholder, _) in _FAMILIES.items()]
    return sorted(names)


def _factory(name: str) -> ModelFactory:
    """The factory of a registered name or of a family member.

    Raises:
        ConfigError: ``name`` is neither registered nor in a family (the message lists both).
    """
    _ensure_registered()
    if name in _MODELS:
        return _MODELS[name]
    for prefix, (_, resolver) in _FAMILIES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return resolver(name[len(prefix) :])
    known = ", ".join(list_models(families=True))
    raise ConfigError(f"unknown model {name!r}; known models: {known}")


def model_options(name: str) -> dict[str, Any]:
    """The options a registered model (or family member) accepts, with their defaults.

    Raises:
        ConfigError: ``name`` is not registered (the message lists the known names).
    """
    return _options_of(_factory(name))


def _options_of(factory: ModelFactory) -> dict[str, Any]:
    """A factory's options (its keyword parameters other than the standard ones) and defaults."""
    parameters = inspect.signature(factory).parameters.values()
    return {
        parameter.name: parameter.default
        for parameter in parameters
        if parameter.name not in _STANDARD_ARGUMENTS and parameter.kind != parameter.VAR_KEYWORD
    }


def _takes_any_option(factory: ModelFactory) -> bool:
    """True when the factory has ``**options`` and so validates its options itself."""
    parameters = inspect.signature(factory).parameters.values()
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
        name: Registered name, e.g. ``"unet_resnet18"``, or a family member such as
            ``"unet_tu-convnext_atto"`` (see :func:`list_models`).
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
    factory = _factory(name)
    accepted = _options_of(factory)
    unknown = sorted(set(options) - set(accepted))
    if unknown and not _takes_any_option(factory):
        raise ConfigError(
            f"model {name!r} got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(sorted(accepted))}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ConfigError(f"in_channels must be a positive integer, got {in_channels!r}")
    model = factory(num_classes=num_classes, in_channels=in_channels, weights=weights, **options)
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
