"""``pixelseg check``: verify every sample of a dataset before anyone trains on it.

Checks: readable files, sizes from the header below ``data.max_pixels`` (before decoding), image
and mask of one size (an EXIF-rotated JPEG is named as such), mask values or colours the class map
knows, missing pairs, an empty dataset or split, and duplicate ids. With ``data.skip_invalid`` a
sample with such an error is left out of every split instead (a warning names it). A sample
without a labelled pixel (an all-nodata image) is a warning; a split left without any, an error.
Then it summarises the class frequencies, the majority-class baseline and the imbalance, with
suggested class weights, and says how many RGBA PNGs lose their alpha channel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from pathlib import Path

import numpy as np
from rich.console import Console

from pixelseg.config import Config, load_config
from pixelseg.data.cache import SampleCache
from pixelseg.data.check_report import (
    CheckReport,
    Problem,
    diagnose,
    exit_code,
    print_report,
    write_json,
)
from pixelseg.data.classmap import ClassMap
from pixelseg.data.compact import pack_sample
from pixelseg.data.folder import SamplePaths, find_samples, load_sample, sample_key
from pixelseg.data.io import ImageHeader, check_pixel_limit, read_header
from pixelseg.data.loading import LoadedSample
from pixelseg.data.plan import DataPlan, PlanCollector
from pixelseg.data.splits import assign_splits
from pixelseg.errors import ConfigError, DataError


def _pick(samples: list[SamplePaths], max_images: int | None) -> list[SamplePaths]:
    """All samples, or ``max_images`` spread evenly over them (every split represented)."""
    if max_images is None or max_images >= len(samples):
        return samples
    positions = np.linspace(0, len(samples) - 1, max(max_images, 1)).round().astype(int)
    return [samples[i] for i in sorted(set(positions.tolist()))]


def _check_files(paths: SamplePaths, max_pixels: int) -> Problem | ImageHeader:
    """Existence and header checks: the first problem, or the image's header."""
    if not paths.image.is_file():
        return Problem(str(paths.image), "missing image file")
    if not paths.mask.is_file():
        return Problem(str(paths.mask), f"missing mask for image {paths.image.name}")
    if paths.valid is not None and not paths.valid.is_file():
        return Problem(str(paths.valid), f"missing valid-region mask for image {paths.image.name}")
    headers = []
    for path in (paths.image, paths.mask):
        try:
            headers.append(read_header(path))
            check_pixel_limit(path, headers[-1], max_pixels)
        except DataError as exc:
            return Problem(exc.path or str(path), exc.problem)
    return headers[0]


def _list_samples(config: Config, report: CheckReport) -> list[SamplePaths]:
    data = config.data
    try:
        samples = find_samples(data)
    except DataError as exc:
        report.errors.append(Problem(exc.path or "", exc.problem))
        return []
    if not samples:
        where = f"pairs file {data.pairs_file}" if data.pairs_file else f"'{data.images}'"
        report.errors.append(Problem(data.root, f"empty dataset: no samples from {where}"))
        return []
    seen: dict[str, SamplePaths] = {}
    for sample in samples:
        if sample.id in seen:
            report.errors.append(
                Problem(
                    str(sample.image),
                    f"duplicate sample id {sample.id!r} (also {seen[sample.id].image})",
                )
            )
        else:
            seen[sample.id] = sample
    return samples


def _split(
    members: dict[str, list[str]],
    report: CheckReport,
    *,
    before: dict[str, list[str]] | None = None,
) -> None:
    """Note the split sizes: an empty train split is an error, an empty val one a warning
    (after skipping samples, only the splits that skipping emptied)."""
    report.split_counts = {name: len(ids) for name, ids in members.items()}
    after = " after skipping invalid samples" if before is not None else ""
    for name, problems, advice in (
        ("train", report.errors, " (check [data.split])"),
        ("val", report.warnings, ": nothing to validate on"),
    ):
        if not members[name] and (before is None or before[name]):
            problems.append(Problem("", f"split {name!r} is empty{after}{advice}"))


def _unlabelled(paths: SamplePaths, loaded: LoadedSample) -> Problem:
    """The warning for a sample without a labelled pixel."""
    if loaded.nodata is not None and loaded.nodata.all():
        return Problem(str(paths.image), "every pixel is nodata: no labelled pixel")
    return Problem(str(paths.mask), "no labelled pixel: every pixel is void")


def check_dataset(config: Config, *, max_images: int | None = None) -> CheckReport:
    """Verify every sample (or ``max_images`` spread over them) and summarise the dataset.

    Args:
        config: a loaded config (``data.root`` resolved).
        max_images: read at most this many samples' pixels (file existence is always checked).

    Returns:
        The :class:`CheckReport`; problems are collected in it, not raised.

    Raises:
        ConfigError: the ``[data]`` section itself is invalid (no classes, bad split).
    """
    return _check(config, max_images=max_images, band_stats=False)[0]


