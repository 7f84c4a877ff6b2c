"""``Predictor``: one trained run — any task — with its normalisation, for any image size.

``Predictor.from_run(run_dir)`` reads the run's task from ``run.json`` and asks the task
registry for it; ``predict(image)`` returns the task's typed result (``SemanticPrediction`` or
``InstancePrediction``, whole or in tiles). ``pixelseg evaluate`` and ``predict`` both use it.

An image is fed to the model as the training images were (:meth:`Predictor.load`): one of
another band count or dtype than the run recorded (``RunInfo.input``, see
:mod:`pixelseg.data.input_spec`) is refused; its nodata pixels (the run's ``data.nodata``, else
the file's own nodata value; NaN in a float image) are filled with the band mean, as in
training, and left unlabelled in the prediction (semantic: the ignore index; instances: no
object); and an image whose band statistics lie far outside the training images' is warned
about on the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from pixelseg.config import Config
from pixelseg.data.raster import GeoReference
from pixelseg.engine.padding import padded_probabilities
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.run_dir import RunInfo, checkpoint_path, load_model, read_run
from pixelseg.engine.task import Task
from pixelseg.errors import ConfigError, DataError
from pixelseg.inference.tiling import TileSpec, choose_tiles
from pixelseg.inference.tta import dense_probabilities
from pixelseg.structures import InstancePrediction, Prediction, Region, SemanticPrediction
from pixelseg.tasks.registry import get_task


@dataclass
class PreparedImage:
    """One image ready for the model, with what its outputs need.

    Attributes:
        image: ``(H, W, C)`` as stored.
        normalized: ``(C, H, W)`` float32 model input; nodata pixels hold 0 (the band mean).
        nodata: ``(H, W)`` bool nodata pixels, or ``None``.
        georef: a GeoTIFF's CRS and transform, or ``None``.
        warnings: doubts about the image (far from the training images), one line each.
        path: the file, or ``None`` for an array.
    """

    image: np.ndarray
    normalized: torch.Tensor
    nodata: np.ndarray | None = None
    georef: GeoReference | None = None
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None


def print_warning(message: str) -> None:
    """Print one warning line on the console (rich, standard error)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(
        f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True
    )


