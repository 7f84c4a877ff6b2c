"""Inference speed on this CPU: pixelseg's predict paths against smp's easy settings.

Usage::

    python bench/inference_speed.py [--train-seconds 120] [--tiled-size 8192]
                                    [--out bench/results/inference_speed.json]

One process, two threads, the same architecture on both sides: smp ``Unet("resnet34",
encoder_weights=None)`` (BatchNorm) run as its docs show (``model.eval()``, ``torch.no_grad()``)
— eager fp32, channels_last, and channels_last + bf16 autocast where the CPU has native bf16 —
against pixelseg's ``unet_resnet34`` with BatchNorm through its ``Predictor`` (what ``pixelseg
predict`` runs: normalisation, padding, softmax and argmax included, batch 8 in one forward
pass as ``predict --batch 8``), in its default ``precision = "auto"`` (measured on the first
image) and in each explicit path; and the shipped ISBI config's model (``unet_resnet18``,
GroupNorm, trained as shipped for ``--train-seconds``) as it is. 512x512 one-band images (ISBI's
size), batch 1 and 8. GFLOP/s uses the forward's FLOPs counted by ``torch.utils.flop_counter``
and is set against the fp32 (and bf16) GEMM rate of a 2048² matrix product measured in the same
run. Agreement: pixelseg's ``unet_resnet34`` is trained on ISBI for ``--train-seconds`` first
(``configs/isbi2012.toml``, model overridden), and each reduced-precision path's labels and mIoU
on the run's val split are compared with its fp32. Tiled: one ``--tiled-size``² image predicted
in tiles by the default path in a child process, its peak resident memory read from the kernel.
Seams: a 4096² image of touching synthetic objects (under 80 px across) cut into 512-px tiles
overlapping by 128 px, each tile's objects given by
the truth (the model is not what is measured there), merged by ``pixelseg.inference.seams``; it
counts the objects split or lost. ONNX: the run exported (``pixelseg export``) and predicted
through onnxruntime by the same Predictor. int8: ``--precision int8`` (torch.ao FX post-training
quantisation, x86 backend, calibrated on training images).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CONFIG_DIR, REPO_ROOT, RESULTS_DIR, machine_info, write_result

OUT = RESULTS_DIR / "inference_speed.json"
ISBI_ROOT = Path(os.environ.get("PIXELSEG_DATA", REPO_ROOT.parent / "shared" / "data")) / (
    "isbi2012-membrane"
)
RUN_DIR = REPO_ROOT / "runs" / "bench-inference-speed"
SHIPPED_RUN_DIR = REPO_ROOT / "runs" / "bench-inference-shipped"
SIZE = 512
BATCHES = (1, 8)
#: pixelseg's paths: the default first; then the explicit ones (fp32 and bf16 also compiled).
PRECISIONS = ("auto", "fp32", "bf16", "int8")
#: The ISBI images the speed rows predict: the shipped config's val split (never trained on).
VAL_IMAGES = range(20, 28)


def gemm_rate(dtype: torch.dtype, size: int = 2048) -> float:
    """GFLOP/s of the best of five ``size``² matrix products in ``dtype``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def forward_flops(model: torch.nn.Module, bands: int) -> float:
    """FLOPs of one ``SIZE``² image through ``model`` (a multiply-add counts two)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, bands, SIZE, SIZE))
    return float(counter.get_total_flops())


def images_per_second(run: Callable[[], None], images: int, repeats: int = 2) -> float:
    """Images per second of ``run`` (``images`` per call), after one warm-up call."""
    run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return images * repeats / (time.perf_counter() - start)


def peer_rows(bands: int, native_bf16: bool) -> list[dict[str, Any]]:
    """smp's Unet at its easy settings."""
    import segmentation_models_pytorch as smp

    rows = []
    settings = [("eager fp32", False, False), ("channels_last fp32", True, False)]
    if native_bf16:
        settings.append(("channels_last + bf16 autocast", True, True))
    for label, channels_last, bf16 in settings:
        torch.manual_seed(0)
        model = smp.Unet("resnet34", encoder_weights=None, in_channels=bands, classes=2).eval()
        flops = forward_flops(model, bands)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        for batch in BATCHES:
            x = torch.randn(batch, bands, SIZE, SIZE)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)

            def run(model: Any = model, x: torch.Tensor = x, bf16: bool = bf16) -> None:
                with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    model(x).argmax(1)

            rate = images_per_second(run, batch)
            rows.append({"side": "smp Unet resnet34", "path": label, "batch": batch,
                         "images_per_s": rate, "gflop_per_image": flops / 1e9})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def train_run(seconds: float, *, shipped: bool = False) -> Path:
    """pixelseg's unet_resnet34 (BatchNorm) trained on ISBI for ``seconds`` (kept if present);
    ``shipped``: the shipped ISBI config's own model (unet_resnet18, GroupNorm) instead."""
    run_dir = SHIPPED_RUN_DIR if shipped else RUN_DIR
    if (run_dir / "summary.json").is_file():
        return run_dir
    from pixelseg.config import load_config
    from pixelseg.train import train

    model = [] if shipped else ['model.name="unet_resnet34"', 'model.options={norm="batch"}']
    train(load_config(CONFIG_DIR / "isbi2012.toml", [*model, f"train.max_time={seconds}"]), run_dir)
    return run_dir


