"""``pixelseg export``: write the file, check it against PyTorch, say how close it is."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

#: Default file names under ``RUN_DIR/export``.
DEFAULT_NAMES = {"onnx": "model.onnx", "torch-export": "model.pt2"}


def export_command(run_dir: str, *, fmt: str, out: str | None, checkpoint: str = "best") -> int:
    """Export ``run_dir`` as ``fmt`` (``onnx`` or ``torch-export``) to ``out``."""
    target = Path(out) if out else Path(run_dir) / "export" / DEFAULT_NAMES[fmt]
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        from pixelseg.export.onnx import export_onnx

        report = export_onnx(run_dir, target, checkpoint=checkpoint)
    else:
        from pixelseg.export.torch_export import export_program

        report = export_program(run_dir, target, checkpoint=checkpoint)
    console = Console(highlight=False)
    console.print(report.line(), soft_wrap=True)
    console.print(f"exported {checkpoint} checkpoint of {run_dir} to {target}")
    return 0
