"""What a model was trained on — dtype, bands, scaling, band statistics, nodata — and the checks
an image to predict must pass against it.

A new run records an :class:`InputSpec` in ``run.json`` (``RunInfo.input``), gathered from the
training images already decoded into the sample cache by the data check (nothing is decoded
again; images the cache could not hold are left out of the statistics). The Predictor then:

* refuses an image of another band count or dtype (:meth:`InputSpec.refuse_mismatch`): a
  16-bit image fed to a model trained on 8-bit ones would be scaled wrongly (see
  :func:`~pixelseg.data.normalize.image_to_float`), silently;
* warns when an image's band statistics lie far outside the training images'
  (:meth:`InputSpec.drift`). The rule: each band's mean over the image's valid pixels (in the
  units of :func:`~pixelseg.data.normalize.image_to_float`) is compared with the mean and the
  standard deviation ``s`` of the per-image band means of the training images. A band warns
  when its mean is more than :data:`DRIFT_SIGMAS` (3) ``s`` from their mean *and* more than one
  ``s`` beyond their range (below the darkest training image or above the brightest): the range
  keeps a set of two kinds of image (DSB2018: dark fluorescence, bright stained slides) from
  making its rarer kind an outlier, and no training image ever warns. So that near-identical
  training images do not make every new image an outlier, ``s`` counts as at least
  :data:`SPREAD_FLOOR` (0.25) of the band's pixel standard deviation over the training set.
  On the shipped datasets' train / val splits (ISBI 2012, DRIVE, CamVid, Amazon, Sen1Floods11,
  Dubai, DSB2018) no validation or test image warns; a training image with its values tripled
  does on ISBI, DRIVE, Amazon and Sen1Floods11, not where the training images already span most
  of the 8-bit range (CamVid, Dubai, DSB2018). A band mean does not see every shift: an image
  within the training images' colours but of another kind passes unwarned.

Band statistics are in ``image_to_float`` units: 8-bit images divided by 255, other dtypes as
stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelseg.errors import DataError

DRIFT_SIGMAS = 3.0
SPREAD_FLOOR = 0.25
SCALE_UINT8 = "divide by 255"
SCALE_NONE = "as is"


def scaling_of(dtype: str) -> str:
    """How :func:`~pixelseg.data.normalize.image_to_float` scales images of ``dtype``."""
    return SCALE_UINT8 if dtype == "uint8" else SCALE_NONE


def nodata_pixels(image: np.ndarray, value: float | None) -> np.ndarray | None:
    """The ``(H, W)`` bool nodata pixels of an ``(H, W, C)`` image, as training marks them.

    A pixel is nodata when every band equals ``value``, or (float images) when any band is NaN.

    Returns:
        The mask, or ``None`` when no pixel can be nodata (no value, not a float image).
    """
    mask = None
    if value is not None and not math.isnan(value):
        mask = np.asarray((image == value).all(axis=2))
    if image.dtype.kind == "f":
        missing = np.isnan(image).any(axis=2)
        mask = missing if mask is None else mask | missing
    return mask


def _band_moments(
    image: np.ndarray, nodata: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per band ``(count, mean, variance)`` over the valid, finite pixels, in
    ``image_to_float`` units (one band at a time: no float copy of the whole image)."""
    bands = image.shape[2]
    counts, means, variances = np.zeros(bands), np.full(bands, np.nan), np.full(bands, np.nan)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    for band in range(bands):
        values = image[..., band] if nodata is None else image[..., band][~nodata]
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        if values.size:
            counts[band] = values.size
            means[band] = float(np.mean(values, dtype=np.float64)) / scale
            variances[band] = float(np.var(values, dtype=np.float64)) / scale**2
    return counts, means, variances


