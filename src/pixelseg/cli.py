"""The ``pixelseg`` command line: demo, check, train, evaluate, predict.

Each subcommand parses its arguments here and hands over to the module that does the work.
A :class:`~pixelseg.errors.PixelsegError` (a user's mistake) is printed as one line, exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pixelseg import __version__
from pixelseg.errors import PixelsegError


def _cmd_check(args: argparse.Namespace) -> int:
    from pixelseg.data.check import check_command

    return check_command(
        args.config, strict=args.strict, json_path=args.json, overrides=args.set or []
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from pixelseg.train import train_command

    return train_command(
        args.config,
        out=args.out,
        overrides=args.set or [],
        resume=args.resume,
        max_time=args.max_time,
        precision=args.precision,
        device=args.device,
        overwrite=args.overwrite,
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pixelseg.inference.evaluate import evaluate_command

    return evaluate_command(
        args.run_dir,
        data=args.data,
        split=args.split,
        json_path=args.json,
        device=args.device,
        checkpoint=args.checkpoint,
    )


def _cmd_predict(args: argparse.Namespace) -> int:
    from pixelseg.inference.predict import predict_command

    return predict_command(
        args.run_dir,
        args.inputs,
        out=args.out,
        device=args.device,
        probabilities=args.probabilities,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        tta=args.tta,
        overwrite=args.overwrite,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from pixelseg.demo import demo_command

    return demo_command(out=args.out, minutes=args.minutes)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="pixelseg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pixelseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("check", _cmd_check, "Verify every sample of a dataset config and summarise it.")
    p.add_argument("config")
    p.add_argument("--strict", action="store_true", help="treat imbalance warnings as errors")
    p.add_argument("--json", help="also write the report as JSON to this file ('-' = stdout)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")

    p = add("train", _cmd_train, "Train a model from a config into a run directory.")
    p.add_argument("config")
    p.add_argument("--out", help="run directory (default runs/<config name>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.add_argument("--max-time", type=float, help="wall-clock budget in seconds")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto")

    p = add("evaluate", _cmd_evaluate, "Evaluate a trained run on a split.")
    p.add_argument("run_dir")
    p.add_argument("--data", help="dataset config (default: the run's own)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--json", help="write the metrics as JSON to this file")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--checkpoint",
        default="best",
        choices=["best", "last"],
        help="best: chosen on the run's val split (default); last: the final weights",
    )

    p = add("predict", _cmd_predict, "Predict label maps for image files or folders.")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--probabilities", action="store_true", help="also write the class probabilities"
    )
    p.add_argument(
        "--tile",
        default="auto",
        help="sliding-window tiles: auto (images over 4096x4096 px, semantic runs), off, or a "
        "tile size in px",
    )
    p.add_argument("--tile-overlap", type=int, help="tile overlap in px (default: a quarter tile)")
    p.add_argument(
        "--tta", action="store_true", help="average over flips and 90° rotations (8 passes)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo outputs that exist (default: skip those "
        "this run and checkpoint wrote with these options)",
    )

    p = add("demo", _cmd_demo, "Train, evaluate and predict on bundled synthetic data.")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pixelseg`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except PixelsegError as exc:
        print(f"pixelseg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pixelseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: a short message, the traceback in a file
        log = write_crash_log(argv)
        print(
            f"pixelseg {args.command}: internal error: {type(exc).__name__}: {exc} "
            f"(traceback in {log}; please report it)",
            file=sys.stderr,
        )
        return 1


def write_crash_log(argv: Sequence[str] | None) -> Path:
    """Write the current exception's traceback and the command line to a crash log file.

    The file goes to ``$PIXELSEG_CRASH_DIR`` (default: the system temporary folder), named by
    the time and process id.
    """
    import os
    import tempfile
    import time
    import traceback

    folder = Path(os.environ.get("PIXELSEG_CRASH_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pixelseg-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    command = " ".join(["pixelseg", *(sys.argv[1:] if argv is None else argv)])
    path.write_text(f"{command}\n\n{traceback.format_exc()}", encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
