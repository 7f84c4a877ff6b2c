"""The ``pixelseg`` command line: demo, check, train, evaluate, predict, export, compare.

Each subcommand parses its arguments here and hands over to the module that does the work.
A :class:`~pixelseg.errors.PixelsegError` (a user's mistake) is printed as one line, exit 1;
so is a disk that is full, read-only or not ours to write (:data:`UNWRITABLE`). Anything else
is an internal error: one line naming a crash log that holds the traceback, exit 1.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence

from pixelseg import __version__
from pixelseg.errors import PixelsegError, write_crash_log

#: ``OSError`` numbers that mean the output cannot be written (said in one line).
UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def _cmd_check(args: argparse.Namespace) -> int:
    from pixelseg.data.check import check_command

    return check_command(
        args.config, strict=args.strict, json_path=args.json, overrides=args.set or []
    )


TTA_HELP = "average over flips and 90° rotations (8 passes; semantic and watershed runs)"


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
        report=not args.no_report,
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pixelseg.engine.allocator import keep_freed_memory
    from pixelseg.inference.evaluate import evaluate_command

    keep_freed_memory()  # forward passes refault freed activations too (see the module)

    return evaluate_command(
        args.run_dir,
        data=args.data,
        split=args.split,
        json_path=args.json,
        device=args.device,
        checkpoint=args.checkpoint,
        precision=args.precision,
        report=args.report,
        tta=args.tta,
    )


def _cmd_predict(args: argparse.Namespace) -> int:
    from pixelseg.engine.allocator import keep_freed_memory
    from pixelseg.inference.predict import predict_command

    keep_freed_memory()

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
        precision=args.precision,
        probability_dtype=args.probability_dtype,
        engine=args.engine,
        compile_model=args.compile,
        batch=args.batch,
    )


def _cmd_export(args: argparse.Namespace) -> int:
    from pixelseg.export.command import export_command

    return export_command(args.run_dir, fmt=args.format, out=args.out, checkpoint=args.checkpoint)


def _cmd_compare(args: argparse.Namespace) -> int:
    from pixelseg.inference.compare import compare_command

    return compare_command(
        args.runs, split=args.split, out=args.out, data=args.data, device=args.device
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
    p.add_argument(
        "--no-report",
        action="store_true",
        help="skip the val report (RUN_DIR/eval/val) and its headline after training",
    )
    p.add_argument("--max-time", type=float, help="wall-clock budget in seconds")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto")

    p = add("evaluate", _cmd_evaluate, "Evaluate a trained run on a split.")
    p.add_argument("run_dir")
    p.add_argument("--data", help="dataset config (default: the run's own)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--json", help="write the metrics as JSON to this file")
    p.add_argument("--report", help="write the report here (default RUN_DIR/eval/SPLIT)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--checkpoint",
        default="best",
        choices=["best", "last"],
        help="best: chosen on the run's val split (default); last: the final weights",
    )
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16", "int8"],
        help="default: the run's training precision (what validation ran in); auto: the "
        "fastest path whose labels equal fp32's, as predict measures it",
    )
    p.add_argument("--tta", action="store_true", help=TTA_HELP + "; measure what it gains")

    p = add("predict", _cmd_predict, "Predict label maps for image files or folders.")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--probabilities", action="store_true", help="also write the class probabilities"
    )
    p.add_argument(
        "--engine",
        default="pytorch",
        choices=["pytorch", "onnxruntime"],
        help="onnxruntime: RUN_DIR/export/model.onnx (or RUN_DIR given as an .onnx file)",
    )
    p.add_argument(
        "--probability-dtype",
        default="float32",
        choices=["float32", "float16", "uint8"],
        help="how --probabilities are stored (uint8: p*254 with the band scale in the file)",
    )
    p.add_argument(
        "--tile",
        default="auto",
        help="sliding-window tiles: auto (images over 4096x4096 px), off, or a tile size in px "
        "(instances: the overlap must exceed the largest object)",
    )
    p.add_argument("--tile-overlap", type=int, help="tile overlap in px (default: a quarter tile)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16", "int8"],
        help="auto: the fastest path whose labels equal fp32's, measured on the first image; "
        "int8: torch.ao post-training quantisation (CPU), calibrated on training images",
    )
    p.add_argument("--batch", default="auto", help="images per pass (auto: 1 on a CPU, 8 on a GPU)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (tens of seconds first; pays on many images or tiles)",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help=TTA_HELP,
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo outputs that exist (default: skip those "
        "this run and checkpoint wrote with these options)",
    )

    p = add("export", _cmd_export, "Export a run's network (ONNX or torch.export), checked.")
    p.add_argument("run_dir")
    p.add_argument("--format", default="onnx", choices=["onnx", "torch-export"])
    p.add_argument("--out", help="the file (default RUN_DIR/export/model.onnx or model.pt2)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])

    p = add("compare", _cmd_compare, "Compare runs on one split, with bootstrap intervals.")
    p.add_argument("runs", nargs="+")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--data", help="dataset config (default: each run's own)")
    p.add_argument("--out", default="compare", help="folder for compare.html/.md/.json")
    p.add_argument("--device", default="auto")

    p = add("demo", _cmd_demo, "Train, evaluate and predict on bundled synthetic data.")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pixelseg`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun: say which process speaks
        args.command = f"{args.command} (rank {os.environ.get('RANK', '?')})"
        code = _dispatch(args, argv)
        # Everything is written and the group left: skip the interpreter's teardown, where
        # gloo's threads sometimes aborted the process ("terminate called without an active
        # exception", SIGABRT) after the work was done.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return _dispatch(args, argv)


def _dispatch(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Run the parsed command; errors become one line and an exit status."""
    try:
        return int(args.func(args))
    except PixelsegError as exc:
        print(f"pixelseg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pixelseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno in UNWRITABLE:  # the machine's problem, not pixelseg's: no crash log
            where = f" {exc.filename}" if exc.filename else ""
            print(
                f"pixelseg {args.command}: error: cannot write{where}: {exc.strerror} (free "
                "space or write elsewhere; what was written before is intact)",
                file=sys.stderr,
            )
            return 1
        return _internal_error(args.command, argv, exc)
    except Exception as exc:  # an internal error: a short message, the traceback in a file
        if type(exc).__name__.startswith("Dist"):  # torch.distributed's errors: a peer is gone
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            print(
                f"pixelseg {args.command}: error: lost the other DDP processes (one failed, "
                f"was killed or hangs past train.ddp_timeout_s): {type(exc).__name__}: {first}",
                file=sys.stderr,
            )
            return 1
        return _internal_error(args.command, argv, exc)


def _internal_error(command: str, argv: Sequence[str] | None, exc: Exception) -> int:
    """Print one line naming the crash log that holds the traceback; exit status 1."""
    log = write_crash_log(argv)
    print(
        f"pixelseg {command}: internal error: {type(exc).__name__}: {exc} "
        f"(traceback in {log}; please report it)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
