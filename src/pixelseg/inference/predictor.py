"""``Predictor``: one trained run — any task — with its normalisation, for whole images.

``Predictor.from_run(run_dir)`` reads the run's task from ``run.json`` and asks the task
registry for it, so the same object predicts a semantic, a watershed or a Mask R-CNN run;
``predict(image)`` returns the task's typed result
(:class:`~pixelseg.structures.SemanticPrediction` or
:class:`~pixelseg.structures.InstancePrediction`). ``pixelseg evaluate`` and ``pixelseg predict``
both go through it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pixelseg.config import Config
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.run_dir import RunInfo, load_model, read_run
from pixelseg.engine.task import Task
from pixelseg.errors import DataError
from pixelseg.structures import Prediction, Region
from pixelseg.tasks.registry import get_task


class Predictor:
    """Predict with a trained model of any task.

    Use :meth:`from_run` to load a run directory.

    Args:
        model: the trained model.
        info: the run's :class:`~pixelseg.engine.run_dir.RunInfo`.
        task: the run's task object (``get_task(info.task).from_run(config, info)``).
        config: the run's config.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        info: RunInfo,
        task: Task,
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
        self.task = task
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
        """Load the ``best`` (default) or ``last`` checkpoint of ``run_dir``, whatever its task.

        Raises:
            CheckpointError: not a run directory, or a missing/corrupted checkpoint.
        """
        config, info = read_run(run_dir)
        task = get_task(info.task).from_run(config, info)
        model = load_model(run_dir, checkpoint=checkpoint)
        return cls(model, info, task, config=config, device=device, precision=precision)

    @property
    def class_names(self) -> list[str]:
        """The run's class names."""
        return list(self.info.class_names)

    def predict_normalized(
        self,
        image: torch.Tensor,
        *,
        region: Region | None = None,
    ) -> Prediction:
        """Predict a ``(C, H, W)`` image that is already normalised.

        Args:
            image: the normalised image (it may be padded).
            region: the real part of a padded image, and where no object may be found
                (evaluation passes each sample's size and COCO crowd regions).
        """
        return self.task.predict(self.model, image, autocast=self.autocast, region=region)

    def prepare(self, image: np.ndarray | str | Path) -> tuple[np.ndarray, torch.Tensor]:
        """An image file or ``(H, W, C)`` array as stored, and its normalised ``(C, H, W)``.

        Raises:
            DataError: unreadable, or a band count the model was not trained on.
        """
        from pixelseg.data.io import read_image
        from pixelseg.data.normalize import image_to_float

        path = Path(image) if isinstance(image, str | Path) else None
        if path is not None:
            image = read_image(path)
        assert isinstance(image, np.ndarray)
        if image.ndim == 2:
            image = image[..., None]
        if image.shape[2] != self.info.in_channels:
            raise DataError(
                path,
                f"image has {image.shape[2]} bands; the model was trained on "
                f"{self.info.in_channels}",
            )
        return image, self.normalizer(image_to_float(image))

    def predict(self, image: np.ndarray | str | Path) -> Prediction:
        """Predict an image file or an ``(H, W, C)`` array in its stored dtype."""
        return self.predict_normalized(self.prepare(image)[1])