def timed_rows(
    predictor: Any, images: list[np.ndarray], *, side: str, path: str, flops: float
) -> list[dict[str, Any]]:
    """``predictor``'s rows at each batch size: its first call (plan, calibration, compiling),
    then images/s of :func:`~pixelseg.inference.batched.predict_batch` on decoded arrays."""
    from pixelseg.inference.batched import predict_batch

    start = time.perf_counter()
    predictor.predict(images[0])
    first_call = time.perf_counter() - start
    rows = []
    for batch in BATCHES:
        chunk = images[:batch]

        def run(predictor: Any = predictor, chunk: list[np.ndarray] = chunk) -> None:
            predict_batch(predictor, [predictor.load(image) for image in chunk])

        rate = images_per_second(run, batch)
        assert predictor.plan is not None
        rows.append({"side": side, "path": path, "plan": predictor.plan.name,
                     "reason": predictor.plan.reason, "batch": batch, "images_per_s": rate,
                     "first_call_s": first_call, "gflop_per_image": flops / 1e9})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def shipped_rows(run_dir: Path, images: list[np.ndarray]) -> list[dict[str, Any]]:
    """The shipped ISBI config's model as it is (GroupNorm: nothing to fold) through the
    Predictor: the default path and fp32."""
    from pixelseg.inference.predictor import Predictor
    from pixelseg.models.registry import create_model

    rows = []
    for precision in ("auto", "fp32"):
        predictor = Predictor.from_run(run_dir, precision=precision, tile="off")
        model = predictor.config.model if predictor.config is not None else None
        assert model is not None
        built = create_model(model.name, num_classes=2, in_channels=1, **dict(model.options))
        side = f"pixelseg {model.name} GroupNorm (shipped config)"
        rows += timed_rows(predictor, images, side=side, path=precision,
                           flops=forward_flops(built, 1))  # fmt: skip
    return rows


def predictor_rows(run_dir: Path, images: list[np.ndarray]) -> list[dict[str, Any]]:
    """pixelseg's Predictor on the trained run: the default (auto) and each explicit path."""
    from pixelseg.engine.precision import cpu_has_native_bf16
    from pixelseg.inference.predictor import Predictor
    from pixelseg.models.registry import create_model

    flops = forward_flops(create_model("unet_resnet34", num_classes=2, in_channels=1), 1)
    rows = []
    compiled_paths = ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]
    settings = [(p, False) for p in PRECISIONS] + [(p, True) for p in compiled_paths]
    for precision, compiled in settings:
        predictor = Predictor.from_run(
            run_dir, precision=precision, tile="off", compile_model=compiled
        )
        path = f"{precision} + torch.compile" if compiled else precision
        rows += timed_rows(predictor, images, side="pixelseg unet_resnet34 Predictor",
                           path=path, flops=flops)  # fmt: skip
    return rows


