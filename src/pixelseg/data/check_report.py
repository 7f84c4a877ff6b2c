"""The result of ``pixelseg check``: a dataclass, its diagnosis, its JSON form and its summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pixelseg.data.class_weights import class_weights_from_counts
from pixelseg.data.loss_rule import RARE_FRACTION, choose_loss, rare_classes
from pixelseg.errors import DataError
from pixelseg.files import atomic_write_text


@dataclass(frozen=True)
class Problem:
    """One problem found in a dataset.

    Attributes:
        path: the file concerned ("" when the problem is not about one file).
        problem: what is wrong, one line.
    """

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


@dataclass
class CheckReport:
    """Everything ``pixelseg check`` found.

    Attributes:
        config: the config file checked.
        root: the resolved data root.
        num_samples: samples found (pairs listed or images matched).
        checked: samples whose pixels were read.
        skipped: samples left out of every split for an error (``data.skip_invalid``).
        split_counts: samples per split (skipped ones excluded).
        image_sizes: ``"WxH"`` -> number of images.
        image_kinds: ``"<bands> x <dtype>"`` -> number of images.
        rgba_pngs: images that are RGBA PNGs, whose alpha channel is dropped.
        classes: class names.
        class_pixels: labelled pixels per class over all checked samples.
        train_class_pixels: labelled pixels per class over the checked training samples.
        ignored_pixels: void / invalid / nodata pixels.
        class_weights: suggested cross-entropy weights (``class_weights_method``) from train.
        class_weights_method: how ``class_weights`` were computed.
        recommended_loss: what ``loss.name = "auto"`` resolves to on these training pixels.
        recommended_weighting: the class weighting ``"auto"`` gives (``"median"`` or ``"none"``).
        loss_reason: the rule's one-sentence reason, as the training log prints it.
        errors: problems that make the dataset unusable (exit code 1).
        warnings: problems worth knowing (exit code 0 unless ``--strict``).
    """

    config: str
    root: str
    num_samples: int = 0
    checked: int = 0
    skipped: int = 0
    split_counts: dict[str, int] = field(default_factory=dict)
    image_sizes: dict[str, int] = field(default_factory=dict)
    image_kinds: dict[str, int] = field(default_factory=dict)
    rgba_pngs: int = 0
    classes: list[str] = field(default_factory=list)
    class_pixels: list[int] = field(default_factory=list)
    train_class_pixels: list[int] = field(default_factory=list)
    ignored_pixels: int = 0
    class_weights: list[float] = field(default_factory=list)
    class_weights_method: str = "median"
    recommended_loss: str = "dice_ce"
    recommended_weighting: str = "none"
    loss_reason: str = ""
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors."""
        return not self.errors

    @property
    def labelled_pixels(self) -> int:
        """Pixels with a real class."""
        return int(sum(self.class_pixels))

    @property
    def class_frequencies(self) -> list[float]:
        """Fraction of labelled pixels per class."""
        total = self.labelled_pixels
        return [c / total if total else 0.0 for c in self.class_pixels]

    @property
    def majority_baseline(self) -> float | None:
        """Pixel accuracy of predicting the most frequent class everywhere."""
        total = self.labelled_pixels
        return max(self.class_pixels) / total if total else None

    @property
    def rare_classes(self) -> list[str]:
        """Classes under 1 % of labelled pixels (absent ones included)."""
        return rare_classes(self.class_frequencies, self.classes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict with the derived numbers included."""
        raw = asdict(self)
        raw.update(
            ok=self.ok,
            labelled_pixels=self.labelled_pixels,
            class_frequencies=self.class_frequencies,
            majority_baseline=self.majority_baseline,
            rare_classes=self.rare_classes,
        )
        return raw


def write_json(report: CheckReport, path: str) -> None:
    """Write the report as JSON to ``path`` atomically, or to stdout for ``"-"``."""
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    if path == "-":
        print(text, end="")
        return
    atomic_write_text(path, text)


def _counts(mapping: dict[str, int]) -> str:
    return ", ".join(f"{k} ({v})" for k, v in sorted(mapping.items(), key=lambda kv: -kv[1]))


def print_report(report: CheckReport, console: Console) -> None:
    """Print the human summary: samples, sizes, class frequencies, diagnosis and problems."""
    console.print(
        f"[bold]pixelseg check[/bold] {escape(report.config)}  (data: {escape(report.root)})"
    )
    splits = ", ".join(f"{k} {v}" for k, v in report.split_counts.items())
    skipped = f", {report.skipped} skipped (data.skip_invalid)" if report.skipped else ""
    console.print(
        f"samples: {report.num_samples} found, {report.checked} read{skipped}; splits: {splits}"
    )
    if report.image_sizes:
        console.print(f"image sizes (WxH): {_counts(report.image_sizes)}")
        console.print(f"bands x dtype: {_counts(report.image_kinds)}")
    if report.rgba_pngs:
        many = report.rgba_pngs > 1
        console.print(
            f"{report.rgba_pngs} {'images are RGBA PNGs' if many else 'image is an RGBA PNG'}: "
            "alpha dropped"
        )
    if report.labelled_pixels:
        table = Table(title="class pixel frequency (void excluded)")
        table.add_column("class")
        table.add_column("pixels", justify="right")
        table.add_column("frequency", justify="right")
        table.add_column("CE weight", justify="right")
        weights = report.class_weights or [1.0] * len(report.classes)
        for index, name in enumerate(report.classes):
            freq = report.class_frequencies[index]
            style = "yellow" if freq < RARE_FRACTION else ""
            table.add_row(
                f"{index} {name}",
                f"{report.class_pixels[index]:,}",
                f"{100 * freq:.2f} %",
                f"{weights[index]:.3f}",
                style=style,
            )
        console.print(table)
        total = report.labelled_pixels + report.ignored_pixels
        console.print(
            f"ignored (void / outside valid region / nodata): {report.ignored_pixels:,} pixels "
            f"({100 * report.ignored_pixels / max(total, 1):.1f} %)"
        )
        baseline = report.majority_baseline or 0.0
        console.print(f"majority-class pixel accuracy baseline: {100 * baseline:.2f} %")
        console.print(
            f'loss.name = "auto" gives "{report.recommended_loss}" with class_weighting '
            f'"{report.recommended_weighting}": {escape(report.loss_reason)}',
            highlight=False,
        )
    print_problems(report, console)


def print_problems(report: CheckReport, console: Console) -> None:
    """Print the warnings, the errors and the one-line verdict of any check report."""
    for problem in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(str(problem))}", highlight=False)
    for problem in report.errors:
        console.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False)
    verdict = (
        "[green]OK[/green]" if report.ok else f"[red]{len(report.errors)} problem(s) found[/red]"
    )
    console.print(f"result: {verdict}, {len(report.warnings)} warning(s)")


def exit_code(report: CheckReport, *, strict: bool) -> int:
    """1 on errors (or, with ``strict``, on warnings), else 0."""
    return 1 if not report.ok or (strict and report.warnings) else 0


def raise_if_errors(report: CheckReport, root: str, *, listed: int = 5) -> None:
    """Refuse a dataset with errors, naming the first few, before anyone trains on it.

    Raises:
        DataError: ``report`` has errors.
    """
    if report.ok:
        return
    named = "; ".join(str(p) for p in report.errors[:listed])
    more = len(report.errors) - listed
    suffix = f" (and {more} more: run pixelseg check)" if more > 0 else ""
    raise DataError(root, f"dataset has errors: {named}{suffix}")


def diagnose(report: CheckReport) -> None:
    """Fill the class weights, the recommended loss and the imbalance warnings of ``report``.

    An error when no pixel is labelled at all.
    """
    if not report.labelled_pixels:
        if report.checked:
            report.errors.append(Problem("", "no labelled pixels: every pixel is void"))
        return
    basis = report.train_class_pixels if sum(report.train_class_pixels) else report.class_pixels
    report.class_weights = [round(float(w), 4) for w in class_weights_from_counts(basis)]
    for name, pixels in zip(report.classes, report.class_pixels):
        if pixels == 0:
            report.warnings.append(Problem("", f"class {name!r} never occurs in the masks read"))
    chosen = choose_loss(basis, class_names=report.classes)
    report.recommended_loss, report.recommended_weighting, report.loss_reason = chosen
    if report.recommended_weighting != "none":
        report.warnings.append(Problem("", f"class imbalance: {report.loss_reason}"))