def band_means(image: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """``(C,)`` float64 mean of each band over the valid, finite pixels (NaN when none)."""
    return _band_moments(image, nodata)[1]


@dataclass(frozen=True)
class InputSpec:
    """The input a model was trained on (``run.json``'s ``input``).

    Attributes:
        dtype: stored dtype of the training images, e.g. ``"uint16"``.
        bands: their band count.
        scaling: what :func:`~pixelseg.data.normalize.image_to_float` does to them.
        nodata: the nodata value, or ``None``.
        nodata_from: ``"config"`` (``data.nodata``, applied to every image), ``"file"`` (the
            images' own nodata value) or ``"none"``.
        band_mean: per band, the mean over every valid training pixel (``image_to_float``
            units); empty when no training image was in the cache.
        band_std: per band, the standard deviation over every valid training pixel.
        image_mean: per band, the mean of the training images' per-image band means.
        image_mean_std: per band, the standard deviation of those per-image means.
        image_mean_min: per band, the smallest per-image mean.
        image_mean_max: per band, the largest per-image mean.
        images: how many training images the statistics cover.
    """

    dtype: str
    bands: int
    scaling: str
    nodata: float | None = None
    nodata_from: str = "none"
    band_mean: tuple[float, ...] = ()
    band_std: tuple[float, ...] = ()
    image_mean: tuple[float, ...] = ()
    image_mean_std: tuple[float, ...] = ()
    image_mean_min: tuple[float, ...] = ()
    image_mean_max: tuple[float, ...] = ()
    images: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (a NaN nodata value as the string ``"nan"``)."""
        raw = asdict(self)
        if self.nodata is not None and math.isnan(self.nodata):
            raw["nodata"] = "nan"
        return {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> InputSpec | None:
        """Inverse of :meth:`to_dict`; ``None`` for a run recorded before inputs were."""
        if not raw:
            return None
        values = dict(raw)
        if values.get("nodata") is not None:
            values["nodata"] = float(values["nodata"])
        for name in cls.__dataclass_fields__:
            if name.startswith(("band_", "image_mean")):  # the per-band statistics
                values[name] = tuple(float(v) for v in values.get(name) or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def refuse_mismatch(self, image: np.ndarray, path: str | Path | None) -> None:
        """Refuse an ``(H, W, C)`` image of another band count or dtype than the training's.

        Raises:
            DataError: one line naming the file and both band counts or dtypes.
        """
        bands, dtype = int(image.shape[2]), str(image.dtype)
        if bands != self.bands:
            raise DataError(
                path,
                f"image has {bands} bands; the model was trained on {self.bands}-band "
                f"{self.dtype} images (this one is {dtype})",
            )
        if dtype != self.dtype:
            raise DataError(
                path,
                f"image is {dtype} ({bands} bands); the model was trained on {self.dtype} "
                f"images ({self.bands} bands, scaling: {self.scaling}), so its values would be "
                f"scaled wrongly: convert it to {self.dtype} first",
            )

    def drift(self, image: np.ndarray, nodata: np.ndarray | None, name: str) -> str | None:
        """The warning for an image whose band means lie far outside the training images'
        (the rule in this module's docstring), or ``None``.

        Args:
            image: ``(H, W, C)`` as stored.
            nodata: ``(H, W)`` pixels left out, or ``None``.
            name: how the warning names the image (its file).
        """
        if not self.image_mean_max or len(self.image_mean) != image.shape[2]:
            return None  # no statistics (or recorded before the range was)
        means = band_means(image, nodata)
        centre = np.asarray(self.image_mean)
        spread = np.maximum(
            np.asarray(self.image_mean_std), SPREAD_FLOOR * np.asarray(self.band_std)
        )
        spread = np.maximum(spread, 1e-12)
        distance = np.abs(means - centre) / spread
        beyond = (means < np.asarray(self.image_mean_min) - spread) | (
            means > np.asarray(self.image_mean_max) + spread
        )
        distance = np.where(np.isfinite(distance) & beyond, distance, 0.0)
        band = int(distance.argmax())
        if distance[band] <= DRIFT_SIGMAS:
            return None
        low, high = self.image_mean_min[band], self.image_mean_max[band]
        return (
            f"{name}: band statistics far outside the training images' (band {band + 1} mean "
            f"{means[band]:.4g}; the {self.images} training images' {centre[band]:.4g} ± "
            f"{spread[band]:.3g}, from {low:.4g} to {high:.4g}: {distance[band]:.1f} standard "
            f"deviations, warned above {DRIFT_SIGMAS:g}); the predictions may not be trustworthy"
        )


def describe_images(
    images: Iterable[tuple[np.ndarray, np.ndarray | None]],
    *,
    dtype: str,
    bands: int,
    nodata: float | None = None,
    nodata_from: str = "none",
) -> InputSpec:
    """The :class:`InputSpec` of training images ``(image (H, W, C), nodata (H, W) or None)``.

    Args:
        images: the training images as stored (an empty iterable: no statistics).
        dtype: their dtype when no image is given.
        bands: their band count.
        nodata: the nodata value.
        nodata_from: where it comes from (see :class:`InputSpec`).
    """
    counts, means, variances = [], [], []
    for image, mask in images:
        dtype = str(image.dtype)
        if image.shape[2] != bands:
            continue  # the datasets refuse mixed band counts; no statistics from such a one
        count, mean, variance = _band_moments(image, mask)
        if count.min() > 0:
            counts.append(count)
            means.append(mean)
            variances.append(variance)
    spec = InputSpec(dtype, bands, scaling_of(dtype), nodata, nodata_from)
    if not counts:
        return spec
    n, per_image = np.asarray(counts), np.asarray(means)
    pooled = (n * per_image).sum(axis=0) / n.sum(axis=0)
    spread = np.asarray(variances) + (per_image - pooled) ** 2
    pooled_var = (n * spread).sum(axis=0) / n.sum(axis=0)
    return InputSpec(
        dtype,
        bands,
        scaling_of(dtype),
        nodata,
        nodata_from,
        band_mean=tuple(float(v) for v in pooled),
        band_std=tuple(float(v) for v in np.sqrt(pooled_var)),
        image_mean=tuple(float(v) for v in per_image.mean(axis=0)),
        image_mean_std=tuple(float(v) for v in per_image.std(axis=0)),
        image_mean_min=tuple(float(v) for v in per_image.min(axis=0)),
        image_mean_max=tuple(float(v) for v in per_image.max(axis=0)),
        images=len(counts),
    )


def cached_images(
    dataset: Any, key: Callable[[Any], Hashable]
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The images of ``dataset``'s samples that its sample cache holds, never decoding one.

    Args:
        dataset: a semantic or instance dataset (``.samples``, ``.cache``).
        key: the cache key of a sample.
    """
    cache = getattr(dataset, "cache", None)
    if cache is None:
        return
    for sample in dataset.samples:
        packed = cache.get(key(sample))
        if packed is not None:
            yield packed.image, getattr(packed, "nodata", None)


def describe_training_input(
    dataset: Any, *, key: Callable[[Any], Hashable], nodata: float | None
) -> InputSpec:
    """The :class:`InputSpec` of a training dataset, from its cached images.

    Args:
        dataset: the training split (``.samples`` with ``.image`` paths, ``.cache``,
            ``.in_channels``).
        key: the cache key of a sample.
        nodata: ``data.nodata`` of the config (``None``: the images' own nodata value).
    """
    from pixelseg.data.io import read_header

    header = read_header(dataset.samples[0].image)  # the header only: no pixel decoded
    source = "none"
    if nodata is not None:
        source = "config"
    elif header.nodata is not None:
        nodata, source = header.nodata, "file"
    return describe_images(
        cached_images(dataset, key),
        dtype=header.dtype,
        bands=int(dataset.in_channels),
        nodata=nodata,
        nodata_from=source,
    )
