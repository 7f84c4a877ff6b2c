"""pixelseg: semantic, instance and semantic-to-instance image segmentation in one toolkit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Predictor", "__version__", "create_model", "list_models", "load_model"]

if TYPE_CHECKING:
    from pixelseg.engine.run_dir import load_model
    from pixelseg.inference.predictor import Predictor
    from pixelseg.models.registry import create_model, list_models


def __getattr__(name: str) -> Any:
    # Lazy so that `import pixelseg` (and the CLI's --help) does not pay for importing torch.
    if name == "load_model":
        from pixelseg.engine.run_dir import load_model

        return load_model
    if name in ("create_model", "list_models"):
        from pixelseg.models import registry

        return getattr(registry, name)
    if name == "Predictor":
        from pixelseg.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'pixelseg' has no attribute {name!r}")
