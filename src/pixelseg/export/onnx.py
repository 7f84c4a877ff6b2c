"""``pixelseg export --format onnx``: the network and its normalisation as an ONNX graph.

The graph (:class:`~pixelseg.export.graph.NormalizedNetwork`) is exported by PyTorch's current
exporter (``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``) at opset
:data:`OPSET`, with dynamic batch, height and width; the run's config and record go into the
model's metadata. Every export is checked (:func:`~pixelseg.export.parity.check_parity`):
onnxruntime's outputs against PyTorch's on two input sizes; below 99.9 % argmax agreement the
export fails and no file is left. Watershed runs export their network (the post-processing
stays in Python); Mask R-CNN runs export the whole detector (:mod:`pixelseg.export.detector`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.engine.run_dir import read_run
from pixelseg.errors import ConfigError
from pixelseg.export.graph import exported_network
from pixelseg.export.parity import ParityReport, check_parity, example_input
from pixelseg.files import atomic_write

#: The ONNX opset written.
OPSET = 18


def add_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Write ``metadata`` into the ONNX file at ``path`` (its ``metadata_props``)."""
    import onnx

    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def export_onnx(
    run_dir: str | Path, out: str | Path, *, checkpoint: str = "best", opset: int = OPSET
) -> ParityReport:
    """Export ``run_dir``'s ``checkpoint`` to the ONNX file ``out`` and check it.

    Raises:
        ConfigError: a missing exporter package, or outputs that disagree
            with PyTorch's (no file is written then).
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "ONNX export needs onnx and onnxscript: pip install onnx onnxscript onnxruntime"
        ) from exc
    run_dir, out = Path(run_dir), Path(out)
    if read_run(run_dir)[1].task == "instance":
        from pixelseg.export.detector import export_detector_onnx

        return export_detector_onnx(run_dir, out, checkpoint=checkpoint)
    network, metadata, bands, classes = exported_network(run_dir, checkpoint)
    example = example_input(network, bands, (2, 64, 96))
    dim = torch.export.Dim.AUTO
    dynamic = {"image": {0: dim, 2: dim, 3: dim}}

    def write(tmp: Path) -> None:
        with torch.no_grad():
            torch.onnx.export(
                network, (example,), str(tmp), dynamo=True, opset_version=opset,
                input_names=["image"], output_names=["outputs"], dynamic_shapes=dynamic,
                external_data=False, verbose=False,
            )  # fmt: skip
        add_metadata(tmp, metadata)

    staged = out.with_name(f".{out.name}.staged")
    atomic_write(staged, write)
    try:
        from pixelseg.inference.engines import OnnxNetwork

        engine = OnnxNetwork(staged)
        what = f"ONNX (opset {opset})"
        report = check_parity(network, engine, bands, what=what, classes=classes)
        staged.replace(out)
    finally:
        staged.unlink(missing_ok=True)
    return report
