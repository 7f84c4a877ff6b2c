"""One faithful pipeline for georeferenced imagery: a model trained on 4-band 16-bit GeoTIFFs with
nodata predicts GeoTIFFs that lie where their inputs lie, fills and leaves unlabelled the nodata
pixels as training does, refuses images of another kind and warns about images far from its
training images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from pixelseg.cli import main
from pixelseg.config import load_config
from pixelseg.data.build import build_datasets
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import save_checkpoint
from pixelseg.engine.writer import RunWriter
from pixelseg.errors import DataError
from pixelseg.inference.predict import predict_files
from pixelseg.inference.predictor import Predictor
from pixelseg.report.figures import display_image
from pixelseg.structures import InstancePrediction, SemanticPrediction
from pixelseg.tasks.registry import get_task
from pixelseg.train import train

UTM33 = CRS.from_epsg(32633)
SIZE = 40
NODATA = 0
# Ground and vegetation "reflectances" (blue, green, red, near infrared) in 16-bit units.
MEANS = np.array([[1200, 1100, 1000, 1500], [500, 800, 600, 4000]], float)
CONFIG = """task = "semantic"

[data]
format = "mask_folder"
root = "."
images = "images/*.tif"
masks = "masks/{stem}.png"
classes = ["ground", "vegetation"]

[data.split]
method = "range"
train = ["0-3"]
val = ["*"]

[model]
name = "unet"
options = { depth = 2, base_width = 8 }

[train]
epochs = 1
samples_per_epoch = 4
batch_size = 2
crop_size = 32
num_workers = 0
warmup_steps = 1
"""


def place(index: int) -> Affine:
    """10 m pixels, north up, each scene 400 m east of the previous one (UTM 33N)."""
    return Affine(10.0, 0.0, 500_000.0 + 400.0 * index, 0.0, -10.0, 4_650_000.0)


def write_geotiff(path: Path, bands: np.ndarray, *, index: int = 0, nodata: float | None) -> Path:
    """``(C, H, W)`` bands as a GeoTIFF in UTM 33N (each index its own place), by rasterio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=bands.shape[1],
        width=bands.shape[2],
        count=bands.shape[0],
        dtype=str(bands.dtype),
        crs=UTM33,
        transform=place(index),
        nodata=nodata,
    ) as dst:
        dst.write(bands)
    return path


def scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(4, H, W)`` uint16 bands and the ``(H, W)`` uint8 class map they show."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    cy, cx = rng.uniform(8, SIZE - 8, 2)
    label = (((yy - cy) / 10) ** 2 + ((xx - cx) / 14) ** 2 <= 1).astype(np.uint8)
    bands = MEANS[label].transpose(2, 0, 1) + rng.normal(0, 80, (4, SIZE, SIZE))
    return np.clip(bands, 1, 65535).astype(np.uint16), label


def write_dataset(root: Path, n_images: int = 6) -> Path:
    """GeoTIFF scenes (every other one with a nodata strip, as at a swath edge), PNG masks and
    the config; images 0-3 train, 4-5 validate."""
    rng = np.random.default_rng(0)
    for index in range(n_images):
        bands, label = scene(rng)
        if index % 2 == 0:
            bands[:, :, :6] = NODATA
        write_geotiff(root / f"images/{index:03d}.tif", bands, index=index, nodata=NODATA)
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(label).save(root / f"masks/{index:03d}.png")
    (root / "config.toml").write_text(CONFIG, encoding="utf-8")
    return root / "config.toml"


@pytest.fixture(scope="module")
def geo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("geo")
    config_path = write_dataset(root / "data")
    train(load_config(config_path), root / "run", device="cpu")
    return root / "data", root / "run"


