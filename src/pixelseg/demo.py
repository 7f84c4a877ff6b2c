"""``pixelseg demo``: the whole job on bundled synthetic data — check, train, evaluate, predict."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pixelseg.config import load_config
from pixelseg.data.check import check_command
from pixelseg.inference.evaluate import evaluate_command
from pixelseg.inference.predict import predict_command
from pixelseg.train import train

DEMO_SETTINGS = [
    'model.name="unet_resnet18"',
    'model.options={norm="group", base_width=16}',
    "train.epochs=40",
    "train.batch_size=8",
    "train.crop_size=96",
    "train.lr=0.003",
    "train.warmup_steps=20",
    "train.patience=40",
]


def demo_command(*, out: str, minutes: float) -> int:
    """Write synthetic data under ``out``, then check, train, evaluate and predict on it."""
    from pixelseg.data.synthetic import write_synthetic_semantic

    console = Console(highlight=False)
    out_dir = Path(out)
    console.rule("1/4 synthetic data")
    config_path = write_synthetic_semantic(out_dir / "data", n_images=48, size=128, seed=0)
    console.print(f"wrote 48 synthetic scenes and {config_path}")
    console.rule("2/4 pixelseg check")
    check_command(str(config_path), strict=False, json_path=None, overrides=[])
    console.rule(f"3/4 pixelseg train (budget {minutes:g} min)")
    settings = [*DEMO_SETTINGS, f"train.max_time={60 * minutes}"]
    config = load_config(config_path, settings)
    run_dir = out_dir / "run"
    resume = (run_dir / "checkpoints" / "last.safetensors").is_file()
    if resume and (run_dir / "summary.json").is_file():
        console.print(f"{run_dir} already trained; delete it to train again")
    else:
        train(config, run_dir, resume=resume)
    console.rule("4/4 pixelseg evaluate and predict")
    evaluate_command(str(run_dir), data=None, split="val", json_path=None, device="auto")
    predictions = out_dir / "predictions"
    predict_command(
        str(run_dir), [str(out_dir / "data" / "images")], out=str(predictions), device="auto"
    )
    console.rule("where everything is")
    console.print(f"data and config:   {out_dir / 'data'}")
    console.print(f"run directory:     {run_dir} (checkpoints/, metrics.jsonl, train.log)")
    console.print(
        f"evaluation report: {run_dir / 'eval' / 'val'} (report.html with its pictures, "
        "report.md, metrics.json)"
    )
    console.print(f"predictions:       {predictions} (*_label.png, *_overlay.png)")
    return 0
