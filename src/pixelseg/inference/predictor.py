"""``Predictor``: a trained run's model with its normalisation, for whole images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pixelseg.config import Config
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.run_dir import RunInfo, load_model, read_run
from pixelseg.errors import DataError

PAD_MULTIPLE = 32


@dataclass
class Prediction:
    """The output for one image.

    Attributes:
        probs: ``(C, H, W)`` float32 class probabilities.
        label_map: ``(H, W)`` int64 most likely class per pixel.
    """

    probs: torch.Tensor
    label_map: torch.Tensor


class Predictor:
    """Predict probabilities and label maps with a trained model.

    Use :meth:`from_run` to load a run directory. Images are padded to a multiple of 32 (with
    zeros after normalisation, i.e. the band mean, as in validation) and the result cropped back.

    Args:
        model: a segmentation model returning ``(N, C, H, W)`` logits.
        info: the run's :class:`~pixelseg.engine.run_dir.RunInfo`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        info: RunInfo,
        *,
        config: Config | None = None,
        device: str = "auto",
        precision: str = "auto",
    ) -> None:
        from pixelseg.data.normalize import Normalizer

        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.autocast = autocast_factory(self.precision, self.device)
        self.model = model.to(self.device).eval()
        self.info = info
        self.config = config
        self.normalizer = Normalizer.from_dict(info.normalizer)

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        checkpoint: str = "best",
    ) -> Predictor:
        """Load the ``best`` (default) or ``last`` checkpoint of ``run_dir``."""
        config, info = read_run(run_dir)
        model = load_model(run_dir, checkpoint=checkpoint)
        return cls(model, info, config=config, device=device, precision=precision)

    @property
    def class_names(self) -> list[str]:
        """The run's class names."""
        return list(self.info.class_names)

    @torch.no_grad()
    def predict_normalized(self, image: torch.Tensor) -> Prediction:
        """Predict a ``(C, H, W)`` image that is already normalised."""
        height, width = image.shape[-2:]
        pad_h = (-height) % PAD_MULTIPLE
        pad_w = (-width) % PAD_MULTIPLE
        batch = F.pad(image[None].float(), (0, pad_w, 0, pad_h)).to(self.device)
        with self.autocast():
            logits = self.model(batch)
        probs = logits.float()[0, :, :height, :width].softmax(0).cpu()
        return Prediction(probs=probs, label_map=probs.argmax(0))

    def predict(self, image: np.ndarray | str | Path) -> Prediction:
        """Predict an image file or an ``(H, W, C)`` array in its stored dtype."""
        from pixelseg.data.io import read_image
        from pixelseg.data.normalize import image_to_float

        if isinstance(image, str | Path):
            image = read_image(image)
        if image.ndim == 2:
            image = image[..., None]
        if image.shape[2] != self.info.in_channels:
            raise DataError(
                None,
                f"image has {image.shape[2]} bands; the model was trained on "
                f"{self.info.in_channels}",
            )
        return self.predict_normalized(self.normalizer(image_to_float(image)))
