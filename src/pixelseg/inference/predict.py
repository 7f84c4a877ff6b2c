"""``pixelseg predict``: every task's outputs for image files or folders, resumable."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from pixelseg.data.io import ImageHeader, read_header
from pixelseg.engine.distributed import (
    barrier,
    get_rank,
    init_from_environment,
    is_distributed,
    is_main_process,
    launched_by_torchrun,
    local_device,
    shard,
    shutdown,
)
from pixelseg.engine.precision import resolve_device
from pixelseg.engine.progress import progress_bar
from pixelseg.errors import ConfigError, DataError
from pixelseg.inference.batched import batch_size, predict_batch
from pixelseg.inference.inputs import output_folders
from pixelseg.inference.manifest import Manifest, merge_parts, origin_of
from pixelseg.inference.outputs import output_writer
from pixelseg.inference.predictor import Predictor
from pixelseg.inference.prepared import PreparedImage
from pixelseg.inference.streaming import predict_streamed_file, streams
from pixelseg.inference.tiling import TileSpec
from pixelseg.structures import SemanticPrediction

#: Where ``pixelseg export --format onnx`` puts a run's graph by default.
EXPORTED_ONNX = "export/model.onnx"
#: Threads decoding the next images while the model predicts one.
DECODE_THREADS = 2
#: Decoded images waiting at most (memory: this many images beside the one predicted).
PREFETCH = 2


def output_paths(
    out: Path, image: Path, *, label: str = "label", suffix: str = ".png"
) -> tuple[Path, Path]:
    """Where the label image (``<stem>_<label><suffix>``) and the overlay PNG of ``image`` go."""
    return out / f"{image.stem}_{label}{suffix}", out / f"{image.stem}_overlay.png"


def _header(path: Path) -> ImageHeader | None:
    """The image's header, or ``None`` when it is unreadable (predicting it then says why)."""
    try:
        return read_header(path)
    except DataError:
        return None


def label_suffix(header: ImageHeader | None) -> str:
    """``.tif`` for a georeferenced input (its labels become a GeoTIFF), else ``.png``."""
    return ".tif" if header is not None and header.georef is not None else ".png"


