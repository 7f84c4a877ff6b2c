"""``pixelseg export --format torch-export``: the network as a ``torch.export`` program.

The same graph as the ONNX export (:class:`~pixelseg.export.graph.NormalizedNetwork`: the
normalisation inside, dynamic batch, height and width), captured by ``torch.export.export`` and
saved with ``torch.export.save``; the run's config and record travel as the extra file
:data:`META_FILE`. Load it with ``torch.export.load(path).module()``. Checked like every export
(:func:`~pixelseg.export.parity.check_parity`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from pixelseg.export.graph import exported_network
from pixelseg.export.parity import ParityReport, check_parity, example_input
from pixelseg.files import atomic_write

#: The extra file holding the run's metadata inside the saved program.
META_FILE = "pixelseg.json"


class _Normalised(nn.Module):
    """A loaded program that takes raw units, fed normalised input like the PyTorch network."""

    def __init__(self, program: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.program, self.mean, self.std = program, mean, std

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The program's outputs for a normalised batch."""
        return self.program(batch * self.std + self.mean)


def export_program(
    run_dir: str | Path, out: str | Path, *, checkpoint: str = "best"
) -> ParityReport:
    """Export ``run_dir``'s ``checkpoint`` as a ``torch.export`` program at ``out``, checked.

    Raises:
        ConfigError: a Mask R-CNN run, or outputs that disagree with PyTorch's (no file then).
    """
    run_dir, out = Path(run_dir), Path(out)
    network, metadata, bands, classes = exported_network(run_dir, checkpoint)
    example = example_input(network, bands, (2, 64, 96))
    dim = torch.export.Dim.AUTO
    with torch.no_grad():
        program = torch.export.export(
            network, (example,), dynamic_shapes={"image": {0: dim, 2: dim, 3: dim}}
        )
    staged = out.with_name(f".{out.name}.staged")
    extra = {META_FILE: json.dumps(metadata)}
    atomic_write(staged, lambda tmp: torch.export.save(program, str(tmp), extra_files=extra))
    try:
        loaded = torch.export.load(str(staged)).module()
        engine = _Normalised(loaded, network.mean, network.std)  # type: ignore[arg-type]
        report = check_parity(network, engine, bands, what="torch.export", classes=classes)
        staged.replace(out)
    finally:
        staged.unlink(missing_ok=True)
    return report
