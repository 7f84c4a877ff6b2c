"""The check every export passes: the exported graph computes what PyTorch computes.

Two inputs of different sizes (and batch sizes) go through both, in the graph's units (the
training mean plus noise of the training std); the report gives the largest absolute
difference of the outputs and the share of pixels whose argmax over the class channels agrees.
Below :data:`MIN_AGREEMENT` the export fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pixelseg.errors import ConfigError

#: Argmax agreement below this fails the export.
MIN_AGREEMENT = 0.999
#: ``(batch, height, width)`` of the two checked inputs.
SIZES = ((1, 64, 64), (2, 96, 128))


@dataclass(frozen=True)
class ParityReport:
    """How close the export is to PyTorch.

    Attributes:
        what: the format checked.
        max_abs_diff: the largest absolute output difference over both inputs.
        agreement: the share of pixels whose argmax agrees.
        sizes: the ``(batch, height, width)`` inputs checked.
        agreement_of: what agreed: ``argmax`` (the class per pixel) or ``label-image`` (the
            object per pixel).
    """

    what: str
    max_abs_diff: float
    agreement: float
    sizes: tuple[tuple[int, int, int], ...]
    agreement_of: str = "argmax"

    def line(self) -> str:
        """One line for the console."""
        sizes = ", ".join(f"{b}x{h}x{w}" for b, h, w in self.sizes)
        return (
            f"{self.what}: max |difference| {self.max_abs_diff:.2e}, {self.agreement_of} agreement "
            f"{100 * self.agreement:.3f} % on inputs {sizes} (batch x height x width)"
        )


def example_input(network: nn.Module, bands: int, size: tuple[int, int, int]) -> torch.Tensor:
    """A ``(batch, bands, height, width)`` input in the graph's units: mean + std x noise."""
    generator = torch.Generator().manual_seed(0)
    batch, height, width = size
    noise = torch.randn(batch, bands, height, width, generator=generator)
    mean = getattr(network, "mean", torch.zeros(1, bands, 1, 1))
    std = getattr(network, "std", torch.ones(1, bands, 1, 1))
    return (mean + std * noise).float()


def check_parity(
    network: nn.Module, exported: nn.Module, bands: int, *, what: str, classes: int | None = None
) -> ParityReport:
    """Compare ``exported`` (taking normalised input, like the PyTorch network) with ``network``
    (taking the graph's units) on :data:`SIZES`.

    Raises:
        ConfigError: agreement below :data:`MIN_AGREEMENT`.
    """
    worst, same, total = 0.0, 0, 0
    for size in SIZES:
        raw = example_input(network, bands, size)
        with torch.no_grad():
            expected = network(raw).float()
            normalised = (raw - network.mean) / network.std  # type: ignore[operator]
            try:
                got = exported(normalised).float()
            except Exception as exc:  # the runtime's own errors: a graph fixed to one size
                shape = "x".join(map(str, raw.shape))
                raise ConfigError(
                    f"export failed the parity check: {what} could not run an input of "
                    f"{shape} ({type(exc).__name__}: {str(exc)[:300]})"
                ) from exc
        if got.shape != expected.shape:
            raise ConfigError(f"{what}: output shape {tuple(got.shape)} != {tuple(expected.shape)}")
        worst = max(worst, float((got - expected).abs().max()))
        k = classes or expected.shape[1]
        same += int((got[:, :k].argmax(1) == expected[:, :k].argmax(1)).sum())
        total += expected[:, 0].numel()
    report = ParityReport(what, worst, same / total, SIZES)
    if report.agreement < MIN_AGREEMENT:
        raise ConfigError(f"export failed the parity check: {report.line()}")
    return report
