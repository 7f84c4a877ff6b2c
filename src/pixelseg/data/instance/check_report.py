"""The result of ``pixelseg check`` on instance data: the report and its ``rich`` summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape

from pixelseg.data.check_report import CheckReport, print_problems


@dataclass
class InstanceCheckReport(CheckReport):
    """Everything ``pixelseg check`` found in an instance dataset.

    The inherited class-pixel fields stay empty; ``ignored_pixels`` counts COCO crowd pixels.

    Attributes:
        format: the ``data.format``.
        objects: objects in the images read.
        objects_per_class: objects per class.
        objects_per_image: ``min``, ``median``, ``max`` objects in one image.
        object_area: percentiles of object areas in pixels.
        equivalent_diameter: the same percentiles of ``sqrt(4 * area / pi)``.
        suggested_anchor_sizes: powers of two spanning the 5th-95th percentile of
            ``sqrt(area)``, in the images' own pixels (before a detector's resizing).
        touching_fraction: objects within one pixel of another (3x3 dilation), as a fraction.
        empty_masks: objects without a pixel (dropped when the data is read).
    """

    format: str = ""
    objects: int = 0
    objects_per_class: list[int] = field(default_factory=list)
    objects_per_image: dict[str, float] = field(default_factory=dict)
    object_area: dict[str, float] = field(default_factory=dict)
    equivalent_diameter: dict[str, float] = field(default_factory=dict)
    suggested_anchor_sizes: list[int] = field(default_factory=list)
    touching_fraction: float | None = None
    empty_masks: int = 0


def _stats(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in values.items())


def print_instance_report(report: InstanceCheckReport, console: Console) -> None:
    """Print the human summary: samples, sizes, object statistics, problems and the verdict."""
    console.print(
        f"[bold]pixelseg check[/bold] {escape(report.config)}  (data: {escape(report.root)})"
    )
    splits = ", ".join(f"{k} {v}" for k, v in report.split_counts.items())
    console.print(
        f"format {report.format}; samples: {report.num_samples} found, {report.checked} read; "
        f"splits: {splits}"
    )
    if report.image_sizes:
        by_count = sorted(report.image_sizes.items(), key=lambda kv: -kv[1])
        console.print("image sizes (WxH): " + ", ".join(f"{k} ({v})" for k, v in by_count))
        console.print(
            "bands x dtype: " + ", ".join(f"{k} ({v})" for k, v in report.image_kinds.items())
        )
    if report.objects:
        per_class = ", ".join(f"{n} {c}" for n, c in zip(report.classes, report.objects_per_class))
        console.print(f"objects: {report.objects} ({per_class})")
        console.print(f"objects per image: {_stats(report.objects_per_image)}")
        console.print(f"object area (px): {_stats(report.object_area)}")
        console.print(f"equivalent diameter (px): {_stats(report.equivalent_diameter)}")
        console.print(
            f"suggested detector anchor sizes: {tuple(report.suggested_anchor_sizes)} "
            "(5th-95th percentile of sqrt(area), in the images' pixels)"
        )
        fraction = report.touching_fraction or 0.0
        console.print(
            f"touching objects: {100 * fraction:.1f} % are within 1 px of another "
            "(a semantic map merges them: use task 'instance' or 'watershed')"
        )
    if report.ignored_pixels:
        console.print(f"ignored (crowd) pixels: {report.ignored_pixels:,}")
    print_problems(report, console)
