"""``pixelseg check`` for instance data: files, sizes, overlaps, and the objects' statistics.

Checks what the semantic check does where it applies (readable files, sizes from the header below
``data.max_pixels``, an empty dataset or split, duplicate ids), plus overlapping objects (the
pairs and the file), empty masks and every reader's own errors. Then it summarises the objects:
per image, their sizes (area and equivalent diameter), the anchor sizes a detector should use,
and the fraction that touch another object — the ones a semantic net would merge.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from pixelseg.config import Config
from pixelseg.data.cache import SampleCache
from pixelseg.data.check_report import Problem
from pixelseg.data.instance.check_report import InstanceCheckReport
from pixelseg.data.instance.compact import instance_key, pack_instances
from pixelseg.data.instance.formats import InstanceFiles, InstanceSource
from pixelseg.data.io import check_pixel_limit, read_header
from pixelseg.data.plan import DataPlan, PlanCollector
from pixelseg.data.splits import assign_splits
from pixelseg.errors import DataError

PERCENTILES = {"min": 0.0, "p5": 5.0, "median": 50.0, "p95": 95.0, "max": 100.0}
# Half of the 8-neighbourhood: each neighbouring pair is seen once, from either side.
_NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass
class InstancePlan(DataPlan[InstanceFiles]):
    """A :class:`~pixelseg.data.plan.DataPlan` of instance data, with the source that listed it.

    Attributes:
        source: the listing (and reader) of the samples, ``None`` when listing failed.
        train_pixels: pixels of the training images read (for the foreground share).
    """

    source: InstanceSource | None = None
    train_pixels: int = 0


def touching_objects(label_image: np.ndarray) -> np.ndarray:
    """Which objects touch another one: dilated by one pixel (3x3), they overlap it.

    Args:
        label_image: ``(H, W)`` label image, objects numbered ``1..N``.

    Returns:
        ``(N,)`` bool, entry ``k - 1`` for object ``k``.
    """
    count = int(label_image.max(initial=0))
    touching = np.zeros(count + 1, dtype=bool)
    height, width = label_image.shape
    padded = np.pad(label_image, 1)
    centre = padded[1 : height + 1, 1 : width + 1]
    for dy, dx in _NEIGHBOUR_SHIFTS:
        other = padded[1 + dy : height + 1 + dy, 1 + dx : width + 1 + dx]
        meet = (centre > 0) & (other > 0) & (centre != other)
        touching[centre[meet]] = True
        touching[other[meet]] = True
    return touching[1:]


def suggest_anchor_sizes(areas: np.ndarray) -> list[int]:
    """Powers of two from the 5th to the 95th percentile of ``sqrt(area)`` (at least 2)."""
    if not len(areas):
        return []
    side = np.sqrt(areas.astype(np.float64))
    low = max(1, int(np.floor(np.log2(max(np.percentile(side, 5), 1.0)))))
    high = max(low + 1, int(np.ceil(np.log2(max(np.percentile(side, 95), 2.0)))))
    return [2**k for k in range(low, high + 1)]


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    return {k: round(float(np.percentile(values, q)), 2) for k, q in PERCENTILES.items()}


def _pick(samples: list[InstanceFiles], max_images: int | None) -> set[int]:
    """Indices of all samples, or ``max_images`` spread evenly over them."""
    if max_images is None or max_images >= len(samples):
        return set(range(len(samples)))
    positions = np.linspace(0, len(samples) - 1, max(max_images, 1)).round().astype(int)
    return set(positions.tolist())


def _check_files(files: InstanceFiles, fmt: str, max_pixels: int) -> Problem | None:
    """Existence and header checks (cheap, for every sample); the first problem, or ``None``."""
    if not files.image.is_file():
        return Problem(str(files.image), "missing image file")
    if fmt == "instance_labels" and not files.objects[0].is_file():
        return Problem(str(files.objects[0]), f"missing label image for {files.image.name}")
    try:
        check_pixel_limit(files.image, read_header(files.image), max_pixels)
    except DataError as exc:
        return Problem(exc.path or str(files.image), exc.problem)
    return None


def _list(
    config: Config, report: InstanceCheckReport
) -> tuple[InstanceSource | None, dict[str, list[str]]]:
    try:
        source = InstanceSource(config.data)
    except DataError as exc:
        report.errors.append(Problem(exc.path or "", exc.problem))
        return None, {}
    report.classes = list(source.classes)
    report.num_samples = len(source.samples)
    if not source.samples:
        report.errors.append(
            Problem(config.data.root, f"empty dataset: no samples from '{config.data.images}'")
        )
        return source, {}
    seen: dict[str, InstanceFiles] = {}
    for files in source.samples:
        if files.id in seen:
            report.errors.append(
                Problem(
                    str(files.image),
                    f"duplicate sample id {files.id!r} (also {seen[files.id].image})",
                )
            )
        seen.setdefault(files.id, files)
    splits = assign_splits(list(seen), config.data.split)
    report.split_counts = {name: len(members) for name, members in splits.items()}
    if not splits["train"]:
        report.errors.append(Problem("", "split 'train' is empty (check [data.split])"))
    if not splits["val"]:
        report.warnings.append(Problem("", "split 'val' is empty: nothing to validate on"))
    return source, splits


def check_instances(config: Config, *, max_images: int | None = None) -> InstanceCheckReport:
    """Verify every instance sample (or ``max_images`` spread over them) and summarise them.

    Args:
        config: a loaded config with an instance ``data.format``.
        max_images: read at most this many samples' pixels (files are always checked).

    Returns:
        The report; problems are collected in it, not raised.

    Raises:
        ConfigError: the ``[data]`` section itself is invalid.
    """
    return _check(config, max_images=max_images, band_stats=False)[0]


def plan_instances(
    config: Config,
    *,
    cache: SampleCache | None = None,
    cache_splits: Collection[str] = ("train", "val"),
) -> tuple[InstanceCheckReport, InstancePlan]:
    """Verify every instance sample and gather, in the same pass, what the datasets need.

    The report is the one :func:`check_instances` gives; the plan holds the source and its
    samples, the split members, the band count and dtype, the training split's band statistics
    (when ``data.normalize`` needs them), its objects' areas and its pixel count.

    Args:
        config: a loaded config with an instance ``data.format``.
        cache: where to keep the decoded samples of ``cache_splits`` (as far as they fit);
            ``None`` to keep nothing.
        cache_splits: the splits whose samples are cached.

    Raises:
        ConfigError: the ``[data]`` section itself is invalid.
    """
    return _check(
        config, max_images=None, band_stats=True, cache=cache, cache_splits=set(cache_splits)
    )


def _check(
    config: Config,
    *,
    max_images: int | None,
    band_stats: bool,
    cache: SampleCache | None = None,
    cache_splits: Collection[str] = (),
) -> tuple[InstanceCheckReport, InstancePlan]:
    data = config.data
    report = InstanceCheckReport(config=config.source, root=data.root, format=data.format)
    source, members = _list(config, report)
    if source is None:
        return report, InstancePlan([], members)
    train_ids = set(members.get("train", ()))
    cached_ids = {i for name in cache_splits for i in members.get(name, ())}
    train_pixels = 0
    collector = PlanCollector(data.normalize, band_stats=band_stats)
    train_areas: dict[str, np.ndarray] = {}
    picked = _pick(source.samples, max_images)
    sizes: dict[str, int] = {}
    kinds: dict[str, int] = {}
    per_image, areas, labels, touching = [], [], [], []
    for index, files in enumerate(source.samples):
        problem = _check_files(files, data.format, data.max_pixels)
        if problem is not None:
            report.errors.append(problem)
            continue
        if index not in picked:
            continue
        try:
            loaded = source.load(files)
        except DataError as exc:
            report.errors.append(Problem(exc.path or "", exc.problem))
            continue
        report.checked += 1
        height, width, bands = loaded.image.shape
        sizes[f"{width}x{height}"] = sizes.get(f"{width}x{height}", 0) + 1
        kind = f"{bands} x {loaded.image.dtype}"
        kinds[kind] = kinds.get(kind, 0) + 1
        collector.add_image(loaded.image, None, train=files.id in train_ids)
        if cache is not None and files.id in cached_ids:
            cache.put(instance_key(files), pack_instances(loaded))
        where = files.objects[0].parent if files.objects else files.image
        if loaded.resolved:
            report.warnings.append(
                Problem(
                    str(where),
                    f"{loaded.resolved}; within data.max_overlap = {data.max_overlap}: the "
                    "first object keeps the pixels",
                )
            )
        if loaded.empty:
            report.empty_masks += len(loaded.empty)
            report.warnings.append(
                Problem(
                    str(where), f"{len(loaded.empty)} empty masks: {', '.join(loaded.empty[:5])}"
                )
            )
        if loaded.ignore is not None:
            report.ignored_pixels += int(loaded.ignore.sum())
        per_image.append(len(loaded.ids))
        object_areas = np.bincount(loaded.label_image.ravel(), minlength=len(loaded.ids) + 1)[1:]
        areas.append(object_areas)
        if files.id in train_ids:
            train_areas[files.id] = object_areas[object_areas > 0].astype(np.int64)
            train_pixels += height * width
        labels.append(loaded.labels)
        touching.append(touching_objects(loaded.label_image))
    report.image_sizes, report.image_kinds = sizes, kinds
    _summarise(report, per_image, areas, labels, touching)
    plan = InstancePlan(
        source.samples,
        members,
        object_areas=train_areas,
        source=source,
        train_pixels=train_pixels,
    )
    complete = report.ok and report.checked == len(source.samples)
    return report, collector.fill(plan, complete=complete)


def _summarise(
    report: InstanceCheckReport,
    per_image: list[int],
    areas: list[np.ndarray],
    labels: list[np.ndarray],
    touching: list[np.ndarray],
) -> None:
    if not per_image:
        return
    all_areas = np.concatenate(areas).astype(np.float64)
    report.objects = len(all_areas)
    counts = np.asarray(per_image, dtype=np.float64)
    report.objects_per_image = {
        "min": float(counts.min()),
        "median": float(np.median(counts)),
        "max": float(counts.max()),
    }
    every_label = np.concatenate(labels).astype(np.int64)
    report.objects_per_class = np.bincount(every_label, minlength=len(report.classes) + 1)[
        1:
    ].tolist()
    if not report.objects:
        report.errors.append(Problem("", "no objects in any image read"))
        return
    report.object_area = _percentiles(all_areas)
    report.equivalent_diameter = _percentiles(np.sqrt(4.0 * all_areas / np.pi))
    report.suggested_anchor_sizes = suggest_anchor_sizes(all_areas)
    report.touching_fraction = round(float(np.concatenate(touching).mean()), 4)
    for name, count in zip(report.classes, report.objects_per_class):
        if count == 0:
            report.warnings.append(Problem("", f"class {name!r} has no object in the images read"))