def plan_dataset(
    config: Config,
    *,
    cache: SampleCache | None = None,
    cache_splits: Collection[str] = ("train", "val"),
) -> tuple[CheckReport, DataPlan[SamplePaths]]:
    """Verify every sample and gather, in the same pass, what building the datasets needs.

    Every sample is listed, split and decoded once: the report is the one
    :func:`check_dataset` gives, and the plan holds the samples, the split members, the band
    count and dtype, the class pixels per split and, when ``data.normalize`` needs them, the
    training split's band statistics (see :class:`~pixelseg.data.plan.DataPlan`).

    Args:
        config: a loaded config.
        cache: where to keep the decoded samples of ``cache_splits`` (as far as they fit), so
            the datasets never decode them again; ``None`` to keep nothing.
        cache_splits: the splits whose samples are cached.

    Raises:
        ConfigError: the ``[data]`` section itself is invalid (no classes, bad split).
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
) -> tuple[CheckReport, DataPlan[SamplePaths]]:
    data = config.data
    if data.format != "mask_folder":
        raise ConfigError(f"pixelseg check: data.format {data.format!r} is not a semantic format")
    classmap = ClassMap.from_config(data)
    report = CheckReport(config=config.source, root=data.root, classes=list(data.classes))
    samples = _list_samples(config, report)
    report.num_samples = len(samples)
    members = assign_splits(list(dict.fromkeys(s.id for s in samples)), data.split)
    report.split_counts = {name: len(ids) for name, ids in members.items()}
    if samples:
        _split(members, report)
    splits_of: dict[str, list[str]] = {}
    for name, ids in members.items():
        for sample_id in ids:
            splits_of.setdefault(sample_id, []).append(name)
    counts = np.zeros(classmap.num_classes, dtype=np.int64)
    split_counts = {name: np.zeros_like(counts) for name in members}
    collector = PlanCollector(data.normalize, band_stats=band_stats)
    sizes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    skipped: set[str] = set()
    picked = {id(s) for s in _pick(samples, max_images)}
    for paths in samples:
        checked = _check_files(paths, data.max_pixels)
        if isinstance(checked, ImageHeader) and id(paths) in picked:
            try:
                loaded = load_sample(paths, classmap, data)
            except DataError as exc:
                checked = Problem(exc.path or "", exc.problem)
        if isinstance(checked, Problem):
            if data.skip_invalid:
                skipped.add(paths.id)
                report.warnings.append(Problem(checked.path, f"skipped: {checked.problem}"))
            else:
                report.errors.append(checked)
            continue
        if id(paths) not in picked:
            continue
        report.checked += 1
        height, width, bands = loaded.image.shape
        sizes[f"{width}x{height}"] += 1
        kinds[f"{bands} x {loaded.image.dtype}"] += 1
        # the header, not a second decode, says whether alpha was dropped
        report.rgba_pngs += int(checked.bands == 4 and paths.image.suffix.lower() == ".png")
        names = splits_of.get(paths.id, [])
        collector.add_image(loaded.image, loaded.nodata, train="train" in names)
        if cache is not None and any(name in cache_splits for name in names):
            packed = pack_sample(
                loaded, num_classes=classmap.num_classes, ignore_index=classmap.ignore_index
            )
            cache.put(sample_key(paths), packed)
        per_class = classmap.count(loaded.label)
        if not per_class.any():
            report.warnings.append(_unlabelled(paths, loaded))
        counts += per_class
        report.ignored_pixels += int(loaded.label.size - per_class.sum())
        for name in names:
            split_counts[name] += per_class
    if skipped:
        report.skipped = len(skipped)
        samples = [s for s in samples if s.id not in skipped]
        kept = {name: [i for i in ids if i not in skipped] for name, ids in members.items()}
        _split(kept, report, before=members)
        members = kept
        if 2 * len(skipped) > report.num_samples:  # a config mistake, not a few broken files
            report.errors.append(
                Problem(
                    data.root,
                    f"data.skip_invalid skipped {len(skipped)} of {report.num_samples} samples: "
                    "fix the [data] section (see the warnings) instead of skipping most of it",
                )
            )
    report.image_sizes, report.image_kinds = dict(sizes), dict(kinds)
    report.class_pixels = counts.tolist()
    report.train_class_pixels = split_counts["train"].tolist()
    diagnose(report)
    complete = report.ok and report.checked == len(samples)
    if complete and report.labelled_pixels:
        for name, ids in members.items():
            if ids and not split_counts[name].any():
                report.errors.append(
                    Problem("", f"split {name!r} has no labelled pixel (all void or nodata)")
                )
    plan = DataPlan(samples, members, class_counts=split_counts)
    return report, collector.fill(plan, complete=report.ok and complete)


def check_command(
    config_path: str | Path,
    *,
    strict: bool = False,
    json_path: str | None = None,
    overrides: list[str] | None = None,
) -> int:
    """Run ``pixelseg check`` and print its summary.

    Args:
        config_path: the config file.
        strict: warnings (imbalance, empty val split) also give exit code 1.
        json_path: also write the report as JSON here (``"-"``: stdout; the summary then goes
            to stderr).
        overrides: ``key=value`` config overrides.

    Returns:
        0 when the dataset is usable, 1 on errors (or on warnings with ``strict``).
    """
    config = load_config(config_path, overrides)
    console = Console(stderr=json_path == "-", soft_wrap=True)
    report: CheckReport
    if config.data.format == "mask_folder":
        report = check_dataset(config)
        print_report(report, console)
    else:
        from pixelseg.data.instance.check import check_instances
        from pixelseg.data.instance.check_report import print_instance_report

        report = check_instances(config)
        print_instance_report(report, console)
    if json_path:
        write_json(report, json_path)
    return exit_code(report, strict=strict)