def without_nodata(
    prediction: Prediction, nodata: np.ndarray | None, ignore_index: int
) -> Prediction:
    """``prediction`` with nothing predicted on the ``(H, W)`` nodata pixels.

    Semantic: the label map holds ``ignore_index`` there (the probabilities are kept).
    Instances: the objects lose their nodata pixels (those left empty are dropped, the others
    renumbered ``1..N`` in order, their boxes recomputed).
    """
    if nodata is None or not nodata.any():
        return prediction
    if isinstance(prediction, SemanticPrediction):
        label_map = prediction.label_map.clone()
        label_map[torch.from_numpy(nodata)] = ignore_index
        return SemanticPrediction(probs=prediction.probs, label_map=label_map)
    assert isinstance(prediction, InstancePrediction)
    from pixelseg.postprocess.masks import instance_prediction, relabel_sequential

    labels = prediction.label_image.copy()
    labels[nodata] = 0
    kept = np.unique(labels[labels > 0]).astype(np.int64) - 1
    return instance_prediction(
        relabel_sequential(labels),
        prediction.scores[kept],
        prediction.labels[kept],
        detections=prediction.detections,
        class_probs=prediction.class_probs,
    )


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
        tile: str | TileSpec = "auto",
        tta: bool = False,
    ) -> None:
        from pixelseg.data.input_spec import InputSpec
        from pixelseg.data.normalize import Normalizer

        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.autocast = autocast_factory(self.precision, self.device)
        self.model = model.to(self.device).eval()
        self.info = info
        self.task = task
        self.config = config
        self.normalizer = Normalizer.from_dict(info.normalizer)
        #: The recorded training input, or ``None`` for a run recorded before it was.
        self.input_spec = InputSpec.from_dict(info.input)
        #: ``"auto"``, ``"off"`` or a :class:`~pixelseg.inference.tiling.TileSpec`.
        self.tile = tile
        #: Average over flips and rotations (:mod:`pixelseg.inference.tta`), semantic runs.
        self.tta = tta
        #: The run directory and checkpoint file the weights came from (set by :meth:`from_run`).
        self.source: tuple[Path, Path] | None = None

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        checkpoint: str = "best",
        tile: str | TileSpec = "auto",
        tta: bool = False,
    ) -> Predictor:
        """Load the ``best`` (default) or ``last`` checkpoint of ``run_dir``, whatever its task.

        ``tile``: see :func:`~pixelseg.inference.tiling.choose_tiles`; ``tta``: average over
        flips and rotations (semantic runs).

        Raises:
            CheckpointError: not a run directory, or a missing/corrupted checkpoint.
        """
        config, info = read_run(run_dir)
        task = get_task(info.task).from_run(config, info)
        model = load_model(run_dir, checkpoint=checkpoint)
        predictor = cls(
            model, info, task, config=config, device=device, precision=precision, tile=tile, tta=tta
        )
        predictor.source = (Path(run_dir), checkpoint_path(run_dir, checkpoint))
        return predictor

    @property
    def class_names(self) -> list[str]:
        """The run's class names."""
        return list(self.info.class_names)

    @property
    def ignore_index(self) -> int:
        """What a semantic label map holds where nothing is predicted (nodata pixels)."""
        return int(self.info.ignore_index)

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

    def _nodata_value(self, file_value: float | None) -> float | None:
        """Training's rule: the config's ``data.nodata`` first, else the file's own value."""
        spec = self.input_spec
        if spec is not None and spec.nodata_from == "config":
            return spec.nodata
        if spec is None and self.config is not None and self.config.data.nodata is not None:
            return self.config.data.nodata
        return file_value

    def _refuse_mismatch(self, image: np.ndarray, path: Path | None) -> None:
        if self.input_spec is not None:
            self.input_spec.refuse_mismatch(image, path)
        elif image.shape[2] != self.info.in_channels:  # an older run: the band count only
            raise DataError(
                path,
                f"image has {image.shape[2]} bands; the model was trained on "
                f"{self.info.in_channels}",
            )

    def load(self, image: np.ndarray | str | Path, *, warn: bool = True) -> PreparedImage:
        """Read an image file (or take an ``(H, W, C)`` array as stored) and prepare it.

        Args:
            image: the file or the array.
            warn: print the warnings on the console (they are in the result either way).

        Raises:
            DataError: unreadable, or of a band count or dtype the model was not trained on
                (naming the file and both).
        """
        from pixelseg.data.input_spec import nodata_pixels
        from pixelseg.data.io import read_image_and_header
        from pixelseg.data.normalize import image_to_float

        path = Path(image) if isinstance(image, str | Path) else None
        georef, file_nodata = None, None
        if path is not None:
            image, header = read_image_and_header(path)
            georef, file_nodata = header.georef, header.nodata
        assert isinstance(image, np.ndarray)
        if image.ndim == 2:
            image = image[..., None]
        self._refuse_mismatch(image, path)
        nodata = nodata_pixels(image, self._nodata_value(file_nodata))
        if nodata is not None and not nodata.any():
            nodata = None
        normalized = self.normalizer(image_to_float(image))
        if nodata is not None:
            # Training sets nodata pixels to the band mean before normalising: 0 after it.
            normalized[:, torch.from_numpy(nodata)] = 0.0
        prepared = PreparedImage(image, normalized, nodata, georef, [], path)
        if self.input_spec is not None:
            name = str(path) if path is not None else "image"
            drift = self.input_spec.drift(image, nodata, name)
            if drift is not None:
                prepared.warnings.append(drift)
        if warn:
            for message in prepared.warnings:
                print_warning(message)
        return prepared

    def prepare(self, image: np.ndarray | str | Path) -> tuple[np.ndarray, torch.Tensor]:
        """An image file or ``(H, W, C)`` array as stored, and its normalised ``(C, H, W)``.

        Raises:
            DataError: unreadable, or a band count or dtype the model was not trained on.
        """
        prepared = self.load(image)
        return prepared.image, prepared.normalized

    def predict_prepared(self, prepared: PreparedImage) -> Prediction:
        """Predict a :meth:`load`-ed image; nothing is predicted on its nodata pixels."""
        height, width = prepared.image.shape[:2]
        semantic = self.task.prediction_type is SemanticPrediction
        if self.tta and not semantic:
            raise ConfigError(
                f"test-time augmentation is for semantic runs, not {self.info.task!r}"
            )
        spec = choose_tiles(
            self.tile,
            semantic=semantic,
            task=self.info.task,
            size=(height, width),
            crop_size=self.config.train.crop_size if self.config is not None else None,
        )
        prediction: Prediction
        if spec is not None or self.tta:
            forward = partial(padded_probabilities, self.model, autocast=self.autocast)
            probs = dense_probabilities(forward, prepared.normalized, spec, tta=self.tta)
            prediction = SemanticPrediction(probs=probs, label_map=probs.argmax(0))
        else:
            region = Region((height, width), ignore=prepared.nodata)
            prediction = self.predict_normalized(prepared.normalized, region=region)
        return without_nodata(prediction, prepared.nodata, self.ignore_index)

    def predict(self, image: np.ndarray | str | Path) -> Prediction:
        """Predict an image file or an ``(H, W, C)`` array in its stored dtype."""
        return self.predict_prepared(self.load(image))