def predict_files(
    predictor: Predictor,
    files: list[Path],
    out: Path,
    *,
    probabilities: bool = False,
    warnings: list[str] | None = None,
    folders: list[Path] | None = None,
    overwrite: bool = False,
    probability_dtype: str = "float32",
    batch: int = 1,
) -> tuple[int, int]:
    """Write each image's outputs (see :mod:`pixelseg.inference.outputs`) into ``out``.

    An image whose outputs exist whole is skipped, so a killed run resumes where it stopped —
    but only when ``out/manifest.json`` says this run, checkpoint and these options wrote them
    (:mod:`pixelseg.inference.manifest`; a Predictor not made by ``from_run`` has no source and
    existing outputs count as done). ``overwrite`` redoes every image.

    Args:
        predictor: the trained run.
        files: the images.
        out: the output folder.
        probabilities: also write each image's class probabilities (``<stem>_probs.tif``).
        warnings: a list that receives the Predictor's warnings (images far from the training
            images), which are also printed.
        folders: each image's folder below ``out`` (default: ``out`` itself; see
            :func:`~pixelseg.inference.inputs.output_folders`).
        overwrite: redo the outputs that exist.
        probability_dtype: ``float32``, ``float16`` or ``uint8`` (see
            :data:`~pixelseg.inference.probability_maps.PROBABILITY_DTYPES`).
        batch: images of one size per forward pass (:mod:`pixelseg.inference.batched`).

    Returns:
        ``(written, skipped)`` counts.

    Raises:
        DataError: an unreadable image, or one whose band count or dtype differs from the
            training images' (naming the file).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = predictor.info
    writer = output_writer(
        predictor.task.prediction_type,
        out,
        info,
        probabilities=probabilities,
        probability_dtype=probability_dtype,
    )
    manifest = None
    if predictor.source is not None:
        origin = origin_of(
            *predictor.source,
            probabilities=probability_dtype if probabilities else False,
            tile=str(predictor.tile),
            tta=predictor.tta,
            precision=predictor.requested_precision,
        )
        manifest = Manifest(out, origin, rank=get_rank() if is_distributed() else None)
        if overwrite:
            manifest.forget()
    semantic = predictor.task.prediction_type is SemanticPrediction
    todo: list[tuple[Path, Path, Path, ImageHeader | None]] = []  # header: set when streamed
    skipped = 0
    for index, path in enumerate(files):
        folder = out / folders[index] if folders is not None else out
        folder.mkdir(parents=True, exist_ok=True)
        header = _header(path)
        stream = header is not None and streams(header, semantic=semantic, tile=predictor.tile)
        suffix = ".tif" if stream else label_suffix(header)
        label_path, overlay_path = output_paths(folder, path, label=writer.label, suffix=suffix)
        if stream:  # a streamed raster has its label image alone
            done = not overwrite and label_path.exists()
        else:
            done = not overwrite and writer.is_done(path, label_path, overlay_path)
        if done and (manifest is None or manifest.is_current(label_path, path)):
            skipped += 1
        else:
            todo.append((path, label_path, overlay_path, header if stream else None))
    written = 0
    # Images are decoded in threads (PIL, GDAL and NumPy release the GIL) while the model runs
    # on the ones before; at most PREFETCH (or a batch) decoded images wait in memory.
    decoded = [item[0] for item in todo if item[3] is None]
    pending: list[tuple[tuple[Path, Path, Path], PreparedImage]] = []

    def finish(path: Path, label_path: Path) -> None:
        nonlocal written
        if manifest is not None:
            manifest.record(label_path, path)
        written += 1
        advance()

    def flush() -> None:  # the waiting images in one forward pass where they allow it
        for ((path, label_path, overlay_path), prepared), prediction in zip(
            pending, predict_batch(predictor, [item for _, item in pending])
        ):
            writer.write(path, prepared, prediction, label_path, overlay_path)
            if warnings is not None:
                warnings.extend(prepared.warnings)
            finish(path, label_path)
        pending.clear()

    with (
        progress_bar("predict", total=len(todo)) as advance,
        ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool,
    ):
        ahead = max(PREFETCH, batch)
        loads = deque(pool.submit(predictor.load, image) for image in decoded[:ahead])
        queued = len(loads)
        for path, label_path, overlay_path, streamed in todo:
            if streamed is not None:
                flush()
                predict_streamed_file(predictor, path, streamed, label_path)
                finish(path, label_path)
                continue
            prepared = loads.popleft().result()
            if queued < len(decoded):
                loads.append(pool.submit(predictor.load, decoded[queued]))
                queued += 1
            shape = prepared.normalized.shape
            if pending and (len(pending) >= batch or pending[0][1].normalized.shape != shape):
                flush()
            pending.append(((path, label_path, overlay_path), prepared))
        flush()
    writer.close()
    if manifest is not None:
        manifest.save()
    return written, skipped


def parse_tile(tile: str, overlap: int | None) -> str | TileSpec:
    """``--tile`` and ``--tile-overlap`` as :class:`~pixelseg.inference.predictor.Predictor`
    takes them: ``"auto"``, ``"off"`` or a :class:`TileSpec` (overlap default: a quarter tile).

    Raises:
        ConfigError: neither word nor a whole number, or a size/overlap TileSpec refuses.
    """
    if tile in ("auto", "off"):
        if overlap is not None:
            raise ConfigError(f"--tile-overlap needs a tile size (--tile N), not --tile {tile}")
        return tile
    if not tile.isdigit():
        raise ConfigError(f"--tile {tile}: expected auto, off or a tile size in px")
    size = int(tile)
    try:
        return TileSpec(size=size, overlap=size // 4 if overlap is None else overlap)
    except ValueError as error:
        raise ConfigError(f"--tile {tile}: {error}") from None


def predict_command(
    run_dir: str,
    inputs: list[str],
    *,
    out: str,
    device: str,
    probabilities: bool = False,
    tile: str = "auto",
    tile_overlap: int | None = None,
    tta: bool = False,
    overwrite: bool = False,
    precision: str = "auto",
    probability_dtype: str = "float32",
    engine: str = "pytorch",
    compile_model: bool = False,
    batch: str = "auto",
) -> int:
    """The ``pixelseg predict`` subcommand.

    Args:
        run_dir: the trained run.
        inputs: image files or folders.
        out: the output folder.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        probabilities: also write the class probabilities as float32 GeoTIFFs.
        tile: ``"auto"``, ``"off"`` or a tile size in px (:func:`parse_tile`).
        tile_overlap: the tiles' overlap in px.
        tta: average each dense prediction over flips and 90° rotations.
        overwrite: redo the outputs that exist (otherwise those this run wrote are skipped).
        precision: ``auto`` (measured on the first image) or a precision name.
        probability_dtype: how ``probabilities`` are stored (float32, float16, uint8).
        engine: ``pytorch``, or ``onnxruntime`` (the run's ``export/model.onnx``; ``run_dir``
            may also be an exported ``.onnx`` file, which holds everything needed).
        compile_model: run the model through ``torch.compile`` (pytorch engine).
        batch: images per forward pass, or ``auto``
            (:func:`~pixelseg.inference.batched.batch_size`).
    """
    pairs = output_folders(inputs)
    if launched_by_torchrun():  # each rank predicts its share of the files
        resolved = local_device(resolve_device(device))
        init_from_environment(resolved)
        device, pairs = str(resolved), shard(pairs)
    files, folders = [image for image, _ in pairs], [folder for _, folder in pairs]
    spec = parse_tile(tile, tile_overlap)
    if engine == "onnxruntime" or run_dir.endswith(".onnx"):
        from pixelseg.inference.engines import load_onnx_predictor

        exported = Path(run_dir) if run_dir.endswith(".onnx") else Path(run_dir) / EXPORTED_ONNX
        predictor = load_onnx_predictor(exported, tile=spec, tta=tta)
    else:
        predictor = Predictor.from_run(
            run_dir, device=device, precision=precision, tile=spec, tta=tta,
            compile_model=compile_model,
        )  # fmt: skip
    out_dir = Path(out)
    warnings: list[str] = []
    written, skipped = predict_files(
        predictor,
        files,
        out_dir,
        probabilities=probabilities,
        warnings=warnings,
        folders=folders,
        overwrite=overwrite,
        probability_dtype=probability_dtype,
        batch=batch_size(batch, predictor.device),
    )
    if is_distributed():
        barrier()  # every rank saved its manifest part
        if is_main_process():
            merge_parts(out_dir)
        shutdown()
    console = Console(highlight=False)
    if predictor.plan is not None and written:
        console.print(f"inference: {predictor.plan.name} — {predictor.plan.reason}", soft_wrap=True)
    who = f"rank {get_rank()}: " if launched_by_torchrun() else ""
    console.print(
        f"{who}predicted {written} image(s), skipped {skipped} already done; outputs in {out_dir}"
    )
    if warnings:
        console.print(
            f"[yellow]{len(warnings)} image(s) far from the training images[/yellow] (warned "
            "above): check their predictions before trusting them",
            soft_wrap=True,
        )
    return 0
