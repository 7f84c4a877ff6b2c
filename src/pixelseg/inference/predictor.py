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

import dataclasses
from pathlib import Path

import numpy as np
import torch

from pixelseg.config import Config
from pixelseg.data.raster import GeoReference
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.run_dir import RunInfo, checkpoint_path, load_model, read_run
from pixelseg.engine.task import Task
from pixelseg.errors import DataError
from pixelseg.inference.fast_path import Compiled, InferencePlan, given_plan, prepare_model
from pixelseg.inference.nodata import without_nodata
from pixelseg.inference.plans import choose_plan
from pixelseg.inference.prepared import PreparedImage, print_warning
from pixelseg.inference.tiled import predict_image
from pixelseg.inference.tiling import TileSpec, choose_tiles
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
        precision: ``"auto"`` (measured: :mod:`pixelseg.inference.fast_path`), ``"fp32"``,
            ``"bf16"`` or ``"fp16"``.
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
        compile_model: bool = False,
    ) -> None:
        from pixelseg.data.input_spec import InputSpec
        from pixelseg.data.normalize import Normalizer

        #: Run the chosen plan through ``torch.compile`` (not int8; :class:`Compiled`).
        self.compile_model = compile_model
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        #: What the model runs in (:mod:`pixelseg.inference.fast_path`); with ``"auto"`` on a
        #: dense task it is measured on the first image predicted, ``None`` until then.
        self.plan: InferencePlan | None = None
        #: The precision asked for (``auto`` or a name); :attr:`precision` is what runs.
        self.requested_precision = precision
        resolved = "int8" if precision == "int8" else resolve_precision(precision, self.device)
        self.precision, self.autocast = resolved, autocast_factory(resolved, self.device)
        if precision not in ("auto", "int8") or not task.dense_output:
            plan = given_plan(resolved, dense=task.dense_output, asked=precision)
            self._use(plan, prepare_model(self.model, plan) if task.dense_output else self.model)
        self.info = info
        self.task = task
        self.config = config
        self.normalizer = Normalizer.from_dict(info.normalizer)
        #: The recorded training input, or ``None`` for a run recorded before it was.
        self.input_spec = InputSpec.from_dict(info.input)
        #: ``"auto"``, ``"off"`` or a :class:`~pixelseg.inference.tiling.TileSpec`.
        self.tile = tile
        #: Average over flips and rotations (:mod:`pixelseg.inference.tta`), dense tasks.
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
        compile_model: bool = False,
    ) -> Predictor:
        """Load the ``best`` (default) or ``last`` checkpoint of ``run_dir``, whatever its task.

        ``tile``: see :func:`~pixelseg.inference.tiling.choose_tiles`; ``tta``: average over
        flips and rotations (semantic and watershed runs); ``compile_model``: through
        ``torch.compile`` (:class:`~pixelseg.inference.fast_path.Compiled`).

        Raises:
            CheckpointError: not a run directory, or a missing/corrupted checkpoint.
        """
        config, info = read_run(run_dir)
        task = get_task(info.task).from_run(config, info)
        model = load_model(run_dir, checkpoint=checkpoint)
        predictor = cls(
            model,
            info,
            task,
            config=config,
            device=device,
            precision=precision,
            tile=tile,
            tta=tta,
            compile_model=compile_model,
        )
        predictor.source = (Path(run_dir), checkpoint_path(run_dir, checkpoint))
        return predictor

    def _use(self, plan: InferencePlan, model: torch.nn.Module) -> None:
        if self.compile_model and plan.precision != "int8":
            plan, model = dataclasses.replace(plan, compiled=True), Compiled(model)
        elif self.compile_model:  # torch.ao's quantised kernels are not inductor's to fuse
            plan = dataclasses.replace(plan, reason=plan.reason + "; not compiled (int8)")
        self.plan, self.model, self.precision = plan, model, plan.precision
        self.autocast = autocast_factory(plan.precision, self.device)

    def plan_for(self, image: torch.Tensor) -> None:
        """With precision ``auto`` or ``int8``: choose the plan on the first (normalised
        ``(C, H, W)``) image (:func:`~pixelseg.inference.plans.choose_plan`)."""
        if self.plan is None:
            self._use(*choose_plan(self, image))

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

        With :attr:`tta` the dense maps are averaged over the eight symmetries first.
        """
        self.plan_for(image)
        if self.tta:  # averaged over the symmetries, as predict does (evaluate --tta)
            height, width = region.size if region is not None else tuple(image.shape[-2:])
            return predict_image(
                self.task, self.model, image[..., :height, :width], autocast=self.autocast,
                tiles=None, tta=True, ignore=region.ignore if region is not None else None,
            )  # fmt: skip
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
        from pixelseg.data.io import read_image_and_header

        path = Path(image) if isinstance(image, str | Path) else None
        georef, file_nodata = None, None
        if path is not None:
            image, header = read_image_and_header(path)
            georef, file_nodata = header.georef, header.nodata
        assert isinstance(image, np.ndarray)
        prepared = self.prepare_array(image, path=path, file_nodata=file_nodata, georef=georef)
        if warn:
            for message in prepared.warnings:
                print_warning(message)
        return prepared

    def prepare_array(
        self,
        image: np.ndarray,
        *,
        path: Path | None = None,
        file_nodata: float | None = None,
        georef: GeoReference | None = None,
        drift: bool = True,
    ) -> PreparedImage:
        """An ``(H, W[, C])`` array as stored (a whole image or a window of one) made ready:
        checked against the training input, nodata found and filled, normalised; ``drift``:
        compare its band statistics with the training images' (a warning in the result)."""
        from pixelseg.data.input_spec import nodata_pixels
        from pixelseg.data.normalize import image_to_float

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
        if drift and self.input_spec is not None:
            name = str(path) if path is not None else "image"
            message = self.input_spec.drift(image, nodata, name)
            if message is not None:
                prepared.warnings.append(message)
        return prepared

    def prepare(self, image: np.ndarray | str | Path) -> tuple[np.ndarray, torch.Tensor]:
        """An image file or ``(H, W, C)`` array as stored, and its normalised ``(C, H, W)``.

        Raises:
            DataError: unreadable, or a band count or dtype the model was not trained on.
        """
        prepared = self.load(image)
        return prepared.image, prepared.normalized

    def tiles_for(self, size: tuple[int, int]) -> TileSpec | None:
        """The tiles an image of ``size`` is predicted in, or ``None`` (whole)."""
        crop = self.config.train.crop_size if self.config is not None else None
        return choose_tiles(self.tile, size=size, crop_size=crop)

    def predict_prepared(self, prepared: PreparedImage) -> Prediction:
        """Predict a :meth:`load`-ed image; nothing is predicted on its nodata pixels."""
        height, width = prepared.image.shape[:2]
        spec = self.tiles_for((height, width))
        prediction: Prediction
        self.plan_for(prepared.normalized)
        if spec is not None or self.tta:
            prediction = predict_image(
                self.task,
                self.model,
                prepared.normalized,
                autocast=self.autocast,
                tiles=spec,
                tta=self.tta,
                ignore=prepared.nodata,
                warn=print_warning,
            )
        else:
            region = Region((height, width), ignore=prepared.nodata)
            prediction = self.predict_normalized(prepared.normalized, region=region)
        return without_nodata(prediction, prepared.nodata, self.ignore_index)

    def predict(self, image: np.ndarray | str | Path) -> Prediction:
        """Predict an image file or an ``(H, W, C)`` array in its stored dtype."""
        return self.predict_prepared(self.load(image))