def onnx_rows(run_dir: Path, images: list[np.ndarray]) -> list[dict[str, Any]]:
    """The same run exported to ONNX and predicted through onnxruntime (``--engine``)."""
    from pixelseg.export.onnx import export_onnx
    from pixelseg.inference.engines import load_onnx_predictor
    from pixelseg.models.registry import create_model

    path = run_dir / "export" / "model.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(run_dir, path)
    predictor = load_onnx_predictor(path, tile="off")
    flops = forward_flops(create_model("unet_resnet34", num_classes=2, in_channels=1), 1)
    rows = timed_rows(predictor, images, side="pixelseg unet_resnet34 onnxruntime",
                      path="fp32 (ONNX)", flops=flops)  # fmt: skip
    return [{**row, "plan": "onnxruntime", "reason": "onnxruntime's CPU provider"} for row in rows]


def agreement_rows(
    run_dir: Path, paths: Sequence[tuple[str, bool]] | None = None
) -> list[dict[str, Any]]:
    """Pixel agreement and mIoU of each path against fp32 on the run's val split."""
    from pixelseg.inference.evaluate import evaluate_predictor
    from pixelseg.inference.predictor import Predictor
    from pixelseg.structures import Region, SemanticPrediction
    from pixelseg.tasks.registry import get_task

    reference = Predictor.from_run(run_dir, precision="fp32", tile="off")
    assert reference.config is not None
    val = get_task(reference.info.task).build_datasets(reference.config, ("val",), reference.info)
    samples = [val["val"][index] for index in range(len(val["val"]))]
    fp32_miou = evaluate_predictor(reference, split="val")["miou"]

    def labels(predictor: Predictor) -> list[torch.Tensor]:
        out = []
        for sample in samples:
            size = tuple(sample.meta.get("orig_size", sample.image.shape[-2:]))
            prediction = predictor.predict_normalized(sample.image, region=Region(size))
            assert isinstance(prediction, SemanticPrediction)
            out.append(prediction.label_map)
        return out

    reference_labels = labels(reference)
    rows = []
    if paths is None:
        paths = [(p, False) for p in PRECISIONS if p != "fp32"] + [("fp32", True)]
    for precision, compiled in paths:
        predictor = Predictor.from_run(
            run_dir, precision=precision, tile="off", compile_model=compiled
        )
        same = sum(int((a == b).sum()) for a, b in zip(labels(predictor), reference_labels))
        total = sum(a.numel() for a in reference_labels)
        miou = evaluate_predictor(predictor, split="val")["miou"]
        assert predictor.plan is not None
        path = f"{precision} + torch.compile" if compiled else precision
        rows.append({"path": path, "plan": predictor.plan.name,
                     "pixel_agreement": same / total, "miou": miou, "fp32_miou": fp32_miou,
                     "images": len(samples)})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def large_scene(path: Path, size: int) -> Path:
    """A ``size``² one-band GeoTIFF mosaic of ISBI's 30 images (512² each, repeated), tiled
    and deflated as a scene from a scanner or a satellite would be."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin

    if path.is_file():
        return path
    images = sorted((ISBI_ROOT / "images").glob("*.png"), key=lambda p: int(p.stem))
    tiles = [np.asarray(Image.open(image).convert("L")) for image in images]
    side = tiles[0].shape[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "uint8",
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
               "crs": "EPSG:32633",
               "transform": from_origin(500000, 5000000, 0.5, 0.5)}  # fmt: skip
    with rasterio.open(path, "w", **options) as dst:
        for row in range(0, size, side):
            strip = np.concatenate(
                [
                    tiles[(row // side * 7 + col // side) % len(tiles)]
                    for col in range(0, size, side)
                ],
                axis=1,
            )
            dst.write(strip[None, : min(side, size - row)], window=((row, row + side), (0, size)))
    return path


#: ``pixelseg``'s console entry point, then the process's peak resident memory: VmHWM, which
#: starts again at exec (``ru_maxrss`` would keep the forking benchmark's own peak).
_PEAK_WRAPPER = """import sys
from pixelseg.cli import main
code = main(sys.argv[1:])
print([line for line in open("/proc/self/status") if line.startswith("VmHWM")][0], end="")
sys.exit(code)
"""


def tiled_row(run_dir: Path, scene: Path, engine: str) -> dict[str, Any]:
    """``pixelseg predict RUN scene.tif`` as a user runs it (default options; ``--engine``),
    in its own process: wall time and that process's peak resident memory (VmHWM)."""
    out = scene.parent / f"out-{engine}"
    command = [sys.executable, "-c", _PEAK_WRAPPER, "predict", str(run_dir), str(scene),
               "--out", str(out), "--overwrite", "--engine", engine]  # fmt: skip
    start = time.perf_counter()
    child = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"pixelseg predict failed:\n{child.stdout}\n{child.stderr}")
    log = child.stdout
    peak_kib = int(log.strip().splitlines()[-1].split()[1])
    plan = next((line.split(" — ")[0].removeprefix("inference: ") for line in log.splitlines()
                 if line.startswith("inference: ")), engine)  # fmt: skip
    size = int(scene.stem.split("-")[-1])
    return {"size": size, "seconds": seconds, "megapixels_per_s": size * size / seconds / 1e6,
            "peak_rss_gib": peak_kib / 2**20, "plan": plan, "command": " ".join(
                ["pixelseg", "predict", "RUN", scene.name, "--out", "OUT", "--engine", engine]),
            "streamed": True}  # fmt: skip