def _nodata(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return np.asarray((src.read() == NODATA).all(axis=0))


def test_predictions_are_geotiffs_in_place_with_nodata_unlabelled(
    geo_run: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = geo_run
    predictor = Predictor.from_run(run, device="cpu")
    image = data / "images/004.tif"
    out = tmp_path / "pred"
    assert predict_files(predictor, [image], out, probabilities=True) == (1, 0)
    nodata = _nodata(image)
    assert nodata[:, :6].all() and not nodata[:, 6:].any()
    with rasterio.open(image) as src:
        crs, transform, pixels = src.crs, src.transform, src.read().transpose(1, 2, 0)
    with rasterio.open(out / "004_label.tif") as src:
        assert src.crs == crs == UTM33 and src.transform == transform
        assert (src.count, src.dtypes, src.nodata) == (1, ("uint8",), 255)
        labels = src.read(1)
    assert (labels[nodata] == 255).all() and (labels[~nodata] < 2).all()
    prediction = predictor.predict(image)
    assert isinstance(prediction, SemanticPrediction)
    assert np.array_equal(prediction.label_map.numpy(), labels)
    with rasterio.open(out / "004_probs.tif") as src:
        assert src.crs == crs and src.transform == transform
        assert src.count == 2 and src.descriptions == ("ground", "vegetation")
        probs = src.read()
    assert probs.dtype == np.float32 and np.isnan(probs[:, nodata]).all()
    np.testing.assert_allclose(probs[:, ~nodata].sum(axis=0), 1.0, atol=1e-5)
    overlay = np.asarray(Image.open(out / "004_overlay.png"))
    assert np.array_equal(overlay[nodata], display_image(pixels)[nodata])  # left uncoloured
    assert not (out / "004_label.png").exists()
    assert predict_files(predictor, [image], out, probabilities=True) == (0, 1)


@pytest.mark.parametrize("dtype", ["float16", "uint8"])
def test_probability_maps_can_be_stored_smaller(
    geo_run: tuple[Path, Path], tmp_path: Path, dtype: str
) -> None:
    data, run = geo_run
    predictor = Predictor.from_run(run, device="cpu", precision="fp32")
    image, out = data / "images/004.tif", tmp_path / dtype
    written = predict_files(predictor, [image], out, probabilities=True, probability_dtype=dtype)
    assert written == (1, 0)
    prediction = predictor.predict(image)
    assert isinstance(prediction, SemanticPrediction)
    reference, nodata = prediction.probs.numpy(), _nodata(image)
    with rasterio.open(out / "004_probs.tif") as src:
        stored, scales = src.read(), src.scales
        nbits = src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS")
    if dtype == "uint8":
        assert stored.dtype == np.uint8 and (stored[:, nodata] == 255).all()
        assert scales == pytest.approx((1 / 254, 1 / 254))
        real = stored[:, ~nodata] * scales[0]
        np.testing.assert_allclose(real, reference[:, ~nodata], atol=0.5 / 254 + 1e-6)
    else:
        assert nbits == "16" and np.isnan(stored[:, nodata]).all()
        np.testing.assert_allclose(stored[:, ~nodata], reference[:, ~nodata], atol=1e-3)
    # Another dtype is another output: the manifest does not count the old one as done.
    assert predict_files(predictor, [image], out, probabilities=True) == (1, 0)


def test_run_json_records_the_training_input(geo_run: tuple[Path, Path]) -> None:
    _, run = geo_run
    info = json.loads((run / "run.json").read_text())
    recorded = info["input"]
    assert {k: recorded[k] for k in ("dtype", "bands", "scaling", "nodata", "nodata_from")} == {
        "dtype": "uint16",
        "bands": 4,
        "scaling": "as is",
        "nodata": 0.0,
        "nodata_from": "file",
    }
    assert recorded["images"] == 4  # the training split, read from the cache
    # The same valid pixels as the normalisation statistics: nodata left out of both.
    np.testing.assert_allclose(recorded["band_mean"], info["normalizer"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(recorded["band_std"], info["normalizer"]["std"], rtol=1e-5)
    assert len(recorded["image_mean"]) == len(recorded["image_mean_std"]) == 4


def test_nodata_is_filled_as_training_and_evaluation_fill_it(geo_run: tuple[Path, Path]) -> None:
    _, run = geo_run
    predictor = Predictor.from_run(run, device="cpu")
    assert predictor.config is not None
    val = build_datasets(predictor.config, ("val",), normalizer=predictor.normalizer, verify=False)[
        "val"
    ]
    for index, sample in enumerate(val.samples):
        _, normalized = predictor.prepare(sample.image)  # what predict feeds the model
        if sample.id == "004":
            assert torch.all(normalized[:, :, :6] == 0)  # the band mean, normalised
        evaluated = val[index].image[:, :SIZE, :SIZE]  # what evaluate feeds it
        torch.testing.assert_close(normalized, evaluated, atol=1e-6, rtol=0)


def test_other_dtype_or_band_count_is_refused_in_one_line(
    geo_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = geo_run
    predictor = Predictor.from_run(run, device="cpu")
    bands, _ = scene(np.random.default_rng(1))
    eight_bit = write_geotiff(tmp_path / "eight.tif", (bands // 64).astype(np.uint8), nodata=None)
    with pytest.raises(DataError) as info:
        predictor.predict(eight_bit)
    assert str(info.value) == (
        f"{eight_bit}: image is uint8 (4 bands); the model was trained on uint16 images "
        "(4 bands, scaling: as is), so its values would be scaled wrongly: convert it to "
        "uint16 first"
    )
    three = write_geotiff(tmp_path / "three.tif", bands[:3], nodata=None)
    with pytest.raises(DataError) as info:
        predictor.predict(three)
    assert str(info.value) == (
        f"{three}: image has 3 bands; the model was trained on 4-band uint16 images "
        "(this one is uint16)"
    )
    assert main(["predict", str(run), str(eight_bit), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "uint8" in err and "uint16" in err


def test_images_far_from_the_training_images_are_warned_about(
    geo_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, run = geo_run
    predictor = Predictor.from_run(run, device="cpu")
    capsys.readouterr()
    assert predictor.load(data / "images/001.tif").warnings == []  # a training image
    assert "warning" not in capsys.readouterr().err
    with rasterio.open(data / "images/001.tif") as src:
        bright = src.read().astype(np.float64) * 3  # another sensor's gain, say
    shifted = write_geotiff(tmp_path / "shifted.tif", bright.astype(np.uint16), nodata=NODATA)
    prepared = predictor.load(shifted)
    assert len(prepared.warnings) == 1
    assert prepared.warnings[0].startswith(f"{shifted}: band statistics far outside")
    assert "standard deviations" in prepared.warnings[0]
    err = capsys.readouterr().err
    assert "warning:" in err and "shifted.tif" in err
    collected: list[str] = []
    predict_files(predictor, [data / "images/001.tif", shifted], tmp_path / "p", warnings=collected)
    assert collected == prepared.warnings


def test_old_run_without_input_record_still_predicts(
    geo_run: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = geo_run
    old = tmp_path / "old_run"
    shutil.copytree(run, old)
    raw = json.loads((old / "run.json").read_text())
    del raw["input"]
    (old / "run.json").write_text(json.dumps(raw), encoding="utf-8")
    predictor = Predictor.from_run(old, device="cpu")
    assert predictor.input_spec is None
    image = data / "images/004.tif"
    assert predict_files(predictor, [image], tmp_path / "pred") == (1, 0)
    with rasterio.open(tmp_path / "pred/004_label.tif") as src:
        assert src.crs == UTM33
        assert (src.read(1)[_nodata(image)] == 255).all()  # the file's own nodata value
    bands, _ = scene(np.random.default_rng(2))
    three = write_geotiff(tmp_path / "three.tif", bands[:3], nodata=None)
    with pytest.raises(DataError, match=r"three\.tif: image has 3 bands; the model was trained"):
        predictor.predict(three)


def test_instance_outputs_of_a_geotiff_lie_where_it_lies(tmp_path: Path) -> None:
    config_path = write_synthetic_instances(tmp_path / "data", n_images=4, size=64)
    settings = ['task="watershed"', 'model.name="unet"', "model.options={depth=2, base_width=8}"]
    config = load_config(config_path, settings)
    torch.manual_seed(0)
    job = get_task(config.task).build_job(config, ("train", "val"), None)
    run = tmp_path / "run"
    writer = RunWriter(run)
    writer.json("config.json", config.to_dict())
    writer.json("run.json", job.info.to_dict())
    save_checkpoint(run / rd.BEST, job.model)
    source = sorted((tmp_path / "data").rglob("*.png"))[0]
    pixels = np.asarray(Image.open(source).convert("RGB")).copy()
    pixels[:, :10] = 0
    image = write_geotiff(
        tmp_path / "scene.tif", np.ascontiguousarray(pixels.transpose(2, 0, 1)), nodata=0
    )
    nodata = (pixels == 0).all(axis=2)
    predictor = Predictor.from_run(run, device="cpu")
    out = tmp_path / "pred"
    assert predict_files(predictor, [image], out, probabilities=True) == (1, 0)
    with rasterio.open(out / "scene_instances.tif") as src:
        assert src.crs == UTM33 and src.transform == place(0)
        assert (src.dtypes, src.nodata) == (("int32",), -1)
        labels = src.read(1)
    prediction = predictor.predict(image)
    assert isinstance(prediction, InstancePrediction)
    assert not prediction.label_image[nodata].any()  # no object on nodata
    assert np.array_equal(labels, np.where(nodata, -1, prediction.label_image))
    with rasterio.open(out / "scene_probs.tif") as src:
        assert src.count == 3 and src.crs == UTM33
    coco = json.loads((out / "predictions_coco.json").read_text())
    assert [entry["file_name"] for entry in coco["images"]] == ["scene.tif"]