def seam_row(size: int = 4096, block: int = 256) -> dict[str, Any]:
    """Touching synthetic objects, tiles answered by the truth, merged at the seams."""
    from pixelseg.data.instance.synthetic import synthetic_instance_image
    from pixelseg.inference.tiled import predict_objects_tiled
    from pixelseg.inference.tiling import TileSpec
    from pixelseg.postprocess.masks import instance_prediction, relabel_sequential
    from pixelseg.structures import Prediction, Region

    rng = np.random.default_rng(0)
    truth = np.zeros((size, size), np.int32)
    for top in range(0, size, block):
        for left in range(0, size, block):
            _, labels, _ = synthetic_instance_image(block, rng, num_objects=block // 6)
            truth[top : top + block, left : left + block] = np.where(
                labels > 0, labels + truth.max(), 0
            )
    truth = relabel_sequential(truth)
    rows, cols = np.mgrid[:size, :size]
    where = torch.from_numpy(np.stack([rows, cols]).astype(np.float32))

    def from_truth(crop: torch.Tensor, region: Region) -> Prediction:
        top, left = int(crop[0, 0, 0]), int(crop[1, 0, 0])
        cut = relabel_sequential(truth[top : top + region.size[0], left : left + region.size[1]])
        return instance_prediction(cut, np.ones(int(cut.max()), np.float32))

    spec = TileSpec(512, 128)
    start = time.perf_counter()
    merged = predict_objects_tiled(from_truth, where, spec)
    seconds = time.perf_counter() - start
    split = lost = 0
    pairs = np.stack([truth.ravel(), merged.label_image.ravel()], 1)
    pairs = np.unique(pairs[pairs[:, 0] > 0], axis=0)
    ids, per_object = np.unique(pairs[:, 0], return_counts=True)
    split = int((per_object > 1).sum())
    lost = int(truth.max()) - int(np.unique(pairs[pairs[:, 1] > 0][:, 0]).size)
    return {"size": size, "tile": spec.size, "overlap": spec.overlap,
            "objects": int(truth.max()), "predicted": int(merged.label_image.max()),
            "split_objects": split, "lost_objects": lost, "cut_reported": merged.cut,
            "merge_seconds": seconds, "objects_checked": int(ids.size)}  # fmt: skip


def inference_section(results_dir: Path) -> list[str]:
    """The Markdown section for ``docs/benchmarks.md`` (empty if not measured)."""
    path = Path(results_dir) / "inference_speed.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    gemm = data["gemm_gflops"]
    machine = data["machine"]
    best_peer = {
        batch: max(
            (r for r in data["peer"] if r["batch"] == batch), key=lambda r: r["images_per_s"]
        )
        for batch in BATCHES
    }
    out = [
        "## Inference speed: pixelseg's predict paths vs smp (512x512, one band)",
        "",
        f"Measured by `python bench/inference_speed.py` on {machine['cpu']} (native bf16: "
        f"{data['native_bf16']}), {machine['torch_threads']} threads, commit "
        f"{machine['git_commit']}. GEMM rate of a 2048² product in the same run: fp32 "
        f"{gemm['fp32']:.0f} GFLOP/s, bf16 {gemm['bf16']:.0f} GFLOP/s. pixelseg's rows go "
        "through its Predictor (decoding, normalisation, padding, softmax, argmax included) "
        "on ISBI's val images 20-27, batch 8 in one forward pass as `predict --batch 8` "
        "runs them; smp's run the bare model on a batch. int8: "
        "torch.ao FX post-training quantisation (x86 backend), calibrated on 8 training "
        "images. First call: the first image, with what a Predictor does once (auto: measure "
        "its candidates; int8: calibrate; torch.compile: compile), outside the timed repeats.",
        "",
        "| Side | Path | Batch | images/s | vs peer's best | GFLOP/s | % of fp32 GEMM "
        "| First call s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in [*data["peer"], *data["pixelseg"], *data.get("shipped", [])]:
        rate = row["images_per_s"]
        gflops = rate * row["gflop_per_image"]
        path_name = row["path"] if "plan" not in row else f"{row['path']} ({row['plan']})"
        ratio = rate / best_peer[row["batch"]]["images_per_s"]
        first = f"{row['first_call_s']:.1f}" if "first_call_s" in row else "—"
        out.append(
            f"| {row['side']} | {path_name} | {row['batch']} | {rate:.2f} | {ratio:.2f} "
            f"| {gflops:.0f} | {100 * gflops / gemm['fp32']:.0f} | {first} |"
        )
    out += ["", "| Path vs fp32 on ISBI val | Plan | Pixels agreeing | mIoU | fp32 mIoU |",
            "|---|---|---:|---:|---:|"]  # fmt: skip
    shipped_agreement = [
        {**row, "path": f"{row['path']}, shipped config's unet_resnet18 (GroupNorm)"}
        for row in data.get("shipped_agreement", [])
    ]
    for row in [*data["agreement"], *shipped_agreement]:
        out.append(
            f"| {row['path']} | {row['plan']} | {100 * row['pixel_agreement']:.2f} % "
            f"| {100 * row['miou']:.2f} | {100 * row['fp32_miou']:.2f} |"
        )
    out += ["", _large_image_text(data), ""]
    out += _targets(data, best_peer, gemm["fp32"])
    return out


def _large_image_text(data: dict[str, Any]) -> str:
    tiled, seams = data["tiled"], data["seams"]
    size = tiled["size"]
    text = (
        f"Large image: `{tiled.get('command', 'predict')}` on a {size}x{size} one-band GeoTIFF "
        "(a mosaic of ISBI's images), default options, in its own process: "
    )
    if tiled.get("streamed"):
        text += "streamed strip by strip (it exceeds 4096² px, so it is tiled; read and written "
        text += "window by window) "
    text += (
        f"({tiled['plan']}) in {tiled['seconds']:.0f} s with start-up "
        f"({tiled['megapixels_per_s']:.2f} Mpx/s); the process's peak resident memory was "
        f"{tiled['peak_rss_gib']:.2f} GiB (PyTorch and the model included). "
    )
    if "tiled_onnx" in data:
        onnx = data["tiled_onnx"]
        text += (
            f"Through onnxruntime (`--engine onnxruntime`): {onnx['seconds']:.0f} s, peak "
            f"{onnx['peak_rss_gib']:.2f} GiB. "
        )
    return text + (
        f"Seams: a {seams['size']}² image of {seams['objects']} touching synthetic objects in "
        f"{seams['tile']}-px tiles overlapping by {seams['overlap']} px, each tile answered by "
        f"the truth: {seams['split_objects']} objects split, {seams['lost_objects']} lost, "
        f"{seams['predicted']} predicted, merged in {seams['merge_seconds']:.1f} s."
    )


def _targets(data: dict[str, Any], best_peer: dict[int, Any], gemm: float) -> list[str]:
    """The issue's targets against this run's rows."""
    rows = {(r["path"], r["batch"]): r for r in data["pixelseg"]}
    agree = {r["path"]: r for r in data["agreement"]}
    out = ["Targets:", "", "| Target | Measured | Met |", "|---|---|---|"]

    def line(target: str, measured: str, met: bool) -> None:
        out.append(f"| {target} | {measured} | {'yes' if met else 'no'} |")

    for batch in BATCHES:
        auto, peer = rows[("auto", batch)], best_peer[batch]
        share = auto["images_per_s"] * auto["gflop_per_image"] / gemm
        line(f"default path (auto) >= 90 % of the fp32 GEMM rate, batch {batch}",
             f"{100 * share:.0f} % ({auto['plan']})", share >= 0.9)  # fmt: skip
        line(f"default path ahead of the peer's best easy setting, batch {batch}",
             f"{auto['images_per_s']:.2f} vs {peer['images_per_s']:.2f} images/s "
             f"({peer['path']})", auto["images_per_s"] > peer["images_per_s"])  # fmt: skip
    for row in data.get("shipped", []):
        if row["path"] == "auto":
            share = row["images_per_s"] * row["gflop_per_image"] / gemm
            line(f"shipped config's model, default path >= 90 % of fp32 GEMM, batch {row['batch']}",
                 f"{100 * share:.0f} % ({row['plan']})", share >= 0.9)  # fmt: skip
    for path in ("int8", "bf16"):
        if (path, 1) not in rows or path not in agree:
            continue
        speed = min(rows[(path, b)]["images_per_s"] / rows[("fp32", b)]["images_per_s"]
                    for b in BATCHES)  # fmt: skip
        held = agree[path]
        lost = 100 * (held["fp32_miou"] - held["miou"])
        met = speed >= 1.8 and held["pixel_agreement"] >= 0.995 and lost < 0.5
        line(f"{path}: >= 1.8x fp32, >= 99.5 % pixels agreeing, < 0.5 mIoU points lost",
             f"{speed:.2f}x (worse batch), {100 * held['pixel_agreement']:.2f} %, "
             f"{lost:+.2f} points", met)  # fmt: skip
    tiled = data["tiled"]
    peak = tiled["peak_rss_gib"] * 2**30
    line(f"{tiled['size']}² image under 2 GB peak memory", f"{peak / 1e9:.2f} GB", peak < 2e9)
    seams = data["seams"]
    line(f"{seams['size']}² touching objects tiled: none split at a seam",
         f"{seams['split_objects']} split, {seams['lost_objects']} lost",
         seams["split_objects"] == 0)  # fmt: skip
    return [*out, ""]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--train-seconds", type=float, default=120.0)
    parser.add_argument("--tiled-size", type=int, default=8192)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    # torch.compile's first call is timed as a user's first would be: no kernels cached before.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="pixelseg-inductor-")
    from PIL import Image

    from pixelseg.engine.precision import cpu_has_native_bf16
    from pixelseg.inference.plans import PLANS_FILE

    native = cpu_has_native_bf16()
    run_dir, shipped = train_run(args.train_seconds), train_run(args.train_seconds, shipped=True)
    for trained in (run_dir, shipped):
        (trained / PLANS_FILE).unlink(missing_ok=True)  # auto measures here, now
    images = [
        np.asarray(Image.open(ISBI_ROOT / "images" / f"{index}.png").convert("L"))[..., None]
        for index in VAL_IMAGES
    ]
    result: dict[str, Any] = {
        "machine": machine_info(),
        "native_bf16": native,
        "gemm_gflops": {"fp32": gemm_rate(torch.float32), "bf16": gemm_rate(torch.bfloat16)},
        "peer": peer_rows(1, native),
        "pixelseg": predictor_rows(run_dir, images) + onnx_rows(run_dir, images),
        "agreement": agreement_rows(run_dir),
        "shipped": shipped_rows(shipped, images),
        "shipped_agreement": agreement_rows(shipped, paths=[("auto", False)]),
        "seams": seam_row(),
    }
    scene = large_scene(RUN_DIR.parent / "bench-scene" / f"scene-{args.tiled_size}.tif",
                        args.tiled_size)  # fmt: skip
    for key, engine in (("tiled", "pytorch"), ("tiled_onnx", "onnxruntime")):
        result[key] = tiled_row(run_dir, scene, engine)
        print(result[key], flush=True)
    result["train_seconds"] = args.train_seconds
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("gemm_gflops", "seams", "tiled")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
